// The network behind an emulated modem: what the far side of the radio link does with the host's
// IP packets, and the traffic it sends toward the host. Pure: IP datagrams in, IP datagrams out,
// no link layer (the NCM models add and strip Ethernet, the MBIM model carries raw IP).
//
// It answers ICMP echo (v4 and v6) for any destination, echoes UDP sent to the echo port, counts
// and discards what is sent to the discard port (a sink), and can source a UDP stream toward the
// host at a set rate (a traffic generator for benchmarks and back-pressure tests). Every packet is
// counted; nothing queues without bound: the queue toward the host has a fixed capacity and a
// packet that does not fit is dropped and counted (dropped_queue_full).
//
// In-band control port (kSimControlPort). A process that talks to the emulated modem only through
// a driver (the daemon runs the modem in its own process) steers the network with a UDP datagram
// from the host to ANY address, IPv4 or IPv6, on port kSimControlPort; the payload is one ASCII
// command (trailing whitespace / newline ignored; fields separated by single spaces or tabs):
//   source <rate_bits_per_s> <payload_bytes> <packet_limit> <destination_port>
//                 start_source(): rate 0 = as fast as the host takes them, packet_limit 0 = no
//                 limit, payload_bytes 0..65507, destination_port 1..65535 (source port 5001,
//                 from server_ipv4 to host_ipv4, as SourceConfig says)
//   tcp-source <destination_port> <byte_limit>
//                 a TCP connection (sim/tcp_source.hpp) from server_ipv4 / server_ipv6 port 5002
//                 to the address this command came from (IPv4 or IPv6), destination_port
//                 1..65535, which then sends byte_limit bytes of TcpSource::stream_byte() and a
//                 FIN (0 = no end) as fast as the host takes them: a download that crosses the
//                 driver's RX direction, with only ACKs on TX. It replaces a running UDP stream
//                 and an earlier connection (RST); a later `source` leaves it running.
//   stop-source   stop_source(): ends the UDP stream and the TCP connection (a RST toward the host)
//   drop-session  the modem ends the data session as Faults::drop_session does (sim/modem.hpp),
//                 kDropSessionAfterAnswer after the "ok" has left toward the host: a host that
//                 takes the IP configuration down at once on the drop would otherwise lose the
//                 answer on its way up its own stack (seen: the daemon's RX worker wrote the "ok"
//                 to the TUN after its control thread had removed the address)
//   unplug        the modem leaves the bus (Faults::unplug), kDropSessionAfterAnswer after the
//                 "ok" has left: a driver sees the device gone, as when real firmware resets and
//                 re-enumerates. The daemon's --sim then "re-enumerates" a fresh emulated modem.
//   fault <name> [<value>]
//                 switches one of the modem's Faults (sim/modem.hpp) once the "ok" has left toward
//                 the host (so the answer is never the fault's first victim); whoever owns the
//                 modem applies it with take_fault_request() / apply_fault() (the daemon's --sim
//                 does, at every turn of its control loop). The names:
//                   stall-in / stall-out          Faults::stall_bulk_in / _out (until CLEAR_FEATURE(HALT))
//                   garbage <n>                   the next n NTBs toward the host are random bytes
//                   truncated <n>                 the next n NTBs are cut short of wBlockLength
//                   oversize <n>                  the next n NTBs are longer than dwNtbInMaxSize
//                   unplug-after-in <n>           the modem leaves the bus after n more bulk IN
//                                                 transfers: unplugged in the middle of the data flow
//                   lose-notifications on|off     RESPONSE_AVAILABLE is not sent (answers stay readable)
//                   control-delay <ms>            encapsulated answers become readable <ms> late
//                                                 (0..86400000; longer than the host's timeout is
//                                                 "the modem does not answer")
//                   clear                         every fault off
//                 n is 1..4294967295.
//   dhcp-nak      the link's DHCP server (NetworkConfig::dhcp_server) answers the next DHCPREQUEST
//                 with a DHCPNAK (the host loses its lease and starts over)
//   dhcp-silent <seconds>  the DHCP server ignores everything for that long (0..86400): renewals
//                 go unanswered and a short lease runs out
//   dhcp-lease <seconds>   the lease time of the next DHCPACKs (1..86400)
//   (answered "error: ..." on a network without a DHCP server)
// Each command is answered with one UDP datagram from the address and port it was sent to, back
// to the sender's address and port: "ok", or "error: <why>" (counted in control_rejected; nothing
// else happens). The answer goes through the queue toward the host like any reply.
//
// The TCP sink (sim/tcp_sink.hpp): a TCP connection from the host to server_ipv4 / server_ipv6
// port 9 (kTcpDiscardPort) is accepted and its bytes taken and thrown away, each checked against
// TcpSource::stream_byte(): an upload that crosses the driver's TX direction, with only ACKs on
// RX. Always listening, one connection at a time (a new one replaces it).
//
// The reflector (a hairpin NAT), so that a real TCP connection can cross the data path both ways
// although nothing here speaks TCP: an IPv4 TCP or UDP packet from the host to reflector_ipv4
// (198.51.100.9) comes back to the host from reflector_peer_ipv4 (198.51.100.10), and one to
// reflector_peer_ipv4 comes back from reflector_ipv4; ports and payload unchanged. A client
// socket that connects to 198.51.100.9:P thereby reaches a server socket of the same host
// listening on P, which sees the client as 198.51.100.10, and every byte goes host -> modem ->
// host in both directions. The addresses are rewritten with the IPv4 header and TCP/UDP checksums
// updated incrementally (RFC 1624), after the TCP/UDP checksum was verified (a packet that fails
// is malformed_from_host, never reflected: a driver that corrupts segments must show). The TTL is
// left alone (a hairpin is no hop). Counted in reflected_packets.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "datapath/ethernet.hpp"
#include "sim/dhcp_server.hpp"
#include "sim/router_advertiser.hpp"
#include "sim/tcp_sink.hpp"
#include "sim/tcp_source.hpp"

