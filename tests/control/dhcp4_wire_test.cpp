// The DHCPv4 codec against golden bytes. The expected packets were computed outside this code
// base (a few lines of Python: struct.pack per field, RFC 1071 checksums), and the fields are
// annotated where they are written. Malformed options, RFC 3396 concatenation and the UDP/IPv4
// checks are exercised one reason at a time.
#include "control/dhcp4_wire.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "tests/support/hex.hpp"

namespace wwan::dhcp4 {
namespace {

using test::hex;
using Vec = std::vector<std::uint8_t>;

constexpr MacAddress kMac{{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}};

Message discover() {
  Message m;
  m.op = kOpBootRequest;
  m.xid = 0x3903F326;
  m.chaddr = kMac;
  m.type = MessageType::discover;
  m.client_identifier = {0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02};
  m.max_message_size = 1472;
  m.parameter_request_list = {1, 3, 6, 26, 51, 58, 59};
  return m;
}

// The DHCPDISCOVER wwan-dp sends, in its IPv4/UDP packet (332 bytes).
Vec golden_discover_packet() {
  Vec p = hex(
      // IPv4: version 4 / IHL 5, TOS 0, total length 328, identification 1, flags/offset 0,
      // TTL 64, protocol 17 (UDP), header checksum 0x79a5, 0.0.0.0 -> 255.255.255.255
      "45 00 01 48 00 01 00 00 40 11 79 a5 00 00 00 00 ff ff ff ff"
      // UDP: 68 -> 67, length 308, checksum 0xe58b
      "00 44 00 43 01 34 e5 8b"
      // BOOTP: op 1 (BOOTREQUEST), htype 1, hlen 6, hops 0, xid 0x3903f326, secs 0, flags 0
      "01 01 06 00 39 03 f3 26 00 00 00 00"
      // ciaddr, yiaddr, siaddr, giaddr: all 0.0.0.0
      "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
      // chaddr: 02:00:00:00:00:02 and 10 bytes of padding
      "02 00 00 00 00 02 00 00 00 00 00 00 00 00 00 00");
  p.resize(p.size() + 64 + 128, 0);  // sname, file
  const Vec tail = hex(
      // magic cookie 99.130.83.99
      "63 82 53 63"
      // 53 DHCP message type, length 1: 1 (DHCPDISCOVER)
      "35 01 01"
      // 61 client identifier, length 7: type 1 (Ethernet) + the MAC
      "3d 07 01 02 00 00 00 00 02"
      // 57 maximum DHCP message size, length 2: 1472
      "39 02 05 c0"
      // 55 parameter request list, length 7: mask, router, DNS, MTU, lease, T1, T2
      "37 07 01 03 06 1a 33 3a 3b"
      // End
      "ff");
  p.insert(p.end(), tail.begin(), tail.end());
  p.resize(20 + 8 + kMinMessageSize, 0);  // padded to the 300-byte BOOTP minimum (RFC 1542 §2.1)
  return p;
}

TEST(Dhcp4Wire, DiscoverEncodesToTheGoldenPacket) {
  Vec dhcp(576);
  const std::size_t n = encode_message(discover(), dhcp);
  ASSERT_EQ(n, kMinMessageSize);
  Vec packet(600);
  const std::size_t total = encode_udp_ipv4(Ipv4Address{}, Ipv4Address{{255, 255, 255, 255}}, kClientPort, kServerPort,
                                            Bytes(dhcp).first(n), 1, packet);
  packet.resize(total);
  EXPECT_EQ(packet, golden_discover_packet());
}

TEST(Dhcp4Wire, TheGoldenPacketParsesBackToTheMessage) {
  const Vec packet = golden_discover_packet();
  UdpError udp_error{};
  const auto udp = parse_udp_ipv4(packet, udp_error);
  ASSERT_TRUE(udp) << to_string(udp_error);
  EXPECT_EQ(udp->source_port, kClientPort);
  EXPECT_EQ(udp->destination_port, kServerPort);
  EXPECT_EQ(udp->destination, (Ipv4Address{{255, 255, 255, 255}}));
  ParseError error{};
  const auto m = parse_message(udp->payload, error);
  ASSERT_TRUE(m) << to_string(error);
  EXPECT_EQ(m->op, kOpBootRequest);
  EXPECT_EQ(m->xid, 0x3903F326u);
  EXPECT_EQ(m->chaddr, kMac);
  EXPECT_EQ(m->type, MessageType::discover);
  EXPECT_EQ(m->max_message_size, 1472);
  EXPECT_EQ(m->parameter_request_list, (Vec{1, 3, 6, 26, 51, 58, 59}));
  EXPECT_EQ(m->client_identifier, (Vec{1, 2, 0, 0, 0, 0, 2}));
}

// A DHCPACK as a server writes it (hand-made, not by our encoder): options in another order,
// Pad bytes between them, the DNS list split over two instances (RFC 3396).
Vec golden_ack() {
  Vec m = hex(
      // op 2 (BOOTREPLY), htype 1, hlen 6, hops 0, xid 0x11223344, secs 0, flags 0x8000 (broadcast)
      "02 01 06 00 11 22 33 44 00 00 80 00"
      // ciaddr 0.0.0.0, yiaddr 10.64.64.2, siaddr 0.0.0.0, giaddr 0.0.0.0
      "00 00 00 00 0a 40 40 02 00 00 00 00 00 00 00 00"
      // chaddr
      "02 00 00 00 00 02 00 00 00 00 00 00 00 00 00 00");
  m.resize(236, 0);
  const Vec options = hex(
      "63 82 53 63"
      // 53: 5 (DHCPACK)
      "35 01 05"
      // 54 server identifier 10.64.64.1
      "36 04 0a 40 40 01"
      // Pad, Pad
      "00 00"
      // 51 lease time 20 s; 58 T1 10 s; 59 T2 17 s
      "33 04 00 00 00 14 3a 04 00 00 00 0a 3b 04 00 00 00 11"
      // 1 subnet mask 255.255.255.252 (/30)
      "01 04 ff ff ff fc"
      // 3 router 10.64.64.1
      "03 04 0a 40 40 01"
      // 6 DNS 10.11.12.13, and a second instance of option 6 with 10.11.12.14 (concatenated)
      "06 04 0a 0b 0c 0d 06 04 0a 0b 0c 0e"
      // 26 interface MTU 1500
      "1a 02 05 dc"
      // 56 message "ok"
      "38 02 6f 6b"
      // End, then padding
      "ff 00 00 00");
  m.insert(m.end(), options.begin(), options.end());
  return m;
}

TEST(Dhcp4Wire, AServersAckParsesFieldByField) {
  ParseError error{};
  const auto m = parse_message(golden_ack(), error);
  ASSERT_TRUE(m) << to_string(error);
  EXPECT_EQ(m->op, kOpBootReply);
  EXPECT_EQ(m->xid, 0x11223344u);
  EXPECT_EQ(m->flags, kFlagBroadcast);
  EXPECT_EQ(m->yiaddr, (Ipv4Address{{10, 64, 64, 2}}));
  EXPECT_EQ(m->type, MessageType::ack);
  EXPECT_EQ(m->server_identifier, (Ipv4Address{{10, 64, 64, 1}}));
  EXPECT_EQ(m->lease_time_s, 20u);
  EXPECT_EQ(m->renewal_time_s, 10u);
  EXPECT_EQ(m->rebinding_time_s, 17u);
  ASSERT_TRUE(m->subnet_mask);
  EXPECT_EQ(prefix_length_of(*m->subnet_mask), 30);
  EXPECT_EQ(m->routers, (std::vector<Ipv4Address>{{{10, 64, 64, 1}}}));
  EXPECT_EQ(m->dns, (std::vector<Ipv4Address>{{{10, 11, 12, 13}}, {{10, 11, 12, 14}}})) << "RFC 3396 concatenation";
  EXPECT_EQ(m->interface_mtu, 1500);
  EXPECT_EQ(m->message, "ok");
}

// Each malformation of the ACK above, and the reason it is refused with.
TEST(Dhcp4Wire, MalformedMessagesAreRefusedWithTheirReason) {
  const auto reason = [](const Vec& m) {
    ParseError e{};
    return parse_message(m, e) ? std::string("accepted") : std::string(to_string(e));
  };
  const Vec ack = golden_ack();
  EXPECT_EQ(reason(Vec(ack.begin(), ack.begin() + 239)), "too_short") << "cut inside the cookie";
  Vec v = ack;
  v[1] = 6;  // htype IEEE 802
  EXPECT_EQ(reason(v), "not_ethernet");
  v = ack;
  v[236] = 0x64;
  EXPECT_EQ(reason(v), "bad_magic_cookie");
  v = ack;
  v.resize(240 + 3 + 6 + 2 + 1);  // ends inside the lease time option's header
  v.back() = 0x33;
  EXPECT_EQ(reason(v), "option_truncated");
  v = ack;
  v.resize(240 + 3 + 6 + 2 + 2);  // lease time option claims 4 bytes, none follow
  EXPECT_EQ(reason(v), "option_truncated");
  v = ack;
  v[244] = 3;  // a 3-byte server identifier (the walk stays in step: 01 00 is an empty option 1)
  EXPECT_EQ(reason(v), "bad_option_length");
  v = ack;
  v[240 + 2] = 9;  // message type 9
  EXPECT_EQ(reason(v), "bad_message_type");
  v = ack;
  v[240] = 0x00;  // the type option becomes Pad; its bytes read on as "01 05 ...": a 5-byte subnet mask
  EXPECT_EQ(reason(v), "bad_option_length");
  v = Vec(ack.begin(), ack.begin() + 240);
  v.push_back(0xFF);
  EXPECT_EQ(reason(v), "no_message_type") << "BOOTP, not DHCP";
}

TEST(Dhcp4Wire, ANonContiguousMaskAndATinyMtuAreIgnoredNotTrusted) {
  Vec v = golden_ack();
  // mask 255.0.255.0
  const std::size_t mask = 240 + 3 + 6 + 2 + 18 + 2;
  v[mask + 1] = 0x00;
  v[mask + 2] = 0xFF;
  v[mask + 3] = 0x00;
  // MTU 67
  const std::size_t mtu = mask + 4 + 6 + 12 + 2;
  v[mtu] = 0x00;
  v[mtu + 1] = 67;
  ParseError e{};
  const auto m = parse_message(v, e);
  ASSERT_TRUE(m);
  EXPECT_FALSE(m->subnet_mask);
  EXPECT_FALSE(m->interface_mtu);
}

TEST(Dhcp4Wire, PrefixLengthsAndNetmasks) {
  for (std::uint8_t n = 0; n <= 32; ++n) EXPECT_EQ(prefix_length_of(netmask_of(n)), n);
  EXPECT_EQ(netmask_of(30), (Ipv4Address{{255, 255, 255, 252}}));
  EXPECT_FALSE(prefix_length_of(Ipv4Address{{255, 255, 0, 255}}));
}

TEST(Dhcp4Wire, UdpIpv4ChecksAreNamed) {
  const Vec good = golden_discover_packet();
  const auto reason = [](const Vec& p) {
    UdpError e{};
    return parse_udp_ipv4(p, e) ? std::string("accepted") : std::string(to_string(e));
  };
  EXPECT_EQ(reason(good), "accepted");
  Vec v = good;
  v[0] = 0x65;
  EXPECT_EQ(reason(v), "not_ipv4");
  v = good;
  v[3] = 0x49;  // total length one past the packet
  EXPECT_EQ(reason(v), "bad_length");
  v = good;
  v[8] = 63;  // TTL changed, checksum not
  EXPECT_EQ(reason(v), "bad_header_checksum");
  v = good;
  v[28 + 20] ^= 0x01;  // a payload bit flipped
  EXPECT_EQ(reason(v), "bad_udp_checksum");
  v = good;
  v[26] = v[27] = 0;  // no UDP checksum (RFC 768): accepted even with the flipped bit
  v[28 + 20] ^= 0x01;
  EXPECT_EQ(reason(v), "accepted");
}

}  // namespace
}  // namespace wwan::dhcp4
