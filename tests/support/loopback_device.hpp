// A minimal device for testing the transports and pipes without a modem model: bulk OUT 0x01
// loops every transfer back on bulk IN 0x81 (one IN transfer per OUT transfer, cut to the IN
// buffer), interrupt IN 0x82 sends what a test queues, and switches make either bulk endpoint
// stall or the device leave the bus. Interface 0 (vendor ff/ff/ff) has alt 0 without endpoints and
// alt 1 with the three; transfers on an interface still in alt 0 STALL, as a real device's would
// not exist (the host would refuse them; a stall is the visible equivalent).
#pragma once

#include <cstring>
#include <deque>
#include <vector>

#include "sim/descriptor_builder.hpp"
#include "sim/device_model.hpp"

namespace wwan::test {

class LoopbackDevice : public sim::DeviceModel {
 public:
  static constexpr std::uint8_t kBulkOut = 0x01, kBulkIn = 0x81, kInterruptIn = 0x82;
  static constexpr std::uint8_t kVendorRequestEcho = 0x42;  // vendor IN: returns wValue as 2 bytes

  LoopbackDevice() {
    using namespace sim;
    id_.descriptors = concat({
        device_descriptor(0x0200, 0, 0, 0, 0x1d50, 0x6018, 0x0100, 1, 2, 3, 1),
        configuration(1, 0x80, 50,
                      {interface(0, 0, 0, 0xff, 0xff, 0xff), interface(0, 1, 3, 0xff, 0xff, 0xff),
                       endpoint(kBulkOut, kBulk, 512, 0), endpoint(kBulkIn, kBulk, 512, 0),
                       endpoint(kInterruptIn, kInterrupt, 16, 9)}),
    });
    id_.strings = {{1, "wwan-dp tests"}, {2, "Loopback"}, {3, "LOOP0001"}};
    id_.kernel_drivers = {{0, "usbtest"}};
  }

  const sim::DeviceIdentity& identity() const override { return id_; }
  bool set_configuration(std::uint8_t value) override { return value == 1; }
  bool set_interface(std::uint8_t number, std::uint8_t alt) override {
    if (number != 0 || alt > 1) return false;
    alt_ = alt;
    ++set_interface_calls;
    return true;
  }
  bool clear_halt(std::uint8_t ep) override {
    ++clear_halt_calls;
    if (ep == kBulkIn) stall_in = false;
    if (ep == kBulkOut) stall_out = false;
    return true;
  }
  std::optional<std::size_t> control(const sim::SetupPacket& setup, std::span<std::uint8_t> data) override {
    ++control_calls;
    if (setup.request_type == 0xc0 && setup.request == kVendorRequestEcho && data.size() >= 2) {
      data[0] = static_cast<std::uint8_t>(setup.value & 0xff);
      data[1] = static_cast<std::uint8_t>(setup.value >> 8);
      return 2;
    }
    return std::nullopt;
  }
  sim::EndpointResult out(std::uint8_t ep, std::span<const std::uint8_t> data) override {
    if (unplugged) return sim::EndpointResult::gone;
    if (ep != kBulkOut || alt_ != 1 || stall_out) return sim::EndpointResult::stall;
    loop_.emplace_back(data.begin(), data.end());
    return sim::EndpointResult::ok;
  }
  sim::InResult in(std::uint8_t ep, std::span<std::uint8_t> buffer) override {
    if (unplugged) return {sim::EndpointResult::gone, 0};
    if (alt_ != 1) return {sim::EndpointResult::stall, 0};
    std::deque<std::vector<std::uint8_t>>* q = ep == kBulkIn ? &loop_ : ep == kInterruptIn ? &notifications : nullptr;
    if (q == nullptr) return {sim::EndpointResult::stall, 0};
    if (ep == kBulkIn && stall_in) return {sim::EndpointResult::stall, 0};
    if (q->empty()) return {sim::EndpointResult::nak, 0};
    const std::size_t n = std::min(buffer.size(), q->front().size());
    if (n > 0) std::memcpy(buffer.data(), q->front().data(), n);
    q->pop_front();
    return {sim::EndpointResult::ok, n};
  }
  bool connected() const override { return !unplugged; }

  std::uint8_t alt() const { return alt_; }

  // Switches and observations (under the front end's lock when it runs).
  bool stall_in = false, stall_out = false, unplugged = false;
  std::deque<std::vector<std::uint8_t>> notifications;
  unsigned set_interface_calls = 0, clear_halt_calls = 0, control_calls = 0;

 private:
  sim::DeviceIdentity id_;
  std::uint8_t alt_ = 0;
  std::deque<std::vector<std::uint8_t>> loop_;
};

}  // namespace wwan::test
