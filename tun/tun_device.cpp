// The TUN device (see tun_device.hpp; every refusal and how it is detected: docs/tun.md).
//
// Order of work in open(): check the name (pure); open /dev/net/tun; if an interface of that name
// exists, ask the kernel what it is over RTM_GETLINK (IFLA_LINKINFO -> "tun" -> IFLA_INFO_DATA)
// and refuse what we must not attach to *before* TUNSETIFF, because attaching changes the
// device (TUNSETIFF rewrites its IFF_NO_PI / IFF_VNET_HDR flags); then TUNSETIFF; then read the
// link again for its index and to learn whether we created it or attached to a persistent one.
//
// The netns: the TUN is created in the network namespace of the process at the time
// /dev/net/tun is opened, and the rtnetlink socket is opened by the same thread right after, so
// both see the same namespace. /sys/class/net is deliberately not used: it shows the namespace
// sysfs was mounted in, which is not necessarily ours.
#include "tun/tun_device.hpp"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_arp.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <vector>

#include "tun/rtnl_socket.hpp"

namespace wwan::tun {
namespace {

constexpr const char* kCloneDevice = "/dev/net/tun";

std::string quoted(std::string_view name) { return "\"" + std::string(name) + "\""; }

// What a non-TUN interface is, for the message: its link kind, else its hardware type.
std::string what_it_is(const rtnl::LinkInfo& link) {
  if (link.kind == "tun" && link.tun && link.tun->type == IFF_TAP) return "a TAP device";
  if (!link.kind.empty()) return "a " + link.kind + " device";
  switch (link.arp_type) {
    case ARPHRD_ETHER: return "an Ethernet device";
    case ARPHRD_LOOPBACK: return "the loopback device";
    case ARPHRD_NONE: return "a device without a link layer";
    default: return "a device of hardware type " + std::to_string(link.arp_type);
  }
}

bool in_our_groups(std::uint32_t gid) {
  if (getegid() == gid) return true;
  const int n = getgroups(0, nullptr);
  if (n <= 0) return false;
  std::vector<gid_t> groups(static_cast<std::size_t>(n));
  const int got = getgroups(n, groups.data());
  if (got < 0) return false;
  groups.resize(static_cast<std::size_t>(got));
  return std::find(groups.begin(), groups.end(), gid) != groups.end();
}

// "TUN" / "TAP", and what `ip tuntap ... mode` calls it.
const char* word(DeviceMode mode) { return mode == DeviceMode::tap ? "TAP" : "TUN"; }
const char* ip_mode(DeviceMode mode) { return mode == DeviceMode::tap ? "tap" : "tun"; }

// Why wwan-dp must not attach to the existing interface `link` as a device of `mode` ("" = it
// may). The same rules for both: a TAP is refused where a TUN was asked for and the reverse.
std::string refuse_existing(const rtnl::LinkInfo& link, DeviceMode mode) {
  const std::string& name = link.name;
  const std::string what = word(mode);
  const std::string del = " (ip tuntap del dev " + name + " mode " + ip_mode(mode);
  const unsigned wanted = mode == DeviceMode::tap ? IFF_TAP : IFF_TUN;
  const bool is_tun_driver = link.kind == "tun" && link.tun;
  if (!is_tun_driver || link.tun->type != wanted) {
    if (is_tun_driver && link.tun->type == IFF_TAP)
      return name + " is a TAP device, not a TUN: delete it (ip tuntap del dev " + name +
             " mode tap) or choose another name";
    if (is_tun_driver && link.tun->type == IFF_TUN)
      return name + " is a TUN device, not a TAP: delete it (ip tuntap del dev " + name +
             " mode tun) or choose another name";
    return "an interface named " + name + " already exists and is not a " + what + " (it is " + what_it_is(link) +
           "): choose another name, or delete it if it is not needed";
  }
  const rtnl::TunLinkInfo& tun = *link.tun;
  // A non-persistent TUN lives only as long as the descriptor that created it: it is open.
  if (!tun.persist)
    return what + " " + name + " is busy: another process has it open (it is not persistent, so it exists only while "
           "that process holds it): stop that process or choose another name";
  if (tun.multi_queue)
    return what + " " + name + " is a multi-queue " + what + " and wwan-dp uses single-queue " + what +
           "s: delete it" + del + " multi_queue) or choose another name";
  // The kernel's tun_not_capable() lets CAP_NET_ADMIN through whatever the owner; as wwan-dp
  // runs as root that would mean taking over another user's tunnel, so the check is made here.
  const std::uint32_t euid = static_cast<std::uint32_t>(geteuid());
  if (tun.owner && *tun.owner != euid)
    return what + " " + name + " belongs to uid " + std::to_string(*tun.owner) + " and wwan-dp runs as uid " +
           std::to_string(euid) + ": run wwan-dp as that user, choose another name, or delete it" + del + ")";
  if (tun.group && !in_our_groups(*tun.group))
    return what + " " + name + " belongs to group " + std::to_string(*tun.group) +
           " and wwan-dp is not in that group: run wwan-dp in that group, choose another name, or delete it" + del +
           ")";
  return "";
}

std::string permission_message(const std::string& doing, int error) {
  return "no permission to " + doing + " (" + std::strerror(error) + "): run as root or give CAP_NET_ADMIN";
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

}  // namespace

std::string check_interface_name(std::string_view name, DeviceMode mode) {
  const std::string what = std::string("the ") + word(mode) + " name";
  if (name.empty()) return what + " is empty: give a name such as wwan0";
  if (name.size() >= IFNAMSIZ)
    return what + " " + quoted(name) + " is " + std::to_string(name.size()) +
           " bytes long and the kernel's limit is " + std::to_string(IFNAMSIZ - 1) +
           " (IFNAMSIZ): choose a shorter name";
  const std::string invalid = what + " " + quoted(name) + " is not a valid interface name";
  if (name == "." || name == "..") return invalid + " (\".\" and \"..\" are reserved): choose another name";
  for (char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '/' || c == ':' || std::isspace(u) != 0 || u < 0x20 || u == 0x7F)
      return invalid + " (no '/', ':', spaces or control characters): choose another name";
  }
  // '%' is the kernel's template: exactly one "%d", which it replaces by the first free number.
  if (const auto percent = name.find('%'); percent != std::string_view::npos) {
    if (percent + 1 >= name.size() || name[percent + 1] != 'd' ||
        name.find('%', percent + 2) != std::string_view::npos)
      return invalid + " ('%' only as one \"%d\", which the kernel replaces by a number): choose another name";
  }
  return "";
}

std::unique_ptr<TunDevice> TunDevice::open(std::string_view name, const TunOptions& options, std::string& error) {
  const DeviceMode mode = options.mode;
  const std::string what = word(mode);
  if (std::string why = check_interface_name(name, mode); !why.empty()) {
    error = why;
    return nullptr;
  }
  const bool is_template = name.find('%') != std::string_view::npos;

  Fd fd(::open(kCloneDevice, O_RDWR | O_CLOEXEC | (options.nonblocking ? O_NONBLOCK : 0)));
  if (fd.get() < 0) {
    const int e = errno;
    if (e == ENOENT)
      error = std::string(kCloneDevice) + " does not exist (the tun driver is not loaded): run \"modprobe tun\" as root";
    else if (e == ENODEV || e == ENXIO)
      error = std::string(kCloneDevice) + " has no driver behind it (" + std::strerror(e) +
              "): run \"modprobe tun\" as root";
    else if (e == EACCES || e == EPERM)
      error = permission_message(std::string("open ") + kCloneDevice, e);
    else
      error = std::string("opening ") + kCloneDevice + ": " + std::strerror(e);
    return nullptr;
  }

  auto socket = rtnl::Socket::open(error);
  if (!socket) return nullptr;

  const std::string requested(name);
  if (!is_template) {
    int e = 0;
    if (auto existing = rtnl::get_link(*socket, std::string_view(requested), e)) {
      if (std::string why = refuse_existing(*existing, mode); !why.empty()) {
        error = why;
        return nullptr;
      }
    } else if (e != ENODEV) {
      error = "asking the kernel about interface " + requested + " (RTM_GETLINK): " + std::strerror(e);
      return nullptr;
    }
  }

  ifreq ifr{};
  std::memcpy(ifr.ifr_name, requested.data(), requested.size());
  ifr.ifr_flags = static_cast<short>((mode == DeviceMode::tap ? IFF_TAP : IFF_TUN) | IFF_NO_PI |
                                     (options.vnet_hdr ? IFF_VNET_HDR : 0));
  if (::ioctl(fd.get(), TUNSETIFF, &ifr) < 0) {
    const int e = errno;
    int ignored = 0;
    // Something appeared or changed since the check (or the kernel refuses for a reason the
    // check does not know): explain from the kernel's current view when it says more.
    if (!is_template && (e == EINVAL || e == EBUSY || e == EPERM)) {
      if (auto existing = rtnl::get_link(*socket, std::string_view(requested), ignored)) {
        if (std::string why = refuse_existing(*existing, mode); !why.empty()) {
          error = why;
          return nullptr;
        }
      }
    }
    if (e == EBUSY)
      error = what + " " + requested + " is busy: another process has it open (a single-queue " + what +
              " takes one descriptor): stop that process or choose another name";
    else if (e == EPERM || e == EACCES)
      error = permission_message("create " + what + " " + requested, e);
    else
      error = "creating " + what + " " + requested + " (TUNSETIFF): " + std::strerror(e);
    return nullptr;
  }

  const std::string actual(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ));
  int e = 0;
  const auto link = rtnl::get_link(*socket, std::string_view(actual), e);
  if (!link || !link->tun) {
    error = "reading back " + what + " " + actual + " (RTM_GETLINK): " + std::strerror(e != 0 ? e : EPROTO);
    return nullptr;
  }
  // We never set TUNSETPERSIST, and attaching to a non-persistent TUN fails with EBUSY (its
  // creator holds it): a persistent device is one we attached to.
  const bool created = !link->tun->persist;
  if (!created) {
    // Attached after a race with whoever created it between the check and TUNSETIFF: check again.
    if (std::string why = refuse_existing(*link, mode); !why.empty()) {
      error = why;
      return nullptr;
    }
  }
  // TUNGETIFF reports what the kernel granted (IFF_VNET_HDR needs no privilege, but say so only
  // if it is really on).
  bool vnet_hdr = options.vnet_hdr;
  ifreq granted{};
  if (::ioctl(fd.get(), TUNGETIFF, &granted) == 0) vnet_hdr = (granted.ifr_flags & IFF_VNET_HDR) != 0;
  // The TAP's MAC: the host address the modem expects (iMACAddress), so that what the kernel
  // sends and what the modem forwards back agree. On the descriptor: the tun driver handles
  // SIOCSIFHWADDR itself (drivers/net/tun.c), no socket needed. Set on an attached TAP too: its
  // owner chose wwan-dp to run the modem behind it.
  if (mode == DeviceMode::tap && options.mac) {
    ifreq hw{};
    std::memcpy(hw.ifr_name, actual.data(), actual.size());
    hw.ifr_hwaddr.sa_family = ARPHRD_ETHER;
    std::memcpy(hw.ifr_hwaddr.sa_data, options.mac->data(), options.mac->size());
    if (::ioctl(fd.get(), SIOCSIFHWADDR, &hw) < 0) {
      const int hw_error = errno;
      error = "setting the MAC address of TAP " + actual + " (SIOCSIFHWADDR): " + std::strerror(hw_error) +
              (hw_error == EADDRNOTAVAIL ? " (not a unicast address)" : "");
      return nullptr;
    }
  }
  return std::unique_ptr<TunDevice>(new TunDevice(fd.release(), actual, link->ifindex, created, vnet_hdr, mode));
}

TunDevice::~TunDevice() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace wwan::tun
