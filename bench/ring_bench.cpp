// SPSC ring benchmarks: the bounded ring that hands completed bulk-IN buffers ({slot, length},
// 8 bytes) from the USB event thread to the RX worker. Candidates are the Debian-packaged rings:
//   Rwq    moodycamel::ReaderWriterQueue                 (libreaderwriterqueue-dev)
//   Rwcb   moodycamel::BlockingReaderWriterCircularBuffer (libreaderwriterqueue-dev)
//   Boost  boost::lockfree::spsc_queue, compile-time capacity (libboost-dev)
//
// BM_Spsc: real two-thread throughput. The benchmark thread is the producer (try-push of one item
// at a time, as the USB event thread does per completed transfer); a std::thread is the consumer,
// popping one at a time or in bursts of up to 32 (Boost only: pop(T*, n)). In the data path a full
// ring is a counted drop; here the producer retries, so the rate is what the ring can move, and
// `full` is the fraction of push attempts that found the ring full. The consumer checks every item
// (sequence number and length): a fast wrong ring fails the benchmark.
// BM_Ceiling: the same producer/consumer loop interleaved on one thread through a plain array ring
// (no atomics, no second core): the upper bound the threaded numbers are read against.
// BM_PingPong: round-trip latency, one item to an echo thread through one ring and back through a
// second; each round trip is timed on its own and the median and p99 are reported (ns), next to
// the median cost of one back-to-back steady_clock read pair (`clock_ns`, included in the rtt).
// Items per iteration are fixed (kItemsPerIteration) so that a short --benchmark_min_time still
// moves thousands of items. Waits spin with a pause and yield after 1024 spins (`yields`;
// pinned, they only spin).
//
// Nothing is pinned by default. Whether the two threads really ran side by side is reported with
// each result: `shared_core` is the fraction of samples (sched_getcpu) in which both threads were
// on the same CPU, `csw` the involuntary context switches of both (our own yields included). A
// result with shared_core well above 0 measured two threads taking turns on one core, not a ring.
// On a loaded host, WWAN_RING_PIN=P,C pins the producer/ping thread to CPU P and the
// consumer/echo thread to CPU C for the threaded benchmarks (the main thread's mask is restored).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>

#include <boost/lockfree/spsc_queue.hpp>
#include <readerwriterqueue/readerwritercircularbuffer.h>
#include <readerwriterqueue/readerwriterqueue.h>

namespace {

struct Item {
  std::uint32_t slot;
  std::uint32_t length;
};
static_assert(sizeof(Item) == 8);

constexpr std::size_t kMaxBurst = 32;
constexpr std::size_t kItemsPerIteration = 4096;
constexpr std::uint32_t kStop = UINT32_MAX;  // ping-pong: tells the echo thread to leave

Item make_item(std::uint32_t seq) { return {seq, 64u + (seq & 0x5ffu)}; }

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
  asm volatile("yield");
#endif
}

// Optional pinning (WWAN_RING_PIN=P,C) and the same-core probe.
struct PinPlan {
  int producer = -1, consumer = -1;
  bool on() const { return producer >= 0 && consumer >= 0; }
};

PinPlan pin_plan() {
  PinPlan p;
  if (const char* e = std::getenv("WWAN_RING_PIN")) {
    if (std::sscanf(e, "%d,%d", &p.producer, &p.consumer) != 2) p = {};
  }
  return p;
}

