#include "sim/rndis_modem.hpp"

namespace wwan::sim {

namespace {

RndisFunctionConfig function_config() {
  RndisFunctionConfig c;
  c.control_interface = fm350::kRndisControlInterface;
  c.notification_endpoint = fm350::kNotificationEndpoint;
  c.bulk_in_endpoint = fm350::kBulkInEndpoint;
  c.bulk_out_endpoint = fm350::kBulkOutEndpoint;
  c.bulk_max_packet_size = fm350::kBulkMaxPacketSize;
  return c;
}

Fm350Pdn pdn_of(const NetworkConfig& n) {
  Fm350Pdn p;
  p.address = n.host_ipv4;
  p.prefix_length = n.host_ipv4_prefix_length;
  p.gateway = n.gateway_ipv4;
  p.dns[0] = n.dns_ipv4[0];
  p.dns[1] = n.dns_ipv4[1];
  return p;
}

NetworkConfig without_dhcp(NetworkConfig n) {
  n.dhcp_server = false;  // the FM350's address comes from AT+CGPADDR (see the header)
  return n;
}

}  // namespace

Fm350RndisModem::Fm350RndisModem(const ModemOptions& options, Fm350Lock lock)
    : identity_(fm350::identity(options.product_id == fm350::kProductIdMode40 ? fm350::UsbMode::Mode40
                                                                             : fm350::UsbMode::Mode41,
                                options.serial)),
      interfaces_(options.product_id == fm350::kProductIdMode40 ? 8 : 10),
      network_(without_dhcp(options.network)),
      function_(std::make_unique<RndisFunction>(function_config(), network_)),
      at_(lock, {}, pdn_of(network_.config())),
      port_(fm350::kAtBulkInEndpoint, fm350::kAtBulkOutEndpoint, [this](std::string_view l) { return at_.execute(l); }) {
  // The medium follows the PDP context (the header).
  at_.on_context_change([this](bool active) { function_->set_media_connected(active); });
}

void Fm350RndisModem::set_clock(ClockFn clock) {
  clock_ = clock;
  function_->set_clock(std::move(clock));
}

void Fm350RndisModem::deliver_unsolicited() {
  while (at_.has_unsolicited()) port_.push(at_.take_unsolicited());
}

// Faults that act "at the next transaction".
void Fm350RndisModem::service(Clock::time_point now) {
  if (gone_) return;
  if (network_.take_unplug_request(now)) faults_.unplug = true;
  if (faults_.unplug) {
    gone_ = true;
    ++faults_injected_;
    return;
  }
  if (network_.take_drop_session_request(now)) faults_.drop_session = true;
  if (faults_.drop_session) {
    faults_.drop_session = false;
    if (at_.network_deactivate()) ++faults_injected_;  // the medium goes down with it (on_context_change)
  }
  deliver_unsolicited();
  RndisFaults& rf = function_->faults();
  rf.lose_response_available = faults_.lose_response_available;
  rf.answer_delay = faults_.control_answer_delay;
}

const ModemCounters& Fm350RndisModem::counters() const {
  const RndisFunctionCounters& f = function_->counters();
  counters_.control_requests = f.commands;
  counters_.ntbs_from_host = f.transfers_from_host;
  counters_.datagrams_from_host = f.frames_from_host;
  counters_.ntbs_from_host_dropped = f.transfers_too_large;
  counters_.ntbs_to_host = f.transfers_to_host;
  counters_.datagrams_to_host = f.frames_to_host;
  counters_.frames_before_session = f.frames_before_data;
  counters_.arp_requests_from_host = f.arp_requests_from_host;
  counters_.notifications_sent = f.notifications_sent;
  counters_.commands_received = f.commands + port_.counters().command_lines;
  counters_.faults_injected = faults_injected_;
  return counters_;
}

bool Fm350RndisModem::set_configuration(std::uint8_t configuration_value) {
  if (gone_) return false;
  service(clock_());
  if (configuration_value > 1) return false;
  configuration_ = configuration_value;
  port_.reset();
  bulk_in_halted_ = bulk_out_halted_ = false;
  return true;
}

bool Fm350RndisModem::set_interface(std::uint8_t interface_number, std::uint8_t alternate_setting) {
  if (gone_ || configuration_ == 0) return false;
  service(clock_());
  if (alternate_setting != 0 || interface_number >= interfaces_) return false;
  if (interface_number == fm350::kRndisDataInterface) bulk_in_halted_ = bulk_out_halted_ = false;  // USB 2.0 §9.4.10
  return true;
}

bool Fm350RndisModem::clear_halt(std::uint8_t endpoint_address) {
  if (gone_) return false;
  service(clock_());
  if (endpoint_address == fm350::kBulkInEndpoint) {
    bulk_in_halted_ = false;
    faults_.stall_bulk_in = false;
    return true;
  }
  if (endpoint_address == fm350::kBulkOutEndpoint) {
    bulk_out_halted_ = false;
    faults_.stall_bulk_out = false;
    return true;
  }
  return port_.owns(endpoint_address) || function_->owns_endpoint(endpoint_address);
}

std::optional<std::size_t> Fm350RndisModem::control(const SetupPacket& setup, std::span<std::uint8_t> data) {
  if (gone_) return std::nullopt;
  service(clock_());
  if (gone_ || configuration_ == 0) return std::nullopt;
  return function_->control(setup, data);  // the RNDIS control interface's requests; others STALL
}

EndpointResult Fm350RndisModem::out(std::uint8_t endpoint_address, std::span<const std::uint8_t> data) {
  if (gone_) return EndpointResult::gone;
  service(clock_());
  if (gone_) return EndpointResult::gone;
  if (configuration_ == 0) return EndpointResult::stall;
  if (endpoint_address == port_.bulk_out()) {
    port_.out(data);
    deliver_unsolicited();
    return EndpointResult::ok;
  }
  if (endpoint_address == fm350::kBulkOutEndpoint) {
    if (bulk_out_halted_) return EndpointResult::stall;
    if (faults_.stall_bulk_out) {
      bulk_out_halted_ = true;
      ++faults_injected_;
      return EndpointResult::stall;
    }
  }
  return function_->out(endpoint_address, data);
}

InResult Fm350RndisModem::in(std::uint8_t endpoint_address, std::span<std::uint8_t> buffer) {
  if (gone_) return {EndpointResult::gone, 0};
  service(clock_());
  if (gone_) return {EndpointResult::gone, 0};
  if (configuration_ == 0) return {EndpointResult::stall, 0};
  if (endpoint_address == port_.bulk_in()) return port_.in(buffer);
  if (endpoint_address == fm350::kBulkInEndpoint) {
    if (bulk_in_halted_) return {EndpointResult::stall, 0};
    if (faults_.stall_bulk_in) {
      bulk_in_halted_ = true;
      ++faults_injected_;
      return {EndpointResult::stall, 0};
    }
    const InResult r = function_->in(endpoint_address, buffer);
    if (r.result == EndpointResult::ok && faults_.unplug_after_in_transfers > 0 &&
        --faults_.unplug_after_in_transfers == 0) {
      gone_ = true;  // this transfer completed; the device is off the bus for every later call
      ++faults_injected_;
    }
    return r;
  }
  return function_->in(endpoint_address, buffer);
}

std::optional<Clock::time_point> Fm350RndisModem::next_deadline() const {
  if (gone_) return std::nullopt;
  return function_->next_deadline();  // includes the network's
}

std::unique_ptr<Modem> make_fm350_rndis(const ModemOptions& options) { return std::make_unique<Fm350RndisModem>(options); }

}  // namespace wwan::sim
