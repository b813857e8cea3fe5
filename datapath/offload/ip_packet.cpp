#include "datapath/offload/ip_packet.hpp"

namespace wwan::offload {

const char* to_string(L4Parse reason) {
  switch (reason) {
    case L4Parse::Ok: return "ok";
    case L4Parse::NotIp: return "not_ip";
    case L4Parse::IpHeaderTruncated: return "ip_header_truncated";
    case L4Parse::IpLengthMismatch: return "ip_length_mismatch";
    case L4Parse::Fragment: return "fragment";
    case L4Parse::Ipv6ExtensionHeaders: return "ipv6_extension_headers";
    case L4Parse::NotTcpOrUdp: return "not_tcp_or_udp";
    case L4Parse::L4HeaderTruncated: return "l4_header_truncated";
    case L4Parse::UdpLengthMismatch: return "udp_length_mismatch";
  }
  return "?";
}

L4Parse parse_l4(Bytes packet, L4Packet& out) {
  out = L4Packet{};
  out.packet = packet;
  const std::uint64_t size = packet.size();
  if (size == 0) return L4Parse::NotIp;
  const std::uint8_t* b = packet.data();
  const unsigned version = b[0] >> 4;
  std::uint64_t ip_header = 0;
  if (version == 4) {
    if (size < kIpv4MinHeaderSize) return L4Parse::IpHeaderTruncated;
    ip_header = std::uint64_t{b[0]} % 16 * 4;
    if (ip_header < kIpv4MinHeaderSize || ip_header > size) return L4Parse::IpHeaderTruncated;
    if (std::uint64_t{load_be16(b + 2)} != size) return L4Parse::IpLengthMismatch;
    if ((load_be16(b + 6) & 0x3FFF) != 0) return L4Parse::Fragment;  // MF or a fragment offset
    out.protocol = b[9];
    if (out.protocol != kIpProtoTcp && out.protocol != kIpProtoUdp) return L4Parse::NotTcpOrUdp;
  } else if (version == 6) {
    if (size < kIpv6HeaderSize) return L4Parse::IpHeaderTruncated;
    ip_header = kIpv6HeaderSize;
    // A Payload Length of 0 is a jumbogram (RFC 2675) and needs a Hop-by-Hop header: mismatch.
    if (std::uint64_t{load_be16(b + 4)} + kIpv6HeaderSize != size) return L4Parse::IpLengthMismatch;
    out.protocol = b[6];
    if (out.protocol != kIpProtoTcp && out.protocol != kIpProtoUdp) return L4Parse::Ipv6ExtensionHeaders;
  } else {
    return L4Parse::NotIp;
  }
  out.version = static_cast<std::uint8_t>(version);
  const std::uint64_t l4_bytes = size - ip_header;
  std::uint64_t l4_header = 0;
  if (out.protocol == kIpProtoTcp) {
    if (l4_bytes < kTcpMinHeaderSize) return L4Parse::L4HeaderTruncated;
    l4_header = std::uint64_t{b[ip_header + 12]} / 16 * 4;
    if (l4_header < kTcpMinHeaderSize || l4_header > l4_bytes) return L4Parse::L4HeaderTruncated;
  } else {
    if (l4_bytes < kUdpHeaderSize) return L4Parse::L4HeaderTruncated;
    l4_header = kUdpHeaderSize;
    if (std::uint64_t{load_be16(b + ip_header + 4)} != l4_bytes) return L4Parse::UdpLengthMismatch;
  }
  // size <= 2^16 + 40 here (checked against the 16-bit length fields): the casts are exact.
  out.ip_header_length = static_cast<std::uint32_t>(ip_header);
  out.l4_header_length = static_cast<std::uint32_t>(l4_header);
  out.payload_length = static_cast<std::uint32_t>(l4_bytes - l4_header);
  return L4Parse::Ok;
}

}  // namespace wwan::offload