namespace wwan::sim {

using Clock = std::chrono::steady_clock;

inline constexpr std::uint16_t kUdpEchoPort = 7;     // RFC 862
inline constexpr std::uint16_t kUdpDiscardPort = 9;  // RFC 863: the sink
// The in-band control port (see the top of this file). 4000: not a port any test traffic, the
// source's default 5001 or a well-known service uses.
inline constexpr std::uint16_t kSimControlPort = 4000;
// How long after its "ok" left toward the host a control-port drop-session takes effect.
inline constexpr std::chrono::milliseconds kDropSessionAfterAnswer{250};
// The longest control-port control-delay: a day is "never" for any host.
inline constexpr std::uint64_t kMaxControlDelayMs = 86'400'000;

// A control-port `fault` command (see the top of this file): which fault and its value (a count,
// 1/0 for on/off, milliseconds for control_delay; unused for stalls and clear).
struct FaultRequest {
  enum class Kind : std::uint8_t {
    stall_in, stall_out, garbage, truncated, oversize, unplug_after_in, lose_notifications, control_delay, clear,
  };
  Kind kind = Kind::clear;
  std::uint64_t value = 0;
  bool operator==(const FaultRequest&) const = default;
};

struct NetworkConfig {
  // What the operator assigns to the host for this session (reported by AT^DHCP? / MBIM
  // IP_CONFIGURATION) and the gateway / DNS servers it reports with it.
  eth::Ipv4Address host_ipv4{{10, 64, 64, 2}};
  std::uint8_t host_ipv4_prefix_length = 30;
  eth::Ipv4Address gateway_ipv4{{10, 64, 64, 1}};
  eth::Ipv4Address dns_ipv4[2] = {{{10, 11, 12, 13}}, {{10, 11, 12, 14}}};
  eth::Ipv6Address host_ipv6{{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2}};
  eth::Ipv6Address gateway_ipv6{{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1}};
  std::uint16_t mtu = 1500;
  // The far end of the sourced stream (a server on the Internet).
  eth::Ipv4Address server_ipv4{{198, 51, 100, 7}};
  eth::Ipv6Address server_ipv6{{0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7}};
  std::size_t to_host_queue_packets = 4096;  // capacity of the queue toward the host
  // The reflector's two addresses (see the top of this file).
  eth::Ipv4Address reflector_ipv4{{198, 51, 100, 9}};
  eth::Ipv4Address reflector_peer_ipv4{{198, 51, 100, 10}};
  // A DHCP server for the host (sim/dhcp_server.hpp): the profiles whose session gives no address.
  bool dhcp_server = false;
  std::uint32_t dhcp_lease_s = kDefaultLeaseSeconds;
  // IPv6 router advertisements for host_ipv6's /64 (sim/router_advertiser.hpp): every profile.
  RouterAdvertiserConfig router_advertisements;
};

// A UDP stream toward the host: `payload_bytes` of UDP payload per packet, `rate_bits_per_s` of
// IP bytes per second (0 = as fast as the host takes them), `packet_limit` packets in all
// (0 = no limit). Destination: host_ipv4, `destination_port`.
struct SourceConfig {
  std::uint64_t rate_bits_per_s = 0;
  std::size_t payload_bytes = 1472;
  std::uint64_t packet_limit = 0;
  std::uint16_t destination_port = 5001;
  std::uint16_t source_port = 5001;
};

struct NetworkCounters {
  std::uint64_t packets_from_host = 0;
  std::uint64_t bytes_from_host = 0;       // IP bytes
  std::uint64_t icmp_echo_replies = 0;     // v4 and v6
  std::uint64_t udp_echo_replies = 0;
  std::uint64_t sink_packets = 0;          // UDP to the discard port
  std::uint64_t sink_bytes = 0;            // IP bytes
  std::uint64_t other_packets = 0;         // valid IP nobody answers (TCP, other UDP ports, ...)
  std::uint64_t malformed_from_host = 0;   // not a whole IPv4/IPv6 packet
  std::uint64_t source_packets = 0;        // generated by the source
  std::uint64_t source_bytes = 0;          // IP bytes
  std::uint64_t packets_to_host = 0;       // handed to the modem toward the host
  std::uint64_t bytes_to_host = 0;
  std::uint64_t dropped_queue_full = 0;    // replies / source packets that found the queue full
  std::uint64_t dropped_too_large = 0;     // did not fit the caller's buffer in to_host (never truncated)
  std::uint64_t control_commands = 0;      // control-port commands carried out (answered "ok")
  std::uint64_t control_rejected = 0;      // control-port datagrams that were no command (answered "error: ...")
  std::uint64_t reflected_packets = 0;     // TCP / UDP sent back to the host by the reflector
  std::uint64_t tcp_source_segments = 0;   // data segments the tcp-source sent (retransmissions included)
};

class Network {
 public:
  explicit Network(NetworkConfig config = {});

