// The FM350's dial over its serial AT port (control/fm350_session.hpp) and the RNDIS + AT pair the
// daemon drives (control/rndis_at_runner.hpp): the +CGPADDR / +CGCONTRDP parsers on the vectors'
// lines, the session on a script with a fake clock, and the pair against the emulated fm350-rndis
// (sim/rndis_modem.hpp) over the in-process transport — FCC unlock first, then RNDIS and the dial.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "control/at_transport.hpp"
#include "control/fm350_session.hpp"
#include "control/rndis_at_runner.hpp"
#include "sim/inprocess_transport.hpp"
#include "sim/rndis_modem.hpp"
#include "usb/descriptors.hpp"
#include "usb/network_function.hpp"
#include "usb/serial_port.hpp"

namespace wwan::control {
namespace {

using namespace std::chrono_literals;

eth::Ipv4Address v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) { return eth::Ipv4Address{{a, b, c, d}}; }

// ---- parsers ------------------------------------------------------------------------------------

TEST(Fm350Parse, Cgpaddr) {
  EXPECT_EQ(parse_cgpaddr("+CGPADDR: 1,\"10.64.64.2\"", 1), v4(10, 64, 64, 2));
  EXPECT_EQ(parse_cgpaddr("+CGPADDR: 1,10.64.64.2", 1), v4(10, 64, 64, 2)) << "unquoted";
  EXPECT_EQ(parse_cgpaddr("+CGPADDR: 1,\"10.64.64.2\",\"254.128.0.0.0.0.0.0.0.0.0.0.0.0.0.1\"", 1), v4(10, 64, 64, 2))
      << "IPv4v6: the IPv4 address first";
  EXPECT_EQ(parse_cgpaddr("+CGPADDR: 2,\"10.64.64.2\"", 1), std::nullopt) << "another context";
  EXPECT_EQ(parse_cgpaddr("+CGPADDR: 1", 1), std::nullopt) << "no address (inactive)";
  EXPECT_EQ(parse_cgpaddr("+CGPADDR: 1,\"0.0.0.0\"", 1), std::nullopt);
  EXPECT_EQ(parse_cgpaddr("+CGPADDR: 1,\"10.64.64\"", 1), std::nullopt);
  EXPECT_EQ(parse_cgpaddr("+CGPADDR: 1,\"10.64.64.256\"", 1), std::nullopt);
  EXPECT_EQ(parse_cgpaddr("+CGDCONT: 1,\"IP\"", 1), std::nullopt);
}

TEST(Fm350Parse, CgcontrdpLinesOfTheVectors) {
  // vectors/modemmanager_huawei_at.md L1 (ModemManager's test table).
  auto c = parse_cgcontrdp(
      "+CGCONTRDP: 4,5,\"ibox.tim.it.mnc001.mcc222.gprs\",\"2.197.17.49.255.255.255.255\",\"2.197.17.49\","
      "\"10.207.43.46\",\"10.206.56.132\",\"0.0.0.0\",\"0.0.0.0\",0");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->cid, 4);
  EXPECT_EQ(c->apn, "ibox.tim.it.mnc001.mcc222.gprs");
  EXPECT_EQ(c->address, v4(2, 197, 17, 49));
  EXPECT_EQ(c->prefix_length, std::optional<std::uint8_t>(32));
  EXPECT_EQ(c->gateway, v4(2, 197, 17, 49));
  EXPECT_THAT(c->dns, ::testing::ElementsAre(v4(10, 207, 43, 46), v4(10, 206, 56, 132)));

