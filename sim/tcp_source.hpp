// A TCP sender on the far side of the emulated network: "a server on the Internet" that opens a
// connection to a socket listening on the host and sends it a download. Nothing but ACKs comes
// back, as in a real download, so the driver's RX direction carries the whole stream and its TX
// direction only the ACKs: the shape of the GSO ceiling the offload benchmark compares with (a
// writer that plays the TCP peer of a connected socket, docs/offload.md), and of the traffic
// userspace GRO exists for. The reflector (sim/network.hpp) makes a real TCP connection too, but
// both of its ends are host sockets, so the host's RX work also carries the client's ACK
// processing and its next sends.
//
// Pure: IP datagrams in, IP datagrams out, driven by the owning Network. IPv4 or IPv6.
//
// What TCP it speaks (RFC 9293), deliberately little, all of it what a sender needs on a link
// that may drop but never reorders:
//   - active open: SYN with MSS (RFC 9293 §3.7.1) and Window Scale (RFC 7323 §2) options,
//     retransmitted every kSynRetransmit until the SYN-ACK; then the ACK, then data.
//   - data segments of `mss` bytes (the smaller of ours and the host's MSS option), sent while
//     they fit the host's advertised window (scaled when both SYNs carried the option). The
//     payload is stream_byte(offset): a fixed pseudo-random sequence with a period of 65521
//     bytes (a prime, so no whole number of segments lines up with it), which lets a receiver
//     check every byte it got against its offset in the stream.
//   - no congestion control: the sender is pulled, one segment per to_host() call, by the
//     emulated modem as it fills IN transfers, so the host's draining of the bulk IN pipe is the
//     only rate limit (as with the UDP source at rate 0).
//   - loss recovery by go-back-N: on the third duplicate ACK, or when the oldest unacknowledged
//     byte has waited kRetransmitTimeout, sending restarts from it (counted in fast_retransmits / timeouts; the
//     receiver keeps what it already has). With a zero window the same timer sends one segment
//     as a window probe.
//   - with a byte limit, FIN after the last byte; closed once the FIN is acknowledged and the
//     host's own FIN has been acknowledged in turn. A RST from the host ends the connection
//     (counted in resets).
// Every segment from the host is checked (the caller verified the IP header and the TCP
// checksum); what does not belong to this connection or is not a well-formed TCP header is
// ignored and counted.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "datapath/ethernet.hpp"
#include "sim/tcp_wire.hpp"

namespace wwan::sim {

struct TcpSourceConfig {
  bool ipv6 = false;
  eth::Ipv4Address local_ipv4, host_ipv4;  // when !ipv6: the sender's and the host's address
  eth::Ipv6Address local_ipv6, host_ipv6;  // when ipv6
  std::uint16_t local_port = 5002;
  std::uint16_t host_port = 5201;
  // Our MSS option; segments carry min(this, the host's MSS option). The default is what fits a
  // 1500-byte MTU over IPv4 (1500 - 20 - 20); over IPv6 the caller passes 1440.
  std::uint16_t mss = 1460;
  std::uint64_t byte_limit = 0;  // 0: no end
};

struct TcpSourceCounters {
  std::uint64_t segments_sent = 0;   // data segments, retransmissions included
  std::uint64_t bytes_sent = 0;      // payload bytes, retransmissions included
  std::uint64_t bytes_acked = 0;     // payload bytes the host acknowledged
  std::uint64_t fast_retransmits = 0;  // go-back-N restarts on the third duplicate ACK
  std::uint64_t timeouts = 0;          // go-back-N restarts by the retransmission timer
  std::uint64_t syn_retransmits = 0;
  std::uint64_t acks_from_host = 0;  // segments from the host for this connection
  std::uint64_t ignored = 0;         // from the host, not for this connection's state
  std::uint64_t resets = 0;          // RSTs from the host
};

class TcpSource {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kSynRetransmit{1000};      // RFC 6298 §2.1's initial RTO
  static constexpr std::chrono::milliseconds kRetransmitTimeout{200};   // Linux's TCP_RTO_MIN
  static constexpr std::uint8_t kWindowScale = 7;                       // ours, RFC 7323 §2.3 (Linux's default for large buffers)
  static constexpr std::uint32_t kInitialSequence = 0x10000000;         // deterministic, for golden tests
  static constexpr std::uint32_t kPatternPeriod = 65521;                // the largest prime below 2^16

