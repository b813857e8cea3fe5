#include "sim/zerocd_stick.hpp"

#include <algorithm>
#include <cstring>

#include "control/modeswitch.hpp"
#include "sim/descriptor_builder.hpp"

namespace wwan::sim {

ZeroCdStick::ZeroCdStick(std::uint16_t product_id) {
  // The layout of the bench's 12d1:1f01 (usb_modeswitch_huawei.md: "Use interface number 0 with
  // class 8, endpoints 0x01 (out) and 0x81 (in)"); the second LUN interface is the SD slot.
  id_.descriptors = concat({
      device_descriptor(0x0200, 0x00, 0x00, 0x00, 0x12d1, product_id, 0x0102, 1, 2, 3, 1),
      configuration(1, 0x80, 0xfa,
                    {interface(0, 0, 2, 0x08, 0x06, 0x50), endpoint(kBulkIn, kBulk, 512, 0),
                     endpoint(kBulkOut, kBulk, 512, 0), interface(1, 0, 2, 0x08, 0x06, 0x50),
                     endpoint(0x82, kBulk, 512, 0), endpoint(0x02, kBulk, 512, 0)}),
  });
  id_.strings = {{1, "HUAWEI_MOBILE"}, {2, "HUAWEI_MOBILE"}, {3, "0123456789ABCDEF"}};
  id_.kernel_drivers = {{0, "usb-storage"}, {1, "usb-storage"}};
}

std::optional<std::size_t> ZeroCdStick::control(const SetupPacket& setup, std::span<std::uint8_t> data) {
  // Bulk-Only Mass Storage Reset (0xff) and Get Max LUN (0xfe, answer 1 = two LUNs).
  if (setup.request_type == 0xa1 && setup.request == 0xfe && !data.empty()) {
    data[0] = 1;
    return 1;
  }
  if (setup.request_type == 0x21 && setup.request == 0xff) return 0;
  return std::nullopt;
}

EndpointResult ZeroCdStick::out(std::uint8_t endpoint, std::span<const std::uint8_t> data) {
  if (gone_) return EndpointResult::gone;
  if (endpoint != kBulkOut) return EndpointResult::stall;
  if (data.size() != control::kCbwSize || data[0] != 0x55 || data[1] != 0x53 || data[2] != 0x42 || data[3] != 0x43)
    return EndpointResult::stall;  // not a CBW: a Bulk-Only device halts (BOT 1.0 §6.6.1)
  const bool huawei = control::is_huawei_switch_cbw(data);
  if (huawei) {
    ++switch_messages_;
    switching_ = true;
  } else {
    ++other_commands_;
  }
  // CSW: "USBS", the CBW's tag, residue 0, status 0 (passed) / 1 (failed: we implement no SCSI).
  std::vector<std::uint8_t> csw = {0x55, 0x53, 0x42, 0x53, data[4], data[5], data[6], data[7], 0, 0, 0, 0,
                                   static_cast<std::uint8_t>(huawei ? 0 : 1)};
  if (csw_.size() < 16) csw_.push_back(std::move(csw));
  return EndpointResult::ok;
}

InResult ZeroCdStick::in(std::uint8_t endpoint, std::span<std::uint8_t> buffer) {
  if (gone_) return {EndpointResult::gone, 0};
  if (endpoint != kBulkIn) return {EndpointResult::stall, 0};
  if (csw_.empty()) return {EndpointResult::nak, 0};
  const std::size_t n = std::min(buffer.size(), csw_.front().size());
  std::memcpy(buffer.data(), csw_.front().data(), n);
  csw_.pop_front();
  if (switching_ && csw_.empty()) gone_ = true;  // the CSW went out; the stick re-enumerates
  return {EndpointResult::ok, n};
}

}  // namespace wwan::sim
