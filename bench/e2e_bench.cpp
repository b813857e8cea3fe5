// End-to-end benchmark: the real daemon (`wwan-dp --sim PROFILE --tun NAME --json`, the in-process
// emulated modem) in a fresh network namespace, each figure next to its ceiling measured in the
// same run, in the same namespace, with the same socket (docs/benchmarks.md says how to read it).
//
//   RX  the emulated network's source (control port: `source 0 PAYLOAD 0 PORT`, as fast as the
//       host takes them) -> emulated modem -> NTBs -> wwan-dp -> TUN -> one UDP socket that drains.
//       Ceiling: a bare io_uring loop writing ready-made packets into a second TUN, drained by the
//       same socket.
//   TX  one UDP sender as fast as the kernel takes it -> TUN -> wwan-dp -> NTBs -> the emulated
//       network's discard sink (port 9, counted). Ceiling: the same sender into the second TUN,
//       read by a bare io_uring loop.
//   latency  one UDP datagram at a time to the emulated network's echo (port 7) and back; ceiling:
//       a bare echo in the second TUN. The difference is what wwan-dp and the emulated modem add.
//   TX aggregation  what the TX stage's aggregation adds to a lone packet, apart from the rest of
//       the round trip: the daemon's TX stage (TxStage + Worker on io_uring, its TX configuration)
//       reading a third TUN, one datagram at a time, once per row of kTxHoldCases (max_hold as
//       the daemon configures it, and 0); one way, send() -> NTB submitted. Ceiling: a bare
//       read() of the same TUN. "by aggregation" = a row's p50 - the no-hold row's p50.
//   rss  VmRSS of the daemon sampled every second through a flood in both directions.
//   offload (TUN offload, docs/offload.md; `--offload on`, the e3372-64k variant whatever
//       --variants says; --no-offload skips them):
//     rx tcp  a TCP stream through the emulated network's reflector (client -> TUN -> wwan-dp TX
//             -> modem -> reflector -> modem -> wwan-dp RX -> TUN -> server socket): data
//             segments into the server socket per second, and per CPU-second of the RX worker
//             ("per core"). Ceiling: 44-segment TCPV4 super-packets written with writev into a
//             TUN with IFF_VNET_HDR at a connected TCP socket (the GSO ceiling), per second and
//             per CPU-second of the writing thread.
//     rx download  a TCP download from the emulated network's own sender (sim/tcp_source.hpp,
//             control port `tcp-source`) -> modem -> wwan-dp RX -> TUN -> a socket: data only on
//             RX, ACKs only on TX, the ceiling's shape. The issue-11 RX figure. Same ceiling,
//             measured --rounds times (3) interleaved with the download; the median round counts.
//     tx tcp  the same stream: packets into NTBs per CPU-second of the TX worker.
//     tx upload  a TCP upload to the emulated network's receiver (sim/tcp_sink.hpp, port 9):
//             data only on TX (TSO super-packets cut into NTBs), ACKs only on RX, the mirror of
//             rx download. Data segments into NTBs per second and per TX-worker CPU-second.
//             Ceiling: a bare reader of a TCP upload's TSO super-packets from a vnet-hdr TUN
//             (its ACKs written by another thread), segments per second and per reader CPU-second.
//     tx uso  a UDP_SEGMENT sender (44 x 1472 B per send) to the discard sink: one USO
//             super-packet per read, segmented into NTBs; packets/s and per TX-worker CPU-second.
//
// Cases: IP sizes 64, 576, 1500 and IMIX (7 x 64, 4 x 576, 1 x 1500) in both directions, for
// NTB16 / NTB32 with the NDP in front / at the end (sim profile variants, sim/modem.hpp). CPU per
// packet is the daemon's CPU time (all threads, and per thread: "wwan-dp" = control + USB thread,
// which also runs the emulated modem; "wwan-dp rx"; "wwan-dp tx") over the packets it moved.
//
// Output: a table on stdout; --out DIR also writes DIR/e2e.txt, DIR/e2e.json (one array, one
// object per case, schema in docs/benchmarks.md) and DIR/e2e.svg (throughput against size);
// --json prints the JSON array on stdout instead of the table. Root only.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>

#include "bench/e2e_support.hpp"
#include "datapath/tx_path.hpp"
#include "sim/network.hpp"
#include "sim/tcp_sink.hpp"
#include "tun/tun_device.hpp"

namespace wwan::bench {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

const std::string kTun = "e2e-wwan0";
const std::string kCeilingTun = "e2e-ceil0";
const std::string kHost = "10.64.64.2";     // sim::NetworkConfig's defaults
const std::string kGateway = "10.64.64.1";
const std::string kServer = "198.51.100.7";
const std::string kCeilingLocal = "10.99.0.2";  // the ceiling TUN's address
const std::string kCeilingPeer = "10.99.0.1";   // "the other side" of the ceiling TUN
const std::string kGsoCeilingTun = "e2e-gso0";    // the RX GSO ceiling's TUN (IFF_VNET_HDR)
const std::string kGsoCeilingLocal = "10.98.0.1";
const std::string kGsoCeilingPeer = "10.98.0.2";
constexpr std::uint16_t kTcpPort = 5202;
constexpr std::uint16_t kDrainPort = 5201;
constexpr std::size_t kLatencyIpBytes = 64;

struct Options {
  bool quick = false;
  double seconds = 3.0;        // each measured window
  double warmup_seconds = 0.3;
  unsigned offload_rounds = 3;  // rx download: ceiling/daemon window pairs (--rounds N)
  std::vector<std::string> offload_cases;  // --offload-cases download,tcp,upload,uso (empty: all)
  double flood_seconds = 60.0;
  unsigned pings = 2000;
  std::string wwan_dp;
  std::string usbfs_bench;     // empty: the usbfs case is not run
  std::string out_dir;
  bool json_stdout = false;
  std::vector<std::string> only_variants;
  bool offload = true;         // the TUN offload cases (--no-offload skips them)
  bool offload_only = false;   // --offload-only: just those (no variants, TX hold, usbfs)
};

// One daemon configuration: NTB format and NDP placement (IN NTBs from the emulated modem and
// OUT NTBs from wwan-dp). generic-ncm: NDP in front both ways (the daemon's default; f_ncm's
// 16 KiB). The "end" rows use the E3372 model, whose quirk row makes wwan-dp put the OUT NDP at
// the end, with its IN NDP moved to the end too and its NTB sizes cut to the same 16 KiB.
struct Variant {
  std::string label;
  std::string ntb;  // "ntb16" / "ntb32"
  std::string ndp;  // "front" / "end"
  std::string profile;
  bool quick = false;  // also in --quick
};

const std::vector<Variant> kVariants = {
    {"ntb16-front", "ntb16", "front", "generic-ncm+ntb16", true},
    {"ntb32-front", "ntb32", "front", "generic-ncm+ntb32", false},
    {"ntb16-end", "ntb16", "end", "huawei-e3372+ntb16+in-ndp-end+ntb-max-16384", false},
    {"ntb32-end", "ntb32", "end", "huawei-e3372+ntb32+in-ndp-end+ntb-max-16384", true},
    // The E3372 model as it is: NTB32, 128 KiB IN (64 KiB after wwan-dp's clamp) / 64 KiB OUT
    // blocks, OUT NDP at the end, IN NDP in front. Shows what larger blocks buy.
    {"e3372-64k", "ntb32", "out-end/in-front", "huawei-e3372", false},
    // RNDIS (the FM350-GL, docs/rndis.md): REMOTE_NDIS_PACKET_MSG transfers of 16 KiB both ways,
    // 8 messages per OUT transfer at 8-byte alignment (the emulated INITIALIZE_CMPLT), 16 per IN.
    {"rndis-fm350", "rndis", "-", "fm350-rndis", true},
};

std::string size_text(std::optional<std::size_t> s) { return s ? std::to_string(*s) : "imix"; }

struct CaseResult {
  std::string direction;  // "rx" / "tx"
  std::optional<std::size_t> size;  // nullopt = IMIX
  std::string path = "in-process";
  std::string variant, ntb, ndp, profile;
  double seconds = 0;
  double pps = 0, gbps = 0, cpu_ns_per_packet = 0;
  std::map<std::string, double> cpu_ns_per_packet_by_thread;
  double moved_pps = 0;    // what wwan-dp moved (RX: written to the TUN; TX: into NTBs = sink)
  double offered_pps = 0;  // TX: what the sender got into the kernel (the TUN drops what no one reads in time)
  double ceiling_pps = 0, ceiling_gbps = 0, ceiling_cpu_ns_per_packet = 0;
  double ceiling_offered_pps = 0;  // TX: the sender's rate during the ceiling
  std::uint64_t peak_rss_kib = 0;
  std::string note;
};

struct LatencyResult {
  std::string variant, ntb, ndp, profile;
  double p50_us = 0, p99_us = 0, ceiling_p50_us = 0, ceiling_p99_us = 0;
  unsigned samples = 0, lost = 0;
};

// One offload case: wall-clock rate, and the rate per CPU-second of the thread doing the work
// ("per core": the daemon's RX or TX worker; the ceiling's writer), which is what a one-core
// router would get.
struct OffloadResult {
  std::string direction, kind;  // "rx"/"tx", "tcp"/"uso"
  std::string variant, profile;
  double seconds = 0;
  double pps = 0, gbps = 0;      // delivered (rx tcp: data segments into the socket; tx: into NTBs / at the sink)
  std::string worker;            // the thread "per core" is measured on
  double per_core_pps = 0;
  double ceiling_pps = 0, ceiling_per_core_pps = 0;
  std::uint64_t super_packets = 0, segments = 0;  // rx.gro / tx.gso over the window
  std::string note;
  // rx download: every round's per-core figure and its ceiling's. The fields above are the
  // round with the median per-core ratio (a ceiling window and a daemon window per round).
  std::vector<std::pair<double, double>> rounds;
};

// What TX aggregation adds to a lone packet: the daemon's TX stage (TxStage in a Worker on
// io_uring) reading a TUN of its own, one datagram at a time, with max_hold as the daemon
// configures it and with the hold off. Samples are one way: send() -> NTB submitted.
struct TxHoldResult {
  std::string label;  // "configured" / "no hold" / "ceiling"
  double max_hold_us = 0;
  double p50_us = 0, p99_us = 0;
  unsigned samples = 0, lost = 0;
};

// The rows of the TX-aggregation measurement (bench/e2e_support.hpp lone_tx_stage_latency): one
// per max_hold; the first is the daemon's own (TxConfig's default, which tools/daemon.cpp keeps).
struct TxHoldCase {
  std::string label;
  std::chrono::microseconds max_hold;
};
const std::vector<TxHoldCase> kTxHoldCases = {
    {"configured", wwan::dp::TxConfig{}.max_hold},
    {"no hold", std::chrono::microseconds(0)},
};

struct RssResult {
  std::string variant;
  double seconds = 0;
  std::uint64_t first_kib = 0, min_kib = 0, max_kib = 0, last_kib = 0, hwm_kib = 0;
  unsigned samples = 0;
};

void sleep_for(double seconds) { ::usleep(static_cast<useconds_t>(seconds * 1e6)); }
std::string fixed(double v, int digits);

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(std::llround(p * static_cast<double>(v.size() - 1)));
  return v[std::min(i, v.size() - 1)];
}

