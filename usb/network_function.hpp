// The network function wwan-dp drives on a modem, picked out of a classified configuration: which
// interface carries control (class requests, the notification endpoint), which carries data (the
// bulk pair, in which alternate setting), and what the functional descriptors promise. Pure: a
// parsed Configuration in, a plain struct out; the claim plan follows from it.
//
// Layouts it knows (usb/descriptors.hpp classifies them):
//   CDC NCM / MBIM: control 02/0d or 02/0e (interrupt IN) + data 0a (alt 0 empty, alt 1 bulk);
//   Huawei vendor NCM ff/03/16 (E3372 12d1:1506): ONE interface whose Union names itself; alt 0
//     has the interrupt endpoint, alt 1 adds the bulk pair (vectors/usb_descriptors.md D2);
//   Huawei ff/02/16 style: vendor control + vendor data, paired by the Union;
//   RNDIS: control 02/02/ff (or e0/01/03, ef/04/01) with its interrupt IN + a CDC data interface
//     whose alt 0 has the bulk pair (the FM350-GL, vectors/usb_descriptors.md D1; docs/rndis.md).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "usb/descriptors.hpp"

namespace wwan::usb {

struct NetworkFunction {
  Function kind = Function::Other;      // Ncm, HuaweiNcm, Mbim or Rndis
  // The control interface's class triple (of the alt setting that gave `kind`): what the quirk
  // table matches on (02/0d NCM, 02/0e MBIM, ff/xx Huawei vendor NCM).
  std::uint8_t interface_class = 0, interface_subclass = 0, interface_protocol = 0;
  std::uint8_t control_interface = 0;   // class requests go to this wIndex
  std::uint8_t data_interface = 0;      // == control_interface when they share one interface
  std::uint8_t data_alt_setting = 1;    // the alt setting with the bulk pair
  Endpoint notification;                // interrupt IN of the control interface
  Endpoint bulk_in, bulk_out;           // of data_interface in data_alt_setting
  std::optional<NcmFunctionalDescriptor> ncm;
  std::optional<EthernetFunctionalDescriptor> ethernet;
  std::optional<MbimFunctionalDescriptor> mbim;
  std::optional<MbimExtendedFunctionalDescriptor> mbim_extended;

  bool shared_interface() const { return control_interface == data_interface; }
  // The interfaces to claim, control first.
  std::vector<std::uint8_t> interfaces() const;
};

// The first drivable network function of the configuration (MBIM preferred over NCM when a
// device offers both, as ModemManager does; RNDIS only when nothing else is there), or nullopt
// and a one-line `error` saying what the configuration lacks (no network function; no bulk pair;
// no notification endpoint).
std::optional<NetworkFunction> find_network_function(const Configuration& configuration, std::string& error);

}  // namespace wwan::usb
