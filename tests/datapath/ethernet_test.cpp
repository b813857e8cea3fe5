// Ethernet / IP helper tests. The golden frames are written out field by field, and every checksum
// in them was computed outside this code base (a few lines of Python, RFC 1071 folding) and is
// re-checked here by ref_checksum, a naive reference that shares nothing with the library, so a
// misunderstanding of the pseudo-header cannot make both sides agree.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "datapath/ethernet.hpp"

namespace wwan::eth {
namespace {

using Vec = std::vector<std::uint8_t>;

// Hex digits; spaces are ignored so that golden bytes can be grouped by field.
Vec from_hex(const std::string& hex) {
  std::string digits;
  for (char c : hex)
    if (c != ' ') digits.push_back(c);
  Vec out;
  for (std::size_t i = 0; i + 1 < digits.size(); i += 2)
    out.push_back(static_cast<std::uint8_t>(std::stoul(digits.substr(i, 2), nullptr, 16)));
  return out;
}

Vec concat(Vec a, const Vec& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// ---- a reference checksum: RFC 1071 the slow, obvious way -----------------------------------
std::uint16_t ref_checksum(Vec data) {
  if (data.size() % 2 != 0) data.push_back(0);
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i < data.size(); i += 2) {
    sum += static_cast<std::uint32_t>(data[i] << 8 | data[i + 1]);
    sum = (sum & 0xFFFF) + (sum >> 16);
  }
  return static_cast<std::uint16_t>(~sum & 0xFFFF);
}

// RFC 8200 §8.1 pseudo-header, spelled out as bytes, followed by the ICMPv6 message.
std::uint16_t ref_icmpv6_checksum(const Vec& src, const Vec& dst, const Vec& icmp) {
  Vec all = concat(src, dst);
  const auto len = static_cast<std::uint32_t>(icmp.size());
  for (int shift = 24; shift >= 0; shift -= 8) all.push_back(static_cast<std::uint8_t>(len >> shift));
  all.insert(all.end(), {0, 0, 0, 58});
  return ref_checksum(concat(all, icmp));
}

// Offsets within an untagged Ethernet + IPv6 + ICMPv6 frame.
constexpr std::size_t kIp6 = 14;
constexpr std::size_t kIcmp = kIp6 + 40;

// Rewrites the ICMPv6 checksum of an untagged Ethernet/IPv6/ICMPv6 frame after a test changed it.
void fix_icmpv6_checksum(Vec& frame) {
  const std::size_t payload_length = static_cast<std::size_t>(frame[kIp6 + 4] << 8 | frame[kIp6 + 5]);
  const Vec src(frame.begin() + kIp6 + 8, frame.begin() + kIp6 + 24);
  const Vec dst(frame.begin() + kIp6 + 24, frame.begin() + kIp6 + 40);
  Vec icmp(frame.begin() + kIcmp, frame.begin() + static_cast<std::ptrdiff_t>(kIcmp + payload_length));
  icmp[2] = icmp[3] = 0;
  const std::uint16_t c = ref_icmpv6_checksum(src, dst, icmp);
  frame[kIcmp + 2] = static_cast<std::uint8_t>(c >> 8);
  frame[kIcmp + 3] = static_cast<std::uint8_t>(c);
}

// The checksum stored in an ICMPv6 message must verify under the reference as well.
bool ref_icmpv6_verifies(const Vec& frame) {
  const std::size_t payload_length = static_cast<std::size_t>(frame[kIp6 + 4] << 8 | frame[kIp6 + 5]);
  const Vec src(frame.begin() + kIp6 + 8, frame.begin() + kIp6 + 24);
  const Vec dst(frame.begin() + kIp6 + 24, frame.begin() + kIp6 + 40);
  const Vec icmp(frame.begin() + kIcmp, frame.begin() + static_cast<std::ptrdiff_t>(kIcmp + payload_length));
  return ref_icmpv6_checksum(src, dst, icmp) == 0;
}

// Runs `f` over an exactly-sized heap copy of every prefix [0, n) of `bytes`, so that a sanitizer
// build flags any read past the end, and checks that none of them is answered.
template <class F>
void expect_no_prefix_accepted(const Vec& bytes, std::size_t n, F f) {
  for (std::size_t len = 0; len < n; ++len) {
    const Vec prefix(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(len));
    EXPECT_FALSE(f(Bytes(prefix))) << "prefix length " << len;
  }
}

// ---- the cast -------------------------------------------------------------------------------------
constexpr MacAddress kHuaweiModemMac{{0x00, 0x1E, 0x10, 0x1F, 0x00, 0x00}};  // many Huawei sticks
constexpr MacAddress kOurMac{{0x02, 0x11, 0x22, 0x33, 0x44, 0x55}};          // locally administered
constexpr Ipv4Address kOurIpv4{{192, 168, 8, 100}};
// 2001:db8:0:1::2 (ours, global) and fe80::2 (ours, link-local).
constexpr Ipv6Address kOurGlobal{{0x20, 0x01, 0x0D, 0xB8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2}};
constexpr Ipv6Address kOurLinkLocal{{0xFE, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}};
const std::array<Ipv6Address, 2> kOurAddresses{kOurLinkLocal, kOurGlobal};

// ==== addresses ==============================================================================

TEST(MacAddress, Predicates) {
  EXPECT_TRUE(MacAddress::broadcast().is_broadcast());
  EXPECT_TRUE(MacAddress::broadcast().is_multicast());  // broadcast is a group address
  EXPECT_FALSE(MacAddress::broadcast().is_unicast());
  EXPECT_TRUE(MacAddress{}.is_zero());
  EXPECT_FALSE(MacAddress{}.is_unicast());
  EXPECT_TRUE(kHuaweiModemMac.is_unicast());
  EXPECT_FALSE(kHuaweiModemMac.is_multicast());
  const MacAddress ipv6_all_nodes{{0x33, 0x33, 0, 0, 0, 1}};
  EXPECT_TRUE(ipv6_all_nodes.is_multicast());
  EXPECT_FALSE(ipv6_all_nodes.is_broadcast());
  EXPECT_EQ(kHuaweiModemMac, (MacAddress{{0x00, 0x1E, 0x10, 0x1F, 0x00, 0x00}}));
  EXPECT_NE(kHuaweiModemMac, kOurMac);
}

TEST(MacAddress, FormatsLowerCaseColonSeparated) {
  EXPECT_EQ(to_string(kHuaweiModemMac).view(), "00:1e:10:1f:00:00");
  EXPECT_STREQ(to_string(MacAddress::broadcast()).c_str(), "ff:ff:ff:ff:ff:ff");
  EXPECT_EQ(to_string(MacAddress{{0xAB, 0xCD, 0xEF, 0x01, 0x23, 0x45}}).view(), "ab:cd:ef:01:23:45");
}

TEST(Ipv6Address, SolicitedNodeAndMulticastMac) {
  // RFC 4291 §2.7.1: ff02::1:ff + the low 24 bits; RFC 2464 §7: 33:33 + the low 32 bits.
  const Ipv6Address snm = solicited_node_multicast(kOurGlobal);
  EXPECT_EQ(snm, (Ipv6Address{{0xFF, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xFF, 0, 0, 2}}));
  EXPECT_TRUE(snm.is_multicast());
  EXPECT_EQ(ipv6_multicast_mac(snm), (MacAddress{{0x33, 0x33, 0xFF, 0, 0, 2}}));
  EXPECT_EQ(ipv6_multicast_mac(Ipv6Address::all_nodes()), (MacAddress{{0x33, 0x33, 0, 0, 0, 1}}));
  EXPECT_TRUE(Ipv6Address{}.is_unspecified());
  EXPECT_FALSE(kOurLinkLocal.is_unspecified());
}

// ==== Ethernet ================================================================================

TEST(ParseEthernet, Untagged) {
  const Vec f = from_hex(
      "021122334455"  // destination
      "001e101f0000"  // source
      "0800"          // EtherType IPv4
      "4500");        // payload (two bytes are enough for the parser)
  const auto e = parse_ethernet(f);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->destination, kOurMac);
  EXPECT_EQ(e->source, kHuaweiModemMac);
  EXPECT_EQ(e->ethertype, kEtherTypeIpv4);
  EXPECT_FALSE(e->vlan_id);
  EXPECT_EQ(e->header_size, 14u);
  EXPECT_EQ(e->payload.data(), f.data() + 14);
  EXPECT_EQ(e->payload.size(), 2u);
}

TEST(ParseEthernet, SkipsOneVlanTagAndRecordsTheVid) {
  const Vec f = from_hex(
      "021122334455 001e101f0000"
      "8100"   // TPID: IEEE 802.1Q
      "b123"   // TCI: PCP 5, DEI 1, VID 0x123
      "86dd"   // inner EtherType IPv6
      "60");   // payload
  const auto e = parse_ethernet(f);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->ethertype, kEtherTypeIpv6);
  ASSERT_TRUE(e->vlan_id);
  EXPECT_EQ(*e->vlan_id, 0x123);
  EXPECT_EQ(e->header_size, 18u);
  ASSERT_EQ(e->payload.size(), 1u);
  EXPECT_EQ(e->payload[0], 0x60);
}

