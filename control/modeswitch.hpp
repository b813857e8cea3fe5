// Mode switching: a Huawei stick that enumerates as a CD-ROM (mass storage, "ZeroCD") until it is
// told to become a modem. The message is a USB Mass Storage Bulk-Only CBW with Huawei's vendor
// SCSI opcode 0x11 0x06, sent to the storage interface's bulk OUT endpoint; the stick then drops
// off the bus and re-enumerates under another PID (vectors/usb_modeswitch_huawei.md M1–M6).
// Rows, not forks: which message for which storage-mode id, and which ids to expect after.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace wwan::control {

inline constexpr std::size_t kCbwSize = 31;  // USB Mass Storage Bulk-Only 1.0 §5.1
inline constexpr std::size_t kCswSize = 13;  // §5.2

struct ModeswitchRow {
  std::uint16_t vendor_id = 0, product_id = 0;  // the storage-mode id
  std::array<std::uint8_t, kCbwSize> message{};
  std::vector<std::uint16_t> target_products;   // same vendor
  const char* name = "";
  const char* evidence = "";
};

std::span<const ModeswitchRow> modeswitch_table();
const ModeswitchRow* find_modeswitch(std::uint16_t vendor_id, std::uint16_t product_id);

// Whether `bytes` is a CBW of Huawei's switch family (signature "USBC", opcode 0x11 0x06): what
// the emulated stick listens for.
bool is_huawei_switch_cbw(std::span<const std::uint8_t> bytes);

}  // namespace wwan::control
