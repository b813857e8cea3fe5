// Bulk pipes: K asynchronous transfers kept in flight on one endpoint (DESIGN.md "Data flow").
//
// A USB 2.0 high-speed bus moves at most 13 bulk packets of 512 bytes per 125 µs microframe, and
// the host controller only schedules what has been submitted: with one transfer in flight the
// endpoint idles for the whole completion → callback → resubmit turnaround. Keeping K transfers
// queued (Linux cdc_ncm keeps usbnet's rx queue of 10+ URBs; the rig in reference/rigs measured
// libusb with several in flight) keeps the endpoint busy.
//
// InPipe: K bulk-IN transfers of transfer_bytes (dwNtbInMaxSize) each. A completed transfer's
// buffer is lent to the sink and stays out of the pipe until release(slot), so the RX worker can
// parse the NTB and write its datagrams to TUN straight from that buffer, then hand it back.
// OutPipe: K buffers of transfer_bytes (dwNtbOutMaxSize) each. The TX worker acquire()s a free
// one, builds an NTB in it and submit()s it; the buffer returns to the free set when the transfer
// completes. No free buffer = the device is slower than the host: back-pressure, never a queue.
//
// Both recover from a STALL by CLEAR_FEATURE(ENDPOINT_HALT) and resubmitting (what usbnet does in
// its kevent handler, anchors.md §2.2), stop on device-gone, and stop after too many consecutive
// failures instead of spinning on a broken endpoint.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "usb/transport.hpp"

namespace wwan::usb {

// A pipe gives up after this many failed transfers in a row (stall that clear_halt does not fix,
// host controller errors). Each failure is counted; one good transfer resets the run.
inline constexpr unsigned kMaxConsecutiveFailures = 16;
// One bit per transfer slot in a lock-free free-set.
inline constexpr unsigned kMaxTransfersInFlight = 64;

enum class PipeState : std::uint8_t {
  idle,         // not started
  running,
  stopping,     // stop() called; transfers are being cancelled
  stopped,      // nothing in flight after stop()
  device_gone,  // a transfer came back no_device
  failed,       // kMaxConsecutiveFailures in a row
};
const char* to_string(PipeState state);

struct PipeConfig {
  std::uint8_t endpoint = 0;          // bEndpointAddress (IN pipes: bit 7 set)
  std::size_t transfer_bytes = 0;     // bytes per transfer: dwNtbInMaxSize / dwNtbOutMaxSize
  unsigned transfers_in_flight = 4;   // K, 1..kMaxTransfersInFlight
  unsigned timeout_ms = 0;            // per transfer, 0 = none (bulk IN waits for the device)
  // OUT: add a zero-length packet after a transfer that is a multiple of wMaxPacketSize.
  bool zero_length_packet = false;
  // An interrupt endpoint (the CDC notification endpoint): same pipe, different transfer type.
  bool interrupt = false;
};

// What a pipe saw. Written by the event thread, readable from any thread.
struct PipeCounters {
  std::atomic<std::uint64_t> transfers{0};        // completed with data (IN) / sent (OUT)
  std::atomic<std::uint64_t> bytes{0};
  std::atomic<std::uint64_t> zero_length{0};      // IN: zero-length transfers (not handed to the sink)
  std::atomic<std::uint64_t> stalls{0};
  std::atomic<std::uint64_t> halts_cleared{0};
  std::atomic<std::uint64_t> timeouts{0};
  std::atomic<std::uint64_t> overflows{0};        // the device sent more than transfer_bytes
  std::atomic<std::uint64_t> errors{0};           // other host controller errors, failed submits
  std::atomic<std::uint64_t> short_out{0};        // OUT: fewer bytes accepted than sent
};

namespace detail {
struct PipeSlot;  // one transfer and its buffer (transfer_pipes.cpp), shared by both pipe kinds
}  // namespace detail

// Sink for completed IN transfers: `data` lives in slot `slot` until InPipe::release(slot).
using InSink = void (*)(void* user, unsigned slot, std::span<const std::uint8_t> data);

class InPipe {
 public:
  // `config` is checked: an empty endpoint direction, transfer_bytes 0 or K outside
  // 1..kMaxTransfersInFlight throws std::invalid_argument (a programming error, not device input).
  InPipe(Transport& transport, const PipeConfig& config, InSink sink, void* user);
  ~InPipe();  // precondition: not running (stop() + drain()), or the transport is gone
  InPipe(const InPipe&) = delete;
  InPipe& operator=(const InPipe&) = delete;

