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

// What the interrupt endpoint carries (a row per function kind, notification_format_for):
//   cdc    CDC 1.2 §6.3 notifications (bmRequestType 0xA1): NCM, Huawei NCM, MBIM;
//   rndis  the 8-byte RNDIS RESPONSE_AVAILABLE (01 00 00 00 00 00 00 00, MS-RNDIS USB mapping;
//          rndis_host reads it the same way) — `cdc::decode_notification` refuses it, because
//          its first byte would be bmRequestType 0x01;
//   none   no interrupt endpoint is read: a session on a serial AT port, next to the function's
//          own runner (the FM350's AT side), where the answers arrive on the bulk pair.
enum class NotificationFormat : std::uint8_t { cdc, rndis, none };
NotificationFormat notification_format_for(usb::Function kind);

struct RunnerOptions {
  NotificationFormat notifications = NotificationFormat::cdc;
  std::chrono::milliseconds poll_interval{1000};   // GET_ENCAPSULATED_RESPONSE without a notification
  std::uint16_t response_buffer_bytes = 4096;      // per GET_ENCAPSULATED_RESPONSE (MBIM: wMaxControlMessage)
  unsigned control_timeout_ms = 5000;
  unsigned max_reads_per_drain = 32;               // a device that never stops answering cannot pin us
};

struct RunnerCounters {
  std::uint64_t notifications = 0;
  std::uint64_t malformed_notifications = 0;  // not of the runner's NotificationFormat (or dropped: too many pending)
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

// What the daemon drives a modem's control plane through: one SessionRunner (a session on one
// command channel), or control/rndis_at_runner.hpp (the FM350: RNDIS on the encapsulated channel
// and the dial on the serial AT port, two sessions joined into one status).
class SessionDriver {
 public:
  virtual ~SessionDriver() = default;
  virtual bool start() = 0;
  virtual void step(unsigned max_wait_ms) = 0;
  virtual bool run_until(const std::function<bool(const SessionStatus&)>& done, std::chrono::milliseconds timeout) = 0;
  virtual void stop(std::chrono::milliseconds timeout) = 0;
  virtual const SessionStatus& status() const = 0;
  virtual const std::string& error() const = 0;
  // A line to log once (the AT fallback switching ports); empty when there is none.
  virtual std::string take_notice() = 0;
  virtual bool device_gone() const = 0;
};

class SessionRunner final : public SessionDriver {
 public:
  // `commands`: where the session's commands and answers go (must outlive the runner); nullptr =
  // the function's encapsulated channel.
  SessionRunner(usb::Transport& transport, const usb::NetworkFunction& function, Session& session,
                RunnerOptions options = {}, CommandTransport* commands = nullptr);
  ~SessionRunner() override;
  SessionRunner(const SessionRunner&) = delete;
  SessionRunner& operator=(const SessionRunner&) = delete;

  // Starts the notification pipe and the session. false + error() when the pipe cannot start.
  bool start() override;
  // One iteration, waiting at most max_wait_ms for something to happen.
  void step(unsigned max_wait_ms) override;
  // Steps until `done(status)` or the timeout; true when done. For tools and tests.
  bool run_until(const std::function<bool(const SessionStatus&)>& done, std::chrono::milliseconds timeout) override;
  // Asks the session to end and steps until it is stopped/failed or the timeout; then stops the pipe.
  void stop(std::chrono::milliseconds timeout) override;

  const SessionStatus& status() const override { return session_.status(); }
  const RunnerCounters& counters() const { return counters_; }
  const RunnerOptions& options() const { return options_; }
  const std::string& error() const override { return error_; }
  std::string take_notice() override { return commands_->take_notice(); }
  CommandTransport& commands() { return *commands_; }
  bool device_gone() const override { return transport_.device_gone(); }

 private:
  static void on_interrupt(void* user, unsigned slot, std::span<const std::uint8_t> data);
  void receive_responses(bool response_available, bool poll);
  void send_commands();
  // One interrupt transfer, decoded as options_.notifications says: true = RESPONSE_AVAILABLE.
  bool handle_notification(std::span<const std::uint8_t> transfer);

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
