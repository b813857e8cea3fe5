#include "tests/support/network.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "sim/network.hpp"

namespace wwan::testsupport {

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

int remaining_ms(std::chrono::steady_clock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
  return static_cast<int>(std::clamp<long long>(left, 0, 60'000));
}

namespace {

std::uint16_t internet_checksum(const std::uint8_t* data, std::size_t size) {
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i + 1 < size; i += 2) sum += static_cast<std::uint32_t>(data[i] << 8 | data[i + 1]);
  if (size % 2 != 0) sum += static_cast<std::uint32_t>(data[size - 1] << 8);
  while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum & 0xFFFF);
}

bool bind_to_device(int fd, const std::string& tun, std::string& why) {
  if (::setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, tun.c_str(), static_cast<socklen_t>(tun.size())) != 0) {
    why = errno_text("SO_BINDTODEVICE " + tun);
    return false;
  }
  return true;
}

ifreq request_for(const std::string& name) {
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  return ifr;
}

}  // namespace

std::string write_sysctl(const std::string& path, const std::string& value) {
  std::ofstream f("/proc/sys/" + path);
  if (!f) return "cannot open /proc/sys/" + path;
  f << value << '\n';
  f.flush();
  if (!f) return "cannot write /proc/sys/" + path;
  return "";
}

std::string enter_fresh_network_namespace() {
  if (::unshare(CLONE_NEWNET) != 0) return errno_text("unshare(CLONE_NEWNET)");
  const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return errno_text("socket");
  ifreq ifr = request_for("lo");
  bool ok = ::ioctl(s, SIOCGIFFLAGS, &ifr) == 0;
  if (ok) {
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
    ok = ::ioctl(s, SIOCSIFFLAGS, &ifr) == 0;
  }
  const std::string lo_error = ok ? "" : errno_text("bringing lo up");
  ::close(s);
  if (!lo_error.empty()) return lo_error;
  // IPv6 off for the TUN to come (no router solicitations or MLD reports in the counts); a
  // kernel without IPv6 has no such file, which is as good.
  if (::access("/proc/sys/net/ipv6/conf/default/disable_ipv6", F_OK) == 0) {
    if (std::string e = write_sysctl("net/ipv6/conf/default/disable_ipv6", "1"); !e.empty()) return e;
  }
  for (const char* p : {"net/ipv4/conf/all/rp_filter", "net/ipv4/conf/default/rp_filter"})
    if (std::string e = write_sysctl(p, "0"); !e.empty()) return e;
  return "";
}

std::optional<LinkState> link_state(const std::string& name) {
  LinkState st;
  st.index = ::if_nametoindex(name.c_str());
  if (st.index == 0) return std::nullopt;
  const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return std::nullopt;
  ifreq ifr = request_for(name);
  if (::ioctl(s, SIOCGIFFLAGS, &ifr) == 0) st.up = (ifr.ifr_flags & IFF_UP) != 0;
  ifr = request_for(name);
  if (::ioctl(s, SIOCGIFMTU, &ifr) == 0) st.mtu = ifr.ifr_mtu;
  ifr = request_for(name);
  if (::ioctl(s, SIOCGIFADDR, &ifr) == 0) {
    sockaddr_in a{};
    std::memcpy(&a, &ifr.ifr_addr, sizeof a);
    std::array<char, INET_ADDRSTRLEN> text{};
    if (::inet_ntop(AF_INET, &a.sin_addr, text.data(), text.size()) != nullptr) st.ipv4 = std::string(text.data());
  }
  ::close(s);
  return st;
}

std::optional<DevCounters> dev_counters(const std::string& name) {
  std::ifstream f("/proc/net/dev");
  std::string line;
  while (std::getline(f, line)) {
    const std::size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string iface = line.substr(0, colon);
    iface.erase(0, iface.find_first_not_of(' '));
    if (iface != name) continue;
    std::istringstream in(line.substr(colon + 1));
    std::array<std::uint64_t, 16> v{};
    for (auto& x : v)
      if (!(in >> x)) return std::nullopt;
    // rx: bytes packets errs drop fifo frame compressed multicast; tx: bytes packets errs drop ...
    DevCounters c;
    c.rx_bytes = v[0];
    c.rx_packets = v[1];
    c.rx_errors = v[2];
    c.rx_dropped = v[3];
    c.tx_bytes = v[8];
    c.tx_packets = v[9];
    c.tx_errors = v[10];
    c.tx_dropped = v[11];
    return c;
  }
  return std::nullopt;
}

