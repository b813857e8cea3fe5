// wwan-dp end to end: the real daemon (`wwan-dp --sim PROFILE --tun NAME --json`) as a child
// process, a real TUN in a fresh network namespace per test, and traffic from ordinary sockets of
// this process bound to that TUN. What the daemon says (its JSON events) is checked against what
// the kernel holds (ioctl, /proc/net/dev, /proc/net/snmp of the namespace) and what the emulated
// network counted (the stats event's "sim" object). docs/testing.md says what each test proves.
//
// Needs root and /dev/net/tun (skipped otherwise). WWAN_DP_EXE names the binary (meson sets it);
// WWAN_DP_FLOOD_SECONDS the length of each flood (default 10).
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <algorithm>
#include <functional>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "daemon.hpp"
#include "fixture.hpp"
#include "net.hpp"
#include "profile.hpp"
#include "shell.hpp"
#include "sim/network.hpp"

namespace wwan::integration {
namespace {

using namespace std::chrono_literals;

const std::string kTun = "wwdp-it0";

// What the emulated network assigns (sim::NetworkConfig's defaults), as text.
std::string dotted(const eth::Ipv4Address& a) {
  return std::to_string(a.bytes[0]) + "." + std::to_string(a.bytes[1]) + "." + std::to_string(a.bytes[2]) + "." +
         std::to_string(a.bytes[3]);
}
const sim::NetworkConfig kNet{};
const std::string kHost = dotted(kNet.host_ipv4);     // 10.64.64.2
const std::string kGateway = dotted(kNet.gateway_ipv4);  // 10.64.64.1

constexpr auto kStartTimeout = 10s;    // the TUN exists
constexpr auto kConnectTimeout = 30s;  // session up (MBIM: FCC unlock, registration) and TUN configured
constexpr auto kReplyTimeout = 2s;     // one echo / control answer
constexpr auto kShutdownLimit = 2s;    // SIGTERM -> stopped + exit 0
constexpr std::uint16_t kSourcePort = 5001;

std::chrono::seconds flood_duration() {
  if (const char* env = std::getenv("WWAN_DP_FLOOD_SECONDS")) {
    char* end = nullptr;
    const unsigned long v = std::strtoul(env, &end, 10);
    if (end != env && *end == '\0' && v > 0 && v <= 3600) return std::chrono::seconds(v);
  }
  return 10s;
}

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

// Processes whose parent is this process (after the daemon was reaped: none may remain; this
// process is a child subreaper, so the daemon's orphans would be re-parented here).
std::vector<std::string> my_children() {
  std::vector<std::string> out;
  const std::string me = std::to_string(::getpid());
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return out;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::ifstream f(std::string("/proc/") + e->d_name + "/stat");
    std::string stat;
    std::getline(f, stat);
    const std::size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 1));
    std::string state, ppid;
    rest >> state >> ppid;
    if (ppid == me) out.push_back(stat.substr(0, close + 1) + " state " + state);
  }
  ::closedir(d);
  return out;
}

// The namespace's IP and UDP counters that say where a packet to this host died, for messages.
std::string kernel_counters() {
  std::string out = "Ip";
  const auto ip = snmp("Ip");
  for (const char* k : {"InReceives", "InAddrErrors", "InDiscards", "InHdrErrors", "InDelivers"})
    out += std::string(" ") + k + "=" + std::to_string(ip.count(k) ? ip.at(k) : 0);
  out += "; Udp";
  const auto udp = snmp("Udp");
  for (const char* k : {"InDatagrams", "NoPorts", "InErrors", "RcvbufErrors", "InCsumErrors"})
    out += std::string(" ") + k + "=" + std::to_string(udp.count(k) ? udp.at(k) : 0);
  return out;
}

std::size_t lines(const std::string& text) {
  std::size_t n = 0;
  for (char c : text) n += c == '\n' ? 1 : 0;
  return n;
}

// The payload of echo `n` of `size` bytes: no two sizes or positions alike.
std::vector<std::uint8_t> pattern(std::size_t size, std::size_t n) {
  std::vector<std::uint8_t> p(size);
  for (std::size_t i = 0; i < size; ++i) p[i] = static_cast<std::uint8_t>(i * 7 + n * 13 + 1);
  return p;
}

// One snapshot of every counter the accounting equations use.
struct Snapshot {
  json stats;
  DevCounters tun;
  std::map<std::string, std::uint64_t> udp;
};

class DaemonTest : public DaemonNamespaceTest<Profile> {
 protected:

  void TearDown() override {
    if (daemon_) {
      EXPECT_EQ(daemon_->count("error"), 0u) << "the daemon reported errors" << daemon_->describe();
      daemon_.reset();  // SIGKILL + reap if still running
    }
  }

  // For failure messages: reads what the daemon printed meanwhile first, so the events after the
  // one waited for show too.
  std::string describe() {
    if (!daemon_) return "\n  (no daemon)";
    daemon_->drain();
    return daemon_->describe();
  }

