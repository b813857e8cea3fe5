// The MBIM session state machine: first scripted golden-byte exchanges (what it sends is
// compared byte for byte with libmbim's builder vectors and real-device traces; what it is fed
// are real-device answers: ../shared/reference/vectors/libmbim.md, real_mbim_qmi_over_mbim_traces.md),
// then end to end against the emulated EM7455 (sim::make_modem("mbim")) through a tiny pump that
// does what the session runner does. No sleeps: time is a variable the tests step.
#include "control/mbim_session.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "control/mbim_wire.hpp"
#include "sim/mbim_modem.hpp"
#include "sim/modem.hpp"
#include "tests/support/hex.hpp"

namespace wwan::control {
namespace {

using mbim::BasicConnectCid;
using mbim::CommandType;
using mbim::MessageType;
using mbim::Status;
using Step = MbimSession::Step;
using namespace std::chrono_literals;

using wwan::test::hex;

void put_le32(ByteVector& m, std::size_t off, std::uint32_t v) {
  for (std::size_t i = 0; i < 4; ++i) m[off + i] = static_cast<std::uint8_t>(v >> (8 * i));
}

// A vector with its TransactionId replaced (the vectors carry the ids of their own sessions).
ByteVector with_tid(ByteVector m, mbim::TransactionId tid) {
  put_le32(m, 8, tid);
  return m;
}

mbim::TransactionId tid_of(const ByteVector& m) { return mbim::read_header(m)->transaction_id; }

// ---- vectors -----------------------------------------------------------------------------------

// real_mbim_qmi_over_mbim_traces.md T2.1 / T2.2: OPEN (MaxControlTransfer 4096) and OPEN_DONE.
const ByteVector kOpenT21 = hex("01000000 10000000 01000000 00100000");
const ByteVector kOpenDoneT22 = hex("01000080 10000000 01000000 00000000");

// libmbim.md A3: DEVICE_CAPS of a Huawei E367.
const ByteVector kDeviceCapsE367 = hex(
    "03000080d0000000020000000100000000000000a289cc33bcbb8b4fb6b0133ec2aae6df0100000000000000a000000002000000"
    "0100000001000000020000001f000080030000000100000001000000400000000a0000004c0000001e0000006c0000001e000000"
    "8c0000001200000048005300500041002b00000033003500330036003100330030003400380038003000340036003200320000003100"
    "31002e003800310030002e00300039002e00300030002e00300030000000430050003100450033003600370055004d000000");

// libmbim.md A2 as shipped (MessageLength / InformationBufferLength too small for the ICCID).
const ByteVector kSubscriberReadyA2 = hex(
    "03000080b4000000020000000100000000000000a289cc33bcbb8b4fb6b0133ec2aae6df0200000000000000840000000100"
    "00005c0000001e0000007c0000002800000000000000020000002c0000001600000044000000160000003100310031003100"
    "3100310031003100310031003100000030003000300030003000300030003000300030003000000033003100300034003100"
    "3000300030003000310031003000370036003100000038003900300031003000310030003400300035003400360030003100"
    "310030003000360031003200");

// libmbim.md D6: PIN answer, 12 zero bytes (PinType none, unlocked).
const ByteVector kPinDoneD6 = hex(
    "030000803c000000010000000100000000000000a289cc33bcbb8b4fb6b0133ec2aae6df04000000000000000c000000"
    "000000000000000000000000");

// libmbim.md A7: REGISTER_STATE home on 26006.
const ByteVector kRegisterStateA7 = hex(
    "030000806c000000120000000100000000000000a289cc33bcbb8b4fb6b0133ec2aae6df09000000000000003c000000000000000300"
    "0000010000001c00000001000000300000000a0000000000000000000000000000000000000002000000320036003000300036000000");

// libmbim.md C test_basic_connect_connect_set: session 1, ACTIVATE, "internet", PAP, IPv4, Internet.
const ByteVector kConnectSetLibmbim = hex(
    "030000007c000000010000000100000000000000a289cc33bcbb8b4fb6b0133ec2aae6df0c000000010000004c000000"
    "01000000"  // SessionId 1 (patched to 0 below: the session uses IPS0)
    "010000003c00000010000000000000000000000000000000000000000000000001000000010000007e5e2a7e4e6f7272736b656e"
    "7e5e2a7e69006e007400650072006e0065007400");

// libmbim.md A5: IP_CONFIGURATION of a real T-Mobile US session (IPv4 + IPv6).
const ByteVector kIpConfigurationA5 = hex(
    "03000080c4000000240000000100000000000000a289cc33bcbb8b4fb6b0133ec2aae6df0f0000000000000094000000000000000f00"
    "00000f000000010000003c0000000100000050000000440000006400000002000000480000000200000074000000dc050000dc050000"
    "1d0000001cf6c9db1cf6c9dc0ab100220ab100d2400000002607fb90643b281f1dffbf3dc5c848ad2607fb90643b281ffdf780f4e399"
    "984afd00976a000000000000000000000009fd00976a000000000000000000000010");

// T2.3: QMI CTL Allocate Client ID (DMS) over MBIM, MBIM tid 5, QMI tid 4.
const ByteVector kCtlAllocateT23 = hex(
    "03000000 40000000 05000000 01000000 00000000 d1a30bc2f97a6e43bf65c7e24fb0f0d3 01000000 01000000 10000000"
    "010f0000 00000004 22000400 01010002");
// T2.4: its answer, client id 3 (last byte).
const ByteVector kCtlAllocateDoneT24 = hex(
    "03000080 48000000 05000000 01000000 00000000 d1a30bc2f97a6e43bf65c7e24fb0f0d3 01000000 00000000 18000000"
    "01170080 00000104 22000c00 02040000 00000001 02000203");
// T1: DMS 0x555F with client 0x14, QMI tid 1, MBIM tid 7; and its answer (success).
const ByteVector kFccAuthT1 = hex(
    "03000000 3d000000 07000000 01000000 00000000 d1a30bc2f97a6e43bf65c7e24fb0f0d3 01000000 01000000 0d000000"
    "010c0000 02140001 005f5500 00");
const ByteVector kFccAuthDoneT1 = hex(
    "03000080 44000000 07000000 01000000 00000000 d1a30bc2f97a6e43bf65c7e24fb0f0d3 01000000 00000000 14000000"
    "01130080 02140201 005f5507 00020400 00000000");
// T2.6: FUNCTION_ERROR LENGTH_MISMATCH, tid 7.
const ByteVector kFunctionErrorT26 = hex("04000080 10000000 07000000 03000000");

ByteVector command_done(mbim::TransactionId tid, BasicConnectCid cid, Status status, const ByteVector& info) {
  return mbim::encode_command_done(tid, mbim::kUuidBasicConnect, mbim::cid(cid), status, info);
}
ByteVector indication(BasicConnectCid cid, const ByteVector& info) {
  return mbim::encode_indicate_status(0, mbim::kUuidBasicConnect, mbim::cid(cid), info);
}
ByteVector query(mbim::TransactionId tid, BasicConnectCid cid, const ByteVector& info = {}) {
  return mbim::encode_command(tid, mbim::kUuidBasicConnect, mbim::cid(cid), CommandType::Query, info);
}
ByteVector set(mbim::TransactionId tid, BasicConnectCid cid, const ByteVector& info) {
  return mbim::encode_command(tid, mbim::kUuidBasicConnect, mbim::cid(cid), CommandType::Set, info);
}

// ---- a scripted host: the test plays the modem ---------------------------------------------

struct Script {
  SessionSettings settings;
  std::uint32_t max_control_message = 4096;
  std::unique_ptr<MbimSession> session;
  Clock::time_point now{std::chrono::seconds(1000)};

