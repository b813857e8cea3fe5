// wwan-vm-helper: the small programs the VM rig's guest scripts need (tests/vm/guest-*.sh). They
// run inside the guest, from the build directory shared over 9p; each prints key=value lines the
// guest script turns into VM_RESULT lines for the host-side test (tests/vm/vm_test.py).
//
//   udp-echo-server PORT                 echo every UDP datagram back (the gadget side's responder)
//   udp-echo ADDR PORT COUNT             COUNT datagrams, one at a time, each answered within 2 s
//                                        -> sent=N received=M
//   tcp-sink PORT                        accept connections; read each to EOF; answer the byte count
//   tcp-send ADDR PORT SECONDS           stream for SECONDS; the sink's count over the wall time
//                                        -> bytes=N seconds=S mbit_s=R
//   usbip-list HOST PORT                 OP_REQ_DEVLIST -> one line per exported device
//   usbip-attach HOST PORT BUSID [VHCI_PORT]
//                                        OP_REQ_IMPORT, then hand the socket to vhci-hcd through
//                                        /sys/devices/platform/vhci_hcd.0/attach ("port sockfd
//                                        devid speed", Documentation/usb/usbip_protocol.rst and
//                                        drivers/usb/usbip/vhci_sysfs.c) -> attached port=P ...
//   wdm-session DEVICE huawei|mbim [--fcc-unlock] [--timeout-s N]
//                                        the data session over a kernel cdc-wdm character device
//                                        (what ModemManager does next to huawei_cdc_ncm / cdc_mbim):
//                                        the project's own session state machine, the kernel's
//                                        control transport. -> connected ipv4=A/P gateway=G, then
//                                        holds the session until SIGTERM (-> stopped) or fails
//                                        (-> failed error=...).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "control/huawei_session.hpp"
#include "control/mbim_session.hpp"
#include "sim/usbip_codec.hpp"

namespace {

namespace usbip = wwan::sim::usbip;
using Clock = std::chrono::steady_clock;

int usage() {
  std::cerr << "usage: wwan-vm-helper udp-echo-server PORT | udp-echo ADDR PORT COUNT | tcp-sink PORT |\n"
               "       tcp-send ADDR PORT SECONDS | usbip-list HOST PORT | usbip-attach HOST PORT BUSID [VHCI_PORT] |\n"
               "       wdm-session DEVICE huawei|mbim [--fcc-unlock] [--timeout-s N]\n";
  return 2;
}

bool parse_u32(std::string_view s, std::uint32_t& v) {
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

std::string errno_text() { return std::strerror(errno); }

bool address_of(const std::string& host, std::uint32_t port, sockaddr_in& sa) {
  sa = {};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(port));
  return port <= 65535 && ::inet_pton(AF_INET, host.c_str(), &sa.sin_addr) == 1;
}

// A TCP connection, retried for up to retry_ms (the peer may still be starting).
int connect_tcp(const std::string& host, std::uint32_t port, int retry_ms) {
  sockaddr_in sa;
  if (!address_of(host, port, sa)) {
    std::cerr << "wwan-vm-helper: '" << host << ":" << port << "' is not an IPv4 address and port\n";
    return -1;
  }
  const auto until = Clock::now() + std::chrono::milliseconds(retry_ms);
  for (;;) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    // SO_SNDTIMEO bounds connect() too (socket(7)): an unanswered SYN would otherwise block for
    // the kernel's ~2 minutes of retries.
    const timeval connect_timeout{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &connect_timeout, sizeof connect_timeout);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0) {
      const timeval no_timeout{0, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &no_timeout, sizeof no_timeout);
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      return fd;
    }
    const std::string why = errno_text();
    ::close(fd);
    if (Clock::now() >= until) {
      std::cerr << "wwan-vm-helper: connect to " << host << ":" << port << ": " << why << "\n";
      return -1;
    }
    ::usleep(100 * 1000);  // a bounded retry loop, not a wait for a condition we could observe
  }
}

bool read_exact(int fd, std::span<std::uint8_t> out) {
  std::size_t got = 0;
  while (got < out.size()) {
    const ssize_t r = ::read(fd, out.data() + got, out.size() - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    got += static_cast<std::size_t>(r);
  }
  return true;
}

bool write_all(int fd, std::span<const std::uint8_t> bytes) {
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t r = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    sent += static_cast<std::size_t>(r);
  }
  return true;
}

// ---------------------------------------------------------------- UDP echo

