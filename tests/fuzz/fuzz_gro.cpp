// libFuzzer target: the RX coalescer (datapath/offload/gro.hpp) on arbitrary batches of packets.
//
// Input: byte 0 picks the limits (bit 0: UDP coalescing on; bits 1-3: max_packets 1..8 * 8),
// then packets as [length: 2 bytes big-endian][bytes]. Checked, besides what ASan/UBSan see:
//   - every write is at most 1024 iovecs and its `bytes` is the sum of its pieces; every payload
//     piece of a super-packet points into the input (the zero-copy contract);
//   - a super-packet's virtio_net_hdr is one the kernel takes (NEEDS_CSUM, TCPV4/TCPV6/UDP_L4,
//     csum_start/offset at the L4 checksum), and GsoSegmenter takes it back;
//   - coalesce then segment gives back the packets that went in, as a multiset (flows may be
//     reordered relative to each other): byte for byte except the IPv4 ID and header checksum (a
//     fixed-ID DF stream comes back counting, docs/offload.md) and the L4 checksum field (0x0000
//     and 0xFFFF are the same one's complement sum), which must verify instead;
//   - no segment whose checksum failed ever sits inside a super-packet (it would be trusted).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "tests/fuzz/fuzz_check.hpp"

#include "datapath/offload/gro.hpp"
#include "datapath/offload/gso.hpp"

namespace {

using namespace wwan::offload;
using Packet = std::vector<std::uint8_t>;

// The comparable form: IPv4 ID + header checksum and the TCP/UDP checksum field zeroed.
Packet normalized(Packet p) {
  L4Packet l4;
  if (parse_l4(p, l4) != L4Parse::Ok) return p;
  if (l4.version == 4) {
    p[4] = p[5] = p[10] = p[11] = 0;
  }
  const std::size_t field = l4.l4_offset() + (l4.tcp() ? kTcpChecksumOffset : kUdpChecksumOffset);
  p[field] = p[field + 1] = 0;
  return p;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  GroLimits limits;
  limits.udp = (data[0] & 1) != 0;
  limits.max_packets = static_cast<std::size_t>(((data[0] >> 1) & 7) + 1) * 8;
  GroCoalescer gro(limits);

  // Two batches through one coalescer, so reset() is exercised too.
  std::size_t at = 1;
  for (int batch = 0; batch < 2; ++batch) {
    gro.reset();
    std::vector<Packet> in;
    std::vector<Bytes> views;
    while (at + 2 <= size) {
      const std::size_t n = std::min<std::size_t>(std::size_t{data[at]} << 8 | data[at + 1], size - at - 2);
      at += 2;
      if (n == 0) break;  // a zero length ends the batch
      const Bytes packet(data + at, n);
      at += n;
      if (!gro.add(packet)) continue;
      in.emplace_back(packet.begin(), packet.end());
      views.push_back(packet);
    }
    const std::span<const GroItem> items = gro.finish();
    std::vector<Packet> out;
    std::size_t total_segments = 0;
    for (const GroItem& item : items) {
      FUZZ_CHECK(item.iov_count >= 2 && item.iov_count <= 1024);
      FUZZ_CHECK(item.segments >= 1);
      std::size_t bytes = 0;
      Packet flat;
      for (std::uint32_t i = 0; i < item.iov_count; ++i) {
        const auto* b = static_cast<const std::uint8_t*>(item.iov[i].iov_base);
        bytes += item.iov[i].iov_len;
        flat.insert(flat.end(), b, b + item.iov[i].iov_len);
        if (i > 0) FUZZ_CHECK(b >= data && b + item.iov[i].iov_len <= data + size);  // into the input
      }
      FUZZ_CHECK(bytes == item.bytes);
      total_segments += item.segments;
      if (item.segments == 1) {
        FUZZ_CHECK(std::all_of(flat.begin(), flat.begin() + kVirtioNetHdrSize, [](std::uint8_t b) { return b == 0; }));
        out.emplace_back(flat.begin() + kVirtioNetHdrSize, flat.end());
        continue;
      }
      const VirtioNetHdr h = decode(flat.data());
      FUZZ_CHECK(h.flags == kVirtioNetHdrFNeedsCsum);
      FUZZ_CHECK(h.gso_type == kVirtioNetHdrGsoTcpv4 || h.gso_type == kVirtioNetHdrGsoTcpv6 ||
                 (h.gso_type == kVirtioNetHdrGsoUdpL4 && limits.udp));
      FUZZ_CHECK(flat.size() - kVirtioNetHdrSize <= 65535 + (h.gso_type == kVirtioNetHdrGsoTcpv6 ? 40u : 0u));
      GsoSegmenter gso;
      FUZZ_CHECK(gso.start(flat) == GsoError::None);
      FUZZ_CHECK(gso.segments() == item.segments);
      FUZZ_CHECK(h.csum_start + std::size_t{h.csum_offset} + 2 <= flat.size() - kVirtioNetHdrSize);
      while (!gso.done()) {
        Packet s(gso.next_length());
        gso.write_next(s);
        L4Packet l4;
        FUZZ_CHECK(parse_l4(s, l4) == L4Parse::Ok);
        FUZZ_CHECK(ip_checksum_ok(l4) && l4_checksum_ok(l4));
        out.push_back(std::move(s));
      }
    }
    FUZZ_CHECK(total_segments == in.size());
    // Every input that went into a super-packet verified: an input whose checksum fails must
    // come out plain, i.e. byte for byte in `out` as it went in (not merely normalized).
    std::vector<Packet> out_exact = out;
    std::sort(out_exact.begin(), out_exact.end());
    for (const Packet& p : in) {
      L4Packet l4;
      if (parse_l4(p, l4) == L4Parse::Ok && !(ip_checksum_ok(l4) && l4_checksum_ok(l4)))
        FUZZ_CHECK(std::binary_search(out_exact.begin(), out_exact.end(), p));
    }
    std::vector<Packet> a, b;
    for (const Packet& p : in) a.push_back(normalized(p));
    for (const Packet& p : out) b.push_back(normalized(p));
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    FUZZ_CHECK(a == b);
    if (at + 2 > size) break;
  }
  return 0;
}
