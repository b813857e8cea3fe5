// TUN offload end to end (docs/offload.md): real TCP and UDP sockets of this process talking to
// each other through the whole data path, TX -> emulated modem -> RX, with `--offload on` and
// `--offload off`; and a download from / an upload to the emulated network's own TCP endpoints
// (sim/tcp_source.hpp, sim/tcp_sink.hpp) at the end of the file. The network's reflector (sim/network.hpp, a
// hairpin NAT) sends whatever the host sends to 198.51.100.9 back from 198.51.100.10 and the
// reverse, so a client connected to 198.51.100.9:P reaches a server of this same namespace
// listening on P, and every byte crosses the daemon twice: read from the TUN (GSO super-packets
// cut into NTB datagrams) and written to it (coalesced into GRO super-packets).
//
// What is asserted: the bytes received each way equal the bytes sent (8 MiB each way at once,
// a pseudo-random stream compared byte for byte); the daemon's stats show super-packets both
// ways when offload is on and none when it is off; the emulated network saw no segment with a
// bad checksum (sim.network.malformed_from_host) and the kernel none either (Tcp InCsumErrors);
// a UDP_SEGMENT send arrives as the exact datagrams when the kernel granted USO. That a segment
// with a corrupted checksum is never coalesced is proved without a daemon:
// tests/datapath/offload_gro_test.cpp and RxStageOffload.TcpSegmentsOfOneNtb... in
// tests/datapath/workers_test.cpp (the stage), tests/tun/tun_offload_test.cpp (the kernel drops
// it: TcpInCsumErrors + 1).
//
// Needs root and /dev/net/tun (skipped otherwise), like the rest of the integration suite.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "daemon.hpp"
#include "fixture.hpp"
#include "net.hpp"
#include "sim/network.hpp"
#include "sim/tcp_sink.hpp"
#include "sim/tcp_source.hpp"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103  // Linux 4.18 include/uapi/linux/udp.h
#endif

namespace wwan::integration {
namespace {

using namespace std::chrono_literals;

const std::string kTun = "wwdp-of0";
constexpr auto kStartTimeout = 10s;
constexpr auto kConnectTimeout = 30s;
constexpr auto kTransferTimeout = 120s;  // 16 MiB through the emulated modem on a loaded machine
constexpr std::size_t kTransferBytes = 8u << 20;
constexpr std::uint16_t kTcpPort = 5201, kUdpPort = 5301;

std::string dotted(const eth::Ipv4Address& a) {
  return std::to_string(a.bytes[0]) + "." + std::to_string(a.bytes[1]) + "." + std::to_string(a.bytes[2]) + "." +
         std::to_string(a.bytes[3]);
}
const sim::NetworkConfig kNet{};
const std::string kHost = dotted(kNet.host_ipv4);                 // 10.64.64.2
const std::string kReflector = dotted(kNet.reflector_ipv4);       // 198.51.100.9
const std::string kReflectorPeer = dotted(kNet.reflector_peer_ipv4);  // 198.51.100.10

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

// Byte i of stream `seed`: splitmix64 of the 8-byte block, so no period an MSS or a gso_size
// could line up with, and a misplaced or duplicated segment shows.
std::uint8_t stream_byte(std::uint64_t seed, std::uint64_t i) {
  std::uint64_t z = (i / 8) + seed * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<std::uint8_t>(z >> (8 * (i % 8)));
}

// Checks a received stream byte by byte as it arrives.
struct StreamCheck {
  std::uint64_t seed = 0;
  std::uint64_t received = 0;
  std::uint64_t mismatches = 0;
  std::uint64_t first_mismatch = 0;
  bool eof = false;
  void take(const std::uint8_t* p, std::size_t n) {
    for (std::size_t k = 0; k < n; ++k, ++received) {
      if (p[k] != stream_byte(seed, received) && mismatches++ == 0) first_mismatch = received;
    }
  }
};

struct Case {
  std::string profile;
  bool offload;
};
std::ostream& operator<<(std::ostream& o, const Case& c) { return o << c.profile << (c.offload ? " on" : " off"); }
std::string case_name(const ::testing::TestParamInfo<Case>& p) {
  std::string n = p.param.profile + (p.param.offload ? "_offload_on" : "_offload_off");
  std::replace(n.begin(), n.end(), '-', '_');
  return n;
}

class OffloadTest : public DaemonNamespaceTest<Case> {
 protected:

