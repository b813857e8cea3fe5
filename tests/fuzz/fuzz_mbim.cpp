// libFuzzer target: the MBIM codec (control/mbim_wire.hpp) on arbitrary control transfers.
//
// Input layout: 4 bytes of settings, then records {u16 LE length, that many bytes} (a last record
// that claims more than is left takes what is left). Each record is one control transfer.
//   [0]     Reassembler max_fragments (0: the default)
//   [1..2]  Reassembler max_message_bytes, LE (0: the default)
//   [3]     fragment() piece size for the split/reassemble round trip: 21 + 4 * [3]
// The seeds in corpus/mbim are the golden messages of tests/control/mbim_wire_test.cpp in that
// layout.
//
// Every record is:
//  1. parsed by every whole-message decoder: what validate() accepts has a known type and a
//     MessageLength within the transfer and not below the type's fixed header; at most one decoder
//     accepts it, and every non-fragmentable message that validates is accepted by one; an
//     InformationBuffer lies inside [fixed header, MessageLength); a decoded message re-encodes to
//     bytes that decode to the same struct (and to the very bytes, when nothing trails the buffer);
//  2. split with fragment() and fed through a fresh Reassembler, which must give back the message;
//  3. fed to one long-lived Reassembler whose limits come from the input. A shadow model of what it
//     holds checks that a partial message never exceeds max_message_bytes or max_fragments, that a
//     reassembled message is exactly the fragments' concatenation, and that a message handed over
//     is a whole, valid one;
//  4. read as an InformationBuffer by every BASIC_CONNECT payload decoder (as is the buffer of a
//     decoded command / answer / indication): decoded strings are well-formed UTF-8 and a decoded
//     payload re-encodes to bytes that decode to an equal struct; InfoReader views lie inside the
//     buffer; UTF-16 decoding matches a reference decoder;
//  5. parsed as a QMUX message (and so is a decoded InformationBuffer): the TLV view lies inside the
//     message, the message re-encodes, and find_tlv judges the TLV block the same for every type.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "tests/fuzz/fuzz_check.hpp"

#include "control/mbim_wire.hpp"
#include "datapath/ntb_wire.hpp"

namespace {

using namespace wwan::mbim;
using wwan::ntb::load_le16;
using wwan::ntb::load_le32;

// ---- helpers ---------------------------------------------------------------------------------

// `inner` lies inside `outer` (an empty view anywhere is fine: it reads nothing).
bool within(Bytes outer, Bytes inner) {
  if (inner.empty()) return true;
  const auto o = reinterpret_cast<std::uintptr_t>(outer.data());
  const auto i = reinterpret_cast<std::uintptr_t>(inner.data());
  return i >= o && i - o <= outer.size() && inner.size() <= outer.size() - (i - o);
}

bool same(Bytes a, Bytes b) { return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin()); }

// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF.
bool valid_utf8(const std::string& s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<std::uint8_t>(s[i]);
    std::size_t n = 0;
    std::uint32_t cp = 0, min = 0;
    if (c < 0x80) { ++i; continue; }
    if ((c & 0xE0) == 0xC0) { n = 2; cp = c & 0x1Fu; min = 0x80; }
    else if ((c & 0xF0) == 0xE0) { n = 3; cp = c & 0x0Fu; min = 0x800; }
    else if ((c & 0xF8) == 0xF0) { n = 4; cp = c & 0x07u; min = 0x10000; }
    else return false;
    if (i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k) {
      const auto t = static_cast<std::uint8_t>(s[i + k]);
      if ((t & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (t & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000)) return false;
    i += n;
  }
  return true;
}

// The UTF-16LE units decode_utf16le + encode_utf16le must give back: the input's, with each
// unpaired surrogate replaced by U+FFFD.
ByteVector expected_utf16_round_trip(Bytes b) {
  ByteVector out;
  const std::size_t units = b.size() / 2;
  const auto put = [&out](std::uint32_t u) {
    out.push_back(static_cast<std::uint8_t>(u & 0xFF));
    out.push_back(static_cast<std::uint8_t>(u >> 8));
  };
  for (std::size_t i = 0; i < units; ++i) {
    const std::uint32_t u = load_le16(b, 2 * i);
    if (u >= 0xD800 && u < 0xDC00 && i + 1 < units) {
      const std::uint32_t low = load_le16(b, 2 * i + 2);
      if (low >= 0xDC00 && low < 0xE000) {
        put(u);
        put(low);
        ++i;
        continue;
      }
    }
    put(u >= 0xD800 && u < 0xE000 ? 0xFFFD : u);
  }
  return out;
}

void check_utf16(Bytes b) {
  const auto d = decode_utf16le(b);
  FUZZ_CHECK(d.ok() == (b.size() % 2 == 0));
  if (!d) {
    FUZZ_CHECK(d.error() == WireError::StringOddLength);
  } else {
    FUZZ_CHECK(valid_utf8(*d));
    const ByteVector e = encode_utf16le(*d);
    FUZZ_CHECK(e == expected_utf16_round_trip(b));
    const auto again = decode_utf16le(e);
    FUZZ_CHECK(again.ok() && *again == *d);
  }
  // The encoder on arbitrary bytes (not necessarily UTF-8): whole units, and for valid UTF-8 an
  // exact round trip.
  const std::string text(reinterpret_cast<const char*>(b.data()), b.size());
  const ByteVector e = encode_utf16le(text);
  FUZZ_CHECK(e.size() % 2 == 0);
  const auto d2 = decode_utf16le(e);
  FUZZ_CHECK(d2.ok() && valid_utf8(*d2));
  if (valid_utf8(text)) FUZZ_CHECK(*d2 == text);
}

// ---- payload decoders -------------------------------------------------------------------------

bool eq(const DeviceCapsInfo& a, const DeviceCapsInfo& b) {
  return a.device_type == b.device_type && a.cellular_class == b.cellular_class && a.voice_class == b.voice_class &&
         a.sim_class == b.sim_class && a.data_class == b.data_class && a.sms_caps == b.sms_caps &&
         a.control_caps == b.control_caps && a.max_sessions == b.max_sessions &&
         a.custom_data_class == b.custom_data_class && a.device_id == b.device_id &&
         a.firmware_info == b.firmware_info && a.hardware_info == b.hardware_info;
}
bool eq(const SubscriberReadyStatusInfo& a, const SubscriberReadyStatusInfo& b) {
  return a.ready_state == b.ready_state && a.subscriber_id == b.subscriber_id && a.sim_icc_id == b.sim_icc_id &&
         a.ready_info == b.ready_info && a.telephone_numbers == b.telephone_numbers;
}
bool eq(const RadioStateInfo& a, const RadioStateInfo& b) {
  return a.hw_radio_state == b.hw_radio_state && a.sw_radio_state == b.sw_radio_state;
}
bool eq(const PinSet& a, const PinSet& b) {
  return a.pin_type == b.pin_type && a.pin_operation == b.pin_operation && a.pin == b.pin && a.new_pin == b.new_pin;
}
bool eq(const PinInfo& a, const PinInfo& b) {
  return a.pin_type == b.pin_type && a.pin_state == b.pin_state && a.remaining_attempts == b.remaining_attempts;
}
bool eq(const RegistrationStateInfo& a, const RegistrationStateInfo& b) {
  return a.nw_error == b.nw_error && a.register_state == b.register_state && a.register_mode == b.register_mode &&
         a.available_data_classes == b.available_data_classes &&
         a.current_cellular_class == b.current_cellular_class && a.provider_id == b.provider_id &&
         a.provider_name == b.provider_name && a.roaming_text == b.roaming_text &&
         a.registration_flag == b.registration_flag;
}
bool eq(const PacketServiceInfo& a, const PacketServiceInfo& b) {
  return a.nw_error == b.nw_error && a.packet_service_state == b.packet_service_state &&
         a.highest_available_data_class == b.highest_available_data_class &&
         a.uplink_speed_bits_per_s == b.uplink_speed_bits_per_s &&
         a.downlink_speed_bits_per_s == b.downlink_speed_bits_per_s;
}
bool eq(const ConnectSet& a, const ConnectSet& b) {
  return a.session_id == b.session_id && a.activation_command == b.activation_command &&
         a.access_string == b.access_string && a.user_name == b.user_name && a.password == b.password &&
         a.compression == b.compression && a.auth_protocol == b.auth_protocol && a.ip_type == b.ip_type &&
         a.context_type == b.context_type;
}
bool eq(const ConnectInfo& a, const ConnectInfo& b) {
  return a.session_id == b.session_id && a.activation_state == b.activation_state &&
         a.voice_call_state == b.voice_call_state && a.ip_type == b.ip_type && a.context_type == b.context_type &&
         a.nw_error == b.nw_error;
}
bool eq(const IpConfigurationInfo& a, const IpConfigurationInfo& b) {
  return a.session_id == b.session_id && a.ipv4_configuration_available == b.ipv4_configuration_available &&
         a.ipv6_configuration_available == b.ipv6_configuration_available &&
         a.ipv4_addresses == b.ipv4_addresses && a.ipv6_addresses == b.ipv6_addresses &&
         a.ipv4_gateway == b.ipv4_gateway && a.ipv6_gateway == b.ipv6_gateway &&
         a.ipv4_dns_servers == b.ipv4_dns_servers && a.ipv6_dns_servers == b.ipv6_dns_servers &&
         a.ipv4_mtu == b.ipv4_mtu && a.ipv6_mtu == b.ipv6_mtu;
}

void strings_ok(std::initializer_list<const std::string*> strings) {
  for (const std::string* s : strings) FUZZ_CHECK(valid_utf8(*s));
}
void strings_of(const DeviceCapsInfo& v) {
  strings_ok({&v.custom_data_class, &v.device_id, &v.firmware_info, &v.hardware_info});
}
void strings_of(const SubscriberReadyStatusInfo& v) {
  strings_ok({&v.subscriber_id, &v.sim_icc_id});
  for (const std::string& n : v.telephone_numbers) FUZZ_CHECK(valid_utf8(n));
}
void strings_of(const PinSet& v) { strings_ok({&v.pin, &v.new_pin}); }
void strings_of(const RegistrationStateInfo& v) { strings_ok({&v.provider_id, &v.provider_name, &v.roaming_text}); }
void strings_of(const ConnectSet& v) { strings_ok({&v.access_string, &v.user_name, &v.password}); }
template <class T>
void strings_of(const T&) {}

// parse -> encode -> parse gives the same struct, and encode is then a fixed point.
template <class Parse, class Encode>
void round_trip(Bytes info, std::size_t fixed, Parse parse, Encode encode_fn) {
  const auto a = parse(info);
  if (!a) {
    if (info.size() < fixed) FUZZ_CHECK(a.error() == WireError::InformationBufferTooShort);
    return;
  }
  FUZZ_CHECK(info.size() >= fixed);
  strings_of(*a);
  const ByteVector bytes = encode_fn(*a);
  FUZZ_CHECK(bytes.size() >= fixed && bytes.size() % 4 == 0);
  const auto b = parse(bytes);
  FUZZ_CHECK(b.ok());
  FUZZ_CHECK(eq(*a, *b));
  FUZZ_CHECK(encode_fn(*b) == bytes);
}

void check_info_reader(Bytes info) {
  const InfoReader r(info);
  for (const std::size_t fixed : {0u, 4u, 8u, 28u, 64u}) FUZZ_CHECK(r.require(fixed).ok() == (info.size() >= fixed));
  const std::size_t span = std::min<std::size_t>(info.size() + 8, 72);
  static constexpr std::uint64_t kElements[] = {1, 4, 8, 16, 20};
  for (std::size_t at = 0; at < span; at += 4) {
    const bool in4 = wwan::ntb::fits(info.size(), at, 4);
    FUZZ_CHECK(r.u32(at) == (in4 ? load_le32(info, at) : 0));
    if (const auto ol = r.ol_bytes(at)) {
      FUZZ_CHECK(within(info, *ol));
      FUZZ_CHECK(ol->size() == r.u32(at + 4));
      if (!ol->empty()) FUZZ_CHECK(ol->data() == info.data() + r.u32(at));
    } else {
      FUZZ_CHECK(ol.error() == WireError::InformationBufferTooShort || ol.error() == WireError::OffsetOutOfBounds);
    }
    if (const auto s = r.ol_string(at)) FUZZ_CHECK(valid_utf8(*s));
    const std::uint64_t element = kElements[(at / 4) % 5];
    const std::uint64_t count = r.u32(at + 4);
    if (const auto arr = r.array(at, count, element)) {
      FUZZ_CHECK(within(info, *arr));
      FUZZ_CHECK(arr->size() == count * element);
    }
  }
}

void check_payloads(Bytes info) {
  check_info_reader(info);
  round_trip(info, 64, parse_device_caps_info, [](const auto& v) { return encode(v); });
  round_trip(info, 28, parse_subscriber_ready_status_info, [](const auto& v) { return encode(v); });
  round_trip(info, 8, parse_radio_state_info, [](const auto& v) { return encode(v); });
  round_trip(info, 24, parse_pin_set, [](const auto& v) { return encode(v); });
  round_trip(info, 12, parse_pin_info, [](const auto& v) { return encode(v); });
  round_trip(info, 48, parse_registration_state_info, [](const auto& v) { return encode(v); });
  round_trip(info, 28, parse_packet_service_info, [](const auto& v) { return encode(v); });
  round_trip(info, 60, parse_connect_set, [](const auto& v) { return encode(v); });
  round_trip(info, 36, parse_connect_info, [](const auto& v) { return encode(v); });
  round_trip(info, 60, parse_ip_configuration_info, [](const auto& v) { return encode(v); });
  if (const auto s = parse_radio_state_set(info)) {
    FUZZ_CHECK(static_cast<std::uint32_t>(*s) == load_le32(info, 0));
    FUZZ_CHECK(*parse_radio_state_set(encode_radio_state_set(*s)) == *s);
  }
  if (const auto a = parse_packet_service_set(info)) {
    FUZZ_CHECK(static_cast<std::uint32_t>(*a) == load_le32(info, 0));
    FUZZ_CHECK(*parse_packet_service_set(encode_packet_service_set(*a)) == *a);
  }
  if (const auto id = parse_session_id_query(info)) {
    FUZZ_CHECK(*id == load_le32(info, 0));
    const ByteVector q = encode_ip_configuration_query(*id);
    FUZZ_CHECK(*parse_session_id_query(q) == *id);
    const auto cfg = parse_ip_configuration_info(q);
    FUZZ_CHECK(cfg.ok() && cfg->session_id == *id && cfg->ipv4_addresses.empty() && !cfg->ipv4_gateway);
  } else {
    FUZZ_CHECK(info.size() < 4);
  }
}

// ---- QMUX -----------------------------------------------------------------------------------

void check_qmi(Bytes qmux) {
  const auto m = qmi::parse(qmux);
  if (!m) return;
  FUZZ_CHECK(qmux.size() >= 6 && qmux[0] == qmi::kInterfaceType);
  FUZZ_CHECK(std::uint64_t{load_le16(qmux, 1)} + 1 == qmux.size());
  FUZZ_CHECK(m->service == qmux[4] && m->client_id == qmux[5] && m->qmux_flags == qmux[3]);
  FUZZ_CHECK(within(qmux, m->tlvs));
  const std::size_t header = m->service == qmi::kServiceCtl ? 12 : 13;
  FUZZ_CHECK(m->tlvs.size() == load_le16(qmux, header - 2));
  if (!m->tlvs.empty()) FUZZ_CHECK(m->tlvs.data() == qmux.data() + header);

  // Re-encoding gives a message that parses to the same fields, and the very bytes when no
  // bytes trail the TLV block.
  const ByteVector e = qmi::encode(*m);
  const auto again = qmi::parse(e);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again->qmux_flags == m->qmux_flags && again->service == m->service &&
             again->client_id == m->client_id && again->sdu_flags == m->sdu_flags &&
             again->transaction_id == m->transaction_id && again->message_id == m->message_id &&
             same(again->tlvs, m->tlvs));
  if (header + m->tlvs.size() == qmux.size()) FUZZ_CHECK(same(e, qmux));

  // The TLV block: find_tlv walks all of it whatever it looks for, so an overrun is an overrun for
  // every type; a TLV found is inside the block; a well-formed block re-encodes to itself.
  const Bytes tlvs = m->tlvs;
  std::vector<qmi::Tlv> walked;
  bool well_formed = true;
  for (std::size_t at = 0; at < tlvs.size();) {
    if (tlvs.size() - at < 3) { well_formed = false; break; }
    const std::size_t len = load_le16(tlvs, at + 1);
    if (tlvs.size() - at - 3 < len) { well_formed = false; break; }
    walked.push_back({tlvs[at], ByteVector(tlvs.begin() + static_cast<std::ptrdiff_t>(at + 3),
                                           tlvs.begin() + static_cast<std::ptrdiff_t>(at + 3 + len))});
    at += 3 + len;
  }
  if (well_formed) FUZZ_CHECK(qmi::encode_tlvs(walked) == ByteVector(tlvs.begin(), tlvs.end()));
  for (const std::uint8_t type : {std::uint8_t{qmi::kTlvAllocationInfo}, std::uint8_t{qmi::kTlvResult},
                                  tlvs.empty() ? std::uint8_t{0x10} : tlvs[0]}) {
    const auto t = qmi::find_tlv(tlvs, type);
    FUZZ_CHECK(t.ok() || t.error() == (well_formed ? WireError::QmiMissingTlv : WireError::QmiTlvOverrun));
    if (!t) continue;
    FUZZ_CHECK(well_formed && within(tlvs, *t));
    const auto first = std::find_if(walked.begin(), walked.end(), [type](const qmi::Tlv& w) { return w.type == type; });
    FUZZ_CHECK(first != walked.end() && same(first->value, *t));
  }
  if (const auto r = qmi::parse_result(tlvs)) {
    const auto v = qmi::find_tlv(tlvs, qmi::kTlvResult);
    FUZZ_CHECK(v.ok() && v->size() >= 4 && r->result == load_le16(*v, 0) && r->error == load_le16(*v, 2));
  }
}

