// How a network function frames packets in its bulk transfers: the one choice the RX and TX
// stages make per function, as a row of a table rather than a fork of the stages.
//
//   framing   transfers carry                              frames          parser / builder
//   ncm       NTB16/NTB32 (the format per NTB, NCM 1.0 §3)  Ethernet       ntb::parse_transfer / ntb::NtbBuilder
//   mbim      NTB16/NTB32 with IPS<n> NDPs (MBIM 1.0 §7)    raw IP         ntb::parse_transfer / ntb::NtbBuilder
//   rndis     REMOTE_NDIS_PACKET_MSG sequences (MS-RNDIS)   Ethernet       rndis::parse_packet_transfer / rndis::PacketBuilder
//
// Everything after the framing is shared: Ethernet framings get the same strip / MAC learning /
// ARP and NS answers / DHCP divert on RX and the same Ethernet header on TX (datapath/ethernet.hpp).
// The stages branch on the row once per transfer, never per packet on the NTB paths.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "datapath/ethernet.hpp"
#include "datapath/ntb_parse.hpp"
#include "datapath/rndis_packet.hpp"

namespace wwan::dp {

enum class Framing : std::uint8_t { ncm, mbim, rndis };

struct FramingRow {
  Framing framing;
  const char* name;
  bool ntb;                          // NTB transfers (else RNDIS packet messages)
  ntb::FunctionKind ntb_function;    // the NDP family the NTB parser accepts (ntb rows only)
  bool ethernet;                     // frames carry an Ethernet header (else raw IP)
  // The shortest unit a transfer of N bytes can hold N / this of: it sizes the RX datagram list.
  // NCM: an Ethernet header (the parser refuses less); MBIM: an IPv4 header (shorter IP is
  // dropped anyway); RNDIS: a PACKET_MSG header and an Ethernet header.
  std::size_t smallest_datagram_bytes;
};

inline constexpr std::array<FramingRow, 3> kFramings{{
    {Framing::ncm, "ncm", true, ntb::FunctionKind::Ncm, true, eth::kEthernetHeaderSize},
    {Framing::mbim, "mbim", true, ntb::FunctionKind::Mbim, false, eth::kIpv4MinHeaderSize},
    {Framing::rndis, "rndis", false, ntb::FunctionKind::Ncm, true,
     rndis::kPacketHeaderSize + eth::kEthernetHeaderSize},
}};

constexpr const FramingRow& framing_row(Framing f) { return kFramings[static_cast<std::size_t>(f)]; }

}  // namespace wwan::dp
