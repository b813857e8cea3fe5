// Segments of the host's side of a TCP connection with the emulated network's TCP sender and
// receiver (sim/tcp_source.hpp, sim/tcp_sink.hpp), built byte by byte, and ref_checksum: a naive
// RFC 1071 sum that shares nothing with the checksum code under test, so a test cannot pass by
// agreeing with itself. Shared by tests/sim/tcp_source_test.cpp and tcp_sink_test.cpp.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

#include "datapath/ethernet.hpp"
#include "sim/tcp_source.hpp"

namespace wwan::sim::test {

using Vec = std::vector<std::uint8_t>;

inline std::uint16_t ref_checksum(const Vec& data) {
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i < data.size(); i += 2) {
    sum += static_cast<std::uint32_t>(data[i] << 8 | (i + 1 < data.size() ? data[i + 1] : 0));
    sum = (sum & 0xFFFF) + (sum >> 16);
  }
  return static_cast<std::uint16_t>(~sum & 0xFFFF);
}
inline std::uint16_t be16(const Vec& v, std::size_t at) { return static_cast<std::uint16_t>(v[at] << 8 | v[at + 1]); }
inline std::uint32_t be32(const Vec& v, std::size_t at) { return std::uint32_t{be16(v, at)} << 16 | be16(v, at + 2); }
inline void put16(Vec& v, std::size_t at, std::uint16_t x) {
  v[at] = static_cast<std::uint8_t>(x >> 8);
  v[at + 1] = static_cast<std::uint8_t>(x);
}
inline void put32(Vec& v, std::size_t at, std::uint32_t x) {
  put16(v, at, static_cast<std::uint16_t>(x >> 16));
  put16(v, at + 2, static_cast<std::uint16_t>(x));
}
// TCP checksum of a whole IPv4 / IPv6 packet: 0 when right (RFC 9293 §3.1, RFC 8200 §8.1).
inline std::uint16_t ref_tcp_checksum(const Vec& ip) {
  const bool v6 = (ip[0] >> 4) == 6;
  const std::size_t l3 = v6 ? 40 : 20;
  Vec all(ip.begin() + (v6 ? 8 : 12), ip.begin() + (v6 ? 40 : 20));
  const auto len = static_cast<std::uint32_t>(ip.size() - l3);
  if (v6) {
    for (int s = 24; s >= 0; s -= 8) all.push_back(static_cast<std::uint8_t>(len >> s));
    all.insert(all.end(), {0, 0, 0, 6});
  } else {
    all.insert(all.end(), {0, 6, static_cast<std::uint8_t>(len >> 8), static_cast<std::uint8_t>(len)});
  }
  all.insert(all.end(), ip.begin() + static_cast<std::ptrdiff_t>(l3), ip.end());
  return ref_checksum(all);
}

inline const eth::Ipv4Address kServer4{{198, 51, 100, 7}}, kHost4{{10, 64, 64, 2}};
inline const eth::Ipv6Address kServer6{{0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7}};
inline const eth::Ipv6Address kHost6{{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2}};
inline constexpr std::uint32_t kHostIss = 0xA0000000;

// A segment from the host (10.64.64.2:5201 -> 198.51.100.7:5002, or the IPv6 pair; other ports
// as given), checksums right unless the caller spoils them afterwards. The payload is zeros, or
// TcpSource::stream_byte() from `stream_offset` on.
struct HostSegment {
  std::uint32_t seq = kHostIss + 1, ack = 0;
  std::uint8_t flags = 0x10;  // ACK
  std::uint16_t window = 512;
  Vec options;
  std::size_t payload = 0;
  bool ipv6 = false;
  std::uint16_t source_port = 5201, destination_port = 5002;
  std::optional<std::uint64_t> stream_offset;
};
inline Vec host_segment(const HostSegment& s) {
  const std::size_t l3 = s.ipv6 ? 40 : 20, th = 20 + s.options.size();
  Vec p(l3 + th + s.payload, 0);
  if (s.ipv6) {
    p[0] = 0x60;
    put16(p, 4, static_cast<std::uint16_t>(th + s.payload));
    p[6] = 6;
    p[7] = 64;
    std::copy(kHost6.bytes.begin(), kHost6.bytes.end(), p.begin() + 8);
    std::copy(kServer6.bytes.begin(), kServer6.bytes.end(), p.begin() + 24);
  } else {
    p[0] = 0x45;
    put16(p, 2, static_cast<std::uint16_t>(p.size()));
    p[8] = 64;
    p[9] = 6;
    std::copy(kHost4.bytes.begin(), kHost4.bytes.end(), p.begin() + 12);
    std::copy(kServer4.bytes.begin(), kServer4.bytes.end(), p.begin() + 16);
    put16(p, 10, ref_checksum(Vec(p.begin(), p.begin() + 20)));
  }
  put16(p, l3, s.source_port);
  put16(p, l3 + 2, s.destination_port);
  put32(p, l3 + 4, s.seq);
  put32(p, l3 + 8, s.ack);
  p[l3 + 12] = static_cast<std::uint8_t>((th / 4) << 4);
  p[l3 + 13] = s.flags;
  put16(p, l3 + 14, s.window);
  std::copy(s.options.begin(), s.options.end(), p.begin() + static_cast<std::ptrdiff_t>(l3 + 20));
  if (s.stream_offset)
    for (std::size_t i = 0; i < s.payload; ++i) p[l3 + th + i] = TcpSource::stream_byte(*s.stream_offset + i);
  put16(p, l3 + 16, ref_tcp_checksum(p));
  return p;
}

}  // namespace wwan::sim::test