  // wwan-dp --sim P --tun kTun --json [profile args] [extra]; waits for started and connected and
  // checks the connected event against the emulated network and against the kernel's view of the TUN.
  void launch(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"--sim", GetParam().name, "--tun", kTun, "--json"};
    args.insert(args.end(), GetParam().args.begin(), GetParam().args.end());
    args.insert(args.end(), extra.begin(), extra.end());
    daemon_ = std::make_unique<Daemon>();
    ASSERT_TRUE(daemon_->start(exe_, args)) << errno_text("starting the daemon");
    const auto started = daemon_->wait_for("started", kStartTimeout);
    ASSERT_TRUE(started) << "no 'started' event (waited up to " << kStartTimeout.count() << " s)" << describe();
    EXPECT_EQ(started->value("tun", ""), kTun) << describe();
    // The function's limits: INITIALIZE's for RNDIS (the emulated FM350's INITIALIZE_CMPLT:
    // 16384 bytes, 8 packets, 2^3 alignment; docs/rndis.md), the NTB plan's for the others.
    if (started->value("function", "") == "rndis") {
      EXPECT_FALSE(started->contains("ntb")) << "NTB fields mean nothing for RNDIS: " << started->dump();
      ASSERT_TRUE(started->contains("rndis") && (*started)["rndis"].is_object()) << started->dump();
      const json& r = (*started)["rndis"];
      EXPECT_EQ(number_at(r, "in_max_transfer_size"), std::optional<std::uint64_t>(16384)) << started->dump();
      EXPECT_EQ(number_at(r, "out_max_transfer_size"), std::optional<std::uint64_t>(16384)) << started->dump();
      EXPECT_EQ(number_at(r, "max_packets_per_transfer"), std::optional<std::uint64_t>(8)) << started->dump();
      EXPECT_EQ(number_at(r, "packet_alignment_factor"), std::optional<std::uint64_t>(3)) << started->dump();
      EXPECT_EQ(number_at(r, "packet_alignment_bytes"), std::optional<std::uint64_t>(8)) << started->dump();
    } else {
      EXPECT_FALSE(started->contains("rndis")) << started->dump();
      ASSERT_TRUE(started->contains("ntb") && (*started)["ntb"].is_object()) << started->dump();
      EXPECT_TRUE(number_at((*started)["ntb"], "in_max_size")) << started->dump();
    }
    const auto connected = daemon_->wait_for("connected", kConnectTimeout);
    ASSERT_TRUE(connected) << "no 'connected' event (waited up to " << kConnectTimeout.count() << " s)" << describe();
    connected_ = *connected;
    ASSERT_NO_FATAL_FAILURE(check_connected(*connected));
  }

  void check_connected(const json& c) {
    ASSERT_TRUE(c.contains("ipv4") && c["ipv4"].is_object()) << "connected without ipv4" << describe();
    const json& v4 = c["ipv4"];
    EXPECT_EQ(v4.value("address", ""), kHost) << c.dump();
    EXPECT_EQ(number_at(v4, "prefix"), std::optional<std::uint64_t>(kNet.host_ipv4_prefix_length)) << c.dump();
    EXPECT_EQ(v4.value("gateway", ""), kGateway) << c.dump();
    if (GetParam().reports_dns) {
      EXPECT_EQ(v4.value("dns", json::array()),
                json::array({dotted(kNet.dns_ipv4[0]), dotted(kNet.dns_ipv4[1])}))
          << c.dump();
    }
    EXPECT_FALSE(c.contains("ipv6")) << "IPv6 reported up although only IPv4 was asked for: " << c.dump();
    const auto mtu = number_at(c, "mtu");
    ASSERT_TRUE(mtu) << "connected without mtu: " << c.dump();
    EXPECT_EQ(*mtu, kNet.mtu) << c.dump();
    mtu_ = static_cast<std::size_t>(*mtu);
    // The kernel's view: the event says the TUN is configured, so it must be now.
    const auto link = link_state(kTun);
    ASSERT_TRUE(link) << kTun << " does not exist after 'connected'" << describe();
    EXPECT_TRUE(link->up) << kTun << " is not up after 'connected'" << describe();
    EXPECT_EQ(link->mtu, static_cast<int>(*mtu)) << "TUN MTU differs from the event's" << describe();
    EXPECT_EQ(link->ipv4, std::optional<std::string>(kHost)) << "TUN address after 'connected'" << describe();
  }

  // The daemon's stats (SIGUSR1) and the kernel's counters; nullopt with a failure if either is missing.
  std::optional<Snapshot> snapshot() {
    Snapshot s;
    const auto st = daemon_->stats();
    if (!st) {
      ADD_FAILURE() << "no 'stats' event within 5 s of SIGUSR1" << describe();
      return std::nullopt;
    }
    s.stats = *st;
    const auto tun = dev_counters(kTun);
    if (!tun) {
      ADD_FAILURE() << kTun << " missing from /proc/net/dev";
      return std::nullopt;
    }
    s.tun = *tun;
    s.udp = snmp("Udp");
    if (!s.udp.count("RcvbufErrors") || !s.udp.count("SndbufErrors")) {
      ADD_FAILURE() << "/proc/net/snmp has no Udp RcvbufErrors / SndbufErrors";
      return std::nullopt;
    }
    return s;
  }

  // The growth of a stats field between two snapshots; a field the contract names but the event
  // lacks is a failure (and counts 0).
  std::uint64_t delta(const Snapshot& a, const Snapshot& b, const std::string& field) {
    const auto x = number_at(a.stats, field), y = number_at(b.stats, field);
    if (!x || !y) {
      ADD_FAILURE() << "stats event lacks the number " << field << ": " << b.stats.dump().substr(0, 2000);
      return 0;
    }
    return *y - *x;
  }

  std::unique_ptr<Daemon> daemon_;
  json connected_;
  std::size_t mtu_ = 1500;
};

// ---- 1. ping ---------------------------------------------------------------------------------------

TEST_P(DaemonTest, HundredPingsToTheGatewayWithoutLoss) {
  ASSERT_NO_FATAL_FAILURE(launch());
  Pinger pinger;
  std::string why;
  ASSERT_TRUE(pinger.open(kTun, why)) << why;
  const auto id = static_cast<std::uint16_t>(::getpid());
  std::vector<std::string> failures;
  for (std::uint16_t seq = 1; seq <= 100 && failures.size() < 5; ++seq) {
    const std::string r = pinger.ping(kGateway, id, seq, pattern(56, seq), kReplyTimeout);
    if (!r.empty()) failures.push_back("seq " + std::to_string(seq) + ": " + r);
  }
  std::string all;
  for (const auto& f : failures) all += "\n  " + f;
  EXPECT_TRUE(failures.empty()) << "pings to " << kGateway << " through " << kTun << " failed (stopped after 5):" << all
                                << describe();
}

// The TUN descriptor the daemon moves packets through is O_NONBLOCK. Not a style point: the io_uring
// of Linux 6.1 issues a TUN read or write inline, in submission order, only on an O_NONBLOCK
// descriptor, and otherwise hands every write to concurrent io-wq workers that reorder an NTB's
// packets (found by the VM rig: docs/vm.md). This host's kernel may issue them in order either
// way, so the flag itself is what is checked, through /proc/PID/fdinfo ("flags:" in octal).
TEST_P(DaemonTest, TheTunDescriptorIsNonblockingSoIoUringKeepsPacketOrder) {
  ASSERT_NO_FATAL_FAILURE(launch());
  const std::string fd_dir = "/proc/" + std::to_string(daemon_->pid()) + "/fd";
  DIR* dir = ::opendir(fd_dir.c_str());
  ASSERT_NE(dir, nullptr) << fd_dir << ": " << std::strerror(errno);
  std::vector<std::string> tun_fds;
  while (const dirent* e = ::readdir(dir)) {
    std::array<char, 256> target{};
    const std::string link = fd_dir + "/" + e->d_name;
    const ssize_t n = ::readlink(link.c_str(), target.data(), target.size() - 1);
    if (n > 0 && std::string(target.data(), static_cast<std::size_t>(n)) == "/dev/net/tun") tun_fds.emplace_back(e->d_name);
  }
  ::closedir(dir);
  ASSERT_FALSE(tun_fds.empty()) << "the daemon holds no /dev/net/tun descriptor" << describe();
  for (const std::string& fd : tun_fds) {
    std::ifstream info("/proc/" + std::to_string(daemon_->pid()) + "/fdinfo/" + fd);
    std::string key;
    unsigned long flags = 0;
    bool found = false;
    while (info >> key) {
      if (key == "flags:") {
        info >> std::oct >> flags >> std::dec;
        found = true;
        break;
      }
    }
    ASSERT_TRUE(found) << "no flags: line in fdinfo of fd " << fd;
    EXPECT_NE(flags & static_cast<unsigned long>(O_NONBLOCK), 0u)
        << "TUN descriptor " << fd << " is blocking (flags 0" << std::oct << flags << std::dec << ")";
  }
}

