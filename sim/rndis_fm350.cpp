#include "sim/rndis_fm350.hpp"

#include <vector>

#include "sim/descriptor_builder.hpp"

namespace wwan::sim::fm350 {

DeviceIdentity identity(UsbMode mode, const std::string& serial) {
  const bool mode41 = mode == UsbMode::Mode41;
  // INFERENCE (see the header): Linux f_rndis's functional descriptors.
  const ByteVector cdc_header{0x05, 0x24, 0x00, 0x10, 0x01};                    // Header, bcdCDC 1.10
  const ByteVector call_management{0x05, 0x24, 0x01, 0x00, kRndisDataInterface};  // bmCapabilities 0
  const ByteVector acm{0x04, 0x24, 0x02, 0x00};                                 // bmCapabilities 0
  const ByteVector union_fd{0x05, 0x24, 0x06, kRndisControlInterface, kRndisDataInterface};

  std::vector<ByteVector> parts = {
      iad(kRndisControlInterface, 2, 0xE0, 0x01, 0x03),
      interface(kRndisControlInterface, 0, 1, 0x02, 0x02, 0xFF),
      cdc_header,
      call_management,
      acm,
      union_fd,
      endpoint(kNotificationEndpoint, kInterrupt, kNotificationMaxPacketSize, 1),  // 125 us at high speed
      interface(kRndisDataInterface, 0, 2, 0x0A, 0x00, 0x00),
      endpoint(kBulkInEndpoint, kBulk, kBulkMaxPacketSize, 0),
      endpoint(kBulkOutEndpoint, kBulk, kBulkMaxPacketSize, 0),
  };
  const std::uint8_t count = mode41 ? 10 : 8;
  const std::uint8_t adb = mode41 ? 5 : 3;
  DeviceIdentity id;
  id.kernel_drivers = {{kRndisControlInterface, "rndis_host"}, {kRndisDataInterface, "rndis_host"}};
  for (std::uint8_t n = 2; n < count; ++n) {
    const bool is_adb = n == adb;
    parts.push_back(interface(n, 0, 2, 0xFF, is_adb ? 0x42 : 0x00, is_adb ? 0x01 : 0x00));
    parts.push_back(endpoint(static_cast<std::uint8_t>(0x81 + n), kBulk, kBulkMaxPacketSize, 0));
    parts.push_back(endpoint(n, kBulk, kBulkMaxPacketSize, 0));
    if (!is_adb) id.kernel_drivers[n] = "option";  // D1: "option" on every ff/00/00 port, none on ADB
  }
  id.descriptors = concat({
      device_descriptor(0x0210, 0xEF, 0x02, 0x01, kVendorId, mode41 ? kProductIdMode41 : kProductIdMode40,
                        0x0001 /* INFERENCE: not printed by usb-devices */, 1, 2, 3, 1),
      configuration(1, 0xA0, 250, parts),  // 500 mA
  });
  id.strings = {{1, "Fibocom Wireless Inc."}, {2, "FM350-GL"}, {3, serial}};
  id.active_configuration = 1;
  id.speed_mbps = 480;
  return id;
}

}  // namespace wwan::sim::fm350
