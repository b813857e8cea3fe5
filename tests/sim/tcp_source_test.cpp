// The emulated network's TCP sender (sim/tcp_source.hpp). The host's side of the connection is
// built byte by byte (tcp_segments.hpp); every segment the source sends is parsed here and its
// checksums are recomputed with ref_checksum, a naive RFC 1071 sum that shares nothing with the
// checksum code the source uses, so it cannot pass by agreeing with itself.
#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sim/network.hpp"
#include "sim/tcp_source.hpp"
#include "tcp_segments.hpp"

namespace wwan::sim {
namespace {

using namespace test;
using namespace std::chrono_literals;
using Time = TcpSource::Clock::time_point;
constexpr std::uint32_t kIss = TcpSource::kInitialSequence;

TcpSourceConfig config4(std::uint64_t byte_limit = 0) {
  TcpSourceConfig c;
  c.local_ipv4 = kServer4;
  c.host_ipv4 = kHost4;
  c.host_port = 5201;
  c.byte_limit = byte_limit;
  return c;
}

// The host's SYN-ACK: MSS `mss`, Window Scale `shift`, window `window` (unscaled in a SYN).
Vec syn_ack(std::uint16_t mss, std::uint8_t shift, std::uint16_t window, bool ipv6 = false) {
  HostSegment s;
  s.seq = kHostIss;
  s.ack = kIss + 1;
  s.flags = 0x12;
  s.window = window;
  s.options = {2, 4, static_cast<std::uint8_t>(mss >> 8), static_cast<std::uint8_t>(mss), 1, 3, 3, shift};
  s.ipv6 = ipv6;
  return host_segment(s);
}
Vec ack_of(std::uint64_t offset, std::uint16_t window = 512) {
  HostSegment s;
  s.ack = static_cast<std::uint32_t>(kIss + 1 + offset);
  s.window = window;
  return host_segment(s);
}

struct Sent {
  Vec ip;
  std::uint32_t seq = 0, ack = 0;
  std::uint8_t flags = 0;
  Vec payload;
};
std::optional<Sent> take(TcpSource& t, Time now) {
  Vec buffer(2048);
  const std::optional<std::size_t> n = t.to_host(buffer, now);
  if (!n) return std::nullopt;
  buffer.resize(*n);
  const std::size_t l3 = (buffer[0] >> 4) == 6 ? 40 : 20;
  const std::size_t th = static_cast<std::size_t>(buffer[l3 + 12] >> 4) * 4;
  EXPECT_EQ(ref_tcp_checksum(buffer), 0) << "TCP checksum";
  if (l3 == 20) {
    EXPECT_EQ(ref_checksum(Vec(buffer.begin(), buffer.begin() + 20)), 0) << "IPv4 header checksum";
  }
  return Sent{buffer, be32(buffer, l3 + 4), be32(buffer, l3 + 8), buffer[l3 + 13],
              Vec(buffer.begin() + static_cast<std::ptrdiff_t>(l3 + th), buffer.end())};
}
void feed(TcpSource& t, const Vec& ip, Time now) {
  const std::size_t l3 = (ip[0] >> 4) == 6 ? 40 : 20;
  ASSERT_TRUE(t.matches(ip, l3));
  t.from_host(ip, l3, now);
}
// A source past its handshake (MSS 1400, Window Scale 7, the SYN-ACK's window 65535 bytes: a
// SYN's window is never scaled, RFC 7323 §2.2; later ones are, 512 << 7 = 65536 bytes). Its first data segment
// carries the handshake's ACK (RFC 9293 §3.5: any segment with ACK completes it).
TcpSource established(std::uint64_t byte_limit, Time now) {
  TcpSource t(config4(byte_limit));
  EXPECT_TRUE(take(t, now));  // SYN
  feed(t, syn_ack(1400, 7, 65535), now);
  EXPECT_EQ(t.state(), TcpSource::State::established);
  return t;
}

TEST(TcpSource, TheSynIsGoldenBytes) {
  TcpSource t(config4());
  const Time now{};
  ASSERT_TRUE(t.ready(now));
  const auto syn = take(t, now);
  ASSERT_TRUE(syn);
  const Vec want = {
      0x45, 0x00, 0x00, 0x30,  // IPv4, IHL 5; total length 48 = 20 + 20 + 8 options
      0x00, 0x01, 0x40, 0x00,  // identification 1; DF, offset 0
      0x40, 0x06, 0x00, 0x00,  // TTL 64, protocol 6 (TCP); header checksum (checked below)
      198, 51, 100, 7,         // source: the network's server
      10, 64, 64, 2,           // destination: the host
      0x13, 0x8A, 0x14, 0x51,  // source port 5002, destination port 5201
      0x10, 0x00, 0x00, 0x00,  // sequence number = kInitialSequence
      0x00, 0x00, 0x00, 0x00,  // acknowledgment number: none (no ACK flag)
      0x70, 0x02, 0xFF, 0xFF,  // data offset 7 words; flags SYN; window 65535
      0x00, 0x00, 0x00, 0x00,  // checksum (checked below); urgent pointer 0
      0x02, 0x04, 0x05, 0xB4,  // option MSS (RFC 9293 §3.2), 1460
      0x01, 0x03, 0x03, 0x07,  // NOP; Window Scale (RFC 7323 §2.2), shift 7
  };
  Vec got = syn->ip;
  put16(got, 10, 0);  // the checksums were verified by take()
  put16(got, 36, 0);
  EXPECT_EQ(got, want);
  EXPECT_FALSE(t.ready(now + 999ms)) << "one SYN per kSynRetransmit";
  ASSERT_TRUE(t.ready(now + 1000ms));
  EXPECT_EQ(take(t, now + 1000ms)->seq, kIss) << "the SYN again, same sequence number";
  EXPECT_EQ(t.counters().syn_retransmits, 1u);
}

TEST(TcpSource, SendsWholeSegmentsOfTheStreamWhileTheScaledWindowAllows) {
  const Time now{};
  TcpSource t = established(0, now);
  // The SYN-ACK's 65535 bytes of window, unscaled: 46 segments of 1400 (64400); the 47th would
  // pass it (scaled by 2^7 it would be 8 MiB and this loop would not stop).
  std::uint64_t offset = 0;
  for (int i = 0; i < 46; ++i) {
    const auto s = take(t, now);
    ASSERT_TRUE(s) << "segment " << i;
    EXPECT_EQ(s->flags, 0x10) << "ACK, no PSH in the middle of the stream";
    EXPECT_EQ(s->seq, kIss + 1 + offset);
    EXPECT_EQ(s->ack, kHostIss + 1);
    ASSERT_EQ(s->payload.size(), 1400u) << "min(our MSS 1460, the host's 1400)";
    for (std::size_t k = 0; k < s->payload.size(); ++k)
      ASSERT_EQ(s->payload[k], TcpSource::stream_byte(offset + k)) << "stream offset " << offset + k;
    offset += 1400;
  }
  EXPECT_FALSE(t.ready(now)) << "the window is full";
  EXPECT_FALSE(take(t, now));
  feed(t, ack_of(2800), now);  // two segments acknowledged, window 512 << 7: 2800 + 65536, two more fit
  EXPECT_EQ(t.counters().bytes_acked, 2800u);
  EXPECT_EQ(take(t, now)->seq, kIss + 1 + 64400);
  EXPECT_EQ(take(t, now)->seq, kIss + 1 + 65800);
  EXPECT_FALSE(take(t, now));
  EXPECT_EQ(t.counters().segments_sent, 48u);
}

TEST(TcpSource, ThreeDuplicateAcksGoBackToTheHole) {
  const Time now{};
  TcpSource t = established(0, now);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(take(t, now));
  feed(t, ack_of(1400), now);  // the first arrived; the second was lost, the rest arrive out of order
  feed(t, ack_of(1400), now);
  feed(t, ack_of(1400), now);
  EXPECT_EQ(t.counters().fast_retransmits, 0u) << "two duplicates are not yet a loss (RFC 5681 §3.2)";
  feed(t, ack_of(1400), now);
  EXPECT_EQ(t.counters().fast_retransmits, 1u);
  EXPECT_EQ(take(t, now)->seq, kIss + 1 + 1400) << "sending restarts at the hole";
  // The hole filled, the host acknowledges everything it held: the ACK reaches past snd_nxt.
  feed(t, ack_of(14000), now);
  EXPECT_EQ(t.counters().bytes_acked, 14000u);
  EXPECT_EQ(take(t, now)->seq, kIss + 1 + 14000) << "and continues after what the host has";
}

TEST(TcpSource, TheRetransmissionTimeoutGoesBackWhenNothingIsAcknowledged) {
  const Time now{};
  TcpSource t = established(0, now);
  int sent = 0;
  while (take(t, now)) ++sent;
  ASSERT_EQ(sent, 46) << "a window's worth";
  ASSERT_EQ(t.next_deadline(), now + TcpSource::kRetransmitTimeout);
  EXPECT_FALSE(t.ready(now + 199ms));
  ASSERT_TRUE(t.ready(now + 200ms));
  EXPECT_EQ(take(t, now + 200ms)->seq, kIss + 1);
  EXPECT_EQ(t.counters().timeouts, 1u);
  EXPECT_EQ(t.counters().fast_retransmits, 0u);
}

TEST(TcpSource, AZeroWindowIsProbedWithOneSegmentAfterTheTimeout) {
  const Time now{};
  TcpSource t = established(0, now);
  feed(t, ack_of(0, 0), now);  // window closed
  const auto handshake_ack = take(t, now);
  ASSERT_TRUE(handshake_ack);
  EXPECT_TRUE(handshake_ack->payload.empty()) << "only the handshake's ACK: no data into a zero window";
  EXPECT_FALSE(take(t, now));
  ASSERT_EQ(t.next_deadline(), now + TcpSource::kRetransmitTimeout);
  const auto probe = take(t, now + 200ms);
  ASSERT_TRUE(probe);
  EXPECT_EQ(probe->seq, kIss + 1);
  EXPECT_FALSE(take(t, now + 200ms)) << "one probe, not a window's worth";
  feed(t, ack_of(1400, 512), now + 210ms);  // the window opens
  EXPECT_TRUE(take(t, now + 210ms));
}

TEST(TcpSource, ALimitedStreamEndsWithPshAndFinAndClosesWhenTheFinIsAcknowledged) {
  const Time now{};
  TcpSource t = established(3000, now);
  const auto a = take(t, now), b = take(t, now), c = take(t, now), fin = take(t, now);
  ASSERT_TRUE(a && b && c && fin);
  EXPECT_EQ(a->payload.size(), 1400u);
  EXPECT_EQ(b->payload.size(), 1400u);
  EXPECT_EQ(c->payload.size(), 200u) << "the stream's last piece";
  EXPECT_EQ(c->flags, 0x18) << "PSH|ACK on the last data segment";
  EXPECT_EQ(fin->flags, 0x11) << "FIN|ACK";
  EXPECT_EQ(fin->seq, kIss + 1 + 3000);
  EXPECT_EQ(t.state(), TcpSource::State::fin_sent);
  EXPECT_FALSE(take(t, now));
  feed(t, ack_of(3000), now);
  EXPECT_EQ(t.state(), TcpSource::State::fin_sent) << "data acknowledged, the FIN not yet";
  feed(t, ack_of(3001), now);
  EXPECT_EQ(t.state(), TcpSource::State::fin_acked) << "the FIN acknowledged; the host has not closed yet";
  EXPECT_FALSE(take(t, now));
  // The host closes its side: its FIN is acknowledged in turn.
  HostSegment s;
  s.ack = kIss + 1 + 3001;
  s.flags = 0x11;
  feed(t, host_segment(s), now);
  EXPECT_EQ(t.state(), TcpSource::State::closed);
  const auto last = take(t, now);
  ASSERT_TRUE(last) << "the ACK of the host's FIN";
  EXPECT_EQ(last->flags, 0x10);
  EXPECT_EQ(last->seq, kIss + 1 + 3001);
  EXPECT_EQ(last->ack, kHostIss + 2);
  EXPECT_FALSE(take(t, now + 10s)) << "then nothing";
  EXPECT_EQ(t.counters().bytes_acked, 3000u);
  EXPECT_EQ(t.counters().ignored, 0u);
}

TEST(TcpSource, TheHostsFinIsAcknowledged) {
  const Time now{};
  TcpSource t = established(0, now);
  HostSegment s;
  s.ack = kIss + 1;
  s.flags = 0x11;  // FIN|ACK: the receiver closed its socket
  feed(t, host_segment(s), now);
  // Data still fits the window, and carries the ACK of the FIN.
  const auto next = take(t, now);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->ack, kHostIss + 2);
}

TEST(TcpSource, ARstClosesAndNothingMoreIsSent) {
  const Time now{};
  TcpSource t = established(0, now);
  HostSegment s;
  s.flags = 0x04;
  feed(t, host_segment(s), now);
  EXPECT_EQ(t.state(), TcpSource::State::closed);
  EXPECT_EQ(t.counters().resets, 1u);
  EXPECT_FALSE(t.ready(now + 10s));
  EXPECT_FALSE(take(t, now + 10s));
  EXPECT_FALSE(t.next_deadline());
}

TEST(TcpSource, HostileSegmentsAreIgnoredAndCounted) {
  const Time now{};
  TcpSource t = established(0, now);
  ASSERT_TRUE(take(t, now));
  const std::uint64_t ignored = t.counters().ignored;
  // An ACK for data never sent.
  feed(t, ack_of(1'000'000), now);
  // A data offset of 15 words (60 bytes) in a 20-byte header.
  Vec bad = ack_of(1400);
  bad[20 + 12] = 0xF0;
  t.from_host(bad, 20, now);
  // A data offset below the minimum.
  bad[20 + 12] = 0x10;
  t.from_host(bad, 20, now);
  // A truncated header.
  Vec cut = ack_of(1400);
  cut.resize(30);
  t.from_host(cut, 20, now);
  // An ACK without the ACK flag.
  HostSegment noack;
  noack.flags = 0;
  t.from_host(host_segment(noack), 20, now);
  EXPECT_EQ(t.counters().ignored, ignored + 5);
  EXPECT_EQ(t.counters().bytes_acked, 0u) << "nothing was taken as an acknowledgment";
  // A SYN-ACK that acknowledges something else, before the handshake.
  TcpSource fresh(config4());
  ASSERT_TRUE(take(fresh, now));
  Vec wrong = syn_ack(1400, 7, 65535);
  put32(wrong, 28, kIss + 2);
  put16(wrong, 36, 0);
  put16(wrong, 36, ref_tcp_checksum(wrong));
  fresh.from_host(wrong, 20, now);
  EXPECT_EQ(fresh.state(), TcpSource::State::syn_sent);
  // Another connection's segment does not match.
  Vec other = ack_of(0);
  put16(other, 20, 5202);
  EXPECT_FALSE(t.matches(other, 20));
}

TEST(TcpSource, OverIpv6TheSegmentsCarryTheIpv6PseudoHeaderChecksum) {
  TcpSourceConfig c;
  c.ipv6 = true;
  c.local_ipv6 = kServer6;
  c.host_ipv6 = kHost6;
  c.mss = 1440;
  const Time now{};
  TcpSource t(c);
  const auto syn = take(t, now);  // take() checks the checksum
  ASSERT_TRUE(syn);
  EXPECT_EQ(syn->ip.size(), 40u + 28u);
  EXPECT_EQ(syn->ip[6], 6) << "next header TCP";
  EXPECT_EQ(be16(syn->ip, 4), 28) << "payload length";
  feed(t, syn_ack(1440, 7, 65535, true), now);
  const auto data = take(t, now);
  ASSERT_TRUE(data);
  EXPECT_EQ(data->payload.size(), 1440u);
  EXPECT_EQ(data->ip.size(), 1500u);
}

// The network's control port starts it toward the address the command came from, answers "ok"
// first, and stop-source ends it with a RST.
TEST(TcpSource, TheControlPortStartsAndStopsIt) {
  Network n;
  const Time now{};
  auto command = [&](const std::string& text) {
    Vec p(28 + text.size(), 0);
    p[0] = 0x45;
    put16(p, 2, static_cast<std::uint16_t>(p.size()));
    p[8] = 64;
    p[9] = 17;
    std::copy(kHost4.bytes.begin(), kHost4.bytes.end(), p.begin() + 12);
    std::copy(kServer4.bytes.begin(), kServer4.bytes.end(), p.begin() + 16);
    put16(p, 10, ref_checksum(Vec(p.begin(), p.begin() + 20)));
    put16(p, 20, 40000);
    put16(p, 22, kSimControlPort);
    put16(p, 24, static_cast<std::uint16_t>(8 + text.size()));
    std::copy(text.begin(), text.end(), p.begin() + 28);
    n.from_host(p, now);
  };
  auto next = [&] {
    Vec out(2048);
    const auto size = n.to_host(out, now);
    if (size) out.resize(*size);
    return size ? out : Vec{};
  };
  command("tcp-source 0 100");
  const Vec error = next();
  ASSERT_FALSE(error.empty());
  EXPECT_EQ(std::string(error.begin() + 28, error.end()).rfind("error: usage: tcp-source", 0), 0u);
  command("tcp-source 5201 100000");
  const Vec ok = next();
  ASSERT_FALSE(ok.empty());
  EXPECT_EQ(std::string(ok.begin() + 28, ok.end()), "ok");
  ASSERT_NE(n.tcp_source(), nullptr);
  const Vec syn = next();
  ASSERT_EQ(syn.size(), 48u);
  EXPECT_EQ(syn[33], 0x02) << "a SYN";
  EXPECT_EQ(Vec(syn.begin() + 16, syn.begin() + 20), Vec(kHost4.bytes.begin(), kHost4.bytes.end()))
      << "to the command's source address";
  n.from_host(syn_ack(1460, 7, 65535), now);
  EXPECT_EQ(n.tcp_source()->state(), TcpSource::State::established);
  const Vec data = next();
  ASSERT_EQ(data.size(), 1500u);
  EXPECT_EQ(data[33], 0x10) << "data with the handshake's ACK";
  EXPECT_EQ(n.counters().tcp_source_segments, 1u);
  // A segment with a bad TCP checksum is malformed, not an acknowledgment.
  Vec bad = ack_of(1460);
  bad[39] ^= 0xFF;
  const std::uint64_t malformed = n.counters().malformed_from_host;
  n.from_host(bad, now);
  EXPECT_EQ(n.counters().malformed_from_host, malformed + 1);
  EXPECT_EQ(n.tcp_source()->counters().bytes_acked, 0u);
  command("stop-source");
  EXPECT_EQ(n.tcp_source(), nullptr);
  const Vec rst = next();
  ASSERT_FALSE(rst.empty());
  EXPECT_EQ(rst[33], 0x14) << "RST|ACK first: the host's socket must not wait forever";
  const Vec stopped = next();
  ASSERT_FALSE(stopped.empty());
  EXPECT_EQ(std::string(stopped.begin() + 28, stopped.end()), "ok");
  EXPECT_TRUE(next().empty()) << "nothing more from the stopped source";
}

}  // namespace
}  // namespace wwan::sim
