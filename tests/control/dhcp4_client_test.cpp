// The DHCPv4 client state machine with a fake clock: every transition of RFC 2131 §4.4 the
// client implements (control/dhcp4_client.hpp), the packets it sends in each state (addresses,
// broadcast or unicast, ciaddr, options 50/54), retransmission with back-off, and the events.
// The server's answers are built here field by field; one test runs against the emulated
// server (sim/dhcp_server.hpp) for a whole lease life.
#include "control/dhcp4_client.hpp"

#include <gtest/gtest.h>

#include <array>
#include <vector>

#include "sim/dhcp_server.hpp"

namespace wwan::dhcp4 {
namespace {

using namespace std::chrono_literals;
using Vec = std::vector<std::uint8_t>;

constexpr MacAddress kMac{{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}};
constexpr Ipv4Address kServer{{10, 64, 64, 1}};
constexpr Ipv4Address kAddress{{10, 64, 64, 2}};
constexpr Ipv4Address kBroadcast{{255, 255, 255, 255}};
constexpr Ipv4Address kNone{};

struct Sent {
  Message m;
  UdpDatagram udp;
  bool broadcast;
};

// Decodes what the client sent (and checks it is a well-formed UDP/IPv4 packet from 68 to 67).
Sent decode(const OutgoingPacket& p) {
  UdpError ue{};
  const auto udp = parse_udp_ipv4(p.ip, ue);
  EXPECT_TRUE(udp) << to_string(ue);
  EXPECT_EQ(udp->source_port, kClientPort);
  EXPECT_EQ(udp->destination_port, kServerPort);
  ParseError pe{};
  const auto m = parse_message(udp->payload, pe);
  EXPECT_TRUE(m) << to_string(pe);
  return Sent{*m, *udp, p.broadcast};
}

Sent only_packet(Client& c) {
  const std::vector<OutgoingPacket> out = c.take_packets();
  EXPECT_EQ(out.size(), 1u);
  if (out.empty()) return Sent{};
  return decode(out.front());
}

// The server's answer to `request`.
Vec answer(const Message& request, MessageType type, std::uint32_t lease_s = 100, std::uint32_t t1 = 0, std::uint32_t t2 = 0) {
  Message r;
  r.op = kOpBootReply;
  r.xid = request.xid;
  r.chaddr = request.chaddr;
  r.type = type;
  r.server_identifier = kServer;
  if (type != MessageType::nak) {
    r.yiaddr = kAddress;
    r.lease_time_s = lease_s;
    if (t1) r.renewal_time_s = t1;
    if (t2) r.rebinding_time_s = t2;
    r.subnet_mask = netmask_of(30);
    r.routers = {kServer};
    r.dns = {Ipv4Address{{10, 11, 12, 13}}};
    r.interface_mtu = 1400;
  } else {
    r.message = "go away";
  }
  std::array<std::uint8_t, 576> dhcp{};
  const std::size_t n = encode_message(r, dhcp);
  Vec ip(600);
  ip.resize(encode_udp_ipv4(kServer, kAddress, kServerPort, kClientPort, Bytes(dhcp).first(n), 7, ip));
  return ip;
}

struct Fixture : ::testing::Test {
  Clock::time_point t0 = Clock::time_point{} + 1000s;
  ClientSettings settings() {
    ClientSettings s;
    s.mac = kMac;
    s.seed = 42;
    return s;
  }
  // DISCOVER, OFFER, REQUEST, ACK at t0: the client is BOUND with a `lease_s` lease.
  void bind(Client& c, std::uint32_t lease_s = 100) {
    c.start(t0);
    const Sent d = only_packet(c);
    c.on_packet(answer(d.m, MessageType::offer, lease_s), t0);
    const Sent r = only_packet(c);
    c.on_packet(answer(r.m, MessageType::ack, lease_s), t0);
    ASSERT_EQ(c.state(), ClientState::bound);
  }
};

TEST_F(Fixture, DiscoverOfferRequestAckBindsAndReportsTheLease) {
  Client c(settings());
  c.start(t0);
  EXPECT_EQ(c.state(), ClientState::selecting);
  const Sent d = only_packet(c);
  EXPECT_EQ(d.m.type, MessageType::discover);
  EXPECT_TRUE(d.broadcast) << "no address yet: Ethernet broadcast";
  EXPECT_EQ(d.udp.source, kNone);
  EXPECT_EQ(d.udp.destination, kBroadcast);
  EXPECT_EQ(d.m.chaddr, kMac);
  EXPECT_EQ(d.m.client_identifier, (Vec{1, 2, 0, 0, 0, 0, 2}));
  EXPECT_FALSE(d.m.server_identifier);

  c.on_packet(answer(d.m, MessageType::offer), t0 + 10ms);
  EXPECT_EQ(c.state(), ClientState::requesting);
  const Sent r = only_packet(c);
  EXPECT_EQ(r.m.type, MessageType::request);
  EXPECT_EQ(r.m.xid, d.m.xid) << "SELECTING's DHCPREQUEST keeps the offer's xid (§4.4.1)";
  EXPECT_EQ(r.m.requested_address, kAddress) << "option 50: the offered address";
  EXPECT_EQ(r.m.server_identifier, kServer) << "option 54: the chosen server";
  EXPECT_EQ(r.m.ciaddr, kNone);
  EXPECT_TRUE(r.broadcast);

  c.on_packet(answer(r.m, MessageType::ack, 100), t0 + 20ms);
  EXPECT_EQ(c.state(), ClientState::bound);
  ASSERT_TRUE(c.lease());
  const Lease& l = *c.lease();
  EXPECT_EQ(l.address, kAddress);
  EXPECT_EQ(l.prefix_length, 30);
  EXPECT_EQ(l.router, kServer);
  EXPECT_EQ(l.dns, (std::vector<Ipv4Address>{{{10, 11, 12, 13}}}));
  EXPECT_EQ(l.mtu, 1400);
  EXPECT_EQ(l.server, kServer);
  EXPECT_EQ(l.t1_s, 50u) << "T1 defaults to half the lease";
  EXPECT_EQ(l.t2_s, 87u) << "T2 defaults to 7/8 of it";
  EXPECT_EQ(l.start, t0 + 10ms) << "the lease counts from the DHCPREQUEST (§4.4.1)";
  const auto events = c.take_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, ClientEvent::Kind::acquired);
  EXPECT_EQ(c.next_timer(), t0 + 10ms + 50s) << "renewal at T1";
}

TEST_F(Fixture, RenewsUnicastAtT1AndTheAckExtendsTheLease) {
  Client c(settings());
  bind(c);
  (void)c.take_events();
  c.on_timer(t0 + 49s);
  EXPECT_TRUE(c.take_packets().empty()) << "not before T1";
  c.on_timer(t0 + 50s);
  EXPECT_EQ(c.state(), ClientState::renewing);
  const Sent r = only_packet(c);
  EXPECT_EQ(r.m.type, MessageType::request);
  EXPECT_FALSE(r.broadcast) << "RENEWING: unicast to the server";
  EXPECT_EQ(r.udp.source, kAddress);
  EXPECT_EQ(r.udp.destination, kServer);
  EXPECT_EQ(r.m.ciaddr, kAddress);
  EXPECT_FALSE(r.m.requested_address) << "option 50 MUST NOT be sent in RENEWING (Table 5)";
  EXPECT_FALSE(r.m.server_identifier);

  c.on_packet(answer(r.m, MessageType::ack, 100), t0 + 51s);
  EXPECT_EQ(c.state(), ClientState::bound);
  const auto events = c.take_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, ClientEvent::Kind::renewed);
  EXPECT_EQ(c.lease()->start, t0 + 50s);
  EXPECT_EQ(c.counters().renewals, 1u);
}