[[noreturn]] void fail(const std::string& why) {
  std::cerr << "e2e_bench: " << why << '\n';
  std::exit(1);
}

// ---- one daemon configuration ----------------------------------------------------------------------

class Bench {
 public:
  Bench(const Options& o, int ceiling_fd, Drain& drain) : o_(o), ceiling_fd_(ceiling_fd), drain_(drain) {}

  // Starts the daemon with `profile`; false (why set) if it did not come up.
  bool start_daemon(const std::string& profile, std::string& why, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv = {o_.wwan_dp, "--sim", profile, "--tun", kTun, "--json"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    // A plain NCM function has no session to dial: its address is given (the integration suite does the same).
    if (profile.rfind("generic-ncm", 0) == 0) argv.insert(argv.end(), {"--static-ipv4", kHost + "/30," + kGateway});
    daemon_ = std::make_unique<Daemon>();
    if (!daemon_->start(argv[0], {argv.begin() + 1, argv.end()})) {
      why = "cannot start the daemon" + daemon_->describe();
      return false;
    }
    if (!daemon_->wait_for("connected", 30s)) {
      why = "the daemon did not connect within 30 s" + daemon_->describe();
      return false;
    }
    control_ = std::make_unique<ControlPort>();
    if (!control_->open("", kGateway, why)) return false;
    // The E3372 model ARPs for the host before it forwards anything; the first answer comes
    // back once that is done.
    for (int i = 0; i < 50; ++i)
      if ((why = control("stop-source", 200ms)).empty()) return true;
    why += daemon_->describe();
    return false;
  }

  void stop_daemon() {
    if (daemon_) daemon_->stop(3000ms);
    control_.reset();
    daemon_.reset();
  }

  CaseResult rx(const Variant& v, std::optional<std::size_t> size) {
    CaseResult r = base("rx", v, size);
    const std::vector<std::size_t> pattern = size_pattern(size);
    {  // the ceiling first
      CeilingWriter w;
      std::string why;
      if (!w.start(ceiling_fd_, kServer, kCeilingLocal, kDrainPort, pattern, why)) fail(why);
      sleep_for(o_.warmup_seconds);
      const auto d0 = drain_.snapshot();
      const std::uint64_t p0 = w.counters().packets, c0 = w.counters().cpu_ns;
      const Clock::time_point t0 = Clock::now();
      sleep_for(o_.seconds);
      const auto d1 = drain_.snapshot();
      const std::uint64_t p1 = w.counters().packets, c1 = w.counters().cpu_ns;
      const double dt = seconds_since(t0);
      w.stop();
      r.ceiling_pps = static_cast<double>(d1.packets - d0.packets) / dt;
      r.ceiling_gbps = static_cast<double>(d1.ip_bytes - d0.ip_bytes) * 8 / dt / 1e9;
      r.ceiling_cpu_ns_per_packet = p1 > p0 ? static_cast<double>(c1 - c0) / static_cast<double>(p1 - p0) : 0;
      drain_.wait_quiet(150ms, 5000ms);
    }
    // IMIX: the daemon runs with the +imix variant (the modem cuts the 1500-byte stream to the mix).
    const std::size_t payload = (size ? *size : 1500) - 28;
    const std::string start = "source 0 " + std::to_string(payload) + " 0 " + std::to_string(kDrainPort);
    if (const std::string e = control(start, 3000ms); !e.empty()) fail(e + daemon_->describe());
    sleep_for(o_.warmup_seconds);
    const Edge e0 = edge();
    sleep_for(o_.seconds);
    const Edge e1 = edge();
    if (const std::string e = control("stop-source", 5000ms); !e.empty())
      r.note = "stop-source: " + e;
    drain_.wait_quiet(150ms, 5000ms);
    const double dt = e1.seconds_after(e0);
    r.pps = static_cast<double>(e1.drain.packets - e0.drain.packets) / dt;
    r.gbps = static_cast<double>(e1.drain.ip_bytes - e0.drain.ip_bytes) * 8 / dt / 1e9;
    const std::uint64_t moved = e1.counter("rx.packets") - e0.counter("rx.packets");
    finish(r, e0, e1, moved, dt);
    return r;
  }

  CaseResult tx(const Variant& v, std::optional<std::size_t> size) {
    CaseResult r = base("tx", v, size);
    const std::vector<std::size_t> pattern = size_pattern(size);
    std::string why;
    {
      CeilingReader reader;
      if (!reader.start(ceiling_fd_, why)) fail(why);
      Sender s;
      if (!s.start(kCeilingPeer, sim::kUdpDiscardPort, pattern, why)) fail(why);
      sleep_for(o_.warmup_seconds);
      const std::uint64_t p0 = reader.counters().packets, b0 = reader.counters().ip_bytes, c0 = reader.counters().cpu_ns;
      const std::uint64_t sent0 = s.sent();
      const Clock::time_point t0 = Clock::now();
      sleep_for(o_.seconds);
      const std::uint64_t p1 = reader.counters().packets, b1 = reader.counters().ip_bytes, c1 = reader.counters().cpu_ns;
      const std::uint64_t sent1 = s.sent();
      const double dt = seconds_since(t0);
      s.stop();
      reader.stop();
      r.ceiling_pps = static_cast<double>(p1 - p0) / dt;
      r.ceiling_gbps = static_cast<double>(b1 - b0) * 8 / dt / 1e9;
      r.ceiling_cpu_ns_per_packet = p1 > p0 ? static_cast<double>(c1 - c0) / static_cast<double>(p1 - p0) : 0;
      r.ceiling_offered_pps = static_cast<double>(sent1 - sent0) / dt;
    }
    Sender s;
    if (!s.start(kGateway, sim::kUdpDiscardPort, pattern, why)) fail(why);
    sleep_for(o_.warmup_seconds);
    const Edge e0 = edge();
    const std::uint64_t sent0 = s.sent();
    sleep_for(o_.seconds);
    const Edge e1 = edge();
    const std::uint64_t sent1 = s.sent();
    s.stop();
    sleep_for(0.2);  // what the TUN still holds drains into the sink
    const double dt = e1.seconds_after(e0);
    const std::uint64_t sunk = e1.counter("sim.network.sink_packets") - e0.counter("sim.network.sink_packets");
    r.pps = static_cast<double>(sunk) / dt;
    r.offered_pps = static_cast<double>(sent1 - sent0) / dt;
    r.gbps = static_cast<double>(e1.counter("sim.network.sink_bytes") - e0.counter("sim.network.sink_bytes")) * 8 / dt / 1e9;
    finish(r, e0, e1, sunk, dt);
    return r;
  }

  LatencyResult latency(const Variant& v) {
    LatencyResult r{v.label, v.ntb, v.ndp, v.profile};
    std::string why;
    unsigned lost = 0;
    {
      CeilingEcho echo;
      if (!echo.start(ceiling_fd_, why)) fail(why);
      Fd fd = udp_socket("", 0, kCeilingPeer, sim::kUdpEchoPort, why);
      if (!fd.valid()) fail(why);
      const std::vector<double> rtt = ping_pong(fd.get(), kLatencyIpBytes, o_.pings, lost);
      r.ceiling_p50_us = percentile(rtt, 0.5);
      r.ceiling_p99_us = percentile(rtt, 0.99);
    }
    Fd fd = udp_socket("", 0, kGateway, sim::kUdpEchoPort, why);
    if (!fd.valid()) fail(why);
    const std::vector<double> rtt = ping_pong(fd.get(), kLatencyIpBytes, o_.pings, lost);
    r.p50_us = percentile(rtt, 0.5);
    r.p99_us = percentile(rtt, 0.99);
    r.samples = static_cast<unsigned>(rtt.size());
    r.lost = lost;
    return r;
  }

  // Offload: TCP both ways through the reflector (needs the daemon started with --offload on and
  // --default-route): the RX case against the GSO ceiling, and the TX case from the same window.
  // A GSO ceiling (CeilingTcpRx for the RX cases, CeilingTcpTx for tx upload), measured right
  // before the case it belongs to: into `r`. Each call its own `port` (a listener's port is not
  // free again at once).
  template <typename Ceiling>
  void gso_ceiling(int gso_ceiling_fd, std::uint16_t port, OffloadResult& r) {
    std::string why;
    Ceiling c;
    if (!c.start(gso_ceiling_fd, kGsoCeilingLocal, kGsoCeilingPeer, port, why)) fail(why);
    sleep_for(o_.warmup_seconds);
    const std::uint64_t p0 = c.counters().packets, c0 = c.counters().cpu_ns;
    const Clock::time_point t0 = Clock::now();
    sleep_for(o_.seconds);
    const std::uint64_t p1 = c.counters().packets, c1 = c.counters().cpu_ns;
    const double dt = seconds_since(t0);
    c.stop();
    r.ceiling_pps = static_cast<double>(p1 - p0) / dt;
    r.ceiling_per_core_pps = c1 > c0 ? static_cast<double>(p1 - p0) * 1e9 / static_cast<double>(c1 - c0) : 0;
  }

  // Offload: a download from the emulated network's TCP sender (control port `tcp-source`): data
  // only on RX, ACKs only on TX, the shape of the GSO ceiling (whose writer plays the peer of a
  // connected socket), against that ceiling measured right before.
  // The ceiling's writer is a thread that never waits, the RX worker one that sleeps whenever
  // the modem has nothing for it, on the same two vCPUs as the emulated modem and the sockets:
  // one window of each swings by ±30 %. So the pair is measured `offload_rounds` times,
  // interleaved, and the round with the median ratio is the figure; all rounds are kept.
  OffloadResult offload_download(const Variant& v, int gso_ceiling_fd) {
    std::vector<OffloadResult> rounds;
    for (unsigned i = 0; i < o_.offload_rounds; ++i)
      rounds.push_back(offload_download_round(v, gso_ceiling_fd, static_cast<std::uint16_t>(i)));
    const auto ratio = [](const OffloadResult& r) {
      return r.ceiling_per_core_pps > 0 ? r.per_core_pps / r.ceiling_per_core_pps : 0;
    };
    std::vector<std::size_t> order(rounds.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return ratio(rounds[a]) < ratio(rounds[b]); });
    OffloadResult median = rounds[order[order.size() / 2]];
    for (const OffloadResult& r : rounds) median.rounds.emplace_back(r.per_core_pps, r.ceiling_per_core_pps);
    if (rounds.size() > 1) {
      std::ostringstream n;
      n << "; the median of " << rounds.size() << " rounds, per core % " << fixed(100 * ratio(rounds[order.front()]), 1)
        << "-" << fixed(100 * ratio(rounds[order.back()]), 1);
      median.note += n.str();
    }
    return median;
  }

