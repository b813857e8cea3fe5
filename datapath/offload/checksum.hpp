// The Internet checksum (RFC 1071) and its incremental update (RFC 1624), for the TUN offload
// code (docs/offload.md): TCP/UDP/IPv4 header checksums are verified on RX before coalescing
// and computed on TX after segmenting, because NCM has no checksum offload.
//
// A running sum is a `Sum`: 64-bit, in the host's byte order (RFC 1071 §2(B): one's complement
// addition does not care about byte order as long as the result is swapped at the end). Sums of
// several pieces may be added together only when every piece but the last starts at an even
// offset of the checksummed stream and has an even length: the users here sum a pseudo-header,
// an L4 header and one payload span, which meets that. fold_be() ends a sum: the 16-bit one's
// complement sum, as a value to be stored big-endian (store_be16).
//
// Hot path: accumulate() runs over every payload byte of every segment, so it is written for
// speed (four independent 64-bit accumulators with end-around carry, no per-byte work).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace wwan::offload {

using Bytes = std::span<const std::uint8_t>;
using MutableBytes = std::span<std::uint8_t>;

// ---- big-endian field access (network byte order; any alignment) ------------------------------
inline std::uint16_t load_be16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}
inline std::uint32_t load_be32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}
inline void store_be16(std::uint8_t* p, std::uint16_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 8);
  p[1] = static_cast<std::uint8_t>(v);
}
inline void store_be32(std::uint8_t* p, std::uint32_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 24);
  p[1] = static_cast<std::uint8_t>(v >> 16);
  p[2] = static_cast<std::uint8_t>(v >> 8);
  p[3] = static_cast<std::uint8_t>(v);
}

namespace csum {

using Sum = std::uint64_t;

constexpr std::uint16_t bswap16(std::uint16_t v) { return static_cast<std::uint16_t>((v << 8) | (v >> 8)); }

// Adds `data` to `sum` (RFC 1071 §4.1, 64 bits at a time). An odd last byte counts as the high
// byte of a 16-bit word padded with zero, as RFC 1071 says.
Sum accumulate(Bytes data, Sum sum = 0);

// Adds one 16-bit word given as its big-endian (network) value.
inline Sum add_be16(Sum sum, std::uint16_t value) {
  if constexpr (std::endian::native == std::endian::little) value = bswap16(value);
  const Sum r = sum + value;
  return r + (r < value ? 1 : 0);  // end-around carry: `sum` may use all 64 bits
}
inline Sum add_be32(Sum sum, std::uint32_t value) {
  return add_be16(add_be16(sum, static_cast<std::uint16_t>(value >> 16)), static_cast<std::uint16_t>(value));
}

// The 16-bit one's complement sum of everything added, as a big-endian value.
inline std::uint16_t fold_be(Sum sum) {
  sum = (sum & 0xFFFFFFFF) + (sum >> 32);
  sum = (sum & 0xFFFFFFFF) + (sum >> 32);
  sum = (sum & 0xFFFF) + (sum >> 16);
  sum = (sum & 0xFFFF) + (sum >> 16);
  auto folded = static_cast<std::uint16_t>(sum);
  if constexpr (std::endian::native == std::endian::little) folded = bswap16(folded);
  return folded;
}

// The checksum field value: the complement of the folded sum.
inline std::uint16_t finish_be(Sum sum) { return static_cast<std::uint16_t>(~fold_be(sum)); }

// A stream that carries its own (correct) checksum sums to 0xFFFF (RFC 1071 §1(3)).
inline bool verifies(Sum sum_including_checksum) { return fold_be(sum_including_checksum) == 0xFFFF; }

// The TCP/UDP pseudo-header (RFC 793 §3.1, RFC 768; RFC 8200 §8.1 for IPv6): source and
// destination address (4 or 16 bytes each), protocol, and the L4 length.
Sum pseudo_header(Bytes source, Bytes destination, std::uint8_t protocol, std::uint32_t l4_length);

// RFC 1624 eqn. 3: the new checksum after a 16-bit field changed from `old_value` to
// `new_value`: HC' = ~(~HC + ~m + m'). All values big-endian (as read with load_be16).
inline std::uint16_t update16(std::uint16_t checksum, std::uint16_t old_value, std::uint16_t new_value) {
  std::uint32_t s = static_cast<std::uint16_t>(~checksum);
  s += static_cast<std::uint16_t>(~old_value);
  s += new_value;
  s = (s & 0xFFFF) + (s >> 16);
  s = (s & 0xFFFF) + (s >> 16);
  return static_cast<std::uint16_t>(~s);
}

// The IPv4 header checksum of `header` (RFC 791 §3.1) with its checksum field (bytes 10-11)
// taken as zero.
std::uint16_t ipv4_header(Bytes header);

}  // namespace csum
}  // namespace wwan::offload
