// The Quectel usbnet data session (RM500Q / RM520N / EC2x ... with AT+QCFG="usbnet",5 = NCM, or
// 1 = ECM): AT commands on the module's serial AT interface (Quectel has no encapsulated AT
// channel on its NCM function; the quirk table's at_over_serial), as ModemManager's Quectel ECM
// bearer and quectel-CM's "ECM_RNDIS_NCM mode" drive it (control/quectel_at.hpp has the sources).
// A pure state machine (control/session.hpp), like control/huawei_session.hpp.
//
// The sequence, one command at a time (control/at_channel.hpp frames and times them):
//   ATE0                           echo off (optional)
//   AT+CPIN? [AT+CPIN="<pin>"]     as the Huawei session: READY, or the PIN once; PUK / no SIM fail
//   AT+CFUN? [AT+CFUN=1]           radio on if it is off
//   AT+CGDCONT=<cid>,"<type>","apn"  the APN and PDP type (ERROR tolerated)
//   [AT+QICSGP=<cid>,...]          only with --user/--password: the context's credentials
//   AT+QNETDEVCTL=1,<cid>,1        connect once, +QNETDEVSTATUS URCs on; state connecting
//                                  (Unisoc firmware: AT+QNETDEVCTL=<cid>,1,1, options.qnetdevctl_order
//                                  from the quirk row; the hang-ups below follow the same order)
//   AT+QNETDEVSTATUS=<cid>         every poll_interval until it reports an address (ERROR = not yet,
//                                  quectel-CM's rule), within connect_timeout; the URC
//                                  "+QNETDEVSTATUS: 1" polls at once. A bare OK (no status line)
//                                  is the Qualcomm firmware's URC switch (RM5x0N manual §9.9): the
//                                  session then reads AT+QNETDEVSTATUS? instead, whose call-state
//                                  lines "<on_off>,<state>,<IP_type>,<cid>" say connected when a
//                                  line of our cid has state >= 1 (control/quectel_at.hpp)
//   -> connected                   the link is up. The session reports NO address: the host's
//                                  address comes from DHCP on the link (control/link_autoconf.hpp,
//                                  dhcp4), which is authoritative — in the module's NAT mode the
//                                  DHCP lease (192.168.42.2 in quectel-CM's log) is not the WAN
//                                  address QNETDEVSTATUS shows (10.109.166.163 there). What the
//                                  poll said is kept in last_status() for logs.
//                                  AT+QNETDEVSTATUS=<cid> every connected_poll_interval.
// A network-initiated drop: the URC "+QNETDEVSTATUS: 0", or a poll whose answer has no address,
// or connected_failed_polls ERROR / unparsable answers in a row (a NETWORK_CONNECTION(0)
// notification of the NCM function polls at once, it is not trusted alone) -> AT+QNETDEVCTL=0,
// <cid>,0 (so the redial starts clean), disconnected, drops + 1, redial after redial_initial,
// doubled per failed attempt up to redial_max, reset once connected. A failed attempt (dial
// ERROR, no address within connect_timeout) hangs up the same way and redials. stop():
// AT+QNETDEVCTL=0,<cid>,0 (ERROR on a call that is already down is expected) -> stopped.
//
// A +QNETDEVSTATUS line that arrives inside another command's answer (the channel files lines it
// does not know as unsolicited under the command in flight) is taken as the URC it is.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "control/at_command_queue.hpp"
#include "control/quectel_at.hpp"
#include "control/session.hpp"

