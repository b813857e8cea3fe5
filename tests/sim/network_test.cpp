// The network behind the emulated modem. Requests are built here byte by byte and every reply is
// checked by parsing it and recomputing its checksums with ref_checksum, a naive RFC 1071
// implementation that shares nothing with datapath/ethernet, so the network cannot pass by
// agreeing with itself.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sim/modem.hpp"
#include "sim/network.hpp"

namespace wwan::sim {
namespace {

using Vec = std::vector<std::uint8_t>;
using namespace std::chrono_literals;

std::uint16_t ref_checksum(Vec data) {
  if (data.size() % 2 != 0) data.push_back(0);
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i < data.size(); i += 2) {
    sum += static_cast<std::uint32_t>(data[i] << 8 | data[i + 1]);
    sum = (sum & 0xFFFF) + (sum >> 16);
  }
  return static_cast<std::uint16_t>(~sum & 0xFFFF);
}
std::uint16_t be16(const Vec& v, std::size_t at) { return static_cast<std::uint16_t>(v[at] << 8 | v[at + 1]); }
void put16(Vec& v, std::size_t at, std::uint16_t x) {
  v[at] = static_cast<std::uint8_t>(x >> 8);
  v[at + 1] = static_cast<std::uint8_t>(x);
}
Vec sub(const Vec& v, std::size_t from, std::size_t n) {
  return Vec(v.begin() + static_cast<std::ptrdiff_t>(from), v.begin() + static_cast<std::ptrdiff_t>(from + n));
}
// Pseudo-header (RFC 768 for v4, RFC 8200 §8.1 for v6) + message; 0 means the checksum is right.
std::uint16_t ref_l4_checksum(const Vec& ip, std::uint8_t proto) {
  const bool v6 = (ip[0] >> 4) == 6;
  const std::size_t hdr = v6 ? 40 : static_cast<std::size_t>(ip[0] & 0xF) * 4;
  const Vec l4 = sub(ip, hdr, ip.size() - hdr);
  Vec all = v6 ? sub(ip, 8, 32) : sub(ip, 12, 8);
  const auto len = static_cast<std::uint32_t>(l4.size());
  if (v6) {
    for (int s = 24; s >= 0; s -= 8) all.push_back(static_cast<std::uint8_t>(len >> s));
    all.insert(all.end(), {0, 0, 0, proto});
  } else {
    all.insert(all.end(), {0, proto, static_cast<std::uint8_t>(len >> 8), static_cast<std::uint8_t>(len)});
  }
  all.insert(all.end(), l4.begin(), l4.end());
  return ref_checksum(all);
}

const Vec kHost4 = {10, 64, 64, 2}, kFar4 = {8, 8, 4, 4};
const Vec kHost6 = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2};
const Vec kFar6 = {0x20, 0x01, 0x48, 0x60, 0x48, 0x60, 0, 0, 0, 0, 0, 0, 0, 0, 0x88, 0x88};

