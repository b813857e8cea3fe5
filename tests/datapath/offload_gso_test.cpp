// TX segmentation (datapath/offload/gso.hpp): a TSO super-packet as the kernel hands it out of a
// TUN (virtio_net_hdr + one big packet whose checksum field holds the pseudo-header seed) cut
// into segments; one segment in golden bytes (checksums from a Python RFC 1071 sum), every
// segment against packets built independently by offload_packets.hpp, the flag rules, UDP_L4,
// NEEDS_CSUM alone, resuming across two output buffers, and every malformed input by name.
#include "datapath/offload/gso.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "offload_packets.hpp"
#include "tests/support/hex.hpp"

namespace wwan::offload {
namespace {

using test::hex;
using namespace testing;

const Flow kV4 = flow_v4({10, 0, 0, 1}, {10, 0, 0, 2}, 40000, 5001);
const Flow kV6 = flow_v6(1, 2, 40000, 5001);

// What the kernel writes: the virtio_net_hdr, then the super-packet with the seed in its L4
// checksum field (and whatever IPv4 header checksum: it is recomputed, so make it wrong).
Packet from_kernel(VirtioNetHdr h, Packet packet) {
  if (h.flags & kVirtioNetHdrFNeedsCsum) {
    L4Packet p;
    if (parse_l4(packet, p) == L4Parse::Ok) {
      const auto seed = csum::fold_be(csum::pseudo_header(p.source(), p.destination(), p.protocol, p.l4_length()));
      put16(packet, p.l4_offset() + (p.tcp() ? 16 : 6), seed);
    }
  }
  if ((packet[0] >> 4) == 4) put16(packet, 10, 0xdead);
  Packet out(kVirtioNetHdrSize);
  encode(h, out.data());
  out.insert(out.end(), packet.begin(), packet.end());
  return out;
}

std::vector<Packet> segment(const Packet& read, GsoError* error = nullptr) {
  std::vector<Packet> out;
  std::size_t written = 0;
  const GsoError e = segment_all(read, [&](std::size_t n) {
    out.emplace_back(n);
    return MutableBytes(out.back());
  }, written);
  if (error) *error = e;
  EXPECT_EQ(written, out.size());
  return out;
}

VirtioNetHdr tso(std::uint8_t type, std::uint16_t gso_size, std::uint16_t csum_start, std::uint16_t csum_offset) {
  return VirtioNetHdr{kVirtioNetHdrFNeedsCsum, type, 0, gso_size, csum_start, csum_offset};
}

TEST(GsoGolden, TcpOverIpv4) {
  // 20 payload bytes, gso_size 8: segments of 8, 8 and 4. FIN and PSH on the super-packet.
  const Packet super = tcp_packet(kV4, {.id = 0x0100}, {.seq = 0x10000000, .ack = 0x20000000, .flags = 0x19, .window = 0x200},
                                  pattern(20));
  const auto segments = segment(from_kernel(tso(kVirtioNetHdrGsoTcpv4, 8, 20, 16), super));
  ASSERT_EQ(segments.size(), 3u);
  EXPECT_EQ(segments[0], hex(
      "45 00 00 30"   // IPv4, IHL 5, Total Length 48 = 20 + 20 + 8
      "01 00 40 00"   // ID 0x0100 (the super-packet's), DF
      "40 06 25 c6"   // TTL 64, TCP, header checksum 25c6
      "0a 00 00 01 0a 00 00 02"
      "9c 40 13 89"   // 40000 -> 5001
      "10 00 00 00"   // seq 0x10000000
      "20 00 00 00"   // ack 0x20000000
      "50 10 02 00"   // data offset 5, ACK only (FIN and PSH belong to the last), window 512
      "77 b4 00 00"   // full TCP checksum 77b4, urgent 0
      "07 8a 0d 90 13 96 19 9c"));  // payload bytes 0..7
  // IDs +1, seq + 8, checksums 25c5 / 174c and 25c8 / 4471, FIN|PSH|ACK on the last.
  EXPECT_EQ(segments[1].size(), 48u);
  EXPECT_EQ(load_be16(&segments[1][4]), 0x0101);
  EXPECT_EQ(load_be16(&segments[1][10]), 0x25c5);
  EXPECT_EQ(load_be32(&segments[1][24]), 0x10000008u);
  EXPECT_EQ(load_be16(&segments[1][36]), 0x174c);
  EXPECT_EQ(segments[2].size(), 44u);
  EXPECT_EQ(load_be16(&segments[2][10]), 0x25c8);
  EXPECT_EQ(segments[2][33], 0x19);
  EXPECT_EQ(load_be16(&segments[2][36]), 0x4471);
}

TEST(GsoSegments, EqualIndependentlyBuiltPackets) {
  for (const Flow& f : {kV4, kV6}) {
    const std::uint8_t type = f.version == 4 ? kVirtioNetHdrGsoTcpv4 : kVirtioNetHdrGsoTcpv6;
    const std::uint16_t l4 = f.version == 4 ? 20 : 40;
    const std::vector<std::uint8_t> ts = hex("01 01 08 0a 00 00 00 09 00 00 00 07");
    const auto payload = pattern(4000);
    const TcpFields t{.seq = 0xFFFFF000, .flags = 0x18 | kTcpCwr, .options = ts};  // seq wraps
    const auto segments = segment(from_kernel(tso(type, 1388, l4, 16), tcp_packet(f, {.id = 0xFFFE}, t, payload)));
    ASSERT_EQ(segments.size(), 3u);
    for (std::size_t i = 0; i < 3; ++i) {
      TcpFields want = t;
      want.seq = static_cast<std::uint32_t>(t.seq + 1388 * i);
      want.flags = i == 0 ? 0x10 | kTcpCwr : i == 2 ? 0x18 : 0x10;  // CWR first, PSH last
      const std::size_t n = std::min<std::size_t>(1388, 4000 - 1388 * i);
      const Packet expected = tcp_packet(f, {.id = static_cast<std::uint16_t>(0xFFFE + i)}, want,
                                         std::span(payload).subspan(1388 * i, n));
      EXPECT_EQ(segments[i], expected) << "IPv" << f.version << " segment " << i;
    }
  }
}

TEST(GsoSegments, UdpL4OverBothVersions) {
  for (const Flow& f : {kV4, kV6}) {
    const auto payload = pattern(13);
    const std::uint16_t l4 = f.version == 4 ? 20 : 40;
    const auto segments = segment(from_kernel(tso(kVirtioNetHdrGsoUdpL4, 5, l4, 6), udp_packet(f, {.id = 7, .df = false}, payload)));
    ASSERT_EQ(segments.size(), 3u);
    for (std::size_t i = 0; i < 3; ++i) {
      const std::size_t n = i == 2 ? 3 : 5;
      EXPECT_EQ(segments[i], udp_packet(f, {.id = static_cast<std::uint16_t>(7 + i), .df = false},
                                        std::span(payload).subspan(5 * i, n)))
          << "IPv" << f.version << " datagram " << i;
    }
  }
}

TEST(GsoSegments, EcnFlagInGsoTypeIsAccepted) {
  const auto segments = segment(from_kernel(tso(kVirtioNetHdrGsoTcpv4 | kVirtioNetHdrGsoEcn, 100, 20, 16),
                                            tcp_packet(kV4, {}, {.flags = 0x10 | kTcpCwr | kTcpEce}, pattern(250))));
  ASSERT_EQ(segments.size(), 3u);
  EXPECT_EQ(segments[0][33], 0x10 | kTcpCwr | kTcpEce);
  EXPECT_EQ(segments[1][33], 0x10 | kTcpEce);
}

TEST(GsoChecksumOnly, NeedsCsumWithoutGsoCompletesTheChecksum) {
  const Packet udp = udp_packet(kV6, {}, pattern(333));
  const auto out = segment(from_kernel(VirtioNetHdr{kVirtioNetHdrFNeedsCsum, 0, 0, 0, 40, 6}, udp));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], udp);
  const Packet tcp = tcp_packet(kV4, {}, {}, pattern(999));
  Packet read = from_kernel(VirtioNetHdr{kVirtioNetHdrFNeedsCsum, 0, 0, 0, 20, 16}, tcp);
  put16(read, 10 + 10, load_be16(&tcp[10]));  // the kernel's IPv4 header checksum is right here
  EXPECT_EQ(segment(read), std::vector<Packet>{tcp});
}

