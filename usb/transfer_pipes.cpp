#include "usb/transfer_pipes.hpp"

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace wwan::usb {

const char* to_string(TransferStatus status) {
  switch (status) {
    case TransferStatus::completed: return "completed";
    case TransferStatus::stall: return "stall";
    case TransferStatus::timeout: return "timeout";
    case TransferStatus::cancelled: return "cancelled";
    case TransferStatus::no_device: return "no_device";
    case TransferStatus::overflow: return "overflow";
    case TransferStatus::error: return "error";
  }
  return "?";
}

const char* to_string(PipeState state) {
  switch (state) {
    case PipeState::idle: return "idle";
    case PipeState::running: return "running";
    case PipeState::stopping: return "stopping";
    case PipeState::stopped: return "stopped";
    case PipeState::device_gone: return "device_gone";
    case PipeState::failed: return "failed";
  }
  return "?";
}

namespace {

void check_config(const PipeConfig& config, bool in) {
  if (((config.endpoint & 0x80) != 0) != in)
    throw std::invalid_argument(std::string(in ? "InPipe" : "OutPipe") + ": endpoint direction is wrong");
  if (config.transfer_bytes == 0) throw std::invalid_argument("pipe: transfer_bytes is 0");
  if (config.transfers_in_flight == 0 || config.transfers_in_flight > kMaxTransfersInFlight)
    throw std::invalid_argument("pipe: transfers_in_flight must be 1.." + std::to_string(kMaxTransfersInFlight));
}

// Runs the event loop until `idle()` or the deadline.
template <class Idle>
bool pump_until(Transport& transport, unsigned timeout_ms, Idle idle) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!idle()) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return false;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
    transport.handle_events(static_cast<unsigned>(left > 0 ? left : 1));
  }
  return true;
}

// A transfer the kernel (or the emulated device) may still write into must never be freed: if a
// pipe is destroyed with transfers in flight (a caller bug, or a transport that cannot cancel),
// its slots are leaked on purpose, and loudly.
template <class Slots>
void leak_if_in_flight(Slots& slots, unsigned in_flight, const char* who) {
  if (in_flight == 0) return;
  std::fprintf(stderr, "wwan-dp: %s destroyed with %u transfers in flight; leaking their buffers\n", who, in_flight);
  new Slots(std::move(slots));  // NOLINT: deliberate leak, see above
}

}  // namespace

// ---------------------------------------------------------------- the slots of both pipes

namespace detail {
struct PipeSlot {
  void* pipe = nullptr;  // the InPipe or OutPipe that owns it (its on_complete knows which)
  unsigned index = 0;
  std::vector<std::uint8_t> storage;
  Transfer transfer;
  std::atomic<bool> submitted{false};

  PipeSlot() = default;
  PipeSlot(PipeSlot&& o) noexcept
      : pipe(o.pipe), index(o.index), storage(std::move(o.storage)), transfer(o.transfer),
        submitted(o.submitted.load()) {}
};
}  // namespace detail

namespace {

// K slots with their buffers and transfers set up from the configuration.
void make_slots(std::vector<detail::PipeSlot>& slots, const PipeConfig& config, void* owner,
                void (*on_complete)(Transfer&)) {
  slots.resize(config.transfers_in_flight);
  for (unsigned i = 0; i < slots.size(); ++i) {
    detail::PipeSlot& s = slots[i];
    s.pipe = owner;
    s.index = i;
    s.storage.resize(config.transfer_bytes);
    s.transfer.endpoint = config.endpoint;
    s.transfer.buffer = s.storage;
    s.transfer.length = config.transfer_bytes;
    s.transfer.timeout_ms = config.timeout_ms;
    s.transfer.zero_length_packet = config.zero_length_packet;
    s.transfer.interrupt = config.interrupt;
    s.transfer.on_complete = on_complete;
    s.transfer.user = &s;
  }
}

void cancel_submitted(std::vector<detail::PipeSlot>& slots, Transport& transport) {
  for (detail::PipeSlot& slot : slots)
    if (slot.submitted.load(std::memory_order_acquire)) transport.cancel(slot.transfer);
}

}  // namespace

