// A USB serial port's bytes over its bulk pair, through the Transport seam: what the kernel's
// usb_wwan / option driver does for a ttyUSB, without the tty. Writes go out on the bulk OUT
// endpoint, each in one transfer; bulk IN transfers are kept in flight and whatever arrives (a
// short packet ends a transfer, as on any USB serial device) is appended to a bounded buffer the
// control thread reads. No line discipline, no framing: control/at_channel.hpp frames the lines.
//
// Bounded and untrusted: at most max_buffered_bytes wait to be read (a modem that streams without
// end costs a counter, not memory); at most write_buffers writes in flight (none free: write()
// says no and the AT channel's timeout and retry take over). The pipes recover from a STALL by
// CLEAR_FEATURE(ENDPOINT_HALT), as the data path's do (usb/transfer_pipes.hpp).
//
// Threading: IN completions run inside the transport's handle_events() (any thread); write(),
// read() and the rest belong to one control thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "usb/transfer_pipes.hpp"
#include "usb/transport.hpp"

namespace wwan::usb {

struct SerialStreamConfig {
  std::uint8_t interface_number = 0;
  std::uint8_t alt_setting = 0;     // selected at start() when not 0
  std::uint8_t bulk_in = 0, bulk_out = 0;
  std::size_t read_transfer_bytes = 2048;  // per bulk IN transfer; AT answers are short
  unsigned reads_in_flight = 2;
  std::size_t write_buffer_bytes = 2048;   // the longest write (AtChannel lines are <= 1024 + CR)
  unsigned write_buffers = 4;
  std::size_t max_buffered_bytes = 64 * 1024;
};

struct SerialStreamCounters {
  std::atomic<std::uint64_t> bytes_in{0};
  std::atomic<std::uint64_t> bytes_out{0};        // handed to the bulk OUT pipe
  std::atomic<std::uint64_t> bytes_dropped{0};    // arrived while max_buffered_bytes were unread
  std::atomic<std::uint64_t> writes_refused{0};   // no free write buffer, too long, or the pipe is dead
};

class SerialStream {
 public:
  // `transport` must outlive the stream; the interface must already be claimed on it.
  SerialStream(Transport& transport, const SerialStreamConfig& config);
  ~SerialStream();
  SerialStream(const SerialStream&) = delete;
  SerialStream& operator=(const SerialStream&) = delete;

  // Selects the alt setting if needed and starts the reads. false + one line in `error`.
  bool start(std::string& error);
  // One write (one bulk OUT transfer). false when it cannot be sent now (counted).
  bool write(std::span<const std::uint8_t> bytes);
  // Everything received since the last read, in order (empty: nothing).
  std::vector<std::uint8_t> read();
  // Cancels the reads and waits (bounded) for the pipes to come back.
  void stop();
  // Either pipe is gone or has given up: the port is dead.
  bool broken() const;

  const SerialStreamCounters& counters() const { return counters_; }
  const SerialStreamConfig& config() const { return config_; }
  Transport& transport() { return transport_; }

 private:
  static void on_read(void* user, unsigned slot, std::span<const std::uint8_t> data);

  Transport& transport_;
  SerialStreamConfig config_;
  std::unique_ptr<InPipe> in_;
  std::unique_ptr<OutPipe> out_;
  std::mutex mu_;                    // guards received_ (IN completions may run on another thread)
  std::vector<std::uint8_t> received_;
  SerialStreamCounters counters_;
  bool started_ = false;
};

}  // namespace wwan::usb
