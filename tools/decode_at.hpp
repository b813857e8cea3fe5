// `wwan-dp decode at 'LINE'`: what does this AT line from my Huawei modem say? Decodes one line
// and prints one JSON object (control::huawei::decode_at_json does the work; this is the CLI):
//   wwan-dp decode at '^DHCP: 0202400a,fcffffff,0102400a,0102400a,0d0c0b0a,0e0c0b0a,150000000,50000000'
//     {"kind":"huawei-dhcp","address":"10.64.2.2","netmask":"255.255.255.252","gateway":"10.64.2.1","dns":["10.11.12.13","10.11.12.14"]}
//   wwan-dp decode at '^NDISSTATQRY: 1,,,"IPV4",0,33,,"IPV6"'
//     {"kind":"huawei-ndisstat","ipv4":"connected","ipv6":"disconnected"}
//   anything else: {"kind":"unknown"}
// Exit 0 for any line (unknown included), 2 for a usage error (no line, or more than one).
#pragma once

#include <ostream>
#include <span>
#include <string_view>

namespace wwan::cli {

// args: what follows "decode at".
int run_decode_at(std::span<const std::string_view> args, std::ostream& out, std::ostream& err);

}  // namespace wwan::cli
