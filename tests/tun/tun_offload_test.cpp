// TUN offload against the real kernel, each test in a fresh network namespace (root; skipped
// otherwise), plus the TUNSETOFFLOAD fallback against a fake.
//
// The kernel is the oracle:
//   RX  super-packets built by GroCoalescer are written into a TUN opened with IFF_VNET_HDR; a
//       real TCP socket on the other side must receive exactly the byte stream, and a real UDP
//       socket exactly the datagrams. The test plays the remote TCP peer by hand (SYN, ACKs,
//       go-back-N retransmission), so one segment can be sent with a corrupted checksum: it must
//       go out plain and the kernel must drop it (TcpInCsumErrors), not take it inside a
//       NEEDS_CSUM super-packet.
//   TX  with TUNSETOFFLOAD granted, a real TCP socket sends 2 MiB through the TUN; the test
//       reads the kernel's TSO super-packets, cuts them with GsoSegmenter and checks every
//       segment (IPv4 and TCP checksums by the naive sum, MSS, the sent bytes at the place its
//       sequence number says) and the reassembled stream. The same for a UDP_SEGMENT send (USO).
// Every wait polls a descriptor against a deadline.
#include "tun/tun_offload.hpp"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "datapath/offload/gro.hpp"
#include "datapath/offload/gso.hpp"
#include "netns.hpp"
#include "tests/datapath/offload_packets.hpp"
#include "tests/support/hex.hpp"
#include "tests/support/network.hpp"
#include "tests/support/offload_tun.hpp"
#include "tun/tun_device.hpp"

