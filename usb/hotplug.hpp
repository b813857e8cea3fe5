// Hotplug: a modem arriving on the bus or leaving it (unplugged, reset by its firmware, switched
// from mass storage into modem mode by usb_modeswitch, which re-enumerates it under a new PID).
// libusb learns of it from the kernel's uevents (udev or netlink); events are delivered inside
// the context's event handling, i.e. on the thread that calls handle_events().
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "usb/discovery.hpp"
#include "usb/libusb_context.hpp"

namespace wwan::usb {

enum class HotplugEvent : std::uint8_t { arrived, left };

struct HotplugNotice {
  HotplugEvent event = HotplugEvent::arrived;
  VidPid id;
  std::uint8_t bus = 0;
  std::uint8_t address = 0;
};

class HotplugWatch {
 public:
  using Callback = std::function<void(const HotplugNotice&)>;

  // Watches devices with this VID:PID (nullopt = every device). nullopt and `error` when this
  // libusb or platform has no hotplug support (then poll with enumerate()).
  static std::optional<HotplugWatch> start(const Context& ctx, std::optional<VidPid> id, Callback callback,
                                           std::string& error);
  HotplugWatch(HotplugWatch&& other) noexcept;
  HotplugWatch& operator=(HotplugWatch&&) = delete;
  HotplugWatch(const HotplugWatch&) = delete;
  HotplugWatch& operator=(const HotplugWatch&) = delete;
  ~HotplugWatch();

  // Delivers pending hotplug events (and any other libusb events of the context), waiting up to
  // timeout_ms.
  void handle_events(unsigned timeout_ms);

 private:
  struct State;
  explicit HotplugWatch(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace wwan::usb
