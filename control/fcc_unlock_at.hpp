// The Fibocom FM350-GL FCC unlock over AT (AT+GTFCCLOCKGEN / AT+GTFCCLOCKVER), the pure part:
// challenge in, the command that answers it out. Sending, retrying and the lock-mode check belong
// to the session that drives the modem.
//
// The algorithm (reference/vectors/fm350_fcc_unlock.md, from ModemManager's CC0 dispatcher script
// data/dispatcher-fcc-unlock/14c3 and an independent OpenWrt implementation that agrees with it):
//   1. AT+GTFCCLOCKGEN answers a 32-bit challenge as "0x" + hex, alone on its line or after
//      "+GTFCCLOCKGEN: " (both scripts just look for 0x[0-9a-fA-F]+).
//   2. response = the first 4 bytes, big-endian, of SHA-256 over 8 bytes: the challenge as 4 bytes
//      big-endian (printf '%08x': a short challenge is zero-padded), then the 4-byte vendor hash.
//   3. AT+GTFCCLOCKVER=<response in unsigned decimal> (values >= 2^31 occur: never print as int32).
//   4. Success is a "+GTFCCLOCKVER:" line whose number is 1.
// The vendor hash is the first 4 bytes of SHA-256 of the OEM's model-id string (Lenovo
// "KHOIHGIUCCHHII" -> 3df8c719, Dell DW5931e "DW5931EFCCLOCK" -> 4909b5a4).
//
// SHA-256 comes from nettle (Debian nettle-dev), not from code of our own.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace wwan::control::fcc {

inline constexpr std::uint32_t kFm350VendorHashLenovo = 0x3df8c719;  // sha256("KHOIHGIUCCHHII")[0:4]
inline constexpr std::uint32_t kFm350VendorHashDell = 0x4909b5a4;    // sha256("DW5931EFCCLOCK")[0:4]

inline constexpr std::string_view kGtFccLockGen = "AT+GTFCCLOCKGEN";

// The first 4 bytes (big-endian) of SHA-256 over `bytes`.
std::uint32_t sha256_prefix32(std::string_view bytes);
// The vendor hash of an OEM model-id string.
std::uint32_t fm350_vendor_hash(std::string_view model_id);

// The challenge in an AT+GTFCCLOCKGEN answer: the first "0x" followed by 1 to 8 hex digits.
// nullopt when there is none or it has more than 8 digits (does not fit the 4 bytes hashed).
std::optional<std::uint32_t> parse_gtfcclockgen(std::string_view response);

// Step 2 of the algorithm.
std::uint32_t fm350_unlock_response(std::uint32_t challenge, std::uint32_t vendor_hash);
// "AT+GTFCCLOCKVER=<decimal>".
std::string gtfcclockver_command(std::uint32_t challenge, std::uint32_t vendor_hash);
// True when the answer holds a "+GTFCCLOCKVER:" line whose value is 1.
bool gtfcclockver_accepted(std::string_view response);

}  // namespace wwan::control::fcc
