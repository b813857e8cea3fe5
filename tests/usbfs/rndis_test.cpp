// The emulated FM350-GL (`fm350-rndis`, sim/rndis_modem.hpp) through REAL libusb on the emulated
// usbfs: `wwan-dp list` calls the composition `rndis` and supported; open_modem claims the RNDIS
// function (interfaces 0/1, detaching rndis_host) and the AT interface 6 (detaching option) on one
// handle; the RNDIS session and the FM350 dial (control/rndis_at_runner.hpp) unlock the FCC lock,
// come up with the address the network assigned and stop; every driver is given back. The daemon
// itself opens the AT port on a second handle, which this emulated usbfs cannot serve (one reap
// queue per device, serial_at_test.cpp says why): the daemon runs against fm350-rndis in-process
// in tests/integration.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>

#include "control/rndis_at_runner.hpp"
#include "sim/modem.hpp"
#include "sim/rndis_modem.hpp"
#include "tests/usbfs/bench.hpp"
#include "tests/usbfs/child.hpp"
#include "tools/device_args.hpp"

namespace wwan::usbfs_test {
namespace {

using namespace std::chrono_literals;
using ::testing::Contains;
using ::testing::HasSubstr;

TEST(RndisFm350, ListCallsItRndisAndSupported) {
  const char* port = "2-26";
  g_bed->add(from_model(port, 66, std::shared_ptr<sim::Modem>(sim::make_modem("fm350-rndis"))));
  {
    Child c({"list", "--json"});
    std::string all;
    for (std::string l = c.line(); !l.empty(); l = c.line()) all += l;
    EXPECT_EQ(c.wait_exit(), 0) << c.stderr_text();
    const std::size_t at = all.find("0e8d");
    ASSERT_NE(at, std::string::npos) << all;
    const std::string fm350 = all.substr(at, 400);
    EXPECT_THAT(fm350, HasSubstr("\"mode\":\"rndis\"")) << fm350;
    EXPECT_THAT(fm350, HasSubstr("\"supported\":true")) << fm350;
  }
  g_bed->unplug(port);
}

TEST(RndisFm350, UnlocksAndConnectsThroughLibusbAndGivesEveryInterfaceBack) {
  const char* port = "2-25";
  g_bed->add(from_model(port, 65, std::shared_ptr<sim::Modem>(sim::make_modem("fm350-rndis"))));
  {
    std::string error;
    std::optional<usb::Context> ctx = usb::Context::open(error);
    ASSERT_TRUE(ctx) << error;
    auto opened = cli::open_modem(*ctx, {.id = {0x0e8d, 0x7127}, .port_path = port, .serial = std::nullopt}, error,
                                  std::nullopt, /*claim_serial_at=*/true);
    ASSERT_TRUE(opened) << error;
    EXPECT_EQ(opened->function.kind, usb::Function::Rndis);
    ASSERT_TRUE(opened->serial_at);
    EXPECT_EQ(opened->serial_at->interface_number, 6);
    const UsbfsStats claimed = g_bed->stats(port);
    EXPECT_EQ(claimed.drivers.at(0), "usbfs");
    EXPECT_EQ(claimed.drivers.at(1), "usbfs");
    EXPECT_EQ(claimed.drivers.at(6), "usbfs");

    std::unique_ptr<control::CommandTransport> at_port = cli::claimed_serial_at_factory(*opened)(error);
    ASSERT_TRUE(at_port) << error;
    control::SessionSettings dial;
    dial.fcc_unlock = true;
    control::RunnerOptions ro;
    ro.poll_interval = 60s;  // answers only through the RNDIS RESPONSE_AVAILABLE
    control::RndisAtRunner runner(*opened->transport, opened->function, control::RndisSessionSettings{}, dial, *at_port,
                                  ro);
    ASSERT_TRUE(runner.start()) << runner.error();
    ASSERT_TRUE(runner.run_until(
        [](const control::SessionStatus& s) {
          return s.state == control::SessionState::connected || s.state == control::SessionState::failed;
        },
        20s));
    ASSERT_EQ(runner.status().state, control::SessionState::connected) << runner.status().error;
    const sim::NetworkConfig net;
    ASSERT_TRUE(runner.status().ip.ipv4);
    EXPECT_EQ(runner.status().ip.ipv4->address, net.host_ipv4);
    EXPECT_EQ(runner.status().ip.ipv4->gateway, net.gateway_ipv4);
    EXPECT_EQ(runner.rndis_runner().counters().responses_by_poll, 0u);
    EXPECT_EQ(runner.rndis().device_info().out.max_transfer_size, 16384u);
    g_bed->with_model(port, [](sim::DeviceModel& m) {
      auto& modem = dynamic_cast<sim::Fm350RndisModem&>(m);
      EXPECT_FALSE(modem.at().locked());
      EXPECT_TRUE(modem.rndis().data_flowing());
      EXPECT_EQ(modem.rndis().host_max_transfer_size(), 16384u);
    });
    runner.stop(5s);
    EXPECT_EQ(runner.status().state, control::SessionState::stopped) << runner.status().error;
  }
  const UsbfsStats s = g_bed->stats(port);
  EXPECT_EQ(s.drivers.at(0), "rndis_host") << "given back";
  EXPECT_EQ(s.drivers.at(1), "rndis_host");
  EXPECT_EQ(s.drivers.at(6), "option");
  EXPECT_THAT(s.driver_events, Contains("detach 6 option"));
  EXPECT_THAT(s.driver_events, Contains("attach 6 option"));
  g_bed->unplug(port);
}

}  // namespace
}  // namespace wwan::usbfs_test
