// Quectel usbnet: the +QNETDEVSTATUS / +QNETDEVCTL parsers and command builders with golden
// strings (control/quectel_at.hpp), the QuectelSession scripted line by line, and the session
// against the emulated RM500Q (sim/quectel_ncm.hpp) through its AT serial port with a fake clock.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "control/quectel_at.hpp"
#include "control/quectel_session.hpp"
#include "sim/quectel_ncm.hpp"
#include "tests/control/at_session_script.hpp"

namespace wwan::control {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const Clock::time_point t0 = Clock::time_point{} + 24h;

// ---- the codec -----------------------------------------------------------------------------------------

// The real line: quectel-CM's log of an RM500U in NCM mode (docs/quectel.md, anchors §3.5).
constexpr std::string_view kRm500uLine =
    "+QNETDEVSTATUS: 10.109.166.163,255.255.255.0,10.109.166.1,,111.11.1.3,111.11.11.3,"
    "2409:8d05:0004:3b5e:1872:a064:1de5:923a,,,,2409:8008:2000:0010:0000:0000:0000:0001,"
    "2409:8008:2000:0110:0000:0000:0000:0001";

TEST(QnetdevstatusParse, TheRm500uLineFieldByField) {
  const auto st = quectel::parse_qnetdevstatus(kRm500uLine);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->form, quectel::NetdevStatus::Form::addressing);
  EXPECT_TRUE(st->connected);
  ASSERT_TRUE(st->ipv4);
  EXPECT_EQ(st->ipv4->address, (eth::Ipv4Address{{10, 109, 166, 163}}));  // field 1
  EXPECT_EQ(st->ipv4->prefix_length, 24);                                 // field 2: 255.255.255.0
  EXPECT_EQ(st->ipv4->gateway, (eth::Ipv4Address{{10, 109, 166, 1}}));    // field 3; field 4 (DHCP) empty
  EXPECT_THAT(st->ipv4->dns, ElementsAre(eth::Ipv4Address{{111, 11, 1, 3}}, eth::Ipv4Address{{111, 11, 11, 3}}));
  ASSERT_TRUE(st->ipv6);
  // field 7; fields 8..10 (mask, gateway, DHCP) empty
  EXPECT_EQ(st->ipv6->address, (eth::Ipv6Address{{0x24, 0x09, 0x8d, 0x05, 0x00, 0x04, 0x3b, 0x5e, 0x18, 0x72, 0xa0, 0x64,
                                                   0x1d, 0xe5, 0x92, 0x3a}}));
  EXPECT_EQ(st->ipv6->prefix_length, 64);
  EXPECT_FALSE(st->ipv6->gateway);
  ASSERT_EQ(st->ipv6->dns.size(), 2u);  // fields 11, 12
  EXPECT_EQ(st->ipv6->dns[0], (eth::Ipv6Address{{0x24, 0x09, 0x80, 0x08, 0x20, 0x00, 0x00, 0x10, 0, 0, 0, 0, 0, 0, 0, 1}}));
  EXPECT_EQ(st->ipv6->dns[1], (eth::Ipv6Address{{0x24, 0x09, 0x80, 0x08, 0x20, 0x00, 0x01, 0x10, 0, 0, 0, 0, 0, 0, 0, 1}}));
}

TEST(QnetdevstatusParse, HexLsbFirstIpv4AsQuectelCmReadsIt) {
  // quectel-CM: sscanf("%02X%02X%02X%02X", &addr[3], &addr[2], &addr[1], &addr[0]): "A3A66D0A" = 10.109.166.163.
  const auto st = quectel::parse_qnetdevstatus("+QNETDEVSTATUS: A3A66D0A,00FFFFFF,01A66D0A,,,");
  ASSERT_TRUE(st && st->ipv4);
  EXPECT_EQ(st->ipv4->address, (eth::Ipv4Address{{10, 109, 166, 163}}));
  EXPECT_EQ(st->ipv4->prefix_length, 24);
  EXPECT_EQ(st->ipv4->gateway, (eth::Ipv4Address{{10, 109, 166, 1}}));
  EXPECT_FALSE(st->ipv6);
}

