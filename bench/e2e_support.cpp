#include "bench/e2e_support.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <liburing.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "bench/instant_out.hpp"
#include "datapath/ethernet.hpp"
#include "datapath/link_state.hpp"
#include "datapath/ntb_build.hpp"
#include "datapath/offload/gro.hpp"
#include "datapath/offload/ip_packet.hpp"
#include "datapath/offload/virtio_net_hdr.hpp"
#include "datapath/tx_path.hpp"
#include "datapath/worker.hpp"
#include "sim/tcp_source.hpp"
#include "tests/datapath/offload_packets.hpp"
#include "tests/support/offload_tun.hpp"
#include "tun/uring_io.hpp"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103  // Linux 4.18 include/uapi/linux/udp.h
#endif

namespace wwan::bench {

using std::chrono::milliseconds;

namespace {

constexpr std::size_t kIpUdpHeaders = 28;  // IPv4 (no options) + UDP

}  // namespace

// ---- /proc ---------------------------------------------------------------------------------------

std::map<std::string, std::uint64_t> thread_cpu_ns(pid_t pid) {
  std::map<std::string, std::uint64_t> out;
  const std::string task = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = ::opendir(task.c_str());
  if (d == nullptr) return out;
  static const long ticks_per_s = ::sysconf(_SC_CLK_TCK);
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    const std::string dir = task + "/" + e->d_name;
    std::string name;
    std::getline(std::ifstream(dir + "/comm") >> std::ws, name);
    std::uint64_t ns = 0;
    std::ifstream sched(dir + "/schedstat");
    if (!(sched >> ns)) {
      // utime and stime are fields 14 and 15 of stat, counted after the ")" that ends comm.
      std::string stat;
      std::getline(std::ifstream(dir + "/stat"), stat);
      const std::size_t close = stat.rfind(')');
      if (close == std::string::npos) continue;
      std::istringstream rest(stat.substr(close + 2));
      std::string field;
      std::uint64_t utime = 0, stime = 0;
      for (int i = 3; i <= 13 && rest >> field; ++i) {
      }
      if (!(rest >> utime >> stime) || ticks_per_s <= 0) continue;
      ns = (utime + stime) * (1'000'000'000 / static_cast<std::uint64_t>(ticks_per_s));
    }
    out[name] += ns;
  }
  ::closedir(d);
  return out;
}

std::uint64_t this_thread_cpu_ns() {
  timespec t{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<std::uint64_t>(t.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(t.tv_nsec);
}

std::optional<std::uint64_t> status_kib(pid_t pid, std::string_view field) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.size() > field.size() && line.compare(0, field.size(), field) == 0 && line[field.size()] == ':') {
      std::istringstream in(line.substr(field.size() + 1));
      std::uint64_t kib = 0;
      if (in >> kib) return kib;
    }
  }
  return std::nullopt;
}

// ---- traffic -------------------------------------------------------------------------------------

bool Drain::start(std::uint16_t port, std::string& why) {
  fd_ = udp_socket("", port, std::nullopt, 0, why);
  if (!fd_.valid()) return false;
  // Root may go past rmem_max: a deep buffer, so that the drain's scheduling hiccups on a busy
  // machine do not show up as drops in the figures.
  const int bytes = 32 << 20;
  ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes);
  const timeval tick{0, 100'000};  // the stop flag is looked at this often
  ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof tick);
  thread_ = std::thread([this] {
    constexpr unsigned kBatch = 64;
    static thread_local std::array<std::array<std::uint8_t, 2048>, kBatch> bufs;
    std::array<iovec, kBatch> iov{};
    std::array<mmsghdr, kBatch> msgs{};
    for (unsigned i = 0; i < kBatch; ++i) {
      iov[i] = {bufs[i].data(), bufs[i].size()};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    while (!stop_.load(std::memory_order_relaxed)) {
      const int n = ::recvmmsg(fd_.get(), msgs.data(), kBatch, MSG_WAITFORONE, nullptr);
      if (n <= 0) continue;
      std::uint64_t bytes_now = 0;
      for (int i = 0; i < n; ++i) bytes_now += msgs[static_cast<std::size_t>(i)].msg_len + kIpUdpHeaders;
      packets_.fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
      ip_bytes_.fetch_add(bytes_now, std::memory_order_relaxed);
    }
  });
  return true;
}

