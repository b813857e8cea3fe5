// A CDC NCM function model: the device side of NCM 1.0 as real modems implement it, one class
// parameterised by a profile (a table row per device, never a fork per device).
//
// What it does, per the host's calls:
//   control()   the NCM class requests of NCM 1.0 §6.2 (GET_NTB_PARAMETERS, GET/SET_NTB_FORMAT
//               (SET only in data alt 0, §6.2.5: STALL otherwise), GET/SET_NTB_INPUT_SIZE (4 or
//               8 bytes, 2048..dwNtbInMaxSize), GET/SET_MAX_DATAGRAM_SIZE, GET/SET_CRC_MODE,
//               SET_ETHERNET_PACKET_FILTER, GET/SET_NET_ADDRESS) as bmNetworkCapabilities
//               allows, and for AT-speaking profiles SEND_ENCAPSULATED_COMMAND /
//               GET_ENCAPSULATED_RESPONSE carrying the Huawei AT engine (sim/huawei_at.hpp).
//   set_interface(data, 0)  resets the function (NCM 1.0 §7.2): NTB format to the profile's
//               reset format, input size to dwNtbInMaxSize, CRC off, queues flushed.
//   set_interface(data, 1)  bulk endpoints exist; the ntb_format_reverts_after_alt fault applies.
//   out(bulk)   one NTB from the host: parsed with the datapath parser; NTBs of the wrong format,
//               larger than dwNtbOutMaxSize, or (Huawei) with the NDP in front of the datagrams are
//               dropped whole; Ethernet stripped; ARP for the gateway and IPv6 NS answered with the
//               device MAC; IP handed to the Network while a session is up (else counted).
//   in(bulk)    one NTB toward the host, aggregated with the datapath NtbBuilder up to the
//               negotiated dwNtbInMaxSize: link-level frames first (ARP/NA replies, the Huawei ARP
//               for the host), then the Network's packets framed device MAC -> host MAC. The host
//               MAC is learned from the host's frames; before that a profile with
//               arps_host_before_forwarding ARPs for the host's IPv4 address (once a second) and
//               forwards nothing, as the E3372 does (vectors/ncm_ntb.md N2); other profiles send
//               to the iMACAddress the host was told to use. NAK when there is nothing.
//   in(interrupt)  CONNECTION_SPEED_CHANGE + NETWORK_CONNECTION(1) when the session comes up,
//               NETWORK_CONNECTION(0) when it goes, RESPONSE_AVAILABLE per queued response.
//   out/in(serial AT bulk pair)  profiles with a serial AT port (the E3372's PCUI): command lines
//               to the same AT engine, answers and URCs as bytes (sim/serial_at_port.hpp); works
//               whatever the data alt setting, and also when set_encapsulated_at_dead() killed the
//               encapsulated channel.
// Every Fault of sim/modem.hpp is honoured: stall_bulk_in/out (STALL until clear_halt), unplug and
// unplug_after_in_transfers (gone), garbage/truncated/oversize_ntbs (the next bulk IN transfers),
// lose_response_available, control_answer_delay (announced by next_deadline), drop_session
// (^NDISSTAT:0 + NETWORK_CONNECTION(0); generic: NETWORK_CONNECTION(0), then the link comes back
// by itself after relink_after_drop, 1 s, announced by next_deadline, or when the alt is
// toggled; the network control port's drop-session does the same) and
// ntb_format_reverts_after_alt (the reset format comes back at alt 1). Each one carried out
// counts in faults_injected.
//
// Time: every call reads the modem's clock once (steady_clock unless set_clock() replaced it), so
// tests drive rate-limited sources and delayed answers with a fake clock and never sleep.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "control/cdc_ncm.hpp"
#include "datapath/ethernet.hpp"
#include "datapath/ntb_parse.hpp"
#include "sim/huawei_at.hpp"
#include "sim/serial_at_port.hpp"
#include "sim/modem.hpp"

