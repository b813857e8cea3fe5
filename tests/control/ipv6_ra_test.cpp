// Router discovery: the RS codec and RA parser against golden bytes (computed outside this code
// base with Python's struct and an RFC 1071 checksum; annotated field by field), the RFC 4861
// §6.1.2 validation one reason at a time, and the RaClient state machine with a fake clock:
// solicitation back-off, SLAAC, lifetimes (RFC 4862 §5.5.3 (e)), router lifetime, RDNSS.
#include "control/ipv6_ra.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "control/ipv6_ra_client.hpp"
#include "tests/support/hex.hpp"

namespace wwan::ipv6 {
namespace {

using namespace std::chrono_literals;
using test::hex;
using Vec = std::vector<std::uint8_t>;

constexpr MacAddress kMac{{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}};
const Ipv6Address kRouter = Ipv6Address::load(hex("fe80 0000 0000 0000 0000 0000 0000 0001"), 0);
const Ipv6Address kPrefix = Ipv6Address::load(hex("2001 0db8 0000 0001 0000 0000 0000 0000"), 0);
const Ipv6Address kDns = Ipv6Address::load(hex("2001 0db8 0000 0000 0000 0000 0000 0053"), 0);

// The RA the emulated router sends (80 bytes of ICMPv6 after a 40-byte IPv6 header).
Vec golden_ra() {
  return hex(
      // IPv6: version 6, payload length 80, next header 58, hop limit 255
      "60 00 00 00 00 50 3a ff"
      // source fe80::1, destination ff02::1
      "fe 80 00 00 00 00 00 00 00 00 00 00 00 00 00 01"
      "ff 02 00 00 00 00 00 00 00 00 00 00 00 00 00 01"
      // ICMPv6 type 134 (RA), code 0, checksum 0x40c4, cur hop limit 64, flags 0 (M=0 O=0),
      // router lifetime 1800 s, reachable time 0, retrans timer 0
      "86 00 40 c4 40 00 07 08 00 00 00 00 00 00 00 00"
      // MTU option: type 5, length 1, reserved, MTU 1500
      "05 01 00 00 00 00 05 dc"
      // Prefix Information: type 3, length 4, prefix length 64, flags 0x40 (A, not L),
      // valid 7200 s, preferred 3600 s, reserved, prefix 2001:db8:0:1::
      "03 04 40 40 00 00 1c 20 00 00 0e 10 00 00 00 00"
      "20 01 0d b8 00 00 00 01 00 00 00 00 00 00 00 00"
      // RDNSS (RFC 8106): type 25, length 3, reserved, lifetime 1800 s, 2001:db8::53
      "19 03 00 00 00 00 07 08"
      "20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 53");
}

// Rewrites the ICMPv6 checksum after a test changed a field (the RFC 8200 §8.1 pseudo-header).
void fix_checksum(Vec& p) {
  const std::size_t len = static_cast<std::size_t>(p[4] << 8 | p[5]);
  p[42] = p[43] = 0;
  const std::uint16_t c = eth::ipv6_upper_layer_checksum(Ipv6Address::load(p, 8), Ipv6Address::load(p, 24),
                                                         eth::kIpProtocolIcmpv6, Bytes(p).subspan(40, len));
  p[42] = static_cast<std::uint8_t>(c >> 8);
  p[43] = static_cast<std::uint8_t>(c);
}

TEST(Ipv6Ra, RouterSolicitationMatchesTheGoldenBytes) {
  const Ipv6Address source = link_local_address(interface_id_from_mac(kMac));
  EXPECT_EQ(source, Ipv6Address::load(hex("fe80 0000 0000 0000 0000 00ff fe00 0002"), 0))
      << "modified EUI-64: 02 -> 00 (U/L bit inverted), ff:fe in the middle";
  Vec out(64);
  out.resize(build_router_solicitation(source, kMac, out));
  EXPECT_EQ(out, hex(
                     // IPv6: payload length 16, next header 58, hop limit 255
                     "60 00 00 00 00 10 3a ff"
                     // source fe80::ff:fe00:2, destination ff02::2 (all routers)
                     "fe 80 00 00 00 00 00 00 00 00 00 ff fe 00 00 02"
                     "ff 02 00 00 00 00 00 00 00 00 00 00 00 00 00 02"
                     // ICMPv6 type 133 (RS), code 0, checksum 0x7b2a, reserved
                     "85 00 7b 2a 00 00 00 00"
                     // Source Link-Layer Address: type 1, length 1, 02:00:00:00:00:02
                     "01 01 02 00 00 00 00 02"));
  Vec unspecified(64);
  EXPECT_EQ(build_router_solicitation(Ipv6Address{}, kMac, unspecified), 48u) << "no SLLA from :: (§4.1)";
  EXPECT_TRUE(is_router_solicitation(out));
}

TEST(Ipv6Ra, TheGoldenAdvertisementParsesFieldByField) {
  RaError e{};
  const auto ra = parse_router_advertisement(golden_ra(), e);
  ASSERT_TRUE(ra) << to_string(e);
  EXPECT_EQ(ra->source, kRouter);
  EXPECT_EQ(ra->cur_hop_limit, 64);
  EXPECT_FALSE(ra->managed);
  EXPECT_EQ(ra->router_lifetime_s, 1800);
  EXPECT_EQ(ra->mtu, 1500u);
  ASSERT_EQ(ra->prefixes.size(), 1u);
  EXPECT_EQ(ra->prefixes[0].prefix, kPrefix);
  EXPECT_EQ(ra->prefixes[0].prefix_length, 64);
  EXPECT_TRUE(ra->prefixes[0].autonomous);
  EXPECT_FALSE(ra->prefixes[0].on_link);
  EXPECT_EQ(ra->prefixes[0].valid_lifetime_s, 7200u);
  EXPECT_EQ(ra->prefixes[0].preferred_lifetime_s, 3600u);
  ASSERT_EQ(ra->rdnss.size(), 1u);
  EXPECT_EQ(ra->rdnss[0].address, kDns);
  EXPECT_EQ(ra->rdnss[0].lifetime_s, 1800u);
  EXPECT_EQ(ra->ignored_options, 0u);
}

TEST(Ipv6Ra, BuildingTheParsedAdvertisementGivesTheGoldenBytesBack) {
  RaError e{};
  RouterAdvertisement ra = *parse_router_advertisement(golden_ra(), e);
  Vec out(256);
  out.resize(build_router_advertisement(ra, out));
  EXPECT_EQ(out, golden_ra());
}

TEST(Ipv6Ra, InvalidAdvertisementsAreDiscardedWithTheirReason) {
  const auto reason = [](Vec p, bool fix = true) {
    if (fix) fix_checksum(p);
    RaError e{};
    return parse_router_advertisement(p, e) ? std::string("accepted") : std::string(to_string(e));
  };
  Vec v = golden_ra();
  v[7] = 254;
  EXPECT_EQ(reason(v), "bad_hop_limit") << "from beyond the link";
  v = golden_ra();
  v[8] = 0x20;  // source 2001:...: not link-local
  EXPECT_EQ(reason(v), "source_not_link_local");
  v = golden_ra();
  v[41] = 1;
  EXPECT_EQ(reason(v), "bad_code");
  v = golden_ra();
  v[47] = 0x09;  // router lifetime changed, checksum left alone
  EXPECT_EQ(reason(v, false), "bad_checksum");
  v = golden_ra();
  v[40 + 17] = 0;  // the MTU option's length 0
  EXPECT_EQ(reason(v), "bad_option_length");
  v = golden_ra();
  v[40 + 57] = 4;  // RDNSS claims 32 bytes, 24 remain
  EXPECT_EQ(reason(v), "bad_option_length");
  v = golden_ra();
  v[6] = 17;
  EXPECT_EQ(reason(v, false), "not_icmpv6");
  v = golden_ra();
  v[5] = 0x51;
  EXPECT_EQ(reason(v, false), "bad_length");
  v = golden_ra();
  v[40] = 133;
  EXPECT_EQ(reason(v), "not_router_advertisement");
  const Vec whole = golden_ra();
  v = Vec(whole.begin(), whole.begin() + 40 + 12);
  v[5] = 12;
  EXPECT_EQ(reason(v), "too_short");
}

TEST(Ipv6Ra, AKnownOptionOfTheWrongSizeIsIgnoredNotTheAdvertisement) {
  Vec v = golden_ra();
  v[40 + 16 + 6] = 0x04;  // MTU 1040: below the IPv6 minimum of 1280, ignored
  v[40 + 16 + 7] = 0x10;
  fix_checksum(v);
  RaError e{};
  const auto ra = parse_router_advertisement(v, e);
  ASSERT_TRUE(ra);
  EXPECT_FALSE(ra->mtu);
  EXPECT_EQ(ra->ignored_options, 1u);
  EXPECT_EQ(ra->prefixes.size(), 1u);
}

// ---- the client -------------------------------------------------------------------------------

struct RaClientTest : ::testing::Test {
  Clock::time_point t0 = Clock::time_point{} + 1000s;
  RaClient client{RaClientSettings{kMac, true, 4000ms, 60000ms, 7200s}};
  // The golden RA with other lifetimes.
  static Vec ra(std::uint16_t router_lifetime, std::uint32_t valid, std::uint32_t preferred, std::uint32_t dns = 1800) {
    Vec v = golden_ra();
    eth::store_be16(v, 46, router_lifetime);
    eth::store_be32(v, 40 + 24 + 4, valid);
    eth::store_be32(v, 40 + 24 + 8, preferred);
    eth::store_be32(v, 40 + 56 + 4, dns);
    fix_checksum(v);
    return v;
  }
};

TEST_F(RaClientTest, SolicitsWithBackoffUntilAnAdvertisementComes) {
  client.start(t0);
  auto rs = client.take_packets();
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_TRUE(is_router_solicitation(rs[0]));
  EXPECT_EQ(Ipv6Address::load(rs[0], 8), client.link_local());
  Clock::time_point at = t0;
  for (const auto wait : {4s, 8s, 16s, 32s, 60s, 60s}) {
    ASSERT_EQ(client.next_timer(), at + wait);
    at += wait;
    client.on_timer(at);
    EXPECT_EQ(client.take_packets().size(), 1u);
  }
  client.on_packet(golden_ra(), at);
  EXPECT_EQ(client.next_timer(), at + 1800s) << "no more RSs; the next thing is the router lifetime";
  EXPECT_EQ(client.counters().solicitations, 7u);
}

TEST_F(RaClientTest, SlaacAddressGatewayDnsAndMtuFromTheAdvertisement) {
  client.start(t0);
  const std::uint64_t v0 = client.version();
  client.on_packet(golden_ra(), t0 + 1s);
  EXPECT_GT(client.version(), v0);
  const RaConfig& c = client.config();
  ASSERT_TRUE(c.address);
  EXPECT_EQ(*c.address, Ipv6Address::load(hex("2001 0db8 0000 0001 0000 00ff fe00 0002"), 0))
      << "the /64 + the modified EUI-64 of the MAC";
  EXPECT_EQ(c.prefix_length, 64);
  EXPECT_EQ(c.gateway, kRouter);
  EXPECT_EQ(c.dns, (std::vector<Ipv6Address>{kDns}));
  EXPECT_EQ(c.mtu, 1500u);
  // The session's interface identifier replaces ours (3GPP: the network's IID).
  client.set_interface_id(interface_id_of(Ipv6Address::load(hex("2001 0db8 0000 0001 0000 0000 0000 0002"), 0)));
  EXPECT_EQ(*client.config().address, Ipv6Address::load(hex("2001 0db8 0000 0001 0000 0000 0000 0002"), 0));
}

TEST_F(RaClientTest, LifetimesRunOutAndTheTwoHoursRuleHolds) {
  client.start(t0);
  client.on_packet(ra(100, 10000, 5000, 50), t0);
  EXPECT_TRUE(client.config().gateway);
  client.on_timer(t0 + 50s);
  EXPECT_TRUE(client.config().dns.empty()) << "RDNSS lifetime 50 s";
  client.on_timer(t0 + 100s);
  EXPECT_FALSE(client.config().gateway) << "router lifetime 100 s";
  ASSERT_TRUE(client.config().address);
  // A (forged?) RA with valid lifetime 60 s may only shorten a longer remaining time to 2 h.
  client.on_packet(ra(100, 60, 30), t0 + 200s);
  client.on_timer(t0 + 200s + 3600s);
  EXPECT_TRUE(client.config().address) << "still valid: cut to two hours, not to 60 s";
  (void)client.take_packets();
  client.on_timer(t0 + 200s + 7200s);
  EXPECT_FALSE(client.config().address) << "the two hours ran out";
  client.on_timer(t0 + 200s + 7200s);
  EXPECT_EQ(client.take_packets().size(), 1u) << "nothing left: soliciting again";
}

TEST_F(RaClientTest, RouterLifetimeZeroRemovesTheGatewayAtOnce) {
  client.start(t0);
  client.on_packet(golden_ra(), t0);
  ASSERT_TRUE(client.config().gateway);
  client.on_packet(ra(0, 7200, 3600), t0 + 1s);
  EXPECT_FALSE(client.config().gateway);
  EXPECT_TRUE(client.config().address) << "the prefix is still valid";
}

TEST_F(RaClientTest, PrefixesUnfitForSlaacAreIgnored) {
  client.start(t0);
  Vec v = ra(1800, 100, 200);  // preferred > valid
  client.on_packet(v, t0);
  v = golden_ra();
  v[40 + 24 + 3] = 0x80;  // L only, not A
  fix_checksum(v);
  client.on_packet(v, t0);
  v = golden_ra();
  v[40 + 24 + 2] = 56;  // a /56 cannot take a 64-bit IID
  fix_checksum(v);
  client.on_packet(v, t0);
  EXPECT_FALSE(client.config().address);
  EXPECT_EQ(client.counters().ignored_prefixes, 3u);
  EXPECT_TRUE(client.config().gateway) << "the router is still a router";
}

TEST_F(RaClientTest, StopForgetsEverything) {
  client.start(t0);
  client.on_packet(golden_ra(), t0);
  client.stop();
  EXPECT_EQ(client.config(), RaConfig{});
  EXPECT_FALSE(client.next_timer());
  client.on_packet(golden_ra(), t0);
  EXPECT_FALSE(client.config().address) << "not running: ignored";
}

}  // namespace
}  // namespace wwan::ipv6
