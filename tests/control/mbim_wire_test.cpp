// MBIM codec: golden bytes of real devices and of libmbim's own tests
// (../shared/reference/vectors/libmbim.md, real_mbim_qmi_over_mbim_traces.md), annotated field by
// field where the layout is the point; every decoder fed truncated and random input returns a
// named error without reading out of bounds (run under ASan/UBSan in the sanitizer build).
#include "control/mbim_wire.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "tests/support/hex.hpp"

namespace wwan::mbim {
namespace {

using wwan::test::hex;

// ---- UUIDs: the constants are the anchors' text in wire order ---------------------------------

TEST(MbimUuid, ConstantsAreTheAnchorTextInWireOrder) {
  // anchors.md §4.3: "UUIDs on the wire in textual byte order".
  EXPECT_EQ(parse_uuid("a289cc33-bcbb-8b4f-b6b0-133ec2aae6df"), kUuidBasicConnect);
  EXPECT_EQ(parse_uuid("d1a30bc2-f97a-6e43-bf65-c7e24fb0f0d3"), kUuidQmi);
  EXPECT_EQ(parse_uuid("3d01dcc5-fef5-4d05-0d3a-bef7058e9aaf"), kUuidMsBasicConnectExtensions);
  EXPECT_EQ(parse_uuid("c08a26dd-7718-4382-8482-6e0d583c4d0e"), kUuidDss);
  EXPECT_EQ(parse_uuid("883b7c26-985f-43fa-9804-27d7fb80959c"), kUuidMsHostShutdown);
  EXPECT_EQ(parse_uuid("7e5e2a7e-4e6f-7272-736b-656e7e5e2a7e"), kUuidContextTypeInternet);
  EXPECT_EQ(to_string(kUuidQmi), "d1a30bc2-f97a-6e43-bf65-c7e24fb0f0d3");
  EXPECT_FALSE(parse_uuid("d1a30bc2-f97a-6e43-bf65-c7e24fb0f0d"));
  EXPECT_FALSE(parse_uuid("d1a30bc2xf97a-6e43-bf65-c7e24fb0f0d3"));
  EXPECT_FALSE(parse_uuid("g1a30bc2-f97a-6e43-bf65-c7e24fb0f0d3"));
}

// ---- framing (libmbim.md D) ---------------------------------------------------------------------

TEST(MbimFraming, OpenCloseAndEmptyCommandMatchLibmbim) {
  // D1: mbim_message_open_new (12345, 4096)
  EXPECT_EQ(encode_open(12345, 4096), hex("01000000 10000000 39300000 00100000"));
  // D2: mbim_message_close_new (12345)
  EXPECT_EQ(encode_close(12345), hex("02000000 0c000000 39300000"));
  // D3: DEVICE_CAPS query, no InformationBuffer
  EXPECT_EQ(encode_command(12345, kUuidBasicConnect, cid(BasicConnectCid::DeviceCaps), CommandType::Query, {}),
            hex("03000000 30000000 39300000 01000000 00000000"
                "a289cc33bcbb8b4fb6b0133ec2aae6df 01000000 00000000 00000000"));
  const auto open = parse_open(encode_open(7, 4096));
  ASSERT_TRUE(open);
  EXPECT_EQ(open->transaction_id, 7u);
  EXPECT_EQ(open->max_control_transfer, 4096u);
  EXPECT_TRUE(parse_close(encode_close(9)));
}

TEST(MbimFraming, OpenDoneAndCloseDone) {
  const ByteVector open_done = hex("01000080 10000000 01000000 00000000");  // D4
  const auto d = parse_done(open_done);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->type, MessageType::OpenDone);
  EXPECT_EQ(d->transaction_id, 1u);
  EXPECT_EQ(d->status, Status::None);
  EXPECT_EQ(encode_done(MessageType::OpenDone, 1, Status::None), open_done);
  const ByteVector close_done = hex("02000080 10000000 01000000 00000000");  // D5
  ASSERT_TRUE(parse_done(close_done));
  EXPECT_EQ(parse_done(close_done)->type, MessageType::CloseDone);
  EXPECT_EQ(parse_open(open_done).error(), WireError::UnexpectedMessageType);
}

// D6: COMMAND_DONE for PIN with 12 zero bytes.
const ByteVector kCommandDonePin = hex(
    "03000080"                          // MessageType COMMAND_DONE
    "3c000000"                          // MessageLength 60
    "01000000"                          // TransactionId 1
    "01000000 00000000"                 // TotalFragments 1, CurrentFragment 0
    "a289cc33bcbb8b4fb6b0133ec2aae6df"  // DeviceServiceId BASIC_CONNECT
    "04000000"                          // CID PIN
    "00000000"                          // Status NONE
    "0c000000"                          // InformationBufferLength 12
    "00000000 00000000 00000000");      // MBIM_PIN_INFO: PinType 0, PinState 0, RemainingAttempts 0

TEST(MbimFraming, CommandDone) {
  const auto m = parse_command_done(kCommandDonePin);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->transaction_id, 1u);
  EXPECT_EQ(m->service, kUuidBasicConnect);
  EXPECT_EQ(m->cid, cid(BasicConnectCid::Pin));
  EXPECT_EQ(m->status, Status::None);
  EXPECT_EQ(m->information_buffer.size(), 12u);
  const auto pin = parse_pin_info(m->information_buffer);
  ASSERT_TRUE(pin);
  EXPECT_EQ(pin->pin_state, 0u);
  EXPECT_EQ(encode_command_done(1, kUuidBasicConnect, 4, Status::None, encode(PinInfo{})), kCommandDonePin);
}

TEST(MbimFraming, EveryPrefixIsTruncatedNotInvalid) {
  // D7: a reader keeps accumulating on Truncated.
  for (std::size_t n = 0; n < kCommandDonePin.size(); ++n)
    EXPECT_EQ(parse_command_done(Bytes(kCommandDonePin).first(n)).error(), WireError::Truncated) << n;
}

