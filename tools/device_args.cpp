#include "tools/device_args.hpp"

#include <cstdlib>
#include <vector>

#include "usb/descriptors.hpp"

namespace wwan::cli {

int DeviceArgs::take(std::span<const std::string_view> args, std::size_t i, std::string& error) {
  const std::string_view a = args[i];
  if (a != "--dev" && a != "--path" && a != "--serial" && a != "--configuration") return 0;
  if (i + 1 >= args.size()) {
    error = std::string(a) + " needs a value";
    return -1;
  }
  const std::string_view v = args[i + 1];
  if (a == "--configuration") {
    const std::string text(v);
    char* end = nullptr;
    const unsigned long n = std::strtoul(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || n == 0 || n > 255) {
      error = "--configuration wants a bConfigurationValue 1..255, not '" + text + "' (see `lsusb -v`)";
      return -1;
    }
    configuration = static_cast<std::uint8_t>(n);
    return 2;
  }
  if (!selector) selector.emplace();
  if (a == "--dev") {
    const std::optional<usb::VidPid> id = usb::parse_vid_pid(v, error);
    if (!id) return -1;
    selector->id = *id;
  } else if (a == "--path") {
    selector->port_path = std::string(v);
  } else {
    selector->serial = std::string(v);
  }
  return 2;
}

std::optional<OpenedModem> open_modem(const usb::Context& ctx, const usb::DeviceSelector& selector, std::string& error,
                                      std::optional<std::uint8_t> forced_configuration) {
  if (selector.id == usb::VidPid{}) {
    error = "which modem? --dev VID:PID (see `wwan-dp list`)";
    return std::nullopt;
  }
  std::optional<usb::DeviceInfo> device = usb::find_device(ctx, selector, error);
  if (!device) return std::nullopt;
  const usb::RawConfiguration* active = device->active();

  // Candidates in order: the forced one; else the active one, then the others.
  std::vector<const usb::RawConfiguration*> candidates;
  if (forced_configuration) {
    for (const usb::RawConfiguration& c : device->configurations)
      if (c.value == *forced_configuration) candidates.push_back(&c);
    if (candidates.empty()) {
      error = device->describe() + " has no configuration " + std::to_string(*forced_configuration);
      return std::nullopt;
    }
  } else {
    if (active != nullptr) candidates.push_back(active);
    for (const usb::RawConfiguration& c : device->configurations)
      if (&c != active) candidates.push_back(&c);
  }

  std::string first_why;
  bool mass_storage = false;
  for (const usb::RawConfiguration* raw : candidates) {
    const std::optional<usb::Configuration> config =
        usb::parse_configuration(raw->bytes, device->vendor_id, device->product_id);
    if (!config) continue;
    if (raw == active)
      mass_storage = usb::classify_mode(device->vendor_id, device->product_id, *config) == usb::ModemMode::MassStorage;
    std::string why;
    std::optional<usb::NetworkFunction> function = usb::find_network_function(*config, why);
    if (!function) {
      if (first_why.empty()) first_why = why;
      continue;
    }
    const std::uint8_t value = raw->value;
    usb::ClaimPlan plan{.configuration = std::nullopt, .interfaces = function->interfaces()};
    if (raw != active) plan.configuration = value;
    std::unique_ptr<usb::LibusbTransport> transport = usb::LibusbTransport::open(ctx, *device, plan, error);
    if (!transport) return std::nullopt;
    return OpenedModem{std::move(*device), value, std::move(*function), std::move(transport)};
  }
  if (mass_storage && !forced_configuration) {
    error = device->describe() +
            " is in mass-storage mode (a stick waiting for modeswitch): switch it with usb_modeswitch, then run "
            "`wwan-dp list` to find its new VID:PID";
  } else {
    error = device->describe() + ": " + (first_why.empty() ? "no configuration can be parsed" : first_why);
  }
  return std::nullopt;
}

}  // namespace wwan::cli