  const NetworkConfig& config() const { return config_; }
  const NetworkCounters& counters() const { return counters_; }
  // nullptr when the config has none.
  const DhcpServer* dhcp_server() const { return dhcp_ ? &*dhcp_ : nullptr; }
  const RouterAdvertiser* router_advertiser() const { return ra_ ? &*ra_ : nullptr; }

  // An IP datagram from the host (already stripped of any link layer), arriving at `now` (the
  // time a control-port `source` command starts its stream).
  void from_host(std::span<const std::uint8_t> ip_packet, Clock::time_point now);

  // True once per control-port `drop-session`, from kDropSessionAfterAnswer after its "ok" left
  // toward the host (or was found not to fit the queue): the owning Modem asks at every
  // transaction and drops the session when told. next_deadline() announces the time.
  bool take_drop_session_request(Clock::time_point now);
  // The same for a control-port `unplug`: the owning Modem leaves the bus when told.
  bool take_unplug_request(Clock::time_point now);
  // The control-port `fault` commands whose "ok" has left toward the host (or could not be
  // queued), oldest first, each once; nullopt when none is waiting. At most kMaxPendingFaults wait
  // (more are answered "error: ..."), so a flood of commands cannot grow memory.
  std::optional<FaultRequest> take_fault_request();
  static constexpr std::size_t kMaxPendingFaults = 16;

