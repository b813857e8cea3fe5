// RX coalescing (datapath/offload/gro.hpp): golden super-packets for TCP and UDP over IPv4 and
// IPv6 (the virtio_net_hdr and the rewritten headers, field by field, with checksums computed
// independently by a Python RFC 1071 sum), then each merge rule of the kernel's GRO, each reason
// a packet goes out plain, and the bounds. What the kernel does with these super-packets is
// tests/tun/tun_offload_test.cpp.
#include "datapath/offload/gro.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "offload_packets.hpp"
#include "tests/support/hex.hpp"

namespace wwan::offload {
namespace {

using test::hex;
using namespace testing;
using ::testing::ElementsAre;

Packet flatten(const GroItem& item) {
  Packet out;
  for (std::uint32_t i = 0; i < item.iov_count; ++i) {
    const auto* b = static_cast<const std::uint8_t*>(item.iov[i].iov_base);
    out.insert(out.end(), b, b + item.iov[i].iov_len);
  }
  return out;
}
Packet header_of(const GroItem& item) {
  const auto* b = static_cast<const std::uint8_t*>(item.iov[0].iov_base);
  return Packet(b, b + item.iov[0].iov_len);
}

const Flow kV4 = flow_v4({10, 0, 0, 2}, {10, 0, 0, 1}, 5001, 40000);
const Flow kV6 = flow_v6(2, 1, 5001, 40000);
// NOP, NOP, Timestamps TSval 0x01020304 TSecr 0x05060708 (RFC 7323 §3).
const std::vector<std::uint8_t> kTimestamps = hex("01 01 08 0a 01 02 03 04 05 06 07 08");

struct Batch {
  explicit Batch(GroLimits limits = {.max_packets = 64, .udp = true}) : gro(limits) {}
  std::span<const GroItem> run(const std::vector<Packet>& packets) {
    gro.reset();
    for (const Packet& p : packets) EXPECT_TRUE(gro.add(p));
    return gro.finish();
  }
  std::uint64_t plain(GroPlain why) const { return gro.counters().plain_by_reason[static_cast<std::size_t>(why)]; }
  GroCoalescer gro;
};

std::vector<std::uint32_t> segments_of(std::span<const GroItem> items) {
  std::vector<std::uint32_t> out;
  for (const GroItem& i : items) out.push_back(i.segments);
  return out;
}

// Three TCP segments of one flow, 8 + 8 + 4 payload bytes, the last with PSH.
std::vector<Packet> tcp_train(const Flow& f, std::vector<std::uint8_t> options = kTimestamps) {
  std::vector<Packet> out;
  const std::uint32_t sizes[] = {8, 8, 4};
  std::uint32_t seq = 1000;
  for (std::uint16_t i = 0; i < 3; ++i) {
    TcpFields t{.seq = seq, .flags = static_cast<std::uint8_t>(i == 2 ? 0x18 : 0x10), .options = options};
    out.push_back(tcp_packet(f, IpFields{.id = static_cast<std::uint16_t>(0x1000 + i)}, t, pattern(sizes[i], seq)));
    seq += sizes[i];
  }
  return out;
}

// ---- golden super-packets -----------------------------------------------------------------------

TEST(GroGolden, TcpOverIpv4) {
  Batch b;
  const auto in = tcp_train(kV4);
  const auto items = b.run(in);
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].segments, 3u);
  EXPECT_EQ(header_of(items[0]), hex(
      // virtio_net_hdr (host order, little-endian here)
      "01"      // flags NEEDS_CSUM
      "01"      // gso_type TCPV4
      "34 00"   // hdr_len 52 = IPv4 20 + TCP 32
      "08 00"   // gso_size 8
      "14 00"   // csum_start 20: the TCP header
      "10 00"   // csum_offset 16: TCP checksum
      // IPv4: the first segment's header with Total Length 72 = 52 + 20 payload bytes
      "45 00 00 48"  // version 4, IHL 5, TOS 0, Total Length 72
      "10 00 40 00"  // ID 0x1000 (the first segment's), DF
      "40 06 16 ae"  // TTL 64, TCP, header checksum 16ae (RFC 1624 update of the first's)
      "0a 00 00 02 0a 00 00 01"  // 10.0.0.2 -> 10.0.0.1
      // TCP: the first segment's header, PSH from the last, the pseudo-header seed
      "13 89 9c 40"  // 5001 -> 40000
      "00 00 03 e8"  // seq 1000
      "00 00 13 88"  // ack 5000
      "80 18 01 f5"  // data offset 8 (32 bytes), ACK|PSH, window 501
      "14 3d 00 00"  // checksum = pseudo-header sum (10.0.0.2, 10.0.0.1, 6, 52) not complemented; urg 0
      "01 01 08 0a 01 02 03 04 05 06 07 08"));  // NOP NOP TS (identical in every segment)
  // Then the three payloads, pointing into the packets given to add().
  ASSERT_EQ(items[0].iov_count, 4u);
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(items[0].iov[i + 1].iov_base, in[i].data() + 52);
  EXPECT_EQ(items[0].bytes, 10u + 72u);
  EXPECT_EQ(flatten(items[0]).size(), items[0].bytes);
  EXPECT_EQ(b.gro.counters().super_packets, 1u);
  EXPECT_EQ(b.gro.counters().coalesced, 3u);
}

