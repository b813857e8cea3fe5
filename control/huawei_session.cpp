#include "control/huawei_session.hpp"

#include <algorithm>

namespace wwan::control {

using at::AtResponse;
using at::FinalResult;
using huawei::NdisState;
using huawei::NdisStatus;
using huawei::SimLock;
using huawei::describe;

namespace {

bool is_up(const std::optional<NdisState>& s) { return s && *s == NdisState::connected; }
bool is_down(const std::optional<NdisState>& s) {
  return s && (*s == NdisState::disconnected || *s == NdisState::disconnecting);
}

}  // namespace

HuaweiSession::HuaweiSession(SessionSettings settings, HuaweiSessionOptions options)
    : settings_(std::move(settings)),
      options_(options),
      commands_(options_.channel),
      backoff_(settings_.redial_initial) {}

// ---- plumbing ----------------------------------------------------------------------------------------

void HuaweiSession::submit(Step step, std::string command, Clock::time_point now, std::uint8_t retries) {
  (void)commands_.submit(step, std::move(command), now, settings_.command_timeout, retries);
}

std::vector<ByteVector> HuaweiSession::take_commands() { return commands_.take_output(); }

void HuaweiSession::set_timer(TimerKind kind, Clock::time_point at) {
  timer_kind_ = kind;
  timer_ = at;
}

std::optional<Clock::time_point> HuaweiSession::next_timer() const {
  return commands_.next_timer({timer_, connect_deadline_});
}

void HuaweiSession::on_response(std::span<const std::uint8_t> bytes, Clock::time_point now) {
  commands_.feed(
      bytes, now, [&](const std::string& line) { on_unsolicited(line, now); },
      [&](Step step, const AtResponse& r) { on_result(step, r, now); });
}

void HuaweiSession::on_timer(Clock::time_point now) {
  commands_.on_timer(
      now, [&](const std::string& line) { on_unsolicited(line, now); },
      [&](Step step, const AtResponse& r) { on_result(step, r, now); });
  if (connect_deadline_ && now >= *connect_deadline_ && status_.state == SessionState::connecting) {
    connect_deadline_.reset();
    attempt_failed("no connection within " + std::to_string(options_.connect_timeout.count() / 1000) +
                       " s of AT^NDISDUP (AT^NDISSTATQRY? never said connected)",
                   now);
    return;
  }
  if (!timer_ || now < *timer_) return;
  const TimerKind kind = std::exchange(timer_kind_, TimerKind::none);
  timer_.reset();
  switch (kind) {
    case TimerKind::poll:
      poll_now(now);
      break;
    case TimerKind::redial:
      if (status_.state == SessionState::disconnected) begin_attempt(now);
      break;
    case TimerKind::sim_retry:
      submit(Step::cpin_query, "AT+CPIN?", now, 1);
      break;
    case TimerKind::dhcp_retry:
      read_ip_config(now);
      break;
    case TimerKind::none:
      break;
  }
}

void HuaweiSession::poll_now(Clock::time_point now) {
  const bool watching = status_.state == SessionState::connecting || status_.state == SessionState::connected;
  if (!watching) return;
  // One command at a time: a poll never queues behind the dial or the ^DHCP? read.
  if (commands_.busy()) {
    set_timer(TimerKind::poll, now + options_.poll_interval);
    return;
  }
  submit(Step::poll, "AT^NDISSTATQRY?", now);
}

// ---- lifecycle ---------------------------------------------------------------------------------------

void HuaweiSession::start(Clock::time_point now) {
  if (status_.state != SessionState::idle) return;
  status_.state = SessionState::starting;
  if (options_.echo_off) submit(Step::echo_off, "ATE0", now, 1);
  begin_attempt(now);
}

// Every attempt, the first and each redial, starts at the SIM: a modem that reset in between asks
// for its PIN again, and AT+CPIN? costs one round trip.
void HuaweiSession::begin_attempt(Clock::time_point now) {
  if (status_.state == SessionState::disconnected) status_.state = SessionState::connecting;
  dial_sent_ = dial_ok_ = link_up_seen_ = pin_sent_ = false;
  ipv4_configured_ = ipv6_configured_ = false;
  ipv4_up_ = ipv6_up_ = false;
  unparsable_polls_ = 0;
  sim_retries_left_ = options_.sim_retries;
  dhcp_attempts_left_ = options_.dhcp_attempts;
  status_.ip = {};
  submit(Step::cpin_query, "AT+CPIN?", now, 1);
}

void HuaweiSession::stop(Clock::time_point now) {
  switch (status_.state) {
    case SessionState::idle:
    case SessionState::failed:
      status_.state = SessionState::stopped;
      return;
    case SessionState::stopping:
    case SessionState::stopped:
      return;
    default:
      break;
  }
  // Queued steps are moot. The one in flight is answered first (its answer is ignored below), so
  // that answer is never taken for the hang-up's.
  commands_.cancel_queued();
  timer_.reset();
  timer_kind_ = TimerKind::none;
  connect_deadline_.reset();
  status_.ip = {};
  status_.state = SessionState::stopping;
  submit(Step::stop, huawei::ndisdup_disconnect(options_.cid), now);
}

// Errors quote modem text, and a confused modem may send back the AT+CPIN="..." line it got: the PIN
// (3GPP: 4 to 8 digits) is masked wherever it appears, and the line is kept short.
void HuaweiSession::set_error(std::string why) {
  constexpr std::size_t kMaxErrorBytes = 240;
  if (settings_.pin.size() >= 4)
    for (std::size_t at = 0; (at = why.find(settings_.pin, at)) != std::string::npos;)
      why.replace(at, settings_.pin.size(), "****");
  if (why.size() > kMaxErrorBytes) why.resize(kMaxErrorBytes);
  status_.error = std::move(why);
}

void HuaweiSession::fail(std::string why) {
  commands_.cancel_all();
  timer_.reset();
  timer_kind_ = TimerKind::none;
  connect_deadline_.reset();
  status_.ip = {};
  set_error(std::move(why));
  status_.state = SessionState::failed;
}

// ---- results -------------------------------------------------------------------------------------

void HuaweiSession::on_result(Step step, const AtResponse& r, Clock::time_point now) {
  if (status_.state == SessionState::failed || status_.state == SessionState::stopped) return;
  if (status_.state == SessionState::stopping && step != Step::stop) return;
  switch (step) {
    case Step::echo_off:
      return;  // with or without echo the channel copes
    case Step::cpin_query:
      return on_cpin(r, now);
    case Step::cpin_enter:
      return on_cpin_enter(r, now);
    case Step::cfun_query: {
      const std::optional<int> fun = r.ok() ? huawei::parse_cfun(huawei::join_lines(r.lines)) : std::nullopt;
      // Firmware that does not answer AT+CFUN? is dialled anyway: ^NDISDUP says if the radio is off.
      if (fun && *fun != 1) {
        submit(Step::cfun_set, "AT+CFUN=1", now);
        return;
      }
      submit(Step::cgdcont, huawei::cgdcont(settings_, options_.cid), now);
      return;
    }
    case Step::cfun_set:
      if (!r.ok()) set_error("AT+CFUN=1 failed: " + describe(r));
      submit(Step::cgdcont, huawei::cgdcont(settings_, options_.cid), now);
      return;
    case Step::cgdcont:
      // Some firmware refuses +CGDCONT on the active context or for IPV4V6; ^NDISDUP then dials
      // what the context already says.
      return dial(now);
    case Step::dial:
      if (status_.state != SessionState::connecting) return;
      if (!r.ok()) return attempt_failed("AT^NDISDUP=" + std::to_string(options_.cid) + ",1 failed: " + describe(r), now);
      dial_ok_ = true;
      if (link_up_seen_) return read_ip_config(now);
      set_timer(TimerKind::poll, now + options_.poll_interval);
      return;
    case Step::poll:
      return on_poll(r, now);
    case Step::dhcp:
    case Step::dhcpv6:
      return on_dhcp(step, r, now);
    case Step::hangup:
      return;  // ERROR is normal on a bearer that is already down (vectors §A)
    case Step::stop:
      status_.state = SessionState::stopped;
      return;
  }
}

void HuaweiSession::on_cpin(const AtResponse& r, Clock::time_point now) {
  if (!r.ok()) {
    if (r.result == FinalResult::cme_error && r.error_code) {
      switch (*r.error_code) {
        case huawei::kCmeSimNotInserted: return fail("SIM not inserted (AT+CPIN?: " + describe(r) + ")");
        case huawei::kCmeSimPukRequired: return fail("SIM is PUK-locked; unlock it with the PUK first (wwan-dp never enters a PUK)");
        case huawei::kCmeSimFailure:
        case huawei::kCmeSimWrong: return fail("SIM failure (AT+CPIN?: " + describe(r) + ")");
        default: break;
      }
    }
    // SIM busy (+CME ERROR: 14), plain ERROR or silence right after boot: ask again a few times.
    return retry_sim("AT+CPIN? failed: " + describe(r), now);
  }
  const SimLock lock = huawei::parse_cpin(huawei::join_lines(r.lines));
  switch (lock) {
    case SimLock::ready:
      submit(Step::cfun_query, "AT+CFUN?", now, 1);
      return;
    case SimLock::sim_pin:
      if (settings_.pin.empty()) return fail("SIM PIN required but no PIN was given (--pin)");
      if (pin_sent_) return fail("SIM still asks for its PIN after AT+CPIN accepted it");
      pin_sent_ = true;
      submit(Step::cpin_enter, huawei::cpin_enter(settings_.pin), now);  // never retried: a resend burns an attempt
      return;
    case SimLock::sim_puk:
      return fail("SIM is PUK-locked; unlock it with the PUK first (wwan-dp never enters a PUK)");
    case SimLock::unknown:
      return retry_sim("AT+CPIN? gave no usable answer: " + huawei::join_lines(r.lines), now);
    default:
      return fail(std::string("SIM lock ") + huawei::to_string(lock) + " is not supported");
  }
}

void HuaweiSession::on_cpin_enter(const AtResponse& r, Clock::time_point now) {
  if (r.ok()) {
    submit(Step::cpin_query, "AT+CPIN?", now, 1);  // confirm READY (the SIM may take a moment)
    return;
  }
  // The command text holds the PIN: it is never quoted in an error.
  if (r.result == FinalResult::cme_error && r.error_code == huawei::kCmeIncorrectPassword)
    return fail("SIM PIN rejected (+CME ERROR: 16 incorrect password); not retried, so the SIM cannot lock to PUK");
  fail("entering the SIM PIN failed: " + describe(r));
}

void HuaweiSession::retry_sim(std::string why, Clock::time_point now) {
  if (sim_retries_left_ == 0) return fail(std::move(why));
  --sim_retries_left_;
  set_error(std::move(why));
  set_timer(TimerKind::sim_retry, now + options_.sim_retry_interval);
}

void HuaweiSession::dial(Clock::time_point now) {
  status_.state = SessionState::connecting;
  connect_deadline_ = now + options_.connect_timeout;
  dial_sent_ = true;
  submit(Step::dial, huawei::ndisdup_connect(settings_, options_.cid), now);
}

void HuaweiSession::on_poll(const AtResponse& r, Clock::time_point now) {
  const bool connecting = status_.state == SessionState::connecting;
  if (!connecting && status_.state != SessionState::connected) return;
  // The lines are handed over as lines: a ^NDISSTAT URC that came in while the query was in
  // flight is filed among its answer lines, and must be read as the status line it is
  // (Scripted.UrcInsideTheConfirmingQueryIsTheDrop).
  std::string text;
  for (const std::string& l : r.lines) text += l + "\r\n";
  const std::optional<NdisStatus> st = r.ok() ? huawei::parse_ndisstat(text) : std::nullopt;
  if (!st) {
    if (connecting && ++unparsable_polls_ > options_.max_unparsable_polls)
      return attempt_failed("AT^NDISSTATQRY? gave no usable answer " + std::to_string(unparsable_polls_) + " times", now);
    set_timer(TimerKind::poll, now + (connecting ? options_.poll_interval : options_.connected_poll_interval));
    return;
  }
  on_link_status(*st, now);
  if (status_.state == SessionState::connecting && !timer_ && dial_ok_ && !link_up_seen_)
    set_timer(TimerKind::poll, now + options_.poll_interval);
  else if (status_.state == SessionState::connected && !timer_)
    set_timer(TimerKind::poll, now + options_.connected_poll_interval);
}

bool HuaweiSession::requested_family_up(const NdisStatus& st) const {
  return (wants_ipv4() && is_up(st.ipv4)) || (wants_ipv6() && is_up(st.ipv6));
}

// A ^NDISSTAT URC or an AT^NDISSTATQRY? answer.
void HuaweiSession::on_link_status(const NdisStatus& st, Clock::time_point now) {
  last_ndisstat_ = st;
  if (status_.state == SessionState::connecting) {
    // Before the dial went out, a report is about a previous session.
    if (!dial_sent_) return;
    if (st.ipv4) ipv4_up_ = wants_ipv4() && is_up(st.ipv4);
    if (st.ipv6) ipv6_up_ = wants_ipv6() && is_up(st.ipv6);
    // A second family coming up while ^DHCP? is read is picked up by read_ip_config.
    if (link_up_seen_ || !requested_family_up(st)) return;
    link_up_seen_ = true;
    if (dial_ok_) read_ip_config(now);  // else when the dial's OK comes
    return;
  }
  if (status_.state != SessionState::connected) return;
  // A family the report does not mention keeps its state. One family of a dual-stack session
  // going down takes only its configuration away; the session drops with the last one.
  std::optional<std::uint16_t> cause;
  if (ipv4_up_ && is_down(st.ipv4)) {
    ipv4_up_ = false;
    cause = st.ipv4_error;
    status_.ip.ipv4.reset();
  }
  if (ipv6_up_ && is_down(st.ipv6)) {
    ipv6_up_ = false;
    if (!cause) cause = st.ipv6_error;
    status_.ip.ipv6.reset();
  }
  if (!ipv4_up_ && !ipv6_up_)
    dropped("the network ended the session (^NDISSTAT" +
                (cause ? ", cause " + std::to_string(*cause) : std::string()) + ")",
            now);
}

void HuaweiSession::read_ip_config(Clock::time_point now) {
  connect_deadline_.reset();
  if (timer_kind_ == TimerKind::poll) {
    timer_.reset();
    timer_kind_ = TimerKind::none;
  }
  if (ipv4_up_ && !ipv4_configured_) {
    submit(Step::dhcp, "AT^DHCP?", now, 1);
    return;
  }
  if (ipv6_up_ && !ipv6_configured_) {
    submit(Step::dhcpv6, "AT^DHCPV6?", now, 1);
    return;
  }
  become_connected(now);
}

void HuaweiSession::on_dhcp(Step step, const AtResponse& r, Clock::time_point now) {
  if (status_.state != SessionState::connecting) return;
  if (step == Step::dhcp) {
    const std::optional<huawei::Dhcp> d = r.ok() ? huawei::parse_dhcp(huawei::join_lines(r.lines)) : std::nullopt;
    if (d && d->address != eth::Ipv4Address{}) {
      status_.ip.ipv4 = huawei::to_ipv4_config(*d);
    } else if (dhcp_attempts_left_ > 1) {
      --dhcp_attempts_left_;
      set_timer(TimerKind::dhcp_retry, now + options_.poll_interval);
      return;
    } else {
      // Connected all the same: the stick also runs a DHCP server (anchors §2.1: unreliable).
      set_error("AT^DHCP? gave no usable IPv4 configuration (" + describe(r) + "); use DHCP on the interface");
    }
    ipv4_configured_ = true;
  } else {
    // ERROR is tolerated: IPv6 then comes from SLAAC on the interface, if at all.
    if (const std::optional<huawei::Dhcpv6> d = r.ok() ? huawei::parse_dhcpv6(huawei::join_lines(r.lines)) : std::nullopt)
      status_.ip.ipv6 = huawei::to_ipv6_config(*d);
    ipv6_configured_ = true;
  }
  read_ip_config(now);
}

void HuaweiSession::become_connected(Clock::time_point now) {
  status_.state = SessionState::connected;
  ++status_.connects;
  backoff_ = settings_.redial_initial;
  set_timer(TimerKind::poll, now + options_.connected_poll_interval);
}

// ---- losing the session ------------------------------------------------------------------------------

void HuaweiSession::attempt_failed(std::string why, Clock::time_point now) {
  set_error(std::move(why));
  status_.ip = {};
  connect_deadline_.reset();
  // Whatever the modem half did, undo it before the next try; queued behind anything in flight.
  submit(Step::hangup, huawei::ndisdup_disconnect(options_.cid), now);
  status_.state = SessionState::disconnected;
  schedule_redial(now);
}

void HuaweiSession::dropped(std::string why, Clock::time_point now) {
  ++status_.drops;
  set_error(std::move(why));
  status_.ip = {};
  status_.state = SessionState::disconnected;
  schedule_redial(now);
}

void HuaweiSession::schedule_redial(Clock::time_point now) {
  set_timer(TimerKind::redial, now + backoff_);
  backoff_ = std::min(backoff_ * 2, std::max(settings_.redial_max, settings_.redial_initial));
}

// ---- unsolicited ---------------------------------------------------------------------------------------

void HuaweiSession::on_unsolicited(const std::string& line, Clock::time_point now) {
  // ^NDISSTAT is the only URC the session acts on (ModemManager's huawei_ndisstat_changed);
  // ^BOOT, ^RSSI, ^MODE, ^SIMST, ^SRVST, +CREG ... are boot and radio noise here.
  if (line.size() < 10) return;
  const std::optional<NdisStatus> st = huawei::parse_ndisstat(line);
  if (st) on_link_status(*st, now);
}

void HuaweiSession::on_notification(const cdc::Notification& notification, Clock::time_point now) {
  if (notification.header.notification != cdc::kNotifyNetworkConnection) return;
  const bool up = notification.header.value != 0;
  // Confirm with the modem instead of trusting the notification alone (see the header).
  if ((!up && status_.state == SessionState::connected) ||
      (up && status_.state == SessionState::connecting && dial_ok_ && !link_up_seen_))
    poll_now(now);
}

}  // namespace wwan::control