  // One round: the ceiling, then the download, each on ports of its own (a listener's port is
  // not free again at once).
  OffloadResult offload_download_round(const Variant& v, int gso_ceiling_fd, std::uint16_t round) {
    OffloadResult rx = offload_base("rx", "download", v, "wwan-dp rx");
    gso_ceiling<CeilingTcpRx>(gso_ceiling_fd, static_cast<std::uint16_t>(kTcpPort + 10 + round), rx);
    std::string why;
    TcpDownload d;
    const auto port = static_cast<std::uint16_t>(kTcpPort + 30 + round);
    if (!d.listen(port, why)) fail(why);
    if (const std::string e = control("tcp-source " + std::to_string(port) + " 0", 3000ms); !e.empty()) fail(e);
    if (!d.accept(5000ms, why)) fail(why + daemon_->describe());
    sleep_for(o_.warmup_seconds);
    const Edge e0 = edge();
    const std::uint64_t b0 = d.received_bytes();
    sleep_for(o_.seconds);
    const Edge e1 = edge();
    const std::uint64_t b1 = d.received_bytes();
    (void)control("stop-source", 3000ms);
    d.stop();
    rx_tcp_window(e0, e1, b1 - b0, d.mss(), rx);
    const std::uint64_t losses = e1.counter("sim.network.tcp_source.fast_retransmits") -
                                 e0.counter("sim.network.tcp_source.fast_retransmits") +
                                 e1.counter("sim.network.tcp_source.timeouts") - e0.counter("sim.network.tcp_source.timeouts");
    rx.note = "per core: data segments into the socket per RX-worker CPU-second; sender restarts " + std::to_string(losses);
    return rx;
  }

  std::pair<OffloadResult, OffloadResult> offload_tcp(const Variant& v, int gso_ceiling_fd) {
    OffloadResult rx = offload_base("rx", "tcp", v, "wwan-dp rx"), tx = offload_base("tx", "tcp", v, "wwan-dp tx");
    std::string why;
    gso_ceiling<CeilingTcpRx>(gso_ceiling_fd, kTcpPort + 1, rx);
    TcpThroughReflector t;
    if (!t.start(dotted(sim::NetworkConfig{}.reflector_ipv4), kTcpPort, why)) fail(why + daemon_->describe());
    sleep_for(o_.warmup_seconds);
    const Edge e0 = edge();
    const std::uint64_t b0 = t.received_bytes();
    sleep_for(o_.seconds);
    const Edge e1 = edge();
    const std::uint64_t b1 = t.received_bytes();
    t.stop();
    const double dt = e1.seconds_after(e0);
    rx_tcp_window(e0, e1, b1 - b0, t.mss(), rx);
    rx.note = "per core: data segments into the socket per RX-worker CPU-second (its ACK writes included)";
    const double tx_packets = static_cast<double>(e1.counter("tx.packets") - e0.counter("tx.packets"));
    tx.pps = tx_packets / dt;
    tx.gbps = rx.gbps;
    tx.per_core_pps = per_core(e0, e1, "wwan-dp tx", tx_packets);
    tx.super_packets = e1.counter("tx.gso.super_packets") - e0.counter("tx.gso.super_packets");
    tx.segments = e1.counter("tx.gso.segments") - e0.counter("tx.gso.segments");
    tx.note = "packets into NTBs (data segments and the server's ACKs)";
    return {rx, tx};
  }

  // Offload: an upload to the emulated network's TCP receiver (port 9, sim/tcp_sink.hpp): the
  // kernel's TSO super-packets read from the TUN and cut into NTBs, only ACKs on RX. The mirror
  // of the download, and the TX TCP figure: data segments into NTBs per TX-worker CPU-second.
  OffloadResult offload_upload(const Variant& v, int gso_ceiling_fd) {
    OffloadResult r = offload_base("tx", "upload", v, "wwan-dp tx");
    std::string why;
    gso_ceiling<CeilingTcpTx>(gso_ceiling_fd, kTcpPort + 5, r);  // the same shape: a bare reader of the TUN
    TcpUpload u;
    if (!u.start(dotted(sim::NetworkConfig{}.server_ipv4), sim::kTcpDiscardPort, why)) fail(why + daemon_->describe());
    sleep_for(o_.warmup_seconds);
    const Edge e0 = edge();
    sleep_for(o_.seconds);
    const Edge e1 = edge();
    u.stop();
    const double dt = e1.seconds_after(e0);
    const double packets = static_cast<double>(e1.counter("tx.packets") - e0.counter("tx.packets"));
    const std::uint64_t bytes = e1.counter("sim.network.tcp_sink.bytes") - e0.counter("sim.network.tcp_sink.bytes");
    r.pps = packets / dt;
    r.gbps = static_cast<double>(bytes) * 8 / dt / 1e9;
    r.per_core_pps = per_core(e0, e1, "wwan-dp tx", packets);
    r.super_packets = e1.counter("tx.gso.super_packets") - e0.counter("tx.gso.super_packets");
    r.segments = e1.counter("tx.gso.segments") - e0.counter("tx.gso.segments");
    r.note = "data segments into NTBs; at the receiver: " +
             std::to_string(e1.counter("sim.network.tcp_sink.corrupt_segments") - e0.counter("sim.network.tcp_sink.corrupt_segments")) +
             " corrupt, " +
             std::to_string(e1.counter("sim.network.tcp_sink.out_of_order") - e0.counter("sim.network.tcp_sink.out_of_order")) +
             " out of order";
    return r;
  }

