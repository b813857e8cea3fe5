// The Fibocom FM350-GL's AT side, as its USB AT port (interface 6 in modes 40 and 41,
// usb_descriptors.md D1) answers it: an FCC-locked module whose radio stays off until the
// AT+GTFCCLOCKGEN / AT+GTFCCLOCKVER challenge is answered with the OEM's key
// (reference/vectors/fm350_fcc_unlock.md).
//
// Fm350At is the engine (pure: one command line in, the answer text out; no USB, no clock), for
// any device model that carries it — the RNDIS fm350 profile puts it behind its interface 6 with
// a sim::SerialAtPort. Fm350AtPortModel is the smallest such model: the mode 40/41 composition's
// descriptors with only the AT interface served (RNDIS and the other ports STALL), for testing the
// FCC unlock through a real Transport without an RNDIS function.
//
// What the engine answers, and what is assumed where no source says:
//   AT+GTFCCEFFSTATUS?         "+GTFCCEFFSTATUS: <mode>,<status>" (mrhaav reads "<mode>,<status>"
//                              from the digits; mode 0 none, 1 one-time, 2 power-up lock). status:
//                              1 = unlocked in this power cycle, 0 = locked — ASSUMED (no source).
//   AT+GTFCCLOCKGEN            "+GTFCCLOCKGEN: 0x%08x", a fresh challenge each time (vector form
//                              "+GTFCCLOCKGEN: 0x5754cabc"); the previous one is forgotten.
//   AT+GTFCCLOCKVER=<decimal>  "+GTFCCLOCKVER: 1" and unlocked when it is the right response to
//                              the last challenge, else "+GTFCCLOCKVER: 0" (ModemManager treats any
//                              other number as failure); the challenge is used up either way. ERROR
//                              without a challenge or a number.
//   AT+GTFCCLOCKMODE? / =<0|1|2>   the lock mode; setting it needs the module unlocked (ASSUMED).
//   AT+CFUN? / AT+CFUN=<0|1|4> "+CFUN: 4" while locked; AT+CFUN=1 while locked is refused with
//                              +CME ERROR: 3 (operation not allowed) — the form is ASSUMED, that the
//                              radio is refused is the point of the lock (ModemManager's FCC unlock
//                              exists because enabling fails).
//   AT, ATE0/ATE1, ATZ, ATI, AT+CGMI/+CGMM/+CGMR/+CGSN, AT+CPIN?   the usual (SIM ready)
// The data session, as users dial the FM350 over USB (anchors.md §2.3: `AT+CGDCONT / AT+CGACT=1,1 /
// AT+CGPADDR`, then a static address on the RNDIS interface — no DHCP on the link), in the forms
// of 3GPP TS 27.007:
//   AT+CGDCONT=<cid>,"<PDP_type>"[,"<APN>"]  defines the context (IP, IPV6, IPV4V6); AT+CGDCONT?
//   AT+CGACT=1,<cid> / =0,<cid>   (de)activates it. Activation needs the radio on (CFUN 1, so the
//                              FCC lock cleared first): +CME ERROR: 3 otherwise — ASSUMED form.
//                              The owner hears every change (on_context_change) and connects the
//                              RNDIS medium to it. AT+CGACT? lists "+CGACT: <cid>,<state>".
//   AT+CGPADDR=<cid>           "+CGPADDR: <cid>,"<address>"" while active (27.007 §10.1.14), bare
//                              "+CGPADDR: <cid>" when not.
//   AT+CGCONTRDP=<cid>         "+CGCONTRDP: <cid>,5,"<APN>","<a.b.c.d.m.m.m.m>","<gw>","<dns1>","<dns2>""
//                              (27.007 §10.1.23, the address-and-mask form ModemManager's tests
//                              show): the DNS servers. That the FM350 answers it is ASSUMED; the
//                              Fibocom-specific AT+GTDNS has no source in the vectors, so it is not
//                              modelled (ERROR, like every unknown command).
//   network drop               network_deactivate(): the context goes inactive and the URC
//                              "+CGEV: NW PDN DEACT <cid>" (27.007 §10.1.19) is queued.
//   anything else              ERROR
// The expected response is computed here from the algorithm's text (the challenge and vendor hash
// printed as 16 hex digits, decoded back to 8 bytes, SHA-256, first 8 hex digits — the shell
// pipeline of ModemManager's script), not with control/fcc_unlock_at's function, so the executor
// is checked against a second implementation.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "datapath/ethernet.hpp"

#include "sim/at_responder.hpp"
#include "sim/device_model.hpp"
#include "sim/serial_at_port.hpp"

