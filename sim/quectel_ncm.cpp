#include "sim/quectel_ncm.hpp"

#include "sim/descriptor_builder.hpp"
#include "sim/profiles.hpp"

namespace wwan::sim {

namespace {

// D7's raw functional descriptors of the serial interfaces 1..3 (Header 1.10, Call Management,
// ACM caps 02, Union 0 -> 0: the option driver ignores them; they are copied as dumped).
const std::vector<ByteVector> kD7SerialFds = {
    {0x05, 0x24, 0x00, 0x10, 0x01}, {0x05, 0x24, 0x01, 0x00, 0x00}, {0x04, 0x24, 0x02, 0x02}, {0x05, 0x24, 0x06, 0x00, 0x00}};

// One serial interface of D7: ff/00/00, the four FDs, interrupt IN 10 bytes, then the bulk pair.
std::vector<ByteVector> serial_interface(std::uint8_t number, std::uint8_t interrupt_in, std::uint8_t bulk_in,
                                         std::uint8_t bulk_out) {
  std::vector<ByteVector> parts = {interface(number, 0, 3, 0xff, 0x00, 0x00)};
  parts.insert(parts.end(), kD7SerialFds.begin(), kD7SerialFds.end());
  parts.push_back(endpoint(interrupt_in, kInterrupt, 10, 9));
  parts.push_back(endpoint(bulk_in, kBulk, 512, 0));
  parts.push_back(endpoint(bulk_out, kBulk, 512, 0));
  return parts;
}

// The NCM function's class-specific descriptors, shared by both compositions (ASSUMED values,
// see the header): Header 1.10, Union, Ethernet (iMACAddress 5, wMaxSegmentSize 1514), NCM 1.00.
std::vector<ByteVector> ncm_function(std::uint8_t control, std::uint8_t interrupt_in, std::uint8_t interrupt_bytes,
                                     std::uint8_t bulk_in, std::uint8_t bulk_out) {
  const auto data = static_cast<std::uint8_t>(control + 1);
  return {
      iad(control, 2, 0x02, 0x0d, 0x00),
      interface(control, 0, 1, 0x02, 0x0d, 0x00, 4),
      {0x05, 0x24, 0x00, 0x10, 0x01},           // Header 1.10
      {0x05, 0x24, 0x06, control, data},        // Union: master, slave
      // Ethernet: iMACAddress 5, no statistics, wMaxSegmentSize 1514, no filters
      {0x0d, 0x24, 0x0f, 0x05, 0x00, 0x00, 0x00, 0x00, 0xea, 0x05, 0x00, 0x00, 0x00},
      {0x06, 0x24, 0x1a, 0x00, 0x01, 0x11},     // NCM 1.00, caps 0x11
      endpoint(interrupt_in, kInterrupt, interrupt_bytes, 9),
      interface(data, 0, 0, 0x0a, 0x00, 0x01),
      interface(data, 1, 2, 0x0a, 0x00, 0x01, 6),
      endpoint(bulk_in, kBulk, 512, 0),
      endpoint(bulk_out, kBulk, 512, 0),
  };
}

// The RM500U-CN in NCM mode (the header's +unisoc).
void rm500u_composition(NcmProfile& p, const ModemOptions& options) {
  std::vector<ByteVector> parts = ncm_function(0, 0x82, 16, 0x81, 0x01);
  for (std::uint8_t i = 2; i <= 6; ++i) {  // ff/00/00, bulk IN 0x81+i, bulk OUT i: no interrupt endpoint
    parts.push_back(interface(i, 0, 2, 0xff, 0x00, 0x00));
    parts.push_back(endpoint(static_cast<std::uint8_t>(0x81 + i), kBulk, 512, 0));
    parts.push_back(endpoint(i, kBulk, 512, 0));
  }
  p.identity.descriptors = concat({
      device_descriptor(0x0210, 0x00, 0x00, 0x00, 0x2c7c, 0x0900, 0x0404, 1, 2, 3, 1),
      configuration(1, 0xc0, 250, parts),
  });
  p.identity.strings = f_ncm_strings("Quectel", "RM500U-CN", options.serial, p.mac_address);
  p.identity.kernel_drivers = {{0, "cdc_ncm"}, {1, "cdc_ncm"}, {2, "option"}, {3, "option"},
                               {4, "option"},  {5, "option"},  {6, "option"}};
  p.control_interface = 0;
  p.data_interface = 1;
  p.interrupt_in_endpoint = 0x82;
  p.bulk_in_endpoint = 0x81;
  p.bulk_out_endpoint = 0x01;
}

}  // namespace

NcmProfile quectel_ncm_profile(const ModemOptions& options) {
  NcmProfile p;
  p.name = "quectel-ncm";
  // No Quectel iMACAddress is in reference/: generic-ncm's locally administered pair (ASSUMED), so
  // the SLAAC address of the integration suite's IPv6 test is the same for both DHCP profiles.
  p.device_mac = {{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}};
  p.mac_address = {{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}};  // the host's, via iMACAddress
  std::vector<ByteVector> parts = {interface(0, 0, 2, 0xff, 0xff, 0x30), endpoint(0x81, kBulk, 512, 0),
                                   endpoint(0x01, kBulk, 512, 0)};
  for (auto& part : serial_interface(1, 0x83, 0x82, 0x02)) parts.push_back(std::move(part));  // NMEA
  for (auto& part : serial_interface(2, 0x85, QuectelNcmModem::kAtBulkIn, QuectelNcmModem::kAtBulkOut))
    parts.push_back(std::move(part));  // AT
  for (auto& part : serial_interface(3, 0x87, 0x86, 0x04)) parts.push_back(std::move(part));  // modem
  const std::vector<ByteVector> ncm = ncm_function(4, 0x88, 16, 0x8e, 0x0f);
  parts.insert(parts.end(), ncm.begin(), ncm.end());
  // D7: bcdDevice 4.14, "Quectel" / "LTE-A Module", bmAttributes 0xa0, 224 mA; IAD device class.
  p.identity.descriptors = concat({
      device_descriptor(0x0200, 0xef, 0x02, 0x01, 0x2c7c, 0x0800, 0x0414, 1, 2, 3, 1),
      configuration(1, 0xa0, 112, parts),
  });
  p.identity.strings = f_ncm_strings("Quectel", "LTE-A Module", options.serial, p.mac_address);
  p.identity.kernel_drivers = {{0, "option"}, {1, "option"}, {2, "option"}, {3, "option"}, {4, "cdc_ncm"}, {5, "cdc_ncm"}};
  p.identity.speed_mbps = 480;
  p.control_interface = 4;
  p.data_interface = 5;
  p.data_alt_active = 1;
  p.interrupt_in_endpoint = 0x88;
  p.bulk_in_endpoint = 0x8e;
  p.bulk_out_endpoint = 0x0f;
  set_f_ncm_parameters(p);  // ASSUMED: f_ncm's (see the header)
  p.speaks_at = false;  // no encapsulated AT: the AT port is the wrapper's
  p.relink_after_drop = std::chrono::seconds(1);  // the link returns; the call waits for a redial
  p.dhcp_server = true;
  if (options.quectel_unisoc) {
    p.name = "quectel-ncm+unisoc";
    rm500u_composition(p, options);
  }
  return p;
}

QuectelNcmModem::QuectelNcmModem(const ModemOptions& options)
    : unisoc_(options.quectel_unisoc),
      ncm_(quectel_ncm_profile(options), options),
      at_(options.network, unisoc_ ? rm500u_identity() : QuectelAtIdentity{}),
      port_(at_bulk_in(), at_bulk_out(), [this](std::string_view line) { return at_.execute(line); }) {}

// NcmModem acts on its faults and timers (drop-session, unplug, relink) at its next transaction.
// A host that only talks to the AT port must still see them: CLEAR_FEATURE(HALT) on the function's
// interrupt endpoint is such a transaction with no other effect (NcmModem keeps no halt there).
void QuectelNcmModem::service_function() { (void)ncm_.clear_halt(ncm_.ncm_profile().interrupt_in_endpoint); }

void QuectelNcmModem::sync() {
  const bool link = ncm_.session_active();
  // The NCM link went down under a call (drop-session): the PDN is gone, the call with it.
  if (at_.connected() && link_was_up_ && !link && at_.network_disconnect()) ++counters_.calls_dropped;
  link_was_up_ = link;
  while (at_.has_unsolicited()) port_.push(at_.take_unsolicited());
}

bool QuectelNcmModem::set_configuration(std::uint8_t configuration_value) {
  const bool ok = ncm_.set_configuration(configuration_value);
  if (ok) port_.reset();
  sync();
  return ok;
}

bool QuectelNcmModem::set_interface(std::uint8_t interface_number, std::uint8_t alternate_setting) {
  const bool ok = ncm_.set_interface(interface_number, alternate_setting);
  sync();
  return ok;
}

bool QuectelNcmModem::clear_halt(std::uint8_t endpoint_address) {
  if (port_.owns(endpoint_address)) return ncm_.connected();
  return ncm_.clear_halt(endpoint_address);
}

std::optional<std::size_t> QuectelNcmModem::control(const SetupPacket& setup, std::span<std::uint8_t> data) {
  const std::optional<std::size_t> r = ncm_.control(setup, data);
  sync();
  return r;
}

EndpointResult QuectelNcmModem::out(std::uint8_t endpoint_address, std::span<const std::uint8_t> data) {
  if (port_.owns(endpoint_address)) {
    service_function();
    if (!ncm_.connected()) return EndpointResult::gone;
    port_.out(data);
    sync();
    return EndpointResult::ok;
  }
  if (endpoint_address == ncm_.ncm_profile().bulk_out_endpoint && !at_.connected()) {
    // No data call: the module has nowhere to send the frame (taken and dropped, not NAKed, so the
    // host's TX never stalls on an undialled module).
    ++counters_.frames_before_dial;
    return ncm_.connected() ? EndpointResult::ok : EndpointResult::gone;
  }
  const EndpointResult r = ncm_.out(endpoint_address, data);
  sync();
  return r;
}

InResult QuectelNcmModem::in(std::uint8_t endpoint_address, std::span<std::uint8_t> buffer) {
  if (port_.owns(endpoint_address)) {
    service_function();
    if (!ncm_.connected()) return {EndpointResult::gone, 0};
    sync();
    return port_.in(buffer);
  }
  if (endpoint_address == ncm_.ncm_profile().bulk_in_endpoint && !at_.connected())
    return {ncm_.connected() ? EndpointResult::nak : EndpointResult::gone, 0};
  const InResult r = ncm_.in(endpoint_address, buffer);
  sync();
  return r;
}

std::optional<Clock::time_point> QuectelNcmModem::next_deadline() const {
  // Undialled, the function's data is held back: its deadlines would only wake a host for NAKs.
  // (Its relink timer still runs at the next transaction: the AT port is read every turn.)
  return at_.connected() ? ncm_.next_deadline() : std::nullopt;
}

std::unique_ptr<Modem> make_quectel_ncm(const ModemOptions& options) { return std::make_unique<QuectelNcmModem>(options); }

}  // namespace wwan::sim
