// TUN offload setup: the virtio_net_hdr size and TUNSETOFFLOAD, probed with fallback (docs/
// offload.md). The TUN must have been opened with IFF_VNET_HDR (TunOptions::vnet_hdr).
//
// What TUNSETOFFLOAD means: which kinds of packet the kernel may hand *us* on read() — with
// TUN_F_CSUM packets may arrive with their L4 checksum still to be completed (NEEDS_CSUM), with
// TSO4/TSO6 as 64 KiB TCP super-packets, with USO4/USO6 as UDP super-packets. Writes into the
// TUN need no grant: the kernel takes a virtio_net_hdr with GSO from us whatever was granted
// (UDP_L4 since Linux 6.2). The kernel refuses flags it does not know with EINVAL, so the probe
// asks for everything, then without USO (Linux < 6.2), then checksum only, then nothing.
#pragma once

#include <string>

namespace wwan::tun {

// TUN_F_* values (include/uapi/linux/if_tun.h); USO4/USO6 date from Linux 6.2 and are missing
// from older headers (Debian 12's among them), so they are spelled out here.
inline constexpr unsigned kTunFCsum = 0x01;
inline constexpr unsigned kTunFTso4 = 0x02;
inline constexpr unsigned kTunFTso6 = 0x04;
inline constexpr unsigned kTunFUso4 = 0x20;
inline constexpr unsigned kTunFUso6 = 0x40;
// Both USO flags are needed: the kernel refuses one without the other (EINVAL).
inline constexpr unsigned kTunOffloadAll = kTunFCsum | kTunFTso4 | kTunFTso6 | kTunFUso4 | kTunFUso6;

struct OffloadGrant {
  unsigned flags = 0;  // the TUN_F_* the kernel accepted (0: none, plain packets only)
  std::string note;    // "" if everything asked for was granted; else one line to log once

  bool csum() const { return (flags & kTunFCsum) != 0; }
  bool tso() const { return (flags & (kTunFTso4 | kTunFTso6)) == (kTunFTso4 | kTunFTso6); }
  bool uso() const { return (flags & (kTunFUso4 | kTunFUso6)) == (kTunFUso4 | kTunFUso6); }
};

// The two ioctls behind a seam, so that the fallback is tested without a kernel. Each returns
// 0 or the errno.
class OffloadIoctls {
 public:
  virtual ~OffloadIoctls() = default;
  virtual int set_vnet_hdr_size(int bytes) = 0;  // TUNSETVNETHDRSZ
  virtual int set_offload(unsigned flags) = 0;   // TUNSETOFFLOAD
};

// The real ones, on a TUN descriptor.
class TunFdIoctls final : public OffloadIoctls {
 public:
  explicit TunFdIoctls(int fd) : fd_(fd) {}
  int set_vnet_hdr_size(int bytes) override;
  int set_offload(unsigned flags) override;

 private:
  int fd_;
};

// Sets the 10-byte virtio_net_hdr (a persistent TUN may carry another size from its last user)
// and the richest offload set the kernel accepts out of `wanted`. On a failure of
// TUNSETVNETHDRSZ: false and one line in `error` (the descriptor cannot be used with offload).
bool negotiate_offload(OffloadIoctls& io, unsigned wanted, OffloadGrant& grant, std::string& error);

// negotiate_offload on `fd` with everything (kTunOffloadAll).
bool enable_offload(int fd, OffloadGrant& grant, std::string& error);

// "csum tso4 tso6 uso4 uso6" (the granted names, space-separated; "none").
std::string describe_offload(unsigned flags);

}  // namespace wwan::tun
