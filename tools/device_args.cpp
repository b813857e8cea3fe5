#include "tools/device_args.hpp"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <thread>
#include <vector>

#include "usb/descriptors.hpp"
#include "usb/transfer_pipes.hpp"

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
    // VID:PID, or VID:PID@BUS-PORT (the same as --path BUS-PORT): two identical sticks on one
    // router are told apart by the port they are plugged into.
    std::string_view id_text = v;
    if (const std::size_t at = v.find('@'); at != std::string_view::npos) {
      const std::string_view port = v.substr(at + 1);
      if (port.empty()) {
        error = "--dev VID:PID@BUS-PORT needs the port after '@', e.g. 12d1:1506@1-1.2 (see `wwan-dp list`)";
        return -1;
      }
      selector->port_path = std::string(port);
      id_text = v.substr(0, at);
    }
    const std::optional<usb::VidPid> id = usb::parse_vid_pid(id_text, error);
    if (!id) return -1;
    selector->id = *id;
  } else if (a == "--path") {
    selector->port_path = std::string(v);
  } else {
    selector->serial = std::string(v);
  }
  return 2;
}

std::optional<usb::DeviceInfo> switch_mode(const usb::Context& ctx, const usb::DeviceInfo& stick,
                                           const control::ModeswitchRow& row, std::string& error,
                                           std::chrono::milliseconds wait) {
  const usb::RawConfiguration* active = stick.active();
  const std::optional<usb::Configuration> config =
      active != nullptr ? usb::parse_configuration(active->bytes, stick.vendor_id, stick.product_id) : std::nullopt;
  const usb::Interface* storage = nullptr;
  if (config)
    for (const usb::Interface& i : config->interfaces)
      if (i.function == usb::Function::MassStorage && storage == nullptr) storage = &i;
  const usb::AltSetting* alt = storage != nullptr ? storage->alt(0) : nullptr;
  usb::Endpoint out, in;
  if (alt != nullptr)
    for (const usb::Endpoint& e : alt->endpoints) {
      if (e.is_bulk() && !e.is_in() && out.address == 0) out = e;
      if (e.is_bulk() && e.is_in() && in.address == 0) in = e;
    }
  if (out.address == 0) {
    error = stick.describe() + " has no mass-storage interface with a bulk OUT endpoint to send the switch message to";
    return std::nullopt;
  }
  {
    std::unique_ptr<usb::LibusbTransport> t =
        usb::LibusbTransport::open(ctx, stick, {.configuration = std::nullopt, .interfaces = {storage->number}}, error);
    if (!t) return std::nullopt;
    std::array<std::uint8_t, control::kCbwSize> message = row.message;
    const usb::OneShotResult sent = usb::transfer_once(*t, out.address, message, message.size(), 5000);
    if (sent.status != usb::TransferStatus::completed) {
      error = stick.describe() + " refused the mode-switch message (" + usb::to_string(sent.status) +
              "); try usb_modeswitch for this stick";
      return std::nullopt;
    }
    // The CSW; the stick often vanishes while or instead of sending it (both are fine).
    std::array<std::uint8_t, control::kCswSize> csw{};
    if (in.address != 0) usb::transfer_once(*t, in.address, csw, csw.size(), 1000);
  }
  // Re-enumeration: the same port, the vendor's new PID. Polled, because libusb's hotplug may be
  // unavailable (no udev in an initramfs, old libusb); 200 ms is far below the ~2–5 s a stick takes.
  const auto deadline = std::chrono::steady_clock::now() + wait;
  while (std::chrono::steady_clock::now() < deadline) {
    std::string enum_error;
    for (usb::DeviceInfo& d : usb::enumerate(ctx, enum_error))
      if (d.port_path == stick.port_path && d.vendor_id == row.vendor_id &&
          std::find(row.target_products.begin(), row.target_products.end(), d.product_id) != row.target_products.end())
        return std::move(d);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  error = stick.describe() + " took the mode-switch message but did not come back as a modem within " +
          std::to_string(std::chrono::duration_cast<std::chrono::seconds>(wait).count()) + " s; see `dmesg`";
  return std::nullopt;
}

std::optional<OpenedModem> open_modem(const usb::Context& ctx, const usb::DeviceSelector& selector, std::string& error,
                                      std::optional<std::uint8_t> forced_configuration, bool claim_serial_at) {
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
    std::optional<usb::SerialAtPort> serial_at;
    if (claim_serial_at) {
      std::string serial_why;
      serial_at = usb::find_serial_at_port(*config, serial_why);
      if (!serial_at) {
        error = device->describe() + ": " + serial_why;
        return std::nullopt;
      }
      plan.interfaces.push_back(serial_at->interface_number);
    }
    std::unique_ptr<usb::LibusbTransport> transport = usb::LibusbTransport::open(ctx, *device, plan, error);
    if (!transport) return std::nullopt;
    return OpenedModem{std::move(*device), value, std::move(*function), serial_at, std::move(transport)};
  }
  if (mass_storage && !forced_configuration) {
    if (const control::ModeswitchRow* row = control::find_modeswitch(device->vendor_id, device->product_id)) {
      std::optional<usb::DeviceInfo> modem = switch_mode(ctx, *device, *row, error);
      if (!modem) return std::nullopt;
      return open_modem(ctx, {.id = {modem->vendor_id, modem->product_id}, .port_path = modem->port_path,
                              .serial = std::nullopt}, error);
    }
    error = device->describe() +
            " is in mass-storage mode (a stick waiting for modeswitch): switch it with usb_modeswitch, then run "
            "`wwan-dp list` to find its new VID:PID";
  } else {
    error = device->describe() + ": " + (first_why.empty() ? "no configuration can be parsed" : first_why);
  }
  return std::nullopt;
}

