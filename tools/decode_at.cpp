#include "tools/decode_at.hpp"

#include "control/huawei_at.hpp"

namespace wwan::cli {

int run_decode_at(std::span<const std::string_view> args, std::ostream& out, std::ostream& err) {
  constexpr std::string_view kUsage =
      "usage: wwan-dp decode at 'LINE'   decode one AT response line (^DHCP:, ^NDISSTAT:, ^NDISSTATQRY:) to JSON\n";
  if (args.size() == 1 && (args[0] == "--help" || args[0] == "-h")) {
    out << kUsage;
    return 0;
  }
  if (args.size() != 1) {
    err << kUsage;
    return 2;
  }
  out << control::huawei::decode_at_json(args[0]) << '\n';
  return 0;
}

}  // namespace wwan::cli