// ---------------------------------------------------------------- InPipe


InPipe::InPipe(Transport& transport, const PipeConfig& config, InSink sink, void* user)
    : transport_(transport), config_(config), sink_(sink), user_(user) {
  check_config(config, true);
  if (sink == nullptr) throw std::invalid_argument("InPipe: no sink");
  make_slots(slots_, config, this, &InPipe::on_complete);
}

InPipe::~InPipe() {
  if (in_flight() > 0 && !transport_.device_gone()) {
    stop();
    drain(1000);
  }
  leak_if_in_flight(slots_, in_flight(), "InPipe");
}

bool InPipe::start() {
  PipeState expected = PipeState::idle;
  if (!state_.compare_exchange_strong(expected, PipeState::running)) return false;
  for (Slot& s : slots_) resubmit(s);
  return in_flight() > 0;
}

void InPipe::release(unsigned slot) {
  if (slot >= slots_.size()) return;
  resubmit(slots_[slot]);
}

void InPipe::resubmit(Slot& slot) {
  if (state() != PipeState::running) return;
  slot.transfer.length = config_.transfer_bytes;
  slot.submitted.store(true, std::memory_order_release);
  in_flight_.fetch_add(1, std::memory_order_acq_rel);
  const TransferStatus st = transport_.submit(slot.transfer);
  if (st == TransferStatus::completed) return;
  slot.submitted.store(false, std::memory_order_release);
  in_flight_.fetch_sub(1, std::memory_order_acq_rel);
  if (st == TransferStatus::no_device) {
    fail(PipeState::device_gone);
    return;
  }
  counters_.errors.fetch_add(1, std::memory_order_relaxed);
  // A slot that cannot be submitted idles; with none left in flight the pipe is dead.
  if (in_flight() == 0) fail(PipeState::failed);
}

void InPipe::fail(PipeState why) {
  PipeState s = state();
  while ((s == PipeState::running || s == PipeState::stopping) && !state_.compare_exchange_weak(s, why)) {
  }
  // Transfers still in flight end by themselves (gone) or are cancelled (failed).
  if (why == PipeState::failed) cancel_submitted(slots_, transport_);
}

void InPipe::stop() {
  PipeState expected = PipeState::running;
  if (!state_.compare_exchange_strong(expected, PipeState::stopping)) {
    expected = PipeState::idle;
    state_.compare_exchange_strong(expected, PipeState::stopped);
    return;
  }
  cancel_submitted(slots_, transport_);
  if (in_flight() == 0) {
    expected = PipeState::stopping;
    state_.compare_exchange_strong(expected, PipeState::stopped);
  }
}

bool InPipe::drain(unsigned timeout_ms) {
  return pump_until(transport_, timeout_ms, [this] { return in_flight() == 0; });
}

void InPipe::on_complete(Transfer& transfer) {
  Slot& slot = *static_cast<Slot*>(transfer.user);
  static_cast<InPipe*>(slot.pipe)->completed(slot);
}

