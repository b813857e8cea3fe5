#include "sim/modem.hpp"

#include <algorithm>
#include <charconv>

#include "sim/profiles.hpp"

namespace wwan::sim {

namespace {

// One "+suffix" of a profile name (ModemOptions lists them); false if unknown.
bool apply_variant(std::string_view v, ModemOptions& o) {
  if (v == "ntb16") {
    o.only_ntb_format = ntb::NtbFormat::Ntb16;
  } else if (v == "ntb32") {
    o.only_ntb_format = ntb::NtbFormat::Ntb32;
  } else if (v == "in-ndp-end") {
    o.ndp_at_end_to_host = true;
  } else if (v == "imix") {
    o.imix_to_host = true;
  } else if (v == "no-dhcp-at") {
    o.no_dhcp_at = true;
  } else if (v == "unisoc") {
    o.quectel_unisoc = true;
  } else if (constexpr std::string_view kMax = "ntb-max-"; v.substr(0, kMax.size()) == kMax) {
    const std::string_view digits = v.substr(kMax.size());
    std::uint32_t bytes = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), bytes);
    // 2048: NCM 1.0 §6.2.7's minimum; 0x20000: the largest any profile offers (the E3372's).
    if (ec != std::errc() || end != digits.data() + digits.size() || bytes < 2048 || bytes > 0x20000) return false;
    o.ntb_max_size = bytes;
  } else {
    return false;
  }
  return true;
}

}  // namespace

std::optional<ProfileVariant> parse_profile(std::string_view name, const ModemOptions& options) {
  ProfileVariant p{name.substr(0, name.find('+')), options};
  const auto names = modem_profiles();
  if (std::find(names.begin(), names.end(), p.base) == names.end()) return std::nullopt;
  for (std::size_t at = p.base.size(); at < name.size();) {
    const std::size_t next = std::min(name.find('+', at + 1), name.size());
    if (!apply_variant(name.substr(at + 1, next - at - 1), p.options)) return std::nullopt;
    at = next;
  }
  return p;
}

std::unique_ptr<Modem> make_modem(std::string_view profile, const ModemOptions& options) {
  const std::optional<ProfileVariant> p = parse_profile(profile, options);
  if (!p) return nullptr;
  if (p->base == "huawei-e3372") return make_huawei_e3372(p->options);
  if (p->base == "generic-ncm") return make_generic_ncm(p->options);
  if (p->base == "mbim") return make_mbim_em7455(p->options);
  if (p->base == "fm350-rndis") return make_fm350_rndis(p->options);
  if (p->base == "quectel-ncm") return make_quectel_ncm(p->options);
  return nullptr;
}

void apply_fault(Faults& faults, const FaultRequest& request) {
  using K = FaultRequest::Kind;
  const auto count = static_cast<std::uint32_t>(std::min<std::uint64_t>(request.value, UINT32_MAX));
  switch (request.kind) {
    case K::stall_in: faults.stall_bulk_in = true; break;
    case K::stall_out: faults.stall_bulk_out = true; break;
    case K::garbage: faults.garbage_ntbs = count; break;
    case K::truncated: faults.truncated_ntbs = count; break;
    case K::oversize: faults.oversize_ntbs = count; break;
    case K::unplug_after_in: faults.unplug_after_in_transfers = count; break;
    case K::lose_notifications: faults.lose_response_available = request.value != 0; break;
    case K::control_delay:
      faults.control_answer_delay = std::chrono::milliseconds(std::min(request.value, kMaxControlDelayMs));
      break;
    case K::clear: faults = Faults{}; break;
  }
}

Faults faults_surviving_reset(const Faults& faults) {
  Faults kept;
  kept.lose_response_available = faults.lose_response_available;
  kept.control_answer_delay = faults.control_answer_delay;
  kept.ntb_format_reverts_after_alt = faults.ntb_format_reverts_after_alt;
  return kept;
}

std::size_t apply_fault_requests(Modem& modem) {
  std::size_t n = 0;
  while (const std::optional<FaultRequest> r = modem.network().take_fault_request()) {
    apply_fault(modem.faults(), *r);
    ++n;
  }
  return n;
}

std::vector<std::string_view> modem_profiles() { return {"huawei-e3372", "generic-ncm", "mbim", "fm350-rndis", "quectel-ncm"}; }

}  // namespace wwan::sim
