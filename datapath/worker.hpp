// The worker loop: one thread, one PacketIo, the RX stage, the TX stage or both.
//
// Threads (DESIGN.md): with two workers, RX and TX each have a thread and an io_uring of their
// own; with one (`--threads 1`, for one-core routers) the same loop runs both stages on one
// PacketIo. Either way the loop is:
//   pump the stages (queue writes, build and send NTBs) → submit the batch → reap completions
//   (waiting only when no stage made progress) → hand each completion to its stage by tag.
// Wake-ups come from PacketIo::wake(): the USB thread after post()ing a buffer to RX or when an
// OUT buffer frees up for TX; RX when it queued a reply for TX; stop().
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
  // Either stage may be null (not both).
  Worker(PacketIo& io, RxStage* rx, TxStage* tx);

  // Runs until stop() and then until the stage's I/O in flight has completed (at most
  // drain_timeout after stop()), so no buffer is freed under the kernel.
  void run();
  // Any thread.
  void stop();
  // The counters published at most this long ago (the loop publishes when idle, or this often
  // when busy).
  static constexpr std::chrono::milliseconds kPublishInterval{100};
  static constexpr std::chrono::milliseconds kDrainTimeout{1000};

 private:
  PacketIo& io_;
  RxStage* rx_;
  TxStage* tx_;
  std::atomic<bool> stop_{false};
};

}  // namespace wwan::dp