std::optional<OpenedSerialModem> open_serial_modem(const usb::Context& ctx, const usb::DeviceSelector& selector,
                                                   std::string& error) {
  if (selector.id == usb::VidPid{}) {
    error = "which modem? --dev VID:PID (see `wwan-dp list`)";
    return std::nullopt;
  }
  std::optional<usb::DeviceInfo> device = usb::find_device(ctx, selector, error);
  if (!device) return std::nullopt;
  const usb::RawConfiguration* active = device->active();
  const std::optional<usb::Configuration> config =
      active != nullptr ? usb::parse_configuration(active->bytes, device->vendor_id, device->product_id) : std::nullopt;
  if (!config) {
    error = device->describe() + ": its active configuration cannot be read";
    return std::nullopt;
  }
  std::string why;
  std::optional<usb::SerialAtPort> port = usb::find_serial_at_port(*config, why);
  if (!port) {
    error = device->describe() + ": " + why;
    return std::nullopt;
  }
  std::unique_ptr<usb::LibusbTransport> t =
      usb::LibusbTransport::open(ctx, *device, {.configuration = std::nullopt, .interfaces = {port->interface_number}}, error);
  if (!t) return std::nullopt;
  return OpenedSerialModem{std::move(*device), *port, std::move(t)};
}

control::CommandTransportFactory claimed_serial_at_factory(OpenedModem& modem) {
  return [&modem](std::string& error) -> std::unique_ptr<control::CommandTransport> {
    if (!modem.serial_at) {
      error = "its serial AT interface was not claimed";
      return nullptr;
    }
    return control::make_serial_at_transport(*modem.transport, *modem.serial_at);
  };
}

control::CommandTransportFactory libusb_serial_at_factory(const usb::Context& ctx, const usb::DeviceInfo& device,
                                                          std::uint8_t configuration) {
  return [&ctx, device, configuration](std::string& error) -> std::unique_ptr<control::CommandTransport> {
    const usb::RawConfiguration* raw = nullptr;
    for (const usb::RawConfiguration& c : device.configurations)
      if (c.value == configuration) raw = &c;
    const std::optional<usb::Configuration> config =
        raw != nullptr ? usb::parse_configuration(raw->bytes, device.vendor_id, device.product_id) : std::nullopt;
    if (!config) {
      error = "configuration " + std::to_string(configuration) + " cannot be read";
      return nullptr;
    }
    const std::optional<usb::SerialAtPort> port = usb::find_serial_at_port(*config, error);
    if (!port) return nullptr;
    // A second handle on the device that claims only the serial interface: the first one keeps
    // the network function. Both share the libusb context, so its events run wherever the
    // caller's loop runs them (SerialAtTransport also services its own).
    std::unique_ptr<usb::LibusbTransport> t =
        usb::LibusbTransport::open(ctx, device, {.configuration = std::nullopt, .interfaces = {port->interface_number}}, error);
    if (!t) return nullptr;
    usb::Transport& raw_transport = *t;
    return control::make_serial_at_transport(raw_transport, *port, std::move(t));
  };
}

std::unique_ptr<control::CommandTransport> make_at_command_transport(
    usb::Transport& transport, std::uint8_t control_interface, control::AtPortChoice choice, bool quirk_serial,
    const control::FallbackOptions& fallback, control::CommandTransportFactory open_serial, std::string& error) {
  if (choice == control::AtPortChoice::serial || (quirk_serial && choice == control::AtPortChoice::automatic)) {
    std::unique_ptr<control::CommandTransport> s = open_serial ? open_serial(error) : nullptr;
    if (!s) error = "cannot open the serial AT port: " + (error.empty() ? std::string("none") : error);
    return s;
  }
  auto encapsulated = std::make_unique<control::EncapsulatedTransport>(transport, control_interface);
  if (choice == control::AtPortChoice::encapsulated) return encapsulated;
  return std::make_unique<control::AtFallbackTransport>(std::move(encapsulated), std::move(open_serial), fallback);
}

}  // namespace wwan::cli
