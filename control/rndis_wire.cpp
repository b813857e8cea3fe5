#include "control/rndis_wire.hpp"

#include <algorithm>

namespace wwan::rndis {

using ntb::load_le32;

namespace {

void put32(ByteVector& m, std::size_t at, std::uint32_t v) { ntb::store_le32(m, at, v); }

// A message of `size` bytes with MessageType and MessageLength written.
ByteVector message(std::uint32_t type, std::size_t size) {
  ByteVector m(size, 0);
  put32(m, 0, type);
  put32(m, 4, static_cast<std::uint32_t>(size));
  return m;
}

// The buffer [8 + offset, + length) of a message of `message_length` bytes whose fixed part is
// `header` bytes: nullopt when it lies outside the message or overlaps the fixed part. An empty
// buffer is valid whatever its offset says (MS-RNDIS: the offset is 0 then, rndis_host sends 20).
std::optional<Bytes> buffer_of(Bytes m, std::uint64_t message_length, std::size_t header, std::uint32_t offset,
                               std::uint32_t length) {
  if (length == 0) return Bytes{};
  const std::uint64_t start = kBufferOffsetBase + std::uint64_t{offset};
  if (start < header || !fits(message_length, start, length)) return std::nullopt;
  return m.subspan(static_cast<std::size_t>(start), length);
}

std::size_t fixed_size(std::uint32_t type) {
  switch (type) {
    case kInitializeMsg: return kInitializeMsgSize;
    case kInitializeCmplt: return kInitializeCmpltSize;
    case kHaltMsg: return kHaltMsgSize;
    case kQueryMsg:
    case kSetMsg: return kOidRequestHeaderSize;
    case kQueryCmplt: return kQueryCmpltHeaderSize;
    case kSetCmplt: return kSetCmpltSize;
    case kResetMsg: return kResetMsgSize;
    case kResetCmplt: return kResetCmpltSize;
    case kIndicateStatusMsg: return kIndicateStatusHeaderSize;
    case kKeepaliveMsg: return kKeepaliveMsgSize;
    case kKeepaliveCmplt: return kKeepaliveCmpltSize;
    default: return 0;
  }
}

}  // namespace

const char* message_name(std::uint32_t type) {
  switch (type) {
    case kPacketMsg: return "REMOTE_NDIS_PACKET_MSG";
    case kInitializeMsg: return "REMOTE_NDIS_INITIALIZE_MSG";
    case kInitializeCmplt: return "REMOTE_NDIS_INITIALIZE_CMPLT";
    case kHaltMsg: return "REMOTE_NDIS_HALT_MSG";
    case kQueryMsg: return "REMOTE_NDIS_QUERY_MSG";
    case kQueryCmplt: return "REMOTE_NDIS_QUERY_CMPLT";
    case kSetMsg: return "REMOTE_NDIS_SET_MSG";
    case kSetCmplt: return "REMOTE_NDIS_SET_CMPLT";
    case kResetMsg: return "REMOTE_NDIS_RESET_MSG";
    case kResetCmplt: return "REMOTE_NDIS_RESET_CMPLT";
    case kIndicateStatusMsg: return "REMOTE_NDIS_INDICATE_STATUS_MSG";
    case kKeepaliveMsg: return "REMOTE_NDIS_KEEPALIVE_MSG";
    case kKeepaliveCmplt: return "REMOTE_NDIS_KEEPALIVE_CMPLT";
    default: return "UNKNOWN";
  }
}

const char* status_name(std::uint32_t status) {
  switch (status) {
    case kStatusSuccess: return "RNDIS_STATUS_SUCCESS";
    case kStatusFailure: return "RNDIS_STATUS_FAILURE";
    case kStatusInvalidData: return "RNDIS_STATUS_INVALID_DATA";
    case kStatusNotSupported: return "RNDIS_STATUS_NOT_SUPPORTED";
    case kStatusInvalidLength: return "RNDIS_STATUS_INVALID_LENGTH";
    case kStatusMediaConnect: return "RNDIS_STATUS_MEDIA_CONNECT";
    case kStatusMediaDisconnect: return "RNDIS_STATUS_MEDIA_DISCONNECT";
    case kStatusLinkSpeedChange: return "RNDIS_STATUS_LINK_SPEED_CHANGE";
    default: return "UNKNOWN";
  }
}

const char* oid_name(std::uint32_t oid) {
  switch (oid) {
    case kOidGenSupportedList: return "OID_GEN_SUPPORTED_LIST";
    case kOidGenMaximumFrameSize: return "OID_GEN_MAXIMUM_FRAME_SIZE";
    case kOidGenLinkSpeed: return "OID_GEN_LINK_SPEED";
    case kOidGenCurrentPacketFilter: return "OID_GEN_CURRENT_PACKET_FILTER";
    case kOidGenMaximumTotalSize: return "OID_GEN_MAXIMUM_TOTAL_SIZE";
    case kOidGenMediaConnectStatus: return "OID_GEN_MEDIA_CONNECT_STATUS";
    case kOidGenPhysicalMedium: return "OID_GEN_PHYSICAL_MEDIUM";
    case kOidGenXmitOk: return "OID_GEN_XMIT_OK";
    case kOidGenRcvOk: return "OID_GEN_RCV_OK";
    case kOid8023PermanentAddress: return "OID_802_3_PERMANENT_ADDRESS";
    case kOid8023CurrentAddress: return "OID_802_3_CURRENT_ADDRESS";
    case kOid8023MulticastList: return "OID_802_3_MULTICAST_LIST";
    case kOid8023MaximumListSize: return "OID_802_3_MAXIMUM_LIST_SIZE";
    default: return "UNKNOWN";
  }
}

const char* to_string(ControlError e) {
  switch (e) {
    case ControlError::None: return "none";
    case ControlError::TooShort: return "too_short";
    case ControlError::MessageLengthMismatch: return "message_length_mismatch";
    case ControlError::TooLarge: return "too_large";
    case ControlError::UnknownType: return "unknown_type";
    case ControlError::BufferOutOfBounds: return "buffer_out_of_bounds";
  }
  return "unknown";
}

std::size_t encode_response_available(MutableBytes out) {
  if (out.size() < kResponseAvailableSize) return 0;
  ntb::store_le32(out, 0, kResponseAvailableNotification);
  ntb::store_le32(out, 4, 0);
  return kResponseAvailableSize;
}

bool is_response_available(Bytes transfer) {
  return transfer.size() >= 4 && load_le32(transfer, 0) == kResponseAvailableNotification;
}

DecodedControl decode_control(Bytes bytes) {
  DecodedControl d;
  if (bytes.size() < kMessageHeaderSize) {
    d.error = ControlError::TooShort;
    return d;
  }
  d.type = load_le32(bytes, 0);
  d.message_length = load_le32(bytes, 4);
  const std::size_t fixed = fixed_size(d.type);
  if (fixed == 0) {
    d.error = ControlError::UnknownType;
    return d;
  }
  if (d.message_length > kMaxControlMessageSize) {
    d.error = ControlError::TooLarge;
    return d;
  }
  if (d.message_length < fixed || d.message_length > bytes.size()) {
    d.error = ControlError::MessageLengthMismatch;
    return d;
  }
  const Bytes m = bytes.first(d.message_length);
  const auto at = [&](std::size_t off) { return load_le32(m, off); };  // off < fixed <= length
  switch (d.type) {
    case kInitializeMsg: d.message = InitializeMsg{at(8), at(12), at(16), at(20)}; break;
    case kInitializeCmplt:
      d.message = InitializeCmplt{at(8), at(12), at(16), at(20), at(24), at(28), at(32), at(36), at(40), at(44), at(48)};
      break;
    case kHaltMsg: d.message = HaltMsg{at(8)}; break;
    case kQueryMsg:
    case kSetMsg: {
      const auto buffer = buffer_of(m, d.message_length, kOidRequestHeaderSize, at(20), at(16));
      if (!buffer) {
        d.error = ControlError::BufferOutOfBounds;
        return d;
      }
      d.message = OidRequest{d.type == kSetMsg, at(8), at(12), at(24), *buffer};
      break;
    }
    case kQueryCmplt: {
      const auto buffer = buffer_of(m, d.message_length, kQueryCmpltHeaderSize, at(20), at(16));
      if (!buffer) {
        d.error = ControlError::BufferOutOfBounds;
        return d;
      }
      d.message = QueryCmplt{at(8), at(12), *buffer};
      break;
    }
    case kSetCmplt: d.message = SetCmplt{at(8), at(12)}; break;
    case kResetMsg: d.message = ResetMsg{at(8)}; break;
    case kResetCmplt: d.message = ResetCmplt{at(8), at(12)}; break;
    case kIndicateStatusMsg: {
      // A status buffer that lies is ignored, not fatal: the Status word alone is what a link
      // indication means, and dropping it would lose a media connect/disconnect.
      const auto buffer = buffer_of(m, d.message_length, kIndicateStatusHeaderSize, at(16), at(12));
      d.message = IndicateStatus{at(8), buffer.value_or(Bytes{}), !buffer.has_value()};
      break;
    }
    case kKeepaliveMsg: d.message = KeepaliveMsg{at(8)}; break;
    case kKeepaliveCmplt: d.message = KeepaliveCmplt{at(8), at(12)}; break;
    default: d.error = ControlError::UnknownType; return d;
  }
  return d;
}

ByteVector encode_initialize(const InitializeMsg& i) {
  ByteVector m = message(kInitializeMsg, kInitializeMsgSize);
  put32(m, 8, i.request_id);
  put32(m, 12, i.major_version);
  put32(m, 16, i.minor_version);
  put32(m, 20, i.max_transfer_size);
  return m;
}

ByteVector encode_halt(std::uint32_t request_id) {
  ByteVector m = message(kHaltMsg, kHaltMsgSize);
  put32(m, 8, request_id);
  return m;
}

namespace {
ByteVector oid_request(std::uint32_t type, std::uint32_t request_id, std::uint32_t oid, Bytes buffer) {
  ByteVector m = message(type, kOidRequestHeaderSize + buffer.size());
  put32(m, 8, request_id);
  put32(m, 12, oid);
  put32(m, 16, static_cast<std::uint32_t>(buffer.size()));
  put32(m, 20, static_cast<std::uint32_t>(kOidRequestHeaderSize - kBufferOffsetBase));  // 20
  // DeviceVcHandle (24): 0.
  std::copy(buffer.begin(), buffer.end(), m.begin() + static_cast<std::ptrdiff_t>(kOidRequestHeaderSize));
  return m;
}
}  // namespace

ByteVector encode_query(std::uint32_t request_id, std::uint32_t oid, Bytes information_buffer) {
  return oid_request(kQueryMsg, request_id, oid, information_buffer);
}

ByteVector encode_set(std::uint32_t request_id, std::uint32_t oid, Bytes information_buffer) {
  return oid_request(kSetMsg, request_id, oid, information_buffer);
}

ByteVector encode_reset() { return message(kResetMsg, kResetMsgSize); }

ByteVector encode_keepalive(std::uint32_t request_id) {
  ByteVector m = message(kKeepaliveMsg, kKeepaliveMsgSize);
  put32(m, 8, request_id);
  return m;
}

ByteVector encode_keepalive_cmplt(std::uint32_t request_id, std::uint32_t status) {
  ByteVector m = message(kKeepaliveCmplt, kKeepaliveCmpltSize);
  put32(m, 8, request_id);
  put32(m, 12, status);
  return m;
}

ByteVector encode_initialize_cmplt(const InitializeCmplt& c) {
  ByteVector m = message(kInitializeCmplt, kInitializeCmpltSize);
  const std::uint32_t fields[] = {c.request_id, c.status, c.major_version, c.minor_version,
                                  c.device_flags, c.medium, c.max_packets_per_transfer, c.max_transfer_size,
                                  c.packet_alignment_factor, c.af_list_offset, c.af_list_size};
  std::size_t at = 8;
  for (const std::uint32_t f : fields) {
    put32(m, at, f);
    at += 4;
  }
  return m;
}

ByteVector encode_query_cmplt(std::uint32_t request_id, std::uint32_t status, Bytes information_buffer) {
  ByteVector m = message(kQueryCmplt, kQueryCmpltHeaderSize + information_buffer.size());
  put32(m, 8, request_id);
  put32(m, 12, status);
  put32(m, 16, static_cast<std::uint32_t>(information_buffer.size()));
  put32(m, 20, information_buffer.empty() ? 0 : static_cast<std::uint32_t>(kQueryCmpltHeaderSize - kBufferOffsetBase));
  std::copy(information_buffer.begin(), information_buffer.end(),
            m.begin() + static_cast<std::ptrdiff_t>(kQueryCmpltHeaderSize));
  return m;
}

ByteVector encode_set_cmplt(std::uint32_t request_id, std::uint32_t status) {
  ByteVector m = message(kSetCmplt, kSetCmpltSize);
  put32(m, 8, request_id);
  put32(m, 12, status);
  return m;
}

ByteVector encode_reset_cmplt(std::uint32_t status, std::uint32_t addressing_reset) {
  ByteVector m = message(kResetCmplt, kResetCmpltSize);
  put32(m, 8, status);
  put32(m, 12, addressing_reset);
  return m;
}

ByteVector encode_indicate_status(std::uint32_t status, Bytes status_buffer) {
  ByteVector m = message(kIndicateStatusMsg, kIndicateStatusHeaderSize + status_buffer.size());
  put32(m, 8, status);
  put32(m, 12, static_cast<std::uint32_t>(status_buffer.size()));
  put32(m, 16, status_buffer.empty() ? 0 : static_cast<std::uint32_t>(kIndicateStatusHeaderSize - kBufferOffsetBase));
  std::copy(status_buffer.begin(), status_buffer.end(),
            m.begin() + static_cast<std::ptrdiff_t>(kIndicateStatusHeaderSize));
  return m;
}

std::optional<std::uint32_t> oid_u32(Bytes information_buffer) {
  if (information_buffer.size() < 4) return std::nullopt;
  return load_le32(information_buffer, 0);
}

ByteVector oid_u32_buffer(std::uint32_t value) {
  ByteVector b(4);
  ntb::store_le32(b, 0, value);
  return b;
}

}  // namespace wwan::rndis
