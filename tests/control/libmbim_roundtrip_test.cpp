// libmbim (Debian libmbim-glib) as an independent oracle for control/mbim_wire (DESIGN.md
// "Independent oracles"): what our encoder builds, libmbim parses (mbim_message_new +
// mbim_message_validate + its getters / response parsers) with the same field values, and is
// byte for byte what libmbim's own builders produce; what libmbim builds, our decoder reads.
// The session's own commands are taken from a running MbimSession, not re-encoded here.
//
// Built only when pkg-config finds mbim-glib (tests/meson.build); a separate executable so the
// main test binaries never link GLib.
#include <libmbim-glib.h>

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>

#include "control/mbim_session.hpp"
#include "control/mbim_wire.hpp"
#include "tests/support/hex.hpp"

namespace wwan::mbim {
namespace {

struct Unref {
  void operator()(MbimMessage* m) const { mbim_message_unref(m); }
};
using Message = std::unique_ptr<MbimMessage, Unref>;

// libmbim's view of our bytes.
Message lib(const ByteVector& bytes) {
  return Message(mbim_message_new(bytes.data(), static_cast<guint32>(bytes.size())));
}

ByteVector raw(const MbimMessage* m) {
  guint32 length = 0;
  const guint8* data = mbim_message_get_raw(m, &length, nullptr);
  return ByteVector(data, data + length);
}

// libmbim's validation, with its message on failure.
::testing::AssertionResult valid(const MbimMessage* m) {
  GError* error = nullptr;
  if (mbim_message_validate(m, &error)) return ::testing::AssertionSuccess();
  std::string text = error ? error->message : "?";
  if (error) g_error_free(error);
  return ::testing::AssertionFailure() << "libmbim: " << text;
}

std::string take(gchar* s) {
  std::string out = s ? s : "";
  g_free(s);
  return out;
}

using wwan::test::hex;

Uuid uuid_of(const MbimUuid* u) {
  Uuid out;
  std::memcpy(out.bytes.data(), u, 16);
  return out;
}

// ---- our commands, read by libmbim ------------------------------------------------------------

TEST(LibmbimRoundTrip, OpenAndClose) {
  const ByteVector open = encode_open(0x1234, 4096);
  const Message m = lib(open);
  ASSERT_TRUE(valid(m.get()));
  EXPECT_EQ(mbim_message_get_message_type(m.get()), MBIM_MESSAGE_TYPE_OPEN);
  EXPECT_EQ(mbim_message_get_transaction_id(m.get()), 0x1234u);
  EXPECT_EQ(mbim_message_open_get_max_control_transfer(m.get()), 4096u);
  const Message theirs(mbim_message_open_new(0x1234, 4096));
  EXPECT_EQ(raw(theirs.get()), open);
  const Message close(mbim_message_close_new(77));
  EXPECT_EQ(raw(close.get()), encode_close(77));
}

TEST(LibmbimRoundTrip, ConnectSetIsWhatLibmbimBuilds) {
  ConnectSet c;
  c.session_id = 0;
  c.access_string = "internet.example";
  c.user_name = "user";
  c.password = "p\xc3\xa4ss";  // non-ASCII: UTF-16 on the wire
  c.auth_protocol = AuthProtocol::Chap;
  c.ip_type = IpType::IPv4v6;
  const ByteVector info = encode(c);
  const ByteVector ours = encode_command(42, kUuidBasicConnect, cid(BasicConnectCid::Connect), CommandType::Set, info);
  const Message m = lib(ours);
  ASSERT_TRUE(valid(m.get()));
  EXPECT_EQ(mbim_message_command_get_service(m.get()), MBIM_SERVICE_BASIC_CONNECT);
  EXPECT_EQ(mbim_message_command_get_cid(m.get()), static_cast<guint32>(MBIM_CID_BASIC_CONNECT_CONNECT));
  EXPECT_EQ(mbim_message_command_get_command_type(m.get()), MBIM_MESSAGE_COMMAND_TYPE_SET);
  guint32 length = 0;
  const guint8* buffer = mbim_message_command_get_raw_information_buffer(m.get(), &length);
  EXPECT_EQ(ByteVector(buffer, buffer + length), info);

  GError* error = nullptr;
  const Message theirs(mbim_message_connect_set_new(
      0, MBIM_ACTIVATION_COMMAND_ACTIVATE, "internet.example", "user", "p\xc3\xa4ss", MBIM_COMPRESSION_NONE,
      MBIM_AUTH_PROTOCOL_CHAP, MBIM_CONTEXT_IP_TYPE_IPV4V6, mbim_uuid_from_context_type(MBIM_CONTEXT_TYPE_INTERNET),
      &error));
  ASSERT_TRUE(theirs) << (error ? error->message : "");
  mbim_message_set_transaction_id(theirs.get(), 42);
  EXPECT_EQ(raw(theirs.get()), ours);
}

TEST(LibmbimRoundTrip, IpConfigurationQueryIsWhatLibmbimBuilds) {
  const ByteVector ours = encode_command(9, kUuidBasicConnect, cid(BasicConnectCid::IpConfiguration),
                                         CommandType::Query, encode_ip_configuration_query(0));
  GError* error = nullptr;
  const Message theirs(mbim_message_ip_configuration_query_new(
      0, MBIM_IP_CONFIGURATION_AVAILABLE_FLAG_NONE, MBIM_IP_CONFIGURATION_AVAILABLE_FLAG_NONE, 0, nullptr, 0, nullptr,
      nullptr, nullptr, 0, nullptr, 0, nullptr, 0, 0, &error));
  ASSERT_TRUE(theirs) << (error ? error->message : "");
  mbim_message_set_transaction_id(theirs.get(), 9);
  EXPECT_EQ(raw(theirs.get()), ours);
  EXPECT_TRUE(valid(lib(ours).get()));
}

TEST(LibmbimRoundTrip, QmiMessageIsWhatLibmbimBuilds) {
  // anchors §4.5: the QMUX travels unpadded (13 bytes here; MessageLength 61).
  const ByteVector qmux = qmi::encode_dms_set_fcc_authentication(0x14, 1);
  ASSERT_EQ(qmux.size(), 13u);
  const ByteVector ours = encode_command(7, kUuidQmi, kQmiCidMsg, CommandType::Set, qmux);
  const Message m = lib(ours);
  ASSERT_TRUE(valid(m.get()));
  EXPECT_EQ(mbim_message_command_get_service(m.get()), MBIM_SERVICE_QMI);
  EXPECT_EQ(mbim_message_command_get_cid(m.get()), static_cast<guint32>(MBIM_CID_QMI_MSG));
  GError* error = nullptr;
  const Message theirs(mbim_message_qmi_msg_set_new(static_cast<guint32>(qmux.size()), qmux.data(), &error));
  ASSERT_TRUE(theirs) << (error ? error->message : "");
  mbim_message_set_transaction_id(theirs.get(), 7);
  EXPECT_EQ(raw(theirs.get()), ours);
}

// Every message a running session sends (against scripted answers) validates in libmbim.
TEST(LibmbimRoundTrip, SessionCommandsValidate) {
  control::SessionSettings settings;
  settings.apn = "internet";
  settings.pin = "1234";
  settings.fcc_unlock = true;
  control::MbimSession s(settings, 4096);
  const control::Clock::time_point now{};
  s.start(now);
  int validated = 0;
  const auto check = [&](MessageType expected_type) {
    auto pieces = s.take_commands();
    EXPECT_EQ(pieces.size(), 1u);
    if (pieces.empty()) return ByteVector{};
    const Message m = lib(pieces.front());
    EXPECT_TRUE(valid(m.get()));
    EXPECT_EQ(static_cast<std::uint32_t>(mbim_message_get_message_type(m.get())),
              static_cast<std::uint32_t>(expected_type));
    ++validated;
    return pieces.front();
  };
  const auto answer = [&](const ByteVector& sent, BasicConnectCid c, Status status, const ByteVector& info) {
    s.on_response(encode_command_done(read_header(sent)->transaction_id, kUuidBasicConnect, cid(c), status, info), now);
  };
  const ByteVector open = check(MessageType::Open);
  s.on_response(encode_done(MessageType::OpenDone, read_header(open)->transaction_id, Status::None), now);
  answer(check(MessageType::Command), BasicConnectCid::DeviceCaps, Status::Failure, {});
  SubscriberReadyStatusInfo locked;
  locked.ready_state = ReadyState::DeviceLocked;
  answer(check(MessageType::Command), BasicConnectCid::SubscriberReadyStatus, Status::None, encode(locked));
  answer(check(MessageType::Command), BasicConnectCid::Pin, Status::None, encode(PinInfo{pin_type::kPin1, 1, 3}));
  answer(check(MessageType::Command), BasicConnectCid::Pin, Status::None, encode(PinInfo{}));  // PIN set
  answer(check(MessageType::Command), BasicConnectCid::RadioState, Status::None, encode(RadioStateInfo{}));
  answer(check(MessageType::Command), BasicConnectCid::RadioState, Status::Failure, encode(RadioStateInfo{}));
  check(MessageType::Command);  // QMI CTL allocate
  EXPECT_EQ(s.step(), control::MbimSession::Step::FccClientId);
  s.stop(now);
  check(MessageType::Close);
  EXPECT_EQ(validated, 9);
}

// ---- our answers (the emulated modem's encoder), read by libmbim ------------------------------

TEST(LibmbimRoundTrip, DeviceCapsAnswer) {
  DeviceCapsInfo caps;
  caps.device_type = 1;
  caps.cellular_class = 1;
  caps.voice_class = 1;
  caps.sim_class = 2;
  caps.data_class = 0x3f;
  caps.sms_caps = 3;
  caps.control_caps = 1;
  caps.max_sessions = 8;
  caps.custom_data_class = "";
  caps.device_id = "359072060000001";
  caps.firmware_info = "SWI9X30C_02.24.05.06";
  caps.hardware_info = "EM7455";
  const Message m = lib(encode_command_done(3, kUuidBasicConnect, 1, Status::None, encode(caps)));
  ASSERT_TRUE(valid(m.get()));
  MbimDeviceType device_type{};
  guint32 max_sessions = 0;
  gchar *device_id = nullptr, *firmware = nullptr, *hardware = nullptr;
  GError* error = nullptr;
  ASSERT_TRUE(mbim_message_device_caps_response_parse(m.get(), &device_type, nullptr, nullptr, nullptr, nullptr,
                                                       nullptr, nullptr, &max_sessions, nullptr, &device_id, &firmware,
                                                       &hardware, &error))
      << (error ? error->message : "");
  EXPECT_EQ(device_type, MBIM_DEVICE_TYPE_EMBEDDED);
  EXPECT_EQ(max_sessions, 8u);
  EXPECT_EQ(take(device_id), caps.device_id);
  EXPECT_EQ(take(firmware), caps.firmware_info);
  EXPECT_EQ(take(hardware), caps.hardware_info);
}

TEST(LibmbimRoundTrip, RegisterStateAndSubscriberAnswers) {
  RegistrationStateInfo r;
  r.register_state = RegisterState::Roaming;
  r.register_mode = 1;
  r.available_data_classes = data_class::kLte;
  r.current_cellular_class = 1;
  r.provider_id = "00101";
  r.provider_name = "wwan-dp sim";
  r.registration_flag = 2;
  const Message m = lib(encode_indicate_status(0, kUuidBasicConnect, 9, encode(r)));
  ASSERT_TRUE(valid(m.get()));
  MbimRegisterState state{};
  gchar *id = nullptr, *name = nullptr, *roaming = nullptr;
  GError* error = nullptr;
  ASSERT_TRUE(mbim_message_register_state_notification_parse(m.get(), nullptr, &state, nullptr, nullptr, nullptr, &id,
                                                              &name, &roaming, nullptr, &error))
      << (error ? error->message : "");
  EXPECT_EQ(state, MBIM_REGISTER_STATE_ROAMING);
  EXPECT_EQ(take(id), "00101");
  EXPECT_EQ(take(name), "wwan-dp sim");
  EXPECT_EQ(take(roaming), "");

  SubscriberReadyStatusInfo s;
  s.ready_state = ReadyState::Initialized;
  s.subscriber_id = "001010123456789";
  s.sim_icc_id = "89001012345678901234";
  s.telephone_numbers = {"+15550100", "+15550101"};
  const Message sm = lib(encode_command_done(4, kUuidBasicConnect, 2, Status::None, encode(s)));
  ASSERT_TRUE(valid(sm.get()));
  MbimSubscriberReadyState ready{};
  gchar *imsi = nullptr, *iccid = nullptr;
  guint32 count = 0;
  gchar** numbers = nullptr;
  ASSERT_TRUE(mbim_message_subscriber_ready_status_response_parse(sm.get(), &ready, &imsi, &iccid, nullptr, &count,
                                                                  &numbers, &error))
      << (error ? error->message : "");
  EXPECT_EQ(ready, MBIM_SUBSCRIBER_READY_STATE_INITIALIZED);
  EXPECT_EQ(take(imsi), s.subscriber_id);
  EXPECT_EQ(take(iccid), s.sim_icc_id);
  ASSERT_EQ(count, 2u);
  EXPECT_STREQ(numbers[0], "+15550100");
  EXPECT_STREQ(numbers[1], "+15550101");
  g_strfreev(numbers);
}

TEST(LibmbimRoundTrip, ConnectAndIpConfigurationAnswers) {
  ConnectInfo c;
  c.session_id = 0;
  c.activation_state = ActivationState::Activated;
  c.ip_type = IpType::IPv4v6;
  c.nw_error = 0;
  const Message cm = lib(encode_command_done(5, kUuidBasicConnect, 12, Status::None, encode(c)));
  ASSERT_TRUE(valid(cm.get()));
  guint32 session = 99, nw_error = 99;
  MbimActivationState activation{};
  MbimContextIpType ip_type{};
  const MbimUuid* context = nullptr;
  GError* error = nullptr;
  ASSERT_TRUE(mbim_message_connect_response_parse(cm.get(), &session, &activation, nullptr, &ip_type, &context,
                                                  &nw_error, &error))
      << (error ? error->message : "");
  EXPECT_EQ(session, 0u);
  EXPECT_EQ(activation, MBIM_ACTIVATION_STATE_ACTIVATED);
  EXPECT_EQ(ip_type, MBIM_CONTEXT_IP_TYPE_IPV4V6);
  EXPECT_EQ(uuid_of(context), kUuidContextTypeInternet);
  EXPECT_EQ(nw_error, 0u);

  namespace a = ip_config_available;
  IpConfigurationInfo ip;
  ip.session_id = 0;
  ip.ipv4_configuration_available = a::kAddress | a::kGateway | a::kDns | a::kMtu;
  ip.ipv6_configuration_available = a::kAddress | a::kGateway | a::kDns | a::kMtu;
  ip.ipv4_addresses = {{30, {{10, 64, 64, 2}}}, {24, {{192, 0, 2, 9}}}};
  ip.ipv6_addresses = {{64, {{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2}}}};
  ip.ipv4_gateway = eth::Ipv4Address{{10, 64, 64, 1}};
  ip.ipv6_gateway = eth::Ipv6Address{{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1}};
  ip.ipv4_dns_servers = {eth::Ipv4Address{{10, 11, 12, 13}}, eth::Ipv4Address{{10, 11, 12, 14}}};
  ip.ipv6_dns_servers = {eth::Ipv6Address{{0xfd, 0, 0x97, 0x6a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9}}};
  ip.ipv4_mtu = 1500;
  ip.ipv6_mtu = 1280;
  const Message im = lib(encode_command_done(6, kUuidBasicConnect, 15, Status::None, encode(ip)));
  ASSERT_TRUE(valid(im.get()));
  guint32 v4_count = 0, v6_count = 0, dns4_count = 0, dns6_count = 0, mtu4 = 0, mtu6 = 0;
  MbimIPv4ElementArray* v4 = nullptr;
  MbimIPv6ElementArray* v6 = nullptr;
  const MbimIPv4* gw4 = nullptr;
  const MbimIPv6* gw6 = nullptr;
  MbimIPv4* dns4 = nullptr;
  MbimIPv6* dns6 = nullptr;
  ASSERT_TRUE(mbim_message_ip_configuration_response_parse(im.get(), &session, nullptr, nullptr, &v4_count, &v4,
                                                           &v6_count, &v6, &gw4, &gw6, &dns4_count, &dns4, &dns6_count,
                                                           &dns6, &mtu4, &mtu6, &error))
      << (error ? error->message : "");
  ASSERT_EQ(v4_count, 2u);
  EXPECT_EQ(v4[1]->on_link_prefix_length, 24u);
  EXPECT_EQ(0, std::memcmp(v4[1]->ipv4_address.addr, ip.ipv4_addresses[1].address.bytes.data(), 4));
  ASSERT_EQ(v6_count, 1u);
  EXPECT_EQ(v6[0]->on_link_prefix_length, 64u);
  EXPECT_EQ(0, std::memcmp(v6[0]->ipv6_address.addr, ip.ipv6_addresses[0].address.bytes.data(), 16));
  ASSERT_TRUE(gw4 && gw6);
  EXPECT_EQ(0, std::memcmp(gw4->addr, ip.ipv4_gateway->bytes.data(), 4));
  EXPECT_EQ(0, std::memcmp(gw6->addr, ip.ipv6_gateway->bytes.data(), 16));
  ASSERT_EQ(dns4_count, 2u);
  EXPECT_EQ(0, std::memcmp(dns4[1].addr, ip.ipv4_dns_servers[1].bytes.data(), 4));
  ASSERT_EQ(dns6_count, 1u);
  EXPECT_EQ(0, std::memcmp(dns6[0].addr, ip.ipv6_dns_servers[0].bytes.data(), 16));
  EXPECT_EQ(mtu4, 1500u);
  EXPECT_EQ(mtu6, 1280u);
  mbim_ipv4_element_array_free(v4);
  mbim_ipv6_element_array_free(v6);
  g_free(dns4);
  g_free(dns6);
}

// ---- what libmbim builds, read by us ----------------------------------------------------------

TEST(LibmbimRoundTrip, LibmbimAnswersAndErrorsParse) {
  const Message open_done(mbim_message_open_done_new(3, MBIM_STATUS_ERROR_FAILURE));
  const auto d = parse_done(raw(open_done.get()));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->type, MessageType::OpenDone);
  EXPECT_EQ(d->transaction_id, 3u);
  EXPECT_EQ(d->status, Status::Failure);
  const Message close_done(mbim_message_close_done_new(4, MBIM_STATUS_ERROR_NONE));
  EXPECT_EQ(parse_done(raw(close_done.get()))->type, MessageType::CloseDone);
  const Message function_error(mbim_message_function_error_new(5, MBIM_PROTOCOL_ERROR_NOT_OPENED));
  const auto e = parse_error(raw(function_error.get()));
  ASSERT_TRUE(e);
  EXPECT_EQ(e->type, MessageType::FunctionError);
  EXPECT_EQ(e->error_status_code, ProtocolError::NotOpened);
  const Message host_error(mbim_message_error_new(6, MBIM_PROTOCOL_ERROR_TIMEOUT_FRAGMENT));
  EXPECT_EQ(parse_error(raw(host_error.get()))->type, MessageType::HostError);
}

TEST(LibmbimRoundTrip, LibmbimCommandsParse) {
  GError* error = nullptr;
  const Message pin(mbim_message_pin_set_new(MBIM_PIN_TYPE_PIN1, MBIM_PIN_OPERATION_ENTER, "1234", "", &error));
  ASSERT_TRUE(pin);
  const ByteVector pin_bytes = raw(pin.get());
  const auto pc = parse_command(pin_bytes);
  ASSERT_TRUE(pc);
  EXPECT_EQ(pc->service, kUuidBasicConnect);
  EXPECT_EQ(pc->cid, cid(BasicConnectCid::Pin));
  EXPECT_EQ(pc->command_type, CommandType::Set);
  const auto p = parse_pin_set(pc->information_buffer);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->pin_type, pin_type::kPin1);
  EXPECT_EQ(p->pin, "1234");
  EXPECT_EQ(p->new_pin, "");

