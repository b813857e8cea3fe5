// MBIM 1.0 control messages: the pure codec (spans in, structs out; no I/O, no clock).
//
// Used by the driver's control plane (host side: encodes commands, decodes answers) and by the
// emulated MBIM modem in sim/ (device side: decodes commands, encodes answers), so both
// directions of every structure are here. Wire facts are from ../shared/reference/anchors.md §4
// (libmbim mbim-message-private.h / mbim-cid.h / mbim-enums.h / mbim-uuid.c, OpenBSD mbim.h) and
// are pinned by golden bytes of real devices in tests/control/mbim_wire_test.cpp
// (vectors/libmbim.md, vectors/real_mbim_qmi_over_mbim_traces.md).
//
// Layers:
//   1. the message: 12-byte header {MessageType, MessageLength, TransactionId}, the fragment
//      header {TotalFragments, CurrentFragment} of COMMAND / COMMAND_DONE / INDICATE_STATUS,
//      fragmentation into MaxControlTransfer-sized pieces and bounded reassembly (§4.2);
//   2. the InformationBuffer: little-endian u32 fields, {offset, size} pairs pointing at UTF-16LE
//      strings or arrays inside the same buffer, padded to 4 bytes (§4.2);
//   3. the BASIC_CONNECT payloads a data session needs (§4.4) and the QMUX framing carried by
//      the QMI-over-MBIM service for the Sierra FCC authentication (§4.5).
//
// Untrusted input: every decoder bounds every read of a device- (or host-) supplied length or
// offset in 64-bit arithmetic (ntb::fits) before touching the bytes, and every rejection is a
// named WireError. A decoded view (Bytes) points into the caller's buffer; nothing is copied
// except strings, which are converted to UTF-8.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "datapath/ethernet.hpp"

namespace wwan::mbim {

using Bytes = std::span<const std::uint8_t>;
using ByteVector = std::vector<std::uint8_t>;
using TransactionId = std::uint32_t;

// ---- errors ---------------------------------------------------------------------------------

// Every reason a decoder or the reassembler rejects input. Names never change meaning (they are
// log and counter names).
enum class WireError : std::uint8_t {
  // The message.
  Truncated,                 // fewer bytes than the header or than MessageLength says: read on
  MessageLengthTooShort,     // MessageLength below the fixed header of its MessageType (libmbim INVALID)
  UnexpectedMessageType,     // a known type, but not the one this decoder reads
  UnknownMessageType,        // not one of the nine MBIM 1.0 types
  InformationBufferOverrun,  // header + InformationBufferLength > MessageLength (EM7455: LENGTH_MISMATCH)
  BadFragmentTotal,          // TotalFragments == 0
  BadFragmentCurrent,        // CurrentFragment >= TotalFragments
  Fragmented,                // a whole-message decoder was given one fragment of several
  // Reassembly (MBIM 1.0 §9.5).
  FragmentOutOfSequence,     // CurrentFragment is not the next one expected
  FragmentTransactionMismatch,  // TransactionId differs from the first fragment's
  FragmentTypeMismatch,      // MessageType differs from the first fragment's
  FragmentTotalMismatch,     // TotalFragments differs from the first fragment's
  TooManyFragments,          // TotalFragments above the reassembler's limit
  MessageTooLarge,           // the reassembled message would exceed the reassembler's limit
  // The InformationBuffer.
  InformationBufferTooShort,  // shorter than the fixed part of the structure
  OffsetOutOfBounds,          // an {offset, size} pair or an offset/count points outside the buffer
  StringOddLength,            // a UTF-16LE string with an odd byte count
  // QMUX (QMI over MBIM).
  QmuxBadInterfaceType,       // first byte is not 0x01
  QmuxBadLength,              // QMUX length disagrees with the bytes carried
  QmiTlvOverrun,              // a TLV or the TLV block runs past the message
  QmiMissingTlv,              // a mandatory TLV is absent
};
const char* to_string(WireError e);

// A value or a named error (std::expected is C++23).
template <class T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit on purpose, like std::expected
  Result(WireError error) : v_(error) {}     // NOLINT
  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }
  const T& value() const& { return std::get<T>(v_); }
  T& value() & { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  const T& operator*() const& { return value(); }
  const T* operator->() const { return &value(); }
  WireError error() const { return std::get<WireError>(v_); }

 private:
  std::variant<T, WireError> v_;
};

