// AT over the modem's serial AT interface (usb/serial_port.hpp, control/at_transport.hpp) through
// REAL libusb on the emulated usbfs, and the same session in-process:
//   - an E3372 whose encapsulated AT channel is dead (sim NcmModem::set_encapsulated_at_dead, the
//     Airtel E3372h-607 case): the Huawei session falls back to the PCUI (interface 3, ff/03/02),
//     comes up with the IP configuration the network assigned, survives a network drop, stops;
//     the PCUI's `option` driver is given back afterwards. Through libusb the PCUI is claimed with
//     the network function on one handle (open_modem's claim_serial_at): the production fallback
//     opens it lazily on a second handle, which this emulated usbfs cannot serve yet (its reap
//     queue is per device, devio.c's is per open file), so that path is covered in-process only;
//   - `wwan-dp at --at-port serial|auto` and `wwan-dp connect --at-port serial` as child processes;
//   - `wwan-dp fcc-unlock` on an emulated FM350-GL that exposes its AT interface (6) only.
// Fresh devices at their own ports, so the standard bench stays untouched.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>

#include "control/at_transport.hpp"
#include "control/huawei_session.hpp"
#include "control/ncm_negotiation.hpp"
#include "control/quirks.hpp"
#include "control/session_runner.hpp"
#include "sim/fm350_at.hpp"
#include "sim/inprocess_transport.hpp"
#include "sim/modem.hpp"
#include "sim/ncm_modem.hpp"
#include "tests/usbfs/bench.hpp"
#include "tests/usbfs/child.hpp"
#include "tools/device_args.hpp"
#include "usb/serial_port.hpp"