namespace wwan::tun {
namespace {

using namespace offload;
using offload::testing::Flow;
using offload::testing::flow_v4;
using offload::testing::IpFields;
using offload::testing::naive_ipv4_ok;
using offload::testing::naive_l4_ok;
using offload::testing::Packet;
using offload::testing::pattern;
using offload::testing::TcpFields;
using offload::testing::tcp_packet;
using offload::testing::udp_packet;
using ::testing::HasSubstr;

// ---- the fallback, against a fake ----------------------------------------------------------------

struct FakeIoctls : OffloadIoctls {
  int vnet_error = 0;
  unsigned refused_bits = 0;  // set_offload fails with EINVAL if any of these is asked for
  std::vector<unsigned> asked;
  int set_vnet_hdr_size(int bytes) override {
    EXPECT_EQ(bytes, 10);
    return vnet_error;
  }
  int set_offload(unsigned flags) override {
    asked.push_back(flags);
    return (flags & refused_bits) != 0 ? EINVAL : 0;
  }
};

TEST(OffloadNegotiation, EverythingGranted) {
  FakeIoctls io;
  OffloadGrant grant;
  std::string error;
  ASSERT_TRUE(negotiate_offload(io, kTunOffloadAll, grant, error));
  EXPECT_EQ(grant.flags, kTunOffloadAll);
  EXPECT_TRUE(grant.csum() && grant.tso() && grant.uso());
  EXPECT_EQ(grant.note, "");
  EXPECT_EQ(io.asked, std::vector<unsigned>{kTunOffloadAll});
}

TEST(OffloadNegotiation, WithoutUsoOnKernelsBefore62) {
  FakeIoctls io;
  io.refused_bits = kTunFUso4 | kTunFUso6;
  OffloadGrant grant;
  std::string error;
  ASSERT_TRUE(negotiate_offload(io, kTunOffloadAll, grant, error));
  EXPECT_EQ(grant.flags, kTunFCsum | kTunFTso4 | kTunFTso6);
  EXPECT_TRUE(grant.tso());
  EXPECT_FALSE(grant.uso());
  EXPECT_THAT(grant.note, HasSubstr("refused UDP segmentation"));
  EXPECT_THAT(grant.note, HasSubstr("csum tso4 tso6"));
  EXPECT_TRUE(testing::one_line(grant.note));
}

TEST(OffloadNegotiation, ChecksumOnlyThenNothing) {
  FakeIoctls io;
  io.refused_bits = kTunFTso4;
  OffloadGrant grant;
  std::string error;
  ASSERT_TRUE(negotiate_offload(io, kTunOffloadAll, grant, error));
  EXPECT_EQ(grant.flags, kTunFCsum);
  EXPECT_THAT(grant.note, HasSubstr("granted only csum"));

  FakeIoctls none;
  none.refused_bits = ~0u;
  ASSERT_TRUE(negotiate_offload(none, kTunOffloadAll, grant, error));
  EXPECT_EQ(grant.flags, 0u);
  EXPECT_THAT(grant.note, HasSubstr("refused every offload"));
  // Tried: all, without USO, checksum only, nothing (which the kernel never refuses; here it does).
  EXPECT_EQ(none.asked, (std::vector<unsigned>{kTunOffloadAll, kTunFCsum | kTunFTso4 | kTunFTso6, kTunFCsum, 0u}));
}

TEST(OffloadNegotiation, NoVnetHdrSizeIsAnError) {
  FakeIoctls io;
  io.vnet_error = EINVAL;
  OffloadGrant grant;
  std::string error;
  EXPECT_FALSE(negotiate_offload(io, kTunOffloadAll, grant, error));
  EXPECT_THAT(error, HasSubstr("TUNSETVNETHDRSZ"));
  EXPECT_TRUE(io.asked.empty());
}

TEST(OffloadNegotiation, Describe) {
  EXPECT_EQ(describe_offload(0), "none");
  EXPECT_EQ(describe_offload(kTunOffloadAll), "csum tso4 tso6 uso4 uso6");
}

// ---- the kernel -----------------------------------------------------------------------------------

const std::string kTun = "wwoff0";
constexpr std::uint16_t kTcpPort = 5001;
constexpr std::uint16_t kUdpPort = 6001;
constexpr std::uint16_t kPeerPort = 40000;
// 10.0.0.1 is the TUN's address (the local stack); 10.0.0.2 is the test playing the far end.
const Flow kFromPeerTcp = flow_v4({10, 0, 0, 2}, {10, 0, 0, 1}, kPeerPort, kTcpPort);
const Flow kFromPeerUdp = flow_v4({10, 0, 0, 2}, {10, 0, 0, 1}, kPeerPort, kUdpPort);

using Clock = std::chrono::steady_clock;
constexpr auto kDeadline = std::chrono::seconds(20);

// Shared with the offload benchmarks (tests/support/).
using testsupport::Fd;
using testsupport::remaining_ms;

sockaddr_in address(const char* ip, std::uint16_t port) { return testsupport::ipv4_address(ip, port); }

// "Tcp: ... InCsumErrors" from /proc/net/snmp (per network namespace).
std::uint64_t snmp(const std::string& group, const std::string& field) {
  const auto counters = testsupport::snmp(group);
  const auto it = counters.find(field);
  if (it != counters.end()) return it->second;
  ADD_FAILURE() << "no " << group << " " << field << " in /proc/net/snmp";
  return 0;
}

class TunOffloadKernel : public testing::NetnsTest {
 protected:
  void SetUp() override {
    NetnsTest::SetUp();
    if (IsSkipped()) return;
    std::string error;
    tun_ = testsupport::open_vnet_tun(kTun, "10.0.0.1/24", error);
    ASSERT_NE(tun_, nullptr) << error;
  }

  int fd() const { return tun_->fd(); }

  // One packet with a zero virtio_net_hdr.
  void write_plain(const Packet& p) { ASSERT_TRUE(testsupport::write_plain(fd(), p)) << std::strerror(errno); }

  // Every item of a coalesced batch; returns false (with errno kept) on a refused write.
  bool write_items(std::span<const GroItem> items) {
    for (const GroItem& item : items) {
      const ssize_t n = ::writev(fd(), item.iov, static_cast<int>(item.iov_count));
      if (n < 0) return false;
      EXPECT_EQ(n, static_cast<ssize_t>(item.bytes));
    }
    return true;
  }

