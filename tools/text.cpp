#include "tools/text.hpp"

#include "control/mbim_json.hpp"

#include <cstdio>

namespace wwan::cli {

std::string json_string(std::string_view s) {
  std::string out;
  mbim::append_json_string(out, s);
  return out;
}

std::string ipv4_text(const eth::Ipv4Address& a) {
  char b[16];
  std::snprintf(b, sizeof b, "%u.%u.%u.%u", a.bytes[0], a.bytes[1], a.bytes[2], a.bytes[3]);
  return b;
}
std::string ipv6_text(const eth::Ipv6Address& a) {
  std::string s;
  char b[8];
  for (std::size_t i = 0; i < 16; i += 2) {
    std::snprintf(b, sizeof b, "%x", static_cast<unsigned>(a.bytes[i] << 8 | a.bytes[i + 1]));
    if (i > 0) s += ':';
    s += b;
  }
  return s;
}

}  // namespace wwan::cli
