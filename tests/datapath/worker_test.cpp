// The worker loop's wake-up handshake (datapath/worker.hpp): a buffer the USB thread posts is
// never left on the ring while the worker sleeps, and posting to a worker that is not waiting
// costs no wake-up. Real threads, an RX stage, and a PacketIo whose wait ends only on wake(): a
// lost wake-up shows as a counted wait that ran out (2 s), not as a delay hidden by a timeout.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "datapath/links.hpp"
#include "datapath/link_state.hpp"
#include "datapath/packet_io.hpp"
#include "datapath/rx_path.hpp"
#include "datapath/tx_path.hpp"
#include "datapath/worker.hpp"
#include "tests/datapath/stage_harness.hpp"

namespace wwan::dp {
namespace {

using stage_test::build_ntb;
using stage_test::ByteVector;
using stage_test::FakeOutLink;

using namespace std::chrono_literals;

// Writes complete at the next reap. A reap with a timeout waits for wake() and nothing else, for
// at most kStuck: a wait that runs out is a wake-up the worker needed and did not get.
class WakeOnlyIo final : public PacketIo {
 public:
  static constexpr auto kStuck = 2s;
  std::atomic<unsigned> wakes{0};
  std::atomic<unsigned> waits{0};
  std::atomic<unsigned> stuck_waits{0};
  std::atomic<std::uint64_t> writes{0};
  // Called by submit(), on the worker thread: the loop has pumped and not yet waited.
  std::function<void()> on_submit;

  std::size_t free_slots() const override {
    return 64 - prepared_.size() - submitted_.size() - prepared_reads_.size() - reads_.size();
  }
  bool prepare_write(std::span<const std::uint8_t>, std::uint64_t tag) override { return prepare(tag); }
  bool prepare_writev(const iovec*, unsigned, std::uint64_t tag) override { return prepare(tag); }
  // Reads take these packets, one each, at the reap after their submit (then wait forever).
  std::deque<ByteVector> arriving;  // the worker thread's once it runs

  bool prepare_read(std::span<std::uint8_t> buffer, std::uint64_t tag) override {
    if (free_slots() == 0) return false;
    prepared_reads_.push_back({buffer, tag});
    return true;
  }
  void submit() override {
    if (on_submit) on_submit();
    submitted_.insert(submitted_.end(), prepared_.begin(), prepared_.end());
    prepared_.clear();
    reads_.insert(reads_.end(), prepared_reads_.begin(), prepared_reads_.end());
    prepared_reads_.clear();
  }
  std::size_t reap(std::span<IoCompletion> out, int timeout_ms) override {
    const bool read_ready = (!reads_.empty() && !arriving.empty()) || !cancelled_.empty();
    if (submitted_.empty() && !read_ready && timeout_ms != 0) {
      ++waits;
      std::unique_lock lock(mu_);
      // The workers here wait without a limit (-1); a bounded wait is the drain at shutdown.
      const auto limit = timeout_ms < 0 ? std::chrono::milliseconds(kStuck) : std::chrono::milliseconds(timeout_ms);
      if (!cv_.wait_for(lock, limit, [&] { return woken_; }) && timeout_ms < 0) ++stuck_waits;
      woken_ = false;
    }
    std::size_t n = 0;
    for (; n < out.size() && n < submitted_.size(); ++n) out[n] = IoCompletion{submitted_[n], 1};
    submitted_.erase(submitted_.begin(), submitted_.begin() + static_cast<std::ptrdiff_t>(n));
    writes += n;
    while (n < out.size() && !cancelled_.empty()) {
      out[n++] = IoCompletion{cancelled_.back(), -ECANCELED};
      cancelled_.pop_back();
    }
    while (n < out.size() && !reads_.empty() && !arriving.empty()) {
      const auto [buffer, tag] = reads_.front();
      reads_.pop_front();
      const ByteVector p = arriving.front();
      arriving.pop_front();
      std::copy(p.begin(), p.end(), buffer.begin());
      out[n++] = IoCompletion{tag, static_cast<std::int32_t>(p.size())};
    }
    return n;
  }
  // Reads in flight end cancelled at the next reap, as io_uring's would.
  void cancel_all() override {
    for (const auto& [buffer, tag] : reads_) cancelled_.push_back(tag);
    reads_.clear();
  }
  void wake() override {
    ++wakes;
    const std::lock_guard lock(mu_);
    woken_ = true;
    cv_.notify_one();
  }

 private:
  bool prepare(std::uint64_t tag) {
    if (free_slots() == 0) return false;
    prepared_.push_back(tag);
    return true;
  }
  std::vector<std::uint64_t> prepared_, submitted_;  // the worker thread's, and so are these:
  std::vector<std::pair<std::span<std::uint8_t>, std::uint64_t>> prepared_reads_;
  std::deque<std::pair<std::span<std::uint8_t>, std::uint64_t>> reads_;
  std::vector<std::uint64_t> cancelled_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool woken_ = false;
};

// The IN pipe's K slots: the worker releases, the producer takes a free one (as InPipe resubmits).
class SlotPool final : public InLink {
 public:
  static constexpr unsigned kSlots = 4;
  std::atomic<std::uint64_t> released{0};

