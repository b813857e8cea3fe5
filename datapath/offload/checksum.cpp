#include "datapath/offload/checksum.hpp"

namespace wwan::offload::csum {
namespace {

// One's complement addition in 64 bits: the carry out of bit 63 comes back in at bit 0.
inline std::uint64_t add_carry(std::uint64_t a, std::uint64_t b) {
  a += b;
  return a + (a < b ? 1 : 0);
}

}  // namespace

// Four 64-bit lanes; each 64-bit word of the data is added as its two 32-bit halves, so that a
// lane cannot overflow before 2^32 words (far beyond any packet) and no carry needs handling.
// Written with the GCC/Clang vector extension so that the same source becomes AVX2 (32 bytes
// per step) in the x86-64 clone below, SSE2 or NEON (two 16-byte steps) elsewhere.
using U64x4 = std::uint64_t __attribute__((vector_size(32)));

#if defined(__x86_64__) && defined(__GLIBC__)
// Chosen at load time by the CPU (ifunc: glibc; musl has none, so OpenWrt gets the default).
#define WWAN_CSUM_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define WWAN_CSUM_CLONES
#endif

WWAN_CSUM_CLONES
Sum accumulate(Bytes data, Sum sum) {
  const std::uint8_t* p = data.data();
  std::size_t n = data.size();
  U64x4 lo = {}, hi = {}, lo2 = {}, hi2 = {};
  const U64x4 low_half = {0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF};
  // 64 bytes a step into two independent pairs of sums: one pair is a chain of dependent adds
  // (one a cycle), two let the core overlap them with the loads (bench/offload_bench
  // BM_Checksum/1500, AVX2: 46-55 GB/s with one pair, 85-87 GB/s with two; docs/offload.md).
  while (n >= 64) {
    U64x4 v, w;
    std::memcpy(&v, p, sizeof v);
    std::memcpy(&w, p + 32, sizeof w);
    lo += v & low_half;
    hi += v >> 32;
    lo2 += w & low_half;
    hi2 += w >> 32;
    p += 64;
    n -= 64;
  }
  if (n >= 32) {
    U64x4 v;
    std::memcpy(&v, p, sizeof v);
    lo += v & low_half;
    hi += v >> 32;
    p += 32;
    n -= 32;
  }
  lo += lo2;
  hi += hi2;
  // Each lane is below 2^32 * (words summed): adding the eight halves cannot wrap for any
  // input shorter than 2^34 bytes.
  std::uint64_t acc = lo[0] + lo[1] + lo[2] + lo[3] + hi[0] + hi[1] + hi[2] + hi[3];
  while (n >= 4) {
    std::uint32_t w;
    std::memcpy(&w, p, sizeof w);
    acc += w;
    p += 4;
    n -= 4;
  }
  if (n > 0) {
    // The tail in a zeroed word: native order keeps every byte at its place in its 16-bit word,
    // and an odd last byte is the high-order byte of a zero-padded word (RFC 1071 §4.1).
    std::uint32_t tail = 0;
    std::memcpy(&tail, p, n);
    acc += tail;
  }
  return add_carry(sum, acc);
}

Sum pseudo_header(Bytes source, Bytes destination, std::uint8_t protocol, std::uint32_t l4_length) {
  Sum s = accumulate(source);
  s = accumulate(destination, s);
  s = add_be16(s, protocol);
  return add_be32(s, l4_length);
}

std::uint16_t ipv4_header(Bytes header) {
  // The checksum field is summed as zero: sum around it.
  Sum s = accumulate(header.first(10));
  if (header.size() > 12) s = accumulate(header.subspan(12), s);
  return finish_be(s);
}

}  // namespace wwan::offload::csum
