// The TUN device wwan-dp moves packets through, and (through the headers included at the end)
// its rtnetlink configuration and the resolv.conf file: the whole device-side API of tun/.
//
// What each failure looks like and how it is detected, and what is removed on exit:
// docs/tun.md. The packet I/O on the descriptor is tun/uring_io (not this file).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace wwan::tun {

struct TunOptions {
  bool vnet_hdr = false;     // IFF_VNET_HDR: every packet carries a struct virtio_net_hdr first
  bool nonblocking = false;  // O_NONBLOCK on the descriptor
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

 private:
  TunDevice(int fd, std::string name, unsigned ifindex, bool created, bool vnet_hdr)
      : fd_(fd), name_(std::move(name)), ifindex_(ifindex), created_(created), vnet_hdr_(vnet_hdr) {}
  int fd_;
  std::string name_;
  unsigned ifindex_;
  bool created_;
  bool vnet_hdr_;
};

// Pure: why `name` cannot name a network interface ("" if it can). The kernel's rules
// (net/core/dev.c dev_valid_name, __dev_alloc_name): 1..15 bytes, not "." or "..", no '/', ':' or
// whitespace, and '%' only as one "%d" template.
std::string check_interface_name(std::string_view name);

}  // namespace wwan::tun

#include "tun/link_configurator.hpp"  // IWYU pragma: export
#include "tun/resolv_conf.hpp"        // IWYU pragma: export