TEST(MbimFraming, DeclaredLengthBelowTheTypeHeaderIsInvalid) {
  // D8: MessageLength L in 12..47 with L bytes supplied.
  ByteVector m = hex("03000080 00000000 01000000 01000000 00000000 a289cc33bcbb8b4fb6b0133ec2aae6df"
                     "04000000 00000000 00000000");
  for (std::uint8_t l = 12; l < 48; ++l) {
    m[4] = l;
    EXPECT_EQ(parse_command_done(Bytes(m).first(l)).error(), WireError::MessageLengthTooShort) << int{l};
  }
}

TEST(MbimFraming, InvalidFragmentHeadersAndLengths) {
  // D9: InformationBufferLength 4 with MessageLength 48 (52 bytes supplied).
  EXPECT_EQ(parse_command_done(hex("03000080 30000000 01000000 01000000 00000000"
                                   "a289cc33bcbb8b4fb6b0133ec2aae6df 04000000 00000000 04000000 00000000"))
                .error(),
            WireError::InformationBufferOverrun);
  // D10: TotalFragments 0.
  EXPECT_EQ(validate(hex("03000080 30000000 01000000 00000000 00000000"
                         "a289cc33bcbb8b4fb6b0133ec2aae6df 04000000 00000000 00000000"))
                .error(),
            WireError::BadFragmentTotal);
  // D11: total 1, current 1.
  EXPECT_EQ(validate(hex("03000080 30000000 01000000 01000000 01000000"
                         "a289cc33bcbb8b4fb6b0133ec2aae6df 04000000 00000000 00000000"))
                .error(),
            WireError::BadFragmentCurrent);
  // D12: total 2, current 5.
  EXPECT_EQ(validate(hex("03000080 30000000 01000000 02000000 05000000" + std::string(56, '0'))).error(),
            WireError::BadFragmentCurrent);
  // D13: unknown MessageType 0x80CDAB03.
  EXPECT_EQ(validate(hex("03abcd80 0c000000 01000000")).error(), WireError::UnknownMessageType);
  // A fragment of several handed to a whole-message decoder.
  EXPECT_EQ(parse_command_done(hex("03000080 30000000 01000000 02000000 00000000"
                                   "a289cc33bcbb8b4fb6b0133ec2aae6df 04000000 00000000 00000000"))
                .error(),
            WireError::Fragmented);
}

// ---- real device errors (real_mbim_qmi_over_mbim_traces.md T2.6) ------------------------------

TEST(MbimFraming, Em7455LengthMismatch) {
  // The host's COMMAND: MessageLength 61 but InformationBufferLength 17 (48 + 17 = 65 sent).
  const ByteVector command = hex(
      "03000000 3d000000 07000000 01000000 00000000"
      "d1a30bc2f97a6e43bf65c7e24fb0f0d3 01000000 01000000 11000000"
      "01 1000 00 02 03 00 0800 5c55 0400 01 0100 06");
  EXPECT_EQ(parse_command(command).error(), WireError::InformationBufferOverrun);
  // The EM7455's answer: FUNCTION_ERROR, TransactionId 7, LENGTH_MISMATCH.
  const ByteVector answer = hex("04000080 10000000 07000000 03000000");
  const auto e = parse_error(answer);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->type, MessageType::FunctionError);
  EXPECT_EQ(e->transaction_id, 7u);
  EXPECT_EQ(e->error_status_code, ProtocolError::LengthMismatch);
  EXPECT_EQ(encode_error(MessageType::FunctionError, 7, ProtocolError::LengthMismatch), answer);
}

// ---- BASIC_CONNECT answers of real devices (libmbim.md A) ----------------------------------------

// A3: DEVICE_CAPS of a Huawei E367.
const ByteVector kDeviceCapsE367 = hex(
    "03000080 d0000000 02000000 01000000 00000000"  // COMMAND_DONE, 208 bytes, tid 2, fragment 0/1
    "a289cc33bcbb8b4fb6b0133ec2aae6df"              // BASIC_CONNECT
    "01000000 00000000 a0000000"                    // CID DEVICE_CAPS, Status NONE, InformationBufferLength 160
    "02000000"                                      // DeviceType REMOVABLE
    "01000000"                                      // CellularClass GSM
    "01000000"                                      // VoiceClass NO_VOICE
    "02000000"                                      // SimClass REMOVABLE
    "1f000080"                                      // DataClass GPRS|EDGE|UMTS|HSDPA|HSUPA|CUSTOM
    "03000000"                                      // SmsCaps PDU_RECEIVE|PDU_SEND
    "01000000"                                      // ControlCaps REG_MANUAL
    "01000000"                                      // MaxSessions 1
    "40000000 0a000000"                             // CustomDataClass {0x40, 10}
    "4c000000 1e000000"                             // DeviceId {0x4c, 30}
    "6c000000 1e000000"                             // FirmwareInfo {0x6c, 30}
    "8c000000 12000000"                             // HardwareInfo {0x8c, 18}
    "48005300500041002b000000"                      // "HSPA+" + 2 pad
    "3300350033003600310033003000340038003800300034003600320032000000"  // "353613048804622" + pad
    "310031002e003800310030002e00300039002e00300030002e00300030000000"  // "11.810.09.00.00" + pad
    "430050003100450033003600370055004d000000");    // "CP1E367UM" + pad

TEST(MbimBasicConnect, DeviceCapsOfARealE367) {
  const auto m = parse_command_done(kDeviceCapsE367);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->transaction_id, 2u);
  EXPECT_EQ(m->cid, cid(BasicConnectCid::DeviceCaps));
  const auto caps = parse_device_caps_info(m->information_buffer);
  ASSERT_TRUE(caps) << to_string(caps.error());
  EXPECT_EQ(caps->device_type, 2u);
  EXPECT_EQ(caps->cellular_class, 1u);
  EXPECT_EQ(caps->voice_class, 1u);
  EXPECT_EQ(caps->sim_class, 2u);
  EXPECT_EQ(caps->data_class, 0x8000001Fu);
  EXPECT_EQ(caps->sms_caps, 3u);
  EXPECT_EQ(caps->control_caps, 1u);
  EXPECT_EQ(caps->max_sessions, 1u);
  EXPECT_EQ(caps->custom_data_class, "HSPA+");
  EXPECT_EQ(caps->device_id, "353613048804622");
  EXPECT_EQ(caps->firmware_info, "11.810.09.00.00");
  EXPECT_EQ(caps->hardware_info, "CP1E367UM");
  // The encoder lays it out exactly as the device did.
  EXPECT_EQ(encode_command_done(2, kUuidBasicConnect, 1, Status::None, encode(*caps)), kDeviceCapsE367);
}

