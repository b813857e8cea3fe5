// The bulk pipes (usb/transfer_pipes.hpp) over the in-process transport and a loopback device:
// K in flight, buffers lent to the sink until release, back-pressure on OUT, stall recovery,
// device-gone, stop + drain. The same pipes run over libusb in tests/usbfs.
#include "usb/transfer_pipes.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <numeric>
#include <thread>
#include <utility>
#include <vector>

#include "sim/inprocess_transport.hpp"
#include "sim/modem.hpp"
#include "tests/support/loopback_device.hpp"

namespace wwan::usb {
namespace {

using test::LoopbackDevice;

struct Received {
  std::vector<std::vector<std::uint8_t>> data;
  std::vector<unsigned> slots;
};

void collect(void* user, unsigned slot, std::span<const std::uint8_t> data) {
  auto* r = static_cast<Received*>(user);
  r->data.emplace_back(data.begin(), data.end());
  r->slots.push_back(slot);
}

class PipesTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(transport.set_alt_setting(0, 1), TransferStatus::completed); }

  // Pumps events until `done()` or 2 s (a bound against a hang, not a timing assumption).
  template <class Done>
  bool pump(Done done) {
    for (int i = 0; i < 2000 && !done(); ++i) transport.handle_events(1);
    return done();
  }

  LoopbackDevice device;
  sim::InProcessTransport transport{device};
};

TEST_F(PipesTest, KeepsKTransfersInFlightAndLendsBuffersUntilRelease) {
  Received rx;
  InPipe in(transport, {.endpoint = LoopbackDevice::kBulkIn, .transfer_bytes = 2048, .transfers_in_flight = 4},
            &collect, &rx);
  ASSERT_TRUE(in.start());
  EXPECT_EQ(in.in_flight(), 4u);
  EXPECT_EQ(in.state(), PipeState::running);

  OutPipe out(transport, {.endpoint = LoopbackDevice::kBulkOut, .transfer_bytes = 2048, .transfers_in_flight = 2});
  for (std::uint8_t i = 1; i <= 2; ++i) {
    const auto slot = out.acquire();
    ASSERT_TRUE(slot);
    std::span<std::uint8_t> b = out.buffer(*slot);
    std::iota(b.begin(), b.begin() + 100 * i, i);
    ASSERT_EQ(out.submit(*slot, 100u * i), TransferStatus::completed);
  }
  EXPECT_FALSE(out.acquire()) << "both OUT buffers are in flight: back-pressure";

  ASSERT_TRUE(pump([&] { return rx.data.size() == 2 && out.in_flight() == 0; }));
  EXPECT_EQ(rx.data[0].size(), 100u);
  EXPECT_EQ(rx.data[1].size(), 200u);
  EXPECT_EQ(rx.data[1][0], 2);
  EXPECT_EQ(rx.data[1][199], static_cast<std::uint8_t>(2 + 199));
  EXPECT_EQ(out.counters().transfers.load(), 2u);
  EXPECT_EQ(out.counters().bytes.load(), 300u);
  EXPECT_EQ(in.counters().bytes.load(), 300u);
  // Two buffers are lent to the sink: only two transfers remain in flight until released.
  EXPECT_EQ(in.in_flight(), 2u);
  in.release(rx.slots[0]);
  in.release(rx.slots[1]);
  EXPECT_EQ(in.in_flight(), 4u);

  in.stop();
  EXPECT_TRUE(in.drain(2000));
  EXPECT_EQ(in.state(), PipeState::stopped);
}