TEST(GroGolden, TcpOverIpv6) {
  Batch b;
  const auto items = b.run(tcp_train(kV6, {}));
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(header_of(items[0]), hex(
      "01 04"   // NEEDS_CSUM, gso_type TCPV6
      "3c 00"   // hdr_len 60 = IPv6 40 + TCP 20
      "08 00"   // gso_size 8
      "28 00"   // csum_start 40
      "10 00"   // csum_offset 16
      "60 00 00 00"  // version 6, traffic class 0, flow label 0
      "00 28 06 40"  // Payload Length 40 = TCP 20 + 20 payload bytes, Next Header TCP, Hop Limit 64
      "fd 00 00 00 00 00 00 00 00 00 00 00 00 00 00 02"  // fd00::2
      "fd 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01"  // fd00::1
      "13 89 9c 40 00 00 03 e8 00 00 13 88"  // ports, seq 1000, ack 5000
      "50 18 01 f5"  // data offset 5, ACK|PSH, window 501
      "fa 32 00 00"));  // pseudo-header seed (fd00::2, fd00::1, 6, 40); urg 0
}

std::vector<Packet> udp_train(const Flow& f, bool df) {
  std::vector<Packet> out;
  for (std::uint16_t i = 0; i < 3; ++i)
    out.push_back(udp_packet(f, IpFields{.id = static_cast<std::uint16_t>(0x2000 + i), .df = df}, pattern(5, i * 5u)));
  return out;
}

TEST(GroGolden, UdpOverIpv4) {
  Batch b;
  const auto items = b.run(udp_train(kV4, false));
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].segments, 3u);
  EXPECT_EQ(header_of(items[0]), hex(
      "01 05"   // NEEDS_CSUM, gso_type UDP_L4
      "1c 00"   // hdr_len 28 = IPv4 20 + UDP 8
      "05 00"   // gso_size 5 (odd: only the last byte of each datagram pads the sum)
      "14 00"   // csum_start 20
      "06 00"   // csum_offset 6: UDP checksum
      "45 00 00 2b"  // Total Length 43 = 28 + 15
      "20 00 00 00"  // ID 0x2000, no DF (IDs count up by one: accepted)
      "40 11 46 c0"  // TTL 64, UDP, header checksum 46c0
      "0a 00 00 02 0a 00 00 01"
      "13 89 9c 40"  // 5001 -> 40000
      "00 17 14 2b"));  // UDP Length 23 = 8 + 15; pseudo-header seed (.., 17, 23)
  EXPECT_EQ(items[0].bytes, 10u + 43u);
}