void pin_self(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(static_cast<std::size_t>(cpu), &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

// Pins the calling (benchmark) thread for its lifetime, then gives it back its old mask.
class ScopedPin {
 public:
  explicit ScopedPin(int cpu) : active_(cpu >= 0) {
    if (!active_) return;
    pthread_getaffinity_np(pthread_self(), sizeof saved_, &saved_);
    pin_self(cpu);
  }
  ~ScopedPin() {
    if (active_) pthread_setaffinity_np(pthread_self(), sizeof saved_, &saved_);
  }
  ScopedPin(const ScopedPin&) = delete;
  ScopedPin& operator=(const ScopedPin&) = delete;

 private:
  bool active_;
  cpu_set_t saved_{};
};

// The second thread publishes its CPU now and then; the benchmark thread compares it with its own.
struct CoreProbe {
  std::atomic<int> other{-1};
  std::uint64_t samples = 0, same = 0;
  void publish() { other.store(sched_getcpu(), std::memory_order_relaxed); }
  void sample() {
    ++samples;
    if (sched_getcpu() == other.load(std::memory_order_relaxed)) ++same;
  }
  double shared() const { return samples ? static_cast<double>(same) / static_cast<double>(samples) : 0.0; }
};

// Spin-wait with a way out: unpinned, the other thread may share this core, and a waiter that
// only spins would burn its whole timeslice before the other side can run. Pinned to different
// CPUs a yield could only hand this core to someone else, so then it only spins.
const bool g_pinned = pin_plan().on();

struct Backoff {
  unsigned spins = 0;
  std::uint64_t yields = 0;
  void wait() {
    if (g_pinned || ++spins < 1024) {
      cpu_relax();
    } else {
      spins = 0;
      ++yields;
      std::this_thread::yield();
    }
  }
};

// Involuntary context switches of this thread so far (a sched_yield that switches counts too).
std::uint64_t preemptions() {
  rusage u{};
  getrusage(RUSAGE_THREAD, &u);
  return static_cast<std::uint64_t>(u.ru_nivcsw);
}

// Adapters: try_push(one), pop(out, up to n) -> count, effective_capacity().
class Rwq {
 public:
  static constexpr bool kBurst = false;
  explicit Rwq(std::size_t capacity) : q_(capacity) {}
  bool try_push(const Item& x) { return q_.try_enqueue(x); }  // never allocates
  std::size_t pop(Item* out, std::size_t) { return q_.try_dequeue(*out) ? 1 : 0; }
  std::size_t effective_capacity() const { return q_.max_capacity(); }

 private:
  moodycamel::ReaderWriterQueue<Item> q_;
};

class Rwcb {
 public:
  static constexpr bool kBurst = false;
  explicit Rwcb(std::size_t capacity) : q_(capacity) {}
  bool try_push(const Item& x) { return q_.try_enqueue(x); }
  std::size_t pop(Item* out, std::size_t) { return q_.try_dequeue(*out) ? 1 : 0; }
  void wait_pop(Item& out) { q_.wait_dequeue(out); }
  std::size_t effective_capacity() const { return q_.max_capacity(); }

 private:
  moodycamel::BlockingReaderWriterCircularBuffer<Item> q_;
};

template <std::size_t N>
class Boost {
 public:
  static constexpr bool kBurst = true;
  explicit Boost(std::size_t) {}
  bool try_push(const Item& x) { return q_.push(x); }
  std::size_t pop(Item* out, std::size_t n) { return q_.pop(out, n); }
  std::size_t effective_capacity() const { return N; }

 private:
  boost::lockfree::spsc_queue<Item, boost::lockfree::capacity<N>> q_;
};

// The ceiling's ring: same interface, no synchronisation.
class Plain {
 public:
  explicit Plain(std::size_t capacity) : buf_(capacity) {}
  bool try_push(const Item& x) {
    if (count_ == buf_.size()) return false;
    buf_[w_] = x;
    if (++w_ == buf_.size()) w_ = 0;
    ++count_;
    return true;
  }
  std::size_t pop(Item* out, std::size_t n) {
    const std::size_t k = std::min(n, count_);
    for (std::size_t i = 0; i < k; ++i) {
      out[i] = buf_[r_];
      if (++r_ == buf_.size()) r_ = 0;
    }
    count_ -= k;
    return k;
  }
  std::size_t size() const { return count_; }

 private:
  std::vector<Item> buf_;
  std::size_t r_ = 0, w_ = 0, count_ = 0;
};

// What the consumer does with each burst: check order and contents, sum lengths.
struct Checker {
  std::uint32_t expect = 0;
  std::uint64_t items = 0;
  std::uint64_t pops = 0;  // pop calls that returned at least one item
  std::uint64_t bad = 0;
  std::uint64_t length_sum = 0;
  std::uint64_t yields = 0;
  std::uint64_t preempted = 0;
  void take(const Item* b, std::size_t n) {
    ++pops;
    for (std::size_t i = 0; i < n; ++i) {
      const Item want = make_item(expect++);
      if (b[i].slot != want.slot || b[i].length != want.length) ++bad;
      length_sum += b[i].length;
    }
    items += n;
  }
};

template <class Ring>
Checker consume(Ring& ring, std::size_t burst, const std::atomic<bool>& done, CoreProbe& probe) {
  Checker c;
  const std::uint64_t preempted0 = preemptions();
  probe.publish();
  std::array<Item, kMaxBurst> buf{};
  Backoff b;
  for (;;) {
    std::size_t n = ring.pop(buf.data(), burst);
    if (n == 0) {
      if (!done.load(std::memory_order_acquire)) {
        b.wait();
        continue;
      }
      n = ring.pop(buf.data(), burst);  // every push happened before `done`: drain, then leave
      if (n == 0) break;
    }
    b.spins = 0;
    c.take(buf.data(), n);
    if ((c.pops & 255) == 0) probe.publish();
  }
  c.yields = b.yields;
  c.preempted = preemptions() - preempted0;
  return c;
}

void set_common_counters(benchmark::State& state, const Checker& c, std::uint64_t pushed) {
  state.counters["items"] = benchmark::Counter(static_cast<double>(pushed), benchmark::Counter::kIsRate);
  state.counters["avg_pop"] = c.pops ? static_cast<double>(c.items) / static_cast<double>(c.pops) : 0.0;
}

template <class Ring>
void BM_Spsc(benchmark::State& state) {
  const auto capacity = static_cast<std::size_t>(state.range(0));
  const auto burst = static_cast<std::size_t>(state.range(1));
  if (burst < 1 || burst > kMaxBurst || (burst > 1 && !Ring::kBurst)) {
    state.SkipWithError("burst size not supported by this ring");
    return;
  }
  auto ring = std::make_unique<Ring>(capacity);  // all allocation happens here
  const PinPlan pin = pin_plan();
  const ScopedPin pinned(pin.producer);
  std::atomic<bool> done{false};
  Checker got;
  CoreProbe probe;
  std::thread consumer([&] {
    if (pin.on()) pin_self(pin.consumer);
    got = consume(*ring, burst, done, probe);
  });

  std::uint32_t seq = 0;
  std::uint64_t pushed = 0, full = 0;
  Backoff b;
  const std::uint64_t preempted0 = preemptions();
  for (auto _ : state) {
    for (std::size_t i = 0; i < kItemsPerIteration; ++i) {
      const Item x = make_item(seq);
      while (!ring->try_push(x)) {
        ++full;
        b.wait();
      }
      b.spins = 0;
      ++seq;
    }
    pushed += kItemsPerIteration;
    probe.sample();
  }
  const std::uint64_t preempted = preemptions() - preempted0;
  done.store(true, std::memory_order_release);
  consumer.join();

  if (got.items != pushed || got.bad != 0) {
    state.SkipWithError("consumer did not get back exactly the items pushed, in order");
    return;
  }
  benchmark::DoNotOptimize(got.length_sum);
  set_common_counters(state, got, pushed);
  state.counters["full"] = static_cast<double>(full) / static_cast<double>(full + pushed);
  state.counters["cap_eff"] = static_cast<double>(ring->effective_capacity());
  state.counters["yields"] = static_cast<double>(b.yields + got.yields);
  state.counters["csw"] = static_cast<double>(preempted + got.preempted);
  state.counters["shared_core"] = probe.shared();
}

void BM_Ceiling(benchmark::State& state) {
  const auto capacity = static_cast<std::size_t>(state.range(0));
  const auto burst = static_cast<std::size_t>(state.range(1));
  Plain ring(capacity);
  Checker got;
  std::array<Item, kMaxBurst> buf{};
  std::uint32_t seq = 0;
  std::uint64_t pushed = 0;
  for (auto _ : state) {
    for (std::size_t i = 0; i < kItemsPerIteration; ++i) {
      const Item x = make_item(seq);
      while (!ring.try_push(x)) got.take(buf.data(), ring.pop(buf.data(), burst));
      ++seq;
      if (ring.size() >= burst) got.take(buf.data(), ring.pop(buf.data(), burst));
    }
    pushed += kItemsPerIteration;
  }
  while (std::size_t n = ring.pop(buf.data(), burst)) got.take(buf.data(), n);
  if (got.items != pushed || got.bad != 0) {
    state.SkipWithError("ceiling ring lost or reordered items");
    return;
  }
  benchmark::DoNotOptimize(got.length_sum);
  set_common_counters(state, got, pushed);
}

double clock_pair_ns() {
  std::array<std::int64_t, 1001> d{};
  for (auto& x : d) {
    const auto a = std::chrono::steady_clock::now();
    const auto b = std::chrono::steady_clock::now();
    x = std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count();
  }
  std::nth_element(d.begin(), d.begin() + 500, d.end());
  return static_cast<double>(d[500]);
}

// Blocking = the waits use Rwcb's wait_dequeue (semaphore) instead of spinning on try-pop.
template <class Ring, bool Blocking = false>
void BM_PingPong(benchmark::State& state) {
  auto ping = std::make_unique<Ring>(64);
  auto pong = std::make_unique<Ring>(64);
  const PinPlan pin = pin_plan();
  const ScopedPin pinned(pin.producer);
  CoreProbe probe;
  auto recv = [](Ring& r) {
    Item x{};
    if constexpr (Blocking) {
      r.wait_pop(x);
    } else {
      Backoff b;
      while (r.pop(&x, 1) == 0) b.wait();
    }
    return x;
  };
  std::atomic<std::uint64_t> echo_preempted{0};
  std::thread echo([&] {
    if (pin.on()) pin_self(pin.consumer);
    const std::uint64_t p0 = preemptions();
    probe.publish();
    for (;;) {
      const Item x = recv(*ping);
      if (x.slot == kStop) break;
      while (!pong->try_push(x)) cpu_relax();
      if ((x.slot & 63) == 0) probe.publish();
    }
    echo_preempted.store(preemptions() - p0, std::memory_order_relaxed);
  });
  const std::uint64_t preempted0 = preemptions();

  std::vector<std::int64_t> rtt;
  rtt.reserve(static_cast<std::size_t>(state.max_iterations));
  std::uint32_t seq = 0;
  std::uint64_t bad = 0;
  for (auto _ : state) {
    const Item x = make_item(seq++);
    const auto t0 = std::chrono::steady_clock::now();
    while (!ping->try_push(x)) cpu_relax();
    const Item y = recv(*pong);
    const auto t1 = std::chrono::steady_clock::now();
    rtt.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
    if (y.slot != x.slot || y.length != x.length) ++bad;
    if ((x.slot & 63) == 1) probe.sample();
  }
  const std::uint64_t preempted = preemptions() - preempted0;
  while (!ping->try_push({kStop, 0})) cpu_relax();
  echo.join();

  if (bad != 0 || rtt.empty()) {
    state.SkipWithError("ping-pong got back a different item");
    return;
  }
  auto at = [&](double q) {
    const auto k = static_cast<std::ptrdiff_t>(q * static_cast<double>(rtt.size() - 1));
    std::nth_element(rtt.begin(), rtt.begin() + k, rtt.end());
    return static_cast<double>(rtt[static_cast<std::size_t>(k)]);
  };
  state.counters["rtt_median_ns"] = at(0.5);
  state.counters["rtt_p99_ns"] = at(0.99);
  state.counters["clock_ns"] = clock_pair_ns();
  state.counters["csw"] = static_cast<double>(preempted + echo_preempted.load(std::memory_order_relaxed));
  state.counters["shared_core"] = probe.shared();
}

void Threaded(benchmark::internal::Benchmark* b) { b->ArgNames({"cap", "burst"})->UseRealTime(); }

BENCHMARK_TEMPLATE(BM_Spsc, Rwq)->Apply(Threaded)->Args({64, 1})->Args({1024, 1});
BENCHMARK_TEMPLATE(BM_Spsc, Rwcb)->Apply(Threaded)->Args({64, 1})->Args({1024, 1});
BENCHMARK_TEMPLATE(BM_Spsc, Boost<64>)->Apply(Threaded)->Args({64, 1})->Args({64, 32});
BENCHMARK_TEMPLATE(BM_Spsc, Boost<1024>)->Apply(Threaded)->Args({1024, 1})->Args({1024, 32});
BENCHMARK(BM_Ceiling)->Apply(Threaded)->ArgsProduct({{64, 1024}, {1, 32}});

BENCHMARK_TEMPLATE(BM_PingPong, Rwq)->UseRealTime();
BENCHMARK_TEMPLATE(BM_PingPong, Rwcb)->UseRealTime();
BENCHMARK_TEMPLATE(BM_PingPong, Rwcb, true)->UseRealTime();
BENCHMARK_TEMPLATE(BM_PingPong, Boost<64>)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
