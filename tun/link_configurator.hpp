// The IP configuration of the TUN over rtnetlink: MTU, link up/down, addresses, default routes.
//
// The configurator remembers exactly what it added and removes exactly that: it never flushes an
// interface and never touches what it did not add (the kernel's link-local IPv6 address, the
// prefix routes the kernel derives from each address, another program's routes). docs/tun.md
// says why each choice below was made.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "datapath/ethernet.hpp"
#include "tun/netlink.hpp"

namespace wwan::tun {

namespace rtnl {
class Socket;
}

struct Ipv4Settings {
  eth::Ipv4Address address;
  std::uint8_t prefix_length = 32;             // 1..32
  std::optional<eth::Ipv4Address> gateway;     // informational: routes go via the device
};
struct Ipv6Settings {
  eth::Ipv6Address address;
  std::uint8_t prefix_length = 64;             // 1..128
  std::optional<eth::Ipv6Address> gateway;     // informational: routes go via the device
};
struct LinkSettings {
  std::optional<Ipv4Settings> ipv4;
  std::optional<Ipv6Settings> ipv6;
  std::uint32_t mtu = 0;                              // 0 = leave as is
  // Set: a default route per family present, through the device without a gateway (a TUN has
  // no link layer: whatever the next hop, the packet goes to the modem), with this RTA_PRIORITY.
  std::optional<std::uint32_t> default_route_metric;
  // Per family: false = no IPv6 default route even with default_route_metric, because the link
  // has no IPv6 default router (no RA with a non-zero router lifetime, no gateway from the
  // session). A later apply() with it true adds the route; with it false again removes it.
  bool ipv6_default_route = true;
};

class LinkConfigurator {  // one NETLINK_ROUTE socket (libmnl), one interface
 public:
  // nullptr + one line in `error` if the socket cannot be opened or there is no such interface.
  static std::unique_ptr<LinkConfigurator> open(unsigned ifindex, std::string& error);

  // MTU (when non-zero) and link up, then what the previous apply added and `settings` no longer
  // want is removed (routes first), then the addresses and default routes are added. Idempotent:
  // everything wanted is sent again each time (so what the kernel dropped meanwhile, e.g. the
  // routes of a link that went down, comes back) and EEXIST counts as done. On failure: false,
  // one line in `error` ("adding 10.64.64.2/30 to wwan0: File exists"), and what was added so far
  // stays remembered for clear().
  bool apply(const LinkSettings& settings, std::string& error);

  // Removes every route and address it added (routes first), then sets the link down if asked.
  // What is already gone (ESRCH, EADDRNOTAVAIL, or ENODEV: the interface itself is gone) counts
  // as removed. Tries everything; false + the first failure in `error` if anything stayed.
  // Called on a session drop (link_down = true) and on exit.
  bool clear(bool link_down, std::string& error);

  // clear(true) best effort; never throws.
  ~LinkConfigurator();
  LinkConfigurator(const LinkConfigurator&) = delete;
  LinkConfigurator& operator=(const LinkConfigurator&) = delete;

  unsigned ifindex() const { return ifindex_; }
  const std::string& ifname() const { return ifname_; }  // the name at open(), for messages
  // What is currently remembered as added (for status output and tests).
  const std::vector<rtnl::InterfaceAddress>& addresses() const { return addresses_; }
  const std::vector<rtnl::DefaultRoute>& routes() const { return routes_; }

 private:
  LinkConfigurator(std::unique_ptr<rtnl::Socket> socket, unsigned ifindex, std::string ifname);
  // One request and its answer: 0 or the errno, so callers can accept EEXIST / ESRCH and say
  // what they were doing ("adding 10.64.64.2/30 to wwan0: ...").
  int send(rtnl::RequestBuffer& buf, std::size_t length, std::string& kernel_message);

  std::unique_ptr<rtnl::Socket> socket_;
  unsigned ifindex_;
  std::string ifname_;
  std::vector<rtnl::InterfaceAddress> addresses_;  // in the order they were added
  std::vector<rtnl::DefaultRoute> routes_;
};

// The IFA_F_* flags an IPv6 address is added with: IFA_F_NODAD (there is no other node on a
// point-to-point tunnel to collide with, and DAD would keep the address tentative, unusable as
// a source, for about a second after every connect). The kernel's prefix route is kept (no
// IFA_F_NOPREFIXROUTE): docs/tun.md.
inline constexpr std::uint32_t kIpv6AddressFlags = IFA_F_NODAD;

}  // namespace wwan::tun
