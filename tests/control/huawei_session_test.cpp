// HuaweiSession tests, two ways:
//   - scripted: the test plays the modem line by line (real framing: echo, CR LF, URCs), so each
//     branch of the state machine is pinned to the exact commands it sends;
//   - end to end: the session drives the emulated E3372 (sim::make_modem("huawei-e3372")) through
//     a pump that does what the session runner does (SEND_ENCAPSULATED_COMMAND, interrupt
//     endpoint, GET_ENCAPSULATED_RESPONSE on RESPONSE_AVAILABLE or by polling), with a fake clock.
// No test sleeps: time is a variable.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "control/cdc_ncm.hpp"
#include "control/huawei_session.hpp"
#include "sim/modem.hpp"
#include "sim/ncm_modem.hpp"
#include "tests/control/at_session_script.hpp"

namespace wwan::control {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;

const Clock::time_point t0 = Clock::time_point{} + 24h;

SessionSettings internet() {
  SessionSettings s;
  s.apn = "internet";
  return s;
}

// ---- scripted ------------------------------------------------------------------------------------------

class Scripted : public AtSessionScript<HuaweiSession> {
 protected:
  void make(SessionSettings settings = internet(), HuaweiSessionOptions options = {}) {
    session = std::make_unique<HuaweiSession>(std::move(settings), options);
  }

  // ATE0 .. ^NDISDUP, answered READY / radio on; the dial's OK not yet given.
  void up_to_dial(std::string_view dial = "AT^NDISDUP=1,1,\"internet\"\r") {
    session->start(now);
    EXPECT_EQ(sent(), "ATE0\r");
    reply("ATE0\r\r\nOK\r\n");
    answer_sim_radio_and_context();
    EXPECT_EQ(sent(), dial);
    EXPECT_EQ(state(), SessionState::connecting);
  }
  void connect() {
    up_to_dial();
    reply("\r\nOK\r\n\r\n^NDISSTAT:1,,,\"IPV4\"\r\n");
    EXPECT_EQ(sent(), "AT^DHCP?\r");
    reply(kDhcp);
    ASSERT_EQ(state(), SessionState::connected);
  }

