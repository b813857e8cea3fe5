// The worker loop: one thread, one PacketIo, the RX stage, the TX stage or both.
//
// Threads (DESIGN.md): with two workers, RX and TX each have a thread and an io_uring of their
// own; with one (`--threads 1`, for one-core routers) the same loop runs both stages on one
// PacketIo. Either way the loop is:
//   pump the stages (queue writes, build and send NTBs) → submit the batch → reap completions
//   (waiting only when no stage made progress) → hand each completion to its stage by tag.
// Wake-ups come from PacketIo::wake(): through notify(), the USB thread after post()ing a buffer
// to RX; through notify_out_buffer_freed(), when an OUT transfer completes; directly, RX when it
// queued a reply for TX, the control thread, stop().
//
// notify() writes the eventfd only when the worker waits, or is about to: an IN transfer
// completes every ~40 segments, and a worker that is busy finds the buffer at its next pump
// anyway. Otherwise each transfer would cost the USB thread a write() and the worker a
// completion and a re-armed read for nothing (and an OUT completion would wake a TX worker that
// sleeps waiting for the TUN, not for a buffer). The handshake (Dekker's, with seq_cst fences):
//   worker:   sleeping_ = true;  fence;  if RX has input: do not wait;  reap (wait);  sleeping_ = false
//   producer: post (the ring's release store);  fence;  if sleeping_: wake()
// At least one side sees the other's store: either the worker sees the buffer and does not wait,
// or the producer sees sleeping_ and wakes it. (A late `sleeping_ = false` costs a spare wake.)
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>

#include "datapath/packet_io.hpp"
#include "datapath/rx_path.hpp"
#include "datapath/tx_path.hpp"

namespace wwan::dp {

class Worker {
 public:
  // Either stage may be null (not both). idle_wait_ms: the longest wait when no stage made
  // progress (tests pass -1, no limit, so that a lost wake-up shows as a hang, not a delay).
  Worker(PacketIo& io, RxStage* rx, TxStage* tx, int idle_wait_ms = kIdleWaitMs);

  // Runs until stop() and then until the stage's I/O in flight has completed (at most
  // drain_timeout after stop()), so no buffer is freed under the kernel.
  void run();
  // Any thread.
  void stop();
  // Any thread, after RxStage::post(): wakes the worker if it waits or is about to (see above).
  void notify();
  // The USB thread, after an OUT transfer freed its buffer: wakes the worker only if its TX stage
  // waits for a buffer (TxStage::wants_out_buffer) and the worker waits or is about to. The same
  // handshake, with the pipe's free-set as the ring: TX stores wants_out_buffer before the fence,
  // then checks for a free buffer; the pipe frees the buffer before its fence, then loads both.
  void notify_out_buffer_freed();
  // The counters published at most this long ago (the loop publishes when idle, or this often
  // when busy).
  static constexpr std::chrono::milliseconds kPublishInterval{100};
  static constexpr std::chrono::milliseconds kDrainTimeout{1000};
  // While a stage made progress the loop only peeks; when idle it waits this long at most, so the
  // TX stage's max_hold is honoured even if a wake-up were ever missed.
  static constexpr int kIdleWaitMs = 100;

 private:
  PacketIo& io_;
  RxStage* rx_;
  TxStage* tx_;
  int idle_wait_ms_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> sleeping_{false};  // the loop is about to wait in, or waits in, reap()
};

}  // namespace wwan::dp