  void TearDown() override {
    if (daemon_) {
      EXPECT_EQ(daemon_->count("error"), 0u) << "the daemon reported errors" << describe();
      daemon_.reset();
    }
  }

  std::string describe() {
    if (!daemon_) return "\n  (no daemon)";
    daemon_->drain();
    return daemon_->describe();
  }

  // The daemon with a default route through the TUN (the reflector's addresses are off-link).
  void launch(const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"--sim", GetParam().profile, "--tun", kTun, "--json", "--default-route"};
    args.insert(args.end(), extra.begin(), extra.end());
    daemon_ = std::make_unique<Daemon>();
    ASSERT_TRUE(daemon_->start(exe_, args)) << errno_text("starting the daemon");
    ASSERT_TRUE(daemon_->wait_for("started", kStartTimeout)) << "no 'started' event" << describe();
    ASSERT_TRUE(daemon_->wait_for("connected", kConnectTimeout)) << "no 'connected' event" << describe();
  }

  // launch() with --ip-type ipv4v6, until the 'connected' that carries IPv6 (it may come after
  // IPv4's, from the RA).
  void launch_dual_stack(bool offload) {
    ASSERT_EQ(write_sysctl("net/ipv6/conf/default/disable_ipv6", "0"), "");
    ASSERT_NO_FATAL_FAILURE(launch({"--offload", offload ? "on" : "off", "--ip-type", "ipv4v6"}));
    const Clock::time_point deadline = Clock::now() + kConnectTimeout;
    auto has_ipv6 = [&] {
      const std::vector<json>& h = daemon_->history();
      return std::any_of(h.begin(), h.end(),
                         [](const json& e) { return e.value("event", "") == "connected" && e.contains("ipv6"); });
    };
    while (!has_ipv6() && Clock::now() < deadline)
      (void)daemon_->wait_for("connected", std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
    ASSERT_TRUE(has_ipv6()) << "no 'connected' with IPv6" << describe();
  }

  std::uint64_t delta(const json& a, const json& b, const std::string& field) {
    const auto x = number_at(a, field), y = number_at(b, field);
    if (!x || !y) {
      ADD_FAILURE() << "stats event lacks the number " << field << ": " << b.dump().substr(0, 3000);
      return 0;
    }
    return *y - *x;
  }

  std::unique_ptr<Daemon> daemon_;
};

// A TCP socket bound to the TUN (so no packet can take another way), blocking, with a send
// timeout so that a stuck path fails the test instead of hanging it.
Fd tcp_socket(std::string& why) {
  Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s.valid()) {
    why = errno_text("socket");
    return s;
  }
  if (::setsockopt(s.get(), SOL_SOCKET, SO_BINDTODEVICE, kTun.c_str(), static_cast<socklen_t>(kTun.size())) != 0) {
    why = errno_text("SO_BINDTODEVICE");
    return Fd();
  }
  const int one = 1;
  ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  return s;
}

// Writes `bytes` of stream `seed` to `fd`, then shuts its sending side; "" or what failed.
std::string send_stream(int fd, std::uint64_t seed, std::size_t bytes, Clock::time_point deadline) {
  std::vector<std::uint8_t> chunk(256 * 1024);
  std::size_t sent = 0;
  while (sent < bytes) {
    const std::size_t n = std::min(chunk.size(), bytes - sent);
    for (std::size_t k = 0; k < n; ++k) chunk[k] = stream_byte(seed, sent + k);
    std::size_t off = 0;
    while (off < n) {
      if (Clock::now() >= deadline) return "deadline passed after " + std::to_string(sent + off) + " bytes sent";
      const ssize_t w = ::send(fd, chunk.data() + off, n - off, MSG_NOSIGNAL);
      if (w > 0) {
        off += static_cast<std::size_t>(w);
      } else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        return errno_text("send after " + std::to_string(sent + off) + " bytes");
      }
    }
    sent += n;
  }
  if (::shutdown(fd, SHUT_WR) != 0) return errno_text("shutdown");
  return "";
}