  static constexpr std::string_view kDhcp =
      "\r\n^DHCP: 0240400a,fcffffff,0140400a,0140400a,0d0c0b0a,0e0c0b0a,150000000,50000000\r\n\r\nOK\r\n";
};

TEST_F(Scripted, ConnectsByPollingNdisstatqry) {
  make();
  EXPECT_EQ(state(), SessionState::idle);
  up_to_dial();
  reply("\r\nOK\r\n");
  EXPECT_EQ(session->next_timer(), now + 1s);  // ModemManager's 1 s poll
  advance(1s);
  EXPECT_EQ(sent(), "AT^NDISSTATQRY?\r");
  reply("\r\n^NDISSTATQRY: 0,,,\"IPV4\",0,,,\"IPV6\"\r\n\r\nOK\r\n");
  EXPECT_EQ(state(), SessionState::connecting);
  advance(1s);
  EXPECT_EQ(sent(), "AT^NDISSTATQRY?\r");
  reply("\r\n^NDISSTATQRY: 1,,,\"IPV4\",0,33,,\"IPV6\"\r\n\r\nOK\r\n");
  EXPECT_EQ(sent(), "AT^DHCP?\r");
  reply(kDhcp);
  ASSERT_EQ(state(), SessionState::connected);
  const IpConfig& ip = session->status().ip;
  ASSERT_TRUE(ip.ipv4);
  EXPECT_EQ(ip.ipv4->address, (eth::Ipv4Address{{10, 64, 64, 2}}));
  EXPECT_EQ(ip.ipv4->prefix_length, 30);
  EXPECT_EQ(ip.ipv4->gateway, (eth::Ipv4Address{{10, 64, 64, 1}}));
  EXPECT_THAT(ip.ipv4->dns, ::testing::ElementsAre(eth::Ipv4Address{{10, 11, 12, 13}}, eth::Ipv4Address{{10, 11, 12, 14}}));
  EXPECT_FALSE(ip.ipv6);
  EXPECT_EQ(session->status().connects, 1u);
}

// The URC can beat the dial's OK; the session waits for the OK, then reads ^DHCP.
TEST_F(Scripted, UrcBeforeTheDialsOk) {
  make();
  up_to_dial();
  reply("\r\n^NDISSTAT:1,,,\"IPV4\"\r\n");
  EXPECT_EQ(sent(), "");
  reply("\r\nOK\r\n");
  EXPECT_EQ(sent(), "AT^DHCP?\r");
  reply(kDhcp);
  EXPECT_EQ(state(), SessionState::connected);
}

// Echo left on (echo_off = false) and boot noise before and inside every answer.
TEST_F(Scripted, EchoAndBootNoiseDoNotConfuseIt) {
  HuaweiSessionOptions o;
  o.echo_off = false;
  make(internet(), o);
  reply("\r\n^BOOT:20436354,0,0,0,72\r\n\r\n^SIMST:1\r\n");  // before start
  session->start(now);
  EXPECT_EQ(sent(), "AT+CPIN?\r");
  reply("AT+CPIN?\r\r\n^RSSI:19\r\n\r\n+CPIN: READY\r\n\r\n^MODE:7,17\r\n\r\nOK\r\n\r\n^SRVST:2\r\n");
  EXPECT_EQ(sent(), "AT+CFUN?\r");
  reply("AT+CFUN?\r");
  reply("\r\n^HCSQ:\"LTE\",50,41,140,22\r\n\r\n+CFUN: 1\r\n\r");
  reply("\nOK\r\n");
  EXPECT_EQ(sent(), "AT+CGDCONT=1,\"IP\",\"internet\"\r");
  reply("AT+CGDCONT=1,\"IP\",\"internet\"\r\r\nOK\r\n");
  EXPECT_EQ(sent(), "AT^NDISDUP=1,1,\"internet\"\r");
  reply("AT^NDISDUP=1,1,\"internet\"\r\r\nOK\r\n\r\n^DSFLOWRPT:0,0,0,0,0,0,0\r\n\r\n^NDISSTAT:1,,,\"IPV4\"\r\n");
  EXPECT_EQ(sent(), "AT^DHCP?\r");
  reply(std::string("AT^DHCP?\r") + std::string(kDhcp));
  EXPECT_EQ(state(), SessionState::connected);
  EXPECT_TRUE(session->status().ip.ipv4);
}

TEST_F(Scripted, SimPinIsEnteredOnce) {
  SessionSettings s = internet();
  s.pin = "1234";
  make(s);
  session->start(now);
  EXPECT_EQ(sent(), "ATE0\r");
  reply("\r\nOK\r\n");
  EXPECT_EQ(sent(), "AT+CPIN?\r");
  reply("\r\n+CPIN: SIM PIN\r\n\r\nOK\r\n");
  EXPECT_EQ(sent(), "AT+CPIN=\"1234\"\r");
  reply("\r\nOK\r\n");
  EXPECT_EQ(sent(), "AT+CPIN?\r");
  reply("\r\n+CPIN: READY\r\n\r\nOK\r\n");
  EXPECT_EQ(sent(), "AT+CFUN?\r");
}

TEST_F(Scripted, SimPinNeededButNoneGiven) {
  make();
  session->start(now);
  (void)sent();
  reply("\r\nOK\r\n");
  (void)sent();
  reply("\r\n+CPIN: SIM PIN\r\n\r\nOK\r\n");
  EXPECT_EQ(state(), SessionState::failed);
  EXPECT_EQ(session->status().error, "SIM PIN required but no PIN was given (--pin)");
  EXPECT_EQ(sent(), "");
  EXPECT_FALSE(session->next_timer());
}

TEST_F(Scripted, WrongPinIsNotRetriedAndNotShown) {
  SessionSettings s = internet();
  s.pin = "9876";
  make(s);
  session->start(now);
  (void)sent();
  reply("\r\nOK\r\n");
  (void)sent();
  reply("\r\n+CPIN: SIM PIN\r\n\r\nOK\r\n");
  EXPECT_EQ(sent(), "AT+CPIN=\"9876\"\r");
  reply("\r\n+CME ERROR: 16\r\n");
  EXPECT_EQ(state(), SessionState::failed);
  EXPECT_THAT(session->status().error, HasSubstr("incorrect password"));
  EXPECT_THAT(session->status().error, Not(HasSubstr("9876")));
  EXPECT_EQ(sent(), "");
}

TEST_F(Scripted, PukAndMissingSimFail) {
  make();
  session->start(now);
  (void)sent();
  reply("\r\nOK\r\n");
  (void)sent();
  reply("\r\n+CPIN: SIM PUK\r\n\r\nOK\r\n");
  EXPECT_EQ(state(), SessionState::failed);
  EXPECT_THAT(session->status().error, HasSubstr("PUK"));

  make();
  session->start(now);
  (void)sent();
  reply("\r\nOK\r\n");
  (void)sent();
  reply("\r\n+CME ERROR: 10\r\n");
  EXPECT_EQ(state(), SessionState::failed);
  EXPECT_THAT(session->status().error, HasSubstr("SIM not inserted"));
}

TEST_F(Scripted, SimBusyIsAskedAgain) {
  make();
  session->start(now);
  (void)sent();
  reply("\r\nOK\r\n");
  EXPECT_EQ(sent(), "AT+CPIN?\r");
  reply("\r\n+CME ERROR: 14\r\n");
  EXPECT_EQ(state(), SessionState::starting);
  EXPECT_EQ(sent(), "");
  advance(1s);
  EXPECT_EQ(sent(), "AT+CPIN?\r");
  reply("\r\n+CPIN: READY\r\n\r\nOK\r\n");
  EXPECT_EQ(sent(), "AT+CFUN?\r");
}

TEST_F(Scripted, RadioOffIsSwitchedOn) {
  make();
  session->start(now);
  (void)sent();
  reply("\r\nOK\r\n");
  (void)sent();
  reply("\r\n+CPIN: READY\r\n\r\nOK\r\n");
  EXPECT_EQ(sent(), "AT+CFUN?\r");
  reply("\r\n+CFUN: 4\r\n\r\nOK\r\n");
  EXPECT_EQ(sent(), "AT+CFUN=1\r");
  reply("\r\nOK\r\n");
  EXPECT_EQ(sent(), "AT+CGDCONT=1,\"IP\",\"internet\"\r");
}

TEST_F(Scripted, DialErrorRedialsWithBackoff) {
  SessionSettings s = internet();
  s.redial_initial = 1000ms;
  s.redial_max = 3000ms;
  make(s);
  up_to_dial();
  reply("\r\n+CME ERROR: 30\r\n");
  EXPECT_EQ(state(), SessionState::disconnected);
  EXPECT_THAT(session->status().error, HasSubstr("no network service"));
  EXPECT_EQ(sent(), "AT^NDISDUP=1,0\r");  // undo whatever half happened
  reply("\r\nERROR\r\n");                   // already down: expected
  EXPECT_EQ(session->next_timer(), now + 1000ms);
  advance(1000ms);
  EXPECT_EQ(state(), SessionState::connecting);
  EXPECT_EQ(sent(), "AT+CPIN?\r");
  reply("\r\n+CPIN: READY\r\n\r\nOK\r\n");
  (void)sent();
  reply("\r\n+CFUN: 1\r\n\r\nOK\r\n");
  (void)sent();
  reply("\r\nOK\r\n");
  EXPECT_EQ(sent(), "AT^NDISDUP=1,1,\"internet\"\r");
  reply("\r\nERROR\r\n");
  (void)sent();
  reply("\r\nERROR\r\n");
  EXPECT_EQ(session->next_timer(), now + 2000ms);  // doubled
  EXPECT_EQ(session->current_redial_delay(), 3000ms);  // next: capped at redial_max
  EXPECT_EQ(session->status().connects, 0u);
}

TEST_F(Scripted, ConnectTimeoutHangsUpAndRedials) {
  HuaweiSessionOptions o;
  o.connect_timeout = 5s;
  make(internet(), o);
  up_to_dial();
  reply("\r\nOK\r\n");
  for (int i = 0; i < 4; ++i) {
    advance(1s);
    EXPECT_EQ(sent(), "AT^NDISSTATQRY?\r");
    reply("\r\n^NDISSTATQRY: 2,,,\"IPV4\"\r\n\r\nOK\r\n");  // connecting
  }
  advance(1s);
  EXPECT_EQ(state(), SessionState::disconnected);
  EXPECT_THAT(session->status().error, HasSubstr("no connection within 5 s"));
  EXPECT_THAT(sent(), HasSubstr("AT^NDISDUP=1,0\r"));
}

TEST_F(Scripted, NetworkDropByUrcThenRedial) {
  make();
  connect();
  EXPECT_EQ(session->next_timer(), now + 15s);  // the connected-state poll
  advance(200ms);
  reply("\r\n^NDISSTAT:0,36,,\"IPV4\"\r\n");
  EXPECT_EQ(state(), SessionState::disconnected);
  EXPECT_EQ(session->status().drops, 1u);
  EXPECT_THAT(session->status().error, HasSubstr("cause 36"));
  EXPECT_TRUE(session->status().ip.empty());
  advance(1s);
  EXPECT_EQ(state(), SessionState::connecting);
  EXPECT_EQ(sent(), "AT+CPIN?\r");
  reply("\r\n+CPIN: READY\r\n\r\nOK\r\n");
  (void)sent();
  reply("\r\n+CFUN: 1\r\n\r\nOK\r\n");
  (void)sent();
  reply("\r\nOK\r\n");
  EXPECT_EQ(sent(), "AT^NDISDUP=1,1,\"internet\"\r");
  reply("\r\nOK\r\n\r\n^NDISSTAT:1,,,\"IPV4\"\r\n");
  EXPECT_EQ(sent(), "AT^DHCP?\r");
  reply(kDhcp);
  EXPECT_EQ(state(), SessionState::connected);
  EXPECT_EQ(session->status().connects, 2u);
  EXPECT_EQ(session->current_redial_delay(), 1000ms);  // reset by the success
}

// NETWORK_CONNECTION(0) alone is confirmed with a query before the session believes it.
TEST_F(Scripted, NetworkConnectionNotificationIsConfirmed) {
  make();
  connect();
  cdc::Notification n;
  n.header.notification = cdc::kNotifyNetworkConnection;
  n.header.value = 0;
  session->on_notification(n, now);
  EXPECT_EQ(sent(), "AT^NDISSTATQRY?\r");
  reply("\r\n^NDISSTATQRY: 1,,,\"IPV4\"\r\n\r\nOK\r\n");
  EXPECT_EQ(state(), SessionState::connected);  // a stale notification
  session->on_notification(n, now);
  EXPECT_EQ(sent(), "AT^NDISSTATQRY?\r");
  reply("\r\n^NDISSTATQRY: 0,,,\"IPV4\"\r\n\r\nOK\r\n");
  EXPECT_EQ(state(), SessionState::disconnected);
  EXPECT_EQ(session->status().drops, 1u);
}

// Seen through real libusb (tests/usbfs/session_test.cpp): the E3372 sends NETWORK_CONNECTION(0)
// and the ^NDISSTAT:0 URC together; the notification makes the session query, and the URC then
// arrives while the query is in flight, so the channel files it among the query's lines (old
// firmware answers the query with that prefix). The drop must be seen at once, not at the next
// periodic poll 15 s later.
TEST_F(Scripted, UrcInsideTheConfirmingQueryIsTheDrop) {
  make();
  connect();
  cdc::Notification n;
  n.header.notification = cdc::kNotifyNetworkConnection;
  n.header.value = 0;
  session->on_notification(n, now);
  EXPECT_EQ(sent(), "AT^NDISSTATQRY?\r");
  reply("\r\n^NDISSTAT:0,,,\"IPV4\"\r\n\r\n^NDISSTATQRY: 0,,,\"IPV4\"\r\n\r\nOK\r\n");
  EXPECT_EQ(state(), SessionState::disconnected);
  EXPECT_EQ(session->status().drops, 1u);
}

TEST_F(Scripted, PeriodicPollSeesADrop) {
  make();
  connect();
  advance(15s);
  EXPECT_EQ(sent(), "AT^NDISSTATQRY?\r");
  reply("\r\n^NDISSTATQRY: 1,,,\"IPV4\"\r\n\r\nOK\r\n");
  EXPECT_EQ(session->next_timer(), now + 15s);
  advance(15s);
  EXPECT_EQ(sent(), "AT^NDISSTATQRY?\r");
  reply("\r\n^NDISSTATQRY:0,,,\"IPV4\",0,33,,\"IPV6\"\r\n\r\nOK\r\n");
  EXPECT_EQ(state(), SessionState::disconnected);
}

TEST_F(Scripted, StopHangsUp) {
  make();
  connect();
  session->stop(now);
  EXPECT_EQ(state(), SessionState::stopping);
  EXPECT_EQ(sent(), "AT^NDISDUP=1,0\r");
  reply("\r\nOK\r\n\r\n^NDISSTAT:0,,,\"IPV4\"\r\n");
  EXPECT_EQ(state(), SessionState::stopped);
  EXPECT_EQ(session->status().drops, 0u);  // our own hang-up is not a drop
}

// stop() while ^DHCP? is on the wire: its answer is not taken for the hang-up's.
TEST_F(Scripted, StopWaitsForTheCommandInFlight) {
  make();
  up_to_dial();
  reply("\r\nOK\r\n\r\n^NDISSTAT:1,,,\"IPV4\"\r\n");
  EXPECT_EQ(sent(), "AT^DHCP?\r");
  session->stop(now);
  EXPECT_EQ(sent(), "");
  reply(kDhcp);
  EXPECT_EQ(state(), SessionState::stopping);
  EXPECT_FALSE(session->status().ip.ipv4);
  EXPECT_EQ(sent(), "AT^NDISDUP=1,0\r");
  reply("\r\nOK\r\n");
  EXPECT_EQ(state(), SessionState::stopped);
  EXPECT_EQ(session->status().connects, 0u);
}

TEST_F(Scripted, StopWithoutAnswerStillStops) {
  make();
  connect();
  session->stop(now);
  (void)sent();
  advance(10s);  // SessionSettings::command_timeout
  EXPECT_EQ(state(), SessionState::stopped);
}

TEST_F(Scripted, StopBeforeStartAndAfterFailure) {
  make();
  session->stop(now);
  EXPECT_EQ(state(), SessionState::stopped);
  EXPECT_EQ(sent(), "");
}

TEST_F(Scripted, Ipv4v6ToleratesDhcpv6Error) {
  SessionSettings s = internet();
  s.families = IpFamilies::ipv4v6;
  make(s);
  session->start(now);
  (void)sent();
  reply("\r\nOK\r\n");
  (void)sent();
  reply("\r\n+CPIN: READY\r\n\r\nOK\r\n");
  (void)sent();
  reply("\r\n+CFUN: 1\r\n\r\nOK\r\n");
  EXPECT_EQ(sent(), "AT+CGDCONT=1,\"IPV4V6\",\"internet\"\r");
  reply("\r\nOK\r\n");
  (void)sent();
  reply("\r\nOK\r\n\r\n^NDISSTAT:1,,,\"IPV4\"\r\n\r\n^NDISSTAT:1,,,\"IPV6\"\r\n");
  EXPECT_EQ(sent(), "AT^DHCP?\r");
  reply(kDhcp);
  EXPECT_EQ(sent(), "AT^DHCPV6?\r");
  reply("\r\nERROR\r\n");
  EXPECT_EQ(state(), SessionState::connected);
  EXPECT_TRUE(session->status().ip.ipv4);
  EXPECT_FALSE(session->status().ip.ipv6);
  // IPv6 alone going down leaves the session up while IPv4 stays; the last family takes it down.
  reply("\r\n^NDISSTAT:0,,,\"IPV6\"\r\n");
  EXPECT_EQ(state(), SessionState::connected);
  EXPECT_TRUE(session->status().ip.ipv4);
  reply("\r\n^NDISSTAT:0,,,\"IPV4\"\r\n");
  EXPECT_EQ(state(), SessionState::disconnected);
  EXPECT_EQ(session->status().drops, 1u);
}

TEST_F(Scripted, DhcpErrorIsRetriedThenConnectedWithoutAddress) {
  make();
  up_to_dial();
  reply("\r\nOK\r\n\r\n^NDISSTAT:1,,,\"IPV4\"\r\n");
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(sent(), "AT^DHCP?\r");
    reply("\r\nERROR\r\n");
    advance(1s);
  }
  EXPECT_EQ(sent(), "AT^DHCP?\r");
  reply("\r\nERROR\r\n");
  EXPECT_EQ(state(), SessionState::connected);
  EXPECT_FALSE(session->status().ip.ipv4);
  EXPECT_THAT(session->status().error, HasSubstr("use DHCP on the interface"));
}