TEST(ParseEthernet, QinQAndLengthFieldsComeBackUninterpreted) {
  // Two tags: only the first is removed; the caller sees 0x8100 and drops the frame.
  const auto qinq = parse_ethernet(from_hex("021122334455 001e101f0000 8100 0005 8100 0007 0800"));
  ASSERT_TRUE(qinq);
  EXPECT_EQ(qinq->ethertype, kEtherTypeVlan);
  EXPECT_EQ(*qinq->vlan_id, 5);
  // An IEEE 802.3 length field (< 0x0600) is not an EtherType; it is returned as it is.
  const auto llc = parse_ethernet(from_hex("021122334455 001e101f0000 002e aaaa03"));
  ASSERT_TRUE(llc);
  EXPECT_EQ(llc->ethertype, 0x002E);
}

TEST(ParseEthernet, RejectsEveryTruncatedHeader) {
  const Vec untagged = from_hex("021122334455 001e101f0000 0800");
  expect_no_prefix_accepted(untagged, untagged.size(), [](Bytes b) { return parse_ethernet(b).has_value(); });
  EXPECT_TRUE(parse_ethernet(untagged));  // a header with an empty payload is a frame
  const Vec tagged = from_hex("021122334455 001e101f0000 8100 0001 0800");
  expect_no_prefix_accepted(tagged, tagged.size(), [](Bytes b) { return parse_ethernet(b).has_value(); });
  EXPECT_TRUE(parse_ethernet(tagged));
}