  // RFC 9293 §3.3.2's SYN-SENT, ESTABLISHED, FIN-WAIT-1, FIN-WAIT-2 and CLOSED.
  enum class State : std::uint8_t { syn_sent, established, fin_sent, fin_acked, closed };

  // The SYN is due at once.
  explicit TcpSource(const TcpSourceConfig& config);

  const TcpSourceConfig& config() const { return config_; }
  const TcpSourceCounters& counters() const { return counters_; }
  State state() const { return state_; }

  // Whether `ip` (a whole IPv4 / IPv6 packet, `l3` its IP header size, TCP after it) is a segment
  // of this connection: from the host's address and port to ours.
  bool matches(std::span<const std::uint8_t> ip, std::size_t l3) const;
  // A segment of this connection from the host (matches() was true; the caller verified the IP
  // header and the TCP checksum).
  void from_host(std::span<const std::uint8_t> ip, std::size_t l3, Clock::time_point now);

  // The next segment toward the host written into `out` (its size), or nullopt when nothing may
  // be sent at `now` (or `out` is too small for it; nothing is lost then).
  std::optional<std::size_t> to_host(std::span<std::uint8_t> out, Clock::time_point now);
  bool ready(Clock::time_point now) const;
  // When a timer (SYN retransmission, retransmission timeout) next falls due.
  std::optional<Clock::time_point> next_deadline() const;
  // A RST toward the host (to end the connection when the source is stopped) into `out`, or
  // nullopt when the connection is not open (or `out` is too small). The source is closed after.
  std::optional<std::size_t> reset(std::span<std::uint8_t> out);

  // The stream's byte at `offset` (see the top of this file).
  static std::uint8_t stream_byte(std::uint64_t offset);
  // Whether `bytes` are the stream's bytes from `offset` on (a memcmp against the table).
  static bool stream_matches(std::uint64_t offset, std::span<const std::uint8_t> bytes);

 private:
  enum Flag : std::uint8_t { kFin = 0x01, kSyn = 0x02, kRst = 0x04, kPsh = 0x08, kAck = 0x10 };

  std::size_t l3_size() const { return config_.ipv6 ? 40 : 20; }
  // One segment: headers for `flags` at sequence `seq`, `payload` bytes of the stream from stream
  // offset `offset`, SYN options when kSyn. Returns its size (out is large enough: checked).
  std::size_t write_segment(std::span<std::uint8_t> out, std::uint8_t flags, std::uint32_t seq,
                            std::uint64_t offset, std::size_t payload);
  std::uint64_t stream_end() const;    // bytes in the stream (UINT64_MAX: no limit)
  bool data_allowed() const;           // a data segment (or FIN) fits the window now

  TcpSourceConfig config_;
  tcp::Endpoints ends_;  // from config_
  TcpSourceCounters counters_;
  State state_ = State::syn_sent;
  std::optional<Clock::time_point> syn_due_;  // when the (next) SYN goes; none once answered
  bool ack_due_ = false;                      // the handshake's ACK, or an ACK of the host's FIN
  // Send sequence space (RFC 9293 §3.3.1) as 64-bit stream offsets: offset 0 is sequence
  // kInitialSequence + 1 (the SYN took one number).
  std::uint64_t snd_una_ = 0, snd_nxt_ = 0;
  std::uint64_t snd_max_ = 0;          // the highest offset ever sent (snd_nxt_ goes back on a loss)
  std::uint32_t rcv_nxt_ = 0;          // the host's next sequence number (what we acknowledge)
  std::uint64_t host_window_ = 0;      // bytes: the SYN-ACK's as is, later ones scaled
  std::uint8_t host_window_shift_ = 0;  // 0 unless both SYNs carried Window Scale
  std::uint16_t segment_bytes_ = 0;    // min(our MSS, the host's)
  unsigned duplicate_acks_ = 0;
  bool probe_allowed_ = false;         // one segment past a zero window (the timer fired)
  bool fin_sent_ = false;              // the FIN is the last thing sent (a restart clears it)
  bool fin_ever_sent_ = false;         // it was sent once: the host may acknowledge it
  Clock::time_point last_progress_{};  // when snd_una last moved (or data was first outstanding)
  std::uint16_t ip_identification_ = 0;
};

}  // namespace wwan::sim
