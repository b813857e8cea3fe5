// Ethernet and IP helpers for the NCM / MBIM data path: pure functions over untrusted bytes.
//
// Why these exist (../shared/reference/anchors.md §1.9 and §5):
//   - An NCM function carries Ethernet frames, but the host side of wwan-dp is a TUN device, which
//     is L3 and NOARP. The kernel therefore never sees the modem's ARP requests or its IPv6
//     Neighbour Solicitations, and never answers them. A modem that gets no answer stops
//     forwarding: the Huawei E3372 ARPs the host before it forwards anything, and cdc_mbim answers
//     NS itself because "some devices ... require Neighbor Advertisement replies" [#12]. So
//     wwan-dp answers ARP and NS itself (answer_arp, answer_neighbour_solicitation).
//   - TX frames need a destination MAC. The modem's MAC is learned from what it sends
//     (ModemMacLearner): many Huawei sticks use the fixed 00:1e:10:1f:00:00, and the Sierra EM7345
//     in NCM mode sends ff:ff:ff:ff:ff:ff as its *source* [#12].
//   - Datagrams can carry trailing bytes past the IP packet: Ethernet pads its payload to 46 bytes,
//     and the Vodafone K5160 pads even inside MBIM IP sessions [#13]. trim_to_ip_length cuts them
//     off before GRO coalescing and the TUN write.
//   - MBIM IP sessions can carry datagrams that are not IP at all: the K5160 sent an ARP request
//     "minus the ethernet header" in an IPS session [#11]. classify_mbim_datagram drops and counts
//     them, as cdc_mbim does.
//
// Rules that hold for every function here: input is untrusted; nothing is read before its bounds
// were checked with ntb::fits (64-bit, cannot wrap); nothing allocates; nothing throws. Everything
// on the wire here is big-endian (network order), unlike the NTB headers around it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "datapath/ntb_wire.hpp"

namespace wwan::eth {

using Bytes = ntb::Bytes;
using MutableBytes = ntb::MutableBytes;
using ntb::fits;

// ---- sizes (bytes) and numbers ----------------------------------------------------------------
inline constexpr std::size_t kEthernetHeaderSize = ntb::kEthernetHeaderSize;  // dst, src, EtherType
inline constexpr std::size_t kVlanTagSize = 4;          // IEEE 802.1Q: TPID 0x8100 + TCI
inline constexpr std::size_t kEthernetMinFrameSize = 60;  // IEEE 802.3 minimum without the FCS
inline constexpr std::size_t kArpIpv4Size = 28;         // RFC 826 packet for Ethernet + IPv4
inline constexpr std::size_t kIpv4MinHeaderSize = 20;   // RFC 791: IHL 5
inline constexpr std::size_t kIpv6HeaderSize = 40;      // RFC 8200 §3
inline constexpr std::size_t kNdMessageSize = 24;       // RFC 4861 §4.3/§4.4: NS and NA without options
inline constexpr std::size_t kNdLinkLayerOptionSize = 8;  // RFC 4861 §4.6.1 for Ethernet (length 1)

// An ARP reply is 14 + 28 = 42 bytes, zero-padded to the 60-byte IEEE 802.3 minimum. CDC NCM 1.0
// sets no minimum datagram size and Linux cdc_ncm puts the 42-byte frame into the NTB as it is;
// we pad anyway because the modem's side of an NCM link is an Ethernet stack that may treat a
// frame below the 802.3 minimum as a runt, and the padding is harmless to every receiver (RFC 826
// lengths are explicit; trailing bytes are ignored, as the Linux ARP code does). No device is
// known to need it yet: if one chokes on 60-byte replies, this becomes a quirk row.
inline constexpr std::size_t kArpReplyFrameSize = kEthernetMinFrameSize;  // 60
// A Neighbour Advertisement with one Target Link-Layer Address option.
inline constexpr std::size_t kNeighbourAdvertisementFrameSize =
    kEthernetHeaderSize + kIpv6HeaderSize + kNdMessageSize + kNdLinkLayerOptionSize;  // 86

// EtherTypes (IEEE 802 numbers; values below 0x0600 are IEEE 802.3 length fields, not types).
inline constexpr std::uint16_t kEtherTypeIpv4 = 0x0800;
inline constexpr std::uint16_t kEtherTypeArp = 0x0806;
inline constexpr std::uint16_t kEtherTypeVlan = 0x8100;  // IEEE 802.1Q C-tag
inline constexpr std::uint16_t kEtherTypeIpv6 = 0x86DD;

inline constexpr std::uint8_t kIpProtocolIcmpv6 = 58;     // IANA protocol number
inline constexpr std::uint8_t kNdHopLimit = 255;          // RFC 4861 §7.1.1: proves on-link origin
inline constexpr std::uint8_t kIcmpv6NeighbourSolicitation = 135;
inline constexpr std::uint8_t kIcmpv6NeighbourAdvertisement = 136;
inline constexpr std::uint8_t kNdOptionSourceLinkLayerAddress = 1;  // RFC 4861 §4.6.1
inline constexpr std::uint8_t kNdOptionTargetLinkLayerAddress = 2;

// ---- big-endian access --------------------------------------------------------------------------
// Precondition for all of them: the caller has checked fits(buf.size(), off, N).
constexpr std::uint16_t load_be16(Bytes buf, std::size_t off) {
  return static_cast<std::uint16_t>((buf[off] << 8) | buf[off + 1]);
}
constexpr std::uint32_t load_be32(Bytes buf, std::size_t off) {
  return (std::uint32_t{buf[off]} << 24) | (std::uint32_t{buf[off + 1]} << 16) |
         (std::uint32_t{buf[off + 2]} << 8) | std::uint32_t{buf[off + 3]};
}
constexpr void store_be16(MutableBytes buf, std::size_t off, std::uint16_t v) {
  buf[off] = static_cast<std::uint8_t>(v >> 8);
  buf[off + 1] = static_cast<std::uint8_t>(v);
}
constexpr void store_be32(MutableBytes buf, std::size_t off, std::uint32_t v) {
  buf[off] = static_cast<std::uint8_t>(v >> 24);
  buf[off + 1] = static_cast<std::uint8_t>(v >> 16);
  buf[off + 2] = static_cast<std::uint8_t>(v >> 8);
  buf[off + 3] = static_cast<std::uint8_t>(v);
}

// ---- addresses -------------------------------------------------------------------------------------

// "aa:bb:cc:dd:ee:ff" and a terminating NUL, in a fixed buffer so that formatting never allocates.
struct MacString {
  std::array<char, 18> chars{};
  const char* c_str() const { return chars.data(); }
  std::string_view view() const { return {chars.data(), chars.size() - 1}; }
};

// An IEEE 802 MAC-48 address in transmission order.
struct MacAddress {
  std::array<std::uint8_t, 6> bytes{};

