// `wwan-dp decode mbim`'s JSON (control/mbim_json.hpp) on golden vectors: libmbim's real-device
// answers and builder output (../shared/reference/vectors/libmbim.md), the Sierra QMI-over-MBIM
// traces and the EM7455 FUNCTION_ERROR (real_mbim_qmi_over_mbim_traces.md). The expected strings
// are whole lines, so any change of a key or a value shows.
#include "control/mbim_json.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "tests/support/hex.hpp"

namespace wwan::mbim {
namespace {

using wwan::test::hex;

// libmbim.md A4 (IPv4 only; the C comment's address is wrong, the bytes say 212.73.34.248/28).
const ByteVector kIpConfigurationA4 = hex(
    "03000080800000001a0000000100000000000000a289cc33bcbb8b4fb6b0133ec2aae6df0f00000000000000500000000000"
    "00000f00000000000000010000003c0000000000000000000000440000000000000002000000480000000000000000000000"
    "dc050000000000001c000000d44922f8d44922f1d4a6d250d4492043");
// libmbim.md A5 (IPv4 + IPv6, T-Mobile US).
const ByteVector kIpConfigurationA5 = hex(
    "03000080c4000000240000000100000000000000a289cc33bcbb8b4fb6b0133ec2aae6df0f0000000000000094000000000000000f00"
    "00000f000000010000003c0000000100000050000000440000006400000002000000480000000200000074000000dc050000dc050000"
    "1d0000001cf6c9db1cf6c9dc0ab100220ab100d2400000002607fb90643b281f1dffbf3dc5c848ad2607fb90643b281ffdf780f4e399"
    "984afd00976a000000000000000000000009fd00976a000000000000000000000010");
// libmbim.md A3 (Huawei E367).
const ByteVector kDeviceCapsA3 = hex(
    "03000080d0000000020000000100000000000000a289cc33bcbb8b4fb6b0133ec2aae6df0100000000000000a000000002000000"
    "0100000001000000020000001f000080030000000100000001000000400000000a0000004c0000001e0000006c0000001e000000"
    "8c0000001200000048005300500041002b00000033003500330036003100330030003400380038003000340036003200320000003100"
    "31002e003800310030002e00300039002e00300030002e00300030000000430050003100450033003600370055004d000000");
// libmbim.md A7.
const ByteVector kRegisterStateA7 = hex(
    "030000806c000000120000000100000000000000a289cc33bcbb8b4fb6b0133ec2aae6df09000000000000003c000000000000000300"
    "0000010000001c00000001000000300000000a0000000000000000000000000000000000000002000000320036003000300036000000");
// libmbim.md C test_basic_connect_connect_set.
const ByteVector kConnectSetC = hex(
    "030000007c000000010000000100000000000000a289cc33bcbb8b4fb6b0133ec2aae6df0c000000010000004c00000001000000"
    "010000003c00000010000000000000000000000000000000000000000000000001000000010000007e5e2a7e4e6f7272736b656e"
    "7e5e2a7e69006e007400650072006e0065007400");

std::string one(const ByteVector& m) { return message_json(m); }

TEST(MbimJson, IpConfigurationIpv4) {
  EXPECT_EQ(one(kIpConfigurationA4),
            R"({"type":"COMMAND_DONE","transaction":26,"length":128,"service":"a289cc33-bcbb-8b4f-b6b0-133ec2aae6df",)"
            R"("service_name":"BASIC_CONNECT","cid":15,"cid_name":"IP_CONFIGURATION","status":"NONE",)"
            R"("information_buffer_length":80,"fields":{"session_id":0,"ipv4":["212.73.34.248/28"],"ipv6":[],)"
            R"("ipv4_gateway":"212.73.34.241","ipv6_gateway":null,"ipv4_dns":["212.166.210.80","212.73.32.67"],)"
            R"("ipv6_dns":[],"ipv4_mtu":1500,"ipv6_mtu":0}})");
}

TEST(MbimJson, IpConfigurationIpv4AndIpv6OfARealNetwork) {
  EXPECT_EQ(one(kIpConfigurationA5),
            R"({"type":"COMMAND_DONE","transaction":36,"length":196,"service":"a289cc33-bcbb-8b4f-b6b0-133ec2aae6df",)"
            R"("service_name":"BASIC_CONNECT","cid":15,"cid_name":"IP_CONFIGURATION","status":"NONE",)"
            R"("information_buffer_length":148,"fields":{"session_id":0,"ipv4":["28.246.201.219/29"],)"
            R"("ipv6":["2607:fb90:643b:281f:1dff:bf3d:c5c8:48ad/64"],"ipv4_gateway":"28.246.201.220",)"
            R"("ipv6_gateway":"2607:fb90:643b:281f:fdf7:80f4:e399:984a","ipv4_dns":["10.177.0.34","10.177.0.210"],)"
            R"("ipv6_dns":["fd00:976a::9","fd00:976a::10"],"ipv4_mtu":1500,"ipv6_mtu":1500}})");
}

TEST(MbimJson, DeviceCapsRegisterStateConnect) {
  EXPECT_EQ(one(kDeviceCapsA3),
            R"({"type":"COMMAND_DONE","transaction":2,"length":208,"service":"a289cc33-bcbb-8b4f-b6b0-133ec2aae6df",)"
            R"("service_name":"BASIC_CONNECT","cid":1,"cid_name":"DEVICE_CAPS","status":"NONE",)"
            R"("information_buffer_length":160,"fields":{"device_id":"353613048804622","firmware":"11.810.09.00.00",)"
            R"("hardware":"CP1E367UM","max_sessions":1}})");
  EXPECT_EQ(one(kRegisterStateA7),
            R"({"type":"COMMAND_DONE","transaction":18,"length":108,"service":"a289cc33-bcbb-8b4f-b6b0-133ec2aae6df",)"
            R"("service_name":"BASIC_CONNECT","cid":9,"cid_name":"REGISTER_STATE","status":"NONE",)"
            R"("information_buffer_length":60,"fields":{"register_state":"home","provider_id":"26006",)"
            R"("provider_name":"","nw_error":0}})");
  EXPECT_EQ(one(kConnectSetC),
            R"({"type":"COMMAND","transaction":1,"length":124,"service":"a289cc33-bcbb-8b4f-b6b0-133ec2aae6df",)"
            R"("service_name":"BASIC_CONNECT","cid":12,"cid_name":"CONNECT","command_type":"set",)"
            R"("information_buffer_length":76,"fields":{"session_id":1,"activation_command":"activate",)"
            R"("access_string":"internet","user_name":"","password_set":false,"auth_protocol":"pap","ip_type":"ipv4"}})");
  ConnectInfo c;
  c.session_id = 0;
  c.activation_state = ActivationState::Deactivated;
  c.nw_error = 36;
  EXPECT_EQ(one(encode_indicate_status(0, kUuidBasicConnect, 12, encode(c))),
            R"({"type":"INDICATE_STATUS","transaction":0,"length":80,"service":"a289cc33-bcbb-8b4f-b6b0-133ec2aae6df",)"
            R"("service_name":"BASIC_CONNECT","cid":12,"cid_name":"CONNECT","information_buffer_length":36,)"
            R"("fields":{"session_id":0,"activation_state":"deactivated","ip_type":"default","nw_error":36}})");
}

TEST(MbimJson, FramingMessagesAndErrors) {
  EXPECT_EQ(one(hex("01000000 10000000 01000000 00100000")),  // T2.1
            R"({"type":"OPEN","transaction":1,"length":16,"max_control_transfer":4096})");
  EXPECT_EQ(one(hex("01000080 10000000 01000000 00000000")),  // T2.2
            R"({"type":"OPEN_DONE","transaction":1,"length":16,"status":"NONE"})");
  EXPECT_EQ(one(hex("04000080 10000000 07000000 03000000")),  // T2.6
            R"({"type":"FUNCTION_ERROR","transaction":7,"length":16,"error_status_code":"LENGTH_MISMATCH"})");
  EXPECT_EQ(one(hex("02000000 0c000000 39300000")), R"({"type":"CLOSE","transaction":12345,"length":12})");
  EXPECT_EQ(one(encode_done(MessageType::CloseDone, 3, static_cast<Status>(0x1234))),
            R"({"type":"CLOSE_DONE","transaction":3,"length":16,"status":"0x00001234"})");
  // Malformed framing: only the error.
  EXPECT_EQ(one(hex("03000080 6c000000")), R"({"error":"truncated"})");
  EXPECT_EQ(one(hex("03cdab80 10000000 01000000 00000000")), R"({"error":"unknown_message_type"})");
  // A CONNECT answer with no InformationBuffer (libmbim.md A9): the envelope, no fields, no error.
  EXPECT_EQ(one(hex("03000080300000001a0d00000100000000000000a289cc33bcbb8b4fb6b0133ec2aae6df0c0000000200000000000000")),
            R"({"type":"COMMAND_DONE","transaction":3354,"length":48,"service":"a289cc33-bcbb-8b4f-b6b0-133ec2aae6df",)"
            R"("service_name":"BASIC_CONNECT","cid":12,"cid_name":"CONNECT","status":"FAILURE","information_buffer_length":0})");
  // A payload that does not decode: the envelope with "error".
  ByteVector bad = kRegisterStateA7;
  bad[48 + 20] = 0xff;  // ProviderId offset far out of the buffer
  EXPECT_EQ(one(bad),
            R"({"type":"COMMAND_DONE","transaction":18,"length":108,"service":"a289cc33-bcbb-8b4f-b6b0-133ec2aae6df",)"
            R"("service_name":"BASIC_CONNECT","cid":9,"cid_name":"REGISTER_STATE","status":"NONE",)"
            R"("information_buffer_length":60,"error":"offset_out_of_bounds"})");
}

TEST(MbimJson, QmiOverMbim) {
  // T1: the Sierra FCC authentication answer (DMS 0x555F, client 0x14, success).
  EXPECT_EQ(one(hex("03000080 44000000 07000000 01000000 00000000 d1a30bc2f97a6e43bf65c7e24fb0f0d3 01000000 00000000"
                    "14000000 01130080 02140201 005f5507 00020400 00000000")),
            R"({"type":"COMMAND_DONE","transaction":7,"length":68,"service":"d1a30bc2-f97a-6e43-bf65-c7e24fb0f0d3",)"
            R"("service_name":"QMI","cid":1,"cid_name":"MSG","status":"NONE","information_buffer_length":20,)"
            R"("qmi":{"service":2,"client_id":20,"transaction":1,"message_id":"0x555f","response":true,"result":0,"error":0}})");
}

TEST(MbimJson, StreamOfMessagesAndFragments) {
  // Fragments of A5 (MaxControlTransfer 64) between two whole messages: three lines.
  ByteVector capture = hex("01000080 10000000 01000000 00000000");
  const auto pieces = fragment(kIpConfigurationA5, 64);
  ASSERT_TRUE(pieces);
  for (const auto& p : pieces.value()) capture.insert(capture.end(), p.begin(), p.end());
  capture.insert(capture.end(), kRegisterStateA7.begin(), kRegisterStateA7.end());
  const std::string out = stream_json(capture);
  const std::string expected_ip = one(kIpConfigurationA5);
  const std::string with_fragments =
      expected_ip.substr(0, expected_ip.find(",\"service\"")) + ",\"fragments\":" +
      std::to_string(pieces->size()) + expected_ip.substr(expected_ip.find(",\"service\""));
  EXPECT_EQ(out, one(hex("01000080 10000000 01000000 00000000")) + "\n" + with_fragments + "\n" +
                     one(kRegisterStateA7) + "\n");
  // Cut in the middle of a piece: the complete ones, then where it broke.
  const ByteVector cut(capture.begin(), capture.begin() + 16 + 64 + 10);
  EXPECT_EQ(stream_json(cut), one(hex("01000080 10000000 01000000 00000000")) + "\n" +
                                  R"({"error":"truncated","offset":80})" + "\n");
  // Fragments missing at the end.
  const ByteVector partial(capture.begin(), capture.begin() + 16 + 64);
  EXPECT_EQ(stream_json(partial), one(hex("01000080 10000000 01000000 00000000")) + "\n" +
                                      R"({"error":"incomplete_fragments","offset":80})" + "\n");
}

TEST(MbimJson, StringsAreEscaped) {
  RegistrationStateInfo r;
  r.register_state = RegisterState::Roaming;
  r.provider_id = "001\"01";
  r.provider_name = "a\\b\nc";
  const std::string out = one(encode_command_done(5, kUuidBasicConnect, 9, Status::None, encode(r)));
  EXPECT_NE(out.find(R"("provider_id":"001\"01","provider_name":"a\\b\u000ac")"), std::string::npos) << out;
}

TEST(MbimJson, Ipv6Text) {
  EXPECT_EQ(ipv6_text(eth::Ipv6Address{}), "::");
  EXPECT_EQ(ipv6_text(eth::Ipv6Address{{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2}}), "2001:db8:0:1::2");
  EXPECT_EQ(ipv6_text(eth::Ipv6Address{{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}}), "::1");
  EXPECT_EQ(ipv6_text(eth::Ipv6Address{{0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}}), "fe80::");
  // RFC 5952 §4.2.2: a single zero group is not shortened; §4.2.3: the first of equal runs.
  EXPECT_EQ(ipv6_text(eth::Ipv6Address{{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1}}), "2001:db8:0:1:1:1:1:1");
  EXPECT_EQ(ipv6_text(eth::Ipv6Address{{0x20, 0x01, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1}}), "2001:0:0:1::1");
}

TEST(MbimJson, HostileInputNeverCrashes) {
  std::mt19937 rng(3);
  const std::vector<ByteVector> golden = {kIpConfigurationA4, kIpConfigurationA5, kDeviceCapsA3, kRegisterStateA7,
                                          kConnectSetC};
  for (int i = 0; i < 3000; ++i) {
    ByteVector b = golden[rng() % golden.size()];
    for (int k = static_cast<int>(rng() % 6); k > 0; --k) b[rng() % b.size()] = static_cast<std::uint8_t>(rng());
    if (rng() % 4 == 0) b.resize(rng() % (b.size() + 1));
    const std::string out = stream_json(b);
    EXPECT_FALSE(out.empty() && !b.empty());
  }
}

}  // namespace
}  // namespace wwan::mbim
