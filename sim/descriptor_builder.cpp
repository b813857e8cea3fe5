#include "sim/descriptor_builder.hpp"

#include <cstring>

namespace wwan::sim {
namespace {
constexpr std::uint8_t kDtDevice = 1, kDtConfig = 2, kDtString = 3, kDtInterface = 4, kDtEndpoint = 5,
                       kDtInterfaceAssociation = 11;

void put_le16(ByteVector& b, std::uint16_t v) {
  b.push_back(static_cast<std::uint8_t>(v & 0xff));
  b.push_back(static_cast<std::uint8_t>(v >> 8));
}
}  // namespace

ByteVector device_descriptor(std::uint16_t bcd_usb, std::uint8_t cls, std::uint8_t subclass, std::uint8_t protocol,
                             std::uint16_t vendor_id, std::uint16_t product_id, std::uint16_t bcd_device,
                             std::uint8_t i_manufacturer, std::uint8_t i_product, std::uint8_t i_serial,
                             std::uint8_t num_configurations) {
  ByteVector b{18, kDtDevice};
  put_le16(b, bcd_usb);
  b.insert(b.end(), {cls, subclass, protocol, 64});
  put_le16(b, vendor_id);
  put_le16(b, product_id);
  put_le16(b, bcd_device);
  b.insert(b.end(), {i_manufacturer, i_product, i_serial, num_configurations});
  return b;
}

ByteVector interface(std::uint8_t number, std::uint8_t alternate, std::uint8_t num_endpoints, std::uint8_t cls,
                     std::uint8_t subclass, std::uint8_t protocol, std::uint8_t i_interface) {
  return {9, kDtInterface, number, alternate, num_endpoints, cls, subclass, protocol, i_interface};
}

ByteVector endpoint(std::uint8_t address, std::uint8_t attributes, std::uint16_t max_packet_size,
                    std::uint8_t interval) {
  ByteVector b{7, kDtEndpoint, address, attributes};
  put_le16(b, max_packet_size);
  b.push_back(interval);
  return b;
}

ByteVector iad(std::uint8_t first, std::uint8_t count, std::uint8_t cls, std::uint8_t subclass,
               std::uint8_t protocol) {
  return {8, kDtInterfaceAssociation, first, count, cls, subclass, protocol, 0};
}

ByteVector concat(const std::vector<ByteVector>& parts) {
  ByteVector b;
  for (const ByteVector& p : parts) b.insert(b.end(), p.begin(), p.end());
  return b;
}

ByteVector configuration(std::uint8_t value, std::uint8_t attributes, std::uint8_t max_power_2ma,
                         const std::vector<ByteVector>& parts) {
  const ByteVector body = concat(parts);
  std::uint8_t interfaces = 0;  // interface descriptors with bAlternateSetting 0
  for (std::size_t at = 0; at + 1 < body.size() && body[at] >= 2; at += body[at])
    if (body[at + 1] == kDtInterface && at + 3 < body.size() && body[at + 3] == 0) ++interfaces;
  ByteVector b{9, kDtConfig};
  put_le16(b, static_cast<std::uint16_t>(9 + body.size()));
  b.insert(b.end(), {interfaces, value, 0, attributes, max_power_2ma});
  b.insert(b.end(), body.begin(), body.end());
  return b;
}

ByteVector string_descriptor(const char* text) {
  const std::size_t n = std::strlen(text);
  ByteVector b{static_cast<std::uint8_t>(2 + 2 * n), kDtString};
  for (std::size_t i = 0; i < n; ++i) b.insert(b.end(), {static_cast<std::uint8_t>(text[i]), 0});
  return b;
}

}  // namespace wwan::sim
