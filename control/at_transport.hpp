// The command transport seam: the path a session's commands and the modem's answers take. The
// sessions (control/session.hpp) and the AT framing (control/at_channel.hpp) are bytes in, bytes
// out; the SessionRunner (and `wwan-dp at`, `wwan-dp fcc-unlock`) move those bytes through one of:
//
//   EncapsulatedTransport  CDC 1.2 §6.2.1/§6.2.2 on the function's control interface:
//                          SEND_ENCAPSULATED_COMMAND out, GET_ENCAPSULATED_RESPONSE in (after
//                          RESPONSE_AVAILABLE and on the poll timer). AT on Huawei NCM, MBIM.
//   SerialAtTransport      the modem's serial AT interface (usb/serial_port.hpp): command bytes on
//                          its bulk OUT endpoint, answer bytes from its bulk IN endpoint
//                          (usb/serial_stream.hpp) — a ttyUSB without the tty. AT only.
//   AtFallbackTransport    the encapsulated channel first; when it answers nothing, the serial
//                          port from then on, said once (take_notice). Some E3372h firmware has a
//                          dead cdc-wdm channel while its PCUI tty answers (anchors.md §0 #3:
//                          Airtel E3372h-607 12d1:1506; MS2372h-517 "no response from cdc-wdm0").
//
// The fallback rule: `unanswered_commands` commands went out on the encapsulated channel without
// a single byte coming back, and half of `answer_timeout` has passed since the last of them (the
// AT channel has one command in flight at a time, so the next command goes out when the last one
// timed out: the check then passes with room to spare, whatever the loop's delays). With the
// Huawei session's defaults that is ATE0 and its retry timing out (20 s with a 10 s command
// timeout): the command that follows already goes over the serial port, and the session goes on
// unchanged (its AtChannel timed the lost command out; nothing to replay).
// The serial port is opened only then (a factory), so its ttyUSB stays with the kernel's `option`
// driver while the encapsulated channel works.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "usb/serial_port.hpp"
#include "usb/serial_stream.hpp"
#include "usb/transport.hpp"

namespace wwan::control {

using Clock = std::chrono::steady_clock;

// Which path AT takes (`--at-port`). automatic: encapsulated, falling back to serial, unless the
// quirk table says the modem has no encapsulated AT channel (then serial).
enum class AtPortChoice : std::uint8_t { automatic, encapsulated, serial };
const char* to_string(AtPortChoice c);
std::optional<AtPortChoice> parse_at_port_choice(std::string_view text);

// Gets the bytes one read returned; `by_poll`: found by the poll timer, not announced.
using ResponseSink = std::function<void(std::span<const std::uint8_t> bytes, bool by_poll)>;

class CommandTransport {
 public:
  virtual ~CommandTransport() = default;

  // "encapsulated channel of interface 1", "serial AT port interface 3 (ff/03/02, bulk 0x87/0x05)"
  virtual std::string describe() const = 0;
  // Prepares reading (the serial port starts its bulk IN transfers). false + one line in `error`.
  virtual bool start(std::string& error) = 0;
  virtual void stop() = 0;
  // One command (one AT line with its CR, or one MBIM fragment). false = it did not go out (the
  // session's own timeout and retry deal with that).
  virtual bool send(std::span<const std::uint8_t> bytes, Clock::time_point now) = 0;
  // Hands what the modem sent to `sink`, in order. The encapsulated channel reads only when
  // `response_available` or `poll` says so; the serial port delivers whatever has arrived.
  // Returns the number of reads that failed.
  virtual unsigned receive(bool response_available, bool poll, Clock::time_point now, const ResponseSink& sink) = 0;
  // A line to log, once per event (the fallback switching ports); empty when there is none.
  virtual std::string take_notice() { return {}; }
  // True once the path can never work again (the serial port's pipes died).
  virtual bool broken() const { return false; }
};

struct EncapsulatedOptions {
  std::uint16_t response_buffer_bytes = 4096;  // per GET_ENCAPSULATED_RESPONSE (MBIM: wMaxControlMessage)
  unsigned control_timeout_ms = 5000;
  unsigned max_reads_per_drain = 32;           // a device that never stops answering cannot pin us
};

class EncapsulatedTransport final : public CommandTransport {
 public:
  EncapsulatedTransport(usb::Transport& transport, std::uint8_t control_interface, EncapsulatedOptions options = {});
  std::string describe() const override;
  bool start(std::string&) override { return true; }
  void stop() override {}
  bool send(std::span<const std::uint8_t> bytes, Clock::time_point now) override;
  unsigned receive(bool response_available, bool poll, Clock::time_point now, const ResponseSink& sink) override;

