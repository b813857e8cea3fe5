#include "usb/hotplug.hpp"

#include <libusb.h>

#include <memory>

namespace wwan::usb {

struct HotplugWatch::State {
  libusb_context* ctx = nullptr;
  libusb_hotplug_callback_handle handle = 0;
  bool registered = false;
  Callback callback;

  static int LIBUSB_CALL on_event(libusb_context*, libusb_device* device, libusb_hotplug_event event, void* user) {
    auto* self = static_cast<State*>(user);
    HotplugNotice n;
    n.event = event == LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED ? HotplugEvent::arrived : HotplugEvent::left;
    libusb_device_descriptor d{};
    if (libusb_get_device_descriptor(device, &d) == LIBUSB_SUCCESS) n.id = {d.idVendor, d.idProduct};
    n.bus = libusb_get_bus_number(device);
    n.address = libusb_get_device_address(device);
    self->callback(n);
    return 0;  // stay registered
  }
};

std::optional<HotplugWatch> HotplugWatch::start(const Context& ctx, std::optional<VidPid> id, Callback callback,
                                                std::string& error) {
  if (libusb_has_capability(LIBUSB_CAP_HAS_HOTPLUG) == 0) {
    error = "this libusb has no hotplug support; wwan-dp polls for the modem instead";
    return std::nullopt;
  }
  auto state = std::make_unique<State>();
  state->ctx = ctx.get();
  state->callback = std::move(callback);
  const int e = libusb_hotplug_register_callback(
      ctx.get(),
      static_cast<libusb_hotplug_event>(LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED | LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT),
      LIBUSB_HOTPLUG_NO_FLAGS, id ? id->vendor_id : LIBUSB_HOTPLUG_MATCH_ANY,
      id ? id->product_id : LIBUSB_HOTPLUG_MATCH_ANY, LIBUSB_HOTPLUG_MATCH_ANY, &State::on_event, state.get(),
      &state->handle);
  if (e != LIBUSB_SUCCESS) {
    error = "cannot watch for USB hotplug: " + libusb_error_text(e);
    return std::nullopt;
  }
  state->registered = true;
  return HotplugWatch(std::move(state));
}

HotplugWatch::HotplugWatch(std::unique_ptr<State> state) : state_(std::move(state)) {}
HotplugWatch::HotplugWatch(HotplugWatch&& other) noexcept : state_(std::move(other.state_)) {}

HotplugWatch::~HotplugWatch() {
  if (state_ && state_->registered) libusb_hotplug_deregister_callback(state_->ctx, state_->handle);
}

void HotplugWatch::handle_events(unsigned timeout_ms) {
  timeval tv{static_cast<time_t>(timeout_ms / 1000), static_cast<suseconds_t>((timeout_ms % 1000) * 1000)};
  libusb_handle_events_timeout_completed(state_->ctx, &tv, nullptr);
}

}  // namespace wwan::usb
