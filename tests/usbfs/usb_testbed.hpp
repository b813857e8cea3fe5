// An emulated USB bus for REAL libusb: umockdev (UMockdevTestbed) provides the sysfs tree and the
// /dev/bus/usb nodes, and an ioctl handler per node answers the usbfs ioctls libusb issues. Nothing
// of libusb is mocked: libusb enumerates through libudev over the emulated sysfs, reads the raw
// "descriptors" attribute, and opens /dev/bus/usb/BBB/DDD exactly as on a real machine.
//
// The process must run with libumockdev-preload (umockdev-wrapper), which redirects /sys and /dev
// to the testbed and forwards ioctls on the emulated nodes to the handlers below. Children
// spawned from the process (the real `wwan-dp` binary) inherit the redirection, and their ioctls
// are served by the same handlers, in this process.
//
// What the handler answers (everything else fails with ENOTTY and is counted as unhandled):
//   GET_CAPABILITIES, CONNECTINFO, GET_SPEED; CONTROL (synchronous) and SUBMITURB/REAPURB(NDELAY)/
//   DISCARDURB for control transfers: GET_DESCRIPTOR (device, configuration, string),
//   GET_CONFIGURATION, GET_STATUS; GETDRIVER (the kernel driver names configured per interface).
// Control URBs complete at submit time, so libusb's poll() on the node (a plain file, always
// ready) never spins waiting for one. Bulk/interrupt URBs are out of scope and refused.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sim/descriptor_builder.hpp"

namespace wwan::usbfs_test {

using Bytes = std::vector<std::uint8_t>;

// Descriptor builders: the emulated modems' (sim/descriptor_builder.hpp), used here for the
// devices that are not modems (hubs, keyboards).
using sim::device_descriptor;
using sim::interface;
using sim::endpoint;
using sim::iad;
using sim::configuration;
using sim::concat;
using sim::kBulk;
using sim::kInterrupt;

// One emulated device.
struct FakeDevice {
  std::string port_path;  // sysfs name: "usb1" (root hub of bus 1), "1-1", "1-1.2"; parent added first
  std::uint8_t devnum = 0;
  Bytes descriptors;      // sysfs "descriptors": device descriptor + every configuration, in order
  std::uint8_t active_configuration = 1;
  std::map<std::uint8_t, std::string> strings;  // string descriptor index -> text (sysfs copies too)
  std::map<std::uint8_t, std::string> drivers;  // interface number (active configuration) -> driver
  unsigned speed_mbps = 480;
  bool usbfs = true;  // attach an ioctl handler to its node (false: the node is a dead plain file)
};

// What one device's handler saw (read from the test thread while the handler thread runs).
struct UsbfsStats {
  unsigned ioctls = 0;
  unsigned unhandled = 0;          // ioctls answered ENOTTY because this harness does not know them
  unsigned control_requests = 0;   // synchronous CONTROL + control URBs
  std::vector<std::uint8_t> string_indexes;  // GET_DESCRIPTOR(STRING) indexes, in order
};

class UsbTestbed {
 public:
  // Creates the umockdev testbed (sets $UMOCKDEV_DIR for this process and its children).
  UsbTestbed();
  ~UsbTestbed();
  UsbTestbed(const UsbTestbed&) = delete;
  UsbTestbed& operator=(const UsbTestbed&) = delete;

  // True when libumockdev-preload is loaded (the process runs under umockdev-wrapper).
  static bool preloaded();

  // Adds the device: sysfs directory (attributes, "descriptors", strings), one sysfs interface
  // per interface of the active configuration with its "driver" link, the /dev/bus/usb node and,
  // if fake.usbfs, the ioctl handler.
  void add(const FakeDevice& fake);

  std::string sys_dir() const;   // the emulated /sys
  UsbfsStats stats(const std::string& port_path) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace wwan::usbfs_test