// ---- the message header (MBIM 1.0 §9.1) --------------------------------------------------

enum class MessageType : std::uint32_t {
  Open = 0x00000001,
  Close = 0x00000002,
  Command = 0x00000003,
  HostError = 0x00000004,
  OpenDone = 0x80000001,
  CloseDone = 0x80000002,
  CommandDone = 0x80000003,
  FunctionError = 0x80000004,
  IndicateStatus = 0x80000007,
};
bool is_known(MessageType t);
const char* to_string(MessageType t);

inline constexpr std::size_t kHeaderSize = 12;          // {MessageType, MessageLength, TransactionId}
inline constexpr std::size_t kFragmentHeaderSize = 8;   // {TotalFragments, CurrentFragment}
inline constexpr std::size_t kOpenSize = 16;            // header + MaxControlTransfer
inline constexpr std::size_t kCloseSize = 12;
inline constexpr std::size_t kStatusMessageSize = 16;   // OPEN_DONE, CLOSE_DONE, HOST/FUNCTION_ERROR
inline constexpr std::size_t kCommandHeaderSize = 48;   // + InformationBuffer (anchors §4.2)
inline constexpr std::size_t kCommandDoneHeaderSize = 48;
inline constexpr std::size_t kIndicateStatusHeaderSize = 44;
// libmbim MAX_CONTROL_TRANSFER; OpenBSD MBIM_CTRLMSG_MINLEN (anchors §3.3, §3.6, §4.1).
inline constexpr std::uint32_t kHostMaxControlTransfer = 4096;
inline constexpr std::uint32_t kMinControlTransfer = 64;

// The fixed header size of a message type: what MessageLength may not be below.
std::size_t fixed_header_size(MessageType t);
// True for the types that carry the fragment header and may be split (§9.5).
constexpr bool is_fragmentable(MessageType t) {
  return t == MessageType::Command || t == MessageType::CommandDone || t == MessageType::IndicateStatus;
}

struct MessageHeader {
  MessageType type = MessageType::Open;
  std::uint32_t message_length = 0;  // MessageLength, bytes, header included
  TransactionId transaction_id = 0;
};

struct FragmentHeader {
  std::uint32_t total_fragments = 1;
  std::uint32_t current_fragment = 0;
};

// The 12-byte header (Truncated below 12 bytes; the type is not judged here).
Result<MessageHeader> read_header(Bytes message);

// Checks what every message must satisfy before its body is read: a known type, MessageLength
// >= its fixed header (else MessageLengthTooShort, libmbim D8), all MessageLength bytes present
// (else Truncated: "incomplete, read on", libmbim D7), and for the fragmentable types a sane
// fragment header (D10-D12). Bytes after MessageLength are not part of the message.
//
// Decision on the libmbim vectors whose length fields disagree with their bytes (libmbim.md
// "Known quirks"): STRICT, with one documented tolerance.
//   - A2 (SUBSCRIBER_READY_STATUS: MessageLength 180 / InformationBufferLength 132, but the ICCID
//     {0x7c, 0x28} ends at byte 164 of the buffer, 212 bytes supplied): rejected
//     (OffsetOutOfBounds). Every {offset, size} is bounded by InformationBufferLength, never by
//     the bytes that happen to follow: MBIM 1.0 §9 makes MessageLength the message, and a reader
//     that looks past it reads the next fragment's or the next message's bytes (libmbim accepts A2
//     only because it checks against the received bytes). The session does not lose a usable SIM
//     over it: MbimSession needs only ReadyState, the fixed first field, and falls back to it
//     when the strings are out of bounds (tests/control/mbim_session_test.cpp).
//   - A15/A17/A18 (MBIMEx v3 CONNECT: MessageLength = 48 + InformationBufferLength, and 2-4 more
//     bytes supplied): accepted. The header is consistent; the extra bytes are the trailing pad of
//     the last TLV outside the message, ignored as any bytes after MessageLength are (a
//     GET_ENCAPSULATED_RESPONSE may be padded). Tested in tests/control/mbim_wire_test.cpp
//     (SubscriberReadyStatusStrictBoundsAndFixedLengths, BytesAfterMessageLengthAreIgnored) and
//     tests/control/libmbim_roundtrip_test.cpp.
Result<MessageHeader> validate(Bytes message);

// ---- status and error codes ------------------------------------------------------------------