namespace wwan::sim {

struct Fm350AtIdentity {
  std::string manufacturer = "Fibocom Wireless Inc.";
  std::string model = "FM350-GL";
  std::string revision = "81600.0000.00.29.19.04_GC";  // plausible, not captured
  std::string imei = "860000000000350";
};

struct Fm350Lock {
  unsigned mode = 2;                         // AT+GTFCCEFFSTATUS? mode: 2 = power-up lock
  std::uint32_t vendor_hash = 0x3df8c719;    // the OEM key it was provisioned with (Lenovo)
  std::uint32_t first_challenge = 0x5754cabc;  // the vectors' challenge; later ones follow an LCG
};

// What the network assigns to the context (the owner fills it from sim::NetworkConfig).
struct Fm350Pdn {
  eth::Ipv4Address address{{10, 64, 64, 2}};
  std::uint8_t prefix_length = 30;
  eth::Ipv4Address gateway{{10, 64, 64, 1}};
  eth::Ipv4Address dns[2] = {{{10, 11, 12, 13}}, {{10, 11, 12, 14}}};
};

struct Fm350AtCounters {
  std::uint64_t challenges = 0;
  std::uint64_t responses_accepted = 0;
  std::uint64_t responses_rejected = 0;
  std::uint64_t radio_refused = 0;  // AT+CFUN=1 while locked
  std::uint64_t activations = 0;    // AT+CGACT=1 accepted
  std::uint64_t activations_refused = 0;  // AT+CGACT=1 with the radio off (locked) or no context
};

class Fm350At {
 public:
  explicit Fm350At(Fm350Lock lock = {}, Fm350AtIdentity identity = {}, Fm350Pdn pdn = {});

  // One command line (trailing CR/LF optional); the whole answer, echo included (E1 by default).
  std::string execute(std::string_view line);
  // Power cycle: the radio off, a power-up lock back on, echo back to E1, no context active.
  void power_cycle();

  // The network ends the active context: "+CGEV: NW PDN DEACT <cid>". false when none was active.
  bool network_deactivate();
  bool context_active() const { return active_cid_.has_value(); }
  // Unsolicited result codes waiting for the port (oldest first), each "\r\n<text>\r\n"; at most
  // UnsolicitedQueue::kMaxUnsolicited, the oldest dropped first.
  bool has_unsolicited() const { return !unsolicited_.empty(); }
  std::string take_unsolicited() { return unsolicited_.take(); }
  // Called with the new state whenever the context comes up or goes down.
  void on_context_change(std::function<void(bool active)> f) { on_context_change_ = std::move(f); }

  bool locked() const { return locked_; }
  int cfun() const { return cfun_; }
  unsigned lock_mode() const { return lock_.mode; }
  std::optional<std::uint32_t> outstanding_challenge() const { return challenge_; }
  const Fm350AtCounters& counters() const { return counters_; }

  // The response the module expects for `challenge` under `vendor_hash` (see the header).
  static std::uint32_t expected_response(std::uint32_t challenge, std::uint32_t vendor_hash);

 private:
  std::string run(std::string_view command);
  std::string pdp(const std::string& c);
  void set_active(std::optional<int> cid);

  Fm350Lock lock_;
  Fm350AtIdentity identity_;
  Fm350Pdn pdn_;
  std::map<int, std::pair<std::string, std::string>> contexts_;  // cid -> (PDP type, APN)
  std::optional<int> active_cid_;
  UnsolicitedQueue unsolicited_;
  std::function<void(bool)> on_context_change_;
  bool locked_ = true;
  bool echo_ = true;
  int cfun_ = 4;
  std::uint32_t next_challenge_;
  std::optional<std::uint32_t> challenge_;
  Fm350AtCounters counters_;
};

// The FM350's mode 40 (0e8d:7126) or mode 41 (0e8d:7127) composition (sim/rndis_fm350.hpp, D1)
// with only interface 6, the AT port, served: an Fm350At behind a SerialAtPort. RNDIS and the
// other ports STALL. The RNDIS profile carries the same engine and port next to its function.
class Fm350AtPortModel final : public DeviceModel {
 public:
  explicit Fm350AtPortModel(std::uint16_t product_id = 0x7127, Fm350Lock lock = {},
                            const std::string& serial = "FM350SIM0000001");

  const DeviceIdentity& identity() const override { return identity_; }
  bool set_configuration(std::uint8_t configuration_value) override;
  bool set_interface(std::uint8_t interface_number, std::uint8_t alternate_setting) override;
  bool clear_halt(std::uint8_t endpoint_address) override;
  std::optional<std::size_t> control(const SetupPacket&, std::span<std::uint8_t>) override { return std::nullopt; }
  EndpointResult out(std::uint8_t endpoint_address, std::span<const std::uint8_t> data) override;
  InResult in(std::uint8_t endpoint_address, std::span<std::uint8_t> buffer) override;

  Fm350At& at() { return at_; }
  const SerialAtPort& port() const { return port_; }

 private:
  DeviceIdentity identity_;
  std::uint8_t interfaces_;  // 8 in mode 40, 10 in mode 41
  Fm350At at_;
  SerialAtPort port_;
  std::uint8_t configuration_ = 1;
};

}  // namespace wwan::sim
