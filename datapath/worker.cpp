#include "datapath/worker.hpp"

#include <array>
#include <stdexcept>

namespace wwan::dp {

namespace {
constexpr std::size_t kBatch = 64;  // completions reaped per call
}  // namespace

Worker::Worker(PacketIo& io, RxStage* rx, TxStage* tx, int idle_wait_ms)
    : io_(io), rx_(rx), tx_(tx), idle_wait_ms_(idle_wait_ms) {
  if (rx == nullptr && tx == nullptr) throw std::invalid_argument("Worker: no stage");
}

void Worker::stop() {
  stop_.store(true, std::memory_order_release);
  io_.wake();
}

void Worker::notify() {
  // Pairs with the fence in run(): orders the caller's post() before the load of sleeping_.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (sleeping_.load(std::memory_order_relaxed)) io_.wake();
}

void Worker::notify_out_buffer_freed() {
  // Pairs with the fence in run(): orders the pipe's freeing of the buffer before both loads.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (tx_ != nullptr && tx_->wants_out_buffer() && sleeping_.load(std::memory_order_relaxed)) io_.wake();
}

void Worker::run() {
  std::array<IoCompletion, kBatch> completions;
  if (tx_ != nullptr) tx_->start();
  bool more_pending = false;
  auto last_publish = std::chrono::steady_clock::now();
  const auto publish = [&] {
    if (rx_ != nullptr) rx_->publish();
    if (tx_ != nullptr) tx_->publish();
    last_publish = std::chrono::steady_clock::now();
  };

  while (!stop_.load(std::memory_order_acquire)) {
    bool progress = false;
    if (rx_ != nullptr) progress |= rx_->pump();
    if (tx_ != nullptr) progress |= tx_->pump(more_pending);
    io_.submit();
    const bool idle = !progress;
    if (idle || std::chrono::steady_clock::now() - last_publish >= kPublishInterval) publish();
    int wait_ms = 0;
    if (idle) {
      sleeping_.store(true, std::memory_order_relaxed);
      // Pairs with the fence in notify(): orders the store above before the ring's load below.
      std::atomic_thread_fence(std::memory_order_seq_cst);
      const bool input = (rx_ != nullptr && rx_->has_input()) || (tx_ != nullptr && tx_->has_input());
      if (!input) wait_ms = idle_wait_ms_;
    }
    const std::size_t n = io_.reap(completions, wait_ms);
    if (idle) sleeping_.store(false, std::memory_order_relaxed);
    more_pending = n == completions.size();
    for (std::size_t i = 0; i < n; ++i) {
      const IoCompletion& c = completions[i];
      const std::uint64_t stage = c.tag & kTagStageMask;
      if (stage == kRxWriteTag && rx_ != nullptr) rx_->on_completion(c);
      else if (stage == kTxReadTag && tx_ != nullptr) tx_->on_completion(c);
    }
  }

  // Drain: RX writes still point into IN buffers and TX reads into read buffers; neither may be
  // freed while the kernel holds them. Cancel what is in flight and reap until nothing is.
  if (tx_ != nullptr) tx_->stop_reading();
  io_.cancel_all();
  io_.submit();
  const auto deadline = std::chrono::steady_clock::now() + kDrainTimeout;
  while (std::chrono::steady_clock::now() < deadline) {
    const std::size_t left = (rx_ != nullptr ? rx_->writes_in_flight() : 0) + (tx_ != nullptr ? tx_->reads_in_flight() : 0);
    if (left == 0) break;
    const std::size_t n = io_.reap(completions, 10);
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint64_t stage = completions[i].tag & kTagStageMask;
      if (stage == kRxWriteTag && rx_ != nullptr) rx_->on_completion(completions[i]);
      else if (stage == kTxReadTag && tx_ != nullptr) tx_->on_completion(completions[i]);
    }
  }
  publish();
}

}  // namespace wwan::dp
