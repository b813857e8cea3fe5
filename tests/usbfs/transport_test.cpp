// The libusb Transport against REAL libusb on the emulated bus: detach + claim + alt setting and
// their undoing, asynchronous bulk with several transfers in flight, the interrupt endpoint,
// stall and clear-halt, unplug in the middle of the flow, hotplug. The device is the loopback of
// tests/support/loopback_device.hpp at kLoopbackPort (its kernel driver: "usbtest").
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <numeric>

#include "tests/usbfs/bench.hpp"
#include "tests/usbfs/profiles.hpp"
#include "tools/device_args.hpp"
#include "sim/modem.hpp"
#include "sim/zerocd_stick.hpp"
#include <thread>
#include "usb/discovery.hpp"
#include "usb/hotplug.hpp"
#include "usb/libusb_transport.hpp"
#include "usb/transfer_pipes.hpp"

namespace wwan::usbfs_test {
namespace {

using ::testing::ElementsAre;
using ::testing::IsSupersetOf;
using test::LoopbackDevice;

usb::Context open_context() {
  std::string error;
  auto ctx = usb::Context::open(error);
  if (!ctx) throw std::runtime_error(error);
  return std::move(*ctx);
}

usb::DeviceInfo find(const usb::Context& ctx, const std::string& port_path) {
  std::string error;
  for (usb::DeviceInfo& d : usb::enumerate(ctx, error))
    if (d.port_path == port_path) return d;
  throw std::runtime_error(port_path + " not enumerated: " + error);
}

struct Received {
  std::vector<std::vector<std::uint8_t>> data;
  usb::InPipe* pipe = nullptr;
};

// Copies and hands the buffer straight back, as an RX worker that is done with it would.
void collect_and_release(void* user, unsigned slot, std::span<const std::uint8_t> data) {
  auto* r = static_cast<Received*>(user);
  r->data.emplace_back(data.begin(), data.end());
  r->pipe->release(slot);
}

// Pumps libusb until `done()`; the bound (5 s) turns a hang into a failure, it is not a timing
// assumption: every step completes as soon as the handler answers.
template <class Done>
bool pump(usb::Transport& t, Done done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!done() && std::chrono::steady_clock::now() < deadline) t.handle_events(50);
  return done();
}

class UsbfsTransport : public ::testing::Test {
 protected:
  void SetUp() override {
    g_bed->with_model(kLoopbackPort, [](sim::DeviceModel& m) {
      auto& d = static_cast<LoopbackDevice&>(m);
      d.stall_in = d.stall_out = false;
      d.notifications.clear();
    });
    device = find(ctx, kLoopbackPort);
  }
  std::unique_ptr<usb::LibusbTransport> open_claimed() {
    std::string error;
    auto t = usb::LibusbTransport::open(ctx, device, {.configuration = std::nullopt, .interfaces = {0}}, error);
    EXPECT_NE(t, nullptr) << error;
    return t;
  }