TEST(WriteEthernetHeader, WritesFourteenBytesThatParseBack) {
  Vec out(20, 0xEE);
  ASSERT_EQ(write_ethernet_header(out, kHuaweiModemMac, kOurMac, kEtherTypeIpv6), 14u);
  EXPECT_EQ(Vec(out.begin(), out.begin() + 14), from_hex("001e101f0000 021122334455 86dd"));
  EXPECT_EQ(out[14], 0xEE);  // nothing past the header touched
  const auto e = parse_ethernet(out);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->destination, kHuaweiModemMac);
  EXPECT_EQ(e->source, kOurMac);
  EXPECT_EQ(e->ethertype, kEtherTypeIpv6);
}

TEST(WriteEthernetHeader, RefusesAShortBufferWithoutWriting) {
  Vec out(13, 0xEE);
  EXPECT_EQ(write_ethernet_header(out, kHuaweiModemMac, kOurMac, kEtherTypeIpv4), 0u);
  EXPECT_EQ(out, Vec(13, 0xEE));
}

// ==== ModemMacLearner ============================================================================

TEST(ModemMacLearner, SendsToBroadcastUntilSomethingIsLearned) {
  ModemMacLearner l;
  EXPECT_FALSE(l.learned());
  EXPECT_EQ(l.destination(), MacAddress::broadcast());
  EXPECT_EQ(l.changes(), 0u);
}

TEST(ModemMacLearner, LearnsTheFixedHuaweiMac) {
  ModemMacLearner l;
  l.observe(kHuaweiModemMac);
  l.observe(kHuaweiModemMac);
  ASSERT_TRUE(l.learned());
  EXPECT_EQ(*l.learned(), kHuaweiModemMac);
  EXPECT_EQ(l.destination(), kHuaweiModemMac);
  EXPECT_EQ(l.changes(), 0u);
  EXPECT_EQ(l.unusable_sources(), 0u);
}

TEST(ModemMacLearner, Em7345BroadcastSourceIsNeverLearned) {
  // Sierra EM7345 in NCM mode sends ff:ff:ff:ff:ff:ff as its source address.
  ModemMacLearner l;
  for (int i = 0; i < 3; ++i) l.observe(MacAddress::broadcast());
  EXPECT_FALSE(l.learned());
  EXPECT_EQ(l.destination(), MacAddress::broadcast());
  EXPECT_EQ(l.unusable_sources(), 3u);
  EXPECT_EQ(l.changes(), 0u);
}

TEST(ModemMacLearner, GroupAndZeroSourcesNeitherLearnNorReplace) {
  ModemMacLearner l;
  l.observe(MacAddress{});                                  // all-zero
  l.observe(MacAddress{{0x01, 0x00, 0x5E, 0x00, 0x00, 0x01}});  // IPv4 multicast group
  EXPECT_FALSE(l.learned());
  l.observe(kHuaweiModemMac);
  l.observe(MacAddress::broadcast());  // a stray broadcast source does not unlearn
  EXPECT_EQ(l.destination(), kHuaweiModemMac);
  EXPECT_EQ(l.unusable_sources(), 3u);
  EXPECT_EQ(l.changes(), 0u);
}

TEST(ModemMacLearner, FollowsAndCountsChanges) {
  const MacAddress other{{0x0C, 0x5B, 0x8F, 0x27, 0x9A, 0x64}};
  ModemMacLearner l;
  l.observe(kHuaweiModemMac);
  l.observe(other);  // first change
  EXPECT_EQ(l.destination(), other);
  EXPECT_EQ(l.changes(), 1u);
  l.observe(other);  // same again: no change
  l.observe(kHuaweiModemMac);  // and back: a second change
  EXPECT_EQ(l.destination(), kHuaweiModemMac);
  EXPECT_EQ(l.changes(), 2u);
}

// ==== IP classification and trimming ==========================================================

// The Vodafone K5160 sent this inside an MBIM IPS session: an ARP request without its Ethernet
// header, padded to 46 bytes (libmbim-devel 2016-March; anchors.md §5 #11).
const Vec kK5160ArpInIps = from_hex(
    "0001 0800 06 04 0001"  // htype Ethernet, ptype IPv4, hlen 6, plen 4, op request
    "4c549945e5d5 4f666e96"  // sender 4c:54:99:45:e5:d5, 79.102.110.150
    "000000000000 4f666e95"  // target 00:..:00, 79.102.110.149
    "000000000000000000000000000000000000");  // 18 bytes of padding to 46

TEST(ClassifyIp, K5160ArpInIpsSessionIsNotIp) {
  ASSERT_EQ(kK5160ArpInIps.size(), 46u);
  EXPECT_EQ(classify_ip(kK5160ArpInIps), IpClass::NotIp);
  EXPECT_FALSE(trim_to_ip_length(kK5160ArpInIps));
  IpCounters c;
  EXPECT_FALSE(classify_mbim_datagram(kK5160ArpInIps, c));
  EXPECT_EQ(c.rx_not_ip, 1u);
  EXPECT_EQ(c.rx_truncated_ip + c.rx_bad_ip_length + c.rx_ipv4 + c.rx_ipv6, 0u);
}