  // Offload: UDP_SEGMENT sends of 44 x 1472-byte datagrams to the discard sink.
  OffloadResult offload_uso(const Variant& v) {
    OffloadResult r = offload_base("tx", "uso", v, "wwan-dp tx");
    std::string why;
    Sender s;
    if (!s.start(kGateway, sim::kUdpDiscardPort, size_pattern(1500), why, 44)) fail(why);
    sleep_for(o_.warmup_seconds);
    const Edge e0 = edge();
    sleep_for(o_.seconds);
    const Edge e1 = edge();
    s.stop();
    sleep_for(0.2);
    const double dt = e1.seconds_after(e0);
    const double sunk = static_cast<double>(e1.counter("sim.network.sink_packets") - e0.counter("sim.network.sink_packets"));
    r.pps = sunk / dt;
    r.gbps = static_cast<double>(e1.counter("sim.network.sink_bytes") - e0.counter("sim.network.sink_bytes")) * 8 / dt / 1e9;
    r.per_core_pps = per_core(e0, e1, "wwan-dp tx", static_cast<double>(e1.counter("tx.packets") - e0.counter("tx.packets")));
    r.super_packets = e1.counter("tx.gso.super_packets") - e0.counter("tx.gso.super_packets");
    r.segments = e1.counter("tx.gso.segments") - e0.counter("tx.gso.segments");
    if (r.super_packets == 0) r.note = "no USO super-packet was read: the kernel did not grant USO";
    return r;
  }

  // A flood in both directions for `seconds`, VmRSS sampled every second (from the second one on:
  // the first second is the ramp-up of buffers that are then reused).
  RssResult rss(const Variant& v, double seconds) {
    RssResult r;
    r.variant = v.label;
    r.seconds = seconds;
    std::string why;
    if (const std::string e = control("source 0 1472 0 " + std::to_string(kDrainPort), 3000ms);
        !e.empty())
      fail(e);
    Sender s;
    if (!s.start(kGateway, sim::kUdpDiscardPort, size_pattern(1500), why)) fail(why);
    sleep_for(1.0);
    const Clock::time_point t0 = Clock::now();
    for (unsigned i = 0;; ++i) {
      const auto kib = status_kib(daemon_->pid(), "VmRSS");
      if (kib) {
        if (r.samples == 0) r.first_kib = r.min_kib = r.max_kib = *kib;
        r.min_kib = std::min(r.min_kib, *kib);
        r.max_kib = std::max(r.max_kib, *kib);
        r.last_kib = *kib;
        ++r.samples;
      }
      if (seconds_since(t0) >= seconds) break;
      const double next = std::min(seconds, static_cast<double>(i + 1));
      sleep_for(std::max(0.0, next - seconds_since(t0)));
    }
    s.stop();
    (void)control("stop-source", 5000ms);
    drain_.wait_quiet(150ms, 5000ms);
    r.hwm_kib = status_kib(daemon_->pid(), "VmHWM").value_or(0);
    return r;
  }

 private:
  // One edge of a measured window: the daemon's counters (stats event), its CPU per thread and
  // the drain, read back to back.
  struct Edge {
    Clock::time_point at;
    json stats;
    std::map<std::string, std::uint64_t> cpu;
    Drain::Snapshot drain;
    double seconds_after(const Edge& e) const { return std::chrono::duration<double>(at - e.at).count(); }
    std::uint64_t counter(std::string_view path) const { return number_at(stats, path).value_or(0); }
  };

  Edge edge() {
    Edge e;
    const auto s = daemon_->stats();
    if (!s) fail("no stats from the daemon" + daemon_->describe());
    e.at = Clock::now();
    e.cpu = thread_cpu_ns(daemon_->pid());
    e.drain = drain_.snapshot();
    e.stats = *s;
    return e;
  }

  static double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

  // An RX TCP case's figures over one window: `bytes` delivered into the socket in segments of
  // `mss`, per second and per RX-worker CPU-second, and what the coalescer built.
  static void rx_tcp_window(const Edge& e0, const Edge& e1, std::uint64_t bytes, std::uint32_t mss, OffloadResult& rx) {
    const double dt = e1.seconds_after(e0);
    const double segments = static_cast<double>(bytes) / mss;
    rx.pps = segments / dt;
    rx.gbps = static_cast<double>(bytes) * 8 / dt / 1e9;
    rx.per_core_pps = per_core(e0, e1, "wwan-dp rx", segments);
    rx.super_packets = e1.counter("rx.gro.super_packets") - e0.counter("rx.gro.super_packets");
    rx.segments = e1.counter("rx.gro.coalesced") - e0.counter("rx.gro.coalesced");
  }

  OffloadResult offload_base(const char* direction, const char* kind, const Variant& v, const char* worker) const {
    OffloadResult r;
    r.direction = direction;
    r.kind = kind;
    r.variant = v.label;
    r.profile = v.profile;
    r.seconds = o_.seconds;
    r.worker = worker;
    return r;
  }

  // `work` items per CPU-second of thread `name` between two edges.
  static double per_core(const Edge& e0, const Edge& e1, const std::string& name, double work) {
    const auto a = e0.cpu.find(name), b = e1.cpu.find(name);
    if (a == e0.cpu.end() || b == e1.cpu.end() || b->second <= a->second) return 0;
    return work * 1e9 / static_cast<double>(b->second - a->second);
  }
  static std::string dotted(const eth::Ipv4Address& a) {
    return std::to_string(a.bytes[0]) + "." + std::to_string(a.bytes[1]) + "." + std::to_string(a.bytes[2]) + "." +
           std::to_string(a.bytes[3]);
  }

  CaseResult base(const std::string& direction, const Variant& v, std::optional<std::size_t> size) const {
    CaseResult r;
    r.direction = direction;
    r.size = size;
    r.variant = v.label;
    r.ntb = v.ntb;
    r.ndp = v.ndp;
    r.profile = v.profile;
    r.seconds = o_.seconds;
    return r;
  }

  void finish(CaseResult& r, const Edge& e0, const Edge& e1, std::uint64_t moved, double dt) const {
    r.moved_pps = static_cast<double>(moved) / dt;
    std::uint64_t total = 0;
    for (const auto& [name, ns] : e1.cpu) {
      const auto before = e0.cpu.find(name);
      const std::uint64_t d = ns - (before == e0.cpu.end() ? 0 : std::min(ns, before->second));
      total += d;
      if (moved > 0) r.cpu_ns_per_packet_by_thread[name] = static_cast<double>(d) / static_cast<double>(moved);
    }
    r.cpu_ns_per_packet = moved > 0 ? static_cast<double>(total) / static_cast<double>(moved) : 0;
    r.peak_rss_kib = status_kib(daemon_->pid(), "VmHWM").value_or(0);
  }

  const Options& o_;
  int ceiling_fd_;
  Drain& drain_;
  // `command` to the emulated network's control port: "" when it answered "ok", else what went wrong.
  std::string control(const std::string& command, milliseconds timeout) {
    std::string why;
    const std::optional<std::string> answer = control_->command(command, timeout, why);
    if (!answer) return why;
    return *answer == "ok" ? "" : "the control port answered '" + *answer + "' to '" + command + "'";
  }

  std::unique_ptr<Daemon> daemon_;
  std::unique_ptr<ControlPort> control_;
};

// ---- output -------------------------------------------------------------------------------------

struct Results {
  std::string machine;
  std::vector<CaseResult> cases;
  std::vector<LatencyResult> latency;
  std::vector<RssResult> rss;
  std::vector<OffloadResult> offload;
  std::vector<TxHoldResult> tx_hold;  // the ceiling (a bare read) first, then kTxHoldCases
  std::vector<std::string> notes;
};

double fraction(const CaseResult& c) { return c.ceiling_pps > 0 ? c.pps / c.ceiling_pps : 0; }

double round_to(double v, int digits) {
  const double f = std::pow(10.0, digits);
  return std::round(v * f) / f;
}