namespace wwan::usbfs_test {
namespace {

using namespace std::chrono_literals;
using ::testing::Contains;
using ::testing::HasSubstr;

std::shared_ptr<sim::Modem> e3372_with_dead_channel() {
  std::shared_ptr<sim::Modem> m(sim::make_modem("huawei-e3372"));
  dynamic_cast<sim::NcmModem&>(*m).set_encapsulated_at_dead(true);
  return m;
}

usb::Configuration configuration_of(const sim::DeviceModel& m) {
  const auto& d = m.identity().descriptors;
  const auto dev = usb::parse_device_descriptor(std::span(d).first(18));
  return usb::parse_configurations(std::span(d).subspan(18), dev->vendor_id, dev->product_id).at(0);
}

bool connected(const control::SessionStatus& s) { return s.state == control::SessionState::connected; }

using WithModem = std::function<void(const std::function<void(sim::DeviceModel&)>&)>;

// The Huawei session over the fallback transport: up over the serial port, a drop, back, stop.
// Short command timeouts so the dead channel is given up on quickly (the rule is the same).
void up_over_serial_drop_and_stop(usb::Transport& t, const usb::NetworkFunction& f,
                                  control::CommandTransportFactory open_serial, const WithModem& with_modem) {
  control::Quirks q = control::find_quirks(0x12d1, 0x1506, f).quirks;
  q.settle_before_data_alt = 0ms;
  const control::NegotiationResult n = control::negotiate(t, f, q);
  ASSERT_TRUE(n.ok) << n.error;

  control::SessionSettings s;
  s.apn = "internet";
  s.redial_initial = 50ms;
  s.redial_max = 200ms;
  s.command_timeout = 300ms;
  control::HuaweiSessionOptions o;
  o.poll_interval = 100ms;
  control::HuaweiSession session(s, o);
  std::string error;
  std::unique_ptr<control::CommandTransport> commands = cli::make_at_command_transport(
      t, f.control_interface, control::AtPortChoice::automatic, false,
      {.answer_timeout = s.command_timeout, .unanswered_commands = 2}, std::move(open_serial), error);
  ASSERT_TRUE(commands) << error;
  control::RunnerOptions ro;
  ro.poll_interval = 100ms;
  control::SessionRunner runner(t, f, session, ro, commands.get());
  ASSERT_TRUE(runner.start()) << runner.error();
  std::vector<std::string> notices;
  const auto until = [&](const std::function<bool(const control::SessionStatus&)>& done) {
    return runner.run_until(
        [&](const control::SessionStatus& st) {
          if (std::string notice = runner.commands().take_notice(); !notice.empty()) notices.push_back(notice);
          return done(st);
        },
        20s);
  };
  ASSERT_TRUE(until(connected)) << control::to_string(runner.status().state) << ": " << runner.status().error;
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_THAT(notices[0], HasSubstr("the encapsulated channel of interface 1 answered none of 2 commands"));
  EXPECT_THAT(notices[0], HasSubstr("AT goes over the serial AT port interface 3 (ff/03/02, bulk 0x87/0x05)"));
  const sim::NetworkConfig net;
  ASSERT_TRUE(runner.status().ip.ipv4);
  EXPECT_EQ(runner.status().ip.ipv4->address, net.host_ipv4);
  EXPECT_EQ(runner.status().ip.ipv4->gateway, net.gateway_ipv4);
  with_modem([](sim::DeviceModel& m) {
    auto& modem = dynamic_cast<sim::NcmModem&>(m);
    EXPECT_TRUE(modem.session_active());
    EXPECT_GT(modem.serial_at()->counters().command_lines, 3u) << "the session ran over the PCUI";
  });

  with_modem([](sim::DeviceModel& m) { static_cast<sim::Modem&>(m).faults().drop_session = true; });
  ASSERT_TRUE(until([](const control::SessionStatus& st) { return st.drops >= 1; }));
  ASSERT_TRUE(until([](const control::SessionStatus& st) { return st.connects >= 2 && connected(st); }))
      << control::to_string(runner.status().state) << ": " << runner.status().error;
  EXPECT_EQ(notices.size(), 1u) << "the switch is said once";

  runner.stop(10s);
  EXPECT_EQ(runner.status().state, control::SessionState::stopped) << runner.status().error;
  with_modem([](sim::DeviceModel& m) { EXPECT_FALSE(static_cast<sim::Modem&>(m).session_active()); });
}

TEST(SerialAtSession, ADeadEncapsulatedChannelFallsBackToThePcuiThroughLibusb) {
  const char* port = "2-20";
  g_bed->add(from_model(port, 60, e3372_with_dead_channel()));
  {
    std::string error;
    std::optional<usb::Context> ctx = usb::Context::open(error);
    ASSERT_TRUE(ctx) << error;
    auto opened = cli::open_modem(*ctx, {.id = {0x12d1, 0x1506}, .port_path = port, .serial = std::nullopt}, error,
                                  std::nullopt, /*claim_serial_at=*/true);
    ASSERT_TRUE(opened) << error;
    ASSERT_TRUE(opened->serial_at);
    EXPECT_EQ(opened->serial_at->interface_number, 3);
    EXPECT_EQ(g_bed->stats(port).drivers.at(3), "usbfs");
    up_over_serial_drop_and_stop(*opened->transport, opened->function, cli::claimed_serial_at_factory(*opened),
                                 [&](const std::function<void(sim::DeviceModel&)>& fn) { g_bed->with_model(port, fn); });
  }
  const UsbfsStats s = g_bed->stats(port);
  EXPECT_EQ(s.drivers.at(3), "option") << "given back";
  EXPECT_EQ(s.drivers.at(1), "huawei_cdc_ncm");
  EXPECT_THAT(s.driver_events, Contains("detach 3 option"));
  EXPECT_THAT(s.driver_events, Contains("attach 3 option"));
  g_bed->unplug(port);
}

TEST(SerialAtSession, ADeadEncapsulatedChannelFallsBackToThePcuiInProcess) {
  std::shared_ptr<sim::Modem> modem = e3372_with_dead_channel();
  sim::InProcessTransport t(*modem);
  const usb::Configuration c = configuration_of(*modem);
  std::string error;
  const auto f = usb::find_network_function(c, error);
  ASSERT_TRUE(f) << error;
  const auto pcui = usb::find_serial_at_port(c, error);
  ASSERT_TRUE(pcui) << error;
  up_over_serial_drop_and_stop(
      t, *f,
      [&](std::string&) -> std::unique_ptr<control::CommandTransport> { return control::make_serial_at_transport(t, *pcui); },
      [&](const std::function<void(sim::DeviceModel&)>& fn) { t.with_model(fn); });
}

std::vector<std::string> lines_of(Child& c) {
  std::vector<std::string> lines;
  for (std::string l = c.line(); !l.empty(); l = c.line()) lines.push_back(l);
  return lines;
}

TEST(AtBinarySerial, TheSerialPortAnswersAndIsGivenBack) {
  const char* port = "2-21";
  g_bed->add(from_model(port, 61, std::shared_ptr<sim::Modem>(sim::make_modem("huawei-e3372"))));
  {
    Child c({"at", "--dev", "12d1:1506", "--path", port, "--at-port", "serial", "AT+CGMM", "AT+CPIN?"});
    const std::vector<std::string> lines = lines_of(c);
    EXPECT_EQ(c.wait_exit(), 0) << c.stderr_text();
    EXPECT_THAT(lines, Contains("E3372"));
    EXPECT_THAT(lines, Contains("+CPIN: READY"));
    const UsbfsStats s = g_bed->stats(port);
    EXPECT_THAT(s.driver_events, Contains("detach 3 option"));
    EXPECT_EQ(s.drivers.at(3), "option");
    EXPECT_EQ(s.drivers.at(1), "huawei_cdc_ncm") << "the network function was not touched";
  }
  g_bed->with_model(port, [](sim::DeviceModel& m) {
    EXPECT_EQ(dynamic_cast<sim::NcmModem&>(m).serial_at()->counters().command_lines, 2u);
  });
  g_bed->unplug(port);
}

TEST(ConnectBinarySerial, ComesUpOverTheSerialPortWithADeadEncapsulatedChannel) {
  const char* port = "2-23";
  g_bed->add(from_model(port, 63, e3372_with_dead_channel()));
  {
    Child c({"connect", "--dev", "12d1:1506", "--path", port, "--apn", "internet", "--at-port", "serial", "--once",
             "--json"});
    EXPECT_THAT(c.line(), HasSubstr(R"({"state":"connected","ipv4":{"address":"10.64.64.2/30","gateway":"10.64.64.1")"))
        << c.stderr_text();
    EXPECT_EQ(c.wait_exit(), 0) << c.stderr_text();
    const UsbfsStats s = g_bed->stats(port);
    EXPECT_EQ(s.drivers.at(1), "huawei_cdc_ncm");
    EXPECT_EQ(s.drivers.at(3), "option");
  }
  g_bed->with_model(port, [](sim::DeviceModel& m) {
    EXPECT_FALSE(static_cast<sim::Modem&>(m).session_active()) << "--once disconnects";
  });
  g_bed->unplug(port);
}

TEST(FccUnlockBinaryFm350, UnlocksOverInterface6AndGivesItBack) {
  const char* port = "2-24";
  auto fm350 = std::make_shared<sim::Fm350AtPortModel>(0x7127);
  g_bed->add(from_model(port, 64, fm350));
  {
    Child c({"fcc-unlock", "--dev", "0e8d:7127", "--path", port});
    EXPECT_EQ(c.line(), "FCC unlock accepted; the radio is on") << c.stderr_text();
    EXPECT_EQ(c.wait_exit(), 0) << c.stderr_text();
    const UsbfsStats s = g_bed->stats(port);
    EXPECT_THAT(s.driver_events, Contains("detach 6 option"));
    EXPECT_EQ(s.drivers.at(6), "option");
    EXPECT_EQ(s.drivers.at(0), "rndis_host") << "only the AT interface was claimed";
  }
  g_bed->with_model(port, [](sim::DeviceModel& m) {
    auto& model = dynamic_cast<sim::Fm350AtPortModel&>(m);
    EXPECT_FALSE(model.at().locked());
    EXPECT_EQ(model.at().cfun(), 1);
    model.at().power_cycle();  // locked again for the next case
  });
  {
    Child wrong({"fcc-unlock", "--dev", "0e8d:7127", "--path", port, "--vendor-hash", "dell"});
    EXPECT_EQ(wrong.wait_exit(), 1);
    EXPECT_THAT(wrong.stderr_text(), HasSubstr("rejected the FCC unlock response 3 times"));
    EXPECT_THAT(wrong.stderr_text(), HasSubstr("4909b5a4"));
  }
  g_bed->with_model(port, [](sim::DeviceModel& m) { EXPECT_TRUE(dynamic_cast<sim::Fm350AtPortModel&>(m).at().locked()); });
  g_bed->unplug(port);
}

}  // namespace
}  // namespace wwan::usbfs_test
