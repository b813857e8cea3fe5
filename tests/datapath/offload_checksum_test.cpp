// The Internet checksum (datapath/offload/checksum.hpp) and the IP/L4 header views
// (ip_packet.hpp): published vectors, then the fast sum against the naive RFC 1071 loop of
// offload_packets.hpp over every length and alignment that matters, then RFC 1624 updates.
#include "datapath/offload/checksum.hpp"

#include <gtest/gtest.h>

#include <random>

#include "datapath/offload/ip_packet.hpp"
#include "offload_packets.hpp"
#include "tests/support/hex.hpp"

namespace wwan::offload {
namespace {

using test::hex;
using namespace testing;

TEST(InternetChecksum, Rfc1071Example) {
  // RFC 1071 §3 "Numerical Examples": bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2 (big-endian).
  const auto bytes = hex("00 01 f2 03 f4 f5 f6 f7");
  EXPECT_EQ(csum::fold_be(csum::accumulate(bytes)), 0xddf2);
  EXPECT_EQ(csum::finish_be(csum::accumulate(bytes)), 0x220d);
}

TEST(InternetChecksum, Ipv4HeaderVector) {
  // A 20-byte IPv4 header (UDP, 192.168.0.1 -> 192.168.0.199, Total Length 0x73) whose
  // checksum is b861 (the worked example of Wikipedia's "Internet checksum" article).
  const auto header = hex(
      "45 00 00 73"   // version 4, IHL 5, TOS 0, Total Length 115
      "00 00 40 00"   // ID 0, DF
      "40 11 b8 61"   // TTL 64, UDP, checksum b861
      "c0 a8 00 01"   // 192.168.0.1
      "c0 a8 00 c7"); // 192.168.0.199
  EXPECT_EQ(csum::ipv4_header(header), 0xb861);
  EXPECT_TRUE(csum::verifies(csum::accumulate(header)));
}

TEST(InternetChecksum, OddLengthPadsTheLastByteAsHighOrder) {
  EXPECT_EQ(csum::fold_be(csum::accumulate(hex("ab"))), 0xab00);
  EXPECT_EQ(csum::fold_be(csum::accumulate(hex("12 34 ab"))), 0x1234 + 0xab00);
}

TEST(InternetChecksum, MatchesTheNaiveSumForEveryLengthAndAlignment) {
  std::mt19937 rng(1071);
  std::vector<std::uint8_t> buffer(4096 + 16);
  for (auto& b : buffer) b = static_cast<std::uint8_t>(rng());
  for (std::size_t length = 0; length <= 300; ++length)
    for (std::size_t align = 0; align < 8; ++align) {
      const std::span<const std::uint8_t> d(buffer.data() + align, length);
      ASSERT_EQ(csum::fold_be(csum::accumulate(d)), naive_fold(naive_sum(d))) << length << "@" << align;
    }
  // All-ones data stresses the end-around carries of the 64-bit accumulators.
  std::vector<std::uint8_t> ones(65535, 0xFF);
  EXPECT_EQ(csum::fold_be(csum::accumulate(ones)), naive_fold(naive_sum(ones)));
  // A sum carried on from a previous piece (even length) gives the same as one pass.
  const std::span<const std::uint8_t> all(buffer.data(), 4000);
  EXPECT_EQ(csum::fold_be(csum::accumulate(all.subspan(1000), csum::accumulate(all.first(1000)))),
            naive_fold(naive_sum(all)));
}

TEST(InternetChecksum, PseudoHeaderMatchesTheNaiveOne) {
  const Flow v4 = flow_v4({10, 0, 0, 2}, {10, 0, 0, 1}, 1, 2);
  const Flow v6 = flow_v6(2, 1, 1, 2);
  EXPECT_EQ(csum::fold_be(csum::pseudo_header(std::span(v4.source.data(), 4), std::span(v4.destination.data(), 4), 6, 52)),
            naive_fold(pseudo_sum(v4, 6, 52)));
  EXPECT_EQ(csum::fold_be(csum::pseudo_header(v6.source, v6.destination, 17, 70000)),
            naive_fold(pseudo_sum(v6, 17, 70000)));
}

TEST(InternetChecksum, Rfc1624UpdateEqualsRecomputing) {
  std::mt19937 rng(1624);
  for (int i = 0; i < 2000; ++i) {
    Packet h = ip_header(flow_v4({10, 0, 0, static_cast<std::uint8_t>(rng())}, {10, 0, 0, 1}, 1, 2),
                         IpFields{.id = static_cast<std::uint16_t>(rng())}, 6, rng() % 1400);
    const std::uint16_t old_length = load_be16(&h[2]);
    const auto new_length = static_cast<std::uint16_t>(rng());
    const std::uint16_t updated = csum::update16(load_be16(&h[10]), old_length, new_length);
    put16(h, 2, new_length);
    ASSERT_EQ(updated, csum::ipv4_header(h)) << i;
    put16(h, 10, updated);
    ASSERT_TRUE(naive_ipv4_ok(h));
  }
}

// ---- header views -----------------------------------------------------------------------------

TEST(L4Parse, FindsHeadersAndPayload) {
  const auto payload = pattern(100);
  const Packet v4 = tcp_packet(flow_v4({10, 0, 0, 2}, {10, 0, 0, 1}, 1, 2), {}, TcpFields{.options = hex("01 01 08 0a 00 00 00 01 00 00 00 02")}, payload);
  L4Packet p;
  ASSERT_EQ(parse_l4(v4, p), L4Parse::Ok);
  EXPECT_EQ(p.version, 4);
  EXPECT_EQ(p.ip_header_length, 20u);
  EXPECT_EQ(p.l4_header_length, 32u);
  EXPECT_EQ(p.payload_length, 100u);
  EXPECT_TRUE(l4_checksum_ok(p));
  EXPECT_TRUE(ip_checksum_ok(p));

  const Packet v6 = udp_packet(flow_v6(2, 1, 1, 2), {}, payload);
  ASSERT_EQ(parse_l4(v6, p), L4Parse::Ok);
  EXPECT_EQ(p.version, 6);
  EXPECT_EQ(p.headers_length(), 48u);
  EXPECT_EQ(p.payload_length, 100u);
  EXPECT_TRUE(l4_checksum_ok(p));
}

TEST(L4Parse, NamesWhatItDoesNotTake) {
  const Packet good = tcp_packet(flow_v4({10, 0, 0, 2}, {10, 0, 0, 1}, 1, 2), {}, {}, pattern(10));
  L4Packet p;
  const auto with = [&](auto change) {
    Packet q = good;
    change(q);
    return parse_l4(q, p);
  };
  EXPECT_EQ(parse_l4({}, p), L4Parse::NotIp);
  EXPECT_EQ(with([](Packet& q) { q[0] = 0x55; }), L4Parse::NotIp);
  EXPECT_EQ(with([](Packet& q) { q.resize(19); }), L4Parse::IpHeaderTruncated);
  EXPECT_EQ(with([](Packet& q) { q[0] = 0x44; }), L4Parse::IpHeaderTruncated);  // IHL 4
  EXPECT_EQ(with([](Packet& q) { q[0] = 0x4F; }), L4Parse::IpHeaderTruncated);  // IHL 15 > 50 bytes
  EXPECT_EQ(with([](Packet& q) { q.push_back(0); }), L4Parse::IpLengthMismatch);  // padding not trimmed
  EXPECT_EQ(with([](Packet& q) { put16(q, 2, 0xFFFF); }), L4Parse::IpLengthMismatch);
  EXPECT_EQ(with([](Packet& q) { q[6] = 0x20; }), L4Parse::Fragment);  // MF
  EXPECT_EQ(with([](Packet& q) { q[7] = 0x01; }), L4Parse::Fragment);  // offset 8
  EXPECT_EQ(with([](Packet& q) { q[9] = 1; }), L4Parse::NotTcpOrUdp);  // ICMP
  EXPECT_EQ(with([](Packet& q) { q[32] = 0x40; }), L4Parse::L4HeaderTruncated);  // data offset 4
  EXPECT_EQ(with([](Packet& q) { q[32] = 0xF0; }), L4Parse::L4HeaderTruncated);  // 60 > 30 bytes
  const Packet v6 = udp_packet(flow_v6(2, 1, 1, 2), {}, pattern(10));
  Packet q = v6;
  q[6] = 0;  // Hop-by-Hop options
  EXPECT_EQ(parse_l4(q, p), L4Parse::Ipv6ExtensionHeaders);
  q = v6;
  put16(q, 44, 9);  // UDP Length 9, 18 bytes present
  EXPECT_EQ(parse_l4(q, p), L4Parse::UdpLengthMismatch);
  q = v6;
  put16(q, 4, 0);  // jumbogram payload length
  EXPECT_EQ(parse_l4(q, p), L4Parse::IpLengthMismatch);
  EXPECT_EQ(parse_l4(std::span(v6.data(), 45), p), L4Parse::IpLengthMismatch);
}

}  // namespace
}  // namespace wwan::offload
