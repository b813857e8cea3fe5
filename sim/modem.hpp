// The emulated modems: a DeviceModel (what the bus sees) + the network behind it (what the radio
// link reaches) + switchable faults + counters a test can read.
//
// Profiles (DESIGN.md "The emulated modem"; descriptors from reference/vectors/usb_descriptors.md):
//   huawei-e3372  12d1:1506, vendor NCM ff/03/16 (control and data in one interface), AT over
//                 CDC encapsulated commands, NTB32 preferred, OUT NTBs with the NDP in front dropped
//   generic-ncm   a conformant CDC NCM 1.0 function (02/0d + 0a data, Union, Ethernet descriptor)
//   mbim          Sierra EM7455-like 1199:9079, MBIM on interfaces 12/13, IPS sessions, radio
//                 refused until the QMI-over-MBIM FCC authentication
//   fm350-rndis   Fibocom FM350-GL 0e8d:7127 (D1): RNDIS on interfaces 0/1, AT on interface 6's bulk
//                 pair, radio refused until the AT FCC unlock (sim/rndis_modem.hpp)
//   quectel-ncm   Quectel RM500Q 2c7c:0800 in usbnet NCM mode: NCM on interfaces 4/5, AT on
//                 interface 2, dialled with AT+QNETDEVCTL, DHCP on the link (sim/quectel_ncm.hpp)
//
// Threading: a Modem is not thread-safe. Its front end serialises every call; a test that flips a
// fault or reads counters while a front end is running goes through the front end's
// with_modem() (which takes the same lock) and then lets the front end retry pending requests.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "datapath/ntb_wire.hpp"
#include "sim/device_model.hpp"
#include "sim/network.hpp"

namespace wwan::sim {

// Switches a test flips to make the modem misbehave the way real ones do (anchors.md §5, the
// quirk catalogue). Each is honoured at the next transaction it applies to.
struct Faults {
  bool stall_bulk_in = false;    // bulk IN answers STALL until CLEAR_FEATURE(ENDPOINT_HALT); then clears
  bool stall_bulk_out = false;   // same for bulk OUT
  bool unplug = false;           // the device leaves the bus now: every call answers gone
  // Unplug in the middle of the data flow: after this many more bulk IN transfers (0 = off).
  std::uint32_t unplug_after_in_transfers = 0;
  // The next N NTBs toward the host are damaged (each counts down to 0).
  std::uint32_t garbage_ntbs = 0;    // random bytes, no valid NTH
  std::uint32_t truncated_ntbs = 0;  // cut short: wBlockLength says more than the transfer holds
  std::uint32_t oversize_ntbs = 0;   // a block longer than the negotiated dwNtbInMaxSize
  // RESPONSE_AVAILABLE notifications are not sent (the response is still queued and can be read
  // by polling GET_ENCAPSULATED_RESPONSE): the lost-notification case of anchors.md.
  bool lose_response_available = false;
  // Control answers (encapsulated responses) become available only this long after the command.
  std::chrono::milliseconds control_answer_delay{0};
  // Network-initiated session drop: set to true and the modem ends the data session at the next
  // transaction (Huawei: unsolicited ^NDISSTAT:0 + NETWORK_CONNECTION(disconnected); MBIM: a
  // CONNECT indication with the context deactivated). Cleared by the modem once done.
  bool drop_session = false;
  // The NTB format the host set falls back to the device's default after the alt-setting switch
  // (seen on Huawei firmware; Linux re-sends SET_NTB_FORMAT after alt 1, anchors.md).
  bool ntb_format_reverts_after_alt = false;
};

// A control-port `fault` command (sim/network.hpp) applied to `faults`: a count replaces the
// one pending, clear switches everything off.
void apply_fault(Faults& faults, const FaultRequest& request);

// Faults a firmware keeps across a reset (it is the same firmware): lost notifications, slow
// control answers, the NTB format revert. What a host that builds a fresh model for a
// re-enumerated modem carries over; counted faults (stalls, damaged NTBs, unplugs) belonged to
// the old presence on the bus and do not.
Faults faults_surviving_reset(const Faults& faults);

struct ModemCounters {
  std::uint64_t control_requests = 0;          // class + vendor requests answered or stalled
  std::uint64_t ntbs_from_host = 0;            // OUT transfers accepted as NTBs
  std::uint64_t datagrams_from_host = 0;
  std::uint64_t ntbs_from_host_dropped = 0;    // OUT NTBs the device discarded (bad, or NDP in front on Huawei)
  std::uint64_t ntbs_to_host = 0;              // IN transfers carrying an NTB
  std::uint64_t datagrams_to_host = 0;
  std::uint64_t frames_before_session = 0;     // datagrams from the host while no session was up (dropped)
  std::uint64_t arp_requests_from_host = 0;    // NCM: host asking for the gateway's MAC
  std::uint64_t arp_requests_to_host = 0;      // NCM: the modem asking for the host's MAC
  std::uint64_t notifications_sent = 0;        // interrupt IN transfers
  std::uint64_t commands_received = 0;         // AT commands (NCM) / MBIM commands (MBIM)
  std::uint64_t faults_injected = 0;           // damaged NTBs, stalls, drops, unplugs carried out
};

class Modem : public DeviceModel {
 public:
  virtual std::string_view profile() const = 0;
  virtual Network& network() = 0;
  virtual Faults& faults() = 0;
  virtual const ModemCounters& counters() const = 0;
  // True while a data session is up (after AT^NDISDUP=1,1 / MBIM CONNECT activate, until it ends).
  virtual bool session_active() const = 0;
};

struct ModemOptions {
  NetworkConfig network;
  std::string serial = "0123456789ABCDEF";  // iSerialNumber text
  // Huawei: the SIM needs a PIN (+CPIN: SIM PIN) and this is it; empty = READY.
  std::string sim_pin;
  // Enumerate under this idProduct instead of the profile's (the same stick-mode composition
  // appears as 12d1:1506 or 12d1:155e depending on the switch message, usb_modeswitch_huawei.md M6).
  std::optional<std::uint16_t> product_id;