Vec ipv4(std::uint8_t proto, const Vec& l4, const Vec& src = kHost4, const Vec& dst = kFar4) {
  Vec p = {0x45, 0x00, 0, 0, 0x12, 0x34, 0x40, 0x00, 64, proto, 0, 0};
  p.insert(p.end(), src.begin(), src.end());
  p.insert(p.end(), dst.begin(), dst.end());
  p.insert(p.end(), l4.begin(), l4.end());
  put16(p, 2, static_cast<std::uint16_t>(p.size()));
  put16(p, 10, ref_checksum(sub(p, 0, 20)));
  return p;
}
Vec ipv6(std::uint8_t next, const Vec& l4, const Vec& src = kHost6, const Vec& dst = kFar6) {
  Vec p = {0x60, 0, 0, 0, 0, 0, next, 64};
  put16(p, 4, static_cast<std::uint16_t>(l4.size()));
  p.insert(p.end(), src.begin(), src.end());
  p.insert(p.end(), dst.begin(), dst.end());
  p.insert(p.end(), l4.begin(), l4.end());
  return p;
}
// Fills the L4 checksum at `off` (from the start of L4) with the reference computation.
Vec with_l4_checksum(Vec ip, std::uint8_t proto, std::size_t off) {
  const std::size_t hdr = (ip[0] >> 4) == 6 ? 40 : 20;
  put16(ip, hdr + off, 0);
  put16(ip, hdr + off, ref_l4_checksum(ip, proto));
  return ip;
}
Vec icmp4_echo(std::uint16_t seq) {
  Vec l4 = {8, 0, 0, 0, 0xbe, 0xef, 0, 0, 'p', 'i', 'n', 'g', '!'};
  put16(l4, 6, seq);
  put16(l4, 2, ref_checksum(l4));
  return ipv4(1, l4);
}
Vec udp4(std::uint16_t src_port, std::uint16_t dst_port, const Vec& payload) {
  Vec l4 = {0, 0, 0, 0, 0, 0, 0, 0};
  put16(l4, 0, src_port);
  put16(l4, 2, dst_port);
  put16(l4, 4, static_cast<std::uint16_t>(8 + payload.size()));
  l4.insert(l4.end(), payload.begin(), payload.end());
  return with_l4_checksum(ipv4(17, l4), 17, 6);
}
Vec udp6(std::uint16_t src_port, std::uint16_t dst_port, const Vec& payload) {
  Vec l4 = {0, 0, 0, 0, 0, 0, 0, 0};
  put16(l4, 0, src_port);
  put16(l4, 2, dst_port);
  put16(l4, 4, static_cast<std::uint16_t>(8 + payload.size()));
  l4.insert(l4.end(), payload.begin(), payload.end());
  return with_l4_checksum(ipv6(17, l4), 17, 6);
}
Vec icmp6_echo() {
  const Vec l4 = {128, 0, 0, 0, 0x12, 0x34, 0, 7, 'v', '6'};
  return with_l4_checksum(ipv6(58, l4), 58, 2);
}

const Clock::time_point kT0{};

Vec take(Network& n, Clock::time_point now = Clock::time_point{}) {
  std::array<std::uint8_t, 2048> out{};
  const auto len = n.to_host(out, now);
  if (!len) return {};
  return Vec(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(*len));
}

TEST(NetworkTest, AnswersIcmpv4EchoForAnyDestination) {
  Network n;
  const Vec req = icmp4_echo(3);
  n.from_host(req, kT0);
  const Vec r = take(n);
  ASSERT_EQ(r.size(), req.size());
  EXPECT_EQ(ref_checksum(sub(r, 0, 20)), 0);  // IPv4 header checksum
  EXPECT_EQ(sub(r, 12, 4), kFar4);             // source: whom the host pinged
  EXPECT_EQ(sub(r, 16, 4), kHost4);
  EXPECT_EQ(r[9], 1);
  EXPECT_EQ(r[20], 0);                         // echo reply
  EXPECT_EQ(ref_checksum(sub(r, 20, r.size() - 20)), 0);
  EXPECT_EQ(sub(r, 24, r.size() - 24), sub(req, 24, req.size() - 24));  // id, seq, data echoed
  EXPECT_EQ(n.counters().icmp_echo_replies, 1u);
  EXPECT_EQ(n.counters().packets_to_host, 1u);
  EXPECT_TRUE(take(n).empty());
}

TEST(NetworkTest, AnswersIcmpv6Echo) {
  Network n;
  const Vec req = icmp6_echo();
  n.from_host(req, kT0);
  const Vec r = take(n);
  ASSERT_EQ(r.size(), req.size());
  EXPECT_EQ(sub(r, 8, 16), kFar6);
  EXPECT_EQ(sub(r, 24, 16), kHost6);
  EXPECT_EQ(r[40], 129);
  EXPECT_EQ(ref_l4_checksum(r, 58), 0);
  EXPECT_EQ(n.counters().icmp_echo_replies, 1u);
}

TEST(NetworkTest, EchoesUdpOnPort7BothFamilies) {
  Network n;
  n.from_host(udp4(40000, 7, {'h', 'e', 'l', 'l', 'o'}), kT0);
  Vec r = take(n);
  ASSERT_EQ(r.size(), 20u + 8 + 5);
  EXPECT_EQ(ref_checksum(sub(r, 0, 20)), 0);
  EXPECT_EQ(sub(r, 12, 4), kFar4);
  EXPECT_EQ(be16(r, 20), 7);      // source port
  EXPECT_EQ(be16(r, 22), 40000);  // destination port
  EXPECT_NE(be16(r, 26), 0);
  EXPECT_EQ(ref_l4_checksum(r, 17), 0);
  EXPECT_EQ(sub(r, 28, 5), (Vec{'h', 'e', 'l', 'l', 'o'}));

  n.from_host(udp6(40001, 7, {1, 2, 3}), kT0);
  r = take(n);
  ASSERT_EQ(r.size(), 40u + 8 + 3);
  EXPECT_EQ(be16(r, 40), 7);
  EXPECT_EQ(be16(r, 42), 40001);
  EXPECT_EQ(sub(r, 8, 16), kFar6);
  EXPECT_EQ(ref_l4_checksum(r, 17), 0);
  EXPECT_EQ(n.counters().udp_echo_replies, 2u);
}