// A2 as libmbim ships it: MessageLength 180 / InformationBufferLength 132, but the ICCID runs to
// byte 164 of the buffer (212 bytes supplied). See the trust note in libmbim.md.
const std::string kSubscriberReadyHex =
    "03000080b4000000020000000100000000000000a289cc33bcbb8b4fb6b0133ec2aae6df0200000000000000840000000100"
    "00005c0000001e0000007c0000002800000000000000020000002c0000001600000044000000160000003100310031003100"
    "3100310031003100310031003100000030003000300030003000300030003000300030003000000033003100300034003100"
    "3000300030003000310031003000370036003100000038003900300031003000310030003400300035003400360030003100"
    "310030003000360031003200";

TEST(MbimBasicConnect, SubscriberReadyStatusStrictBoundsAndFixedLengths) {
  ByteVector m = hex(kSubscriberReadyHex);
  ASSERT_EQ(m.size(), 212u);
  // Strict: the ICCID {0x7c, 0x28} ends past InformationBufferLength 132.
  const auto as_shipped = parse_command_done(m);
  ASSERT_TRUE(as_shipped);
  EXPECT_EQ(parse_subscriber_ready_status_info(as_shipped->information_buffer).error(),
            WireError::OffsetOutOfBounds);
  // With the two length fields made consistent (0xD4 / 0xA4) it is a real answer.
  m[4] = 0xd4;
  m[44] = 0xa4;
  const auto fixed = parse_command_done(m);
  ASSERT_TRUE(fixed);
  const auto s = parse_subscriber_ready_status_info(fixed->information_buffer);
  ASSERT_TRUE(s) << to_string(s.error());
  EXPECT_EQ(s->ready_state, ReadyState::Initialized);
  EXPECT_EQ(s->subscriber_id, "310410000110761");
  EXPECT_EQ(s->sim_icc_id, "89010104054601100612");
  EXPECT_EQ(s->ready_info, 0u);
  EXPECT_THAT(s->telephone_numbers, ::testing::ElementsAre("11111111111", "00000000000"));
  // Round trip through our own layout (strings in field order, not the device's order).
  const auto again = parse_subscriber_ready_status_info(encode(*s));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->sim_icc_id, s->sim_icc_id);
  EXPECT_EQ(again->telephone_numbers, s->telephone_numbers);
}

// A7: REGISTER_STATE, home on 26006.
const ByteVector kRegisterState = hex(
    "03000080 6c000000 12000000 01000000 00000000 a289cc33bcbb8b4fb6b0133ec2aae6df"
    "09000000 00000000 3c000000"  // CID REGISTER_STATE, NONE, 60 bytes
    "00000000"                    // NwError 0
    "03000000"                    // RegisterState HOME
    "01000000"                    // RegisterMode AUTOMATIC
    "1c000000"                    // AvailableDataClasses UMTS|HSDPA|HSUPA
    "01000000"                    // CurrentCellularClass GSM
    "30000000 0a000000"           // ProviderId {0x30, 10}
    "00000000 00000000"           // ProviderName absent
    "00000000 00000000"           // RoamingText absent
    "02000000"                    // RegistrationFlag PACKET_SERVICE_AUTOMATIC_ATTACH
    "320036003000300036000000");  // "26006" + pad

TEST(MbimBasicConnect, RegisterState) {
  const auto m = parse_command_done(kRegisterState);
  ASSERT_TRUE(m);
  const auto r = parse_registration_state_info(m->information_buffer);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->nw_error, 0u);
  EXPECT_EQ(r->register_state, RegisterState::Home);
  EXPECT_EQ(r->register_mode, 1u);
  EXPECT_EQ(r->available_data_classes, 0x1Cu);
  EXPECT_EQ(r->current_cellular_class, 1u);
  EXPECT_EQ(r->provider_id, "26006");
  EXPECT_EQ(r->provider_name, "");
  EXPECT_EQ(r->roaming_text, "");
  EXPECT_EQ(r->registration_flag, 2u);
  EXPECT_EQ(encode_command_done(0x12, kUuidBasicConnect, 9, Status::None, encode(*r)), kRegisterState);
}

// A4: IP_CONFIGURATION, IPv4 only (the C comment's address is wrong; the bytes say 212.73.34.248).
const ByteVector kIpConfigurationV4 = hex(
    "03000080 80000000 1a000000 01000000 00000000 a289cc33bcbb8b4fb6b0133ec2aae6df"
    "0f000000 00000000 50000000"  // CID IP_CONFIGURATION, NONE, 80 bytes
    "00000000"                    // SessionId 0
    "0f000000"                    // IPv4ConfigurationAvailable ADDRESS|GATEWAY|DNS|MTU
    "00000000"                    // IPv6ConfigurationAvailable none
    "01000000 3c000000"           // IPv4AddressCount 1 at 0x3c
    "00000000 00000000"           // IPv6AddressCount 0
    "44000000"                    // IPv4GatewayOffset 0x44
    "00000000"                    // IPv6GatewayOffset none
    "02000000 48000000"           // IPv4DnsServerCount 2 at 0x48
    "00000000 00000000"           // IPv6DnsServerCount 0
    "dc050000"                    // IPv4Mtu 1500
    "00000000"                    // IPv6Mtu 0
    "1c000000 d44922f8"           // 212.73.34.248/28
    "d44922f1"                    // gateway 212.73.34.241
    "d4a6d250 d4492043");         // DNS 212.166.210.80, 212.73.32.67

