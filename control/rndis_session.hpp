// The RNDIS host session as a pure state machine (control::Session): RNDIS control messages and
// time in, control messages and a status out. It rides the encapsulated-command plumbing exactly
// as the MBIM and Huawei sessions do: take_commands() goes out with SEND_ENCAPSULATED_COMMAND,
// each GET_ENCAPSULATED_RESPONSE answer comes back through on_response(). The session runner does
// all I/O; tests drive it with a fake clock.
//
// The ladder (what rndis_host's generic_rndis_bind does, plus what it leaves out), one command in
// flight at a time, each step an explicit state:
//
//   Initialize (REMOTE_NDIS_INITIALIZE_MSG: our MaxTransferSize) ─(status != success)─▶ failed
//   QueryMac (OID_802_3_PERMANENT_ADDRESS: the MAC the HOST uses; refused or not 6 bytes ─▶ failed)
//   QueryMaxFrameSize (OID_GEN_MAXIMUM_FRAME_SIZE)   ┐ optional: a refusal keeps the default
//   QueryLinkSpeed (OID_GEN_LINK_SPEED)              │ and is counted (optional_refused)
//   QueryMediaConnect (OID_GEN_MEDIA_CONNECT_STATUS) ┘
//   SetPacketFilter (OID_GEN_CURRENT_PACKET_FILTER = settings.packet_filter; the device sends no
//                    data before a nonzero filter) ─(refused)─▶ failed
//   Up: connected while the medium is connected, disconnected while it is not (INDICATE_STATUS
//       MEDIA_CONNECT / MEDIA_DISCONNECT move between them and are reported as LinkEvents)
//     ─(no message from the device for keepalive_interval)─▶ Keepalive (KEEPALIVE_MSG)
//         ─(KEEPALIVE_CMPLT success)─▶ Up
//         ─(no answer after kMaxAttempts, or status != success: MS-RNDIS says reset)─▶ Reset
//     Reset (RESET_MSG) ─(RESET_CMPLT, AddressingReset set)─▶ SetPacketFilter ─▶ Up
//                       ─(RESET_CMPLT otherwise)─▶ Up
//                       ─(no answer after kMaxAttempts)─▶ failed ("stopped answering")
//   stop(): HALT_MSG (no completion exists, MS-RNDIS §2.2.4) ─▶ stopped
//
// Robustness (the modem is untrusted, DESIGN.md):
//   - completions are matched by type and RequestId (RESET_CMPLT, which has none, by type);
//     anything else is counted as stale and ignored, so a late answer cannot advance the ladder;
//   - RequestIds count up from 1 and skip 0 (rndis_host uses 0 for HALT/RESET); a retry gets a
//     new one;
//   - every command has a deadline (command_timeout) and is re-sent up to kMaxAttempts times;
//   - the device's own KEEPALIVE_MSG is answered at once with KEEPALIVE_CMPLT (rndis_host does
//     the same from inside its command loop); its INDICATE_STATUS at any step is taken;
//   - INITIALIZE_CMPLT values are clamped (datapath/rndis_packet.hpp sanitize_packet_out_params;
//     a MaxTransferSize that cannot carry one Ethernet header fails the session, as in rndis_host);
//     OID answers are range-checked (maximum frame size within [kMinFrameSize, kMaxFrameSize],
//     a MAC of exactly 6 unicast bytes).
//
// The IP configuration is not RNDIS's business: the FM350 learns it over its AT port (AT+CGPADDR /
// AT+CGCONTRDP, control/fm350_session.hpp) and control/rndis_at_runner.hpp reports it. The session
// reports `settings.ip` while connected (like LinkSession's --static-ipv4) for whoever dials
// otherwise and sets it with set_ip_config().
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "control/rndis_wire.hpp"
#include "control/session.hpp"
#include "datapath/ethernet.hpp"
#include "datapath/rndis_packet.hpp"

namespace wwan::control {

struct RndisSessionSettings {
  // INITIALIZE_MSG MaxTransferSize: the largest bulk-IN transfer we accept. 16384 is what Windows
  // asks (MS-RNDIS USB examples, rndis_host's comment "max transfer (in spec) is 0x4000"); it lets
  // the device aggregate ~10 full frames per transfer. The RX buffers must be at least this big.
  std::uint32_t host_max_transfer_size = 16384;
  std::uint32_t packet_filter = rndis::kPacketTypeDirected | rndis::kPacketTypeMulticast | rndis::kPacketTypeBroadcast;
  // rndis_host's RNDIS_CONTROL_TIMEOUT_MS is 5 s.
  std::chrono::milliseconds command_timeout{5000};
  // MS-RNDIS: KEEPALIVE after this long without any message from the device (the USB mapping's
  // KeepAliveTimeoutPeriod; 5 s as Windows uses). note_device_activity() counts data too.
  std::chrono::milliseconds keepalive_interval{5000};
  // wMaxPacketSize of the bulk-OUT endpoint, for the builder's short-packet rule.
  std::uint16_t bulk_out_max_packet_size = 512;
  IpConfig ip;  // reported while connected; see the top of this file
};

struct RndisSessionCounters {
  std::uint64_t messages = 0;          // decoded control messages
  std::uint64_t bad_messages = 0;      // failed decoding (ControlError) or a bad OID answer
  std::uint64_t stale_answers = 0;     // completions for no command in flight (late, duplicated, foreign)
  std::uint64_t unexpected = 0;        // host-bound messages a device should not send (INITIALIZE_MSG, ...)
  std::uint64_t timeouts = 0;
  std::uint64_t retries = 0;
  std::uint64_t optional_refused = 0;  // optional OID queries the device refused (defaults kept)
  std::uint64_t indications = 0;       // INDICATE_STATUS of any status
  std::uint64_t other_indications = 0; // ... not media connect / disconnect
  std::uint64_t keepalives_sent = 0;
  std::uint64_t keepalives_answered = 0;  // device KEEPALIVE_MSGs we answered
  std::uint64_t resets = 0;            // RESET_MSG sequences started
  std::uint64_t commands_sent = 0;
};

// What INITIALIZE and the queries told us, clamped, for the data path and for logs.
struct RndisDeviceInfo {
  std::uint32_t major_version = 0, minor_version = 0;
  std::uint32_t device_flags = 0, medium = 0;
  rndis::PacketOutParams out;               // sanitised: what the TX builder must respect
  rndis::PacketOutOverrides out_overridden; // which of the device's values were replaced
  std::uint32_t host_max_transfer_size = 0; // what we asked for: the RX transfer size
  eth::MacAddress mac;                      // OID_802_3_PERMANENT_ADDRESS: the host's address
  std::uint32_t max_frame_size = 1500;      // OID_GEN_MAXIMUM_FRAME_SIZE: the MTU (payload bytes)
  std::uint64_t link_speed_bits_per_s = 0;  // OID_GEN_LINK_SPEED x 100; 0 = not reported
  bool media_connected = false;
};

// A media connect / disconnect the device indicated (or the initial query found), in order.
struct RndisLinkEvent {
  bool up = false;
  Clock::time_point at;
};

class RndisSession final : public Session {
 public:
  enum class Step : std::uint8_t {
    Idle,
    Initialize,
    QueryMac,
    QueryMaxFrameSize,
    QueryLinkSpeed,
    QueryMediaConnect,
    SetPacketFilter,
    Up,
    Keepalive,
    Reset,
    Stopped,
    Failed,
  };

