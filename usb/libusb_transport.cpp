#include "usb/libusb_transport.hpp"

#include <libusb.h>

#include <chrono>
#include <climits>
#include <cstdio>

namespace wwan::usb {
namespace {

TransferStatus from_libusb_status(libusb_transfer_status s) {
  switch (s) {
    case LIBUSB_TRANSFER_COMPLETED: return TransferStatus::completed;
    case LIBUSB_TRANSFER_STALL: return TransferStatus::stall;
    case LIBUSB_TRANSFER_TIMED_OUT: return TransferStatus::timeout;
    case LIBUSB_TRANSFER_CANCELLED: return TransferStatus::cancelled;
    case LIBUSB_TRANSFER_NO_DEVICE: return TransferStatus::no_device;
    case LIBUSB_TRANSFER_OVERFLOW: return TransferStatus::overflow;
    case LIBUSB_TRANSFER_ERROR: return TransferStatus::error;
  }
  return TransferStatus::error;
}

TransferStatus from_libusb_error(int e) {
  switch (e) {
    case LIBUSB_SUCCESS: return TransferStatus::completed;
    case LIBUSB_ERROR_PIPE: return TransferStatus::stall;
    case LIBUSB_ERROR_TIMEOUT: return TransferStatus::timeout;
    case LIBUSB_ERROR_NO_DEVICE: return TransferStatus::no_device;
    case LIBUSB_ERROR_OVERFLOW: return TransferStatus::overflow;
    case LIBUSB_ERROR_NOT_FOUND: return TransferStatus::stall;  // set_alt_setting: no such alt
    default: return TransferStatus::error;
  }
}

std::string claim_error_text(int e, const DeviceInfo& device, std::uint8_t interface_number, const char* step) {
  std::string s = "cannot " + std::string(step) + " interface " + std::to_string(interface_number) + " of " +
                  device.describe() + ": " + libusb_error_text(e);
  if (e == LIBUSB_ERROR_BUSY)
    s += "; another program holds it (ModemManager? another wwan-dp?): stop it, or `mmcli -L` to check";
  else if (e == LIBUSB_ERROR_ACCESS)
    s += "; run as root, or add a udev rule giving your user the device";
  else if (e == LIBUSB_ERROR_NO_DEVICE)
    s += "; it was unplugged or switched mode: run `wwan-dp list` again";
  return s;
}

}  // namespace

LibusbTransport::LibusbTransport(const Context& ctx, DeviceHandle handle, DeviceInfo device)
    : ctx_(ctx.get()), handle_(std::move(handle)), device_(std::move(device)) {}

std::unique_ptr<LibusbTransport> LibusbTransport::open(const Context& ctx, const DeviceInfo& device,
                                                       const ClaimPlan& plan, std::string& error) {
  // The libusb_device of this bus/address (the DeviceInfo came from an earlier enumeration).
  std::string list_error;
  const DeviceList list = DeviceList::take(ctx, list_error);
  libusb_device* dev = nullptr;
  for (libusb_device* d : list.devices())
    if (libusb_get_bus_number(d) == device.bus && libusb_get_device_address(d) == device.address) dev = d;
  if (dev == nullptr) {
    error = device.describe() + " is gone (unplugged or switched mode): run `wwan-dp list` again";
    return nullptr;
  }
  int e = 0;
  std::optional<DeviceHandle> handle = DeviceHandle::open(dev, e);
  if (!handle) {
    error = open_error_text(e, device.bus, device.address, device.describe());
    return nullptr;
  }
  std::unique_ptr<LibusbTransport> t(new LibusbTransport(ctx, std::move(*handle), device));
  libusb_device_handle* h = t->handle_.get();

  if (plan.configuration && device.active_configuration != plan.configuration) {
    // Every interface of the old configuration must be free before SET_CONFIGURATION (usbfs
    // refuses with EBUSY otherwise); those drivers are not reattached afterwards, because their
    // interfaces no longer exist in the new configuration.
    for (const InterfaceDriver& d : device.drivers)
      if (d.driver && libusb_kernel_driver_active(h, d.interface_number) == 1)
        libusb_detach_kernel_driver(h, d.interface_number);
    e = libusb_set_configuration(h, *plan.configuration);
    if (e != LIBUSB_SUCCESS) {
      error = "cannot select configuration " + std::to_string(*plan.configuration) + " of " + device.describe() +
              ": " + libusb_error_text(e);
      return nullptr;
    }
  }

  for (const std::uint8_t i : plan.interfaces) {
    ClaimRecord rec;
    rec.interface_number = i;
    const int active = libusb_kernel_driver_active(h, i);
    if (active == 1) {
      for (const InterfaceDriver& d : device.drivers)
        if (d.interface_number == i) rec.detached_driver = d.driver;
      if (!rec.detached_driver) rec.detached_driver = "kernel driver";
      e = libusb_detach_kernel_driver(h, i);
      if (e != LIBUSB_SUCCESS && e != LIBUSB_ERROR_NOT_FOUND) {
        error = claim_error_text(e, device, i, "detach the kernel driver from");
        return nullptr;  // the destructor gives back what was claimed so far
      }
      if (e == LIBUSB_ERROR_NOT_FOUND) rec.detached_driver.reset();
    }
    e = libusb_claim_interface(h, i);
    if (e != LIBUSB_SUCCESS) {
      if (rec.detached_driver) libusb_attach_kernel_driver(h, i);
      error = claim_error_text(e, device, i, "claim");
      return nullptr;
    }
    t->claims_.push_back(rec);
  }
  return t;
}

LibusbTransport::~LibusbTransport() { close(); }

void LibusbTransport::close() {
  if (closed_) return;
  closed_ = true;
  // 1. Nothing may be in flight when the interfaces are released: cancel and reap (bounded: a
  //    transfer that never comes back after cancel would be a kernel bug; give up after 2 s).
  {
    std::unique_lock lock(mu_);
    for (const auto& [lt, t] : in_flight_) libusb_cancel_transfer(lt);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  for (;;) {
    {
      const std::lock_guard lock(mu_);
      if (in_flight_.empty()) break;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      std::fprintf(stderr, "wwan-dp: %s: transfers did not end after cancel; leaving them\n", device_.describe().c_str());
      break;
    }
    timeval tv{0, 50'000};
    libusb_handle_events_timeout_completed(ctx_, &tv, nullptr);
  }
  // 2. Give every interface back, in reverse order of claiming.
  libusb_device_handle* h = handle_.get();
  for (auto it = claims_.rbegin(); it != claims_.rend(); ++it) {
    if (!gone_.load() && it->alt_changed) libusb_set_interface_alt_setting(h, it->interface_number, 0);
    libusb_release_interface(h, it->interface_number);
    if (!gone_.load() && it->detached_driver) {
      const int e = libusb_attach_kernel_driver(h, it->interface_number);
      if (e != LIBUSB_SUCCESS && e != LIBUSB_ERROR_NO_DEVICE)
        std::fprintf(stderr, "wwan-dp: could not give interface %u of %s back to %s (%s): unplug and replug it\n",
                     it->interface_number, device_.describe().c_str(), it->detached_driver->c_str(),
                     libusb_error_text(e).c_str());
    }
  }
  claims_.clear();
  {
    const std::lock_guard lock(mu_);
    if (in_flight_.empty()) {
      for (const auto& [t, lt] : transfers_) libusb_free_transfer(lt);
      transfers_.clear();
    }
  }
}

TransferStatus LibusbTransport::note(int libusb_error) {
  const TransferStatus s = from_libusb_error(libusb_error);
  if (s == TransferStatus::no_device) gone_.store(true, std::memory_order_release);
  return s;
}

ControlResult LibusbTransport::control(const ControlSetup& setup, std::span<std::uint8_t> data, unsigned timeout_ms) {
  if (data.size() > 0xffff) return {TransferStatus::error, 0};
  const int n = libusb_control_transfer(handle_.get(), setup.request_type, setup.request, setup.value, setup.index,
                                        data.data(), static_cast<std::uint16_t>(data.size()), timeout_ms);
  if (n < 0) return {note(n), 0};
  return {TransferStatus::completed, static_cast<std::size_t>(n)};
}

TransferStatus LibusbTransport::set_alt_setting(std::uint8_t interface_number, std::uint8_t alternate_setting) {
  const int e = libusb_set_interface_alt_setting(handle_.get(), interface_number, alternate_setting);
  if (e == LIBUSB_SUCCESS)
    for (ClaimRecord& c : claims_)
      if (c.interface_number == interface_number) c.alt_changed = alternate_setting != 0;
  return note(e);
}

TransferStatus LibusbTransport::clear_halt(std::uint8_t endpoint) { return note(libusb_clear_halt(handle_.get(), endpoint)); }

void LibusbTransport::on_libusb_complete(libusb_transfer* lt) {
  auto* self = static_cast<LibusbTransport*>(lt->user_data);
  Transfer* t = nullptr;
  {
    const std::lock_guard lock(self->mu_);
    const auto it = self->in_flight_.find(lt);
    if (it == self->in_flight_.end()) return;
    t = it->second;
    self->in_flight_.erase(it);
  }
  t->status = from_libusb_status(lt->status);
  t->actual_bytes = lt->actual_length > 0 ? static_cast<std::size_t>(lt->actual_length) : 0;
  if (t->status == TransferStatus::no_device) self->gone_.store(true, std::memory_order_release);
  if (t->on_complete != nullptr) t->on_complete(*t);
}

TransferStatus LibusbTransport::submit(Transfer& transfer) {
  if (transfer.length > transfer.buffer.size() || transfer.length > static_cast<std::size_t>(INT_MAX))
    return TransferStatus::error;
  if (gone_.load(std::memory_order_acquire)) return TransferStatus::no_device;
  libusb_transfer* lt = nullptr;
  {
    const std::lock_guard lock(mu_);
    libusb_transfer*& slot = transfers_[&transfer];
    if (slot == nullptr) slot = libusb_alloc_transfer(0);
    if (slot == nullptr) return TransferStatus::error;
    lt = slot;
    in_flight_[lt] = &transfer;
  }
  libusb_fill_bulk_transfer(lt, handle_.get(), transfer.endpoint, transfer.buffer.data(),
                            static_cast<int>(transfer.length), &LibusbTransport::on_libusb_complete, this,
                            transfer.timeout_ms);
  // Bulk and interrupt differ only in the URB type usbfs is given.
  if (transfer.interrupt) lt->type = LIBUSB_TRANSFER_TYPE_INTERRUPT;
  lt->flags = transfer.zero_length_packet ? LIBUSB_TRANSFER_ADD_ZERO_PACKET : 0;
  const int e = libusb_submit_transfer(lt);
  if (e == LIBUSB_SUCCESS) return TransferStatus::completed;
  {
    const std::lock_guard lock(mu_);
    in_flight_.erase(lt);
  }
  return note(e);
}

void LibusbTransport::cancel(Transfer& transfer) {
  const std::lock_guard lock(mu_);
  const auto it = transfers_.find(&transfer);
  if (it != transfers_.end() && in_flight_.count(it->second) != 0) libusb_cancel_transfer(it->second);
}

void LibusbTransport::handle_events(unsigned timeout_ms) {
  timeval tv{static_cast<time_t>(timeout_ms / 1000), static_cast<suseconds_t>((timeout_ms % 1000) * 1000)};
  const int e = libusb_handle_events_timeout_completed(ctx_, &tv, nullptr);
  if (e == LIBUSB_ERROR_NO_DEVICE) gone_.store(true, std::memory_order_release);
}

void LibusbTransport::wake() { libusb_interrupt_event_handler(ctx_); }

}  // namespace wwan::usb
