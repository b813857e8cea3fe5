// The `fm350-rndis` profile: a Fibocom FM350-GL in USB mode 41 (0e8d:7127, vectors/
// usb_descriptors.md D1) as a whole emulated modem — the RNDIS function on interfaces 0/1
// (sim/rndis_function.hpp), the AT engine with its FCC lock on interface 6's bulk pair
// (sim/fm350_at.hpp behind a sim::SerialAtPort), and the network behind them.
//
// How the parts are tied, as the real module behaves per the vectors:
//   - the radio stays off until the FCC unlock (AT+GTFCCLOCKGEN / AT+GTFCCLOCKVER, then AT+CFUN=1);
//     AT+CGACT=1,1 before that is refused, so a host that skips the unlock never gets data;
//   - the RNDIS medium follows the PDP context: AT+CGACT=1,1 connects it (INDICATE_STATUS
//     MEDIA_CONNECT), a deactivation or a network drop disconnects it. Users configure the address
//     AT+CGPADDR reports statically (anchors.md §2.3): the link has no DHCP server;
//   - the control port's drop-session (and Faults::drop_session) is the network ending the
//     context: "+CGEV: NW PDN DEACT 1" on the AT port and MEDIA_DISCONNECT on RNDIS.
// Faults honoured: unplug, unplug_after_in_transfers, stall_bulk_in/out, drop_session,
// lose_response_available and control_answer_delay (the RNDIS function's own switches). The NTB
// faults (garbage/truncated/oversize) have no RNDIS meaning and are ignored; the RNDIS function's
// own faults (RndisFaults: hostile messages, ignored keepalives...) are reachable through rndis().
#pragma once

#include <memory>
#include <optional>

#include "sim/fm350_at.hpp"
#include "sim/modem.hpp"
#include "sim/rndis_fm350.hpp"
#include "sim/rndis_function.hpp"
#include "sim/serial_at_port.hpp"

namespace wwan::sim {

class Fm350RndisModem final : public Modem {
 public:
  using ClockFn = std::function<Clock::time_point()>;

  explicit Fm350RndisModem(const ModemOptions& options, Fm350Lock lock = {});

  // DeviceModel
  const DeviceIdentity& identity() const override { return identity_; }
  bool set_configuration(std::uint8_t configuration_value) override;
  bool set_interface(std::uint8_t interface_number, std::uint8_t alternate_setting) override;
  bool clear_halt(std::uint8_t endpoint_address) override;
  std::optional<std::size_t> control(const SetupPacket& setup, std::span<std::uint8_t> data) override;
  EndpointResult out(std::uint8_t endpoint_address, std::span<const std::uint8_t> data) override;
  InResult in(std::uint8_t endpoint_address, std::span<std::uint8_t> buffer) override;
  std::optional<Clock::time_point> next_deadline() const override;
  bool connected() const override { return !gone_; }

  // Modem
  std::string_view profile() const override { return "fm350-rndis"; }
  Network& network() override { return network_; }
  Faults& faults() override { return faults_; }
  const ModemCounters& counters() const override;
  bool session_active() const override { return at_.context_active(); }

  // The parts, for tests.
  RndisFunction& rndis() { return *function_; }
  Fm350At& at() { return at_; }
  const SerialAtPort& at_port() const { return port_; }
  void set_clock(ClockFn clock);

 private:
  void service(Clock::time_point now);
  void deliver_unsolicited();

  DeviceIdentity identity_;
  std::uint8_t interfaces_;
  Network network_;
  std::unique_ptr<RndisFunction> function_;  // refers to network_
  Fm350At at_;
  SerialAtPort port_;
  Faults faults_;
  ClockFn clock_ = [] { return Clock::now(); };
  std::uint8_t configuration_ = 1;
  bool gone_ = false;
  bool bulk_in_halted_ = false, bulk_out_halted_ = false;
  mutable ModemCounters counters_;  // filled from the parts' counters when read
  std::uint64_t faults_injected_ = 0;
};

std::unique_ptr<Modem> make_fm350_rndis(const ModemOptions& options);

}  // namespace wwan::sim