// MBIM_STATUS (COMMAND_DONE). The wire may carry any value: the enum is open.
enum class Status : std::uint32_t {
  None = 0,  // success
  Busy = 1,
  Failure = 2,
  SimNotInserted = 3,
  BadSim = 4,
  PinRequired = 5,
  PinDisabled = 6,
  NotRegistered = 7,
  ProvidersNotFound = 8,
  NoDeviceSupport = 9,
  ProviderNotVisible = 10,
  DataClassNotAvailable = 11,
  PacketServiceDetached = 12,
  MaxActivatedContexts = 13,
  NotInitialized = 14,
  VoiceCallInProgress = 15,
  ContextNotActivated = 16,
  ServiceNotActivated = 17,
  InvalidAccessString = 18,
  InvalidUserNamePwd = 19,
  RadioPowerOff = 20,
  InvalidParameters = 21,
  ReadFailure = 22,
  WriteFailure = 23,
  OperationNotAllowed = 28,
  FilterNotSupported = 32,
  DssInstanceLimit = 33,
  ContextNotSupported = 38,
};
const char* to_string(Status s);  // "unknown" for values not listed

// ErrorStatusCode of HOST_ERROR / FUNCTION_ERROR (protocol errors, anchors §4.2).
enum class ProtocolError : std::uint32_t {
  Invalid = 0,
  TimeoutFragment = 1,
  FragmentOutOfSequence = 2,
  LengthMismatch = 3,
  DuplicatedTid = 4,
  NotOpened = 5,
  Unknown = 6,
  Cancel = 7,
  MaxTransfer = 8,
};
const char* to_string(ProtocolError e);

// ---- UUIDs (wire order = textual order, anchors §4.2) ------------------------------------------

struct Uuid {
  std::array<std::uint8_t, 16> bytes{};
  friend constexpr bool operator==(const Uuid&, const Uuid&) = default;
};

// "a289cc33-bcbb-8b4f-b6b0-133ec2aae6df" -> bytes a2 89 cc 33 bc bb 8b 4f ...; nullopt if malformed.
std::optional<Uuid> parse_uuid(std::string_view text);
std::string to_string(const Uuid& uuid);

// anchors §4.3 (libmbim mbim-uuid.c), each checked against the wire bytes of a vector where one exists.
inline constexpr Uuid kUuidBasicConnect{{0xa2, 0x89, 0xcc, 0x33, 0xbc, 0xbb, 0x8b, 0x4f, 0xb6, 0xb0, 0x13, 0x3e,
                                         0xc2, 0xaa, 0xe6, 0xdf}};  // libmbim.md A1..A10
// QMI-over-MBIM (Qualcomm): CID 1 carries a raw QMUX message (real_mbim_qmi_over_mbim_traces.md).
inline constexpr Uuid kUuidQmi{{0xd1, 0xa3, 0x0b, 0xc2, 0xf9, 0x7a, 0x6e, 0x43, 0xbf, 0x65, 0xc7, 0xe2, 0x4f, 0xb0,
                                0xf0, 0xd3}};
inline constexpr Uuid kUuidMsBasicConnectExtensions{{0x3d, 0x01, 0xdc, 0xc5, 0xfe, 0xf5, 0x4d, 0x05, 0x0d, 0x3a,
                                                     0xbe, 0xf7, 0x05, 0x8e, 0x9a, 0xaf}};
inline constexpr Uuid kUuidDss{{0xc0, 0x8a, 0x26, 0xdd, 0x77, 0x18, 0x43, 0x82, 0x84, 0x82, 0x6e, 0x0d, 0x58, 0x3c,
                                0x4d, 0x0e}};
inline constexpr Uuid kUuidMsHostShutdown{{0x88, 0x3b, 0x7c, 0x26, 0x98, 0x5f, 0x43, 0xfa, 0x98, 0x04, 0x27, 0xd7,
                                           0xfb, 0x80, 0x95, 0x9c}};
// MBIM_CONTEXT_TYPE_INTERNET (CONNECT ContextType), libmbim.md C test_basic_connect_connect_set.
inline constexpr Uuid kUuidContextTypeInternet{{0x7e, 0x5e, 0x2a, 0x7e, 0x4e, 0x6f, 0x72, 0x72, 0x73, 0x6b, 0x65,
                                                0x6e, 0x7e, 0x5e, 0x2a, 0x7e}};

// ---- CIDs -----------------------------------------------------------------------------------

