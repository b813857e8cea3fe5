#include "control/rndis_at_runner.hpp"

#include <algorithm>

namespace wwan::control {

namespace {
RunnerOptions with(RunnerOptions o, NotificationFormat f) {
  o.notifications = f;
  return o;
}
}  // namespace

RndisAtRunner::RndisAtRunner(usb::Transport& transport, const usb::NetworkFunction& function,
                             RndisSessionSettings rndis, SessionSettings dial, CommandTransport& at_port,
                             RunnerOptions options)
    : transport_(transport),
      rndis_(std::move(rndis)),
      dial_(std::move(dial)),
      rndis_runner_(transport, function, rndis_, with(options, NotificationFormat::rndis)),
      at_runner_(transport, function, dial_, with(options, NotificationFormat::none), &at_port) {}

bool RndisAtRunner::start() {
  if (!rndis_runner_.start()) {
    error_ = rndis_runner_.error();
    return false;
  }
  if (!at_runner_.start()) {
    error_ = at_runner_.error();
    return false;
  }
  join();
  return true;
}

void RndisAtRunner::step(unsigned max_wait_ms) {
  // The RNDIS runner waits for USB events (they include the AT port's bulk IN completions, which
  // the AT runner then finds without waiting).
  rndis_runner_.step(max_wait_ms);
  at_runner_.step(0);
  join();
}

void RndisAtRunner::join() {
  const SessionStatus& r = rndis_.status();
  const SessionStatus& d = dial_.status();
  const SessionState before = status_.state;
  SessionState now;
  if (r.state == SessionState::failed || d.state == SessionState::failed) {
    now = SessionState::failed;
    status_.error = r.state == SessionState::failed ? "RNDIS: " + r.error : d.error;
  } else if (r.state == SessionState::stopped && d.state == SessionState::stopped) {
    now = SessionState::stopped;
  } else if (r.state == SessionState::stopping || d.state == SessionState::stopping ||
             r.state == SessionState::stopped || d.state == SessionState::stopped) {
    now = SessionState::stopping;
  } else if (d.state == SessionState::connected && r.state == SessionState::connected) {
    now = SessionState::connected;
  } else if (d.state == SessionState::disconnected ||
             (d.state == SessionState::connected && r.state == SessionState::disconnected)) {
    now = SessionState::disconnected;
    status_.error = d.state == SessionState::disconnected ? d.error : "RNDIS: the device indicated MEDIA_DISCONNECT";
  } else if (rndis_.data_enabled()) {
    now = SessionState::connecting;
  } else {
    now = SessionState::starting;
  }
  status_.state = now;
  status_.ip = now == SessionState::connected ? d.ip : IpConfig{};
  if (now == SessionState::connected && before != SessionState::connected) {
    ++status_.connects;
    status_.error.clear();
  }
  if (before == SessionState::connected && now == SessionState::disconnected) ++status_.drops;
}

bool RndisAtRunner::run_until(const std::function<bool(const SessionStatus&)>& done, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!done(status_)) {
    if (Clock::now() >= deadline || transport_.device_gone()) return done(status_);
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    step(static_cast<unsigned>(std::clamp<long long>(left, 1, 100)));
  }
  return true;
}

void RndisAtRunner::stop(std::chrono::milliseconds timeout) {
  // The context first (AT+CGACT=0), then HALT: the order a host that tears down the PDN uses.
  at_runner_.stop(timeout / 2);
  rndis_runner_.stop(timeout / 2);
  join();
}

}  // namespace wwan::control
