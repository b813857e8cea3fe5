#include "usb/serial_stream.hpp"

#include <algorithm>
#include <optional>
#include <utility>

namespace wwan::usb {

SerialStream::SerialStream(Transport& transport, const SerialStreamConfig& config)
    : transport_(transport), config_(config) {}

SerialStream::~SerialStream() { stop(); }

bool SerialStream::start(std::string& error) {
  if (started_) return true;
  if (config_.alt_setting != 0) {
    const TransferStatus st = transport_.set_alt_setting(config_.interface_number, config_.alt_setting);
    if (st != TransferStatus::completed) {
      error = "cannot select alt setting " + std::to_string(config_.alt_setting) + " of interface " +
              std::to_string(config_.interface_number) + " (" + to_string(st) + ")";
      return false;
    }
  }
  in_ = std::make_unique<InPipe>(transport_,
                                 PipeConfig{.endpoint = config_.bulk_in,
                                            .transfer_bytes = config_.read_transfer_bytes,
                                            .transfers_in_flight = config_.reads_in_flight},
                                 &SerialStream::on_read, this);
  out_ = std::make_unique<OutPipe>(transport_, PipeConfig{.endpoint = config_.bulk_out,
                                                          .transfer_bytes = config_.write_buffer_bytes,
                                                          .transfers_in_flight = config_.write_buffers,
                                                          .timeout_ms = 5000});
  if (!in_->start()) {
    error = "cannot read bulk IN endpoint of interface " + std::to_string(config_.interface_number) + " (" +
            to_string(in_->state()) + ")";
    return false;
  }
  started_ = true;
  return true;
}

void SerialStream::on_read(void* user, unsigned slot, std::span<const std::uint8_t> data) {
  auto* self = static_cast<SerialStream*>(user);
  {
    const std::lock_guard lock(self->mu_);
    const std::size_t room = self->config_.max_buffered_bytes - std::min(self->config_.max_buffered_bytes,
                                                                          self->received_.size());
    const std::size_t take = std::min(room, data.size());
    self->received_.insert(self->received_.end(), data.begin(), data.begin() + static_cast<std::ptrdiff_t>(take));
    self->counters_.bytes_in.fetch_add(data.size(), std::memory_order_relaxed);
    if (take < data.size()) self->counters_.bytes_dropped.fetch_add(data.size() - take, std::memory_order_relaxed);
  }
  self->in_->release(slot);
}

bool SerialStream::write(std::span<const std::uint8_t> bytes) {
  if (!out_ || bytes.empty() || bytes.size() > config_.write_buffer_bytes) {
    counters_.writes_refused.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  const std::optional<unsigned> slot = out_->acquire();
  if (!slot) {
    counters_.writes_refused.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  std::copy(bytes.begin(), bytes.end(), out_->buffer(*slot).begin());
  if (out_->submit(*slot, bytes.size()) != TransferStatus::completed) {
    counters_.writes_refused.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  counters_.bytes_out.fetch_add(bytes.size(), std::memory_order_relaxed);
  return true;
}

std::vector<std::uint8_t> SerialStream::read() {
  const std::lock_guard lock(mu_);
  return std::exchange(received_, {});
}

void SerialStream::stop() {
  if (in_) {
    in_->stop();
    if (!transport_.device_gone()) in_->drain(2000);
  }
  if (out_) {
    out_->stop();
    if (!transport_.device_gone()) out_->drain(2000);
  }
}

bool SerialStream::broken() const {
  const auto dead = [](PipeState s) { return s == PipeState::device_gone || s == PipeState::failed; };
  return transport_.device_gone() || (in_ && dead(in_->state())) || (out_ && dead(out_->state()));
}

}  // namespace wwan::usb
