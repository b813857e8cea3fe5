// RNDIS control messages: the pure codec of MS-RNDIS §2.2 for both sides (the host session in
// control/rndis_session.hpp, the emulated device in sim/rndis_function.hpp), so both encode and
// decode the same bytes with the same code and golden-byte tests pin that code to the spec.
//
// Sources: MS-RNDIS §2.2.1-§2.2.13 (message layouts), §2.2.15 (status values) and the OID
// numbers of NDIS; values checked against Linux include/linux/rndis.h and the host's use of them
// in drivers/net/usb/rndis_host.c (INITIALIZE, QUERY PERMANENT_ADDRESS, SET CURRENT_PACKET_FILTER,
// HALT). The data message (REMOTE_NDIS_PACKET_MSG) lives in datapath/rndis_packet.hpp.
//
// Transport (the USB mapping, as rndis_host does it): every control message is the data stage of
// one SEND_ENCAPSULATED_COMMAND to the control interface; the device announces each answer with
// an 8-byte RESPONSE_AVAILABLE on the interrupt endpoint (NOT a CDC notification: its first
// 32-bit word is 1, see is_response_available) and the host reads it with
// GET_ENCAPSULATED_RESPONSE. rndis_host reads with a 1025-byte buffer ("buf can hold up to 1KB
// response (required by RNDIS spec)"); kMaxControlMessageSize is what this side allows.
//
// Layouts (all little-endian u32; "offset" fields of QUERY/SET and their completions count from
// byte 8, the RequestId field; INDICATE_STATUS's StatusBufferOffset counts from byte 8 too, the
// Status field, as MS-RNDIS §2.2.10 and Windows CE's rndis.h say — the desktop WDK page says
// "from the beginning of this message"; link indications carry no buffer, so nothing here
// depends on it beyond the bounds check):
//   INITIALIZE_MSG    2  len  RequestId MajorVersion MinorVersion MaxTransferSize            (24)
//   INITIALIZE_CMPLT  ..02 len RequestId Status Major Minor DeviceFlags Medium
//                     MaxPacketsPerTransfer MaxTransferSize PacketAlignmentFactor AFListOffset AFListSize (52)
//   HALT_MSG          3  len  RequestId                                                    (12)
//   QUERY_MSG / SET_MSG  4/5 len RequestId Oid InformationBufferLength InformationBufferOffset
//                     DeviceVcHandle [InformationBuffer]                                    (28 + n)
//   QUERY_CMPLT       ..04 len RequestId Status InformationBufferLength InformationBufferOffset [buf] (24 + n)
//   SET_CMPLT         ..05 len RequestId Status                                             (16)
//   RESET_MSG         6  len  Reserved                                                      (12)
//   RESET_CMPLT       ..06 len Status AddressingReset                                       (16)
//   INDICATE_STATUS   7  len  Status StatusBufferLength StatusBufferOffset [buf]            (20 + n)
//   KEEPALIVE_MSG     8  len  RequestId                                                     (12)
//   KEEPALIVE_CMPLT   ..08 len RequestId Status                                             (16)
//
// Untrusted input: every decoder checks MessageLength against the bytes that arrived and every
// buffer offset/length against MessageLength in 64-bit arithmetic (ntb::fits) before reading.
// Bytes after MessageLength are ignored (GET_ENCAPSULATED_RESPONSE answers may be padded).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <variant>
#include <vector>

#include "datapath/rndis_packet.hpp"

