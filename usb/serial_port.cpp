#include "usb/serial_port.hpp"

#include <array>
#include <cstdio>

namespace wwan::usb {
namespace {

std::string hex2(std::uint8_t v) {
  std::array<char, 3> b{};
  std::snprintf(b.data(), b.size(), "%02x", v);
  return b.data();
}

// The first alt setting of `iface` with a bulk IN and a bulk OUT endpoint (non-zero wMaxPacketSize).
std::optional<SerialAtPort> port_of(const Interface& iface) {
  for (const AltSetting& a : iface.alt_settings) {
    if (!a.has_bulk_pair()) continue;
    SerialAtPort p;
    p.interface_number = iface.number;
    p.alt_setting = a.alternate;
    p.function = iface.function;
    p.interface_class = a.interface_class;
    p.interface_subclass = a.interface_subclass;
    p.interface_protocol = a.interface_protocol;
    for (const Endpoint& e : a.endpoints) {
      if (!e.is_bulk() || e.max_packet_size == 0) continue;
      if (e.is_in() && p.bulk_in.address == 0) p.bulk_in = e;
      if (!e.is_in() && p.bulk_out.address == 0) p.bulk_out = e;
    }
    return p;
  }
  return std::nullopt;
}

}  // namespace

std::string SerialAtPort::describe() const {
  return "interface " + std::to_string(interface_number) + " (" + hex2(interface_class) + "/" +
         hex2(interface_subclass) + "/" + hex2(interface_protocol) + ", bulk 0x" + hex2(bulk_in.address) + "/0x" +
         hex2(bulk_out.address) + ")";
}

std::optional<SerialAtPort> find_serial_at_port(const Configuration& configuration, std::string& error) {
  bool at_without_bulk = false;
  for (const Function wanted : {Function::At, Function::Modem}) {
    for (const Interface& i : configuration.interfaces) {
      if (i.function != wanted) continue;
      if (std::optional<SerialAtPort> p = port_of(i)) return p;
      at_without_bulk = true;
    }
  }
  error = at_without_bulk ? "its AT interface has no bulk IN/OUT pair"
                          : "no serial AT interface (no interface the vendor rules name AT or modem port)";
  return std::nullopt;
}

}  // namespace wwan::usb
