#include "control/quectel_session.hpp"

#include <algorithm>

#include "control/at_text.hpp"
#include "control/huawei_at.hpp"  // the 3GPP TS 27.007 helpers: +CPIN, +CFUN, +CGDCONT, +CME names

namespace wwan::control {

using at::AtResponse;
using at::FinalResult;
using huawei::SimLock;
using huawei::describe;

namespace {

bool is_status_line(std::string_view line) {
  while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
  return at::starts_with_nocase(line, "+QNETDEVSTATUS:");
}

}  // namespace

QuectelSession::QuectelSession(SessionSettings settings, QuectelSessionOptions options)
    : settings_(std::move(settings)), options_(options), commands_(options_.channel), backoff_(settings_.redial_initial) {}

// ---- plumbing ----------------------------------------------------------------------------------------

void QuectelSession::submit(Step step, std::string command, Clock::time_point now, std::uint8_t retries) {
  (void)commands_.submit(step, std::move(command), now, settings_.command_timeout, retries);
}

std::vector<ByteVector> QuectelSession::take_commands() { return commands_.take_output(); }

void QuectelSession::set_timer(TimerKind kind, Clock::time_point at) {
  timer_kind_ = kind;
  timer_ = at;
}

std::optional<Clock::time_point> QuectelSession::next_timer() const {
  return commands_.next_timer({timer_, connect_deadline_});
}

void QuectelSession::on_response(std::span<const std::uint8_t> bytes, Clock::time_point now) {
  commands_.feed(
      bytes, now, [&](const std::string& line) { on_unsolicited(line, now); },
      [&](Step step, const AtResponse& r) { on_answer(step, r, now); });
}

void QuectelSession::on_answer(Step step, const AtResponse& r, Clock::time_point now) {
  // +QNETDEVSTATUS is no URC prefix the channel knows: a URC that came while another command was
  // in flight is among that command's lines (MM: "the unsolicited response to the connect
  // request may come before the OK does"). The poll reads its own lines.
  if (step != Step::poll)
    for (const std::string& l : r.lines)
      if (is_status_line(l)) on_unsolicited(l, now);
  on_result(step, r, now);
}

void QuectelSession::on_timer(Clock::time_point now) {
  commands_.on_timer(
      now, [&](const std::string& line) { on_unsolicited(line, now); },
      [&](Step step, const AtResponse& r) { on_answer(step, r, now); });
  if (connect_deadline_ && now >= *connect_deadline_ && status_.state == SessionState::connecting) {
    connect_deadline_.reset();
    attempt_failed("no address within " + std::to_string(options_.connect_timeout.count() / 1000) +
                       " s of AT+QNETDEVCTL (AT+QNETDEVSTATUS never reported one)",
                   now);
    return;
  }
  if (!timer_ || now < *timer_) return;
  const TimerKind kind = std::exchange(timer_kind_, TimerKind::none);
  timer_.reset();
  switch (kind) {
    case TimerKind::poll: poll_now(now); break;
    case TimerKind::redial:
      if (status_.state == SessionState::disconnected) begin_attempt(now);
      break;
    case TimerKind::sim_retry: submit(Step::cpin_query, "AT+CPIN?", now, 1); break;
    case TimerKind::none: break;
  }
}

void QuectelSession::poll_now(Clock::time_point now) {
  const bool watching = (status_.state == SessionState::connecting && dial_ok_) || status_.state == SessionState::connected;
  if (!watching) return;
  if (commands_.busy()) {  // one command at a time: never queue a poll behind another
    set_timer(TimerKind::poll, now + options_.poll_interval);
    return;
  }
  if (timer_kind_ == TimerKind::poll) {
    timer_.reset();
    timer_kind_ = TimerKind::none;
  }
  submit(Step::poll, status_read_form_ ? quectel::qnetdevstatus_read() : quectel::qnetdevstatus_query(options_.cid), now);
}

// ---- lifecycle ---------------------------------------------------------------------------------------

void QuectelSession::start(Clock::time_point now) {
  if (status_.state != SessionState::idle) return;
  status_.state = SessionState::starting;
  if (options_.echo_off) submit(Step::echo_off, "ATE0", now, 1);
  begin_attempt(now);
}

void QuectelSession::begin_attempt(Clock::time_point now) {
  if (status_.state == SessionState::disconnected) status_.state = SessionState::connecting;
  dial_ok_ = pin_sent_ = false;
  failed_polls_ = 0;
  sim_retries_left_ = options_.sim_retries;
  status_.ip = {};
  submit(Step::cpin_query, "AT+CPIN?", now, 1);
}

void QuectelSession::stop(Clock::time_point now) {
  switch (status_.state) {
    case SessionState::idle:
    case SessionState::failed: status_.state = SessionState::stopped; return;
    case SessionState::stopping:
    case SessionState::stopped: return;
    default: break;
  }
  commands_.cancel_queued();
  timer_.reset();
  timer_kind_ = TimerKind::none;
  connect_deadline_.reset();
  status_.ip = {};
  status_.state = SessionState::stopping;
  submit(Step::stop, quectel::qnetdevctl_disconnect(options_.cid, options_.qnetdevctl_order), now);
}

void QuectelSession::set_error(std::string why) {
  constexpr std::size_t kMaxErrorBytes = 240;
  if (settings_.pin.size() >= 4)
    for (std::size_t at = 0; (at = why.find(settings_.pin, at)) != std::string::npos;)
      why.replace(at, settings_.pin.size(), "****");
  if (why.size() > kMaxErrorBytes) why.resize(kMaxErrorBytes);
  status_.error = std::move(why);
}

void QuectelSession::fail(std::string why) {
  commands_.cancel_all();
  timer_.reset();
  timer_kind_ = TimerKind::none;
  connect_deadline_.reset();
  status_.ip = {};
  set_error(std::move(why));
  status_.state = SessionState::failed;
}

// ---- results -------------------------------------------------------------------------------------

void QuectelSession::on_result(Step step, const AtResponse& r, Clock::time_point now) {
  if (status_.state == SessionState::failed || status_.state == SessionState::stopped) return;
  if (status_.state == SessionState::stopping && step != Step::stop) return;
  switch (step) {
    case Step::echo_off: return;
    case Step::cpin_query: return on_cpin(r, now);
    case Step::cpin_enter: return on_cpin_enter(r, now);
    case Step::cfun_query: {
      const std::optional<int> fun = r.ok() ? huawei::parse_cfun(huawei::join_lines(r.lines)) : std::nullopt;
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
      // Refused on an active context on some firmware: the dial then uses what the context says.
      if (!settings_.user.empty() || !settings_.password.empty()) {
        submit(Step::qicsgp, quectel::qicsgp(settings_, options_.cid), now);
        return;
      }
      return dial(now);
    case Step::qicsgp:
      if (!r.ok()) set_error("AT+QICSGP (credentials) failed: " + describe(r));
      return dial(now);
    case Step::dial:
      if (status_.state != SessionState::connecting) return;
      if (!r.ok())
        return attempt_failed(quectel::qnetdevctl_connect(options_.cid, options_.qnetdevctl_order) + " failed: " + describe(r),
                              now);
      dial_ok_ = true;
      poll_now(now);  // quectel-CM reads the status right after the dial's OK
      return;
    case Step::poll: return on_poll(r, now);
    case Step::hangup: return;  // ERROR on a call that is already down is normal
    case Step::stop: status_.state = SessionState::stopped; return;
  }
}

void QuectelSession::on_cpin(const AtResponse& r, Clock::time_point now) {
  if (!r.ok()) {
    if (r.result == FinalResult::cme_error && r.error_code) {
      switch (*r.error_code) {
        case huawei::kCmeSimNotInserted: return fail("SIM not inserted (AT+CPIN?: " + describe(r) + ")");
        case huawei::kCmeSimPukRequired:
          return fail("SIM is PUK-locked; unlock it with the PUK first (wwan-dp never enters a PUK)");
        case huawei::kCmeSimFailure:
        case huawei::kCmeSimWrong: return fail("SIM failure (AT+CPIN?: " + describe(r) + ")");
        default: break;
      }
    }
    return retry_sim("AT+CPIN? failed: " + describe(r), now);
  }
  switch (huawei::parse_cpin(huawei::join_lines(r.lines))) {
    case SimLock::ready: submit(Step::cfun_query, "AT+CFUN?", now, 1); return;
    case SimLock::sim_pin:
      if (settings_.pin.empty()) return fail("SIM PIN required but no PIN was given (--pin)");
      if (pin_sent_) return fail("SIM still asks for its PIN after AT+CPIN accepted it");
      pin_sent_ = true;
      submit(Step::cpin_enter, huawei::cpin_enter(settings_.pin), now);  // never retried
      return;
    case SimLock::sim_puk: return fail("SIM is PUK-locked; unlock it with the PUK first (wwan-dp never enters a PUK)");
    case SimLock::unknown: return retry_sim("AT+CPIN? gave no usable answer: " + huawei::join_lines(r.lines), now);
    default: return fail("the SIM asks for an unlock wwan-dp does not support (AT+CPIN?: " + huawei::join_lines(r.lines) + ")");
  }
}

void QuectelSession::on_cpin_enter(const AtResponse& r, Clock::time_point now) {
  if (r.ok()) {
    submit(Step::cpin_query, "AT+CPIN?", now, 1);
    return;
  }
  if (r.result == FinalResult::cme_error && r.error_code == huawei::kCmeIncorrectPassword)
    return fail("SIM PIN rejected (+CME ERROR: 16 incorrect password); not retried, so the SIM cannot lock to PUK");
  fail("entering the SIM PIN failed: " + describe(r));
}

void QuectelSession::retry_sim(std::string why, Clock::time_point now) {
  if (sim_retries_left_ == 0) return fail(std::move(why));
  --sim_retries_left_;
  set_error(std::move(why));
  set_timer(TimerKind::sim_retry, now + options_.sim_retry_interval);
}

void QuectelSession::dial(Clock::time_point now) {
  status_.state = SessionState::connecting;
  connect_deadline_ = now + options_.connect_timeout;
  submit(Step::dial, quectel::qnetdevctl_connect(options_.cid, options_.qnetdevctl_order), now);
}

void QuectelSession::on_poll(const AtResponse& r, Clock::time_point now) {
  const bool connecting = status_.state == SessionState::connecting;
  if (!connecting && status_.state != SessionState::connected) return;
  std::optional<quectel::NetdevStatus> report;  // the addressing line, or the call-state line of our cid
  bool status_lines = false, garbled = false, call_form = false, call_up = false;
  for (const std::string& l : r.lines) {
    if (!is_status_line(l)) continue;
    status_lines = true;
    const std::optional<quectel::NetdevStatus> st = quectel::parse_qnetdevstatus(l);
    if (!st) {
      garbled = true;
      continue;
    }
    switch (st->form) {
      case quectel::NetdevStatus::Form::urc:
        // In the answer to AT+QNETDEVSTATUS? a lone number is <on_off> with no call in progress
        // (RM5x0N manual §9.9: "+QNETDEVSTATUS: 1"), not a URC.
        if (status_read_form_) {
          call_form = true;
          break;
        }
        on_urc(st->connected, l, now);  // a URC filed under the query
        if (status_.state != SessionState::connecting && status_.state != SessionState::connected) return;
        break;
      case quectel::NetdevStatus::Form::call_state:
        call_form = true;
        if (st->profile != options_.cid) break;  // another context's call
        if (st->connected) call_up = true;
        if (st->connected || !report) report = st;
        break;
      case quectel::NetdevStatus::Form::addressing: report = st; break;
    }
  }
  if (r.ok() && !status_lines && !status_read_form_) {
    // The Qualcomm firmware's AT+QNETDEVSTATUS=<n> is the URC switch and answers a bare OK: read
    // the call state with AT+QNETDEVSTATUS? from now on, at once (once: that form's bare OK is
    // "not yet" below).
    status_read_form_ = true;
    poll_now(now);
    return;
  }
  if (r.ok() && !garbled && (report || call_form)) {
    if (report) last_status_ = report;
    failed_polls_ = 0;
    const bool up = call_form ? call_up : report->connected;
    if (up) {
      if (status_.state == SessionState::connecting) return become_connected(now);
      set_timer(TimerKind::poll, now + options_.connected_poll_interval);
      return;
    }
    if (status_.state == SessionState::connected)
      return dropped(call_form ? "the network ended the data call (AT+QNETDEVSTATUS? reports no call on cid " +
                                     std::to_string(options_.cid) + ")"
                               : "the network ended the data call (AT+QNETDEVSTATUS reports no address)",
                     now);
    set_timer(TimerKind::poll, now + options_.poll_interval);
    return;
  }
  // ERROR (no call yet, quectel-CM's reading), or an answer this parser cannot read.
  if (status_.state == SessionState::connecting) {
    set_timer(TimerKind::poll, now + options_.poll_interval);
    return;
  }
  if (++failed_polls_ >= options_.connected_failed_polls)
    return dropped("AT+QNETDEVSTATUS failed " + std::to_string(failed_polls_) + " times in a row (" + describe(r) + ")",
                   now);
  set_timer(TimerKind::poll, now + options_.poll_interval);
}

void QuectelSession::become_connected(Clock::time_point now) {
  connect_deadline_.reset();
  status_.state = SessionState::connected;
  status_.ip = {};  // the address is DHCP's on the link (see the header)
  ++status_.connects;
  backoff_ = settings_.redial_initial;
  failed_polls_ = 0;
  set_timer(TimerKind::poll, now + options_.connected_poll_interval);
}

// ---- losing the session ------------------------------------------------------------------------------

void QuectelSession::attempt_failed(std::string why, Clock::time_point now) {
  set_error(std::move(why));
  status_.ip = {};
  connect_deadline_.reset();
  submit(Step::hangup, quectel::qnetdevctl_disconnect(options_.cid, options_.qnetdevctl_order), now);
  status_.state = SessionState::disconnected;
  schedule_redial(now);
}

void QuectelSession::dropped(std::string why, Clock::time_point now) {
  ++status_.drops;
  set_error(std::move(why));
  status_.ip = {};
  // The module may still hold the call half up ("connect once" state): end it so the redial's
  // QNETDEVCTL starts from nothing (ModemManager disconnects an active usbnet before it connects).
  submit(Step::hangup, quectel::qnetdevctl_disconnect(options_.cid, options_.qnetdevctl_order), now);
  status_.state = SessionState::disconnected;
  schedule_redial(now);
}

void QuectelSession::schedule_redial(Clock::time_point now) {
  set_timer(TimerKind::redial, now + backoff_);
  backoff_ = std::min(backoff_ * 2, std::max(settings_.redial_max, settings_.redial_initial));
}

// ---- unsolicited ---------------------------------------------------------------------------------------

void QuectelSession::on_urc(bool up, const std::string& line, Clock::time_point now) {
  if (up) {
    // "Connected": confirmed (and the status read) by a poll, never trusted alone.
    if (status_.state == SessionState::connecting && dial_ok_) poll_now(now);
    return;
  }
  if (status_.state == SessionState::connected) {
    constexpr std::size_t kMaxQuotedBytes = 60;  // the modem's text in our error line, bounded
    dropped("the network ended the data call (" + line.substr(0, kMaxQuotedBytes) + ")", now);
  }
}

void QuectelSession::on_unsolicited(const std::string& line, Clock::time_point now) {
  if (!is_status_line(line)) return;  // +CREG, +CEREG, RDY, ... are radio noise here
  const std::optional<quectel::NetdevStatus> st = quectel::parse_qnetdevstatus(line);
  if (!st) return;
  switch (st->form) {
    case quectel::NetdevStatus::Form::urc: return on_urc(st->connected, line, now);
    case quectel::NetdevStatus::Form::call_state:
      // "+QNETDEVSTATUS: 1,0,4,1" (RM5x0N manual): one IP type of one context went down or up.
      if (st->profile == options_.cid) on_urc(st->connected, line, now);
      return;
    case quectel::NetdevStatus::Form::addressing:
      // An addressing line nobody asked for: a status report all the same.
      if (!st->connected) return on_urc(false, line, now);
      last_status_ = st;
      return;
  }
}

void QuectelSession::on_notification(const cdc::Notification& notification, Clock::time_point now) {
  if (notification.header.notification != cdc::kNotifyNetworkConnection) return;
  const bool up = notification.header.value != 0;
  // The NCM function's link state: a hint to look now (it may be late, from before a redial).
  if ((!up && status_.state == SessionState::connected) || (up && status_.state == SessionState::connecting && dial_ok_))
    poll_now(now);
}

}  // namespace wwan::control