TEST_F(Fixture, UnansweredRenewalRebindsBroadcastAtT2ThenTheLeaseExpires) {
  Client c(settings());
  bind(c);
  (void)c.take_events();
  c.on_timer(t0 + 50s);
  (void)only_packet(c);
  // §4.4.5: the next try waits half the time to T2, at least 60 s — so at T2 (87 s) it rebinds.
  EXPECT_EQ(c.next_timer(), t0 + 87s);
  c.on_timer(t0 + 87s);
  EXPECT_EQ(c.state(), ClientState::rebinding);
  const Sent r = only_packet(c);
  EXPECT_TRUE(r.broadcast);
  EXPECT_EQ(r.udp.destination, kBroadcast);
  EXPECT_EQ(r.m.ciaddr, kAddress);
  EXPECT_EQ(c.next_timer(), t0 + 100s) << "the next try would be past expiry: expiry comes first";
  c.on_timer(t0 + 100s);
  EXPECT_EQ(c.state(), ClientState::selecting) << "lease gone: back to INIT, DISCOVER at once";
  EXPECT_FALSE(c.lease());
  const auto events = c.take_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, ClientEvent::Kind::lost);
  EXPECT_EQ(events[0].reason, "the DHCP lease expired");
  EXPECT_EQ(only_packet(c).m.type, MessageType::discover);
  EXPECT_EQ(c.counters().expiries, 1u);
}