TEST_F(Scripted, GarbageCostsCountersOnly) {
  make();
  connect();
  std::string junk;
  for (int i = 0; i < 100000; ++i) {
    const char c = static_cast<char>((i * 37) % 251 + 1);
    junk.push_back(c == '\r' || c == '\n' ? 'x' : c);
  }
  reply(junk);
  EXPECT_LE(session->channel().partial_line_bytes(), 1024u);
  EXPECT_GT(session->channel().counters().lines_too_long, 0u);
}

// ---- end to end against the emulated E3372 ---------------------------------------------------------------

// What the session runner does, in miniature: commands out by SEND_ENCAPSULATED_COMMAND,
// notifications from the interrupt endpoint, GET_ENCAPSULATED_RESPONSE after RESPONSE_AVAILABLE
// (or on every step when `poll_responses`, the runner's answer to lost notifications), timers
// on a fake clock that advances at most 100 ms a step.
struct Pump {
  sim::NcmModem& modem;
  Session& session;
  Clock::time_point now = t0;
  bool poll_responses = false;
  std::uint64_t responses_read = 0;

  Pump(sim::Modem& m, Session& s) : modem(dynamic_cast<sim::NcmModem&>(m)), session(s) {
    modem.set_clock([this] { return now; });
  }
  std::uint16_t iface() const { return modem.ncm_profile().control_interface; }

