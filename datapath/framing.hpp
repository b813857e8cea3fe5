// How a network function frames packets in its bulk transfers: the one choice the RX and TX
// stages make per function, as a row of a table rather than a fork of the stages.
//
//   framing   transfers carry                              frames          parser / builder
//   ncm       NTB16/NTB32 (the format per NTB, NCM 1.0 §3)  Ethernet       ntb::parse_transfer / ntb::NtbBuilder
//   mbim      NTB16/NTB32 with IPS<n> NDPs (MBIM 1.0 §7)    raw IP         ntb::parse_transfer / ntb::NtbBuilder
//   rndis     REMOTE_NDIS_PACKET_MSG sequences (MS-RNDIS)   Ethernet       rndis::parse_packet_transfer / rndis::PacketBuilder
//   ncm_tap   NTB16/NTB32 (as ncm)                          Ethernet,      ntb::parse_transfer / ntb::NtbBuilder
//                                                           passed through
//
// Everything after the framing is shared: Ethernet framings get the same strip / MAC learning /
// ARP and NS answers / DHCP divert on RX and the same Ethernet header on TX (datapath/ethernet.hpp).
// The stages branch on the row once per transfer, never per packet on the NTB paths.
//
// ncm_tap (wwan-dp --tap, docs/tun.md "TAP mode"): the host device is a TAP, so each NCM datagram
// (a whole Ethernet frame) is written to it unchanged and each frame read from it goes into the
// NTB unchanged. None of the Ethernet work above happens: the system's own stack answers ARP and
// NS, runs DHCP and router discovery, and may bridge or tag (VLAN) the frames.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "datapath/ethernet.hpp"
#include "datapath/ntb_parse.hpp"
#include "datapath/rndis_packet.hpp"

namespace wwan::dp {

enum class Framing : std::uint8_t { ncm, mbim, rndis, ncm_tap };

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
  // Frames go between the transfers and the host device (a TAP) unchanged: no Ethernet header
  // stripped or written, no ARP / NS answered, nothing diverted to the control thread.
  bool passthrough;
};

inline constexpr std::array<FramingRow, 4> kFramings{{
    {Framing::ncm, "ncm", true, ntb::FunctionKind::Ncm, true, eth::kEthernetHeaderSize, false},
    {Framing::mbim, "mbim", true, ntb::FunctionKind::Mbim, false, eth::kIpv4MinHeaderSize, false},
    {Framing::rndis, "rndis", false, ntb::FunctionKind::Ncm, true,
     rndis::kPacketHeaderSize + eth::kEthernetHeaderSize, false},
    {Framing::ncm_tap, "ncm-tap", true, ntb::FunctionKind::Ncm, true, eth::kEthernetHeaderSize, true},
}};
// The table is indexed by the enum.
static_assert([] {
  for (std::size_t i = 0; i < kFramings.size(); ++i)
    if (static_cast<std::size_t>(kFramings[i].framing) != i) return false;
  return true;
}());

// An 802.1Q tag (IEEE 802.1Q §9.6): the room a TAP read needs beyond an Ethernet header and the
// MTU when the system runs a VLAN on the TAP.
inline constexpr std::size_t kVlanTagBytes = 4;

constexpr const FramingRow& framing_row(Framing f) { return kFramings[static_cast<std::size_t>(f)]; }

}  // namespace wwan::dp