TEST_F(Fixture, ANakWhileRenewingLosesTheLeaseAndStartsOver) {
  Client c(settings());
  bind(c);
  (void)c.take_events();
  c.on_timer(t0 + 50s);
  const Sent r = only_packet(c);
  c.on_packet(answer(r.m, MessageType::nak), t0 + 50s);
  EXPECT_FALSE(c.lease());
  const auto events = c.take_events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, ClientEvent::Kind::lost);
  EXPECT_EQ(events[0].reason, "DHCPNAK from 10.64.64.1: go away");
  EXPECT_EQ(c.state(), ClientState::selecting);
  const Sent d = only_packet(c);
  EXPECT_EQ(d.m.type, MessageType::discover);
  EXPECT_NE(d.m.xid, r.m.xid);
  // A second NAK in a row (after the next offer) waits before the next DISCOVER.
  c.on_packet(answer(d.m, MessageType::offer), t0 + 51s);
  const Sent r2 = only_packet(c);
  c.on_packet(answer(r2.m, MessageType::nak), t0 + 52s);
  EXPECT_EQ(c.state(), ClientState::init);
  EXPECT_TRUE(c.take_packets().empty());
  ASSERT_TRUE(c.next_timer());
  EXPECT_GE(*c.next_timer(), t0 + 52s + 3s);
  EXPECT_LE(*c.next_timer(), t0 + 52s + 5s);
}

TEST_F(Fixture, DiscoverIsRetransmittedWithDoublingWaitsAndJitter) {
  Client c(settings());
  c.start(t0);
  const Sent first = only_packet(c);
  Clock::time_point at = t0;
  const std::array<std::chrono::seconds, 6> expected = {4s, 8s, 16s, 32s, 64s, 64s};
  for (const auto wait : expected) {
    ASSERT_TRUE(c.next_timer());
    const auto actual = *c.next_timer() - at;
    EXPECT_GE(actual, wait - 1s);
    EXPECT_LE(actual, wait + 1s);
    at = *c.next_timer();
    c.on_timer(at);
    const Sent again = only_packet(c);
    EXPECT_EQ(again.m.type, MessageType::discover);
    EXPECT_EQ(again.m.xid, first.m.xid) << "a retransmission keeps the xid";
    EXPECT_GT(again.m.secs, 0) << "secs counts from the start of the exchange";
  }
  EXPECT_EQ(c.counters().retransmissions, expected.size());
}

TEST_F(Fixture, AnUnansweredRequestGoesBackToDiscoverAfterItsAttempts) {
  ClientSettings s = settings();
  s.request_attempts = 2;
  Client c(s);
  c.start(t0);
  c.on_packet(answer(only_packet(c).m, MessageType::offer), t0);
  EXPECT_EQ(only_packet(c).m.type, MessageType::request);
  c.on_timer(*c.next_timer());
  EXPECT_EQ(only_packet(c).m.type, MessageType::request);
  c.on_timer(*c.next_timer());
  EXPECT_EQ(c.state(), ClientState::selecting);
  EXPECT_EQ(only_packet(c).m.type, MessageType::discover);
}

TEST_F(Fixture, RepliesForSomeoneElseOrOutOfPlaceAreIgnored) {
  Client c(settings());
  c.start(t0);
  const Sent d = only_packet(c);
  Message other = d.m;
  other.xid ^= 1;
  c.on_packet(answer(other, MessageType::offer), t0);
  Message stranger = d.m;
  stranger.chaddr.bytes[5] = 0x99;
  c.on_packet(answer(stranger, MessageType::offer), t0);
  c.on_packet(answer(d.m, MessageType::ack), t0);  // an ACK while SELECTING
  EXPECT_EQ(c.state(), ClientState::selecting);
  EXPECT_EQ(c.counters().not_ours, 3u);
  c.on_packet(Vec{0x45, 0x00}, t0);
  EXPECT_EQ(c.counters().malformed, 1u);
  EXPECT_TRUE(c.take_packets().empty());
}