TEST(ClassifyIp, VersionNibbleAndFixedHeader) {
  EXPECT_EQ(classify_ip({}), IpClass::Truncated);
  EXPECT_EQ(classify_ip(Vec(19, 0x45)), IpClass::Truncated);
  EXPECT_EQ(classify_ip(Vec(20, 0x45)), IpClass::Ipv4);
  EXPECT_EQ(classify_ip(Vec(39, 0x60)), IpClass::Truncated);
  EXPECT_EQ(classify_ip(Vec(40, 0x60)), IpClass::Ipv6);
  EXPECT_EQ(classify_ip(Vec(40, 0x50)), IpClass::NotIp);
  EXPECT_EQ(classify_ip(Vec(1, 0x00)), IpClass::NotIp);
  EXPECT_STREQ(to_string(IpClass::NotIp), "not_ip");
}

// An ICMP echo request of 28 bytes: 20 bytes of IPv4 header, 8 of ICMP.
const Vec kIpv4Echo = from_hex(
    "45 00 001c"       // version 4, IHL 5; DSCP 0; Total Length 28
    "0000 4000"        // identification 0; DF
    "40 01 0000"       // TTL 64, protocol ICMP, header checksum (not checked by trim)
    "c0a80864 c0a80801"  // 192.168.8.100 -> 192.168.8.1
    "0800f7ff 00000000");  // ICMP echo request, checksum, id 0, seq 0

TEST(TrimToIpLength, Ipv4InAMinimumSizeEthernetFrame) {
  // 14 header + 28 packet + 18 bytes of padding = the 60-byte Ethernet minimum.
  const Vec frame = concat(concat(from_hex("021122334455 001e101f0000 0800"), kIpv4Echo), Vec(18, 0));
  ASSERT_EQ(frame.size(), 60u);
  const auto e = parse_ethernet(frame);
  ASSERT_TRUE(e);
  ASSERT_EQ(e->payload.size(), 46u);
  const auto packet = trim_to_ip_length(e->payload);
  ASSERT_TRUE(packet);
  EXPECT_EQ(packet->data(), e->payload.data());  // a view, not a copy
  EXPECT_EQ(packet->size(), 28u);
}

TEST(TrimToIpLength, Ipv6WithTrailingBytes) {
  const Vec packet = from_hex(
      "60000000 0008 11 40"                 // version 6; Payload Length 8; UDP; hop limit 64
      "20010db8000000010000000000000002"    // source
      "20010db8000000010000000000000001"    // destination
      "1234 0035 0008 0000");               // UDP header only
  const Vec padded = concat(packet, Vec(6, 0xAA));
  const auto t = trim_to_ip_length(padded);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->size(), 48u);
  const auto exact = trim_to_ip_length(packet);
  ASSERT_TRUE(exact);
  EXPECT_EQ(exact->size(), packet.size());
}

TEST(TrimToIpLength, RejectsInconsistentLengths) {
  Vec v = kIpv4Echo;
  v[0] = 0x44;  // IHL 4: shorter than the fixed header
  EXPECT_FALSE(trim_to_ip_length(v));
  v = kIpv4Echo;
  v[0] = 0x4F;  // IHL 15 = 60 bytes of header in a 28-byte datagram
  EXPECT_FALSE(trim_to_ip_length(v));
  v = kIpv4Echo;
  v[3] = 19;  // Total Length below the 20-byte header
  EXPECT_FALSE(trim_to_ip_length(v));
  v = kIpv4Echo;
  v[2] = 0xFF;
  v[3] = 0xFF;  // Total Length 65535 in 28 bytes
  EXPECT_FALSE(trim_to_ip_length(v));
  Vec v6(40, 0);
  v6[0] = 0x60;
  v6[5] = 1;  // Payload Length 1, no payload
  EXPECT_FALSE(trim_to_ip_length(v6));
  v6[4] = 0xFF;
  v6[5] = 0xFF;
  EXPECT_FALSE(trim_to_ip_length(v6));
  v6[4] = v6[5] = 0;  // Payload Length 0: just the header
  ASSERT_TRUE(trim_to_ip_length(v6));
  EXPECT_EQ(trim_to_ip_length(v6)->size(), 40u);
}

TEST(TrimToIpLength, EveryPrefixShorterThanThePacketIsRejected) {
  expect_no_prefix_accepted(kIpv4Echo, kIpv4Echo.size(),
                            [](Bytes b) { return trim_to_ip_length(b).has_value(); });
}

TEST(ClassifyMbimDatagram, CountsEachOutcomeOnce) {
  IpCounters c;
  const Vec padded = concat(kIpv4Echo, Vec(18, 0));  // K5160-style padding to 46
  const auto p = classify_mbim_datagram(padded, c);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->size(), 28u);
  EXPECT_EQ(c.rx_ipv4, 1u);
  EXPECT_EQ(c.rx_padding_trimmed, 1u);

  ASSERT_TRUE(classify_mbim_datagram(kIpv4Echo, c));  // exact: no trim counted
  EXPECT_EQ(c.rx_ipv4, 2u);
  EXPECT_EQ(c.rx_padding_trimmed, 1u);

  EXPECT_FALSE(classify_mbim_datagram(Vec(10, 0x45), c));
  EXPECT_EQ(c.rx_truncated_ip, 1u);
  EXPECT_FALSE(classify_mbim_datagram({}, c));
  EXPECT_EQ(c.rx_truncated_ip, 2u);

  Vec bad = kIpv4Echo;
  bad[3] = 0xFF;  // Total Length 255 in 28 bytes
  EXPECT_FALSE(classify_mbim_datagram(bad, c));
  EXPECT_EQ(c.rx_bad_ip_length, 1u);

  EXPECT_FALSE(classify_mbim_datagram(kK5160ArpInIps, c));
  EXPECT_EQ(c.rx_not_ip, 1u);

  Vec v6(48, 0);
  v6[0] = 0x60;
  v6[5] = 8;
  ASSERT_TRUE(classify_mbim_datagram(v6, c));
  EXPECT_EQ(c.rx_ipv6, 1u);
}