TEST_P(OffloadTest, TcpBothWaysThroughTheModemIsByteIdenticalAndUsesSuperPacketsOnlyWithOffload) {
  const bool on = GetParam().offload;
  ASSERT_NO_FATAL_FAILURE(launch({"--offload", on ? "on" : "off"}));
  std::string why;

  Fd listener = tcp_socket(why);
  ASSERT_TRUE(listener.valid()) << why;
  const sockaddr_in any = ipv4_address("0.0.0.0", kTcpPort);
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<const sockaddr*>(&any), sizeof any), 0) << errno_text("bind");
  ASSERT_EQ(::listen(listener.get(), 1), 0) << errno_text("listen");

  const auto before = daemon_->stats();
  ASSERT_TRUE(before) << "no stats event" << describe();
  EXPECT_EQ(before->value("offload", json::object()).value("vnet_hdr", !on), on)
      << "the stats event says whether the TUN carries virtio_net_hdr: " << before->value("offload", json::object()).dump();
  const auto tcp_before = snmp("Tcp");

  Fd client = tcp_socket(why);
  ASSERT_TRUE(client.valid()) << why;
  const timeval limit{5, 0};
  ::setsockopt(client.get(), SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
  const sockaddr_in to = ipv4_address(kReflector, kTcpPort);
  ASSERT_EQ(::connect(client.get(), reinterpret_cast<const sockaddr*>(&to), sizeof to), 0)
      << errno_text("connect to the reflector " + kReflector) << describe();
  ASSERT_TRUE(readable(listener.get(), Clock::now() + 5s)) << "the SYN never came back to the listener" << describe();
  sockaddr_in peer{};
  socklen_t peer_length = sizeof peer;
  Fd server(::accept4(listener.get(), reinterpret_cast<sockaddr*>(&peer), &peer_length, SOCK_CLOEXEC));
  ASSERT_TRUE(server.valid()) << errno_text("accept");
  char peer_text[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &peer.sin_addr, peer_text, sizeof peer_text);
  EXPECT_EQ(std::string(peer_text), kReflectorPeer) << "the server sees the client as the reflector's peer";
  ::setsockopt(server.get(), SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);

  // Both ways at once: a writer thread each, this thread reads both.
  const Clock::time_point deadline = Clock::now() + kTransferTimeout;
  std::string client_error, server_error;
  std::thread up([&] { client_error = send_stream(client.get(), 1, kTransferBytes, deadline); });
  std::thread down([&] { server_error = send_stream(server.get(), 2, kTransferBytes, deadline); });
  StreamCheck at_server{1}, at_client{2};
  std::vector<std::uint8_t> buffer(256 * 1024);
  while ((!at_server.eof || !at_client.eof) && Clock::now() < deadline) {
    std::array<pollfd, 2> fds = {pollfd{server.get(), POLLIN, 0}, pollfd{client.get(), POLLIN, 0}};
    ::poll(fds.data(), fds.size(), 100);
    for (auto [fd, check] : {std::pair{server.get(), &at_server}, std::pair{client.get(), &at_client}}) {
      if (check->eof) continue;
      const ssize_t n = ::recv(fd, buffer.data(), buffer.size(), MSG_DONTWAIT);
      if (n > 0) check->take(buffer.data(), static_cast<std::size_t>(n));
      else if (n == 0) check->eof = true;
      else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) ADD_FAILURE() << errno_text("recv");
    }
  }
  up.join();
  down.join();
  EXPECT_EQ(client_error, "") << "client -> server" << describe();
  EXPECT_EQ(server_error, "") << "server -> client" << describe();
  ASSERT_TRUE(at_server.eof && at_client.eof)
      << "the transfer did not finish in " << kTransferTimeout.count() << " s: server got " << at_server.received
      << " of " << kTransferBytes << ", client got " << at_client.received << describe();
  EXPECT_EQ(at_server.received, kTransferBytes);
  EXPECT_EQ(at_client.received, kTransferBytes);
  EXPECT_EQ(at_server.mismatches, 0u) << "client -> server: first wrong byte at " << at_server.first_mismatch;
  EXPECT_EQ(at_client.mismatches, 0u) << "server -> client: first wrong byte at " << at_client.first_mismatch;

  const auto after = daemon_->stats();
  ASSERT_TRUE(after) << "no stats event" << describe();
  const json& a = *before;
  const json& b = *after;
  const std::uint64_t rx_super = delta(a, b, "rx.gro.super_packets"), rx_coalesced = delta(a, b, "rx.gro.coalesced");
  const std::uint64_t tx_super = delta(a, b, "tx.gso.super_packets"), tx_segments = delta(a, b, "tx.gso.segments");
  std::cout << "[ info     ] " << GetParam() << ": rx packets +" << delta(a, b, "rx.packets") << " (" << rx_coalesced
            << " in " << rx_super << " GRO super-packets), tx packets +" << delta(a, b, "tx.packets") << " ("
            << tx_segments << " from " << tx_super << " GSO super-packets), reflected +"
            << delta(a, b, "sim.network.reflected_packets") << "\n";
  if (on) {
    EXPECT_GT(rx_super, 0u) << "offload on, but RX wrote no super-packet" << describe();
    EXPECT_GT(tx_super, 0u) << "offload on, but TX read no TSO super-packet" << describe();
    EXPECT_GT(tx_segments, tx_super) << describe();
  } else {
    EXPECT_EQ(rx_super, 0u) << describe();
    EXPECT_EQ(tx_super, 0u) << describe();
  }
  EXPECT_GT(delta(a, b, "sim.network.reflected_packets"), 2 * kTransferBytes / 1500);
  EXPECT_EQ(delta(a, b, "sim.network.malformed_from_host"), 0u) << "a segment left the daemon with a bad checksum";
  EXPECT_EQ(delta(a, b, "tx.dropped"), 0u) << b["tx"].value("drops", json::object()).dump();
  const auto tcp_after = snmp("Tcp");
  EXPECT_EQ(tcp_after.at("InCsumErrors") - tcp_before.at("InCsumErrors"), 0u)
      << "the kernel received TCP segments with bad checksums";
}