Drain::~Drain() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void Drain::wait_quiet(milliseconds quiet, milliseconds limit) const {
  const Clock::time_point until = Clock::now() + limit;
  std::uint64_t last = packets_.load();
  Clock::time_point last_change = Clock::now();
  while (Clock::now() < until) {
    ::poll(nullptr, 0, 10);
    const std::uint64_t now = packets_.load();
    if (now != last) {
      last = now;
      last_change = Clock::now();
    } else if (Clock::now() - last_change >= quiet) {
      return;
    }
  }
}

std::vector<std::size_t> size_pattern(std::optional<std::size_t> ip_bytes) {
  if (ip_bytes) return {*ip_bytes};
  std::vector<std::size_t> p(7, 64);
  p.insert(p.end(), 4, 576);
  p.push_back(1500);
  return p;
}

bool Sender::start(const std::string& to, std::uint16_t port, std::vector<std::size_t> pattern, std::string& why,
                   unsigned udp_segments) {
  Fd fd = udp_socket("", 0, to, port, why);
  if (!fd.valid()) return false;
  if (udp_segments > 1) {
    const int segment = static_cast<int>(pattern.at(0) - kIpUdpHeaders);
    if (::setsockopt(fd.get(), SOL_UDP, UDP_SEGMENT, &segment, sizeof segment) != 0) {
      why = errno_text("UDP_SEGMENT");
      return false;
    }
    pattern = {pattern[0]};
  }
  stop_ = false;
  thread_ = std::thread([this, pattern = std::move(pattern), fd = std::move(fd), udp_segments] {
    // One GSO send: udp_segments datagrams of pattern[0] in one buffer (the kernel's limit is
    // 64 segments and 64 KiB).
    if (udp_segments > 1) {
      std::vector<std::uint8_t> buffer(udp_segments * (pattern[0] - kIpUdpHeaders));
      while (!stop_.load(std::memory_order_relaxed)) {
        if (::send(fd.get(), buffer.data(), buffer.size(), 0) == static_cast<ssize_t>(buffer.size()))
          sent_.fetch_add(udp_segments, std::memory_order_relaxed);
      }
      return;
    }
    constexpr std::size_t kBatch = 64;
    std::array<std::uint8_t, 1500> payload{};
    std::array<iovec, kBatch> iov{};
    std::array<mmsghdr, kBatch> msgs{};
    std::size_t next = 0;
    while (!stop_.load(std::memory_order_relaxed)) {
      for (std::size_t i = 0; i < kBatch; ++i) {
        iov[i] = {payload.data(), pattern[next] - kIpUdpHeaders};
        next = next + 1 == pattern.size() ? 0 : next + 1;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
      }
      const int n = ::sendmmsg(fd.get(), msgs.data(), kBatch, 0);
      if (n > 0) sent_.fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
      // ENOBUFS and the like: the TUN's queue is full; the next call tries again.
    }
  });
  return true;
}

void Sender::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

// ---- the ceiling ---------------------------------------------------------------------------------

namespace {

// One IPv4/UDP packet of `ip_bytes`, header checksum filled, UDP checksum 0 (none, RFC 768).
std::vector<std::uint8_t> udp_packet(const std::string& from, const std::string& to, std::uint16_t port,
                                     std::size_t ip_bytes) {
  std::vector<std::uint8_t> p(ip_bytes, 0);
  const eth::MutableBytes b(p);
  p[0] = 0x45;
  eth::store_be16(b, 2, static_cast<std::uint16_t>(ip_bytes));
  p[8] = 64;  // TTL
  p[9] = 17;  // UDP
  ::inet_pton(AF_INET, from.c_str(), p.data() + 12);
  ::inet_pton(AF_INET, to.c_str(), p.data() + 16);
  eth::store_be16(b, 10, eth::ipv4_header_checksum(b.first(20)));
  eth::store_be16(b, 20, 5001);
  eth::store_be16(b, 22, port);
  eth::store_be16(b, 24, static_cast<std::uint16_t>(ip_bytes - 20));
  for (std::size_t i = kIpUdpHeaders; i < ip_bytes; ++i) p[i] = static_cast<std::uint8_t>(i);
  return p;
}

constexpr unsigned kRingEntries = 256;

bool ring_init(io_uring& ring, std::string& why) {
  if (const int rc = io_uring_queue_init(kRingEntries, &ring, 0); rc < 0) {
    errno = -rc;
    why = errno_text("io_uring_queue_init");
    return false;
  }
  return true;
}

}  // namespace

