// The MBIM data session as a pure state machine (control::Session): MBIM messages and time in,
// MBIM messages (already fragmented) and a status out. The session runner does all I/O.
//
// The ladder, one command in flight at a time, each step an explicit state (OpenBSD umb(4)'s
// umb_newstate ladder, anchors.md §3.6; the order of anchors §4.4, ModemManager and umbim):
//
//   Open ─(OPEN_DONE failure / FUNCTION_ERROR)─▶ CloseBeforeOpen ─▶ Open        (libmbim "close
//   │                                                                             before open", §4.2)
//   DeviceCaps ─▶ SubscriberReady ─(NotInitialized: wait for the indication, re-query)
//   │             └─(SIM not inserted / bad SIM / failure)─▶ failed
//   Pin ─(locked)─▶ PinEnter (settings.pin; missing or rejected ─▶ failed, never retried)
//   RadioQuery ─▶ RadioOn ─(refused, or HwRadioState stays off)─┬─ no fcc_unlock ─▶ failed
//   │                                                           └─ FccClientId ─▶ FccAuthenticate
//   │                                                               ─▶ RadioOn again (§4.5)
//   RegisterState ─(not registered: wait for the indication, re-query)
//   PacketAttach ─(attaching: wait for the indication)
//   Connect (session 0) ─(activating: wait)─▶ IpConfiguration ─▶ Up = connected
//
//   Up ─(CONNECT deactivated / PACKET_SERVICE detached / REGISTER_STATE lost, indicated)─▶
//   RedialWait (disconnected, exponential back-off settings.redial_*) ─▶ RegisterState ─▶ ... ─▶ Up
//   stop(): Deactivate (CONNECT deactivate, if a context may be up) ─▶ Close ─▶ stopped
//
// Robustness (the modem is untrusted, DESIGN.md):
//   - every answer is matched by TransactionId (and service + CID); anything else is counted as
//     stale and ignored, so a late answer to a timed-out command cannot advance the ladder;
//   - every command has a deadline (settings.command_timeout) and is re-sent with a new
//     TransactionId up to kMaxAttempts times; FUNCTION_ERROR for our command is a retry too,
//     FUNCTION_ERROR NOT_OPENED from any state means the function was closed under us: reopen;
//   - commands larger than the device's wMaxControlMessage leave take_commands() already split
//     (mbim::fragment); answers are reassembled with bounded memory (ReassemblyLimits) and a
//     partial answer older than libmbim's 1250 ms inter-fragment limit is dropped;
//   - a wait for an indication never depends on the indication alone: the step is re-queried
//     every command_timeout (firmware loses indications as it loses RESPONSE_AVAILABLE).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "control/mbim_wire.hpp"
#include "control/session.hpp"

namespace wwan::control {

// What the session saw that was not a clean answer (counted, never fatal on its own).
struct MbimSessionCounters {
  std::uint64_t messages = 0;            // whole messages received (after reassembly)
  std::uint64_t fragments = 0;           // GET_ENCAPSULATED_RESPONSE payloads received
  std::uint64_t stale_answers = 0;       // answers to no command in flight (late, duplicated, foreign)
  std::uint64_t bad_messages = 0;        // failed validation / reassembly / payload decoding
  std::uint64_t fragment_timeouts = 0;   // partial answers dropped after kInterFragmentTimeout
  std::uint64_t indications = 0;         // INDICATE_STATUS messages
  std::uint64_t timeouts = 0;            // commands that got no answer within command_timeout
  std::uint64_t retries = 0;             // commands re-sent (timeout, FUNCTION_ERROR, BUSY)
  std::uint64_t function_errors = 0;     // FUNCTION_ERROR messages
  std::uint64_t reopens = 0;             // OPEN sequences restarted (NOT_OPENED, failed OPEN)
  std::uint64_t commands_sent = 0;       // whole messages handed to take_commands()
};

// What DEVICE_CAPS said (for logs and `wwan-dp monitor`); empty until answered.
struct MbimDeviceInfo {
  std::string device_id;      // IMEI
  std::string firmware_info;
  std::string hardware_info;
  std::uint32_t max_sessions = 0;
};

class MbimSession final : public Session {
 public:
  // Ladder steps (exposed for tests and logs; the public state is status().state).
  enum class Step : std::uint8_t {
    Idle,
    Open,
    CloseBeforeOpen,
    DeviceCaps,
    SubscriberReady,
    Pin,
    PinEnter,
    RadioQuery,
    RadioOn,
    FccClientId,
    FccAuthenticate,
    RegisterState,
    PacketAttach,
    Connect,
    IpConfiguration,
    Up,
    RedialWait,
    Deactivate,
    Close,
    Stopped,
    Failed,
  };

  // Attempts per command (first send + retries) before the step gives up.
  static constexpr unsigned kMaxAttempts = 3;
  // libmbim MAX_TIME_BETWEEN_FRAGMENTS_MS (anchors §3.3).
  static constexpr std::chrono::milliseconds kInterFragmentTimeout{1250};
  // A reassembled answer larger than this is dropped (a DEVICE_CAPS or IP_CONFIGURATION answer is
  // a few hundred bytes; 64 KiB bounds a hostile device).
  static constexpr std::uint32_t kMaxAnswerBytes = 65536;
  // The IPS session this driver uses (NDP signature IPS0, anchors §1.9 / §4.4).
  static constexpr std::uint32_t kSessionId = 0;

  // `max_control_message`: wMaxControlMessage of the MBIM functional descriptor. Commands are
  // fragmented to it; OPEN announces min(it, 4096) as the host's MaxControlTransfer (anchors §4.4
  // step 1), so answers arrive in fragments of at most that. Clamped to [64, 4096] (OpenBSD
  // MBIM_CTRLMSG_MINLEN; a descriptor saying less is broken, more is never needed).
  MbimSession(SessionSettings settings, std::uint32_t max_control_message);