// Keys in the issue's order first (ordered_json keeps insertion order).
nlohmann::ordered_json to_json(const Results& r) {
  using ojson = nlohmann::ordered_json;
  ojson a = ojson::array();
  for (const CaseResult& c : r.cases) {
    ojson o;
    o["direction"] = c.direction;
    if (c.size)
      o["size"] = *c.size;
    else
      o["size"] = "imix";
    o["pps"] = std::llround(c.pps);
    o["gbps"] = round_to(c.gbps, 4);
    o["cpu_ns_per_packet"] = round_to(c.cpu_ns_per_packet, 1);
    o["ceiling_pps"] = std::llround(c.ceiling_pps);
    o["fraction"] = round_to(fraction(c), 4);
    // Beyond the issue's keys: which configuration, and the parts of the figures.
    o["path"] = c.path;
    o["variant"] = c.variant;
    o["ntb"] = c.ntb;
    o["ndp"] = c.ndp;
    o["profile"] = c.profile;
    o["seconds"] = c.seconds;
    o["moved_pps"] = std::llround(c.moved_pps);
    if (c.direction == "tx") o["offered_pps"] = std::llround(c.offered_pps);
    ojson t = ojson::object();
    for (const auto& [name, ns] : c.cpu_ns_per_packet_by_thread) t[name] = round_to(ns, 1);
    o["cpu_ns_per_packet_by_thread"] = t;
    o["ceiling_gbps"] = round_to(c.ceiling_gbps, 4);
    o["ceiling_cpu_ns_per_packet"] = round_to(c.ceiling_cpu_ns_per_packet, 1);
    if (c.direction == "tx") o["ceiling_offered_pps"] = std::llround(c.ceiling_offered_pps);
    if (c.peak_rss_kib) o["peak_rss_kib"] = c.peak_rss_kib;
    if (!c.note.empty()) o["note"] = c.note;
    a.push_back(o);
  }
  for (const LatencyResult& l : r.latency) {
    a.push_back(ojson{{"direction", "latency"},
                 {"p50_us", round_to(l.p50_us, 1)},
                 {"p99_us", round_to(l.p99_us, 1)},
                 {"variant", l.variant},
                 {"ntb", l.ntb},
                 {"ndp", l.ndp},
                 {"profile", l.profile},
                 {"size", kLatencyIpBytes},
                 {"samples", l.samples},
                 {"lost", l.lost},
                 {"ceiling_p50_us", round_to(l.ceiling_p50_us, 1)},
                 {"ceiling_p99_us", round_to(l.ceiling_p99_us, 1)},
                 {"added_p50_us", round_to(l.p50_us - l.ceiling_p50_us, 1)}});
  }
  if (!r.tx_hold.empty()) {
    const TxHoldResult& ceiling = r.tx_hold.front();
    const TxHoldResult* no_hold = nullptr;
    for (const TxHoldResult& h : r.tx_hold)
      if (h.label == "no hold") no_hold = &h;
    for (std::size_t i = 1; i < r.tx_hold.size(); ++i) {
      const TxHoldResult& h = r.tx_hold[i];
      ojson o{{"direction", "latency"},
              {"p50_us", round_to(h.p50_us, 1)},
              {"p99_us", round_to(h.p99_us, 1)},
              {"path", "tx-stage"},
              {"hold", h.label},
              {"max_hold_us", h.max_hold_us},
              {"size", kLatencyIpBytes},
              {"samples", h.samples},
              {"lost", h.lost},
              {"ceiling_p50_us", round_to(ceiling.p50_us, 1)},
              {"ceiling_p99_us", round_to(ceiling.p99_us, 1)},
              {"added_p50_us", round_to(h.p50_us - ceiling.p50_us, 1)}};
      if (no_hold != nullptr && no_hold != &h)
        o["added_by_tx_aggregation_p50_us"] = round_to(h.p50_us - no_hold->p50_us, 1);
      a.push_back(o);
    }
  }
  for (const OffloadResult& f : r.offload) {
    ojson o{{"direction", f.direction},
            {"path", "offload-" + f.kind},
            {"pps", std::llround(f.pps)},
            {"gbps", round_to(f.gbps, 4)},
            {"per_core_pps", std::llround(f.per_core_pps)},
            {"worker", f.worker},
            {"variant", f.variant},
            {"profile", f.profile},
            {"seconds", f.seconds},
            {"super_packets", f.super_packets},
            {"segments", f.segments}};
    if (f.ceiling_pps > 0) {
      o["ceiling_pps"] = std::llround(f.ceiling_pps);
      o["ceiling_per_core_pps"] = std::llround(f.ceiling_per_core_pps);
      o["fraction"] = round_to(f.ceiling_pps > 0 ? f.pps / f.ceiling_pps : 0, 4);
      o["per_core_fraction"] = round_to(f.ceiling_per_core_pps > 0 ? f.per_core_pps / f.ceiling_per_core_pps : 0, 4);
    }
    if (!f.rounds.empty()) {
      ojson rounds = ojson::array();
      for (const auto& [per_core, ceiling] : f.rounds)
        rounds.push_back(ojson{{"per_core_pps", std::llround(per_core)},
                               {"ceiling_per_core_pps", std::llround(ceiling)},
                               {"per_core_fraction", round_to(ceiling > 0 ? per_core / ceiling : 0, 4)}});
      o["rounds"] = rounds;
    }
    if (!f.note.empty()) o["note"] = f.note;
    a.push_back(o);
  }
  for (const RssResult& s : r.rss) {
    a.push_back(ojson{{"direction", "rss"},
                 {"variant", s.variant},
                 {"seconds", s.seconds},
                 {"samples", s.samples},
                 {"rss_first_kib", s.first_kib},
                 {"rss_min_kib", s.min_kib},
                 {"rss_max_kib", s.max_kib},
                 {"rss_last_kib", s.last_kib},
                 {"vmhwm_kib", s.hwm_kib},
                 {"flat_1mib", s.max_kib - s.min_kib <= 1024}});
  }
  return a;
}

std::string fixed(double v, int digits) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(digits) << v;
  return o.str();
}

std::string table(const Results& r) {
  std::ostringstream o;
  o << r.machine << "\n\n";
  o << "Throughput: wwan-dp and the ceiling measured right before it (same namespace, same socket / sender).\n"
       "Mpps = delivered (RX: at the drain socket; TX: at the emulated network's sink). in = what was offered\n"
       "(RX: packets wwan-dp wrote to the TUN; TX: what the sender got into the kernel, for wwan-dp | for the\n"
       "ceiling). cpu = daemon CPU ns per packet it moved: all threads, then [control/USB + emulated modem |\n"
       "rx worker | tx worker]. ceil cpu = the bare loop's thread.\n\n";
  o << std::left << std::setw(4) << "dir" << std::setw(6) << "size" << std::setw(12) << "path" << std::setw(13)
    << "variant" << std::right << std::setw(9) << "Mpps" << std::setw(8) << "Gbit/s" << std::setw(14) << "in Mpps"
    << std::setw(8) << "cpu ns"
    << "  " << std::left << std::setw(22) << "[ctl+sim|rx|tx] ns" << std::right << std::setw(10) << "ceil Mpps"
    << std::setw(8) << "Gbit/s" << std::setw(9) << "ceil cpu" << std::setw(9) << "fraction" << '\n';
  for (const CaseResult& c : r.cases) {
    const auto thread = [&](const char* name) {
      const auto it = c.cpu_ns_per_packet_by_thread.find(name);
      return it == c.cpu_ns_per_packet_by_thread.end() ? std::string("-") : fixed(it->second, 0);
    };
    const bool usbfs = c.path == "usbfs";
    const std::string parts = thread(usbfs ? "usbfs events" : "wwan-dp") + "|" + thread(usbfs ? "usbfs rx" : "wwan-dp rx") +
                              "|" + thread(usbfs ? "usbfs tx" : "wwan-dp tx");
    o << std::left << std::setw(4) << c.direction << std::setw(6) << size_text(c.size) << std::setw(12) << c.path
      << std::setw(13) << c.variant << std::right << std::setw(9) << fixed(c.pps / 1e6, 3) << std::setw(8)
      << fixed(c.gbps, 2) << std::setw(14)
      << (c.path != "in-process" ? std::string("-")
          : c.direction == "rx"   ? fixed(c.moved_pps / 1e6, 3)
                              : fixed(c.offered_pps / 1e6, 3) + "|" + fixed(c.ceiling_offered_pps / 1e6, 3))
      << std::setw(8) << fixed(c.cpu_ns_per_packet, 0) << "  " << std::left << std::setw(22)
      << parts << std::right << std::setw(10) << fixed(c.ceiling_pps / 1e6, 3) << std::setw(8)
      << fixed(c.ceiling_gbps, 2) << std::setw(9) << fixed(c.ceiling_cpu_ns_per_packet, 0) << std::setw(8)
      << fixed(100 * fraction(c), 1) << "%";
    if (!c.note.empty()) o << "  " << c.note;
    o << '\n';
  }
  if (!r.latency.empty()) {
    o << "\nLatency: one " << kLatencyIpBytes
      << "-byte UDP datagram at a time to the emulated network's echo and back (µs).\n"
         "Ceiling: a bare echo in a TUN. added = what wwan-dp (both directions) and the emulated modem add.\n\n";
    o << std::left << std::setw(14) << "variant" << std::right << std::setw(9) << "p50" << std::setw(9) << "p99"
      << std::setw(11) << "ceil p50" << std::setw(10) << "ceil p99" << std::setw(11) << "added p50" << std::setw(9)
      << "samples" << std::setw(6) << "lost" << '\n';
    for (const LatencyResult& l : r.latency)
      o << std::left << std::setw(14) << l.variant << std::right << std::setw(9) << fixed(l.p50_us, 1) << std::setw(9)
        << fixed(l.p99_us, 1) << std::setw(11) << fixed(l.ceiling_p50_us, 1) << std::setw(10)
        << fixed(l.ceiling_p99_us, 1) << std::setw(11) << fixed(l.p50_us - l.ceiling_p50_us, 1) << std::setw(9)
        << l.samples << std::setw(6) << l.lost << '\n';
  }
  if (!r.tx_hold.empty()) {
    const TxHoldResult& ceiling = r.tx_hold.front();
    o << "\nTX aggregation, lone packets: one " << kLatencyIpBytes
      << "-byte UDP datagram at a time into a TUN read by the daemon's TX stage\n"
         "(TxStage + Worker on io_uring, daemon's TX configuration), one way: send() -> NTB submitted (µs).\n"
         "Ceiling: a bare poll() + read() of the same TUN. added = p50 - the ceiling's p50; \"by aggregation\" = p50 - the\n"
         "no-hold row's p50 (the TX stage sends an NTB as soon as a reap comes back short, so max_hold only\n"
         "applies while reads keep completing).\n\n";
    o << std::left << std::setw(12) << "hold" << std::right << std::setw(10) << "max_hold" << std::setw(9) << "p50"
      << std::setw(9) << "p99" << std::setw(11) << "added p50" << std::setw(16) << "by aggregation" << std::setw(9)
      << "samples" << std::setw(6) << "lost" << '\n';
    double no_hold_p50 = -1;
    for (const TxHoldResult& h : r.tx_hold)
      if (h.label == "no hold") no_hold_p50 = h.p50_us;
    for (const TxHoldResult& h : r.tx_hold) {
      const bool is_ceiling = &h == &ceiling;
      o << std::left << std::setw(12) << h.label << std::right << std::setw(10)
        << (is_ceiling ? std::string("-") : fixed(h.max_hold_us, 0) + " us") << std::setw(9) << fixed(h.p50_us, 1)
        << std::setw(9) << fixed(h.p99_us, 1) << std::setw(11)
        << (is_ceiling ? std::string("-") : fixed(h.p50_us - ceiling.p50_us, 1)) << std::setw(16)
        << (is_ceiling || no_hold_p50 < 0 ? std::string("-") : fixed(h.p50_us - no_hold_p50, 1)) << std::setw(9)
        << h.samples << std::setw(6) << h.lost << '\n';
    }
  }
  for (const RssResult& s : r.rss) {
    o << "\nRSS over a " << fixed(s.seconds, 0) << " s flood both ways (" << s.variant << ", " << s.samples
      << " samples): first " << s.first_kib << " KiB, min " << s.min_kib << ", max " << s.max_kib << ", last "
      << s.last_kib << " (spread " << (s.max_kib - s.min_kib) << " KiB: "
      << (s.max_kib - s.min_kib <= 1024 ? "flat within 1 MiB" : "NOT flat within 1 MiB") << "); VmHWM " << s.hwm_kib
      << " KiB\n";
  }
  if (!r.offload.empty()) {
    o << "\nTUN offload (--offload on, " << r.offload.front().variant
      << "): Mpps = wall clock (rx download / tcp: data segments into the socket; tx: packets into NTBs / at the\n"
         "sink); rx download = the network's TCP sender -> RX -> socket, rx tcp = client -> TX -> reflector -> RX -> server,\n"
         "tx upload = client -> TX -> the network's TCP receiver;\n"
         "per core = the same per CPU-second of the worker named. Ceiling (rx): bare 44-segment super-packet\n"
         "writes into a TCP socket through a vnet-hdr TUN, per second and per CPU-second of the writer; (tx upload):\n"
         "a bare reader of a TCP upload's TSO super-packets from a vnet-hdr TUN, segments per reader CPU-second.\n\n";
    o << std::left << std::setw(4) << "dir" << std::setw(9) << "kind" << std::right << std::setw(9) << "Mpps"
      << std::setw(8) << "Gbit/s" << std::setw(14) << "per core Mpps" << std::setw(11) << "ceil Mpps" << std::setw(16)
      << "ceil/core Mpps" << std::setw(11) << "per core %" << std::setw(10) << "supers" << std::setw(10) << "segments"
      << '\n';
    for (const OffloadResult& f : r.offload) {
      o << std::left << std::setw(4) << f.direction << std::setw(9) << f.kind << std::right << std::setw(9)
        << fixed(f.pps / 1e6, 3) << std::setw(8) << fixed(f.gbps, 2) << std::setw(14) << fixed(f.per_core_pps / 1e6, 3)
        << std::setw(11) << (f.ceiling_pps > 0 ? fixed(f.ceiling_pps / 1e6, 3) : "-") << std::setw(16)
        << (f.ceiling_per_core_pps > 0 ? fixed(f.ceiling_per_core_pps / 1e6, 3) : "-") << std::setw(11)
        << (f.ceiling_per_core_pps > 0 ? fixed(100 * f.per_core_pps / f.ceiling_per_core_pps, 1) + "%" : "-")
        << std::setw(10) << f.super_packets << std::setw(10) << f.segments;
      if (!f.note.empty()) o << "  " << f.note;
      o << '\n';
    }
  }
  for (const std::string& n : r.notes) o << "\nNote: " << n << '\n';
  return o.str();
}

