// IPv4/IPv6 + TCP/UDP header views for the offload code: where the L4 header and the payload
// of one IP packet are, checked against the packet's own bytes. Pure; every length the packet
// states is checked in 64-bit arithmetic against the bytes present before it is used.
//
// Only the shapes the kernel's GRO and GSO deal in are "L4 packets": IPv4 (any IHL, not a
// fragment) or IPv6 whose Next Header is TCP or UDP directly (no extension headers), carrying a
// whole TCP or UDP header. Everything else is some other packet, and the reason says which.
#pragma once

#include <cstdint>

#include "datapath/offload/checksum.hpp"

namespace wwan::offload {

inline constexpr std::uint8_t kIpProtoTcp = 6;
inline constexpr std::uint8_t kIpProtoUdp = 17;
inline constexpr std::size_t kIpv4MinHeaderSize = 20;
inline constexpr std::size_t kIpv6HeaderSize = 40;
inline constexpr std::size_t kTcpMinHeaderSize = 20;
inline constexpr std::size_t kUdpHeaderSize = 8;
inline constexpr std::uint32_t kIpv4MaxTotalLength = 0xFFFF;

// TCP flag bits (byte 13 of the TCP header; RFC 9293 §3.1, RFC 3168 §6.1 for CWR/ECE).
inline constexpr std::uint8_t kTcpFin = 0x01;
inline constexpr std::uint8_t kTcpSyn = 0x02;
inline constexpr std::uint8_t kTcpRst = 0x04;
inline constexpr std::uint8_t kTcpPsh = 0x08;
inline constexpr std::uint8_t kTcpAck = 0x10;
inline constexpr std::uint8_t kTcpUrg = 0x20;
inline constexpr std::uint8_t kTcpEce = 0x40;
inline constexpr std::uint8_t kTcpCwr = 0x80;

enum class L4Parse : std::uint8_t {
  Ok,
  NotIp,                 // empty, or the version nibble is neither 4 nor 6
  IpHeaderTruncated,     // shorter than the IP header (IHL < 5 counts here too)
  IpLengthMismatch,      // IPv4 Total Length / IPv6 Payload Length disagrees with the bytes present
  Fragment,              // IPv4 MF set or a fragment offset: no L4 header to speak of
  Ipv6ExtensionHeaders,  // IPv6 Next Header is neither TCP nor UDP (an extension header or else)
  NotTcpOrUdp,           // IPv4 protocol other than TCP/UDP
  L4HeaderTruncated,     // TCP data offset < 5 or past the packet; UDP header past the packet
  UdpLengthMismatch,     // UDP Length disagrees with the IP payload length
};

const char* to_string(L4Parse reason);

struct L4Packet {
  Bytes packet;                   // the whole IP packet
  std::uint8_t version = 0;       // 4 or 6
  std::uint8_t protocol = 0;      // kIpProtoTcp or kIpProtoUdp
  std::uint32_t ip_header_length = 0;
  std::uint32_t l4_header_length = 0;
  std::uint32_t payload_length = 0;

  std::uint32_t l4_offset() const { return ip_header_length; }
  std::uint32_t headers_length() const { return ip_header_length + l4_header_length; }
  std::uint32_t l4_length() const { return l4_header_length + payload_length; }
  const std::uint8_t* ip() const { return packet.data(); }
  const std::uint8_t* l4() const { return packet.data() + ip_header_length; }
  Bytes payload() const { return packet.subspan(headers_length()); }
  Bytes source() const { return version == 4 ? packet.subspan(12, 4) : packet.subspan(8, 16); }
  Bytes destination() const { return version == 4 ? packet.subspan(16, 4) : packet.subspan(24, 16); }
  bool tcp() const { return protocol == kIpProtoTcp; }
};

// `packet` must hold exactly the IP packet (the RX path trims link-layer padding first): its
// stated length must equal packet.size().
L4Parse parse_l4(Bytes packet, L4Packet& out);

// The TCP/UDP checksum of `p` verifies (pseudo-header + L4 header + payload sums to 0xFFFF).
inline bool l4_checksum_ok(const L4Packet& p) {
  csum::Sum s = csum::pseudo_header(p.source(), p.destination(), p.protocol, p.l4_length());
  s = csum::accumulate(p.packet.subspan(p.l4_offset()), s);
  return csum::verifies(s);
}

// The IPv4 header checksum verifies (always true for IPv6, which has none).
inline bool ip_checksum_ok(const L4Packet& p) {
  return p.version != 4 || csum::verifies(csum::accumulate(p.packet.first(p.ip_header_length)));
}

}  // namespace wwan::offload
