#include "tools/decode_mbim.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "control/mbim_json.hpp"
#include "tools/decode_ntb.hpp"

namespace wwan::cli {
namespace {

constexpr std::string_view kUsage =
    "usage: wwan-dp decode mbim [--hex] FILE|-\n"
    "\n"
    "Decodes MBIM control messages (what SEND_ENCAPSULATED_COMMAND carries and\n"
    "GET_ENCAPSULATED_RESPONSE returns): one message, or several messages and fragments back to\n"
    "back. Prints one JSON object per whole message: type, transaction, service, cid, status, and\n"
    "for DEVICE_CAPS, CONNECT, REGISTER_STATE and IP_CONFIGURATION a \"fields\" object\n"
    "(keys documented in control/mbim_json.hpp). A malformed message prints {\"error\":...}.\n"
    "\n"
    "  FILE   raw bytes, or hex text (\"03000080 80000000 ...\"; recognised by itself); - = stdin\n"
    "  --hex  insist on hex text\n"
    "\n"
    "Exit status: 0 when the input was read (whatever it contained), 2 when it could not be read.\n";

// Hex text starts with a hex digit (or whitespace); raw MBIM starts with a MessageType byte
// 0x01..0x07, which is never printable, so the two cannot be confused.
bool looks_like_text(const std::vector<std::uint8_t>& data) {
  for (const std::uint8_t b : data) {
    if (b == ' ' || b == '\t' || b == '\n' || b == '\r') continue;
    return (b >= '0' && b <= '9') || (b >= 'a' && b <= 'f') || (b >= 'A' && b <= 'F');
  }
  return false;
}

}  // namespace

int run_decode_mbim(std::span<const std::string_view> args, std::ostream& out, std::ostream& err) {
  bool hex = false;
  std::optional<std::string_view> path;
  for (const std::string_view a : args) {
    if (a == "--help" || a == "-h") {
      out << kUsage;
      return 0;
    } else if (a == "--hex") {
      hex = true;
    } else if (a.size() > 1 && a[0] == '-') {
      err << "wwan-dp decode mbim: unknown option '" << a << "' (see wwan-dp decode mbim --help)\n";
      return 2;
    } else if (path) {
      err << "wwan-dp decode mbim: one input at a time: got '" << *path << "' and '" << a << "'\n";
      return 2;
    } else {
      path = a;
    }
  }
  if (!path) {
    err << "wwan-dp decode mbim: which input? give a FILE, or - for stdin (see --help)\n";
    return 2;
  }

  std::optional<std::vector<std::uint8_t>> input = read_input(*path, "wwan-dp decode mbim", err);
  if (!input) return 2;
  std::vector<std::uint8_t> data = std::move(*input);
  if (hex || looks_like_text(data)) {
    auto bytes = parse_hex_text({reinterpret_cast<const char*>(data.data()), data.size()});
    if (!bytes) {
      err << "wwan-dp decode mbim: the input is not hex text (pairs of hex digits, spaces and ':' allowed)\n";
      return 2;
    }
    data = std::move(*bytes);
  }
  if (data.empty()) {
    out << "{\"error\":\"empty_input\"}\n";
    return 0;
  }
  out << mbim::stream_json(data);
  return 0;
}

}  // namespace wwan::cli