 private:
  usb::Transport& transport_;
  std::uint8_t control_interface_;
  EncapsulatedOptions options_;
  std::vector<std::uint8_t> buffer_;
};

class SerialAtTransport final : public CommandTransport {
 public:
  // The serial interface must be claimed on `transport`. `owned`: a transport of its own (a second
  // handle on the device that claims only the serial interface), kept alive and serviced here;
  // then `transport` must be *owned.
  SerialAtTransport(usb::Transport& transport, const usb::SerialStreamConfig& config, std::string description,
                    std::unique_ptr<usb::Transport> owned = nullptr);
  ~SerialAtTransport() override;
  std::string describe() const override { return description_; }
  bool start(std::string& error) override;
  void stop() override;
  bool send(std::span<const std::uint8_t> bytes, Clock::time_point now) override;
  unsigned receive(bool response_available, bool poll, Clock::time_point now, const ResponseSink& sink) override;
  bool broken() const override { return stream_.broken(); }

  const usb::SerialStream& stream() const { return stream_; }

 private:
  std::unique_ptr<usb::Transport> owned_;  // declared first: destroyed after the stream
  usb::SerialStream stream_;
  std::string description_;
};

// The stream settings for a serial AT port found in the descriptors.
usb::SerialStreamConfig serial_stream_config(const usb::SerialAtPort& port);
// A SerialAtTransport for `port` on `transport` (the interface already claimed there), described
// as "serial AT port interface 3 (ff/03/02, bulk 0x87/0x05)".
std::unique_ptr<SerialAtTransport> make_serial_at_transport(usb::Transport& transport, const usb::SerialAtPort& port,
                                                            std::unique_ptr<usb::Transport> owned = nullptr);

struct FallbackOptions {
  // No byte back this long after the last unanswered command (the session's command timeout).
  std::chrono::milliseconds answer_timeout{10000};
  // Commands sent without any answer before the channel counts as dead (a command and its retry).
  unsigned unanswered_commands = 2;
};

// Opens the serial AT port when the fallback needs it: nullptr + one line in `error` when it cannot.
using CommandTransportFactory = std::function<std::unique_ptr<CommandTransport>(std::string& error)>;

class AtFallbackTransport final : public CommandTransport {
 public:
  AtFallbackTransport(std::unique_ptr<CommandTransport> primary, CommandTransportFactory open_secondary,
                      FallbackOptions options = {});
  std::string describe() const override;
  bool start(std::string& error) override { return primary_->start(error); }
  void stop() override;
  bool send(std::span<const std::uint8_t> bytes, Clock::time_point now) override;
  unsigned receive(bool response_available, bool poll, Clock::time_point now, const ResponseSink& sink) override;
  std::string take_notice() override;
  bool broken() const override { return active().broken(); }

  bool switched() const { return secondary_ != nullptr; }
  unsigned unanswered() const { return unanswered_; }

 private:
  CommandTransport& active() const { return secondary_ ? *secondary_ : *primary_; }
  void maybe_switch(Clock::time_point now);

  std::unique_ptr<CommandTransport> primary_;
  CommandTransportFactory open_secondary_;
  FallbackOptions options_;
  std::unique_ptr<CommandTransport> secondary_;
  bool gave_up_ = false;            // the secondary could not be opened: stay, say it once
  unsigned unanswered_ = 0;         // commands sent on the primary since its last byte
  Clock::time_point first_unanswered_{}, last_unanswered_{};
  std::string notice_;
};

}  // namespace wwan::control