namespace wwan::rndis {

using ByteVector = std::vector<std::uint8_t>;

// ---- message types (MS-RNDIS §2.2.1; Linux RNDIS_MSG_*) ----------------------------------------
inline constexpr std::uint32_t kCompletion = 0x80000000;  // set in every completion's type
inline constexpr std::uint32_t kInitializeMsg = 0x00000002;
inline constexpr std::uint32_t kHaltMsg = 0x00000003;
inline constexpr std::uint32_t kQueryMsg = 0x00000004;
inline constexpr std::uint32_t kSetMsg = 0x00000005;
inline constexpr std::uint32_t kResetMsg = 0x00000006;
inline constexpr std::uint32_t kIndicateStatusMsg = 0x00000007;
inline constexpr std::uint32_t kKeepaliveMsg = 0x00000008;
inline constexpr std::uint32_t kInitializeCmplt = kInitializeMsg | kCompletion;
inline constexpr std::uint32_t kQueryCmplt = kQueryMsg | kCompletion;
inline constexpr std::uint32_t kSetCmplt = kSetMsg | kCompletion;
inline constexpr std::uint32_t kResetCmplt = kResetMsg | kCompletion;
inline constexpr std::uint32_t kKeepaliveCmplt = kKeepaliveMsg | kCompletion;

// "REMOTE_NDIS_QUERY_CMPLT", or "UNKNOWN".
const char* message_name(std::uint32_t type);

// ---- sizes (bytes) ---------------------------------------------------------------------------------
inline constexpr std::size_t kInitializeMsgSize = 24;
inline constexpr std::size_t kInitializeCmpltSize = 52;
inline constexpr std::size_t kHaltMsgSize = 12;
inline constexpr std::size_t kOidRequestHeaderSize = 28;  // QUERY_MSG / SET_MSG without the buffer
inline constexpr std::size_t kQueryCmpltHeaderSize = 24;
inline constexpr std::size_t kSetCmpltSize = 16;
inline constexpr std::size_t kResetMsgSize = 12;
inline constexpr std::size_t kResetCmpltSize = 16;
inline constexpr std::size_t kIndicateStatusHeaderSize = 20;
inline constexpr std::size_t kKeepaliveMsgSize = 12;
inline constexpr std::size_t kKeepaliveCmpltSize = 16;
// Buffer offsets count from byte 8 (RequestId / Status field).
inline constexpr std::size_t kBufferOffsetBase = 8;
// The largest control message either side of this codec accepts. MS-RNDIS makes 1025 bytes the
// minimum a host must be able to read; 4096 holds every OID this driver asks for many times over
// and bounds a hostile device.
inline constexpr std::size_t kMaxControlMessageSize = 4096;

// ---- versions, flags, medium (MS-RNDIS §2.2.2-2.2.3) -------------------------------------------
inline constexpr std::uint32_t kMajorVersion = 1;
inline constexpr std::uint32_t kMinorVersion = 0;
inline constexpr std::uint32_t kDeviceFlagConnectionless = 0x00000001;  // RNDIS_DF_CONNECTIONLESS
inline constexpr std::uint32_t kMedium8023 = 0x00000000;                // RNDIS_MEDIUM_802_3

// ---- status values (MS-RNDIS §2.2.15; Linux RNDIS_STATUS_*) ------------------------------------------
inline constexpr std::uint32_t kStatusSuccess = 0x00000000;
inline constexpr std::uint32_t kStatusFailure = 0xC0000001;
inline constexpr std::uint32_t kStatusInvalidData = 0xC0010015;
inline constexpr std::uint32_t kStatusNotSupported = 0xC00000BB;
inline constexpr std::uint32_t kStatusInvalidLength = 0xC0010014;
inline constexpr std::uint32_t kStatusMediaConnect = 0x4001000B;      // INDICATE_STATUS: link up
inline constexpr std::uint32_t kStatusMediaDisconnect = 0x4001000C;   // INDICATE_STATUS: link down
inline constexpr std::uint32_t kStatusLinkSpeedChange = 0x40010013;
// "RNDIS_STATUS_MEDIA_CONNECT", or "UNKNOWN".
const char* status_name(std::uint32_t status);

// ---- OIDs the host needs (NDIS ntddndis.h numbers; Linux rndis.h) --------------------------------------
inline constexpr std::uint32_t kOidGenSupportedList = 0x00010101;
inline constexpr std::uint32_t kOidGenMaximumFrameSize = 0x00010106;    // u32: largest payload after the Ethernet header
inline constexpr std::uint32_t kOidGenLinkSpeed = 0x00010107;           // u32: in units of 100 bit/s
inline constexpr std::uint32_t kOidGenCurrentPacketFilter = 0x0001010E; // u32: NDIS_PACKET_TYPE_* bits
inline constexpr std::uint32_t kOidGenMaximumTotalSize = 0x00010111;    // u32: largest frame with header
inline constexpr std::uint32_t kOidGenMediaConnectStatus = 0x00010114;  // u32: kMediaStateConnected / Disconnected
inline constexpr std::uint32_t kOidGenPhysicalMedium = 0x00010202;
inline constexpr std::uint32_t kOidGenXmitOk = 0x00020101;
inline constexpr std::uint32_t kOidGenRcvOk = 0x00020102;
inline constexpr std::uint32_t kOid8023PermanentAddress = 0x01010101;  // 6 bytes: the MAC the HOST uses
inline constexpr std::uint32_t kOid8023CurrentAddress = 0x01010102;    // 6 bytes
inline constexpr std::uint32_t kOid8023MulticastList = 0x01010103;
inline constexpr std::uint32_t kOid8023MaximumListSize = 0x01010104;
// "OID_GEN_LINK_SPEED", or "UNKNOWN".
const char* oid_name(std::uint32_t oid);

inline constexpr std::uint32_t kMediaStateConnected = 0;     // NDIS_MEDIA_STATE_CONNECTED
inline constexpr std::uint32_t kMediaStateDisconnected = 1;  // NDIS_MEDIA_STATE_DISCONNECTED

// OID_GEN_CURRENT_PACKET_FILTER bits (NDIS_PACKET_TYPE_*). A filter of 0 stops the data path
// (MS-RNDIS: the device sends no data until the host sets a nonzero filter).
inline constexpr std::uint32_t kPacketTypeDirected = 0x00000001;
inline constexpr std::uint32_t kPacketTypeMulticast = 0x00000002;
inline constexpr std::uint32_t kPacketTypeAllMulticast = 0x00000004;
inline constexpr std::uint32_t kPacketTypeBroadcast = 0x00000008;
inline constexpr std::uint32_t kPacketTypePromiscuous = 0x00000020;

// ---- RESPONSE_AVAILABLE on the interrupt endpoint (MS-RNDIS USB mapping) ---------------------------
// 8 bytes: Notification = 0x00000001, Reserved = 0. The same bytes decode as a CDC header with
// bmRequestType 0x01, so cdc::decode_notification rejects it: the runner must look here first.
inline constexpr std::size_t kResponseAvailableSize = 8;
inline constexpr std::uint32_t kResponseAvailableNotification = 0x00000001;
[[nodiscard]] std::size_t encode_response_available(MutableBytes out);
// True for an interrupt transfer that starts with the RNDIS RESPONSE_AVAILABLE word (4 bytes
// suffice; the reserved word is not checked). False for CDC notifications (they start 0xA1).
bool is_response_available(Bytes transfer);

// ---- decoded messages ------------------------------------------------------------------------------
struct InitializeMsg {
  std::uint32_t request_id = 0;
  std::uint32_t major_version = kMajorVersion;
  std::uint32_t minor_version = kMinorVersion;
  std::uint32_t max_transfer_size = 0;  // the largest transfer the HOST accepts from the device
  friend bool operator==(const InitializeMsg&, const InitializeMsg&) = default;
};
struct InitializeCmplt {
  std::uint32_t request_id = 0;
  std::uint32_t status = kStatusSuccess;
  std::uint32_t major_version = kMajorVersion;
  std::uint32_t minor_version = kMinorVersion;
  std::uint32_t device_flags = kDeviceFlagConnectionless;
  std::uint32_t medium = kMedium8023;
  std::uint32_t max_packets_per_transfer = 1;  // how many PACKET_MSGs the DEVICE takes per transfer
  std::uint32_t max_transfer_size = 0;         // the largest transfer the DEVICE accepts
  std::uint32_t packet_alignment_factor = 0;   // exponent of 2
  std::uint32_t af_list_offset = 0;            // connection-oriented only; 0
  std::uint32_t af_list_size = 0;
  friend bool operator==(const InitializeCmplt&, const InitializeCmplt&) = default;
};
struct HaltMsg {
  std::uint32_t request_id = 0;
  friend bool operator==(const HaltMsg&, const HaltMsg&) = default;
};
// QUERY_MSG and SET_MSG share a layout; `set` tells them apart. `information_buffer` views the
// decoded bytes (valid as long as they are).
struct OidRequest {
  bool set = false;
  std::uint32_t request_id = 0;
  std::uint32_t oid = 0;
  std::uint32_t device_vc_handle = 0;
  Bytes information_buffer;
};
struct QueryCmplt {
  std::uint32_t request_id = 0;
  std::uint32_t status = kStatusSuccess;
  Bytes information_buffer;
};
struct SetCmplt {
  std::uint32_t request_id = 0;
  std::uint32_t status = kStatusSuccess;
  friend bool operator==(const SetCmplt&, const SetCmplt&) = default;
};
struct ResetMsg {
  std::uint32_t reserved = 0;
  friend bool operator==(const ResetMsg&, const ResetMsg&) = default;
};
struct ResetCmplt {
  std::uint32_t status = kStatusSuccess;
  // Nonzero: the device lost its addressing state (packet filter, multicast list) and the host
  // must set it again (MS-RNDIS §2.2.12).
  std::uint32_t addressing_reset = 0;
  friend bool operator==(const ResetCmplt&, const ResetCmplt&) = default;
};
struct IndicateStatus {
  std::uint32_t status = 0;
  Bytes status_buffer;             // empty when there is none (media connect / disconnect)
  bool status_buffer_bad = false;  // StatusBufferOffset/Length pointed outside the message: ignored
};
struct KeepaliveMsg {
  std::uint32_t request_id = 0;
  friend bool operator==(const KeepaliveMsg&, const KeepaliveMsg&) = default;
};
struct KeepaliveCmplt {
  std::uint32_t request_id = 0;
  std::uint32_t status = kStatusSuccess;
  friend bool operator==(const KeepaliveCmplt&, const KeepaliveCmplt&) = default;
};

using ControlMessage = std::variant<std::monostate, InitializeMsg, InitializeCmplt, HaltMsg, OidRequest, QueryCmplt,
                                    SetCmplt, ResetMsg, ResetCmplt, IndicateStatus, KeepaliveMsg, KeepaliveCmplt>;

enum class ControlError : std::uint8_t {
  None,
  TooShort,               // fewer than 8 bytes: no MessageType / MessageLength
  MessageLengthMismatch,  // MessageLength below the type's fixed size, or past the bytes received
  TooLarge,               // MessageLength above kMaxControlMessageSize
  UnknownType,            // a MessageType this codec does not know (REMOTE_NDIS_PACKET_MSG included)
  BufferOutOfBounds,      // InformationBuffer offset/length outside the message or inside its header
};
const char* to_string(ControlError e);

struct DecodedControl {
  ControlError error = ControlError::None;
  std::uint32_t type = 0;            // MessageType as read (0 when TooShort)
  std::uint32_t message_length = 0;  // MessageLength as read
  ControlMessage message;            // monostate unless error == None
  bool ok() const { return error == ControlError::None; }
};

// Decodes one control message of either direction.
DecodedControl decode_control(Bytes bytes);

// ---- encoders (whole messages, MessageLength filled in) ------------------------------------------
// Host -> device.
ByteVector encode_initialize(const InitializeMsg& m);
ByteVector encode_halt(std::uint32_t request_id);
// QUERY_MSG / SET_MSG with InformationBufferOffset 20 (the buffer right after the header, as
// rndis_host writes it, also for an empty buffer) and DeviceVcHandle 0.
ByteVector encode_query(std::uint32_t request_id, std::uint32_t oid, Bytes information_buffer = {});
ByteVector encode_set(std::uint32_t request_id, std::uint32_t oid, Bytes information_buffer);
ByteVector encode_reset();
// Either direction: MS-RNDIS lets the device send KEEPALIVE_MSG too, and the other side answers.
ByteVector encode_keepalive(std::uint32_t request_id);
ByteVector encode_keepalive_cmplt(std::uint32_t request_id, std::uint32_t status);
// Device -> host.
ByteVector encode_initialize_cmplt(const InitializeCmplt& m);
// InformationBufferOffset 16 (right after the header) when the buffer is not empty, else 0.
ByteVector encode_query_cmplt(std::uint32_t request_id, std::uint32_t status, Bytes information_buffer = {});
ByteVector encode_set_cmplt(std::uint32_t request_id, std::uint32_t status);
ByteVector encode_reset_cmplt(std::uint32_t status, std::uint32_t addressing_reset);
// StatusBufferOffset 12 from the Status field (the buffer right after the header) when not empty.
ByteVector encode_indicate_status(std::uint32_t status, Bytes status_buffer = {});

// The u32 value of an OID buffer (QUERY answers of GEN_* OIDs, SET of the packet filter): its
// first 4 bytes (a longer buffer is tolerated, as NDIS does); nullopt when fewer arrived.
std::optional<std::uint32_t> oid_u32(Bytes information_buffer);
ByteVector oid_u32_buffer(std::uint32_t value);

}  // namespace wwan::rndis