void InPipe::completed(Slot& slot) {
  slot.submitted.store(false, std::memory_order_release);
  in_flight_.fetch_sub(1, std::memory_order_acq_rel);
  const Transfer& t = slot.transfer;
  bool retry = false;
  switch (t.status) {
    case TransferStatus::completed:
      consecutive_failures_ = 0;
      if (t.actual_bytes == 0) {  // a ZLP ends a transfer that filled whole packets; no NTB in it
        counters_.zero_length.fetch_add(1, std::memory_order_relaxed);
        retry = true;
        break;
      }
      counters_.transfers.fetch_add(1, std::memory_order_relaxed);
      counters_.bytes.fetch_add(t.actual_bytes, std::memory_order_relaxed);
      // actual_bytes <= length is the transport's promise; min() keeps a broken one from lending
      // bytes past the buffer.
      sink_(user_, slot.index, std::span<const std::uint8_t>(slot.storage).first(std::min(t.actual_bytes, slot.storage.size())));
      break;  // the slot is the sink's until release()
    case TransferStatus::stall:
      counters_.stalls.fetch_add(1, std::memory_order_relaxed);
      if (state() == PipeState::running && transport_.clear_halt(config_.endpoint) == TransferStatus::completed)
        counters_.halts_cleared.fetch_add(1, std::memory_order_relaxed);
      retry = ++consecutive_failures_ < kMaxConsecutiveFailures;
      if (!retry) fail(PipeState::failed);
      break;
    case TransferStatus::cancelled:
      break;
    case TransferStatus::no_device:
      fail(PipeState::device_gone);
      break;
    case TransferStatus::timeout:
    case TransferStatus::overflow:
    case TransferStatus::error:
      (t.status == TransferStatus::timeout    ? counters_.timeouts
       : t.status == TransferStatus::overflow ? counters_.overflows
                                              : counters_.errors)
          .fetch_add(1, std::memory_order_relaxed);
      // A timeout on an IN pipe only means the device had nothing to say.
      retry = t.status == TransferStatus::timeout || ++consecutive_failures_ < kMaxConsecutiveFailures;
      if (!retry) fail(PipeState::failed);
      break;
  }
  if (retry) resubmit(slot);
  if (in_flight() == 0) {
    PipeState expected = PipeState::stopping;
    state_.compare_exchange_strong(expected, PipeState::stopped);
  }
}

// ---------------------------------------------------------------- OutPipe


OutPipe::OutPipe(Transport& transport, const PipeConfig& config) : transport_(transport), config_(config) {
  check_config(config, false);
  make_slots(slots_, config, this, &OutPipe::on_complete);
  const unsigned k = config.transfers_in_flight;
  free_mask_.store(k == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << k) - 1, std::memory_order_release);
  state_.store(PipeState::running, std::memory_order_release);
}

OutPipe::~OutPipe() {
  if (in_flight() > 0 && !transport_.device_gone()) {
    stop();
    drain(1000);
  }
  leak_if_in_flight(slots_, in_flight(), "OutPipe");
}

std::optional<unsigned> OutPipe::acquire() {
  if (state() != PipeState::running) return std::nullopt;
  std::uint64_t mask = free_mask_.load(std::memory_order_acquire);
  while (mask != 0) {
    const std::uint64_t lowest = mask & (~mask + 1);
    if (free_mask_.compare_exchange_weak(mask, mask & ~lowest, std::memory_order_acq_rel))
      return static_cast<unsigned>(std::countr_zero(lowest));
  }
  return std::nullopt;
}

std::span<std::uint8_t> OutPipe::buffer(unsigned slot) {
  return slot < slots_.size() ? std::span<std::uint8_t>(slots_[slot].storage) : std::span<std::uint8_t>{};
}

void OutPipe::free_slot(unsigned slot) {
  free_mask_.fetch_or(std::uint64_t{1} << slot, std::memory_order_release);
}

void OutPipe::give_back(unsigned slot) {
  if (slot < slots_.size()) free_slot(slot);
}

TransferStatus OutPipe::submit(unsigned slot, std::size_t length) {
  if (slot >= slots_.size() || length > config_.transfer_bytes) {
    if (slot < slots_.size()) free_slot(slot);
    return TransferStatus::error;
  }
  if (state() != PipeState::running) {
    free_slot(slot);
    return state() == PipeState::device_gone ? TransferStatus::no_device : TransferStatus::cancelled;
  }
  Slot& s = slots_[slot];
  s.transfer.length = length;
  s.submitted.store(true, std::memory_order_release);
  in_flight_.fetch_add(1, std::memory_order_acq_rel);
  const TransferStatus st = transport_.submit(s.transfer);
  if (st == TransferStatus::completed) return st;
  s.submitted.store(false, std::memory_order_release);
  in_flight_.fetch_sub(1, std::memory_order_acq_rel);
  counters_.errors.fetch_add(1, std::memory_order_relaxed);
  if (st == TransferStatus::no_device) state_.store(PipeState::device_gone, std::memory_order_release);
  free_slot(slot);
  return st;
}