  static constexpr unsigned kMaxAttempts = 3;
  // OID_GEN_MAXIMUM_FRAME_SIZE outside this is a device bug: the default 1500 is kept. 576 is the
  // smallest MTU IPv4 hosts must accept (RFC 791); 1280 would do for IPv6 only.
  static constexpr std::uint32_t kMinFrameSize = 576;
  static constexpr std::uint32_t kMaxFrameSize = 65535;

  explicit RndisSession(RndisSessionSettings settings);

  void start(Clock::time_point now) override;
  void stop(Clock::time_point now) override;
  void on_response(std::span<const std::uint8_t> bytes, Clock::time_point now) override;
  // RNDIS uses only RESPONSE_AVAILABLE (which the runner acts on): nothing to do here.
  void on_notification(const cdc::Notification& notification, Clock::time_point now) override;
  void on_timer(Clock::time_point now) override;
  std::optional<Clock::time_point> next_timer() const override;
  std::vector<ByteVector> take_commands() override;
  const SessionStatus& status() const override { return status_; }

  // The IP configuration to report while connected (the AT side learned it).
  void set_ip_config(IpConfig ip);
  // The data path saw traffic from the device at `now`: postpones the keepalive (MS-RNDIS counts
  // "control or data traffic from the device").
  void note_device_activity(Clock::time_point now);
  // Link changes since the last call, oldest first (bounded: kMaxPendingLinkEvents).
  std::vector<RndisLinkEvent> take_link_events();
  static constexpr std::size_t kMaxPendingLinkEvents = 64;

  Step step() const { return step_; }
  const RndisSessionCounters& counters() const { return counters_; }
  const RndisDeviceInfo& device_info() const { return info_; }
  // True once the packet filter is set and until stop / failure / a reset: data may be exchanged.
  bool data_enabled() const { return step_ == Step::Up || step_ == Step::Keepalive; }

 private:
  struct Pending {
    std::uint32_t type = 0;         // the message type sent (completion = type | kCompletion)
    std::uint32_t request_id = 0;   // 0 for RESET_MSG
    std::uint32_t oid = 0;          // QUERY / SET
    ByteVector information_buffer;  // SET: kept to re-send
    Clock::time_point deadline;
    unsigned attempts = 0;
  };

  void enter(Step step, Clock::time_point now);
  void transmit(Clock::time_point now);
  void retry_or_give_up(Clock::time_point now, const std::string& why);
  void fail(std::string error);
  void after_setup_step(Clock::time_point now);
  // `initial`: the MEDIA_CONNECT_STATUS query's answer, reported as an event whatever it is.
  void link(bool up, Clock::time_point now, bool initial = false);
  void publish_state();
  std::uint32_t next_request_id();

  void handle(const rndis::DecodedControl& d, Clock::time_point now);
  bool matches(std::uint32_t completion_type, std::optional<std::uint32_t> request_id);
  void on_initialize_cmplt(const rndis::InitializeCmplt& c, Clock::time_point now);
  void on_query_cmplt(const rndis::QueryCmplt& c, Clock::time_point now);
  void on_set_cmplt(const rndis::SetCmplt& c, Clock::time_point now);
  void on_keepalive_cmplt(const rndis::KeepaliveCmplt& c, Clock::time_point now);
  void on_reset_cmplt(const rndis::ResetCmplt& c, Clock::time_point now);
  void on_indicate_status(const rndis::IndicateStatus& s, Clock::time_point now);

  RndisSessionSettings settings_;
  Step step_ = Step::Idle;
  SessionStatus status_;
  RndisSessionCounters counters_;
  RndisDeviceInfo info_;
  std::uint32_t next_request_id_ = 1;
  std::optional<Pending> pending_;
  std::vector<ByteVector> outbox_;
  std::vector<RndisLinkEvent> link_events_;
  Clock::time_point last_device_message_{};
  bool ever_connected_ = false;
};

const char* to_string(RndisSession::Step step);

}  // namespace wwan::control
