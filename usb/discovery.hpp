// USB discovery: which devices are present, where, in which configuration, with which
// descriptors and which kernel drivers. Plain data out; the pure parser (usb/descriptors.hpp)
// turns the descriptor bytes into meaning.
//
// Where each fact comes from:
//   - VID:PID, bus, address, port path, configurations: libusb (which reads sysfs "descriptors",
//     so enumeration opens no device and needs no permission).
//   - Configuration bytes: libusb_get_config_descriptor gives a parsed struct; it is written back
//     into the raw blob the parser expects. Alt settings come out grouped per interface, in
//     libusb's order. For real devices (alt settings of one interface consecutive on the wire)
//     that is the wire's bytes exactly (tests/usbfs checks it); libusb drops an alt setting that
//     is separated from its siblings by another interface, so such a device loses it here too.
//   - Kernel driver per interface: the sysfs link <sysfs>/bus/usb/devices/<port path>:<config>.<n>/driver
//     (no ioctl, no open). The sysfs root is a parameter: tests point it at an emulated tree.
//   - Product strings: sysfs "manufacturer" / "product" / "serial" (the kernel's copies). The
//     serial used to pick a device is read from the device itself when it can be opened
//     (read_serial), because that is the device wwan-dp is about to claim.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "usb/libusb_context.hpp"

namespace wwan::usb {

struct RawConfiguration {
  std::uint8_t value = 0;           // bConfigurationValue
  std::vector<std::uint8_t> bytes;  // 9-byte header + everything after it; wTotalLength == size()
};

struct InterfaceDriver {
  std::uint8_t interface_number = 0;  // of the active configuration
  std::optional<std::string> driver;  // kernel driver bound to it ("option", "cdc_mbim"), none = nullopt
};

struct DeviceInfo {
  std::uint16_t vendor_id = 0, product_id = 0;
  std::uint8_t bus = 0;      // libusb_get_bus_number
  std::uint8_t address = 0;  // libusb_get_device_address (the usbfs node /dev/bus/usb/BBB/AAA)
  // Linux's name for the port the device is plugged into, "1-1.2" (bus 1, root port 1, hub port 2);
  // "usb1" for the root hub of bus 1. It is also the device's sysfs directory name.
  std::string port_path;
  std::optional<std::uint8_t> active_configuration;  // nullopt: the device is unconfigured
  std::array<std::uint8_t, 18> device_descriptor{};  // bus-endian, as on the wire
  std::vector<RawConfiguration> configurations;       // every configuration, by index
  std::vector<InterfaceDriver> drivers;               // per interface of the active configuration
  std::optional<std::string> manufacturer, product, serial;  // sysfs copies, when present
  std::vector<std::string> problems;  // what could not be read (the rest of the entry is still valid)

  // The bytes of the active configuration, or nullptr (unconfigured, or unreadable).
  const RawConfiguration* active() const;
  // "12d1:1506 at 1-1.2"
  std::string describe() const;
};

struct DiscoveryOptions {
  std::string sysfs_root = "/sys";
};

// Every USB device present (hubs and root hubs included), by bus and port path. Devices whose
// descriptors cannot be read are still listed, with `problems` saying why. `error` is set only
// when libusb could not list the devices at all (then the result is empty).
std::vector<DeviceInfo> enumerate(const Context& ctx, std::string& error, const DiscoveryOptions& options = {});

// "1-1.2" from bus 1 and ports {1, 2}; "usb1" when there are no ports (a root hub).
std::string port_path(std::uint8_t bus, std::span<const std::uint8_t> ports);

// The kernel driver bound to interface `interface_number` of configuration `configuration`, from
// the sysfs link <sysfs_root>/bus/usb/devices/<port_path>:<configuration>.<interface_number>/driver.
std::optional<std::string> kernel_driver(const std::string& sysfs_root, const std::string& port_path,
                                         std::uint8_t configuration, std::uint8_t interface_number);

// The device's serial number, read from the device (control GET_DESCRIPTOR for iSerialNumber).
// When the device cannot be opened or does not answer, falls back to the sysfs copy; when neither
// is there, nullopt and `error` says why (e.g. no permission: run as root or add a udev rule).
std::optional<std::string> read_serial(const Context& ctx, const DeviceInfo& device, std::string& error);

// ---- picking one device: --dev VID:PID, optionally narrowed by port path or serial ----

struct VidPid {
  std::uint16_t vendor_id = 0, product_id = 0;
  bool operator==(const VidPid&) const = default;
};

// "12d1:1506" (hex, 1 to 4 digits each, an optional 0x prefix each). nullopt and a one-line
// `error` that shows the expected form for anything else.
std::optional<VidPid> parse_vid_pid(std::string_view text, std::string& error);

struct DeviceSelector {
  VidPid id;
  std::optional<std::string> port_path;  // "1-1.2"
  std::optional<std::string> serial;
};

// How select_device learns a candidate's serial (only called when the selector has one).
using SerialOf = std::function<std::optional<std::string>(const DeviceInfo&)>;

// The one device the selector names. Errors (one line each): none has that VID:PID; none at that
// path / with that serial (and where the VID:PID devices are); several match and nothing narrows
// them (the message lists them with their paths and how to pick one).
std::optional<DeviceInfo> select_device(std::span<const DeviceInfo> devices, const DeviceSelector& selector,
                                        const SerialOf& serial_of, std::string& error);

// enumerate + select_device with read_serial.
std::optional<DeviceInfo> find_device(const Context& ctx, const DeviceSelector& selector, std::string& error,
                                      const DiscoveryOptions& options = {});

}  // namespace wwan::usb
