#include "sim/fm350_at.hpp"

#include <nettle/sha2.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdio>

#include "sim/at_responder.hpp"
#include "sim/rndis_fm350.hpp"

namespace wwan::sim {
namespace {

using v250::dotted;
using v250::error;
using v250::line;
using v250::ok;
// One information line then OK (V.250 §5.7.1 with ATV1), as the vectors show every answer.
std::string info(std::string_view text) { return v250::info({std::string(text)}); }

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

Fm350At::Fm350At(Fm350Lock lock, Fm350AtIdentity identity, Fm350Pdn pdn)
    : lock_(lock), identity_(std::move(identity)), pdn_(pdn), next_challenge_(lock.first_challenge) {
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
  set_active(std::nullopt);
}

void Fm350At::set_active(std::optional<int> cid) {
  const bool was = active_cid_.has_value();
  active_cid_ = cid;
  if (was != cid.has_value() && on_context_change_) on_context_change_(cid.has_value());
}

bool Fm350At::network_deactivate() {
  if (!active_cid_) return false;
  unsolicited_.push(line("+CGEV: NW PDN DEACT " + std::to_string(*active_cid_)));
  set_active(std::nullopt);
  return true;
}

namespace {
std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }
// "<cid>" or "<cid>,..." -> cid 1..15 (27.007: the range the module reports is not captured).
std::optional<int> cid_of(std::string_view args) {
  const std::optional<unsigned long long> v = to_number(args.substr(0, args.find(',')));
  if (!v || *v < 1 || *v > 15) return std::nullopt;
  return static_cast<int>(*v);
}
}  // namespace

// The PDP context commands (see the header). `c` is the command upper-cased; APNs are compared
// case-insensitively by networks anyway, and upper-casing keeps the parser simple.
std::string Fm350At::pdp(const std::string& c) {
  if (c == "AT+CGDCONT?") {
    std::string out;
    for (const auto& [cid, ctx] : contexts_)
      out += line("+CGDCONT: " + std::to_string(cid) + "," + quoted(ctx.first) + "," + quoted(ctx.second) +
                  ",\"0.0.0.0\",0,0");
    return out + ok();
  }
  if (c.rfind("AT+CGDCONT=", 0) == 0) {
    const std::string_view args = std::string_view(c).substr(11);
    const std::optional<int> cid = cid_of(args);
    if (!cid) return error();
    const std::size_t comma = args.find(',');
    if (comma == std::string_view::npos) {  // AT+CGDCONT=<cid>: undefine
      contexts_.erase(*cid);
      return ok();
    }
    std::string_view rest = args.substr(comma + 1);
    const std::size_t next = rest.find(',');
    std::string_view type = rest.substr(0, next);
    std::string_view apn = next == std::string_view::npos ? std::string_view() : rest.substr(next + 1);
    const auto unquote = [](std::string_view v) {
      if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
      return v;
    };
    type = unquote(type);
    apn = unquote(apn.substr(0, apn.find(',')));
    if (type != "IP" && type != "IPV6" && type != "IPV4V6") return line("+CME ERROR: 50");  // incorrect parameters
    contexts_[*cid] = {std::string(type), std::string(apn)};
    return ok();
  }
  if (c == "AT+CGACT?") {
    std::string out;
    for (const auto& [cid, ctx] : contexts_)
      out += line("+CGACT: " + std::to_string(cid) + "," + (active_cid_ == cid ? "1" : "0"));
    return out + ok();
  }
  if (c.rfind("AT+CGACT=", 0) == 0) {
    const std::string_view args = std::string_view(c).substr(9);
    const std::size_t comma = args.find(',');
    const std::optional<unsigned long long> state = to_number(args.substr(0, comma));
    const std::optional<int> cid = comma == std::string_view::npos ? std::optional<int>(1) : cid_of(args.substr(comma + 1));
    if (!state || *state > 1 || !cid) return error();
    if (*state == 0) {
      if (active_cid_ == cid) set_active(std::nullopt);
      return ok();
    }
    if (cfun_ != 1 || contexts_.count(*cid) == 0) {
      ++counters_.activations_refused;
      return line("+CME ERROR: " + std::to_string(kCmeOperationNotAllowed));
    }
    ++counters_.activations;
    set_active(*cid);
    return ok();
  }
  if (c.rfind("AT+CGPADDR=", 0) == 0) {
    const std::optional<int> cid = cid_of(std::string_view(c).substr(11));
    if (!cid) return error();
    if (active_cid_ != cid) return info("+CGPADDR: " + std::to_string(*cid));
    return info("+CGPADDR: " + std::to_string(*cid) + "," + quoted(dotted(pdn_.address)));
  }
  if (c.rfind("AT+CGCONTRDP=", 0) == 0) {
    const std::optional<int> cid = cid_of(std::string_view(c).substr(13));
    if (!cid) return error();
    if (active_cid_ != cid) return ok();  // 27.007: no line for an inactive context
    eth::Ipv4Address mask{};
    for (unsigned i = 0; i < pdn_.prefix_length && i < 32; ++i)
      mask.bytes[i / 8] = static_cast<std::uint8_t>(mask.bytes[i / 8] | (0x80u >> (i % 8)));
    const auto& ctx = contexts_[*cid];
    return info("+CGCONTRDP: " + std::to_string(*cid) + ",5," + quoted(ctx.second) + "," +
                quoted(dotted(pdn_.address) + "." + dotted(mask)) + "," + quoted(dotted(pdn_.gateway)) + "," +
                quoted(dotted(pdn_.dns[0])) + "," + quoted(dotted(pdn_.dns[1])));
  }
  return error();
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
  if (auto id = v250::identification(v250::Command(std::string_view(c).substr(2)),
                                     {identity_.manufacturer, identity_.model, identity_.revision, identity_.imei}))
    return *id;
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
    if (cfun_ != 1) set_active(std::nullopt);  // the radio off ends the data session
    return ok();
  }
  if (c.rfind("AT+CG", 0) == 0) return pdp(c);
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
