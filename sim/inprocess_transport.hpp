// The emulated modem behind the Transport seam, in this process: no kernel, no libusb, no
// copies beyond what a host controller's DMA would do. The default for `--sim` and for the
// benchmarks; the usbfs emulation (tests/usbfs) exists to run the real libusb code instead.
//
// Completions run inside handle_events() on the caller's thread, as with libusb. A bulk-IN
// request the device NAKs stays queued and is retried after every call into the model (any of
// them may have produced data) and at the model's next_deadline().
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "sim/device_model.hpp"
#include "sim/host_port.hpp"
#include "usb/transport.hpp"

namespace wwan::sim {

class InProcessTransport final : public usb::Transport {
 public:
  // `model` must outlive the transport.
  explicit InProcessTransport(DeviceModel& model);
  ~InProcessTransport() override;
  InProcessTransport(const InProcessTransport&) = delete;
  InProcessTransport& operator=(const InProcessTransport&) = delete;

  usb::ControlResult control(const usb::ControlSetup& setup, std::span<std::uint8_t> data,
                             unsigned timeout_ms) override;
  usb::TransferStatus set_alt_setting(std::uint8_t interface_number, std::uint8_t alternate_setting) override;
  usb::TransferStatus clear_halt(std::uint8_t endpoint) override;
  usb::TransferStatus submit(usb::Transfer& transfer) override;
  void cancel(usb::Transfer& transfer) override;
  void handle_events(unsigned timeout_ms) override;
  void wake() override;
  bool device_gone() const override;

  // Runs `fn` on the model under the transport's lock (flip a fault, read counters) and then
  // lets queued requests retry. The way tests reach the model while the transport runs.
  void with_model(const std::function<void(DeviceModel&)>& fn);

 private:
  struct Pending;
  void poke_locked();

  DeviceModel& model_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  HostPort port_;
  bool woken_ = false;
  bool poked_ = false;  // something happened that may let a queued request complete
  bool gone_ = false;
  std::unordered_map<const usb::Transfer*, std::unique_ptr<Pending>> pending_;
};

}  // namespace wwan::sim