TEST(NetworkTest, SinksPort9AndCountsTheRest) {
  Network n;
  const Vec discard = udp4(1234, 9, Vec(100, 0xab));
  n.from_host(discard, kT0);
  n.from_host(udp6(1234, 9, Vec(10, 1)), kT0);
  n.from_host(udp4(1234, 53, {1}), kT0);             // nobody answers DNS here
  n.from_host(ipv4(6, Vec(20, 0)), kT0);             // TCP
  Vec echo_reply = icmp4_echo(1);
  echo_reply[20] = 0;                            // an echo *reply* from the host: not answered
  put16(echo_reply, 22, 0);
  put16(echo_reply, 22, ref_checksum(sub(echo_reply, 20, echo_reply.size() - 20)));
  n.from_host(echo_reply, kT0);
  EXPECT_TRUE(take(n).empty());
  EXPECT_EQ(n.counters().sink_packets, 2u);
  EXPECT_EQ(n.counters().sink_bytes, discard.size() + 40 + 8 + 10);
  EXPECT_EQ(n.counters().other_packets, 3u);
  EXPECT_EQ(n.counters().packets_from_host, 5u);
  EXPECT_EQ(n.counters().malformed_from_host, 0u);
}

TEST(NetworkTest, MalformedAndCorruptPacketsAreCountedNotAnswered) {
  Network n;
  n.from_host(Vec{}, kT0);
  n.from_host(Vec{0x45, 0, 0}, kT0);                   // truncated header
  n.from_host(Vec(30, 0), kT0);                         // version 0
  Vec bad_header = icmp4_echo(1);
  bad_header[11] ^= 1;
  n.from_host(bad_header, kT0);
  Vec bad_icmp = icmp4_echo(1);
  bad_icmp[30] ^= 0x40;
  n.from_host(bad_icmp, kT0);
  Vec bad_udp6 = udp6(1, 7, {1, 2});
  bad_udp6.back() ^= 1;
  n.from_host(bad_udp6, kT0);
  Vec zero_udp6 = udp6(1, 7, {1, 2});
  put16(zero_udp6, 46, 0);                         // UDP over IPv6 without a checksum
  n.from_host(zero_udp6, kT0);
  EXPECT_TRUE(take(n).empty());
  EXPECT_EQ(n.counters().malformed_from_host, 7u);
  EXPECT_EQ(n.counters().icmp_echo_replies + n.counters().udp_echo_replies, 0u);
}

// The hairpin NAT (network.hpp "The reflector"): a TCP segment to 198.51.100.9 comes back from
// 198.51.100.10 and a reply to .10 comes back from .9, everything else byte for byte the same,
// both checksums right (checked by the reference sum, not the incremental update under test).
Vec tcp4(const Vec& src, const Vec& dst, std::uint16_t sport, std::uint16_t dport, const Vec& payload) {
  Vec l4 = {0, 0, 0, 0, 0, 0, 0x12, 0x34, 0, 0, 0x56, 0x78, 0x50, 0x18, 0x01, 0xF5, 0, 0, 0, 0};
  put16(l4, 0, sport);
  put16(l4, 2, dport);
  l4.insert(l4.end(), payload.begin(), payload.end());
  return with_l4_checksum(ipv4(6, l4, src, dst), 6, 16);
}