TEST(GsoChecksumOnly, AComputedZeroIsSentAsAllOnes) {
  // skb_checksum_help: csum_fold(csum) ?: CSUM_MANGLED_0. Find a 2-byte payload that makes the
  // UDP checksum 0, by search.
  for (std::uint32_t x = 0; x <= 0xFFFF; ++x) {
    std::vector<std::uint8_t> two = {static_cast<std::uint8_t>(x >> 8), static_cast<std::uint8_t>(x)};
    Packet udp = udp_packet(kV4, {}, two);
    if (load_be16(&udp[26]) != 0xFFFF) continue;  // the builder mangled a computed 0
    const auto out = segment(from_kernel(VirtioNetHdr{kVirtioNetHdrFNeedsCsum, 0, 0, 0, 20, 6}, udp));
    put16(udp, 10, load_be16(&out[0][10]));
    ASSERT_EQ(out[0], udp);
    return;
  }
  FAIL() << "no payload gives a zero UDP checksum";
}

TEST(GsoChecksumOnly, NoFlagsCopiesThePacket) {
  Packet read(kVirtioNetHdrSize, 0);
  const Packet anything = hex("60 00 00 00 00 00 3b 40");
  read.insert(read.end(), anything.begin(), anything.end());
  EXPECT_EQ(segment(read), std::vector<Packet>{anything});
}

