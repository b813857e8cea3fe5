#include "control/mbim_wire.hpp"

#include <algorithm>

#include "datapath/ntb_wire.hpp"

namespace wwan::mbim {

using ntb::fits;
using ntb::load_le16;
using ntb::load_le32;

namespace {

void put_le16(ByteVector& b, std::uint16_t v) {
  b.push_back(static_cast<std::uint8_t>(v & 0xff));
  b.push_back(static_cast<std::uint8_t>(v >> 8));
}
void put_le32(ByteVector& b, std::uint32_t v) {
  for (int shift = 0; shift < 32; shift += 8) b.push_back(static_cast<std::uint8_t>((v >> shift) & 0xff));
}
void put_uuid(ByteVector& b, const Uuid& u) { b.insert(b.end(), u.bytes.begin(), u.bytes.end()); }
void set_le32(ByteVector& b, std::size_t off, std::uint32_t v) {
  ntb::store_le32(ntb::MutableBytes(b), off, v);
}
Uuid load_uuid(Bytes b, std::size_t off) {
  Uuid u;
  std::copy_n(b.begin() + static_cast<std::ptrdiff_t>(off), u.bytes.size(), u.bytes.begin());
  return u;
}

ByteVector header(MessageType type, std::size_t length, TransactionId tid) {
  ByteVector b;
  b.reserve(length);
  put_le32(b, static_cast<std::uint32_t>(type));
  put_le32(b, static_cast<std::uint32_t>(length));
  put_le32(b, tid);
  return b;
}

// Fragmentable message with a single fragment: header + {1, 0} + service + cid.
ByteVector fragmentable_start(MessageType type, std::size_t length, TransactionId tid, const Uuid& service,
                              std::uint32_t cid) {
  ByteVector b = header(type, length, tid);
  put_le32(b, 1);
  put_le32(b, 0);
  put_uuid(b, service);
  put_le32(b, cid);
  return b;
}

// The common part of COMMAND / COMMAND_DONE / INDICATE_STATUS: validate, require one whole
// fragment, and bound the InformationBuffer by MessageLength.
struct FragmentableBody {
  MessageHeader header;
  Uuid service;
  std::uint32_t cid = 0;
  std::uint32_t word = 0;  // CommandType / Status; unused for INDICATE_STATUS
  Bytes information_buffer;
};

Result<FragmentableBody> parse_fragmentable(Bytes message, MessageType type) {
  const auto h = validate(message);
  if (!h) return h.error();
  if (h->type != type) return WireError::UnexpectedMessageType;
  if (load_le32(message, 12) != 1) return WireError::Fragmented;  // validate() checked current < total
  FragmentableBody body;
  body.header = *h;
  body.service = load_uuid(message, 20);
  body.cid = load_le32(message, 36);
  std::size_t fixed = fixed_header_size(type);
  std::size_t length_field = 40;
  if (type != MessageType::IndicateStatus) {
    body.word = load_le32(message, 40);
    length_field = 44;
  }
  const std::uint64_t ibl = load_le32(message, length_field);
  if (!fits(h->message_length, fixed, ibl)) return WireError::InformationBufferOverrun;
  body.information_buffer = message.subspan(fixed, static_cast<std::size_t>(ibl));
  return body;
}

void pad4(ByteVector& b) {
  while (b.size() % 4 != 0) b.push_back(0);
}

}  // namespace

// ---- names ------------------------------------------------------------------------------------

const char* to_string(WireError e) {
  switch (e) {
    case WireError::Truncated: return "truncated";
    case WireError::MessageLengthTooShort: return "message_length_too_short";
    case WireError::UnexpectedMessageType: return "unexpected_message_type";
    case WireError::UnknownMessageType: return "unknown_message_type";
    case WireError::InformationBufferOverrun: return "information_buffer_overrun";
    case WireError::BadFragmentTotal: return "bad_fragment_total";
    case WireError::BadFragmentCurrent: return "bad_fragment_current";
    case WireError::Fragmented: return "fragmented";
    case WireError::FragmentOutOfSequence: return "fragment_out_of_sequence";
    case WireError::FragmentTransactionMismatch: return "fragment_transaction_mismatch";
    case WireError::FragmentTypeMismatch: return "fragment_type_mismatch";
    case WireError::FragmentTotalMismatch: return "fragment_total_mismatch";
    case WireError::TooManyFragments: return "too_many_fragments";
    case WireError::MessageTooLarge: return "message_too_large";
    case WireError::InformationBufferTooShort: return "information_buffer_too_short";
    case WireError::OffsetOutOfBounds: return "offset_out_of_bounds";
    case WireError::StringOddLength: return "string_odd_length";
    case WireError::QmuxBadInterfaceType: return "qmux_bad_interface_type";
    case WireError::QmuxBadLength: return "qmux_bad_length";
    case WireError::QmiTlvOverrun: return "qmi_tlv_overrun";
    case WireError::QmiMissingTlv: return "qmi_missing_tlv";
  }
  return "unknown";
}

bool is_known(MessageType t) {
  switch (t) {
    case MessageType::Open:
    case MessageType::Close:
    case MessageType::Command:
    case MessageType::HostError:
    case MessageType::OpenDone:
    case MessageType::CloseDone:
    case MessageType::CommandDone:
    case MessageType::FunctionError:
    case MessageType::IndicateStatus: return true;
  }
  return false;
}

const char* to_string(MessageType t) {
  switch (t) {
    case MessageType::Open: return "open";
    case MessageType::Close: return "close";
    case MessageType::Command: return "command";
    case MessageType::HostError: return "host_error";
    case MessageType::OpenDone: return "open_done";
    case MessageType::CloseDone: return "close_done";
    case MessageType::CommandDone: return "command_done";
    case MessageType::FunctionError: return "function_error";
    case MessageType::IndicateStatus: return "indicate_status";
  }
  return "unknown";
}

const char* to_string(Status s) {
  switch (s) {
    case Status::None: return "none";
    case Status::Busy: return "busy";
    case Status::Failure: return "failure";
    case Status::SimNotInserted: return "sim_not_inserted";
    case Status::BadSim: return "bad_sim";
    case Status::PinRequired: return "pin_required";
    case Status::PinDisabled: return "pin_disabled";
    case Status::NotRegistered: return "not_registered";
    case Status::ProvidersNotFound: return "providers_not_found";
    case Status::NoDeviceSupport: return "no_device_support";
    case Status::ProviderNotVisible: return "provider_not_visible";
    case Status::DataClassNotAvailable: return "data_class_not_available";
    case Status::PacketServiceDetached: return "packet_service_detached";
    case Status::MaxActivatedContexts: return "max_activated_contexts";
    case Status::NotInitialized: return "not_initialized";
    case Status::VoiceCallInProgress: return "voice_call_in_progress";
    case Status::ContextNotActivated: return "context_not_activated";
    case Status::ServiceNotActivated: return "service_not_activated";
    case Status::InvalidAccessString: return "invalid_access_string";
    case Status::InvalidUserNamePwd: return "invalid_user_name_pwd";
    case Status::RadioPowerOff: return "radio_power_off";
    case Status::InvalidParameters: return "invalid_parameters";
    case Status::ReadFailure: return "read_failure";
    case Status::WriteFailure: return "write_failure";
    case Status::OperationNotAllowed: return "operation_not_allowed";
    case Status::FilterNotSupported: return "filter_not_supported";
    case Status::DssInstanceLimit: return "dss_instance_limit";
    case Status::ContextNotSupported: return "context_not_supported";
  }
  return "unknown";
}

const char* to_string(ProtocolError e) {
  switch (e) {
    case ProtocolError::Invalid: return "invalid";
    case ProtocolError::TimeoutFragment: return "timeout_fragment";
    case ProtocolError::FragmentOutOfSequence: return "fragment_out_of_sequence";
    case ProtocolError::LengthMismatch: return "length_mismatch";
    case ProtocolError::DuplicatedTid: return "duplicated_tid";
    case ProtocolError::NotOpened: return "not_opened";
    case ProtocolError::Unknown: return "unknown";
    case ProtocolError::Cancel: return "cancel";
    case ProtocolError::MaxTransfer: return "max_transfer";
  }
  return "unknown";
}

// ---- header -------------------------------------------------------------------------------------

std::size_t fixed_header_size(MessageType t) {
  switch (t) {
    case MessageType::Open: return kOpenSize;
    case MessageType::Close: return kCloseSize;
    case MessageType::Command: return kCommandHeaderSize;
    case MessageType::CommandDone: return kCommandDoneHeaderSize;
    case MessageType::IndicateStatus: return kIndicateStatusHeaderSize;
    case MessageType::HostError:
    case MessageType::OpenDone:
    case MessageType::CloseDone:
    case MessageType::FunctionError: return kStatusMessageSize;
  }
  return kHeaderSize;
}

Result<MessageHeader> read_header(Bytes message) {
  if (message.size() < kHeaderSize) return WireError::Truncated;
  return MessageHeader{static_cast<MessageType>(load_le32(message, 0)), load_le32(message, 4),
                       load_le32(message, 8)};
}

Result<MessageHeader> validate(Bytes message) {
  const auto h = read_header(message);
  if (!h) return h;
  if (!is_known(h->type)) return WireError::UnknownMessageType;
  // The declared length is judged before the bytes present: a declared length below the fixed
  // header is invalid however many bytes follow (libmbim.md D8); a sane one not yet fully
  // received is incomplete (D7).
  if (h->message_length < fixed_header_size(h->type)) return WireError::MessageLengthTooShort;
  if (h->message_length > message.size()) return WireError::Truncated;
  if (is_fragmentable(h->type)) {
    const std::uint32_t total = load_le32(message, 12);
    const std::uint32_t current = load_le32(message, 16);
    if (total == 0) return WireError::BadFragmentTotal;
    if (current >= total) return WireError::BadFragmentCurrent;
  }
  return h;
}

// ---- encoders -----------------------------------------------------------------------------------

ByteVector encode_open(TransactionId tid, std::uint32_t max_control_transfer) {
  ByteVector b = header(MessageType::Open, kOpenSize, tid);
  put_le32(b, max_control_transfer);
  return b;
}

ByteVector encode_close(TransactionId tid) { return header(MessageType::Close, kCloseSize, tid); }

ByteVector encode_done(MessageType type, TransactionId tid, Status status) {
  ByteVector b = header(type, kStatusMessageSize, tid);
  put_le32(b, static_cast<std::uint32_t>(status));
  return b;
}

ByteVector encode_error(MessageType type, TransactionId tid, ProtocolError code) {
  ByteVector b = header(type, kStatusMessageSize, tid);
  put_le32(b, static_cast<std::uint32_t>(code));
  return b;
}

ByteVector encode_command(TransactionId tid, const Uuid& service, std::uint32_t cid, CommandType type,
                          Bytes information_buffer) {
  ByteVector b = fragmentable_start(MessageType::Command, kCommandHeaderSize + information_buffer.size(), tid,
                                    service, cid);
  put_le32(b, static_cast<std::uint32_t>(type));
  put_le32(b, static_cast<std::uint32_t>(information_buffer.size()));
  b.insert(b.end(), information_buffer.begin(), information_buffer.end());
  return b;
}

ByteVector encode_command_done(TransactionId tid, const Uuid& service, std::uint32_t cid, Status status,
                               Bytes information_buffer) {
  ByteVector b = fragmentable_start(MessageType::CommandDone, kCommandDoneHeaderSize + information_buffer.size(),
                                    tid, service, cid);
  put_le32(b, static_cast<std::uint32_t>(status));
  put_le32(b, static_cast<std::uint32_t>(information_buffer.size()));
  b.insert(b.end(), information_buffer.begin(), information_buffer.end());
  return b;
}

ByteVector encode_indicate_status(TransactionId tid, const Uuid& service, std::uint32_t cid,
                                  Bytes information_buffer) {
  ByteVector b = fragmentable_start(MessageType::IndicateStatus,
                                    kIndicateStatusHeaderSize + information_buffer.size(), tid, service, cid);
  put_le32(b, static_cast<std::uint32_t>(information_buffer.size()));
  b.insert(b.end(), information_buffer.begin(), information_buffer.end());
  return b;
}

// ---- decoders -----------------------------------------------------------------------------------

Result<OpenMessage> parse_open(Bytes message) {
  const auto h = validate(message);
  if (!h) return h.error();
  if (h->type != MessageType::Open) return WireError::UnexpectedMessageType;
  return OpenMessage{h->transaction_id, load_le32(message, 12)};
}

Result<CloseMessage> parse_close(Bytes message) {
  const auto h = validate(message);
  if (!h) return h.error();
  if (h->type != MessageType::Close) return WireError::UnexpectedMessageType;
  return CloseMessage{h->transaction_id};
}

Result<DoneMessage> parse_done(Bytes message) {
  const auto h = validate(message);
  if (!h) return h.error();
  if (h->type != MessageType::OpenDone && h->type != MessageType::CloseDone) return WireError::UnexpectedMessageType;
  return DoneMessage{h->type, h->transaction_id, static_cast<Status>(load_le32(message, 12))};
}

Result<ErrorMessage> parse_error(Bytes message) {
  const auto h = validate(message);
  if (!h) return h.error();
  if (h->type != MessageType::HostError && h->type != MessageType::FunctionError)
    return WireError::UnexpectedMessageType;
  return ErrorMessage{h->type, h->transaction_id, static_cast<ProtocolError>(load_le32(message, 12))};
}

Result<CommandMessage> parse_command(Bytes message) {
  const auto b = parse_fragmentable(message, MessageType::Command);
  if (!b) return b.error();
  return CommandMessage{b->header.transaction_id, b->service, b->cid, static_cast<CommandType>(b->word),
                        b->information_buffer};
}

Result<CommandDoneMessage> parse_command_done(Bytes message) {
  const auto b = parse_fragmentable(message, MessageType::CommandDone);
  if (!b) return b.error();
  return CommandDoneMessage{b->header.transaction_id, b->service, b->cid, static_cast<Status>(b->word),
                            b->information_buffer};
}

Result<IndicateStatusMessage> parse_indicate_status(Bytes message) {
  const auto b = parse_fragmentable(message, MessageType::IndicateStatus);
  if (!b) return b.error();
  return IndicateStatusMessage{b->header.transaction_id, b->service, b->cid, b->information_buffer};
}

// ---- fragments ----------------------------------------------------------------------------------

namespace {
constexpr std::size_t kFragmentPrefix = kHeaderSize + kFragmentHeaderSize;  // 20
}

Result<std::vector<ByteVector>> fragment(Bytes message, std::size_t max_fragment_bytes) {
  const auto h = validate(message);
  if (!h) return h.error();
  const Bytes whole = message.first(h->message_length);
  if (whole.size() <= max_fragment_bytes) return std::vector<ByteVector>{ByteVector(whole.begin(), whole.end())};
  if (!is_fragmentable(h->type) || max_fragment_bytes <= kFragmentPrefix) return WireError::MessageTooLarge;
  if (load_le32(whole, 12) != 1) return WireError::Fragmented;

  const Bytes payload = whole.subspan(kFragmentPrefix);
  const std::size_t chunk = max_fragment_bytes - kFragmentPrefix;
  const std::size_t count = (payload.size() + chunk - 1) / chunk;
  std::vector<ByteVector> out;
  out.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    const Bytes piece = payload.subspan(i * chunk, std::min(chunk, payload.size() - i * chunk));
    ByteVector f = header(h->type, kFragmentPrefix + piece.size(), h->transaction_id);
    put_le32(f, static_cast<std::uint32_t>(count));
    put_le32(f, static_cast<std::uint32_t>(i));
    f.insert(f.end(), piece.begin(), piece.end());
    out.push_back(std::move(f));
  }
  return out;
}