bool CeilingWriter::start(int tun_fd, const std::string& from, const std::string& to, std::uint16_t port,
                          const std::vector<std::size_t>& pattern, std::string& why) {
  std::vector<std::vector<std::uint8_t>> packets;
  // Enough distinct buffers that none is rewritten while the kernel may still read it.
  while (packets.size() < kRingEntries) packets.push_back(udp_packet(from, to, port, pattern[packets.size() % pattern.size()]));
  auto ring = std::make_unique<io_uring>();
  if (!ring_init(*ring, why)) return false;
  stop_ = false;
  thread_ = std::thread([this, tun_fd, packets = std::move(packets), ring = std::move(ring)] {
    constexpr unsigned kBatch = 64;
    const std::uint64_t cpu0 = this_thread_cpu_ns();
    unsigned in_flight = 0;
    std::size_t next = 0;
    std::uint64_t done = 0, bytes = 0;
    while (!stop_.load(std::memory_order_relaxed)) {
      unsigned queued = 0;
      while (queued < kBatch && in_flight < kRingEntries) {
        io_uring_sqe* sqe = io_uring_get_sqe(ring.get());
        if (sqe == nullptr) break;
        const std::vector<std::uint8_t>& p = packets[next];
        io_uring_prep_write(sqe, tun_fd, p.data(), static_cast<unsigned>(p.size()), 0);
        next = next + 1 == packets.size() ? 0 : next + 1;
        ++queued;
        ++in_flight;
      }
      io_uring_submit_and_wait(ring.get(), 1);
      io_uring_cqe* cqe = nullptr;
      unsigned head = 0, seen = 0;
      io_uring_for_each_cqe(ring.get(), head, cqe) {
        ++seen;
        if (cqe->res > 0) {
          ++done;
          bytes += static_cast<std::uint64_t>(cqe->res);
        }
      }
      io_uring_cq_advance(ring.get(), seen);
      in_flight -= seen;
      counters_.packets.store(done, std::memory_order_relaxed);
      counters_.ip_bytes.store(bytes, std::memory_order_relaxed);
      counters_.cpu_ns.store(this_thread_cpu_ns() - cpu0, std::memory_order_relaxed);
    }
    while (in_flight > 0) {  // the buffers die with this thread: let the kernel finish first
      io_uring_cqe* cqe = nullptr;
      if (io_uring_wait_cqe(ring.get(), &cqe) != 0) break;
      io_uring_cqe_seen(ring.get(), cqe);
      --in_flight;
    }
    io_uring_queue_exit(ring.get());
  });
  return true;
}

void CeilingWriter::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

bool CeilingReader::start(int tun_fd, std::string& why) {
  auto ring = std::make_unique<io_uring>();
  if (!ring_init(*ring, why)) return false;
  stop_ = false;
  thread_ = std::thread([this, tun_fd, ring = std::move(ring)] {
    constexpr unsigned kReads = 64;
    std::vector<std::array<std::uint8_t, 2048>> bufs(kReads);
    const std::uint64_t cpu0 = this_thread_cpu_ns();
    const auto arm = [&](unsigned i) {
      io_uring_sqe* sqe = io_uring_get_sqe(ring.get());
      io_uring_prep_read(sqe, tun_fd, bufs[i].data(), static_cast<unsigned>(bufs[i].size()), 0);
      io_uring_sqe_set_data64(sqe, i);
    };
    for (unsigned i = 0; i < kReads; ++i) arm(i);
    std::uint64_t done = 0, bytes = 0;
    unsigned cancelled = 0;
    bool stopping = false;
    while (cancelled < kReads) {
      __kernel_timespec tick{0, 100'000'000};  // the stop flag is looked at this often
      io_uring_cqe* first = nullptr;
      io_uring_submit_and_wait_timeout(ring.get(), &first, 1, &tick, nullptr);
      if (!stopping && stop_.load(std::memory_order_relaxed)) {
        stopping = true;  // a read on an idle TUN waits forever: cancel them all
        io_uring_sqe* sqe = io_uring_get_sqe(ring.get());
        io_uring_prep_cancel_fd(sqe, tun_fd, IORING_ASYNC_CANCEL_ALL);
        io_uring_sqe_set_data64(sqe, kReads);
        io_uring_submit(ring.get());
      }
      io_uring_cqe* cqe = nullptr;
      unsigned head = 0, seen = 0;
      std::vector<unsigned> rearm;
      io_uring_for_each_cqe(ring.get(), head, cqe) {
        ++seen;
        const auto i = static_cast<unsigned>(io_uring_cqe_get_data64(cqe));
        if (i >= kReads) continue;  // the cancel's own completion
        if (cqe->res > 0) {
          ++done;
          bytes += static_cast<std::uint64_t>(cqe->res);
        }
        if (stopping)
          ++cancelled;
        else
          rearm.push_back(i);
      }
      io_uring_cq_advance(ring.get(), seen);
      for (unsigned i : rearm) arm(i);
      counters_.packets.store(done, std::memory_order_relaxed);
      counters_.ip_bytes.store(bytes, std::memory_order_relaxed);
      counters_.cpu_ns.store(this_thread_cpu_ns() - cpu0, std::memory_order_relaxed);
    }
    io_uring_queue_exit(ring.get());
  });
  return true;
}

