// wwan-dp --tap end to end (docs/tun.md "TAP mode"): the daemon dials the emulated NCM modem and
// exposes a TAP carrying its Ethernet frames unchanged; the addressing is the system's. Here the
// system is Debian's busybox udhcpc (with an event script of this test's that applies the lease
// with `ip`) and the kernel's own SLAAC and router discovery on the TAP. Checked: the lease comes
// from the emulated modem's DHCP server through the TAP, udhcpc renews it, ping over IPv4 and
// IPv6 (global address and default route from the emulated RAs), and that wwan-dp itself ran no
// DHCP, answered no ARP and configured no address. MBIM and RNDIS are refused in one line.
//
// Needs root, /dev/net/tun and busybox (tools/bootstrap.sh installs it); skipped otherwise.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "daemon.hpp"
#include "fixture.hpp"
#include "net.hpp"
#include "profile.hpp"
#include "shell.hpp"
#include "sim/dhcp_server.hpp"

namespace wwan::integration {
namespace {

using namespace std::chrono_literals;

const std::string kTap = "wwdp-tap0";
const std::string kHost = "10.64.64.2";      // sim::NetworkConfig's host_ipv4
const std::string kGateway = "10.64.64.1";   // and gateway_ipv4, the DHCP server
const std::string kGatewayIpv6 = "2001:db8:0:1::1";
constexpr auto kStartTimeout = 10s;
constexpr auto kConnectTimeout = 30s;
constexpr auto kReplyTimeout = 2s;

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

std::size_t count_lines_starting(const std::string& text, const std::string& prefix) {
  std::size_t n = 0;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) n += line.rfind(prefix, 0) == 0 ? 1u : 0u;
  return n;
}

class TapTest : public DaemonNamespaceTest<Profile> {
 protected:
  void SetUp() override {
    DaemonNamespaceTest<Profile>::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    const auto busybox = find_in_path("busybox");
    if (!busybox) GTEST_SKIP() << "busybox is not installed (tools/bootstrap.sh installs it: udhcpc)";
    busybox_ = *busybox;
    // The fresh namespace turns IPv6 off for new interfaces; the TAP's SLAAC needs it.
    ASSERT_EQ(write_sysctl("net/ipv6/conf/default/disable_ipv6", "0"), "");
    char dir[] = "/tmp/wwan-dp-tap-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr) << std::strerror(errno);
    dir_ = dir;
    events_path_ = dir_ + "/events";
    script_path_ = dir_ + "/udhcpc.script";
    // udhcpc's event script (busybox udhcpc(8): $1 = deconfig|bound|renew|nak|leasefail, the
    // lease in the environment): the address applied with ip, then one line per event for the
    // test (in this order: a "bound" line means the address is there).
    std::ofstream script(script_path_);
    script << "#!/bin/sh\n"
              "case \"$1\" in\n"
              "  deconfig) ip -4 addr flush dev \"$interface\" ;;\n"
              "  bound|renew) ip -4 addr replace \"$ip/$mask\" dev \"$interface\" ;;\n"
              "esac\n"
              "echo \"$1 ip=$ip mask=$mask router=$router lease=$lease serverid=$serverid\" >> '"
           << events_path_
           << "'\n"
              "exit 0\n";
    script.close();
    ASSERT_EQ(::chmod(script_path_.c_str(), 0700), 0) << std::strerror(errno);
  }

  void TearDown() override {
    stop_udhcpc();
    if (daemon_) {
      EXPECT_EQ(daemon_->count("error"), 0u) << "the daemon reported errors" << daemon_->describe();
      daemon_.reset();
    }
    if (!dir_.empty()) {
      int status = 0;
      (void)run("rm -rf '" + dir_ + "'", status);
    }
  }

  std::string describe() {
    std::string s = "\n  udhcpc events:\n" + read_file(events_path_) + "  udhcpc output:\n" + read_file(dir_ + "/udhcpc.log");
    if (daemon_) {
      daemon_->drain();
      s += daemon_->describe();
    }
    return s;
  }