// Throughput (Mpps and Gbit/s) against IP size for wwan-dp and its ceiling, RX and TX, as SVG.
std::string svg(const Results& r) {
  const std::vector<std::optional<std::size_t>> sizes = {64, std::nullopt, 576, 1500};  // IMIX at its mean (354)
  const auto x_of = [](std::optional<std::size_t> s) { return s ? static_cast<double>(*s) : kImixMeanIpBytes; };
  struct Series {
    std::string label, colour, dash;
    std::vector<std::pair<double, std::pair<double, double>>> points;  // x -> (Mpps, Gbit/s)
  };
  std::vector<Series> series;
  const std::map<std::string, std::string> colour = {{"rx", "#1f77b4"}, {"tx", "#d62728"}};
  std::vector<std::string> variants;
  for (const CaseResult& c : r.cases)
    if (c.path == "in-process" && std::find(variants.begin(), variants.end(), c.variant) == variants.end())
      variants.push_back(c.variant);
  const std::vector<std::string> dashes = {"", "6,3", "2,2", "8,3,2,3", "1,3"};
  for (const std::string dir : {"rx", "tx"}) {
    Series ceiling{dir + " ceiling (bare TUN loop)", colour.at(dir), "", {}};
    for (std::size_t vi = 0; vi < variants.size(); ++vi) {
      Series s{dir + " wwan-dp " + variants[vi], colour.at(dir), dashes[vi % dashes.size()], {}};
      for (const auto& size : sizes)
        for (const CaseResult& c : r.cases)
          if (c.path == "in-process" && c.direction == dir && c.variant == variants[vi] && c.size == size) {
            s.points.push_back({x_of(size), {c.pps / 1e6, c.gbps}});
            if (vi == 0) ceiling.points.push_back({x_of(size), {c.ceiling_pps / 1e6, c.ceiling_gbps}});
          }
      std::sort(s.points.begin(), s.points.end());
      if (!s.points.empty()) series.push_back(s);
    }
    std::sort(ceiling.points.begin(), ceiling.points.end());
    ceiling.colour = dir == "rx" ? "#0b3c5d" : "#7f0000";
    ceiling.label = dir + " ceiling (bare TUN loop, same run)";
    if (!ceiling.points.empty()) series.push_back(ceiling);
  }
  constexpr double kW = 520, kH = 340, kLeft = 60, kRight = 20, kTop = 40, kBottom = 50;
  std::ostringstream o;
  const double legend_h = 18.0 * static_cast<double>(series.size()) + 20;
  o << R"(<svg xmlns="http://www.w3.org/2000/svg" width=")" << 2 * kW << R"(" height=")" << kH + legend_h
    << R"(" font-family="sans-serif" font-size="12">)" << '\n';
  o << R"(<rect width="100%" height="100%" fill="white"/>)" << '\n';
  for (int panel = 0; panel < 2; ++panel) {
    const double ox = panel * kW;
    double ymax = 0;
    for (const Series& s : series)
      for (const auto& p : s.points) ymax = std::max(ymax, panel == 0 ? p.second.first : p.second.second);
    ymax = ymax <= 0 ? 1 : ymax * 1.1;
    const auto px = [&](double x) { return ox + kLeft + (x - 0) / 1600.0 * (kW - kLeft - kRight); };
    const auto py = [&](double y) { return kTop + (1 - y / ymax) * (kH - kTop - kBottom); };
    o << "<text x=\"" << ox + kW / 2 << "\" y=\"20\" text-anchor=\"middle\" font-weight=\"bold\">"
      << (panel == 0 ? "packets/s (millions)" : "Gbit/s (IP bytes)") << " against IP packet size</text>\n";
    o << "<line x1=\"" << px(0) << "\" y1=\"" << py(0) << "\" x2=\"" << px(1600) << "\" y2=\"" << py(0)
      << "\" stroke=\"black\"/>\n";
    o << "<line x1=\"" << px(0) << "\" y1=\"" << py(0) << "\" x2=\"" << px(0) << "\" y2=\"" << py(ymax)
      << "\" stroke=\"black\"/>\n";
    for (const auto& size : sizes) {
      const double x = x_of(size);
      o << "<line x1=\"" << px(x) << "\" y1=\"" << py(0) << "\" x2=\"" << px(x) << "\" y2=\"" << py(0) + 5
        << "\" stroke=\"black\"/><text x=\"" << px(x) << "\" y=\"" << py(0) + 18 << "\" text-anchor=\"middle\">"
        << (size ? std::to_string(*size) : "imix") << "</text>\n";
    }
    o << "<text x=\"" << px(800) << "\" y=\"" << kH - 10 << "\" text-anchor=\"middle\">IP bytes per packet</text>\n";
    for (int t = 0; t <= 4; ++t) {
      const double y = ymax * t / 4;
      o << "<line x1=\"" << px(0) - 5 << "\" y1=\"" << py(y) << "\" x2=\"" << px(1600) << "\" y2=\"" << py(y)
        << "\" stroke=\"#ddd\"/><text x=\"" << px(0) - 8 << "\" y=\"" << py(y) + 4 << "\" text-anchor=\"end\">"
        << fixed(y, ymax < 1 ? 3 : ymax < 10 ? 2 : 1) << "</text>\n";
    }
    for (const Series& s : series) {
      o << "<polyline fill=\"none\" stroke=\"" << s.colour << "\" stroke-width=\""
        << (s.label.find("ceiling") != std::string::npos ? 3 : 1.5) << "\"";
      if (!s.dash.empty()) o << " stroke-dasharray=\"" << s.dash << "\"";
      o << " points=\"";
      for (const auto& p : s.points) o << px(p.first) << "," << py(panel == 0 ? p.second.first : p.second.second) << " ";
      o << "\"/>\n";
      for (const auto& p : s.points)
        o << "<circle cx=\"" << px(p.first) << "\" cy=\"" << py(panel == 0 ? p.second.first : p.second.second)
          << "\" r=\"2.5\" fill=\"" << s.colour << "\"/>\n";
    }
  }
  double ly = kH + 10;
  for (const Series& s : series) {
    o << "<line x1=\"" << kLeft << "\" y1=\"" << ly << "\" x2=\"" << kLeft + 40 << "\" y2=\"" << ly << "\" stroke=\""
      << s.colour << "\" stroke-width=\"" << (s.label.find("ceiling") != std::string::npos ? 3 : 1.5) << "\"";
    if (!s.dash.empty()) o << " stroke-dasharray=\"" << s.dash << "\"";
    o << "/><text x=\"" << kLeft + 48 << "\" y=\"" << ly + 4 << "\">" << s.label << "</text>\n";
    ly += 18;
  }
  o << "<text x=\"" << 2 * kW - 10 << "\" y=\"" << kH + legend_h - 6 << "\" text-anchor=\"end\" fill=\"#666\">"
    << r.machine.substr(0, r.machine.find('\n')) << "</text>\n";
  o << "</svg>\n";
  return o.str();
}