TEST(GroGolden, UdpOverIpv6) {
  Batch b;
  const auto items = b.run(udp_train(kV6, false));
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(header_of(items[0]), hex(
      "01 05 30 00 05 00 28 00 06 00"  // NEEDS_CSUM, UDP_L4, hdr_len 48, gso_size 5, csum 40 + 6
      "60 00 00 00 00 17 11 40"        // Payload Length 23, UDP, Hop Limit 64
      "fd 00 00 00 00 00 00 00 00 00 00 00 00 00 00 02"
      "fd 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01"
      "13 89 9c 40 00 17 fa 2c"));     // ports, Length 23, seed fa2c
}

TEST(GroGolden, PlainPacketsGetAZeroVirtioNetHdr) {
  Batch b;
  const std::vector<Packet> in = {tcp_packet(kV4, {}, {}, {})};  // a pure ACK
  const Packet& ack = in[0];
  const auto items = b.run(in);
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].segments, 1u);
  EXPECT_EQ(header_of(items[0]), hex("00 00 00 00 00 00 00 00 00 00"));
  ASSERT_EQ(items[0].iov_count, 2u);
  EXPECT_EQ(items[0].iov[1].iov_base, ack.data());  // the packet itself, not a copy
  EXPECT_EQ(items[0].bytes, 10 + ack.size());
}

// ---- the merge rules ----------------------------------------------------------------------------

// n full segments of `mss` bytes from seq 1000, IDs from 0x1000.
std::vector<Packet> tcp_segments(const Flow& f, int n, std::uint32_t mss = 100, std::uint32_t seq = 1000,
                                 std::uint16_t id = 0x1000) {
  std::vector<Packet> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(tcp_packet(f, IpFields{.id = id}, TcpFields{.seq = seq}, pattern(mss, seq)));
    seq += mss;
    ++id;
  }
  return out;
}

TEST(GroRules, ASequenceGapStartsANewSuperPacket) {
  Batch b;
  auto in = tcp_segments(kV4, 2);
  auto more = tcp_segments(kV4, 2, 100, 1300, 0x1002);  // 1200..1299 lost
  in.insert(in.end(), more.begin(), more.end());
  EXPECT_THAT(segments_of(b.run(in)), ElementsAre(2, 2));
}

TEST(GroRules, ARetransmissionIsNotMerged) {
  Batch b;
  auto in = tcp_segments(kV4, 2);
  in.push_back(tcp_segments(kV4, 1, 100, 1000, 0x1002)[0]);  // seq 1000 again
  EXPECT_THAT(segments_of(b.run(in)), ElementsAre(2, 1));
}

TEST(GroRules, PshEndsTheSuperPacket) {
  Batch b;
  auto in = tcp_segments(kV4, 4);
  in[1] = tcp_packet(kV4, {.id = 0x1001}, {.seq = 1100, .flags = 0x18}, pattern(100, 1100));
  const auto items = b.run(in);
  EXPECT_THAT(segments_of(items), ElementsAre(2, 2));
  EXPECT_EQ(header_of(items[0])[10 + 20 + 13], 0x18) << "the super-packet carries PSH";
  EXPECT_EQ(header_of(items[1])[10 + 20 + 13], 0x10);
}

TEST(GroRules, ControlFlagsAreNeverMerged) {
  for (const std::uint8_t flag : {kTcpSyn, kTcpFin, kTcpRst, kTcpUrg, kTcpCwr}) {
    Batch b;
    auto in = tcp_segments(kV4, 3);
    in[1] = tcp_packet(kV4, {.id = 0x1001}, {.seq = 1100, .flags = static_cast<std::uint8_t>(0x10 | flag)},
                       pattern(100, 1100));
    EXPECT_THAT(segments_of(b.run(in)), ElementsAre(1, 1, 1)) << int(flag);
    EXPECT_EQ(b.plain(GroPlain::TcpControl), 1u);
  }
}

TEST(GroRules, DifferentAckWindowFlagsOrOptionsAreNotMerged) {
  const auto second = [](TcpFields t) {
    Batch b;
    auto in = tcp_segments(kV4, 1);
    t.seq = 1100;
    in.push_back(tcp_packet(kV4, {.id = 0x1001}, t, pattern(100, 1100)));
    return segments_of(b.run(in));
  };
  EXPECT_THAT(second({}), ElementsAre(2));
  EXPECT_THAT(second({.ack = 5001}), ElementsAre(1, 1));
  EXPECT_THAT(second({.window = 502}), ElementsAre(1, 1));
  EXPECT_THAT(second({.flags = 0x50}), ElementsAre(1, 1));  // ECE appears
  EXPECT_THAT(second({.options = kTimestamps}), ElementsAre(1, 1));  // options appear
}

