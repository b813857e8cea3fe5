// Test packets for the offload tests (tests/datapath/offload_*_test.cpp, tests/tun/
// tun_offload_test.cpp, bench/offload_bench.cpp): IPv4/IPv6 TCP and UDP packets with correct
// checksums, built byte by byte with a deliberately naive RFC 1071 sum (one 16-bit word at a
// time), so that the fast checksum under test is never its own oracle.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

namespace wwan::offload::testing {

using Packet = std::vector<std::uint8_t>;

// RFC 1071 §4.1, literally: 16-bit big-endian words, an odd last byte padded with zero.
inline std::uint32_t naive_sum(std::span<const std::uint8_t> d, std::uint32_t sum = 0) {
  for (std::size_t i = 0; i + 1 < d.size(); i += 2) sum += static_cast<std::uint32_t>(d[i] << 8 | d[i + 1]);
  if (d.size() % 2 != 0) sum += static_cast<std::uint32_t>(d.back() << 8);
  return sum;
}
inline std::uint16_t naive_fold(std::uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
  return static_cast<std::uint16_t>(sum);
}
inline std::uint16_t naive_checksum(std::span<const std::uint8_t> d, std::uint32_t sum = 0) {
  return static_cast<std::uint16_t>(~naive_fold(naive_sum(d, sum)));
}

struct Flow {
  int version = 4;                      // 4 or 6
  std::array<std::uint8_t, 16> source{};  // IPv4 uses the first 4 bytes
  std::array<std::uint8_t, 16> destination{};
  std::uint16_t source_port = 40000;
  std::uint16_t destination_port = 5001;