  void release(unsigned slot) override {
    free_.fetch_or(1u << slot, std::memory_order_release);
    ++released;
  }
  // Producer: a free slot, waiting (yielding) for one.
  unsigned take() {
    for (;;) {
      std::uint32_t f = free_.load(std::memory_order_acquire);
      while (f != 0) {
        const unsigned slot = static_cast<unsigned>(__builtin_ctz(f));
        if (free_.compare_exchange_weak(f, f & ~(1u << slot), std::memory_order_acq_rel)) return slot;
      }
      std::this_thread::yield();
    }
  }

 private:
  std::atomic<std::uint32_t> free_{(1u << kSlots) - 1};
};

// An IPv4/UDP packet of `bytes` (checksums are not the stages' business).
ByteVector ipv4_udp_packet(std::uint16_t bytes) {
  ByteVector ip(bytes, 0x5A);
  ip[0] = 0x45;
  ip[1] = 0;
  ip[2] = static_cast<std::uint8_t>(bytes >> 8);
  ip[3] = static_cast<std::uint8_t>(bytes);
  ip[8] = 64;
  ip[9] = 17;
  return ip;
}

// One IPv4/UDP packet in an MBIM NTB (IPS session 0, raw IP).
ByteVector one_packet_ntb() {
  return build_ntb({ipv4_udp_packet(60)}, {ntb::NtbFormat::Ntb16, ntb::DatagramKind::Ips, 0}, /*ethernet_framing=*/false);
}

RxConfig mbim_rx_config() {
  RxConfig c;
  c.framing = Framing::mbim;
  c.transfer_bytes = 16384;
  c.in_slots = SlotPool::kSlots;
  c.ring_capacity = SlotPool::kSlots;
  return c;
}

struct RxWorker {
  RxWorker() : rx(mbim_rx_config(), io, slots, state, nullptr, nullptr), worker(io, &rx, nullptr, /*idle_wait_ms=*/-1) {}
  void post(const ByteVector& ntb, unsigned slot) {
    ASSERT_TRUE(rx.post(RxBuffer{ntb.data(), static_cast<std::uint32_t>(ntb.size()), slot}));
    worker.notify();
  }
  // Waits (up to 60 s) until `n` buffers came back.
  bool wait_released(std::uint64_t n) {
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (slots.released.load() < n)
      if (std::chrono::steady_clock::now() > deadline) return false;
      else std::this_thread::sleep_for(1ms);
    return true;
  }
  WakeOnlyIo io;
  SlotPool slots;
  LinkState state;
  RxStage rx;
  Worker worker;
};

TEST(Worker, ABufferPostedBetweenThePumpAndTheWaitIsNeverLeftOnTheRing) {
  // The race the handshake exists for, made to happen every time: the buffer is posted (and
  // notify() called) after the pump found the ring empty and before the loop says it will wait.
  // Without the ring check after `sleeping_ = true`, notify() sees a worker that is not waiting,
  // wakes nobody, and the worker sleeps with the buffer on the ring.
  RxWorker w;
  const ByteVector ntb = one_packet_ntb();
  constexpr std::uint64_t kPosts = 5;
  std::uint64_t posted = 0;
  w.io.on_submit = [&] {
    // Everything before came back: this submit follows a pump that found nothing to do.
    if (posted < kPosts && w.slots.released.load() == posted) {
      w.post(ntb, w.slots.take());
      ++posted;
    }
  };
  std::thread t([&] { w.worker.run(); });
  const bool all_back = w.wait_released(kPosts);
  w.worker.stop();
  t.join();
  EXPECT_TRUE(all_back) << w.slots.released.load() << " of " << kPosts << " buffers came back";
  EXPECT_EQ(w.io.stuck_waits.load(), 0u) << "the worker slept with a buffer on the ring";
  EXPECT_EQ(w.rx.counters().packets, kPosts);
  EXPECT_EQ(w.io.wakes.load(), 1u) << "only stop() needed to wake it";
}

TEST(Worker, ManyBuffersPostedAtEveryPhaseOfTheLoopAllComeBack) {
  RxWorker w;
  const ByteVector ntb = one_packet_ntb();
  std::thread t([&] { w.worker.run(); });
  // Posts arrive at every phase of the worker's loop: at once, after a spin of a few hundred
  // nanoseconds (while it pumps, fences, checks the ring), after it has gone to sleep.
  constexpr std::uint64_t kPosts = 20000;
  std::mt19937 rng(11);
  for (std::uint64_t i = 0; i < kPosts; ++i) {
    w.post(ntb, w.slots.take());
    const unsigned r = rng() % 8;
    if (r == 0) std::this_thread::sleep_for(20us);
    else
      for (unsigned spin = r * 50; spin > 0; --spin) asm volatile("" ::: "memory");
  }
  const bool all_back = w.wait_released(kPosts);
  w.worker.stop();
  t.join();
  EXPECT_TRUE(all_back) << w.slots.released.load() << " of " << kPosts << " buffers came back";
  EXPECT_EQ(w.io.stuck_waits.load(), 0u) << "the worker slept with a buffer on the ring";
  EXPECT_EQ(w.io.writes.load(), kPosts);
  EXPECT_EQ(w.rx.counters().packets, kPosts);
  // It did sleep (the handshake was exercised), and was not woken for every post.
  EXPECT_GT(w.io.waits.load(), 0u);
  std::printf("posts %llu, worker waits %u, wakes %u\n", static_cast<unsigned long long>(kPosts), w.io.waits.load(),
              w.io.wakes.load());
}

TEST(Worker, APostToAWorkerThatIsNotWaitingCostsNoWake) {
  RxWorker w;
  const ByteVector ntb = one_packet_ntb();
  // Not running yet, so not waiting: the buffer waits on the ring for the first pump.
  w.post(ntb, w.slots.take());
  w.post(ntb, w.slots.take());
  EXPECT_EQ(w.io.wakes.load(), 0u);
  std::thread t([&] { w.worker.run(); });
  const bool all_back = w.wait_released(2);
  w.worker.stop();  // stop() wakes it: the one wake-up of this test
  t.join();
  EXPECT_TRUE(all_back);
  EXPECT_EQ(w.rx.counters().packets, 2u);
  EXPECT_EQ(w.io.wakes.load(), 1u);
}

// ---- TX: an OUT buffer freed --------------------------------------------------------------------

// MBIM (raw IP) NTBs of at most 2 KiB: one 1500-byte packet each. One OUT buffer.
TxConfig one_buffer_tx_config() {
  TxConfig c;
  c.framing = Framing::mbim;
  c.out.format = ntb::NtbFormat::Ntb16;
  c.out.ntb_out_max_size = 2048;
  c.out.ethernet_framing = false;
  c.signature = {ntb::NtbFormat::Ntb16, ntb::DatagramKind::Ips, 0};
  c.reads_in_flight = 4;
  c.out_slots = 1;
  return c;
}

struct TxWorker {
  TxWorker() : tx(one_buffer_tx_config(), io, out, state), worker(io, nullptr, &tx, /*idle_wait_ms=*/-1) {}
  WakeOnlyIo io;
  FakeOutLink out{1, 2048};
  LinkState state;
  TxStage tx;
  Worker worker;
};

TEST(Worker, AnOutBufferFreedAsTheTxWorkerGoesToSleepWaitingForOneIsNotMissed) {
  // Two 1500-byte packets: the first NTB takes the one OUT buffer, the second packet waits for
  // it. The buffer frees (and notify_out_buffer_freed() runs) after the pump that found none and
  // before the loop says it will wait: without the check for a free buffer after `sleeping_ =
  // true`, the worker would sleep with the packet held and the buffer free.
  TxWorker w;
  w.io.arriving = {ipv4_udp_packet(1500), ipv4_udp_packet(1500)};
  bool freed = false;
  w.io.on_submit = [&] {
    if (!freed && w.tx.backpressured() && w.out.sent.size() == 1) {
      w.out.complete_all();
      w.worker.notify_out_buffer_freed();
      freed = true;
    }
  };
  std::thread t([&] { w.worker.run(); });
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (w.io.waits.load() == 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
  w.worker.stop();
  t.join();
  EXPECT_TRUE(freed);
  ASSERT_EQ(w.out.sent.size(), 2u) << "the second packet never left";
  EXPECT_EQ(w.io.stuck_waits.load(), 0u) << "the worker slept with a packet held and the buffer free";
  EXPECT_EQ(w.io.wakes.load(), 1u) << "only stop() needed to wake it";
}

TEST(Worker, AnOutBufferFreedWhileTxWaitsForTheTunCostsNoWake) {
  // TX sleeps waiting for TUN reads, with the OUT buffer free: an OUT completion is no news to it.
  TxWorker w;
  std::thread t([&] { w.worker.run(); });
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (w.io.waits.load() == 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
  ASSERT_EQ(w.io.waits.load(), 1u) << "the worker is in its first wait";
  w.worker.notify_out_buffer_freed();
  EXPECT_EQ(w.io.wakes.load(), 0u);
  w.worker.stop();
  t.join();
  EXPECT_EQ(w.io.wakes.load(), 1u) << "stop() only";
  EXPECT_EQ(w.io.waits.load(), 1u) << "it was never woken before stop()";
}

}  // namespace
}  // namespace wwan::dp