  // Benchmark variants (bench/e2e_bench.cpp runs the real daemon against each), set by "+suffix"es
  // of a profile name (parse_profile). NCM profiles only; the MBIM model ignores them.
  //   +ntb16 / +ntb32  GET_NTB_PARAMETERS offers only this format (and it is the reset format), so
  //                    the host has no choice
  //   +in-ndp-end      IN NTBs carry their NDP after the datagrams (the E3372 puts it in front, N2)
  //   +ntb-max-BYTES   dwNtbInMaxSize and dwNtbOutMaxSize offered (2048..0x20000)
  //   +imix            sourced IPv4/UDP packets toward the host are cut to the simple IMIX sizes,
  //                    7 x 64, 4 x 576, 1 x 1500 bytes of IP in turn (the network's source sends one
  //                    size; the source must send 1500-byte packets for this)
  std::optional<ntb::NtbFormat> only_ntb_format;
  bool ndp_at_end_to_host = false;
  std::optional<std::uint32_t> ntb_max_size;
  bool imix_to_host = false;
  // +no-dhcp-at (huawei-e3372): the firmware's AT^DHCP? answers ERROR, and the stick runs a DHCP
  // server on its link instead (Huawei firmware whose ^DHCP? is missing or garbled, issue 9: the
  // host falls back to DHCP). Other profiles ignore it.
  bool no_dhcp_at = false;
  // +unisoc (quectel-ncm): an RM500U-CN (Unisoc firmware, 2c7c:0900, the option.c patch's NCM-mode
  // composition, AT on interface 4) instead of the RM500Q; its AT+QNETDEVCTL takes the cid first
  // and refuses the other order (sim/quectel_at.hpp). Other profiles ignore it.
  bool quectel_unisoc = false;
};

// A profile name, optionally with benchmark variants appended ("generic-ncm+ntb32+in-ndp-end",
// see ModemOptions): the base profile and `options` with the suffixes applied. nullopt when the
// base or a suffix is unknown.
struct ProfileVariant {
  std::string_view base;
  ModemOptions options;
};
std::optional<ProfileVariant> parse_profile(std::string_view name, const ModemOptions& options = {});

// nullptr for an unknown profile name (variants as parse_profile accepts them).
std::unique_ptr<Modem> make_modem(std::string_view profile, const ModemOptions& options = {});
// Takes every fault command waiting in `modem`'s network and applies it to its faults; how many.
// For the owner of a running modem (the daemon's --sim), under the front end's lock.
std::size_t apply_fault_requests(Modem& modem);

// The names make_modem knows, for --help and error messages.
std::vector<std::string_view> modem_profiles();

}  // namespace wwan::sim