TEST(QnetdevstatusParse, TheUrcFormAndAnAddresslessAnswer) {
  auto st = quectel::parse_qnetdevstatus("+QNETDEVSTATUS: 1");
  ASSERT_TRUE(st);
  EXPECT_EQ(st->form, quectel::NetdevStatus::Form::urc);
  EXPECT_TRUE(st->connected);
  st = quectel::parse_qnetdevstatus("+qnetdevstatus:0\r\n");  // case, no space, line end
  ASSERT_TRUE(st);
  EXPECT_EQ(st->form, quectel::NetdevStatus::Form::urc);
  EXPECT_FALSE(st->connected);
  st = quectel::parse_qnetdevstatus("+QNETDEVSTATUS: 0.0.0.0,0.0.0.0,0.0.0.0,,,,::,,,,,");
  ASSERT_TRUE(st);
  EXPECT_EQ(st->form, quectel::NetdevStatus::Form::addressing);
  EXPECT_FALSE(st->connected) << "all-zero addresses are no addresses";
}

TEST(QnetdevstatusParse, MalformedLinesAreRejected) {
  for (const std::string_view bad : {
           "+QNETDEVCTL: 1,1,1,1",                            // another command's line
           "+QNETDEVSTATUS: 10.109.166,255.255.255.0",        // three-part address
           "+QNETDEVSTATUS: 10.109.166.256,255.255.255.0",    // part out of range
           "+QNETDEVSTATUS: 10.1.2.3,255.0.255.0",            // a mask with holes
           "+QNETDEVSTATUS: A3A66D0,,",                       // seven hex digits
           "+QNETDEVSTATUS: adsfasdfasdf",                    // ModemManager's rejected vectors:
           "+QNETDEVSTATUS: 1,7,4,1",                         //   state 7
           "+QNETDEVSTATUS: 1,11,4,1",                        //   state 11
           "+QNETDEVSTATUS: 1,2,8,1",                         //   IP type 8
           "+QNETDEVSTATUS: 1,1,5,1",                         // IP type neither 4 nor 6
           "+QNETDEVSTATUS: 1,1,4,0",                         // profile 0 (manual: 1..42)
           "+QNETDEVSTATUS: 1,1,4,43",                        // profile 43
           "+QNETDEVSTATUS: 2,1,4,1",                         // on_off 2
           "+QNETDEVSTATUS: 10.1.2.3,,,,,,2409::zz,,,,,",     // bad IPv6
           "+QNETDEVSTATUS: 10.1.2.3,,,,,,2409::1,129,,,,",   // IPv6 prefix out of range
           "+QNETDEVSTATUS: 1,,,,,,,,,,,,",                   // thirteen fields
       })
    EXPECT_FALSE(quectel::parse_qnetdevstatus(bad)) << bad;
}

// The call-state form: the RG520N&RG525F&RG5x0F&RM5x0N AT Commands Manual v1.1 §9.9 (the RM520N's
// family), "+QNETDEVSTATUS: <on_off>[,<state>,<IP_type>,<profile_num>]", and ModemManager's
// mm-modem-helpers-quectel test vectors (EG9x/EC2x, state 2 = connected).
TEST(QnetdevstatusParse, TheCallStateFormOfTheRm5x0nManualAndModemManager) {
  struct Vector {
    std::string_view line;
    bool urc_enabled;
    std::uint8_t call_state, ip_version, profile;
    bool connected;
  };
  for (const Vector& v : {
           Vector{"+QNETDEVSTATUS: 1,1,4,1", true, 1, 4, 1, true},     // manual: AT+QNETDEVSTATUS? with a call
           Vector{"+QNETDEVSTATUS: 1,1,6,1", true, 1, 6, 1, true},     // manual: its IPv6 line
           Vector{"+QNETDEVSTATUS: 1,0,4,1", true, 0, 4, 1, false},    // manual: the URC of a call ending
           Vector{"+QNETDEVSTATUS: 1,2,4,1\r\n", true, 2, 4, 1, true},  // ModemManager: connected, IPv4
           Vector{"+QNETDEVSTATUS: 1,2,6,1", true, 2, 6, 1, true},     // ModemManager: connected, IPv6
           Vector{"+QNETDEVSTATUS:0,1,4,42", false, 1, 4, 42, true},   // ranges' ends, no space
       }) {
    const auto st = quectel::parse_qnetdevstatus(v.line);
    ASSERT_TRUE(st) << v.line;
    EXPECT_EQ(st->form, quectel::NetdevStatus::Form::call_state) << v.line;
    EXPECT_EQ(st->urc_enabled, v.urc_enabled) << v.line;  // field 1 <on_off>
    EXPECT_EQ(st->call_state, v.call_state) << v.line;    // field 2 <state>
    EXPECT_EQ(st->ip_version, v.ip_version) << v.line;    // field 3 <IP_type>
    EXPECT_EQ(st->profile, v.profile) << v.line;          // field 4 <profile_num>
    EXPECT_EQ(st->connected, v.connected) << v.line;
    EXPECT_FALSE(st->ipv4 || st->ipv6) << "this form carries no addresses";
  }
  // The manual's "+QNETDEVSTATUS: 1" (URCs on, no call) reads as the one-number form; the session
  // tells the two meanings apart by the command it sent.
  const auto lone = quectel::parse_qnetdevstatus("+QNETDEVSTATUS: 1");
  ASSERT_TRUE(lone);
  EXPECT_EQ(lone->form, quectel::NetdevStatus::Form::urc);
}