TEST(NetworkTest, TheReflectorSendsTcpAndUdpBackFromItsOtherAddress) {
  Network n;
  const Vec reflector = {198, 51, 100, 9}, peer = {198, 51, 100, 10};
  const Vec payload = {'h', 'a', 'i', 'r', 'p', 'i', 'n', 0, 0xFF, 0x80, 7};
  struct Case {
    Vec sent;
    Vec from;  // the reply's expected source
  };
  const Case cases[] = {
      {tcp4(kHost4, reflector, 40000, 5201, payload), peer},   // client -> server (SYN side)
      {tcp4(kHost4, peer, 5201, 40000, payload), reflector},   // server -> client
      {udp4(40001, 5202, payload), {}},                         // filled below: to the reflector
  };
  for (std::size_t i = 0; i < 3; ++i) {
    Vec sent = cases[i].sent;
    Vec from = cases[i].from;
    if (i == 2) {  // UDP to the reflector: the address changes, so the checksum is filled again
      sent = ipv4(17, sub(sent, 20, sent.size() - 20), kHost4, reflector);
      sent = with_l4_checksum(sent, 17, 6);
      from = peer;
    }
    n.from_host(sent, kT0);
    const Vec r = take(n);
    ASSERT_EQ(r.size(), sent.size()) << "case " << i;
    EXPECT_EQ(sub(r, 12, 4), from) << "case " << i << ": source";
    EXPECT_EQ(sub(r, 16, 4), kHost4) << "case " << i << ": back to the host";
    EXPECT_EQ(ref_checksum(sub(r, 0, 20)), 0) << "case " << i << ": IPv4 header checksum";
    EXPECT_EQ(ref_l4_checksum(r, r[9]), 0) << "case " << i << ": TCP/UDP checksum";
    EXPECT_EQ(sub(r, 20, 4), sub(sent, 20, 4)) << "case " << i << ": the ports are unchanged";
    if (r[9] == 6) {
      EXPECT_EQ(sub(r, 24, 12), sub(sent, 24, 12)) << "case " << i << ": seq, ack, flags, window";
    }
    EXPECT_EQ(sub(r, r.size() - payload.size(), payload.size()), payload);
    EXPECT_EQ(r[8], sent[8]) << "the TTL is left alone";
  }
  EXPECT_EQ(n.counters().reflected_packets, 3u);

  // A corrupted segment is not reflected (the driver that made it must show); neither is ICMP.
  Vec bad = tcp4(kHost4, reflector, 40000, 5201, payload);
  bad.back() ^= 0x10;
  n.from_host(bad, kT0);
  Vec ping = icmp4_echo(9);
  n.from_host(ipv4(1, sub(ping, 20, ping.size() - 20), kHost4, reflector), kT0);
  EXPECT_TRUE(take(n).empty());
  EXPECT_EQ(n.counters().malformed_from_host, 1u);
  EXPECT_EQ(n.counters().other_packets, 1u);
  EXPECT_EQ(n.counters().reflected_packets, 3u);
}

TEST(NetworkTest, TrailingEthernetPaddingIsIgnored) {
  Network n;
  Vec padded = icmp4_echo(9);
  const std::size_t ip_len = padded.size();
  padded.resize(46 + 20, 0);
  n.from_host(padded, kT0);
  const Vec r = take(n);
  EXPECT_EQ(r.size(), ip_len);
  EXPECT_EQ(ref_checksum(sub(r, 20, r.size() - 20)), 0);
}

TEST(NetworkTest, QueueTowardTheHostIsBounded) {
  NetworkConfig c;
  c.to_host_queue_packets = 2;
  Network n(c);
  for (std::uint16_t i = 0; i < 5; ++i) n.from_host(icmp4_echo(i), kT0);
  EXPECT_EQ(n.counters().icmp_echo_replies, 5u);
  EXPECT_EQ(n.counters().dropped_queue_full, 3u);
  EXPECT_EQ(be16(take(n), 26), 0);  // sequence 0 first: FIFO
  EXPECT_EQ(be16(take(n), 26), 1);
  EXPECT_TRUE(take(n).empty());
}

TEST(NetworkTest, APacketLargerThanTheBufferIsDroppedNotTruncated) {
  Network n;
  n.from_host(udp4(5, 7, Vec(1000, 7)), kT0);
  n.from_host(icmp4_echo(2), kT0);
  std::array<std::uint8_t, 100> small{};
  const auto len = n.to_host(small, Clock::time_point{});
  ASSERT_TRUE(len);
  EXPECT_EQ(*len, icmp4_echo(2).size());  // the big echo was skipped
  EXPECT_EQ(n.counters().dropped_too_large, 1u);
}