TEST_F(PipesTest, InStallIsClearedAndTheQueueResumes) {
  Received rx;
  InPipe in(transport, {.endpoint = LoopbackDevice::kBulkIn, .transfer_bytes = 512, .transfers_in_flight = 3},
            &collect, &rx);
  transport.with_model([](sim::DeviceModel& m) { static_cast<LoopbackDevice&>(m).stall_in = true; });
  ASSERT_TRUE(in.start());
  ASSERT_TRUE(pump([&] { return in.counters().halts_cleared.load() >= 1; }));
  // Only the head of the queue saw the stall: the host halts the endpoint's queue (USB 2.0 §8.4.5).
  EXPECT_EQ(in.counters().stalls.load(), 1u);
  EXPECT_EQ(device.clear_halt_calls, 1u);

  OutPipe out(transport, {.endpoint = LoopbackDevice::kBulkOut, .transfer_bytes = 512, .transfers_in_flight = 1});
  const auto slot = out.acquire();
  ASSERT_TRUE(slot);
  out.buffer(*slot)[0] = 0x5a;
  ASSERT_EQ(out.submit(*slot, 1), TransferStatus::completed);
  ASSERT_TRUE(pump([&] { return rx.data.size() == 1; }));
  EXPECT_EQ(rx.data[0], std::vector<std::uint8_t>{0x5a});
  EXPECT_EQ(in.state(), PipeState::running);
  in.release(rx.slots[0]);
  in.stop();
  EXPECT_TRUE(in.drain(2000));
}

TEST_F(PipesTest, OutStallLosesThatTransferAndClearsTheHalt) {
  OutPipe out(transport, {.endpoint = LoopbackDevice::kBulkOut, .transfer_bytes = 512, .transfers_in_flight = 2});
  transport.with_model([](sim::DeviceModel& m) { static_cast<LoopbackDevice&>(m).stall_out = true; });
  auto slot = out.acquire();
  ASSERT_TRUE(slot);
  ASSERT_EQ(out.submit(*slot, 10), TransferStatus::completed);
  ASSERT_TRUE(pump([&] { return out.in_flight() == 0; }));
  EXPECT_EQ(out.counters().stalls.load(), 1u);
  EXPECT_EQ(out.counters().halts_cleared.load(), 1u);
  EXPECT_EQ(out.counters().transfers.load(), 0u);
  slot = out.acquire();  // the slot came back
  ASSERT_TRUE(slot);
  ASSERT_EQ(out.submit(*slot, 10), TransferStatus::completed);
  ASSERT_TRUE(pump([&] { return out.in_flight() == 0; }));
  EXPECT_EQ(out.counters().transfers.load(), 1u);
  EXPECT_EQ(out.state(), PipeState::running);
}

TEST_F(PipesTest, PersistentStallFailsThePipeInsteadOfSpinning) {
  // A device whose halt does not clear: every clear_halt "succeeds" but the stall comes back.
  struct StuckDevice : LoopbackDevice {
    bool clear_halt(std::uint8_t) override { return true; }
  };
  StuckDevice stuck;
  sim::InProcessTransport t(stuck);
  ASSERT_EQ(t.set_alt_setting(0, 1), TransferStatus::completed);
  t.with_model([](sim::DeviceModel& m) { static_cast<LoopbackDevice&>(m).stall_in = true; });
  Received rx;
  InPipe in(t, {.endpoint = LoopbackDevice::kBulkIn, .transfer_bytes = 512, .transfers_in_flight = 2}, &collect, &rx);
  ASSERT_TRUE(in.start());
  for (int i = 0; i < 2000 && in.in_flight() > 0; ++i) t.handle_events(1);
  EXPECT_EQ(in.state(), PipeState::failed);
  EXPECT_EQ(in.counters().stalls.load(), kMaxConsecutiveFailures);
  EXPECT_TRUE(rx.data.empty());
}

TEST_F(PipesTest, UnplugEndsEveryTransferWithDeviceGone) {
  Received rx;
  InPipe in(transport, {.endpoint = LoopbackDevice::kBulkIn, .transfer_bytes = 512, .transfers_in_flight = 4},
            &collect, &rx);
  ASSERT_TRUE(in.start());
  transport.with_model([](sim::DeviceModel& m) { static_cast<LoopbackDevice&>(m).unplugged = true; });
  ASSERT_TRUE(pump([&] { return in.in_flight() == 0; }));
  EXPECT_EQ(in.state(), PipeState::device_gone);
  EXPECT_TRUE(transport.device_gone());
  OutPipe out(transport, {.endpoint = LoopbackDevice::kBulkOut, .transfer_bytes = 512, .transfers_in_flight = 1});
  const auto slot = out.acquire();
  ASSERT_TRUE(slot);
  EXPECT_EQ(out.submit(*slot, 1), TransferStatus::no_device);
  EXPECT_EQ(out.state(), PipeState::device_gone);
}

