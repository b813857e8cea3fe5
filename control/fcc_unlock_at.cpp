#include "control/fcc_unlock_at.hpp"

#include <nettle/sha2.h>

#include <array>
#include <charconv>
#include <cstddef>

namespace wwan::control::fcc {
namespace {

bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

std::uint32_t digest_prefix32(const std::uint8_t* data, std::size_t length) {
  sha256_ctx ctx;
  sha256_init(&ctx);
  sha256_update(&ctx, length, data);
  std::array<std::uint8_t, SHA256_DIGEST_SIZE> digest{};
  sha256_digest(&ctx, digest.size(), digest.data());
  return std::uint32_t{digest[0]} << 24 | std::uint32_t{digest[1]} << 16 | std::uint32_t{digest[2]} << 8 |
         std::uint32_t{digest[3]};
}

}  // namespace

std::uint32_t sha256_prefix32(std::string_view bytes) {
  return digest_prefix32(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
}

std::uint32_t fm350_vendor_hash(std::string_view model_id) { return sha256_prefix32(model_id); }

std::optional<std::uint32_t> parse_gtfcclockgen(std::string_view response) {
  for (std::size_t i = 0; i + 2 < response.size(); ++i) {
    if (response[i] != '0' || (response[i + 1] != 'x' && response[i + 1] != 'X') || !is_hex(response[i + 2])) continue;
    std::size_t end = i + 2;
    while (end < response.size() && is_hex(response[end])) ++end;
    if (end - (i + 2) > 8) return std::nullopt;
    std::uint32_t v = 0;
    std::from_chars(response.data() + i + 2, response.data() + end, v, 16);
    return v;
  }
  return std::nullopt;
}

std::uint32_t fm350_unlock_response(std::uint32_t challenge, std::uint32_t vendor_hash) {
  const std::array<std::uint8_t, 8> input = {
      static_cast<std::uint8_t>(challenge >> 24),   static_cast<std::uint8_t>(challenge >> 16),
      static_cast<std::uint8_t>(challenge >> 8),    static_cast<std::uint8_t>(challenge),
      static_cast<std::uint8_t>(vendor_hash >> 24), static_cast<std::uint8_t>(vendor_hash >> 16),
      static_cast<std::uint8_t>(vendor_hash >> 8),  static_cast<std::uint8_t>(vendor_hash),
  };
  return digest_prefix32(input.data(), input.size());
}

std::string gtfcclockver_command(std::uint32_t challenge, std::uint32_t vendor_hash) {
  return "AT+GTFCCLOCKVER=" + std::to_string(fm350_unlock_response(challenge, vendor_hash));
}

bool gtfcclockver_accepted(std::string_view response) {
  constexpr std::string_view kPrefix = "+GTFCCLOCKVER:";
  std::size_t at = 0;
  while ((at = response.find(kPrefix, at)) != std::string_view::npos) {
    // Only at a line start, as ModemManager's grep '^+GTFCCLOCKVER:'.
    if (at == 0 || response[at - 1] == '\n' || response[at - 1] == '\r') {
      std::string_view v = response.substr(at + kPrefix.size());
      v = v.substr(0, v.find_first_of("\r\n"));
      while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
      while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
      return v == "1";
    }
    at += kPrefix.size();
  }
  return false;
}

}  // namespace wwan::control::fcc
