// NTB builder (see ntb_build.hpp for the layouts and the rules they follow).
#include "datapath/ntb_build.hpp"

#include <algorithm>
#include <cassert>
#include <cstring>

#include "datapath/crc32.hpp"

namespace wwan::ntb {

namespace {

// wLength is a 16-bit field in both NDP16 and NDP32 (NCM 1.0 Tables 3-3 and 3-5), so one NDP can
// list at most this many datagrams besides its null entry.
constexpr std::size_t max_ndp_entries(std::size_t header_bytes, std::size_t entry_bytes) {
  return (0xFFFF - header_bytes) / entry_bytes - 1;
}

}  // namespace

const char* to_string(AppendResult r) {
  switch (r) {
    case AppendResult::Appended: return "appended";
    case AppendResult::Full: return "full";
    case AppendResult::TooLarge: return "too_large";
    case AppendResult::ZeroLength: return "zero_length";
  }
  return "unknown";
}

NtbBuilder::NtbBuilder(MutableBytes buffer, const NtbOutParams& params, NdpSignature signature)
    : buffer_(buffer), params_(sanitize_out_params(params).params), signature_(signature) {
  const NtbFormat format = params_.format;
  nth_bytes_ = nth_size(format);
  ndp_header_bytes_ = ndp_header_size(format);
  dpe_bytes_ = dpe_size(format);
  // sanitize_out_params already capped NTB16 at 65535, so every offset fits its wire field.
  block_limit_bytes_ = std::min<std::size_t>(buffer_.size(), params_.ntb_out_max_size);

  payload_mask_ = std::size_t{params_.ndp_out_divisor} - 1;
  // NCM 1.0 §3.3.4 aligns the Ethernet *payload*: the frame starts 14 bytes earlier (Linux
  // cdc_ncm_setup: remainder = (remainder - ETH_HLEN) & (modulus - 1)). Unsigned wrap is fine:
  // only the low bits survive the mask.
  const std::size_t ethernet_header_bytes = params_.ethernet_framing ? kEthernetHeaderSize : 0;
  payload_target_ = (std::size_t{params_.ndp_out_payload_remainder} - ethernet_header_bytes) & payload_mask_;
  ndp_mask_ = std::size_t{params_.ndp_out_alignment} - 1;

  const std::size_t entries_by_wlength = max_ndp_entries(ndp_header_bytes_, dpe_bytes_);
  if (params_.ndp_at_end) {
    data_start_ = nth_bytes_;
    datagram_limit_ = params_.ntb_out_max_datagrams != 0
                          ? std::min<std::size_t>(params_.ntb_out_max_datagrams, entries_by_wlength)
                          : entries_by_wlength;
  } else {
    // The NDP sits right after the NTH (aligned) and its size is fixed before any datagram is
    // known: room for `capacity` entries plus the null entry.
    front_ndp_offset_ = ndp_aligned(nth_bytes_);
    std::size_t capacity = params_.ntb_out_max_datagrams != 0
                               ? params_.ntb_out_max_datagrams
                               : std::max<std::size_t>(params_.front_ndp_capacity, 1);
    capacity = std::min(capacity, entries_by_wlength);
    // Never reserve entries that could not be used: each datagram costs its entry and >= 1 byte.
    // Only matters for absurd wNtbOutMaxDatagrams (say 65535 with a 2048-byte NTB).
    const std::size_t fixed_bytes = front_ndp_offset_ + ndp_header_bytes_ + dpe_bytes_;
    const std::size_t usable =
        block_limit_bytes_ > fixed_bytes ? (block_limit_bytes_ - fixed_bytes) / (dpe_bytes_ + 1) : 0;
    datagram_limit_ = std::min(capacity, usable);
    data_start_ = front_ndp_offset_ + ndp_length_bytes(datagram_limit_);
  }
  configure_signature(signature);
  reset(0);
}

void NtbBuilder::configure_signature(NdpSignature signature) {
  const bool ncm = signature.kind == DatagramKind::Ncm || signature.kind == DatagramKind::NcmCrc;
  signature_ = {params_.format, signature.kind, ncm ? std::uint8_t{0} : signature.session};
  // NCM 1.0 §3.3.2: NCM1 datagrams carry their CRC-32 after the frame, inside the DPE length.
  trailer_bytes_ = signature.kind == DatagramKind::NcmCrc ? kNcmCrcSize : 0;
  max_datagram_bytes_ = datagram_limit_ != 0 ? room_at(payload_offset(data_start_), 0) : 0;
}

void NtbBuilder::reset(std::uint16_t sequence) {
  sequence_ = sequence;
  data_end_ = data_start_;
  datagram_count_ = 0;
  reserved_bytes_ = 0;
  finished_bytes_ = 0;
  finished_ = false;
}

void NtbBuilder::reset(std::uint16_t sequence, NdpSignature signature) {
  configure_signature(signature);
  reset(sequence);
}

MutableBytes NtbBuilder::place(std::size_t offset, std::size_t length_bytes) {
  // Padding goes out on the wire: zero it so a reused buffer never leaks an older NTB's bytes.
  std::memset(buffer_.data() + data_end_, 0, offset - data_end_);
  return buffer_.subspan(offset, length_bytes);
}

void NtbBuilder::add_entry(std::size_t offset, std::size_t length_bytes) {
  if (trailer_bytes_ != 0) {
    store_le32(buffer_, offset + length_bytes, crc32_ieee(buffer_.subspan(offset, length_bytes)));
    length_bytes += trailer_bytes_;
  }
  // Front: straight into the NDP. End: parked at the end of the block, growing down, until
  // finish() knows where the NDP goes (room_at kept the whole final NDP free, so the parked
  // entries can never overlap datagram bytes).
  const std::size_t at = params_.ndp_at_end
                             ? block_limit_bytes_ - (datagram_count_ + 1) * dpe_bytes_
                             : front_ndp_offset_ + ndp_header_bytes_ + datagram_count_ * dpe_bytes_;
  if (params_.format == NtbFormat::Ntb16) {
    store_le16(buffer_, at, static_cast<std::uint16_t>(offset));  // wDatagramIndex
    store_le16(buffer_, at + 2, static_cast<std::uint16_t>(length_bytes));  // wDatagramLength
  } else {
    store_le32(buffer_, at, static_cast<std::uint32_t>(offset));  // dwDatagramIndex
    store_le32(buffer_, at + 4, static_cast<std::uint32_t>(length_bytes));  // dwDatagramLength
  }
  data_end_ = offset + length_bytes;
  ++datagram_count_;
}

AppendResult NtbBuilder::append(Bytes datagram) {
  reserved_bytes_ = 0;
  if (datagram.empty()) return AppendResult::ZeroLength;
  if (datagram.size() > max_datagram_bytes_) return AppendResult::TooLarge;
  if (finished_ || datagram_count_ >= datagram_limit_) return AppendResult::Full;
  const std::size_t offset = payload_offset(data_end_);
  if (datagram.size() > room_at(offset, datagram_count_)) return AppendResult::Full;
  std::memcpy(place(offset, datagram.size()).data(), datagram.data(), datagram.size());
  add_entry(offset, datagram.size());
  return AppendResult::Appended;
}

std::optional<MutableBytes> NtbBuilder::reserve(std::size_t length_bytes) {
  reserved_bytes_ = 0;
  if (length_bytes == 0 || finished_ || datagram_count_ >= datagram_limit_) return std::nullopt;
  const std::size_t offset = payload_offset(data_end_);
  if (length_bytes > room_at(offset, datagram_count_)) return std::nullopt;
  reserved_offset_ = offset;
  reserved_bytes_ = length_bytes;
  return place(offset, length_bytes);
}

void NtbBuilder::commit(std::size_t length_bytes) {
  assert(length_bytes <= reserved_bytes_ && "commit without reservation, or longer than reserved");
  // In release builds a bad commit is clamped rather than allowed to overrun the reservation.
  const std::size_t committed = std::min(length_bytes, reserved_bytes_);
  reserved_bytes_ = 0;
  if (committed == 0) return;
  add_entry(reserved_offset_, committed);
}

Bytes NtbBuilder::finish() {
  reserved_bytes_ = 0;
  if (finished_) return Bytes(buffer_.data(), finished_bytes_);
  finished_ = true;
  if (datagram_count_ == 0) return {};

  std::uint8_t* const p = buffer_.data();
  const std::size_t ndp_bytes = ndp_length_bytes(datagram_count_);
  const std::size_t entries_bytes = datagram_count_ * dpe_bytes_;
  std::size_t ndp_offset;
  std::size_t block_bytes;
  if (params_.ndp_at_end) {
    ndp_offset = ndp_aligned(data_end_);
    std::memset(p + data_end_, 0, ndp_offset - data_end_);
    // The parked entries are in reverse order at [limit - n*dpe, limit): reverse them in place,
    // then move them behind the NDP header (the ranges may overlap, hence memmove).
    const std::size_t parked = block_limit_bytes_ - entries_bytes;
    for (std::size_t lo = parked, hi = block_limit_bytes_ - dpe_bytes_; lo < hi; lo += dpe_bytes_, hi -= dpe_bytes_)
      std::swap_ranges(p + lo, p + lo + dpe_bytes_, p + hi);
    std::memmove(p + ndp_offset + ndp_header_bytes_, p + parked, entries_bytes);
    block_bytes = ndp_offset + ndp_bytes;
  } else {
    ndp_offset = front_ndp_offset_;
    std::memset(p + nth_bytes_, 0, ndp_offset - nth_bytes_);
    // Unused reserved entries (beyond the null entry) become padding.
    std::memset(p + ndp_offset + ndp_bytes, 0, data_start_ - (ndp_offset + ndp_bytes));
    block_bytes = data_end_;
  }
  // NCM 1.0 §3.3.1: the table ends with a null entry (index 0, length 0).
  std::memset(p + ndp_offset + ndp_header_bytes_ + entries_bytes, 0, dpe_bytes_);

  // NDP header. wNextNdpIndex 0: one NDP per NTB (NDP at the end allows no other, anchors §1.7).
  store_le32(buffer_, ndp_offset, encode_ndp_signature(signature_));  // dwSignature
  store_le16(buffer_, ndp_offset + 4, static_cast<std::uint16_t>(ndp_bytes));  // wLength
  if (params_.format == NtbFormat::Ntb16) {
    store_le16(buffer_, ndp_offset + 6, 0);  // wNextNdpIndex
  } else {
    store_le16(buffer_, ndp_offset + 6, 0);   // wReserved6
    store_le32(buffer_, ndp_offset + 8, 0);   // dwNextNdpIndex
    store_le32(buffer_, ndp_offset + 12, 0);  // dwReserved12
  }

  // NTH. wBlockLength is the real length: padding to dwNtbOutMaxSize or the Windows-style extra
  // zero byte against ZLPs (anchors.md §5 #3) is the transfer's business, after the block.
  const bool b16 = params_.format == NtbFormat::Ntb16;
  store_le32(buffer_, 0, b16 ? kNth16Signature : kNth32Signature);      // dwSignature
  store_le16(buffer_, 4, static_cast<std::uint16_t>(nth_bytes_));       // wHeaderLength
  store_le16(buffer_, 6, sequence_);                                    // wSequence
  if (b16) {
    store_le16(buffer_, 8, static_cast<std::uint16_t>(block_bytes));    // wBlockLength
    store_le16(buffer_, 10, static_cast<std::uint16_t>(ndp_offset));    // wNdpIndex
  } else {
    store_le32(buffer_, 8, static_cast<std::uint32_t>(block_bytes));    // dwBlockLength
    store_le32(buffer_, 12, static_cast<std::uint32_t>(ndp_offset));    // dwNdpIndex
  }
  finished_bytes_ = block_bytes;
  return Bytes(p, block_bytes);
}

}  // namespace wwan::ntb