namespace wwan::sim {

// One device, as a table row.
struct NcmProfile {
  std::string name;  // make_modem's profile name
  DeviceIdentity identity;
  // Where the function lives. On Huawei ff/03/16 control and data are one interface.
  std::uint8_t control_interface = 0;  // wIndex of class requests; owner of the interrupt endpoint
  std::uint8_t data_interface = 1;
  std::uint8_t data_alt_active = 1;    // the alternate setting with the bulk endpoints
  std::uint8_t interrupt_in_endpoint = 0x81;
  std::uint8_t bulk_in_endpoint = 0x82;
  std::uint8_t bulk_out_endpoint = 0x01;
  std::uint8_t network_capabilities = 0;  // bmNetworkCapabilities of the NCM functional descriptor
  std::uint16_t max_segment_size = 1514;  // wMaxSegmentSize of the Ethernet functional descriptor
  cdc::NtbParameters ntb_parameters;      // what GET_NTB_PARAMETERS answers
  // The format after reset (alt 0) and before any SET_NTB_FORMAT. NCM 1.0 §7.2 says NTB16; Huawei
  // answers NTB32 (GET_NTB_FORMAT right after alt 0 read 0x0001 on two E3372h firmwares,
  // linux-usb msg92633).
  ntb::NtbFormat reset_ntb_format = ntb::NtbFormat::Ntb16;
  // Huawei firmware discards OUT NTBs whose NDP precedes the datagrams (Linux NDP_TO_END, anchors §5 #4).
  bool accepts_ndp_in_front_on_out = true;
  // Where the device puts the NDP of its IN NTBs: the E3372 right after the NTH (vectors/ncm_ntb.md
  // N2); at the end only as a benchmark variant (ModemOptions::ndp_at_end_to_host).
  bool ndp_at_end_on_in = false;
  eth::MacAddress device_mac;        // source of the device's frames; what it answers ARP with
  eth::MacAddress mac_address;       // the iMACAddress string: the address the host is told to use
  bool speaks_at = false;            // AT over SEND/GET_ENCAPSULATED_* (Huawei)
  // The serial AT interface's bulk pair (Huawei PCUI, D2 if3 ff/03/02), served by the same AT
  // engine as the encapsulated channel; 0 = the profile has none. Unsolicited lines go to the
  // port that took the last command.
  std::uint8_t serial_at_bulk_in = 0, serial_at_bulk_out = 0;
  bool arps_host_before_forwarding = false;
  cdc::ConnectionSpeed speed;        // reported by CONNECTION_SPEED_CHANGE
  HuaweiAtIdentity at_identity;
  // Profiles without AT: after a network-initiated drop the link comes back by itself this long
  // later (NETWORK_CONNECTION(0), then CONNECTION_SPEED_CHANGE + NETWORK_CONNECTION(1)), as an
  // auto-connecting NCM modem re-attaches; 0 = down until the host toggles the data alt setting.
  std::chrono::milliseconds relink_after_drop{0};
  // The host's address comes from a DHCP server on the link (NetworkConfig::dhcp_server).
  bool dhcp_server = false;
};

// Counters beyond ModemCounters: why things were dropped, per reason.
struct NcmCounters {
  std::uint64_t ntbs_wrong_format = 0;       // OUT NTB16 while the function is in NTB32, or the reverse
  std::uint64_t ntbs_ndp_in_front = 0;       // OUT NTB with the NDP before its datagrams (Huawei drops)
  std::uint64_t ntbs_too_large = 0;          // OUT transfer longer than dwNtbOutMaxSize
  std::uint64_t ntbs_unparsable = 0;         // OUT transfer with no valid NTH at all
  std::uint64_t frames_malformed = 0;        // datagram shorter than an Ethernet header
  std::uint64_t frames_other_ethertype = 0;  // neither IPv4, IPv6 nor ARP
  std::uint64_t frames_to_other_mac = 0;     // unicast to a MAC that is not the device's (still taken)
  std::uint64_t arp_replies_from_host = 0;   // answers to the device's ARP for the host
  std::uint64_t neighbour_advertisements_sent = 0;
  std::uint64_t link_frames_dropped = 0;     // link-level replies that found their queue full
  std::uint64_t datagrams_to_host_dropped = 0;  // larger than the negotiated NTB could ever hold
  std::uint64_t responses_dropped = 0;       // encapsulated responses that found their queue full
  std::uint64_t notifications_dropped = 0;   // notifications that found their queue full
  std::uint64_t garbage_ntbs_sent = 0;
  std::uint64_t truncated_ntbs_sent = 0;
  std::uint64_t oversize_ntbs_sent = 0;
  ntb::NtbCounters out_parse;                // the parser's reasons for the host's NTBs
};

class NcmModem final : public Modem {
 public:
  using ClockFn = std::function<Clock::time_point()>;

