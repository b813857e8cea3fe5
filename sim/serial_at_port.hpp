// The device side of a serial AT interface (the ttyUSB ports of usb/serial_port.hpp): bytes from
// the host on the bulk OUT endpoint are cut into command lines at CR (V.250 §5.2.1: S3 ends the
// command line; LF is ignored as modems do), each line goes to an AT engine (sim/huawei_at,
// sim/fm350_at), and the engine's answer — plus any unsolicited lines — waits as bytes for the
// host's bulk IN transfers. NAK while there is nothing to send, as any USB serial function does.
//
// A building block for device models: it owns no descriptors and no clock. The model routes its
// two endpoint addresses here (owns()), pushes unsolicited text (push()), and keeps the port's
// halts with the rest of its endpoints. Bounded: a host that never reads loses the oldest answer
// bytes beyond max_pending_bytes (counted), a line longer than max_line_bytes is cut (counted).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "sim/device_model.hpp"

namespace wwan::sim {

struct SerialAtPortCounters {
  std::uint64_t command_lines = 0;
  std::uint64_t bytes_from_host = 0;
  std::uint64_t bytes_to_host = 0;
  std::uint64_t bytes_dropped = 0;    // answer bytes lost because the host did not read
  std::uint64_t lines_too_long = 0;
};

class SerialAtPort {
 public:
  // Executes one command line (no CR/LF) and returns the whole answer text, echo included.
  using Execute = std::function<std::string(std::string_view line)>;

  static constexpr std::size_t kMaxPendingBytes = 64 * 1024;
  static constexpr std::size_t kMaxLineBytes = 1024;

  SerialAtPort(std::uint8_t bulk_in, std::uint8_t bulk_out, Execute execute);

  bool owns(std::uint8_t endpoint_address) const {
    return endpoint_address == bulk_in_ || endpoint_address == bulk_out_;
  }
  std::uint8_t bulk_in() const { return bulk_in_; }
  std::uint8_t bulk_out() const { return bulk_out_; }

  // A bulk OUT transfer: any split of command bytes; complete lines run at once.
  void out(std::span<const std::uint8_t> data);
  // A bulk IN transfer: up to buffer.size() bytes of what is waiting; nak when nothing is.
  InResult in(std::span<std::uint8_t> buffer);
  // Text the modem sends by itself (URCs), queued behind the answers already waiting.
  void push(std::string_view text);
  bool has_pending() const { return !pending_.empty(); }
  // Forgets the partial command line and what waits for the host (a port reset).
  void reset();

  const SerialAtPortCounters& counters() const { return counters_; }

 private:
  std::uint8_t bulk_in_, bulk_out_;
  Execute execute_;
  std::string line_;
  bool discarding_ = false;  // the current line overflowed: drop to its CR
  std::deque<char> pending_;
  SerialAtPortCounters counters_;
};

}  // namespace wwan::sim