  std::size_t address_bytes() const { return version == 4 ? 4 : 16; }
};

inline Flow flow_v4(std::array<std::uint8_t, 4> src, std::array<std::uint8_t, 4> dst, std::uint16_t sport,
                    std::uint16_t dport) {
  Flow f;
  f.version = 4;
  std::memcpy(f.source.data(), src.data(), 4);
  std::memcpy(f.destination.data(), dst.data(), 4);
  f.source_port = sport;
  f.destination_port = dport;
  return f;
}
// fd00::<src_last> -> fd00::<dst_last>
inline Flow flow_v6(std::uint8_t src_last, std::uint8_t dst_last, std::uint16_t sport, std::uint16_t dport) {
  Flow f;
  f.version = 6;
  f.source[0] = f.destination[0] = 0xfd;
  f.source[15] = src_last;
  f.destination[15] = dst_last;
  f.source_port = sport;
  f.destination_port = dport;
  return f;
}

struct IpFields {
  std::uint16_t id = 0x1000;   // IPv4 Identification
  bool df = true;              // IPv4 Don't Fragment
  std::uint8_t ttl = 64;       // IPv4 TTL / IPv6 Hop Limit
  std::uint8_t tos = 0;        // IPv4 TOS / IPv6 Traffic Class
  std::uint32_t flow_label = 0;
  std::vector<std::uint8_t> ipv4_options = {};  // multiple of 4 bytes
};

struct TcpFields {
  std::uint32_t seq = 1000;
  std::uint32_t ack = 5000;
  std::uint8_t flags = 0x10;   // ACK
  std::uint16_t window = 501;
  std::uint16_t urgent = 0;
  std::vector<std::uint8_t> options = {};  // multiple of 4 bytes
};

inline void put16(Packet& p, std::size_t at, std::uint16_t v) {
  p[at] = static_cast<std::uint8_t>(v >> 8);
  p[at + 1] = static_cast<std::uint8_t>(v);
}
inline void put32(Packet& p, std::size_t at, std::uint32_t v) {
  put16(p, at, static_cast<std::uint16_t>(v >> 16));
  put16(p, at + 2, static_cast<std::uint16_t>(v));
}

// IP header for `l4_bytes` of L4 (checksum filled for IPv4).
inline Packet ip_header(const Flow& f, const IpFields& ip, std::uint8_t protocol, std::size_t l4_bytes) {
  Packet h;
  if (f.version == 4) {
    const std::size_t ihl = 20 + ip.ipv4_options.size();
    h.assign(ihl, 0);
    h[0] = static_cast<std::uint8_t>(0x40 | (ihl / 4));
    h[1] = ip.tos;
    put16(h, 2, static_cast<std::uint16_t>(ihl + l4_bytes));
    put16(h, 4, ip.id);
    put16(h, 6, ip.df ? 0x4000 : 0);
    h[8] = ip.ttl;
    h[9] = protocol;
    std::memcpy(&h[12], f.source.data(), 4);
    std::memcpy(&h[16], f.destination.data(), 4);
    // memcpy from an empty span's null data() is undefined even for 0 bytes (UBSan nonnull).
    if (!ip.ipv4_options.empty()) std::memcpy(&h[20], ip.ipv4_options.data(), ip.ipv4_options.size());
    put16(h, 10, naive_checksum(h));
  } else {
    h.assign(40, 0);
    put32(h, 0, 0x60000000u | (std::uint32_t{ip.tos} << 20) | (ip.flow_label & 0xFFFFF));
    put16(h, 4, static_cast<std::uint16_t>(l4_bytes));
    h[6] = protocol;
    h[7] = ip.ttl;
    std::memcpy(&h[8], f.source.data(), 16);
    std::memcpy(&h[24], f.destination.data(), 16);
  }
  return h;
}

inline std::uint32_t pseudo_sum(const Flow& f, std::uint8_t protocol, std::size_t l4_bytes) {
  std::uint32_t s = naive_sum(std::span(f.source.data(), f.address_bytes()));
  s = naive_sum(std::span(f.destination.data(), f.address_bytes()), s);
  s += protocol;
  s += static_cast<std::uint32_t>(l4_bytes >> 16);
  s += static_cast<std::uint32_t>(l4_bytes & 0xFFFF);
  return s;
}

inline Packet tcp_packet(const Flow& f, const IpFields& ip, const TcpFields& tcp, std::span<const std::uint8_t> payload) {
  const std::size_t th = 20 + tcp.options.size();
  Packet l4(th, 0);
  put16(l4, 0, f.source_port);
  put16(l4, 2, f.destination_port);
  put32(l4, 4, tcp.seq);
  put32(l4, 8, tcp.ack);
  l4[12] = static_cast<std::uint8_t>((th / 4) << 4);
  l4[13] = tcp.flags;
  put16(l4, 14, tcp.window);
  put16(l4, 18, tcp.urgent);
  if (!tcp.options.empty()) std::memcpy(&l4[20], tcp.options.data(), tcp.options.size());
  l4.insert(l4.end(), payload.begin(), payload.end());
  put16(l4, 16, naive_checksum(l4, pseudo_sum(f, 6, l4.size())));
  Packet p = ip_header(f, ip, 6, l4.size());
  p.insert(p.end(), l4.begin(), l4.end());
  return p;
}

inline Packet udp_packet(const Flow& f, const IpFields& ip, std::span<const std::uint8_t> payload) {
  Packet l4(8, 0);
  put16(l4, 0, f.source_port);
  put16(l4, 2, f.destination_port);
  put16(l4, 4, static_cast<std::uint16_t>(8 + payload.size()));
  l4.insert(l4.end(), payload.begin(), payload.end());
  std::uint16_t c = naive_checksum(l4, pseudo_sum(f, 17, l4.size()));
  put16(l4, 6, c == 0 ? 0xFFFF : c);
  Packet p = ip_header(f, ip, 17, l4.size());
  p.insert(p.end(), l4.begin(), l4.end());
  return p;
}

// n bytes of a recognisable pattern starting at `start`.
inline std::vector<std::uint8_t> pattern(std::size_t n, std::uint32_t start = 0) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>((start + i) * 131 + 7);
  return v;
}

// Where the L4 header starts (IPv4 IHL or 40).
inline std::size_t l4_offset(const Packet& p) { return (p[0] >> 4) == 4 ? std::size_t{p[0] & 0x0Fu} * 4 : 40; }

// Does the packet's TCP/UDP checksum verify, by the naive sum?
inline bool naive_l4_ok(const Packet& p) {
  const std::size_t off = l4_offset(p);
  const bool v4 = (p[0] >> 4) == 4;
  const std::size_t alen = v4 ? 4 : 16;
  std::uint32_t s = naive_sum(std::span(p.data() + (v4 ? 12 : 8), alen));
  s = naive_sum(std::span(p.data() + (v4 ? 16 : 24), alen), s);
  s += v4 ? p[9] : p[6];
  const std::size_t l4 = p.size() - off;
  s += static_cast<std::uint32_t>(l4 >> 16) + static_cast<std::uint32_t>(l4 & 0xFFFF);
  return naive_fold(naive_sum(std::span(p.data() + off, l4), s)) == 0xFFFF;
}
inline bool naive_ipv4_ok(const Packet& p) {
  return (p[0] >> 4) != 4 || naive_fold(naive_sum(std::span(p.data(), std::size_t{p[0] & 0x0Fu} * 4))) == 0xFFFF;
}

}  // namespace wwan::offload::testing