  static constexpr std::size_t kMaxQueuedResponses = 32;
  static constexpr std::size_t kMaxQueuedNotifications = 16;
  static constexpr std::size_t kMaxQueuedLinkFrames = 32;
  // How often the device repeats its ARP for the host while the host does not answer.
  static constexpr std::chrono::seconds kArpRetryInterval{1};

  NcmModem(NcmProfile profile, const ModemOptions& options);

  // DeviceModel
  const DeviceIdentity& identity() const override { return profile_.identity; }
  bool set_configuration(std::uint8_t configuration_value) override;
  bool set_interface(std::uint8_t interface_number, std::uint8_t alternate_setting) override;
  bool clear_halt(std::uint8_t endpoint_address) override;
  std::optional<std::size_t> control(const SetupPacket& setup, std::span<std::uint8_t> data) override;
  EndpointResult out(std::uint8_t endpoint_address, std::span<const std::uint8_t> data) override;
  InResult in(std::uint8_t endpoint_address, std::span<std::uint8_t> buffer) override;
  std::optional<Clock::time_point> next_deadline() const override;
  bool connected() const override { return !gone_; }

  // Modem
  std::string_view profile() const override { return profile_.name; }
  Network& network() override { return network_; }
  Faults& faults() override { return faults_; }
  const ModemCounters& counters() const override { return counters_; }
  bool session_active() const override;

  // NCM specifics, for tests and front ends.
  const NcmProfile& ncm_profile() const { return profile_; }
  const NcmCounters& ncm_counters() const { return ncm_counters_; }
  HuaweiAt* at() { return at_ ? &*at_ : nullptr; }  // nullptr when the profile speaks no AT
  const SerialAtPort* serial_at() const { return serial_at_ ? &*serial_at_ : nullptr; }
  // The encapsulated AT channel is dead (Airtel E3372h-607, MS2372h-517 "no response from
  // cdc-wdm0", anchors §0 #3): SEND_ENCAPSULATED_COMMAND is ACKed and never executed,
  // GET_ENCAPSULATED_RESPONSE answers zero bytes. The serial AT port still works.
  void set_encapsulated_at_dead(bool dead) { encapsulated_at_dead_ = dead; }
  void set_clock(ClockFn clock) { clock_ = std::move(clock); }
  ntb::NtbFormat ntb_format() const { return format_; }
  std::uint32_t ntb_in_size() const { return ntb_in_size_; }  // negotiated dwNtbInMaxSize
  std::uint8_t data_alternate_setting() const { return data_alt_; }
  std::optional<eth::MacAddress> learned_host_mac() const { return host_mac_; }

 private:
  struct Notification {
    std::array<std::uint8_t, cdc::kNotificationMaxSize> bytes{};
    std::size_t length = 0;
  };
  struct DelayedResponse {
    Clock::time_point due;
    std::string text;
  };

