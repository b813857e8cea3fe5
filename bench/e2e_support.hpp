// What the end-to-end benchmark (bench/e2e_bench.cpp) needs from the machine: a fresh network
// namespace, the daemon as a child process read through its JSON events, the CPU time and memory
// of a process and its threads from /proc, UDP sockets, and the bare io_uring loops on a TUN that
// make the ceiling. Nothing here measures: it moves packets and reads counters; e2e_bench.cpp
// decides what a figure is.
//
// Root only (CLONE_NEWNET, /dev/net/tun, SO_RCVBUFFORCE).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace wwan::bench {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

std::string errno_text(const std::string& what);

// unshare(CLONE_NEWNET); lo up; IPv6 off for interfaces created from now on (no router
// solicitations or MLD in the counts); reverse-path filtering off (the emulated network's stream
// comes from an address this namespace has no route to). "" or why not.
std::string enter_fresh_network_namespace();

// ---- /proc ---------------------------------------------------------------------------------------

// CPU time (user + system, ns) of every thread of `pid`, summed per thread name (comm): the
// daemon's threads are "wwan-dp" (control + USB + the in-process emulated modem), "wwan-dp rx",
// "wwan-dp tx". Read from /proc/PID/task/TID/schedstat (ns resolution); where the kernel has no
// schedstat, from utime + stime in .../stat (clock ticks). Threads that exited are not in it.
std::map<std::string, std::uint64_t> thread_cpu_ns(pid_t pid);
// The calling thread's CPU time, ns (CLOCK_THREAD_CPUTIME_ID).
std::uint64_t this_thread_cpu_ns();
// A "Vm...:" line of /proc/PID/status in KiB (VmRSS, VmHWM); nullopt if absent.
std::optional<std::uint64_t> status_kib(pid_t pid, std::string_view field);

// ---- the daemon as a child ---------------------------------------------------------------------

// `wwan-dp ... --json` as a child process: its stdout events (one JSON object per line), stderr
// kept (tail) for messages. Every wait has a deadline. SIGKILL on destruction if still running.
class Child {
 public:
  Child() = default;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child();

  // fork + exec argv[0] with argv; the child dies with this process (PR_SET_PDEATHSIG).
  bool start(const std::vector<std::string>& argv, std::string& why);
  pid_t pid() const { return pid_; }
  // The next event named `name` within `timeout` (others skipped); nullopt on timeout / exit.
  std::optional<json> wait_event(std::string_view name, std::chrono::milliseconds timeout);
  // The next line of stdout, whatever it is, within `timeout`; false on timeout / end of output.
  bool next_line(std::chrono::milliseconds timeout, std::string& line) { return read_line(Clock::now() + timeout, line); }
  // SIGUSR1 and the stats event that answers it.
  std::optional<json> stats(std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));
  // SIGTERM, then SIGKILL after `grace`; reaps. The wait status, or -1.
  int stop(std::chrono::milliseconds grace);
  // For messages: the command, the last events and the tail of stderr.
  std::string describe() const;

 private:
  bool pump(int timeout_ms);  // one poll over both pipes; false when both are closed
  bool read_line(Clock::time_point deadline, std::string& line);

  pid_t pid_ = -1;
  int out_fd_ = -1, err_fd_ = -1;
  bool out_eof_ = false, err_eof_ = false;
  std::string command_, out_buffer_, err_text_;
  std::vector<std::string> last_events_;
};

// A number at a dotted path of a JSON object ("sim.network.sink_packets"); nullopt if absent.
std::optional<std::uint64_t> number_at(const json& object, std::string_view dotted);

// ---- sockets -------------------------------------------------------------------------------------

// A descriptor closed with its owner.
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

// A UDP socket, bound to `local_port` (0: any), connected to `peer`:`peer_port` if peer is set.
Fd udp_socket(std::uint16_t local_port, const std::optional<std::string>& peer, std::uint16_t peer_port,
              std::string& why);

// Sends `command` to the emulated network's control port through `fd` (connected to it) and
// waits for the answer; "" when it said "ok", else what went wrong.
std::string control_command(int fd, const std::string& command, std::chrono::milliseconds timeout);

// ---- traffic -------------------------------------------------------------------------------------

// Counts what one UDP port receives, from whichever interface: the drain of the RX cases, the
// same socket for wwan-dp and for the ceiling. recvmmsg in batches; counters readable any time.
class Drain {
 public:
  bool start(std::uint16_t port, std::string& why);
  ~Drain();
  struct Snapshot {
    std::uint64_t packets = 0;
    std::uint64_t ip_bytes = 0;  // UDP payload + 28 (IPv4 + UDP headers)
  };
  Snapshot snapshot() const { return {packets_.load(), ip_bytes_.load()}; }
  // Returns once nothing arrived for `quiet` (or after `limit`): the previous case's packets are
  // out of the way.
  void wait_quiet(std::chrono::milliseconds quiet, std::chrono::milliseconds limit) const;

 private:
  Fd fd_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> packets_{0}, ip_bytes_{0};
};