// USO: with offload one UDP_SEGMENT send is one super-packet read from the TUN, cut into
// datagrams in the NTB, and the reflected datagrams come back coalesced into UDP_L4
// super-packets; without it the kernel segments before the TUN and nothing is coalesced. Either
// way the receiving socket gets every datagram exactly.
TEST_P(OffloadTest, AUdpSegmentSendArrivesAsTheExactDatagrams) {
  const bool on = GetParam().offload;
  ASSERT_NO_FATAL_FAILURE(launch({"--offload", on ? "on" : "off"}));
  const auto before = daemon_->stats();
  ASSERT_TRUE(before) << describe();
  const std::string granted = before->value("offload", json::object()).value("granted", "");
  if (on && granted.find("uso4") == std::string::npos)
    GTEST_SKIP() << "the kernel did not grant USO (Linux >= 6.2): " << granted;

  std::string why;
  Fd receiver = udp_socket(kTun, kUdpPort, std::nullopt, 0, why);
  ASSERT_TRUE(receiver.valid()) << why;
  Fd sender = udp_socket(kTun, 0, kReflector, kUdpPort, why);
  ASSERT_TRUE(sender.valid()) << why;
  constexpr int kSegment = 1200;
  ASSERT_EQ(::setsockopt(sender.get(), SOL_UDP, UDP_SEGMENT, &kSegment, sizeof kSegment), 0) << errno_text("UDP_SEGMENT");

  constexpr int kSends = 20;
  constexpr std::size_t kSendBytes = 10 * kSegment + 77;  // 10 full datagrams and a short one
  std::vector<std::uint8_t> out(kSendBytes), in(65536);
  std::size_t datagrams = 0, wrong = 0;
  for (int round = 0; round < kSends; ++round) {
    for (std::size_t k = 0; k < out.size(); ++k) out[k] = stream_byte(static_cast<std::uint64_t>(round) + 10, k);
    ASSERT_EQ(::send(sender.get(), out.data(), out.size(), 0), static_cast<ssize_t>(out.size())) << errno_text("send");
    for (std::size_t d = 0; d < 11; ++d) {
      ASSERT_TRUE(readable(receiver.get(), Clock::now() + 2s))
          << "round " << round << ": datagram " << d << " of 11 did not arrive" << describe();
      sockaddr_in from{};
      socklen_t from_length = sizeof from;
      const ssize_t n = ::recvfrom(receiver.get(), in.data(), in.size(), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from),
                                   &from_length);
      const std::size_t expected = d < 10 ? kSegment : 77;
      ++datagrams;
      if (n != static_cast<ssize_t>(expected) ||
          !std::equal(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(expected),
                      out.begin() + static_cast<std::ptrdiff_t>(d * kSegment)))
        ++wrong;
    }
  }
  EXPECT_EQ(datagrams, kSends * 11u);
  EXPECT_EQ(wrong, 0u) << "datagrams of the wrong size, content or order";
  const auto after = daemon_->stats();
  ASSERT_TRUE(after) << describe();
  EXPECT_EQ(delta(*before, *after, "tx.gso.super_packets"), on ? static_cast<std::uint64_t>(kSends) : 0u)
      << "each UDP_SEGMENT send is one USO read";
  EXPECT_EQ(delta(*before, *after, "tx.gso.segments"), on ? kSends * 11u : 0u);
  if (on) EXPECT_GT(delta(*before, *after, "rx.gro.super_packets"), 0u) << "the reflected datagrams were never coalesced";
  else EXPECT_EQ(delta(*before, *after, "rx.gro.super_packets"), 0u);
  EXPECT_EQ(delta(*before, *after, "sim.network.malformed_from_host"), 0u);
}

