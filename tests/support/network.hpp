// What the integration tests and the end-to-end benchmark do with the kernel of their network
// namespace: enter a fresh one, sysctls, interface state by ioctl, the counters of /proc/net/dev
// and /proc/net/snmp (per namespace, read from inside it), and sockets, bound to the TUN with
// SO_BINDTODEVICE when a device is named so that no packet can take another way. Shared by
// tests/integration/net.hpp and bench/e2e_support.hpp; no GoogleTest in it.
#pragma once

#include <netinet/in.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace wwan::testsupport {

// "what: strerror(errno)".
std::string errno_text(const std::string& what);

// Milliseconds left until `deadline`, clamped to [0, 60000] (a poll() timeout).
int remaining_ms(std::chrono::steady_clock::time_point deadline);

// unshare(CLONE_NEWNET), lo up, IPv6 off for every interface created from now on, reverse-path
// filtering off (the sourced stream comes from an address the namespace has no route to). ""
// or why not.
std::string enter_fresh_network_namespace();

// Writes `value` to /proc/sys/<path>; "" or why not.
std::string write_sysctl(const std::string& path, const std::string& value);

// The interface as the kernel holds it (ioctl), nullopt where it does not exist.
struct LinkState {
  unsigned index = 0;
  bool up = false;
  int mtu = 0;
  std::optional<std::string> ipv4;  // SIOCGIFADDR, dotted
};
std::optional<LinkState> link_state(const std::string& name);

// One row of /proc/net/dev.
struct DevCounters {
  std::uint64_t rx_bytes = 0, rx_packets = 0, rx_errors = 0, rx_dropped = 0;
  std::uint64_t tx_bytes = 0, tx_packets = 0, tx_errors = 0, tx_dropped = 0;
};
std::optional<DevCounters> dev_counters(const std::string& name);

// "Udp" -> {"InDatagrams" -> n, "RcvbufErrors" -> n, ...} from /proc/net/snmp.
std::map<std::string, std::uint64_t> snmp(const std::string& protocol);

// A socket descriptor closed when it goes out of scope.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd& operator=(Fd&& o) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd();
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

sockaddr_in ipv4_address(const std::string& dotted, std::uint16_t port);

// A UDP socket bound to device `tun` (none when empty) and to local `port` if non-zero, connected
// to `peer`:`peer_port` when peer is given. Invalid Fd and `why` set on failure.
Fd udp_socket(const std::string& tun, std::uint16_t port, const std::optional<std::string>& peer,
              std::uint16_t peer_port, std::string& why);

// Waits until `fd` is readable; false at `deadline`.
bool readable(int fd, std::chrono::steady_clock::time_point deadline);

// One ICMP echo exchange over a raw socket bound to the TUN: the request carries `id`, `seq` and
// `payload`; the reply must come from `to` with the same id, seq and payload and a correct ICMP
// checksum (raw sockets see packets before the kernel's ICMP checks). "" or what went wrong.
class Pinger {
 public:
  bool open(const std::string& tun, std::string& why);
  std::string ping(const std::string& to, std::uint16_t id, std::uint16_t seq, const std::vector<std::uint8_t>& payload,
                   std::chrono::milliseconds timeout);

 private:
  Fd fd_;
};

// The UDP control port of the emulated network (sim::kSimControlPort), reached from a socket
// bound to the TUN (any route when `tun` is empty) at any address routed through it.
class ControlPort {
 public:
  bool open(const std::string& tun, const std::string& to, std::string& why);
  bool send(const std::string& command, std::string& why);
  int fd() const { return fd_.get(); }
  // The answer waiting now ("ok" / "error: ..."), without blocking.
  std::optional<std::string> answer();
  // send + wait for the answer; nullopt (why set) on failure or timeout.
  std::optional<std::string> command(const std::string& command, std::chrono::milliseconds timeout, std::string& why);

 private:
  Fd fd_;
};

}  // namespace wwan::testsupport
