// An emulated USB bus for REAL libusb: umockdev (UMockdevTestbed) provides the sysfs tree and the
// /dev/bus/usb nodes, and an ioctl handler per node plays the kernel's usbfs. Nothing of libusb
// is mocked: libusb enumerates through libudev over the emulated sysfs, reads the raw
// "descriptors" attribute, opens /dev/bus/usb/BBB/DDD and submits and reaps URBs exactly as on a
// real machine.
//
// The process must run with libumockdev-preload (umockdev-wrapper), which redirects /sys and /dev
// to the testbed and forwards ioctls on the emulated nodes to the handlers below. Children
// spawned from the process (the real `wwan-dp` binary) inherit the redirection, and their ioctls
// are served by the same handlers, in this process.
//
// Behind each node is a device model (sim/device_model.hpp): an emulated modem, or for devices
// that are only listed (hubs, keyboards) a model that knows its descriptors and nothing else. The
// handler is the kernel's side of usbfs (drivers/usb/core/devio.c) as far as libusb uses it:
//   GET_CAPABILITIES, CONNECTINFO, GET_SPEED, CONTROL; SUBMITURB / REAPURB(NDELAY) / DISCARDURB
//   for control, bulk and interrupt URBs (bulk and interrupt through sim::HostPort, which queues
//   them per endpoint, halts a queue at a STALL and retries NAKed INs after every event);
//   CLAIMINTERFACE / RELEASEINTERFACE (EBUSY while a kernel driver is bound), GETDRIVER ("usbfs"
//   for a claimed interface), IOCTL(DISCONNECT / CONNECT) = detach / reattach a kernel driver,
//   DISCONNECT_CLAIM, SETINTERFACE, SETCONFIGURATION, CLEAR_HALT, RESET.
// Polling: umockdev makes the node a plain file, which poll() always reports ready, so libusb's
// event loop would spin. The node is replaced by a FIFO of one page that the handler keeps full
// while nothing is reapable (no POLLOUT: libusb sleeps) and empties when a URB completes
// (POLLOUT: libusb reaps) — the trick of reference/rigs/umockdev/fakeusb.c.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sim/descriptor_builder.hpp"
#include "sim/device_model.hpp"

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
  // The device behind the node. nullptr: a model of the descriptors above and nothing else.
  std::shared_ptr<sim::DeviceModel> model;
};

// A FakeDevice whose descriptors, strings, drivers and speed come from the model's identity.
FakeDevice from_model(const std::string& port_path, std::uint8_t devnum, std::shared_ptr<sim::DeviceModel> model);

// What one device's handler saw (read from the test thread while the handler thread runs).
struct UsbfsStats {
  unsigned ioctls = 0;
  unsigned unhandled = 0;          // ioctls answered ENOTTY because this harness does not know them
  unsigned control_requests = 0;   // synchronous CONTROL + control URBs
  std::vector<std::uint8_t> string_indexes;  // GET_DESCRIPTOR(STRING) indexes, in order
  // Kernel driver state, as devio.c would leave it.
  std::map<std::uint8_t, std::string> drivers;  // interface -> driver bound now ("usbfs" = claimed)
  std::vector<std::string> driver_events;       // "detach 1 huawei_cdc_ncm", "claim 1", "release 1", "attach 1 huawei_cdc_ncm"
  std::map<std::uint8_t, std::uint8_t> alt_settings;  // interface -> alt setting last selected
  unsigned urbs_submitted = 0;   // bulk + interrupt
  unsigned urbs_reaped = 0;      // bulk + interrupt
  unsigned urbs_discarded = 0;
  unsigned max_urbs_queued = 0;  // most bulk/interrupt URBs queued at once
  unsigned clear_halts = 0;
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

  // Runs `fn` on the device's model under its handler's lock, then lets queued URBs retry (a
  // fault switched on, a counter read, traffic injected).
  void with_model(const std::string& port_path, const std::function<void(sim::DeviceModel&)>& fn);

  // The device leaves the bus: queued URBs complete with ENODEV, later ioctls fail with ENODEV,
  // and a "remove" uevent is sent (libusb's hotplug sees DEVICE_LEFT).
  void unplug(const std::string& port_path);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace wwan::usbfs_test
