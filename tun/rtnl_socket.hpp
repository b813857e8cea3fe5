// The rtnetlink socket: the thin I/O shell around the pure messages of tun/netlink.hpp.
//
// One NETLINK_ROUTE socket (libmnl), used synchronously by one thread: send a request, read until
// its ACK (or the NLMSG_DONE of a dump), hand every reply of that sequence number to a callback.
// The kernel's extended ACK is switched on (NETLINK_EXT_ACK) so an error comes back with the
// kernel's own sentence ("ipv4: Address already assigned."), and capped (NETLINK_CAP_ACK) so an
// error does not echo the whole request.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tun/netlink.hpp"

struct mnl_socket;

namespace wwan::tun::rtnl {

class Socket {
 public:
  // nullptr + one line in `error` when the socket cannot be opened or bound.
  static std::unique_ptr<Socket> open(std::string& error);
  ~Socket();
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  // Sends `request` (a message from a build_* function; its nlmsg_seq is replaced by this
  // socket's next sequence number) and reads until the kernel's answer to it. Every other
  // message carrying that sequence number (the RTM_NEWLINK of a GETLINK, each entry of a dump) is
  // passed to `on_reply` if set. Returns 0, or a positive errno: the kernel's (then
  // `kernel_message`, when given, receives its extended-ACK text, possibly empty) or the socket's.
  // Blocks; a kernel that does not answer within 5 s gives EAGAIN instead of hanging the caller.
  int transact(MutableBytes request, const std::function<void(Bytes)>& on_reply = {},
               std::string* kernel_message = nullptr);

 private:
  explicit Socket(mnl_socket* socket);
  mnl_socket* socket_;
  std::uint32_t seq_;
  std::vector<std::uint8_t> receive_buffer_;
};

// "File exists", or "File exists (kernel: ipv4: Address already assigned.)".
std::string describe_error(int error, const std::string& kernel_message);

// One interface by index or by name over RTM_GETLINK. nullopt and `error` = the errno (ENODEV:
// no such interface) when the kernel has none.
std::optional<LinkInfo> get_link(Socket& socket, unsigned ifindex, int& error);
std::optional<LinkInfo> get_link(Socket& socket, std::string_view name, int& error);

// Dumps (used by the tests to read back what the kernel holds, and by the daemon's status).
// Returns 0 or a positive errno.
int dump_addresses(Socket& socket, std::uint8_t family, std::vector<AddressInfo>& out);
int dump_routes(Socket& socket, std::uint8_t family, std::vector<RouteInfo>& out);

}  // namespace wwan::tun::rtnl