TEST(MbimBasicConnect, IpConfigurationIpv4) {
  const auto m = parse_command_done(kIpConfigurationV4);
  ASSERT_TRUE(m);
  const auto c = parse_ip_configuration_info(m->information_buffer);
  ASSERT_TRUE(c) << to_string(c.error());
  EXPECT_EQ(c->session_id, 0u);
  EXPECT_EQ(c->ipv4_configuration_available, 0x0Fu);
  EXPECT_EQ(c->ipv6_configuration_available, 0u);
  ASSERT_EQ(c->ipv4_addresses.size(), 1u);
  EXPECT_EQ(c->ipv4_addresses[0], (Ipv4Element{28, {{212, 73, 34, 248}}}));
  EXPECT_EQ(c->ipv4_gateway, (eth::Ipv4Address{{212, 73, 34, 241}}));
  EXPECT_THAT(c->ipv4_dns_servers,
              ::testing::ElementsAre(eth::Ipv4Address{{212, 166, 210, 80}}, eth::Ipv4Address{{212, 73, 32, 67}}));
  EXPECT_EQ(c->ipv4_mtu, 1500u);
  EXPECT_TRUE(c->ipv6_addresses.empty());
  EXPECT_FALSE(c->ipv6_gateway);
  EXPECT_EQ(encode_command_done(0x1a, kUuidBasicConnect, 15, Status::None, encode(*c)), kIpConfigurationV4);
}

// A5: IP_CONFIGURATION IPv4 + IPv6, T-Mobile US (ModemManager issue 453).
const ByteVector kIpConfigurationV4V6 = hex(
    "03000080c4000000240000000100000000000000a289cc33bcbb8b4fb6b0133ec2aae6df0f0000000000000094000000"
    "000000000f0000000f000000010000003c0000000100000050000000440000006400000002000000480000000200000074000000"
    "dc050000dc0500001d0000001cf6c9db1cf6c9dc0ab100220ab100d2400000002607fb90643b281f1dffbf3dc5c848ad2607fb90"
    "643b281ffdf780f4e399984afd00976a000000000000000000000009fd00976a000000000000000000000010");

TEST(MbimBasicConnect, IpConfigurationIpv4AndIpv6OfARealNetwork) {
  const auto m = parse_command_done(kIpConfigurationV4V6);
  ASSERT_TRUE(m);
  const auto c = parse_ip_configuration_info(m->information_buffer);
  ASSERT_TRUE(c) << to_string(c.error());
  EXPECT_EQ(c->ipv4_addresses.at(0), (Ipv4Element{29, {{28, 246, 201, 219}}}));
  EXPECT_EQ(c->ipv4_gateway, (eth::Ipv4Address{{28, 246, 201, 220}}));
  EXPECT_THAT(c->ipv4_dns_servers,
              ::testing::ElementsAre(eth::Ipv4Address{{10, 177, 0, 34}}, eth::Ipv4Address{{10, 177, 0, 210}}));
  const eth::Ipv6Address v6{{0x26, 0x07, 0xfb, 0x90, 0x64, 0x3b, 0x28, 0x1f, 0x1d, 0xff, 0xbf, 0x3d, 0xc5, 0xc8, 0x48,
                             0xad}};
  EXPECT_EQ(c->ipv6_addresses.at(0), (Ipv6Element{64, v6}));
  const eth::Ipv6Address gw{{0x26, 0x07, 0xfb, 0x90, 0x64, 0x3b, 0x28, 0x1f, 0xfd, 0xf7, 0x80, 0xf4, 0xe3, 0x99, 0x98,
                             0x4a}};
  EXPECT_EQ(c->ipv6_gateway, gw);
  ASSERT_EQ(c->ipv6_dns_servers.size(), 2u);
  EXPECT_EQ(c->ipv6_dns_servers[0].bytes[15], 0x09);
  EXPECT_EQ(c->ipv6_dns_servers[1].bytes[15], 0x10);
  EXPECT_EQ(c->ipv4_mtu, 1500u);
  EXPECT_EQ(c->ipv6_mtu, 1500u);
  EXPECT_EQ(encode_command_done(0x24, kUuidBasicConnect, 15, Status::None, encode(*c)), kIpConfigurationV4V6);
}

TEST(MbimBasicConnect, ConnectAnswerWithoutInformationBufferIsRejected) {
  // A9: CONNECT, Status FAILURE, no InformationBuffer: framing fine, payload too short.
  const ByteVector bytes = hex("03000080300000001a0d00000100000000000000"
                               "a289cc33bcbb8b4fb6b0133ec2aae6df0c0000000200000000000000");
  const auto m = parse_command_done(bytes);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->transaction_id, 0x0d1au);
  EXPECT_EQ(m->status, Status::Failure);
  EXPECT_EQ(parse_connect_info(m->information_buffer).error(), WireError::InformationBufferTooShort);
}

// A15 as libmbim ships it: MessageLength 108 = 48 + InformationBufferLength 60, but 112 bytes
// supplied (the pad of the access-string TLV). Consistent header: accepted, the 4 bytes after
// MessageLength are not part of the message (decision in mbim_wire.hpp, validate()).
TEST(MbimBasicConnect, BytesAfterMessageLengthAreIgnored) {
  const ByteVector bytes = hex(
      "030000806c000000040000000100000000000000a289cc33bcbb8b4fb6b0133ec2aae6df0c000000000000003c000000"
      "010000000100000000000000010000007e5e2a7e4e6f7272736b656e7e5e2a7e00000000010000000a00000010000000"
      "69006e007400650072006e0065007400");
  ASSERT_EQ(bytes.size(), 112u);
  const auto m = parse_command_done(bytes);
  ASSERT_TRUE(m) << to_string(m.error());
  EXPECT_EQ(m->information_buffer.size(), 60u);
  // The MBIM 1.0 part of the MBIMEx v3 answer (the first 36 bytes) reads as a CONNECT answer.
  const auto c = parse_connect_info(m->information_buffer);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->session_id, 1u);
  EXPECT_EQ(c->activation_state, ActivationState::Activated);
  EXPECT_EQ(c->ip_type, IpType::IPv4);
  EXPECT_EQ(c->context_type, kUuidContextTypeInternet);
  // The reassembler hands over exactly MessageLength bytes.
  Reassembler r;
  ASSERT_TRUE(r.feed(bytes));
  EXPECT_EQ(r.message().size(), 108u);
}

