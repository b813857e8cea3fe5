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

#include "control/at_transport.hpp"
#include "control/modeswitch.hpp"
#include "usb/discovery.hpp"
#include "usb/libusb_transport.hpp"
#include "usb/network_function.hpp"
#include "usb/serial_port.hpp"

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
  // The serial AT interface, when open_modem was asked to claim it too (on the same transport).
  std::optional<usb::SerialAtPort> serial_at;
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
//
// `claim_serial_at`: also claim the configuration's serial AT interface (usb/serial_port.hpp) on
// the same handle (`--at-port serial`); a configuration without one is an error then.
std::optional<OpenedModem> open_modem(const usb::Context& ctx, const usb::DeviceSelector& selector, std::string& error,
                                      std::optional<std::uint8_t> forced_configuration = std::nullopt,
                                      bool claim_serial_at = false);

// ---- the serial AT port ------------------------------------------------------------------------

// A modem opened through its serial AT interface alone (that interface claimed, its `option`
// driver detached until the transport is destroyed): an FM350-GL, whose AT lives only there, or
// `wwan-dp at --at-port serial`.
struct OpenedSerialModem {
  usb::DeviceInfo device;
  usb::SerialAtPort port;
  std::unique_ptr<usb::LibusbTransport> transport;
};
std::optional<OpenedSerialModem> open_serial_modem(const usb::Context& ctx, const usb::DeviceSelector& selector,
                                                   std::string& error);

// The serial AT port open_modem claimed with the modem (claim_serial_at), on the same transport.
control::CommandTransportFactory claimed_serial_at_factory(OpenedModem& modem);

// Opens the serial AT port of `device` (configuration `configuration`) on a second handle of its
// own when called: the fallback's factory, so the ttyUSB stays with the kernel until it is needed.
control::CommandTransportFactory libusb_serial_at_factory(const usb::Context& ctx, const usb::DeviceInfo& device,
                                                          std::uint8_t configuration);

// The command transport of an AT session on `transport` (the function's control interface
// `control_interface`): the serial port from the start when `choice` is serial or the quirk table
// says so (`quirk_serial`); the encapsulated channel alone for encapsulated; else the encapsulated
// channel falling back to the serial port that `open_serial` opens. nullptr + `error` when the
// serial port is wanted from the start and cannot be opened.
std::unique_ptr<control::CommandTransport> make_at_command_transport(
    usb::Transport& transport, std::uint8_t control_interface, control::AtPortChoice choice, bool quirk_serial,
    const control::FallbackOptions& fallback, control::CommandTransportFactory open_serial, std::string& error);

}  // namespace wwan::cli