void Reassembler::reset() {
  buffer_.clear();
  complete_ = {};
  total_ = 0;
  expected_ = 0;
}

Result<Reassembler::State> Reassembler::feed(Bytes transfer) {
  complete_ = {};
  const auto h = read_header(transfer);
  if (!h) return h.error();
  if (!is_known(h->type)) return WireError::UnknownMessageType;
  if (!is_fragmentable(h->type)) {
    // Not part of any fragmented message: hand it over whole, leave a partial one alone.
    const auto v = validate(transfer);
    if (!v) return v.error();
    complete_ = transfer.first(v->message_length);
    return State::Complete;
  }
  // A fragment need only hold the 20-byte prefix: the fixed part of the type may straddle fragments.
  if (h->message_length < kFragmentPrefix) return WireError::MessageLengthTooShort;
  if (h->message_length > transfer.size()) return WireError::Truncated;
  const std::uint32_t total = load_le32(transfer, 12);
  const std::uint32_t current = load_le32(transfer, 16);
  if (total == 0) return WireError::BadFragmentTotal;
  if (current >= total) return WireError::BadFragmentCurrent;
  const Bytes payload = transfer.subspan(kFragmentPrefix, h->message_length - kFragmentPrefix);

  if (current == 0) {
    if (expected_ != 0) ++abandoned_;
    reset();
    if (total == 1) {
      const auto v = validate(transfer);  // the whole message: fixed header size and all
      if (!v) return v.error();
      complete_ = transfer.first(v->message_length);
      return State::Complete;
    }
    if (total > limits_.max_fragments) return WireError::TooManyFragments;
    first_ = *h;
    total_ = total;
    expected_ = 1;
    buffer_.assign(transfer.begin(), transfer.begin() + static_cast<std::ptrdiff_t>(h->message_length));
    if (buffer_.size() > limits_.max_message_bytes) { reset(); return WireError::MessageTooLarge; }
    return State::NeedMore;
  }

  // A continuation.
  const auto fail = [this](WireError e) { reset(); return Result<State>(e); };
  if (expected_ == 0 || current != expected_) return fail(WireError::FragmentOutOfSequence);
  if (h->type != first_.type) return fail(WireError::FragmentTypeMismatch);
  if (h->transaction_id != first_.transaction_id) return fail(WireError::FragmentTransactionMismatch);
  if (total != total_) return fail(WireError::FragmentTotalMismatch);
  if (!fits(limits_.max_message_bytes, buffer_.size(), payload.size())) return fail(WireError::MessageTooLarge);
  buffer_.insert(buffer_.end(), payload.begin(), payload.end());
  if (++expected_ < total_) return State::NeedMore;

  // Complete: rewrite the prefix so the result is one whole message (1 of 1), then judge it.
  set_le32(buffer_, 4, static_cast<std::uint32_t>(buffer_.size()));
  set_le32(buffer_, 12, 1);
  set_le32(buffer_, 16, 0);
  expected_ = 0;
  total_ = 0;
  const auto v = validate(buffer_);
  if (!v) { const WireError e = v.error(); reset(); return e; }
  complete_ = Bytes(buffer_);
  return State::Complete;
}