// ---- host commands as libmbim builds them (libmbim.md C) -----------------------------------------

TEST(MbimBasicConnect, PinSetMatchesLibmbim) {
  const ByteVector expected = hex(
      "03000000 50000000 01000000 01000000 00000000 a289cc33bcbb8b4fb6b0133ec2aae6df"
      "04000000 01000000 20000000"  // CID PIN, SET, 32 bytes
      "02000000"                    // PinType PIN1
      "00000000"                    // PinOperation ENTER
      "18000000 08000000"           // Pin {0x18, 8}
      "00000000 00000000"           // NewPin absent
      "3100310031003100");          // "1111"
  const ByteVector built = encode_command(1, kUuidBasicConnect, cid(BasicConnectCid::Pin), CommandType::Set,
                                          encode(PinSet{pin_type::kPin1, pin_operation::kEnter, "1111", ""}));
  EXPECT_EQ(built, expected);
  const auto back = parse_pin_set(parse_command(built)->information_buffer);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->pin, "1111");
}

TEST(MbimBasicConnect, ConnectSetMatchesLibmbim) {
  const ByteVector expected = hex(
      "03000000 7c000000 01000000 01000000 00000000 a289cc33bcbb8b4fb6b0133ec2aae6df"
      "0c000000 01000000 4c000000"        // CID CONNECT, SET, 76 bytes
      "01000000"                          // SessionId 1
      "01000000"                          // ActivationCommand ACTIVATE
      "3c000000 10000000"                 // AccessString {0x3c, 16}
      "00000000 00000000"                 // UserName absent
      "00000000 00000000"                 // Password absent
      "00000000"                          // Compression NONE
      "01000000"                          // AuthProtocol PAP
      "01000000"                          // IpType IPV4
      "7e5e2a7e4e6f7272736b656e7e5e2a7e"  // ContextType INTERNET
      "69006e007400650072006e0065007400");  // "internet"
  ConnectSet set;
  set.session_id = 1;
  set.access_string = "internet";
  set.auth_protocol = AuthProtocol::Pap;
  set.ip_type = IpType::IPv4;
  const ByteVector built =
      encode_command(1, kUuidBasicConnect, cid(BasicConnectCid::Connect), CommandType::Set, encode(set));
  EXPECT_EQ(built, expected);
  const auto back = parse_connect_set(parse_command(built)->information_buffer);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->session_id, 1u);
  EXPECT_EQ(back->access_string, "internet");
  EXPECT_EQ(back->auth_protocol, AuthProtocol::Pap);
  EXPECT_EQ(back->ip_type, IpType::IPv4);
  EXPECT_EQ(back->context_type, kUuidContextTypeInternet);
}

TEST(MbimBasicConnect, SmallPayloadsRoundTrip) {
  const auto radio = parse_radio_state_info(encode(RadioStateInfo{RadioState::Off, RadioState::On}));
  ASSERT_TRUE(radio);
  EXPECT_EQ(radio->hw_radio_state, RadioState::Off);
  EXPECT_EQ(radio->sw_radio_state, RadioState::On);
  EXPECT_EQ(parse_radio_state_set(encode_radio_state_set(RadioState::On)).value(), RadioState::On);
  EXPECT_EQ(encode_packet_service_set(PacketServiceAction::Detach), hex("01000000"));
  const PacketServiceInfo ps{0, PacketServiceState::Attached, data_class::kLte, 50'000'000, 0x1'0000'0001};
  const auto ps2 = parse_packet_service_info(encode(ps));
  ASSERT_TRUE(ps2);
  EXPECT_EQ(ps2->packet_service_state, PacketServiceState::Attached);
  EXPECT_EQ(ps2->downlink_speed_bits_per_s, 0x1'0000'0001u);
  EXPECT_EQ(encode(ps).size(), 28u);
  const ConnectInfo ci{3, ActivationState::Activated, 0, IpType::IPv4v6, kUuidContextTypeInternet, 0};
  EXPECT_EQ(encode(ci).size(), 36u);
  const auto ci2 = parse_connect_info(encode(ci));
  ASSERT_TRUE(ci2);
  EXPECT_EQ(ci2->session_id, 3u);
  EXPECT_EQ(ci2->activation_state, ActivationState::Activated);
  EXPECT_EQ(parse_session_id_query(encode_ip_configuration_query(5)).value(), 5u);
  EXPECT_EQ(encode_ip_configuration_query(5).size(), 60u);
}

// ---- fragments (libmbim.md E) ---------------------------------------------------------------------

TEST(MbimFragment, SplitMatchesLibmbim) {
  // E3: a 48-byte INDICATE_STATUS-typed message split at 28 bytes -> 28, 28, 28, 24.
  const ByteVector e3 = hex("0700008030000000010000000100000000000000000102030405060708090a0b0c0d0e0f"
                            "101112131415161718191a1b");
  const ByteVector e3_out = hex(
      "070000801c0000000100000004000000000000000001020304050607"
      "070000801c00000001000000040000000100000008090a0b0c0d0e0f"
      "070000801c0000000100000004000000020000001011121314151617"
      "070000801800000001000000040000000300000018191a1b");
  auto pieces = fragment(e3, 28);
  ASSERT_TRUE(pieces) << to_string(pieces.error());
  ByteVector joined;
  for (const auto& p : *pieces) joined.insert(joined.end(), p.begin(), p.end());
  EXPECT_EQ(joined, e3_out);
  // E4: 44 bytes -> three of 28.
  const ByteVector e4 = hex("070000802c000000010000000100000000000000000102030405060708090a0b0c0d0e0f1011121314151617");
  pieces = fragment(e4, 28);
  ASSERT_TRUE(pieces);
  ASSERT_EQ(pieces->size(), 3u);
  EXPECT_EQ(pieces->at(2), hex("070000801c0000000100000003000000020000001011121314151617"));
  // A message that fits is returned as is; a non-fragmentable one that does not fit is refused.
  EXPECT_EQ(fragment(e3, 48)->size(), 1u);
  EXPECT_EQ(fragment(encode_open(1, 4096), 12).error(), WireError::MessageTooLarge);
  EXPECT_EQ(fragment(e3, 20).error(), WireError::MessageTooLarge);
}

