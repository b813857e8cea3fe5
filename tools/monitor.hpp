// `wwan-dp monitor --dev VID:PID`: claim a modem's network function and print what its
// notification endpoint says (and the encapsulated responses it announces) until stopped.
// For modem hackers ("is my stick sending anything?") and the proof that wwan-dp gives a modem
// back to its kernel driver on every exit: Ctrl-C, SIGTERM, --count reached, device gone.
#pragma once

#include <ostream>
#include <span>
#include <string_view>

namespace wwan::cli {

int run_monitor(std::span<const std::string_view> args, std::ostream& out, std::ostream& err);

}  // namespace wwan::cli
