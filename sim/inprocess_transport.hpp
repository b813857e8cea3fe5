// The emulated modem behind the Transport seam, in this process: no kernel, no libusb, no
// copies beyond what a host controller's DMA would do. The default for `--sim` and for the
// benchmarks; the usbfs emulation (tests/usbfs) exists to run the real libusb code instead.
//
// Completions run inside handle_events() on the caller's thread, as with libusb. A bulk-IN
// request the device NAKs stays queued and is retried after every call into the model (any of
// them may have produced data) and at the model's next_deadline().
//
// Two locks, because the model works inside handle_events() (the emulated modem builds its NTBs
// there, for the whole 64 KiB) and a host controller does not make a driver wait for a device:
//   mu_          the HostPort and the model: handle_events(), control requests, cancel, with_model;
//   incoming_mu_ the requests submitted since the event thread last took them, and its wake flags.
// submit() takes only incoming_mu_, so the RX worker resubmitting an IN buffer, or TX submitting
// an NTB, never waits for the model to finish a transfer (a usbfs SUBMITURB does not either).
// Every holder of mu_ first moves the incoming requests into the HostPort, in submission order,
// so a cancel or a CLEAR_FEATURE sees every request submitted before it. Lock order: mu_, then
// incoming_mu_.
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
  void poke_locked();        // mu_ held: something happened that may let a queued request complete
  void take_incoming_locked();  // mu_ held: the submitted requests into the HostPort
  void mark_gone_locked();      // mu_ held: no submit from now on; the queued ones to the HostPort

  DeviceModel& model_;
  mutable std::mutex mu_;
  HostPort port_;
  std::vector<PortRequest*> taken_;  // take_incoming_locked()'s, under mu_
  // Written holding both mu_ and incoming_mu_ (mark_gone_locked), so read holding either.
  bool gone_ = false;

  std::mutex incoming_mu_;
  std::condition_variable cv_;  // waits with incoming_mu_
  std::vector<PortRequest*> incoming_;
  bool woken_ = false;
  bool poked_ = false;
  // One record per Transfer, reused by each later submit of it (the transfer's backend slot
  // points at it); under incoming_mu_.
  std::unordered_map<const usb::Transfer*, std::unique_ptr<Pending>> pending_;
};

}  // namespace wwan::sim
