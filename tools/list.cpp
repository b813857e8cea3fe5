#include "tools/list.hpp"
#include "tools/text.hpp"

#include <algorithm>
#include <cstdio>

namespace wwan::cli {
namespace {

constexpr std::string_view kUsage =
    "usage: wwan-dp list [--json]\n"
    "\n"
    "Lists every USB modem present: VID:PID, bus path (the port it is plugged into, as Linux names\n"
    "it: 1-1.2 = bus 1, root port 1, hub port 2), active configuration, the mode it is in, whether\n"
    "wwan-dp can drive it, and per interface what it is and which kernel driver holds it. Keyboards,\n"
    "hubs, disks and other devices that are not modems are not listed.\n"
    "\n"
    "  --json   one JSON array, one object per modem (fields documented in tools/list.hpp)\n"
    "\n"
    "Needs no permission: everything comes from sysfs, no device is opened.\n"
    "Exit status: 0 (also with no modem, or no USB at all on this machine), 2 on a usage error.\n";

std::string hex2(std::uint8_t v) {
  char s[4];
  std::snprintf(s, sizeof s, "%02x", static_cast<unsigned>(v));
  return s;
}

std::string hex4(std::uint16_t v) {
  char s[8];
  std::snprintf(s, sizeof s, "%04x", static_cast<unsigned>(v));
  return s;
}


// What to do about a modem wwan-dp cannot drive, by mode.
std::string_view unsupported_hint(usb::ModemMode m) {
  switch (m) {
    case usb::ModemMode::MassStorage: return "switch it to modem mode first (usb_modeswitch)";
    case usb::ModemMode::Qdl: return "it is in Qualcomm download mode: power-cycle it to boot its firmware";
    case usb::ModemMode::SerialOnly: return "no network function in this configuration, only serial ports";
    case usb::ModemMode::Qmi: return "QMI/rmnet data path not implemented; switch it to MBIM if it can";
    default: return "not supported yet";
  }
}

}  // namespace

std::vector<ListedModem> modems_of(std::span<const usb::DeviceInfo> devices) {
  std::vector<ListedModem> modems;
  for (const usb::DeviceInfo& d : devices) {
    usb::Configuration config;  // empty when unconfigured or unreadable: classified by VID:PID alone
    if (const usb::RawConfiguration* raw = d.active()) {
      if (auto parsed = usb::parse_configuration(raw->bytes, d.vendor_id, d.product_id)) config = std::move(*parsed);
    }
    const usb::ModemMode mode = usb::classify_mode(d.vendor_id, d.product_id, config);
    if (mode == usb::ModemMode::NotAModem) continue;

    ListedModem m;
    m.vendor_id = d.vendor_id;
    m.product_id = d.product_id;
    m.bus_path = d.port_path;
    m.configuration = d.active_configuration;
    m.mode = mode;
    m.supported = usb::is_drivable(mode);
    m.product = d.product;
    for (const usb::Interface& itf : config.interfaces) {
      ListedInterface li;
      li.number = itf.number;
      li.function = itf.function;
      const auto alt0 = std::find_if(itf.alt_settings.begin(), itf.alt_settings.end(),
                                     [](const usb::AltSetting& a) { return a.alternate == 0; });
      const usb::AltSetting* alt = alt0 != itf.alt_settings.end() ? &*alt0
                                   : itf.alt_settings.empty()     ? nullptr
                                                                  : &itf.alt_settings.front();
      if (alt != nullptr) {
        li.interface_class = alt->interface_class;
        li.interface_subclass = alt->interface_subclass;
        li.interface_protocol = alt->interface_protocol;
      }
      for (const usb::InterfaceDriver& drv : d.drivers)
        if (drv.interface_number == itf.number) li.driver = drv.driver;
      m.interfaces.push_back(std::move(li));
    }
    modems.push_back(std::move(m));
  }
  return modems;
}

void write_list_json(std::span<const ListedModem> modems, std::ostream& out) {
  if (modems.empty()) {
    out << "[]\n";
    return;
  }
  out << "[\n";
  for (std::size_t i = 0; i < modems.size(); ++i) {
    const ListedModem& m = modems[i];
    out << R"({"vid":")" << hex4(m.vendor_id) << R"(","pid":")" << hex4(m.product_id)
        << R"(","bus_path":)" << json_string(m.bus_path) << R"(,"configuration":)";
    if (m.configuration) out << static_cast<unsigned>(*m.configuration);
    else out << "null";
    out << R"(,"mode":")" << usb::to_string(m.mode) << R"(","supported":)" << (m.supported ? "true" : "false")
        << R"(,"interfaces":[)";
    for (std::size_t k = 0; k < m.interfaces.size(); ++k) {
      const ListedInterface& f = m.interfaces[k];
      out << (k == 0 ? "" : ",") << R"({"number":)" << static_cast<unsigned>(f.number) << R"(,"class":")"
          << hex2(f.interface_class) << R"(","subclass":")" << hex2(f.interface_subclass) << R"(","protocol":")"
          << hex2(f.interface_protocol) << R"(","function":")" << usb::to_string(f.function) << R"(","driver":)"
          << (f.driver ? json_string(*f.driver) : "null") << "}";
    }
    out << "]}" << (i + 1 < modems.size() ? "," : "") << "\n";
  }
  out << "]\n";
}