  static constexpr MacAddress broadcast() { return {{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}}; }
  // Precondition: fits(buf.size(), off, 6).
  static constexpr MacAddress load(Bytes buf, std::size_t off) {
    MacAddress m;
    for (std::size_t i = 0; i < m.bytes.size(); ++i) m.bytes[i] = buf[off + i];
    return m;
  }

  // The I/G bit (IEEE 802-2014 §8.2): group address. The broadcast address is a group address.
  constexpr bool is_multicast() const { return (bytes[0] & 0x01) != 0; }
  constexpr bool is_broadcast() const { return *this == broadcast(); }
  constexpr bool is_zero() const { return *this == MacAddress{}; }
  // An address a frame can be sent to and that names exactly one station.
  constexpr bool is_unicast() const { return !is_multicast() && !is_zero(); }

  friend constexpr bool operator==(const MacAddress&, const MacAddress&) = default;
};

// Lower-case hex, colon separated: the form `ip link` prints, used in logs and JSON.
MacString to_string(const MacAddress& mac);

// An IPv4 address as the four bytes on the wire (network order): 10.0.0.2 is {{10, 0, 0, 2}}.
// A byte array rather than a uint32_t so that no caller has to guess the byte order.
struct Ipv4Address {
  std::array<std::uint8_t, 4> bytes{};
  // Precondition: fits(buf.size(), off, 4).
  static constexpr Ipv4Address load(Bytes buf, std::size_t off) {
    return {{buf[off], buf[off + 1], buf[off + 2], buf[off + 3]}};
  }
  friend constexpr bool operator==(const Ipv4Address&, const Ipv4Address&) = default;
};

// An IPv6 address as the sixteen bytes on the wire.
struct Ipv6Address {
  std::array<std::uint8_t, 16> bytes{};
  // Precondition: fits(buf.size(), off, 16).
  static constexpr Ipv6Address load(Bytes buf, std::size_t off) {
    Ipv6Address a;
    for (std::size_t i = 0; i < a.bytes.size(); ++i) a.bytes[i] = buf[off + i];
    return a;
  }
  // ff02::1, the link-local all-nodes group (RFC 4291 §2.7.1).
  static constexpr Ipv6Address all_nodes() { return {{0xFF, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}}; }

