// The rtnetlink socket shell (see rtnl_socket.hpp): send, read, match the sequence number.
#include "tun/rtnl_socket.hpp"

#include <libmnl/libmnl.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <cstring>
#include <ctime>

namespace wwan::tun::rtnl {
namespace {

// A route dump of a full BGP table arrives in many datagrams; each one fits in this (the kernel
// sizes dump datagrams to the reader's buffer, up to 32 KiB; MSG_TRUNC is caught by libmnl).
constexpr std::size_t kReceiveBufferSize = 32768;

}  // namespace

Socket::Socket(mnl_socket* socket)
    : socket_(socket),
      // Sequence numbers only have to differ between requests of this socket; starting from the
      // clock (as iproute2 does) keeps a late answer to a previous process's socket of the same
      // port id from matching.
      seq_(static_cast<std::uint32_t>(std::time(nullptr))),
      receive_buffer_(kReceiveBufferSize) {}

Socket::~Socket() { mnl_socket_close(socket_); }

std::unique_ptr<Socket> Socket::open(std::string& error) {
  mnl_socket* socket = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
  if (socket == nullptr) {
    error = std::string("opening a NETLINK_ROUTE socket: ") + std::strerror(errno);
    return nullptr;
  }
  if (mnl_socket_bind(socket, 0, MNL_SOCKET_AUTOPID) < 0) {
    error = std::string("binding a NETLINK_ROUTE socket: ") + std::strerror(errno);
    mnl_socket_close(socket);
    return nullptr;
  }
  // Both options are best effort: without them (kernels before 4.12) errors lose the kernel's
  // sentence and echo the request, nothing else changes.
  int on = 1;
  mnl_socket_setsockopt(socket, NETLINK_EXT_ACK, &on, sizeof on);
  mnl_socket_setsockopt(socket, NETLINK_CAP_ACK, &on, sizeof on);
  timeval timeout{};
  timeout.tv_sec = 5;
  setsockopt(mnl_socket_get_fd(socket), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  return std::unique_ptr<Socket>(new Socket(socket));
}

int Socket::transact(MutableBytes request, const std::function<void(Bytes)>& on_reply, std::string* kernel_message) {
  if (kernel_message != nullptr) kernel_message->clear();
  if (request.size() < NLMSG_HDRLEN) return EINVAL;
  auto* nlh = static_cast<nlmsghdr*>(static_cast<void*>(request.data()));
  if (nlh->nlmsg_len < NLMSG_HDRLEN || nlh->nlmsg_len > request.size()) return EINVAL;
  const std::uint32_t seq = ++seq_;
  nlh->nlmsg_seq = seq;
  if (mnl_socket_sendto(socket_, request.data(), nlh->nlmsg_len) < 0) return errno;
  for (;;) {
    const ssize_t n = mnl_socket_recvfrom(socket_, receive_buffer_.data(), receive_buffer_.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;  // EAGAIN: no answer within SO_RCVTIMEO; ENOSPC: a truncated datagram
    }
    Bytes rest(receive_buffer_.data(), static_cast<std::size_t>(n));
    for (Bytes message = next_message(rest); !message.empty(); message = next_message(rest)) {
      // Answers to an earlier request that was given up on (a timeout) carry an older number.
      if (message_seq(message) != seq) continue;
      const std::uint16_t type = message_type(message);
      if (type == NLMSG_ERROR || type == NLMSG_DONE) {
        const auto ack = parse_acknowledgement(message);
        if (!ack) return EPROTO;
        if (kernel_message != nullptr) *kernel_message = ack->kernel_message;
        return ack->error;
      }
      if (type == NLMSG_NOOP) continue;
      if (on_reply) on_reply(message);
    }
  }
}

std::string describe_error(int error, const std::string& kernel_message) {
  std::string text = std::strerror(error);
  if (!kernel_message.empty()) {
    std::string sentence = kernel_message;
    while (!sentence.empty() && (sentence.back() == '\n' || sentence.back() == ' ')) sentence.pop_back();
    text += " (kernel: " + sentence + ")";
  }
  return text;
}

namespace {

std::optional<LinkInfo> get_link_with(Socket& socket, RequestBuffer& buf, std::size_t length, int& error) {
  if (length == 0) {
    error = EINVAL;
    return std::nullopt;
  }
  std::optional<LinkInfo> link;
  error = socket.transact(buf.span().first(length), [&](Bytes message) {
    if (auto parsed = parse_link(message)) link = std::move(parsed);
  });
  if (error != 0) return std::nullopt;
  if (!link) error = EPROTO;
  return link;
}

}  // namespace

std::optional<LinkInfo> get_link(Socket& socket, unsigned ifindex, int& error) {
  RequestBuffer buf;
  return get_link_with(socket, buf, build_get_link(buf.span(), 0, ifindex), error);
}

std::optional<LinkInfo> get_link(Socket& socket, std::string_view name, int& error) {
  RequestBuffer buf;
  return get_link_with(socket, buf, build_get_link(buf.span(), 0, name), error);
}

int dump_addresses(Socket& socket, std::uint8_t family, std::vector<AddressInfo>& out) {
  RequestBuffer buf;
  const std::size_t length = build_dump(buf.span(), 0, RTM_GETADDR, family);
  return socket.transact(buf.span().first(length), [&](Bytes message) {
    if (auto parsed = parse_address(message)) out.push_back(*parsed);
  });
}

int dump_routes(Socket& socket, std::uint8_t family, std::vector<RouteInfo>& out) {
  RequestBuffer buf;
  const std::size_t length = build_dump(buf.span(), 0, RTM_GETROUTE, family);
  return socket.transact(buf.span().first(length), [&](Bytes message) {
    if (auto parsed = parse_route(message)) out.push_back(*parsed);
  });
}

}  // namespace wwan::tun::rtnl
