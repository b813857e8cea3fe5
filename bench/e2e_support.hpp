// What the end-to-end benchmark (bench/e2e_bench.cpp) needs from the machine beyond what it shares
// with the integration tests (tests/support/: a fresh network namespace, the daemon as a child
// process read through its JSON events, sockets, the emulated network's control port): the CPU
// time and memory of a process and its threads from /proc, the traffic (drain, sender, TCP
// stream), and the bare io_uring loops on a TUN that make the ceiling. Nothing here measures: it
// moves packets and reads counters; e2e_bench.cpp decides what a figure is.
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

#include "tests/support/network.hpp"
#include "tests/support/process.hpp"

namespace wwan::testsupport {
struct TcpPeer;  // tests/support/offload_tun.hpp
}  // namespace wwan::testsupport

namespace wwan::bench {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// Shared with the integration tests (tests/support/).
using testsupport::ControlPort;
using testsupport::Daemon;
using testsupport::enter_fresh_network_namespace;
using testsupport::errno_text;
using testsupport::Fd;
using testsupport::number_at;
using testsupport::remaining_ms;
using testsupport::udp_socket;

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

// The receiving end of a TCP stream: a listener on `port` (any IPv4 address), then the one
// connection it accepts, drained by a thread; received_bytes() counts what the socket delivered.
// For a download from the emulated network's TCP sender (sim/tcp_source.hpp: listen(), send the
// control port's `tcp-source PORT 0`, accept(); only RX carries data, TX the ACKs) and as the
// server side of TcpThroughReflector.
class TcpDownload {
 public:
  bool listen(std::uint16_t port, std::string& why);
  // After the tcp-source command: accept within `timeout` and start draining.
  bool accept(std::chrono::milliseconds timeout, std::string& why);
  void stop();
  ~TcpDownload() { stop(); }
  std::uint64_t received_bytes() const { return received_.load(); }
  // Payload bytes of a full segment (the connection's TCP_MAXSEG: 1460 without timestamps).
  std::uint32_t mss() const { return mss_; }

 private:
  Fd listener_, conn_;
  std::thread receive_thread_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> received_{0};
  std::uint32_t mss_ = 1460;
};

// An upload to the emulated network's TCP receiver (sim/tcp_sink.hpp, `server`:9): a client that
// sends TcpSource::stream_byte() as fast as the kernel takes it (so the receiver's
// corrupt_segments stays 0), from a thread. Only TX carries data, RX the ACKs: the mirror of a
// download.
class TcpUpload {
 public:
  bool start(const std::string& server, std::uint16_t port, std::string& why);
  void stop();
  ~TcpUpload() { stop(); }
  std::uint64_t sent_bytes() const { return sent_.load(); }

 private:
  Fd conn_;
  std::thread send_thread_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> sent_{0};
};

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
  std::uint64_t received_bytes() const { return server_.received_bytes(); }
  // Payload bytes of a full segment (TCP_MAXSEG: 1448 with timestamps at MTU 1500).
  std::uint32_t mss() const { return server_.mss(); }

 private:
  TcpDownload server_;  // the listening side: accepts the reflected connection and drains it
  Fd client_;
  std::thread send_thread_;
  std::atomic<bool> stop_{false};
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

// The TX GSO ceiling, the mirror of CeilingTcpRx: a connected TCP socket of this host (the
// `local` end) sends as fast as the kernel takes it to a peer played through the same vnet-hdr
// TUN, with TSO granted on it (TUNSETOFFLOAD). One thread reads the TSO super-packets from the TUN
// and counts their segments (what the daemon's TX worker reads, without cutting them into NTBs);
// another writes the peer's cumulative ACKs every 50 µs, as the daemon's RX worker would (so the
// kernel's ACK processing is not on the reader). counters(): segments read, the reader's CPU.
class CeilingTcpTx {
 public:
  bool start(int vnet_tun_fd, const std::string& local, const std::string& peer, std::uint16_t port, std::string& why);
  void stop();
  ~CeilingTcpTx() { stop(); }
  const LoopCounters& counters() const { return counters_; }

 private:
  std::shared_ptr<testsupport::TcpPeer> peer_;
  std::thread send_thread_, read_thread_, ack_thread_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint32_t> received_end_{0};  // the peer's next expected sequence number
  LoopCounters counters_;
};

// ---- what TX aggregation adds to a lone packet ------------------------------------------------------

// One-way samples (µs) of lone packets, and how many never arrived (1 s each).
struct LoneSamples {
  std::vector<double> us;
  unsigned lost = 0;
};

// The daemon's TX stage on a real TUN: datapath TxStage in a datapath Worker thread on an io_uring
// UringPacketIo reading `tun_fd` (opened blocking, as the daemon does), with the daemon's TX
// configuration (64 reads in flight, 8 OUT slots) but `max_hold`, its NTBs (NTB16, 16 KiB, NDP in
// front) submitted to an OUT link that completes at once. One UDP datagram at a time is sent
// through `socket_fd` (connected to an address routed through that TUN); a sample is the time
// from just before send() to the submit of the NTB that carries it. Empty `why` or what failed.
LoneSamples lone_tx_stage_latency(int tun_fd, int socket_fd, std::chrono::microseconds max_hold, unsigned count,
                                  std::string& why);
// Its ceiling: the same sends, read from the same TUN by a bare blocking read() loop; a sample
// ends when read() returns.
LoneSamples lone_read_latency(int tun_fd, int socket_fd, unsigned count);

// Round trips of one small UDP datagram (`ip_bytes` of IP) through `fd` (connected to an echo),
// one at a time: `count` samples in µs (lost ones, after 1 s, are left out and counted in `lost`).
std::vector<double> ping_pong(int fd, std::size_t ip_bytes, unsigned count, unsigned& lost);

}  // namespace wwan::bench
