#include "sim/serial_at_port.hpp"

#include <algorithm>
#include <utility>

namespace wwan::sim {

SerialAtPort::SerialAtPort(std::uint8_t bulk_in, std::uint8_t bulk_out, Execute execute)
    : bulk_in_(bulk_in), bulk_out_(bulk_out), execute_(std::move(execute)) {}

void SerialAtPort::out(std::span<const std::uint8_t> data) {
  counters_.bytes_from_host += data.size();
  for (const std::uint8_t b : data) {
    if (b == '\n') continue;  // CR ends a command; an LF after it is ignored (V.250 §5.2.1)
    if (b == '\r') {
      if (!discarding_ && !line_.empty()) {
        ++counters_.command_lines;
        push(execute_(line_));
      }
      line_.clear();
      discarding_ = false;
      continue;
    }
    if (discarding_) continue;
    if (line_.size() >= kMaxLineBytes) {
      ++counters_.lines_too_long;
      discarding_ = true;
      continue;
    }
    line_.push_back(static_cast<char>(b));
  }
}

InResult SerialAtPort::in(std::span<std::uint8_t> buffer) {
  if (pending_.empty() || buffer.empty()) return {EndpointResult::nak, 0};
  const std::size_t n = std::min(buffer.size(), pending_.size());
  std::copy_n(pending_.begin(), n, buffer.begin());
  pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(n));
  counters_.bytes_to_host += n;
  return {EndpointResult::ok, n};
}

void SerialAtPort::push(std::string_view text) {
  pending_.insert(pending_.end(), text.begin(), text.end());
  if (pending_.size() > kMaxPendingBytes) {
    const std::size_t excess = pending_.size() - kMaxPendingBytes;
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(excess));
    counters_.bytes_dropped += excess;
  }
}

void SerialAtPort::reset() {
  line_.clear();
  discarding_ = false;
  pending_.clear();
}

}  // namespace wwan::sim
