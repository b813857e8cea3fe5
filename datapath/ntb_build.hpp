// NTB builder: datagrams in, one NTB16 or NTB32 out, laid out the way the device negotiated.
//
// The OUT direction of CDC NCM 1.0 §3 / MBIM 1.0 §7. The device tells the host, in its
// GET_NTB_PARAMETERS answer (NCM 1.0 §6.2.1, Table 6-3), how big an NTB may be (dwNtbOutMaxSize),
// where each datagram's payload must start (wNdpOutDivisor / wNdpOutPayloadRemainder), how the
// NDP must be aligned (wNdpOutAlignment) and how many datagrams one NTB may carry
// (wNtbOutMaxDatagrams). This file turns those numbers into byte offsets.
//
// Pure and allocation-free: the builder writes into a caller-owned buffer (one per in-flight
// bulk-OUT transfer) and never touches anything else. The hot path (append / reserve + commit)
// is a handful of adds and masks plus the copy itself: no division, no allocation.
//
// Layouts (anchors.md §1.7, §3.8, §5 #4):
//   NDP at the front (Linux default):  NTH | pad | NDP (room for `capacity` entries + null) | pad |
//                                      datagram | pad | datagram ...            block ends here ^
//   NDP at the end (Huawei, Windows):  NTH | pad | datagram | pad | datagram ... | pad | NDP
// Huawei NCM and MBIM firmware (E3372 12d1:157d, ME906s 12d1:15c1, HP lt4132 03f0:a31d) fails
// unless the NDP follows the datagrams (Linux CDC_NCM_FLAG_NDP_TO_END); Windows UsbNcm always
// builds it that way. With the NDP at the end an NTB carries exactly one NDP, hence one signature
// (one MBIM session): multiplexed sessions need one NTB each.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "datapath/ntb_wire.hpp"

namespace wwan::ntb {

// CDC_NCM_NTB_MAX_SIZE_TX (Linux 5588d6280270): what "dwNtbOutMaxSize = 0" means, and the most
// any host builds. NTB16 is further limited to kNtb16MaxSize because its offsets are 16-bit.
inline constexpr std::uint32_t kNtbOutMaxSizeLimit = 65536;
// What an invalid wNdpOutDivisor / wNdpOutAlignment is replaced with (Linux cdc_ncm_setup).
inline constexpr std::uint16_t kNdpOutFallbackAlignment = 4;
// Entries reserved in a front NDP when the device sets no wNtbOutMaxDatagrams.
inline constexpr std::uint16_t kDefaultFrontNdpCapacity = 64;

// The negotiated OUT parameters, in the spec's vocabulary. Feed the device's raw values through
// sanitize_out_params before use; the builder re-applies it, so insane values cannot overrun.
struct NtbOutParams {
  NtbFormat format = NtbFormat::Ntb16;
  std::uint32_t ntb_out_max_size = kNtbOutMaxSizeLimit;  // dwNtbOutMaxSize, bytes
  std::uint16_t ndp_out_divisor = 4;                      // wNdpOutDivisor, bytes (power of two)
  std::uint16_t ndp_out_payload_remainder = 0;            // wNdpOutPayloadRemainder, bytes
  std::uint16_t ndp_out_alignment = 4;                    // wNdpOutAlignment, bytes (power of two)
  std::uint16_t ntb_out_max_datagrams = 0;                // wNtbOutMaxDatagrams, 0 = no limit
  // Linux CDC_NCM_FLAG_NDP_TO_END; required by Huawei (anchors.md §5 #4).
  bool ndp_at_end = false;
  // NCM carries Ethernet frames and the divisor/remainder rule applies to the payload *after*
  // the 14-byte Ethernet header (NCM 1.0 §3.3.4; Linux subtracts ETH_HLEN from the remainder,
  // Windows ntb.cpp aligns offset + 14). MBIM datagrams are raw IP: no adjustment.
  bool ethernet_framing = true;
  // Entries reserved when the NDP is at the front and ntb_out_max_datagrams is 0 (the NDP must be
  // placed before the first datagram is known, so its size is fixed up front).
  std::uint16_t front_ndp_capacity = kDefaultFrontNdpCapacity;

  friend bool operator==(const NtbOutParams&, const NtbOutParams&) = default;
};

// Which of the device's values sanitize_out_params replaced, so the control plane can log them.
struct OutParamOverrides {
  bool ntb_out_max_size = false;           // 0, below 2048, above 65536 (65535 for NTB16)
  bool ndp_out_divisor = false;            // not a power of two, below 4, or >= the NTB size
  bool ndp_out_payload_remainder = false;  // >= the (sanitised) divisor
  bool ndp_out_alignment = false;          // not a power of two, below 4, or >= the NTB size