std::map<std::string, std::uint64_t> snmp(const std::string& protocol) {
  std::ifstream f("/proc/net/snmp");
  std::string names, values;
  const std::string prefix = protocol + ":";
  std::map<std::string, std::uint64_t> out;
  while (std::getline(f, names)) {
    if (names.rfind(prefix, 0) != 0) continue;
    if (!std::getline(f, values)) break;
    std::istringstream n(names.substr(prefix.size())), v(values.substr(prefix.size()));
    std::string key;
    std::int64_t value = 0;
    while (n >> key && v >> value) out[key] = static_cast<std::uint64_t>(std::max<std::int64_t>(value, 0));
    break;
  }
  return out;
}

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

Fd::~Fd() {
  if (fd_ >= 0) ::close(fd_);
}

sockaddr_in ipv4_address(const std::string& dotted, std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  ::inet_pton(AF_INET, dotted.c_str(), &a.sin_addr);
  return a;
}

Fd udp_socket(const std::string& tun, std::uint16_t port, const std::optional<std::string>& peer,
              std::uint16_t peer_port, std::string& why) {
  // An IPv6 peer (it has a ':') makes an IPv6 socket; the port binding stays IPv4-only.
  if (peer && peer->find(':') != std::string::npos) {
    Fd fd6(::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_in6 remote{};
    remote.sin6_family = AF_INET6;
    remote.sin6_port = htons(peer_port);
    if (!fd6.valid() || port != 0 || ::inet_pton(AF_INET6, peer->c_str(), &remote.sin6_addr) != 1) {
      why = "udp_socket: an IPv6 peer needs socket(AF_INET6), port 0 and a valid address: " + *peer;
      return Fd();
    }
    if (!tun.empty() && !bind_to_device(fd6.get(), tun, why)) return Fd();
    if (::connect(fd6.get(), reinterpret_cast<const sockaddr*>(&remote), sizeof remote) != 0) {
      why = errno_text("connect UDP [" + *peer + "]:" + std::to_string(peer_port));
      return Fd();
    }
    return fd6;
  }
  Fd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    why = errno_text("socket(AF_INET, SOCK_DGRAM)");
    return Fd();
  }
  if (!tun.empty() && !bind_to_device(fd.get(), tun, why)) return Fd();
  if (port != 0) {
    const sockaddr_in local = ipv4_address("0.0.0.0", port);
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&local), sizeof local) != 0) {
      why = errno_text("bind UDP " + std::to_string(port));
      return Fd();
    }
  }
  if (peer) {
    const sockaddr_in remote = ipv4_address(*peer, peer_port);
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&remote), sizeof remote) != 0) {
      why = errno_text("connect UDP " + *peer + ":" + std::to_string(peer_port));
      return Fd();
    }
  }
  return fd;
}

bool readable(int fd, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(std::max<long long>(left.count(), 0)));
    if (r > 0) return true;
    if (r == 0) return false;
    if (errno != EINTR) return false;
  }
}

bool Pinger::open(const std::string& tun, std::string& why) {
  fd_ = Fd(::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP));
  if (!fd_.valid()) {
    why = errno_text("socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)");
    return false;
  }
  return bind_to_device(fd_.get(), tun, why);
}

