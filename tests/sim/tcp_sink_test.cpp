// The emulated network's TCP receiver (sim/tcp_sink.hpp): the host's side of an upload is built
// byte by byte (tcp_segments.hpp), and every segment the sink sends is parsed here with its
// checksums recomputed by ref_checksum (naive RFC 1071, nothing shared with the sink's code).
#include "sim/tcp_sink.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "sim/network.hpp"
#include "tcp_segments.hpp"

namespace wwan::sim {
namespace {

using namespace test;
constexpr std::uint32_t kSinkIss = TcpSink::kInitialSequence;
constexpr std::uint16_t kHostPort = 40000;

TcpSinkConfig sink_config() {
  TcpSinkConfig c;
  c.local_ipv4 = kServer4;
  c.local_ipv6 = kServer6;
  return c;
}

// A segment of the upload from the host's port 40000 to the sink's port 9.
HostSegment upload(std::uint32_t seq, std::uint8_t flags = 0x10, bool ipv6 = false) {
  HostSegment s;
  s.seq = seq;
  s.ack = kSinkIss + 1;
  s.flags = flags;
  s.ipv6 = ipv6;
  s.source_port = kHostPort;
  s.destination_port = kTcpDiscardPort;
  return s;
}
// The host's SYN: MSS 1460 and, when `shift` is given, Window Scale.
Vec syn(std::optional<std::uint8_t> shift, bool ipv6 = false) {
  HostSegment s = upload(kHostIss, 0x02, ipv6);
  s.ack = 0;
  s.options = {2, 4, 0x05, 0xB4};
  if (shift) s.options.insert(s.options.end(), {1, 3, 3, *shift});
  return host_segment(s);
}
// `bytes` of the stream from `offset` (sequence kHostIss + 1 + offset).
Vec data(std::uint64_t offset, std::size_t bytes, std::uint8_t flags = 0x10, bool ipv6 = false) {
  HostSegment s = upload(static_cast<std::uint32_t>(kHostIss + 1 + offset), flags, ipv6);
  s.payload = bytes;
  s.stream_offset = offset;
  return host_segment(s);
}

struct Sent {
  Vec ip;
  std::uint32_t seq = 0, ack = 0;
  std::uint8_t flags = 0;
  std::uint16_t window = 0;
  Vec options;
};
void feed(TcpSink& k, const Vec& ip) {
  const std::size_t l3 = (ip[0] >> 4) == 6 ? 40 : 20;
  ASSERT_TRUE(k.matches(ip, l3));
  k.from_host(ip, l3);
}
std::optional<Sent> take(TcpSink& k) {
  Vec buffer(256);
  const std::optional<std::size_t> n = k.to_host(buffer);
  if (!n) return std::nullopt;
  buffer.resize(*n);
  const std::size_t l3 = (buffer[0] >> 4) == 6 ? 40 : 20;
  EXPECT_EQ(ref_tcp_checksum(buffer), 0) << "TCP checksum";
  if (l3 == 20) {
    EXPECT_EQ(ref_checksum(Vec(buffer.begin(), buffer.begin() + 20)), 0) << "IPv4 header checksum";
  }
  Sent s;
  s.ip = buffer;
  s.seq = be32(buffer, l3 + 4);
  s.ack = be32(buffer, l3 + 8);
  s.flags = buffer[l3 + 13];
  s.window = be16(buffer, l3 + 14);
  s.options.assign(buffer.begin() + static_cast<std::ptrdiff_t>(l3 + 20),
                   buffer.begin() + static_cast<std::ptrdiff_t>(l3 + (buffer[l3 + 12] >> 4) * 4));
  return s;
}
void establish(TcpSink& k, bool ipv6 = false) {
  feed(k, syn(7, ipv6));
  ASSERT_TRUE(take(k));
  feed(k, host_segment(upload(kHostIss + 1, 0x10, ipv6)));
  ASSERT_EQ(k.state(), TcpSink::State::established);
}

TEST(TcpSink, AnswersASynWithAGoldenSynAck) {
  TcpSink k(sink_config());
  feed(k, syn(7));
  EXPECT_EQ(k.state(), TcpSink::State::syn_received);
  const std::optional<Sent> s = take(k);
  ASSERT_TRUE(s);
  // 198.51.100.7:9 -> 10.64.64.2:40000, SYN+ACK, seq = our ISS, ack = the host's ISS + 1, the
  // window field unscaled in a SYN (RFC 7323 §2.2), MSS 1460, NOP, Window Scale 7.
  const Vec expected_ip_tcp = {
      0x45, 0x00, 0x00, 0x30,  // IPv4, IHL 5; Total Length 48 = 20 + 28
      0x00, 0x01, 0x40, 0x00,  // Identification 1; DF
      0x40, 0x06, 0x00, 0x00,  // TTL 64, TCP; header checksum (checked above, zeroed here)
      198, 51, 100, 7,         // source: the sink
      10, 64, 64, 2,           // destination: the host
      0x00, 0x09, 0x9C, 0x40,  // port 9 -> 40000
      0x20, 0x00, 0x00, 0x00,  // seq: TcpSink::kInitialSequence
      0xA0, 0x00, 0x00, 0x01,  // ack: kHostIss + 1
      0x70, 0x12, 0xFF, 0xFF,  // data offset 7 (28 bytes), SYN+ACK; window 65535
      0x00, 0x00, 0x00, 0x00,  // TCP checksum (checked above, zeroed here); urgent pointer
      0x02, 0x04, 0x05, 0xB4,  // MSS 1460
      0x01, 0x03, 0x03, 0x07,  // NOP; Window Scale 7
  };
  Vec got = s->ip;
  got[10] = got[11] = 0;
  got[36] = got[37] = 0;
  EXPECT_EQ(got, expected_ip_tcp);
  EXPECT_FALSE(take(k)) << "one SYN-ACK per SYN";
}

TEST(TcpSink, SendsNoWindowScaleToAHostThatDidNot) {
  TcpSink k(sink_config());
  feed(k, syn(std::nullopt));
  const std::optional<Sent> s = take(k);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->options, (Vec{0x02, 0x04, 0x05, 0xB4}));  // MSS only (RFC 7323 §2.2)
}

TEST(TcpSink, AnswersARetransmittedSynAgainAndOpensOnlyOnce) {
  TcpSink k(sink_config());
  feed(k, syn(7));
  ASSERT_TRUE(take(k));
  feed(k, syn(7));  // our SYN-ACK was lost
  const std::optional<Sent> again = take(k);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->flags, 0x12);
  EXPECT_EQ(k.counters().connections, 1u);
}