// IP packet sizes of a case: one size, or the simple IMIX (7 x 64, 4 x 576, 1 x 1500).
std::vector<std::size_t> size_pattern(std::optional<std::size_t> ip_bytes);
inline constexpr double kImixMeanIpBytes = (7 * 64 + 4 * 576 + 1500) / 12.0;

// A UDP sender as fast as the kernel takes it (sendmmsg, 64 datagrams a call) to `to`:`port`,
// IP sizes cycling through `pattern`. The same sender for wwan-dp and the ceiling (TX cases).
// With `udp_segments` > 1 every send is one UDP_SEGMENT (GSO) buffer of that many datagrams of
// pattern[0]'s size: through a TUN with offload one USO super-packet per send.
class Sender {
 public:
  bool start(const std::string& to, std::uint16_t port, std::vector<std::size_t> pattern, std::string& why,
             unsigned udp_segments = 1);
  void stop();
  ~Sender() { stop(); }
  std::uint64_t sent() const { return sent_.load(); }

 private:
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> sent_{0};
};

// ---- the ceiling: bare loops on a TUN ------------------------------------------------------------

// The counters of a bare loop: packets and IP bytes moved, and the loop thread's CPU time.
struct LoopCounters {
  std::atomic<std::uint64_t> packets{0}, ip_bytes{0}, cpu_ns{0};
};

// RX ceiling: ready-made IPv4/UDP packets (`from`:5001 -> `to`:`port`, sizes cycling through
// `pattern`) written into the TUN by io_uring, 64 writes per submit and 256 in flight (the
// daemon's RX worker's bounds), until stop().
class CeilingWriter {
 public:
  bool start(int tun_fd, const std::string& from, const std::string& to, std::uint16_t port,
             const std::vector<std::size_t>& pattern, std::string& why);
  void stop();
  ~CeilingWriter() { stop(); }
  const LoopCounters& counters() const { return counters_; }

 private:
  std::thread thread_;
  std::atomic<bool> stop_{false};
  LoopCounters counters_;
};

// TX ceiling: the TUN read by io_uring with 64 reads always outstanding (the daemon's TX worker's
// bound), each completion counted and its read re-armed, until stop().
class CeilingReader {
 public:
  bool start(int tun_fd, std::string& why);
  void stop();
  ~CeilingReader() { stop(); }
  const LoopCounters& counters() const { return counters_; }

 private:
  std::thread thread_;
  std::atomic<bool> stop_{false};
  LoopCounters counters_;
};

// Latency ceiling: a UDP echo in the TUN itself (read, swap addresses and ports, write back with
// plain read()/write(): the least a lone packet can cost through a TUN).
class CeilingEcho {
 public:
  bool start(int tun_fd, std::string& why);
  void stop();
  ~CeilingEcho() { stop(); }

 private:
  std::thread thread_;
  std::atomic<bool> stop_{false};
};

// ---- TUN offload (docs/offload.md) -----------------------------------------------------------------

// A TCP stream through the emulated network's reflector (sim/network.hpp, a hairpin NAT): a
// client connected to `reflector`:`port` sends as fast as the kernel takes it; a server of this
// process listening on `port` (the client reaches it as the reflector's peer address) drains it.
// Every byte crosses the daemon twice: TX (TSO super-packets cut into NTBs) and RX (coalesced
// into GRO super-packets). Each side in its own thread.
class TcpThroughReflector {
 public:
  bool start(const std::string& reflector, std::uint16_t port, std::string& why);
  void stop();
  ~TcpThroughReflector() { stop(); }
  std::uint64_t received_bytes() const { return received_.load(); }
  // Payload bytes of a full segment (the client's TCP_MAXSEG: 1448 with timestamps at MTU 1500).
  std::uint32_t mss() const { return mss_; }

 private:
  Fd client_, server_;
  std::thread send_thread_, receive_thread_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> received_{0};
  std::uint32_t mss_ = 1448;
};

// The RX GSO ceiling (bench/offload_bench.cpp BM_KernelRx mode 1, as a thread): a TUN opened
// with IFF_VNET_HDR carrying `local`/24 (the caller configured it), a TCP socket listening on
// `local` whose peer is this code at `peer`; the writer thread writes ready-made 44-segment
// TCPV4 super-packets (1460-byte segments, the checksum left to the kernel) with one writev each,
// tracking the window from the kernel's ACKs; a second thread drains the socket. counters():
// packets = segments the socket delivered, ip_bytes = their IP bytes, cpu_ns = the writer's CPU.
class CeilingTcpRx {
 public:
  bool start(int vnet_tun_fd, const std::string& local, const std::string& peer, std::uint16_t port, std::string& why);
  void stop();
  ~CeilingTcpRx() { stop(); }
  const LoopCounters& counters() const { return counters_; }

 private:
  struct Peer;
  std::shared_ptr<Peer> peer_;
  std::thread write_thread_, drain_thread_;
  std::atomic<bool> stop_{false};
  LoopCounters counters_;
};

// Round trips of one small UDP datagram (`ip_bytes` of IP) through `fd` (connected to an echo),
// one at a time: `count` samples in µs (lost ones, after 1 s, are left out and counted in `lost`).
std::vector<double> ping_pong(int fd, std::size_t ip_bytes, unsigned count, unsigned& lost);

}  // namespace wwan::bench
