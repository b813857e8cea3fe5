// RNDIS data messages: REMOTE_NDIS_PACKET_MSG sequences in bulk transfers, parsed and built.
//
// MS-RNDIS §2.2.14 (REMOTE_NDIS_PACKET_MSG) and the USB bus mapping; the layout is checked against
// Linux include/linux/rndis.h and drivers/net/usb/rndis_host.c (rndis_rx_fixup / rndis_tx_fixup).
// One bulk transfer carries one or more PACKET_MSGs back to back ("multi-packet message"); each
// holds one Ethernet frame (802.3 medium, no FCS):
//
//   offset  field                 notes
//   0       MessageType           0x00000001
//   4       MessageLength         the whole message, header + data + OOB + PPI + padding
//   8       DataOffset            from the START OF THE DataOffset FIELD (byte 8), not of the message
//   12      DataLength            bytes of the Ethernet frame
//   16      OOBDataOffset         from byte 8; 0 when there is no OOB data
//   20      OOBDataLength
//   24      NumOOBDataElements
//   28      PerPacketInfoOffset   from byte 8; 0 when there is no per-packet info
//   32      PerPacketInfoLength
//   36      VcHandle              0 (connection-oriented devices only)
//   40      Reserved              0
//   44      (data, usually: DataOffset = 36)
//
// Why a parser of our own and not rndis_host's loop: rndis_rx_fixup checks
// `data_offset + data_len + 8 > msg_len` in 32-bit arithmetic, which a hostile DataOffset near
// 2^32 wraps (the same shape as the cdc_ncm CVE-2026-23447/23448 in DESIGN.md); here every offset
// and length is checked with ntb::fits in 64 bits before a byte behind it is read. It also drops
// the whole rest of a transfer at the first bad message, where this skips that message only
// whenever its MessageLength still frames it.
//
// Pure: no I/O, no allocation, no copies (frames are views into the transfer).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "datapath/ntb_wire.hpp"

