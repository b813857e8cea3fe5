// TUNSETVNETHDRSZ / TUNSETOFFLOAD with fallback (see tun_offload.hpp).
//
// <linux/virtio_net.h> cannot be included from C++ (struct virtio_net_ctrl_hdr has a field
// named `class`), so the virtio_net_hdr values of datapath/offload/virtio_net_hdr.hpp are
// checked against the kernel by tests/tun/tun_offload_test.cpp, which has the kernel take and
// produce them; here only the TUN_F_* values are checked against <linux/if_tun.h>.
#include "tun/tun_offload.hpp"

#include <linux/if_tun.h>
#include <sys/ioctl.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "datapath/offload/virtio_net_hdr.hpp"  // kVirtioNetHdrSize

// Older kernel headers lack these (Linux 6.2 added them): the values are ABI.
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#endif
#ifndef TUN_F_USO6
#define TUN_F_USO6 0x40
#endif

namespace wwan::tun {

static_assert(kTunFCsum == TUN_F_CSUM && kTunFTso4 == TUN_F_TSO4 && kTunFTso6 == TUN_F_TSO6);
static_assert(kTunFUso4 == TUN_F_USO4 && kTunFUso6 == TUN_F_USO6);

int TunFdIoctls::set_vnet_hdr_size(int bytes) {
  return ::ioctl(fd_, TUNSETVNETHDRSZ, &bytes) == 0 ? 0 : errno;
}

int TunFdIoctls::set_offload(unsigned flags) {
  return ::ioctl(fd_, TUNSETOFFLOAD, static_cast<unsigned long>(flags)) == 0 ? 0 : errno;
}

std::string describe_offload(unsigned flags) {
  static constexpr std::array<std::pair<unsigned, const char*>, 5> kNames = {{
      {kTunFCsum, "csum"}, {kTunFTso4, "tso4"}, {kTunFTso6, "tso6"}, {kTunFUso4, "uso4"}, {kTunFUso6, "uso6"}}};
  std::string out;
  for (const auto& [bit, name] : kNames)
    if ((flags & bit) != 0) out += (out.empty() ? "" : " ") + std::string(name);
  return out.empty() ? "none" : out;
}

bool negotiate_offload(OffloadIoctls& io, unsigned wanted, OffloadGrant& grant, std::string& error) {
  grant = OffloadGrant{};
  if (const int e = io.set_vnet_hdr_size(static_cast<int>(offload::kVirtioNetHdrSize)); e != 0) {
    error = std::string("setting the TUN's virtio_net_hdr size (TUNSETVNETHDRSZ 10): ") + std::strerror(e) +
            ": run without TUN offload";
    return false;
  }
  // Richest first. drivers/net/tun.c set_offload() takes TSO only with CSUM, USO4 only with
  // USO6, and refuses any bit it does not know with EINVAL: "a way to test for new features".
  const unsigned steps[] = {wanted, wanted & ~(kTunFUso4 | kTunFUso6), wanted & kTunFCsum, 0u};
  int last_error = 0;
  unsigned previous = ~0u;
  for (const unsigned flags : steps) {
    if (flags == previous) continue;  // `wanted` without USO may be `wanted` itself
    previous = flags;
    const int e = io.set_offload(flags);
    if (e == 0) {
      grant.flags = flags;
      break;
    }
    last_error = e;
  }
  if (grant.flags == wanted) return true;
  const unsigned missing = wanted & ~grant.flags;
  if (grant.flags == 0)
    grant.note = "TUN offload: the kernel refused every offload (" + std::string(std::strerror(last_error)) +
                 "): running without it, one packet per TUN read and write";
  else if ((missing & (kTunFUso4 | kTunFUso6)) == missing)
    grant.note = "TUN offload: the kernel refused UDP segmentation (TUN_F_USO4/USO6 need Linux 6.2): running with " +
                 describe_offload(grant.flags) + ", UDP one datagram at a time";
  else
    grant.note = "TUN offload: the kernel granted only " + describe_offload(grant.flags) + " of " +
                 describe_offload(wanted) + ": running with what was granted";
  return true;
}

bool enable_offload(int fd, OffloadGrant& grant, std::string& error) {
  TunFdIoctls io(fd);
  return negotiate_offload(io, kTunOffloadAll, grant, error);
}

}  // namespace wwan::tun
