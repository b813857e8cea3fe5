#include "usb/network_function.hpp"

namespace wwan::usb {

std::vector<std::uint8_t> NetworkFunction::interfaces() const {
  if (shared_interface()) return {control_interface};
  return {control_interface, data_interface};
}

namespace {

std::optional<NetworkFunction> from_control(const Configuration& c, const Interface& control, std::string& error) {
  NetworkFunction f;
  f.kind = control.function;
  f.control_interface = control.number;
  f.ncm = control.ncm;
  f.ethernet = control.ethernet;
  f.mbim = control.mbim;
  f.mbim_extended = control.mbim_extended;
  const std::string who = "interface " + std::to_string(control.number) + " (" + to_string(control.function) + ")";

  // The notification endpoint: interrupt IN of the control interface, in the alt setting that
  // gave its function (alt 0 for everything known; the NCM/MBIM combined function uses alt 1).
  const AltSetting* control_alt = control.alt(control.function_alt_setting);
  if (control_alt == nullptr) control_alt = control.alt(0);
  if (control_alt != nullptr) {
    f.interface_class = control_alt->interface_class;
    f.interface_subclass = control_alt->interface_subclass;
    f.interface_protocol = control_alt->interface_protocol;
  }
  if (control_alt != nullptr)
    for (const Endpoint& e : control_alt->endpoints)
      if (e.is_interrupt() && e.is_in()) f.notification = e;
  if (f.notification.address == 0) {
    error = who + " has no interrupt IN endpoint for notifications";
    return std::nullopt;
  }

  if (!control.data_interface || !control.data_alt_setting) {
    error = who + " has no data interface with a bulk IN/OUT pair";
    return std::nullopt;
  }
  f.data_interface = *control.data_interface;
  f.data_alt_setting = *control.data_alt_setting;
  const Interface* data = c.interface(f.data_interface);
  const AltSetting* data_alt = data != nullptr ? data->alt(f.data_alt_setting) : nullptr;
  if (data_alt == nullptr || !data_alt->has_bulk_pair()) {
    error = who + ": its data interface " + std::to_string(f.data_interface) + " alt " +
            std::to_string(f.data_alt_setting) + " has no bulk IN/OUT pair";
    return std::nullopt;
  }
  for (const Endpoint& e : data_alt->endpoints) {
    if (!e.is_bulk() || e.max_packet_size == 0) continue;
    if (e.is_in() && f.bulk_in.address == 0) f.bulk_in = e;
    if (!e.is_in() && f.bulk_out.address == 0) f.bulk_out = e;
  }
  return f;
}

}  // namespace

std::optional<NetworkFunction> find_network_function(const Configuration& configuration, std::string& error) {
  std::string first_error;
  // RNDIS last: a device that offers NCM or MBIM next to it is driven with those (aggregation
  // negotiated per NTB, no per-message header).
  for (const Function wanted : {Function::Mbim, Function::Ncm, Function::HuaweiNcm, Function::Rndis}) {
    for (const Interface& i : configuration.interfaces) {
      if (i.function != wanted) continue;
      std::string e;
      if (auto f = from_control(configuration, i, e)) return f;
      if (first_error.empty()) first_error = e;
    }
  }
  error = first_error.empty() ? "configuration " + std::to_string(configuration.value) +
                                    " has no NCM, Huawei NCM, MBIM or RNDIS function"
                              : first_error;
  return std::nullopt;
}

}  // namespace wwan::usb