// ---- 2. UDP echo of every size -------------------------------------------------------------------------

TEST_P(DaemonTest, UdpEchoOfEveryPayloadSizeUpToTheMtuIsByteIdentical) {
  ASSERT_NO_FATAL_FAILURE(launch());
  std::string why;
  Fd s = udp_socket(kTun, 0, kGateway, sim::kUdpEchoPort, why);
  ASSERT_TRUE(s.valid()) << why;
  const auto before = snapshot();
  ASSERT_TRUE(before);
  const std::size_t largest = mtu_ - 28;  // IPv4 header 20 + UDP header 8
  std::vector<std::string> failures;
  std::vector<std::uint8_t> back(65536);
  for (std::size_t size = 1; size <= largest && failures.size() < 5; ++size) {
    const std::vector<std::uint8_t> sent = pattern(size, size);
    if (::send(s.get(), sent.data(), sent.size(), 0) != static_cast<ssize_t>(size)) {
      failures.push_back(std::to_string(size) + " bytes: " + errno_text("send"));
      continue;
    }
    if (!readable(s.get(), Clock::now() + kReplyTimeout)) {
      failures.push_back(std::to_string(size) + " bytes: no echo within 2 s");
      continue;
    }
    const ssize_t got = ::recv(s.get(), back.data(), back.size(), MSG_DONTWAIT);
    if (got != static_cast<ssize_t>(size) || !std::equal(sent.begin(), sent.end(), back.begin()))
      failures.push_back(std::to_string(size) + " bytes: the echo differs (" + std::to_string(got) + " bytes back)");
  }
  std::string all;
  for (const auto& f : failures) all += "\n  " + f;
  ASSERT_TRUE(failures.empty()) << "UDP echo to " << kGateway << ":" << sim::kUdpEchoPort << " (sizes 1.." << largest
                                << ", stopped after 5 failures):" << all << describe();
  // Exactly one echo per datagram reached the network: none duplicated, none lost on the way up.
  const auto after = snapshot();
  ASSERT_TRUE(after);
  EXPECT_EQ(delta(*before, *after, "sim.network.udp_echo_replies"), largest) << describe();
}

// ---- 3. floods and the accounting of every packet -----------------------------------------------

