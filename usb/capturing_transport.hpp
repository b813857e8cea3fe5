// A Transport decorator that records everything that crosses the seam as usbmon events
// (usb/usbmon_capture.hpp) and forwards it, unchanged, to the transport it wraps. What `--capture
// FILE` puts between the driver and LibusbTransport (or InProcessTransport under --sim), so the
// file shows what a kernel usbmon capture of the same session would show (docs/capture.md):
//
//   control()            S (SETUP + OUT data) before the inner call, C (IN data, status, actual
//                        length) after it. The URB's direction is the kernel's: IN only when
//                        bmRequestType says device-to-host AND wLength > 0 (usb_submit_urb treats
//                        a zero-length control IN as OUT).
//   set_alt_setting()    as the control request the kernel sends for it (usb_set_interface):
//                        SET_INTERFACE, bmRequestType 0x01, wValue = alt, wIndex = interface.
//   clear_halt()         CLEAR_FEATURE(ENDPOINT_HALT), bmRequestType 0x02, wIndex = endpoint
//                        (usb_clear_halt).
//   submit()             S before the inner submit (OUT: the data; IN: no data, length asked for);
//                        the completion as C (IN: the data up to actual_bytes; OUT: no data), written
//                        before the caller's callback runs; a refused submit as S + E with the error,
//                        which is what usbmon shows when the host controller refuses an URB
//                        (hcd.c usb_hcd_submit_urb: usbmon_urb_submit, then usbmon_urb_submit_error).
//   cancel(), handle_events(), wake(), device_gone(): forwarded; a cancel shows as the C with
//                        -ECONNRESET that ends the transfer.
//
// URB ids pair an S with its C/E in Wireshark ("[Response in: N]"): a Transfer's address (as the
// kernel uses the urb's), and for the synchronous control requests (1 << 63) | a sequence number
// — never a user-space address, so the two cannot collide.
//
// The completion is intercepted by swapping the Transfer's on_complete/user for a trampoline at
// submit and putting the caller's back before calling them, so a callback that resubmits the same
// Transfer (every pipe does) sees its own values and goes through submit() again. The saved pair
// lives in a map entry from submit to completion: memory grows with the transfers in flight only.
//
// Lifetime: destroy it after every transfer submitted through it has completed (pipes stopped and
// drained), as for any transport; the inner transport must outlive it, the writer too.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <span>
#include <unordered_map>

#include "usb/transport.hpp"
#include "usb/usbmon_capture.hpp"

namespace wwan::usb {

// Standard requests (USB 2.0 §9.4, Table 9-4) the decorator records for the seam's helpers.
inline constexpr std::uint8_t kRequestSetInterface = 11;   // SET_INTERFACE
inline constexpr std::uint8_t kRequestClearFeature = 1;    // CLEAR_FEATURE
inline constexpr std::uint16_t kFeatureEndpointHalt = 0;   // ENDPOINT_HALT feature selector
inline constexpr std::uint8_t kRequestTypeStandardInterfaceOut = 0x01;
inline constexpr std::uint8_t kRequestTypeStandardEndpointOut = 0x02;

class CapturingTransport final : public Transport {
 public:
  // `bus_number` / `device_address` go into every record (busnum / devnum): the device's real
  // ones, so a capture lines up with `lsusb` and with a usbmon capture of the same bus.
  CapturingTransport(Transport& inner, UsbmonCaptureWriter& writer, std::uint16_t bus_number,
                     std::uint8_t device_address);
  ~CapturingTransport() override;
  CapturingTransport(const CapturingTransport&) = delete;
  CapturingTransport& operator=(const CapturingTransport&) = delete;

  ControlResult control(const ControlSetup& setup, std::span<std::uint8_t> data, unsigned timeout_ms) override;
  TransferStatus set_alt_setting(std::uint8_t interface_number, std::uint8_t alternate_setting) override;
  TransferStatus clear_halt(std::uint8_t endpoint) override;
  TransferStatus submit(Transfer& transfer) override;
  void cancel(Transfer& transfer) override;
  void handle_events(unsigned timeout_ms) override;
  void wake() override;
  bool device_gone() const override;

  // Transfers submitted through this decorator whose completion has not run yet.
  std::size_t in_flight() const;

 private:
  struct Saved {
    void (*on_complete)(Transfer&) = nullptr;
    void* user = nullptr;
  };
  static void on_inner_complete(Transfer& transfer);
  // S and C of one synchronous control request, around `call`.
  template <class Call>
  ControlResult recorded_control(const ControlSetup& setup, std::span<std::uint8_t> data, Call call);
  UsbmonEvent event_for(const Transfer& transfer) const;

  Transport& inner_;
  UsbmonCaptureWriter& writer_;
  const std::uint16_t bus_number_;
  const std::uint8_t device_address_;
  std::atomic<std::uint64_t> control_sequence_{0};
  mutable std::mutex mu_;
  std::unordered_map<const Transfer*, Saved> in_flight_;  // submitted, completion not yet run
};

}  // namespace wwan::usb