  // Starts (or replaces) the stream toward the host; stop_source() ends it.
  void start_source(const SourceConfig& source, Clock::time_point now);
  void stop_source();
  // The tcp-source connection, nullptr when none was started (or it was stopped).
  const TcpSource* tcp_source() const { return tcp_ ? &*tcp_ : nullptr; }
  // The TCP receiver on server_ipv4 / server_ipv6 port kTcpDiscardPort (always listening).
  const TcpSink& tcp_sink() const { return sink_; }

  // The next IP datagram toward the host, copied into `out`, or nullopt when none is due at `now`.
  // A datagram larger than out.size() is dropped and counted (never truncated).
  std::optional<std::size_t> to_host(std::span<std::uint8_t> out, Clock::time_point now);

  // Whether to_host() has a datagram ready at `now`, and when the next sourced one or a pending
  // drop-session falls due (nullopt: nothing time-driven is pending).
  bool has_packet_for_host(Clock::time_point now) const;
  std::optional<Clock::time_point> next_deadline() const;

 private:
  // What happens once a control answer has left toward the host.
  enum class AfterAnswer : std::uint8_t { none, drop_session, unplug, fault };
  struct Queued {
    std::vector<std::uint8_t> bytes;
    AfterAnswer after = AfterAnswer::none;  // the answer to a drop-session / unplug / fault command
    FaultRequest fault;                     // with AfterAnswer::fault
  };

  NetworkConfig config_;
  NetworkCounters counters_;
  std::deque<Queued> to_host_;  // bounded by config_.to_host_queue_packets
  std::optional<Clock::time_point> drop_session_at_;  // a drop-session answered, acting then
  std::optional<Clock::time_point> unplug_at_;        // an unplug answered, acting then
  std::deque<FaultRequest> faults_due_;               // fault commands answered, to apply now
  std::size_t faults_answering_ = 0;                  // fault answers still queued toward the host
  std::optional<SourceConfig> source_;
  Clock::time_point source_started_{};
  std::uint64_t source_sent_ = 0;
  std::uint16_t ipv4_identification_ = 0;
  std::optional<DhcpServer> dhcp_;
  std::optional<RouterAdvertiser> ra_;
  std::optional<TcpSource> tcp_;
  TcpSink sink_;

  bool enqueue(std::vector<std::uint8_t> packet, AfterAnswer after = AfterAnswer::none, FaultRequest fault = {});
  void answer_ipv4(std::span<const std::uint8_t> packet, Clock::time_point now);
  void answer_ipv6(std::span<const std::uint8_t> packet, Clock::time_point now);
  // A TCP / UDP packet to one of the reflector's addresses (`ihl`: its IPv4 header size).
  void reflect(std::span<const std::uint8_t> packet, std::size_t ihl);
  // A datagram to kSimControlPort: `ip` the whole request, `l3` its IP header size.
  void control(std::span<const std::uint8_t> ip, std::size_t l3, Clock::time_point now);
  // dhcp-* control commands: the answer ("ok" / "error: ..."), nullopt when `payload` is none.
  std::optional<std::string> dhcp_command(std::span<const std::uint8_t> payload, Clock::time_point now);
  void answer_udp(std::span<const std::uint8_t> request, std::size_t l3, std::string_view payload,
                  AfterAnswer after, Clock::time_point now, FaultRequest fault = {});
  void schedule(AfterAnswer after, Clock::time_point answer_left, const FaultRequest& fault = {});
  // `request`: the control datagram (its source address is the host's end of the connection).
  void start_tcp_source(std::span<const std::uint8_t> request, std::uint16_t port, std::uint64_t bytes);
  bool source_due(Clock::time_point now) const;
  Clock::time_point source_due_time(std::uint64_t index) const;
  std::size_t source_packet_bytes() const;
  std::size_t write_source_packet(std::span<std::uint8_t> out);
};

}  // namespace wwan::sim