// ==== checksums ===================================================================================

TEST(Checksum, Rfc1071NumericalExample) {
  // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to 0xddf2 after the end-around carry.
  const Vec data = from_hex("0001 f203 f4f5 f6f7");
  EXPECT_EQ(ones_complement_sum(data), 0xDDF2);
  EXPECT_EQ(internet_checksum(data), 0x220D);
  // Any split at an even offset gives the same sum.
  EXPECT_EQ(ones_complement_sum(Bytes(data).subspan(4), ones_complement_sum(Bytes(data).first(4))), 0xDDF2);
}

TEST(Checksum, MatchesTheReferenceForAnyLengthAndContent) {
  std::mt19937 rng(1071);
  for (std::size_t len = 0; len < 300; ++len) {
    Vec data(len);
    for (auto& b : data) b = static_cast<std::uint8_t>(rng());
    EXPECT_EQ(internet_checksum(data), ref_checksum(data)) << "length " << len;
  }
  EXPECT_EQ(internet_checksum(Vec(70000, 0xFF)), ref_checksum(Vec(70000, 0xFF)));  // many carries
}

TEST(Checksum, Ipv4HeaderFillsAndVerifies) {
  // A common textbook header: 192.168.0.1 -> 192.168.0.199, UDP, checksum 0xb861.
  Vec h = from_hex("4500 0073 0000 4000 4011 0000 c0a8 0001 c0a8 00c7");
  EXPECT_EQ(ipv4_header_checksum(h), 0xB861);
  h[10] = 0xB8;
  h[11] = 0x61;
  EXPECT_EQ(ipv4_header_checksum(h), 0xB861);  // the stored field is taken as zero
  EXPECT_EQ(internet_checksum(h), 0);           // and the whole header verifies
  EXPECT_EQ(ipv4_header_checksum(Bytes(h).first(19)), 0);  // too short: not read
}

TEST(Checksum, Ipv6PseudoHeaderMatchesTheReference) {
  const Vec src(kOurGlobal.bytes.begin(), kOurGlobal.bytes.end());
  const Vec dst(kOurLinkLocal.bytes.begin(), kOurLinkLocal.bytes.end());
  const Vec message = from_hex("8800 0000 6000 0000 0102 0304 05");  // odd length on purpose
  EXPECT_EQ(ipv6_upper_layer_checksum(kOurGlobal, kOurLinkLocal, 58, message),
            ref_icmpv6_checksum(src, dst, message));
}

// ==== ARP ==========================================================================================

// The modem (Huawei fixed MAC, 192.168.8.1) asks who has 192.168.8.100, padded to 60 bytes as an
// Ethernet sender would.
const Vec kArpRequest = from_hex(
    "ffffffffffff"    // Ethernet destination: broadcast
    "001e101f0000"    // Ethernet source: the modem
    "0806"            // EtherType ARP
    "0001"            // htype 1: Ethernet
    "0800"            // ptype: IPv4
    "06 04"           // hlen 6, plen 4
    "0001"            // op 1: request
    "001e101f0000"    // sender hardware address: the modem
    "c0a80801"        // sender protocol address: 192.168.8.1
    "000000000000"    // target hardware address: unknown
    "c0a80864"        // target protocol address: 192.168.8.100 (ours)
    "000000000000000000000000000000000000");  // 18 bytes of Ethernet padding

const Vec kArpReply = from_hex(
    "001e101f0000"    // Ethernet destination: the requester's sender hardware address
    "021122334455"    // Ethernet source: ours
    "0806"            // EtherType ARP
    "0001 0800 06 04" // Ethernet / IPv4, 6 / 4
    "0002"            // op 2: reply
    "021122334455"    // sender hardware address: ours
    "c0a80864"        // sender protocol address: 192.168.8.100
    "001e101f0000"    // target hardware address: the requester
    "c0a80801"        // target protocol address: 192.168.8.1
    "000000000000000000000000000000000000");  // zero padding to 60 bytes

std::optional<Vec> arp(const Vec& request, std::size_t out_size = 64) {
  Vec out(out_size, 0xEE);
  const auto n = answer_arp(request, kOurIpv4, kOurMac, out);
  if (!n) return std::nullopt;
  out.resize(*n);
  return out;
}

TEST(AnswerArp, GoldenRequestAndReply) {
  ASSERT_EQ(kArpRequest.size(), 60u);
  const auto reply = arp(kArpRequest);
  ASSERT_TRUE(reply);
  EXPECT_EQ(*reply, kArpReply);
}

TEST(AnswerArp, UnpaddedRequestGetsTheSameReply) {
  const Vec unpadded(kArpRequest.begin(), kArpRequest.begin() + 42);
  const auto reply = arp(unpadded);
  ASSERT_TRUE(reply);
  EXPECT_EQ(*reply, kArpReply);
}

