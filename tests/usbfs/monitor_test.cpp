// The real `wwan-dp monitor` binary against the emulated Huawei E3372 at 1-1.2 (sim::Modem
// huawei-e3372 served through the usbfs emulation): it detaches huawei_cdc_ncm and claims
// interface 1, prints what the interrupt endpoint says, and on SIGTERM, SIGINT and a normal exit
// (--count) releases the interface and reattaches huawei_cdc_ncm — asserted on the emulated
// kernel's side (the usbfs handler's driver state), not on what the program says about itself.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "sim/mbim_modem.hpp"
#include "sim/modem.hpp"
#include "tests/usbfs/bench.hpp"
#include "tests/usbfs/child.hpp"

namespace wwan::usbfs_test {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr const char* kE3372 = "1-1.2";

std::vector<std::string> events_since(std::size_t before) {
  const UsbfsStats s = g_bed->stats(kE3372);
  return {s.driver_events.begin() + static_cast<std::ptrdiff_t>(before), s.driver_events.end()};
}

// What a host's AT^NDISDUP does to the modem, sent straight to the model (as if another program
// had dialled): the modem answers OK and ^NDISSTAT:1 behind RESPONSE_AVAILABLE notifications.
void dial_from_outside() {
  g_bed->with_model(kE3372, [](sim::DeviceModel& m) {
    std::string command = "AT^NDISDUP=1,1,\"internet\"\r";
    std::vector<std::uint8_t> bytes(command.begin(), command.end());
    const sim::SetupPacket send{0x21, 0x00, 0, 1, static_cast<std::uint16_t>(bytes.size())};
    ASSERT_TRUE(m.control(send, bytes));
  });
}

void expect_given_back(std::size_t events_before) {
  const UsbfsStats s = g_bed->stats(kE3372);
  EXPECT_EQ(s.drivers.at(1), "huawei_cdc_ncm");
  EXPECT_THAT(events_since(events_before),
              ElementsAre("detach 1 huawei_cdc_ncm", "claim 1", "release 1", "attach 1 huawei_cdc_ncm"));
}

class MonitorBinary : public ::testing::TestWithParam<int> {};

TEST_P(MonitorBinary, StopSignalReleasesAndReattaches) {
  const std::size_t before = g_bed->stats(kE3372).driver_events.size();
  Child c({"monitor", "--dev", "12d1:1506", "--path", kE3372, "--json"});
  const std::string first = c.line();
  ASSERT_THAT(first, HasSubstr(R"("monitoring":"12d1:1506 at 1-1.2")")) << c.stderr_text();
  EXPECT_THAT(first, HasSubstr(R"("control_interface":1)"));
  // While it runs the emulated kernel has interface 1 claimed through usbfs.
  EXPECT_EQ(g_bed->stats(kE3372).drivers.at(1), "usbfs");

  c.signal(GetParam());
  EXPECT_EQ(c.wait_exit(), 0) << c.stderr_text();
  EXPECT_THAT(c.stderr_text(), HasSubstr(std::string("stopped by ") + sigabbrev_np(GetParam())));
  EXPECT_THAT(c.stderr_text(), HasSubstr("interface 1 given back to huawei_cdc_ncm"));
  expect_given_back(before);
}

INSTANTIATE_TEST_SUITE_P(Signals, MonitorBinary, ::testing::Values(SIGTERM, SIGINT, SIGHUP),
                         [](const auto& param_info) { return std::string(sigabbrev_np(param_info.param)); });

TEST(MonitorBinaryNormalExit, NetworkConnectionAndTheAnnouncedResponse) {
  const std::size_t before = g_bed->stats(kE3372).driver_events.size();
  // Session up as far as the modem is concerned, then dropped by the network: NETWORK_CONNECTION
  // (disconnected) plus the unsolicited ^NDISSTAT behind a RESPONSE_AVAILABLE.
  Child c({"monitor", "--dev", "12d1:1506", "--path", kE3372, "--json", "--count", "1000"});
  ASSERT_THAT(c.line(), HasSubstr("monitoring")) << c.stderr_text();
  dial_from_outside();
  EXPECT_THAT(c.line_with("NDISSTAT"), HasSubstr(R"({"response":"^NDISSTAT:1,,,)")) << c.stderr_text();
  g_bed->with_model(kE3372, [](sim::DeviceModel& m) { static_cast<sim::Modem&>(m).faults().drop_session = true; });
  EXPECT_THAT(c.line_with("NETWORK_CONNECTION"), HasSubstr(R"("connected":false)"));
  EXPECT_THAT(c.line_with("NDISSTAT"), HasSubstr(R"({"response":"^NDISSTAT:0,,,)")) << c.stderr_text();
  c.signal(SIGTERM);
  EXPECT_EQ(c.wait_exit(), 0) << c.stderr_text();
  expect_given_back(before);
}

TEST(MonitorBinaryNormalExit, CountReachedReleasesAndReattaches) {
  const std::size_t before = g_bed->stats(kE3372).driver_events.size();
  // VID:PID@BUS-PORT is the same as --path BUS-PORT.
  Child c({"monitor", "--dev", std::string("12d1:1506@") + kE3372, "--count", "1"});
  ASSERT_THAT(c.line(), HasSubstr("monitoring 12d1:1506 at 1-1.2: huawei-ncm control interface 1"))
      << c.stderr_text();
  dial_from_outside();
  EXPECT_EQ(c.wait_exit(), 0) << c.stderr_text();
  EXPECT_THAT(c.stderr_text(), HasSubstr("stopped after 1 notifications"));
  expect_given_back(before);
}

// `wwan-dp at`: AT over the encapsulated channel of the emulated E3372, through real libusb.
TEST(AtBinary, AnswersAndGivesTheModemBack) {
  const std::size_t before = g_bed->stats(kE3372).driver_events.size();
  Child c({"at", "--dev", "12d1:1506", "--path", kE3372, "ATI", "AT+CPIN?"});
  std::vector<std::string> lines;
  for (std::string l = c.line(); !l.empty(); l = c.line()) lines.push_back(l);
  EXPECT_EQ(c.wait_exit(), 0) << c.stderr_text();
  EXPECT_THAT(lines, ::testing::Contains("+CPIN: READY"));
  EXPECT_EQ(std::count(lines.begin(), lines.end(), "OK"), 2);
  expect_given_back(before);

  Child bad({"at", "--dev", "12d1:1506", "--path", kE3372, "AT+WWANDPBOGUS"});
  EXPECT_EQ(bad.line(), "ERROR");
  EXPECT_EQ(bad.wait_exit(), 1);
}

// `wwan-dp connect --once`: the control plane of the real binary through real libusb, on fresh
// emulated modems plugged in for it: connected, the IP configuration the network assigned, and
// the modem given back.
TEST(ConnectBinary, HuaweiAndMbimComeUpWithTheirIpConfiguration) {
  struct Case {
    const char* profile;
    const char* dev;
    const char* port;
    std::uint8_t devnum;
    std::uint8_t control_interface;
    const char* driver;
  };
  for (const Case& k : {Case{"huawei-e3372", "12d1:1506", "2-9", 40, 1, "huawei_cdc_ncm"},
                        Case{"mbim", "1199:9079", "2-10", 41, 12, "cdc_mbim"}}) {
    g_bed->add(from_model(k.port, k.devnum, std::shared_ptr<sim::Modem>(sim::make_modem(k.profile))));
    {
      Child c({"connect", "--dev", k.dev, "--path", k.port, "--apn", "internet", "--once", "--json"});
      const std::string first = c.line();
      EXPECT_THAT(first, HasSubstr(R"({"state":"connected","ipv4":{"address":"10.64.64.2/30","gateway":"10.64.64.1","dns":["10.11.12.13","10.11.12.14"])"))
          << k.profile << ": " << c.stderr_text();
      EXPECT_EQ(c.wait_exit(), 0) << k.profile << ": " << c.stderr_text();
      const UsbfsStats s = g_bed->stats(k.port);
      EXPECT_EQ(s.drivers.at(k.control_interface), k.driver) << k.profile;
    }
    g_bed->with_model(k.port, [&](sim::DeviceModel& m) {
      EXPECT_FALSE(static_cast<sim::Modem&>(m).session_active()) << k.profile << ": --once disconnects";
    });
    g_bed->unplug(k.port);
  }
}

// `wwan-dp fcc-unlock` on an FCC-locked emulated EM7455: the radio is refused, the QMI DMS 0x555F
// authentication goes over QMI-over-MBIM, the radio comes on; a Huawei NCM stick is refused.
TEST(FccUnlockBinary, UnlocksTheEm7455AndRefusesNonMbim) {
  auto modem = std::shared_ptr<sim::Modem>(sim::make_modem("mbim"));
  g_bed->add(from_model("2-11", 42, modem));
  {
    Child c({"fcc-unlock", "--dev", "1199:9079", "--path", "2-11"});
    EXPECT_EQ(c.line(), "FCC unlock accepted; the radio is on") << c.stderr_text();
    EXPECT_EQ(c.wait_exit(), 0) << c.stderr_text();
    EXPECT_EQ(g_bed->stats("2-11").drivers.at(12), "cdc_mbim");
  }
  g_bed->with_model("2-11", [](sim::DeviceModel& m) {
    EXPECT_TRUE(dynamic_cast<sim::MbimModem&>(m).fcc_authenticated());
  });
  g_bed->unplug("2-11");

  Child huawei({"fcc-unlock", "--dev", "12d1:1506", "--path", kE3372});
  EXPECT_EQ(huawei.wait_exit(), 1);
  EXPECT_THAT(huawei.stderr_text(), HasSubstr("is not an MBIM modem"));
}

TEST(MonitorBinaryErrors, OneLineAndNonZeroExit) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"monitor"}, {"monitor", "--dev", "nonsense"}, {"monitor", "--dev", "dead:beef"},
           {"monitor", "--dev", "12d1:1f01"}, {"monitor", "--dev", "12d1:1506", "--count", "0"}}) {
    Child c(args);
    const int code = c.wait_exit();
    EXPECT_NE(code, 0) << args.back();
    const std::string err = c.stderr_text();
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
    EXPECT_THAT(err, HasSubstr("wwan-dp monitor: "));
  }
  // The bench's 1f01 is a descriptor-only device: it refuses the switch message.
  Child stick({"monitor", "--dev", "12d1:1f01"});
  stick.wait_exit();
  EXPECT_THAT(stick.stderr_text(), HasSubstr("refused the mode-switch message"));
}

}  // namespace
}  // namespace wwan::usbfs_test