TEST(GroRules, TimestampsMustBeIdentical) {
  Batch b;
  auto in = tcp_train(kV4);
  auto later = kTimestamps;
  later[7] = 0x05;  // TSval 0x01020305
  in[1] = tcp_packet(kV4, {.id = 0x1001}, {.seq = 1008, .options = later}, pattern(8, 1008));
  in[2] = tcp_packet(kV4, {.id = 0x1002}, {.seq = 1016, .flags = 0x18, .options = later}, pattern(4, 1016));
  EXPECT_THAT(segments_of(b.run(in)), ElementsAre(1, 2));
}

TEST(GroRules, Ipv4IdCountsUpOrIsFixedWithDf) {
  const auto ids = [](std::vector<std::uint16_t> id, bool df) {
    Batch b;
    std::vector<Packet> in;
    std::uint32_t seq = 1000;
    for (const std::uint16_t i : id) {
      in.push_back(tcp_packet(kV4, {.id = i, .df = df}, {.seq = seq}, pattern(100, seq)));
      seq += 100;
    }
    return segments_of(b.run(in));
  };
  EXPECT_THAT(ids({7, 8, 9}, true), ElementsAre(3));
  EXPECT_THAT(ids({0xFFFF, 0, 1}, true), ElementsAre(3));  // wraps
  EXPECT_THAT(ids({7, 7, 7}, true), ElementsAre(3));       // fixed, DF: the kernel accepts it too
  EXPECT_THAT(ids({7, 7}, false), ElementsAre(1, 1));      // fixed without DF: no
  EXPECT_THAT(ids({7, 8, 8}, true), ElementsAre(2, 1));    // counting, then not
  EXPECT_THAT(ids({7, 7, 8}, true), ElementsAre(2, 1));    // fixed, then not
  EXPECT_THAT(ids({7, 9}, true), ElementsAre(1, 1));
}

TEST(GroRules, IpFieldsMustMatch) {
  const auto second = [](IpFields ip, const Flow& f) {
    Batch b;
    auto in = tcp_segments(f, 1);
    in.push_back(tcp_packet(f, ip, {.seq = 1100}, pattern(100, 1100)));
    return segments_of(b.run(in));
  };
  EXPECT_THAT(second({.id = 0x1001}, kV4), ElementsAre(2));
  EXPECT_THAT(second({.id = 0x1001, .ttl = 63}, kV4), ElementsAre(1, 1));
  EXPECT_THAT(second({.id = 0x1001, .tos = 4}, kV4), ElementsAre(1, 1));
  EXPECT_THAT(second({.id = 0x1001, .df = false}, kV4), ElementsAre(1, 1));
  EXPECT_THAT(second({}, kV6), ElementsAre(2));
  EXPECT_THAT(second({.ttl = 63}, kV6), ElementsAre(1, 1));
  EXPECT_THAT(second({.flow_label = 5}, kV6), ElementsAre(1, 1));
  EXPECT_THAT(second({.tos = 4}, kV6), ElementsAre(1, 1));
}

TEST(GroRules, EqualSizesAndAShorterLast) {
  Batch b;
  auto in = tcp_segments(kV4, 2);
  in.push_back(tcp_packet(kV4, {.id = 0x1002}, {.seq = 1200}, pattern(50, 1200)));   // shorter: last
  in.push_back(tcp_packet(kV4, {.id = 0x1003}, {.seq = 1250}, pattern(50, 1250)));   // starts the next
  in.push_back(tcp_packet(kV4, {.id = 0x1004}, {.seq = 1300}, pattern(80, 1300)));   // longer than 50: anew
  in.push_back(tcp_packet(kV4, {.id = 0x1005}, {.seq = 1380}, pattern(10, 1380)));   // shorter than 80: last
  const auto items = b.run(in);
  EXPECT_THAT(segments_of(items), ElementsAre(3, 1, 2));
  EXPECT_EQ(decode(header_of(items[0]).data()).gso_size, 100);
  EXPECT_EQ(decode(header_of(items[2]).data()).gso_size, 80);
}