  usb::Context ctx = open_context();
  usb::DeviceInfo device;
};

TEST_F(UsbfsTransport, ClaimDetachesTheKernelDriverAndCloseGivesItBack) {
  const std::size_t events_before = g_bed->stats(kLoopbackPort).driver_events.size();
  {
    auto t = open_claimed();
    ASSERT_NE(t, nullptr);
    ASSERT_EQ(t->claims().size(), 1u);
    EXPECT_EQ(t->claims()[0].detached_driver, "usbtest");
    EXPECT_EQ(g_bed->stats(kLoopbackPort).drivers.at(0), "usbfs");
    ASSERT_EQ(t->set_alt_setting(0, 1), usb::TransferStatus::completed);
    EXPECT_EQ(g_bed->stats(kLoopbackPort).alt_settings.at(0), 1);
  }
  const UsbfsStats s = g_bed->stats(kLoopbackPort);
  const std::vector<std::string> events(s.driver_events.begin() + static_cast<std::ptrdiff_t>(events_before),
                                        s.driver_events.end());
  EXPECT_THAT(events, ElementsAre("detach 0 usbtest", "claim 0", "release 0", "attach 0 usbtest"));
  EXPECT_EQ(s.drivers.at(0), "usbtest");
  EXPECT_EQ(s.alt_settings.at(0), 0) << "alt 0 restored before the kernel driver gets it back";
}

TEST_F(UsbfsTransport, ClaimingAMissingInterfaceFailsWithOneLineAndGivesBackTheRest) {
  std::string error;
  auto t = usb::LibusbTransport::open(ctx, device, {.configuration = std::nullopt, .interfaces = {0, 5}}, error);
  EXPECT_EQ(t, nullptr);
  EXPECT_THAT(error, ::testing::HasSubstr("interface 5"));
  EXPECT_EQ(error.find('\n'), std::string::npos);
  EXPECT_EQ(g_bed->stats(kLoopbackPort).drivers.at(0), "usbtest") << "interface 0 was given back";
}

TEST_F(UsbfsTransport, BulkLoopbackWithSeveralTransfersInFlight) {
  auto t = open_claimed();
  ASSERT_NE(t, nullptr);
  ASSERT_EQ(t->set_alt_setting(0, 1), usb::TransferStatus::completed);
  const unsigned submitted_before = g_bed->stats(kLoopbackPort).urbs_submitted;

  Received rx;
  usb::InPipe in(*t, {.endpoint = LoopbackDevice::kBulkIn, .transfer_bytes = 16384, .transfers_in_flight = 4},
                 &collect_and_release, &rx);
  rx.pipe = &in;
  ASSERT_TRUE(in.start());
  usb::OutPipe out(*t, {.endpoint = LoopbackDevice::kBulkOut, .transfer_bytes = 16384, .transfers_in_flight = 4});

  // 24 transfers of different sizes (1 byte to 16 KiB, with whole-packet multiples among them),
  // each filled with its own pattern; submitted as fast as OUT buffers free up.
  std::vector<std::size_t> sizes;
  for (std::size_t i = 0; i < 24; ++i) sizes.push_back(i % 3 == 0 ? 512 * (i + 1) : 1 + i * 611);
  std::size_t sent = 0;
  ASSERT_TRUE(pump(*t, [&] {
    while (sent < sizes.size()) {
      const auto slot = out.acquire();
      if (!slot) break;
      std::span<std::uint8_t> b = out.buffer(*slot);
      for (std::size_t k = 0; k < sizes[sent]; ++k) b[k] = static_cast<std::uint8_t>(sent * 7 + k);
      EXPECT_EQ(out.submit(*slot, sizes[sent]), usb::TransferStatus::completed);
      ++sent;
    }
    return rx.data.size() == sizes.size();
  }));
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    ASSERT_EQ(rx.data[i].size(), sizes[i]) << "transfer " << i;
    EXPECT_EQ(rx.data[i].back(), static_cast<std::uint8_t>(i * 7 + sizes[i] - 1)) << "transfer " << i;
  }
  EXPECT_EQ(out.counters().bytes.load(), std::accumulate(sizes.begin(), sizes.end(), std::size_t{0}));
  const UsbfsStats s = g_bed->stats(kLoopbackPort);
  EXPECT_GE(s.max_urbs_queued, 4u) << "the IN pipe keeps its K URBs queued at the device";
  EXPECT_GE(s.urbs_submitted - submitted_before, 4u + 24u + 24u);

  in.stop();
  EXPECT_TRUE(in.drain(5000));
  EXPECT_EQ(in.state(), usb::PipeState::stopped);
  EXPECT_GE(g_bed->stats(kLoopbackPort).urbs_discarded, 4u) << "stop() discarded the queued INs";
}

TEST_F(UsbfsTransport, InterruptNotificationsArrive) {
  auto t = open_claimed();
  ASSERT_NE(t, nullptr);
  ASSERT_EQ(t->set_alt_setting(0, 1), usb::TransferStatus::completed);
  Received rx;
  usb::InPipe notify(*t,
                     {.endpoint = LoopbackDevice::kInterruptIn, .transfer_bytes = 16, .transfers_in_flight = 1,
                      .interrupt = true},
                     &collect_and_release, &rx);
  rx.pipe = &notify;
  ASSERT_TRUE(notify.start());
  // CDC NETWORK_CONNECTION(connected), as a modem sends it (CDC 1.2 §6.3.1).
  const std::vector<std::uint8_t> connected = {0xa1, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00};
  g_bed->with_model(kLoopbackPort,
                    [&](sim::DeviceModel& m) { static_cast<LoopbackDevice&>(m).notifications.push_back(connected); });
  ASSERT_TRUE(pump(*t, [&] { return rx.data.size() == 1; }));
  EXPECT_EQ(rx.data[0], connected);
  notify.stop();
  EXPECT_TRUE(notify.drain(5000));
}

