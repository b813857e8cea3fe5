// CRC-32 as used by the Ethernet FCS (IEEE 802.3): reflected polynomial 0xEDB88320, initial value
// and final XOR 0xFFFFFFFF. CDC NCM 1.0 §3.3.2 (NCM1 datagrams) appends it little-endian, as
// Linux f_ncm does (~crc32_le(~0, data, len), put_unaligned_le32).
#pragma once

#include <cstdint>
#include <span>

namespace wwan::ntb {

std::uint32_t crc32_ieee(std::span<const std::uint8_t> data);

}  // namespace wwan::ntb