TEST(TcpSink, TakesInOrderDataAndAcksOncePerBatch) {
  TcpSink k(sink_config());
  establish(k);
  EXPECT_FALSE(take(k)) << "the handshake's ACK is not answered";
  for (std::uint64_t i = 0; i < 10; ++i) feed(k, data(i * 1460, 1460));
  const std::optional<Sent> a = take(k);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->flags, 0x10);
  EXPECT_EQ(a->ack, kHostIss + 1 + 14600);
  EXPECT_EQ(a->seq, kSinkIss + 1);
  EXPECT_EQ(a->window, 0xFFFF);
  EXPECT_FALSE(take(k)) << "one cumulative ACK for the batch";
  EXPECT_EQ(k.counters().segments, 10u);
  EXPECT_EQ(k.counters().bytes, 14600u);
  EXPECT_EQ(k.counters().corrupt_segments, 0u);
  EXPECT_EQ(k.counters().acks_sent, 1u);
  EXPECT_EQ(k.connection_bytes(), 14600u);
}

TEST(TcpSink, KeepsDataPastAGapAndAnswersWithADuplicateAck) {
  TcpSink k(sink_config());
  establish(k);
  feed(k, data(0, 1000));
  ASSERT_TRUE(take(k));
  feed(k, data(2000, 1000));  // 1000..1999 lost on the way
  const std::optional<Sent> dup = take(k);
  ASSERT_TRUE(dup);
  EXPECT_EQ(dup->ack, kHostIss + 1 + 1000) << "still expecting offset 1000";
  EXPECT_EQ(k.counters().out_of_order, 1u);
  EXPECT_EQ(k.counters().bytes, 1000u);
  feed(k, data(1000, 1000));  // the host's retransmission fills the gap: the kept range with it
  const std::optional<Sent> a = take(k);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->ack, kHostIss + 1 + 3000);
  EXPECT_EQ(k.counters().bytes, 3000u);
  EXPECT_TRUE(a->options.empty()) << "no SACK without SACK-permitted in the SYN";
  feed(k, data(2000, 1000));  // a duplicate now: ACKed, nothing taken twice
  ASSERT_TRUE(take(k));
  EXPECT_EQ(k.counters().bytes, 3000u);
  feed(k, data(2500, 1000));  // half old, half new
  ASSERT_TRUE(take(k));
  EXPECT_EQ(k.counters().bytes, 3500u);
  EXPECT_EQ(k.counters().corrupt_segments, 0u);
}