TEST(NetworkTest, UnlimitedSourceHonoursThePacketLimit) {
  Network n;
  const Clock::time_point t0{};
  n.start_source({0, 100, 3, 5001, 6000}, t0);
  EXPECT_TRUE(n.has_packet_for_host(t0));
  for (std::uint64_t i = 0; i < 3; ++i) {
    const Vec p = take(n, t0);
    ASSERT_EQ(p.size(), 20u + 8 + 100);
    EXPECT_EQ(ref_checksum(sub(p, 0, 20)), 0);
    EXPECT_EQ(sub(p, 12, 4), (Vec{198, 51, 100, 7}));
    EXPECT_EQ(sub(p, 16, 4), kHost4);
    EXPECT_EQ(be16(p, 20), 6000);
    EXPECT_EQ(be16(p, 22), 5001);
    EXPECT_EQ(ref_l4_checksum(p, 17), 0);
    EXPECT_EQ(p[28 + 7], i);  // the sequence number, big-endian, first in the payload
  }
  EXPECT_TRUE(take(n, t0).empty());
  EXPECT_FALSE(n.next_deadline());
  EXPECT_EQ(n.counters().source_packets, 3u);
  EXPECT_EQ(n.counters().source_bytes, 3u * 128);
}

TEST(NetworkTest, RateLimitedSourceFollowsThePassedClock) {
  Network n;
  const Clock::time_point t0 = Clock::time_point{} + 1h;
  // 100 bytes of payload -> 128 IP bytes = 1024 bits; 1024000 bit/s -> one packet per millisecond.
  n.start_source({1'024'000, 100, 0, 5001, 5001}, t0);
  EXPECT_FALSE(take(n, t0).empty());  // the first is due at once
  EXPECT_TRUE(take(n, t0).empty());
  EXPECT_FALSE(n.has_packet_for_host(t0 + 999us));
  ASSERT_TRUE(n.next_deadline());
  EXPECT_EQ(*n.next_deadline(), t0 + 1ms);
  EXPECT_FALSE(take(n, t0 + 1ms).empty());
  // A late caller gets the backlog: 10 ms later, 10 more are due.
  int burst = 0;
  while (!take(n, t0 + 11ms).empty()) ++burst;
  EXPECT_EQ(burst, 10);
  EXPECT_EQ(*n.next_deadline(), t0 + 12ms);
  n.stop_source();
  EXPECT_FALSE(n.next_deadline());
  EXPECT_TRUE(take(n, t0 + 1h).empty());
}

TEST(NetworkTest, RepliesGoBeforeSourcedPackets) {
  Network n;
  n.start_source({0, 10, 0, 1, 1}, Clock::time_point{});
  n.from_host(icmp4_echo(5), kT0);
  const Vec first = take(n);
  EXPECT_EQ(first[9], 1);  // ICMP
  EXPECT_EQ(take(n)[9], 17);
}

// ---- the control port -------------------------------------------------------------------------

Vec text(std::string_view t) { return Vec(t.begin(), t.end()); }

// The answer to a control datagram sent from the host's `port` to kFar4 (or kFar6): checked as a
// UDP datagram from the address and port the command went to, back to the sender; its payload.
std::string control_answer(const Vec& r, std::uint16_t port, bool v6 = false) {
  const std::size_t l3 = v6 ? 40 : 20;
  if (r.size() < l3 + 8) {
    ADD_FAILURE() << "no answer (" << r.size() << " bytes)";
    return {};
  }
  if (v6) {
    EXPECT_EQ(r[0] >> 4, 6);
    EXPECT_EQ(be16(r, 4), r.size() - 40);
    EXPECT_EQ(r[6], 17);
    EXPECT_EQ(sub(r, 8, 16), kFar6);
    EXPECT_EQ(sub(r, 24, 16), kHost6);
  } else {
    EXPECT_EQ(r[0], 0x45);
    EXPECT_EQ(be16(r, 2), r.size());
    EXPECT_EQ(r[9], 17);
    EXPECT_EQ(ref_checksum(sub(r, 0, 20)), 0);
    EXPECT_EQ(sub(r, 12, 4), kFar4);
    EXPECT_EQ(sub(r, 16, 4), kHost4);
  }
  EXPECT_EQ(be16(r, l3), kSimControlPort);
  EXPECT_EQ(be16(r, l3 + 2), port);
  EXPECT_EQ(be16(r, l3 + 4), r.size() - l3);
  EXPECT_NE(be16(r, l3 + 6), 0);
  EXPECT_EQ(ref_l4_checksum(r, 17), 0);
  return std::string(r.begin() + static_cast<std::ptrdiff_t>(l3 + 8), r.end());
}

