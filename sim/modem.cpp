#include "sim/modem.hpp"

#include "sim/profiles.hpp"

namespace wwan::sim {

std::unique_ptr<Modem> make_modem(std::string_view profile, const ModemOptions& options) {
  if (profile == "huawei-e3372") return make_huawei_e3372(options);
  if (profile == "generic-ncm") return make_generic_ncm(options);
  if (profile == "mbim") return make_mbim_em7455(options);
  return nullptr;
}

std::vector<std::string_view> modem_profiles() { return {"huawei-e3372", "generic-ncm", "mbim"}; }

}  // namespace wwan::sim