TEST(QnetdevctlParse, ModemManagersVectors) {
  // mm-modem-helpers-quectel tests: "+QNETDEVCTL: <op>,<cid>,<urc_en>,<state>".
  auto c = quectel::parse_qnetdevctl("+QNETDEVCTL: 0,0,0,0\r\n");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->op, 0);
  EXPECT_EQ(c->cid, 0);
  EXPECT_FALSE(c->connected);
  c = quectel::parse_qnetdevctl("+QNETDEVCTL: 3,1,0,1\r\n");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->op, 3);
  EXPECT_EQ(c->cid, 1);
  EXPECT_FALSE(c->urc);
  EXPECT_TRUE(c->connected);
  EXPECT_FALSE(quectel::parse_qnetdevctl("+QNETDEVSTATUS: 5,7,1,1"));
  EXPECT_FALSE(quectel::parse_qnetdevctl("+QNETDEVCTL: 1,7,0,4"));   // state beyond 1
  EXPECT_FALSE(quectel::parse_qnetdevctl("+QNETDEVCTL: 1,20,0,1"));  // cid beyond 15
}

TEST(QuectelCommands, GoldenStrings) {
  EXPECT_EQ(quectel::qnetdevctl_connect(1), "AT+QNETDEVCTL=1,1,1");
  EXPECT_EQ(quectel::qnetdevctl_disconnect(1), "AT+QNETDEVCTL=0,1,0");
  EXPECT_EQ(quectel::qnetdevstatus_query(3), "AT+QNETDEVSTATUS=3");
  EXPECT_EQ(quectel::qnetdevstatus_read(), "AT+QNETDEVSTATUS?");
  SessionSettings s;
  s.apn = "corp";
  s.user = "u\"1";
  s.password = "p";
  s.families = IpFamilies::ipv4v6;
  EXPECT_EQ(quectel::qicsgp(s, 1), "AT+QICSGP=1,3,\"corp\",\"u\\221\",\"p\",2");  // CHAP by default, '"' quoted
}

// Per firmware family: ModemManager's "+QNETDEVCTL=1,%u,1" / "=0,%u,1" order (our hang-up turns
// the URC off, as the EC200A manual's example), and quectel-CM atc.c's Unisoc order
// "AT+QNETDEVCTL=%d,1,%d" / "%d,0,%d" with the pdp first.
TEST(QuectelCommands, GoldenStringsPerArgumentOrder) {
  using O = QnetdevctlOrder;
  EXPECT_EQ(quectel::qnetdevctl_connect(3, O::op_cid_urc), "AT+QNETDEVCTL=1,3,1");
  EXPECT_EQ(quectel::qnetdevctl_disconnect(3, O::op_cid_urc), "AT+QNETDEVCTL=0,3,0");
  EXPECT_EQ(quectel::qnetdevctl_connect(3, O::cid_op_urc), "AT+QNETDEVCTL=3,1,1");
  EXPECT_EQ(quectel::qnetdevctl_disconnect(3, O::cid_op_urc), "AT+QNETDEVCTL=3,0,0");
  // cid 1: the dial reads the same both ways, the hang-up does not (cid 0 to a Unisoc module).
  EXPECT_EQ(quectel::qnetdevctl_connect(1, O::cid_op_urc), quectel::qnetdevctl_connect(1, O::op_cid_urc));
  EXPECT_EQ(quectel::qnetdevctl_disconnect(1, O::cid_op_urc), "AT+QNETDEVCTL=1,0,0");
  EXPECT_EQ(quectel::qnetdevctl_disconnect(1, O::op_cid_urc), "AT+QNETDEVCTL=0,1,0");
}