TEST(NetworkControlPortTest, SourceStartsAStreamAtTheArrivalTime) {
  Network n;
  const Clock::time_point t = Clock::time_point{} + 1h;
  // 100 bytes of payload -> 128 IP bytes = 1024 bits; 1024000 bit/s -> one packet per millisecond.
  n.from_host(udp4(40000, kSimControlPort, text("source 1024000 100 3 6001\n")), t);
  EXPECT_EQ(control_answer(take(n, t), 40000), "ok");  // the answer first, before the stream
  EXPECT_EQ(n.counters().control_commands, 1u);
  EXPECT_EQ(n.counters().other_packets, 0u);
  Vec p = take(n, t);
  ASSERT_EQ(p.size(), 20u + 8 + 100);
  EXPECT_EQ(sub(p, 12, 4), (Vec{198, 51, 100, 7}));
  EXPECT_EQ(sub(p, 16, 4), kHost4);
  EXPECT_EQ(be16(p, 22), 6001);
  EXPECT_EQ(ref_l4_checksum(p, 17), 0);
  EXPECT_TRUE(take(n, t).empty());
  ASSERT_TRUE(n.next_deadline());
  EXPECT_EQ(*n.next_deadline(), t + 1ms);
  EXPECT_FALSE(take(n, t + 1ms).empty());
  EXPECT_FALSE(take(n, t + 2ms).empty());
  EXPECT_TRUE(take(n, t + 1h).empty());  // the limit of 3
  EXPECT_EQ(n.counters().source_packets, 3u);
}

TEST(NetworkControlPortTest, UnlimitedSourceUntilStopSource) {
  Network n;
  n.from_host(udp4(40000, kSimControlPort, text("source 0 1472 0 5001")), kT0);
  EXPECT_EQ(control_answer(take(n), 40000), "ok");
  for (int i = 0; i < 100; ++i) {
    const Vec p = take(n);
    ASSERT_EQ(p.size(), 1500u);
    EXPECT_EQ(p[28 + 7], i);  // the sequence number
  }
  n.from_host(udp4(40001, kSimControlPort, text("stop-source")), kT0);
  EXPECT_EQ(control_answer(take(n), 40001), "ok");  // replies go before sourced packets
  EXPECT_TRUE(take(n).empty());
  EXPECT_FALSE(n.next_deadline());
  EXPECT_EQ(n.counters().source_packets, 100u);
  EXPECT_EQ(n.counters().control_commands, 2u);
  EXPECT_EQ(n.counters().control_rejected, 0u);
}

TEST(NetworkControlPortTest, AnswersOverIpv6Too) {
  Network n;
  n.from_host(udp6(40002, kSimControlPort, text("stop-source\r\n")), kT0);
  EXPECT_EQ(control_answer(take(n), 40002, true), "ok");
  n.from_host(udp6(40002, kSimControlPort, text("nonsense")), kT0);
  EXPECT_EQ(control_answer(take(n), 40002, true).rfind("error: ", 0), 0u);
  EXPECT_EQ(n.counters().control_commands, 1u);
  EXPECT_EQ(n.counters().control_rejected, 1u);
}

TEST(NetworkControlPortTest, AnythingElseIsRejectedWithAReasonAndChangesNothing) {
  Network n;
  const std::vector<Vec> bad = {
      text(""),           text("   \n"),           text("bogus"),
      text("source 1 2"), text("source x 1 1 1"),  text("source 0 65508 0 1"),  // > 65507 bytes of UDP payload
      text("source 0 1 0 0"), text("source 0 1 0 65536"), text("source -1 1 1 1"), text("source 0 1 1 1 1"),
      text("stop-source now"), text("drop-session 1"), text("SOURCE 0 1 1 1"), Vec{'o', 'k', 0, 1, 0xff},
  };
  for (const Vec& b : bad) {
    n.from_host(udp4(40003, kSimControlPort, b), kT0);
    const std::string a = control_answer(take(n), 40003);
    EXPECT_EQ(a.rfind("error: ", 0), 0u) << std::string(b.begin(), b.end()) << " -> " << a;
  }
  EXPECT_EQ(n.counters().control_rejected, bad.size());
  EXPECT_EQ(n.counters().control_commands, 0u);
  EXPECT_EQ(n.counters().other_packets, 0u);
  EXPECT_FALSE(n.next_deadline());  // no source started
  EXPECT_TRUE(take(n).empty());
  EXPECT_FALSE(n.take_drop_session_request(kT0 + 1h));
  // The biggest payload is accepted.
  n.from_host(udp4(40003, kSimControlPort, text("source 0 65507 1 9")), kT0);
  EXPECT_EQ(control_answer(take(n), 40003), "ok");
}