  void send_commands() {
    for (ByteVector c : session.take_commands()) {
      const sim::SetupPacket setup{cdc::kRequestTypeClassInterfaceOut, cdc::kSendEncapsulatedCommand, 0, iface(),
                                   static_cast<std::uint16_t>(c.size())};
      ASSERT_TRUE(modem.control(setup, c).has_value());
    }
  }
  bool read_response() {
    ByteVector buf(4096);
    const sim::SetupPacket setup{cdc::kRequestTypeClassInterfaceIn, cdc::kGetEncapsulatedResponse, 0, iface(), 4096};
    const std::optional<std::size_t> n = modem.control(setup, buf);
    if (!n || *n == 0) return false;
    ++responses_read;
    session.on_response(std::span(buf.data(), *n), now);
    return true;
  }
  void read_interrupts() {
    for (int i = 0; i < 64; ++i) {
      std::array<std::uint8_t, cdc::kNotificationMaxSize> b{};
      const sim::InResult r = modem.in(modem.ncm_profile().interrupt_in_endpoint, b);
      if (r.result != sim::EndpointResult::ok) return;
      const std::optional<cdc::Notification> n = cdc::decode_notification(std::span(b.data(), r.bytes));
      if (!n) continue;
      if (n->header.notification == cdc::kNotifyResponseAvailable) read_response();
      session.on_notification(*n, now);
      send_commands();
    }
  }
  void step() {
    send_commands();
    read_interrupts();
    if (poll_responses)
      while (read_response()) send_commands();
    send_commands();
    const std::optional<Clock::time_point> t = session.next_timer();
    if (t && *t <= now) {
      session.on_timer(now);
      return;
    }
    now += t ? std::min<Clock::duration>(*t - now, 100ms) : Clock::duration(100ms);
  }
  template <typename Pred>
  bool run_until(Pred done, int max_steps = 20000) {
    for (int i = 0; i < max_steps; ++i) {
      if (done()) return true;
      step();
    }
    return done();
  }
  bool run_until_state(SessionState s) {
    return run_until([&] { return session.status().state == s; });
  }
};