// ---- strings ------------------------------------------------------------------------------------

Result<std::string> decode_utf16le(Bytes bytes) {
  if (bytes.size() % 2 != 0) return WireError::StringOddLength;
  std::string out;
  out.reserve(bytes.size() / 2);
  const auto put = [&out](std::uint32_t cp) {
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  };
  const std::size_t units = bytes.size() / 2;
  for (std::size_t i = 0; i < units; ++i) {
    const std::uint32_t u = load_le16(bytes, 2 * i);
    if (u >= 0xD800 && u < 0xDC00 && i + 1 < units) {
      const std::uint32_t low = load_le16(bytes, 2 * (i + 1));
      if (low >= 0xDC00 && low < 0xE000) {
        put(0x10000 + ((u - 0xD800) << 10) + (low - 0xDC00));
        ++i;
        continue;
      }
    }
    put(u >= 0xD800 && u < 0xE000 ? 0xFFFD : u);
  }
  return out;
}

ByteVector encode_utf16le(std::string_view utf8) {
  ByteVector out;
  out.reserve(utf8.size() * 2);
  const auto unit = [&out](std::uint32_t u) { put_le16(out, static_cast<std::uint16_t>(u)); };
  for (std::size_t i = 0; i < utf8.size();) {
    const auto c = static_cast<std::uint8_t>(utf8[i]);
    std::uint32_t cp = 0xFFFD;
    std::size_t n = 1;
    if (c < 0x80) { cp = c; }
    else if ((c & 0xE0) == 0xC0) { n = 2; cp = c & 0x1Fu; }
    else if ((c & 0xF0) == 0xE0) { n = 3; cp = c & 0x0Fu; }
    else if ((c & 0xF8) == 0xF0) { n = 4; cp = c & 0x07u; }
    if (n > 1) {
      if (i + n > utf8.size()) { cp = 0xFFFD; n = utf8.size() - i; }
      else for (std::size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<std::uint8_t>(utf8[i + k]) & 0x3Fu);
    }
    i += n;
    if (cp >= 0x10000 && cp < 0x110000) {
      cp -= 0x10000;
      unit(0xD800 + (cp >> 10));
      unit(0xDC00 + (cp & 0x3FF));
    } else {
      unit(cp < 0x110000 ? cp : 0xFFFD);
    }
  }
  return out;
}

