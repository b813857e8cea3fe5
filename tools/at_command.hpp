// `wwan-dp at --dev VID:PID 'AT…'`: one or more AT commands over the CDC encapsulated-command
// channel of an NCM modem, answers printed — the modem's AT port when no ttyUSB exists.
#pragma once

#include <ostream>
#include <span>
#include <string_view>

namespace wwan::cli {

int run_at(std::span<const std::string_view> args, std::ostream& out, std::ostream& err);

}  // namespace wwan::cli