// BASIC_CONNECT CIDs (anchors §4.4, libmbim mbim-cid.h).
enum class BasicConnectCid : std::uint32_t {
  DeviceCaps = 1,
  SubscriberReadyStatus = 2,
  RadioState = 3,
  Pin = 4,
  PinList = 5,
  HomeProvider = 6,
  PreferredProviders = 7,
  VisibleProviders = 8,
  RegisterState = 9,
  PacketService = 10,
  SignalState = 11,
  Connect = 12,
  ProvisionedContexts = 13,
  ServiceActivation = 14,
  IpConfiguration = 15,
  DeviceServices = 16,
  DeviceServiceSubscribeList = 19,
  PacketStatistics = 20,
  NetworkIdleHint = 21,
  EmergencyMode = 22,
  IpPacketFilters = 23,
  MulticarrierProviders = 24,
};
constexpr std::uint32_t cid(BasicConnectCid c) { return static_cast<std::uint32_t>(c); }
// QMI service: CID 1 MBIM_CID_QMI_MSG (anchors §4.3).
inline constexpr std::uint32_t kQmiCidMsg = 1;

enum class CommandType : std::uint32_t { Query = 0, Set = 1 };

// ---- whole messages ----------------------------------------------------------------------------

struct OpenMessage {
  TransactionId transaction_id = 0;
  std::uint32_t max_control_transfer = kHostMaxControlTransfer;  // MaxControlTransfer, bytes
};
struct CloseMessage {
  TransactionId transaction_id = 0;
};
// OPEN_DONE and CLOSE_DONE.
struct DoneMessage {
  MessageType type = MessageType::OpenDone;
  TransactionId transaction_id = 0;
  Status status = Status::None;
};
// HOST_ERROR and FUNCTION_ERROR.
struct ErrorMessage {
  MessageType type = MessageType::FunctionError;
  TransactionId transaction_id = 0;
  ProtocolError error_status_code = ProtocolError::Unknown;
};
struct CommandMessage {
  TransactionId transaction_id = 0;
  Uuid service;  // DeviceServiceId
  std::uint32_t cid = 0;
  CommandType command_type = CommandType::Query;
  Bytes information_buffer;  // view into the decoded message
};
struct CommandDoneMessage {
  TransactionId transaction_id = 0;
  Uuid service;
  std::uint32_t cid = 0;
  Status status = Status::None;
  Bytes information_buffer;
};
struct IndicateStatusMessage {
  TransactionId transaction_id = 0;
  Uuid service;
  std::uint32_t cid = 0;
  Bytes information_buffer;
};

// Encoders produce one whole message (fragment 0 of 1, MessageLength = header + buffer).
// Split the fragmentable ones with fragment() before sending if they exceed MaxControlTransfer.
ByteVector encode_open(TransactionId tid, std::uint32_t max_control_transfer);
ByteVector encode_close(TransactionId tid);
ByteVector encode_done(MessageType type, TransactionId tid, Status status);  // OpenDone / CloseDone
ByteVector encode_error(MessageType type, TransactionId tid, ProtocolError code);  // HostError / FunctionError
ByteVector encode_command(TransactionId tid, const Uuid& service, std::uint32_t cid, CommandType type,
                          Bytes information_buffer);
ByteVector encode_command_done(TransactionId tid, const Uuid& service, std::uint32_t cid, Status status,
                               Bytes information_buffer);
ByteVector encode_indicate_status(TransactionId tid, const Uuid& service, std::uint32_t cid,
                                  Bytes information_buffer);

// Decoders of one whole message (a single fragment, or the output of Reassembler). Each runs
// validate() first; the fragmentable ones reject a partial fragment with Fragmented.
Result<OpenMessage> parse_open(Bytes message);
Result<CloseMessage> parse_close(Bytes message);
Result<DoneMessage> parse_done(Bytes message);
Result<ErrorMessage> parse_error(Bytes message);
Result<CommandMessage> parse_command(Bytes message);
Result<CommandDoneMessage> parse_command_done(Bytes message);
Result<IndicateStatusMessage> parse_indicate_status(Bytes message);

// ---- fragments (MBIM 1.0 §9.5) ----------------------------------------------------------------