  constexpr bool is_unspecified() const { return *this == Ipv6Address{}; }  // :: (RFC 4291 §2.5.2)
  constexpr bool is_multicast() const { return bytes[0] == 0xFF; }          // ff00::/8 (RFC 4291 §2.7)
  friend constexpr bool operator==(const Ipv6Address&, const Ipv6Address&) = default;
};

// The solicited-node multicast group of `a`: ff02::1:ff00:0/104 + the low 24 bits of `a`
// (RFC 4291 §2.7.1). An NS for an address goes there (RFC 4861 §7.2.2).
constexpr Ipv6Address solicited_node_multicast(const Ipv6Address& a) {
  return {{0xFF, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xFF, a.bytes[13], a.bytes[14], a.bytes[15]}};
}

// The Ethernet group address an IPv6 multicast packet is sent to: 33:33 + the low 32 bits of the
// group (RFC 2464 §7).
constexpr MacAddress ipv6_multicast_mac(const Ipv6Address& group) {
  return {{0x33, 0x33, group.bytes[12], group.bytes[13], group.bytes[14], group.bytes[15]}};
}

// ---- Ethernet ------------------------------------------------------------------------------------

// One received frame, parsed. `payload` is a view into the input: no bytes are copied.
struct EthernetFrame {
  MacAddress destination;
  MacAddress source;
  std::uint16_t ethertype;               // after the VLAN tag, if there was one
  std::optional<std::uint16_t> vlan_id;  // 802.1Q VID (12 bits) when the frame was tagged
  std::size_t header_size;               // 14, or 18 with a VLAN tag
  Bytes payload;                         // everything after the header, padding included
};

// nullopt when the frame is shorter than its header (14 bytes, or 18 with an 802.1Q tag).
// One 802.1Q tag is skipped and its VID recorded: modems do not tag (cdc_mbim's VLAN-per-session
// mapping exists only inside the Linux netdev, never on the wire), but a tagged frame must not be
// read as an unknown EtherType with its payload four bytes off. A second tag (QinQ) is not
// unwrapped: the frame comes back with ethertype 0x8100 and the caller drops it as unknown.
// EtherType values below 0x0600 (802.3 length fields) are returned as they are, for the same fate.
std::optional<EthernetFrame> parse_ethernet(Bytes frame);

// Writes an untagged Ethernet header (no FCS: NCM does not carry one) to the start of `out`.
// Returns the bytes written, kEthernetHeaderSize, or 0 when `out` is shorter than that.
[[nodiscard]] std::size_t write_ethernet_header(MutableBytes out, const MacAddress& destination,
                                                const MacAddress& source, std::uint16_t ethertype);

// Learns the modem's MAC address from the source addresses of the frames it sends, for the
// destination of the frames wwan-dp sends to it.
//
// Only unicast sources are learned. A group (multicast or broadcast) source is invalid in IEEE 802
// and useless as a destination: the Sierra EM7345 in NCM mode sends ff:ff:ff:ff:ff:ff as its
// source, so for it nothing is ever learned and destination() stays broadcast: on the
// point-to-point USB link the only destination sure to be accepted by a modem whose own address
// is unknown. An all-zero source is not learned either.
// The fixed Huawei 00:1e:10:1f:00:00 is an ordinary unicast address and is learned like any other.
//
// After the first address is learned, a different unicast source replaces it (the modem rebooted,
// switched firmware mode, or a second function answers) and is counted in changes(): a modem
// whose MAC moves is worth a log line.
//
// Not thread-safe: the RX loop owns it and hands destination() to TX by its own means.
class ModemMacLearner {
 public:
  void observe(const MacAddress& source) {
    if (learned_ && source == *learned_) return;  // the common case: one compare per frame
    if (!source.is_unicast()) {
      ++unusable_sources_;
      return;
    }
    if (learned_) ++changes_;
    learned_ = source;
  }