int udp_echo_server(std::uint32_t port) {
  sockaddr_in sa;
  address_of("0.0.0.0", port, sa);
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) {
    std::cerr << "wwan-vm-helper: bind UDP " << port << ": " << errno_text() << "\n";
    return 1;
  }
  std::vector<std::uint8_t> buf(65536);
  for (;;) {
    sockaddr_in peer{};
    socklen_t len = sizeof peer;
    const ssize_t n = ::recvfrom(fd, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&peer), &len);
    if (n < 0) continue;
    ::sendto(fd, buf.data(), static_cast<std::size_t>(n), 0, reinterpret_cast<const sockaddr*>(&peer), len);
  }
}

int udp_echo(const std::string& host, std::uint32_t port, std::uint32_t count) {
  sockaddr_in sa;
  if (!address_of(host, port, sa)) return usage();
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  ::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa);
  std::uint32_t received = 0;
  for (std::uint32_t i = 0; i < count; ++i) {
    // Distinct payloads of varying size: a reply must be this datagram's, byte for byte.
    std::vector<std::uint8_t> out(64 + (i * 97) % 1200);
    for (std::size_t k = 0; k < out.size(); ++k) out[k] = static_cast<std::uint8_t>(i * 31 + k);
    ::send(fd, out.data(), out.size(), 0);
    const auto until = Clock::now() + std::chrono::seconds(2);
    std::vector<std::uint8_t> in(2048);
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
      if (left <= 0) break;
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) break;
      const ssize_t n = ::recv(fd, in.data(), in.size(), 0);
      if (n == static_cast<ssize_t>(out.size()) && std::equal(out.begin(), out.end(), in.begin())) {
        ++received;
        break;
      }
      // A late reply to an earlier datagram: keep waiting for this one.
    }
  }
  std::cout << "sent=" << count << " received=" << received << std::endl;
  return received == count ? 0 : 1;
}

// ---------------------------------------------------------------- TCP throughput

