// CDC / NCM control-plane codecs: class request codes, the NTB parameter structure, the NTB input
// size, and interrupt-endpoint notifications. Shared by the driver's control plane (the host side)
// and the emulated modems in sim/ (the device side), so both encode and decode the same bytes with
// the same code, and golden-byte tests pin that code to the spec.
//
// Sources: USB CDC 1.2 §6.2 (requests) and §6.3 (notifications), CDC NCM 1.0 §6 (NCM requests,
// Table 6-3 NTB parameters, Table 6-4 NTB input size) and §7.2 (resetting a function with the
// alternate setting); the values are checked against Linux include/uapi/linux/usb/cdc.h
// (anchors.md §1.2, vectors/ncm_ntb.md N3). Functional-descriptor subtypes and sizes live in
// usb/descriptors.hpp (the descriptor parser owns them); this file only adds what a request or a
// notification needs.
//
// Pure: spans in, plain structs out, no allocation, no I/O. Everything on the wire is
// little-endian; every read checks its length first (ntb::fits) because the bytes come from a
// device the driver does not trust, and (in the emulated modem) from a host the device does not.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "datapath/ntb_build.hpp"
#include "datapath/ntb_wire.hpp"

namespace wwan::cdc {

using Bytes = std::span<const std::uint8_t>;
using MutableBytes = std::span<std::uint8_t>;

// ---- bmRequestType (USB 2.0 §9.3.1) for class requests to an interface ---------------------------
inline constexpr std::uint8_t kRequestTypeClassInterfaceOut = 0x21;  // host-to-device, class, interface
inline constexpr std::uint8_t kRequestTypeClassInterfaceIn = 0xA1;   // device-to-host, class, interface
inline constexpr std::uint8_t kRequestTypeDirectionIn = 0x80;
inline constexpr std::uint8_t kRequestTypeTypeMask = 0x60;
inline constexpr std::uint8_t kRequestTypeTypeClass = 0x20;
inline constexpr std::uint8_t kRequestTypeRecipientMask = 0x1F;
inline constexpr std::uint8_t kRequestTypeRecipientInterface = 0x01;

// ---- class request codes (bRequest) --------------------------------------------------------------
// CDC 1.2 Table 19 (the two encapsulated requests are what cdc-wdm carries: AT on Huawei, MBIM).
inline constexpr std::uint8_t kSendEncapsulatedCommand = 0x00;
inline constexpr std::uint8_t kGetEncapsulatedResponse = 0x01;
// CDC ECM 1.2 §6.2.4, reused by NCM 1.0 §6.2 (bmNetworkCapabilities bit 0).
inline constexpr std::uint8_t kSetEthernetPacketFilter = 0x43;
// CDC NCM 1.0 Table 6-2.
inline constexpr std::uint8_t kGetNtbParameters = 0x80;
inline constexpr std::uint8_t kGetNetAddress = 0x81;
inline constexpr std::uint8_t kSetNetAddress = 0x82;
inline constexpr std::uint8_t kGetNtbFormat = 0x83;
inline constexpr std::uint8_t kSetNtbFormat = 0x84;
inline constexpr std::uint8_t kGetNtbInputSize = 0x85;
inline constexpr std::uint8_t kSetNtbInputSize = 0x86;
inline constexpr std::uint8_t kGetMaxDatagramSize = 0x87;
inline constexpr std::uint8_t kSetMaxDatagramSize = 0x88;
inline constexpr std::uint8_t kGetCrcMode = 0x89;
inline constexpr std::uint8_t kSetCrcMode = 0x8A;

// The name of a request code ("GET_NTB_PARAMETERS"), or "UNKNOWN", for logs and decoders.
const char* request_name(std::uint8_t request);

// ---- request values ------------------------------------------------------------------------------
// SET_NTB_FORMAT wValue / GET_NTB_FORMAT data (NCM 1.0 §6.2.5, §6.2.4).
inline constexpr std::uint16_t kNtbFormatValue16 = 0x0000;
inline constexpr std::uint16_t kNtbFormatValue32 = 0x0001;
// SET_CRC_MODE wValue / GET_CRC_MODE data (NCM 1.0 §6.2.11, §6.2.10).
inline constexpr std::uint16_t kCrcNotAppended = 0x0000;
inline constexpr std::uint16_t kCrcAppended = 0x0001;
// bmNtbFormatsSupported (NCM 1.0 Table 6-3).
inline constexpr std::uint16_t kNtbFormatsSupported16 = 0x0001;
inline constexpr std::uint16_t kNtbFormatsSupported32 = 0x0002;
// NCM functional descriptor bmNetworkCapabilities (NCM 1.0 Table 5-2): which optional requests
// the function answers. Bit 2 is what Huawei's AT channel hangs off (vectors/usb_descriptors.md D2).
inline constexpr std::uint8_t kNcapEthernetPacketFilter = 0x01;  // SET_ETHERNET_PACKET_FILTER
inline constexpr std::uint8_t kNcapNetAddress = 0x02;            // GET/SET_NET_ADDRESS
inline constexpr std::uint8_t kNcapEncapsulatedCommand = 0x04;   // SEND/GET_ENCAPSULATED_*
inline constexpr std::uint8_t kNcapMaxDatagramSize = 0x08;       // GET/SET_MAX_DATAGRAM_SIZE
inline constexpr std::uint8_t kNcapCrcMode = 0x10;               // GET/SET_CRC_MODE
inline constexpr std::uint8_t kNcapNtbInputSize8 = 0x20;         // 8-byte GET/SET_NTB_INPUT_SIZE

constexpr std::uint16_t ntb_format_value(ntb::NtbFormat f) {
  return f == ntb::NtbFormat::Ntb32 ? kNtbFormatValue32 : kNtbFormatValue16;
}
// nullopt for a wValue that names no format (the device STALLs it).
constexpr std::optional<ntb::NtbFormat> ntb_format_from_value(std::uint16_t value) {
  if (value == kNtbFormatValue16) return ntb::NtbFormat::Ntb16;
  if (value == kNtbFormatValue32) return ntb::NtbFormat::Ntb32;
  return std::nullopt;
}

// ---- NTB parameter structure (GET_NTB_PARAMETERS, NCM 1.0 Table 6-3) ------------------------------
inline constexpr std::size_t kNtbParametersSize = 28;

// Field names follow the spec (bmNtbFormatsSupported -> ntb_formats_supported, ...); sizes in bytes.
struct NtbParameters {
  std::uint16_t length = kNtbParametersSize;      // wLength: the size of this structure
  std::uint16_t ntb_formats_supported = kNtbFormatsSupported16;  // bmNtbFormatsSupported
  std::uint32_t ntb_in_max_size = 0;              // dwNtbInMaxSize: largest IN NTB the device sends
  std::uint16_t ndp_in_divisor = 4;               // wNdpInDivisor
  std::uint16_t ndp_in_payload_remainder = 0;     // wNdpInPayloadRemainder
  std::uint16_t ndp_in_alignment = 4;             // wNdpInAlignment
  std::uint16_t padding1 = 0;                     // wPadding1 (reserved, 0)
  std::uint32_t ntb_out_max_size = 0;             // dwNtbOutMaxSize: largest OUT NTB it accepts
  std::uint16_t ndp_out_divisor = 4;              // wNdpOutDivisor
  std::uint16_t ndp_out_payload_remainder = 0;    // wNdpOutPayloadRemainder
  std::uint16_t ndp_out_alignment = 4;            // wNdpOutAlignment
  std::uint16_t ntb_out_max_datagrams = 0;        // wNtbOutMaxDatagrams (0: no limit, pre-errata)