  // The next read from the TUN (virtio_net_hdr included) within the deadline; empty on timeout.
  Packet read_tun(Clock::time_point deadline) {
    Packet buffer(kVirtioNetHdrSize + 65536);
    for (;;) {
      const ssize_t n = ::read(fd(), buffer.data(), buffer.size());
      if (n > 0) {
        buffer.resize(static_cast<std::size_t>(n));
        return buffer;
      }
      if (n < 0 && errno != EAGAIN) {
        ADD_FAILURE() << "read from the TUN: " << std::strerror(errno);
        return {};
      }
      pollfd p{fd(), POLLIN, 0};
      if (::poll(&p, 1, remaining_ms(deadline)) <= 0) return {};
    }
  }

  // The packets of one TUN read, segmented (a read may be a super-packet), checked one by one.
  std::vector<Packet> packets_of(const Packet& read, std::uint8_t* gso_type = nullptr) {
    std::vector<Packet> out;
    GsoSegmenter g;
    const GsoError e = g.start(read);
    EXPECT_EQ(e, GsoError::None) << to_string(e);
    if (gso_type != nullptr) *gso_type = decode(read.data()).gso_type;
    while (!g.done()) {
      out.emplace_back(g.next_length());
      g.write_next(out.back());
    }
    return out;
  }

  std::unique_ptr<TunDevice> tun_;
};

// TCP fields of a packet from the kernel, for the hand-played peer.
struct TcpSeen {
  std::uint32_t seq, ack;
  std::uint8_t flags;
  std::uint16_t window;
  std::uint16_t source_port, destination_port;
  Bytes payload;
};
bool tcp_of(const Packet& p, TcpSeen& t) {
  L4Packet l4;
  if (parse_l4(p, l4) != L4Parse::Ok || !l4.tcp() || l4.version != 4) return false;
  const std::uint8_t* h = l4.l4();
  t = TcpSeen{load_be32(h + 4), load_be32(h + 8), h[13], load_be16(h + 14), load_be16(h), load_be16(h + 2), l4.payload()};
  return true;
}

// ---- RX: coalesced super-packets into the kernel -----------------------------------------------------

TEST_F(TunOffloadKernel, RxTcpSuperPacketsDeliverTheExactByteStream) {
  Fd listener(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  const sockaddr_in local = address("10.0.0.1", kTcpPort);
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<const sockaddr*>(&local), sizeof local), 0) << std::strerror(errno);
  ASSERT_EQ(::listen(listener.get(), 1), 0);
  const std::uint64_t csum_errors_before = snmp("Tcp", "InCsumErrors");
  const auto deadline = Clock::now() + kDeadline;

