// libFuzzer target: the TX segmenter (datapath/offload/gso.hpp) on arbitrary TUN reads (a
// virtio_net_hdr and a packet: what a kernel, or anything that can write to the TUN's queue,
// hands the daemon). Checked, besides what ASan/UBSan see:
//   - start() either refuses by name or promises segments() pieces, each of next_length() bytes
//     no longer than the packet, written into exactly that much space (ASan: not one byte more);
//   - a GSO read's segments are valid packets: parse_l4 takes each, the IPv4 header and the
//     TCP/UDP checksums verify, and their payloads joined are the super-packet's payload;
//   - a read without GSO comes out as one packet of the read's length, the same bytes but for
//     the completed checksum field.
#include <cstdint>
#include <cstring>
#include <vector>

#include "tests/fuzz/fuzz_check.hpp"

#include "datapath/offload/gso.hpp"

using namespace wwan::offload;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Bytes read(data, size);
  GsoSegmenter gso;
  const GsoError e = gso.start(read);
  FUZZ_CHECK(static_cast<std::size_t>(e) < kGsoErrorCount);
  if (e != GsoError::None) {
    FUZZ_CHECK(gso.done());
    return 0;
  }
  const Bytes packet = read.subspan(kVirtioNetHdrSize);
  const VirtioNetHdr h = decode(data);
  const bool segmenting = (h.gso_type & ~kVirtioNetHdrGsoEcn) != kVirtioNetHdrGsoNone;
  FUZZ_CHECK(gso.segments() >= 1 && gso.segments() <= packet.size());
  std::vector<std::uint8_t> payload;
  std::size_t written = 0;
  while (!gso.done()) {
    const std::size_t n = gso.next_length();
    FUZZ_CHECK(n >= 1 && n <= packet.size());
    std::vector<std::uint8_t> s(n);  // exactly: ASan sees a write past it
    gso.write_next(s);
    FUZZ_CHECK(gso.last_length() == n);
    ++written;
    if (!segmenting) {
      FUZZ_CHECK(n == packet.size());
      // The bytes as read, but for the checksum field a NEEDS_CSUM read has completed.
      const bool partial = (h.flags & kVirtioNetHdrFNeedsCsum) != 0;
      const std::size_t field = std::size_t{h.csum_start} + h.csum_offset;
      for (std::size_t i = 0; i < n; ++i)
        if (!partial || i < field || i >= field + 2) FUZZ_CHECK(s[i] == packet[i]);
      continue;
    }
    L4Packet l4;
    FUZZ_CHECK(parse_l4(s, l4) == L4Parse::Ok);
    FUZZ_CHECK(ip_checksum_ok(l4) && l4_checksum_ok(l4));
    payload.insert(payload.end(), l4.payload().begin(), l4.payload().end());
  }
  FUZZ_CHECK(written == gso.segments());
  if (segmenting) {
    L4Packet super;
    FUZZ_CHECK(parse_l4(packet, super) == L4Parse::Ok);
    FUZZ_CHECK(payload.size() == super.payload_length);
    FUZZ_CHECK(std::memcmp(payload.data(), super.payload().data(), payload.size()) == 0);
  }
  return 0;
}
