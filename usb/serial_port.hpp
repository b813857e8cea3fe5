// The modem's serial AT interface: a vendor-class (or CDC ACM) interface whose bulk IN/OUT pair
// carries AT command lines as a plain byte stream — what the kernel's `option` driver turns into a
// ttyUSB. Pure: a classified Configuration in (usb/descriptors.hpp), one plain struct out.
//
// Which interface speaks AT is not in any class code: the vendor rules of usb/descriptors.cpp
// (its kPortRules table) mark it Function::At, each with its evidence:
//   Huawei, every product: the interface protocol byte is the ^SETPORT function code, 02 = 3G
//     PCUI, 12 = 4G PCUI (ModemManager 77-mm-huawei-net-port-types.rules: ff/01|02/02 ->
//     AT_PRIMARY). E3372h-153 12d1:1506: AT^SETPORT? "A1,A2;12,1,16,A1,A2" = if0 PCUI (0x12),
//     if1 3G modem (0x01), if2 NCM (0x16), and the AT port is ttyUSB0 = if0 (gist aliicex;
//     E3372h-607 dmesg: option on 1.0 and 1.1, huawei_cdc_ncm on 1.2). The E3531s-class 12d1:1506
//     of usb_descriptors.md D2 has its PCUI at if3, ff/03/02.
//   Fibocom FM350-GL 0e8d:7126 / 0e8d:7127: interface 6 (D1; luci-app-3ginfo-lite#122, mrhaav).
//   CDC ACM 02/02/01..06 (V.250 / 3GPP 27.007 command sets).
// When no interface is marked At, a Function::Modem port (Huawei 01/10: the PPP port, which also
// takes AT commands; ModemManager flags it AT_PPP) is the second choice.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "usb/descriptors.hpp"

namespace wwan::usb {

struct SerialAtPort {
  std::uint8_t interface_number = 0;
  std::uint8_t alt_setting = 0;           // the alt setting with the bulk pair (0 on every known device)
  Function function = Function::At;       // At, or Modem when no At port exists
  std::uint8_t interface_class = 0, interface_subclass = 0, interface_protocol = 0;
  Endpoint bulk_in, bulk_out;

  // "interface 3 (ff/03/02, bulk 0x87/0x05)"
  std::string describe() const;
};

// The serial AT port of a configuration, or nullopt and a one-line `error` naming what is missing.
std::optional<SerialAtPort> find_serial_at_port(const Configuration& configuration, std::string& error);

}  // namespace wwan::usb