Ipv4Config expected_ipv4(const sim::NetworkConfig& net) {
  Ipv4Config c;
  c.address = net.host_ipv4;
  c.prefix_length = net.host_ipv4_prefix_length;
  c.gateway = net.gateway_ipv4;
  c.dns = {net.dns_ipv4[0], net.dns_ipv4[1]};
  return c;
}

void expect_ipv4(const IpConfig& ip, const sim::NetworkConfig& net) {
  ASSERT_TRUE(ip.ipv4);
  const Ipv4Config want = expected_ipv4(net);
  EXPECT_EQ(ip.ipv4->address, want.address);
  EXPECT_EQ(ip.ipv4->prefix_length, want.prefix_length);
  EXPECT_EQ(ip.ipv4->gateway, want.gateway);
  EXPECT_EQ(ip.ipv4->dns, want.dns);
  // The sim's defaults, spelled out: 10.64.64.2/30 via 10.64.64.1, DNS 10.11.12.13 / .14.
  EXPECT_EQ(ip.ipv4->address, (eth::Ipv4Address{{10, 64, 64, 2}}));
  EXPECT_EQ(ip.ipv4->prefix_length, 30);
}

TEST(HuaweiSessionE2E, ConnectDropRedialStop) {
  const std::unique_ptr<sim::Modem> modem = sim::make_modem("huawei-e3372");
  ASSERT_TRUE(modem);
  HuaweiSession session(internet());
  Pump pump(*modem, session);
  session.start(pump.now);
  ASSERT_TRUE(pump.run_until_state(SessionState::connected)) << session.status().error;
  expect_ipv4(session.status().ip, modem->network().config());
  EXPECT_TRUE(modem->session_active());
  EXPECT_EQ(dynamic_cast<sim::NcmModem&>(*modem).at()->apn(), "internet");
  EXPECT_EQ(session.status().connects, 1u);
  // The power-on noise came through as unsolicited lines, not as answers.
  EXPECT_GE(session.channel().counters().unsolicited_lines, 5u);

  modem->faults().drop_session = true;
  ASSERT_TRUE(pump.run_until_state(SessionState::disconnected));
  const Clock::time_point dropped_at = pump.now;
  EXPECT_EQ(session.status().drops, 1u);
  EXPECT_FALSE(modem->session_active());

  ASSERT_TRUE(pump.run_until_state(SessionState::connected)) << session.status().error;
  EXPECT_GE(pump.now - dropped_at, std::chrono::milliseconds(1000));  // redial_initial
  EXPECT_EQ(session.status().connects, 2u);
  expect_ipv4(session.status().ip, modem->network().config());
  EXPECT_TRUE(modem->session_active());

  session.stop(pump.now);
  ASSERT_TRUE(pump.run_until_state(SessionState::stopped));
  EXPECT_FALSE(modem->session_active());
  EXPECT_EQ(session.status().drops, 1u);
}