namespace wwan::control {

struct QuectelSessionOptions {
  int cid = 1;                                        // the PDP context QNETDEVCTL dials
  QnetdevctlOrder qnetdevctl_order = QnetdevctlOrder::op_cid_urc;  // the quirk row's (Unisoc: cid first)
  bool echo_off = true;                               // send ATE0 first
  std::chrono::milliseconds poll_interval{1000};      // AT+QNETDEVSTATUS while connecting (quectel-CM: 1 s)
  std::chrono::milliseconds connect_timeout{30000};   // dial OK -> an address (quectel-CM gives up after 15 polls)
  std::chrono::milliseconds connected_poll_interval{15000};
  unsigned connected_failed_polls = 3;                // ERROR / unparsable answers in a row while connected = drop
  std::chrono::milliseconds sim_retry_interval{1000};
  unsigned sim_retries = 10;
  at::AtChannelOptions channel;
};

class QuectelSession final : public Session {
 public:
  explicit QuectelSession(SessionSettings settings, QuectelSessionOptions options = {});

  void start(Clock::time_point now) override;
  void stop(Clock::time_point now) override;
  void on_response(std::span<const std::uint8_t> bytes, Clock::time_point now) override;
  void on_notification(const cdc::Notification& notification, Clock::time_point now) override;
  void on_timer(Clock::time_point now) override;
  std::optional<Clock::time_point> next_timer() const override;
  std::vector<ByteVector> take_commands() override;
  const SessionStatus& status() const override { return status_; }

  const at::AtChannel& channel() const { return commands_.channel(); }
  // The last addressing-form (or call-state line of our cid) +QNETDEVSTATUS the module gave (for logs).
  const std::optional<quectel::NetdevStatus>& last_status() const { return last_status_; }
  // true once AT+QNETDEVSTATUS=<cid> answered a bare OK: the status is read with AT+QNETDEVSTATUS?.
  bool reads_call_state() const { return status_read_form_; }
  std::chrono::milliseconds current_redial_delay() const { return backoff_; }

 private:
  enum class Step : std::uint8_t { echo_off, cpin_query, cpin_enter, cfun_query, cfun_set, cgdcont, qicsgp, dial, poll, hangup, stop };
  enum class TimerKind : std::uint8_t { none, poll, redial, sim_retry };

  void submit(Step step, std::string command, Clock::time_point now, std::uint8_t retries = 0);
  void on_answer(Step step, const at::AtResponse& r, Clock::time_point now);
  void on_result(Step step, const at::AtResponse& r, Clock::time_point now);
  void on_cpin(const at::AtResponse& r, Clock::time_point now);
  void on_cpin_enter(const at::AtResponse& r, Clock::time_point now);
  void on_poll(const at::AtResponse& r, Clock::time_point now);
  void on_urc(bool up, const std::string& line, Clock::time_point now);
  void on_unsolicited(const std::string& line, Clock::time_point now);

  void begin_attempt(Clock::time_point now);
  void after_context(Clock::time_point now);
  void dial(Clock::time_point now);
  void become_connected(Clock::time_point now);
  void attempt_failed(std::string why, Clock::time_point now);
  void dropped(std::string why, Clock::time_point now);
  void schedule_redial(Clock::time_point now);
  void retry_sim(std::string why, Clock::time_point now);
  void fail(std::string why);
  void set_error(std::string why);
  void set_timer(TimerKind kind, Clock::time_point at);
  void poll_now(Clock::time_point now);

  SessionSettings settings_;
  QuectelSessionOptions options_;
  at::CommandQueue<Step> commands_;  // the AT channel and the step of each command not yet answered
  SessionStatus status_;

  TimerKind timer_kind_ = TimerKind::none;
  std::optional<Clock::time_point> timer_;
  std::optional<Clock::time_point> connect_deadline_;
  std::chrono::milliseconds backoff_;

  bool dial_ok_ = false;   // AT+QNETDEVCTL=1 answered OK in this attempt
  bool pin_sent_ = false;
  unsigned sim_retries_left_ = 0;
  unsigned failed_polls_ = 0;  // ERROR / unparsable poll answers in a row while connected
  bool status_read_form_ = false;  // poll with AT+QNETDEVSTATUS? (see the header)
  std::optional<quectel::NetdevStatus> last_status_;
};

}  // namespace wwan::control