void CeilingReader::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

bool CeilingEcho::start(int tun_fd, std::string&) {
  stop_ = false;
  thread_ = std::thread([this, tun_fd] {
    std::array<std::uint8_t, 2048> p{};
    while (!stop_.load(std::memory_order_relaxed)) {
      pollfd pf{tun_fd, POLLIN, 0};
      if (::poll(&pf, 1, 100) <= 0) continue;
      const ssize_t got = ::read(tun_fd, p.data(), p.size());
      if (got < static_cast<ssize_t>(kIpUdpHeaders) || p[0] != 0x45 || p[9] != 17) continue;
      // Swapping source and destination (addresses and ports) leaves both checksums right: the
      // one's complement sum does not depend on the order of its words.
      std::array<std::uint8_t, 4> a{};
      std::memcpy(a.data(), p.data() + 12, 4);
      std::memcpy(p.data() + 12, p.data() + 16, 4);
      std::memcpy(p.data() + 16, a.data(), 4);
      std::array<std::uint8_t, 2> port{};
      std::memcpy(port.data(), p.data() + 20, 2);
      std::memcpy(p.data() + 20, p.data() + 22, 2);
      std::memcpy(p.data() + 22, port.data(), 2);
      (void)!::write(tun_fd, p.data(), static_cast<std::size_t>(got));
    }
  });
  return true;
}

void CeilingEcho::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