// ---- InfoReader / InfoWriter -----------------------------------------------------------------

Result<bool> InfoReader::require(std::size_t bytes) const {
  if (buffer_.size() < bytes) return WireError::InformationBufferTooShort;
  return true;
}

std::uint32_t InfoReader::u32(std::size_t offset) const {
  return fits(buffer_.size(), offset, 4) ? load_le32(buffer_, offset) : 0;
}

std::uint64_t InfoReader::u64(std::size_t offset) const {
  if (!fits(buffer_.size(), offset, 8)) return 0;
  return load_le32(buffer_, offset) | (static_cast<std::uint64_t>(load_le32(buffer_, offset + 4)) << 32);
}

Uuid InfoReader::uuid(std::size_t offset) const {
  return fits(buffer_.size(), offset, 16) ? load_uuid(buffer_, offset) : Uuid{};
}

Result<Bytes> InfoReader::ol_bytes(std::size_t ol_offset) const {
  if (!fits(buffer_.size(), ol_offset, 8)) return WireError::InformationBufferTooShort;
  const std::uint64_t offset = load_le32(buffer_, ol_offset);
  const std::uint64_t size = load_le32(buffer_, ol_offset + 4);
  if (size == 0) return Bytes{};
  if (!fits(buffer_.size(), offset, size)) return WireError::OffsetOutOfBounds;
  return buffer_.subspan(static_cast<std::size_t>(offset), static_cast<std::size_t>(size));
}

Result<std::string> InfoReader::ol_string(std::size_t ol_offset) const {
  const auto b = ol_bytes(ol_offset);
  if (!b) return b.error();
  return decode_utf16le(*b);
}