namespace wwan::rndis {

using Bytes = ntb::Bytes;
using MutableBytes = ntb::MutableBytes;
using ntb::fits;

// ---- wire constants (MS-RNDIS §2.2.14, Linux rndis.h) ----------------------------------------
inline constexpr std::uint32_t kPacketMsg = 0x00000001;  // REMOTE_NDIS_PACKET_MSG
inline constexpr std::size_t kMessageHeaderSize = 8;     // MessageType + MessageLength: every message
inline constexpr std::size_t kPacketHeaderSize = 44;     // the 11 fields above
// DataOffset, OOBDataOffset and PerPacketInfoOffset count from byte 8 (the DataOffset field).
inline constexpr std::size_t kPacketOffsetBase = 8;
// The DataOffset of a frame placed right after the header (what Linux and Windows send).
inline constexpr std::uint32_t kPacketDataOffset = static_cast<std::uint32_t>(kPacketHeaderSize - kPacketOffsetBase);
// Field offsets within a PACKET_MSG.
inline constexpr std::size_t kPacketMessageTypeAt = 0, kPacketMessageLengthAt = 4, kPacketDataOffsetAt = 8,
                             kPacketDataLengthAt = 12, kPacketOobDataOffsetAt = 16, kPacketOobDataLengthAt = 20,
                             kPacketNumOobDataElementsAt = 24, kPacketPerPacketInfoOffsetAt = 28,
                             kPacketPerPacketInfoLengthAt = 32, kPacketVcHandleAt = 36, kPacketReservedAt = 40;
inline constexpr std::size_t kEthernetHeaderSize = ntb::kEthernetHeaderSize;

// ---- parsing ----------------------------------------------------------------------------------

// Every reason the parser reports; the order is the export order, to_string the JSON names.
enum class PacketError : std::uint8_t {
  // Scope: the rest of the transfer (the next message cannot be found).
  MessageLengthTooSmall,     // MessageLength below 8: cannot step over it
  MessageExceedsTransfer,    // MessageLength runs past the end of the transfer (truncated)
  TrailingGarbage,           // after the last message: bytes that are neither padding nor a header
  // Scope: this message (skipped; parsing goes on at MessageLength).
  NotPacketMessage,          // MessageType is not REMOTE_NDIS_PACKET_MSG
  MessageTooShort,           // MessageLength below the 44-byte header
  DataOutOfMessage,          // 8 + DataOffset + DataLength past MessageLength, or data inside the header
  DataTooShort,              // DataLength below an Ethernet header (0 included)
  OobOutOfMessage,           // OOB data (OOBDataLength != 0) outside the message or inside the header
  PerPacketInfoOutOfMessage, // per-packet info (PerPacketInfoLength != 0) outside the message or header
  // Scope: nothing (tolerated, counted so that a device's habits show).
  ShortPacketPadding,        // the transfer ends in 1 byte, or in zero bytes shorter than a header
  OobIgnored,                // valid OOB data present: not used by an 802.3 host, skipped
  PerPacketInfoIgnored,      // valid per-packet info present (checksum / VLAN info): skipped
};
inline constexpr std::size_t kPacketErrorCount = static_cast<std::size_t>(PacketError::PerPacketInfoIgnored) + 1;

const char* to_string(PacketError e);

// One Ethernet frame, as a view into the transfer.
struct FrameView {
  std::uint64_t offset;   // from the start of the transfer
  std::uint32_t length;   // DataLength
  std::uint32_t message;  // index of its PACKET_MSG in the transfer, from 0
};

struct PacketTransferSummary {
  std::uint32_t messages = 0;  // messages framed by their MessageLength (good or skipped)
  std::uint64_t frames = 0;
  std::uint64_t errors = 0;    // reports of every scope, tolerated ones included
};

// A sink receives frame(FrameView) and error(PacketError).
template <class S>
concept PacketSink = requires(S& s, const FrameView& f, PacketError e) {
  s.frame(f);
  s.error(e);
};

namespace detail {
// True when every byte of `rest` is zero (alignment tails some devices leave at the end).
inline bool all_zero(Bytes rest) {
  for (const std::uint8_t b : rest)
    if (b != 0) return false;
  return true;
}
// An optional region [8 + offset, + length) of a message: absent when length is 0; else it must
// lie inside the message and after its header.
inline bool region_ok(std::uint64_t message_length, std::uint32_t offset, std::uint32_t length) {
  if (length == 0) return true;
  const std::uint64_t start = kPacketOffsetBase + std::uint64_t{offset};
  return start >= kPacketHeaderSize && fits(message_length, start, length);
}
}  // namespace detail

// Parses one completed bulk-IN transfer: every REMOTE_NDIS_PACKET_MSG in it, in order.
template <PacketSink S>
PacketTransferSummary parse_packet_transfer(Bytes transfer, S& sink) {
  PacketTransferSummary summary;
  const auto report = [&](PacketError e) {
    ++summary.errors;
    sink.error(e);
  };
  std::uint64_t at = 0;
  const std::uint64_t size = transfer.size();
  while (at < size) {
    const std::uint64_t left = size - at;
    const Bytes rest = transfer.subspan(static_cast<std::size_t>(at));
    // The end of the transfer: the 1-byte short packet of the USB mapping (a transfer that would
    // be a multiple of wMaxPacketSize gets one byte more instead of a ZLP), or an alignment tail.
    if (left == 1 || (left < kPacketHeaderSize && detail::all_zero(rest))) {
      report(PacketError::ShortPacketPadding);
      break;
    }
    if (left < kMessageHeaderSize) {
      report(PacketError::TrailingGarbage);
      break;
    }
    const std::uint32_t type = ntb::load_le32(rest, kPacketMessageTypeAt);
    const std::uint32_t length = ntb::load_le32(rest, kPacketMessageLengthAt);
    if (length < kMessageHeaderSize) {
      report(type == 0 && length == 0 ? PacketError::TrailingGarbage : PacketError::MessageLengthTooSmall);
      break;
    }
    if (!fits(left, 0, length)) {
      report(PacketError::MessageExceedsTransfer);
      break;
    }
    const std::uint32_t index = summary.messages++;
    at += length;  // from here on a bad message is skipped, never the rest of the transfer
    if (type != kPacketMsg) {
      report(PacketError::NotPacketMessage);
      continue;
    }
    if (length < kPacketHeaderSize) {
      report(PacketError::MessageTooShort);
      continue;
    }
    const std::uint64_t data_start = kPacketOffsetBase + std::uint64_t{ntb::load_le32(rest, kPacketDataOffsetAt)};
    const std::uint32_t data_length = ntb::load_le32(rest, kPacketDataLengthAt);
    if (data_start < kPacketHeaderSize || !fits(length, data_start, data_length)) {
      report(PacketError::DataOutOfMessage);
      continue;
    }
    if (data_length < kEthernetHeaderSize) {
      report(PacketError::DataTooShort);
      continue;
    }
    const std::uint32_t oob_length = ntb::load_le32(rest, kPacketOobDataLengthAt);
    if (!detail::region_ok(length, ntb::load_le32(rest, kPacketOobDataOffsetAt), oob_length)) {
      report(PacketError::OobOutOfMessage);
      continue;
    }
    const std::uint32_t ppi_length = ntb::load_le32(rest, kPacketPerPacketInfoLengthAt);
    if (!detail::region_ok(length, ntb::load_le32(rest, kPacketPerPacketInfoOffsetAt), ppi_length)) {
      report(PacketError::PerPacketInfoOutOfMessage);
      continue;
    }
    if (oob_length != 0) report(PacketError::OobIgnored);
    if (ppi_length != 0) report(PacketError::PerPacketInfoIgnored);
    ++summary.frames;
    sink.frame(FrameView{at - length + data_start, data_length, index});
  }
  return summary;
}

// Named counters over many transfers.
struct PacketCounters {
  std::uint64_t transfers = 0;
  std::uint64_t messages = 0;
  std::uint64_t frames = 0;
  std::array<std::uint64_t, kPacketErrorCount> errors{};