TEST(GsoResume, ASuperPacketCanStraddleTwoBuffers) {
  const Packet super = tcp_packet(kV4, {}, {}, pattern(3000));
  const Packet read = from_kernel(tso(kVirtioNetHdrGsoTcpv4, 1000, 20, 16), super);
  GsoSegmenter g;
  ASSERT_EQ(g.start(read), GsoError::None);
  EXPECT_EQ(g.segments(), 3u);
  std::vector<std::uint8_t> first(2 * 1040), second(1040);
  EXPECT_EQ(g.next_length(), 1040u);
  g.write_next(std::span(first).first(1040));
  g.write_next(std::span(first).subspan(1040));
  EXPECT_FALSE(g.done());
  g.write_next(second);  // "the next NTB"
  EXPECT_TRUE(g.done());
  EXPECT_EQ(g.last_length(), 1040u);
  EXPECT_EQ(load_be32(&second[24]), 1000u + 2000u);
  EXPECT_TRUE(naive_l4_ok(second));

  std::size_t written = 0;
  std::vector<Packet> taken;
  segment_all(read, [&](std::size_t n) { 
    if (taken.size() == 2) return MutableBytes{};  // no room left
    taken.emplace_back(n);
    return MutableBytes(taken.back());
  }, written);
  EXPECT_EQ(written, 2u);
}

TEST(GsoErrors, EveryMalformedReadHasAName) {
  const Packet tcp4 = tcp_packet(kV4, {}, {}, pattern(100));
  const Packet udp6 = udp_packet(kV6, {}, pattern(100));
  const auto error_of = [](const Packet& read) {
    GsoSegmenter g;
    const GsoError e = g.start(read);
    EXPECT_TRUE(e == GsoError::None || g.done());
    return e;
  };
  EXPECT_EQ(error_of(Packet(9)), GsoError::NoVirtioNetHdr);
  EXPECT_EQ(error_of(Packet(10)), GsoError::EmptyPacket);
  EXPECT_EQ(error_of(from_kernel(tso(kVirtioNetHdrGsoUdp, 10, 20, 6), tcp4)), GsoError::UnsupportedGsoType);
  EXPECT_EQ(error_of(from_kernel(tso(9, 10, 20, 16), tcp4)), GsoError::UnsupportedGsoType);
  EXPECT_EQ(error_of(from_kernel(tso(kVirtioNetHdrGsoTcpv4, 0, 20, 16), tcp4)), GsoError::GsoSizeZero);
  EXPECT_EQ(error_of(from_kernel(tso(kVirtioNetHdrGsoTcpv6, 10, 20, 16), tcp4)), GsoError::GsoTypeMismatch);
  EXPECT_EQ(error_of(from_kernel(tso(kVirtioNetHdrGsoUdpL4, 10, 20, 16), tcp4)), GsoError::GsoTypeMismatch);
  EXPECT_EQ(error_of(from_kernel(tso(kVirtioNetHdrGsoTcpv6, 10, 40, 6), udp6)), GsoError::GsoTypeMismatch);
  EXPECT_EQ(error_of(from_kernel(tso(kVirtioNetHdrGsoTcpv4, 10, 20, 16), tcp_packet(kV4, {}, {}, {}))),
            GsoError::NoPayload);
  Packet truncated = from_kernel(tso(kVirtioNetHdrGsoTcpv4, 10, 20, 16), tcp4);
  truncated.resize(truncated.size() - 1);  // Total Length now says one byte more than is there
  GsoSegmenter g;
  EXPECT_EQ(g.start(truncated), GsoError::NotL4);
  EXPECT_EQ(g.l4_reason(), L4Parse::IpLengthMismatch);
  EXPECT_EQ(error_of(from_kernel(VirtioNetHdr{kVirtioNetHdrFNeedsCsum, 0, 0, 0, 20, 119}, tcp4)),
            GsoError::CsumOutOfPacket);  // 20 + 119 + 2 = 141 > 140 bytes
  EXPECT_EQ(error_of(from_kernel(VirtioNetHdr{kVirtioNetHdrFNeedsCsum, 0, 0, 0, 0xFFFF, 0xFFFF}, tcp4)),
            GsoError::CsumOutOfPacket);
  EXPECT_EQ(error_of(from_kernel(VirtioNetHdr{kVirtioNetHdrFNeedsCsum, 0, 0, 0, 20, 118}, tcp4)), GsoError::None);  // the last 2 bytes
  for (std::size_t e = 0; e < kGsoErrorCount; ++e)
    EXPECT_STRNE(to_string(static_cast<GsoError>(e)), "?");
}

}  // namespace
}  // namespace wwan::offload