  void start(Clock::time_point now) override;
  void stop(Clock::time_point now) override;
  void on_response(std::span<const std::uint8_t> bytes, Clock::time_point now) override;
  // MBIM uses only RESPONSE_AVAILABLE, which the runner already acts on: nothing to do here.
  void on_notification(const cdc::Notification& notification, Clock::time_point now) override;
  void on_timer(Clock::time_point now) override;
  std::optional<Clock::time_point> next_timer() const override;
  std::vector<ByteVector> take_commands() override;
  const SessionStatus& status() const override { return status_; }

  // The MaxControlTransfer sent in OPEN: the wLength the runner should use for
  // GET_ENCAPSULATED_RESPONSE (the device never sends a fragment larger than this).
  std::uint32_t max_control_transfer() const { return max_control_transfer_; }
  Step step() const { return step_; }
  const MbimSessionCounters& counters() const { return counters_; }
  const MbimDeviceInfo& device_info() const { return device_info_; }
  bool fcc_authenticated() const { return fcc_authenticated_; }

 private:
  struct Pending {
    mbim::MessageType type = mbim::MessageType::Command;
    mbim::TransactionId transaction_id = 0;
    mbim::Uuid service;
    std::uint32_t cid = 0;
    mbim::CommandType command_type = mbim::CommandType::Query;
    ByteVector information_buffer;  // kept to re-send with a new TransactionId
    Clock::time_point deadline;
    unsigned attempts = 0;
  };

  // Sending.
  void send(mbim::MessageType type, const mbim::Uuid& service, std::uint32_t cid, mbim::CommandType command_type,
            ByteVector information_buffer, Clock::time_point now);
  void transmit(Clock::time_point now);
  void query(mbim::BasicConnectCid cid, ByteVector information_buffer, Clock::time_point now);
  void set(mbim::BasicConnectCid cid, ByteVector information_buffer, Clock::time_point now);
  void retry_or_give_up(Clock::time_point now, const std::string& why);

  // The ladder.
  void enter(Step step, Clock::time_point now);
  void wait_for_indication(Clock::time_point now, std::string why);
  void fail(std::string error);
  void dial_failed(Clock::time_point now, std::string error);
  void dropped(Clock::time_point now, std::string why);
  void reopen(Clock::time_point now, std::string why);
  void connected(const mbim::IpConfigurationInfo& info);

  // Receiving.
  void handle_message(mbim::Bytes message, Clock::time_point now);
  void on_open_done(mbim::Status status, Clock::time_point now);
  void on_close_done(Clock::time_point now);
  void on_function_error(const mbim::ErrorMessage& e, Clock::time_point now);
  void on_command_done(mbim::Status status, mbim::Bytes info, Clock::time_point now);
  void on_indication(const mbim::IndicateStatusMessage& m, Clock::time_point now);

  // Step answers.
  void on_subscriber_ready(mbim::Status status, mbim::Bytes info, Clock::time_point now);
  void on_pin(mbim::Status status, mbim::Bytes info, Clock::time_point now);
  void on_pin_enter(mbim::Status status, mbim::Bytes info, Clock::time_point now);
  void on_radio(mbim::Status status, mbim::Bytes info, Clock::time_point now);
  void on_fcc_client_id(mbim::Status status, mbim::Bytes info, Clock::time_point now);
  void on_fcc_authenticate(mbim::Status status, mbim::Bytes info, Clock::time_point now);
  void on_register_state(const mbim::RegistrationStateInfo& info, Clock::time_point now);
  void on_packet_service(const mbim::PacketServiceInfo& info, Clock::time_point now);
  void on_connect(mbim::Status status, mbim::Bytes info, Clock::time_point now);
  void on_ip_configuration(mbim::Status status, mbim::Bytes info, Clock::time_point now);

  bool dialing() const;
  void set_state(SessionState s) { status_.state = s; }

  SessionSettings settings_;
  std::uint32_t max_control_message_;   // host -> device fragment size
  std::uint32_t max_control_transfer_;  // device -> host, announced in OPEN
  mbim::Reassembler reassembler_;
  std::optional<Clock::time_point> partial_since_;  // first fragment of the partial answer

  Step step_ = Step::Idle;
  SessionStatus status_;
  MbimSessionCounters counters_;
  MbimDeviceInfo device_info_;

  mbim::TransactionId next_transaction_id_ = 1;
  std::uint16_t next_qmi_transaction_id_ = 1;
  std::optional<Pending> pending_;
  std::vector<ByteVector> outbox_;  // the fragments of the one message in flight, not yet taken
  std::optional<Clock::time_point> poll_at_;    // re-query a step that waits for an indication
  std::optional<Clock::time_point> redial_at_;  // RedialWait ends
  std::chrono::milliseconds redial_delay_;      // the next back-off

  bool function_open_ = false;   // OPEN_DONE(success) seen, no CLOSE since
  bool close_tried_ = false;     // "close before open" done once for this OPEN sequence
  unsigned reopens_without_progress_ = 0;
  bool pin_entered_ = false;
  bool ready_state_locked_ = false;  // SUBSCRIBER_READY_STATUS said DeviceLocked
  bool fcc_tried_ = false;
  bool fcc_authenticated_ = false;
  std::uint8_t qmi_dms_client_id_ = 0;
  bool context_may_be_active_ = false;  // CONNECT activate was sent since the last deactivation
};

const char* to_string(MbimSession::Step step);

}  // namespace wwan::control