TEST(MbimFragment, ReassemblesLibmbimFragments) {
  // E2: four fragments of one indication; the reassembled payload is 28 bytes.
  const ByteVector f[] = {
      hex("070000801c0000000100000004000000000000000001020304050607"),
      hex("070000801c00000001000000040000000100000008090a0b0c0d0e0f"),
      hex("070000801c0000000100000004000000020000001011121304000000"),
      hex("070000801800000001000000040000000300000018191a1b"),
  };
  Reassembler r;
  for (int i = 0; i < 3; ++i) {
    const auto s = r.feed(f[i]);
    ASSERT_TRUE(s);
    EXPECT_EQ(*s, Reassembler::State::NeedMore);
  }
  const auto s = r.feed(f[3]);
  ASSERT_TRUE(s) << to_string(s.error());
  EXPECT_EQ(*s, Reassembler::State::Complete);
  EXPECT_EQ(ByteVector(r.message().begin(), r.message().end()),
            hex("07000080 30000000 01000000 01000000 00000000"
                "000102030405060708090a0b0c0d0e0f101112130400000018191a1b"));
  const auto ind = parse_indicate_status(r.message());
  ASSERT_TRUE(ind) << to_string(ind.error());
  EXPECT_EQ(ind->cid, 0x13121110u);
  EXPECT_EQ(ByteVector(ind->information_buffer.begin(), ind->information_buffer.end()), hex("18191a1b"));
  // E1: a single-fragment message passes straight through.
  const ByteVector e1 = hex("070000802c0000000100000001000000000000000102030405060708090a0b0c0d0e0f001112131400000000");
  ASSERT_EQ(*r.feed(e1), Reassembler::State::Complete);
  EXPECT_EQ(r.message().size(), 44u);
}

// A 200-byte COMMAND_DONE split into 64-byte fragments, for the error cases.
std::vector<ByteVector> sample_fragments(TransactionId tid = 5) {
  const ByteVector info(152, 0xAB);
  return *fragment(encode_command_done(tid, kUuidBasicConnect, 1, Status::None, info), 64);
}

TEST(MbimFragment, ReassemblyErrorsAreNamedAndDropThePartialMessage) {
  const auto f = sample_fragments();
  ASSERT_EQ(f.size(), 5u);  // 180 payload bytes / 44 per fragment
  {
    Reassembler r;
    ASSERT_TRUE(r.feed(f[0]));
    EXPECT_EQ(r.feed(f[2]).error(), WireError::FragmentOutOfSequence);
    EXPECT_FALSE(r.partial());
    EXPECT_EQ(r.feed(f[1]).error(), WireError::FragmentOutOfSequence);  // nothing to continue
  }
  {
    Reassembler r;
    ASSERT_TRUE(r.feed(f[0]));
    EXPECT_EQ(r.feed(sample_fragments(6)[1]).error(), WireError::FragmentTransactionMismatch);
  }
  {
    Reassembler r;
    ASSERT_TRUE(r.feed(f[0]));
    ByteVector other = f[1];
    other[3] = 0x00;  // COMMAND instead of COMMAND_DONE
    EXPECT_EQ(r.feed(other).error(), WireError::FragmentTypeMismatch);
  }
  {
    Reassembler r;
    ASSERT_TRUE(r.feed(f[0]));
    ByteVector other = f[1];
    other[12] = 9;
    EXPECT_EQ(r.feed(other).error(), WireError::FragmentTotalMismatch);
  }
  {
    Reassembler r(ReassemblyLimits{4, 65536});
    EXPECT_EQ(r.feed(f[0]).error(), WireError::TooManyFragments);
  }
  {
    Reassembler r(ReassemblyLimits{64, 150});
    ASSERT_TRUE(r.feed(f[0]));
    ASSERT_TRUE(r.feed(f[1]));
    EXPECT_EQ(r.feed(f[2]).error(), WireError::MessageTooLarge);
    EXPECT_FALSE(r.partial());
  }
  {
    // A new fragment 0 abandons the partial message; interleaved non-fragmentable messages pass.
    Reassembler r;
    ASSERT_TRUE(r.feed(f[0]));
    ASSERT_TRUE(r.feed(f[1]));
    ASSERT_EQ(*r.feed(encode_done(MessageType::OpenDone, 9, Status::None)), Reassembler::State::Complete);
    EXPECT_TRUE(r.partial());
    for (const auto& piece : f) ASSERT_TRUE(r.feed(piece));
    EXPECT_EQ(r.abandoned(), 1u);
    const auto done = parse_command_done(r.message());
    ASSERT_TRUE(done);
    EXPECT_EQ(done->information_buffer.size(), 152u);
  }
  {
    // Fragment header sanity.
    Reassembler r;
    ByteVector bad = f[1];
    bad[16] = 7;  // current 7 of 5
    EXPECT_EQ(r.feed(bad).error(), WireError::BadFragmentCurrent);
    bad = f[0];
    bad[4] = 19;
    EXPECT_EQ(r.feed(bad).error(), WireError::MessageLengthTooShort);
    EXPECT_EQ(r.feed(Bytes(f[0]).first(30)).error(), WireError::Truncated);
  }
}

// ---- strings -----------------------------------------------------------------------------------------