  // Submits all K transfers. false (and state() says why) if none could be submitted.
  bool start();
  // Hands a slot lent to the sink back to the pipe, which resubmits it (any thread).
  void release(unsigned slot);
  // Cancels every transfer in flight; their completions arrive through handle_events().
  void stop();
  // Runs transport.handle_events() until nothing is in flight or timeout_ms passes. For the
  // thread that owns the event loop (or when no other thread runs it). true = nothing in flight.
  bool drain(unsigned timeout_ms);

  PipeState state() const { return state_.load(std::memory_order_acquire); }
  unsigned in_flight() const { return in_flight_.load(std::memory_order_acquire); }
  const PipeCounters& counters() const { return counters_; }
  const PipeConfig& config() const { return config_; }

 private:
  using Slot = detail::PipeSlot;
  static void on_complete(Transfer& transfer);
  void completed(Slot& slot);
  void resubmit(Slot& slot);
  void fail(PipeState why);

  Transport& transport_;
  PipeConfig config_;
  InSink sink_;
  void* user_;
  std::vector<Slot> slots_;
  std::atomic<PipeState> state_{PipeState::idle};
  std::atomic<unsigned> in_flight_{0};
  unsigned consecutive_failures_ = 0;  // event thread only
  PipeCounters counters_;
};

class OutPipe {
 public:
  OutPipe(Transport& transport, const PipeConfig& config);
  ~OutPipe();
  OutPipe(const OutPipe&) = delete;
  OutPipe& operator=(const OutPipe&) = delete;

  // A free buffer slot, or nullopt when all K are in flight (back-pressure). Any one thread.
  std::optional<unsigned> acquire();
  // acquire() would succeed now. Any thread.
  bool has_free() const {
    return state() == PipeState::running && free_mask_.load(std::memory_order_acquire) != 0;
  }
  std::span<std::uint8_t> buffer(unsigned slot);
  // Sends buffer(slot).first(length). On failure the slot is free again and the status says why
  // (no_device: the pipe is now device_gone).
  TransferStatus submit(unsigned slot, std::size_t length);
  // Returns an acquired slot unused.
  void give_back(unsigned slot);
  // Called (on the event thread) after each completion has freed its slot: how a TX worker that
  // found no free buffer learns it can go on. Set before the first submit().
  void set_on_free(void (*on_free)(void* user), void* user) {
    on_free_ = on_free;
    on_free_user_ = user;
  }
  void stop();
  bool drain(unsigned timeout_ms);

  PipeState state() const { return state_.load(std::memory_order_acquire); }
  unsigned in_flight() const { return in_flight_.load(std::memory_order_acquire); }
  const PipeCounters& counters() const { return counters_; }
  const PipeConfig& config() const { return config_; }

 private:
  using Slot = detail::PipeSlot;
  static void on_complete(Transfer& transfer);
  void completed(Slot& slot);
  void free_slot(unsigned slot);

  Transport& transport_;
  PipeConfig config_;
  std::vector<Slot> slots_;
  // Bit i set = slot i is free. acquire() takes the lowest set bit with a CAS; completions set it
  // back with fetch_or (release order: the buffer is done with before another thread reuses it).
  std::atomic<std::uint64_t> free_mask_{0};
  std::atomic<PipeState> state_{PipeState::idle};
  std::atomic<unsigned> in_flight_{0};
  std::atomic<unsigned> consecutive_failures_{0};
  PipeCounters counters_;
  void (*on_free_)(void*) = nullptr;
  void* on_free_user_ = nullptr;
};

// One bulk transfer, waited for: submit, then handle_events() until it completes (or timeout_ms,
// then cancelled and reaped). For the rare one-shot transfers of the control plane (a mode-switch
// CBW and its CSW), never for the data path. The caller must be the thread running the events.
struct OneShotResult {
  TransferStatus status = TransferStatus::error;
  std::size_t actual_bytes = 0;
};
OneShotResult transfer_once(Transport& transport, std::uint8_t endpoint, std::span<std::uint8_t> buffer,
                            std::size_t length, unsigned timeout_ms);

}  // namespace wwan::usb
