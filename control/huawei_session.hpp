// The Huawei NDIS/NCM data session (E3372, E3276, ME909, MS2372 ... in NCM mode): AT commands over
// the CDC encapsulated-command channel, as ModemManager's Huawei plugin drives it
// (reference/anchors.md §3.2, vectors/modemmanager_huawei_at.md §A). A pure state machine
// (control/session.hpp): the runner sends take_commands() with SEND_ENCAPSULATED_COMMAND, feeds
// GET_ENCAPSULATED_RESPONSE payloads to on_response(), interrupt notifications to
// on_notification(), and calls on_timer() at next_timer(). The same bytes may travel over the
// modem's serial AT port instead (control/at_transport.hpp: --at-port serial, or the fallback when
// the encapsulated channel is dead); the session does not know which.
//
// The sequence, one command at a time (control/at_channel.hpp frames and times them):
//   ATE0                        echo off (optional; the channel tolerates echo either way)
//   AT+CPIN?                    READY, or SIM PIN -> AT+CPIN="<pin>" when SessionSettings::pin is
//                               set (once: a rejected PIN is not retried, so the SIM never reaches
//                               PUK through us), else failed with a one-line reason; SIM PUK,
//                               SIM not inserted, other locks -> failed. SIM busy / ERROR right
//                               after boot -> asked again (sim_retry_interval, sim_retries).
//   AT+CFUN? [AT+CFUN=1]        radio on if it is off
//   AT+CGDCONT=1,"<type>","apn" the PDP type for SessionSettings::families (errors tolerated)
//   AT^NDISDUP=1,1,"apn"[,...]  state connecting; then the link comes up, seen by the URC
//                               ^NDISSTAT: or by polling AT^NDISSTATQRY? every poll_interval
//                               (ModemManager: 1 s), within connect_timeout
//   AT^DHCP? [AT^DHCPV6?]       the IPv4 configuration (and IPv6 when asked for; ERROR tolerated)
//   -> connected                ip_config() filled; AT^NDISSTATQRY? every connected_poll_interval
//                               in case a ^NDISSTAT URC is lost
// A network-initiated drop (URC ^NDISSTAT with the family down, or AT^NDISSTATQRY? saying so; a
// NETWORK_CONNECTION(0) notification triggers that query at once rather than being trusted alone,
// because notifications from before a redial can arrive late) -> disconnected, drops + 1, redial
// after SessionSettings::redial_initial, doubled per failed attempt up to redial_max, reset once
// connected. A failed attempt (NDISDUP error, no link within connect_timeout) hangs up with
// AT^NDISDUP=1,0 and redials the same way. stop(): AT^NDISDUP=1,0 (its ERROR on an already
// disconnected bearer is expected, vectors §A) -> stopped.
//
// Boot noise (^BOOT, ^RSSI, ^SIMST, ...) before and inside answers is classified unsolicited by the
// channel and ignored here.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "control/at_command_queue.hpp"
#include "control/huawei_at.hpp"
#include "control/session.hpp"

namespace wwan::control {

struct HuaweiSessionOptions {
  int cid = 1;                                        // the PDP context ^NDISDUP dials
  bool echo_off = true;                               // send ATE0 first
  std::chrono::milliseconds poll_interval{1000};      // AT^NDISSTATQRY? while connecting (ModemManager: 1 s)
  std::chrono::milliseconds connect_timeout{60000};   // ^NDISDUP OK -> link up (ModemManager allows 180 s)
  std::chrono::milliseconds connected_poll_interval{15000};  // AT^NDISSTATQRY? while connected
  std::chrono::milliseconds sim_retry_interval{1000}; // SIM busy / ERROR right after boot
  unsigned sim_retries = 10;
  unsigned dhcp_attempts = 3;                         // AT^DHCP? right after the link can still say ERROR
  unsigned max_unparsable_polls = 10;                 // ModemManager gives up after more than 10
  at::AtChannelOptions channel;
};

class HuaweiSession final : public Session {
 public:
  explicit HuaweiSession(SessionSettings settings, HuaweiSessionOptions options = {});

