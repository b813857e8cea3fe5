#include "tests/usbfs/profiles.hpp"

#include <stdexcept>

#include "sim/profiles.hpp"
#include "sim/zerocd_stick.hpp"

namespace wwan::usbfs_test {
namespace {

// CDC functional descriptors, raw (CDC 1.2 §5.2.3): bLength, CS_INTERFACE (0x24), subtype, ...
const Bytes kCdcHeader110 = {0x05, 0x24, 0x00, 0x10, 0x01};

}  // namespace

FakeDevice root_hub(unsigned bus, unsigned speed_mbps) {
  FakeDevice f;
  f.port_path = "usb" + std::to_string(bus);
  f.devnum = 1;
  f.speed_mbps = speed_mbps;
  const bool super = speed_mbps >= 5000;
  Bytes hub_endpoint = endpoint(0x81, kInterrupt, 4, 12);
  // SuperSpeed endpoint companion (USB 3.2 §9.6.7): libusb keeps it in the endpoint's extra bytes.
  if (super) hub_endpoint = concat({hub_endpoint, {0x06, 0x30, 0x00, 0x00, 0x02, 0x00}});
  f.descriptors = concat({
      device_descriptor(super ? 0x0300 : 0x0200, 0x09, 0x00, super ? 0x03 : 0x01, 0x1d6b, super ? 0x0003 : 0x0002,
                        0x0601, 3, 2, 1, 1),
      configuration(1, 0xe0, 0, {interface(0, 0, 1, 0x09, 0x00, 0x00), hub_endpoint}),
  });
  f.strings = {{1, "0000:00:14.0"}, {2, "xHCI Host Controller"}, {3, "Linux 6.1.0-28-amd64 xhci-hcd"}};
  f.drivers = {{0, "hub"}};
  f.usbfs = false;
  return f;
}

FakeDevice genesys_hub(const std::string& port_path, std::uint8_t devnum) {
  FakeDevice f;
  f.port_path = port_path;
  f.devnum = devnum;
  f.descriptors = concat({
      device_descriptor(0x0200, 0x09, 0x00, 0x01, 0x05e3, 0x0608, 0x6060, 0, 1, 0, 1),
      configuration(1, 0xe0, 0x32, {interface(0, 0, 1, 0x09, 0x00, 0x00), endpoint(0x81, kInterrupt, 1, 12)}),
  });
  f.strings = {{1, "USB2.0 Hub"}};
  f.drivers = {{0, "hub"}};
  f.usbfs = false;
  return f;
}

FakeDevice logitech_keyboard(const std::string& port_path, std::uint8_t devnum) {
  FakeDevice f;
  f.port_path = port_path;
  f.devnum = devnum;
  f.speed_mbps = 12;
  f.descriptors = concat({
      device_descriptor(0x0110, 0x00, 0x00, 0x00, 0x046d, 0xc31c, 0x6400, 1, 2, 0, 1),
      configuration(1, 0xa0, 0x32,
                    {interface(0, 0, 1, 0x03, 0x01, 0x01), {0x09, 0x21, 0x10, 0x01, 0x00, 0x01, 0x22, 0x41, 0x00},
                     endpoint(0x81, kInterrupt, 8, 10), interface(1, 0, 1, 0x03, 0x00, 0x00),
                     {0x09, 0x21, 0x10, 0x01, 0x00, 0x01, 0x22, 0xb1, 0x00}, endpoint(0x82, kInterrupt, 4, 255)}),
  });
  f.strings = {{1, "Logitech"}, {2, "USB Keyboard"}};
  f.drivers = {{0, "usbhid"}, {1, "usbhid"}};
  f.usbfs = false;
  return f;
}

// usb_descriptors.md D2 (12d1:1506, wTotalLength 225): the emulated modem owns the one copy of
// those bytes (sim/ncm_modem.cpp); the bench presents exactly what the modem model presents.
FakeDevice huawei_e3372_ncm(const std::string& port_path, std::uint8_t devnum, const std::string& serial) {
  sim::ModemOptions options;
  options.serial = serial;
  // The node serves the emulated modem itself: class requests, AT, bulk data, faults.
  FakeDevice f = from_model(port_path, devnum, std::shared_ptr<sim::Modem>(sim::make_huawei_e3372(options)));
  if (configuration_bytes(f, 1).size() != 225) throw std::logic_error("D2 says wTotalLength 225");
  return f;
}

// usb_descriptors.md D5/D6: MBIM-only composition on interfaces 12 (control) and 13 (data). The
// emulated modem owns the one copy of those bytes (sim/mbim_modem.cpp); the bench presents exactly
// what the modem model presents.
FakeDevice sierra_em7455_mbim(const std::string& port_path, std::uint8_t devnum) {
  sim::ModemOptions options;
  options.serial = "LQ62750110021011";
  return from_model(port_path, devnum, std::shared_ptr<sim::Modem>(sim::make_mbim_em7455(options)));
}

// usb_modeswitch_huawei.md: "Use interface number 0 with class 8, endpoints 0x01 (out) and 0x81 (in)";
// the second LUN interface is the SD card slot.
FakeDevice huawei_zerocd_1f01(const std::string& port_path, std::uint8_t devnum) {
  // The emulated stick's descriptors (sim/zerocd_stick.cpp), presented without its behaviour: this
  // bench device refuses the switch message (its node answers like a CD-ROM that ignores it).
  const sim::ZeroCdStick stick(0x1f01);
  FakeDevice f;
  f.port_path = port_path;
  f.devnum = devnum;
  f.descriptors = stick.identity().descriptors;
  f.strings = stick.identity().strings;
  f.drivers = stick.identity().kernel_drivers;
  return f;
}

// Qualcomm Sahara/Firehose download mode: one vendor interface with a bulk pair, no driver bound.
FakeDevice qualcomm_qdl_9008(const std::string& port_path, std::uint8_t devnum) {
  FakeDevice f;
  f.port_path = port_path;
  f.devnum = devnum;
  f.descriptors = concat({
      device_descriptor(0x0200, 0x00, 0x00, 0x00, 0x05c6, 0x9008, 0x0000, 1, 2, 0, 1),
      configuration(1, 0xa0, 0x01,
                    {interface(0, 0, 2, 0xff, 0xff, 0xff), endpoint(0x81, kBulk, 512, 0),
                     endpoint(0x01, kBulk, 512, 0)}),
  });
  f.strings = {{1, "Qualcomm CDMA Technologies MSM"}, {2, "QHSUSB__BULK"}};
  return f;
}

// usb_descriptors.md D2 (configuration 1, wTotalLength 32) and D3 (configuration 2, MBIM, 110).
FakeDevice huawei_1446_two_configs(const std::string& port_path, std::uint8_t devnum) {
  FakeDevice f;
  f.port_path = port_path;
  f.devnum = devnum;
  f.descriptors = concat({
      device_descriptor(0x0200, 0x00, 0x00, 0xff, 0x12d1, 0x1446, 0x0102, 1, 2, 0, 2),
      configuration(1, 0x80, 0xfa,
                    {interface(0, 0, 2, 0x08, 0x06, 0x50), endpoint(0x81, kBulk, 512, 0),
                     endpoint(0x01, kBulk, 512, 0)}),
      configuration(2, 0x80, 0xfa,
                    {
                        iad(0, 2, 0x02, 0x0e, 0x00),
                        interface(0, 0, 1, 0x02, 0x0e, 0x00, 5), kCdcHeader110,
                        {0x0c, 0x24, 0x1b, 0x00, 0x01, 0x00, 0x04, 0x10, 0x14, 0xdc, 0x05, 0x20},
                        {0x05, 0x24, 0x06, 0x00, 0x01}, endpoint(0x82, kInterrupt, 16, 9),
                        interface(1, 0, 0, 0x0a, 0x00, 0x02),
                        interface(1, 1, 2, 0x0a, 0x00, 0x02), endpoint(0x81, kBulk, 512, 0),
                        endpoint(0x01, kBulk, 512, 0),
                        interface(2, 0, 2, 0x08, 0x06, 0x50), endpoint(0x83, kBulk, 512, 0),
                        endpoint(0x02, kBulk, 512, 0),
                    }),
  });
  if (configuration_bytes(f, 1).size() != 32 || configuration_bytes(f, 2).size() != 110)
    throw std::logic_error("D2/D3 say wTotalLength 32 and 110");
  f.strings = {{1, "HUAWEI"}, {2, "HUAWEI Mobile"}};
  f.drivers = {{0, "usb-storage"}};
  return f;
}

Bytes configuration_bytes(const FakeDevice& fake, std::uint8_t value) {
  const Bytes& d = fake.descriptors;
  for (std::size_t at = 18; at + 9 <= d.size();) {
    const std::size_t total = static_cast<std::size_t>(d[at + 2] | d[at + 3] << 8);
    if (total < 9) break;
    if (d[at + 5] == value)
      return Bytes(d.begin() + static_cast<std::ptrdiff_t>(at), d.begin() + static_cast<std::ptrdiff_t>(at + total));
    at += total;
  }
  throw std::invalid_argument(fake.port_path + " has no configuration " + std::to_string(value));
}

// A conformant CDC NCM function (sim/ncm_modem.cpp generic-ncm, 0525:a4a1 as Linux's NCM gadget
// enumerates), served by the modem model.
FakeDevice generic_ncm(const std::string& port_path, std::uint8_t devnum) {
  return from_model(port_path, devnum, std::shared_ptr<sim::Modem>(sim::make_generic_ncm({})));
}

std::vector<FakeDevice> standard_bench() {
  FakeDevice e3372_b = huawei_e3372_ncm("2-3", 3, "E3372-B");
  e3372_b.usbfs = false;                // its serial can only come from sysfs
  e3372_b.drivers.erase(1);             // huawei_cdc_ncm not bound (e.g. unloaded): null in the list
  return {
      root_hub(1, 480),
      genesys_hub("1-1", 2),
      logitech_keyboard("1-1.1", 3),
      huawei_e3372_ncm("1-1.2", 4, "E3372-A"),
      sierra_em7455_mbim("1-1.4", 5),
      huawei_zerocd_1f01("1-2", 6),
      generic_ncm("1-1.3", 8),
      root_hub(2, 5000),
      qualcomm_qdl_9008("2-1", 2),
      e3372_b,
      huawei_1446_two_configs("2-4", 4),
  };
}

}  // namespace wwan::usbfs_test