Result<Bytes> InfoReader::array(std::size_t offset_field, std::uint64_t count, std::uint64_t element_bytes) const {
  if (!fits(buffer_.size(), offset_field, 4)) return WireError::InformationBufferTooShort;
  if (count == 0) return Bytes{};
  const std::uint64_t offset = load_le32(buffer_, offset_field);
  // count and element_bytes are < 2^32 each: the product cannot wrap 64 bits.
  const std::uint64_t bytes = count * element_bytes;
  if (!fits(buffer_.size(), offset, bytes)) return WireError::OffsetOutOfBounds;
  return buffer_.subspan(static_cast<std::size_t>(offset), static_cast<std::size_t>(bytes));
}

void InfoWriter::u32(std::size_t offset, std::uint32_t value) { set_le32(buffer_, offset, value); }

void InfoWriter::u64(std::size_t offset, std::uint64_t value) {
  set_le32(buffer_, offset, static_cast<std::uint32_t>(value & 0xFFFFFFFFu));
  set_le32(buffer_, offset + 4, static_cast<std::uint32_t>(value >> 32));
}

void InfoWriter::uuid(std::size_t offset, const Uuid& value) {
  std::copy(value.bytes.begin(), value.bytes.end(), buffer_.begin() + static_cast<std::ptrdiff_t>(offset));
}

std::uint32_t InfoWriter::append(Bytes data) {
  pad4(buffer_);
  const auto at = static_cast<std::uint32_t>(buffer_.size());
  buffer_.insert(buffer_.end(), data.begin(), data.end());
  pad4(buffer_);
  return at;
}

void InfoWriter::ol_bytes(std::size_t ol_offset, Bytes data) {
  if (data.empty()) {
    u32(ol_offset, 0);
    u32(ol_offset + 4, 0);
    return;
  }
  u32(ol_offset, append(data));
  u32(ol_offset + 4, static_cast<std::uint32_t>(data.size()));
}

void InfoWriter::ol_string(std::size_t ol_offset, std::string_view utf8) {
  ol_bytes(ol_offset, encode_utf16le(utf8));
}

// ---- UUID text ----------------------------------------------------------------------------------

std::optional<Uuid> parse_uuid(std::string_view text) {
  if (text.size() != 36) return std::nullopt;
  Uuid u;
  std::size_t n = 0;
  const auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < text.size();) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (text[i] != '-') return std::nullopt;
      ++i;
      continue;
    }
    const int hi = nibble(text[i]), lo = nibble(text[i + 1]);
    if (hi < 0 || lo < 0 || n >= 16) return std::nullopt;
    u.bytes[n++] = static_cast<std::uint8_t>(hi * 16 + lo);
    i += 2;
  }
  if (n != 16) return std::nullopt;
  return u;
}

std::string to_string(const Uuid& uuid) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < uuid.bytes.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s.push_back('-');
    s.push_back(kHex[uuid.bytes[i] >> 4]);
    s.push_back(kHex[uuid.bytes[i] & 0xF]);
  }
  return s;
}

// ---- BASIC_CONNECT payloads ---------------------------------------------------------------------

// Every decoder: require() the fixed part, then read fixed fields, then follow {offset, size}
// pairs through InfoReader, which bounds each one. Offsets are relative to the InformationBuffer.

ByteVector encode(const DeviceCapsInfo& v) {
  InfoWriter w(64);
  w.u32(0, v.device_type);
  w.u32(4, v.cellular_class);
  w.u32(8, v.voice_class);
  w.u32(12, v.sim_class);
  w.u32(16, v.data_class);
  w.u32(20, v.sms_caps);
  w.u32(24, v.control_caps);
  w.u32(28, v.max_sessions);
  w.ol_string(32, v.custom_data_class);
  w.ol_string(40, v.device_id);
  w.ol_string(48, v.firmware_info);
  w.ol_string(56, v.hardware_info);
  return w.take();
}

Result<DeviceCapsInfo> parse_device_caps_info(Bytes information_buffer) {
  const InfoReader r(information_buffer);
  if (const auto ok = r.require(64); !ok) return ok.error();
  DeviceCapsInfo v;
  v.device_type = r.u32(0);
  v.cellular_class = r.u32(4);
  v.voice_class = r.u32(8);
  v.sim_class = r.u32(12);
  v.data_class = r.u32(16);
  v.sms_caps = r.u32(20);
  v.control_caps = r.u32(24);
  v.max_sessions = r.u32(28);
  std::string* const strings[] = {&v.custom_data_class, &v.device_id, &v.firmware_info, &v.hardware_info};
  for (std::size_t i = 0; i < 4; ++i) {
    auto s = r.ol_string(32 + 8 * i);
    if (!s) return s.error();
    *strings[i] = std::move(s).value();
  }
  return v;
}

ByteVector encode(const SubscriberReadyStatusInfo& v) {
  const std::size_t numbers = v.telephone_numbers.size();
  InfoWriter w(28 + 8 * numbers);
  w.u32(0, static_cast<std::uint32_t>(v.ready_state));
  w.ol_string(4, v.subscriber_id);
  w.ol_string(12, v.sim_icc_id);
  w.u32(20, v.ready_info);
  w.u32(24, static_cast<std::uint32_t>(numbers));
  for (std::size_t i = 0; i < numbers; ++i) w.ol_string(28 + 8 * i, v.telephone_numbers[i]);
  return w.take();
}

Result<SubscriberReadyStatusInfo> parse_subscriber_ready_status_info(Bytes information_buffer) {
  const InfoReader r(information_buffer);
  if (const auto ok = r.require(28); !ok) return ok.error();
  SubscriberReadyStatusInfo v;
  v.ready_state = static_cast<ReadyState>(r.u32(0));
  auto imsi = r.ol_string(4);
  if (!imsi) return imsi.error();
  auto iccid = r.ol_string(12);
  if (!iccid) return iccid.error();
  v.subscriber_id = std::move(imsi).value();
  v.sim_icc_id = std::move(iccid).value();
  v.ready_info = r.u32(20);
  const std::uint64_t count = r.u32(24);
  // The OL pairs follow the fixed part: check the whole table before the loop (count is untrusted).
  if (!fits(information_buffer.size(), 28, count * 8)) return WireError::OffsetOutOfBounds;
  for (std::uint64_t i = 0; i < count; ++i) {
    auto s = r.ol_string(static_cast<std::size_t>(28 + 8 * i));
    if (!s) return s.error();
    v.telephone_numbers.push_back(std::move(s).value());
  }
  return v;
}