// The order is the quirk row's: Unisoc 2c7c:0900 cid first, the Qualcomm RM500Q / RM520N not.
TEST(QuectelCommands, TheQuirkTableNamesTheOrder) {
  const QuirkMatch u = find_quirks(0x2c7c, 0x0900, 0x02, 0x0d);
  ASSERT_NE(u.row, nullptr);
  EXPECT_EQ(u.quirks.dial, DialMethod::quectel_at);
  EXPECT_TRUE(u.quirks.at_over_serial);
  EXPECT_EQ(u.quirks.qnetdevctl_order, QnetdevctlOrder::cid_op_urc);
  for (const std::uint16_t pid : {std::uint16_t{0x0800}, std::uint16_t{0x0801}}) {
    const QuirkMatch q = find_quirks(0x2c7c, pid, 0x02, 0x0d);
    ASSERT_NE(q.row, nullptr) << pid;
    EXPECT_EQ(q.quirks.qnetdevctl_order, QnetdevctlOrder::op_cid_urc) << pid;
  }
  EXPECT_STREQ(to_string(QnetdevctlOrder::cid_op_urc), "cid,op,urc");
}

// ---- the session, scripted ---------------------------------------------------------------------------------

constexpr std::string_view kStatus =
    "\r\n+QNETDEVSTATUS: 100.72.3.4,255.255.255.0,100.72.3.1,,10.11.12.13,10.11.12.14,,,,,,\r\n\r\nOK\r\n";

class QuectelScripted : public AtSessionScript<QuectelSession> {
 protected:
  void make(SessionSettings settings = internet(), QuectelSessionOptions options = {}) {
    session = std::make_unique<QuectelSession>(std::move(settings), options);
  }
  static SessionSettings internet() {
    SessionSettings s;
    s.apn = "internet";
    return s;
  }
  void up_to_dial(bool first = true) {
    if (first) {
      session->start(now);
      EXPECT_EQ(sent(), "ATE0\r");
      reply("ATE0\r\r\nOK\r\n");
    }
    answer_sim_radio_and_context();
    EXPECT_EQ(sent(), "AT+QNETDEVCTL=1,1,1\r");
    EXPECT_EQ(state(), SessionState::connecting);
  }
  void connect(bool first = true) {
    up_to_dial(first);
    reply("\r\nOK\r\n");
    EXPECT_EQ(sent(), "AT+QNETDEVSTATUS=1\r");
    reply(kStatus);
    ASSERT_EQ(state(), SessionState::connected);
  }

  // After a drop with cid 2 / Unisoc order: the redial's commands.
  void up_to_dial_unisoc_redial() {
    answer_sim_radio_and_context("AT+CGDCONT=2,\"IP\",\"internet\"\r");
    EXPECT_EQ(sent(), "AT+QNETDEVCTL=2,1,1\r") << "the redial keeps the order";
    session->stop(now);
    EXPECT_EQ(sent(), "");  // the dial is in flight: the stop's hang-up waits for it
    reply("\r\nOK\r\n");
    EXPECT_EQ(sent(), "AT+QNETDEVCTL=2,0,0\r");
    reply("\r\nOK\r\n");
    EXPECT_EQ(state(), SessionState::stopped);
  }
};

TEST_F(QuectelScripted, DialsPollsThroughErrorsAndConnectsWithoutAnAddressOfItsOwn) {
  make();
  up_to_dial();
  reply("\r\nOK\r\n");
  EXPECT_EQ(sent(), "AT+QNETDEVSTATUS=1\r") << "read right after the dial's OK";
  reply("\r\nERROR\r\n");  // no call yet (quectel-CM polls through these)
  EXPECT_EQ(state(), SessionState::connecting);
  EXPECT_EQ(session->next_timer(), now + 1s);
  advance(1s);
  EXPECT_EQ(sent(), "AT+QNETDEVSTATUS=1\r");
  reply(kStatus);
  ASSERT_EQ(state(), SessionState::connected);
  EXPECT_TRUE(session->status().ip.empty()) << "the address is DHCP's on the link, not the WAN side's";
  ASSERT_TRUE(session->last_status() && session->last_status()->ipv4);
  EXPECT_EQ(session->last_status()->ipv4->address, (eth::Ipv4Address{{100, 72, 3, 4}}));
  EXPECT_EQ(session->status().connects, 1u);
  advance(15s);
  EXPECT_EQ(sent(), "AT+QNETDEVSTATUS=1\r") << "the connected poll";
}

