// Ethernet and IP helpers for the NCM / MBIM data path. See ethernet.hpp for the why.
#include "datapath/ethernet.hpp"

#include <algorithm>

namespace wwan::eth {
namespace {

// ---- field offsets (bytes) -----------------------------------------------------------------
// Ethernet II: destination, source, EtherType; 802.1Q puts TPID + TCI before the EtherType.
constexpr std::size_t kEthDestinationOffset = 0;
constexpr std::size_t kEthSourceOffset = 6;
constexpr std::size_t kEthTypeOffset = 12;
constexpr std::size_t kVlanTciOffset = 14;
constexpr std::size_t kVlanInnerTypeOffset = 16;
constexpr std::uint16_t kVlanIdMask = 0x0FFF;  // TCI = PCP(3) DEI(1) VID(12)

// RFC 826 for htype Ethernet, ptype IPv4: hrd pro hln pln op sha spa tha tpa.
constexpr std::size_t kArpHardwareTypeOffset = 0;
constexpr std::size_t kArpProtocolTypeOffset = 2;
constexpr std::size_t kArpHardwareLengthOffset = 4;
constexpr std::size_t kArpProtocolLengthOffset = 5;
constexpr std::size_t kArpOperationOffset = 6;
constexpr std::size_t kArpSenderHardwareOffset = 8;
constexpr std::size_t kArpSenderProtocolOffset = 14;
constexpr std::size_t kArpTargetHardwareOffset = 18;
constexpr std::size_t kArpTargetProtocolOffset = 24;
constexpr std::uint16_t kArpHardwareEthernet = 1;
constexpr std::uint8_t kArpHardwareLengthEthernet = 6;
constexpr std::uint8_t kArpProtocolLengthIpv4 = 4;
constexpr std::uint16_t kArpOpRequest = 1;
constexpr std::uint16_t kArpOpReply = 2;

// RFC 791 §3.1.
constexpr std::size_t kIpv4TotalLengthOffset = 2;
constexpr std::size_t kIpv4ChecksumOffset = 10;
// RFC 8200 §3.
constexpr std::size_t kIpv6PayloadLengthOffset = 4;
constexpr std::size_t kIpv6NextHeaderOffset = 6;
constexpr std::size_t kIpv6HopLimitOffset = 7;
constexpr std::size_t kIpv6SourceOffset = 8;
constexpr std::size_t kIpv6DestinationOffset = 24;

// RFC 4861 §4.3 / §4.4: type, code, checksum, 32 bits of flags/reserved, target, options.
constexpr std::size_t kIcmpv6TypeOffset = 0;
constexpr std::size_t kIcmpv6CodeOffset = 1;
constexpr std::size_t kIcmpv6ChecksumOffset = 2;
constexpr std::size_t kNdFlagsOffset = 4;
constexpr std::size_t kNdTargetOffset = 8;
constexpr std::size_t kNdOptionsOffset = kNdMessageSize;
constexpr std::size_t kNdOptionUnit = 8;  // option Length counts units of 8 bytes (§4.6)
constexpr std::uint8_t kNaFlagRouter = 0x80;
constexpr std::uint8_t kNaFlagSolicited = 0x40;
constexpr std::uint8_t kNaFlagOverride = 0x20;

constexpr std::uint8_t ip_version(Bytes datagram) { return static_cast<std::uint8_t>(datagram[0] >> 4); }

void store_mac(MutableBytes out, std::size_t off, const MacAddress& mac) {
  std::copy(mac.bytes.begin(), mac.bytes.end(), out.begin() + static_cast<std::ptrdiff_t>(off));
}
template <std::size_t N>
void store_bytes(MutableBytes out, std::size_t off, const std::array<std::uint8_t, N>& bytes) {
  std::copy(bytes.begin(), bytes.end(), out.begin() + static_cast<std::ptrdiff_t>(off));
}

bool contains(std::span<const Ipv6Address> set, const Ipv6Address& a) {
  return std::find(set.begin(), set.end(), a) != set.end();
}

// The options of an NS, from kNdOptionsOffset to the end of the ICMPv6 message. RFC 4861 §7.1.1:
// every option must have a nonzero length (a zero length would loop forever) and fit. Unknown
// options are ignored (§4.6). Returns nullopt for malformed options, else whether a Source
// Link-Layer Address option was present.
std::optional<bool> scan_nd_options(Bytes icmp) {
  bool source_link_layer = false;
  std::size_t off = kNdOptionsOffset;
  while (off < icmp.size()) {
    if (!fits(icmp.size(), off, 2)) return std::nullopt;
    const std::uint8_t type = icmp[off];
    const std::size_t length = std::size_t{icmp[off + 1]} * kNdOptionUnit;
    if (length == 0 || !fits(icmp.size(), off, length)) return std::nullopt;
    if (type == kNdOptionSourceLinkLayerAddress) source_link_layer = true;
    off += length;
  }
  return source_link_layer;
}

}  // namespace

// ---- addresses ---------------------------------------------------------------------------------

MacString to_string(const MacAddress& mac) {
  static constexpr char kHex[] = "0123456789abcdef";
  MacString s;
  std::size_t pos = 0;
  for (std::size_t i = 0; i < mac.bytes.size(); ++i) {
    if (i != 0) s.chars[pos++] = ':';
    s.chars[pos++] = kHex[mac.bytes[i] >> 4];
    s.chars[pos++] = kHex[mac.bytes[i] & 0x0F];
  }
  s.chars[pos] = '\0';
  return s;
}

// ---- Ethernet ----------------------------------------------------------------------------------

std::optional<EthernetFrame> parse_ethernet(Bytes frame) {
  if (frame.size() < kEthernetHeaderSize) return std::nullopt;
  EthernetFrame f{
      .destination = MacAddress::load(frame, kEthDestinationOffset),
      .source = MacAddress::load(frame, kEthSourceOffset),
      .ethertype = load_be16(frame, kEthTypeOffset),
      .vlan_id = std::nullopt,
      .header_size = kEthernetHeaderSize,
      .payload = {},
  };
  if (f.ethertype == kEtherTypeVlan) {
    if (!fits(frame.size(), kVlanTciOffset, kVlanTagSize)) return std::nullopt;
    f.vlan_id = static_cast<std::uint16_t>(load_be16(frame, kVlanTciOffset) & kVlanIdMask);
    f.ethertype = load_be16(frame, kVlanInnerTypeOffset);
    f.header_size = kEthernetHeaderSize + kVlanTagSize;
  }
  f.payload = frame.subspan(f.header_size);
  return f;
}

std::size_t write_ethernet_header(MutableBytes out, const MacAddress& destination,
                                  const MacAddress& source, std::uint16_t ethertype) {
  if (out.size() < kEthernetHeaderSize) return 0;
  store_mac(out, kEthDestinationOffset, destination);
  store_mac(out, kEthSourceOffset, source);
  store_be16(out, kEthTypeOffset, ethertype);
  return kEthernetHeaderSize;
}

// ---- IP ----------------------------------------------------------------------------------------

const char* to_string(IpClass c) {
  switch (c) {
    case IpClass::Ipv4: return "ipv4";
    case IpClass::Ipv6: return "ipv6";
    case IpClass::NotIp: return "not_ip";
    case IpClass::Truncated: return "truncated";
  }
  return "unknown";
}

IpClass classify_ip(Bytes datagram) {
  if (datagram.empty()) return IpClass::Truncated;
  switch (ip_version(datagram)) {
    case 4: return datagram.size() >= kIpv4MinHeaderSize ? IpClass::Ipv4 : IpClass::Truncated;
    case 6: return datagram.size() >= kIpv6HeaderSize ? IpClass::Ipv6 : IpClass::Truncated;
    default: return IpClass::NotIp;
  }
}

std::optional<Bytes> trim_to_ip_length(Bytes datagram) {
  switch (classify_ip(datagram)) {
    case IpClass::Ipv4: {
      // IHL counts 32-bit words; below 5 there is no room for the fixed header (RFC 791 §3.1).
      const std::uint64_t header_length = std::uint64_t{datagram[0] & 0x0Fu} * 4;
      if (header_length < kIpv4MinHeaderSize || !fits(datagram.size(), 0, header_length)) return std::nullopt;
      const std::uint64_t total_length = load_be16(datagram, kIpv4TotalLengthOffset);
      if (total_length < header_length || !fits(datagram.size(), 0, total_length)) return std::nullopt;
      return datagram.first(static_cast<std::size_t>(total_length));
    }
    case IpClass::Ipv6: {
      const std::uint64_t payload_length = load_be16(datagram, kIpv6PayloadLengthOffset);
      if (!fits(datagram.size(), kIpv6HeaderSize, payload_length)) return std::nullopt;
      return datagram.first(static_cast<std::size_t>(kIpv6HeaderSize + payload_length));
    }
    case IpClass::NotIp:
    case IpClass::Truncated: break;
  }
  return std::nullopt;
}

std::optional<Bytes> classify_mbim_datagram(Bytes datagram, IpCounters& counters) {
  const IpClass c = classify_ip(datagram);
  switch (c) {
    case IpClass::NotIp: ++counters.rx_not_ip; return std::nullopt;
    case IpClass::Truncated: ++counters.rx_truncated_ip; return std::nullopt;
    case IpClass::Ipv4:
    case IpClass::Ipv6: break;
  }
  const std::optional<Bytes> packet = trim_to_ip_length(datagram);
  if (!packet) {
    ++counters.rx_bad_ip_length;
    return std::nullopt;
  }
  if (packet->size() < datagram.size()) ++counters.rx_padding_trimmed;
  ++(c == IpClass::Ipv4 ? counters.rx_ipv4 : counters.rx_ipv6);
  return packet;
}

// ---- checksums -----------------------------------------------------------------------------------

std::uint16_t ipv6_pseudo_header_sum(const Ipv6Address& source, const Ipv6Address& destination,
                                     std::uint32_t upper_layer_length, std::uint8_t next_header) {
  std::uint64_t sum = ones_complement_sum(source.bytes);
  sum += ones_complement_sum(destination.bytes);
  sum += upper_layer_length >> 16;
  sum += upper_layer_length & 0xFFFF;
  sum += next_header;  // three zero bytes, then Next Header: the low half of the last word
  return fold_checksum(sum);
}

std::uint16_t ipv6_upper_layer_checksum(const Ipv6Address& source, const Ipv6Address& destination,
                                        std::uint8_t next_header, Bytes message) {
  // The pseudo-header length field is 32 bits; a span longer than that cannot be an IPv6 payload
  // (even a jumbogram), so truncating the size here changes no result that could be valid.
  const auto length = static_cast<std::uint32_t>(message.size());
  const std::uint16_t pseudo = ipv6_pseudo_header_sum(source, destination, length, next_header);
  return static_cast<std::uint16_t>(~ones_complement_sum(message, pseudo));
}

std::uint16_t ipv4_header_checksum(Bytes header) {
  if (header.size() < kIpv4MinHeaderSize) return 0;
  const std::uint16_t before = ones_complement_sum(header.first(kIpv4ChecksumOffset));
  const std::uint16_t after = ones_complement_sum(header.subspan(kIpv4ChecksumOffset + 2), before);
  return static_cast<std::uint16_t>(~after);
}

// ---- responders ----------------------------------------------------------------------------------

std::optional<std::size_t> answer_arp(Bytes request_frame, const Ipv4Address& our_ipv4,
                                      const MacAddress& our_mac, MutableBytes out) {
  if (out.size() < kArpReplyFrameSize) return std::nullopt;
  const std::optional<EthernetFrame> eth = parse_ethernet(request_frame);
  if (!eth || eth->vlan_id || eth->ethertype != kEtherTypeArp) return std::nullopt;
  // Anything past 28 bytes is Ethernet padding (requests arrive padded to 60 bytes).
  const Bytes arp = eth->payload;
  if (arp.size() < kArpIpv4Size) return std::nullopt;
  if (load_be16(arp, kArpHardwareTypeOffset) != kArpHardwareEthernet ||
      load_be16(arp, kArpProtocolTypeOffset) != kEtherTypeIpv4 ||
      arp[kArpHardwareLengthOffset] != kArpHardwareLengthEthernet ||
      arp[kArpProtocolLengthOffset] != kArpProtocolLengthIpv4 ||
      load_be16(arp, kArpOperationOffset) != kArpOpRequest) {
    return std::nullopt;
  }
  const MacAddress sender_mac = MacAddress::load(arp, kArpSenderHardwareOffset);
  const Ipv4Address sender_ip = Ipv4Address::load(arp, kArpSenderProtocolOffset);
  const Ipv4Address target_ip = Ipv4Address::load(arp, kArpTargetProtocolOffset);
  if (target_ip != our_ipv4) return std::nullopt;
  // Gratuitous ARP (RFC 5227 §2.3, "ARP Announcement"): the sender announces its own address.
  // There is nothing to answer; with the sender claiming *our* address it is a conflict the
  // control plane must sort out, not something to argue about on the wire.
  if (sender_ip == target_ip) return std::nullopt;

  const MutableBytes reply = out.first(kArpReplyFrameSize);
  std::fill(reply.begin(), reply.end(), std::uint8_t{0});  // also the padding to 60 bytes
  const std::size_t header = write_ethernet_header(reply, sender_mac, our_mac, kEtherTypeArp);
  const MutableBytes a = reply.subspan(header, kArpIpv4Size);
  store_be16(a, kArpHardwareTypeOffset, kArpHardwareEthernet);
  store_be16(a, kArpProtocolTypeOffset, kEtherTypeIpv4);
  a[kArpHardwareLengthOffset] = kArpHardwareLengthEthernet;
  a[kArpProtocolLengthOffset] = kArpProtocolLengthIpv4;
  store_be16(a, kArpOperationOffset, kArpOpReply);
  store_mac(a, kArpSenderHardwareOffset, our_mac);
  store_bytes(a, kArpSenderProtocolOffset, our_ipv4.bytes);
  store_mac(a, kArpTargetHardwareOffset, sender_mac);
  store_bytes(a, kArpTargetProtocolOffset, sender_ip.bytes);  // 0.0.0.0 for an RFC 5227 probe
  return reply.size();
}

std::optional<std::size_t> answer_neighbour_solicitation(Bytes frame,
                                                         std::span<const Ipv6Address> our_addresses,
                                                         const MacAddress& our_mac, bool router,
                                                         MutableBytes out) {
  if (out.size() < kNeighbourAdvertisementFrameSize) return std::nullopt;
  const std::optional<EthernetFrame> eth = parse_ethernet(frame);
  if (!eth || eth->vlan_id || eth->ethertype != kEtherTypeIpv6) return std::nullopt;
  // Trimming to the Payload Length drops Ethernet padding and proves the whole packet is there.
  const std::optional<Bytes> ip = trim_to_ip_length(eth->payload);
  if (!ip || ip_version(*ip) != 6) return std::nullopt;
  // Next Header must be ICMPv6 right away; Hop Limit 255 proves the sender is on-link (§7.1.1).
  if ((*ip)[kIpv6NextHeaderOffset] != kIpProtocolIcmpv6 || (*ip)[kIpv6HopLimitOffset] != kNdHopLimit) {
    return std::nullopt;
  }
  const Bytes icmp = ip->subspan(kIpv6HeaderSize);
  if (icmp.size() < kNdMessageSize) return std::nullopt;
  if (icmp[kIcmpv6TypeOffset] != kIcmpv6NeighbourSolicitation || icmp[kIcmpv6CodeOffset] != 0) {
    return std::nullopt;
  }
  const Ipv6Address source = Ipv6Address::load(*ip, kIpv6SourceOffset);
  const Ipv6Address destination = Ipv6Address::load(*ip, kIpv6DestinationOffset);
  const Ipv6Address target = Ipv6Address::load(icmp, kNdTargetOffset);
  if (target.is_multicast() || !contains(our_addresses, target)) return std::nullopt;
  if (source.is_multicast()) return std::nullopt;  // RFC 4291 §2.7: never a source address
  if (destination != solicited_node_multicast(target) && !contains(our_addresses, destination)) {
    return std::nullopt;
  }
  if (ipv6_upper_layer_checksum(source, destination, kIpProtocolIcmpv6, icmp) != 0) return std::nullopt;
  const std::optional<bool> has_source_link_layer = scan_nd_options(icmp);
  if (!has_source_link_layer) return std::nullopt;
  // Duplicate Address Detection (RFC 4862 §5.4.2): from ::, to the solicited-node group, with no
  // Source Link-Layer Address option (RFC 4861 §7.1.1).
  const bool dad = source.is_unspecified();
  if (dad && (destination != solicited_node_multicast(target) || *has_source_link_layer)) {
    return std::nullopt;
  }

  // RFC 4861 §7.2.4: to the soliciting node, or to all-nodes with Solicited clear after DAD.
  const Ipv6Address reply_destination = dad ? Ipv6Address::all_nodes() : source;
  const MacAddress reply_mac = dad ? ipv6_multicast_mac(reply_destination) : eth->source;
  const MutableBytes reply = out.first(kNeighbourAdvertisementFrameSize);
  std::fill(reply.begin(), reply.end(), std::uint8_t{0});
  const std::size_t header = write_ethernet_header(reply, reply_mac, our_mac, kEtherTypeIpv6);

  const MutableBytes ip6 = reply.subspan(header, kIpv6HeaderSize);
  ip6[0] = 0x60;  // version 6, traffic class 0, flow label 0
  store_be16(ip6, kIpv6PayloadLengthOffset, kNdMessageSize + kNdLinkLayerOptionSize);
  ip6[kIpv6NextHeaderOffset] = kIpProtocolIcmpv6;
  ip6[kIpv6HopLimitOffset] = kNdHopLimit;
  store_bytes(ip6, kIpv6SourceOffset, target.bytes);
  store_bytes(ip6, kIpv6DestinationOffset, reply_destination.bytes);

  const MutableBytes na = reply.subspan(header + kIpv6HeaderSize);
  na[kIcmpv6TypeOffset] = kIcmpv6NeighbourAdvertisement;
  na[kIcmpv6CodeOffset] = 0;
  na[kNdFlagsOffset] = static_cast<std::uint8_t>((router ? kNaFlagRouter : 0) |
                                                 (dad ? 0 : kNaFlagSolicited) | kNaFlagOverride);
  store_bytes(na, kNdTargetOffset, target.bytes);
  na[kNdOptionsOffset] = kNdOptionTargetLinkLayerAddress;
  na[kNdOptionsOffset + 1] = 1;  // one unit of 8 bytes: type, length, 6-byte MAC
  store_mac(na, kNdOptionsOffset + 2, our_mac);
  store_be16(na, kIcmpv6ChecksumOffset,
             ipv6_upper_layer_checksum(target, reply_destination, kIpProtocolIcmpv6, na));
  return reply.size();
}

}  // namespace wwan::eth