// Splits one whole fragmentable message into pieces of at most `max_fragment_bytes` (the peer's
// MaxControlTransfer): each piece is the 20-byte header + fragment header with MessageLength of
// that piece, TotalFragments and CurrentFragment set, followed by the next slice of the bytes
// after the fragment header (libmbim test-fragment.c; libmbim.md E3/E4). A message that fits is
// returned as is. Errors: a message that does not validate, a non-fragmentable message that does
// not fit (MessageTooLarge), or max_fragment_bytes < 21.
Result<std::vector<ByteVector>> fragment(Bytes message, std::size_t max_fragment_bytes);

struct ReassemblyLimits {
  std::uint32_t max_fragments = 64;        // TotalFragments accepted
  std::uint32_t max_message_bytes = 65536;  // reassembled MessageLength accepted
};

// Collects the fragments of one message at a time; memory is bounded by max_message_bytes.
//
//   Reassembler r;  for each transfer: auto s = r.feed(bytes);
//     s == Complete  -> r.message() is the whole message (TotalFragments 1, CurrentFragment 0,
//                       MessageLength the sum), valid until the next feed()
//     s == NeedMore  -> wait for the next fragment
//     error          -> the partial message is dropped (and this fragment with it)
//
// Non-fragmentable messages (OPEN_DONE, FUNCTION_ERROR, ...) pass straight through as Complete;
// if one arrives in the middle of a fragmented message, the partial message is kept (the device
// may interleave them). A fragment 0 arriving while a message is partial abandons the partial
// one (counted in abandoned()) and starts anew: the sender has given up on the old message
// (libmbim does the same after its 1250 ms inter-fragment timeout, which is the caller's clock).
class Reassembler {
 public:
  enum class State : std::uint8_t { NeedMore, Complete };

  explicit Reassembler(ReassemblyLimits limits = {}) : limits_(limits) {}

  Result<State> feed(Bytes transfer);
  Bytes message() const { return complete_; }
  bool partial() const { return expected_ != 0; }
  void reset();
  std::uint64_t abandoned() const { return abandoned_; }

 private:
  ReassemblyLimits limits_;
  ByteVector buffer_;
  Bytes complete_;
  MessageHeader first_{};
  std::uint32_t total_ = 0;
  std::uint32_t expected_ = 0;  // next CurrentFragment; 0 = no partial message
  std::uint64_t abandoned_ = 0;
};

// ---- InformationBuffer helpers ---------------------------------------------------------------

// UTF-16LE <-> UTF-8. Decoding replaces unpaired surrogates with U+FFFD (a provider name with a
// bad character should not cost the whole REGISTER_STATE answer); an odd byte count is an error.
Result<std::string> decode_utf16le(Bytes bytes);
ByteVector encode_utf16le(std::string_view utf8);

// Reads fields of one InformationBuffer (or of a structure nested in it) with bounds checks.
class InfoReader {
 public:
  explicit InfoReader(Bytes buffer) : buffer_(buffer) {}
  Bytes buffer() const { return buffer_; }
  // The buffer must hold at least `bytes` (the fixed part): InformationBufferTooShort otherwise.
  Result<bool> require(std::size_t bytes) const;
  // Precondition for u32/u64/uuid: require() covered the offset (else 0 / zero UUID).
  std::uint32_t u32(std::size_t offset) const;
  std::uint64_t u64(std::size_t offset) const;
  Uuid uuid(std::size_t offset) const;
  // The {offset, size} pair at `ol_offset` (offset relative to this buffer): the bytes it names.
  // offset 0 with size 0 is the empty string / absent field.
  Result<Bytes> ol_bytes(std::size_t ol_offset) const;
  Result<std::string> ol_string(std::size_t ol_offset) const;
  // `count` elements of `element_bytes` each at the u32 offset stored at `offset_field`.
  Result<Bytes> array(std::size_t offset_field, std::uint64_t count, std::uint64_t element_bytes) const;

 private:
  Bytes buffer_;
};

// Builds one InformationBuffer: a fixed part of known size, then the variable data that the
// {offset, size} pairs point at, each item padded to 4 bytes (anchors §4.2; libmbim pads strings,
// and the offsets it writes are relative to the start of the buffer, libmbim.md C).
class InfoWriter {
 public:
  explicit InfoWriter(std::size_t fixed_bytes) : buffer_(fixed_bytes, 0) {}
  void u32(std::size_t offset, std::uint32_t value);
  void u64(std::size_t offset, std::uint64_t value);
  void uuid(std::size_t offset, const Uuid& value);
  // Appends `data` (padded to 4) and stores {offset, size} at `ol_offset`; empty -> {0, 0}.
  void ol_bytes(std::size_t ol_offset, Bytes data);
  void ol_string(std::size_t ol_offset, std::string_view utf8);
  // Appends `data` (padded to 4) and returns its offset (for offset/count fields).
  std::uint32_t append(Bytes data);
  const ByteVector& bytes() const { return buffer_; }
  ByteVector take() { return std::move(buffer_); }

