#include "control/cdc_ncm.hpp"

namespace wwan::cdc {

using ntb::fits;
using ntb::load_le16;
using ntb::load_le32;
using ntb::store_le16;
using ntb::store_le32;

const char* request_name(std::uint8_t request) {
  switch (request) {
    case kSendEncapsulatedCommand: return "SEND_ENCAPSULATED_COMMAND";
    case kGetEncapsulatedResponse: return "GET_ENCAPSULATED_RESPONSE";
    case kSetEthernetPacketFilter: return "SET_ETHERNET_PACKET_FILTER";
    case kGetNtbParameters: return "GET_NTB_PARAMETERS";
    case kGetNetAddress: return "GET_NET_ADDRESS";
    case kSetNetAddress: return "SET_NET_ADDRESS";
    case kGetNtbFormat: return "GET_NTB_FORMAT";
    case kSetNtbFormat: return "SET_NTB_FORMAT";
    case kGetNtbInputSize: return "GET_NTB_INPUT_SIZE";
    case kSetNtbInputSize: return "SET_NTB_INPUT_SIZE";
    case kGetMaxDatagramSize: return "GET_MAX_DATAGRAM_SIZE";
    case kSetMaxDatagramSize: return "SET_MAX_DATAGRAM_SIZE";
    case kGetCrcMode: return "GET_CRC_MODE";
    case kSetCrcMode: return "SET_CRC_MODE";
    default: return "UNKNOWN";
  }
}

const char* notification_name(std::uint8_t notification) {
  switch (notification) {
    case kNotifyNetworkConnection: return "NETWORK_CONNECTION";
    case kNotifyResponseAvailable: return "RESPONSE_AVAILABLE";
    case kNotifySerialState: return "SERIAL_STATE";
    case kNotifyConnectionSpeedChange: return "CONNECTION_SPEED_CHANGE";
    default: return "UNKNOWN";
  }
}

// Offsets within the NTB parameter structure (NCM 1.0 Table 6-3).
namespace {
constexpr std::size_t kOffLength = 0, kOffFormats = 2, kOffInMaxSize = 4, kOffInDivisor = 8,
                      kOffInRemainder = 10, kOffInAlignment = 12, kOffPadding1 = 14, kOffOutMaxSize = 16,
                      kOffOutDivisor = 20, kOffOutRemainder = 22, kOffOutAlignment = 24, kOffOutMaxDatagrams = 26;
}  // namespace

std::size_t encode_ntb_parameters(const NtbParameters& p, MutableBytes out) {
  if (out.size() < kNtbParametersSize) return 0;
  store_le16(out, kOffLength, p.length);
  store_le16(out, kOffFormats, p.ntb_formats_supported);
  store_le32(out, kOffInMaxSize, p.ntb_in_max_size);
  store_le16(out, kOffInDivisor, p.ndp_in_divisor);
  store_le16(out, kOffInRemainder, p.ndp_in_payload_remainder);
  store_le16(out, kOffInAlignment, p.ndp_in_alignment);
  store_le16(out, kOffPadding1, p.padding1);
  store_le32(out, kOffOutMaxSize, p.ntb_out_max_size);
  store_le16(out, kOffOutDivisor, p.ndp_out_divisor);
  store_le16(out, kOffOutRemainder, p.ndp_out_payload_remainder);
  store_le16(out, kOffOutAlignment, p.ndp_out_alignment);
  store_le16(out, kOffOutMaxDatagrams, p.ntb_out_max_datagrams);
  return kNtbParametersSize;
}

std::optional<NtbParameters> decode_ntb_parameters(Bytes data) {
  if (!fits(data.size(), 0, kNtbParametersSize)) return std::nullopt;
  NtbParameters p;
  p.length = load_le16(data, kOffLength);
  p.ntb_formats_supported = load_le16(data, kOffFormats);
  p.ntb_in_max_size = load_le32(data, kOffInMaxSize);
  p.ndp_in_divisor = load_le16(data, kOffInDivisor);
  p.ndp_in_payload_remainder = load_le16(data, kOffInRemainder);
  p.ndp_in_alignment = load_le16(data, kOffInAlignment);
  p.padding1 = load_le16(data, kOffPadding1);
  p.ntb_out_max_size = load_le32(data, kOffOutMaxSize);
  p.ndp_out_divisor = load_le16(data, kOffOutDivisor);
  p.ndp_out_payload_remainder = load_le16(data, kOffOutRemainder);
  p.ndp_out_alignment = load_le16(data, kOffOutAlignment);
  p.ntb_out_max_datagrams = load_le16(data, kOffOutMaxDatagrams);
  return p;
}

ntb::NtbOutParams out_params(const NtbParameters& p, ntb::NtbFormat format, bool ndp_at_end) {
  ntb::NtbOutParams o;
  o.format = format;
  o.ntb_out_max_size = p.ntb_out_max_size;
  o.ndp_out_divisor = p.ndp_out_divisor;
  o.ndp_out_payload_remainder = p.ndp_out_payload_remainder;
  o.ndp_out_alignment = p.ndp_out_alignment;
  o.ntb_out_max_datagrams = p.ntb_out_max_datagrams;
  o.ndp_at_end = ndp_at_end;
  o.ethernet_framing = true;
  return o;
}

std::size_t encode_ntb_input_size(const NtbInputSize& s, bool long_form, MutableBytes out) {
  const std::size_t n = long_form ? kNtbInputSizeLong : kNtbInputSizeShort;
  if (out.size() < n) return 0;
  store_le32(out, 0, s.ntb_in_max_size);
  if (long_form) {
    store_le16(out, 4, s.ntb_in_max_datagrams);
    store_le16(out, 6, 0);  // wReserved
  }
  return n;
}

std::optional<NtbInputSize> decode_ntb_input_size(Bytes data) {
  if (data.size() != kNtbInputSizeShort && data.size() != kNtbInputSizeLong) return std::nullopt;
  NtbInputSize s;
  s.ntb_in_max_size = load_le32(data, 0);
  if (data.size() == kNtbInputSizeLong) s.ntb_in_max_datagrams = load_le16(data, 4);
  return s;
}

std::size_t encode_notification_header(const NotificationHeader& h, MutableBytes out) {
  if (out.size() < kNotificationHeaderSize) return 0;
  out[0] = h.request_type;
  out[1] = h.notification;
  store_le16(out, 2, h.value);
  store_le16(out, 4, h.index);
  store_le16(out, 6, h.length);
  return kNotificationHeaderSize;
}

std::size_t encode_network_connection(std::uint16_t interface_number, bool connected, MutableBytes out) {
  return encode_notification_header(
      {kNotificationRequestType, kNotifyNetworkConnection, connected ? std::uint16_t{1} : std::uint16_t{0},
       interface_number, 0},
      out);
}

std::size_t encode_response_available(std::uint16_t interface_number, MutableBytes out) {
  return encode_notification_header({kNotificationRequestType, kNotifyResponseAvailable, 0, interface_number, 0},
                                    out);
}

std::size_t encode_connection_speed_change(std::uint16_t interface_number, const ConnectionSpeed& speed,
                                           MutableBytes out) {
  if (out.size() < kNotificationHeaderSize + kConnectionSpeedSize) return 0;
  const std::size_t n = encode_notification_header(
      {kNotificationRequestType, kNotifyConnectionSpeedChange, 0, interface_number,
       static_cast<std::uint16_t>(kConnectionSpeedSize)},
      out);
  store_le32(out, n, speed.downlink_bits_per_s);
  store_le32(out, n + 4, speed.uplink_bits_per_s);
  return n + kConnectionSpeedSize;
}

std::optional<Notification> decode_notification(Bytes transfer) {
  if (!fits(transfer.size(), 0, kNotificationHeaderSize)) return std::nullopt;
  Notification n;
  n.header.request_type = transfer[0];
  if (n.header.request_type != kNotificationRequestType) return std::nullopt;
  n.header.notification = transfer[1];
  n.header.value = load_le16(transfer, 2);
  n.header.index = load_le16(transfer, 4);
  n.header.length = load_le16(transfer, 6);
  const std::uint64_t available = transfer.size() - kNotificationHeaderSize;
  const std::uint64_t take = n.header.length < available ? n.header.length : available;
  n.data = transfer.subspan(kNotificationHeaderSize, static_cast<std::size_t>(take));
  n.complete = take == n.header.length;
  return n;
}

std::optional<ConnectionSpeed> decode_connection_speed(Bytes data) {
  if (!fits(data.size(), 0, kConnectionSpeedSize)) return std::nullopt;
  return ConnectionSpeed{load_le32(data, 0), load_le32(data, 4)};
}

}  // namespace wwan::cdc