ByteVector encode_radio_state_set(RadioState state) {
  InfoWriter w(4);
  w.u32(0, static_cast<std::uint32_t>(state));
  return w.take();
}

Result<RadioState> parse_radio_state_set(Bytes information_buffer) {
  const InfoReader r(information_buffer);
  if (const auto ok = r.require(4); !ok) return ok.error();
  return static_cast<RadioState>(r.u32(0));
}

ByteVector encode(const RadioStateInfo& v) {
  InfoWriter w(8);
  w.u32(0, static_cast<std::uint32_t>(v.hw_radio_state));
  w.u32(4, static_cast<std::uint32_t>(v.sw_radio_state));
  return w.take();
}

Result<RadioStateInfo> parse_radio_state_info(Bytes information_buffer) {
  const InfoReader r(information_buffer);
  if (const auto ok = r.require(8); !ok) return ok.error();
  return RadioStateInfo{static_cast<RadioState>(r.u32(0)), static_cast<RadioState>(r.u32(4))};
}

ByteVector encode(const PinSet& v) {
  InfoWriter w(24);
  w.u32(0, v.pin_type);
  w.u32(4, v.pin_operation);
  w.ol_string(8, v.pin);
  w.ol_string(16, v.new_pin);
  return w.take();
}

Result<PinSet> parse_pin_set(Bytes information_buffer) {
  const InfoReader r(information_buffer);
  if (const auto ok = r.require(24); !ok) return ok.error();
  PinSet v;
  v.pin_type = r.u32(0);
  v.pin_operation = r.u32(4);
  auto pin = r.ol_string(8);
  if (!pin) return pin.error();
  auto new_pin = r.ol_string(16);
  if (!new_pin) return new_pin.error();
  v.pin = std::move(pin).value();
  v.new_pin = std::move(new_pin).value();
  return v;
}

ByteVector encode(const PinInfo& v) {
  InfoWriter w(12);
  w.u32(0, v.pin_type);
  w.u32(4, v.pin_state);
  w.u32(8, v.remaining_attempts);
  return w.take();
}

Result<PinInfo> parse_pin_info(Bytes information_buffer) {
  const InfoReader r(information_buffer);
  if (const auto ok = r.require(12); !ok) return ok.error();
  return PinInfo{r.u32(0), r.u32(4), r.u32(8)};
}

ByteVector encode(const RegistrationStateInfo& v) {
  InfoWriter w(48);
  w.u32(0, v.nw_error);
  w.u32(4, static_cast<std::uint32_t>(v.register_state));
  w.u32(8, v.register_mode);
  w.u32(12, v.available_data_classes);
  w.u32(16, v.current_cellular_class);
  w.ol_string(20, v.provider_id);
  w.ol_string(28, v.provider_name);
  w.ol_string(36, v.roaming_text);
  w.u32(44, v.registration_flag);
  return w.take();
}

Result<RegistrationStateInfo> parse_registration_state_info(Bytes information_buffer) {
  const InfoReader r(information_buffer);
  if (const auto ok = r.require(48); !ok) return ok.error();
  RegistrationStateInfo v;
  v.nw_error = r.u32(0);
  v.register_state = static_cast<RegisterState>(r.u32(4));
  v.register_mode = r.u32(8);
  v.available_data_classes = r.u32(12);
  v.current_cellular_class = r.u32(16);
  std::string* const strings[] = {&v.provider_id, &v.provider_name, &v.roaming_text};
  for (std::size_t i = 0; i < 3; ++i) {
    auto s = r.ol_string(20 + 8 * i);
    if (!s) return s.error();
    *strings[i] = std::move(s).value();
  }
  v.registration_flag = r.u32(44);
  return v;
}

ByteVector encode_packet_service_set(PacketServiceAction action) {
  InfoWriter w(4);
  w.u32(0, static_cast<std::uint32_t>(action));
  return w.take();
}

Result<PacketServiceAction> parse_packet_service_set(Bytes information_buffer) {
  const InfoReader r(information_buffer);
  if (const auto ok = r.require(4); !ok) return ok.error();
  return static_cast<PacketServiceAction>(r.u32(0));
}

ByteVector encode(const PacketServiceInfo& v) {
  InfoWriter w(28);
  w.u32(0, v.nw_error);
  w.u32(4, static_cast<std::uint32_t>(v.packet_service_state));
  w.u32(8, v.highest_available_data_class);
  w.u64(12, v.uplink_speed_bits_per_s);
  w.u64(20, v.downlink_speed_bits_per_s);
  return w.take();
}

Result<PacketServiceInfo> parse_packet_service_info(Bytes information_buffer) {
  const InfoReader r(information_buffer);
  if (const auto ok = r.require(28); !ok) return ok.error();
  return PacketServiceInfo{r.u32(0), static_cast<PacketServiceState>(r.u32(4)), r.u32(8), r.u64(12), r.u64(20)};
}

ByteVector encode(const ConnectSet& v) {
  InfoWriter w(60);
  w.u32(0, v.session_id);
  w.u32(4, static_cast<std::uint32_t>(v.activation_command));
  w.ol_string(8, v.access_string);
  w.ol_string(16, v.user_name);
  w.ol_string(24, v.password);
  w.u32(32, v.compression);
  w.u32(36, static_cast<std::uint32_t>(v.auth_protocol));
  w.u32(40, static_cast<std::uint32_t>(v.ip_type));
  w.uuid(44, v.context_type);
  return w.take();
}