 private:
  ByteVector buffer_;
};

// ---- BASIC_CONNECT payloads (anchors §4.4; field names as MBIM 1.0 §10.5) -------------------

// MBIM_DATA_CLASS bits (MBIM 1.0 Table 10-11; libmbim.md A3: 0x8000001F = GPRS..HSUPA|CUSTOM).
namespace data_class {
inline constexpr std::uint32_t kGprs = 0x1, kEdge = 0x2, kUmts = 0x4, kHsdpa = 0x8, kHsupa = 0x10, kLte = 0x20,
                               kCustom = 0x80000000;
}

// DEVICE_CAPS query answer (MBIM_DEVICE_CAPS_INFO, 64-byte fixed part).
struct DeviceCapsInfo {
  std::uint32_t device_type = 0;     // 1 embedded, 2 removable, 3 remote
  std::uint32_t cellular_class = 0;  // 1 GSM, 2 CDMA
  std::uint32_t voice_class = 0;     // 1 no voice
  std::uint32_t sim_class = 0;       // 1 logical, 2 removable
  std::uint32_t data_class = 0;      // data_class bits
  std::uint32_t sms_caps = 0;
  std::uint32_t control_caps = 0;
  std::uint32_t max_sessions = 0;
  std::string custom_data_class;
  std::string device_id;             // IMEI
  std::string firmware_info;
  std::string hardware_info;
};
ByteVector encode(const DeviceCapsInfo& v);
Result<DeviceCapsInfo> parse_device_caps_info(Bytes information_buffer);

enum class ReadyState : std::uint32_t {
  NotInitialized = 0, Initialized = 1, SimNotInserted = 2, BadSim = 3, Failure = 4, NotActivated = 5,
  DeviceLocked = 6, NoEsimProfile = 7,
};
// SUBSCRIBER_READY_STATUS answer (28-byte fixed part + an OL array of telephone numbers).
struct SubscriberReadyStatusInfo {
  ReadyState ready_state = ReadyState::NotInitialized;
  std::string subscriber_id;  // IMSI
  std::string sim_icc_id;     // ICCID
  std::uint32_t ready_info = 0;
  std::vector<std::string> telephone_numbers;
};
ByteVector encode(const SubscriberReadyStatusInfo& v);
Result<SubscriberReadyStatusInfo> parse_subscriber_ready_status_info(Bytes information_buffer);

enum class RadioState : std::uint32_t { Off = 0, On = 1 };
// RADIO_STATE set: {RadioState}. Answer: {HwRadioState, SwRadioState}.
ByteVector encode_radio_state_set(RadioState state);
Result<RadioState> parse_radio_state_set(Bytes information_buffer);
struct RadioStateInfo {
  RadioState hw_radio_state = RadioState::Off;  // Off with SW On requested = FCC lock / rfkill (anchors §4.4)
  RadioState sw_radio_state = RadioState::Off;
};
ByteVector encode(const RadioStateInfo& v);
Result<RadioStateInfo> parse_radio_state_info(Bytes information_buffer);

// PIN set (MBIM_SET_PIN, 24-byte fixed part) and the PIN answer (MBIM_PIN_INFO, 12 bytes).
namespace pin_type { inline constexpr std::uint32_t kNone = 0, kPin1 = 2, kPuk1 = 11; }
namespace pin_operation { inline constexpr std::uint32_t kEnter = 0, kEnable = 1, kDisable = 2, kChange = 3; }
struct PinSet {
  std::uint32_t pin_type = pin_type::kPin1;
  std::uint32_t pin_operation = pin_operation::kEnter;
  std::string pin;
  std::string new_pin;
};
ByteVector encode(const PinSet& v);
Result<PinSet> parse_pin_set(Bytes information_buffer);
struct PinInfo {
  std::uint32_t pin_type = pin_type::kNone;
  std::uint32_t pin_state = 0;  // 0 unlocked, 1 locked
  std::uint32_t remaining_attempts = 0;
};
ByteVector encode(const PinInfo& v);
Result<PinInfo> parse_pin_info(Bytes information_buffer);

