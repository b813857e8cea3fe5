// What every command that drives a modem shares: the --dev VID:PID[@BUS-PORT] [--path BUS-PORT]
// [--serial SERIAL] arguments, and opening the modem they name (find it, pick its network
// function, detach the kernel drivers and claim the interfaces).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "control/modeswitch.hpp"
#include "usb/discovery.hpp"
#include "usb/libusb_transport.hpp"
#include "usb/network_function.hpp"

namespace wwan::cli {

struct DeviceArgs {
  std::optional<usb::DeviceSelector> selector;
  std::optional<std::uint8_t> configuration;  // --configuration N: use this bConfigurationValue

  // If args[i] is --dev / --path / --serial / --configuration, consumes it and its value and returns how many
  // arguments it used (2); 0 if args[i] is something else; -1 and `error` for a bad value.
  int take(std::span<const std::string_view> args, std::size_t i, std::string& error);
};

struct OpenedModem {
  usb::DeviceInfo device;
  std::uint8_t configuration = 0;  // the configuration the function is in (selected if it was not active)
  usb::NetworkFunction function;
  std::unique_ptr<usb::LibusbTransport> transport;  // claimed; destroying it gives the modem back
};

// Switches a stick in mass-storage mode (a ZeroCD Huawei) to its modem composition with the
// modeswitch table's message and waits up to `wait` for it to re-enumerate at the same port under
// one of the row's target ids. The new device, or nullopt and one line in `error`.
std::optional<usb::DeviceInfo> switch_mode(const usb::Context& ctx, const usb::DeviceInfo& stick,
                                           const control::ModeswitchRow& row, std::string& error,
                                           std::chrono::milliseconds wait = std::chrono::seconds(20));

// nullopt and one line in `error` (not present, several match, no network function in any
// configuration, mode-switch failed, permission, busy). A stick in mass-storage mode that the
// modeswitch table knows is switched first (switch_mode) and the modem it becomes is opened.
//
// The configuration: `forced` if given; else the active one if it has a network function; else
// the first other configuration that has one (Huawei 12d1:1446 offers MBIM only in configuration
// 2 while configuration 1, the default, is a CD-ROM: vectors/usb_descriptors.md D2/D3). Switching
// detaches every driver of the old configuration; the modem stays in the new one after exit.
std::optional<OpenedModem> open_modem(const usb::Context& ctx, const usb::DeviceSelector& selector, std::string& error,
                                      std::optional<std::uint8_t> forced_configuration = std::nullopt);

}  // namespace wwan::cli