TEST(NetworkControlPortTest, DropSessionActsShortlyAfterItsAnswerHasLeft) {
  Network n;
  n.from_host(udp4(40004, kSimControlPort, text("drop-session")), kT0);
  EXPECT_FALSE(n.next_deadline());                      // nothing before the "ok" has left
  EXPECT_FALSE(n.take_drop_session_request(kT0 + 1h));  // the "ok" is still queued
  const Clock::time_point left = kT0 + 2h;
  EXPECT_EQ(control_answer(take(n, left), 40004), "ok");
  ASSERT_TRUE(n.next_deadline());
  EXPECT_EQ(*n.next_deadline(), left + kDropSessionAfterAnswer);
  EXPECT_FALSE(n.take_drop_session_request(left + kDropSessionAfterAnswer - 1ms));
  EXPECT_TRUE(n.take_drop_session_request(left + kDropSessionAfterAnswer));
  EXPECT_FALSE(n.take_drop_session_request(left + 1h));  // once
  EXPECT_FALSE(n.next_deadline());
  EXPECT_EQ(n.counters().control_commands, 1u);
}

TEST(NetworkControlPortTest, UnplugActsShortlyAfterItsAnswerHasLeftAndIsNotADrop) {
  Network n;
  n.from_host(udp4(40005, kSimControlPort, text("unplug")), kT0);
  EXPECT_FALSE(n.take_unplug_request(kT0 + 1h));  // the "ok" is still queued
  const Clock::time_point left = kT0 + 2h;
  EXPECT_EQ(control_answer(take(n, left), 40005), "ok");
  ASSERT_TRUE(n.next_deadline());
  EXPECT_EQ(*n.next_deadline(), left + kDropSessionAfterAnswer);
  EXPECT_FALSE(n.take_unplug_request(left + kDropSessionAfterAnswer - 1ms));
  EXPECT_FALSE(n.take_drop_session_request(left + kDropSessionAfterAnswer));  // not a session drop
  EXPECT_TRUE(n.take_unplug_request(left + kDropSessionAfterAnswer));
  EXPECT_FALSE(n.take_unplug_request(left + 1h));  // once
  EXPECT_FALSE(n.next_deadline());
}

TEST(NetworkControlPortTest, DropSessionWhoseAnswerCannotBeQueuedStillActs) {
  NetworkConfig c;
  c.to_host_queue_packets = 1;
  Network n(c);
  n.from_host(icmp4_echo(1), kT0);
  n.from_host(udp4(40005, kSimControlPort, text("drop-session")), kT0);
  EXPECT_EQ(n.counters().dropped_queue_full, 1u);
  EXPECT_TRUE(n.take_drop_session_request(kT0 + kDropSessionAfterAnswer));
  EXPECT_EQ(take(n)[9], 1);  // the echo reply
  EXPECT_TRUE(take(n).empty());
}

// The `fault` commands (sim/network.hpp): each parsed into the request the modem's owner applies,
// released only once its "ok" has left toward the host, in order, once.
TEST(NetworkControlPortTest, FaultCommandsAreReleasedAfterTheirAnswerLeft) {
  using K = FaultRequest::Kind;
  Network n;
  const std::pair<const char*, FaultRequest> cases[] = {
      {"fault stall-in", {K::stall_in, 0}},
      {"fault stall-out", {K::stall_out, 0}},
      {"fault garbage 5000", {K::garbage, 5000}},
      {"fault truncated 1", {K::truncated, 1}},
      {"fault oversize 4294967295", {K::oversize, 4294967295u}},
      {"fault unplug-after-in 64", {K::unplug_after_in, 64}},
      {"fault lose-notifications on", {K::lose_notifications, 1}},
      {"fault lose-notifications off", {K::lose_notifications, 0}},
      {"fault control-delay 86400000", {K::control_delay, 86'400'000}},
      {"fault clear\n", {K::clear, 0}},
  };
  for (const auto& [command, request] : cases) {
    n.from_host(udp4(40010, kSimControlPort, text(command)), kT0);
    EXPECT_FALSE(n.take_fault_request()) << command << ": not before the answer left";
    EXPECT_EQ(control_answer(take(n), 40010), "ok") << command;
    const std::optional<FaultRequest> r = n.take_fault_request();
    ASSERT_TRUE(r) << command;
    EXPECT_EQ(*r, request) << command;
    EXPECT_FALSE(n.take_fault_request()) << command << ": once";
  }
  EXPECT_EQ(n.counters().control_commands, std::size(cases));
  EXPECT_FALSE(n.take_drop_session_request(kT0 + std::chrono::hours(1)));
  EXPECT_FALSE(n.take_unplug_request(kT0 + std::chrono::hours(1)));
}

