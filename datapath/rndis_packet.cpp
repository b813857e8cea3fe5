#include "datapath/rndis_packet.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

namespace wwan::rndis {

const char* to_string(PacketError e) {
  switch (e) {
    case PacketError::MessageLengthTooSmall: return "message_length_too_small";
    case PacketError::MessageExceedsTransfer: return "message_exceeds_transfer";
    case PacketError::TrailingGarbage: return "trailing_garbage";
    case PacketError::NotPacketMessage: return "not_packet_message";
    case PacketError::MessageTooShort: return "message_too_short";
    case PacketError::DataOutOfMessage: return "data_out_of_message";
    case PacketError::DataTooShort: return "data_too_short";
    case PacketError::OobOutOfMessage: return "oob_out_of_message";
    case PacketError::PerPacketInfoOutOfMessage: return "per_packet_info_out_of_message";
    case PacketError::ShortPacketPadding: return "short_packet_padding";
    case PacketError::OobIgnored: return "oob_ignored";
    case PacketError::PerPacketInfoIgnored: return "per_packet_info_ignored";
  }
  return "unknown";
}

const char* to_string(PacketAppendResult r) {
  switch (r) {
    case PacketAppendResult::Appended: return "appended";
    case PacketAppendResult::Full: return "full";
    case PacketAppendResult::TooLarge: return "too_large";
    case PacketAppendResult::TooShort: return "too_short";
  }
  return "unknown";
}

std::size_t write_packet_header(MutableBytes out, std::size_t frame_length, std::size_t padding_after) {
  if (out.size() < kPacketHeaderSize) return 0;
  const std::uint64_t message_length = std::uint64_t{kPacketHeaderSize} + frame_length + padding_after;
  if (message_length > std::numeric_limits<std::uint32_t>::max()) return 0;
  std::memset(out.data(), 0, kPacketHeaderSize);
  ntb::store_le32(out, kPacketMessageTypeAt, kPacketMsg);
  ntb::store_le32(out, kPacketMessageLengthAt, static_cast<std::uint32_t>(message_length));
  ntb::store_le32(out, kPacketDataOffsetAt, kPacketDataOffset);
  ntb::store_le32(out, kPacketDataLengthAt, static_cast<std::uint32_t>(frame_length));
  // OOBDataOffset/Length, NumOOBDataElements, PerPacketInfoOffset/Length, VcHandle, Reserved: 0.
  return kPacketHeaderSize;
}

PacketBuilder::PacketBuilder(MutableBytes buffer, const PacketOutParams& params)
    : buffer_(buffer), params_(sanitize_packet_out_params(params).params) {
  std::size_t limit = std::min<std::size_t>(buffer_.size(), params_.max_transfer_size);
  if (params_.max_packet_size != 0 && limit > 0) --limit;  // room for the short-packet pad
  limit_ = limit;
  align_mask_ = (std::size_t{1} << params_.packet_alignment_factor) - 1;
  max_frame_bytes_ = limit_ > kPacketHeaderSize ? limit_ - kPacketHeaderSize : 0;
}

void PacketBuilder::reset() {
  packets_ = 0;
  end_ = 0;
  last_message_ = 0;
  reserved_.reset();
  reserved_bytes_ = 0;
  finished_ = false;
  padded_ = false;
}

std::size_t PacketBuilder::room_bytes() const {
  if (finished_ || packets_ >= params_.max_packets_per_transfer) return 0;
  const std::size_t data = next_message_offset() + kPacketHeaderSize;
  return limit_ > data ? limit_ - data : 0;
}

void PacketBuilder::write_header(std::size_t message_offset, std::size_t frame_length) {
  // The previous message grows by the padding in front of this one (MS-RNDIS MessageLength
  // includes external padding); the padding bytes themselves are zeroed.
  if (packets_ > 0) {
    std::memset(buffer_.data() + end_, 0, message_offset - end_);
    const MutableBytes previous = buffer_.subspan(last_message_);
    ntb::store_le32(previous, kPacketMessageLengthAt, static_cast<std::uint32_t>(message_offset - last_message_));
  }
  (void)write_packet_header(buffer_.subspan(message_offset), frame_length);
  last_message_ = message_offset;
  end_ = message_offset + kPacketHeaderSize + frame_length;
  ++packets_;
}

PacketAppendResult PacketBuilder::append(Bytes frame) {
  reserved_.reset();
  if (frame.size() < kEthernetHeaderSize) return PacketAppendResult::TooShort;
  if (frame.size() > max_frame_bytes_) return PacketAppendResult::TooLarge;
  if (frame.size() > room_bytes()) return PacketAppendResult::Full;
  const std::size_t at = next_message_offset();
  std::memcpy(buffer_.data() + at + kPacketHeaderSize, frame.data(), frame.size());
  write_header(at, frame.size());
  return PacketAppendResult::Appended;
}

std::optional<MutableBytes> PacketBuilder::reserve(std::size_t length_bytes) {
  reserved_.reset();
  if (length_bytes == 0 || length_bytes > room_bytes()) return std::nullopt;
  reserved_ = next_message_offset();
  reserved_bytes_ = length_bytes;
  return buffer_.subspan(*reserved_ + kPacketHeaderSize, length_bytes);
}

void PacketBuilder::commit(std::size_t length_bytes) {
  if (!reserved_) return;
  const std::size_t at = *reserved_;
  reserved_.reset();
  if (length_bytes < kEthernetHeaderSize || length_bytes > reserved_bytes_) return;
  write_header(at, length_bytes);
}

Bytes PacketBuilder::finish() {
  reserved_.reset();
  if (finished_) return {};
  finished_ = true;
  if (packets_ == 0) return {};
  std::size_t length = end_;
  // limit_ kept a byte for this, so it always fits the buffer.
  padded_ = params_.max_packet_size != 0 && length % params_.max_packet_size == 0;
  if (padded_) buffer_[length++] = 0;
  return Bytes(buffer_.data(), length);
}

}  // namespace wwan::rndis