TEST_P(DaemonTest, FloodsEachWayAccountForEveryPacket) {
  ASSERT_NO_FATAL_FAILURE(launch());
  const auto duration = flood_duration();
  std::string why;
  const std::size_t payload = mtu_ - 28;

  // Upstream: UDP to the discard port as fast as the socket takes them.
  {
    Fd s = udp_socket(kTun, 0, kGateway, sim::kUdpDiscardPort, why);
    ASSERT_TRUE(s.valid()) << why;
    const timeval limit{1, 0};  // a stuck data path shows as send timeouts, not a hung test
    ASSERT_EQ(::setsockopt(s.get(), SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit), 0) << errno_text("SO_SNDTIMEO");
    const auto first = snapshot();
    ASSERT_TRUE(first);
    const Snapshot& s0 = *first;
    const std::vector<std::uint8_t> data = pattern(payload, 0);
    std::uint64_t sent = 0;
    std::map<int, std::uint64_t> send_errors;
    const Clock::time_point end = Clock::now() + duration;
    while (Clock::now() < end) {
      for (int i = 0; i < 64; ++i) {
        if (::send(s.get(), data.data(), data.size(), 0) == static_cast<ssize_t>(data.size()))
          ++sent;
        else
          ++send_errors[errno];
      }
    }
    ASSERT_GT(sent, 0u) << "no datagram could be sent";
    // Packets still in the TUN queue, the daemon or the modem are not lost: poll the counters
    // until the equation balances or a deadline passes (then report every term).
    Snapshot s1;
    std::uint64_t sink = 0, dropped = 0, tun_dropped = 0, sndbuf = 0;
    const Clock::time_point deadline = Clock::now() + 10s;
    for (;;) {
      const auto now = snapshot();
      ASSERT_TRUE(now);
      s1 = *now;
      sink = delta(s0, s1, "sim.network.sink_packets");
      dropped = delta(s0, s1, "tx.dropped");
      tun_dropped = s1.tun.tx_dropped - s0.tun.tx_dropped;
      sndbuf = s1.udp.at("SndbufErrors") - s0.udp.at("SndbufErrors");
      if (sink + dropped + tun_dropped + sndbuf >= sent || Clock::now() >= deadline) break;
      daemon_->idle(100ms);  // the bounded pause between two polls of the counters
    }
    std::ostringstream errors;
    for (const auto& [e, n] : send_errors) errors << " " << std::strerror(e) << " x" << n;
    std::cout << "[ info     ] upstream " << duration.count() << " s: sent " << sent << " = sink " << sink
              << " + tx.dropped " << dropped << " + tun tx_dropped " << tun_dropped << " + SndbufErrors " << sndbuf
              << " (" << sent * payload * 8 / 1'000'000 / static_cast<std::uint64_t>(duration.count())
              << " Mbit/s of payload)\n";
    EXPECT_EQ(sent, sink + dropped + tun_dropped + sndbuf)
        << "upstream: test_sent " << sent << " == sim sink_packets " << sink << " + daemon tx.dropped " << dropped
        << " + kernel tun tx_dropped " << tun_dropped << " + kernel Udp SndbufErrors " << sndbuf
        << "\n  (send errors, not counted as sent:" << (errors.str().empty() ? " none" : errors.str())
        << ")\n  context: daemon tx.packets +" << delta(s0, s1, "tx.packets") << ", tun tx_packets +"
        << s1.tun.tx_packets - s0.tun.tx_packets << ", modem datagrams_from_host +"
        << delta(s0, s1, "sim.modem.datagrams_from_host") << ", modem ntbs_from_host_dropped +"
        << delta(s0, s1, "sim.modem.ntbs_from_host_dropped") << ", modem frames_before_session +"
        << delta(s0, s1, "sim.modem.frames_before_session") << ", network packets_from_host +"
        << delta(s0, s1, "sim.network.packets_from_host") << ", malformed_from_host +"
        << delta(s0, s1, "sim.network.malformed_from_host") << ", other_packets +"
        << delta(s0, s1, "sim.network.other_packets") << "\n  tx.drops: " << s1.stats["tx"].value("drops", json::object()).dump()
        << describe();
  }

  // Downstream: the network's source as fast as the host takes them, received on UDP 5001.
  {
    Fd r = udp_socket(kTun, kSourcePort, std::nullopt, 0, why);
    ASSERT_TRUE(r.valid()) << why;
    const int rcvbuf = 8 << 20;
    ::setsockopt(r.get(), SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf);  // fewer drops; drops are counted anyway
    ControlPort control;
    ASSERT_TRUE(control.open(kTun, kGateway, why)) << why;
    const auto first = snapshot();
    ASSERT_TRUE(first);
    const Snapshot& s0 = *first;

    constexpr unsigned kBatch = 64;
    std::vector<std::uint8_t> buffers(kBatch * 2048);
    std::array<iovec, kBatch> iov{};
    std::array<mmsghdr, kBatch> msgs{};
    std::vector<std::uint8_t> expected = pattern(payload, 0);
    for (std::size_t i = 8; i < payload; ++i) expected[i] = static_cast<std::uint8_t>(i);  // sim::Network's pattern
    std::uint64_t received = 0, wrong = 0, out_of_order = 0;
    std::uint64_t next_sequence = 0;
    const auto receive = [&] {
      for (;;) {
        for (unsigned i = 0; i < kBatch; ++i) {
          iov[i] = {buffers.data() + i * 2048, 2048};
          msgs[i] = {};
          msgs[i].msg_hdr.msg_iov = &iov[i];
          msgs[i].msg_hdr.msg_iovlen = 1;
        }
        const int n = ::recvmmsg(r.get(), msgs.data(), kBatch, MSG_DONTWAIT, nullptr);
        if (n <= 0) return;
        for (unsigned i = 0; i < static_cast<unsigned>(n); ++i) {
          ++received;
          const std::uint8_t* p = buffers.data() + i * 2048;
          if (msgs[i].msg_len != payload || !std::equal(expected.begin() + 8, expected.end(), p + 8)) {
            ++wrong;
            continue;
          }
          std::uint64_t sequence = 0;
          for (int k = 0; k < 8; ++k) sequence = sequence << 8 | p[k];
          if (sequence < next_sequence) ++out_of_order;  // duplicated or reordered
          next_sequence = sequence + 1;
        }
      }
    };
    // Receives for `until`, or until the control port answers when `answer` is given.
    const auto run_until = [&](Clock::time_point until, std::optional<std::string>* answer) {
      while (Clock::now() < until) {
        std::array<pollfd, 2> fds = {pollfd{r.get(), POLLIN, 0}, pollfd{control.fd(), POLLIN, 0}};
        const auto left = std::chrono::duration_cast<milliseconds>(until - Clock::now()).count();
        ::poll(fds.data(), fds.size(), static_cast<int>(std::clamp<long long>(left, 0, 100)));
        receive();
        if (answer != nullptr && !*answer) *answer = control.answer();
        if (answer != nullptr && *answer) return;
      }
    };
    const std::string start = "source 0 " + std::to_string(payload) + " 0 " + std::to_string(kSourcePort);
    ASSERT_TRUE(control.send(start, why)) << why;
    std::optional<std::string> answer;
    run_until(Clock::now() + 5s, &answer);
    ASSERT_EQ(answer, std::optional<std::string>("ok")) << "control port answer to '" << start << "'" << describe();
    run_until(Clock::now() + duration, nullptr);
    ASSERT_TRUE(control.send("stop-source", why)) << why;
    answer.reset();
    run_until(Clock::now() + 5s, &answer);
    ASSERT_EQ(answer, std::optional<std::string>("ok")) << "control port answer to 'stop-source'" << describe();
    // Drain: what is already in flight keeps arriving; then balance the books.
    Snapshot s1;
    std::uint64_t source = 0, queue_full = 0, too_large = 0, dropped = 0, tun_dropped = 0, rcvbuf_errors = 0;
    const Clock::time_point deadline = Clock::now() + 10s;
    for (;;) {
      const std::uint64_t before = received;
      run_until(Clock::now() + 200ms, nullptr);
      if (received != before && Clock::now() < deadline) continue;  // still arriving
      const auto now = snapshot();
      ASSERT_TRUE(now);
      s1 = *now;
      source = delta(s0, s1, "sim.network.source_packets");
      queue_full = delta(s0, s1, "sim.network.dropped_queue_full");
      too_large = delta(s0, s1, "sim.network.dropped_too_large");
      dropped = delta(s0, s1, "rx.dropped");
      tun_dropped = s1.tun.rx_dropped - s0.tun.rx_dropped;
      rcvbuf_errors = s1.udp.at("RcvbufErrors") - s0.udp.at("RcvbufErrors");
      if (received + queue_full + too_large + dropped + tun_dropped + rcvbuf_errors >= source ||
          Clock::now() >= deadline)
        break;
    }
    std::cout << "[ info     ] downstream " << duration.count() << " s: source " << source << " = received "
              << received << " + queue_full " << queue_full << " + too_large " << too_large << " + rx.dropped "
              << dropped << " + tun rx_dropped " << tun_dropped << " + RcvbufErrors " << rcvbuf_errors << " ("
              << received * payload * 8 / 1'000'000 / static_cast<std::uint64_t>(duration.count())
              << " Mbit/s of payload received)\n";
    EXPECT_GT(received, 0u) << "nothing of the downstream flood arrived" << describe();
    EXPECT_EQ(source, received + queue_full + too_large + dropped + tun_dropped + rcvbuf_errors)
        << "downstream: sim source_packets " << source << " == test_received " << received
        << " + sim dropped_queue_full " << queue_full << " + sim dropped_too_large " << too_large
        << " + daemon rx.dropped " << dropped << " + kernel tun rx_dropped " << tun_dropped
        << " + kernel Udp RcvbufErrors " << rcvbuf_errors << "\n  context: sim packets_to_host +"
        << delta(s0, s1, "sim.network.packets_to_host") << ", modem datagrams_to_host +"
        << delta(s0, s1, "sim.modem.datagrams_to_host") << ", daemon rx.packets +" << delta(s0, s1, "rx.packets")
        << ", tun rx_packets +" << s1.tun.rx_packets - s0.tun.rx_packets << ", Udp InErrors +"
        << s1.udp.at("InErrors") - s0.udp.at("InErrors") << ", Udp NoPorts +" << s1.udp.at("NoPorts") - s0.udp.at("NoPorts")
        << "\n  rx.drops: " << s1.stats["rx"].value("drops", json::object()).dump()
        << " ntb_errors: " << s1.stats.value("ntb_errors", json::object()).dump() << describe();
    EXPECT_EQ(wrong, 0u) << "datagrams of the wrong size or content";
    EXPECT_EQ(out_of_order, 0u) << "datagrams duplicated or out of order";
  }
}