TEST_F(PipesTest, ZeroLengthInTransfersAreCountedNotDelivered) {
  Received rx;
  InPipe in(transport, {.endpoint = LoopbackDevice::kBulkIn, .transfer_bytes = 512, .transfers_in_flight = 1},
            &collect, &rx);
  ASSERT_TRUE(in.start());
  OutPipe out(transport, {.endpoint = LoopbackDevice::kBulkOut, .transfer_bytes = 512, .transfers_in_flight = 1});
  auto slot = out.acquire();
  ASSERT_EQ(out.submit(*slot, 0), TransferStatus::completed);  // loops back as a ZLP
  ASSERT_TRUE(pump([&] { return in.counters().zero_length.load() == 1; }));
  EXPECT_TRUE(rx.data.empty());
  EXPECT_EQ(in.in_flight(), 1u) << "a ZLP is resubmitted at once";
  in.stop();
  EXPECT_TRUE(in.drain(2000));
}

TEST_F(PipesTest, InTimeoutCompletesAndIsRetried) {
  Received rx;
  InPipe in(transport,
            {.endpoint = LoopbackDevice::kBulkIn, .transfer_bytes = 512, .transfers_in_flight = 1, .timeout_ms = 5},
            &collect, &rx);
  ASSERT_TRUE(in.start());
  ASSERT_TRUE(pump([&] { return in.counters().timeouts.load() >= 2; }));
  EXPECT_EQ(in.state(), PipeState::running) << "an idle IN endpoint is not a failure";
  in.stop();
  EXPECT_TRUE(in.drain(2000));
}

TEST(PipeConfig, RejectsProgrammingErrors) {
  LoopbackDevice device;
  sim::InProcessTransport t(device);
  EXPECT_THROW(OutPipe(t, {.endpoint = 0x81, .transfer_bytes = 64}), std::invalid_argument);
  EXPECT_THROW(OutPipe(t, {.endpoint = 0x01, .transfer_bytes = 0}), std::invalid_argument);
  EXPECT_THROW(OutPipe(t, {.endpoint = 0x01, .transfer_bytes = 64, .transfers_in_flight = 65}),
               std::invalid_argument);
  EXPECT_THROW(InPipe(t, {.endpoint = 0x01, .transfer_bytes = 64}, &collect, nullptr), std::invalid_argument);
}

TEST(InProcessTransport, AnswersStandardAndVendorControlRequests) {
  LoopbackDevice device;
  sim::InProcessTransport t(device);
  std::array<std::uint8_t, 18> dd{};
  const ControlResult r = t.control({.request_type = 0x80, .request = 6, .value = 0x0100, .index = 0}, dd, 100);
  ASSERT_EQ(r.status, TransferStatus::completed);
  EXPECT_EQ(r.actual_bytes, 18u);
  EXPECT_EQ(dd[8] | dd[9] << 8, 0x1d50);
  std::array<std::uint8_t, 2> echo{};
  const ControlResult v =
      t.control({.request_type = 0xc0, .request = LoopbackDevice::kVendorRequestEcho, .value = 0xbeef}, echo, 100);
  ASSERT_EQ(v.status, TransferStatus::completed);
  EXPECT_EQ(echo[0], 0xef);
  EXPECT_EQ(echo[1], 0xbe);
  EXPECT_EQ(t.control({.request_type = 0xc0, .request = 0x99}, echo, 100).status, TransferStatus::stall);
  EXPECT_EQ(t.set_alt_setting(0, 7), TransferStatus::stall);
}

