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
           "+QNETDEVSTATUS: 1,2,4,1",                         // the EG9x state form: not handled
           "+QNETDEVSTATUS: 10.1.2.3,,,,,,2409::zz,,,,,",     // bad IPv6
           "+QNETDEVSTATUS: 10.1.2.3,,,,,,2409::1,129,,,,",   // IPv6 prefix out of range
           "+QNETDEVSTATUS: 1,,,,,,,,,,,,",                   // thirteen fields
       })
    EXPECT_FALSE(quectel::parse_qnetdevstatus(bad)) << bad;
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
  SessionSettings s;
  s.apn = "corp";
  s.user = "u\"1";
  s.password = "p";
  s.families = IpFamilies::ipv4v6;
  EXPECT_EQ(quectel::qicsgp(s, 1), "AT+QICSGP=1,3,\"corp\",\"u\\221\",\"p\",2");  // CHAP by default, '"' quoted
}

// ---- the session, scripted ---------------------------------------------------------------------------------

constexpr std::string_view kStatus =
    "\r\n+QNETDEVSTATUS: 100.72.3.4,255.255.255.0,100.72.3.1,,10.11.12.13,10.11.12.14,,,,,,\r\n\r\nOK\r\n";

class QuectelScripted : public ::testing::Test {
 protected:
  void make(SessionSettings settings = internet(), QuectelSessionOptions options = {}) {
    session = std::make_unique<QuectelSession>(std::move(settings), options);
  }
  static SessionSettings internet() {
    SessionSettings s;
    s.apn = "internet";
    return s;
  }
  std::string sent() {
    std::string s;
    for (const ByteVector& c : session->take_commands()) s.append(c.begin(), c.end());
    return s;
  }
  void reply(std::string_view text) {
    session->on_response(std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()), now);
  }
  void advance(std::chrono::milliseconds d) {
    now += d;
    session->on_timer(now);
  }
  SessionState state() const { return session->status().state; }

  void up_to_dial(bool first = true) {
    if (first) {
      session->start(now);
      EXPECT_EQ(sent(), "ATE0\r");
      reply("ATE0\r\r\nOK\r\n");
    }
    EXPECT_EQ(sent(), "AT+CPIN?\r");
    reply("\r\n+CPIN: READY\r\n\r\nOK\r\n");
    EXPECT_EQ(sent(), "AT+CFUN?\r");
    reply("\r\n+CFUN: 1\r\n\r\nOK\r\n");
    EXPECT_EQ(sent(), "AT+CGDCONT=1,\"IP\",\"internet\"\r");
    reply("\r\nOK\r\n");
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

  std::unique_ptr<QuectelSession> session;
  Clock::time_point now = t0;
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
  EXPECT_EQ(sent(), "AT+CPIN?\r");
  reply("\r\n+CPIN: READY\r\n\r\nOK\r\n");
  EXPECT_EQ(sent(), "AT+CFUN?\r");
  reply("\r\n+CFUN: 1\r\n\r\nOK\r\n");
  EXPECT_EQ(sent(), "AT+CGDCONT=1,\"IP\",\"internet\"\r");
  reply("\r\nOK\r\n");
  EXPECT_EQ(sent(), "AT+QICSGP=1,1,\"internet\",\"web\",\"web\",1\r");
  reply("\r\nOK\r\n");
  EXPECT_EQ(sent(), "AT+QNETDEVCTL=1,1,1\r");
}

// ---- against the emulated RM500Q -----------------------------------------------------------------------

struct Rm500q : ::testing::Test {
  sim::QuectelNcmModem modem{sim::ModemOptions{}};
  QuectelSession session{[] {
    SessionSettings s;
    s.apn = "internet";
    return s;
  }()};
  Clock::time_point now = t0;

  // What the runner does for a serial AT port: commands out, whatever the port has back in.
  void pump() {
    for (int round = 0; round < 16; ++round) {
      bool moved = false;
      for (const ByteVector& c : session.take_commands()) {
        ASSERT_EQ(modem.out(sim::QuectelNcmModem::kAtBulkOut, c), sim::EndpointResult::ok);
        moved = true;
      }
      std::array<std::uint8_t, 512> buf{};
      for (sim::InResult r; (r = modem.in(sim::QuectelNcmModem::kAtBulkIn, buf)).result == sim::EndpointResult::ok;) {
        session.on_response(std::span(buf).first(r.bytes), now);
        moved = true;
      }
      if (!moved) return;
    }
  }
  void run_for(std::chrono::milliseconds d) {
    const Clock::time_point end = now + d;
    while (now < end) {
      now += 100ms;
      session.on_timer(now);
      pump();
    }
  }
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

}  // namespace
}  // namespace wwan::control
