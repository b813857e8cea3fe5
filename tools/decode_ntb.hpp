// `wwan-dp decode ntb`: what is my modem sending? Decodes the bytes of one bulk-IN transfer and
// writes one JSON object per line (JSON Lines):
//   {"type":"datagram","ntb":I,"format":16|32,"kind":"ncm"|"ncm-crc"|"ips"|"dss","session":N,"offset":O,"length":L}
//   {"type":"error","ntb":I,"reason":"<short-name>"}
//   {"type":"summary","ntbs":N,"datagrams":D,"errors":E}     (always last)
// `ntb` counts NTBs within the transfer from 0, `offset` is from the start of the transfer,
// `length` is after the CRC strip, `session` is 0 for NCM. Records come in wire order.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <span>
#include <string_view>
#include <vector>

#include "datapath/ntb_parse.hpp"

namespace wwan::cli {

ntb::TransferSummary decode_ntb_json(std::span<const std::uint8_t> transfer, const ntb::ParseOptions& options,
                                     std::ostream& out);

// Hex text as people paste it (Wireshark "copy as hex stream", xxd -p, usbmon text): hex digit
// pairs, with whitespace, ':' , '-' and a leading "0x" per token ignored. nullopt on anything else
// or an odd number of digits.
std::optional<std::vector<std::uint8_t>> parse_hex_text(std::string_view text);

// The bytes of FILE, or of standard input for "-". nullopt after one line on `err`
// ("<tool>: cannot open 'x': No such file or directory"); `tool` is e.g. "wwan-dp decode mbim".
std::optional<std::vector<std::uint8_t>> read_input(std::string_view path, std::string_view tool, std::ostream& err);

// The `decode ntb` subcommand: args are what follows "decode ntb". Exit 0 whenever the input
// could be read (malformed or not), 2 when it cannot be read or the usage is wrong.
int run_decode_ntb(std::span<const std::string_view> args, std::ostream& out, std::ostream& err);

}  // namespace wwan::cli