// A SYN with SACK-permitted (RFC 2018 §2): the SYN-ACK says it too, and a duplicate ACK lists the
// ranges held past the gap as SACK blocks, the one just changed first (RFC 2018 §4).
TEST(TcpSink, ListsTheRangesPastAGapInSackBlocks) {
  TcpSink k(sink_config());
  HostSegment s = upload(kHostIss, 0x02);
  s.ack = 0;
  s.options = {2, 4, 0x05, 0xB4, 1, 3, 3, 7, 1, 1, 4, 2};  // MSS, NOP, WS 7, NOP, NOP, SACK-permitted
  feed(k, host_segment(s));
  const std::optional<Sent> sa = take(k);
  ASSERT_TRUE(sa);
  EXPECT_EQ(sa->options, (Vec{0x02, 0x04, 0x05, 0xB4, 0x01, 0x03, 0x03, 0x07, 0x01, 0x01, 0x04, 0x02}));
  feed(k, host_segment(upload(kHostIss + 1)));
  feed(k, data(0, 1000));
  ASSERT_TRUE(take(k));
  feed(k, data(3000, 1000));  // [1000, 3000) lost
  feed(k, data(5000, 1000));  // [4000, 5000) lost
  const std::optional<Sent> dup = take(k);
  ASSERT_TRUE(dup);
  EXPECT_EQ(dup->ack, kHostIss + 1 + 1000);
  const auto seq = [](std::uint32_t offset) {
    const std::uint32_t v = kHostIss + 1 + offset;
    return std::vector<std::uint8_t>{static_cast<std::uint8_t>(v >> 24), static_cast<std::uint8_t>(v >> 16),
                                     static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)};
  };
  Vec expected = {0x01, 0x01, 0x05, 2 + 2 * 8};  // NOP, NOP, SACK with two blocks
  for (std::uint32_t b : {5000u, 6000u, 3000u, 4000u}) {  // the latest range first
    const auto v = seq(b);
    expected.insert(expected.end(), v.begin(), v.end());
  }
  EXPECT_EQ(dup->options, expected);
  feed(k, data(4000, 1000));  // joins the two ranges: one block [3000, 6000)
  const std::optional<Sent> joined = take(k);
  ASSERT_TRUE(joined);
  ASSERT_EQ(joined->options.size(), 4u + 8u);
  EXPECT_EQ(Vec(joined->options.begin() + 4, joined->options.begin() + 8), seq(3000));
  EXPECT_EQ(Vec(joined->options.begin() + 8, joined->options.end()), seq(6000));
  feed(k, data(1000, 2000));  // the first gap filled: everything up to 6000 taken, no blocks left
  const std::optional<Sent> all = take(k);
  ASSERT_TRUE(all);
  EXPECT_EQ(all->ack, kHostIss + 1 + 6000);
  EXPECT_TRUE(all->options.empty());
  EXPECT_EQ(k.counters().bytes, 6000u);
  EXPECT_EQ(k.counters().corrupt_segments, 0u);
}

// Memory is bounded: at most kMaxRanges ranges past gaps; more is dropped and counted, and data
// beyond the window is never kept.
TEST(TcpSink, HoldsAtMostItsRangesAndNothingPastTheWindow) {
  TcpSink k(sink_config());
  establish(k);
  for (std::uint64_t i = 0; i < TcpSink::kMaxRanges + 3; ++i) feed(k, data(1000 + i * 2000, 1000));  // every other 1000 missing
  EXPECT_EQ(k.counters().ranges_full, 3u);
  feed(k, data(TcpSink::kWindowBytes, 1000));  // starts inside, ends past the window
  EXPECT_EQ(k.counters().ranges_full, 3u) << "past the window: not even tried";
  // Fill every gap the kept ranges need: the sink ends at the last kept range.
  for (std::uint64_t i = 0; i < TcpSink::kMaxRanges; ++i) feed(k, data(i * 2000, 1000));
  EXPECT_EQ(k.connection_bytes(), TcpSink::kMaxRanges * 2000);
}

TEST(TcpSink, CountsBytesThatAreNotTheStream) {
  TcpSink k(sink_config());
  establish(k);
  Vec spoiled = data(0, 100);
  spoiled[20 + 20 + 50] ^= 0x01;  // one payload bit
  put16(spoiled, 36, 0);
  put16(spoiled, 36, ref_tcp_checksum(spoiled));  // a checksum that verifies: only the content is wrong
  feed(k, spoiled);
  feed(k, data(100, 100));
  EXPECT_EQ(k.counters().segments, 2u);
  EXPECT_EQ(k.counters().corrupt_segments, 1u);
}