namespace {

// Sends `count` lone datagrams of 64 IP bytes through `socket_fd`; after each, waits (1 s at most)
// for `arrivals` to move and takes `arrived_ns()` - the send time as the sample.
template <class ArrivedNs>
LoneSamples lone_sends(int socket_fd, unsigned count, const std::atomic<std::uint32_t>& arrivals, ArrivedNs arrived_ns) {
  LoneSamples out;
  out.us.reserve(count);
  std::array<std::uint8_t, 64 - kIpUdpHeaders> payload{};
  for (unsigned i = 0; i < count; ++i) {
    const std::uint32_t before = arrivals.load(std::memory_order_acquire);
    std::memcpy(payload.data(), &i, sizeof i);
    const std::int64_t t0 = Clock::now().time_since_epoch().count();
    if (::send(socket_fd, payload.data(), payload.size(), 0) != static_cast<ssize_t>(payload.size())) {
      ++out.lost;
      continue;
    }
    // Polled, not waited on: the sample's end is stamped by the receiving thread, so how soon
    // this thread notices does not enter it (a 1 s bound on a lost packet without a futex timeout).
    const Clock::time_point deadline = Clock::now() + std::chrono::seconds(1);
    bool arrived = false;
    while (!(arrived = arrivals.load(std::memory_order_acquire) != before) && Clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    if (!arrived) {
      ++out.lost;
      continue;
    }
    out.us.push_back(static_cast<double>(arrived_ns() - t0) / 1000.0);
    // Let the stage settle (its read re-armed, the worker back asleep): lone means lone.
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return out;
}

}  // namespace

LoneSamples lone_tx_stage_latency(int tun_fd, int socket_fd, std::chrono::microseconds max_hold, unsigned count,
                                  std::string& why) {
  constexpr unsigned kReads = 64;  // tools/daemon.cpp (without offload)
  auto io = tun::UringPacketIo::create(tun_fd, kReads, why);
  if (!io) return {};
  dp::TxConfig config;
  ntb::NtbOutParams out;
  out.format = ntb::NtbFormat::Ntb16;
  out.ntb_out_max_size = 16384;
  config.out = ntb::sanitize_out_params(out).params;
  config.signature = {ntb::NtbFormat::Ntb16, ntb::DatagramKind::Ncm, 0};
  config.our_mac = eth::MacAddress{{0x02, 0, 0, 0, 0, 2}};
  config.reads_in_flight = kReads;
  config.max_hold = max_hold;
  InstantOut link(config.out_slots, config.out.ntb_out_max_size);
  dp::LinkState link_state;
  dp::TxStage tx(config, *io, link, link_state);
  dp::Worker worker(*io, nullptr, &tx);
  std::thread thread([&worker] { worker.run(); });
  LoneSamples s = lone_sends(socket_fd, count, link.submits(), [&link] { return link.last_submit_ns(); });
  worker.stop();
  thread.join();
  return s;
}

LoneSamples lone_read_latency(int tun_fd, int socket_fd, unsigned count) {
  std::atomic<std::uint32_t> reads{0};
  std::atomic<std::int64_t> read_ns{0};
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    std::array<std::uint8_t, 2048> p{};
    while (!stop.load(std::memory_order_relaxed)) {
      pollfd pf{tun_fd, POLLIN, 0};
      if (::poll(&pf, 1, 100) <= 0) continue;  // the stop flag is looked at this often
      if (::read(tun_fd, p.data(), p.size()) <= 0) continue;
      read_ns.store(Clock::now().time_since_epoch().count(), std::memory_order_relaxed);
      reads.fetch_add(1, std::memory_order_release);
    }
  });
  LoneSamples s = lone_sends(socket_fd, count, reads, [&read_ns] { return read_ns.load(std::memory_order_relaxed); });
  stop = true;
  reader.join();
  return s;
}

std::vector<double> ping_pong(int fd, std::size_t ip_bytes, unsigned count, unsigned& lost) {
  std::vector<double> rtt_us;
  rtt_us.reserve(count);
  lost = 0;
  std::array<std::uint8_t, 1500> out{}, in{};
  const std::size_t payload = ip_bytes - kIpUdpHeaders;
  for (unsigned i = 0; i < count; ++i) {
    while (::recv(fd, in.data(), in.size(), MSG_DONTWAIT) >= 0) {
    }  // a late echo of a lost round must not end this one
    std::memcpy(out.data(), &i, sizeof i);
    const Clock::time_point t0 = Clock::now();
    if (::send(fd, out.data(), payload, 0) != static_cast<ssize_t>(payload)) {
      ++lost;
      continue;
    }
    const Clock::time_point deadline = t0 + std::chrono::seconds(1);
    bool back = false;
    while (!back && Clock::now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, remaining_ms(deadline)) <= 0) continue;
      const ssize_t got = ::recv(fd, in.data(), in.size(), MSG_DONTWAIT);
      unsigned seq = 0;
      if (got >= static_cast<ssize_t>(sizeof seq)) std::memcpy(&seq, in.data(), sizeof seq);
      back = got == static_cast<ssize_t>(payload) && seq == i;
    }
    if (!back) {
      ++lost;
      continue;
    }
    rtt_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  return rtt_us;
}

}  // namespace wwan::bench

// ---- TUN offload ---------------------------------------------------------------------------------

