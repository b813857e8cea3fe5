// `wwan-dp list [--json]`: every USB modem present, what each interface is, which kernel driver
// holds it, and whether wwan-dp can drive the modem. Devices that are not modems (keyboards,
// hubs, disks of other vendors) are not listed.
//
// --json prints one JSON array, one object per modem:
//   {"vid":"12d1","pid":"1506","bus_path":"1-1.2","configuration":1,"mode":"huawei-ncm","supported":true,
//    "interfaces":[{"number":1,"class":"ff","subclass":"03","protocol":"16","function":"huawei-ncm",
//                   "driver":"huawei_cdc_ncm"}, ...]}
// mode: ncm, huawei-ncm, mbim, rndis, qmi, mass-storage, qdl, serial-only. function: ncm, huawei-ncm,
// mbim, rndis, cdc-data, qmi, at, modem, diag, nmea, adb, qdl, mass-storage, other. Interfaces are
// those of the active configuration, with the class triple of alt setting 0; driver is null when
// no kernel driver is bound; configuration is null for an unconfigured device.
// A machine without USB (no /dev/bus/usb, libusb cannot start, no devices) lists nothing: exit 0.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "usb/descriptors.hpp"
#include "usb/discovery.hpp"

namespace wwan::cli {

struct ListedInterface {
  std::uint8_t number = 0;
  std::uint8_t interface_class = 0, interface_subclass = 0, interface_protocol = 0;  // alt setting 0
  usb::Function function = usb::Function::Other;
  std::optional<std::string> driver;
};

struct ListedModem {
  std::uint16_t vendor_id = 0, product_id = 0;
  std::string bus_path;
  std::optional<std::uint8_t> configuration;
  usb::ModemMode mode = usb::ModemMode::NotAModem;
  bool supported = false;
  std::vector<ListedInterface> interfaces;
  std::optional<std::string> product;  // the sysfs product string, for the table
};

// The modems among `devices` (the pure parser classifies each one's active configuration);
// everything classified NotAModem is left out. Order is kept.
std::vector<ListedModem> modems_of(std::span<const usb::DeviceInfo> devices);

void write_list_json(std::span<const ListedModem> modems, std::ostream& out);
void write_list_table(std::span<const ListedModem> modems, std::ostream& out);

// The `list` subcommand: args are what follows "list". Exit 0 whenever it could look (whatever it
// found, including no USB at all), 2 on a usage error.
int run_list(std::span<const std::string_view> args, std::ostream& out, std::ostream& err);

}  // namespace wwan::cli