// ---- whole messages --------------------------------------------------------------------------

void check_information_buffer(Bytes message, std::size_t fixed, Bytes info) {
  FUZZ_CHECK(within(message, info));
  const std::uint32_t length = load_le32(message, 4);
  FUZZ_CHECK(fixed + info.size() <= length && length <= message.size());
  FUZZ_CHECK(info.data() == message.data() + fixed);
  FUZZ_CHECK(info.size() == load_le32(message, fixed - 4));
}

// Decodes `m` with every decoder; returns the InformationBuffer of a decoded fragmentable message.
std::optional<Bytes> check_message(Bytes m) {
  const auto h = read_header(m);
  FUZZ_CHECK(h.ok() == (m.size() >= kHeaderSize));
  const auto v = validate(m);
  if (v) {
    FUZZ_CHECK(h.ok() && h->type == v->type && h->message_length == v->message_length &&
               h->transaction_id == v->transaction_id);
    FUZZ_CHECK(is_known(v->type));
    FUZZ_CHECK(v->message_length >= fixed_header_size(v->type) && v->message_length <= m.size());
    if (is_fragmentable(v->type)) {
      FUZZ_CHECK(load_le32(m, 12) >= 1 && load_le32(m, 16) < load_le32(m, 12));
    }
  }
  const std::size_t length = v ? v->message_length : 0;
  int decoded = 0;
  std::optional<Bytes> info;

  if (const auto o = parse_open(m)) {
    ++decoded;
    FUZZ_CHECK(v && v->type == MessageType::Open && o->transaction_id == v->transaction_id);
    const ByteVector e = encode_open(o->transaction_id, o->max_control_transfer);
    const auto again = parse_open(e);
    FUZZ_CHECK(again && again->transaction_id == o->transaction_id &&
               again->max_control_transfer == o->max_control_transfer);
    if (length == e.size()) FUZZ_CHECK(same(e, m.first(length)));
  }
  if (const auto c = parse_close(m)) {
    ++decoded;
    FUZZ_CHECK(v && v->type == MessageType::Close);
    const ByteVector e = encode_close(c->transaction_id);
    FUZZ_CHECK(parse_close(e)->transaction_id == c->transaction_id);
    if (length == e.size()) FUZZ_CHECK(same(e, m.first(length)));
  }
  if (const auto d = parse_done(m)) {
    ++decoded;
    FUZZ_CHECK(v && v->type == d->type && (d->type == MessageType::OpenDone || d->type == MessageType::CloseDone));
    const ByteVector e = encode_done(d->type, d->transaction_id, d->status);
    const auto again = parse_done(e);
    FUZZ_CHECK(again && again->type == d->type && again->transaction_id == d->transaction_id &&
               again->status == d->status);
    if (length == e.size()) FUZZ_CHECK(same(e, m.first(length)));
    FUZZ_CHECK(to_string(d->status) != nullptr);
  }
  if (const auto er = parse_error(m)) {
    ++decoded;
    FUZZ_CHECK(v && v->type == er->type &&
               (er->type == MessageType::HostError || er->type == MessageType::FunctionError));
    const ByteVector e = encode_error(er->type, er->transaction_id, er->error_status_code);
    const auto again = parse_error(e);
    FUZZ_CHECK(again && again->type == er->type && again->transaction_id == er->transaction_id &&
               again->error_status_code == er->error_status_code);
    if (length == e.size()) FUZZ_CHECK(same(e, m.first(length)));
    FUZZ_CHECK(to_string(er->error_status_code) != nullptr);
  }
  if (const auto c = parse_command(m)) {
    ++decoded;
    FUZZ_CHECK(v && v->type == MessageType::Command && load_le32(m, 12) == 1);
    check_information_buffer(m, kCommandHeaderSize, c->information_buffer);
    const ByteVector e = encode_command(c->transaction_id, c->service, c->cid, c->command_type, c->information_buffer);
    const auto again = parse_command(e);
    FUZZ_CHECK(again && again->transaction_id == c->transaction_id && again->service == c->service &&
               again->cid == c->cid && again->command_type == c->command_type &&
               same(again->information_buffer, c->information_buffer));
    if (length == e.size()) FUZZ_CHECK(same(e, m.first(length)));
    info = c->information_buffer;
  }
  if (const auto c = parse_command_done(m)) {
    ++decoded;
    FUZZ_CHECK(v && v->type == MessageType::CommandDone && load_le32(m, 12) == 1);
    check_information_buffer(m, kCommandDoneHeaderSize, c->information_buffer);
    const ByteVector e =
        encode_command_done(c->transaction_id, c->service, c->cid, c->status, c->information_buffer);
    const auto again = parse_command_done(e);
    FUZZ_CHECK(again && again->transaction_id == c->transaction_id && again->service == c->service &&
               again->cid == c->cid && again->status == c->status &&
               same(again->information_buffer, c->information_buffer));
    if (length == e.size()) FUZZ_CHECK(same(e, m.first(length)));
    info = c->information_buffer;
  }
  if (const auto c = parse_indicate_status(m)) {
    ++decoded;
    FUZZ_CHECK(v && v->type == MessageType::IndicateStatus && load_le32(m, 12) == 1);
    check_information_buffer(m, kIndicateStatusHeaderSize, c->information_buffer);
    const ByteVector e = encode_indicate_status(c->transaction_id, c->service, c->cid, c->information_buffer);
    const auto again = parse_indicate_status(e);
    FUZZ_CHECK(again && again->transaction_id == c->transaction_id && again->service == c->service &&
               again->cid == c->cid && same(again->information_buffer, c->information_buffer));
    if (length == e.size()) FUZZ_CHECK(same(e, m.first(length)));
    info = c->information_buffer;
  }
  // The message types are disjoint, and a valid non-fragmentable message is always decodable.
  FUZZ_CHECK(decoded <= 1);
  if (v && !is_fragmentable(v->type)) FUZZ_CHECK(decoded == 1);
  if (!v) FUZZ_CHECK(decoded == 0);
  return info;
}