TEST_F(UsbfsTransport, StallIsClearedThroughUsbfsAndTheFlowResumes) {
  auto t = open_claimed();
  ASSERT_NE(t, nullptr);
  ASSERT_EQ(t->set_alt_setting(0, 1), usb::TransferStatus::completed);
  const unsigned clears_before = g_bed->stats(kLoopbackPort).clear_halts;
  g_bed->with_model(kLoopbackPort, [](sim::DeviceModel& m) { static_cast<LoopbackDevice&>(m).stall_in = true; });
  Received rx;
  usb::InPipe in(*t, {.endpoint = LoopbackDevice::kBulkIn, .transfer_bytes = 512, .transfers_in_flight = 2},
                 &collect_and_release, &rx);
  rx.pipe = &in;
  ASSERT_TRUE(in.start());
  ASSERT_TRUE(pump(*t, [&] { return in.counters().halts_cleared.load() == 1; }));
  EXPECT_EQ(g_bed->stats(kLoopbackPort).clear_halts, clears_before + 1);

  usb::OutPipe out(*t, {.endpoint = LoopbackDevice::kBulkOut, .transfer_bytes = 512, .transfers_in_flight = 1});
  const auto slot = out.acquire();
  ASSERT_TRUE(slot);
  out.buffer(*slot)[0] = 0xab;
  ASSERT_EQ(out.submit(*slot, 1), usb::TransferStatus::completed);
  ASSERT_TRUE(pump(*t, [&] { return rx.data.size() == 1; }));
  EXPECT_EQ(rx.data[0], std::vector<std::uint8_t>{0xab});
  EXPECT_EQ(in.state(), usb::PipeState::running);
  in.stop();
  EXPECT_TRUE(in.drain(5000));
}

TEST_F(UsbfsTransport, ControlRequestsReachTheDevice) {
  auto t = open_claimed();
  ASSERT_NE(t, nullptr);
  std::array<std::uint8_t, 2> echo{};
  const usb::ControlResult r =
      t->control({.request_type = 0xc0, .request = LoopbackDevice::kVendorRequestEcho, .value = 0x1234}, echo, 1000);
  ASSERT_EQ(r.status, usb::TransferStatus::completed);
  EXPECT_EQ(r.actual_bytes, 2u);
  EXPECT_EQ(echo[0], 0x34);
  EXPECT_EQ(echo[1], 0x12);
  EXPECT_EQ(t->control({.request_type = 0xc0, .request = 0x77}, echo, 1000).status, usb::TransferStatus::stall);
}

// Huawei 12d1:1446 (D2/D3): the default configuration 1 is a CD-ROM, MBIM exists only in
// configuration 2. open_modem selects it (detaching usb-storage first) and claims the MBIM
// function there. On a fresh stick at its own port, removed afterwards.
TEST(UsbfsConfiguration, MbimOnlyInANonDefaultConfigurationIsSelected) {
  usb::Context ctx = open_context();
  g_bed->add(huawei_1446_two_configs("2-5", 6));
  std::string error;
  {
    auto modem = cli::open_modem(ctx, {.id = {0x12d1, 0x1446}, .port_path = "2-5", .serial = std::nullopt}, error);
    ASSERT_TRUE(modem) << error;
    EXPECT_EQ(modem->configuration, 2);
    EXPECT_EQ(modem->function.kind, usb::Function::Mbim);
    EXPECT_THAT(modem->function.interfaces(), ElementsAre(0, 1));
    const UsbfsStats s = g_bed->stats("2-5");
    EXPECT_THAT(s.driver_events, ElementsAre("detach 0 usb-storage", "claim 0", "claim 1"));
  }
  EXPECT_THAT(g_bed->stats("2-5").driver_events,
              ElementsAre("detach 0 usb-storage", "claim 0", "claim 1", "release 1", "release 0"))
      << "nothing to reattach: no driver was bound in configuration 2";

  // --configuration 1 forces the CD-ROM configuration, which has no network function.
  auto forced = cli::open_modem(ctx, {.id = {0x12d1, 0x1446}, .port_path = "2-5", .serial = std::nullopt}, error, 1);
  EXPECT_FALSE(forced);
  EXPECT_THAT(error, ::testing::HasSubstr("no NCM, Huawei NCM, MBIM or RNDIS function"));
  g_bed->unplug("2-5");
}

