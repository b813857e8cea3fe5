// The TUN's IP configuration (see link_configurator.hpp and docs/tun.md).
#include "tun/link_configurator.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "tun/rtnl_socket.hpp"

namespace wwan::tun {
namespace {

bool contains(const auto& list, const auto& item) { return std::find(list.begin(), list.end(), item) != list.end(); }

template <typename T>
void forget(std::vector<T>& list, const T& item) {
  list.erase(std::remove(list.begin(), list.end(), item), list.end());
}

// What apply() wants on the link, from the settings.
struct Wanted {
  std::vector<rtnl::InterfaceAddress> addresses;
  std::vector<rtnl::DefaultRoute> routes;
};

std::string check_settings(const LinkSettings& s) {
  // A /0 address would make its kernel prefix route a default route nobody asked for (metric 0,
  // and not removed by clear() as a route); default routes are default_route_metric's job.
  if (s.ipv4 && (s.ipv4->prefix_length == 0 || s.ipv4->prefix_length > 32))
    return "IPv4 prefix length " + std::to_string(s.ipv4->prefix_length) + " is out of range (1-32)";
  if (s.ipv6 && (s.ipv6->prefix_length == 0 || s.ipv6->prefix_length > 128))
    return "IPv6 prefix length " + std::to_string(s.ipv6->prefix_length) + " is out of range (1-128)";
  return "";
}

Wanted wanted(const LinkSettings& s) {
  Wanted w;
  if (s.ipv4) w.addresses.push_back(rtnl::make_address(s.ipv4->address, s.ipv4->prefix_length));
  if (s.ipv6) w.addresses.push_back(rtnl::make_address(s.ipv6->address, s.ipv6->prefix_length, kIpv6AddressFlags));
  if (s.default_route_metric) {
    if (s.ipv4) w.routes.push_back({AF_INET, *s.default_route_metric});
    if (s.ipv6 && s.ipv6_default_route) w.routes.push_back({AF_INET6, *s.default_route_metric});
  }
  return w;
}

std::string failed(const std::string& doing, int error, const std::string& kernel_message) {
  return doing + ": " + rtnl::describe_error(error, kernel_message);
}

}  // namespace

LinkConfigurator::LinkConfigurator(std::unique_ptr<rtnl::Socket> socket, unsigned ifindex, std::string ifname)
    : socket_(std::move(socket)), ifindex_(ifindex), ifname_(std::move(ifname)) {}

std::unique_ptr<LinkConfigurator> LinkConfigurator::open(unsigned ifindex, std::string& error) {
  auto socket = rtnl::Socket::open(error);
  if (!socket) return nullptr;
  int e = 0;
  const auto link = rtnl::get_link(*socket, ifindex, e);
  if (!link) {
    error = e == ENODEV ? "configuring interface index " + std::to_string(ifindex) +
                              ": there is no such interface (was the TUN closed?)"
                        : "asking the kernel about interface index " + std::to_string(ifindex) +
                              " (RTM_GETLINK): " + std::strerror(e);
    return nullptr;
  }
  return std::unique_ptr<LinkConfigurator>(new LinkConfigurator(std::move(socket), ifindex, link->name));
}

int LinkConfigurator::send(rtnl::RequestBuffer& buf, std::size_t length, std::string& kernel_message) {
  if (length == 0) return EMSGSIZE;  // a builder refused: cannot happen with RequestBuffer
  return socket_->transact(buf.span().first(length), {}, &kernel_message);
}

bool LinkConfigurator::apply(const LinkSettings& settings, std::string& error) {
  if (std::string why = check_settings(settings); !why.empty()) {
    error = "configuring " + ifname_ + ": " + why;
    return false;
  }
  const Wanted want = wanted(settings);
  rtnl::RequestBuffer buf;
  std::string kernel;

  // 1. MTU and up: routes through a link that is down are refused (ENETDOWN).
  {
    const int e = send(buf, rtnl::build_set_link(buf.span(), 0, ifindex_, settings.mtu, true), kernel);
    if (e != 0) {
      const std::string mtu = settings.mtu != 0 ? " with MTU " + std::to_string(settings.mtu) : "";
      error = failed("setting " + ifname_ + " up" + mtu, e, kernel);
      return false;
    }
  }
  // 2. What the previous apply added and is no longer wanted, routes first. Removing before
  // adding matters for IPv4: a new address in the old one's subnet would be its secondary and
  // be deleted with it (unless promote_secondaries); and an IPv6 address is keyed by the address
  // alone, so a new prefix length for the same address needs the old one gone.
  for (const auto route : std::vector(routes_)) {
    if (contains(want.routes, route)) continue;
    const int e = send(buf, rtnl::build_default_route(buf.span(), 0, rtnl::Change::remove, ifindex_, route), kernel);
    if (e != 0 && e != ESRCH) {
      error = failed("removing " + rtnl::describe(route, ifname_), e, kernel);
      return false;
    }
    forget(routes_, route);
  }
  for (const auto address : std::vector(addresses_)) {
    if (contains(want.addresses, address)) continue;
    const int e = send(buf, rtnl::build_address(buf.span(), 0, rtnl::Change::remove, ifindex_, address), kernel);
    if (e != 0 && e != EADDRNOTAVAIL) {
      error = failed("removing " + rtnl::to_string(address) + " from " + ifname_, e, kernel);
      return false;
    }
    forget(addresses_, address);
  }
  // 3. Addresses, then the routes. Everything wanted is sent again, not only what is new: the
  // kernel drops IPv4 routes when the link goes down or loses its last address, and IPv6
  // addresses when it goes down, behind our back. EEXIST: exactly this is there already.
  for (const auto& address : want.addresses) {
    const int e = send(buf, rtnl::build_address(buf.span(), 0, rtnl::Change::add, ifindex_, address), kernel);
    if (e != 0 && e != EEXIST) {
      error = failed("adding " + rtnl::to_string(address) + " to " + ifname_, e, kernel);
      return false;
    }
    if (!contains(addresses_, address)) addresses_.push_back(address);
  }
  for (const auto& route : want.routes) {
    const int e = send(buf, rtnl::build_default_route(buf.span(), 0, rtnl::Change::add, ifindex_, route), kernel);
    if (e != 0 && e != EEXIST) {
      error = failed("adding " + rtnl::describe(route, ifname_), e, kernel);
      return false;
    }
    if (!contains(routes_, route)) routes_.push_back(route);
  }
  return true;
}

bool LinkConfigurator::clear(bool link_down, std::string& error) {
  rtnl::RequestBuffer buf;
  std::string kernel;
  std::string first_failure;
  int failures = 0;
  const auto note = [&](const std::string& doing, int e) {
    if (failures++ == 0) first_failure = failed(doing, e, kernel);
  };
  // ENODEV everywhere: the interface is gone, and everything on it went with it.
  for (const auto route : std::vector(routes_)) {
    const int e = send(buf, rtnl::build_default_route(buf.span(), 0, rtnl::Change::remove, ifindex_, route), kernel);
    if (e == 0 || e == ESRCH || e == ENODEV) forget(routes_, route);
    else note("removing " + rtnl::describe(route, ifname_), e);
  }
  for (const auto address : std::vector(addresses_)) {
    const int e = send(buf, rtnl::build_address(buf.span(), 0, rtnl::Change::remove, ifindex_, address), kernel);
    if (e == 0 || e == EADDRNOTAVAIL || e == ENODEV) forget(addresses_, address);
    else note("removing " + rtnl::to_string(address) + " from " + ifname_, e);
  }
  if (link_down) {
    const int e = send(buf, rtnl::build_set_link(buf.span(), 0, ifindex_, 0, false), kernel);
    if (e != 0 && e != ENODEV) note("setting " + ifname_ + " down", e);
  }
  if (failures == 0) return true;
  error = first_failure;
  if (failures > 1) error += " (and " + std::to_string(failures - 1) + " more failures)";
  return false;
}

LinkConfigurator::~LinkConfigurator() {
  try {
    std::string ignored;
    clear(true, ignored);
  } catch (...) {
    // Best effort: a destructor must not throw (the only possible exception is bad_alloc).
  }
}

}  // namespace wwan::tun