  constexpr bool any() const {
    return ntb_out_max_size || ndp_out_divisor || ndp_out_payload_remainder || ndp_out_alignment;
  }
  friend bool operator==(const OutParamOverrides&, const OutParamOverrides&) = default;
};

struct SanitizedOutParams {
  NtbOutParams params;
  OutParamOverrides overridden;
};

// Applies the Linux cdc_ncm_setup clamps (anchors.md §1.6, §5 #16 and #18) to the device's raw
// values. Idempotent: sanitising sane parameters changes nothing and overrides nothing.
//   - dwNtbOutMaxSize: 0 means 65536; otherwise clamped to [2048, 65536] (kNtbMinSize: NCM 1.0
//     Table 6-3 forbids less; "at least one MBIM device" reports 2048); NTB16 caps at 65535.
//   - wNdpOutDivisor, wNdpOutAlignment: a power of two, >= 4 and < the NTB size, else 4.
//   - wNdpOutPayloadRemainder: >= divisor -> 0.
// wNtbOutMaxDatagrams is kept (0 = no limit, NCM errata; anchors.md §5 #17): the builder bounds
// it by what the NTB size and the 16-bit NDP wLength allow.
constexpr SanitizedOutParams sanitize_out_params(const NtbOutParams& raw) {
  SanitizedOutParams s{raw, {}};
  NtbOutParams& p = s.params;

  std::uint32_t max_size = raw.ntb_out_max_size == 0 ? kNtbOutMaxSizeLimit : raw.ntb_out_max_size;
  if (max_size < kNtbMinSize) max_size = static_cast<std::uint32_t>(kNtbMinSize);
  if (max_size > kNtbOutMaxSizeLimit) max_size = kNtbOutMaxSizeLimit;
  if (raw.format == NtbFormat::Ntb16 && max_size > kNtb16MaxSize)
    max_size = static_cast<std::uint32_t>(kNtb16MaxSize);
  p.ntb_out_max_size = max_size;
  s.overridden.ntb_out_max_size = max_size != raw.ntb_out_max_size;

  const auto sane_alignment = [max_size](std::uint16_t v) {
    return v >= kNdpOutFallbackAlignment && std::has_single_bit(v) && v < max_size;
  };
  if (!sane_alignment(raw.ndp_out_divisor)) {
    p.ndp_out_divisor = kNdpOutFallbackAlignment;
    s.overridden.ndp_out_divisor = true;
  }
  if (!sane_alignment(raw.ndp_out_alignment)) {
    p.ndp_out_alignment = kNdpOutFallbackAlignment;
    s.overridden.ndp_out_alignment = true;
  }
  if (raw.ndp_out_payload_remainder >= p.ndp_out_divisor) {
    p.ndp_out_payload_remainder = 0;
    s.overridden.ndp_out_payload_remainder = true;
  }
  return s;
}

enum class AppendResult : std::uint8_t {
  Appended,    // the datagram is in the NTB
  Full,        // does not fit now: finish() this NTB, reset() and retry in a fresh one
  TooLarge,    // cannot fit even in an empty NTB (bigger than max_datagram_bytes()): drop it
  ZeroLength,  // a zero-length DPE is the NDP terminator (NCM 1.0 §3.3.1): nothing to send, drop
};

const char* to_string(AppendResult r);

// Builds one NTB at a time into a caller-owned buffer:
//
//   NtbBuilder b(buffer, params, {NtbFormat::Ntb32, DatagramKind::Ncm, 0});
//   b.reset(seq++);
//   while (...) if (b.append(frame) == AppendResult::Full) { submit(b.finish()); b.reset(seq++); ... }
//
// The NTB never exceeds block_limit_bytes() = min(buffer size, dwNtbOutMaxSize): every append is
// accepted only if the datagram, its padding and the final NDP with one more entry still fit
// (Linux bugzilla 209407 was a TX overrun from getting this wrong with the NDP at the end).
//
// With the NDP at the end, the entries are parked at the very end of the block (growing down)
// until finish() moves them into place right after the datagrams. That keeps the builder free of
// side buffers and of any datagram limit other than space, and cannot collide with datagram bytes
// because the space check already reserves room for the whole final NDP.
class NtbBuilder {
 public:
  // `signature` names the NDP (NCM0/NCM1, IPS<n>, DSS<n>); its format is taken from `params`.
  // The builder starts an NTB with sequence 0, as if reset(0) had been called.
  NtbBuilder(MutableBytes buffer, const NtbOutParams& params, NdpSignature signature);

  // Starts a new NTB with this wSequence (NCM 1.0 §3.2.1: the sender counts NTBs with it),
  // discarding anything not finished. The second form also switches the NDP signature, e.g. to
  // another MBIM session. Writes nothing: the NTH and NDP are written by finish().
  void reset(std::uint16_t sequence);
  void reset(std::uint16_t sequence, NdpSignature signature);

  // Copies one datagram in. For NCM1 the builder appends the CRC-32 itself.
  AppendResult append(Bytes datagram);