int tcp_sink(std::uint32_t port) {
  sockaddr_in sa;
  address_of("0.0.0.0", port, sa);
  const int lfd = ::socket(AF_INET, SOCK_STREAM, 0);
  const int one = 1;
  ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(lfd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0 || ::listen(lfd, 4) != 0) {
    std::cerr << "wwan-vm-helper: listen TCP " << port << ": " << errno_text() << "\n";
    return 1;
  }
  std::vector<std::uint8_t> buf(256 * 1024);
  for (;;) {
    const int fd = ::accept(lfd, nullptr, nullptr);
    if (fd < 0) continue;
    std::uint64_t total = 0;
    for (;;) {
      const ssize_t n = ::read(fd, buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      total += static_cast<std::uint64_t>(n);
    }
    std::uint8_t count[8];
    for (int i = 0; i < 8; ++i) count[i] = static_cast<std::uint8_t>(total >> (56 - 8 * i));
    write_all(fd, count);
    ::close(fd);
  }
}

int tcp_send(const std::string& host, std::uint32_t port, std::uint32_t seconds) {
  const int fd = connect_tcp(host, port, 5000);
  if (fd < 0) return 1;
  std::vector<std::uint8_t> buf(64 * 1024, 0x5a);
  const auto start = Clock::now();
  const auto until = start + std::chrono::seconds(seconds);
  while (Clock::now() < until) {
    if (!write_all(fd, buf)) {
      std::cerr << "wwan-vm-helper: send: " << errno_text() << "\n";
      return 1;
    }
  }
  ::shutdown(fd, SHUT_WR);
  std::uint8_t count[8];
  if (!read_exact(fd, count)) {
    std::cerr << "wwan-vm-helper: the sink did not report its byte count\n";
    return 1;
  }
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::uint64_t bytes = 0;
  for (const std::uint8_t b : count) bytes = bytes << 8 | b;
  std::printf("bytes=%llu seconds=%.3f mbit_s=%.2f\n", static_cast<unsigned long long>(bytes), secs,
              static_cast<double>(bytes) * 8 / secs / 1e6);
  return 0;
}

// ---------------------------------------------------------------- USB/IP client side

int usbip_list(const std::string& host, std::uint32_t port) {
  const int fd = connect_tcp(host, port, 5000);
  if (fd < 0) return 1;
  usbip::ByteVector req;
  usbip::append_devlist_request(req);
  if (!write_all(fd, req)) return 1;
  std::uint8_t head[usbip::kOpHeaderSize + 4];
  if (!read_exact(fd, head)) return 1;
  const auto op = usbip::parse_op_header(head);
  if (!op || op->code != usbip::kOpRepDevlist || op->status != 0) {
    std::cerr << "wwan-vm-helper: not an OP_REP_DEVLIST\n";
    return 1;
  }
  const std::uint32_t n = static_cast<std::uint32_t>(head[8]) << 24 | static_cast<std::uint32_t>(head[9]) << 16 |
                          static_cast<std::uint32_t>(head[10]) << 8 | head[11];
  if (n > 64) return 1;
  for (std::uint32_t i = 0; i < n; ++i) {
    std::vector<std::uint8_t> rec(usbip::kDeviceRecordSize);
    if (!read_exact(fd, rec)) return 1;
    const auto d = usbip::parse_device_record(rec);
    std::vector<std::uint8_t> ifs(usbip::kInterfaceRecordSize * d->num_interfaces);
    if (!read_exact(fd, ifs)) return 1;
    char line[160];
    std::snprintf(line, sizeof line, "device busid=%s id=%04x:%04x speed=%u interfaces=%u", d->busid.c_str(),
                  d->vendor_id, d->product_id, d->speed, d->num_interfaces);
    std::cout << line;
    for (std::size_t k = 0; k + 3 < ifs.size(); k += 4) {
      std::snprintf(line, sizeof line, " %02x/%02x/%02x", ifs[k], ifs[k + 1], ifs[k + 2]);
      std::cout << line;
    }
    std::cout << std::endl;
  }
  ::close(fd);
  return 0;
}

int usbip_attach(const std::string& host, std::uint32_t port, const std::string& busid, std::uint32_t vhci_port) {
  const int fd = connect_tcp(host, port, 5000);
  if (fd < 0) return 1;
  usbip::ByteVector req;
  usbip::append_import_request(req, busid);
  if (!write_all(fd, req)) return 1;
  std::uint8_t head[usbip::kOpHeaderSize];
  if (!read_exact(fd, head)) {
    std::cerr << "wwan-vm-helper: no OP_REP_IMPORT\n";
    return 1;
  }
  const auto op = usbip::parse_op_header(head);
  if (op->code != usbip::kOpRepImport || op->status != 0) {
    std::cerr << "wwan-vm-helper: import of " << busid << " refused (code " << op->code << ", status " << op->status
              << ")\n";
    return 1;
  }
  std::vector<std::uint8_t> rec(usbip::kDeviceRecordSize);
  if (!read_exact(fd, rec)) return 1;
  const auto d = usbip::parse_device_record(rec);
  // vhci_sysfs.c attach_store: "%u %u %u %u" = rhport, sockfd, devid, speed. The kernel takes its
  // own reference to the socket; this process may exit afterwards.
  const std::string attach = std::to_string(vhci_port) + " " + std::to_string(fd) + " " +
                             std::to_string(usbip::devid(d->busnum, d->devnum)) + " " + std::to_string(d->speed);
  std::ofstream f("/sys/devices/platform/vhci_hcd.0/attach");
  f << attach;
  f.flush();
  if (!f) {
    std::cerr << "wwan-vm-helper: writing '" << attach << "' to vhci_hcd.0/attach failed (vhci-hcd loaded? port free?)\n";
    return 1;
  }
  char line[128];
  std::snprintf(line, sizeof line, "attached port=%u id=%04x:%04x speed=%u busid=%s", vhci_port, d->vendor_id,
                d->product_id, d->speed, d->busid.c_str());
  std::cout << line << std::endl;
  return 0;
}

// ---------------------------------------------------------------- a session over cdc-wdm

std::string ipv4_text(const wwan::eth::Ipv4Address& a) {
  return std::to_string(a.bytes[0]) + "." + std::to_string(a.bytes[1]) + "." + std::to_string(a.bytes[2]) + "." +
         std::to_string(a.bytes[3]);
}

int wdm_session(const std::string& device, const std::string& kind, bool fcc_unlock, std::uint32_t timeout_s) {
  namespace control = wwan::control;
  const int fd = ::open(device.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    std::cerr << "wwan-vm-helper: open " << device << ": " << errno_text() << "\n";
    return 1;
  }
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  const int sfd = ::signalfd(-1, &mask, SFD_CLOEXEC);

  control::SessionSettings settings;
  settings.fcc_unlock = fcc_unlock;
  std::unique_ptr<control::Session> session;
  // cdc_mbim sets cdc-wdm's wMaxCommand to the function's wMaxControlMessage (4096 on the EM7455).
  if (kind == "mbim") session = std::make_unique<control::MbimSession>(settings, 4096);
  else session = std::make_unique<control::HuaweiSession>(settings);

  const auto deadline = Clock::now() + std::chrono::seconds(timeout_s);
  bool stopping = false;
  bool said_connected = false;
  std::vector<std::uint8_t> buf(8192);
  session->start(Clock::now());
  for (;;) {
    for (const auto& cmd : session->take_commands()) {
      // cdc-wdm: one write() = one SEND_ENCAPSULATED_COMMAND.
      if (::write(fd, cmd.data(), cmd.size()) != static_cast<ssize_t>(cmd.size())) {
        std::cout << "failed error=write to " << device << ": " << errno_text() << std::endl;
        return 1;
      }
    }
    const control::SessionStatus& st = session->status();
    if (st.state == control::SessionState::connected && !said_connected) {
      said_connected = true;
      std::string line = "connected";
      if (st.ip.ipv4) {
        line += " ipv4=" + ipv4_text(st.ip.ipv4->address) + "/" + std::to_string(st.ip.ipv4->prefix_length);
        if (st.ip.ipv4->gateway) line += " gateway=" + ipv4_text(*st.ip.ipv4->gateway);
      }
      line += " mbim_session=" + std::to_string(st.mbim_session_id);
      std::cout << line << std::endl;
    }
    if (st.state == control::SessionState::failed) {
      std::cout << "failed error=" << st.error << std::endl;
      return 1;
    }
    if (st.state == control::SessionState::stopped) {
      std::cout << "stopped" << std::endl;
      return 0;
    }
    const auto now = Clock::now();
    if (!said_connected && !stopping && now >= deadline) {
      std::cout << "failed error=no connection within " << timeout_s << " s (state "
                << control::to_string(st.state) << (st.error.empty() ? "" : ", " + st.error) << ")" << std::endl;
      return 1;
    }
    int wait_ms = 1000;
    if (const auto t = session->next_timer())
      wait_ms = static_cast<int>(std::clamp<long long>(
          std::chrono::ceil<std::chrono::milliseconds>(*t - now).count(), 0, 1000));
    pollfd p[2] = {{fd, POLLIN, 0}, {sfd, POLLIN, 0}};
    const int n = ::poll(p, 2, wait_ms);
    if (n > 0 && (p[1].revents & POLLIN) != 0) {
      signalfd_siginfo si;
      if (::read(sfd, &si, sizeof si) > 0 && !stopping) {
        stopping = true;
        session->stop(Clock::now());
      }
    }
    if (n > 0 && (p[0].revents & POLLIN) != 0) {
      // cdc-wdm: one read() = one GET_ENCAPSULATED_RESPONSE the kernel fetched after a
      // RESPONSE_AVAILABLE notification (it reads nothing without one).
      const ssize_t r = ::read(fd, buf.data(), buf.size());
      if (r > 0) session->on_response(std::span(buf).first(static_cast<std::size_t>(r)), Clock::now());
      if (r < 0 && errno != EINTR && errno != EAGAIN) {
        std::cout << "failed error=read " << device << ": " << errno_text() << std::endl;
        return 1;
      }
    }
    if (const auto t = session->next_timer(); t && Clock::now() >= *t) session->on_timer(Clock::now());
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> a(argv + 1, argv + argc);
  std::uint32_t x = 0, y = 0;
  if (a.size() == 2 && a[0] == "udp-echo-server" && parse_u32(a[1], x)) return udp_echo_server(x);
  if (a.size() == 4 && a[0] == "udp-echo" && parse_u32(a[2], x) && parse_u32(a[3], y)) return udp_echo(a[1], x, y);
  if (a.size() == 2 && a[0] == "tcp-sink" && parse_u32(a[1], x)) return tcp_sink(x);
  if (a.size() == 4 && a[0] == "tcp-send" && parse_u32(a[2], x) && parse_u32(a[3], y)) return tcp_send(a[1], x, y);
  if (a.size() == 3 && a[0] == "usbip-list" && parse_u32(a[2], x)) return usbip_list(a[1], x);
  if ((a.size() == 4 || a.size() == 5) && a[0] == "usbip-attach" && parse_u32(a[2], x)) {
    if (a.size() == 5 && !parse_u32(a[4], y)) return usage();
    return usbip_attach(a[1], x, a[3], a.size() == 5 ? y : 0);
  }
  if (a.size() >= 3 && a[0] == "wdm-session" && (a[2] == "huawei" || a[2] == "mbim")) {
    bool fcc = false;
    std::uint32_t timeout_s = 60;
    for (std::size_t i = 3; i < a.size(); ++i) {
      if (a[i] == "--fcc-unlock") fcc = true;
      else if (a[i] == "--timeout-s" && i + 1 < a.size() && parse_u32(a[i + 1], timeout_s)) ++i;
      else return usage();
    }
    return wdm_session(a[1], a[2], fcc, timeout_s);
  }
  return usage();
}