TEST_F(QuectelScripted, TheConnectUrcInsideTheDialsAnswerPollsAtOnce) {
  make();
  up_to_dial();
  // The URC before the OK lands among the dial's lines (the channel does not know the prefix).
  reply("\r\n+QNETDEVSTATUS: 1\r\n\r\nOK\r\n");
  EXPECT_EQ(sent(), "AT+QNETDEVSTATUS=1\r");
  reply(kStatus);
  EXPECT_EQ(state(), SessionState::connected);
}

TEST_F(QuectelScripted, TheDisconnectUrcIsADropHangUpAndRedialWithBackOff) {
  make();
  connect();
  reply("\r\n+QNETDEVSTATUS: 0\r\n");
  EXPECT_EQ(state(), SessionState::disconnected);
  EXPECT_EQ(session->status().drops, 1u);
  EXPECT_THAT(session->status().error, HasSubstr("+QNETDEVSTATUS: 0"));
  EXPECT_EQ(sent(), "AT+QNETDEVCTL=0,1,0\r") << "the half-up call is ended before the redial";
  reply("\r\nERROR\r\n");  // nothing was up: expected
  EXPECT_EQ(session->next_timer(), now + 1s);
  advance(1s);
  connect(false);
  EXPECT_EQ(session->status().connects, 2u);
  EXPECT_EQ(session->current_redial_delay(), 1s) << "reset once connected";
}

TEST_F(QuectelScripted, APollWithoutAnAddressOrThreeFailedPollsIsADrop) {
  make();
  connect();
  advance(15s);
  EXPECT_EQ(sent(), "AT+QNETDEVSTATUS=1\r");
  reply("\r\n+QNETDEVSTATUS: ,,,,,,,,,,,\r\n\r\nOK\r\n");
  EXPECT_EQ(state(), SessionState::disconnected);
  EXPECT_THAT(session->status().error, HasSubstr("no address"));

  make();
  connect();
  for (int i = 0; i < 3; ++i) {
    advance(i == 0 ? 15s : 1s);
    EXPECT_EQ(sent(), "AT+QNETDEVSTATUS=1\r") << i;
    EXPECT_EQ(state(), SessionState::connected) << i;
    reply("\r\n+CME ERROR: 3\r\n");
  }
  EXPECT_EQ(state(), SessionState::disconnected);
  EXPECT_THAT(session->status().error, HasSubstr("3 times in a row"));
}

TEST_F(QuectelScripted, NoAddressWithinTheConnectTimeoutHangsUpAndRedials) {
  QuectelSessionOptions o;
  o.connect_timeout = 5s;
  make(internet(), o);
  up_to_dial();
  reply("\r\nOK\r\n");
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(sent(), "AT+QNETDEVSTATUS=1\r");
    reply("\r\nERROR\r\n");
    advance(1s);
  }
  EXPECT_EQ(state(), SessionState::disconnected);
  EXPECT_THAT(session->status().error, HasSubstr("no address within 5 s"));
  EXPECT_EQ(sent(), "AT+QNETDEVCTL=0,1,0\r");
  EXPECT_EQ(session->status().drops, 0u) << "a failed attempt is no network drop";
}

TEST_F(QuectelScripted, ADialErrorRedialsAndStopHangsUp) {
  make();
  up_to_dial();
  reply("\r\n+CME ERROR: 30\r\n");
  EXPECT_EQ(state(), SessionState::disconnected);
  EXPECT_THAT(session->status().error, HasSubstr("AT+QNETDEVCTL=1,1,1 failed: +CME ERROR: 30"));
  EXPECT_EQ(sent(), "AT+QNETDEVCTL=0,1,0\r");
  reply("\r\nERROR\r\n");
  advance(1s);
  connect(false);
  session->stop(now);
  EXPECT_EQ(state(), SessionState::stopping);
  EXPECT_EQ(sent(), "AT+QNETDEVCTL=0,1,0\r");
  reply("\r\nOK\r\n");
  EXPECT_EQ(state(), SessionState::stopped);
}