  // Zero-copy variant, so the TX worker can read() from TUN straight into the NTB: reserve the
  // largest datagram it may receive, then commit what it got. nullopt when `length_bytes` does not
  // fit now (if empty() at that point, it never will) or is 0. The span stays valid until the
  // next call on the builder; commit(0), append, reset and finish drop an uncommitted reservation.
  std::optional<MutableBytes> reserve(std::size_t length_bytes);
  void commit(std::size_t length_bytes);  // length_bytes <= the reserved length

  // Writes the NTH and the NDP and returns the NTB, [0, wBlockLength). Empty when no datagram was
  // appended (nothing to send). After finish() the builder is full until reset().
  Bytes finish();

  // True when the NTB takes no more datagrams: wNtbOutMaxDatagrams reached, or not even a
  // 1-byte datagram would fit, or finished.
  bool full() const { return room_bytes() == 0; }
  bool empty() const { return datagram_count_ == 0; }
  std::size_t datagram_count() const { return datagram_count_; }

  // The longest datagram append() would accept now (0 when full).
  std::size_t room_bytes() const {
    if (finished_ || datagram_count_ >= datagram_limit_) return 0;
    return room_at(payload_offset(data_end_), datagram_count_);
  }
  // The longest datagram an empty NTB accepts: longer ones get TooLarge. Bounds the MTU.
  std::size_t max_datagram_bytes() const { return max_datagram_bytes_; }
  // The most datagrams one NTB takes: wNtbOutMaxDatagrams if set, bounded by the front NDP's
  // capacity and by the 16-bit NDP wLength.
  std::size_t datagram_limit() const { return datagram_limit_; }
  // min(buffer size, sanitised dwNtbOutMaxSize): no NTB is ever longer.
  std::size_t block_limit_bytes() const { return block_limit_bytes_; }

  const NtbOutParams& params() const { return params_; }
  NdpSignature signature() const { return signature_; }
  std::uint16_t sequence() const { return sequence_; }

 private:
  // First offset >= `at` where a datagram may start: (offset + Ethernet header) % divisor ==
  // remainder. The divisor is a power of two, so this is a mask, and the wrap-around of the
  // unsigned subtraction is harmless (2^64 is a multiple of the divisor).
  std::size_t payload_offset(std::size_t at) const { return at + ((payload_target_ - at) & payload_mask_); }
  std::size_t ndp_aligned(std::size_t at) const { return (at + ndp_mask_) & ~ndp_mask_; }
  std::size_t ndp_length_bytes(std::size_t datagrams) const {
    return ndp_header_bytes_ + (datagrams + 1) * dpe_bytes_;  // + the null entry
  }
  // The longest datagram that fits at `offset` after `datagrams` others (the datagram limit is
  // the caller's check).
  std::size_t room_at(std::size_t offset, std::size_t datagrams) const {
    std::size_t top = block_limit_bytes_;  // first byte the datagram (and its CRC) may not touch
    if (params_.ndp_at_end) {
      // The NDP goes after this datagram, aligned, and must hold one more entry + the null entry.
      const std::size_t ndp_bytes = ndp_length_bytes(datagrams + 1);
      if (ndp_bytes > block_limit_bytes_) return 0;
      top = (block_limit_bytes_ - ndp_bytes) & ~ndp_mask_;
    }
    const std::size_t needed = offset + trailer_bytes_;
    return top > needed ? top - needed : 0;
  }
  void configure_signature(NdpSignature signature);
  MutableBytes place(std::size_t offset, std::size_t length_bytes);  // zero the padding before it
  void add_entry(std::size_t offset, std::size_t length_bytes);     // DPE + CRC for NCM1

  MutableBytes buffer_;
  NtbOutParams params_;
  NdpSignature signature_;
  // Derived once from params_ and the signature.
  std::size_t block_limit_bytes_ = 0;
  std::size_t nth_bytes_ = 0;
  std::size_t ndp_header_bytes_ = 0;
  std::size_t dpe_bytes_ = 0;
  std::size_t payload_mask_ = 0;    // wNdpOutDivisor - 1
  std::size_t payload_target_ = 0;  // (wNdpOutPayloadRemainder - Ethernet header) & payload_mask_
  std::size_t ndp_mask_ = 0;        // wNdpOutAlignment - 1
  std::size_t front_ndp_offset_ = 0;  // NDP at the front: where it sits
  std::size_t data_start_ = 0;        // first byte after the NTH (end) or the reserved NDP (front)
  std::size_t datagram_limit_ = 0;
  std::size_t trailer_bytes_ = 0;     // 4 for NCM1 (CRC-32), else 0
  std::size_t max_datagram_bytes_ = 0;
  // Per NTB.
  std::size_t data_end_ = 0;  // end of the last datagram (or data_start_)
  std::size_t datagram_count_ = 0;
  std::size_t reserved_offset_ = 0;
  std::size_t reserved_bytes_ = 0;  // 0: no reservation pending
  std::size_t finished_bytes_ = 0;
  std::uint16_t sequence_ = 0;
  bool finished_ = false;
};

}  // namespace wwan::ntb