  // The form with the mask as a field of its own.
  c = parse_cgcontrdp(
      "+CGCONTRDP: 4,5,\"ibox.tim.it.mnc001.mcc222.gprs\",\"2.197.17.49\",\"255.255.255.255\",\"2.197.17.49\","
      "\"10.207.43.46\",\"10.206.56.132\",\"0.0.0.0\",\"0.0.0.0\"");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->prefix_length, std::optional<std::uint8_t>(32));
  EXPECT_EQ(c->gateway, v4(2, 197, 17, 49));
  EXPECT_THAT(c->dns, ::testing::ElementsAre(v4(10, 207, 43, 46), v4(10, 206, 56, 132)));

  // Address only; a /30 mask; IPv6 (not ours); the APN alone.
  c = parse_cgcontrdp("+CGCONTRDP: 4,5,\"ibox.tim.it.mnc001.mcc222.gprs\",\"2.197.17.49\"");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->prefix_length, std::nullopt);
  EXPECT_EQ(c->gateway, std::nullopt);
  EXPECT_TRUE(c->dns.empty());
  c = parse_cgcontrdp("+CGCONTRDP: 1,5,\"INTERNET\",\"10.64.64.2.255.255.255.252\",\"10.64.64.1\",\"10.11.12.13\",\"10.11.12.14\"");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->prefix_length, std::optional<std::uint8_t>(30));
  EXPECT_EQ(parse_cgcontrdp("+CGCONTRDP: 1,5,\"internetipv6.mnc003.mcc260.gprs\",\"254.128.0.0.0.0.0.0.0.0.0.37.88.136.248.1\""),
            std::nullopt);
  EXPECT_EQ(parse_cgcontrdp("+CGCONTRDP: 4,5,\"\""), std::nullopt);
  EXPECT_EQ(parse_cgcontrdp("+CGCONTRDP: 1,5,\"x\",\"10.64.64.2.255.0.255.0\"")->prefix_length, std::nullopt)
      << "a mask with holes";
}

// ---- the session on a script --------------------------------------------------------------------

struct Script {
  Fm350Session session;
  Clock::time_point now{std::chrono::seconds(1000)};
  explicit Script(SessionSettings s) : session(std::move(s)) { session.start(now); }
  // The one command line sent now, without its CR.
  std::string sent() {
    const auto c = session.take_commands();
    if (c.size() != 1) return "<" + std::to_string(c.size()) + " commands>";
    std::string s(c[0].begin(), c[0].end());
    if (!s.empty() && s.back() == '\r') s.pop_back();
    return s;
  }
  void answer(std::string_view text) {
    session.on_response(std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()), now);
  }
};

SessionSettings dial_settings() {
  SessionSettings s;
  s.apn = "internet";
  s.redial_initial = 1s;
  return s;
}

TEST(Fm350SessionScript, DialsLearnsTheAddressAndRedialsAfterTheNetworkDrop) {
  Script s(dial_settings());  // no FCC unlock asked for: the radio on by itself
  EXPECT_EQ(s.sent(), "AT+CFUN=1");
  s.answer("\r\nOK\r\n");
  EXPECT_EQ(s.sent(), "ATE0");
  s.answer("ATE0\r\r\nOK\r\n");
  EXPECT_EQ(s.sent(), "AT+CGDCONT=1,\"IP\",\"internet\"");
  s.answer("\r\nOK\r\n");
  EXPECT_EQ(s.sent(), "AT+CGACT=1,1");
  EXPECT_EQ(s.session.status().state, SessionState::connecting);
  s.answer("\r\nOK\r\n");
  EXPECT_EQ(s.sent(), "AT+CGPADDR=1");
  s.answer("\r\n+CGPADDR: 1\r\n\r\nOK\r\n");  // no address yet: asked again a little later
  EXPECT_EQ(s.sent(), "<0 commands>");
  s.now += Fm350Session::kAddressPollInterval;
  s.session.on_timer(s.now);
  EXPECT_EQ(s.sent(), "AT+CGPADDR=1");
  s.answer("\r\n+CGPADDR: 1,\"10.64.64.2\"\r\n\r\nOK\r\n");
  EXPECT_EQ(s.sent(), "AT+CGCONTRDP=1");
  s.answer("\r\n+CGCONTRDP: 1,5,\"INTERNET\",\"10.64.64.2.255.255.255.252\",\"10.64.64.1\",\"10.11.12.13\",\"10.11.12.14\"\r\n\r\nOK\r\n");
  const SessionStatus& st = s.session.status();
  ASSERT_EQ(st.state, SessionState::connected) << st.error;
  ASSERT_TRUE(st.ip.ipv4);
  EXPECT_EQ(st.ip.ipv4->address, v4(10, 64, 64, 2));
  EXPECT_EQ(st.ip.ipv4->prefix_length, 30);
  EXPECT_EQ(st.ip.ipv4->gateway, v4(10, 64, 64, 1));
  EXPECT_THAT(st.ip.ipv4->dns, ::testing::ElementsAre(v4(10, 11, 12, 13), v4(10, 11, 12, 14)));
  EXPECT_EQ(st.connects, 1u);

  s.answer("\r\n+CGEV: NW PDN DEACT 1\r\n");
  EXPECT_EQ(st.state, SessionState::disconnected);
  EXPECT_EQ(st.drops, 1u);
  EXPECT_THAT(st.error, ::testing::HasSubstr("+CGEV: NW PDN DEACT 1"));
  EXPECT_EQ(s.session.next_timer(), s.now + 1s);
  s.now += 1s;
  s.session.on_timer(s.now);
  EXPECT_EQ(s.sent(), "AT+CGACT=1,1");
  s.answer("\r\nOK\r\n");
  EXPECT_EQ(s.sent(), "AT+CGPADDR=1");
  s.answer("\r\n+CGPADDR: 1,\"10.64.64.2\"\r\n\r\nOK\r\n");
  EXPECT_EQ(s.sent(), "AT+CGCONTRDP=1");
  s.answer("\r\nERROR\r\n");  // tolerated: a /32 without DNS
  EXPECT_EQ(st.state, SessionState::connected);
  EXPECT_EQ(st.ip.ipv4->prefix_length, 32);
  EXPECT_EQ(st.connects, 2u);

  s.session.stop(s.now);
  EXPECT_EQ(s.sent(), "AT+CGACT=0,1");
  s.answer("\r\nOK\r\n");
  EXPECT_EQ(st.state, SessionState::stopped);
}

