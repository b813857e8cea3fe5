#include "control/at_transport.hpp"

#include <algorithm>
#include <utility>

#include "control/cdc_ncm.hpp"

namespace wwan::control {

const char* to_string(AtPortChoice c) {
  switch (c) {
    case AtPortChoice::automatic: return "auto";
    case AtPortChoice::encapsulated: return "encapsulated";
    case AtPortChoice::serial: return "serial";
  }
  return "?";
}

std::optional<AtPortChoice> parse_at_port_choice(std::string_view text) {
  if (text == "auto") return AtPortChoice::automatic;
  if (text == "encapsulated") return AtPortChoice::encapsulated;
  if (text == "serial") return AtPortChoice::serial;
  return std::nullopt;
}

// ---- the CDC encapsulated channel ------------------------------------------------------------------

EncapsulatedTransport::EncapsulatedTransport(usb::Transport& transport, std::uint8_t control_interface,
                                             EncapsulatedOptions options)
    : transport_(transport),
      control_interface_(control_interface),
      options_(options),
      buffer_(std::max<std::size_t>(options.response_buffer_bytes, 1)) {}

std::string EncapsulatedTransport::describe() const {
  return "encapsulated channel of interface " + std::to_string(control_interface_);
}

bool EncapsulatedTransport::send(std::span<const std::uint8_t> bytes, Clock::time_point) {
  if (bytes.size() > 0xffff) return false;  // wLength is 16 bits (USB 2.0 §9.3.5)
  std::vector<std::uint8_t> copy(bytes.begin(), bytes.end());  // control() takes a mutable span
  const usb::ControlResult r = transport_.control(
      {cdc::kRequestTypeClassInterfaceOut, cdc::kSendEncapsulatedCommand, 0, control_interface_}, copy,
      options_.control_timeout_ms);
  return r.status == usb::TransferStatus::completed;
}

unsigned EncapsulatedTransport::receive(bool response_available, bool poll, Clock::time_point,
                                        const ResponseSink& sink) {
  if (!response_available && !poll) return 0;
  for (unsigned i = 0; i < options_.max_reads_per_drain; ++i) {
    const usb::ControlResult r = transport_.control(
        {cdc::kRequestTypeClassInterfaceIn, cdc::kGetEncapsulatedResponse, 0, control_interface_}, buffer_,
        options_.control_timeout_ms);
    // Nothing to read is a zero-length answer on conformant devices (CDC 1.2 §6.2.2) and a STALL
    // on some others.
    if (r.status == usb::TransferStatus::stall) return 0;
    if (r.status != usb::TransferStatus::completed) return 1;
    if (r.actual_bytes == 0) return 0;
    sink(std::span<const std::uint8_t>(buffer_.data(), std::min(r.actual_bytes, buffer_.size())), !response_available);
  }
  return 0;
}

// ---- the serial AT port ------------------------------------------------------------------------------

SerialAtTransport::SerialAtTransport(usb::Transport& transport, const usb::SerialStreamConfig& config,
                                     std::string description, std::unique_ptr<usb::Transport> owned)
    : owned_(std::move(owned)), stream_(transport, config), description_(std::move(description)) {}

SerialAtTransport::~SerialAtTransport() { stream_.stop(); }

bool SerialAtTransport::start(std::string& error) { return stream_.start(error); }

void SerialAtTransport::stop() { stream_.stop(); }

bool SerialAtTransport::send(std::span<const std::uint8_t> bytes, Clock::time_point) { return stream_.write(bytes); }

unsigned SerialAtTransport::receive(bool, bool, Clock::time_point, const ResponseSink& sink) {
  // A transport of our own is not the one the caller's loop services: its completions run here.
  if (owned_) owned_->handle_events(0);
  const std::vector<std::uint8_t> bytes = stream_.read();
  if (!bytes.empty()) sink(bytes, false);
  return 0;
}

usb::SerialStreamConfig serial_stream_config(const usb::SerialAtPort& port) {
  usb::SerialStreamConfig c;
  c.interface_number = port.interface_number;
  c.alt_setting = port.alt_setting;
  c.bulk_in = port.bulk_in.address;
  c.bulk_out = port.bulk_out.address;
  return c;
}

std::unique_ptr<SerialAtTransport> make_serial_at_transport(usb::Transport& transport, const usb::SerialAtPort& port,
                                                            std::unique_ptr<usb::Transport> owned) {
  return std::make_unique<SerialAtTransport>(transport, serial_stream_config(port), "serial AT port " + port.describe(),
                                             std::move(owned));
}

// ---- encapsulated first, serial when it is dead ------------------------------------------------------

AtFallbackTransport::AtFallbackTransport(std::unique_ptr<CommandTransport> primary,
                                         CommandTransportFactory open_secondary, FallbackOptions options)
    : primary_(std::move(primary)), open_secondary_(std::move(open_secondary)), options_(options) {
  options_.unanswered_commands = std::max(options_.unanswered_commands, 1u);
}

std::string AtFallbackTransport::describe() const { return active().describe(); }

void AtFallbackTransport::stop() {
  if (secondary_) secondary_->stop();
  primary_->stop();
}

void AtFallbackTransport::maybe_switch(Clock::time_point now) {
  if (secondary_ || gave_up_ || unanswered_ < options_.unanswered_commands) return;
  // Half the timeout: the AT channel sends one command at a time, so the next send comes when the
  // last one timed out — a full timeout after it, give or take the loop's own delay, which a
  // whole-timeout comparison would lose to by microseconds.
  if (now - last_unanswered_ < options_.answer_timeout / 2) return;
  const auto silent_s = std::chrono::duration_cast<std::chrono::seconds>(now - first_unanswered_).count();
  const std::string why = "the " + primary_->describe() + " answered none of " + std::to_string(unanswered_) +
                          " commands in " + std::to_string(silent_s) + " s";
  std::string error;
  std::unique_ptr<CommandTransport> s = open_secondary_ ? open_secondary_(error) : nullptr;
  if (s && !s->start(error)) s.reset();
  if (!s) {
    gave_up_ = true;
    notice_ = why + ", and no serial AT port can take over: " + (error.empty() ? "none found" : error);
    return;
  }
  secondary_ = std::move(s);
  notice_ = why + ": AT goes over the " + secondary_->describe() + " from now on";
}

bool AtFallbackTransport::send(std::span<const std::uint8_t> bytes, Clock::time_point now) {
  maybe_switch(now);
  if (secondary_) return secondary_->send(bytes, now);
  const bool sent = primary_->send(bytes, now);
  if (unanswered_ == 0) first_unanswered_ = now;
  ++unanswered_;
  last_unanswered_ = now;
  return sent;
}

unsigned AtFallbackTransport::receive(bool response_available, bool poll, Clock::time_point now,
                                      const ResponseSink& sink) {
  maybe_switch(now);
  if (secondary_) return secondary_->receive(response_available, poll, now, sink);
  return primary_->receive(response_available, poll, now, [&](std::span<const std::uint8_t> bytes, bool by_poll) {
    unanswered_ = 0;  // the channel is alive
    sink(bytes, by_poll);
  });
}

std::string AtFallbackTransport::take_notice() { return std::exchange(notice_, {}); }

}  // namespace wwan::control
