#include "control/session_runner.hpp"

#include <algorithm>

#include "control/rndis_wire.hpp"

namespace wwan::control {
namespace {
// Interrupt transfers kept while the control thread is busy; more are dropped and counted
// (a notification storm, RTL8156-style, must not grow memory).
constexpr std::size_t kMaxPendingNotifications = 64;
}  // namespace

NotificationFormat notification_format_for(usb::Function kind) {
  return kind == usb::Function::Rndis ? NotificationFormat::rndis : NotificationFormat::cdc;
}

usb::PipeConfig notification_pipe_config(const usb::NetworkFunction& function) {
  return {.endpoint = function.notification.address,
          .transfer_bytes = std::max<std::size_t>(function.notification.max_packet_size, cdc::kNotificationMaxSize),
          .transfers_in_flight = 1,
          .interrupt = true};
}

SessionRunner::SessionRunner(usb::Transport& transport, const usb::NetworkFunction& function, Session& session,
                             RunnerOptions options, CommandTransport* commands)
    : transport_(transport), function_(function), session_(session), options_(options), commands_(commands) {
  if (commands_ == nullptr) {
    own_commands_ = std::make_unique<EncapsulatedTransport>(
        transport_, function_.control_interface,
        EncapsulatedOptions{.response_buffer_bytes = options_.response_buffer_bytes,
                            .control_timeout_ms = options_.control_timeout_ms,
                            .max_reads_per_drain = options_.max_reads_per_drain});
    commands_ = own_commands_.get();
  }
}

SessionRunner::~SessionRunner() {
  if (notifications_) {
    notifications_->stop();
    notifications_->drain(2000);
  }
}

bool SessionRunner::start() {
  if (options_.notifications != NotificationFormat::none) {
    notifications_ = std::make_unique<usb::InPipe>(transport_, notification_pipe_config(function_),
                                                   &SessionRunner::on_interrupt, this);
    if (!notifications_->start()) {
      error_ = std::string("cannot read the notification endpoint: ") + usb::to_string(notifications_->state());
      return false;
    }
  }
  if (std::string why; !commands_->start(why)) {
    error_ = "cannot use the " + commands_->describe() + ": " + why;
    return false;
  }
  const auto now = Clock::now();
  next_poll_ = now + options_.poll_interval;
  session_.start(now);
  send_commands();
  return true;
}

void SessionRunner::on_interrupt(void* user, unsigned slot, std::span<const std::uint8_t> data) {
  auto* self = static_cast<SessionRunner*>(user);
  {
    const std::lock_guard lock(self->mu_);
    if (self->pending_.size() < kMaxPendingNotifications) self->pending_.emplace_back(data.begin(), data.end());
    else ++self->counters_.malformed_notifications;  // dropped: counted with the unusable ones
  }
  self->notifications_->release(slot);
}

void SessionRunner::receive_responses(bool response_available, bool poll) {
  counters_.response_failures +=
      commands_->receive(response_available, poll, Clock::now(), [this](std::span<const std::uint8_t> bytes, bool by_poll) {
        ++counters_.responses;
        if (by_poll) ++counters_.responses_by_poll;
        session_.on_response(bytes, Clock::now());
        send_commands();  // an answer often makes the next command due at once
      });
}

void SessionRunner::send_commands() {
  for (std::vector<std::uint8_t>& c : session_.take_commands()) {
    if (commands_->send(c, Clock::now())) ++counters_.commands_sent;
    else ++counters_.command_failures;  // the session's own timeout retries it
  }
}

void SessionRunner::step(unsigned max_wait_ms) {
  auto now = Clock::now();
  auto until = now + std::chrono::milliseconds(max_wait_ms);
  if (const auto t = session_.next_timer(); t && *t < until) until = *t;
  if (next_poll_ < until) until = next_poll_;
  const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(until - now).count();
  transport_.handle_events(static_cast<unsigned>(std::max<long long>(wait, 0)));

  std::deque<std::vector<std::uint8_t>> notes;
  {
    const std::lock_guard lock(mu_);
    notes.swap(pending_);
  }
  bool response_available = false;
  for (const std::vector<std::uint8_t>& n : notes) response_available |= handle_notification(n);
  now = Clock::now();
  const bool poll = now >= next_poll_;
  if (poll) ++counters_.polls;
  receive_responses(response_available, poll);
  if (poll) next_poll_ = now + options_.poll_interval;
  if (const auto t = session_.next_timer(); t && Clock::now() >= *t) session_.on_timer(Clock::now());
  send_commands();
}

bool SessionRunner::handle_notification(std::span<const std::uint8_t> transfer) {
  if (options_.notifications == NotificationFormat::rndis) {
    if (!rndis::is_response_available(transfer)) {
      ++counters_.malformed_notifications;
      return false;
    }
    ++counters_.notifications;
    // Passed on in the CDC shape the Session interface takes, for information (RndisSession
    // ignores it): RESPONSE_AVAILABLE of the control interface.
    cdc::Notification note;
    note.header.notification = cdc::kNotifyResponseAvailable;
    note.header.index = function_.control_interface;
    note.complete = true;
    session_.on_notification(note, Clock::now());
    return true;
  }
  const std::optional<cdc::Notification> decoded = cdc::decode_notification(transfer);
  if (!decoded) {
    ++counters_.malformed_notifications;
    return false;
  }
  ++counters_.notifications;
  session_.on_notification(*decoded, Clock::now());
  return decoded->header.notification == cdc::kNotifyResponseAvailable;
}

bool SessionRunner::run_until(const std::function<bool(const SessionStatus&)>& done, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!done(session_.status())) {
    if (Clock::now() >= deadline || transport_.device_gone()) return done(session_.status());
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    step(static_cast<unsigned>(std::clamp<long long>(left, 1, 100)));
  }
  return true;
}

void SessionRunner::stop(std::chrono::milliseconds timeout) {
  session_.stop(Clock::now());
  send_commands();
  run_until(
      [](const SessionStatus& s) { return s.state == SessionState::stopped || s.state == SessionState::failed; },
      timeout);
  if (notifications_) {
    notifications_->stop();
    notifications_->drain(2000);
  }
  commands_->stop();
}

}  // namespace wwan::control