// fragment() and a fresh Reassembler are inverses for a whole message.
void check_fragment_round_trip(Bytes m, std::size_t piece) {
  const auto pieces = fragment(m, piece);
  const auto v = validate(m);
  if (!v) {
    FUZZ_CHECK(!pieces.ok() && pieces.error() == v.error());
    return;
  }
  const Bytes whole = m.first(v->message_length);
  if (!pieces) {
    FUZZ_CHECK(whole.size() > piece);
    FUZZ_CHECK(pieces.error() == WireError::MessageTooLarge || pieces.error() == WireError::Fragmented);
    if (pieces.error() == WireError::Fragmented) FUZZ_CHECK(load_le32(whole, 12) != 1);
    return;
  }
  FUZZ_CHECK(!pieces->empty());
  if (whole.size() <= piece) {
    FUZZ_CHECK(pieces->size() == 1 && same(pieces->front(), whole));
    return;
  }
  FUZZ_CHECK(is_fragmentable(v->type) && pieces->size() >= 2);
  Reassembler r(ReassemblyLimits{0xFFFFFFFFu, 0xFFFFFFFFu});
  for (std::size_t i = 0; i < pieces->size(); ++i) {
    const ByteVector& p = (*pieces)[i];
    FUZZ_CHECK(p.size() <= piece && p.size() > kHeaderSize + kFragmentHeaderSize);
    FUZZ_CHECK(load_le32(p, 0) == load_le32(whole, 0) && load_le32(p, 4) == p.size() &&
               load_le32(p, 8) == v->transaction_id && load_le32(p, 12) == pieces->size() && load_le32(p, 16) == i);
    const auto s = r.feed(p);
    FUZZ_CHECK(s.ok());
    FUZZ_CHECK(*s == (i + 1 == pieces->size() ? Reassembler::State::Complete : Reassembler::State::NeedMore));
  }
  FUZZ_CHECK(same(r.message(), whole));
  FUZZ_CHECK(!r.partial());
}

