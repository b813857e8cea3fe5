// A bulk-OUT link whose transfers complete the moment they are submitted: what the TX stage
// benchmarks put behind TxStage so that only the stage is measured (bench/datapath_bench.cpp,
// and the lone-packet TX latency probe of bench/e2e_support.cpp, which reads the time of the last
// submit from another thread). Keeps a copy of the first NTB for the benchmarks' checks.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "datapath/links.hpp"

namespace wwan::bench {

class InstantOut final : public dp::OutLink {
 public:
  // `slots` buffers of `bytes` (+ 1: room for the pad byte past a full block is never needed, but
  // a spare byte costs nothing).
  InstantOut(unsigned slots, std::size_t bytes) : buffers_(slots, std::vector<std::uint8_t>(bytes + 1)), free_(slots, true) {}

  std::optional<unsigned> acquire() override {
    for (unsigned i = 0; i < free_.size(); ++i)
      if (free_[i]) {
        free_[i] = false;
        return i;
      }
    return std::nullopt;
  }
  // Never short of one: every transfer completes at its submit.
  bool has_free_buffer() const override { return true; }
  std::span<std::uint8_t> buffer(unsigned slot) override { return buffers_[slot]; }
  bool submit(unsigned slot, std::size_t length) override {
    if (first_.empty()) first_.assign(buffers_[slot].begin(), buffers_[slot].begin() + static_cast<std::ptrdiff_t>(length));
    bytes_ += length;
    free_[slot] = true;
    // Relaxed/release stores: free on x86, and the only cross-thread readers are the probes.
    last_submit_ns_.store(std::chrono::steady_clock::now().time_since_epoch().count(), std::memory_order_relaxed);
    submits_.fetch_add(1, std::memory_order_release);
    submits_.notify_one();
    return true;
  }
  void give_back(unsigned slot) override { free_[slot] = true; }
  std::size_t max_packet_bytes() const override { return 512; }

  // The stage's thread only.
  const std::vector<std::uint8_t>& first_ntb() const { return first_; }
  std::uint64_t bytes() const { return bytes_; }
  // Any thread: NTBs submitted so far (wait on it with submits().wait(old)), and the
  // steady_clock time of the last submit.
  const std::atomic<std::uint32_t>& submits() const { return submits_; }
  std::int64_t last_submit_ns() const { return last_submit_ns_.load(std::memory_order_relaxed); }

 private:
  std::vector<std::vector<std::uint8_t>> buffers_;
  std::vector<bool> free_;
  std::vector<std::uint8_t> first_;
  std::uint64_t bytes_ = 0;
  std::atomic<std::uint32_t> submits_{0};
  std::atomic<std::int64_t> last_submit_ns_{0};
};

}  // namespace wwan::bench
