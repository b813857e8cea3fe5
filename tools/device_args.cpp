#include "tools/device_args.hpp"

#include "usb/descriptors.hpp"

namespace wwan::cli {

int DeviceArgs::take(std::span<const std::string_view> args, std::size_t i, std::string& error) {
  const std::string_view a = args[i];
  if (a != "--dev" && a != "--path" && a != "--serial") return 0;
  if (i + 1 >= args.size()) {
    error = std::string(a) + " needs a value";
    return -1;
  }
  const std::string_view v = args[i + 1];
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

std::optional<OpenedModem> open_modem(const usb::Context& ctx, const usb::DeviceSelector& selector, std::string& error) {
  if (selector.id == usb::VidPid{}) {
    error = "which modem? --dev VID:PID (see `wwan-dp list`)";
    return std::nullopt;
  }
  std::optional<usb::DeviceInfo> device = usb::find_device(ctx, selector, error);
  if (!device) return std::nullopt;
  const usb::RawConfiguration* active = device->active();
  if (active == nullptr) {
    error = device->describe() + " is not configured (no active configuration): replug it, or check `dmesg`";
    return std::nullopt;
  }
  const std::optional<usb::Configuration> config =
      usb::parse_configuration(active->bytes, device->vendor_id, device->product_id);
  if (!config) {
    error = device->describe() + ": its configuration descriptor cannot be parsed";
    return std::nullopt;
  }
  const usb::ModemMode mode = usb::classify_mode(device->vendor_id, device->product_id, *config);
  if (mode == usb::ModemMode::MassStorage) {
    error = device->describe() +
            " is in mass-storage mode (a stick waiting for modeswitch): switch it with usb_modeswitch, then run "
            "`wwan-dp list` to find its new VID:PID";
    return std::nullopt;
  }
  std::string why;
  std::optional<usb::NetworkFunction> function = usb::find_network_function(*config, why);
  if (!function) {
    error = device->describe() + " (mode " + usb::to_string(mode) + "): " + why;
    return std::nullopt;
  }
  std::unique_ptr<usb::LibusbTransport> transport =
      usb::LibusbTransport::open(ctx, *device, {.configuration = std::nullopt, .interfaces = function->interfaces()}, error);
  if (!transport) return std::nullopt;
  return OpenedModem{std::move(*device), std::move(*function), std::move(transport)};
}

}  // namespace wwan::cli