// A download from the emulated network's own TCP sender (sim/tcp_source.hpp): the far end speaks
// TCP, so the data crosses only RX and the ACKs only TX, as in a real download, and nothing loops
// back through the reflector. Over IPv4 and IPv6, every byte arrives as TcpSource::stream_byte
// says, in order, up to the FIN; with offload on RX coalesced the segments into super-packets
// (TCPV4 / TCPV6), with it off it wrote none.
TEST_P(OffloadTest, ADownloadFromTheNetworksTcpSenderArrivesExactlyOverIpv4AndIpv6) {
  const bool on = GetParam().offload;
  ASSERT_NO_FATAL_FAILURE(launch_dual_stack(on));
  constexpr std::uint64_t kDownloadBytes = 8u << 20;
  constexpr std::uint16_t kDownloadPort = 5202;
  const auto tcp_before = snmp("Tcp");
  for (const bool v6 : {false, true}) {
    SCOPED_TRACE(v6 ? "IPv6" : "IPv4");
    const auto before = daemon_->stats();
    ASSERT_TRUE(before) << describe();
    Fd listener(::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(listener.valid()) << errno_text("socket");
    ASSERT_EQ(::setsockopt(listener.get(), SOL_SOCKET, SO_BINDTODEVICE, kTun.c_str(), static_cast<socklen_t>(kTun.size())), 0)
        << errno_text("SO_BINDTODEVICE");
    const int one = 1;
    ::setsockopt(listener.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (v6) {
      sockaddr_in6 any{};
      any.sin6_family = AF_INET6;
      any.sin6_port = htons(kDownloadPort);
      ASSERT_EQ(::bind(listener.get(), reinterpret_cast<const sockaddr*>(&any), sizeof any), 0) << errno_text("bind");
    } else {
      const sockaddr_in any = ipv4_address("0.0.0.0", kDownloadPort);
      ASSERT_EQ(::bind(listener.get(), reinterpret_cast<const sockaddr*>(&any), sizeof any), 0) << errno_text("bind");
    }
    ASSERT_EQ(::listen(listener.get(), 1), 0) << errno_text("listen");

    // The command goes from the host's address of that family, which is where the sender connects.
    char server6[INET6_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET6, kNet.server_ipv6.bytes.data(), server6, sizeof server6);
    ControlPort control;
    std::string why;
    ASSERT_TRUE(control.open(kTun, v6 ? std::string(server6) : dotted(kNet.server_ipv4), why)) << why;
    const auto answer = control.command("tcp-source " + std::to_string(kDownloadPort) + " " + std::to_string(kDownloadBytes),
                                        5000ms, why);
    ASSERT_TRUE(answer) << why << describe();
    ASSERT_EQ(*answer, "ok");
    ASSERT_TRUE(readable(listener.get(), Clock::now() + 10s)) << "the network's SYN never reached the listener" << describe();
    Fd conn(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    ASSERT_TRUE(conn.valid()) << errno_text("accept");

    std::vector<std::uint8_t> buffer(256 * 1024);
    std::uint64_t received = 0, mismatches = 0, first_mismatch = 0;
    bool eof = false;
    const Clock::time_point deadline = Clock::now() + kTransferTimeout;
    while (!eof && Clock::now() < deadline) {
      if (!readable(conn.get(), std::min(deadline, Clock::now() + 1s))) continue;
      const ssize_t n = ::recv(conn.get(), buffer.data(), buffer.size(), MSG_DONTWAIT);
      if (n == 0) eof = true;
      if (n <= 0) continue;
      for (std::size_t k = 0; k < static_cast<std::size_t>(n); ++k, ++received)
        if (buffer[k] != sim::TcpSource::stream_byte(received) && mismatches++ == 0) first_mismatch = received;
    }
    ASSERT_TRUE(eof) << "no FIN within " << kTransferTimeout.count() << " s; got " << received << " of " << kDownloadBytes
                     << describe();
    EXPECT_EQ(received, kDownloadBytes);
    EXPECT_EQ(mismatches, 0u) << "first wrong byte at stream offset " << first_mismatch;

    const auto after = daemon_->stats();
    ASSERT_TRUE(after) << describe();
    const std::uint64_t super_packets = delta(*before, *after, "rx.gro.super_packets");
    const std::uint64_t coalesced = delta(*before, *after, "rx.gro.coalesced");
    std::cout << "[ info     ] " << GetParam() << (v6 ? " IPv6" : " IPv4") << ": " << coalesced << " segments in "
              << super_packets << " GRO super-packets, tcp_source "
              << after->value("sim", json::object()).value("network", json::object()).value("tcp_source", json::object()).dump()
              << "\n";
    if (on) {
      EXPECT_GT(super_packets, 0u) << "offload on, but RX wrote no super-packet" << describe();
      EXPECT_GT(coalesced, 2 * super_packets) << "super-packets of more than two segments on average";
      const std::uint64_t batches = delta(*before, *after, "rx.gro.batches");
      EXPECT_GT(batches, 0u) << "the stats event counts the coalescer's batches";
      EXPECT_LE(batches, delta(*before, *after, "rx.transfers")) << "a batch is one or more IN transfers";
    } else {
      EXPECT_EQ(super_packets, 0u) << describe();
    }
    EXPECT_EQ(delta(*before, *after, "sim.network.malformed_from_host"), 0u) << "an ACK left the daemon with a bad checksum";
  }
  const auto tcp_after = snmp("Tcp");
  EXPECT_EQ(tcp_after.at("InCsumErrors") - tcp_before.at("InCsumErrors"), 0u)
      << "the kernel received TCP segments with bad checksums";
}

// An upload to the emulated network's TCP receiver (sim/tcp_sink.hpp, 198.51.100.7 /
// 2001:db8:ffff::7 port 9): the data crosses only TX (with offload on, the kernel's TSO
// super-packets cut into NTB datagrams) and only the ACKs cross RX, the mirror of the download.
// Over IPv4 and IPv6 the receiver takes every byte, each one what TcpSource::stream_byte says
// at its offset (no corrupt segment), and answers the FIN with its own; with offload on TX read
// TSO super-packets (TCPV4 / TCPV6), with it off none.
TEST_P(OffloadTest, AnUploadToTheNetworksTcpReceiverArrivesExactlyOverIpv4AndIpv6) {
  const bool on = GetParam().offload;
  ASSERT_NO_FATAL_FAILURE(launch_dual_stack(on));
  constexpr std::uint64_t kUploadBytes = 8u << 20;
  // The stream from any offset is one contiguous slice of this (period + the largest send).
  std::vector<std::uint8_t> stream(sim::TcpSource::kPatternPeriod + 65536);
  for (std::size_t k = 0; k < stream.size(); ++k) stream[k] = sim::TcpSource::stream_byte(k);
  for (const bool v6 : {false, true}) {
    SCOPED_TRACE(v6 ? "IPv6" : "IPv4");
    const auto before = daemon_->stats();
    ASSERT_TRUE(before) << describe();
    Fd conn(::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(conn.valid()) << errno_text("socket");
    ASSERT_EQ(::setsockopt(conn.get(), SOL_SOCKET, SO_BINDTODEVICE, kTun.c_str(), static_cast<socklen_t>(kTun.size())), 0)
        << errno_text("SO_BINDTODEVICE");
    const timeval limit{10, 0};  // connect() and each send() give up after this
    ::setsockopt(conn.get(), SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
    if (v6) {
      sockaddr_in6 to{};
      to.sin6_family = AF_INET6;
      to.sin6_port = htons(sim::kTcpDiscardPort);
      std::copy(kNet.server_ipv6.bytes.begin(), kNet.server_ipv6.bytes.end(), to.sin6_addr.s6_addr);
      ASSERT_EQ(::connect(conn.get(), reinterpret_cast<const sockaddr*>(&to), sizeof to), 0) << errno_text("connect") << describe();
    } else {
      const sockaddr_in to = ipv4_address(dotted(kNet.server_ipv4), sim::kTcpDiscardPort);
      ASSERT_EQ(::connect(conn.get(), reinterpret_cast<const sockaddr*>(&to), sizeof to), 0) << errno_text("connect") << describe();
    }
    const Clock::time_point deadline = Clock::now() + kTransferTimeout;
    std::uint64_t sent = 0;
    while (sent < kUploadBytes && Clock::now() < deadline) {
      const std::size_t at = static_cast<std::size_t>(sent % sim::TcpSource::kPatternPeriod);
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(65536, kUploadBytes - sent));
      const ssize_t w = ::send(conn.get(), stream.data() + at, n, MSG_NOSIGNAL);
      if (w < 0 && errno != EAGAIN && errno != EINTR) FAIL() << errno_text("send") << " after " << sent << " bytes" << describe();
      if (w > 0) sent += static_cast<std::uint64_t>(w);
    }
    ASSERT_EQ(sent, kUploadBytes) << "the upload stalled" << describe();
    ASSERT_EQ(::shutdown(conn.get(), SHUT_WR), 0) << errno_text("shutdown");
    // The receiver's FIN comes once it has taken everything before ours.
    std::array<std::uint8_t, 64> nothing{};
    bool eof = false;
    while (!eof && Clock::now() < deadline) {
      if (!readable(conn.get(), std::min(deadline, Clock::now() + 1s))) continue;
      const ssize_t n = ::recv(conn.get(), nothing.data(), nothing.size(), MSG_DONTWAIT);
      ASSERT_LE(n, 0) << "the receiver sent data";
      if (n == 0) eof = true;
    }
    ASSERT_TRUE(eof) << "no FIN from the receiver within " << kTransferTimeout.count() << " s" << describe();

    const auto after = daemon_->stats();
    ASSERT_TRUE(after) << describe();
    const std::uint64_t super_packets = delta(*before, *after, "tx.gso.super_packets");
    const std::uint64_t segments = delta(*before, *after, "tx.gso.segments");
    std::cout << "[ info     ] " << GetParam() << (v6 ? " IPv6" : " IPv4") << ": " << segments << " segments from "
              << super_packets << " GSO super-packets, tcp_sink "
              << after->value("sim", json::object()).value("network", json::object()).value("tcp_sink", json::object()).dump()
              << "\n";
    EXPECT_EQ(delta(*before, *after, "sim.network.tcp_sink.bytes"), kUploadBytes);
    EXPECT_EQ(delta(*before, *after, "sim.network.tcp_sink.corrupt_segments"), 0u) << "bytes changed on the way";
    EXPECT_EQ(delta(*before, *after, "sim.network.tcp_sink.fins"), 1u);
    if (on) {
      EXPECT_GT(super_packets, 0u) << "offload on, but TX read no TSO super-packet" << describe();
      EXPECT_GT(segments, 2 * super_packets) << "super-packets of more than two segments on average";
    } else {
      EXPECT_EQ(super_packets, 0u) << describe();
    }
    EXPECT_EQ(delta(*before, *after, "sim.network.malformed_from_host"), 0u) << "a segment left the daemon with a bad checksum";
  }
}

INSTANTIATE_TEST_SUITE_P(Sim, OffloadTest,
                         ::testing::Values(Case{"huawei-e3372", true}, Case{"huawei-e3372", false},
                                           Case{"mbim", true}, Case{"mbim", false}),
                         case_name);

// --offload takes auto, on or off: anything else is one line and a non-zero exit, before any TUN.
TEST(OffloadOption, AWrongValueIsOneLineAndANonZeroExit) {
  const char* exe = std::getenv("WWAN_DP_EXE");
  if (exe == nullptr) GTEST_SKIP() << "WWAN_DP_EXE is not set";
  Daemon d;
  ASSERT_TRUE(d.start(exe, {"--sim", "huawei-e3372", "--tun", kTun, "--offload", "maybe"}));
  const auto status = d.wait_exit(5000ms);
  ASSERT_TRUE(status) << d.describe();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) != 0) << d.describe();
  EXPECT_NE(d.stderr_text().find("--offload is auto, on or off, not 'maybe'"), std::string::npos) << d.stderr_text();
  EXPECT_EQ(std::count(d.stderr_text().begin(), d.stderr_text().end(), '\n'), 1) << d.stderr_text();
}

}  // namespace
}  // namespace wwan::integration
