// `wwan-dp --dev VID:PID --tun NAME` / `wwan-dp --sim PROFILE --tun NAME`: the daemon.
//
// Claims the modem (or builds the emulated one in-process), negotiates the NTB parameters, brings
// the data session up, configures the TUN from the session's IP configuration over rtnetlink and
// moves packets between the modem and the TUN on the RX/TX workers; redials after drops, waits for
// the modem when it re-enumerates, and on SIGINT/SIGTERM disconnects, gives the modem back to its
// kernel driver and removes the TUN it created. See run_daemon's usage text and docs/daemon.md.
#pragma once

#include <ostream>
#include <span>
#include <string_view>

namespace wwan::cli {

int run_daemon(std::span<const std::string_view> args, std::ostream& out, std::ostream& err);

}  // namespace wwan::cli