  void start(Clock::time_point now) override;
  void stop(Clock::time_point now) override;
  void on_response(std::span<const std::uint8_t> bytes, Clock::time_point now) override;
  void on_notification(const cdc::Notification& notification, Clock::time_point now) override;
  void on_timer(Clock::time_point now) override;
  std::optional<Clock::time_point> next_timer() const override;
  std::vector<ByteVector> take_commands() override;
  const SessionStatus& status() const override { return status_; }

  // For logs, `wwan-dp monitor` and tests.
  const at::AtChannel& channel() const { return commands_.channel(); }
  const std::optional<huawei::NdisStatus>& last_ndisstat() const { return last_ndisstat_; }
  std::chrono::milliseconds current_redial_delay() const { return backoff_; }

 private:
  enum class Step : std::uint8_t {
    echo_off, cpin_query, cpin_enter, cfun_query, cfun_set, cgdcont, dial, poll, dhcp, dhcpv6, hangup, stop,
  };
  enum class TimerKind : std::uint8_t { none, poll, redial, sim_retry, dhcp_retry };

  void submit(Step step, std::string command, Clock::time_point now, std::uint8_t retries = 0);
  void on_result(Step step, const at::AtResponse& r, Clock::time_point now);
  void on_unsolicited(const std::string& line, Clock::time_point now);
  void on_cpin(const at::AtResponse& r, Clock::time_point now);
  void on_cpin_enter(const at::AtResponse& r, Clock::time_point now);
  void on_poll(const at::AtResponse& r, Clock::time_point now);
  void on_dhcp(Step step, const at::AtResponse& r, Clock::time_point now);
  void on_link_status(const huawei::NdisStatus& st, Clock::time_point now);

  void begin_attempt(Clock::time_point now);
  void dial(Clock::time_point now);
  void read_ip_config(Clock::time_point now);
  void become_connected(Clock::time_point now);
  void attempt_failed(std::string why, Clock::time_point now);
  void dropped(std::string why, Clock::time_point now);
  void schedule_redial(Clock::time_point now);
  void retry_sim(std::string why, Clock::time_point now);
  void fail(std::string why);
  void set_error(std::string why);
  void set_timer(TimerKind kind, Clock::time_point at);
  void poll_now(Clock::time_point now);
  bool requested_family_up(const huawei::NdisStatus& st) const;
  bool wants_ipv4() const { return settings_.families != IpFamilies::ipv6; }
  bool wants_ipv6() const { return settings_.families != IpFamilies::ipv4; }

  SessionSettings settings_;
  HuaweiSessionOptions options_;
  at::CommandQueue<Step> commands_;  // the AT channel and the step of each command not yet answered
  SessionStatus status_;

  TimerKind timer_kind_ = TimerKind::none;
  std::optional<Clock::time_point> timer_;
  std::optional<Clock::time_point> connect_deadline_;  // while waiting for the link
  std::chrono::milliseconds backoff_;                  // the next redial's delay

  bool dial_sent_ = false;      // AT^NDISDUP=1,1 submitted in this attempt
  bool dial_ok_ = false;        // AT^NDISDUP=1,1 answered OK in this attempt
  bool link_up_seen_ = false;   // ^NDISSTAT said connected before the dial's OK came
  bool pin_sent_ = false;       // AT+CPIN="..." sent in this attempt
  unsigned sim_retries_left_ = 0;
  unsigned dhcp_attempts_left_ = 0;
  unsigned unparsable_polls_ = 0;
  std::optional<huawei::NdisStatus> last_ndisstat_;
  bool ipv4_up_ = false, ipv6_up_ = false;  // requested families the modem reported connected
  bool ipv4_configured_ = false, ipv6_configured_ = false;  // ^DHCP? / ^DHCPV6? done (or given up)
};

}  // namespace wwan::control