Result<ConnectSet> parse_connect_set(Bytes information_buffer) {
  const InfoReader r(information_buffer);
  if (const auto ok = r.require(60); !ok) return ok.error();
  ConnectSet v;
  v.session_id = r.u32(0);
  v.activation_command = static_cast<ActivationCommand>(r.u32(4));
  std::string* const strings[] = {&v.access_string, &v.user_name, &v.password};
  for (std::size_t i = 0; i < 3; ++i) {
    auto s = r.ol_string(8 + 8 * i);
    if (!s) return s.error();
    *strings[i] = std::move(s).value();
  }
  v.compression = r.u32(32);
  v.auth_protocol = static_cast<AuthProtocol>(r.u32(36));
  v.ip_type = static_cast<IpType>(r.u32(40));
  v.context_type = r.uuid(44);
  return v;
}

ByteVector encode(const ConnectInfo& v) {
  InfoWriter w(36);
  w.u32(0, v.session_id);
  w.u32(4, static_cast<std::uint32_t>(v.activation_state));
  w.u32(8, v.voice_call_state);
  w.u32(12, static_cast<std::uint32_t>(v.ip_type));
  w.uuid(16, v.context_type);
  w.u32(32, v.nw_error);
  return w.take();
}

Result<ConnectInfo> parse_connect_info(Bytes information_buffer) {
  const InfoReader r(information_buffer);
  if (const auto ok = r.require(36); !ok) return ok.error();
  return ConnectInfo{r.u32(0),
                     static_cast<ActivationState>(r.u32(4)),
                     r.u32(8),
                     static_cast<IpType>(r.u32(12)),
                     r.uuid(16),
                     r.u32(32)};
}

// MBIM_IP_CONFIGURATION_INFO fixed part (libmbim.md A4/A5):
//   0 SessionId  4 IPv4ConfigurationAvailable  8 IPv6ConfigurationAvailable
//  12 IPv4AddressCount 16 IPv4AddressOffset  20 IPv6AddressCount 24 IPv6AddressOffset
//  28 IPv4GatewayOffset 32 IPv6GatewayOffset  36 IPv4DnsServerCount 40 IPv4DnsServerOffset
//  44 IPv6DnsServerCount 48 IPv6DnsServerOffset  52 IPv4Mtu 56 IPv6Mtu
// Elements: IPv4 {u32 OnLinkPrefixLength, 4 bytes}, IPv6 {u32, 16 bytes}; DNS servers and
// gateways are bare addresses.
ByteVector encode(const IpConfigurationInfo& v) {
  InfoWriter w(60);
  w.u32(0, v.session_id);
  w.u32(4, v.ipv4_configuration_available);
  w.u32(8, v.ipv6_configuration_available);
  const auto put_array = [&w](std::size_t count_field, std::size_t offset_field, const ByteVector& bytes,
                              std::size_t count) {
    w.u32(count_field, static_cast<std::uint32_t>(count));
    w.u32(offset_field, count == 0 ? 0 : w.append(bytes));
  };
  ByteVector v4, v6, v4dns, v6dns;
  for (const auto& e : v.ipv4_addresses) {
    put_le32(v4, e.on_link_prefix_length);
    v4.insert(v4.end(), e.address.bytes.begin(), e.address.bytes.end());
  }
  for (const auto& e : v.ipv6_addresses) {
    put_le32(v6, e.on_link_prefix_length);
    v6.insert(v6.end(), e.address.bytes.begin(), e.address.bytes.end());
  }
  for (const auto& a : v.ipv4_dns_servers) v4dns.insert(v4dns.end(), a.bytes.begin(), a.bytes.end());
  for (const auto& a : v.ipv6_dns_servers) v6dns.insert(v6dns.end(), a.bytes.begin(), a.bytes.end());
  // Same order as the real answers (A4/A5): addresses, gateway, DNS.
  put_array(12, 16, v4, v.ipv4_addresses.size());
  w.u32(28, v.ipv4_gateway ? w.append(v.ipv4_gateway->bytes) : 0);
  put_array(36, 40, v4dns, v.ipv4_dns_servers.size());
  put_array(20, 24, v6, v.ipv6_addresses.size());
  w.u32(32, v.ipv6_gateway ? w.append(v.ipv6_gateway->bytes) : 0);
  put_array(44, 48, v6dns, v.ipv6_dns_servers.size());
  w.u32(52, v.ipv4_mtu);
  w.u32(56, v.ipv6_mtu);
  return w.take();
}

ByteVector encode_ip_configuration_query(std::uint32_t session_id) {
  IpConfigurationInfo q;
  q.session_id = session_id;
  return encode(q);
}