TEST(Fm350SessionScript, ALockedModuleFailsWithTheHintToUnlock) {
  Script s(dial_settings());
  EXPECT_EQ(s.sent(), "AT+CFUN=1");
  s.answer("\r\n+CME ERROR: 3\r\n");
  EXPECT_EQ(s.session.status().state, SessionState::failed);
  EXPECT_THAT(s.session.status().error, ::testing::HasSubstr("--fcc-unlock"));
}

TEST(Fm350SessionScript, ActivationRefusedForLackOfRadioFailsOtherRefusalsAreRetried) {
  Script s(dial_settings());
  s.sent();
  s.answer("\r\nOK\r\n");
  s.sent();
  s.answer("\r\nOK\r\n");
  s.sent();
  s.answer("\r\n+CME ERROR: 50\r\n");  // CGDCONT refused: the stored context is dialled anyway
  EXPECT_EQ(s.sent(), "AT+CGACT=1,1");
  s.answer("\r\n+CME ERROR: 30\r\n");  // no network service: retried after the back-off
  EXPECT_EQ(s.session.status().state, SessionState::disconnected);
  s.now += 1s;
  s.session.on_timer(s.now);
  EXPECT_EQ(s.sent(), "AT+CGACT=1,1");
  s.answer("\r\n+CME ERROR: 3\r\n");
  EXPECT_EQ(s.session.status().state, SessionState::failed);
  EXPECT_THAT(s.session.status().error, ::testing::HasSubstr("FCC-locked"));
  EXPECT_EQ(s.session.counters().activation_refusals, 2u);
}

// ---- the RNDIS + AT pair against the emulated FM350 ---------------------------------------------

struct Fm350Rig {
  sim::Fm350RndisModem modem{sim::ModemOptions{}};
  sim::InProcessTransport transport{modem};
  usb::NetworkFunction function;
  std::unique_ptr<CommandTransport> at_port;

  Fm350Rig() {
    const auto& d = modem.identity().descriptors;
    const auto dev = usb::parse_device_descriptor(std::span(d).first(18));
    const auto configs = usb::parse_configurations(std::span(d).subspan(18), dev->vendor_id, dev->product_id);
    std::string error;
    function = *usb::find_network_function(configs.front(), error);
    const auto port = usb::find_serial_at_port(configs.front(), error);
    at_port = make_serial_at_transport(transport, *port);
  }
};

