// The emulated modem as a USB device: what a host can do to a device, and nothing more.
//
// A DeviceModel is passive. Front ends drive it:
//   - the in-process Transport (sim/inprocess_transport.hpp): the fastest, for --sim and benchmarks;
//   - the usbfs emulation (tests/usbfs): unmodified libusb talks to it through umockdev;
//   - later a USB/IP server, so a real kernel in a VM sees it (reference/rigs/vm).
// Each front end serialises its calls into the model (one caller at a time, any thread), and
// after every call it retries its pending IN requests, because any call may have produced IN data
// (a bulk OUT echo request yields an echo reply; an AT command yields RESPONSE_AVAILABLE on the
// interrupt endpoint). Time-driven data (a traffic source at a set rate, a slow control answer)
// is announced by next_deadline(): the front end calls in() again once that time has passed.
//
// Standard requests are split: the front end answers GET_DESCRIPTOR / GET_CONFIGURATION /
// GET_STATUS from descriptors(); SET_CONFIGURATION, SET_INTERFACE and CLEAR_FEATURE(ENDPOINT_HALT)
// are state changes of the device and arrive through the dedicated calls; every class and vendor
// request goes to control().
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace wwan::sim {

// The 8-byte SETUP packet (USB 2.0 §9.3), host byte order.
struct SetupPacket {
  std::uint8_t request_type = 0;  // bmRequestType
  std::uint8_t request = 0;       // bRequest
  std::uint16_t value = 0;        // wValue
  std::uint16_t index = 0;        // wIndex
  std::uint16_t length = 0;       // wLength
};

// How the device answers one transaction on a bulk or interrupt endpoint.
enum class EndpointResult : std::uint8_t {
  ok,     // data moved (IN: `bytes` filled; OUT: the whole transfer taken)
  nak,    // IN: nothing to send now; the host keeps the request pending
  stall,  // the endpoint is halted until CLEAR_FEATURE(ENDPOINT_HALT)
  gone,   // the device has left the bus (unplug fault); every later call answers gone
};

struct InResult {
  EndpointResult result = EndpointResult::nak;
  std::size_t bytes = 0;  // bytes written to the buffer when result == ok (0 = a zero-length packet)
};

// What the front end needs to present the device on a bus (sysfs for umockdev, the device list
// for the in-process transport).
struct DeviceIdentity {
  std::vector<std::uint8_t> descriptors;         // device descriptor + every configuration, in order
  std::map<std::uint8_t, std::string> strings;   // string descriptor index -> ASCII text
  std::uint8_t active_configuration = 1;         // bConfigurationValue at plug-in
  // interface number (active configuration) -> the Linux driver that binds it at plug-in, as seen on
  // real machines (e.g. huawei_cdc_ncm, option, usb-storage). Front ends model detach / reattach.
  std::map<std::uint8_t, std::string> kernel_drivers;
  unsigned speed_mbps = 480;
};

class DeviceModel {
 public:
  virtual ~DeviceModel() = default;

  virtual const DeviceIdentity& identity() const = 0;

  // USB 2.0 §9.4.7 / §9.4.10 / §9.4.1. false = STALL (no such configuration / alternate setting).
  virtual bool set_configuration(std::uint8_t configuration_value) = 0;
  virtual bool set_interface(std::uint8_t interface_number, std::uint8_t alternate_setting) = 0;
  virtual bool clear_halt(std::uint8_t endpoint_address) = 0;

  // A class or vendor request. For device-to-host requests the reply is written to `data`
  // (data.size() == wLength) and its length returned; for host-to-device requests `data` is the
  // data stage and the return value is 0. nullopt = the request is STALLed.
  virtual std::optional<std::size_t> control(const SetupPacket& setup, std::span<std::uint8_t> data) = 0;

  // One host-to-device transfer on a bulk or interrupt OUT endpoint.
  virtual EndpointResult out(std::uint8_t endpoint_address, std::span<const std::uint8_t> data) = 0;

  // One device-to-host transfer on a bulk or interrupt IN endpoint: up to buffer.size() bytes.
  virtual InResult in(std::uint8_t endpoint_address, std::span<std::uint8_t> buffer) = 0;

  // When time alone will make in() answer something other than nak (a rate-limited traffic
  // source, a deliberately slow control answer). nullopt = only a call into the model can.
  virtual std::optional<std::chrono::steady_clock::time_point> next_deadline() const { return std::nullopt; }

  // False once the device has left the bus (the unplug fault); front ends then report it gone.
  virtual bool connected() const { return true; }
};

}  // namespace wwan::sim