// ---- 4. redial ------------------------------------------------------------------------------------------

TEST_P(DaemonTest, RedialsAfterTheNetworkDropsTheSession) {
  ASSERT_NO_FATAL_FAILURE(launch());
  std::string why;
  ControlPort control;
  ASSERT_TRUE(control.open(kTun, kGateway, why)) << why;
  const auto answer = control.command("drop-session", kReplyTimeout, why);
  ASSERT_TRUE(answer) << why << "\n  kernel: " << kernel_counters() << describe();
  ASSERT_EQ(*answer, "ok");
  const auto disconnected = daemon_->wait_for("disconnected", 10s);
  ASSERT_TRUE(disconnected) << "no 'disconnected' event within 10 s of drop-session" << describe();
  EXPECT_TRUE(disconnected->contains("reason")) << disconnected->dump();
  const auto connected = daemon_->wait_for("connected", kConnectTimeout);
  ASSERT_TRUE(connected) << "no 'connected' event after the drop" << describe();
  ASSERT_NO_FATAL_FAILURE(check_connected(*connected));
  Pinger pinger;
  ASSERT_TRUE(pinger.open(kTun, why)) << why;
  const std::string r = pinger.ping(kGateway, static_cast<std::uint16_t>(::getpid()), 1, pattern(56, 1), kReplyTimeout);
  EXPECT_EQ(r, "") << "ping after the redial" << describe();
  const auto st = daemon_->stats();
  ASSERT_TRUE(st) << describe();
  EXPECT_EQ(st->value("session", ""), "connected") << st->dump();
}

// ---- 4b. re-enumeration ---------------------------------------------------------------------------------

// The modem leaves the bus (the control port's `unplug`: firmware resets and re-enumerate this
// way). The daemon reports the loss, keeps the TUN, finds the (fresh, emulated) modem again,
// negotiates and connects anew on the same TUN, and traffic flows again.
TEST_P(DaemonTest, SurvivesTheModemLeavingTheBusAndComingBack) {
  ASSERT_NO_FATAL_FAILURE(launch());
  const unsigned ifindex = if_nametoindex(kTun.c_str());
  ASSERT_NE(ifindex, 0u);
  std::string why;
  ControlPort control;
  ASSERT_TRUE(control.open(kTun, kGateway, why)) << why;
  const auto answer = control.command("unplug", kReplyTimeout, why);
  ASSERT_TRUE(answer) << why << describe();
  ASSERT_EQ(*answer, "ok");
  const auto disconnected = daemon_->wait_for("disconnected", 10s);
  ASSERT_TRUE(disconnected) << "no 'disconnected' event after the unplug" << describe();
  EXPECT_NE(disconnected->value("reason", "").find("left the bus"), std::string::npos) << disconnected->dump();
  const auto connected = daemon_->wait_for("connected", kConnectTimeout);
  ASSERT_TRUE(connected) << "no 'connected' event after the modem came back" << describe();
  ASSERT_NO_FATAL_FAILURE(check_connected(*connected));
  EXPECT_EQ(if_nametoindex(kTun.c_str()), ifindex) << "the same TUN, not a new one";
  Pinger pinger;
  ASSERT_TRUE(pinger.open(kTun, why)) << why;
  const std::string r = pinger.ping(kGateway, static_cast<std::uint16_t>(::getpid()), 7, pattern(56, 7), kReplyTimeout);
  EXPECT_EQ(r, "") << "ping after the re-enumeration" << describe();
}

// ---- 5. clean shutdown under load -------------------------------------------------------------------

