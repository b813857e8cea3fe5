#include "sim/fm350_at.hpp"

#include <nettle/sha2.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdio>

#include "sim/rndis_fm350.hpp"

namespace wwan::sim {
namespace {

constexpr std::string_view kCrLf = "\r\n";
std::string line(std::string_view text) { return std::string(kCrLf) + std::string(text) + std::string(kCrLf); }
std::string ok() { return line("OK"); }
std::string error() { return line("ERROR"); }
// Information lines then OK (V.250 §5.7.1 with ATV1), as the vectors show every answer.
std::string info(std::string_view text) { return line(text) + ok(); }

constexpr int kCmeOperationNotAllowed = 3;  // 3GPP TS 27.007 §9.2

std::string upper(std::string_view s) {
  std::string u(s);
  for (char& c : u) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return u;
}

std::optional<unsigned long long> to_number(std::string_view s) {
  unsigned long long v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

std::string hex8(std::uint32_t v) {
  std::array<char, 9> b{};
  std::snprintf(b.data(), b.size(), "%08x", v);
  return b.data();
}

// ModemManager's script: printf '%08x' challenge, append the vendor hash's 8 hex digits,
// `xxd -r -p | sha256sum`, keep 8 hex digits, `printf "%d"`. Done here on the text, step by step.
std::uint32_t script_response(std::uint32_t challenge, std::uint32_t vendor_hash) {
  const std::string combined = hex8(challenge) + hex8(vendor_hash);  // 16 hex digits
  std::array<std::uint8_t, 8> raw{};
  for (std::size_t i = 0; i < raw.size(); ++i)
    std::from_chars(combined.data() + 2 * i, combined.data() + 2 * i + 2, raw[i], 16);  // xxd -r -p
  sha256_ctx ctx;
  sha256_init(&ctx);
  sha256_update(&ctx, raw.size(), raw.data());
  std::array<std::uint8_t, SHA256_DIGEST_SIZE> digest{};
  sha256_digest(&ctx, digest.size(), digest.data());
  std::string hex;
  for (std::size_t i = 0; i < 4; ++i) hex += hex8(digest[i]).substr(6);  // sha256sum's text, first 8 digits
  std::uint32_t v = 0;
  std::from_chars(hex.data(), hex.data() + hex.size(), v, 16);
  return v;
}

}  // namespace

Fm350At::Fm350At(Fm350Lock lock, Fm350AtIdentity identity)
    : lock_(lock), identity_(std::move(identity)), next_challenge_(lock.first_challenge) {
  locked_ = lock_.mode != 0;
}

std::uint32_t Fm350At::expected_response(std::uint32_t challenge, std::uint32_t vendor_hash) {
  return script_response(challenge, vendor_hash);
}

void Fm350At::power_cycle() {
  locked_ = lock_.mode != 0;
  echo_ = true;
  cfun_ = 4;
  challenge_.reset();
}

std::string Fm350At::execute(std::string_view text) {
  while (!text.empty() && (text.back() == '\r' || text.back() == '\n')) text.remove_suffix(1);
  if (text.empty()) return {};
  const std::string echo = echo_ ? std::string(text) + "\r" : std::string();
  return echo + run(text);
}

std::string Fm350At::run(std::string_view command) {
  const std::string c = upper(command);
  if (c.substr(0, 2) != "AT") return error();
  if (c == "AT" || c == "ATZ" || c == "ATQ0" || c == "ATV1") return ok();
  if (c == "ATE0" || c == "ATE1" || c == "ATE") {
    echo_ = c == "ATE1";
    return ok();
  }
  if (c == "ATI")
    return line("Manufacturer: " + identity_.manufacturer) + line("Model: " + identity_.model) +
           line("Revision: " + identity_.revision) + ok();
  if (c == "AT+CGMI" || c == "AT+GMI") return info(identity_.manufacturer);
  if (c == "AT+CGMM" || c == "AT+GMM") return info(identity_.model);
  if (c == "AT+CGMR" || c == "AT+GMR") return info(identity_.revision);
  if (c == "AT+CGSN" || c == "AT+GSN") return info(identity_.imei);
  if (c == "AT+CPIN?") return info("+CPIN: READY");

  if (c == "AT+GTFCCEFFSTATUS?") return info("+GTFCCEFFSTATUS: " + std::to_string(lock_.mode) + "," + (locked_ ? "0" : "1"));
  if (c == "AT+GTFCCLOCKGEN") {
    challenge_ = next_challenge_;
    next_challenge_ = next_challenge_ * 1103515245u + 12345u;  // any fresh value will do
    ++counters_.challenges;
    return info("+GTFCCLOCKGEN: 0x" + hex8(*challenge_));
  }
  if (c.rfind("AT+GTFCCLOCKVER=", 0) == 0) {
    const std::optional<unsigned long long> v = to_number(std::string_view(c).substr(16));
    if (!challenge_ || !v || *v > 0xffffffffULL) return error();
    const bool right = static_cast<std::uint32_t>(*v) == expected_response(*challenge_, lock_.vendor_hash);
    challenge_.reset();
    if (right) {
      locked_ = false;
      ++counters_.responses_accepted;
    } else {
      ++counters_.responses_rejected;
    }
    return info(std::string("+GTFCCLOCKVER: ") + (right ? "1" : "0"));
  }
  if (c == "AT+GTFCCLOCKMODE?") return info("+GTFCCLOCKMODE: " + std::to_string(lock_.mode));
  if (c.rfind("AT+GTFCCLOCKMODE=", 0) == 0) {
    const std::optional<unsigned long long> m = to_number(std::string_view(c).substr(17));
    if (!m || *m > 2) return error();
    if (locked_) return line("+CME ERROR: " + std::to_string(kCmeOperationNotAllowed));
    lock_.mode = static_cast<unsigned>(*m);
    return ok();
  }

  if (c == "AT+CFUN?") return info("+CFUN: " + std::to_string(cfun_));
  if (c.rfind("AT+CFUN=", 0) == 0) {
    std::string_view arg = std::string_view(c).substr(8);
    arg = arg.substr(0, arg.find(','));  // AT+CFUN=1,1: the reset flag is not modelled
    const std::optional<unsigned long long> f = to_number(arg);
    if (!f || (*f != 0 && *f != 1 && *f != 4)) return error();
    if (*f == 1 && locked_) {
      ++counters_.radio_refused;
      return line("+CME ERROR: " + std::to_string(kCmeOperationNotAllowed));
    }
    cfun_ = static_cast<int>(*f);
    return ok();
  }
  return error();
}

// ---- the USB device ----------------------------------------------------------------------------------

Fm350AtPortModel::Fm350AtPortModel(std::uint16_t product_id, Fm350Lock lock, const std::string& serial)
    : identity_(fm350::identity(product_id == fm350::kProductIdMode40 ? fm350::UsbMode::Mode40 : fm350::UsbMode::Mode41,
                                serial)),
      interfaces_(product_id == fm350::kProductIdMode40 ? 8 : 10),
      at_(lock),
      port_(fm350::kAtBulkInEndpoint, fm350::kAtBulkOutEndpoint, [this](std::string_view l) { return at_.execute(l); }) {}

bool Fm350AtPortModel::set_configuration(std::uint8_t configuration_value) {
  if (configuration_value > 1) return false;
  configuration_ = configuration_value;
  port_.reset();
  return true;
}

bool Fm350AtPortModel::set_interface(std::uint8_t interface_number, std::uint8_t alternate_setting) {
  return configuration_ != 0 && alternate_setting == 0 && interface_number < interfaces_;
}

bool Fm350AtPortModel::clear_halt(std::uint8_t endpoint_address) { return port_.owns(endpoint_address); }

EndpointResult Fm350AtPortModel::out(std::uint8_t endpoint_address, std::span<const std::uint8_t> data) {
  if (configuration_ == 0 || endpoint_address != port_.bulk_out()) return EndpointResult::stall;
  port_.out(data);
  return EndpointResult::ok;
}

InResult Fm350AtPortModel::in(std::uint8_t endpoint_address, std::span<std::uint8_t> buffer) {
  if (configuration_ == 0) return {EndpointResult::stall, 0};
  if (endpoint_address == port_.bulk_in()) return port_.in(buffer);
  if (endpoint_address == 0x82) return {EndpointResult::nak, 0};  // RNDIS notifications: none
  return {EndpointResult::stall, 0};
}

}  // namespace wwan::sim
