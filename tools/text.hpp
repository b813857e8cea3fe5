// Text the subcommands print: JSON string literals and IP addresses.
#pragma once

#include <string>
#include <string_view>

#include "datapath/ethernet.hpp"

namespace wwan::cli {

// A JSON string literal, quotes included. Escapes everything JSON requires and DEL: names come
// from sysfs, modem firmware and AT responses.
std::string json_string(std::string_view s);
// 10.64.64.2
std::string ipv4_text(const eth::Ipv4Address& a);
// 2001:db8:0:1:0:0:0:2 (each group in hex, no :: compression)
std::string ipv6_text(const eth::Ipv6Address& a);

}  // namespace wwan::cli