void write_list_table(std::span<const ListedModem> modems, std::ostream& out) {
  if (modems.empty()) {
    out << "no USB modem found\n";
    return;
  }
  // One block per modem: a summary line, then one row per interface under a header.
  //   12d1:1506 at 1-1.2 (HUAWEI Mobile), configuration 1: huawei-ncm, supported
  //     IF  CLASS     FUNCTION      DRIVER
  //      1  ff/03/16  huawei-ncm    huawei_cdc_ncm
  std::size_t function_width = std::string_view("FUNCTION").size();
  for (const ListedModem& m : modems)
    for (const ListedInterface& f : m.interfaces)
      function_width = std::max(function_width, std::string_view(usb::to_string(f.function)).size());

  for (std::size_t i = 0; i < modems.size(); ++i) {
    const ListedModem& m = modems[i];
    if (i > 0) out << "\n";
    out << hex4(m.vendor_id) << ":" << hex4(m.product_id) << " at " << m.bus_path;
    if (m.product && !m.product->empty()) out << " (" << *m.product << ")";
    out << ", ";
    if (m.configuration) out << "configuration " << static_cast<unsigned>(*m.configuration);
    else out << "unconfigured";
    out << ": " << usb::to_string(m.mode) << ", ";
    if (m.supported) out << "supported";
    else out << "not supported: " << unsupported_hint(m.mode);
    out << "\n";
    if (m.interfaces.empty()) continue;
    const auto pad = [&](std::string_view s) { return std::string(s) + std::string(function_width - s.size(), ' '); };
    out << "  IF  CLASS     " << pad("FUNCTION") << "  DRIVER\n";
    for (const ListedInterface& f : m.interfaces) {
      char number[8];
      std::snprintf(number, sizeof number, "%4u", static_cast<unsigned>(f.number));
      out << number << "  " << hex2(f.interface_class) << "/" << hex2(f.interface_subclass) << "/"
          << hex2(f.interface_protocol) << "  " << pad(usb::to_string(f.function)) << "  "
          << (f.driver ? *f.driver : "-") << "\n";
    }
  }
}

int run_list(std::span<const std::string_view> args, std::ostream& out, std::ostream& err) {
  bool json = false;
  for (const std::string_view a : args) {
    if (a == "--help" || a == "-h") {
      out << kUsage;
      return 0;
    } else if (a == "--json") {
      json = true;
    } else {
      err << "wwan-dp list: unknown argument '" << a << "' (see wwan-dp list --help)\n";
      return 2;
    }
  }

  std::vector<usb::DeviceInfo> devices;
  std::string error;
  if (auto ctx = usb::Context::open(error)) devices = usb::enumerate(*ctx, error);
  // No USB here (a container, a CI machine): nothing to list is the truthful answer, not a failure.
  if (!error.empty()) err << "wwan-dp list: cannot look at USB on this machine: " << error << "\n";
  for (const usb::DeviceInfo& d : devices)
    for (const std::string& p : d.problems) err << "wwan-dp list: " << d.describe() << ": " << p << "\n";

  const std::vector<ListedModem> modems = modems_of(devices);
  if (json) write_list_json(modems, out);
  else write_list_table(modems, out);
  return 0;
}

}  // namespace wwan::cli
