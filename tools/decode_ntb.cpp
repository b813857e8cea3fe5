#include "tools/decode_ntb.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>

namespace wwan::cli {
namespace {

// Writes records as the parser finds them. All strings are fixed identifiers (no escaping needed).
struct JsonLinesSink {
  std::ostream& out;
  void datagram(const ntb::DatagramView& d) {
    out << R"({"type":"datagram","ntb":)" << d.ntb << R"(,"format":)" << static_cast<int>(d.format)
        << R"(,"kind":")" << ntb::to_string(d.kind) << R"(","session":)" << static_cast<int>(d.session)
        << R"(,"offset":)" << d.offset << R"(,"length":)" << d.length << "}\n";
  }
  void error(std::uint32_t ntb_index, ntb::NtbError e) {
    out << R"({"type":"error","ntb":)" << ntb_index << R"(,"reason":")" << ntb::to_string(e) << "\"}\n";
  }
};

constexpr std::string_view kUsage =
    "usage: wwan-dp decode ntb [--mbim] [--verify-crc] [--hex] FILE|-\n"
    "\n"
    "Decodes the bytes of ONE bulk-IN USB transfer from a CDC NCM or MBIM modem (one or more\n"
    "NCM Transfer Blocks) and prints JSON Lines: a \"datagram\" record per datagram, an \"error\"\n"
    "record per problem (reason names are listed in docs/ntb-errors.md) and a \"summary\" last.\n"
    "Offsets count from the start of the transfer; NTB16 and NTB32 are recognised by signature.\n"
    "\n"
    "  FILE          raw transfer bytes (e.g. the payload of one usbmon/Wireshark URB); - = stdin\n"
    "  --mbim        the function is MBIM: expect IPS<n>/DSS<n> NDPs (default: NCM, NCM0/NCM1)\n"
    "  --verify-crc  check the CRC-32 of NCM1 datagrams instead of only stripping it\n"
    "  --hex         the input is hex text (\"6e636d68 1000...\", colons and spaces allowed)\n"
    "\n"
    "Exit status: 0 when the input was read (whatever it contained), 2 when it could not be read.\n"
    "Example: wwan-dp decode ntb --mbim samples/ntb/k5160-mbim-ips0.bin\n";

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

ntb::TransferSummary decode_ntb_json(std::span<const std::uint8_t> transfer, const ntb::ParseOptions& options,
                                     std::ostream& out) {
  JsonLinesSink sink{out};
  const ntb::TransferSummary s = ntb::parse_transfer(transfer, options, sink);
  out << R"({"type":"summary","ntbs":)" << s.ntbs << R"(,"datagrams":)" << s.datagrams << R"(,"errors":)"
      << s.errors << "}\n";
  return s;
}

std::optional<std::vector<std::uint8_t>> parse_hex_text(std::string_view text) {
  std::vector<std::uint8_t> bytes;
  int high = -1;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ':' || c == '-') continue;
    // "0x" prefixes, only at a token start (so "0x" inside "a0x1" is still an error).
    if (c == '0' && high < 0 && i + 1 < text.size() && (text[i + 1] == 'x' || text[i + 1] == 'X') &&
        (i == 0 || text[i - 1] == ' ' || text[i - 1] == '\n' || text[i - 1] == '\t' || text[i - 1] == ',')) {
      ++i;
      continue;
    }
    if (c == ',') continue;
    const int v = hex_value(c);
    if (v < 0) return std::nullopt;
    if (high < 0) {
      high = v;
    } else {
      bytes.push_back(static_cast<std::uint8_t>(high << 4 | v));
      high = -1;
    }
  }
  if (high >= 0) return std::nullopt;
  return bytes;
}

int run_decode_ntb(std::span<const std::string_view> args, std::ostream& out, std::ostream& err) {
  ntb::ParseOptions options;
  bool hex = false;
  std::optional<std::string_view> path;
  for (const std::string_view a : args) {
    if (a == "--help" || a == "-h") {
      out << kUsage;
      return 0;
    } else if (a == "--mbim") {
      options.function = ntb::FunctionKind::Mbim;
    } else if (a == "--verify-crc") {
      options.verify_crc = true;
    } else if (a == "--hex") {
      hex = true;
    } else if (a.size() > 1 && a[0] == '-') {
      err << "wwan-dp decode ntb: unknown option '" << a << "' (see wwan-dp decode ntb --help)\n";
      return 2;
    } else if (path) {
      err << "wwan-dp decode ntb: one transfer at a time: got '" << *path << "' and '" << a << "'\n";
      return 2;
    } else {
      path = a;
    }
  }
  if (!path) {
    err << "wwan-dp decode ntb: which transfer? give a FILE, or - for stdin (see --help)\n";
    return 2;
  }

  std::optional<std::vector<std::uint8_t>> input = read_input(*path, "wwan-dp decode ntb", err);
  if (!input) return 2;
  std::vector<std::uint8_t> data = std::move(*input);
  if (hex) {
    auto bytes = parse_hex_text({reinterpret_cast<const char*>(data.data()), data.size()});
    if (!bytes) {
      err << "wwan-dp decode ntb: --hex input is not hex text (pairs of hex digits, spaces and ':' allowed)\n";
      return 2;
    }
    data = std::move(*bytes);
  }
  decode_ntb_json(data, options, out);
  return 0;
}

std::optional<std::vector<std::uint8_t>> read_input(std::string_view path, std::string_view tool, std::ostream& err) {
  std::vector<std::uint8_t> data;
  if (path == "-") {
    std::cin >> std::noskipws;
    data.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    if (std::cin.bad()) {
      err << tool << ": cannot read stdin\n";
      return std::nullopt;
    }
    return data;
  }
  std::ifstream f{std::string(path), std::ios::binary};
  if (!f) {
    err << tool << ": cannot open '" << path << "': " << std::strerror(errno) << "\n";
    return std::nullopt;
  }
  data.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  if (f.bad()) {
    err << tool << ": cannot read '" << path << "': " << std::strerror(errno) << "\n";
    return std::nullopt;
  }
  return data;
}

}  // namespace wwan::cli