TEST_P(DaemonTest, SigtermUnderLoadStopsCleanlyWithinTwoSeconds) {
  ASSERT_NO_FATAL_FAILURE(launch());
  std::string why;
  ControlPort control;
  ASSERT_TRUE(control.open(kTun, kGateway, why)) << why;
  Fd sink = udp_socket(kTun, kSourcePort, std::nullopt, 0, why);  // takes the stream (and is never read)
  ASSERT_TRUE(sink.valid()) << why;
  const auto answer = control.command("source 0 1472 0 5001", kReplyTimeout, why);
  ASSERT_EQ(answer, std::optional<std::string>("ok")) << why << describe();
  std::atomic<bool> stop{false};
  std::thread upstream([&stop, payload = mtu_ - 28] {
    std::string e;
    Fd s = udp_socket(kTun, 0, kGateway, sim::kUdpDiscardPort, e);
    if (!s.valid()) return;
    const timeval limit{0, 100'000};
    ::setsockopt(s.get(), SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
    const std::vector<std::uint8_t> data(payload, 0x5a);
    while (!stop.load(std::memory_order_relaxed)) {
      if (::send(s.get(), data.data(), data.size(), 0) < 0 && errno != EAGAIN && errno != ENOBUFS && errno != EINTR)
        return;  // the TUN went away
    }
  });
  struct Joiner {
    std::atomic<bool>& stop;
    std::thread& t;
    ~Joiner() {
      stop = true;
      t.join();
    }
  } joiner{stop, upstream};

  // Under load for real: both directions moving (bounded wait on the daemon's own counters).
  const auto s0 = daemon_->stats();
  ASSERT_TRUE(s0) << describe();
  std::uint64_t rx = 0, tx = 0;
  const Clock::time_point deadline = Clock::now() + 10s;
  while (Clock::now() < deadline) {
    const auto s = daemon_->stats();
    ASSERT_TRUE(s) << describe();
    rx = number_at(*s, "rx.packets").value_or(0) - number_at(*s0, "rx.packets").value_or(0);
    tx = number_at(*s, "tx.packets").value_or(0) - number_at(*s0, "tx.packets").value_or(0);
    if (rx >= 1000 && tx >= 1000) break;
  }
  ASSERT_TRUE(rx >= 1000 && tx >= 1000) << "no load: rx.packets +" << rx << ", tx.packets +" << tx << describe();
  std::cout << "[ info     ] under load: rx.packets +" << rx << ", tx.packets +" << tx << " before SIGTERM\n";

  const Clock::time_point sent = Clock::now();
  ASSERT_TRUE(daemon_->signal(SIGTERM)) << describe();
  const auto stopped = daemon_->wait_for("stopped", kShutdownLimit);
  const auto left = kShutdownLimit - std::chrono::duration_cast<milliseconds>(Clock::now() - sent);
  const auto status = daemon_->wait_exit(std::max(milliseconds(0), std::chrono::duration_cast<milliseconds>(left)));
  const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - sent);
  ASSERT_TRUE(stopped) << "no 'stopped' event within 2 s of SIGTERM" << describe();
  ASSERT_TRUE(status) << "still running 2 s after SIGTERM" << describe();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << "exit after SIGTERM" << describe();
  EXPECT_LE(took, kShutdownLimit);
  std::cout << "[ info     ] SIGTERM to exit: " << took.count() << " ms\n";
  EXPECT_EQ(daemon_->history().back().value("event", ""), "stopped") << "'stopped' must be the last event" << describe();
  EXPECT_EQ(::if_nametoindex(kTun.c_str()), 0u) << kTun << " still exists after the daemon exited";
  const auto children = my_children();
  std::string list;
  for (const auto& c : children) list += "\n  " + c;
  EXPECT_TRUE(children.empty()) << "processes left behind:" << list;
}

// ---- 6. the capture file ------------------------------------------------------------------------------

TEST_P(DaemonTest, CaptureFileHasFramesAndNoneMalformed) {
  const auto tshark = find_in_path("tshark");
  if (!tshark) GTEST_SKIP() << "tshark is not installed (apt install tshark): the capture cannot be checked";
  std::array<char, 64> dir_template{};
  std::snprintf(dir_template.data(), dir_template.size(), "/tmp/wwan-dp-capture-XXXXXX");
  ASSERT_NE(::mkdtemp(dir_template.data()), nullptr) << errno_text("mkdtemp");
  const std::string dir = dir_template.data();
  const std::string file = dir + "/capture.pcap";
  struct Cleanup {
    std::string dir, file;
    ~Cleanup() {
      ::unlink(file.c_str());
      ::rmdir(dir.c_str());
    }
  } cleanup{dir, file};

  ASSERT_NO_FATAL_FAILURE(launch({"--capture", file}));
  std::string why;
  Pinger pinger;
  ASSERT_TRUE(pinger.open(kTun, why)) << why;
  for (std::uint16_t seq = 1; seq <= 10; ++seq)
    EXPECT_EQ(pinger.ping(kGateway, static_cast<std::uint16_t>(::getpid()), seq, pattern(56, seq), kReplyTimeout), "");
  Fd echo = udp_socket(kTun, 0, kGateway, sim::kUdpEchoPort, why);
  ASSERT_TRUE(echo.valid()) << why;
  for (const std::size_t size : {std::size_t{1}, std::size_t{100}, mtu_ - 28}) {
    const auto p = pattern(size, size);
    ASSERT_EQ(::send(echo.get(), p.data(), p.size(), 0), static_cast<ssize_t>(size)) << errno_text("send");
    EXPECT_TRUE(readable(echo.get(), Clock::now() + kReplyTimeout)) << "no UDP echo of " << size << " bytes";
  }
  ASSERT_TRUE(daemon_->signal(SIGTERM));
  ASSERT_TRUE(daemon_->wait_for("stopped", 5s)) << describe();
  const auto status = daemon_->wait_exit(5s);
  ASSERT_TRUE(status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << describe();

  int rc = 0;
  const std::string frames = run(*tshark + " -n -r '" + file + "' -T fields -e frame.number 2>/dev/null", rc);
  ASSERT_EQ(rc, 0) << "tshark could not read " << file;
  EXPECT_GT(lines(frames), 0u) << "the capture has no frames";
  const std::string malformed =
      run(*tshark + " -n -r '" + file + "' -Y _ws.malformed -T fields -e frame.number -e _ws.col.Info 2>/dev/null", rc);
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(malformed, "") << lines(malformed) << " malformed frames of " << lines(frames) << " (frame number, info):\n"
                           << malformed.substr(0, 4000);
  // How far Wireshark followed the frames (for the log: the NTB dissectors reach the IP packets).
  const std::string icmp = run(*tshark + " -n -r '" + file + "' -Y icmp -T fields -e frame.number 2>/dev/null", rc);
  std::cout << "[ info     ] capture: " << lines(frames) << " frames, " << lines(icmp) << " decoded down to ICMP\n";
  RecordProperty("capture_frames", static_cast<int>(lines(frames)));
  RecordProperty("capture_icmp_frames", static_cast<int>(lines(icmp)));
}

// ---- 7. what a user gets wrong ---------------------------------------------------------------------

// Each ends the daemon with exit status 1 and ONE line on stderr saying what is wrong, and
// leaves no TUN behind.
class DaemonRefusalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (a network namespace, a TUN)";
    const char* exe = std::getenv("WWAN_DP_EXE");
    ASSERT_NE(exe, nullptr) << "WWAN_DP_EXE is not set (run through meson test, which sets it)";
    exe_ = exe;
    if (const std::string why = enter_fresh_network_namespace(); !why.empty())
      GTEST_SKIP() << "cannot make a fresh network namespace: " << why;
  }
  void expect_refused(const std::string& what) {
    Daemon d;
    ASSERT_TRUE(d.start(exe_, {"--sim", "huawei-e3372", "--tun", kTun, "--json"})) << errno_text("starting the daemon");
    const auto status = d.wait_exit(10s);
    ASSERT_TRUE(status) << "still running" << d.describe();
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 1) << d.describe();
    const std::string& err = d.stderr_text();
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
    EXPECT_NE(err.find(what), std::string::npos) << err;
    EXPECT_EQ(d.count("connected"), 0u);
  }
  std::string exe_;
};

TEST_F(DaemonRefusalTest, UnusableIoUring) {
  // kernel.io_uring_disabled = 2 refuses io_uring_setup to everyone (Linux 6.6+): what a router
  // kernel built without io_uring, or a locked-down container, looks like. The suite runs alone
  // (is_parallel: false), and the old value is put back whatever happens.
  const char* knob = "/proc/sys/kernel/io_uring_disabled";
  std::string old;
  if (std::FILE* f = std::fopen(knob, "r")) {
    char b[16] = {};
    if (std::fgets(b, sizeof b, f) != nullptr) old = b;
    std::fclose(f);
  }
  if (old.empty() || ::access(knob, W_OK) != 0) GTEST_SKIP() << knob << " is not writable here";
  const auto write_knob = [knob](const std::string& v) {
    std::FILE* f = std::fopen(knob, "w");
    if (f == nullptr) return false;
    const bool ok = std::fputs(v.c_str(), f) >= 0;
    return std::fclose(f) == 0 && ok;
  };
  struct Restore {
    std::function<void()> fn;
    ~Restore() { fn(); }
  } restore{[&] { write_knob(old); }};
  ASSERT_TRUE(write_knob("2")) << errno_text("writing io_uring_disabled");
  expect_refused("io_uring is not usable: io_uring is disabled here");
  EXPECT_EQ(::if_nametoindex(kTun.c_str()), 0u) << "no TUN is made for a daemon that cannot run";
}

