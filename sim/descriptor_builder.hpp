// Standard USB descriptors as bytes (USB 2.0 §9.6), for writing real devices' layouts in the
// emulated modems (sim/) and the usbfs test bench. Builders only: parsing lives in usb/descriptors.
#pragma once

#include <cstdint>
#include <vector>

namespace wwan::sim {

using ByteVector = std::vector<std::uint8_t>;

inline constexpr std::uint8_t kBulk = 2, kInterrupt = 3;  // bmAttributes transfer type

ByteVector device_descriptor(std::uint16_t bcd_usb, std::uint8_t cls, std::uint8_t subclass, std::uint8_t protocol,
                             std::uint16_t vendor_id, std::uint16_t product_id, std::uint16_t bcd_device,
                             std::uint8_t i_manufacturer, std::uint8_t i_product, std::uint8_t i_serial,
                             std::uint8_t num_configurations);
ByteVector interface(std::uint8_t number, std::uint8_t alternate, std::uint8_t num_endpoints, std::uint8_t cls,
                     std::uint8_t subclass, std::uint8_t protocol, std::uint8_t i_interface = 0);
ByteVector endpoint(std::uint8_t address, std::uint8_t attributes, std::uint16_t max_packet_size,
                    std::uint8_t interval);
ByteVector iad(std::uint8_t first, std::uint8_t count, std::uint8_t cls, std::uint8_t subclass,
               std::uint8_t protocol);
// A configuration: the 9-byte header (wTotalLength and bNumInterfaces computed) + the parts in order.
ByteVector configuration(std::uint8_t value, std::uint8_t attributes, std::uint8_t max_power_2ma,
                         const std::vector<ByteVector>& parts);
ByteVector concat(const std::vector<ByteVector>& parts);
// A string descriptor (USB 2.0 §9.6.7) holding ASCII `text` as UTF-16LE.
ByteVector string_descriptor(const char* text);

}  // namespace wwan::sim