TEST(AnswerArp, Rfc5227ProbeIsDefended) {
  Vec probe = kArpRequest;
  for (std::size_t i = 28; i < 32; ++i) probe[i] = 0;  // sender protocol address 0.0.0.0
  const auto reply = arp(probe);
  ASSERT_TRUE(reply);
  EXPECT_EQ(Vec(reply->begin() + 38, reply->begin() + 42), Vec(4, 0));  // target IP 0.0.0.0
}

TEST(AnswerArp, IgnoresWhatIsNotARequestForUs) {
  Vec v = kArpRequest;
  v[41] = 0x65;  // target 192.168.8.101: someone else
  EXPECT_FALSE(arp(v));
  v = kArpRequest;
  v[21] = 2;  // op 2: a reply, not a request
  EXPECT_FALSE(arp(v));
  v = kArpRequest;
  v[28] = 192; v[29] = 168; v[30] = 8; v[31] = 100;  // gratuitous: sender IP == target IP
  EXPECT_FALSE(arp(v));
  v = kArpRequest;
  v[15] = 6;  // htype 6: IEEE 802
  EXPECT_FALSE(arp(v));
  v = kArpRequest;
  v[16] = 0x86; v[17] = 0xDD;  // ptype IPv6
  EXPECT_FALSE(arp(v));
  v = kArpRequest;
  v[18] = 8;  // hlen 8
  EXPECT_FALSE(arp(v));
  v = kArpRequest;
  v[19] = 16;  // plen 16
  EXPECT_FALSE(arp(v));
  v = kArpRequest;
  v[13] = 0x35;  // EtherType RARP
  EXPECT_FALSE(arp(v));
}

TEST(AnswerArp, TaggedRequestIsNotAnswered) {
  Vec tagged(kArpRequest.begin(), kArpRequest.begin() + 12);
  tagged.insert(tagged.end(), {0x81, 0x00, 0x00, 0x01});
  tagged.insert(tagged.end(), kArpRequest.begin() + 12, kArpRequest.end());
  EXPECT_FALSE(arp(tagged));
}

TEST(AnswerArp, NeedsRoomForTheWholeReply) {
  EXPECT_FALSE(arp(kArpRequest, 59));
  EXPECT_TRUE(arp(kArpRequest, 60));
}

TEST(AnswerArp, EveryTruncatedRequestIsIgnored) {
  expect_no_prefix_accepted(kArpRequest, 42, [](Bytes b) {
    std::array<std::uint8_t, 64> out{};
    return answer_arp(b, kOurIpv4, kOurMac, out).has_value();
  });
}

// ==== IPv6 Neighbour Solicitation =================================================================

// The modem (link-local fe80::21e:10ff:fe1f:0, EUI-64 of 00:1e:10:1f:00:00) asks, via the
// solicited-node group, for the link-layer address of 2001:db8:0:1::2 (ours).
const Vec kNeighbourSolicitation = from_hex(
    "3333ff000002"                       // Ethernet destination: 33:33 + ff00:0002 (RFC 2464 §7)
    "001e101f0000"                       // Ethernet source: the modem
    "86dd"                               // EtherType IPv6
    "60000000"                           // version 6, traffic class 0, flow label 0
    "0020"                               // Payload Length 32 = NS 24 + SLLA option 8
    "3a"                                 // Next Header 58: ICMPv6
    "ff"                                 // Hop Limit 255
    "fe80000000000000021e10fffe1f0000"   // source: the modem's link-local address
    "ff0200000000000000000001ff000002"   // destination: solicited-node of ...::2
    "87 00"                              // ICMPv6 type 135 (NS), code 0
    "2be6"                               // checksum (computed independently)
    "00000000"                           // reserved
    "20010db8000000010000000000000002"   // target: 2001:db8:0:1::2
    "01 01 001e101f0000");               // option: Source Link-Layer Address, 1 unit, modem MAC

const Vec kNeighbourAdvertisement = from_hex(
    "001e101f0000"                       // Ethernet destination: the NS frame's source
    "021122334455"                       // Ethernet source: ours
    "86dd"                               // EtherType IPv6
    "60000000"                           // version 6, traffic class 0, flow label 0
    "0020"                               // Payload Length 32 = NA 24 + TLLA option 8
    "3a"                                 // Next Header 58: ICMPv6
    "ff"                                 // Hop Limit 255
    "20010db8000000010000000000000002"   // source: the target address
    "fe80000000000000021e10fffe1f0000"   // destination: the solicitation's source
    "88 00"                              // ICMPv6 type 136 (NA), code 0
    "41d4"                               // checksum (computed independently)
    "60000000"                           // flags R=0 S=1 O=1, reserved
    "20010db8000000010000000000000002"   // target: 2001:db8:0:1::2
    "02 01 021122334455");               // option: Target Link-Layer Address, 1 unit, our MAC

std::optional<Vec> ns(const Vec& frame, bool router = false, std::size_t out_size = 128) {
  Vec out(out_size, 0xEE);
  const auto n = answer_neighbour_solicitation(frame, kOurAddresses, kOurMac, router, out);
  if (!n) return std::nullopt;
  out.resize(*n);
  return out;
}