RunnerOptions slow_poll() {
  RunnerOptions o;
  o.poll_interval = 60s;  // every answer must be found through RESPONSE_AVAILABLE
  return o;
}

TEST(RndisAtRunnerSim, UnlocksThenConnectsOverRndisAndTheAtPort) {
  Fm350Rig rig;
  SessionSettings dial = dial_settings();
  dial.fcc_unlock = true;
  RndisAtRunner runner(rig.transport, rig.function, RndisSessionSettings{}, dial, *rig.at_port, slow_poll());
  ASSERT_TRUE(runner.start()) << runner.error();
  ASSERT_TRUE(runner.run_until([](const SessionStatus& s) {
    return s.state == SessionState::connected || s.state == SessionState::failed;
  }, 10s)) << runner.status().error;
  ASSERT_EQ(runner.status().state, SessionState::connected) << runner.status().error;
  ASSERT_TRUE(runner.status().ip.ipv4);
  EXPECT_EQ(runner.status().ip.ipv4->address, rig.modem.network().config().host_ipv4);
  EXPECT_EQ(runner.status().ip.ipv4->prefix_length, rig.modem.network().config().host_ipv4_prefix_length);
  EXPECT_EQ(runner.status().ip.ipv4->gateway, rig.modem.network().config().gateway_ipv4);
  EXPECT_EQ(runner.status().ip.ipv4->dns.size(), 2u);
  rig.transport.with_model([&](sim::DeviceModel&) {
    EXPECT_FALSE(rig.modem.at().locked()) << "unlocked by the executor";
    EXPECT_EQ(rig.modem.at().counters().activations, 1u);
    EXPECT_TRUE(rig.modem.rndis().data_flowing());
  });
  EXPECT_TRUE(runner.rndis_ready());
  EXPECT_EQ(runner.rndis().device_info().mac, rig.modem.rndis().config().host_mac);
  // The RNDIS RESPONSE_AVAILABLE (01 00 00 00 00 00 00 00) was recognised: nothing waited for the poll.
  EXPECT_GT(runner.rndis_runner().counters().notifications, 4u);
  EXPECT_EQ(runner.rndis_runner().counters().malformed_notifications, 0u);
  EXPECT_EQ(runner.rndis_runner().counters().responses_by_poll, 0u);

  // The network drops the context: disconnected, redialled, connected again.
  rig.transport.with_model([&](sim::DeviceModel&) { rig.modem.faults().drop_session = true; });
  ASSERT_TRUE(runner.run_until([](const SessionStatus& s) { return s.state == SessionState::disconnected; }, 5s));
  ASSERT_TRUE(runner.run_until([](const SessionStatus& s) { return s.state == SessionState::connected; }, 10s))
      << runner.status().error;
  EXPECT_EQ(runner.status().connects, 2u);
  EXPECT_EQ(runner.status().drops, 1u);

  runner.stop(2s);
  EXPECT_EQ(runner.status().state, SessionState::stopped);
  rig.transport.with_model([&](sim::DeviceModel&) {
    EXPECT_FALSE(rig.modem.at().context_active()) << "AT+CGACT=0,1 on the way out";
    EXPECT_FALSE(rig.modem.rndis().initialized()) << "HALT on the way out";
  });
}

TEST(RndisAtRunnerSim, WithoutTheUnlockTheLockedModuleFailsWithOneClearLine) {
  Fm350Rig rig;
  RndisAtRunner runner(rig.transport, rig.function, RndisSessionSettings{}, dial_settings(), *rig.at_port, slow_poll());
  ASSERT_TRUE(runner.start()) << runner.error();
  ASSERT_TRUE(runner.run_until([](const SessionStatus& s) { return s.state == SessionState::failed; }, 10s));
  EXPECT_THAT(runner.status().error, ::testing::HasSubstr("FCC-locked"));
  rig.transport.with_model([&](sim::DeviceModel&) {
    EXPECT_EQ(rig.modem.network().counters().packets_from_host, 0u);
    EXPECT_FALSE(rig.modem.at().context_active());
  });
}

}  // namespace
}  // namespace wwan::control