  const Message radio(mbim_message_radio_state_set_new(MBIM_RADIO_SWITCH_STATE_ON, &error));
  const ByteVector radio_bytes = raw(radio.get());
  EXPECT_EQ(*parse_radio_state_set(parse_command(radio_bytes)->information_buffer), RadioState::On);

  const Message attach(mbim_message_packet_service_set_new(MBIM_PACKET_SERVICE_ACTION_ATTACH, &error));
  const ByteVector attach_bytes = raw(attach.get());
  EXPECT_EQ(*parse_packet_service_set(parse_command(attach_bytes)->information_buffer), PacketServiceAction::Attach);

  const Message connect(mbim_message_connect_set_new(3, MBIM_ACTIVATION_COMMAND_DEACTIVATE, "apn", nullptr, nullptr,
                                                     MBIM_COMPRESSION_NONE, MBIM_AUTH_PROTOCOL_NONE,
                                                     MBIM_CONTEXT_IP_TYPE_IPV6,
                                                     mbim_uuid_from_context_type(MBIM_CONTEXT_TYPE_INTERNET), &error));
  ASSERT_TRUE(connect) << (error ? error->message : "");
  const ByteVector connect_bytes = raw(connect.get());
  const auto c = parse_connect_set(parse_command(connect_bytes)->information_buffer);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->session_id, 3u);
  EXPECT_EQ(c->activation_command, ActivationCommand::Deactivate);
  EXPECT_EQ(c->access_string, "apn");
  EXPECT_EQ(c->user_name, "");
  EXPECT_EQ(c->ip_type, IpType::IPv6);
  EXPECT_EQ(c->context_type, kUuidContextTypeInternet);
}

