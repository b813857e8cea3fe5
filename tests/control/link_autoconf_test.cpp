// LinkAutoconf: the DHCP client and router discovery merged with the session's configuration
// (control/link_autoconf.hpp), with a fake clock and the emulated server and router
// (sim/dhcp_server.hpp, sim/router_advertiser.hpp) as the other end of the link.
#include "control/link_autoconf.hpp"

#include <gtest/gtest.h>

#include "sim/dhcp_server.hpp"
#include "sim/router_advertiser.hpp"

namespace wwan::control {
namespace {

using namespace std::chrono_literals;

constexpr eth::MacAddress kMac{{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}};
constexpr eth::Ipv4Address kHost{{10, 64, 64, 2}}, kGateway{{10, 64, 64, 1}};
const eth::Ipv6Address kHost6{{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2}};

struct Link : ::testing::Test {
  Clock::time_point now = Clock::time_point{} + 1000s;
  sim::DhcpServer server{[] {
    sim::DhcpServerConfig c;
    c.client_address = kHost;
    c.server_address = kGateway;
    c.lease_s = 20;
    return c;
  }()};
  sim::RouterAdvertiser router{sim::RouterAdvertiserConfig{}, kHost6, 1400};
  std::vector<AutoconfPacket> sent;

  // Runs the packets the client sends through the emulated server / router and back.
  void exchange(LinkAutoconf& a) {
    for (int round = 0; round < 8; ++round) {
      std::vector<AutoconfPacket> out = a.take_packets();
      if (out.empty()) return;
      for (const AutoconfPacket& p : out) {
        sent.push_back(p);
        std::optional<std::vector<std::uint8_t>> reply;
        if ((p.ip[0] >> 4) == 4) reply = server.from_client(p.ip, now);
        else if (ipv6::is_router_solicitation(p.ip)) reply = router.on_solicitation(p.ip, now);
        if (reply) a.on_packet(*reply, now);
      }
    }
  }
  static SessionStatus connected(IpConfig ip = {}) {
    SessionStatus s;
    s.state = SessionState::connected;
    s.ip = std::move(ip);
    s.connects = 1;
    return s;
  }
};

TEST_F(Link, APlainNcmLinkIsUpWithTheLeaseAndTheAdvertisedPrefix) {
  LinkAutoconf a(AutoconfSettings{.dhcp4 = true, .ipv6_ra = true, .link_layer = true, .mac = kMac, .seed = 7, .dhcp = {}, .ra = {}});
  a.on_session(connected(), now);
  EXPECT_FALSE(a.up()) << "connected, but no address yet";
  exchange(a);
  ASSERT_TRUE(a.up());
  const IpConfig& c = a.config();
  ASSERT_TRUE(c.ipv4);
  EXPECT_EQ(c.ipv4->address, kHost);
  EXPECT_EQ(c.ipv4->prefix_length, 30);
  EXPECT_EQ(c.ipv4->gateway, kGateway);
  ASSERT_TRUE(c.ipv6);
  EXPECT_EQ(c.ipv6->address, ipv6::with_interface_id(kHost6, ipv6::interface_id_from_mac(kMac)));
  EXPECT_EQ(c.ipv6->gateway, (eth::Ipv6Address{{0xFE, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}}));
  EXPECT_EQ(c.ipv6->mtu, 1400u);
  // Where the packets went on the link: the DISCOVER broadcast, the RS to 33:33:00:00:00:02.
  ASSERT_FALSE(sent.empty());
  bool discover_broadcast = false, rs_multicast = false;
  for (const auto& p : sent) {
    if ((p.ip[0] >> 4) == 4 && p.destination == eth::MacAddress::broadcast()) discover_broadcast = true;
    if ((p.ip[0] >> 4) == 6 && p.destination == eth::ipv6_multicast_mac(ipv6::all_routers())) rs_multicast = true;
  }
  EXPECT_TRUE(discover_broadcast);
  EXPECT_TRUE(rs_multicast);
  const auto events = a.take_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, dhcp4::ClientEvent::Kind::acquired);
  ASSERT_TRUE(events[0].lease);
  EXPECT_EQ(events[0].lease->lease_s, 20u);
}

TEST_F(Link, ALostLeaseTakesTheLinkDownAndDhcpStartsOver) {
  LinkAutoconf a(AutoconfSettings{.dhcp4 = true, .ipv6_ra = false, .link_layer = true, .mac = kMac, .seed = 7, .dhcp = {}, .ra = {}});
  a.on_session(connected(), now);
  exchange(a);
  ASSERT_TRUE(a.up());
  const std::uint64_t v = a.version();
  server.silent_until(now + 1h);
  for (int i = 0; i < 20 && a.up(); ++i) {
    now = *a.next_timer();
    a.on_timer(now);
    exchange(a);
  }
  EXPECT_FALSE(a.up());
  EXPECT_GT(a.version(), v);
  EXPECT_EQ(a.down_reason(), "the DHCP lease expired");
  EXPECT_EQ(a.dhcp().state(), dhcp4::ClientState::selecting) << "starting over";
}

// Huawei whose AT^DHCP? failed: connected without IPv4, so DHCP on the link stands in; a session
// that did give IPv4 never starts the client. A redial decides again.
TEST_F(Link, DhcpStandsInOnlyWhenTheSessionGaveNoIpv4) {
  AutoconfSettings s{.dhcp4 = false, .dhcp4_fallback = true, .ipv6_ra = false, .link_layer = true, .mac = kMac,
                     .seed = 7, .dhcp = {}, .ra = {}};
  IpConfig given;
  given.ipv4 = Ipv4Config{eth::Ipv4Address{{10, 9, 9, 9}}, 24, std::nullopt, {}, 0};
  {
    LinkAutoconf a(s);
    a.on_session(connected(given), now);
    EXPECT_TRUE(a.take_packets().empty()) << "the session's address: no DHCP";
    EXPECT_FALSE(a.dhcp4_fallback_active());
    ASSERT_TRUE(a.up());
    EXPECT_EQ(a.config().ipv4->address, (eth::Ipv4Address{{10, 9, 9, 9}}));
  }
  LinkAutoconf a(s);
  a.on_session(connected(), now);
  EXPECT_TRUE(a.dhcp4_fallback_active());
  EXPECT_FALSE(a.up()) << "connected, but no address until the lease";
  exchange(a);
  ASSERT_TRUE(a.up());
  EXPECT_EQ(a.config().ipv4->address, kHost);
  EXPECT_EQ(a.config().ipv4->gateway, kGateway);
  // The session drops: the fallback client stops with it.
  SessionStatus down;
  down.state = SessionState::disconnected;
  down.connects = 1;
  a.on_session(down, now);
  EXPECT_FALSE(a.up());
  EXPECT_FALSE(a.dhcp4_fallback_active());
  EXPECT_EQ(a.dhcp().state(), dhcp4::ClientState::stopped);
  // The redial gives the address: no DHCP this time.
  SessionStatus again = connected(given);
  again.connects = 2;
  a.on_session(again, now);
  EXPECT_FALSE(a.dhcp4_fallback_active());
  EXPECT_TRUE(a.take_packets().empty());
  EXPECT_EQ(a.config().ipv4->address, (eth::Ipv4Address{{10, 9, 9, 9}}));
}

TEST_F(Link, TheSessionsAddressKeepsItsIdentifierUnderTheAdvertisedPrefix) {
  IpConfig ip;
  ip.ipv4 = Ipv4Config{kHost, 30, kGateway, {}, 0};
  Ipv6Config v6;
  // The network gave ::2 under a prefix that is not the one the RA will advertise.
  v6.address = eth::Ipv6Address{{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0x99, 0, 0, 0, 0, 0, 0, 0, 2}};
  v6.dns = {eth::Ipv6Address{{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}}};
  ip.ipv6 = v6;
  LinkAutoconf a(AutoconfSettings{.dhcp4 = false, .ipv6_ra = true, .link_layer = false, .mac = {}, .seed = 7, .dhcp = {}, .ra = {}});
  a.on_session(connected(ip), now);
  EXPECT_TRUE(a.up()) << "the session's configuration is enough";
  EXPECT_EQ(a.config().ipv6->address, v6.address);
  exchange(a);
  EXPECT_EQ(a.config().ipv6->address, kHost6) << "the RA's /64 + the session's IID ::2";
  EXPECT_EQ(a.config().ipv6->dns.size(), 2u) << "the session's DNS, then RDNSS";
  EXPECT_EQ(a.config().ipv4->address, kHost);
  for (const auto& p : sent) EXPECT_FALSE(p.ip.size() > 48) << "MBIM: RS without the SLLA option";
}

TEST_F(Link, ASessionDropStopsTheClientsAndTheRedialStartsThem) {
  LinkAutoconf a(AutoconfSettings{.dhcp4 = true, .ipv6_ra = false, .link_layer = true, .mac = kMac, .seed = 7, .dhcp = {}, .ra = {}});
  a.on_session(connected(), now);
  exchange(a);
  ASSERT_TRUE(a.up());
  SessionStatus down;
  down.state = SessionState::disconnected;
  down.error = "the device reported NETWORK_CONNECTION disconnected";
  a.on_session(down, now);
  EXPECT_FALSE(a.up());
  EXPECT_EQ(a.down_reason(), down.error);
  EXPECT_EQ(a.dhcp().state(), dhcp4::ClientState::stopped);
  EXPECT_TRUE(a.take_packets().empty()) << "the link is gone: nothing to send";
  SessionStatus again = connected();
  again.connects = 2;
  a.on_session(again, now + 2s);
  exchange(a);
  EXPECT_TRUE(a.up());
}

TEST_F(Link, ReleaseSendsDhcprelease) {
  LinkAutoconf a(AutoconfSettings{.dhcp4 = true, .ipv6_ra = false, .link_layer = true, .mac = kMac, .seed = 7, .dhcp = {}, .ra = {}});
  a.on_session(connected(), now);
  exchange(a);
  a.release(now);
  exchange(a);
  EXPECT_EQ(server.counters().releases, 1u);
  EXPECT_FALSE(a.up());
}

}  // namespace
}  // namespace wwan::control