TEST_F(QuectelScripted, CredentialsGoThroughQicsgp) {
  SessionSettings s = internet();
  s.user = "web";
  s.password = "web";
  s.auth = AuthProtocol::pap;
  make(s);
  session->start(now);
  EXPECT_EQ(sent(), "ATE0\r");
  reply("\r\nOK\r\n");
  answer_sim_radio_and_context();
  EXPECT_EQ(sent(), "AT+QICSGP=1,1,\"internet\",\"web\",\"web\",1\r");
  reply("\r\nOK\r\n");
  EXPECT_EQ(sent(), "AT+QNETDEVCTL=1,1,1\r");
}

// ---- against the emulated RM500Q -----------------------------------------------------------------------

TEST_F(QuectelScripted, UnisocOrderDialsAndHangsUpWithTheCidFirst) {
  QuectelSessionOptions o;
  o.cid = 2;
  o.qnetdevctl_order = QnetdevctlOrder::cid_op_urc;
  make(internet(), o);
  session->start(now);
  EXPECT_EQ(sent(), "ATE0\r");
  reply("\r\nOK\r\n");
  answer_sim_radio_and_context("AT+CGDCONT=2,\"IP\",\"internet\"\r");
  EXPECT_EQ(sent(), "AT+QNETDEVCTL=2,1,1\r");
  reply("\r\nOK\r\n");
  EXPECT_EQ(sent(), "AT+QNETDEVSTATUS=2\r");
  reply(kStatus);
  ASSERT_EQ(state(), SessionState::connected);
  reply("\r\n+QNETDEVSTATUS: 0\r\n");  // the network ends the call
  EXPECT_EQ(state(), SessionState::disconnected);
  EXPECT_EQ(sent(), "AT+QNETDEVCTL=2,0,0\r");
  reply("\r\nERROR\r\n");
  advance(1s);
  up_to_dial_unisoc_redial();
}

// The Qualcomm firmware (RM5x0N manual §9.9): AT+QNETDEVSTATUS=<n> only switches the URC and answers
// a bare OK; the status is AT+QNETDEVSTATUS?'s call-state lines. Before this the connect timed out.
TEST_F(QuectelScripted, CallStateFirmwareIsReadWithTheQueryFormAndConnects) {
  make();
  up_to_dial();
  reply("\r\nOK\r\n");
  EXPECT_EQ(sent(), "AT+QNETDEVSTATUS=1\r");
  reply("\r\nOK\r\n");  // the URC switch: no status line
  EXPECT_TRUE(session->reads_call_state());
  EXPECT_EQ(sent(), "AT+QNETDEVSTATUS?\r") << "read at once with the query form";
  reply("\r\n+QNETDEVSTATUS: 1\r\n\r\nOK\r\n");  // URCs on, no call in progress yet
  EXPECT_EQ(state(), SessionState::connecting);
  EXPECT_EQ(sent(), "") << "the lone <on_off> is no connect URC: no poll storm";
  EXPECT_EQ(session->next_timer(), now + 1s);
  advance(1s);
  EXPECT_EQ(sent(), "AT+QNETDEVSTATUS?\r");
  reply("\r\n+QNETDEVSTATUS: 1,1,4,2\r\n\r\nOK\r\n");  // another context's call
  EXPECT_EQ(state(), SessionState::connecting);
  advance(1s);
  EXPECT_EQ(sent(), "AT+QNETDEVSTATUS?\r");
  reply("\r\n+QNETDEVSTATUS: 1,1,4,1\r\n+QNETDEVSTATUS: 1,1,6,1\r\n\r\nOK\r\n");
  ASSERT_EQ(state(), SessionState::connected) << session->status().error;
  ASSERT_TRUE(session->last_status());
  EXPECT_EQ(session->last_status()->form, quectel::NetdevStatus::Form::call_state);
  EXPECT_TRUE(session->status().ip.empty()) << "the address is DHCP's on the link";
  advance(15s);
  EXPECT_EQ(sent(), "AT+QNETDEVSTATUS?\r") << "the connected poll keeps the query form";
  reply("\r\n+QNETDEVSTATUS: 1,1,4,1\r\n\r\nOK\r\n");
  EXPECT_EQ(state(), SessionState::connected);
  reply("\r\n+QNETDEVSTATUS: 1,0,4,2\r\n");  // another context's URC: not ours
  EXPECT_EQ(state(), SessionState::connected);
  reply("\r\n+QNETDEVSTATUS: 1,0,4,1\r\n");  // the manual's URC of our call ending
  EXPECT_EQ(state(), SessionState::disconnected);
  EXPECT_EQ(session->status().drops, 1u);
  EXPECT_THAT(session->status().error, HasSubstr("+QNETDEVSTATUS: 1,0,4,1"));
  EXPECT_EQ(sent(), "AT+QNETDEVCTL=0,1,0\r");
}