// A loopback whose bulk-IN answer takes until the test says (at most 5 s): the emulated modem
// building a 64 KiB NTB inside handle_events(), made as long as needed.
class SlowInDevice final : public LoopbackDevice {
 public:
  std::atomic<bool> in_entered{false}, release{false}, ran_out{false};
  sim::InResult in(std::uint8_t ep, std::span<std::uint8_t> buffer) override {
    if (ep == kBulkIn && !release.load()) {
      in_entered = true;
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      while (!release.load() && !ran_out.load())
        if (std::chrono::steady_clock::now() > deadline) ran_out = true;
        else std::this_thread::yield();
    }
    return LoopbackDevice::in(ep, buffer);
  }
};

TEST(InProcessTransport, ASubmitDoesNotWaitForTheDeviceModelToFinish) {
  // The RX worker resubmits IN buffers and TX submits NTBs while the event thread is inside the
  // model; a host controller queues an URB without waiting for the device, and so must this.
  SlowInDevice device;
  sim::InProcessTransport t(device);
  ASSERT_EQ(t.set_alt_setting(0, 1), TransferStatus::completed);
  std::array<std::uint8_t, 64> in_buffer{}, out_buffer{};
  Transfer in{.endpoint = LoopbackDevice::kBulkIn, .buffer = in_buffer, .length = in_buffer.size()};
  Transfer out{.endpoint = LoopbackDevice::kBulkOut, .buffer = out_buffer, .length = 10};
  int completions = 0;
  in.on_complete = out.on_complete = [](Transfer& x) { ++*static_cast<int*>(x.user); };
  in.user = out.user = &completions;
  ASSERT_EQ(t.submit(in), TransferStatus::completed);
  std::thread events([&] {
    for (int i = 0; i < 500 && completions < 2; ++i) t.handle_events(10);
  });
  while (!device.in_entered.load() && !device.ran_out.load()) std::this_thread::yield();
  // The event thread is inside the model's in(): this submit must come back now.
  EXPECT_EQ(t.submit(out), TransferStatus::completed);
  device.release = true;
  events.join();
  EXPECT_FALSE(device.ran_out.load()) << "submit() waited for the model";
  // And nothing was lost: the OUT went in, looped back and completed the IN.
  EXPECT_EQ(completions, 2);
  EXPECT_EQ(in.status, TransferStatus::completed);
  EXPECT_EQ(in.actual_bytes, 10u);
}

// A loopback that runs a test's hook the first time its bulk IN is asked for data.
class HookedInDevice final : public LoopbackDevice {
 public:
  std::function<void()> on_in;
  sim::InResult in(std::uint8_t ep, std::span<std::uint8_t> buffer) override {
    if (ep == kBulkIn && on_in) std::exchange(on_in, nullptr)();
    return LoopbackDevice::in(ep, buffer);
  }
};

TEST(InProcessTransport, ATransferSubmittedAsTheDeviceLeavesCompletesInTheCallThatSawItLeave) {
  // The daemon stops calling handle_events() once its pipes report the device gone. A transfer
  // submitted while the event thread was inside the model (the RX worker resubmitting a buffer)
  // must complete as no_device in that same call, or its InPipe is destroyed with it in flight
  // (seen under LeakSanitizer: an unplug with --once). Any submit after that is refused.
  HookedInDevice device;
  sim::InProcessTransport t(device);
  ASSERT_EQ(t.set_alt_setting(0, 1), TransferStatus::completed);
  std::array<std::uint8_t, 64> b1{}, b2{}, b3{};
  Transfer first{.endpoint = LoopbackDevice::kBulkIn, .buffer = b1, .length = b1.size()};
  Transfer second{.endpoint = LoopbackDevice::kBulkIn, .buffer = b2, .length = b2.size()};
  Transfer third{.endpoint = LoopbackDevice::kBulkIn, .buffer = b3, .length = b3.size()};
  int completions = 0;
  for (Transfer* x : {&first, &second, &third}) {
    x->on_complete = [](Transfer& done) { ++*static_cast<int*>(done.user); };
    x->user = &completions;
  }
  device.on_in = [&] {
    EXPECT_EQ(t.submit(second), TransferStatus::completed) << "queued: the device has not left yet";
    device.unplugged = true;
  };
  ASSERT_EQ(t.submit(first), TransferStatus::completed);
  t.handle_events(100);
  EXPECT_EQ(completions, 2) << "both transfers end in the call that saw the device leave";
  EXPECT_EQ(first.status, TransferStatus::no_device);
  EXPECT_EQ(second.status, TransferStatus::no_device);
  EXPECT_TRUE(t.device_gone());
  EXPECT_EQ(t.submit(third), TransferStatus::no_device);
}

}  // namespace
}  // namespace wwan::usb