TEST(TcpSink, AnswersAFinWithItsOwnAndClosesOnTheAck) {
  TcpSink k(sink_config());
  establish(k);
  feed(k, data(0, 500, 0x19));  // data + FIN + PSH + ACK
  const std::optional<Sent> fin = take(k);
  ASSERT_TRUE(fin);
  EXPECT_EQ(fin->flags, 0x11);  // FIN + ACK
  EXPECT_EQ(fin->ack, kHostIss + 1 + 500 + 1) << "the data and the FIN acknowledged";
  EXPECT_EQ(fin->seq, kSinkIss + 1);
  EXPECT_EQ(k.state(), TcpSink::State::last_ack);
  // The host did not see our FIN and sends its own again: both again.
  HostSegment again = upload(kHostIss + 1 + 500, 0x11);
  feed(k, host_segment(again));
  const std::optional<Sent> fin2 = take(k);
  ASSERT_TRUE(fin2);
  EXPECT_EQ(fin2->flags, 0x11);
  // Its ACK of our FIN closes: the next SYN opens a new connection.
  HostSegment last = upload(kHostIss + 1 + 501, 0x10);
  last.ack = kSinkIss + 2;
  feed(k, host_segment(last));
  EXPECT_EQ(k.state(), TcpSink::State::listen);
  EXPECT_EQ(k.counters().fins, 2u);
  EXPECT_FALSE(take(k));
}

TEST(TcpSink, ARstClosesAndANewSynReplacesAConnection) {
  TcpSink k(sink_config());
  establish(k);
  feed(k, host_segment(upload(kHostIss + 1, 0x14)));  // RST+ACK
  EXPECT_EQ(k.state(), TcpSink::State::listen);
  EXPECT_EQ(k.counters().resets, 1u);
  establish(k);
  HostSegment other = upload(kHostIss, 0x02);
  other.ack = 0;
  other.source_port = kHostPort + 1;
  feed(k, host_segment(other));
  EXPECT_EQ(k.counters().replaced, 1u);
  EXPECT_EQ(k.counters().connections, 3u);
  // The old connection's data is not the new one's.
  feed(k, data(0, 100));
  EXPECT_EQ(k.counters().ignored, 1u);
  EXPECT_EQ(k.counters().bytes, 0u);
}

TEST(TcpSink, IgnoresWhatIsNotAWellFormedSegmentOfTheConnection) {
  TcpSink k(sink_config());
  feed(k, data(0, 100));  // data before any SYN
  HostSegment synack = upload(kHostIss, 0x12);
  feed(k, host_segment(synack));  // a SYN-ACK is no way to open
  Vec short_header = host_segment(upload(kHostIss + 1));
  short_header[20 + 12] = 0x40;  // data offset 4: shorter than a TCP header
  feed(k, short_header);
  EXPECT_EQ(k.counters().ignored, 3u);
  EXPECT_EQ(k.state(), TcpSink::State::listen);
  EXPECT_FALSE(take(k));
  Vec not_ours = data(0, 10);
  put16(not_ours, 22, 5002);  // another port
  EXPECT_FALSE(k.matches(not_ours, 20));
}

TEST(TcpSink, TakesAnUploadOverIpv6) {
  TcpSink k(sink_config());
  feed(k, syn(7, true));
  const std::optional<Sent> sa = take(k);
  ASSERT_TRUE(sa);
  EXPECT_EQ(sa->ip[0] >> 4, 6);
  EXPECT_EQ(sa->options, (Vec{0x02, 0x04, 0x05, 0xA0, 0x01, 0x03, 0x03, 0x07}));  // MSS 1440 = 1500 - 40 - 20
  feed(k, host_segment(upload(kHostIss + 1, 0x10, true)));
  feed(k, data(0, 1440, 0x10, true));
  const std::optional<Sent> a = take(k);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->ack, kHostIss + 1 + 1440);
  EXPECT_EQ(k.counters().corrupt_segments, 0u);
}

// Through the Network: a SYN to 198.51.100.7:9 is answered, data is taken, and a segment whose TCP
// checksum fails never reaches the sink.
TEST(TcpSink, IsReachedThroughTheNetworkOnPort9) {
  Network n;
  const auto now = std::chrono::steady_clock::time_point{} + std::chrono::seconds(1);
  HostSegment s = upload(kHostIss, 0x02);
  s.ack = 0;
  s.options = {2, 4, 0x05, 0xB4, 1, 3, 3, 7};
  Vec syn_packet = host_segment(s);
  // The network's own addresses: the host's address is whatever the packet says.
  n.from_host(syn_packet, now);
  Vec out(2048);
  std::optional<std::size_t> got = n.to_host(out, now);
  ASSERT_TRUE(got);
  out.resize(*got);
  EXPECT_EQ(out[20 + 13], 0x12);
  n.from_host(host_segment(upload(kHostIss + 1)), now);
  Vec bad = data(0, 100);
  bad[20 + 20 + 5] ^= 0xFF;  // checksum no longer verifies
  n.from_host(bad, now);
  EXPECT_EQ(n.counters().malformed_from_host, 1u);
  n.from_host(data(0, 100), now);
  EXPECT_EQ(n.tcp_sink().counters().bytes, 100u);
  EXPECT_EQ(n.tcp_sink().counters().corrupt_segments, 0u);
}

}  // namespace
}  // namespace wwan::sim