  void count(PacketError e) { ++errors[static_cast<std::size_t>(e)]; }
  std::uint64_t operator[](PacketError e) const { return errors[static_cast<std::size_t>(e)]; }
  void add(const PacketTransferSummary& s) {
    ++transfers;
    messages += s.messages;
    frames += s.frames;
  }
};

// Adapts a frame callback into a sink that counts every reason into PacketCounters.
template <class OnFrame>
struct CountingPacketSink {
  PacketCounters& counters;
  OnFrame on_frame;
  void frame(const FrameView& f) { on_frame(f); }
  void error(PacketError e) { counters.count(e); }
};
template <class F>
CountingPacketSink(PacketCounters&, F) -> CountingPacketSink<F>;

// ---- building -----------------------------------------------------------------------------------

// The most any host builds into one bulk-OUT transfer, whatever the device says (our buffers).
inline constexpr std::uint32_t kMaxTransferSizeLimit = 65536;
// The fewest bytes a transfer limit may have: one header, one Ethernet header, the 1-byte pad.
inline constexpr std::uint32_t kMinTransferSize = static_cast<std::uint32_t>(kPacketHeaderSize + kEthernetHeaderSize + 1);
// Messages per transfer beyond this are never built: it bounds the work per transfer and no
// device is known to ask for more (Linux gadget f_rndis multi-packet uses single digits).
inline constexpr std::uint32_t kMaxPacketsPerTransferLimit = 64;
// PacketAlignmentFactor is an exponent (3 = 8-byte alignment). Above 7 (128 bytes) no sane device
// asks; such a device gets one message per transfer, where alignment does not matter.
inline constexpr std::uint32_t kMaxPacketAlignmentFactor = 7;

// What the device announced in REMOTE_NDIS_INITIALIZE_CMPLT, in the spec's words, plus the
// bulk-OUT wMaxPacketSize for the short-packet rule. Feed through sanitize_packet_out_params.
struct PacketOutParams {
  std::uint32_t max_transfer_size = 16384;     // MaxTransferSize: the largest transfer it accepts
  std::uint32_t max_packets_per_transfer = 1;  // MaxPacketsPerTransfer (MaxPacketsPerMessage)
  std::uint32_t packet_alignment_factor = 0;   // PacketAlignmentFactor: messages start at 2^this
  // wMaxPacketSize of the bulk-OUT endpoint. RNDIS forbids zero-length packets on the data
  // channel ("host must not write zlps", rndis_host.c): a transfer that is a multiple of it gets
  // one zero byte appended instead (usbnet does the same). 0 = no rule (the caller handles it).
  std::uint16_t max_packet_size = 512;
  friend bool operator==(const PacketOutParams&, const PacketOutParams&) = default;
};

struct PacketOutOverrides {
  bool max_transfer_size = false;         // 0, below kMinTransferSize or above kMaxTransferSizeLimit
  bool max_packets_per_transfer = false;  // 0 (read as 1) or above kMaxPacketsPerTransferLimit
  bool packet_alignment_factor = false;   // above kMaxPacketAlignmentFactor: one message per transfer
  constexpr bool any() const { return max_transfer_size || max_packets_per_transfer || packet_alignment_factor; }
  friend bool operator==(const PacketOutOverrides&, const PacketOutOverrides&) = default;
};

struct SanitizedPacketOutParams {
  PacketOutParams params;
  PacketOutOverrides overridden;
};

// Idempotent clamps of the device's raw values (documented on the constants above).
constexpr SanitizedPacketOutParams sanitize_packet_out_params(const PacketOutParams& raw) {
  SanitizedPacketOutParams s{raw, {}};
  PacketOutParams& p = s.params;
  if (raw.max_transfer_size < kMinTransferSize) p.max_transfer_size = kMinTransferSize;
  if (raw.max_transfer_size > kMaxTransferSizeLimit) p.max_transfer_size = kMaxTransferSizeLimit;
  s.overridden.max_transfer_size = p.max_transfer_size != raw.max_transfer_size;
  if (raw.max_packets_per_transfer == 0) p.max_packets_per_transfer = 1;
  if (raw.max_packets_per_transfer > kMaxPacketsPerTransferLimit) p.max_packets_per_transfer = kMaxPacketsPerTransferLimit;
  s.overridden.max_packets_per_transfer = p.max_packets_per_transfer != raw.max_packets_per_transfer;
  if (raw.packet_alignment_factor > kMaxPacketAlignmentFactor) {
    p.packet_alignment_factor = 0;
    p.max_packets_per_transfer = 1;
    s.overridden.packet_alignment_factor = true;
  }
  return s;
}

enum class PacketAppendResult : std::uint8_t {
  Appended,  // the frame is in the transfer
  Full,      // does not fit now: finish() this transfer, reset() and retry
  TooLarge,  // cannot fit even in an empty transfer (bigger than max_frame_bytes()): drop it
  TooShort,  // shorter than an Ethernet header: nothing a device could deliver, drop it
};
const char* to_string(PacketAppendResult r);

// Builds one bulk-OUT transfer of PACKET_MSGs into a caller-owned buffer:
//
//   PacketBuilder b(buffer, params);
//   while (...) if (b.append(frame) == PacketAppendResult::Full) { submit(b.finish()); b.reset(); ... }
//
// Layout: each message starts at a multiple of 2^PacketAlignmentFactor; its header is followed
// by the frame (DataOffset 36, no OOB, no PPI); the padding up to the next message is counted in
// the previous message's MessageLength (MS-RNDIS: MessageLength includes "internal and external
// padding"), so a device stepping by MessageLength lands on the next header. The last message is
// not padded. The transfer never exceeds transfer_limit_bytes(), which keeps one byte for the
// short-packet pad finish() may append.
class PacketBuilder {
 public:
  PacketBuilder(MutableBytes buffer, const PacketOutParams& params);

