#include "tests/support/offload_tun.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>

#include "datapath/offload/gso.hpp"

namespace wwan::testsupport {

namespace ot = offload::testing;

std::unique_ptr<tun::TunDevice> open_vnet_tun(const std::string& name, const std::string& address_cidr, std::string& why) {
  auto t = tun::TunDevice::open(name, tun::TunOptions{.vnet_hdr = true, .nonblocking = true}, why);
  if (!t) return nullptr;
  const std::string command =
      "ip link set lo up && ip addr add " + address_cidr + " dev " + name + " && ip link set " + name + " up";
  if (std::system(command.c_str()) != 0) {
    why = "'" + command + "' failed";
    return nullptr;
  }
  return t;
}

bool write_plain(int vnet_tun_fd, const ot::Packet& packet) {
  const iovec iov[2] = {{const_cast<std::uint8_t*>(offload::kVirtioNetHdrNone), offload::kVirtioNetHdrSize},
                        {const_cast<std::uint8_t*>(packet.data()), packet.size()}};
  return ::writev(vnet_tun_fd, iov, 2) == static_cast<ssize_t>(offload::kVirtioNetHdrSize + packet.size());
}

std::string TcpPeer::connect(int vnet_tun_fd, std::array<std::uint8_t, 4> local, std::array<std::uint8_t, 4> peer,
                             std::uint16_t port, int rcvbuf_bytes, int accept_flags) {
  tun = vnet_tun_fd;
  flow = ot::flow_v4(peer, local, 40000, port);
  listener = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listener.valid()) return errno_text("socket(AF_INET, SOCK_STREAM)");
  ::setsockopt(listener.get(), SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf_bytes, sizeof rcvbuf_bytes);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  std::memcpy(&a.sin_addr, local.data(), 4);
  if (::bind(listener.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0 || ::listen(listener.get(), 1) != 0)
    return errno_text("TCP listener on port " + std::to_string(port));
  // The handshake: SYN with MSS 1460 and window scale 7, the SYN-ACK, the ACK.
  write_plain(tun, ot::tcp_packet(flow, {.id = ip_id++},
                                  {.seq = kIsn, .ack = 0, .flags = offload::kTcpSyn, .window = 65535,
                                   .options = {2, 4, 0x05, 0xb4, 1, 3, 3, 7}},
                                  {}));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (ack_number == 0 && std::chrono::steady_clock::now() < deadline) take_acks(100);
  if (ack_number == 0) return "no SYN-ACK from the kernel within 5 s";
  next = acked = kIsn + 1;
  write_plain(tun, ot::tcp_packet(flow, {.id = ip_id++}, {.seq = next, .ack = ack_number, .window = 65535}, {}));
  pollfd p{listener.get(), POLLIN, 0};
  if (::poll(&p, 1, 5000) != 1) return "the connection was not accepted within 5 s";
  conn = Fd(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC | accept_flags));
  return conn.valid() ? "" : errno_text("accept");
}

void TcpPeer::take_acks(int wait_ms) {
  std::uint8_t buffer[2048];
  for (;;) {
    const ssize_t n = ::read(tun, buffer, sizeof buffer);
    if (n < 0) {
      if (wait_ms <= 0) return;
      pollfd p{tun, POLLIN, 0};
      ::poll(&p, 1, wait_ms);
      wait_ms = 0;
      continue;
    }
    offload::L4Packet l4;
    if (n <= 10 || offload::parse_l4(offload::Bytes(buffer + 10, static_cast<std::size_t>(n) - 10), l4) !=
                       offload::L4Parse::Ok || !l4.tcp())
      continue;
    const std::uint8_t* h = l4.l4();
    // Only this connection's (an earlier one's socket may still be sending its FIN).
    if (offload::load_be16(h) != flow.destination_port || offload::load_be16(h + 2) != flow.source_port) continue;
    if ((h[13] & offload::kTcpSyn) != 0) {
      ack_number = offload::load_be32(h + 4) + 1;
      for (std::size_t i = 20; i + 2 < l4.l4_header_length; i += h[i] <= 1 ? 1 : h[i + 1])
        if (h[i] == 3) window_shift = h[i + 2];
      window = offload::load_be16(h + 14);
    } else if (const std::uint32_t ack = offload::load_be32(h + 8); static_cast<std::int32_t>(ack - acked) >= 0) {
      acked = ack;
      window = std::uint64_t{offload::load_be16(h + 14)} << window_shift;
    }
  }
}

}  // namespace wwan::testsupport
