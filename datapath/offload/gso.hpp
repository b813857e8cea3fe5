// TX segmentation (userspace GSO) for a TUN opened with IFF_VNET_HDR and TUNSETOFFLOAD: one read
// from the TUN (struct virtio_net_hdr + an IP packet, possibly a 64 KiB TSO/USO super-packet)
// in, ordinary IP packets out, each written straight into space the caller provides (an NTB
// datagram reserved with NtbBuilder::reserve). NCM has no checksum offload, so every segment
// leaves with complete IPv4 header and TCP/UDP checksums (docs/offload.md).
//
// What each segment gets (Linux net/ipv4/tcp_offload.c tcp_gso_segment, net/ipv4/af_inet.c
// inet_gso_segment, net/ipv4/udp_offload.c __udp_gso_segment do the same):
//   IPv4: Total Length of the segment, Identification + i, header checksum;
//   IPv6: Payload Length;
//   TCP: Sequence Number + i * gso_size; FIN and PSH only on the last segment, CWR only on the
//        first; the checksum;
//   UDP: Length; the checksum (0 is sent as 0xFFFF, RFC 768).
// A packet without GSO but with NEEDS_CSUM has its checksum completed at csum_start +
// csum_offset; one with neither is copied as it is.
//
// Resumable, so that a super-packet can straddle two NTBs:
//   GsoSegmenter gso;
//   if (GsoError e = gso.start(read); e != GsoError::None) count(e);
//   while (!gso.done()) {
//     auto out = builder.reserve(gso.next_length());   // full: finish + submit this NTB, reset
//     gso.write_next(*out); builder.commit(gso.last_length());
//   }
// The bytes given to start() must stay valid until done().
#pragma once

#include <cstddef>
#include <cstdint>

#include "datapath/offload/ip_packet.hpp"
#include "datapath/offload/virtio_net_hdr.hpp"

namespace wwan::offload {

// Why a read from the TUN cannot be segmented (counted per reason; the packet is dropped).
enum class GsoError : std::uint8_t {
  None,
  NoVirtioNetHdr,      // shorter than the 10-byte virtio_net_hdr
  EmptyPacket,         // a virtio_net_hdr and nothing behind it
  UnsupportedGsoType,  // UFO (GSO_UDP) or a value the virtio spec does not define
  GsoSizeZero,         // GSO requested with gso_size 0
  NotL4,               // GSO on something parse_l4 does not take (see l4 reason)
  GsoTypeMismatch,     // TCPV4 on IPv6, TCP GSO on UDP, UDP_L4 on TCP, ...
  NoPayload,           // GSO on a packet without L4 payload
  CsumOutOfPacket,     // NEEDS_CSUM with csum_start + csum_offset + 2 past the packet
};
inline constexpr std::size_t kGsoErrorCount = static_cast<std::size_t>(GsoError::CsumOutOfPacket) + 1;
const char* to_string(GsoError e);

class GsoSegmenter {
 public:
  // `read`: the virtio_net_hdr followed by the packet. On an error nothing is to be written
  // (done() is true); l4_reason() says more for NotL4.
  GsoError start(Bytes read);

  bool done() const { return next_ >= count_; }
  std::size_t segments() const { return count_; }
  // IP bytes of the next segment (the span write_next needs).
  std::size_t next_length() const;
  // Writes the next segment into out[0, next_length()) and moves on. out.size() >= next_length().
  void write_next(MutableBytes out);
  std::size_t last_length() const { return last_length_; }
  L4Parse l4_reason() const { return l4_reason_; }

 private:
  enum class Mode : std::uint8_t { Copy, CompleteChecksum, Segment };
  void write_segment(MutableBytes out, std::size_t index);

  Bytes packet_;
  Mode mode_ = Mode::Copy;
  L4Packet l4_;
  VirtioNetHdr hdr_;
  std::uint32_t gso_size_ = 0;
  std::size_t count_ = 0, next_ = 0, last_length_ = 0;
  L4Parse l4_reason_ = L4Parse::Ok;
};

// Segments all of `read` into `sink`, a callable MutableBytes(std::size_t ip_length) that
// returns where to put a segment (an empty span: no room, stop). Returns the error, if any;
// `written` gets the number of segments written.
template <class Sink>
GsoError segment_all(Bytes read, Sink&& sink, std::size_t& written) {
  written = 0;
  GsoSegmenter g;
  if (const GsoError e = g.start(read); e != GsoError::None) return e;
  while (!g.done()) {
    const MutableBytes out = sink(g.next_length());
    if (out.size() < g.next_length()) break;
    g.write_next(out);
    ++written;
  }
  return GsoError::None;
}

}  // namespace wwan::offload