// What a Reassembler should hold, rebuilt from the fragments it accepted.
struct ShadowReassembly {
  ByteVector bytes;  // first fragment + the payloads of the continuations
  std::uint32_t fragments = 0;
  bool active = false;
};

void feed_reassembler(Reassembler& r, ShadowReassembly& shadow, const ReassemblyLimits& limits, Bytes transfer) {
  const std::uint64_t abandoned_before = r.abandoned();
  const bool partial_before = r.partial();
  FUZZ_CHECK(partial_before == shadow.active);
  const auto h = read_header(transfer);
  const auto s = r.feed(transfer);
  FUZZ_CHECK(r.abandoned() >= abandoned_before && r.abandoned() <= abandoned_before + 1);
  if (!s) {
    FUZZ_CHECK(r.message().empty());
    // A fragment of the partial message's sequence that is refused drops the partial message.
    switch (s.error()) {
      case WireError::FragmentOutOfSequence:
      case WireError::FragmentTransactionMismatch:
      case WireError::FragmentTypeMismatch:
      case WireError::FragmentTotalMismatch:
      case WireError::TooManyFragments:
      case WireError::MessageTooLarge: FUZZ_CHECK(!r.partial()); break;
      default: break;
    }
    if (!r.partial()) shadow = {};
    FUZZ_CHECK(r.partial() == shadow.active);
    return;
  }
  FUZZ_CHECK(h.ok() && is_known(h->type));
  const std::uint32_t current = is_fragmentable(h->type) ? load_le32(transfer, 16) : 0;
  const Bytes payload = is_fragmentable(h->type) ? transfer.subspan(20, h->message_length - 20) : Bytes{};
  if (*s == Reassembler::State::NeedMore) {
    FUZZ_CHECK(r.message().empty());
    FUZZ_CHECK(is_fragmentable(h->type) && r.partial());
    if (current == 0) {
      shadow = {ByteVector(transfer.begin(), transfer.begin() + static_cast<std::ptrdiff_t>(h->message_length)), 1,
                true};
    } else {
      FUZZ_CHECK(shadow.active);
      shadow.bytes.insert(shadow.bytes.end(), payload.begin(), payload.end());
      ++shadow.fragments;
    }
    // The bound: never more than the limits, counted in what was accepted.
    FUZZ_CHECK(shadow.bytes.size() <= limits.max_message_bytes);
    FUZZ_CHECK(shadow.fragments <= limits.max_fragments);
    FUZZ_CHECK(shadow.fragments < load_le32(shadow.bytes, 12));
    return;
  }
  // Complete: a whole, valid message that is either this transfer or the reassembled one.
  const Bytes message = r.message();
  FUZZ_CHECK(!message.empty());
  const auto v = validate(message);
  FUZZ_CHECK(v.ok() && v->message_length == message.size());
  if (is_fragmentable(v->type)) FUZZ_CHECK(load_le32(message, 12) == 1 && load_le32(message, 16) == 0);
  if (within(transfer, message)) {
    FUZZ_CHECK(message.data() == transfer.data());
    if (is_fragmentable(h->type)) {
      FUZZ_CHECK(current == 0 && load_le32(transfer, 12) == 1 && !r.partial());
      shadow = {};
    }
    FUZZ_CHECK(r.partial() == shadow.active);  // a non-fragmentable message leaves a partial one alone
  } else {
    FUZZ_CHECK(shadow.active && current == shadow.fragments && current + 1 == load_le32(transfer, 12));
    FUZZ_CHECK(h->type == static_cast<MessageType>(load_le32(shadow.bytes, 0)));
    FUZZ_CHECK(h->transaction_id == load_le32(shadow.bytes, 8));
    shadow.bytes.insert(shadow.bytes.end(), payload.begin(), payload.end());
    FUZZ_CHECK(message.size() == shadow.bytes.size());
    FUZZ_CHECK(message.size() <= limits.max_message_bytes);
    FUZZ_CHECK(shadow.fragments + 1 <= limits.max_fragments);
    FUZZ_CHECK(std::equal(message.begin(), message.begin() + 4, shadow.bytes.begin()));
    FUZZ_CHECK(load_le32(message, 8) == load_le32(shadow.bytes, 8));
    FUZZ_CHECK(std::equal(message.begin() + 20, message.end(), shadow.bytes.begin() + 20));
    FUZZ_CHECK(!r.partial());
    shadow = {};
  }
  // What the reassembler hands over decodes like any whole message.
  const auto info = check_message(message);
  if (info) check_payloads(*info);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 4) return 0;
  ReassemblyLimits limits;
  if (data[0] != 0) limits.max_fragments = data[0];
  if (const auto bytes = static_cast<std::uint32_t>(data[1] | data[2] << 8); bytes != 0) limits.max_message_bytes = bytes;
  const std::size_t piece = 21 + 4 * std::size_t{data[3]};
  Reassembler reassembler(limits);
  ShadowReassembly shadow;

  std::size_t at = 4;
  while (at < size) {
    std::size_t n = size - at;
    if (n >= 2) {
      n = std::min(static_cast<std::size_t>(data[at] | data[at + 1] << 8), n - 2);
      at += 2;
    }
    // An exactly-sized copy, so that ASan sees the real end of the transfer.
    const ByteVector transfer(data + at, data + at + n);
    at += n;
    const Bytes t(transfer);

    if (const auto info = check_message(t)) {
      check_payloads(*info);
      check_qmi(*info);
      check_utf16(*info);
    }
    check_fragment_round_trip(t, piece);
    feed_reassembler(reassembler, shadow, limits, t);
    // The transfer itself as a payload, a QMUX message and a string.
    check_payloads(t);
    check_qmi(t);
    check_utf16(t);
  }
  return 0;
}