TEST(AnswerNeighbourSolicitation, GoldenSolicitationAndAdvertisement) {
  ASSERT_TRUE(ref_icmpv6_verifies(kNeighbourSolicitation));
  ASSERT_TRUE(ref_icmpv6_verifies(kNeighbourAdvertisement));
  const auto na = ns(kNeighbourSolicitation);
  ASSERT_TRUE(na);
  EXPECT_EQ(*na, kNeighbourAdvertisement);
}

TEST(AnswerNeighbourSolicitation, RouterFlagWhenWeForward) {
  Vec expected = kNeighbourAdvertisement;
  expected[kIcmp + 4] = 0xE0;  // R=1 S=1 O=1
  expected[kIcmp + 2] = 0xC1;  // checksum 0xc1d3 (computed independently)
  expected[kIcmp + 3] = 0xD3;
  ASSERT_TRUE(ref_icmpv6_verifies(expected));
  const auto na = ns(kNeighbourSolicitation, /*router=*/true);
  ASSERT_TRUE(na);
  EXPECT_EQ(*na, expected);
}

TEST(AnswerNeighbourSolicitation, DuplicateAddressDetectionIsAnsweredToAllNodes) {
  // RFC 4861 §7.2.4: source ::, no SLLA option -> NA to ff02::1 with Solicited clear.
  const Vec dad = from_hex(
      "3333ff000002 001e101f0000 86dd"
      "60000000 0018 3a ff"
      "00000000000000000000000000000000"   // source: unspecified
      "ff0200000000000000000001ff000002"
      "87 00 4cea 00000000"                // NS, checksum 0x4cea (computed independently)
      "20010db8000000010000000000000002");
  ASSERT_TRUE(ref_icmpv6_verifies(dad));
  const Vec expected = from_hex(
      "333300000001"                       // Ethernet destination: all-nodes (RFC 2464 §7)
      "021122334455 86dd"
      "60000000 0020 3a ff"
      "20010db8000000010000000000000002"   // source: the target
      "ff020000000000000000000000000001"   // destination: ff02::1
      "88 00 928e"                         // NA, checksum 0x928e (computed independently)
      "20000000"                           // R=0 S=0 O=1
      "20010db8000000010000000000000002"
      "02 01 021122334455");
  const auto na = ns(dad);
  ASSERT_TRUE(na);
  EXPECT_EQ(*na, expected);
}

TEST(AnswerNeighbourSolicitation, UnicastProbeAndLinkLocalTargetAreAnswered) {
  // Neighbour Unreachability Detection: unicast to the target itself.
  Vec probe = kNeighbourSolicitation;
  std::copy(kOurGlobal.bytes.begin(), kOurGlobal.bytes.end(), probe.begin() + kIp6 + 24);
  fix_icmpv6_checksum(probe);
  EXPECT_TRUE(ns(probe));
  // Our link-local address as the target, asked via its solicited-node group.
  Vec ll = kNeighbourSolicitation;
  std::copy(kOurLinkLocal.bytes.begin(), kOurLinkLocal.bytes.end(), ll.begin() + kIcmp + 8);
  fix_icmpv6_checksum(ll);  // ff02::1:ff00:2 is the solicited-node group of fe80::2 as well
  const auto na = ns(ll);
  ASSERT_TRUE(na);
  EXPECT_EQ(Vec(na->begin() + kIp6 + 8, na->begin() + kIp6 + 24),
            Vec(kOurLinkLocal.bytes.begin(), kOurLinkLocal.bytes.end()));
  EXPECT_TRUE(ref_icmpv6_verifies(*na));
}

TEST(AnswerNeighbourSolicitation, PaddingAndUnknownOptionsAreTolerated) {
  Vec padded = concat(kNeighbourSolicitation, Vec(10, 0xAA));  // bytes past the Payload Length
  const auto na = ns(padded);
  ASSERT_TRUE(na);
  EXPECT_EQ(*na, kNeighbourAdvertisement);

  // A Nonce option (type 14, RFC 3971) is not ours to understand and is skipped (§4.6).
  Vec nonce = concat(kNeighbourSolicitation, from_hex("0e 01 010203040506"));
  nonce[kIp6 + 5] = 40;  // Payload Length 32 + 8
  fix_icmpv6_checksum(nonce);
  EXPECT_TRUE(ns(nonce));
}

TEST(AnswerNeighbourSolicitation, RejectsWhatRfc4861Section711Rejects) {
  Vec v = kNeighbourSolicitation;
  v[kIcmp + 3] ^= 0x01;  // bad checksum
  EXPECT_FALSE(ns(v)) << "bad checksum";

  v = kNeighbourSolicitation;
  v[kIp6 + 7] = 254;  // Hop Limit 254: routed here, not on-link (not covered by the checksum)
  EXPECT_FALSE(ns(v)) << "hop limit";

  v = kNeighbourSolicitation;
  v[kIcmp + 1] = 1;  // code 1
  fix_icmpv6_checksum(v);
  EXPECT_FALSE(ns(v)) << "code";

  v = kNeighbourSolicitation;
  v[kIcmp + 0] = 136;  // an NA is not a question
  fix_icmpv6_checksum(v);
  EXPECT_FALSE(ns(v)) << "type";

  v = kNeighbourSolicitation;
  v[kIcmp + 25] = 0;  // option length 0
  fix_icmpv6_checksum(v);
  EXPECT_FALSE(ns(v)) << "zero-length option";

  v = kNeighbourSolicitation;
  v[kIcmp + 25] = 2;  // option claims 16 bytes, 8 are there
  fix_icmpv6_checksum(v);
  EXPECT_FALSE(ns(v)) << "option past the message";

  v = kNeighbourSolicitation;
  v[kIp6 + 5] = 23;  // ICMP length 23 < 24
  EXPECT_FALSE(ns(v)) << "short ICMP";
}