void OutPipe::stop() {
  PipeState expected = PipeState::running;
  if (!state_.compare_exchange_strong(expected, PipeState::stopping)) return;
  cancel_submitted(slots_, transport_);
  if (in_flight() == 0) {
    expected = PipeState::stopping;
    state_.compare_exchange_strong(expected, PipeState::stopped);
  }
}

bool OutPipe::drain(unsigned timeout_ms) {
  return pump_until(transport_, timeout_ms, [this] { return in_flight() == 0; });
}

void OutPipe::on_complete(Transfer& transfer) {
  Slot& slot = *static_cast<Slot*>(transfer.user);
  static_cast<OutPipe*>(slot.pipe)->completed(slot);
}

void OutPipe::completed(Slot& slot) {
  const Transfer& t = slot.transfer;
  switch (t.status) {
    case TransferStatus::completed:
      consecutive_failures_.store(0, std::memory_order_relaxed);
      counters_.transfers.fetch_add(1, std::memory_order_relaxed);
      counters_.bytes.fetch_add(t.actual_bytes, std::memory_order_relaxed);
      if (t.actual_bytes < t.length) counters_.short_out.fetch_add(1, std::memory_order_relaxed);
      break;
    case TransferStatus::stall:
      // The NTB in this slot is lost (the device refused it); clear the halt so the next one goes.
      counters_.stalls.fetch_add(1, std::memory_order_relaxed);
      if (state() == PipeState::running && transport_.clear_halt(config_.endpoint) == TransferStatus::completed)
        counters_.halts_cleared.fetch_add(1, std::memory_order_relaxed);
      if (consecutive_failures_.fetch_add(1, std::memory_order_relaxed) + 1 >= kMaxConsecutiveFailures)
        state_.store(PipeState::failed, std::memory_order_release);
      break;
    case TransferStatus::cancelled:
      break;
    case TransferStatus::no_device:
      state_.store(PipeState::device_gone, std::memory_order_release);
      break;
    case TransferStatus::timeout:
    case TransferStatus::overflow:
    case TransferStatus::error:
      (t.status == TransferStatus::timeout ? counters_.timeouts : counters_.errors)
          .fetch_add(1, std::memory_order_relaxed);
      if (consecutive_failures_.fetch_add(1, std::memory_order_relaxed) + 1 >= kMaxConsecutiveFailures)
        state_.store(PipeState::failed, std::memory_order_release);
      break;
  }
  slot.submitted.store(false, std::memory_order_release);
  free_slot(slot.index);
  if (in_flight_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    PipeState expected = PipeState::stopping;
    state_.compare_exchange_strong(expected, PipeState::stopped);
  }
  if (on_free_ != nullptr) on_free_(on_free_user_);
}

// ---------------------------------------------------------------- one-shot

OneShotResult transfer_once(Transport& transport, std::uint8_t endpoint, std::span<std::uint8_t> buffer,
                            std::size_t length, unsigned timeout_ms) {
  struct Done {
    bool done = false;
  } state;
  Transfer t;
  t.endpoint = endpoint;
  t.buffer = buffer;
  t.length = length;
  t.timeout_ms = timeout_ms;
  t.user = &state;
  t.on_complete = [](Transfer& x) { static_cast<Done*>(x.user)->done = true; };
  const TransferStatus st = transport.submit(t);
  if (st != TransferStatus::completed) return {st, 0};
  // The transfer's own timeout ends it; the loop bound is a second line of defence.
  if (!pump_until(transport, timeout_ms + 1000, [&] { return state.done; })) {
    transport.cancel(t);
    pump_until(transport, 2000, [&] { return state.done; });
    if (!state.done) {
      // Cannot return while the transport may still write into `buffer` through `t`.
      std::fprintf(stderr, "wwan-dp: a one-shot transfer on endpoint 0x%02x never ended\n", endpoint);
      std::abort();
    }
    return {TransferStatus::timeout, 0};
  }
  return {t.status, t.actual_bytes};
}

}  // namespace wwan::usb