TEST(GroRules, UdpSameSizeSameFlow) {
  Batch b;
  std::vector<Packet> in;
  const Flow other = flow_v4({10, 0, 0, 2}, {10, 0, 0, 1}, 5002, 40000);
  for (std::uint16_t i = 0; i < 3; ++i) in.push_back(udp_packet(kV4, {.id = static_cast<std::uint16_t>(i)}, pattern(200, i)));
  in.push_back(udp_packet(kV4, {.id = 3}, pattern(100)));  // shorter: the last one
  in.push_back(udp_packet(kV4, {.id = 4}, pattern(200)));  // a new train
  in.push_back(udp_packet(other, {.id = 5}, pattern(200)));
  in.push_back(udp_packet(kV4, {.id = 5}, pattern(300)));  // longer than 200: new train
  EXPECT_THAT(segments_of(b.run(in)), ElementsAre(4, 1, 1, 1));
}

TEST(GroRules, InterleavedFlowsCoalesceSeparatelyInOrderOfFirstPacket) {
  Batch b;
  const Flow second = flow_v6(9, 1, 6000, 40000);
  auto a = tcp_segments(kV4, 3);
  auto c = tcp_segments(second, 3, 60);
  const std::vector<Packet> in = {a[0], c[0], a[1], c[1], a[2], c[2]};
  const auto items = b.run(in);
  ASSERT_THAT(segments_of(items), ElementsAre(3, 3));
  EXPECT_EQ(header_of(items[0])[1], kVirtioNetHdrGsoTcpv4);
  EXPECT_EQ(header_of(items[1])[1], kVirtioNetHdrGsoTcpv6);
}

TEST(GroRules, APlainPacketOfAFlowClosesItsSuperPacketSoOrderHolds) {
  Batch b;
  auto in = tcp_segments(kV4, 4);
  // A pure ACK of the same flow (same ports, same direction) between segments 2 and 3.
  in.insert(in.begin() + 2, tcp_packet(kV4, {.id = 0x1002}, {.seq = 1200}, {}));
  const auto items = b.run(in);
  // The ACK leaves after segments 0-1 and before 2-3, which form a super-packet of their own.
  EXPECT_THAT(segments_of(items), ElementsAre(2, 1, 2));
  EXPECT_EQ(b.plain(GroPlain::NoPayload), 1u);
}

// ---- checksums ----------------------------------------------------------------------------------

TEST(GroChecksums, ASegmentWithABadChecksumIsNeverMerged) {
  Batch b;
  auto in = tcp_segments(kV4, 5);
  in[2][60] ^= 0x01;  // one payload bit: the TCP checksum no longer verifies
  const auto items = b.run(in);
  // 0-1 merged, 2 plain (and it closes the flow), 3-4 merged again.
  EXPECT_THAT(segments_of(items), ElementsAre(2, 1, 2));
  EXPECT_EQ(items[1].iov[1].iov_base, in[2].data());
  EXPECT_EQ(b.plain(GroPlain::L4ChecksumBad), 1u);
}

TEST(GroChecksums, BadFirstSegmentBadIpv4HeaderAndUdpWithout) {
  Batch b;
  auto in = tcp_segments(kV4, 3);
  in[0][17] ^= 0x80;  // IPv4 destination changed under the checksums: both fail
  in[1][10] ^= 0x01;  // IPv4 header checksum only
  EXPECT_THAT(segments_of(b.run(in)), ElementsAre(1, 1, 1));
  EXPECT_EQ(b.plain(GroPlain::IpChecksumBad), 2u);
  std::vector<Packet> udp = {udp_packet(kV4, {.id = 1}, pattern(20)), udp_packet(kV4, {.id = 2}, pattern(20))};
  for (Packet& p : udp) put16(p, 26, 0);  // "no checksum"
  EXPECT_THAT(segments_of(b.run(udp)), ElementsAre(1, 1));
  EXPECT_EQ(b.plain(GroPlain::UdpNoChecksum), 2u);
}