  void reset();
  PacketAppendResult append(Bytes frame);
  // Zero-copy: reserve room for a frame of up to `length_bytes` (the TX worker reads from TUN
  // straight behind an Ethernet header it writes itself), then commit what it got (>= 14 bytes
  // for it to count; less drops the reservation). nullopt when it does not fit now.
  std::optional<MutableBytes> reserve(std::size_t length_bytes);
  void commit(std::size_t length_bytes);
  // The transfer: [0, length). Empty when no frame was appended. Appends the 1-byte short-packet
  // pad when the length is a multiple of max_packet_size. Full until reset().
  Bytes finish();

  bool empty() const { return packets_ == 0; }
  bool full() const { return room_bytes() == 0; }
  // The last finish() appended the 1-byte short-packet pad (counted by the TX stage).
  bool padded() const { return padded_; }
  std::size_t packet_count() const { return packets_; }
  std::size_t room_bytes() const;
  std::size_t max_frame_bytes() const { return max_frame_bytes_; }
  // min(buffer, sanitised MaxTransferSize) minus the byte kept for the short-packet pad.
  std::size_t transfer_limit_bytes() const { return limit_; }
  const PacketOutParams& params() const { return params_; }

 private:
  std::size_t aligned(std::size_t at) const { return (at + align_mask_) & ~align_mask_; }
  std::size_t next_message_offset() const { return packets_ == 0 ? 0 : aligned(end_); }
  void write_header(std::size_t message_offset, std::size_t frame_length);

  MutableBytes buffer_;
  PacketOutParams params_;
  std::size_t limit_ = 0;
  std::size_t align_mask_ = 0;
  std::size_t max_frame_bytes_ = 0;
  std::size_t packets_ = 0;
  std::size_t end_ = 0;                  // end of the last message's frame
  std::size_t last_message_ = 0;         // offset of the last message (its MessageLength grows with padding)
  std::optional<std::size_t> reserved_;  // message offset of a pending reservation
  std::size_t reserved_bytes_ = 0;
  bool finished_ = false;
  bool padded_ = false;
};

// Writes one complete PACKET_MSG header for a frame of `frame_length` bytes placed right after it
// to the start of `out`; returns kPacketHeaderSize, or 0 when `out` is shorter or the message
// would not fit a 32-bit MessageLength. For tests, the emulated device and single-frame senders.
[[nodiscard]] std::size_t write_packet_header(MutableBytes out, std::size_t frame_length,
                                              std::size_t padding_after = 0);

}  // namespace wwan::rndis
