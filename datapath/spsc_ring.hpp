// A bounded single-producer single-consumer ring (DESIGN.md "Data flow": completed NTB buffers
// from the USB event thread to the RX worker; ARP/NS replies from RX to TX).
//
// A thin wrapper over moodycamel::ReaderWriterQueue (Debian libreaderwriterqueue-dev; chosen
// over Boost.Lockfree spsc_queue by bench/ring_bench, docs/benchmarks.md "SPSC ring"). Only the
// try_ calls are used: all memory is allocated in the constructor and a full ring is the caller's
// counted drop, never a wait and never growth.
//
// Ordering: try_push publishes the element with a release store and try_pop reads it after an
// acquire load (the queue's own fences), so everything the producer wrote into the buffer an
// element refers to is visible to the consumer that pops it.
#pragma once

#include <cstddef>
#include <utility>

#if defined(__clang__) || defined(__GNUC__)
#pragma GCC system_header  // the library's headers are not -Wconversion clean
#endif
#include <readerwriterqueue/readerwriterqueue.h>

namespace wwan::dp {

template <class T>
class SpscRing {
 public:
  explicit SpscRing(std::size_t capacity) : queue_(capacity), capacity_(capacity) {}

  // Producer only. false = full: nothing was queued (the caller counts the drop).
  bool try_push(const T& item) { return queue_.try_enqueue(item); }
  // Consumer only. false = empty.
  bool try_pop(T& item) { return queue_.try_dequeue(item); }
  // Consumer only: nothing to pop. A push that happened before (in the C++ memory model: whose
  // release store this call's acquire load reads) is always seen.
  bool empty() const { return queue_.peek() == nullptr; }
  // Approximate (exact for the consumer when the producer is idle).
  std::size_t size_approx() const { return queue_.size_approx(); }
  std::size_t capacity() const { return capacity_; }

 private:
  moodycamel::ReaderWriterQueue<T> queue_;
  std::size_t capacity_;
};

}  // namespace wwan::dp