  MbimSession& start() {
    session = std::make_unique<MbimSession>(settings, max_control_message);
    session->start(now);
    return *session;
  }
  // The one message the session wants to send now (its fragments joined back).
  ByteVector sent() {
    auto pieces = session->take_commands();
    EXPECT_EQ(pieces.size(), 1u);
    return pieces.empty() ? ByteVector{} : pieces.front();
  }
  void feed(const ByteVector& message) { session->on_response(message, now); }
  // Answers the command just sent with `answer` carrying its TransactionId.
  void answer(const ByteVector& sent_message, const ByteVector& answer_message) {
    feed(with_tid(answer_message, tid_of(sent_message)));
  }
};

// OPEN .. RADIO_STATE query answered on, up to the REGISTER_STATE query (returned).
ByteVector up_to_register(Script& s) {
  s.start();
  const ByteVector open = s.sent();
  s.feed(with_tid(kOpenDoneT22, tid_of(open)));
  s.answer(s.sent(), kDeviceCapsE367);
  s.answer(s.sent(), kSubscriberReadyA2);
  s.answer(s.sent(), kPinDoneD6);
  const ByteVector radio = s.sent();
  s.answer(radio, command_done(0, BasicConnectCid::RadioState, Status::None,
                               mbim::encode(mbim::RadioStateInfo{mbim::RadioState::On, mbim::RadioState::On})));
  return s.sent();
}

TEST(MbimSessionScript, GoldenLadderToConnected) {
  Script s;
  s.settings.apn = "internet";
  s.settings.auth = AuthProtocol::pap;
  s.settings.families = IpFamilies::ipv4;
  MbimSession& m = s.start();
  EXPECT_EQ(m.status().state, SessionState::starting);
  EXPECT_EQ(m.max_control_transfer(), 4096u);

  // OPEN: byte-exact with the EM7455 trace T2.1 (tid 1, MaxControlTransfer 4096).
  const ByteVector open = s.sent();
  EXPECT_EQ(open, kOpenT21);
  s.feed(kOpenDoneT22);
  EXPECT_EQ(m.step(), Step::DeviceCaps);

  // DEVICE_CAPS query = libmbim.md D3 with tid 2; answered by the real E367.
  const ByteVector caps = s.sent();
  EXPECT_EQ(caps, with_tid(hex("03000000 30000000 39300000 01000000 00000000 a289cc33bcbb8b4fb6b0133ec2aae6df"
                               "01000000 00000000 00000000"),
                           2));
  s.feed(with_tid(kDeviceCapsE367, 2));
  EXPECT_EQ(m.device_info().firmware_info, "11.810.09.00.00");
  EXPECT_EQ(m.device_info().device_id, "353613048804622");

  // SUBSCRIBER_READY_STATUS, answered with A2 as libmbim ships it: the strict codec rejects its
  // ICCID, the session reads ReadyState = initialized from the fixed part and goes on.
  const ByteVector subscriber = s.sent();
  EXPECT_EQ(subscriber, query(3, BasicConnectCid::SubscriberReadyStatus));
  const auto bad_before = m.counters().bad_messages;
  s.feed(with_tid(kSubscriberReadyA2, 3));
  EXPECT_EQ(m.counters().bad_messages, bad_before + 1);
  EXPECT_EQ(m.step(), Step::Pin);

  const ByteVector pin = s.sent();
  EXPECT_EQ(pin, query(4, BasicConnectCid::Pin));
  s.feed(with_tid(kPinDoneD6, 4));  // D6: unlocked

  EXPECT_EQ(s.sent(), query(5, BasicConnectCid::RadioState));
  s.feed(command_done(5, BasicConnectCid::RadioState, Status::None,
                      mbim::encode(mbim::RadioStateInfo{mbim::RadioState::Off, mbim::RadioState::Off})));
  EXPECT_EQ(s.sent(), set(6, BasicConnectCid::RadioState, hex("01000000")));
  s.feed(command_done(6, BasicConnectCid::RadioState, Status::None,
                      mbim::encode(mbim::RadioStateInfo{mbim::RadioState::On, mbim::RadioState::On})));

  EXPECT_EQ(s.sent(), query(7, BasicConnectCid::RegisterState));
  s.feed(with_tid(kRegisterStateA7, 7));  // home on 26006
  EXPECT_EQ(m.status().state, SessionState::connecting);

  EXPECT_EQ(s.sent(), set(8, BasicConnectCid::PacketService, hex("00000000")));  // attach
  mbim::PacketServiceInfo attached;
  attached.packet_service_state = mbim::PacketServiceState::Attached;
  s.feed(command_done(8, BasicConnectCid::PacketService, Status::None, mbim::encode(attached)));

  // CONNECT set: libmbim's builder vector, session 0 instead of 1.
  ByteVector expected_connect = with_tid(kConnectSetLibmbim, 9);
  put_le32(expected_connect, 48, 0);
  EXPECT_EQ(s.sent(), expected_connect);
  mbim::ConnectInfo activated;
  activated.activation_state = mbim::ActivationState::Activated;
  activated.ip_type = mbim::IpType::IPv4;
  s.feed(command_done(9, BasicConnectCid::Connect, Status::None, mbim::encode(activated)));

  EXPECT_EQ(s.sent(), query(10, BasicConnectCid::IpConfiguration, mbim::encode_ip_configuration_query(0)));
  s.feed(with_tid(kIpConfigurationA5, 10));

  ASSERT_EQ(m.status().state, SessionState::connected) << m.status().error;
  EXPECT_EQ(m.status().connects, 1u);
  EXPECT_EQ(m.status().mbim_session_id, 0u);
  const IpConfig& ip = m.status().ip;
  ASSERT_TRUE(ip.ipv4);
  EXPECT_EQ(ip.ipv4->address, (eth::Ipv4Address{{28, 246, 201, 219}}));
  EXPECT_EQ(ip.ipv4->prefix_length, 29);
  EXPECT_EQ(ip.ipv4->gateway, (eth::Ipv4Address{{28, 246, 201, 220}}));
  EXPECT_THAT(ip.ipv4->dns, ::testing::ElementsAre(eth::Ipv4Address{{10, 177, 0, 34}}, eth::Ipv4Address{{10, 177, 0, 210}}));
  EXPECT_EQ(ip.ipv4->mtu, 1500u);
  ASSERT_TRUE(ip.ipv6);
  EXPECT_EQ(ip.ipv6->address, (eth::Ipv6Address{{0x26, 0x07, 0xfb, 0x90, 0x64, 0x3b, 0x28, 0x1f, 0x1d, 0xff, 0xbf, 0x3d,
                                                 0xc5, 0xc8, 0x48, 0xad}}));
  EXPECT_EQ(ip.ipv6->prefix_length, 64);
  EXPECT_EQ(ip.ipv6->dns.size(), 2u);
  EXPECT_EQ(ip.ipv6->mtu, 1500u);
  EXPECT_FALSE(m.next_timer());  // connected: nothing in flight, nothing to wait for
  EXPECT_EQ(m.counters().stale_answers, 0u);
  EXPECT_EQ(m.counters().timeouts, 0u);
}

TEST(MbimSessionScript, StaleAndForeignAnswersAreCountedAndIgnored) {
  Script s;
  MbimSession& m = s.start();
  const ByteVector open = s.sent();
  s.feed(with_tid(kOpenDoneT22, tid_of(open) + 100));                // wrong tid
  s.feed(mbim::encode_done(MessageType::CloseDone, tid_of(open), Status::None));  // wrong type
  EXPECT_EQ(m.step(), Step::Open);
  EXPECT_EQ(m.counters().stale_answers, 2u);
  s.feed(with_tid(kOpenDoneT22, tid_of(open)));
  const ByteVector caps = s.sent();
  // The right tid but another CID is not the answer either.
  s.feed(command_done(tid_of(caps), BasicConnectCid::Pin, Status::None, ByteVector(12, 0)));
  EXPECT_EQ(m.counters().stale_answers, 3u);
  EXPECT_EQ(m.step(), Step::DeviceCaps);
  // Garbage and host-direction messages are bad, not fatal.
  s.feed(hex("ee ee ee ee"));
  s.feed(kOpenT21);
  EXPECT_EQ(m.counters().bad_messages, 2u);
  EXPECT_EQ(m.step(), Step::DeviceCaps);
}

TEST(MbimSessionScript, TimeoutsResendWithNewTransactionIdsThenCloseBeforeOpen) {
  Script s;
  s.settings.command_timeout = 5s;
  MbimSession& m = s.start();
  const ByteVector first = s.sent();
  ASSERT_EQ(m.next_timer(), s.now + 5s);
  s.now += 5s;
  m.on_timer(s.now);
  const ByteVector second = s.sent();
  EXPECT_EQ(mbim::read_header(second)->type, MessageType::Open);
  EXPECT_EQ(tid_of(second), tid_of(first) + 1);
  s.now += 5s;
  m.on_timer(s.now);
  (void)s.sent();
  s.now += 5s;
  m.on_timer(s.now);
  // Three OPENs unanswered: CLOSE, then OPEN again (libmbim's close-before-open).
  const ByteVector close = s.sent();
  EXPECT_EQ(mbim::read_header(close)->type, MessageType::Close);
  EXPECT_EQ(m.step(), Step::CloseBeforeOpen);
  // A late answer to the first OPEN is stale now.
  s.feed(with_tid(kOpenDoneT22, tid_of(first)));
  EXPECT_EQ(m.counters().stale_answers, 1u);
  s.feed(mbim::encode_done(MessageType::CloseDone, tid_of(close), Status::None));
  const ByteVector reopen = s.sent();
  EXPECT_EQ(mbim::read_header(reopen)->type, MessageType::Open);
  for (int i = 0; i < 3; ++i) {
    s.now += 5s;
    m.on_timer(s.now);
  }
  EXPECT_EQ(m.status().state, SessionState::failed);
  EXPECT_THAT(m.status().error, ::testing::HasSubstr("does not answer MBIM OPEN"));
  EXPECT_EQ(m.counters().timeouts, 6u);
}

TEST(MbimSessionScript, FunctionLeftOpenRefusesOpenThenCloseAndOpenAgain) {
  Script s;
  MbimSession& m = s.start();
  const ByteVector open = s.sent();
  s.feed(mbim::encode_done(MessageType::OpenDone, tid_of(open), Status::Failure));
  const ByteVector close = s.sent();
  ASSERT_EQ(mbim::read_header(close)->type, MessageType::Close);
  s.feed(mbim::encode_done(MessageType::CloseDone, tid_of(close), Status::None));
  const ByteVector again = s.sent();
  ASSERT_EQ(mbim::read_header(again)->type, MessageType::Open);
  s.feed(with_tid(kOpenDoneT22, tid_of(again)));
  EXPECT_EQ(m.step(), Step::DeviceCaps);

  // The same with FUNCTION_ERROR NOT_OPENED as the answer to OPEN.
  Script t;
  MbimSession& n = t.start();
  const ByteVector open2 = t.sent();
  t.feed(mbim::encode_error(MessageType::FunctionError, tid_of(open2), mbim::ProtocolError::NotOpened));
  EXPECT_EQ(n.step(), Step::CloseBeforeOpen);
  EXPECT_EQ(mbim::read_header(t.sent())->type, MessageType::Close);
}

TEST(MbimSessionScript, FunctionErrorRetriesAndNotOpenedReopens) {
  Script s;
  MbimSession& m = s.start();
  s.feed(with_tid(kOpenDoneT22, tid_of(s.sent())));
  const ByteVector caps = s.sent();
  // T2.6: the EM7455's FUNCTION_ERROR LENGTH_MISMATCH for our command: re-sent.
  s.feed(with_tid(kFunctionErrorT26, tid_of(caps)));
  const ByteVector again = s.sent();
  EXPECT_EQ(tid_of(again), tid_of(caps) + 1);
  EXPECT_EQ(m.counters().function_errors, 1u);
  EXPECT_EQ(m.counters().retries, 1u);
  // NOT_OPENED (whatever its tid): the function was closed under us: OPEN again.
  s.feed(mbim::encode_error(MessageType::FunctionError, 999, mbim::ProtocolError::NotOpened));
  EXPECT_EQ(m.step(), Step::Open);
  EXPECT_EQ(mbim::read_header(s.sent())->type, MessageType::Open);
  EXPECT_EQ(m.counters().reopens, 1u);
}

TEST(MbimSessionScript, SimNotInsertedFailsClearly) {
  Script s;
  MbimSession& m = s.start();
  s.feed(with_tid(kOpenDoneT22, tid_of(s.sent())));
  s.answer(s.sent(), kDeviceCapsE367);
  mbim::SubscriberReadyStatusInfo none;
  none.ready_state = mbim::ReadyState::SimNotInserted;
  s.answer(s.sent(), command_done(0, BasicConnectCid::SubscriberReadyStatus, Status::None, mbim::encode(none)));
  EXPECT_EQ(m.status().state, SessionState::failed);
  EXPECT_THAT(m.status().error, ::testing::HasSubstr("SIM not inserted"));
  // Also as a status code (some firmware answers the query with MBIM_STATUS_SIM_NOT_INSERTED).
  Script t;
  MbimSession& n = t.start();
  t.feed(with_tid(kOpenDoneT22, tid_of(t.sent())));
  t.answer(t.sent(), kDeviceCapsE367);
  t.answer(t.sent(), command_done(0, BasicConnectCid::SubscriberReadyStatus, Status::SimNotInserted, {}));
  EXPECT_EQ(n.status().state, SessionState::failed);
}

TEST(MbimSessionScript, SimInitialisingWaitsForTheIndication) {
  Script s;
  MbimSession& m = s.start();
  s.feed(with_tid(kOpenDoneT22, tid_of(s.sent())));
  s.answer(s.sent(), kDeviceCapsE367);
  mbim::SubscriberReadyStatusInfo r;
  r.ready_state = mbim::ReadyState::NotInitialized;
  s.answer(s.sent(), command_done(0, BasicConnectCid::SubscriberReadyStatus, Status::None, mbim::encode(r)));
  EXPECT_EQ(m.step(), Step::SubscriberReady);
  EXPECT_TRUE(s.session->take_commands().empty());
  EXPECT_EQ(m.next_timer(), s.now + s.settings.command_timeout);  // re-queried if nothing comes
  r.ready_state = mbim::ReadyState::Initialized;
  s.feed(indication(BasicConnectCid::SubscriberReadyStatus, mbim::encode(r)));
  EXPECT_EQ(m.step(), Step::Pin);
}

TEST(MbimSessionScript, PinNeededAndMissingFailsAndAGivenPinIsEntered) {
  const mbim::PinInfo locked{mbim::pin_type::kPin1, 1, 3};
  {
    Script s;
    MbimSession& m = s.start();
    s.feed(with_tid(kOpenDoneT22, tid_of(s.sent())));
    s.answer(s.sent(), kDeviceCapsE367);
    s.answer(s.sent(), command_done(0, BasicConnectCid::SubscriberReadyStatus, Status::None,
                                    mbim::encode(mbim::SubscriberReadyStatusInfo{mbim::ReadyState::DeviceLocked, {}, {}, 0, {}})));
    s.answer(s.sent(), command_done(0, BasicConnectCid::Pin, Status::None, mbim::encode(locked)));
    EXPECT_EQ(m.status().state, SessionState::failed);
    EXPECT_THAT(m.status().error, ::testing::HasSubstr("needs a PIN"));
  }
  Script s;
  s.settings.pin = "1111";
  MbimSession& m = s.start();
  s.feed(with_tid(kOpenDoneT22, tid_of(s.sent())));
  s.answer(s.sent(), kDeviceCapsE367);
  s.answer(s.sent(), command_done(0, BasicConnectCid::SubscriberReadyStatus, Status::None,
                                  mbim::encode(mbim::SubscriberReadyStatusInfo{mbim::ReadyState::DeviceLocked, {}, {}, 0, {}})));
  s.answer(s.sent(), command_done(0, BasicConnectCid::Pin, Status::None, mbim::encode(locked)));
  // PIN set = libmbim.md C test_basic_connect_pin_set (PIN1, enter, "1111"), tid 5.
  const ByteVector pin_set = s.sent();
  EXPECT_EQ(pin_set, with_tid(hex("0300000050000000010000000100000000000000a289cc33bcbb8b4fb6b0133ec2aae6df04000000"
                                  "01000000200000000200000000000000180000000800000000000000000000003100310031003100"),
                              5));
  // A wrong PIN is never entered twice.
  s.answer(pin_set, command_done(0, BasicConnectCid::Pin, Status::Failure, mbim::encode(mbim::PinInfo{2, 1, 2})));
  EXPECT_EQ(m.status().state, SessionState::failed);
  EXPECT_THAT(m.status().error, ::testing::HasSubstr("rejected the PIN"));
  EXPECT_THAT(m.status().error, ::testing::HasSubstr("2 attempts left"));
}

// RADIO_STATE on refused: without the quirk a clear failure; with it, QMI-over-MBIM byte-exact
// with the Sierra traces (T2.3 / T2.4 / T1), then the radio goes on.
TEST(MbimSessionScript, FccUnlockOverQmiMatchesTheSierraTraces) {
  const auto refused = command_done(0, BasicConnectCid::RadioState, Status::Failure,
                                    mbim::encode(mbim::RadioStateInfo{mbim::RadioState::Off, mbim::RadioState::Off}));
  {
    Script s;
    MbimSession& m = s.start();
    s.feed(with_tid(kOpenDoneT22, tid_of(s.sent())));
    s.answer(s.sent(), kDeviceCapsE367);
    s.answer(s.sent(), kSubscriberReadyA2);
    s.answer(s.sent(), kPinDoneD6);
    s.answer(s.sent(), refused);  // query: off
    s.answer(s.sent(), refused);  // set on: FAILURE
    EXPECT_EQ(m.status().state, SessionState::failed);
    EXPECT_THAT(m.status().error, ::testing::HasSubstr("FCC"));
    EXPECT_THAT(m.status().error, ::testing::HasSubstr("radio"));
  }
  Script s;
  s.settings.fcc_unlock = true;
  MbimSession& m = s.start();
  s.feed(with_tid(kOpenDoneT22, tid_of(s.sent())));
  s.answer(s.sent(), kDeviceCapsE367);
  s.answer(s.sent(), kSubscriberReadyA2);
  s.answer(s.sent(), kPinDoneD6);
  s.answer(s.sent(), refused);
  s.answer(s.sent(), refused);
  EXPECT_EQ(m.step(), Step::FccClientId);
  // T2.3 with our MBIM tid (7) and QMI tid (1).
  ByteVector expected_alloc = with_tid(kCtlAllocateT23, 7);
  expected_alloc[48 + 7] = 0x01;
  const ByteVector alloc = s.sent();
  EXPECT_EQ(alloc, expected_alloc);
  // T2.4, client id patched to 0x14 so that the next request is T1's byte for byte.
  ByteVector alloc_done = with_tid(kCtlAllocateDoneT24, 7);
  alloc_done.back() = 0x14;
  s.feed(alloc_done);
  EXPECT_EQ(m.step(), Step::FccAuthenticate);
  ByteVector expected_fcc = with_tid(kFccAuthT1, 8);
  expected_fcc[48 + 7] = 0x02;  // QMI tid 2 (16-bit, little endian)
  const ByteVector fcc = s.sent();
  EXPECT_EQ(fcc, expected_fcc);
  s.feed(with_tid(kFccAuthDoneT1, 8));
  EXPECT_TRUE(m.fcc_authenticated());
  EXPECT_EQ(s.sent(), set(9, BasicConnectCid::RadioState, hex("01000000")));
}

TEST(MbimSessionScript, FragmentsBothWays) {
  Script s;
  s.max_control_message = 64;
  s.settings.apn = "internet";
  const ByteVector register_query = up_to_register(s);
  MbimSession& m = *s.session;
  EXPECT_EQ(m.max_control_transfer(), 64u);
  s.answer(register_query, kRegisterStateA7);
  mbim::PacketServiceInfo attached;
  attached.packet_service_state = mbim::PacketServiceState::Attached;
  s.answer(s.sent(), command_done(0, BasicConnectCid::PacketService, Status::None, mbim::encode(attached)));
  // CONNECT set (124 bytes) leaves in fragments of at most 64 bytes that reassemble to it.
  auto pieces = m.take_commands();
  ASSERT_GT(pieces.size(), 1u);
  mbim::Reassembler r;
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    EXPECT_LE(pieces[i].size(), 64u);
    const auto fed = r.feed(pieces[i]);
    ASSERT_TRUE(fed);
    EXPECT_EQ(*fed == mbim::Reassembler::State::Complete, i + 1 == pieces.size());
  }
  const auto connect = mbim::parse_command(r.message());
  ASSERT_TRUE(connect);
  EXPECT_EQ(mbim::parse_connect_set(connect->information_buffer)->access_string, "internet");
  // The answers arrive in 64-byte fragments too.
  mbim::ConnectInfo activated;
  activated.activation_state = mbim::ActivationState::Activated;
  const auto connect_fragments =
      mbim::fragment(command_done(connect->transaction_id, BasicConnectCid::Connect, Status::None, mbim::encode(activated)),
                     64);
  ASSERT_TRUE(connect_fragments);
  for (const auto& f : connect_fragments.value()) s.feed(f);
  const ByteVector ip_query = [&] {
    auto p = m.take_commands();
    mbim::Reassembler rr;
    for (auto& f : p) (void)rr.feed(f);
    return ByteVector(rr.message().begin(), rr.message().end());
  }();
  const auto ip_fragments = *mbim::fragment(with_tid(kIpConfigurationA5, tid_of(ip_query)), 64);
  ASSERT_GT(ip_fragments.size(), 3u);
  for (const auto& f : ip_fragments) s.feed(f);
  EXPECT_EQ(m.status().state, SessionState::connected) << m.status().error;
  EXPECT_GT(m.counters().fragments, m.counters().messages);