// ---- plain reasons and bounds ---------------------------------------------------------------------

TEST(GroPlainReasons, WhatIsNotAGroCandidate) {
  Batch b;
  Packet icmp = tcp_packet(kV4, {}, {}, pattern(10));
  icmp[9] = 1;
  Packet options = tcp_packet(kV4, {.ipv4_options = hex("01 01 01 00")}, {}, pattern(10));
  b.run({icmp, options, options});
  EXPECT_EQ(b.plain(GroPlain::NotL4), 1u);
  EXPECT_EQ(b.plain(GroPlain::Ipv4Options), 2u);

  Batch no_udp({.max_packets = 8, .udp = false});
  const auto items = no_udp.run(udp_train(kV4, false));
  EXPECT_THAT(segments_of(items), ElementsAre(1, 1, 1));
  EXPECT_EQ(no_udp.plain(GroPlain::UdpOff), 3u);
}

TEST(GroBounds, SixtyFourKiBAndTheSegmentCaps) {
  Batch b({.max_packets = 200, .udp = true});
  // 1448-byte segments: 45 fit under 65535 (40 + 45 * 1448 = 65200), the 46th starts anew.
  const auto in = tcp_segments(kV4, 50, 1448);
  const auto items = b.run(in);
  ASSERT_THAT(segments_of(items), ElementsAre(45, 5));
  EXPECT_EQ(load_be16(&header_of(items[0])[12]), 65200);  // IPv4 Total Length
  Batch capped({.max_packets = 200, .max_tcp_segments = 4, .max_udp_segments = 3, .udp = true});
  EXPECT_THAT(segments_of(capped.run(tcp_segments(kV4, 10))), ElementsAre(4, 4, 2));
  std::vector<Packet> udp;
  for (std::uint16_t i = 0; i < 7; ++i) udp.push_back(udp_packet(kV4, {.id = i}, pattern(10)));
  EXPECT_THAT(segments_of(capped.run(udp)), ElementsAre(3, 3, 1));
}

TEST(GroBounds, ABatchHoldsMaxPacketsAndRefusesMore) {
  GroCoalescer gro({.max_packets = 3});
  const auto in = tcp_segments(kV4, 5);
  gro.reset();
  EXPECT_TRUE(gro.add(in[0]));
  EXPECT_TRUE(gro.add(in[1]));
  EXPECT_TRUE(gro.add(in[2]));
  EXPECT_FALSE(gro.add(in[3]));
  EXPECT_EQ(gro.counters().batch_full, 1u);
  EXPECT_THAT(segments_of(gro.finish()), ElementsAre(3));
  gro.reset();  // the next batch starts empty
  EXPECT_TRUE(gro.add(in[3]));
  EXPECT_THAT(segments_of(gro.finish()), ElementsAre(1));
}

TEST(GroBounds, SixteenOpenFlowsThenTheOldestIsClosed) {
  Batch b({.max_packets = 64, .udp = true});
  std::vector<Packet> in;
  for (std::uint16_t f = 0; f < 17; ++f)
    in.push_back(tcp_segments(flow_v4({10, 0, 0, 2}, {10, 0, 0, 1}, static_cast<std::uint16_t>(100 + f), 1), 1)[0]);
  in.push_back(tcp_segments(flow_v4({10, 0, 0, 2}, {10, 0, 0, 1}, 100, 1), 2)[1]);  // flow 0's next segment
  in.push_back(tcp_segments(flow_v4({10, 0, 0, 2}, {10, 0, 0, 1}, 116, 1), 2)[1]);  // flow 16's
  const auto segs = segments_of(b.run(in));
  ASSERT_EQ(segs.size(), 18u);
  EXPECT_EQ(segs[0], 1u) << "flow 0 was evicted when flow 16 arrived";
  EXPECT_EQ(segs[16], 2u);
}

}  // namespace
}  // namespace wwan::offload