  bool supports(ntb::NtbFormat f) const {
    return (ntb_formats_supported & (f == ntb::NtbFormat::Ntb32 ? kNtbFormatsSupported32 : kNtbFormatsSupported16)) != 0;
  }
  friend bool operator==(const NtbParameters&, const NtbParameters&) = default;
};

// Writes the 28 bytes to the start of `out`; returns 28, or 0 when `out` is shorter.
[[nodiscard]] std::size_t encode_ntb_parameters(const NtbParameters& p, MutableBytes out);
// nullopt when fewer than 28 bytes arrived. wLength is reported as the device sent it and not
// trusted for anything: a device that says 0 or 200 still gets its 28 bytes read.
std::optional<NtbParameters> decode_ntb_parameters(Bytes data);

// The builder's OUT parameters from what the device reported, not yet sanitised (feed the result
// through ntb::sanitize_out_params, which NtbBuilder also re-applies). `format` is what was
// negotiated with SET_NTB_FORMAT; `ndp_at_end` is the device's quirk row (Huawei: true).
ntb::NtbOutParams out_params(const NtbParameters& p, ntb::NtbFormat format, bool ndp_at_end);

// ---- NTB input size (GET/SET_NTB_INPUT_SIZE, NCM 1.0 §6.2.6-6.2.7, Table 6-4) ----------------------
// The 4-byte form is dwNtbInMaxSize alone; the 8-byte form (only when bmNetworkCapabilities bit 5
// is set) adds wNtbInMaxDatagrams and wReserved. Linux only ever sends the 4-byte form (anchors §1.6).
inline constexpr std::size_t kNtbInputSizeShort = 4;
inline constexpr std::size_t kNtbInputSizeLong = 8;

struct NtbInputSize {
  std::uint32_t ntb_in_max_size = 0;        // dwNtbInMaxSize, bytes
  std::uint16_t ntb_in_max_datagrams = 0;   // wNtbInMaxDatagrams (8-byte form only; 0: no limit)
  friend bool operator==(const NtbInputSize&, const NtbInputSize&) = default;
};

// Writes the 4- or 8-byte form (`long_form`); returns its size, or 0 when `out` is too short.
[[nodiscard]] std::size_t encode_ntb_input_size(const NtbInputSize& s, bool long_form, MutableBytes out);
// Accepts exactly 4 or 8 bytes (the data stage of SET_NTB_INPUT_SIZE has wLength 4 or 8; anything
// else is a malformed request the device STALLs).
std::optional<NtbInputSize> decode_ntb_input_size(Bytes data);

// ---- notifications (interrupt IN, CDC 1.2 §6.3, NCM 1.0 §6.3) ----------------------------------------
inline constexpr std::uint8_t kNotificationRequestType = 0xA1;  // device-to-host, class, interface
inline constexpr std::uint8_t kNotifyNetworkConnection = 0x00;  // wValue 1 = connected, 0 = disconnected
inline constexpr std::uint8_t kNotifyResponseAvailable = 0x01;  // read GET_ENCAPSULATED_RESPONSE
inline constexpr std::uint8_t kNotifySerialState = 0x20;
inline constexpr std::uint8_t kNotifyConnectionSpeedChange = 0x2A;  // 8 bytes of data: DL, UL bit/s
inline constexpr std::size_t kNotificationHeaderSize = 8;
inline constexpr std::size_t kConnectionSpeedSize = 8;
// The largest notification here: SPEED_CHANGE's header + data.
inline constexpr std::size_t kNotificationMaxSize = kNotificationHeaderSize + kConnectionSpeedSize;

struct NotificationHeader {
  std::uint8_t request_type = kNotificationRequestType;  // bmRequestType
  std::uint8_t notification = 0;                         // bNotification
  std::uint16_t value = 0;                               // wValue
  std::uint16_t index = 0;                               // wIndex: the interface
  std::uint16_t length = 0;                              // wLength: data bytes that follow
  friend bool operator==(const NotificationHeader&, const NotificationHeader&) = default;
};

// CDC 1.2 Table 21: ConnectionSpeedChange data.
struct ConnectionSpeed {
  std::uint32_t downlink_bits_per_s = 0;  // DLBitRate
  std::uint32_t uplink_bits_per_s = 0;    // ULBitRate
  friend bool operator==(const ConnectionSpeed&, const ConnectionSpeed&) = default;
};

// A received notification. `data` views the bytes after the header, at most wLength of them;
// `complete` is false when fewer than wLength arrived (a SPEED_CHANGE split over two 8-byte
// interrupt transfers, which Linux reassembles: anchors.md §1.3 "split SPEED_CHANGE").
struct Notification {
  NotificationHeader header;
  Bytes data;
  bool complete = false;
};

const char* notification_name(std::uint8_t notification);

// Encoders write to the start of `out` and return the bytes written, or 0 when `out` is too short.
[[nodiscard]] std::size_t encode_notification_header(const NotificationHeader& h, MutableBytes out);
[[nodiscard]] std::size_t encode_network_connection(std::uint16_t interface_number, bool connected, MutableBytes out);
[[nodiscard]] std::size_t encode_response_available(std::uint16_t interface_number, MutableBytes out);
[[nodiscard]] std::size_t encode_connection_speed_change(std::uint16_t interface_number, const ConnectionSpeed& speed,
                                                         MutableBytes out);

// nullopt when fewer than 8 bytes arrived or bmRequestType is not 0xA1.
std::optional<Notification> decode_notification(Bytes transfer);
// The 8 data bytes of a CONNECTION_SPEED_CHANGE; nullopt when fewer arrived.
std::optional<ConnectionSpeed> decode_connection_speed(Bytes data);

}  // namespace wwan::cdc