TEST(AnswerNeighbourSolicitation, RejectsTargetsAndAddressingThatAreNotOurs) {
  Vec v = kNeighbourSolicitation;
  v[kIcmp + 8 + 15] = 3;  // target 2001:db8:0:1::3
  v[kIp6 + 24 + 15] = 3;  // and its solicited-node group, so only the target is wrong
  fix_icmpv6_checksum(v);
  EXPECT_FALSE(ns(v)) << "not our target";

  v = kNeighbourSolicitation;
  v[kIcmp + 8] = 0xFF;  // multicast target
  fix_icmpv6_checksum(v);
  EXPECT_FALSE(ns(v)) << "multicast target";

  v = kNeighbourSolicitation;
  v[kIp6 + 24 + 15] = 9;  // ff02::1:ff00:9: some other node's group
  fix_icmpv6_checksum(v);
  EXPECT_FALSE(ns(v)) << "wrong destination";

  v = kNeighbourSolicitation;
  v[kIp6 + 8] = 0xFF;  // multicast source
  fix_icmpv6_checksum(v);
  EXPECT_FALSE(ns(v)) << "multicast source";

  v = kNeighbourSolicitation;
  std::fill(v.begin() + kIp6 + 8, v.begin() + kIp6 + 24, 0);  // DAD with an SLLA option
  fix_icmpv6_checksum(v);
  EXPECT_FALSE(ns(v)) << "DAD with SLLA";

  v = kNeighbourSolicitation;
  v[kIp6 + 6] = 0;  // Next Header: hop-by-hop options
  EXPECT_FALSE(ns(v)) << "extension header";

  v = kNeighbourSolicitation;
  v[12] = 0x08;
  v[13] = 0x00;  // EtherType IPv4
  EXPECT_FALSE(ns(v)) << "EtherType";

  v = kNeighbourSolicitation;
  v[kIp6] = 0x40;  // IPv4 version nibble under an IPv6 EtherType
  EXPECT_FALSE(ns(v)) << "version";
}

TEST(AnswerNeighbourSolicitation, DadToAUnicastDestinationIsRejected) {
  Vec v = kNeighbourSolicitation;
  v.resize(v.size() - 8);  // drop the SLLA option
  v[kIp6 + 5] = 24;
  std::fill(v.begin() + kIp6 + 8, v.begin() + kIp6 + 24, 0);  // source ::
  std::copy(kOurGlobal.bytes.begin(), kOurGlobal.bytes.end(), v.begin() + kIp6 + 24);
  fix_icmpv6_checksum(v);
  EXPECT_FALSE(ns(v));
}

TEST(AnswerNeighbourSolicitation, NothingWhenNoAddressIsConfigured) {
  Vec out(128);
  EXPECT_FALSE(answer_neighbour_solicitation(kNeighbourSolicitation, {}, kOurMac, false, out));
}

TEST(AnswerNeighbourSolicitation, NeedsRoomForTheWholeReply) {
  EXPECT_FALSE(ns(kNeighbourSolicitation, false, 85));
  EXPECT_TRUE(ns(kNeighbourSolicitation, false, 86));
}

TEST(AnswerNeighbourSolicitation, EveryTruncatedSolicitationIsIgnored) {
  expect_no_prefix_accepted(kNeighbourSolicitation, kNeighbourSolicitation.size(), [](Bytes b) {
    std::array<std::uint8_t, 128> out{};
    return answer_neighbour_solicitation(b, kOurAddresses, kOurMac, false, out).has_value();
  });
}

TEST(Responders, RandomBytesNeverCrashOrAnswerWrongly) {
  // Not a fuzzer, just a cheap smoke run over garbage with plausible headers stamped on.
  std::mt19937 rng(4861);
  std::array<std::uint8_t, 128> out{};
  for (int i = 0; i < 20000; ++i) {
    Vec f(rng() % 120);
    for (auto& b : f) b = static_cast<std::uint8_t>(rng());
    if (f.size() >= 14 && (i & 1)) { f[12] = 0x86; f[13] = 0xDD; }
    if (f.size() >= 14 && (i & 2)) { f[12] = 0x08; f[13] = 0x06; }
    if (const auto n = answer_arp(f, kOurIpv4, kOurMac, out)) {
      EXPECT_EQ(*n, kArpReplyFrameSize);
    }
    if (const auto n = answer_neighbour_solicitation(f, kOurAddresses, kOurMac, false, out)) {
      EXPECT_EQ(*n, kNeighbourAdvertisementFrameSize);
    }
    (void)parse_ethernet(f);
    IpCounters c;
    (void)classify_mbim_datagram(f, c);
    EXPECT_EQ(c.rx_ipv4 + c.rx_ipv6 + c.rx_not_ip + c.rx_truncated_ip + c.rx_bad_ip_length, 1u);
  }
}

}  // namespace
}  // namespace wwan::eth