std::string machine_text() {
  std::string model = "?";
  std::ifstream cpu("/proc/cpuinfo");
  for (std::string line; std::getline(cpu, line);)
    if (line.rfind("model name", 0) == 0) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  std::string kernel;
  std::getline(std::ifstream("/proc/sys/kernel/osrelease"), kernel);
  double load = 0;
  std::ifstream("/proc/loadavg") >> load;
  return "machine: nproc " + std::to_string(::sysconf(_SC_NPROCESSORS_ONLN)) + ", " + model + ", kernel " + kernel +
         ", load average " + fixed(load, 2) + " at start";
}

// A TUN of the benchmark's own, `address`/`prefix`, MTU 1500, up (set through the daemon's own
// rtnetlink code); the run ends if it cannot be made.
struct BenchTun {
  std::unique_ptr<wwan::tun::TunDevice> device;
  std::unique_ptr<wwan::tun::LinkConfigurator> link;
  int fd() const { return device->fd(); }
};
BenchTun open_bench_tun(const std::string& name, const wwan::tun::TunOptions& options, eth::Ipv4Address address,
                        std::uint8_t prefix) {
  std::string why;
  BenchTun t;
  t.device = wwan::tun::TunDevice::open(name, options, why);
  if (!t.device) fail(why);
  t.link = wwan::tun::LinkConfigurator::open(t.device->ifindex(), why);
  if (!t.link) fail(why);
  wwan::tun::LinkSettings ls;
  ls.ipv4 = wwan::tun::Ipv4Settings{address, prefix, std::nullopt};
  ls.mtu = 1500;
  if (!t.link->apply(ls, why)) fail(why);
  return t;
}

// ---- what TX aggregation adds --------------------------------------------------------------------

// A TUN of its own (O_NONBLOCK, as the daemon opens it: tools/daemon.cpp open_tun says why), the
// bare-read ceiling first (poll + read), then the TX stage once per kTxHoldCases row, all with the
// same socket.
std::vector<TxHoldResult> tx_hold_latency(const Options& o) {
  const std::string name = "e2e-lat0";
  std::string why;
  const BenchTun tun = open_bench_tun(name, {.nonblocking = true}, {{10, 97, 0, 2}}, 30);
  Fd fd = udp_socket("", 0, "10.97.0.1", sim::kUdpDiscardPort, why);
  if (!fd.valid()) fail(why);
  std::cerr << "e2e_bench: TX aggregation (lone packets through the TX stage, " << o.pings << " each)\n";
  // Interleaved in rounds, so that a busy spell of the (shared) machine falls on every row alike.
  constexpr unsigned kRounds = 5;
  const unsigned per_round = std::max(1u, o.pings / kRounds);
  std::vector<LoneSamples> pooled(1 + kTxHoldCases.size());
  const auto pool = [](LoneSamples& into, const LoneSamples& s) {
    into.us.insert(into.us.end(), s.us.begin(), s.us.end());
    into.lost += s.lost;
  };
  for (unsigned round = 0; round < kRounds; ++round) {
    pool(pooled[0], lone_read_latency(tun.fd(), fd.get(), per_round));
    for (std::size_t i = 0; i < kTxHoldCases.size(); ++i) {
      const LoneSamples s = lone_tx_stage_latency(tun.fd(), fd.get(), kTxHoldCases[i].max_hold, per_round, why);
      if (!why.empty()) fail("TX stage on " + name + ": " + why);
      pool(pooled[1 + i], s);
    }
  }
  std::vector<TxHoldResult> out;
  for (std::size_t i = 0; i < pooled.size(); ++i) {
    const LoneSamples& s = pooled[i];
    out.push_back(TxHoldResult{i == 0 ? "ceiling" : kTxHoldCases[i - 1].label,
                               i == 0 ? 0 : static_cast<double>(kTxHoldCases[i - 1].max_hold.count()),
                               percentile(s.us, 0.5), percentile(s.us, 0.99), static_cast<unsigned>(s.us.size()),
                               s.lost});
  }
  return out;
}

// ---- the usbfs case -------------------------------------------------------------------------------

// Runs `umockdev-wrapper usbfs_bench --json ...` and takes its cases (path "usbfs"). Their ceiling
// is the bare-TUN one of the in-process run for the same direction and size: under umockdev the
// TUN is a counting fake (bench/usbfs_bench.cpp says why), so the fraction says how far the whole
// emulated libusb path is from what the kernel could take.
void run_usbfs(const Options& o, Results& results) {
  const std::string wrapper = "/usr/bin/umockdev-wrapper";
  if (::access(wrapper.c_str(), X_OK) != 0 || ::access(o.usbfs_bench.c_str(), X_OK) != 0) {
    results.notes.push_back("usbfs case not run: needs " + wrapper + " (Debian umockdev) and " + o.usbfs_bench);
    return;
  }
  std::vector<std::string> argv = {wrapper, o.usbfs_bench, "--json", "--seconds", fixed(o.seconds, 2)};
  if (o.quick) argv.push_back("--quick");
  std::cerr << "e2e_bench: the usbfs path (" << o.usbfs_bench << " under umockdev-wrapper)\n";
  Daemon c;
  std::string line;
  if (!c.start(argv[0], {argv.begin() + 1, argv.end()})) {
    results.notes.push_back("usbfs case not run:" + c.describe());
    return;
  }
  json cases;
  while (c.next_line(600s, line)) {
    cases = json::parse(line, nullptr, false);
    if (cases.is_array()) break;
  }
  const int status = c.stop(2000ms);
  if (!cases.is_array()) {
    results.notes.push_back("usbfs case failed (wait status " + std::to_string(status) + "):" + c.describe());
    return;
  }
  for (const json& j : cases) {
    CaseResult r;
    r.path = "usbfs";
    r.direction = j.value("direction", "");
    if (j["size"].is_number()) r.size = j["size"].get<std::size_t>();
    r.variant = "libusb-" + j.value("ntb", std::string()) + "-" + j.value("ndp", std::string());
    r.ntb = j.value("ntb", "");
    r.ndp = j.value("ndp", "");
    r.profile = j.value("profile", "");
    r.seconds = j.value("seconds", 0.0);
    r.pps = r.moved_pps = j.value("pps", 0.0);
    r.gbps = j.value("gbps", 0.0);
    r.cpu_ns_per_packet = j.value("cpu_ns_per_packet", 0.0);
    for (const auto& [name, ns] : j["cpu_ns_per_packet_by_thread"].items()) r.cpu_ns_per_packet_by_thread[name] = ns.get<double>();
    for (const CaseResult& in : results.cases)
      if (in.path == "in-process" && in.direction == r.direction && in.size == r.size) {
        r.ceiling_pps = in.ceiling_pps;
        r.ceiling_gbps = in.ceiling_gbps;
        r.ceiling_cpu_ns_per_packet = in.ceiling_cpu_ns_per_packet;
        break;
      }
    r.note = "TUN faked; cost = libusb + umockdev emulation";
    results.cases.push_back(r);
  }
  results.notes.push_back(
      "usbfs rows: real libusb, transfer pipes and RX/TX workers against the umockdev usbfs emulation, "
      "with a counting fake in place of the TUN (TUN ioctls fail under the umockdev preload). The "
      "emulation's own cost dominates (an ioctl round trip to its handler thread per URB), so these rows "
      "are the cost of the emulated libusb path, not what a real modem on a real bus gets. CPU is the "
      "whole bench process (emulation threads included); their ceiling is the in-process run's bare TUN.");
}

}  // namespace
}  // namespace wwan::bench