TEST(NetworkControlPortTest, BadFaultCommandsAreRejectedAndBounded) {
  Network n;
  for (const char* bad : {"fault", "fault bogus", "fault stall-in 1", "fault garbage", "fault garbage 0",
                          "fault garbage 4294967296", "fault garbage -1", "fault lose-notifications maybe",
                          "fault control-delay 86400001", "fault truncated 1 2"}) {
    n.from_host(udp4(40011, kSimControlPort, text(bad)), kT0);
    EXPECT_EQ(control_answer(take(n), 40011).rfind("error: ", 0), 0u) << bad;
  }
  EXPECT_FALSE(n.take_fault_request());
  EXPECT_EQ(n.counters().control_commands, 0u);
  // Answers not yet taken by the host hold their faults back; no more than kMaxPendingFaults wait.
  for (std::size_t i = 0; i < Network::kMaxPendingFaults; ++i)
    n.from_host(udp4(40012, kSimControlPort, text("fault garbage 1")), kT0);
  n.from_host(udp4(40012, kSimControlPort, text("fault garbage 1")), kT0);
  for (std::size_t i = 0; i < Network::kMaxPendingFaults; ++i) EXPECT_EQ(control_answer(take(n), 40012), "ok");
  EXPECT_EQ(control_answer(take(n), 40012).rfind("error: too many fault commands", 0), 0u);
  std::size_t released = 0;
  while (n.take_fault_request()) ++released;
  EXPECT_EQ(released, Network::kMaxPendingFaults);
}

TEST(NetworkControlPortTest, FaultRequestsReachTheModemsFaults) {
  const std::unique_ptr<Modem> m = make_modem("mbim");
  ASSERT_TRUE(m);
  Network& n = m->network();
  for (const char* c : {"fault garbage 7", "fault stall-in", "fault lose-notifications on", "fault control-delay 1500"}) {
    n.from_host(udp4(40013, kSimControlPort, text(c)), kT0);
    ASSERT_EQ(control_answer(take(n), 40013), "ok") << c;
  }
  EXPECT_EQ(apply_fault_requests(*m), 4u);
  EXPECT_EQ(m->faults().garbage_ntbs, 7u);
  EXPECT_TRUE(m->faults().stall_bulk_in);
  EXPECT_TRUE(m->faults().lose_response_available);
  EXPECT_EQ(m->faults().control_answer_delay, std::chrono::milliseconds(1500));
  // What a re-enumerated modem inherits: the firmware's habits, not the counted faults.
  const Faults kept = faults_surviving_reset(m->faults());
  EXPECT_EQ(kept.garbage_ntbs, 0u);
  EXPECT_FALSE(kept.stall_bulk_in);
  EXPECT_TRUE(kept.lose_response_available);
  EXPECT_EQ(kept.control_answer_delay, std::chrono::milliseconds(1500));
  n.from_host(udp4(40013, kSimControlPort, text("fault clear")), kT0);
  ASSERT_EQ(control_answer(take(n), 40013), "ok");
  EXPECT_EQ(apply_fault_requests(*m), 1u);
  EXPECT_EQ(m->faults().garbage_ntbs, 0u);
  EXPECT_FALSE(m->faults().lose_response_available);
  EXPECT_EQ(m->faults().control_answer_delay, std::chrono::milliseconds(0));
  EXPECT_EQ(apply_fault_requests(*m), 0u);
}

}  // namespace
}  // namespace wwan::sim