TEST_F(QuectelScripted, CallStateFirmwareAPollWithoutOurCallIsADrop) {
  make();
  up_to_dial();
  reply("\r\nOK\r\n");
  EXPECT_EQ(sent(), "AT+QNETDEVSTATUS=1\r");
  reply("\r\nOK\r\n");
  EXPECT_EQ(sent(), "AT+QNETDEVSTATUS?\r");
  reply("\r\n+QNETDEVSTATUS: 1,2,4,1\r\n\r\nOK\r\n");  // ModemManager's "connected"
  ASSERT_EQ(state(), SessionState::connected);
  advance(15s);
  EXPECT_EQ(sent(), "AT+QNETDEVSTATUS?\r");
  reply("\r\n+QNETDEVSTATUS: 1\r\n\r\nOK\r\n");  // no call in progress any more
  EXPECT_EQ(state(), SessionState::disconnected);
  EXPECT_THAT(session->status().error, HasSubstr("no call on cid 1"));
}

// What the runner does for a serial AT port: commands out, whatever the port has back in, until
// neither moves (at most 16 rounds).
void pump_at_port(sim::QuectelNcmModem& modem, QuectelSession& session, Clock::time_point now) {
  for (int round = 0; round < 16; ++round) {
    bool moved = false;
    for (const ByteVector& c : session.take_commands()) {
      ASSERT_EQ(modem.out(modem.at_bulk_out(), c), sim::EndpointResult::ok);
      moved = true;
    }
    std::array<std::uint8_t, 512> buf{};
    for (sim::InResult r; (r = modem.in(modem.at_bulk_in(), buf)).result == sim::EndpointResult::ok;) {
      session.on_response(std::span(buf).first(r.bytes), now);
      moved = true;
    }
    if (!moved) return;
  }
}

// `d` of fake time in 100 ms steps, the session's timers and the port pumped at each.
void run_at_port_for(sim::QuectelNcmModem& modem, QuectelSession& session, Clock::time_point& now,
                     std::chrono::milliseconds d) {
  const Clock::time_point end = now + d;
  while (now < end) {
    now += 100ms;
    session.on_timer(now);
    pump_at_port(modem, session, now);
  }
}

struct Rm500q : ::testing::Test {
  sim::QuectelNcmModem modem{sim::ModemOptions{}};
  QuectelSession session{[] {
    SessionSettings s;
    s.apn = "internet";
    return s;
  }()};
  Clock::time_point now = t0;

  void pump() { pump_at_port(modem, session, now); }
  void run_for(std::chrono::milliseconds d) { run_at_port_for(modem, session, now, d); }
};

TEST_F(Rm500q, ConnectsDropsAndRedials) {
  ASSERT_TRUE(modem.set_interface(5, 1));  // the data alt setting: the NCM link is up
  session.start(now);
  pump();
  ASSERT_EQ(session.status().state, SessionState::connected) << session.status().error;
  EXPECT_TRUE(modem.at().connected());
  EXPECT_EQ(modem.at().connected_cid(), 1);
  EXPECT_EQ(modem.at().apn(1), "internet");
  EXPECT_TRUE(modem.session_active());
  ASSERT_TRUE(session.last_status() && session.last_status()->ipv4);
  EXPECT_EQ(session.last_status()->ipv4->address, (eth::Ipv4Address{{100, 72, 3, 4}})) << "the module's WAN side";

  modem.faults().drop_session = true;  // the network ends the PDN
  pump();
  EXPECT_EQ(session.status().state, SessionState::disconnected);
  EXPECT_EQ(session.status().drops, 1u);
  EXPECT_EQ(modem.quectel_counters().calls_dropped, 1u);
  run_for(2500ms);  // the NCM link is back after 1 s; the redial after 1 s
  ASSERT_EQ(session.status().state, SessionState::connected) << session.status().error;
  EXPECT_EQ(session.status().connects, 2u);
  EXPECT_EQ(modem.at().dials(), 2u);

  session.stop(now);
  pump();
  EXPECT_EQ(session.status().state, SessionState::stopped);
  EXPECT_FALSE(modem.at().connected());
  EXPECT_EQ(modem.at().hangups(), 1u) << "the stop; the drop's hang-up found no call";
}