namespace wwan::bench {

bool TcpDownload::listen(std::uint16_t port, std::string& why) {
  listener_ = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const int one = 1;
  ::setsockopt(listener_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  const sockaddr_in any = testsupport::ipv4_address("0.0.0.0", port);
  if (!listener_.valid() || ::bind(listener_.get(), reinterpret_cast<const sockaddr*>(&any), sizeof any) != 0 ||
      ::listen(listener_.get(), 1) != 0) {
    why = errno_text("TCP listener on port " + std::to_string(port));
    return false;
  }
  return true;
}

bool TcpDownload::accept(std::chrono::milliseconds timeout, std::string& why) {
  pollfd p{listener_.get(), POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) {
    why = "the network's SYN never reached the listener";
    return false;
  }
  conn_ = Fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!conn_.valid()) {
    why = errno_text("accept");
    return false;
  }
  int mss = 0;
  socklen_t length = sizeof mss;
  if (::getsockopt(conn_.get(), IPPROTO_TCP, TCP_MAXSEG, &mss, &length) == 0 && mss > 0)
    mss_ = static_cast<std::uint32_t>(mss);
  const timeval limit{0, 200'000};  // the thread looks at stop_ at least this often
  ::setsockopt(conn_.get(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  stop_ = false;
  receive_thread_ = std::thread([this] {
    std::vector<std::uint8_t> buffer(1 << 20);
    while (!stop_.load(std::memory_order_relaxed)) {
      const ssize_t n = ::recv(conn_.get(), buffer.data(), buffer.size(), 0);
      if (n > 0) received_.fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
      if (n == 0) break;
    }
  });
  return true;
}

void TcpDownload::stop() {
  stop_ = true;
  if (receive_thread_.joinable()) receive_thread_.join();
  conn_ = Fd();
  listener_ = Fd();
}

bool TcpUpload::start(const std::string& server, std::uint16_t port, std::string& why) {
  conn_ = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const sockaddr_in to = testsupport::ipv4_address(server, port);
  const timeval limit{0, 200'000};  // connect gives up after it; the thread looks at stop_ at least this often
  if (conn_.valid()) ::setsockopt(conn_.get(), SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
  if (!conn_.valid() || ::connect(conn_.get(), reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0) {
    why = errno_text("TCP connect to the emulated network's receiver " + server + ":" + std::to_string(port));
    return false;
  }
  stop_ = false;
  sent_ = 0;
  send_thread_ = std::thread([this] {
    // The stream from any offset is one slice of this: the pattern's period and one send more.
    std::vector<std::uint8_t> stream(sim::TcpSource::kPatternPeriod + 65536);
    for (std::size_t k = 0; k < stream.size(); ++k) stream[k] = sim::TcpSource::stream_byte(k);
    std::uint64_t sent = 0;
    while (!stop_.load(std::memory_order_relaxed)) {
      const std::size_t at = static_cast<std::size_t>(sent % sim::TcpSource::kPatternPeriod);
      const ssize_t n = ::send(conn_.get(), stream.data() + at, 65536, MSG_NOSIGNAL);
      if (n > 0) sent_.store(sent += static_cast<std::uint64_t>(n), std::memory_order_relaxed);
    }
  });
  return true;
}

void TcpUpload::stop() {
  stop_ = true;
  if (send_thread_.joinable()) send_thread_.join();
  conn_ = Fd();
}

bool TcpThroughReflector::start(const std::string& reflector, std::uint16_t port, std::string& why) {
  if (!server_.listen(port, why)) return false;
  client_ = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const sockaddr_in to = testsupport::ipv4_address(reflector, port);
  if (!client_.valid() || ::connect(client_.get(), reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0) {
    why = errno_text("TCP connect to the reflector " + reflector);
    return false;
  }
  if (!server_.accept(std::chrono::milliseconds(5000), why)) {
    why = "through the reflector: " + why;
    return false;
  }
  const timeval limit{0, 200'000};  // the thread looks at stop_ at least this often
  ::setsockopt(client_.get(), SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
  stop_ = false;
  send_thread_ = std::thread([this] {
    std::vector<std::uint8_t> chunk(256 * 1024, 0x5A);
    while (!stop_.load(std::memory_order_relaxed)) (void)::send(client_.get(), chunk.data(), chunk.size(), MSG_NOSIGNAL);
  });
  return true;
}

void TcpThroughReflector::stop() {
  stop_ = true;
  if (send_thread_.joinable()) send_thread_.join();
  server_.stop();
  client_ = Fd();
}

// The far end of one TCP connection, played through a vnet-hdr TUN (tests/support/offload_tun.hpp,
// as bench/offload_bench.cpp's KernelTcp), the socket drained by another thread.
struct CeilingTcpRx::Peer : testsupport::TcpPeer {
  static constexpr std::uint32_t kMss = 1460;
  static constexpr std::uint32_t kSegments = 44;  // 40 + 44 * 1460 = 64280 bytes < 64 KiB
  bool write(const iovec* iov, int count) { return ::writev(tun, iov, count) >= 0; }
};

bool CeilingTcpRx::start(int vnet_tun_fd, const std::string& local, const std::string& peer, std::uint16_t port,
                         std::string& why) {
  namespace ot = offload::testing;
  auto k = std::make_shared<Peer>();
  std::array<std::uint8_t, 4> l{}, r{};
  ::inet_pton(AF_INET, local.c_str(), l.data());
  ::inet_pton(AF_INET, peer.c_str(), r.data());
  if (const std::string e = k->connect(vnet_tun_fd, l, r, port, 16 << 20, 0); !e.empty()) {
    why = "ceiling TCP: " + e;
    return false;
  }
  const timeval limit{0, 200'000};
  ::setsockopt(k->conn.get(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  peer_ = k;
  stop_ = false;
  counters_.packets = counters_.ip_bytes = counters_.cpu_ns = 0;

  write_thread_ = std::thread([this, k] {
    // The bare super-packet: what GroCoalescer makes of 44 segments, made once; per write only
    // the IPv4 ID (and header checksum) and the sequence number change.
    std::vector<ot::Packet> plain;
    for (std::uint32_t i = 0; i < Peer::kSegments; ++i)
      plain.push_back(ot::tcp_packet(k->flow, {.id = static_cast<std::uint16_t>(i)},
                                     {.seq = i * Peer::kMss, .ack = k->ack_number, .window = 65535},
                                     ot::pattern(Peer::kMss, i * Peer::kMss)));
    offload::GroCoalescer gro({.max_packets = 64});
    gro.reset();
    for (const ot::Packet& q : plain) gro.add(q);
    const auto items = gro.finish();
    if (items.size() != 1) return;
    const auto* h0 = static_cast<const std::uint8_t*>(items[0].iov[0].iov_base);
    std::vector<std::uint8_t> header(h0, h0 + items[0].iov[0].iov_len);
    std::vector<iovec> iov(items[0].iov, items[0].iov + items[0].iov_count);
    iov[0].iov_base = header.data();
    const std::uint32_t batch = Peer::kSegments * Peer::kMss;
    const std::uint64_t cpu0 = this_thread_cpu_ns();
    while (!stop_.load(std::memory_order_relaxed)) {
      k->take_acks(0);
      if (std::uint64_t{k->next - k->acked} + batch > k->window) {
        k->take_acks(20);  // the drain thread opens the window
        continue;
      }
      // virtio_net_hdr 10, IPv4 at 10 (ID at 14, checksum at 20), TCP at 30 (seq at 34).
      const std::uint16_t old_id = offload::load_be16(&header[14]);
      offload::store_be16(&header[14], k->ip_id);
      offload::store_be16(&header[20], offload::csum::update16(offload::load_be16(&header[20]), old_id, k->ip_id));
      k->ip_id = static_cast<std::uint16_t>(k->ip_id + Peer::kSegments);
      offload::store_be32(&header[34], k->next);
      if (!k->write(iov.data(), static_cast<int>(iov.size()))) break;
      k->next += batch;
      counters_.cpu_ns.store(this_thread_cpu_ns() - cpu0, std::memory_order_relaxed);
    }
  });
  drain_thread_ = std::thread([this, k] {
    std::vector<std::uint8_t> sink(1 << 20);
    std::uint64_t bytes = 0;
    while (!stop_.load(std::memory_order_relaxed)) {
      const ssize_t n = ::recv(k->conn.get(), sink.data(), sink.size(), 0);
      if (n <= 0) continue;
      bytes += static_cast<std::uint64_t>(n);
      const std::uint64_t segments = bytes / Peer::kMss;
      counters_.packets.store(segments, std::memory_order_relaxed);
      counters_.ip_bytes.store(bytes + segments * 40, std::memory_order_relaxed);
    }
  });
  return true;
}

bool CeilingTcpTx::start(int vnet_tun_fd, const std::string& local, const std::string& peer, std::uint16_t port,
                         std::string& why) {
  namespace ot = offload::testing;
  // The kernel hands the TUN TSO super-packets only once the reader says it takes them.
  if (::ioctl(vnet_tun_fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) != 0) {
    why = errno_text("TX ceiling: TUNSETOFFLOAD");
    return false;
  }
  auto k = std::make_shared<testsupport::TcpPeer>();
  std::array<std::uint8_t, 4> l{}, r{};
  ::inet_pton(AF_INET, local.c_str(), l.data());
  ::inet_pton(AF_INET, peer.c_str(), r.data());
  if (const std::string e = k->connect(vnet_tun_fd, l, r, port, 1 << 20, 0); !e.empty()) {
    why = "TX ceiling TCP: " + e;
    return false;
  }
  const int sndbuf = 16 << 20;
  ::setsockopt(k->conn.get(), SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf);
  const timeval limit{0, 200'000};  // the sender looks at stop_ at least this often
  ::setsockopt(k->conn.get(), SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
  peer_ = k;
  stop_ = false;
  received_end_ = k->ack_number;
  counters_.packets = counters_.ip_bytes = counters_.cpu_ns = 0;

  send_thread_ = std::thread([this, k] {
    std::vector<std::uint8_t> chunk(256 * 1024, 0x5A);
    while (!stop_.load(std::memory_order_relaxed)) (void)::send(k->conn.get(), chunk.data(), chunk.size(), MSG_NOSIGNAL);
  });
  read_thread_ = std::thread([this, k] {
    std::vector<std::uint8_t> buffer(offload::kVirtioNetHdrSize + 65535);
    std::uint64_t segments = 0, bytes = 0;
    const std::uint64_t cpu0 = this_thread_cpu_ns();
    while (!stop_.load(std::memory_order_relaxed)) {
      const ssize_t n = ::read(k->tun, buffer.data(), buffer.size());
      if (n <= static_cast<ssize_t>(offload::kVirtioNetHdrSize)) {
        pollfd p{k->tun, POLLIN, 0};
        ::poll(&p, 1, 20);
        continue;
      }
      const offload::VirtioNetHdr hdr = offload::decode(buffer.data());
      offload::L4Packet l4;
      const offload::Bytes ip(buffer.data() + offload::kVirtioNetHdrSize, static_cast<std::size_t>(n) - offload::kVirtioNetHdrSize);
      if (offload::parse_l4(ip, l4) != offload::L4Parse::Ok || !l4.tcp() || l4.payload_length == 0) continue;
      const std::uint8_t* h = l4.l4();
      if (offload::load_be16(h + 2) != k->flow.source_port) continue;  // toward the peer only
      const std::uint32_t end = offload::load_be32(h + 4) + l4.payload_length;
      if (static_cast<std::int32_t>(end - received_end_.load(std::memory_order_relaxed)) > 0)
        received_end_.store(end, std::memory_order_release);
      segments += hdr.gso_size > 0 ? (l4.payload_length + hdr.gso_size - 1u) / hdr.gso_size : 1u;
      bytes += static_cast<std::uint64_t>(n) - offload::kVirtioNetHdrSize;
      counters_.packets.store(segments, std::memory_order_relaxed);
      counters_.ip_bytes.store(bytes, std::memory_order_relaxed);
      counters_.cpu_ns.store(this_thread_cpu_ns() - cpu0, std::memory_order_relaxed);
    }
  });
  ack_thread_ = std::thread([this, k] {
    std::uint32_t acked = k->ack_number;
    while (!stop_.load(std::memory_order_relaxed)) {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
      const std::uint32_t end = received_end_.load(std::memory_order_acquire);
      if (end == acked) continue;
      acked = end;
      testsupport::write_plain(k->tun, ot::tcp_packet(k->flow, {.id = k->ip_id++}, {.seq = k->next, .ack = end, .window = 65535}, {}));
    }
  });
  return true;
}

void CeilingTcpTx::stop() {
  stop_ = true;
  if (send_thread_.joinable()) send_thread_.join();
  if (read_thread_.joinable()) read_thread_.join();
  if (ack_thread_.joinable()) ack_thread_.join();
  if (peer_) (void)::ioctl(peer_->tun, TUNSETOFFLOAD, 0);  // the RX ceiling's TUN again
  peer_.reset();
}

void CeilingTcpRx::stop() {
  stop_ = true;
  if (write_thread_.joinable()) write_thread_.join();
  if (drain_thread_.joinable()) drain_thread_.join();
  peer_.reset();
}

}  // namespace wwan::bench