Result<IpConfigurationInfo> parse_ip_configuration_info(Bytes information_buffer) {
  const InfoReader r(information_buffer);
  if (const auto ok = r.require(60); !ok) return ok.error();
  IpConfigurationInfo v;
  v.session_id = r.u32(0);
  v.ipv4_configuration_available = r.u32(4);
  v.ipv6_configuration_available = r.u32(8);
  const auto v4 = r.array(16, r.u32(12), 8);
  if (!v4) return v4.error();
  for (std::size_t at = 0; at < v4->size(); at += 8)
    v.ipv4_addresses.push_back({load_le32(*v4, at), eth::Ipv4Address::load(*v4, at + 4)});
  const auto v6 = r.array(24, r.u32(20), 20);
  if (!v6) return v6.error();
  for (std::size_t at = 0; at < v6->size(); at += 20)
    v.ipv6_addresses.push_back({load_le32(*v6, at), eth::Ipv6Address::load(*v6, at + 4)});
  if (r.u32(28) != 0) {
    const auto gw = r.array(28, 1, 4);
    if (!gw) return gw.error();
    v.ipv4_gateway = eth::Ipv4Address::load(*gw, 0);
  }
  if (r.u32(32) != 0) {
    const auto gw = r.array(32, 1, 16);
    if (!gw) return gw.error();
    v.ipv6_gateway = eth::Ipv6Address::load(*gw, 0);
  }
  const auto d4 = r.array(40, r.u32(36), 4);
  if (!d4) return d4.error();
  for (std::size_t at = 0; at < d4->size(); at += 4) v.ipv4_dns_servers.push_back(eth::Ipv4Address::load(*d4, at));
  const auto d6 = r.array(48, r.u32(44), 16);
  if (!d6) return d6.error();
  for (std::size_t at = 0; at < d6->size(); at += 16) v.ipv6_dns_servers.push_back(eth::Ipv6Address::load(*d6, at));
  v.ipv4_mtu = r.u32(52);
  v.ipv6_mtu = r.u32(56);
  return v;
}

Result<std::uint32_t> parse_session_id_query(Bytes information_buffer) {
  const InfoReader r(information_buffer);
  if (const auto ok = r.require(4); !ok) return ok.error();
  return r.u32(0);
}

// ---- QMUX -------------------------------------------------------------------------------------

namespace qmi {
namespace {
constexpr std::size_t kQmuxHeaderSize = 6;  // I/F type, u16 length, flags, service, client
std::size_t sdu_header_size(std::uint8_t service) { return service == kServiceCtl ? 6 : 7; }
}  // namespace

ByteVector encode(const Message& m) {
  const std::size_t sdu = sdu_header_size(m.service);
  ByteVector b;
  b.reserve(kQmuxHeaderSize + sdu + m.tlvs.size());
  b.push_back(kInterfaceType);
  put_le16(b, static_cast<std::uint16_t>(kQmuxHeaderSize - 1 + sdu + m.tlvs.size()));
  b.insert(b.end(), {m.qmux_flags, m.service, m.client_id, m.sdu_flags});
  if (m.service == kServiceCtl) b.push_back(static_cast<std::uint8_t>(m.transaction_id));
  else put_le16(b, m.transaction_id);
  put_le16(b, m.message_id);
  put_le16(b, static_cast<std::uint16_t>(m.tlvs.size()));
  b.insert(b.end(), m.tlvs.begin(), m.tlvs.end());
  return b;
}

Result<Message> parse(Bytes qmux) {
  if (qmux.size() < kQmuxHeaderSize) return WireError::Truncated;
  if (qmux[0] != kInterfaceType) return WireError::QmuxBadInterfaceType;
  // Length counts the bytes after the I/F type byte; the MBIM buffer must carry exactly those.
  const std::uint64_t length = load_le16(qmux, 1);
  if (length + 1 != qmux.size()) return WireError::QmuxBadLength;
  Message m;
  m.qmux_flags = qmux[3];
  m.service = qmux[4];
  m.client_id = qmux[5];
  const std::size_t sdu = sdu_header_size(m.service);
  if (!fits(qmux.size(), kQmuxHeaderSize, sdu)) return WireError::Truncated;
  std::size_t at = kQmuxHeaderSize;
  m.sdu_flags = qmux[at++];
  if (m.service == kServiceCtl) { m.transaction_id = qmux[at++]; }
  else { m.transaction_id = load_le16(qmux, at); at += 2; }
  m.message_id = load_le16(qmux, at);
  const std::uint64_t tlv_length = load_le16(qmux, at + 2);
  at += 4;
  if (!fits(qmux.size(), at, tlv_length)) return WireError::QmiTlvOverrun;
  m.tlvs = qmux.subspan(at, static_cast<std::size_t>(tlv_length));
  return m;
}

ByteVector encode_tlvs(const std::vector<Tlv>& tlvs) {
  ByteVector b;
  for (const Tlv& t : tlvs) {
    b.push_back(t.type);
    put_le16(b, static_cast<std::uint16_t>(t.value.size()));
    b.insert(b.end(), t.value.begin(), t.value.end());
  }
  return b;
}

Result<Bytes> find_tlv(Bytes tlvs, std::uint8_t type) {
  std::optional<Bytes> found;
  for (std::uint64_t at = 0; at < tlvs.size();) {
    if (!fits(tlvs.size(), at, 3)) return WireError::QmiTlvOverrun;
    const auto o = static_cast<std::size_t>(at);
    const std::uint64_t length = load_le16(tlvs, o + 1);
    if (!fits(tlvs.size(), at + 3, length)) return WireError::QmiTlvOverrun;
    if (tlvs[o] == type && !found) found = tlvs.subspan(o + 3, static_cast<std::size_t>(length));
    at += 3 + length;
  }
  if (!found) return WireError::QmiMissingTlv;
  return *found;
}

Result<ResultTlv> parse_result(Bytes tlvs) {
  const auto v = find_tlv(tlvs, kTlvResult);
  if (!v) return v.error();
  if (v->size() < 4) return WireError::QmiTlvOverrun;
  return ResultTlv{load_le16(*v, 0), load_le16(*v, 2)};
}

ByteVector encode_ctl_allocate_client_id(std::uint8_t transaction_id, std::uint8_t service) {
  const ByteVector tlvs = encode_tlvs({{kTlvAllocationInfo, {service}}});
  return encode(Message{0x00, kServiceCtl, 0, 0x00, transaction_id, kCtlAllocateClientId, tlvs});
}

ByteVector encode_dms_set_fcc_authentication(std::uint8_t client_id, std::uint16_t transaction_id) {
  return encode(Message{0x00, kServiceDms, client_id, 0x00, transaction_id, kDmsSetFccAuthentication, {}});
}

}  // namespace qmi

}  // namespace wwan::mbim
