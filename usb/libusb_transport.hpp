// The Transport seam over libusb: a claimed modem.
//
// Opening takes the device away from the kernel: for each interface the plan names, the kernel
// driver bound to it (huawei_cdc_ncm, cdc_mbim, cdc_wdm, option, ...) is detached and the
// interface claimed. Closing gives it back, in reverse: transfers cancelled and reaped, alternate
// settings put back to 0 (what the kernel driver expects to find when it binds; cdc_ncm itself
// leaves the data interface in alt 0 when unbound, NCM 1.0 §7.2), interfaces released, and the
// drivers that were detached reattached. The destructor does all of it, so every exit path that
// unwinds (a normal return, SIGINT/SIGTERM turned into a return by the signal handling of the
// program, an exception) gives the modem back; only SIGKILL does not, and then the kernel releases
// the interfaces itself (but does not rebind the driver: `wwan-dp` prints how, README).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "usb/discovery.hpp"
#include "usb/libusb_context.hpp"
#include "usb/transport.hpp"

struct libusb_transfer;

namespace wwan::usb {

struct ClaimPlan {
  // Select this configuration first if it is not the active one (some modems offer MBIM only in
  // a non-default configuration). Drivers bound in the old configuration are detached first.
  std::optional<std::uint8_t> configuration;
  std::vector<std::uint8_t> interfaces;  // claimed in this order
};

// What was done to one interface, so that it can be undone.
struct ClaimRecord {
  std::uint8_t interface_number = 0;
  std::optional<std::string> detached_driver;  // the kernel driver detached from it, if any
  bool alt_changed = false;                    // set_alt_setting() moved it off alt 0
};

class LibusbTransport final : public Transport {
 public:
  // nullptr and a one-line `error` (what failed, on which interface, what to do) when the device
  // cannot be opened or an interface not claimed; whatever was already claimed is given back.
  // `ctx` must outlive the transport.
  static std::unique_ptr<LibusbTransport> open(const Context& ctx, const DeviceInfo& device, const ClaimPlan& plan,
                                               std::string& error);
  ~LibusbTransport() override;
  LibusbTransport(const LibusbTransport&) = delete;
  LibusbTransport& operator=(const LibusbTransport&) = delete;

  ControlResult control(const ControlSetup& setup, std::span<std::uint8_t> data, unsigned timeout_ms) override;
  TransferStatus set_alt_setting(std::uint8_t interface_number, std::uint8_t alternate_setting) override;
  TransferStatus clear_halt(std::uint8_t endpoint) override;
  TransferStatus submit(Transfer& transfer) override;
  void cancel(Transfer& transfer) override;
  void handle_events(unsigned timeout_ms) override;
  void wake() override;
  bool device_gone() const override { return gone_.load(std::memory_order_acquire); }

  const std::vector<ClaimRecord>& claims() const { return claims_; }
  const DeviceInfo& device() const { return device_; }

  // Gives the device back now (what the destructor does); idempotent.
  void close();

 private:
  LibusbTransport(const Context& ctx, DeviceHandle handle, DeviceInfo device);
  static void on_libusb_complete(libusb_transfer* t);
  TransferStatus note(int libusb_error);

  libusb_context* ctx_;
  DeviceHandle handle_;
  DeviceInfo device_;
  std::vector<ClaimRecord> claims_;
  std::atomic<bool> gone_{false};
  bool closed_ = false;
  std::mutex mu_;  // guards transfers_ and in_flight_
  std::unordered_map<const Transfer*, libusb_transfer*> transfers_;  // one libusb_transfer per Transfer
  std::unordered_map<libusb_transfer*, Transfer*> in_flight_;
};

}  // namespace wwan::usb