// The in-process transport in front of a real modem model (not just the loopback): the control
// channel, the interrupt endpoint and K bulk INs against the emulated E3372, with no libusb.
namespace wwan::usb {
namespace {

void keep(void* user, unsigned slot, std::span<const std::uint8_t> data) {
  auto* r = static_cast<Received*>(user);
  r->data.emplace_back(data.begin(), data.end());
  r->slots.push_back(slot);
}

TEST(InProcessTransport, DrivesTheEmulatedE3372) {
  std::unique_ptr<sim::Modem> modem = sim::make_modem("huawei-e3372");
  ASSERT_NE(modem, nullptr);
  sim::InProcessTransport t(*modem);
  // GET_NTB_PARAMETERS to interface 1 (the combined control/data interface of D2).
  std::vector<std::uint8_t> params(28);
  const ControlResult r = t.control({.request_type = 0xa1, .request = 0x80, .value = 0, .index = 1}, params, 1000);
  ASSERT_EQ(r.status, TransferStatus::completed);
  EXPECT_EQ(r.actual_bytes, 28u);
  EXPECT_EQ(params[2] | params[3] << 8, 3) << "bmNtbFormatsSupported: NTB16 and NTB32";

  Received notes;
  InPipe notify(t, {.endpoint = 0x85, .transfer_bytes = 64, .transfers_in_flight = 1, .interrupt = true}, &keep, &notes);
  ASSERT_TRUE(notify.start());
  for (int i = 0; i < 200 && notes.data.empty(); ++i) t.handle_events(5);
  ASSERT_FALSE(notes.data.empty()) << "the boot noise is announced with RESPONSE_AVAILABLE";
  EXPECT_EQ(notes.data[0][1], 0x01);

  ASSERT_EQ(t.set_alt_setting(1, 1), TransferStatus::completed);
  Received rx;
  InPipe in(t, {.endpoint = 0x84, .transfer_bytes = 65536, .transfers_in_flight = 4}, &keep, &rx);
  ASSERT_TRUE(in.start());
  EXPECT_EQ(in.in_flight(), 4u) << "nothing to receive before the session: all four wait";
  std::string dial = "AT^NDISDUP=1,1,\"internet\"\r";
  std::vector<std::uint8_t> cmd(dial.begin(), dial.end());
  ASSERT_EQ(t.control({.request_type = 0x21, .request = 0x00, .value = 0, .index = 1}, cmd, 1000).status,
            TransferStatus::completed);
  t.with_model([](sim::DeviceModel& m) { EXPECT_TRUE(static_cast<sim::Modem&>(m).session_active()); });
  // Once dialled the E3372 ARPs for the host before forwarding: an NTB arrives unasked.
  for (int i = 0; i < 200 && rx.data.empty(); ++i) t.handle_events(5);
  ASSERT_FALSE(rx.data.empty());
  EXPECT_EQ(rx.data[0][0], 'n') << "an NTH32 (\"ncmh\"): the E3372 starts in NTB32";
  for (unsigned s : rx.slots) in.release(s);
  for (unsigned s : notes.slots) notify.release(s);
  in.stop();
  notify.stop();
  EXPECT_TRUE(in.drain(2000));
  EXPECT_TRUE(notify.drain(2000));
}

}  // namespace
}  // namespace wwan::usb
