// TUN offload benchmarks (docs/offload.md, results in docs/benchmarks.md).
//
// Pure code, per core:
//   BM_Checksum        the Internet checksum over a 1500-byte and a 64 KiB buffer (bytes/s).
//   BM_Coalesce        GroCoalescer over one NTB's worth of TCP segments (40 x 1448 B payload,
//                      1 or 4 interleaved flows), each segment's checksum verified: segments/s.
//   BM_Segment         GsoSegmenter cutting a 64 KiB TSO super-packet (gso_size 1448) into
//                      NTB-sized datagrams with full checksums: segments/s.
// The kernel (root; the process moves into a fresh network namespace, else skipped):
//   BM_KernelRx/mode   TCP segments into a real TCP socket through a TUN with IFF_VNET_HDR, the
//                      test playing the remote peer; the socket is drained in the same loop.
//     mode 0 per_segment: one write per 1460-byte segment (what RX does without offload)
//     mode 1 super:       one writev per 44-segment super-packet, headers prepared (the ceiling)
//     mode 2 coalesce:    the 44 plain segments through GroCoalescer (checksums verified), then
//                         its writev (the offload RX path without the NTB parse)
//   items = TCP segments, so items_per_second is segments/s into the socket.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "datapath/offload/gro.hpp"
#include "datapath/offload/gso.hpp"
#include "tests/datapath/offload_packets.hpp"

namespace {

using namespace wwan::offload;
using namespace wwan::offload::testing;

void BM_Checksum(benchmark::State& state) {
  const auto data = pattern(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(csum::accumulate(data));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_Checksum)->Arg(1500)->Arg(65536);

void BM_Coalesce(benchmark::State& state) {
  const int flows = static_cast<int>(state.range(0));
  std::vector<Packet> segments;
  std::vector<std::uint32_t> seq(static_cast<std::size_t>(flows), 1000);
  for (int i = 0; i < 40; ++i) {
    const int f = i % flows;
    const Flow flow = flow_v4({10, 0, 0, 2}, {10, 0, 0, 1}, static_cast<std::uint16_t>(5000 + f), 40000);
    segments.push_back(tcp_packet(flow, {.id = static_cast<std::uint16_t>(i / flows)},
                                  {.seq = seq[static_cast<std::size_t>(f)]}, pattern(1448, static_cast<std::uint32_t>(i))));
    seq[static_cast<std::size_t>(f)] += 1448;
  }
  GroCoalescer gro({.max_packets = 64});
  gro.reset();
  for (const Packet& p : segments) gro.add(p);
  if (gro.finish().size() != static_cast<std::size_t>(flows)) {
    state.SkipWithError("the prepared segments do not coalesce into one super-packet per flow");
    return;
  }
  for (auto _ : state) {
    gro.reset();
    for (const Packet& p : segments) gro.add(p);
    benchmark::DoNotOptimize(gro.finish().data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * 40);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * 40 * 1448);
}
BENCHMARK(BM_Coalesce)->ArgName("flows")->Arg(1)->Arg(4);

void BM_Segment(benchmark::State& state) {
  const Flow flow = flow_v4({10, 0, 0, 1}, {10, 0, 0, 2}, 40000, 443);
  const Packet super = tcp_packet(flow, {}, {.options = {1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2}}, pattern(45 * 1448));
  Packet read(kVirtioNetHdrSize);
  encode(VirtioNetHdr{kVirtioNetHdrFNeedsCsum, kVirtioNetHdrGsoTcpv4, 52, 1448, 20, 16}, read.data());
  read.insert(read.end(), super.begin(), super.end());
  std::vector<std::uint8_t> ntb(64 * 1024);  // stands in for the NTB the datagrams go into
  std::size_t segments = 0;
  for (auto _ : state) {
    GsoSegmenter g;
    g.start(read);
    std::size_t at = 0;
    while (!g.done()) {
      const std::size_t n = g.next_length();
      if (at + n > ntb.size()) at = 0;  // "the next NTB"
      g.write_next(MutableBytes(ntb).subspan(at, n));
      at += (n + 3) & ~std::size_t{3};
    }
    segments = g.segments();
    benchmark::DoNotOptimize(ntb.data());
  }
  if (segments != 45) state.SkipWithError("expected 45 segments");
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(segments));
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(super.size()));
}
BENCHMARK(BM_Segment);

// ---- the kernel -----------------------------------------------------------------------------------

constexpr std::uint32_t kMss = 1460;
// Segments per write: 40 + 44 * 1460 = 64280 bytes, the most under the 64 KiB IPv4 limit.
constexpr std::uint32_t kSegmentsPerWrite = 44;
using Clock = std::chrono::steady_clock;