  // The MAC to put into the destination of TX frames: the learned one, else broadcast.
  MacAddress destination() const { return learned_.value_or(MacAddress::broadcast()); }
  std::optional<MacAddress> learned() const { return learned_; }
  // How often the learned address was replaced by a different one.
  std::uint64_t changes() const { return changes_; }
  // Frames whose source was a group or all-zero address (not learned; the EM7345 quirk).
  std::uint64_t unusable_sources() const { return unusable_sources_; }

 private:
  std::optional<MacAddress> learned_;
  std::uint64_t changes_ = 0;
  std::uint64_t unusable_sources_ = 0;
};

// ---- IP ----------------------------------------------------------------------------------------

enum class IpClass : std::uint8_t {
  Ipv4,       // version 4 and at least the 20-byte fixed header
  Ipv6,       // version 6 and at least the 40-byte fixed header
  NotIp,      // version nibble neither 4 nor 6 (the K5160's header-less ARP starts with 0x00)
  Truncated,  // empty, or version 4/6 but shorter than that version's fixed header
};

const char* to_string(IpClass c);

// Looks at the version nibble and whether the fixed header is there; nothing else.
IpClass classify_ip(Bytes datagram);

// The IP packet at the start of `datagram`, without the bytes that follow it (Ethernet padding to
// 46 bytes of payload, the K5160's padding inside MBIM IPS [#13]). The length is the IPv4 Total
// Length or 40 + the IPv6 Payload Length. nullopt when the datagram is not IPv4/IPv6, is shorter
// than its fixed header, has IHL < 5, options past the data, a Total Length below the header, or a
// stated length past the data. An IPv6 Payload Length of 0 is taken literally: jumbograms
// (RFC 2675) need a link MTU above 65575, which no USB modem has.
std::optional<Bytes> trim_to_ip_length(Bytes datagram);

// Named counters of classify_mbim_datagram. The names are the export names; they keep their meaning.
struct IpCounters {
  std::uint64_t rx_ipv4 = 0;             // delivered
  std::uint64_t rx_ipv6 = 0;             // delivered
  std::uint64_t rx_padding_trimmed = 0;  // delivered, after trailing bytes were cut off (a quirk, counted)
  std::uint64_t rx_not_ip = 0;           // dropped: version nibble not 4/6 (K5160 ARP in IPS [#11])
  std::uint64_t rx_truncated_ip = 0;     // dropped: empty or shorter than the fixed IP header
  std::uint64_t rx_bad_ip_length = 0;    // dropped: IHL < 5, Total Length below the header, or a
                                         // stated length past the end of the datagram
};

// One datagram of an MBIM IPS session: the IP packet to hand to TUN (trimmed), or nullopt with
// exactly one drop counter bumped. cdc_mbim drops the same datagrams (nibble not 4/6) but does not
// count them by reason. NCM payloads of EtherType IPv4/IPv6 can go through the same function.
std::optional<Bytes> classify_mbim_datagram(Bytes datagram, IpCounters& counters);

// ---- checksums (RFC 1071) ----------------------------------------------------------------------
//
// Sums are kept as folded 16-bit one's complement values. One's complement addition is
// associative and commutative, so partial sums of pieces can be added in any order, with one
// rule: every piece but the last must have an even length (RFC 1071 §2(B): an odd byte is the
// high half of a word padded with zero, which is only right at the end).

constexpr std::uint16_t fold_checksum(std::uint64_t sum) {
  while (sum > 0xFFFF) sum = (sum & 0xFFFF) + (sum >> 16);  // end-around carry
  return static_cast<std::uint16_t>(sum);
}

// The one's complement sum of `data` as big-endian 16-bit words, added to `initial`.
// A 64-bit accumulator cannot overflow before 2^48 words, far beyond any span here.
constexpr std::uint16_t ones_complement_sum(Bytes data, std::uint16_t initial = 0) {
  std::uint64_t sum = initial;
  std::size_t i = 0;
  for (; i + 1 < data.size(); i += 2) sum += load_be16(data, i);
  if (i < data.size()) sum += static_cast<std::uint64_t>(data[i]) << 8;
  return fold_checksum(sum);
}

// The Internet checksum of `data`: the complement of its one's complement sum. Computing it over
// data that already holds a correct checksum gives 0, which is how it is verified.
constexpr std::uint16_t internet_checksum(Bytes data) {
  return static_cast<std::uint16_t>(~ones_complement_sum(data));
}

// The IPv6 pseudo-header (RFC 8200 §8.1, formerly RFC 2460 §8.1): source, destination,
// upper-layer packet length (32 bits) and next header (zero-padded to 32 bits), as a partial sum.
std::uint16_t ipv6_pseudo_header_sum(const Ipv6Address& source, const Ipv6Address& destination,
                                     std::uint32_t upper_layer_length, std::uint8_t next_header);

// The checksum of an upper-layer message (ICMPv6, UDP, TCP) carried in IPv6: pseudo-header +
// message. To compute it, zero the message's checksum field first; to verify, run it over the
// received message: a correct one gives 0. (A computed UDP checksum of 0 is sent as 0xFFFF,
// RFC 8200 §8.1; that is the caller's business.)
std::uint16_t ipv6_upper_layer_checksum(const Ipv6Address& source, const Ipv6Address& destination,
                                        std::uint8_t next_header, Bytes message);

// The IPv4 header checksum (RFC 791 §3.1) over `header` (IHL * 4 bytes) with the checksum field
// (bytes 10-11) taken as zero, so the same call fills it in or checks it against the stored one.
// Precondition: header.size() >= 20; a shorter span returns 0 without reading it.
std::uint16_t ipv4_header_checksum(Bytes header);

// ---- responders ----------------------------------------------------------------------------------
//
// Each takes one received Ethernet frame (as parse_ethernet sees it, trailing padding allowed)
// and, when the frame asks something wwan-dp must answer, writes the complete reply frame to the
// start of `out` and returns its length. nullopt means "not ours to answer" or "malformed"; the
// caller drops the frame in both cases. `out` must not overlap the request. Tagged (802.1Q)
// requests are not answered: the reply would have to carry the tag, and no modem tags.

// ARP (RFC 826) for our IPv4 address. Answered: a request (op 1) for Ethernet + IPv4 (htype 1,
// ptype 0x0800, hlen 6, plen 4) whose target protocol address is `our_ipv4`, including an
// RFC 5227 probe (sender IP 0.0.0.0, the modem checking that our address is in use: it is, so
// we defend it, as Linux does). Not answered: replies, requests for other addresses, gratuitous
// ARP (sender IP == target IP), other hardware or protocol types.
// The reply goes to the requester's sender hardware address, as Linux arp_process does, and is
// kArpReplyFrameSize (60) bytes: 42 of ARP, then zero padding (see kArpReplyFrameSize). `out`
// needs 60 bytes.
std::optional<std::size_t> answer_arp(Bytes request_frame, const Ipv4Address& our_ipv4,
                                      const MacAddress& our_mac, MutableBytes out);

// IPv6 Neighbour Solicitation (RFC 4861 §4.3) for one of `our_addresses` (include our link-local
// address in the list if the modem may ask for it). The solicitation is validated as RFC 4861
// §7.1.1 demands: Hop Limit 255, correct ICMPv6 checksum, code 0, ICMP length >= 24, target not
// multicast, every option of nonzero length, and for an unspecified (DAD) source a solicited-node
// destination and no Source Link-Layer Address option. Also required: the IPv6 destination is the
// target's solicited-node group or one of our addresses (what the kernel's IP layer would have
// accepted), and the ICMPv6 message follows the fixed header directly (no extension headers:
// no modem puts any on an NS).
//
// The reply is a Neighbour Advertisement (RFC 4861 §4.4, §7.2.4) of
// kNeighbourAdvertisementFrameSize (86) bytes: Router flag when `router` (we forward, e.g. on
// OpenWrt), Solicited flag unless the source was unspecified, Override flag always (our own
// address, and we include the TLLA option), the solicited target, and a Target Link-Layer Address
// option with `our_mac`. IPv6 source = the target, destination = the solicitation's source, or
// ff02::1 when that was :: (DAD). Hop Limit 255. Ethernet destination = the solicitation frame's
// source MAC, or 33:33:00:00:00:01 for ff02::1 (RFC 2464 §7). `out` needs 86 bytes.
//
// cdc_mbim (do_neigh_solicit) answers only a unicast source asking via a solicited-node group,
// for any target, and clears Override; this answers every valid NS for our own addresses and sets
// Override as RFC 4861 §7.2.4 asks, as a kernel with a real netdev would.
std::optional<std::size_t> answer_neighbour_solicitation(Bytes frame,
                                                         std::span<const Ipv6Address> our_addresses,
                                                         const MacAddress& our_mac, bool router,
                                                         MutableBytes out);

}  // namespace wwan::eth