TEST_F(DaemonRefusalTest, TunNameTakenByAnotherKindOfInterface) {
  int rc = 0;
  run("ip link add " + kTun + " type veth peer name wwdp-it-peer 2>&1", rc);
  ASSERT_EQ(rc, 0) << "could not make a veth to be in the way";
  expect_refused(kTun);
  EXPECT_NE(::if_nametoindex(kTun.c_str()), 0u) << "someone else's interface is left alone";
}

INSTANTIATE_TEST_SUITE_P(Sim, DaemonTest,
                         ::testing::Values(Profile{"huawei-e3372", {}, true},
                                           // No session to report an address: DHCP on the link, with
                                           // the emulated server's 20 s leases renewing under every test.
                                           Profile{"generic-ncm", {}, true},
                                           Profile{"mbim", {}, true},
                                           // RNDIS data path; FCC unlock, AT+CGACT and AT+CGPADDR on
                                           // the serial AT port (docs/rndis.md).
                                           Profile{"fm350-rndis", {}, true},
                                           // AT+QNETDEVCTL on the AT serial port, then DHCP (docs/quectel.md).
                                           Profile{"quectel-ncm", {}, true},
                                           // The RM500U-CN (2c7c:0900): its quirk row's cid-first
                                           // AT+QNETDEVCTL, its AT port on interface 4.
                                           Profile{"quectel-ncm+unisoc", {}, true}),
                         test_name);

// ---- 8. the link's own addressing: DHCP and router advertisements (docs/dhcp.md) ----------------

class LinkAddressingTest : public DaemonTest {
 protected:
  // The next event called `name` for which `pred` holds, from history position `from` on (events
  // already read by stats() or an earlier wait are found too); `from` moves past it.
  std::optional<json> next_event(std::size_t& from, const std::string& name,
                                 const std::function<bool(const json&)>& pred, milliseconds timeout) {
    const Clock::time_point deadline = Clock::now() + timeout;
    for (;;) {
      const std::vector<json>& h = daemon_->history();
      for (; from < h.size(); ++from) {
        if (h[from].value("event", "") == name && pred(h[from])) {
          json found = h[from];
          ++from;
          return found;
        }
      }
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return std::nullopt;
      (void)daemon_->wait_for(name, left);
    }
  }
  static bool any(const json&) { return true; }
  static std::function<bool(const json&)> lease_state(const std::string& state) {
    return [state](const json& e) { return e.value("state", "") == state; };
  }
  void ping_gateway(std::uint16_t seq) {
    Pinger pinger;
    std::string why;
    ASSERT_TRUE(pinger.open(kTun, why)) << why;
    EXPECT_EQ(pinger.ping(kGateway, static_cast<std::uint16_t>(::getpid()), seq, pattern(56, seq), kReplyTimeout), "")
        << "ping over IPv4" << describe();
  }
};

TEST_P(LinkAddressingTest, TheLeaseIsObtainedAndRenewedAtT1) {
  ASSERT_NO_FATAL_FAILURE(launch());
  std::size_t at = 0;
  const auto acquired = next_event(at, "lease", lease_state("acquired"), 1s);
  ASSERT_TRUE(acquired) << "connected without a 'lease' acquired event before it" << describe();
  EXPECT_EQ(acquired->value("address", ""), kHost);
  EXPECT_EQ(acquired->value("server", ""), kGateway);
  EXPECT_EQ(number_at(*acquired, "lease_s"), std::optional<std::uint64_t>(sim::kDefaultLeaseSeconds));
  // T1 is half the lease: a renewal within the lease time, same address, and no disconnect.
  const auto renewed = next_event(at, "lease", lease_state("renewed"), std::chrono::seconds(sim::kDefaultLeaseSeconds));
  ASSERT_TRUE(renewed) << "no renewal within one lease time" << describe();
  EXPECT_EQ(renewed->value("address", ""), kHost);
  EXPECT_EQ(daemon_->count("disconnected"), 0u) << describe();
  ASSERT_NO_FATAL_FAILURE(ping_gateway(1));
  const auto st = daemon_->stats();
  ASSERT_TRUE(st) << describe();
  EXPECT_GE(number_at(*st, "autoconf.dhcp.renewals").value_or(0), 1u) << st->dump();
  EXPECT_GE(number_at(*st, "sim.dhcp_server.acks").value_or(0), 2u) << st->dump();
  EXPECT_EQ(st->value("autoconf", json::object()).value("dhcp", json::object()).value("state", ""), "BOUND");
  EXPECT_GE(number_at(*st, "rx.control_diverted").value_or(0), 3u) << "OFFER, ACK, ACK went to the control thread";
}

TEST_P(LinkAddressingTest, ANakTakesTheAddressAwayAndDhcpGetsItBack) {
  ASSERT_NO_FATAL_FAILURE(launch());
  std::string why;
  ControlPort control;
  ASSERT_TRUE(control.open(kTun, kGateway, why)) << why;
  ASSERT_EQ(control.command("dhcp-nak", kReplyTimeout, why), std::optional<std::string>("ok")) << why << describe();
  std::size_t at = 0;
  const auto lost = next_event(at, "lease", lease_state("lost"), std::chrono::seconds(sim::kDefaultLeaseSeconds));
  ASSERT_TRUE(lost) << "the renewal's DHCPNAK did not cost the lease" << describe();
  EXPECT_NE(lost->value("reason", "").find("DHCPNAK from " + kGateway), std::string::npos) << lost->dump();
  const auto down = next_event(at, "disconnected", any, 5s);
  ASSERT_TRUE(down) << "the address stayed after the lease was lost" << describe();
  EXPECT_NE(down->value("reason", "").find("DHCPNAK"), std::string::npos) << down->dump();
  const auto again = next_event(at, "connected", any, kConnectTimeout);
  ASSERT_TRUE(again) << "no new lease after the DHCPNAK" << describe();
  ASSERT_NO_FATAL_FAILURE(check_connected(*again));
  ASSERT_NO_FATAL_FAILURE(ping_gateway(2));
}

