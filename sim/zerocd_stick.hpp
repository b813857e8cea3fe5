// A Huawei stick in "ZeroCD" mode (12d1:1f01): two mass-storage interfaces (the CD-ROM with the
// Windows installer, and the SD slot) and nothing else, until the host sends Huawei's switch CBW
// to the first interface's bulk OUT endpoint. It answers with a CSW and then drops off the bus —
// "Device seems to have vanished after reading. Good." (usb_modeswitch's log in
// vectors/usb_modeswitch_huawei.md M1). Re-enumeration under the new PID is the test bench's job
// (the bus, not the device, creates the new device).
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "sim/device_model.hpp"

namespace wwan::sim {

class ZeroCdStick final : public DeviceModel {
 public:
  static constexpr std::uint8_t kBulkOut = 0x01, kBulkIn = 0x81;  // interface 0 (usb_modeswitch: "0x01 (out) and 0x81 (in)")

  explicit ZeroCdStick(std::uint16_t product_id = 0x1f01);

  const DeviceIdentity& identity() const override { return id_; }
  bool set_configuration(std::uint8_t value) override { return value == 1; }
  bool set_interface(std::uint8_t number, std::uint8_t alt) override { return number <= 1 && alt == 0; }
  bool clear_halt(std::uint8_t) override { return !gone_; }
  std::optional<std::size_t> control(const SetupPacket& setup, std::span<std::uint8_t> data) override;
  EndpointResult out(std::uint8_t endpoint, std::span<const std::uint8_t> data) override;
  InResult in(std::uint8_t endpoint, std::span<std::uint8_t> buffer) override;
  bool connected() const override { return !gone_; }

  unsigned switch_messages() const { return switch_messages_; }
  unsigned other_commands() const { return other_commands_; }

 private:
  DeviceIdentity id_;
  std::deque<std::vector<std::uint8_t>> csw_;  // answers waiting on bulk IN
  unsigned switch_messages_ = 0, other_commands_ = 0;
  bool switching_ = false;  // the switch CSW is queued: gone once it is read
  bool gone_ = false;
};

}  // namespace wwan::sim