TEST_F(Rm500q, NoNcmTrafficBeforeTheDial) {
  ASSERT_TRUE(modem.set_interface(5, 1));
  std::array<std::uint8_t, 2048> buf{};
  EXPECT_EQ(modem.in(0x8e, buf).result, sim::EndpointResult::nak);
  const std::array<std::uint8_t, 4> junk{};
  EXPECT_EQ(modem.out(0x0f, junk), sim::EndpointResult::ok);
  EXPECT_EQ(modem.quectel_counters().frames_before_dial, 1u);
  EXPECT_FALSE(modem.next_deadline());
  EXPECT_FALSE(modem.session_active());
}

// The RM500U-CN (`--sim quectel-ncm+unisoc`): AT+QNETDEVCTL with the cid first, the other order
// refused, its AT port on interface 4.
struct Rm500u : ::testing::Test {
  static sim::ModemOptions unisoc() {
    sim::ModemOptions o;
    o.quectel_unisoc = true;
    return o;
  }
  static SessionSettings internet() {
    SessionSettings s;
    s.apn = "internet";
    return s;
  }
  static QuectelSessionOptions order(QnetdevctlOrder o, int cid = 1) {
    QuectelSessionOptions q;
    q.qnetdevctl_order = o;
    q.cid = cid;
    return q;
  }
  sim::QuectelNcmModem modem{unisoc()};
  Clock::time_point now = t0;

  void pump(QuectelSession& session) { pump_at_port(modem, session, now); }
  void run_for(QuectelSession& session, std::chrono::milliseconds d) { run_at_port_for(modem, session, now, d); }
};

TEST_F(Rm500u, ConnectsDropsRedialsAndStopsWithTheCidFirst) {
  EXPECT_EQ(modem.at_bulk_in(), 0x85);  // interface 4
  ASSERT_TRUE(modem.set_interface(1, 1));  // NCM data on interface 1: the link is up
  QuectelSession session(internet(), order(QnetdevctlOrder::cid_op_urc));
  session.start(now);
  pump(session);
  ASSERT_EQ(session.status().state, SessionState::connected) << session.status().error;
  EXPECT_EQ(modem.at().connected_cid(), 1);
  EXPECT_EQ(modem.at().dials(), 1u);

  modem.faults().drop_session = true;
  pump(session);
  EXPECT_EQ(session.status().state, SessionState::disconnected);
  run_for(session, 2500ms);
  ASSERT_EQ(session.status().state, SessionState::connected) << session.status().error;
  EXPECT_EQ(modem.at().dials(), 2u);

  session.stop(now);
  pump(session);
  EXPECT_EQ(session.status().state, SessionState::stopped);
  EXPECT_FALSE(modem.at().connected()) << "AT+QNETDEVCTL=1,0,0 ended the call";
  EXPECT_EQ(modem.at().hangups(), 1u);
}

TEST_F(Rm500u, TheOtherOrderIsRefused) {
  ASSERT_TRUE(modem.set_interface(1, 1));
  {
    // cid 2 in ModemManager's order: "1,2,1" is op 2 to this firmware.
    QuectelSession session(internet(), order(QnetdevctlOrder::op_cid_urc, 2));
    session.start(now);
    pump(session);
    EXPECT_EQ(session.status().state, SessionState::disconnected);
    EXPECT_THAT(session.status().error, HasSubstr("AT+QNETDEVCTL=1,2,1 failed: +CME ERROR: 50"));
    EXPECT_EQ(modem.at().dials(), 0u);
  }
  // cid 1: the dial reads the same, the hang-up "0,1,0" is cid 0 and the call stays up.
  QuectelSession session(internet(), order(QnetdevctlOrder::op_cid_urc, 1));
  session.start(now);
  pump(session);
  ASSERT_EQ(session.status().state, SessionState::connected) << session.status().error;
  session.stop(now);
  pump(session);
  EXPECT_TRUE(modem.at().connected()) << "the wrong order leaves the call up";
  EXPECT_EQ(modem.at().hangups(), 0u);
}

}  // namespace
}  // namespace wwan::control