TEST_F(Fixture, ServerTimesAreUsedOnlyWhenConsistent) {
  Client c(settings());
  c.start(t0);
  c.on_packet(answer(only_packet(c).m, MessageType::offer), t0);
  c.on_packet(answer(only_packet(c).m, MessageType::ack, 100, 30, 60), t0);
  EXPECT_EQ(c.lease()->t1_s, 30u);
  EXPECT_EQ(c.lease()->t2_s, 60u);
  Client d(settings());
  d.start(t0);
  d.on_packet(answer(only_packet(d).m, MessageType::offer), t0);
  d.on_packet(answer(only_packet(d).m, MessageType::ack, 100, 70, 60), t0);  // T1 > T2
  EXPECT_EQ(d.lease()->t1_s, 50u);
  EXPECT_EQ(d.lease()->t2_s, 87u);
}

TEST_F(Fixture, AnInfiniteLeaseIsNeverRenewed) {
  Client c(settings());
  bind(c, kInfiniteLease);
  EXPECT_FALSE(c.next_timer());
}

TEST_F(Fixture, ReleaseSendsDhcpreleaseToTheServerAndStops) {
  Client c(settings());
  bind(c);
  c.release(t0 + 5s);
  const Sent r = only_packet(c);
  EXPECT_EQ(r.m.type, MessageType::release);
  EXPECT_FALSE(r.broadcast);
  EXPECT_EQ(r.udp.destination, kServer);
  EXPECT_EQ(r.m.ciaddr, kAddress);
  EXPECT_EQ(r.m.server_identifier, kServer) << "Table 5: MUST";
  EXPECT_TRUE(r.m.parameter_request_list.empty()) << "Table 5: MUST NOT";
  EXPECT_EQ(c.state(), ClientState::stopped);
  EXPECT_FALSE(c.next_timer());
  Client unbound(settings());
  unbound.start(t0);
  (void)unbound.take_packets();
  unbound.release(t0);
  EXPECT_TRUE(unbound.take_packets().empty()) << "nothing to release without a lease";
}

// A whole lease life against the emulated server: bound, renewed at T1 twice, a NAK, bound again.
TEST_F(Fixture, AgainstTheEmulatedServer) {
  sim::DhcpServerConfig sc;
  sc.client_address = kAddress;
  sc.server_address = kServer;
  sc.lease_s = 20;
  sim::DhcpServer server(sc);
  Client c(settings());
  Clock::time_point now = t0;
  const auto exchange = [&] {
    for (int i = 0; i < 8; ++i) {
      const auto out = c.take_packets();
      if (out.empty()) return;
      for (const auto& p : out)
        if (auto reply = server.from_client(p.ip, now)) c.on_packet(*reply, now);
    }
  };
  c.start(now);
  exchange();
  ASSERT_EQ(c.state(), ClientState::bound);
  for (int renewal = 0; renewal < 2; ++renewal) {
    now = *c.next_timer();
    c.on_timer(now);
    exchange();
    EXPECT_EQ(c.state(), ClientState::bound);
  }
  EXPECT_EQ(c.counters().renewals, 2u);
  server.nak_next_request();
  now = *c.next_timer();
  c.on_timer(now);
  exchange();
  EXPECT_EQ(c.state(), ClientState::bound) << "NAK, DISCOVER, OFFER, REQUEST, ACK";
  EXPECT_EQ(server.counters().naks, 1u);
  EXPECT_EQ(c.counters().leases, 2u);
  std::vector<ClientEvent::Kind> kinds;
  for (const auto& e : c.take_events()) kinds.push_back(e.kind);
  using K = ClientEvent::Kind;
  EXPECT_EQ(kinds, (std::vector<K>{K::acquired, K::renewed, K::renewed, K::lost, K::acquired}));
}

}  // namespace
}  // namespace wwan::dhcp4