// A ZeroCD Huawei stick (12d1:1f01, mass storage only) given as --dev: open_modem sends Huawei's
// switch CBW to its storage interface, the stick answers the CSW and leaves the bus, and the
// modem it becomes (12d1:155e, stick mode) is found at the same port and claimed.
TEST(UsbfsModeswitch, ZeroCdStickIsSwitchedAndFollowedToItsModemId) {
  usb::Context ctx = open_context();
  auto stick = std::make_shared<sim::ZeroCdStick>(0x1f01);
  g_bed->add(from_model("2-6", 7, stick));
  std::optional<cli::OpenedModem> opened;
  std::string error;
  std::thread opener([&] {
    opened = cli::open_modem(ctx, {.id = {0x12d1, 0x1f01}, .port_path = "2-6", .serial = std::nullopt}, error);
  });
  // The bus's part: once the stick has gone, the new composition enumerates at the same port.
  bool gone = false;
  for (int i = 0; i < 500 && !gone; ++i) {
    g_bed->with_model("2-6", [&](sim::DeviceModel& m) { gone = !m.connected(); });
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(gone) << "the stick never took the switch message";
  g_bed->unplug("2-6");
  sim::ModemOptions stick_mode;
  stick_mode.product_id = 0x155e;
  g_bed->add(from_model("2-6", 8, std::shared_ptr<sim::Modem>(sim::make_modem("huawei-e3372", stick_mode))));
  opener.join();
  ASSERT_TRUE(opened) << error;
  EXPECT_EQ(opened->device.product_id, 0x155e);
  EXPECT_EQ(opened->device.address, 8);
  EXPECT_EQ(opened->function.kind, usb::Function::HuaweiNcm);
  EXPECT_EQ(stick->switch_messages(), 1u);
  EXPECT_EQ(stick->other_commands(), 0u);
  opened.reset();
  g_bed->unplug("2-6");
}

// Last in this file's order on purpose: it removes a device from the bus. A second loopback is
// plugged in for it, so the shared one stays for everything else.
TEST(UsbfsHotplug, ArrivalUnplugMidFlowAndDeparture) {
  usb::Context ctx = open_context();
  std::vector<usb::HotplugNotice> notices;
  std::string error;
  auto watch = usb::HotplugWatch::start(ctx, usb::VidPid{0x1d50, 0x6018},
                                        [&](const usb::HotplugNotice& n) { notices.push_back(n); }, error);
  ASSERT_TRUE(watch) << error;
  // The shared loopback is already there: libusb reports only devices that arrive from now on.
  auto second = std::make_shared<LoopbackDevice>();
  g_bed->add(from_model("1-5", 9, second));
  for (int i = 0; i < 100 && notices.empty(); ++i) watch->handle_events(50);
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_EQ(notices[0].event, usb::HotplugEvent::arrived);
  EXPECT_EQ(notices[0].bus, 1);
  EXPECT_EQ(notices[0].address, 9);

  usb::DeviceInfo info = find(ctx, "1-5");
  auto t = usb::LibusbTransport::open(ctx, info, {.configuration = std::nullopt, .interfaces = {0}}, error);
  ASSERT_NE(t, nullptr) << error;
  ASSERT_EQ(t->set_alt_setting(0, 1), usb::TransferStatus::completed);
  Received rx;
  usb::InPipe in(*t, {.endpoint = LoopbackDevice::kBulkIn, .transfer_bytes = 512, .transfers_in_flight = 3},
                 &collect_and_release, &rx);
  rx.pipe = &in;
  ASSERT_TRUE(in.start());

  g_bed->unplug("1-5");  // with three URBs queued at the device
  ASSERT_TRUE(pump(*t, [&] { return in.in_flight() == 0; }));
  EXPECT_EQ(in.state(), usb::PipeState::device_gone);
  EXPECT_TRUE(t->device_gone());
  usb::OutPipe out(*t, {.endpoint = LoopbackDevice::kBulkOut, .transfer_bytes = 512, .transfers_in_flight = 1});
  const auto slot = out.acquire();
  ASSERT_TRUE(slot);
  EXPECT_EQ(out.submit(*slot, 1), usb::TransferStatus::no_device);
  t.reset();  // closing a gone device neither hangs nor tries to reattach a driver

  for (int i = 0; i < 100 && notices.size() < 2; ++i) watch->handle_events(50);
  ASSERT_EQ(notices.size(), 2u);
  EXPECT_EQ(notices[1].event, usb::HotplugEvent::left);
  EXPECT_EQ(notices[1].address, 9);
  const UsbfsStats s = g_bed->stats("1-5");
  EXPECT_THAT(s.driver_events, ElementsAre("detach 0 usbtest", "claim 0"));
}

}  // namespace
}  // namespace wwan::usbfs_test