  // wwan-dp --sim P --tap kTap --json: started, connected, and the TAP up without an address of
  // wwan-dp's.
  void launch() {
    daemon_ = std::make_unique<Daemon>();
    ASSERT_TRUE(daemon_->start(exe_, {"--sim", GetParam().name, "--tap", kTap, "--json"}));
    const auto started = daemon_->wait_for("started", kStartTimeout);
    ASSERT_TRUE(started) << "no 'started' event" << describe();
    EXPECT_EQ(started->value("tun", ""), kTap);
    const auto connected = daemon_->wait_for("connected", kConnectTimeout);
    ASSERT_TRUE(connected) << "no 'connected' event" << describe();
    EXPECT_FALSE(connected->contains("ipv4")) << "a DHCP link: the session knows no address " << connected->dump();
    const auto link = link_state(kTap);
    ASSERT_TRUE(link) << kTap << " does not exist after 'connected'" << describe();
    EXPECT_TRUE(link->up) << "the TAP must be up for the system's DHCP client" << describe();
    EXPECT_FALSE(link->ipv4) << "wwan-dp configured an address on the TAP";
    int status = 0;
    const std::string details = run("ip -d link show dev " + kTap, status);
    EXPECT_NE(details.find("tun type tap pi off vnet_hdr off"), std::string::npos) << details;
    if (GetParam().name == "generic-ncm") {  // its iMACAddress: the host MAC the modem expects
      EXPECT_NE(details.find("link/ether 02:00:00:00:00:02 "), std::string::npos) << details;
    }
  }

