// The USB face of a Fibocom FM350-GL in its two USB modes (../shared/reference/vectors/
// usb_descriptors.md D1, from the usb-devices output in Bjørn Mork's 2024 option-driver patch):
//
//   mode 40  0e8d:7126  RNDIS + AT + AP(GNSS) + META + DEBUG + NPT + ADB                  8 interfaces
//   mode 41  0e8d:7127  ... + AP(LOG) + AP(META)  (the default)                           10 interfaces
//
//   IAD 0..1 e0/01/03 ("RNDIS for tethering", the class triple rndis_host also matches)
//   if 0  02/02/ff RNDIS control: interrupt IN 0x82, 64 bytes, 125 us (bInterval 1 at high speed)
//   if 1  0a/00/00 RNDIS data: bulk IN 0x81 + bulk OUT 0x01, 512 bytes
//   if 2.. ff/00/00 vendor serial pairs (bulk IN 0x81+n, OUT n), ADB ff/42/01 at 3 (mode 40) or
//         5 (mode 41); the AT port is interface 6 in both (4IceG/luci-app-3ginfo-lite#122,
//         mrhaav/openwrt: the quirk row in usb/descriptors.cpp)
//   device: bcdUSB 2.10, class ef/02/01 (IAD device), one configuration, bmAttributes 0xa0,
//   500 mA, "Fibocom Wireless Inc." / "FM350-GL".
//
// Not in the source, so INFERENCE (each marked where it is built): the CDC functional descriptors
// of interface 0 (usb-devices prints none) are those of Linux's f_rndis gadget function, which
// MediaTek's Android-kernel USB stack uses: Header 1.10, Call Management (bmCapabilities 0, data
// interface 1), ACM (bmCapabilities 0), Union 0 -> 1; bcdDevice (not printed) is 0x0001.
// The classifier (usb/descriptors.hpp) calls interface 0 `rndis`, 1 `cdc-data`, 6 `at`, and the
// device mode `rndis`, with or without those functional descriptors (tests/usb covers both).
#pragma once

#include <cstdint>
#include <string>

#include "sim/device_model.hpp"

namespace wwan::sim::fm350 {

inline constexpr std::uint16_t kVendorId = 0x0E8D;         // MediaTek
inline constexpr std::uint16_t kProductIdMode40 = 0x7126;  // AT+GTUSBMODE=40
inline constexpr std::uint16_t kProductIdMode41 = 0x7127;  // AT+GTUSBMODE=41 (default)
inline constexpr std::uint8_t kRndisControlInterface = 0;
inline constexpr std::uint8_t kRndisDataInterface = 1;
inline constexpr std::uint8_t kNotificationEndpoint = 0x82;
inline constexpr std::uint16_t kNotificationMaxPacketSize = 64;
inline constexpr std::uint8_t kBulkInEndpoint = 0x81;
inline constexpr std::uint8_t kBulkOutEndpoint = 0x01;
inline constexpr std::uint16_t kBulkMaxPacketSize = 512;
inline constexpr std::uint8_t kAtInterface = 6;
// The AT port's bulk pair: interface n uses IN 0x81 + n and OUT n (D1's tables).
inline constexpr std::uint8_t kAtBulkInEndpoint = 0x87;
inline constexpr std::uint8_t kAtBulkOutEndpoint = 0x06;

enum class UsbMode : std::uint8_t { Mode40, Mode41 };

// Device descriptor + configuration 1, strings, kernel drivers (rndis_host on 0/1, option on the
// vendor serial ports it lists in D1, none on ADB), 480 Mbit/s.
DeviceIdentity identity(UsbMode mode, const std::string& serial);

}  // namespace wwan::sim::fm350
