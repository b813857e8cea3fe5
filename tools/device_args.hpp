// What every command that drives a modem shares: the --dev VID:PID [--path BUS-PORT]
// [--serial SERIAL] arguments, and opening the modem they name (find it, pick its network
// function, detach the kernel drivers and claim the interfaces).
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "usb/discovery.hpp"
#include "usb/libusb_transport.hpp"
#include "usb/network_function.hpp"

namespace wwan::cli {

struct DeviceArgs {
  std::optional<usb::DeviceSelector> selector;

  // If args[i] is --dev / --path / --serial, consumes it and its value and returns how many
  // arguments it used (2); 0 if args[i] is something else; -1 and `error` for a bad value.
  int take(std::span<const std::string_view> args, std::size_t i, std::string& error);
};

struct OpenedModem {
  usb::DeviceInfo device;
  usb::NetworkFunction function;
  std::unique_ptr<usb::LibusbTransport> transport;  // claimed; destroying it gives the modem back
};

// nullopt and one line in `error` (not present, several match, no network function in the active
// configuration, mode-switch needed, permission, busy).
std::optional<OpenedModem> open_modem(const usb::Context& ctx, const usb::DeviceSelector& selector, std::string& error);

}  // namespace wwan::cli
