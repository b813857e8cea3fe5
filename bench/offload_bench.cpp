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
//     mode 3 coalesce_per_half: the same segments coalesced 22 at a time, two writevs (what RX
//                         did when a super-packet only gathered one IN transfer of ~22 segments;
//                         mode 2 is what coalescing across the transfers of a batch gives)
//   items = TCP segments, so items_per_second is segments/s into the socket.
#include <benchmark/benchmark.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "datapath/offload/gro.hpp"
#include "datapath/offload/gso.hpp"
#include "tests/datapath/offload_packets.hpp"
#include "tests/support/offload_tun.hpp"

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
  static const std::string result = wwan::testsupport::enter_fresh_network_namespace();
  why = result.empty() ? "" : result + " (needs root)";
  return result.empty();
}

// A TUN with IFF_VNET_HDR, 10.0.0.1/24, and a TCP connection to 10.0.0.1:50xx from 10.0.0.2
// whose far end is this code (tests/support/offload_tun.hpp: SYN with MSS 1460, window scale 7).
struct KernelTcp : wwan::testsupport::TcpPeer {
  std::unique_ptr<wwan::tun::TunDevice> device;
  bool write_failed = false;     // the kernel refused a write
  std::uint64_t delivered = 0;  // bytes the socket gave the application

  std::string open() {
    std::string why;
    device = wwan::testsupport::open_vnet_tun("wwbench0", "10.0.0.1/24", why);
    if (!device) return why;
    // A new port each time: Google Benchmark calls a benchmark several times, and the last
    // connection (never closed by this peer) still holds its port.
    static std::uint16_t port = 5000;
    return connect(device->fd(), {10, 0, 0, 1}, {10, 0, 0, 2}, ++port, 16 << 20, SOCK_NONBLOCK);
  }

  void write_plain(const Packet& p) {
    if (!wwan::testsupport::write_plain(tun, p)) write_failed = true;
  }

  // Waits until `bytes` more fit in the peer's window (reading its ACKs); false on a stall.
  bool room_for(std::uint32_t bytes) {
    const auto deadline = Clock::now() + std::chrono::seconds(2);
    take_acks(0);
    while (std::uint64_t{next - acked} + bytes > window) {
      if (Clock::now() > deadline) return false;
      drain();
      take_acks(100);
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
    if (mode == 0 || mode == 2 || mode == 3) {
      for (std::uint32_t i = 0; i < count; ++i) retag(plain[i], seq + i * kMss, k.ip_id++, true);
      if (mode == 0) {
        for (const Packet& p : plain) k.write_plain(p);
      } else {
        const std::uint32_t per_batch = mode == 2 ? count : count / 2;
        for (std::uint32_t first = 0; first < count; first += per_batch) {
          gro.reset();
          for (std::uint32_t i = first; i < std::min(count, first + per_batch); ++i) gro.add(plain[i]);
          for (const GroItem& item : gro.finish())
            if (::writev(k.tun, item.iov, static_cast<int>(item.iov_count)) != static_cast<ssize_t>(item.bytes))
              k.write_failed = true;
        }
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
      if (::writev(k.tun, super_iov.data(), static_cast<int>(super_iov.size())) < 0) k.write_failed = true;
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
BENCHMARK(BM_KernelRx)->ArgName("mode")->Arg(0)->Arg(1)->Arg(2)->Arg(3);

}  // namespace

BENCHMARK_MAIN();