bool in_fresh_netns(std::string& why) {
  static const std::string result = [] {
    if (::unshare(CLONE_NEWNET) != 0) return std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno) + " (needs root)";
    return std::string();
  }();
  why = result;
  return result.empty();
}

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd& operator=(Fd&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// A TUN with IFF_VNET_HDR, 10.0.0.1/24, and a TCP connection to 10.0.0.1:50xx from 10.0.0.2
// whose far end is this code (SYN with MSS 1460 and window scale 7).
struct KernelTcp {
  Fd tun, listener, conn;
  std::uint32_t next = 0, acked = 0, ack_number = 0;
  std::uint64_t window = 0;
  unsigned window_shift = 0;
  std::uint16_t ip_id = 1;
  bool write_failed = false;     // the kernel refused a write
  std::uint64_t delivered = 0;  // bytes the socket gave the application
  Flow flow = flow_v4({10, 0, 0, 2}, {10, 0, 0, 1}, 40000, 5001);

  std::string open() {
    tun = Fd(::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
    ifreq ifr{};
    std::strcpy(ifr.ifr_name, "wwbench0");
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI | IFF_VNET_HDR;
    if (tun.get() < 0 || ::ioctl(tun.get(), TUNSETIFF, &ifr) != 0) return std::string("TUNSETIFF: ") + std::strerror(errno);
    if (std::system("ip link set lo up && ip addr add 10.0.0.1/24 dev wwbench0 && ip link set wwbench0 up") != 0)
      return "ip addr / link set failed";
    listener = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    // A new port each time: Google Benchmark calls a benchmark several times, and the last
    // connection (never closed by this peer) still holds its port.
    static std::uint16_t port = 5000;
    flow.destination_port = ++port;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    ::inet_pton(AF_INET, "10.0.0.1", &a.sin_addr);
    const int big = 16 << 20;
    ::setsockopt(listener.get(), SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listener.get(), 1) != 0)
      return std::string("bind/listen: ") + std::strerror(errno);
    const std::uint32_t isn = 1;
    write_plain(tcp_packet(flow, {.id = ip_id++}, {.seq = isn, .ack = 0, .flags = kTcpSyn, .window = 65535,
                                                    .options = {2, 4, 0x05, 0xb4, 1, 3, 3, 7}}, {}));
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    while (ack_number == 0) {
      if (Clock::now() > deadline) return "no SYN-ACK";
      take_acks(true);
    }
    next = acked = isn + 1;
    write_plain(tcp_packet(flow, {.id = ip_id++}, {.seq = next, .ack = ack_number, .window = 65535}, {}));
    pollfd p{listener.get(), POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1) return "not accepted";
    conn = Fd(::accept4(listener.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    return conn.get() < 0 ? "accept failed" : "";
  }

  void write_plain(const Packet& p) {
    iovec iov[2] = {{const_cast<std::uint8_t*>(kVirtioNetHdrNone), kVirtioNetHdrSize},
                    {const_cast<std::uint8_t*>(p.data()), p.size()}};
    if (::writev(tun.get(), iov, 2) < 0) write_failed = true;
  }

  // Reads what the kernel sent (its ACKs: the SYN-ACK's options give the window scale).
  void take_acks(bool wait) {
    std::uint8_t buffer[2048];
    for (;;) {
      const ssize_t n = ::read(tun.get(), buffer, sizeof buffer);
      if (n < 0) {
        if (!wait) return;
        pollfd p{tun.get(), POLLIN, 0};
        ::poll(&p, 1, 100);
        wait = false;
        continue;
      }
      L4Packet l4;
      if (n <= 10 || parse_l4(Bytes(buffer + 10, static_cast<std::size_t>(n) - 10), l4) != L4Parse::Ok || !l4.tcp())
        continue;
      const std::uint8_t* h = l4.l4();
      // Only this connection's (an earlier run's socket may still be sending its FIN).
      if (load_be16(h) != flow.destination_port || load_be16(h + 2) != flow.source_port) continue;
      if ((h[13] & kTcpSyn) != 0) {
        ack_number = load_be32(h + 4) + 1;
        for (std::size_t i = 20; i + 2 < l4.l4_header_length; i += h[i] <= 1 ? 1 : h[i + 1])
          if (h[i] == 3) window_shift = h[i + 2];
        window = load_be16(h + 14);
      } else {
        const std::uint32_t ack = load_be32(h + 8);
        if (static_cast<std::int32_t>(ack - acked) >= 0) {
          acked = ack;
          window = std::uint64_t{load_be16(h + 14)} << window_shift;
        }
      }
    }
  }

  // Waits until `bytes` more fit in the peer's window (reading its ACKs); false on a stall.
  bool room_for(std::uint32_t bytes) {
    const auto deadline = Clock::now() + std::chrono::seconds(2);
    take_acks(false);
    while (std::uint64_t{next - acked} + bytes > window) {
      if (Clock::now() > deadline) return false;
      drain();
      take_acks(true);
    }
    return true;
  }

  void drain() {
    static std::uint8_t sink[1 << 20];
    for (ssize_t n; (n = ::read(conn.get(), sink, sizeof sink)) > 0;) delivered += static_cast<std::uint64_t>(n);
  }
};

// Rewrites seq (and IPv4 ID) in a prepared packet and keeps both checksums right (RFC 1624).
void retag(Packet& p, std::uint32_t seq, std::uint16_t id, bool tcp_checksum) {
  const std::uint16_t old_id = load_be16(&p[4]);
  store_be16(&p[4], id);
  store_be16(&p[10], csum::update16(load_be16(&p[10]), old_id, id));
  const std::uint32_t old_seq = load_be32(&p[24]);
  store_be32(&p[24], seq);
  if (tcp_checksum) {
    std::uint16_t c = load_be16(&p[36]);
    c = csum::update16(c, static_cast<std::uint16_t>(old_seq >> 16), static_cast<std::uint16_t>(seq >> 16));
    c = csum::update16(c, static_cast<std::uint16_t>(old_seq), static_cast<std::uint16_t>(seq));
    store_be16(&p[36], c);
  }
}

void BM_KernelRx(benchmark::State& state) {
  std::string why;
  if (!in_fresh_netns(why)) {
    state.SkipWithError(why.c_str());
    return;
  }
  KernelTcp k;
  if (std::string e = k.open(); !e.empty()) {
    state.SkipWithError(e.c_str());
    return;
  }
  const int mode = static_cast<int>(state.range(0));
  const std::uint32_t count = kSegmentsPerWrite;
  std::vector<Packet> plain;
  for (std::uint32_t i = 0; i < count; ++i)
    plain.push_back(tcp_packet(k.flow, {.id = static_cast<std::uint16_t>(i)}, {.seq = i * kMss, .ack = k.ack_number, .window = 65535},
                               pattern(kMss, i * kMss)));
  GroCoalescer gro({.max_packets = 64});
  // The bare super-packet: what GroCoalescer makes of the segments, made once.
  gro.reset();
  for (const Packet& p : plain) gro.add(p);
  const auto items = gro.finish();
  if (items.size() != 1) {
    state.SkipWithError("the segments do not coalesce");
    return;
  }
  Packet super_header(static_cast<const std::uint8_t*>(items[0].iov[0].iov_base),
                      static_cast<const std::uint8_t*>(items[0].iov[0].iov_base) + items[0].iov[0].iov_len);
  std::vector<iovec> super_iov(items[0].iov, items[0].iov + items[0].iov_count);
  super_iov[0].iov_base = super_header.data();

  const std::uint32_t batch_bytes = count * kMss;
  for (auto _ : state) {
    if (!k.room_for(batch_bytes)) {
      state.SkipWithError("the receiver's window did not open (stalled)");
      break;
    }
    const std::uint32_t seq = k.next;
    if (mode == 0 || mode == 2) {
      for (std::uint32_t i = 0; i < count; ++i) retag(plain[i], seq + i * kMss, k.ip_id++, true);
      if (mode == 0) {
        for (const Packet& p : plain) k.write_plain(p);
      } else {
        gro.reset();
        for (const Packet& p : plain) gro.add(p);
        for (const GroItem& item : gro.finish())
          if (::writev(k.tun.get(), item.iov, static_cast<int>(item.iov_count)) != static_cast<ssize_t>(item.bytes))
            k.write_failed = true;
      }
    } else {
      Packet& h = super_header;
      // IPv4 at 10, TCP at 30: retag in the scratch header (the TCP field is the seed, which
      // does not depend on seq).
      const std::uint16_t old_id = load_be16(&h[14]);
      store_be16(&h[14], k.ip_id);
      store_be16(&h[20], csum::update16(load_be16(&h[20]), old_id, k.ip_id));
      k.ip_id = static_cast<std::uint16_t>(k.ip_id + count);
      store_be32(&h[34], seq);
      if (::writev(k.tun.get(), super_iov.data(), static_cast<int>(super_iov.size())) < 0) k.write_failed = true;
    }
    if (k.write_failed) {
      state.SkipWithError("the TUN refused a write");
      break;
    }
    k.next += batch_bytes;
    k.drain();
  }
  // Everything written must have reached the socket (a dropped write would stall above).
  // Sequence numbers start at 2 (the SYN took 1).
  const std::uint64_t written = k.next - 2;
  const auto deadline = Clock::now() + std::chrono::seconds(2);
  while (k.delivered < written && Clock::now() < deadline) k.drain();
  if (k.delivered != written) state.SkipWithError("the socket did not receive every byte written");
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * count));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * batch_bytes));
}
BENCHMARK(BM_KernelRx)->ArgName("mode")->Arg(0)->Arg(1)->Arg(2);

}  // namespace

BENCHMARK_MAIN();