  // A partial answer older than 1250 ms is dropped, and the rest of it is then out of sequence.
  const auto bad_before = m.counters().bad_messages;
  s.feed(ip_fragments[0]);
  s.now += 2s;
  m.on_timer(s.now);
  EXPECT_EQ(m.counters().fragment_timeouts, 1u);
  s.feed(ip_fragments[1]);
  EXPECT_EQ(m.counters().bad_messages, bad_before + 1);
}

TEST(MbimSessionScript, DropRedialAndStop) {
  Script s;
  s.settings.redial_initial = 1s;
  s.settings.redial_max = 4s;
  const ByteVector register_query = up_to_register(s);
  MbimSession& m = *s.session;
  s.answer(register_query, kRegisterStateA7);
  mbim::PacketServiceInfo attached;
  attached.packet_service_state = mbim::PacketServiceState::Attached;
  mbim::ConnectInfo activated;
  activated.activation_state = mbim::ActivationState::Activated;
  const auto dial = [&] {
    s.answer(s.sent(), command_done(0, BasicConnectCid::PacketService, Status::None, mbim::encode(attached)));
    s.answer(s.sent(), command_done(0, BasicConnectCid::Connect, Status::None, mbim::encode(activated)));
    s.answer(s.sent(), kIpConfigurationA5);
  };
  dial();
  ASSERT_EQ(m.status().state, SessionState::connected);

  // The network deactivates the context: disconnected, redial after redial_initial.
  mbim::ConnectInfo deactivated;
  deactivated.activation_state = mbim::ActivationState::Deactivated;
  deactivated.nw_error = 36;
  s.feed(indication(BasicConnectCid::Connect, mbim::encode(deactivated)));
  EXPECT_EQ(m.status().state, SessionState::disconnected);
  EXPECT_EQ(m.status().drops, 1u);
  EXPECT_THAT(m.status().error, ::testing::HasSubstr("nw error 36"));
  EXPECT_EQ(m.next_timer(), s.now + 1s);
  s.now += 1s;
  m.on_timer(s.now);
  // Registration first; a refused CONNECT doubles the wait (1 s -> 2 s).
  s.answer(s.sent(), kRegisterStateA7);
  s.answer(s.sent(), command_done(0, BasicConnectCid::PacketService, Status::None, mbim::encode(attached)));
  s.answer(s.sent(), command_done(0, BasicConnectCid::Connect, Status::Failure, mbim::encode(deactivated)));
  EXPECT_EQ(m.status().state, SessionState::disconnected);
  EXPECT_EQ(m.next_timer(), s.now + 2s);
  s.now += 2s;
  m.on_timer(s.now);
  s.answer(s.sent(), kRegisterStateA7);
  dial();
  EXPECT_EQ(m.status().state, SessionState::connected);
  EXPECT_EQ(m.status().connects, 2u);

  // Detach and deregistration indications drop it too.
  mbim::PacketServiceInfo detached;
  detached.packet_service_state = mbim::PacketServiceState::Detached;
  s.feed(indication(BasicConnectCid::PacketService, mbim::encode(detached)));
  EXPECT_EQ(m.status().drops, 2u);
  EXPECT_EQ(m.next_timer(), s.now + 1s);  // back-off reset by the last connect

  // stop(): CONNECT deactivate (the context may be up), CLOSE, stopped.
  s.now += 1s;
  m.on_timer(s.now);
  s.answer(s.sent(), kRegisterStateA7);
  dial();
  ASSERT_EQ(m.status().state, SessionState::connected);
  m.stop(s.now);
  EXPECT_EQ(m.status().state, SessionState::stopping);
  const ByteVector deactivate = s.sent();
  const auto d = mbim::parse_command(deactivate);
  ASSERT_TRUE(d);
  EXPECT_EQ(mbim::parse_connect_set(d->information_buffer)->activation_command, mbim::ActivationCommand::Deactivate);
  s.answer(deactivate, command_done(0, BasicConnectCid::Connect, Status::None, mbim::encode(deactivated)));
  const ByteVector close = s.sent();
  EXPECT_EQ(close, mbim::encode_close(tid_of(close)));
  s.feed(mbim::encode_done(MessageType::CloseDone, tid_of(close), Status::None));
  EXPECT_EQ(m.status().state, SessionState::stopped);
  EXPECT_FALSE(m.next_timer());
}

TEST(MbimSessionScript, StopWithoutAnswersStillEnds) {
  Script s;
  MbimSession& m = s.start();
  (void)s.sent();
  m.stop(s.now);  // OPEN unanswered: CLOSE anyway
  EXPECT_EQ(mbim::read_header(s.sent())->type, MessageType::Close);
  s.now += s.settings.command_timeout;
  m.on_timer(s.now);
  EXPECT_EQ(m.status().state, SessionState::stopped);
  MbimSession idle(SessionSettings{}, 4096);
  idle.stop(s.now);
  EXPECT_EQ(idle.status().state, SessionState::stopped);
  EXPECT_TRUE(idle.take_commands().empty());
}

TEST(MbimSessionScript, HostileAnswersNeverCrash) {
  // Random bytes and mutations of every golden answer, at every step the ladder reaches.
  std::mt19937 rng(7);
  const std::vector<ByteVector> golden = {kOpenDoneT22,      kDeviceCapsE367,   kSubscriberReadyA2, kPinDoneD6,
                                          kRegisterStateA7,  kIpConfigurationA5, kCtlAllocateDoneT24,
                                          kFccAuthDoneT1,     kFunctionErrorT26};
  for (int round = 0; round < 300; ++round) {
    Script s;
    s.settings.fcc_unlock = true;
    s.max_control_message = round % 2 ? 64 : 4096;
    MbimSession& m = s.start();
    for (int i = 0; i < 40; ++i) {
      const auto pieces = m.take_commands();
      const mbim::TransactionId tid = pieces.empty() ? 0 : tid_of(pieces.front());
      ByteVector b = golden[rng() % golden.size()];
      if (b.size() >= 12) put_le32(b, 8, tid);
      for (int k = static_cast<int>(rng() % 4); k > 0; --k) b[rng() % b.size()] = static_cast<std::uint8_t>(rng());
      if (rng() % 5 == 0) b.resize(rng() % (b.size() + 1));
      if (!b.empty()) m.on_response(b, s.now);
      if (rng() % 7 == 0) {
        s.now += 11s;
        m.on_timer(s.now);
      }
    }
    m.stop(s.now);
  }
}

// ---- end to end against the emulated EM7455 --------------------------------------------------

constexpr std::uint16_t kControlInterface = sim::em7455::kControlInterface;

// What the session runner does, in a few lines: commands out with SEND_ENCAPSULATED_COMMAND,
// answers in with GET_ENCAPSULATED_RESPONSE (until the device answers empty) after each
// RESPONSE_AVAILABLE, or on every turn when `poll` is set (lost notifications), and time
// stepped to the next deadline of either side.
struct Pump {
  sim::Modem& modem;
  MbimSession& session;
  Clock::time_point now{std::chrono::seconds(5000)};
  bool poll = false;
  std::size_t notifications = 0;
  std::size_t commands = 0;