std::string Pinger::ping(const std::string& to, std::uint16_t id, std::uint16_t seq,
                         const std::vector<std::uint8_t>& payload, std::chrono::milliseconds timeout) {
  std::vector<std::uint8_t> request(8 + payload.size(), 0);
  request[0] = ICMP_ECHO;
  request[4] = static_cast<std::uint8_t>(id >> 8);
  request[5] = static_cast<std::uint8_t>(id);
  request[6] = static_cast<std::uint8_t>(seq >> 8);
  request[7] = static_cast<std::uint8_t>(seq);
  if (!payload.empty()) std::memcpy(request.data() + 8, payload.data(), payload.size());
  const std::uint16_t c = internet_checksum(request.data(), request.size());
  request[2] = static_cast<std::uint8_t>(c >> 8);
  request[3] = static_cast<std::uint8_t>(c);
  const sockaddr_in dst = ipv4_address(to, 0);
  if (::sendto(fd_.get(), request.data(), request.size(), 0, reinterpret_cast<const sockaddr*>(&dst), sizeof dst) !=
      static_cast<ssize_t>(request.size()))
    return errno_text("sendto " + to);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::array<std::uint8_t, 65536> buf{};
  std::string seen;  // other ICMP that arrived meanwhile, for the message
  while (readable(fd_.get(), deadline)) {
    sockaddr_in from{};
    socklen_t from_len = sizeof from;
    const ssize_t got = ::recvfrom(fd_.get(), buf.data(), buf.size(), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from),
                                   &from_len);
    if (got < 0) continue;
    const auto n = static_cast<std::size_t>(got);
    if (n < 20) continue;
    const std::size_t ihl = static_cast<std::size_t>(buf[0] & 0x0F) * 4;
    if (n < ihl + 8) continue;
    const std::uint8_t* icmp = buf.data() + ihl;
    const std::size_t icmp_len = n - ihl;
    if (icmp[0] != ICMP_ECHOREPLY) {
      if (icmp[0] != ICMP_ECHO) seen += " type " + std::to_string(icmp[0]);
      continue;
    }
    const auto rid = static_cast<std::uint16_t>(icmp[4] << 8 | icmp[5]);
    const auto rseq = static_cast<std::uint16_t>(icmp[6] << 8 | icmp[7]);
    if (rid != id || rseq != seq) {
      seen += " reply id " + std::to_string(rid) + " seq " + std::to_string(rseq);
      continue;
    }
    if (ipv4_address(to, 0).sin_addr.s_addr != from.sin_addr.s_addr) return "echo reply from another address";
    if (internet_checksum(icmp, icmp_len) != 0) return "echo reply with a bad ICMP checksum";
    if (icmp_len != 8 + payload.size() || !std::equal(payload.begin(), payload.end(), icmp + 8))
      return "echo reply payload differs (" + std::to_string(icmp_len - 8) + " bytes back, " +
             std::to_string(payload.size()) + " sent)";
    return "";
  }
  return "no echo reply within " + std::to_string(timeout.count()) + " ms" + (seen.empty() ? "" : "; saw" + seen);
}

bool ControlPort::open(const std::string& tun, const std::string& to, std::string& why) {
  fd_ = udp_socket(tun, 0, to, sim::kSimControlPort, why);
  return fd_.valid();
}

bool ControlPort::send(const std::string& command, std::string& why) {
  if (::send(fd_.get(), command.data(), command.size(), 0) != static_cast<ssize_t>(command.size())) {
    why = errno_text("send to the control port");
    return false;
  }
  return true;
}

std::optional<std::string> ControlPort::answer() {
  std::array<char, 2048> buf{};
  const ssize_t got = ::recv(fd_.get(), buf.data(), buf.size(), MSG_DONTWAIT);
  if (got < 0) return std::nullopt;
  return std::string(buf.data(), static_cast<std::size_t>(got));
}

std::optional<std::string> ControlPort::command(const std::string& text, std::chrono::milliseconds timeout,
                                                std::string& why) {
  while (answer()) {
  }  // a stale answer must not pass for this one
  if (!send(text, why)) return std::nullopt;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (readable(fd_.get(), deadline))
    if (auto a = answer()) return a;
  why = "no answer to '" + text + "' from the control port within " + std::to_string(timeout.count()) + " ms";
  return std::nullopt;
}

}  // namespace wwan::testsupport