TEST(HuaweiSessionE2E, SimPin) {
  sim::ModemOptions options;
  options.sim_pin = "4321";
  const std::unique_ptr<sim::Modem> modem = sim::make_modem("huawei-e3372", options);
  SessionSettings s = internet();
  s.pin = "4321";
  HuaweiSession session(s);
  Pump pump(*modem, session);
  session.start(pump.now);
  ASSERT_TRUE(pump.run_until_state(SessionState::connected)) << session.status().error;
  EXPECT_FALSE(dynamic_cast<sim::NcmModem&>(*modem).at()->sim_locked());
  expect_ipv4(session.status().ip, modem->network().config());
}

TEST(HuaweiSessionE2E, SimPinMissingOrWrong) {
  sim::ModemOptions options;
  options.sim_pin = "4321";
  {
    const std::unique_ptr<sim::Modem> modem = sim::make_modem("huawei-e3372", options);
    HuaweiSession session(internet());
    Pump pump(*modem, session);
    session.start(pump.now);
    ASSERT_TRUE(pump.run_until_state(SessionState::failed));
    EXPECT_EQ(session.status().error, "SIM PIN required but no PIN was given (--pin)");
  }
  {
    const std::unique_ptr<sim::Modem> modem = sim::make_modem("huawei-e3372", options);
    SessionSettings s = internet();
    s.pin = "0000";
    HuaweiSession session(s);
    Pump pump(*modem, session);
    session.start(pump.now);
    ASSERT_TRUE(pump.run_until_state(SessionState::failed));
    EXPECT_THAT(session.status().error, HasSubstr("+CME ERROR: 16"));
    EXPECT_TRUE(dynamic_cast<sim::NcmModem&>(*modem).at()->sim_locked());
    EXPECT_EQ(modem->counters().commands_received, 3u);  // ATE0, AT+CPIN?, AT+CPIN="0000": once
  }
}