  void service(Clock::time_point now);  // faults and timers that act at "the next transaction"
  void sync_session();                  // notifications for a session that came or went
  void reset_function();                // NCM 1.0 §7.2
  bool data_active() const { return configuration_ != 0 && data_alt_ == profile_.data_alt_active; }
  void queue_notification(const Notification& n);
  void queue_response(std::string text, Clock::time_point now);
  void make_response_available(std::string text);
  void deliver_unsolicited(Clock::time_point now);  // the AT engine's URCs to the port in use
  void queue_link_frame(std::span<const std::uint8_t> frame);
  std::optional<std::size_t> class_request(const SetupPacket& setup, std::span<std::uint8_t> data, Clock::time_point now);
  void receive_ntbs(std::span<const std::uint8_t> transfer, Clock::time_point now);
  void receive_frame(std::span<const std::uint8_t> frame, Clock::time_point now);
  InResult send_ntb(std::span<std::uint8_t> buffer, Clock::time_point now);
  InResult send_notification(std::span<std::uint8_t> buffer);
  bool forwarding() const;  // IP may flow toward the host now
  eth::MacAddress host_destination() const { return host_mac_.value_or(profile_.mac_address); }

  NcmProfile profile_;
  std::vector<std::pair<std::uint8_t, std::uint8_t>> alt_settings_;  // (interface, alternate) that exist
  Network network_;
  Faults faults_;
  ModemCounters counters_;
  NcmCounters ncm_counters_;
  std::optional<HuaweiAt> at_;
  std::optional<SerialAtPort> serial_at_;
  bool urcs_to_serial_ = false;        // the last command came in on the serial port
  bool encapsulated_at_dead_ = false;
  ClockFn clock_ = [] { return Clock::now(); };

  bool gone_ = false;
  std::uint8_t configuration_ = 1;
  std::uint8_t data_alt_ = 0;
  bool bulk_in_halted_ = false;
  bool bulk_out_halted_ = false;
  bool link_up_ = false;            // profiles without AT: the session is the data alt setting
  std::optional<Clock::time_point> relink_at_;  // profiles without AT: the link returns after a drop
  bool session_reported_ = false;   // what the last NETWORK_CONNECTION said

  ntb::NtbFormat format_;
  std::uint32_t ntb_in_size_ = 0;
  std::uint16_t ntb_in_max_datagrams_ = 0;
  bool crc_mode_ = false;
  std::uint16_t max_datagram_size_ = 0;
  std::uint16_t packet_filter_ = 0;
  eth::MacAddress net_address_;
  std::uint16_t in_sequence_ = 0;

  std::deque<DelayedResponse> delayed_responses_;
  std::deque<std::string> responses_;
  std::deque<Notification> notifications_;
  std::size_t notification_offset_ = 0;  // bytes of the front notification already sent
  std::deque<std::vector<std::uint8_t>> link_frames_;

  std::optional<eth::MacAddress> host_mac_;
  std::optional<Clock::time_point> last_arp_for_host_;
  std::vector<std::uint8_t> staged_frame_;  // one Ethernet frame that did not fit the last NTB
  std::size_t staged_length_ = 0;
  std::minstd_rand garbage_rng_{0x5eed};
  bool imix_to_host_ = false;      // ModemOptions::imix_to_host (a benchmark variant)
  std::uint64_t imix_index_ = 0;   // position in the IMIX pattern
};

// The two profile rows (make_huawei_e3372 / make_generic_ncm wrap them in an NcmModem).
NcmProfile huawei_e3372_profile(const ModemOptions& options);
NcmProfile generic_ncm_profile(const ModemOptions& options);

// What the rows of functions built like Linux's f_ncm share (generic-ncm; quectel-ncm, whose NCM
// values are ASSUMED f_ncm's, sim/quectel_ncm.hpp). The string table: 1 iManufacturer, 2 iProduct,
// 3 iSerialNumber, 4 the communication interface's, 5 iMACAddress (`mac_address`, 12 hex digits,
// CDC ECM 1.2 §5.4), 6 the data interface's.
std::map<std::uint8_t, std::string> f_ncm_strings(const std::string& manufacturer, const std::string& product,
                                                  const std::string& serial, const eth::MacAddress& mac_address);
// The function's parameters: bmNetworkCapabilities 0x11 (packet filter + CRC mode), wMaxSegmentSize
// 1514, NTB16 + NTB32 with 16 KiB both ways, NTB16 after reset (NCM 1.0 §7.2), f_ncm's high-speed
// bit rate as the connection speed.
void set_f_ncm_parameters(NcmProfile& p);

}  // namespace wwan::sim
