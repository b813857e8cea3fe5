// A TCP receiver on the far side of the emulated network: "a server on the Internet" that takes
// an upload on server_ipv4 / server_ipv6 port kTcpDiscardPort (9, RFC 863's discard service over
// TCP) and throws the bytes away once it has checked them. The mirror of TcpSource: the stream
// crosses only the driver's TX direction (the host's TSO super-packets cut into NTBs), only ACKs
// cross RX. What e2e_bench's "tx upload" case and the offload upload test drive.
//
// Pure: IP datagrams in, IP datagrams out, driven by the owning Network. IPv4 or IPv6.
//
// What TCP it speaks (RFC 9293), what a receiver needs on a link that may drop but never
// reorders, and no timer at all (every loss is recovered by the host's retransmissions, which
// are answered):
//   - passive open: a SYN to the port gets a SYN-ACK with an MSS option (RFC 9293 §3.7.1), and
//     Window Scale (RFC 7323 §2) and SACK-permitted (RFC 2018 §2) when the SYN had them; a
//     retransmitted SYN gets it again. One connection at a time: a SYN
//     from another address or port replaces the connection (counted in replaced).
//   - in-order data is taken. A segment past a gap is kept as a range of the stream (up to
//     kMaxRanges of them, within the window; its bytes count once the gap is filled) and answered
//     at once with a duplicate ACK (RFC 9293 §3.10.7.4) that carries SACK blocks (RFC 2018) when
//     the SYN offered SACK, so the host retransmits only what is missing. A duplicate is ACKed.
//   - one cumulative ACK per batch: however many segments arrived since, the next to_host() sends
//     one ACK. The emulated modem takes a whole OUT transfer before it builds the next IN one, so
//     this is the ACK-per-GRO-batch of a Linux receiver.
//   - the window is fixed (kWindowBytes, scaled by kWindowScale when both SYNs carried the
//     option): what is taken is discarded at once, nothing ever fills.
//   - FIN: acknowledged with our own FIN (CLOSE-WAIT and LAST-ACK in one step: nothing is left
//     to send); closed once the host acknowledges it. A retransmitted FIN gets both again. A RST
//     closes.
//   - every payload byte is compared with TcpSource::stream_byte(offset) (a memcmp against its
//     table): a sender that uploads that sequence learns from corrupt_segments whether anything
//     changed on the way. Other data counts there too and is taken all the same.
// Every segment from the host is checked (the caller verified the IP header and the TCP
// checksum); what does not belong to the connection or is not a well-formed TCP header is ignored
// and counted.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "datapath/ethernet.hpp"
#include "sim/tcp_wire.hpp"

namespace wwan::sim {

inline constexpr std::uint16_t kTcpDiscardPort = 9;  // RFC 863

struct TcpSinkConfig {
  eth::Ipv4Address local_ipv4;  // the sink's addresses (NetworkConfig::server_ipv4 / _ipv6)
  eth::Ipv6Address local_ipv6;
  std::uint16_t local_port = kTcpDiscardPort;
  std::uint16_t mss_ipv4 = 1460, mss_ipv6 = 1440;  // our MSS option: what fits a 1500-byte MTU
};

struct TcpSinkCounters {
  std::uint64_t connections = 0;       // SYNs that opened a connection (a retransmitted SYN does not count)
  std::uint64_t replaced = 0;          // connections ended by another host's SYN
  std::uint64_t segments = 0;          // in-order data segments taken
  std::uint64_t bytes = 0;             // payload bytes taken
  std::uint64_t corrupt_segments = 0;  // taken, but not TcpSource::stream_byte() at their offset
  std::uint64_t out_of_order = 0;      // segments not at the next sequence number: ACKed at once
  std::uint64_t ranges_full = 0;       // past a gap, but kMaxRanges ranges are held: dropped
  std::uint64_t acks_sent = 0;         // ACK segments (SYN-ACK and FIN not counted)
  std::uint64_t fins = 0;              // the host's FINs, retransmissions included
  std::uint64_t resets = 0;            // RSTs from the host
  std::uint64_t ignored = 0;           // for the port, but not for the connection's state
};

class TcpSink {
 public:
  static constexpr std::uint32_t kInitialSequence = 0x20000000;  // deterministic, for golden tests
  static constexpr std::uint8_t kWindowScale = 7;                 // ours, RFC 7323 §2.3
  static constexpr std::uint16_t kWindowField = 0xFFFF;           // the window field, always
  static constexpr std::uint64_t kWindowBytes = std::uint64_t{kWindowField} << kWindowScale;  // data past it is dropped
  static constexpr std::size_t kMaxRanges = 8;                    // held past a gap (a fixed array)
  // RFC 9293's LISTEN, SYN-RECEIVED, ESTABLISHED, LAST-ACK (our FIN sent) and CLOSED (= LISTEN
  // again: the next SYN opens a new connection).
  enum class State : std::uint8_t { listen, syn_received, established, last_ack };