  Pump(sim::Modem& m, MbimSession& s) : modem(m), session(s) {
    dynamic_cast<sim::MbimModem&>(modem).set_clock([this] { return now; });
  }

  // One exchange turn; true if anything moved.
  bool turn() {
    bool moved = false;
    for (auto& command : session.take_commands()) {
      const auto r = modem.control(sim::SetupPacket{0x21, 0x00, 0, kControlInterface,
                                                    static_cast<std::uint16_t>(command.size())},
                                   command);
      EXPECT_EQ(r, std::optional<std::size_t>(0));
      ++commands;
      moved = true;
    }
    bool available = poll;
    std::array<std::uint8_t, 16> n{};
    while (modem.in(sim::em7455::kNotificationEndpoint, n).result == sim::EndpointResult::ok) {
      ++notifications;
      available = true;
    }
    if (!available) return moved;
    for (;;) {
      ByteVector buffer(session.max_control_transfer());
      const auto got = modem.control(sim::SetupPacket{0xA1, 0x01, 0, kControlInterface,
                                                      static_cast<std::uint16_t>(buffer.size())},
                                     buffer);
      if (!got || *got == 0) break;
      buffer.resize(*got);
      session.on_response(buffer, now);
      moved = true;
    }
    return moved;
  }

  // Runs until `done` or nothing more can happen; never sleeps (time jumps to the next deadline).
  template <class Pred>
  bool run_until(Pred done, int max_turns = 2000) {
    for (int i = 0; i < max_turns; ++i) {
      while (turn()) {
        if (done()) return true;
      }
      if (done()) return true;
      std::optional<Clock::time_point> next = session.next_timer();
      if (const auto d = modem.next_deadline(); d && (!next || *d < *next)) next = d;
      if (!next) return false;
      if (*next > now) now = *next;
      if (const auto t = session.next_timer(); t && *t <= now) session.on_timer(now);
    }
    return false;
  }
  bool run_until_state(SessionState s) {
    return run_until([&] { return session.status().state == s; });
  }
};

struct E2e {
  std::unique_ptr<sim::Modem> modem;
  std::unique_ptr<MbimSession> session;
  std::unique_ptr<Pump> pump;
  explicit E2e(SessionSettings settings, std::uint32_t max_control_message = sim::em7455::kMaxControlMessage,
               sim::ModemOptions options = {}) {
    modem = sim::make_modem("mbim", options);
    session = std::make_unique<MbimSession>(std::move(settings), max_control_message);
    pump = std::make_unique<Pump>(*modem, *session);
    session->start(pump->now);
  }
};

SessionSettings sim_settings(bool fcc_unlock = true, IpFamilies families = IpFamilies::ipv4v6) {
  SessionSettings s;
  s.apn = "internet";
  s.families = families;
  s.fcc_unlock = fcc_unlock;
  s.redial_initial = 1s;
  s.redial_max = 8s;
  return s;
}

void expect_sim_network(const IpConfig& ip, const sim::NetworkConfig& n) {
  ASSERT_TRUE(ip.ipv4);
  EXPECT_EQ(ip.ipv4->address, n.host_ipv4);
  EXPECT_EQ(ip.ipv4->prefix_length, n.host_ipv4_prefix_length);
  EXPECT_EQ(ip.ipv4->gateway, n.gateway_ipv4);
  EXPECT_THAT(ip.ipv4->dns, ::testing::ElementsAre(n.dns_ipv4[0], n.dns_ipv4[1]));
  EXPECT_EQ(ip.ipv4->mtu, n.mtu);
  ASSERT_TRUE(ip.ipv6);
  EXPECT_EQ(ip.ipv6->address, n.host_ipv6);
  EXPECT_EQ(ip.ipv6->prefix_length, 64);
  EXPECT_EQ(ip.ipv6->gateway, n.gateway_ipv6);
  EXPECT_TRUE(ip.ipv6->dns.empty());
  EXPECT_EQ(ip.ipv6->mtu, n.mtu);
}

TEST(MbimSessionSim, RadioRefusedWithoutFccUnlockFailsClearly) {
  E2e e(sim_settings(/*fcc_unlock=*/false));
  ASSERT_TRUE(e.pump->run_until_state(SessionState::failed));
  EXPECT_THAT(e.session->status().error, ::testing::HasSubstr("refuses to turn the radio on"));
  EXPECT_THAT(e.session->status().error, ::testing::HasSubstr("FCC"));
  EXPECT_FALSE(dynamic_cast<sim::MbimModem&>(*e.modem).fcc_authenticated());
  // stop() still closes the function it opened.
  e.session->stop(e.pump->now);
  ASSERT_TRUE(e.pump->run_until_state(SessionState::stopped));
  EXPECT_FALSE(dynamic_cast<sim::MbimModem&>(*e.modem).function_open());
}

TEST(MbimSessionSim, FccUnlockThenConnectedWithTheNetworksConfiguration) {
  E2e e(sim_settings());
  ASSERT_TRUE(e.pump->run_until_state(SessionState::connected)) << e.session->status().error;
  EXPECT_TRUE(dynamic_cast<sim::MbimModem&>(*e.modem).fcc_authenticated());
  EXPECT_TRUE(e.modem->session_active());
  expect_sim_network(e.session->status().ip, e.modem->network().config());
  EXPECT_EQ(e.session->status().mbim_session_id, 0u);
  EXPECT_EQ(e.session->device_info().hardware_info, "EM7455");
  EXPECT_EQ(e.session->counters().stale_answers, 0u);
  EXPECT_EQ(e.session->counters().timeouts, 0u);
  EXPECT_EQ(e.session->counters().bad_messages, 0u);
}

TEST(MbimSessionSim, Ipv4OnlyAsksForIpv4) {
  E2e e(sim_settings(true, IpFamilies::ipv4));
  ASSERT_TRUE(e.pump->run_until_state(SessionState::connected)) << e.session->status().error;
  EXPECT_TRUE(e.session->status().ip.ipv4);
  EXPECT_FALSE(e.session->status().ip.ipv6);
}

TEST(MbimSessionSim, SimPinEnteredFromTheSettings) {
  sim::ModemOptions options;
  options.sim_pin = "4321";
  {
    SessionSettings s = sim_settings();
    s.pin = "4321";
    E2e e(s, sim::em7455::kMaxControlMessage, options);
    ASSERT_TRUE(e.pump->run_until_state(SessionState::connected)) << e.session->status().error;
  }
  E2e e(sim_settings(), sim::em7455::kMaxControlMessage, options);
  ASSERT_TRUE(e.pump->run_until_state(SessionState::failed));
  EXPECT_THAT(e.session->status().error, ::testing::HasSubstr("needs a PIN"));
}

TEST(MbimSessionSim, SmallMaxControlMessageFragmentsBothWays) {
  E2e e(sim_settings(), 64);
  ASSERT_TRUE(e.pump->run_until_state(SessionState::connected)) << e.session->status().error;
  expect_sim_network(e.session->status().ip, e.modem->network().config());
  EXPECT_GT(e.pump->commands, e.session->counters().commands_sent);  // commands went in fragments
  EXPECT_GT(e.session->counters().fragments, e.session->counters().messages);  // answers too
  EXPECT_EQ(e.session->counters().bad_messages, 0u);
}

TEST(MbimSessionSim, DropThenRedialThenConnectedAgainThenStop) {
  E2e e(sim_settings());
  ASSERT_TRUE(e.pump->run_until_state(SessionState::connected));
  const auto t0 = e.pump->now;
  e.modem->faults().drop_session = true;
  ASSERT_TRUE(e.pump->run_until_state(SessionState::disconnected));
  EXPECT_EQ(e.session->status().drops, 1u);
  EXPECT_FALSE(e.modem->session_active());
  ASSERT_TRUE(e.pump->run_until_state(SessionState::connected)) << e.session->status().error;
  EXPECT_EQ(e.session->status().connects, 2u);
  EXPECT_TRUE(e.modem->session_active());
  EXPECT_GE(e.pump->now - t0, 1s);  // waited redial_initial (fake clock)
  expect_sim_network(e.session->status().ip, e.modem->network().config());

  e.session->stop(e.pump->now);
  ASSERT_TRUE(e.pump->run_until_state(SessionState::stopped));
  EXPECT_FALSE(e.modem->session_active());
  EXPECT_FALSE(dynamic_cast<sim::MbimModem&>(*e.modem).function_open());
}

TEST(MbimSessionSim, SlowAnswersWithinTheTimeout) {
  E2e e(sim_settings());
  e.modem->faults().control_answer_delay = 2s;
  const auto t0 = e.pump->now;
  ASSERT_TRUE(e.pump->run_until_state(SessionState::connected)) << e.session->status().error;
  EXPECT_EQ(e.session->counters().timeouts, 0u);
  EXPECT_GE(e.pump->now - t0, 20s);  // ~12 commands, 2 s each, on the fake clock
}

TEST(MbimSessionSim, LostResponseAvailableWithAPollingRunner) {
  E2e e(sim_settings());
  e.modem->faults().lose_response_available = true;
  e.pump->poll = true;
  ASSERT_TRUE(e.pump->run_until_state(SessionState::connected)) << e.session->status().error;
  EXPECT_EQ(e.pump->notifications, 0u);
  EXPECT_EQ(e.session->counters().timeouts, 0u);
}

TEST(MbimSessionSim, LostResponseAvailableWithoutPollingRecoversByTimeout) {
  // A runner that only polls when the session's timer fires: the retry reads the queue.
  E2e e(sim_settings());
  e.modem->faults().lose_response_available = true;
  const bool connected = e.pump->run_until([&] {
    // Poll only right after a timeout was handled.
    e.pump->poll = e.session->counters().timeouts > 0;
    return e.session->status().state == SessionState::connected;
  });
  EXPECT_TRUE(connected) << e.session->status().error;
  EXPECT_GT(e.session->counters().timeouts, 0u);
}

TEST(MbimSessionSim, StopAfterTheModemResetTheFunction) {
  E2e e(sim_settings());
  ASSERT_TRUE(e.pump->run_until_state(SessionState::connected));
  // RESET_FUNCTION behind the session's back (another program, a firmware reset): the function
  // is closed, so the CONNECT deactivate of stop() gets FUNCTION_ERROR NOT_OPENED: stopped.
  std::array<std::uint8_t, 1> none{};
  ASSERT_TRUE(e.modem->control(sim::SetupPacket{0x21, 0x05, 0, kControlInterface, 0}, std::span(none).first(0)));
  e.session->stop(e.pump->now);  // stop on a closed function: deactivate gets NOT_OPENED -> stopped
  ASSERT_TRUE(e.pump->run_until_state(SessionState::stopped));
}

}  // namespace
}  // namespace wwan::control