enum class RegisterState : std::uint32_t {
  Unknown = 0, Deregistered = 1, Searching = 2, Home = 3, Roaming = 4, Partner = 5, Denied = 6,
};
// REGISTER_STATE answer / indication (MBIM_REGISTRATION_STATE_INFO, 48-byte fixed part).
struct RegistrationStateInfo {
  std::uint32_t nw_error = 0;
  RegisterState register_state = RegisterState::Unknown;
  std::uint32_t register_mode = 0;  // 1 automatic, 2 manual
  std::uint32_t available_data_classes = 0;
  std::uint32_t current_cellular_class = 0;
  std::string provider_id;  // MCC+MNC
  std::string provider_name;
  std::string roaming_text;
  std::uint32_t registration_flag = 0;  // 2 = packet service automatic attach
};
ByteVector encode(const RegistrationStateInfo& v);
Result<RegistrationStateInfo> parse_registration_state_info(Bytes information_buffer);

enum class PacketServiceAction : std::uint32_t { Attach = 0, Detach = 1 };
enum class PacketServiceState : std::uint32_t { Unknown = 0, Attaching = 1, Attached = 2, Detaching = 3, Detached = 4 };
ByteVector encode_packet_service_set(PacketServiceAction action);
Result<PacketServiceAction> parse_packet_service_set(Bytes information_buffer);
// PACKET_SERVICE answer / indication (MBIM_PACKET_SERVICE_INFO, 28 bytes).
struct PacketServiceInfo {
  std::uint32_t nw_error = 0;
  PacketServiceState packet_service_state = PacketServiceState::Unknown;
  std::uint32_t highest_available_data_class = 0;
  std::uint64_t uplink_speed_bits_per_s = 0;    // UplinkSpeed
  std::uint64_t downlink_speed_bits_per_s = 0;  // DownlinkSpeed
};
ByteVector encode(const PacketServiceInfo& v);
Result<PacketServiceInfo> parse_packet_service_info(Bytes information_buffer);

enum class ActivationCommand : std::uint32_t { Deactivate = 0, Activate = 1 };
enum class ActivationState : std::uint32_t { Unknown = 0, Activated = 1, Activating = 2, Deactivated = 3, Deactivating = 4 };
enum class AuthProtocol : std::uint32_t { None = 0, Pap = 1, Chap = 2, MsChapV2 = 3 };
enum class IpType : std::uint32_t { Default = 0, IPv4 = 1, IPv6 = 2, IPv4v6 = 3, IPv4AndIPv6 = 4 };
// CONNECT set (MBIM_SET_CONNECT, 60-byte fixed part).
struct ConnectSet {
  std::uint32_t session_id = 0;
  ActivationCommand activation_command = ActivationCommand::Activate;
  std::string access_string;  // APN
  std::string user_name;
  std::string password;
  std::uint32_t compression = 0;  // 0 none
  AuthProtocol auth_protocol = AuthProtocol::None;
  IpType ip_type = IpType::Default;
  Uuid context_type = kUuidContextTypeInternet;
};
ByteVector encode(const ConnectSet& v);
Result<ConnectSet> parse_connect_set(Bytes information_buffer);
// CONNECT answer / indication (MBIM_CONNECT_INFO, 36 bytes). The CONNECT query carries the same
// structure with only SessionId meaningful.
struct ConnectInfo {
  std::uint32_t session_id = 0;
  ActivationState activation_state = ActivationState::Unknown;
  std::uint32_t voice_call_state = 0;
  IpType ip_type = IpType::Default;
  Uuid context_type = kUuidContextTypeInternet;
  std::uint32_t nw_error = 0;
};
ByteVector encode(const ConnectInfo& v);
Result<ConnectInfo> parse_connect_info(Bytes information_buffer);

