// struct virtio_net_hdr: the 10-byte header that prefixes every packet read from or written to
// a TUN opened with IFF_VNET_HDR (Virtio 1.2 §5.1.6 "Device Operation", the legacy layout
// without num_buffers; Linux include/uapi/linux/virtio_net.h). It tells the kernel, or us, that
// a packet is a GSO super-packet (gso_type, gso_size, hdr_len) and/or that its L4 checksum is
// still to be completed (NEEDS_CSUM: the checksum field holds the pseudo-header sum, and the
// one's complement sum from csum_start to the end goes at csum_start + csum_offset).
//
// Byte order: "legacy" virtio, i.e. the host's own, unless TUNSETVNETLE/BE says otherwise
// (drivers/net/tun.c tun_is_little_endian); wwan-dp never sets those, so encode/decode use the
// host order. Defined here rather than taken from <linux/virtio_net.h> so that datapath/ stays
// free of kernel headers; tun/tun_offload.cpp checks every value against the kernel's header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace wwan::offload {

inline constexpr std::size_t kVirtioNetHdrSize = 10;

// flags
inline constexpr std::uint8_t kVirtioNetHdrFNeedsCsum = 1;   // VIRTIO_NET_HDR_F_NEEDS_CSUM
inline constexpr std::uint8_t kVirtioNetHdrFDataValid = 2;   // VIRTIO_NET_HDR_F_DATA_VALID
// gso_type
inline constexpr std::uint8_t kVirtioNetHdrGsoNone = 0;      // VIRTIO_NET_HDR_GSO_NONE
inline constexpr std::uint8_t kVirtioNetHdrGsoTcpv4 = 1;     // VIRTIO_NET_HDR_GSO_TCPV4
inline constexpr std::uint8_t kVirtioNetHdrGsoUdp = 3;       // VIRTIO_NET_HDR_GSO_UDP (UFO, obsolete)
inline constexpr std::uint8_t kVirtioNetHdrGsoTcpv6 = 4;     // VIRTIO_NET_HDR_GSO_TCPV6
// VIRTIO_NET_HDR_GSO_UDP_L4 (UDP segmentation, Linux 4.18 for virtio; TUN_F_USO4/6, Linux 6.2):
// absent from the kernel headers of Debian 12 and older router SDKs.
inline constexpr std::uint8_t kVirtioNetHdrGsoUdpL4 = 5;
inline constexpr std::uint8_t kVirtioNetHdrGsoEcn = 0x80;    // VIRTIO_NET_HDR_GSO_ECN (TCP: CWR/ECE in use)

// Where the checksum field sits from the start of the L4 header (csum_offset).
inline constexpr std::uint16_t kTcpChecksumOffset = 16;
inline constexpr std::uint16_t kUdpChecksumOffset = 6;

struct VirtioNetHdr {
  std::uint8_t flags = 0;
  std::uint8_t gso_type = kVirtioNetHdrGsoNone;
  std::uint16_t hdr_len = 0;      // bytes of IP + L4 headers (a hint: not trusted on read)
  std::uint16_t gso_size = 0;     // L4 payload bytes per segment
  std::uint16_t csum_start = 0;   // from the start of the IP packet
  std::uint16_t csum_offset = 0;  // from csum_start
};

inline void encode(const VirtioNetHdr& h, std::uint8_t* out) {
  out[0] = h.flags;
  out[1] = h.gso_type;
  std::memcpy(out + 2, &h.hdr_len, 2);
  std::memcpy(out + 4, &h.gso_size, 2);
  std::memcpy(out + 6, &h.csum_start, 2);
  std::memcpy(out + 8, &h.csum_offset, 2);
}

// `in` holds at least kVirtioNetHdrSize bytes.
inline VirtioNetHdr decode(const std::uint8_t* in) {
  VirtioNetHdr h;
  h.flags = in[0];
  h.gso_type = in[1];
  std::memcpy(&h.hdr_len, in + 2, 2);
  std::memcpy(&h.gso_size, in + 4, 2);
  std::memcpy(&h.csum_start, in + 6, 2);
  std::memcpy(&h.csum_offset, in + 8, 2);
  return h;
}

// The header of a packet that needs nothing: every plain packet written to a vnet-hdr TUN.
inline constexpr std::uint8_t kVirtioNetHdrNone[kVirtioNetHdrSize] = {};

}  // namespace wwan::offload