  explicit TcpSink(const TcpSinkConfig& config);

  const TcpSinkCounters& counters() const { return counters_; }
  State state() const { return state_; }
  // Payload bytes taken on the current (or last) connection.
  std::uint64_t connection_bytes() const { return rcv_offset_; }

  // Whether `ip` (a whole IPv4 / IPv6 packet, `l3` its IP header size, TCP after it) is for the
  // sink: TCP to its address and port.
  bool matches(std::span<const std::uint8_t> ip, std::size_t l3) const;
  // A segment for the sink (matches() was true; the caller verified the IP header and the TCP
  // checksum).
  void from_host(std::span<const std::uint8_t> ip, std::size_t l3);
  // The next segment toward the host written into `out` (its size), or nullopt when nothing is
  // due (or `out` is too small; it stays due).
  std::optional<std::size_t> to_host(std::span<std::uint8_t> out);
  bool ready() const { return due_ != 0; }
  // A RST toward the host for an open connection (the sink is stopped), or nullopt.
  std::optional<std::size_t> reset(std::span<std::uint8_t> out);

 private:
  enum Flag : std::uint8_t { kFin = 0x01, kSyn = 0x02, kRst = 0x04, kAck = 0x10 };
  enum Due : std::uint8_t { kDueSynAck = 1, kDueAck = 2, kDueFin = 4 };

  std::size_t l3_size() const { return ends_.ip_header_size(); }
  std::size_t write_segment(std::span<std::uint8_t> out, std::uint8_t flags, std::uint32_t seq);
  void open(std::span<const std::uint8_t> ip, std::span<const std::uint8_t> tcp, std::size_t data_offset);
  // rcv_offset_ moves to `to` (and past the ranges it then reaches).
  void advance(std::uint64_t to);
  // Keeps [begin, end) (stream offsets past a gap); false when there is no room for it.
  bool add_range(std::uint64_t begin, std::uint64_t end);

  struct Range {
    std::uint64_t begin = 0, end = 0;
  };

  TcpSinkConfig config_;
  TcpSinkCounters counters_;
  State state_ = State::listen;
  std::uint8_t due_ = 0;  // Due bits: what to_host() sends next
  // The connection's ends: ours from the config, the host's address and port from its SYN.
  tcp::Endpoints ends_;
  std::uint32_t irs_ = 0;          // the host's initial sequence number
  std::uint32_t rcv_nxt_ = 0;      // the next sequence number expected (what we acknowledge)
  std::uint64_t rcv_offset_ = 0;   // payload bytes taken: the stream offset of rcv_nxt_
  bool window_scaled_ = false;     // the SYN carried Window Scale (so ours goes in the SYN-ACK)
  bool sack_permitted_ = false;    // the SYN carried SACK-permitted (so ours too, and ACKs carry SACK)
  // Data taken past a gap: sorted, disjoint, not touching, all beyond rcv_offset_.
  std::array<Range, kMaxRanges> range_{};
  std::size_t ranges_ = 0;
  std::size_t latest_range_ = 0;   // the range the last out-of-order segment went into
  std::uint16_t ip_identification_ = 0;
};

}  // namespace wwan::sim
