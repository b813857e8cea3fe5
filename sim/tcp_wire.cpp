#include "sim/tcp_wire.hpp"

#include <algorithm>
#include <cstring>

#include "datapath/offload/checksum.hpp"

namespace wwan::sim::tcp {

namespace csum = offload::csum;
using offload::load_be16;
using offload::store_be16;
using offload::store_be32;

namespace {
constexpr std::uint8_t kHopLimit = 64;
}

std::optional<std::size_t> header_size(std::span<const std::uint8_t> ip, std::size_t l3) {
  if (l3 > ip.size() || ip.size() - l3 < kHeaderSize) return std::nullopt;
  const std::size_t data_offset = static_cast<std::size_t>(ip[l3 + 12] >> 4) * 4;
  if (data_offset < kHeaderSize || data_offset > ip.size() - l3) return std::nullopt;
  return data_offset;
}

SynOptions parse_syn_options(std::span<const std::uint8_t> tcp, std::size_t data_offset) {
  SynOptions o;
  for (std::size_t i = kHeaderSize; i < data_offset;) {
    const std::uint8_t kind = tcp[i];
    if (kind == kOptionEnd) break;
    if (kind == kOptionNop) {
      ++i;
      continue;
    }
    if (i + 1 >= data_offset) break;
    const std::size_t length = tcp[i + 1];
    if (length < 2 || length > data_offset - i) break;
    if (kind == kOptionMss && length == 4) o.mss = load_be16(tcp.data() + i + 2);
    if (kind == kOptionWindowScale && length == 3) o.window_shift = std::min(tcp[i + 2], kMaxWindowShift);
    if (kind == kOptionSackPermitted && length == 2) o.sack_permitted = true;
    i += length;
  }
  return o;
}

std::size_t write_headers(std::uint8_t* p, const Endpoints& e, const SegmentFields& f, std::size_t payload_bytes) {
  const std::size_t l3 = e.ip_header_size();
  const std::size_t th = kHeaderSize + f.options.size();
  std::uint8_t* t = p + l3;
  std::memset(p, 0, l3 + kHeaderSize);
  if (e.ipv6) {
    p[0] = 0x60;  // version 6, traffic class 0, flow label 0
    store_be16(p + 4, static_cast<std::uint16_t>(th + payload_bytes));
    p[6] = kIpProtocol;
    p[7] = kHopLimit;
    std::memcpy(p + 8, e.local_ipv6.bytes.data(), 16);
    std::memcpy(p + 24, e.host_ipv6.bytes.data(), 16);
  } else {
    p[0] = 0x45;  // version 4, IHL 5
    store_be16(p + 2, static_cast<std::uint16_t>(l3 + th + payload_bytes));
    store_be16(p + 4, f.ip_identification);
    store_be16(p + 6, 0x4000);  // DF
    p[8] = kHopLimit;
    p[9] = kIpProtocol;
    std::memcpy(p + 12, e.local_ipv4.bytes.data(), 4);
    std::memcpy(p + 16, e.host_ipv4.bytes.data(), 4);
    store_be16(p + 10, csum::ipv4_header(std::span<const std::uint8_t>(p, l3)));
  }
  store_be16(t, e.local_port);
  store_be16(t + 2, e.host_port);
  store_be32(t + 4, f.seq);
  store_be32(t + 8, (f.flags & kAck) != 0 ? f.ack : 0);
  t[12] = static_cast<std::uint8_t>((th / 4) << 4);
  t[13] = f.flags;
  store_be16(t + 14, f.window);
  if (!f.options.empty()) std::memcpy(t + kHeaderSize, f.options.data(), f.options.size());
  return l3 + th;
}

std::size_t finish(std::uint8_t* p, const Endpoints& e, std::size_t header_bytes, std::size_t payload_bytes) {
  const std::size_t l3 = e.ip_header_size();
  std::uint8_t* t = p + l3;
  const std::size_t l4 = header_bytes - l3 + payload_bytes;
  const std::span<const std::uint8_t> source(p + (e.ipv6 ? 8 : 12), e.ipv6 ? 16 : 4);
  const std::span<const std::uint8_t> destination(p + (e.ipv6 ? 24 : 16), e.ipv6 ? 16 : 4);
  csum::Sum sum = csum::pseudo_header(source, destination, kIpProtocol, static_cast<std::uint32_t>(l4));
  sum = csum::accumulate(std::span<const std::uint8_t>(t, l4), sum);
  store_be16(t + 16, csum::finish_be(sum));
  return header_bytes + payload_bytes;
}

}  // namespace wwan::sim::tcp