int main(int argc, char** argv) {
  using namespace wwan::bench;
  Options o;
  {
    char self[4096] = {};
    const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
    const std::string dir = n > 0 ? std::string(self, static_cast<std::size_t>(n)) : std::string(argv[0]);
    const std::string bench_dir = dir.substr(0, dir.rfind('/'));
    o.wwan_dp = bench_dir + "/../tools/wwan-dp";
    o.usbfs_bench = bench_dir + "/usbfs_bench";
  }
  bool seconds_given = false, flood_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) fail(a + " needs a value (see --help)");
      return argv[++i];
    };
    const auto number = [&](const std::string& v) {
      char* end = nullptr;
      const double d = std::strtod(v.c_str(), &end);
      if (end == v.c_str() || *end != '\0' || !(d > 0) || d > 3600) fail(a + ": '" + v + "' is not a number of seconds in (0, 3600]");
      return d;
    };
    if (a == "--help" || a == "-h") {
      std::cout << "usage: e2e_bench [--quick] [--seconds S] [--flood-seconds S] [--pings N] [--variants A,B]\n"
                   "                 [--wwan-dp PATH] [--usbfs-bench PATH|none] [--out DIR] [--json] [--no-offload]\n"
                   "                 [--offload-only] [--offload-cases download,tcp,upload,uso] [--rounds N]\n"
                   "Root only. Variants: ntb16-front ntb32-front ntb16-end ntb32-end e3372-64k rndis-fm350\n"
                   "(--quick: ntb16-front, ntb32-end, rndis-fm350).\n";
      return 0;
    } else if (a == "--quick") {
      o.quick = true;
    } else if (a == "--seconds") {
      o.seconds = number(value());
      seconds_given = true;
    } else if (a == "--rounds") {
      const double n = number(value());
      if (n < 1 || n > 99 || n != std::floor(n)) fail("--rounds is a whole number from 1 to 99");
      o.offload_rounds = static_cast<unsigned>(n);
    } else if (a == "--flood-seconds") {
      o.flood_seconds = number(value());
      flood_given = true;
    } else if (a == "--pings") {
      o.pings = static_cast<unsigned>(number(value()));
    } else if (a == "--wwan-dp") {
      o.wwan_dp = value();
    } else if (a == "--usbfs-bench") {
      o.usbfs_bench = value();
    } else if (a == "--out") {
      o.out_dir = value();
    } else if (a == "--json") {
      o.json_stdout = true;
    } else if (a == "--no-offload") {
      o.offload = false;
    } else if (a == "--offload-only") {
      o.offload_only = true;
    } else if (a == "--offload-cases") {
      std::string list = value();
      for (std::size_t at = 0; at <= list.size();) {
        const std::size_t comma = std::min(list.find(',', at), list.size());
        const std::string c = list.substr(at, comma - at);
        if (c != "download" && c != "tcp" && c != "upload" && c != "uso")
          fail("--offload-cases takes download, tcp, upload and uso, not '" + c + "'");
        o.offload_cases.push_back(c);
        at = comma + 1;
      }
    } else if (a == "--variants") {
      std::string list = value();
      for (std::size_t at = 0; at <= list.size();) {
        const std::size_t comma = std::min(list.find(',', at), list.size());
        o.only_variants.push_back(list.substr(at, comma - at));
        at = comma + 1;
      }
    } else {
      fail("unknown argument '" + a + "' (see --help)");
    }
  }
  if (o.quick) {
    if (!seconds_given) o.seconds = 0.5;
    if (!flood_given) o.flood_seconds = 5;
    o.warmup_seconds = 0.2;
    o.pings = std::min(o.pings, 300u);
  }
  if (::geteuid() != 0) fail("needs root (a network namespace, TUN devices); run it with sudo");
  if (::access(o.wwan_dp.c_str(), X_OK) != 0) fail("no wwan-dp at " + o.wwan_dp + " (build it, or give --wwan-dp PATH)");
  std::vector<Variant> variants;
  for (const Variant& v : kVariants) {
    const bool wanted = o.only_variants.empty() ? (!o.quick || v.quick)
                                                : std::find(o.only_variants.begin(), o.only_variants.end(), v.label) !=
                                                      o.only_variants.end();
    if (wanted) variants.push_back(v);
  }
  if (variants.empty()) fail("no such variant (see --help)");
  if (o.offload_only) {
    if (!o.offload) fail("--offload-only and --no-offload leave nothing to run");
    variants.clear();
    o.usbfs_bench = "none";
  }

  Results results;
  results.machine = machine_text();
  if (const std::string e = enter_fresh_network_namespace(); !e.empty()) fail(e);
  std::string why;
  const BenchTun ceiling = open_bench_tun(kCeilingTun, {}, {{10, 99, 0, 2}}, 30);
  Drain drain;
  if (!drain.start(kDrainPort, why)) fail(why);
  // The RX GSO ceiling's TUN: IFF_VNET_HDR, non-blocking (its writer polls for the ACKs).
  const BenchTun gso_ceiling = open_bench_tun(kGsoCeilingTun, {.vnet_hdr = true, .nonblocking = true}, {{10, 98, 0, 1}}, 24);

  if (!o.offload_only) results.tx_hold = tx_hold_latency(o);

  const std::vector<std::optional<std::size_t>> sizes = {64, 576, 1500, std::nullopt};
  for (std::size_t vi = 0; vi < variants.size(); ++vi) {
    const Variant& v = variants[vi];
    std::cerr << "e2e_bench: " << v.label << " (" << v.profile << ")\n";
    Bench b(o, ceiling.fd(), drain);
    if (!b.start_daemon(v.profile, why)) fail(v.profile + ": " + why);
    for (const auto& size : sizes) {
      if (size) results.cases.push_back(b.rx(v, size));
      results.cases.push_back(b.tx(v, size));
    }
    results.latency.push_back(b.latency(v));
    if (vi == 0) results.rss.push_back(b.rss(v, o.flood_seconds));
    b.stop_daemon();
    // RX IMIX: the same configuration with the emulated modem cutting its stream to the mix.
    Variant imix = v;
    imix.profile += "+imix";
    if (!b.start_daemon(imix.profile, why)) fail(imix.profile + ": " + why);
    CaseResult c = b.rx(imix, std::nullopt);
    c.profile = imix.profile;
    results.cases.push_back(c);  // sorted into place below
    b.stop_daemon();
  }
  if (o.offload) {
    // The E3372 model as it is (64 KiB IN blocks after wwan-dp's clamp): a super-packet gathers
    // the segments of the IN transfers the RX worker finds waiting together (docs/offload.md), at
    // most 64 KiB (44 segments). TUN offload required (the run fails if the kernel refuses), and a
    // route to the reflector.
    const Variant& v = *std::find_if(kVariants.begin(), kVariants.end(), [](const Variant& x) { return x.label == "e3372-64k"; });
    std::cerr << "e2e_bench: offload (" << v.profile << " --offload on)\n";
    Bench b(o, ceiling.fd(), drain);
    if (!b.start_daemon(v.profile, why, {"--offload", "on", "--default-route"})) fail(v.profile + " --offload on: " + why);
    const auto wanted = [&](const std::string& c) {
      return o.offload_cases.empty() || std::find(o.offload_cases.begin(), o.offload_cases.end(), c) != o.offload_cases.end();
    };
    if (wanted("download")) results.offload.push_back(b.offload_download(v, gso_ceiling.fd()));
    if (wanted("tcp")) {
      const auto [rx, tx] = b.offload_tcp(v, gso_ceiling.fd());
      results.offload.push_back(rx);
      results.offload.push_back(tx);
    }
    if (wanted("upload")) results.offload.push_back(b.offload_upload(v, gso_ceiling.fd()));
    if (wanted("uso")) results.offload.push_back(b.offload_uso(v));
    b.stop_daemon();
  }
  if (o.usbfs_bench != "none") run_usbfs(o, results);

  std::stable_sort(results.cases.begin(), results.cases.end(), [](const CaseResult& a, const CaseResult& b) {
    const auto key = [](const CaseResult& c) {
      return std::make_tuple(c.path != "in-process", c.direction, c.size ? *c.size : 100000);
    };
    return key(a) < key(b);
  });
  const std::string text = table(results);
  const std::string json_text = to_json(results).dump(1);
  if (o.json_stdout)
    std::cout << json_text << '\n';
  else
    std::cout << text;
  if (!o.out_dir.empty()) {
    ::mkdir(o.out_dir.c_str(), 0755);
    std::ofstream(o.out_dir + "/e2e.txt") << text;
    std::ofstream(o.out_dir + "/e2e.json") << json_text << '\n';
    std::ofstream(o.out_dir + "/e2e.svg") << svg(results);
    std::cerr << "e2e_bench: wrote " << o.out_dir << "/e2e.txt, e2e.json, e2e.svg\n";
  }
  return 0;
}