TEST_P(LinkAddressingTest, TheLeaseExpiresWhileTheServerIsSilentAndComesBackAfter) {
  ASSERT_NO_FATAL_FAILURE(launch());
  std::string why;
  ControlPort control;
  ASSERT_TRUE(control.open(kTun, kGateway, why)) << why;
  ASSERT_EQ(control.command("dhcp-silent 25", kReplyTimeout, why), std::optional<std::string>("ok")) << why << describe();
  std::size_t at = 0;
  const auto lost = next_event(at, "lease", lease_state("lost"), std::chrono::seconds(sim::kDefaultLeaseSeconds + 5));
  ASSERT_TRUE(lost) << "the lease did not run out" << describe();
  EXPECT_EQ(lost->value("reason", ""), "the DHCP lease expired") << lost->dump();
  const auto down = next_event(at, "disconnected", any, 5s);
  ASSERT_TRUE(down) << describe();
  const auto link = link_state(kTun);
  ASSERT_TRUE(link);
  EXPECT_FALSE(link->ipv4) << "the expired address is gone from the TUN";
  const auto again = next_event(at, "connected", any, 40s);
  ASSERT_TRUE(again) << "no new lease once the server answered again" << describe();
  ASSERT_NO_FATAL_FAILURE(check_connected(*again));
  ASSERT_NO_FATAL_FAILURE(ping_gateway(3));
}

// --ip-type ipv4v6 on a DHCP link: IPv4 from the lease, IPv6 from the RA (SLAAC with our MAC's
// EUI-64 under the advertised /64), default route and MTU from the RA; ping over both families.
TEST_P(LinkAddressingTest, Ipv6FromTheRouterAdvertisementAndPingOverBothFamilies) {
  ASSERT_EQ(write_sysctl("net/ipv6/conf/default/disable_ipv6", "0"), "");
  daemon_ = std::make_unique<Daemon>();
  ASSERT_TRUE(daemon_->start(exe_, {"--sim", GetParam().name, "--tun", kTun, "--json", "--ip-type", "ipv4v6",
                                    "--default-route"}));
  std::size_t at = 0;
  const auto both = next_event(at, "connected", [](const json& e) { return e.contains("ipv4") && e.contains("ipv6"); },
                               kConnectTimeout);
  ASSERT_TRUE(both) << "no 'connected' with both families" << describe();
  // 2001:db8:0:1::/64 (the emulated router) + EUI-64 of 02:00:00:00:00:02 (iMACAddress).
  in6_addr expected{}, got{}, gateway{};
  ASSERT_EQ(::inet_pton(AF_INET6, "2001:db8:0:1:0:ff:fe00:2", &expected), 1);
  ASSERT_EQ(::inet_pton(AF_INET6, (*both)["ipv6"].value("address", "").c_str(), &got), 1) << both->dump();
  EXPECT_EQ(std::memcmp(&expected, &got, sizeof got), 0) << both->dump();
  EXPECT_EQ(number_at((*both)["ipv6"], "prefix"), std::optional<std::uint64_t>(64));
  ASSERT_EQ(::inet_pton(AF_INET6, (*both)["ipv6"].value("gateway", "").c_str(), &gateway), 1) << both->dump();
  EXPECT_EQ(gateway.s6_addr[0], 0xfe) << "the router's link-local address";
  EXPECT_EQ(gateway.s6_addr[15], 1);
  EXPECT_EQ((*both)["ipv6"].value("dns", json::array()), json::array({"2001:db8:0:0:0:0:0:53"})) << "RDNSS";
  // The kernel's view: the address on the TUN, and a default route through it.
  int rc = 0;
  const std::string addresses = run("ip -6 addr show dev " + kTun + " scope global", rc);
  EXPECT_NE(addresses.find("2001:db8:0:1:0:ff:fe00:2/64"), std::string::npos) << addresses;
  const std::string routes = run("ip -6 route show default dev " + kTun, rc);
  EXPECT_NE(routes.find("default"), std::string::npos) << "no IPv6 default route via " << kTun << ": " << routes;
  // Ping over both families.
  ASSERT_NO_FATAL_FAILURE(ping_gateway(4));
  const std::string ping6 = run("ping -6 -c 3 -W 2 -I " + kTun + " 2001:db8:0:1::1 2>&1", rc);
  EXPECT_EQ(rc, 0) << ping6 << describe();
  const auto st = daemon_->stats();
  ASSERT_TRUE(st) << describe();
  EXPECT_GE(number_at(*st, "autoconf.ra.advertisements").value_or(0), 1u) << st->dump();
  EXPECT_GE(number_at(*st, "sim.router.solicited").value_or(0), 1u) << st->dump();
}

INSTANTIATE_TEST_SUITE_P(Sim, LinkAddressingTest,
                         ::testing::Values(Profile{"generic-ncm", {}, true}, Profile{"quectel-ncm", {}, true}), test_name);

// Huawei firmware whose AT^DHCP? answers ERROR (the +no-dhcp-at variant: its stick runs a DHCP
// server on the link instead): the session connects without an IPv4 address and the daemon gets
// it by DHCP (control/link_autoconf.hpp dhcp4_fallback), renews it, and traffic flows.
using HuaweiDhcpFallbackTest = LinkAddressingTest;

TEST_P(HuaweiDhcpFallbackTest, ComesUpByDhcpWhenTheDhcpQueryFails) {
  ASSERT_NO_FATAL_FAILURE(launch());  // connected with 10.64.64.2/30, gateway and DNS (check_connected)
  std::size_t at = 0;
  const auto acquired = next_event(at, "lease", lease_state("acquired"), 1s);
  ASSERT_TRUE(acquired) << "connected without a DHCP lease: the address did not come from DHCP" << describe();
  EXPECT_EQ(acquired->value("address", ""), kHost);
  ASSERT_NO_FATAL_FAILURE(ping_gateway(5));
  const auto renewed = next_event(at, "lease", lease_state("renewed"), std::chrono::seconds(sim::kDefaultLeaseSeconds));
  ASSERT_TRUE(renewed) << "no renewal within one lease time" << describe();
  const auto st = daemon_->stats();
  ASSERT_TRUE(st) << describe();
  EXPECT_EQ(st->value("autoconf", json::object()).value("dhcp", json::object()).value("state", ""), "BOUND");
  EXPECT_GE(number_at(*st, "sim.dhcp_server.acks").value_or(0), 2u) << st->dump();
  EXPECT_EQ(daemon_->count("disconnected"), 0u) << describe();
}

INSTANTIATE_TEST_SUITE_P(Sim, HuaweiDhcpFallbackTest, ::testing::Values(Profile{"huawei-e3372+no-dhcp-at", {}, true}),
                         test_name);

}  // namespace
}  // namespace wwan::integration
