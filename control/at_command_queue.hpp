// The plumbing every AT-dialled session shares (control/huawei_session.hpp,
// control/quectel_session.hpp, control/fm350_session.hpp): one at::AtChannel and, for each command
// submitted and not yet answered, the session's step it stands for. Events the channel completes
// are dispatched in order: an unsolicited line to the session's URC handler, a final result (also
// timeout and cancelled) to its result handler together with the step it answers. A final result
// whose command the session has forgotten (cancel_queued(), forget()) is dropped, so a late answer
// is never taken for that of whatever the session submitted since.
//
// Pure and header-only: no I/O, no clock; the session passes `now` and the bytes, as it does to the
// channel. Bounded: the pending list holds at most what the channel's queue admits (a refused
// submit() is not recorded; the channel counts it).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "control/at_channel.hpp"

namespace wwan::control::at {

template <typename Step>
class CommandQueue {
 public:
  explicit CommandQueue(AtChannelOptions options = {}) : channel_(options) {}

  // Queues `command` ("AT+CPIN?", no CR) on behalf of `step`; `timeout` 0 is the channel's default,
  // `retries` resends after a timeout (idempotent commands only, see AtChannel::submit). false when
  // the channel's queue is full: nothing is recorded and no answer will come.
  bool submit(Step step, std::string command, Clock::time_point now, std::chrono::milliseconds timeout,
              std::uint8_t retries = 0) {
    const std::optional<CommandId> id = channel_.submit(std::move(command), now, timeout, retries);
    if (!id) return false;
    pending_.emplace_back(*id, step);
    return true;
  }

  // The bytes to send now, one element per command.
  std::vector<std::vector<std::uint8_t>> take_output() { return channel_.take_output(); }

  // The channel's next timeout merged with the session's own timers.
  std::optional<Clock::time_point> next_timer(std::initializer_list<std::optional<Clock::time_point>> also = {}) const {
    std::optional<Clock::time_point> t = channel_.next_timer();
    for (const std::optional<Clock::time_point>& other : also)
      if (other && (!t || *other < *t)) t = other;
    return t;
  }

  // Feeds the modem's bytes / fires the channel's timeouts, then dispatches what they completed:
  // on_unsolicited(const std::string& line), on_result(Step, const AtResponse&). A handler may
  // submit, cancel or forget: the pending list is looked up afresh for every final result.
  template <typename OnUnsolicited, typename OnResult>
  void feed(std::span<const std::uint8_t> bytes, Clock::time_point now, OnUnsolicited&& on_unsolicited,
            OnResult&& on_result) {
    dispatch(channel_.feed(bytes, now), on_unsolicited, on_result);
  }
  template <typename OnUnsolicited, typename OnResult>
  void on_timer(Clock::time_point now, OnUnsolicited&& on_unsolicited, OnResult&& on_result) {
    dispatch(channel_.on_timer(now), on_unsolicited, on_result);
  }

  // Ends the queued commands and forgets their steps, but keeps the one in flight (its answer
  // comes first and still reaches on_result), so it is never taken for the answer of the command
  // submitted next.
  void cancel_queued() {
    (void)channel_.cancel_queued();
    const std::optional<CommandId> in_flight = channel_.in_flight();
    std::erase_if(pending_, [&](const auto& p) { return p.first != in_flight; });
  }
  // Ends every command, the one in flight too; nothing further is dispatched for them.
  void cancel_all() {
    (void)channel_.cancel_all();
    pending_.clear();
  }
  // Forgets every submitted command without touching the channel: the one in flight still goes
  // out and is answered, and that answer is dropped.
  void forget() { pending_.clear(); }

  bool busy() const { return channel_.busy(); }
  std::size_t pending() const { return pending_.size(); }
  const AtChannel& channel() const { return channel_; }

 private:
  template <typename OnUnsolicited, typename OnResult>
  void dispatch(std::vector<AtEvent> events, OnUnsolicited& on_unsolicited, OnResult& on_result) {
    for (AtEvent& e : events) {
      if (e.kind == AtEventKind::unsolicited) {
        on_unsolicited(e.line);
        continue;
      }
      if (e.kind != AtEventKind::final_result || !e.response) continue;
      const auto it = std::find_if(pending_.begin(), pending_.end(),
                                   [&](const auto& p) { return p.first == e.response->id; });
      if (it == pending_.end()) continue;
      const Step step = it->second;
      pending_.erase(it);
      on_result(step, *e.response);
    }
  }

  AtChannel channel_;
  std::deque<std::pair<CommandId, Step>> pending_;  // submitted, not yet answered, oldest first
};

}  // namespace wwan::control::at