// ---- the two libmbim vectors with inconsistent lengths (decision in mbim_wire.hpp) -------------

TEST(LibmbimRoundTrip, InconsistentLengthVectorsLibmbimLenientUsStrict) {
  // libmbim.md A2: libmbim reads the ICCID past InformationBufferLength (it bounds reads by the
  // bytes received); we refuse the structure (bounded by InformationBufferLength).
  const ByteVector a2 = hex(
      "03000080b4000000020000000100000000000000a289cc33bcbb8b4fb6b0133ec2aae6df0200000000000000840000000100"
      "00005c0000001e0000007c0000002800000000000000020000002c0000001600000044000000160000003100310031003100"
      "3100310031003100310031003100000030003000300030003000300030003000300030003000000033003100300034003100"
      "3000300030003000310031003000370036003100000038003900300031003000310030003400300035003400360030003100"
      "310030003000360031003200");
  const Message m = lib(a2);
  ASSERT_TRUE(valid(m.get()));
  gchar* iccid = nullptr;
  GError* error = nullptr;
  const bool libmbim_ok = mbim_message_subscriber_ready_status_response_parse(m.get(), nullptr, nullptr, &iccid,
                                                                              nullptr, nullptr, nullptr, &error);
  if (error) g_error_free(error);
  EXPECT_TRUE(libmbim_ok);
  EXPECT_EQ(take(iccid), "89010104054601100612");
  const auto ours = parse_command_done(a2);
  ASSERT_TRUE(ours);
  EXPECT_EQ(parse_subscriber_ready_status_info(ours->information_buffer).error(), WireError::OffsetOutOfBounds);

  // libmbim.md A15: 4 bytes after a consistent MessageLength: both accept, and agree.
  const ByteVector a15 = hex(
      "030000806c000000040000000100000000000000a289cc33bcbb8b4fb6b0133ec2aae6df0c000000000000003c000000"
      "010000000100000000000000010000007e5e2a7e4e6f7272736b656e7e5e2a7e00000000010000000a00000010000000"
      "69006e007400650072006e0065007400");
  const Message n = lib(a15);
  ASSERT_TRUE(valid(n.get()));
  guint32 session = 0;
  ASSERT_TRUE(mbim_message_connect_response_parse(n.get(), &session, nullptr, nullptr, nullptr, nullptr, nullptr,
                                                  nullptr));
  const auto c = parse_connect_info(parse_command_done(a15)->information_buffer);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->session_id, session);
}

}  // namespace
}  // namespace wwan::mbim
