// The TUN device wwan-dp moves packets through, and (through the headers included at the end)
// its rtnetlink configuration and the resolv.conf file: the whole device-side API of tun/.
//
// What each failure looks like and how it is detected, and what is removed on exit:
// docs/tun.md. The packet I/O on the descriptor is tun/uring_io (not this file).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace wwan::tun {

// IFF_TUN: IP packets (the default); IFF_TAP: Ethernet frames (wwan-dp --tap, docs/tun.md "TAP
// mode"), for a system that runs its own DHCP client, bridges or VLANs on the modem's link.
enum class DeviceMode : std::uint8_t { tun, tap };

struct TunOptions {
  bool vnet_hdr = false;     // IFF_VNET_HDR: every packet carries a struct virtio_net_hdr first
  bool nonblocking = false;  // O_NONBLOCK on the descriptor
  DeviceMode mode = DeviceMode::tun;
  // TAP: the device's MAC address (SIOCSIFHWADDR on the descriptor), set on a TAP created and on
  // one attached to alike. wwan-dp gives it the host MAC the modem expects (the function's
  // iMACAddress), so the frames the kernel sends carry the source the modem forwards back to.
  // Not set: the kernel's random one. Ignored for a TUN (no link layer).
  std::optional<std::array<std::uint8_t, 6>> mac = std::nullopt;
};

class TunDevice {
 public:
  // Creates TUN `name` (IFF_TUN | IFF_NO_PI, plus IFF_VNET_HDR if asked; a name with "%d", e.g.
  // "wwan%d", lets the kernel pick the number), or attaches to an existing *persistent* TUN of
  // that name that this user may use. On failure: nullptr and one line in `error` saying what is
  // wrong and what to do. Refused: an empty, too long (IFNAMSIZ) or invalid name; no
  // /dev/net/tun; no permission; an interface of that name that is not a TUN (a TAP, a veth, a
  // NIC...); a multi-queue TUN; a TUN owned by another uid or group (checked here over
  // RTM_GETLINK, because the kernel lets root through); a TUN another process has open (EBUSY).
  // With options.mode tap the same for a TAP (IFF_TAP | IFF_NO_PI), the refusals mirrored (a TUN
  // of that name is refused), and the MAC set when options.mac is given.
  static std::unique_ptr<TunDevice> open(std::string_view name, const TunOptions& options, std::string& error);

  // Closes the descriptor: a TUN this object created (not persistent) disappears with it, and
  // the kernel removes every address and route on it; an attached persistent TUN stays.
  ~TunDevice();
  TunDevice(const TunDevice&) = delete;
  TunDevice& operator=(const TunDevice&) = delete;

  int fd() const { return fd_; }
  const std::string& name() const { return name_; }  // the kernel's name ("wwan%d" resolved)
  unsigned ifindex() const { return ifindex_; }
  bool created() const { return created_; }          // false: attached to a persistent TUN
  bool vnet_hdr() const { return vnet_hdr_; }        // IFF_VNET_HDR was asked for and granted
  DeviceMode mode() const { return mode_; }

 private:
  TunDevice(int fd, std::string name, unsigned ifindex, bool created, bool vnet_hdr, DeviceMode mode)
      : fd_(fd), name_(std::move(name)), ifindex_(ifindex), created_(created), vnet_hdr_(vnet_hdr), mode_(mode) {}
  int fd_;
  std::string name_;
  unsigned ifindex_;
  bool created_;
  bool vnet_hdr_;
  DeviceMode mode_;
};

// Pure: why `name` cannot name a network interface ("" if it can). The kernel's rules
// (net/core/dev.c dev_valid_name, __dev_alloc_name): 1..15 bytes, not "." or "..", no '/', ':' or
// whitespace, and '%' only as one "%d" template. The message calls it "the TUN name" ("the TAP
// name" for DeviceMode::tap).
std::string check_interface_name(std::string_view name, DeviceMode mode = DeviceMode::tun);

}  // namespace wwan::tun

#include "tun/link_configurator.hpp"  // IWYU pragma: export
#include "tun/resolv_conf.hpp"        // IWYU pragma: export
