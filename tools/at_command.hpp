// `wwan-dp at --dev VID:PID 'AT…'`: one or more AT commands over the CDC encapsulated-command
// channel of an NCM modem or over the modem's serial AT interface (--at-port; by default the
// encapsulated channel with the serial port as its fallback), answers printed — the modem's AT
// port when no ttyUSB exists.
#pragma once

#include <ostream>
#include <span>
#include <string_view>

namespace wwan::cli {

int run_at(std::span<const std::string_view> args, std::ostream& out, std::ostream& err);

}  // namespace wwan::cli
