// What the emulated network's TCP endpoints (sim/tcp_source.hpp, sim/tcp_sink.hpp) share of
// TCP's wire format (RFC 9293 §3.1): the option kinds, the parse of a SYN's options, and one
// segment toward the host written whole (IPv4 or IPv6 header, TCP header, checksums).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "datapath/ethernet.hpp"

namespace wwan::sim::tcp {

inline constexpr std::uint8_t kIpProtocol = 6;
inline constexpr std::size_t kHeaderSize = 20;  // without options
inline constexpr std::uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kPsh = 0x08, kAck = 0x10;
inline constexpr std::uint8_t kOptionEnd = 0, kOptionNop = 1, kOptionMss = 2, kOptionWindowScale = 3;
inline constexpr std::uint8_t kOptionSackPermitted = 4, kOptionSack = 5;  // RFC 2018
inline constexpr std::uint8_t kMaxWindowShift = 14;  // RFC 7323 §2.3: larger values are taken as 14

// The TCP header's size (its Data Offset) of the segment in `ip` after an IP header of `l3`
// bytes, or nullopt when there is no whole TCP header there (shorter than 20 bytes, or than
// the Data Offset says).
std::optional<std::size_t> header_size(std::span<const std::uint8_t> ip, std::size_t l3);

// The options of a SYN or SYN-ACK that matter here.
struct SynOptions {
  std::optional<std::uint16_t> mss;
  std::optional<std::uint8_t> window_shift;  // capped at kMaxWindowShift
  bool sack_permitted = false;
};
// `tcp`: the TCP header and what follows; `data_offset`: its header length (checked by the
// caller: 20 <= data_offset <= tcp.size()). Kind, length, value; EOL and NOP are one byte. A
// malformed list ends the parse with what was read (the host's kernel does not send one).
SynOptions parse_syn_options(std::span<const std::uint8_t> tcp, std::size_t data_offset);

// The two ends of a connection, as seen by the network's endpoint ("local").
struct Endpoints {
  bool ipv6 = false;
  eth::Ipv4Address local_ipv4, host_ipv4;
  eth::Ipv6Address local_ipv6, host_ipv6;
  std::uint16_t local_port = 0, host_port = 0;
  std::size_t ip_header_size() const { return ipv6 ? 40 : 20; }
};

struct SegmentFields {
  std::uint8_t flags = 0;
  std::uint32_t seq = 0, ack = 0;
  std::uint16_t window = 0;
  std::span<const std::uint8_t> options;  // a multiple of 4 bytes, at most 40
  std::uint16_t ip_identification = 0;    // IPv4 only
};

// Writes the IP and TCP headers of a segment from local to host into `out` for a payload of
// `payload_bytes` that the caller puts right after them (at the returned header size), then
// calls finish(). `out` must hold the headers and the payload.
std::size_t write_headers(std::uint8_t* out, const Endpoints& e, const SegmentFields& f, std::size_t payload_bytes);
// The TCP checksum of the segment written at `out` (headers of `header_bytes` and the payload);
// returns the whole IP packet's size.
std::size_t finish(std::uint8_t* out, const Endpoints& e, std::size_t header_bytes, std::size_t payload_bytes);

}  // namespace wwan::sim::tcp
