// The control loop between a Session state machine and a claimed modem: the only code of the
// control plane that performs I/O, and only through the Transport seam (so it runs the same over
// libusb, over the emulated usbfs and in-process).
//
// One step():
//   1. transport.handle_events() for at most the time until the next thing is due (a session
//      timer, the response poll) — this is where the interrupt endpoint's notifications arrive;
//   2. each notification goes to the session; RESPONSE_AVAILABLE also makes the runner read
//      GET_ENCAPSULATED_RESPONSE until the device answers with nothing (CDC 1.2 §6.2.2);
//   3. the same read happens every poll_interval regardless, because some firmware loses
//      RESPONSE_AVAILABLE (anchors.md: Huawei cdc-wdm "no notification" reports) — a response
//      the session is waiting for is never stuck behind a lost interrupt;
//   4. the session's timer; 5. the session's commands go out with SEND_ENCAPSULATED_COMMAND.
// Steps 2, 3 and 5 go through a CommandTransport (control/at_transport.hpp): the encapsulated
// channel by default; for AT sessions the serial AT port, or the encapsulated channel falling back
// to it, when the caller passes one.
// Single-threaded by design (the control thread of DESIGN.md); the data path's threads never
// call into it.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "control/at_transport.hpp"
#include "control/session.hpp"
#include "usb/network_function.hpp"
#include "usb/transfer_pipes.hpp"
#include "usb/transport.hpp"

namespace wwan::control {

struct RunnerOptions {
  std::chrono::milliseconds poll_interval{1000};   // GET_ENCAPSULATED_RESPONSE without a notification
  std::uint16_t response_buffer_bytes = 4096;      // per GET_ENCAPSULATED_RESPONSE (MBIM: wMaxControlMessage)
  unsigned control_timeout_ms = 5000;
  unsigned max_reads_per_drain = 32;               // a device that never stops answering cannot pin us
};

struct RunnerCounters {
  std::uint64_t notifications = 0;
  std::uint64_t malformed_notifications = 0;
  std::uint64_t commands_sent = 0;
  std::uint64_t command_failures = 0;    // SEND_ENCAPSULATED_COMMAND stalled / failed
  std::uint64_t responses = 0;           // non-empty GET_ENCAPSULATED_RESPONSE answers
  std::uint64_t responses_by_poll = 0;   // of which found by the poll (a lost RESPONSE_AVAILABLE)
  std::uint64_t polls = 0;               // GET_ENCAPSULATED_RESPONSE rounds started by the poll timer
  std::uint64_t response_failures = 0;
};

// The interrupt pipe for a function's notification endpoint: one transfer in flight, big enough
// for its wMaxPacketSize and for the longest CDC notification (SPEED_CHANGE, 16 bytes).
usb::PipeConfig notification_pipe_config(const usb::NetworkFunction& function);

class SessionRunner {
 public:
  // `commands`: where the session's commands and answers go (must outlive the runner); nullptr =
  // the function's encapsulated channel.
  SessionRunner(usb::Transport& transport, const usb::NetworkFunction& function, Session& session,
                RunnerOptions options = {}, CommandTransport* commands = nullptr);
  ~SessionRunner();
  SessionRunner(const SessionRunner&) = delete;
  SessionRunner& operator=(const SessionRunner&) = delete;

  // Starts the notification pipe and the session. false + error() when the pipe cannot start.
  bool start();
  // One iteration, waiting at most max_wait_ms for something to happen.
  void step(unsigned max_wait_ms);
  // Steps until `done(status)` or the timeout; true when done. For tools and tests.
  bool run_until(const std::function<bool(const SessionStatus&)>& done, std::chrono::milliseconds timeout);
  // Asks the session to end and steps until it is stopped/failed or the timeout; then stops the pipe.
  void stop(std::chrono::milliseconds timeout);

  const SessionStatus& status() const { return session_.status(); }
  const RunnerCounters& counters() const { return counters_; }
  const std::string& error() const { return error_; }
  CommandTransport& commands() { return *commands_; }
  bool device_gone() const { return transport_.device_gone(); }

 private:
  static void on_interrupt(void* user, unsigned slot, std::span<const std::uint8_t> data);
  void receive_responses(bool response_available, bool poll);
  void send_commands();

  usb::Transport& transport_;
  const usb::NetworkFunction& function_;
  Session& session_;
  RunnerOptions options_;
  std::unique_ptr<CommandTransport> own_commands_;  // the encapsulated channel, when none was given
  CommandTransport* commands_ = nullptr;
  std::unique_ptr<usb::InPipe> notifications_;
  std::mutex mu_;                                  // guards pending_ (the pipe's callback thread)
  std::deque<std::vector<std::uint8_t>> pending_;  // interrupt transfers not yet handled (bounded)
  Clock::time_point next_poll_{};
  RunnerCounters counters_;
  std::string error_;
};

}  // namespace wwan::control