TEST(MbimStrings, Utf16) {
  EXPECT_EQ(encode_utf16le("internet"), hex("69006e007400650072006e0065007400"));
  EXPECT_EQ(decode_utf16le(hex("3d d8 00 de")).value(), "\xF0\x9F\x98\x80");  // U+1F600 surrogate pair
  EXPECT_EQ(encode_utf16le("\xF0\x9F\x98\x80"), hex("3dd800de"));
  EXPECT_EQ(decode_utf16le(hex("e9 00")).value(), "\xC3\xA9");
  EXPECT_EQ(decode_utf16le(hex("00 d8 41 00")).value(), "\xEF\xBF\xBD" "A");  // unpaired high surrogate
  EXPECT_EQ(decode_utf16le(hex("41 00 42")).error(), WireError::StringOddLength);
  EXPECT_EQ(encode_utf16le(std::string("\xC3", 1)), hex("fdff"));  // truncated UTF-8 -> U+FFFD
}

TEST(MbimStrings, OlPairsAreBounded) {
  // A10's shape: an {offset, size} pair with the top bit set must not wrap.
  ByteVector info(64, 0);
  InfoWriter w(8);
  w.u32(0, 0x80000020);
  w.u32(4, 0x8000000A);
  const InfoReader r(w.bytes());
  EXPECT_EQ(r.ol_string(0).error(), WireError::OffsetOutOfBounds);
  EXPECT_EQ(r.ol_bytes(4).error(), WireError::InformationBufferTooShort);
  EXPECT_EQ(r.array(0, 0xFFFFFFFF, 20).error(), WireError::OffsetOutOfBounds);
  // Odd-length string inside the buffer.
  InfoWriter odd(8);
  odd.u32(0, 8);
  odd.u32(4, 3);
  odd.append(hex("410042"));
  EXPECT_EQ(InfoReader(odd.bytes()).ol_string(0).error(), WireError::StringOddLength);
}

// ---- QMI over MBIM (real_mbim_qmi_over_mbim_traces.md) ---------------------------------------------

TEST(MbimQmi, FccAuthenticationRequestOfARealEm7355) {
  // T1: MBIM COMMAND on the QMI service carrying DMS 0x555F from client 0x14.
  const ByteVector expected = hex(
      "03000000 3d000000 07000000 01000000 00000000"  // COMMAND, 61 bytes, tid 7, fragment 0/1
      "d1a30bc2f97a6e43bf65c7e24fb0f0d3"              // QMI service
      "01000000 01000000 0d000000"                    // CID 1 (QMI_MSG), SET, 13 bytes (no padding)
      "01"                                            // QMUX I/F type
      "0c00"                                          // Length 12
      "00"                                            // flags: from host
      "02"                                            // service DMS
      "14"                                            // client id 0x14
      "00"                                            // SDU flags: request
      "0100"                                          // transaction id 1
      "5f55"                                          // message 0x555F Set FCC Authentication
      "0000");                                        // no TLVs
  const ByteVector qmux = qmi::encode_dms_set_fcc_authentication(0x14, 1);
  EXPECT_EQ(encode_command(7, kUuidQmi, kQmiCidMsg, CommandType::Set, qmux), expected);
  const auto m = parse_command(expected);
  ASSERT_TRUE(m);
  const auto q = qmi::parse(m->information_buffer);
  ASSERT_TRUE(q) << to_string(q.error());
  EXPECT_EQ(q->service, qmi::kServiceDms);
  EXPECT_EQ(q->client_id, 0x14);
  EXPECT_EQ(q->message_id, qmi::kDmsSetFccAuthentication);
  EXPECT_TRUE(q->tlvs.empty());
}

TEST(MbimQmi, FccAuthenticationResponseOfARealEm7355) {
  const ByteVector response = hex(
      "03000080 44000000 07000000 01000000 00000000 d1a30bc2f97a6e43bf65c7e24fb0f0d3"
      "01000000 00000000 14000000"  // CID 1, Status NONE, 20 bytes
      "01 1300 80 02 14"            // QMUX: length 19, from device, DMS, client 0x14
      "02 0100 5f55 0700"           // response, tid 1, 0x555F, TLVs 7 bytes
      "02 0400 0000 0000");         // result TLV: success, no error
  const auto m = parse_command_done(response);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->service, kUuidQmi);
  const auto q = qmi::parse(m->information_buffer);
  ASSERT_TRUE(q);
  EXPECT_EQ(q->qmux_flags, qmi::kQmuxFlagFromDevice);
  EXPECT_EQ(q->sdu_flags, qmi::kSduFlagResponseService);
  EXPECT_EQ(q->transaction_id, 1);
  const auto result = qmi::parse_result(q->tlvs);
  ASSERT_TRUE(result);
  EXPECT_EQ(result->result, 0);
  EXPECT_EQ(result->error, 0);
  // The same bytes from our encoder (what the emulated modem answers).
  const ByteVector result_tlv = hex("02 0400 0000 0000");
  const qmi::Message answer{qmi::kQmuxFlagFromDevice, qmi::kServiceDms, 0x14, qmi::kSduFlagResponseService, 1,
                            qmi::kDmsSetFccAuthentication, result_tlv};
  EXPECT_EQ(encode_command_done(7, kUuidQmi, 1, Status::None, qmi::encode(answer)), response);
}