  // busybox udhcpc on the TAP, its output in udhcpc.log. -f: foreground; `extra` as given.
  void start_udhcpc(const std::vector<std::string>& extra) {
    const std::string log = dir_ + "/udhcpc.log";
    std::vector<std::string> args = {busybox_, "udhcpc", "-f", "-i", kTap, "-s", script_path_, "-t", "5", "-T", "1"};
    args.insert(args.end(), extra.begin(), extra.end());
    udhcpc_ = ::fork();
    ASSERT_GE(udhcpc_, 0) << std::strerror(errno);
    if (udhcpc_ == 0) {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
  }
  // The udhcpc exit status within `timeout` (it was started with -q / -n), or nullopt.
  std::optional<int> wait_udhcpc(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (udhcpc_ > 0) {
      int status = 0;
      const pid_t r = ::waitpid(udhcpc_, &status, WNOHANG);
      if (r == udhcpc_) {
        udhcpc_ = -1;
        return status;
      }
      if (Clock::now() >= deadline) return std::nullopt;
      daemon_->idle(50ms);  // reads the daemon's events meanwhile: the bounded pause between polls
    }
    return std::nullopt;
  }
  void stop_udhcpc() {
    if (udhcpc_ <= 0) return;
    ::kill(udhcpc_, SIGTERM);
    int status = 0;
    ::waitpid(udhcpc_, &status, 0);
    udhcpc_ = -1;
  }

  // Waits until the events file has `n` lines starting with `prefix`.
  bool wait_for_events(const std::string& prefix, std::size_t n, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (count_lines_starting(read_file(events_path_), prefix) < n) {
      if (Clock::now() >= deadline) return false;
      daemon_->idle(100ms);
    }
    return true;
  }

  void ping_gateway(std::uint16_t seq) {
    Pinger pinger;
    std::string why;
    ASSERT_TRUE(pinger.open(kTap, why)) << why;
    std::vector<std::uint8_t> payload(56);
    for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<std::uint8_t>(i * 7 + seq);
    EXPECT_EQ(pinger.ping(kGateway, static_cast<std::uint16_t>(::getpid()), seq, payload, kReplyTimeout), "")
        << "ping over IPv4 through the TAP" << describe();
  }

  std::string busybox_;
  std::string dir_, events_path_, script_path_;
  pid_t udhcpc_ = -1;
  std::unique_ptr<Daemon> daemon_;
};

TEST_P(TapTest, TheSystemsDhcpClientGetsTheLeaseAndSlaacTheAddressAndBothFamiliesPing) {
  ASSERT_NO_FATAL_FAILURE(launch());
  // -q: exit once bound; -n: exit (non-zero) if no lease.
  ASSERT_NO_FATAL_FAILURE(start_udhcpc({"-q", "-n"}));
  const auto status = wait_udhcpc(20s);
  ASSERT_TRUE(status) << "udhcpc did not finish" << describe();
  ASSERT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << "udhcpc got no lease" << describe();
  const std::string events = read_file(events_path_);
  EXPECT_NE(events.find("bound ip=" + kHost + " mask=30 router=" + kGateway + " lease=" +
                        std::to_string(sim::kDefaultLeaseSeconds) + " serverid=" + kGateway),
            std::string::npos)
      << describe();
  const auto link = link_state(kTap);
  ASSERT_TRUE(link);
  EXPECT_EQ(link->ipv4, std::optional<std::string>(kHost)) << "the address udhcpc's script applied";
  ASSERT_NO_FATAL_FAILURE(ping_gateway(1));

  // IPv6: the kernel's router discovery and SLAAC on the TAP, from the emulated router's RAs
  // (2001:db8:0:1::/64, router fe80::1). Polled until DAD has finished, with a deadline.
  int rc = 0;
  std::string addresses, routes;
  const auto deadline = Clock::now() + 10s;
  for (;;) {
    addresses = run("ip -6 addr show dev " + kTap + " scope global", rc);
    routes = run("ip -6 route show default dev " + kTap, rc);
    const bool ready = addresses.find("inet6 2001:db8:0:1:") != std::string::npos &&
                       addresses.find("tentative") == std::string::npos &&
                       routes.find("via fe80::1") != std::string::npos;
    if (ready || Clock::now() >= deadline) break;
    daemon_->idle(100ms);
  }
  EXPECT_NE(addresses.find("inet6 2001:db8:0:1:"), std::string::npos) << "no SLAAC address: " << addresses << describe();
  EXPECT_EQ(addresses.find("tentative"), std::string::npos) << addresses;
  if (GetParam().name == "generic-ncm") {  // the /64 + modified EUI-64 of 02:00:00:00:00:02
    EXPECT_NE(addresses.find("2001:db8:0:1:0:ff:fe00:2/64"), std::string::npos) << addresses;
  }
  EXPECT_NE(routes.find("via fe80::1"), std::string::npos) << "no default route from the RA: " << routes;
  EXPECT_NE(routes.find("proto ra"), std::string::npos) << routes;
  const std::string ping6 = run("ping -6 -c 3 -W 2 -I " + kTap + " " + kGatewayIpv6 + " 2>&1", rc);
  EXPECT_EQ(rc, 0) << ping6 << describe();

  // wwan-dp passed everything through: it answered no ARP and no NS, diverted no DHCP or RA, and
  // its own DHCP client never ran; the emulated network saw the system's exchange.
  const auto st = daemon_->stats();
  ASSERT_TRUE(st) << describe();
  EXPECT_EQ(number_at(*st, "rx.control_diverted"), std::optional<std::uint64_t>(0)) << st->dump();
  EXPECT_EQ(number_at(*st, "rx.arp_replies"), std::optional<std::uint64_t>(0));
  EXPECT_EQ(number_at(*st, "rx.na_replies"), std::optional<std::uint64_t>(0));
  EXPECT_EQ(number_at(*st, "tx.control_packets"), std::optional<std::uint64_t>(0));
  EXPECT_EQ(number_at(*st, "autoconf.dhcp.discovers"), std::optional<std::uint64_t>(0));
  EXPECT_EQ(number_at(*st, "rx.dropped"), std::optional<std::uint64_t>(0)) << st->dump();
  EXPECT_EQ(number_at(*st, "tx.dropped"), std::optional<std::uint64_t>(0)) << st->dump();
  EXPECT_GE(number_at(*st, "sim.dhcp_server.acks").value_or(0), 1u) << st->dump();
  EXPECT_GE(number_at(*st, "sim.modem.arp_requests_from_host").value_or(0), 1u) << "the kernel's own ARP";
  EXPECT_GE(number_at(*st, "sim.router.solicited").value_or(0), 1u) << "the kernel's own RS";
  EXPECT_EQ((*st)["offload"].value("vnet_hdr", true), false) << "no offload on a TAP";
}

// udhcpc stays running without -q and renews at T1 (half the lease): the emulated server is told
// over its control port (reached through the TAP with the leased address) to hand out 6-second
// leases, so the renewal at T1 of the first 20-second lease gets one, and a renewal of that lease
// follows (busybox raises a very short lease to its own minimum, so it comes some 15-20 s later,
// not at 3 s). The address stays and traffic flows.
TEST_P(TapTest, UdhcpcRenewsTheLeaseThroughTheTap) {
  ASSERT_NO_FATAL_FAILURE(launch());
  ASSERT_NO_FATAL_FAILURE(start_udhcpc({}));
  ASSERT_TRUE(wait_for_events("bound ", 1, 20s)) << "no lease" << describe();
  std::string why;
  ControlPort control;
  ASSERT_TRUE(control.open(kTap, kGateway, why)) << why;
  ASSERT_EQ(control.command("dhcp-lease 6", kReplyTimeout, why), std::optional<std::string>("ok")) << why << describe();
  // T1 of the first lease (10 s), then the renewal of the short lease.
  ASSERT_TRUE(wait_for_events("renew ", 2, std::chrono::seconds(sim::kDefaultLeaseSeconds) + 45s))
      << "udhcpc did not renew twice" << describe();
  const std::string events = read_file(events_path_);
  EXPECT_NE(events.find("renew ip=" + kHost + " mask=30 router=" + kGateway + " lease=6 "), std::string::npos)
      << events;
  EXPECT_EQ(count_lines_starting(events, "deconfig"), 1u) << "only udhcpc's start deconfigures: " << events;
  EXPECT_EQ(count_lines_starting(events, "nak"), 0u) << events;
  const auto link = link_state(kTap);
  ASSERT_TRUE(link);
  EXPECT_EQ(link->ipv4, std::optional<std::string>(kHost));
  ASSERT_NO_FATAL_FAILURE(ping_gateway(2));
  const auto st = daemon_->stats();
  ASSERT_TRUE(st) << describe();
  EXPECT_GE(number_at(*st, "sim.dhcp_server.acks").value_or(0), 3u) << st->dump();
  EXPECT_EQ(number_at(*st, "sim.dhcp_server.naks"), std::optional<std::uint64_t>(0)) << st->dump();
  EXPECT_EQ(daemon_->count("disconnected"), 0u) << describe();
}

INSTANTIATE_TEST_SUITE_P(Sim, TapTest, ::testing::Values(Profile{"generic-ncm"}, Profile{"quectel-ncm"}),
                         test_name);

// MBIM carries raw IP and RNDIS is not passed through: one line, exit status 1, no interface.
using TapRefusalTest = DaemonNamespaceTest<Profile>;

TEST_P(TapRefusalTest, IsRefusedInOneLineWithoutCreatingTheTap) {
  Daemon d;
  ASSERT_TRUE(d.start(exe_, {"--sim", GetParam().name, "--tap", kTap}));
  const auto status = d.wait_exit(10s);
  ASSERT_TRUE(status) << "still running" << d.describe();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 1) << d.describe();
  const std::string& err = d.stderr_text();
  EXPECT_NE(err.find("wwan-dp: --tap needs an NCM function (Ethernet frames), and emulated " + GetParam().name), std::string::npos)
      << err;
  EXPECT_NE(err.find(": use --tun NAME\n"), std::string::npos) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  EXPECT_FALSE(link_state(kTap)) << "the modem is checked before the TAP is made";
}

INSTANTIATE_TEST_SUITE_P(Sim, TapRefusalTest, ::testing::Values(Profile{"mbim"}, Profile{"fm350-rndis"}),
                         test_name);

}  // namespace
}  // namespace wwan::integration