  // The handshake, by hand: SYN with MSS 1460, no window scaling.
  const std::uint32_t isn = 0x7000'0000;
  std::uint16_t ip_id = 1;
  write_plain(tcp_packet(kFromPeerTcp, {.id = ip_id++}, {.seq = isn, .ack = 0, .flags = kTcpSyn, .window = 65535,
                                                          .options = test::hex("02 04 05 b4")}, {}));
  TcpSeen synack{};
  for (bool got = false; !got;) {
    const Packet read = read_tun(deadline);
    ASSERT_FALSE(read.empty()) << "no SYN-ACK from the kernel";
    for (const Packet& p : packets_of(read))
      if (tcp_of(p, synack) && synack.destination_port == kPeerPort && (synack.flags & kTcpSyn)) got = true;
  }
  ASSERT_EQ(synack.ack, isn + 1);
  std::uint32_t acked = isn + 1, next = isn + 1, window = synack.window;
  const std::uint32_t ack_number = synack.seq + 1;
  write_plain(tcp_packet(kFromPeerTcp, {.id = ip_id++}, {.seq = next, .ack = ack_number, .window = 65535}, {}));
  pollfd lp{listener.get(), POLLIN, 0};
  ASSERT_EQ(::poll(&lp, 1, remaining_ms(deadline)), 1) << "the connection was not accepted";
  Fd conn(::accept4(listener.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  ASSERT_GE(conn.get(), 0);

  // The stream: 1 MiB in 1460-byte segments, batched like NTBs (up to 40 segments), coalesced,
  // written. The segment carrying byte 300000 is sent once with a corrupted checksum.
  const std::size_t total = 1 << 20;
  const std::vector<std::uint8_t> data = pattern(total);
  const std::uint32_t mss = 1460;
  const std::uint32_t corrupt_at = isn + 1 + 300000;
  bool corrupted = false;
  GroCoalescer gro({.max_packets = 64});
  std::vector<Packet> batch;
  std::vector<std::uint8_t> received;
  while (received.size() < total) {
    ASSERT_GT(remaining_ms(deadline), 0) << "stalled at " << received.size() << " bytes received";
    batch.clear();
    while (batch.size() < 40) {
      const std::uint64_t offset = next - (isn + 1);
      const std::uint64_t room = std::uint64_t{acked} + window - next;
      const std::uint32_t n = static_cast<std::uint32_t>(std::min<std::uint64_t>(mss, total - offset));
      if (n == 0 || room < n) break;
      Packet p = tcp_packet(kFromPeerTcp, {.id = ip_id++}, {.seq = next, .ack = ack_number, .window = 65535},
                            std::span(data).subspan(offset, n));
      if (!corrupted && next <= corrupt_at && corrupt_at < next + n) {
        p.back() ^= 0x5A;
        corrupted = true;
      }
      batch.push_back(std::move(p));
      next += n;
    }
    gro.reset();
    for (const Packet& p : batch) gro.add(p);
    ASSERT_TRUE(write_items(gro.finish())) << "writev: " << std::strerror(errno);

    // Take what the socket has and the kernel's ACKs; go back to the last ACK when nothing
    // moves for 100 ms (the corrupted segment was dropped: the peer must send it again).
    pollfd fds[2] = {{fd(), POLLIN, 0}, {conn.get(), POLLIN, 0}};
    const int ready = ::poll(fds, 2, batch.empty() ? 100 : 0);
    std::uint8_t chunk[65536];
    for (ssize_t n; (n = ::read(conn.get(), chunk, sizeof chunk)) > 0;) received.insert(received.end(), chunk, chunk + n);
    for (Packet read; !(read = read_tun(Clock::now())).empty();)
      for (const Packet& p : packets_of(read)) {
        TcpSeen t{};
        if (!tcp_of(p, t) || t.destination_port != kPeerPort) continue;
        if (static_cast<std::int32_t>(t.ack - acked) > 0) acked = t.ack;
        window = t.window;
      }
    if (ready == 0 && batch.empty()) next = acked;
  }
  EXPECT_TRUE(received == data) << "the socket did not receive the exact byte stream";
  EXPECT_TRUE(corrupted);
  const GroCounters& c = gro.counters();
  EXPECT_GT(c.super_packets, 0u);
  EXPECT_GT(c.coalesced, total / mss / 2) << "most segments should have travelled in super-packets";
  EXPECT_EQ(c.plain_by_reason[static_cast<std::size_t>(GroPlain::L4ChecksumBad)], 1u);
  EXPECT_EQ(snmp("Tcp", "InCsumErrors"), csum_errors_before + 1)
      << "the corrupted segment must reach the kernel alone, and be dropped there";
}

TEST_F(TunOffloadKernel, RxUdpL4SuperPacketsDeliverEveryDatagram) {
  Fd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  const sockaddr_in local = address("10.0.0.1", kUdpPort);
  ASSERT_EQ(::bind(sock.get(), reinterpret_cast<const sockaddr*>(&local), sizeof local), 0);
  // 60 datagrams of 1200 bytes and a last one of 77, two NTB-sized batches.
  std::vector<Packet> datagrams;
  for (std::uint16_t i = 0; i < 61; ++i)
    datagrams.push_back(udp_packet(kFromPeerUdp, {.id = static_cast<std::uint16_t>(100 + i), .df = false},
                                   pattern(i == 60 ? 77 : 1200, i * 1000u)));
  GroCoalescer gro({.max_packets = 64, .udp = true});
  for (std::size_t first = 0; first < datagrams.size(); first += 40) {
    gro.reset();
    for (std::size_t i = first; i < std::min(first + 40, datagrams.size()); ++i) gro.add(datagrams[i]);
    if (!write_items(gro.finish())) {
      if (errno == EINVAL) GTEST_SKIP() << "this kernel does not take UDP_L4 from a TUN (Linux < 6.2)";
      FAIL() << "writev: " << std::strerror(errno);
    }
  }
  EXPECT_EQ(gro.counters().super_packets, 2u);
  const auto deadline = Clock::now() + kDeadline;
  for (std::size_t i = 0; i < datagrams.size(); ++i) {
    pollfd p{sock.get(), POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, remaining_ms(deadline)), 1) << "datagram " << i << " did not arrive";
    std::uint8_t buffer[2048];
    const ssize_t n = ::recv(sock.get(), buffer, sizeof buffer, 0);
    const auto payload = pattern(i == 60 ? 77 : 1200, static_cast<std::uint32_t>(i * 1000));
    ASSERT_EQ(std::vector<std::uint8_t>(buffer, buffer + std::max<ssize_t>(n, 0)), payload) << "datagram " << i;
  }
}

// Local delivery trusts NEEDS_CSUM (the socket never checks the payload), so the pseudo-header
// seed and csum_start/csum_offset are proved here instead: the kernel forwards the super-packet
// to a second TUN without offload, which makes it segment the packet and compute every
// checksum in software from our seed (skb_checksum_help). A wrong seed, offset or length
// comes out as segments whose checksums do not verify.
TEST_F(TunOffloadKernel, RxSuperPacketsForwardedByTheKernelLeaveWithValidChecksums) {
  std::string error;
  auto out = TunDevice::open("wwoff1", TunOptions{.vnet_hdr = true, .nonblocking = true}, error);
  ASSERT_NE(out, nullptr) << error;
  int status = 0;
  testing::shell("ip addr add 10.1.0.1/24 dev wwoff1 && ip link set wwoff1 up && sysctl -qw net.ipv4.ip_forward=1 && "
                 "ip -6 addr add fd00:a::1/64 dev " + kTun + " nodad && ip -6 addr add fd00:b::1/64 dev wwoff1 nodad && "
                 "sysctl -qw net.ipv6.conf.all.forwarding=1",
                 &status);
  ASSERT_EQ(status, 0);
  const auto v6 = [](std::uint8_t net, std::uint8_t host) {
    std::array<std::uint8_t, 16> a{0xfd, 0x00, 0x00, net};
    a[15] = host;
    return a;
  };
  Flow v6_flow;
  v6_flow.version = 6;
  v6_flow.source = v6(0x0a, 2);
  v6_flow.destination = v6(0x0b, 2);
  const Flow v4_flow = flow_v4({10, 0, 0, 2}, {10, 1, 0, 2}, kPeerPort, kTcpPort);

  for (const Flow& flow : {v4_flow, v6_flow})
    for (const bool tcp : {true, false}) {
      SCOPED_TRACE(std::string("IPv") + std::to_string(flow.version) + (tcp ? " TCP" : " UDP"));
      std::vector<Packet> in;
      std::uint32_t seq = 77;
      for (std::uint16_t i = 0; i < 20; ++i) {
        const IpFields ip{.id = static_cast<std::uint16_t>(500 + i), .df = tcp};
        const auto payload = pattern(i == 19 ? 333 : 1000, i * 1000u + (tcp ? 0 : 7));
        in.push_back(tcp ? tcp_packet(flow, ip, {.seq = seq}, payload) : udp_packet(flow, ip, payload));
        seq += static_cast<std::uint32_t>(payload.size());
      }
      GroCoalescer gro({.max_packets = 64, .udp = true});
      for (const Packet& p : in) gro.add(p);
      const auto items = gro.finish();
      ASSERT_EQ(items.size(), 1u);
      ASSERT_EQ(items[0].segments, 20u);
      ASSERT_TRUE(write_items(items)) << "writev: " << std::strerror(errno);

      const auto deadline = Clock::now() + kDeadline;
      std::size_t got = 0;
      while (got < in.size()) {
        Packet read(kVirtioNetHdrSize + 65536);
        ssize_t n = ::read(out->fd(), read.data(), read.size());
        if (n < 0) {
          ASSERT_EQ(errno, EAGAIN);
          pollfd p{out->fd(), POLLIN, 0};
          ASSERT_EQ(::poll(&p, 1, remaining_ms(deadline)), 1) << "forwarded " << got << " of " << in.size();
          continue;
        }
        read.resize(static_cast<std::size_t>(n));
        for (const Packet& p : packets_of(read)) {
          L4Packet l4;
          if (parse_l4(p, l4) != L4Parse::Ok || l4.tcp() != tcp || load_be16(l4.l4()) != kPeerPort) continue;
          ASSERT_LT(got, in.size());
          EXPECT_TRUE(naive_ipv4_ok(p)) << "segment " << got;
          EXPECT_TRUE(naive_l4_ok(p)) << "segment " << got << ": the kernel's checksum from our seed";
          L4Packet want;
          ASSERT_EQ(parse_l4(in[got], want), L4Parse::Ok);
          EXPECT_TRUE(std::equal(l4.payload().begin(), l4.payload().end(), want.payload().begin(), want.payload().end()))
              << "segment " << got;
          EXPECT_EQ(p[flow.version == 4 ? 8 : 7], 63) << "forwarded: TTL / hop limit one less";
          ++got;
        }
      }
    }
}

// ---- TX: the kernel's TSO / USO super-packets, segmented -----------------------------------------------

TEST_F(TunOffloadKernel, TxTsoSuperPacketsSegmentIntoValidContiguousSegments) {
  OffloadGrant grant;
  std::string error;
  ASSERT_TRUE(enable_offload(fd(), grant, error)) << error;
  if (!grant.tso()) GTEST_SKIP() << "TSO not granted: " << grant.note;

  Fd client(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  const sockaddr_in peer = address("10.0.0.2", kTcpPort);
  ASSERT_NE(::connect(client.get(), reinterpret_cast<const sockaddr*>(&peer), sizeof peer), 0);
  ASSERT_EQ(errno, EINPROGRESS);
  const auto deadline = Clock::now() + kDeadline;
  const Flow to_host = flow_v4({10, 0, 0, 2}, {10, 0, 0, 1}, kTcpPort, 0);

  TcpSeen syn{};
  for (bool got = false; !got;) {
    const Packet read = read_tun(deadline);
    ASSERT_FALSE(read.empty()) << "no SYN from the kernel";
    for (const Packet& p : packets_of(read))
      if (tcp_of(p, syn) && syn.destination_port == kTcpPort && (syn.flags & kTcpSyn)) got = true;
  }
  Flow back = to_host;
  back.destination_port = syn.source_port;
  const std::uint32_t our_isn = 0x1234'0000;
  std::uint16_t ip_id = 1;
  // SYN-ACK: MSS 1460, window scale 7, so that the window is no limit (65535 << 7).
  write_plain(tcp_packet(back, {.id = ip_id++}, {.seq = our_isn, .ack = syn.seq + 1, .flags = kTcpSyn | kTcpAck,
                                                  .window = 65535, .options = test::hex("02 04 05 b4 01 03 03 07")}, {}));
  pollfd cp{client.get(), POLLOUT, 0};
  ASSERT_EQ(::poll(&cp, 1, remaining_ms(deadline)), 1) << "connect did not complete";

  const std::size_t total = 2 << 20;
  const std::vector<std::uint8_t> data = pattern(total, 3);
  std::size_t sent = 0;
  std::vector<std::uint8_t> received;
  std::uint32_t expected = syn.seq + 1;
  std::size_t reads = 0, gso_reads = 0, segments = 0, retransmitted = 0, gaps = 0;
  while (received.size() < total) {
    ASSERT_GT(remaining_ms(deadline), 0) << "stalled at " << received.size() << " bytes";
    while (sent < total) {
      const ssize_t n = ::send(client.get(), data.data() + sent, total - sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<std::size_t>(n);
    }
    const Packet read = read_tun(deadline);
    ASSERT_FALSE(read.empty()) << "nothing from the kernel with " << received.size() << " bytes received";
    std::uint8_t gso_type = 0;
    const auto packets = packets_of(read, &gso_type);
    ++reads;
    if (gso_type == kVirtioNetHdrGsoTcpv4 && packets.size() > 1) ++gso_reads;
    for (const Packet& p : packets) {
      TcpSeen t{};
      if (!tcp_of(p, t) || t.source_port != syn.source_port) continue;
      ++segments;
      ASSERT_TRUE(naive_ipv4_ok(p)) << "IPv4 header checksum of a segment";
      ASSERT_TRUE(naive_l4_ok(p)) << "TCP checksum of a segment";
      ASSERT_LE(t.payload.size(), 1460u);
      if (t.payload.empty()) continue;
      // Every segment must carry the sent bytes at the place its sequence number says. On a
      // loaded machine the kernel may retransmit (our ACK came late) or, after a TUN queue
      // overflow, show a gap; both are counted, and only the next contiguous bytes are taken.
      const std::uint64_t offset = t.seq - (syn.seq + 1);
      ASSERT_LE(offset + t.payload.size(), total) << "a segment beyond the data sent";
      ASSERT_TRUE(std::equal(t.payload.begin(), t.payload.end(), data.begin() + static_cast<std::ptrdiff_t>(offset)))
          << "the segment at offset " << offset << " does not carry the bytes sent there";
      if (offset == received.size()) {
        received.insert(received.end(), t.payload.begin(), t.payload.end());
        expected += static_cast<std::uint32_t>(t.payload.size());
      } else if (offset < received.size()) {
        ++retransmitted;
      } else {
        ++gaps;
      }
    }
    // Acknowledge what arrived (window 65535 << 7).
    write_plain(tcp_packet(back, {.id = ip_id++}, {.seq = our_isn + 1, .ack = expected, .window = 65535}, {}));
  }
  EXPECT_TRUE(received == data) << "the segments do not carry the bytes the socket sent";
  EXPECT_GT(gso_reads, 0u) << reads << " reads, none a TSO super-packet";
  EXPECT_GT(segments, 2 * reads) << "the kernel should hand out several segments per read";
  std::cout << "[          ] " << total << " bytes in " << reads << " reads (" << gso_reads << " TSO), " << segments
            << " segments, " << retransmitted << " retransmitted, " << gaps << " after a gap\n";
}

TEST_F(TunOffloadKernel, TxUsoSuperPacketSegmentsIntoTheDatagrams) {
  OffloadGrant grant;
  std::string error;
  ASSERT_TRUE(enable_offload(fd(), grant, error)) << error;
  if (!grant.uso()) GTEST_SKIP() << "USO not granted: " << grant.note;
  Fd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  const sockaddr_in peer = address("10.0.0.2", kUdpPort);
  ASSERT_EQ(::connect(sock.get(), reinterpret_cast<const sockaddr*>(&peer), sizeof peer), 0);
  const int gso_size = 1000;
  ASSERT_EQ(::setsockopt(sock.get(), SOL_UDP, UDP_SEGMENT, &gso_size, sizeof gso_size), 0) << std::strerror(errno);
  const std::vector<std::uint8_t> data = pattern(10500, 9);
  ASSERT_EQ(::send(sock.get(), data.data(), data.size(), 0), static_cast<ssize_t>(data.size()));

  const auto deadline = Clock::now() + kDeadline;
  for (;;) {
    const Packet read = read_tun(deadline);
    ASSERT_FALSE(read.empty()) << "the UDP send never reached the TUN";
    std::uint8_t gso_type = 0;
    const auto packets = packets_of(read, &gso_type);
    L4Packet first;
    if (packets.empty() || parse_l4(packets[0], first) != L4Parse::Ok || first.tcp() ||
        load_be16(first.l4() + 2) != kUdpPort)
      continue;  // something else (IPv6 noise)
    EXPECT_EQ(gso_type, kVirtioNetHdrGsoUdpL4) << "one USO super-packet for the whole send";
    ASSERT_EQ(packets.size(), 11u);
    std::vector<std::uint8_t> joined;
    for (const Packet& p : packets) {
      EXPECT_TRUE(naive_ipv4_ok(p));
      EXPECT_TRUE(naive_l4_ok(p));
      L4Packet l4;
      ASSERT_EQ(parse_l4(p, l4), L4Parse::Ok);
      EXPECT_LE(l4.payload_length, 1000u);
      joined.insert(joined.end(), l4.payload().begin(), l4.payload().end());
    }
    EXPECT_TRUE(joined == data);
    return;
  }
}

}  // namespace
}  // namespace wwan::tun