// RESPONSE_AVAILABLE never comes: the runner (here the pump) polls GET_ENCAPSULATED_RESPONSE.
TEST(HuaweiSessionE2E, LostResponseAvailable) {
  const std::unique_ptr<sim::Modem> modem = sim::make_modem("huawei-e3372");
  modem->faults().lose_response_available = true;
  HuaweiSession session(internet());
  Pump pump(*modem, session);
  pump.poll_responses = true;
  session.start(pump.now);
  ASSERT_TRUE(pump.run_until_state(SessionState::connected)) << session.status().error;
  expect_ipv4(session.status().ip, modem->network().config());
  EXPECT_GT(modem->counters().faults_injected, 0u);

  modem->faults().drop_session = true;
  ASSERT_TRUE(pump.run_until_state(SessionState::disconnected));
  ASSERT_TRUE(pump.run_until_state(SessionState::connected));
  EXPECT_EQ(session.status().connects, 2u);
}

// Echo on all the way (ATE0 not sent), radio switched off before the dial.
TEST(HuaweiSessionE2E, EchoOnAndRadioOff) {
  const std::unique_ptr<sim::Modem> modem = sim::make_modem("huawei-e3372");
  sim::NcmModem& ncm = dynamic_cast<sim::NcmModem&>(*modem);
  (void)ncm.at()->execute("AT+CFUN=4");
  HuaweiSessionOptions o;
  o.echo_off = false;
  HuaweiSession session(internet(), o);
  Pump pump(*modem, session);
  session.start(pump.now);
  ASSERT_TRUE(pump.run_until_state(SessionState::connected)) << session.status().error;
  EXPECT_TRUE(ncm.at()->echo());
  EXPECT_EQ(ncm.at()->cfun(), 1);
  EXPECT_GT(session.channel().counters().echo_lines, 4u);
}

TEST(HuaweiSessionE2E, SlowControlAnswers) {
  const std::unique_ptr<sim::Modem> modem = sim::make_modem("huawei-e3372");
  modem->faults().control_answer_delay = 2500ms;
  HuaweiSession session(internet());
  Pump pump(*modem, session);
  pump.poll_responses = true;  // a delayed answer is announced when it falls due; polling sees it too
  session.start(pump.now);
  ASSERT_TRUE(pump.run_until_state(SessionState::connected)) << session.status().error;
  expect_ipv4(session.status().ip, modem->network().config());
}

}  // namespace
}  // namespace wwan::control