TEST(MbimQmi, CtlAllocateClientIdOfARealEm7455) {
  // T2.3 request and T2.4 answer (client id 3 for DMS).
  EXPECT_EQ(encode_command(5, kUuidQmi, 1, CommandType::Set, qmi::encode_ctl_allocate_client_id(4, qmi::kServiceDms)),
            hex("03000000 40000000 05000000 01000000 00000000 d1a30bc2f97a6e43bf65c7e24fb0f0d3"
                "01000000 01000000 10000000"
                "01 0f00 00 00 00 | 00 04 2200 0400 | 01 0100 02"));
  const ByteVector answer = hex(
      "03000080 48000000 05000000 01000000 00000000 d1a30bc2f97a6e43bf65c7e24fb0f0d3 01000000 00000000 18000000"
      "01 1700 80 00 00 01 04 2200 0c00 02 0400 0000 0000 01 0200 02 03");
  const auto m = parse_command_done(answer);  // views into `answer`
  ASSERT_TRUE(m);
  const auto q = qmi::parse(m->information_buffer);
  ASSERT_TRUE(q);
  EXPECT_EQ(q->service, qmi::kServiceCtl);
  EXPECT_EQ(q->sdu_flags, qmi::kSduFlagResponseCtl);
  EXPECT_EQ(q->transaction_id, 4);
  EXPECT_EQ(q->message_id, qmi::kCtlAllocateClientId);
  EXPECT_EQ(qmi::parse_result(q->tlvs)->result, 0);
  const auto alloc = qmi::find_tlv(q->tlvs, qmi::kTlvAllocationInfo);
  ASSERT_TRUE(alloc);
  EXPECT_EQ(ByteVector(alloc->begin(), alloc->end()), hex("02 03"));
}

TEST(MbimQmi, MalformedQmuxIsNamed) {
  EXPECT_EQ(qmi::parse(hex("01 0c00 00 02")).error(), WireError::Truncated);
  EXPECT_EQ(qmi::parse(hex("02 0c00 00 02 14 00 0100 5f55 0000")).error(), WireError::QmuxBadInterfaceType);
  EXPECT_EQ(qmi::parse(hex("01 0d00 00 02 14 00 0100 5f55 0000")).error(), WireError::QmuxBadLength);
  EXPECT_EQ(qmi::parse(hex("01 0c00 00 02 14 00 0100 5f55 0100")).error(), WireError::QmiTlvOverrun);
  EXPECT_EQ(qmi::find_tlv(hex("02 0500 0000 0000"), 2).error(), WireError::QmiTlvOverrun);
  EXPECT_EQ(qmi::find_tlv(hex("02 0400 0000 0000"), 1).error(), WireError::QmiMissingTlv);
  EXPECT_EQ(qmi::parse_result(hex("02 0200 0000")).error(), WireError::QmiTlvOverrun);
}

// ---- hostile input -----------------------------------------------------------------------------------

// Runs every decoder on `bytes`; each must return a value or a named error (no crash, no
// out-of-bounds read under ASan).
void decode_everything(Bytes bytes) {
  (void)validate(bytes);
  (void)parse_open(bytes);
  (void)parse_close(bytes);
  (void)parse_done(bytes);
  (void)parse_error(bytes);
  (void)parse_command(bytes);
  (void)parse_indicate_status(bytes);
  const auto done = parse_command_done(bytes);
  const Bytes info = done ? done->information_buffer : bytes;
  (void)parse_device_caps_info(info);
  (void)parse_subscriber_ready_status_info(info);
  (void)parse_radio_state_set(info);
  (void)parse_radio_state_info(info);
  (void)parse_pin_set(info);
  (void)parse_pin_info(info);
  (void)parse_registration_state_info(info);
  (void)parse_packet_service_set(info);
  (void)parse_packet_service_info(info);
  (void)parse_connect_set(info);
  (void)parse_connect_info(info);
  (void)parse_ip_configuration_info(info);
  (void)parse_session_id_query(info);
  if (const auto q = qmi::parse(info)) (void)qmi::parse_result(q->tlvs);
  Reassembler r(ReassemblyLimits{8, 4096});
  (void)r.feed(bytes);
  (void)fragment(bytes, 64);
}

TEST(MbimHostile, LibmbimFuzzerSamples) {
  for (const char* sample : {
           "03",
           "030000804600000000000000010000000000000068223d049f6c4e0f822d28441fb72340010000000000000005000000"
           "000000000000000000002eb723405967bdcc7fd249a29f5cb2e70e527db3010000002340010000000003000009",
           "0300008031000000004c00000100000000000000c2f6588ef0374bc98665f4d44bd09367050000004c005d0001000000"
           "0004000080000000a0000001008032",
           "0300008033000000000055080100000000000000c2f6588ef0374bc98665f4d44bd09367050000003200000001000000"
           "000100ffffffffffffffff000000000000000000000000000000b0131200cacaca0000e8",
       }) {
    const ByteVector b = hex(sample);
    decode_everything(b);
  }
  EXPECT_EQ(validate(hex("03")).error(), WireError::Truncated);
}

TEST(MbimHostile, EveryPrefixOfEveryGoldenMessage) {
  for (const ByteVector* m : {&kDeviceCapsE367, &kRegisterState, &kIpConfigurationV4, &kIpConfigurationV4V6,
                              &kCommandDonePin}) {
    for (std::size_t n = 0; n <= m->size(); ++n) decode_everything(Bytes(*m).first(n));
    // And every prefix of the InformationBuffer alone, which the payload decoders must bound.
    const auto done = parse_command_done(*m);
    ASSERT_TRUE(done);
    for (std::size_t n = 0; n <= done->information_buffer.size(); ++n) decode_everything(done->information_buffer.first(n));
  }
}

TEST(MbimHostile, RandomBytesAndRandomMutations) {
  std::mt19937 rng(20260);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int round = 0; round < 3000; ++round) {
    // Mutate a golden message: flips in the header and the offsets reach the interesting paths.
    ByteVector m = round % 2 == 0 ? kIpConfigurationV4V6 : kDeviceCapsE367;
    const int flips = 1 + round % 6;
    for (int i = 0; i < flips; ++i)
      m[static_cast<std::size_t>(rng() % m.size())] = static_cast<std::uint8_t>(byte(rng));
    decode_everything(m);
    ByteVector noise(static_cast<std::size_t>(rng() % 300));
    for (auto& b : noise) b = static_cast<std::uint8_t>(byte(rng));
    if (noise.size() >= 4 && round % 3 == 0) noise[3] = 0x80, noise[0] = 0x03;  // look like COMMAND_DONE
    decode_everything(noise);
  }
  SUCCEED();
}

}  // namespace
}  // namespace wwan::mbim
