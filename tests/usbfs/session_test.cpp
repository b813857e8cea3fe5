// The control plane end to end: NTB negotiation, then the Huawei AT session or the MBIM session,
// driven by the SessionRunner over (a) real libusb against the emulated usbfs and (b) the
// in-process transport, up to "connected, IP configuration known", then an injected
// network-initiated drop and the redial, then a clean stop. Every profile with a session:
// huawei-e3372 (AT^NDISDUP + AT^DHCP?) and mbim (EM7455: FCC unlock over QMI-over-MBIM first).
// Fresh modems are plugged in at their own ports so the bench's stay untouched.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>

#include "control/huawei_session.hpp"
#include "control/mbim_session.hpp"
#include "control/ncm_negotiation.hpp"
#include "control/quirks.hpp"
#include "control/session_runner.hpp"
#include "sim/inprocess_transport.hpp"
#include "sim/modem.hpp"
#include "tests/usbfs/bench.hpp"
#include "tools/device_args.hpp"

namespace wwan::usbfs_test {
namespace {

using namespace std::chrono_literals;

struct SessionCase {
  const char* name;
  const char* profile;
  std::uint16_t vid, pid;
  const char* port;
  std::uint8_t devnum;
};
std::ostream& operator<<(std::ostream& os, const SessionCase& c) { return os << c.name; }

const SessionCase kCases[] = {
    {"huawei_e3372", "huawei-e3372", 0x12d1, 0x1506, "2-7", 30},
    {"mbim_em7455", "mbim", 0x1199, 0x9079, "2-8", 31},
};

// Fast timers for a test: the behaviour is the same, the waits are shorter (not timing-dependent:
// every wait below is "until the state is reached", bounded).
control::SessionSettings settings() {
  control::SessionSettings s;
  s.apn = "internet";
  s.redial_initial = 50ms;
  s.redial_max = 200ms;
  s.command_timeout = 2000ms;
  return s;
}

std::unique_ptr<control::Session> make_session(const usb::NetworkFunction& f, const control::Quirks& q) {
  control::SessionSettings s = settings();
  s.fcc_unlock = q.fcc_unlock == control::FccUnlock::sierra_qmi;
  if (f.kind == usb::Function::Mbim)
    return std::make_unique<control::MbimSession>(s, f.mbim ? f.mbim->max_control_message : 4096);
  control::HuaweiSessionOptions o;
  o.poll_interval = 100ms;
  return std::make_unique<control::HuaweiSession>(s, o);
}

// What the sim's network assigns (sim/network.hpp defaults).
void expect_sim_ip(const control::SessionStatus& st) {
  ASSERT_TRUE(st.ip.ipv4) << "no IPv4 configuration";
  const sim::NetworkConfig net;
  EXPECT_EQ(st.ip.ipv4->address, net.host_ipv4);
  EXPECT_EQ(st.ip.ipv4->prefix_length, net.host_ipv4_prefix_length);
  ASSERT_TRUE(st.ip.ipv4->gateway);
  EXPECT_EQ(*st.ip.ipv4->gateway, net.gateway_ipv4);
  EXPECT_THAT(st.ip.ipv4->dns, ::testing::ElementsAre(net.dns_ipv4[0], net.dns_ipv4[1]));
}

bool connected(const control::SessionStatus& s) { return s.state == control::SessionState::connected; }

using WithModem = std::function<void(const std::function<void(sim::DeviceModel&)>&)>;

// Negotiate, connect, drop, reconnect, stop: the same script over either transport.
void bring_up_drop_and_stop(usb::Transport& t, const usb::NetworkFunction& f, const control::Quirks& quirks,
                            const WithModem& with_modem) {
  control::Quirks q = quirks;
  q.settle_before_data_alt = 0ms;
  const control::NegotiationResult n = control::negotiate(t, f, q);
  ASSERT_TRUE(n.ok) << n.error;

  std::unique_ptr<control::Session> session = make_session(f, quirks);
  control::RunnerOptions ro;
  ro.poll_interval = 100ms;
  if (f.mbim) ro.response_buffer_bytes = f.mbim->max_control_message;
  control::SessionRunner runner(t, f, *session, ro);
  ASSERT_TRUE(runner.start()) << runner.error();
  ASSERT_TRUE(runner.run_until(connected, 20s))
      << control::to_string(runner.status().state) << ": " << runner.status().error;
  expect_sim_ip(runner.status());
  EXPECT_EQ(runner.status().connects, 1u);
  with_modem([](sim::DeviceModel& m) { EXPECT_TRUE(static_cast<sim::Modem&>(m).session_active()); });

  // The network drops the session; the session notices, redials after its back-off, and is back.
  with_modem([](sim::DeviceModel& m) { static_cast<sim::Modem&>(m).faults().drop_session = true; });
  ASSERT_TRUE(runner.run_until([](const control::SessionStatus& s) { return s.drops >= 1; }, 20s))
      << control::to_string(runner.status().state) << ": " << runner.status().error;
  ASSERT_TRUE(runner.run_until([](const control::SessionStatus& s) { return s.connects >= 2 && connected(s); }, 20s))
      << control::to_string(runner.status().state) << ": " << runner.status().error;
  expect_sim_ip(runner.status());
  with_modem([](sim::DeviceModel& m) { EXPECT_TRUE(static_cast<sim::Modem&>(m).session_active()); });

  runner.stop(10s);
  EXPECT_EQ(runner.status().state, control::SessionState::stopped) << runner.status().error;
  with_modem([](sim::DeviceModel& m) { EXPECT_FALSE(static_cast<sim::Modem&>(m).session_active()); });
}

usb::NetworkFunction function_of(const sim::DeviceModel& m) {
  const auto& d = m.identity().descriptors;
  const auto dev = usb::parse_device_descriptor(std::span(d).first(18));
  const auto configs = usb::parse_configurations(std::span(d).subspan(18), dev->vendor_id, dev->product_id);
  std::string error;
  const auto f = usb::find_network_function(configs.at(0), error);
  if (!f) throw std::runtime_error(error);
  return *f;
}

control::Quirks quirks_of(const SessionCase& c, const usb::NetworkFunction& f) {
  return control::find_quirks(c.vid, c.pid, f).quirks;
}

class Session : public ::testing::TestWithParam<SessionCase> {};

TEST_P(Session, ComesUpDropsAndComesBackThroughLibusb) {
  const SessionCase& c = GetParam();
  std::shared_ptr<sim::Modem> modem = sim::make_modem(c.profile);
  g_bed->add(from_model(c.port, c.devnum, modem));
  {
    std::string error;
    std::optional<usb::Context> ctx = usb::Context::open(error);
    ASSERT_TRUE(ctx) << error;
    auto opened = cli::open_modem(*ctx, {.id = {c.vid, c.pid}, .port_path = c.port, .serial = std::nullopt}, error);
    ASSERT_TRUE(opened) << error;
    bring_up_drop_and_stop(*opened->transport, opened->function, quirks_of(c, opened->function),
                           [&](const std::function<void(sim::DeviceModel&)>& fn) { g_bed->with_model(c.port, fn); });
  }
  g_bed->unplug(c.port);
}

TEST_P(Session, ComesUpDropsAndComesBackInProcess) {
  const SessionCase& c = GetParam();
  std::unique_ptr<sim::Modem> modem = sim::make_modem(c.profile);
  sim::InProcessTransport t(*modem);
  const usb::NetworkFunction f = function_of(*modem);
  bring_up_drop_and_stop(t, f, quirks_of(c, f),
                         [&](const std::function<void(sim::DeviceModel&)>& fn) { t.with_model(fn); });
}

INSTANTIATE_TEST_SUITE_P(Profiles, Session, ::testing::ValuesIn(kCases),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

}  // namespace
}  // namespace wwan::usbfs_test