// IP_CONFIGURATION answer / indication (MBIM_IP_CONFIGURATION_INFO, 60-byte fixed part). The
// query carries the same structure with only SessionId meaningful (encode_ip_configuration_query).
namespace ip_config_available {
inline constexpr std::uint32_t kAddress = 0x1, kGateway = 0x2, kDns = 0x4, kMtu = 0x8;
}
struct Ipv4Element {
  std::uint32_t on_link_prefix_length = 0;
  eth::Ipv4Address address{};
  friend bool operator==(const Ipv4Element&, const Ipv4Element&) = default;
};
struct Ipv6Element {
  std::uint32_t on_link_prefix_length = 0;
  eth::Ipv6Address address{};
  friend bool operator==(const Ipv6Element&, const Ipv6Element&) = default;
};
struct IpConfigurationInfo {
  std::uint32_t session_id = 0;
  std::uint32_t ipv4_configuration_available = 0;  // ip_config_available bits
  std::uint32_t ipv6_configuration_available = 0;
  std::vector<Ipv4Element> ipv4_addresses;
  std::vector<Ipv6Element> ipv6_addresses;
  std::optional<eth::Ipv4Address> ipv4_gateway;  // offset 0 = absent
  std::optional<eth::Ipv6Address> ipv6_gateway;
  std::vector<eth::Ipv4Address> ipv4_dns_servers;
  std::vector<eth::Ipv6Address> ipv6_dns_servers;
  std::uint32_t ipv4_mtu = 0;
  std::uint32_t ipv6_mtu = 0;
};
ByteVector encode(const IpConfigurationInfo& v);
ByteVector encode_ip_configuration_query(std::uint32_t session_id);
Result<IpConfigurationInfo> parse_ip_configuration_info(Bytes information_buffer);
// The SessionId of a CONNECT or IP_CONFIGURATION query (the first u32).
Result<std::uint32_t> parse_session_id_query(Bytes information_buffer);

// ---- QMI over MBIM (anchors §4.5; real_mbim_qmi_over_mbim_traces.md) ---------------------------
//
// The InformationBuffer of a QMI-service CID 1 SET is one raw QMUX message, not padded:
//   u8 I/F type (0x01) | u16 Length (bytes after the I/F type) | u8 flags (0x00 host, 0x80 device)
//   | u8 service | u8 client id | SDU: CTL (service 0): u8 flags, u8 tid, u16 message, u16 TLV length;
//   other services: u8 flags, u16 tid, u16 message, u16 TLV length | TLVs {u8 type, u16 len, value}.
namespace qmi {

inline constexpr std::uint8_t kInterfaceType = 0x01;
inline constexpr std::uint8_t kQmuxFlagFromDevice = 0x80;
inline constexpr std::uint8_t kServiceCtl = 0x00;
inline constexpr std::uint8_t kServiceDms = 0x02;
inline constexpr std::uint8_t kSduFlagResponseCtl = 0x01;      // CTL response
inline constexpr std::uint8_t kSduFlagResponseService = 0x02;  // service response
inline constexpr std::uint16_t kCtlAllocateClientId = 0x0022;
inline constexpr std::uint16_t kDmsSetFccAuthentication = 0x555F;  // Sierra "FCC authentication"
inline constexpr std::uint8_t kTlvResult = 0x02;  // u16 result (0 success), u16 error
inline constexpr std::uint8_t kTlvAllocationInfo = 0x01;  // CTL allocate: request {service}, answer {service, client}

struct Message {
  std::uint8_t qmux_flags = 0;  // 0x00 host -> device, 0x80 device -> host
  std::uint8_t service = 0;
  std::uint8_t client_id = 0;
  std::uint8_t sdu_flags = 0;   // 0 request; kSduFlagResponse* for answers
  std::uint16_t transaction_id = 0;  // 8 bits for CTL
  std::uint16_t message_id = 0;
  Bytes tlvs;  // view into the decoded bytes
};
ByteVector encode(const Message& m);
Result<Message> parse(Bytes qmux);

struct Tlv {
  std::uint8_t type = 0;
  std::vector<std::uint8_t> value;
};
ByteVector encode_tlvs(const std::vector<Tlv>& tlvs);
// The value of TLV `type` in a TLV block; every TLV is bounds-checked (QmiTlvOverrun), a missing
// one is QmiMissingTlv.
Result<Bytes> find_tlv(Bytes tlvs, std::uint8_t type);

struct ResultTlv {
  std::uint16_t result = 0;  // 0 success, 1 failure
  std::uint16_t error = 0;
};
Result<ResultTlv> parse_result(Bytes tlvs);

// Host-side requests, byte-exact with the traces (T2.3 / T1).
ByteVector encode_ctl_allocate_client_id(std::uint8_t transaction_id, std::uint8_t service);
ByteVector encode_dms_set_fcc_authentication(std::uint8_t client_id, std::uint16_t transaction_id);

}  // namespace qmi

}  // namespace wwan::mbim
