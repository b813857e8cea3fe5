#include "sim/inprocess_transport.hpp"

#include <algorithm>
#include <memory>

namespace wwan::sim {

// Per-transfer state, in the transfer's backend slot: the request the HostPort queues.
struct InProcessTransport::Pending {
  PortRequest request;
};

namespace {

usb::TransferStatus to_transfer_status(RequestStatus s) {
  switch (s) {
    case RequestStatus::completed: return usb::TransferStatus::completed;
    case RequestStatus::stall: return usb::TransferStatus::stall;
    case RequestStatus::cancelled: return usb::TransferStatus::cancelled;
    case RequestStatus::no_device: return usb::TransferStatus::no_device;
    case RequestStatus::timed_out: return usb::TransferStatus::timeout;
    case RequestStatus::pending: break;
  }
  return usb::TransferStatus::error;
}

}  // namespace

InProcessTransport::InProcessTransport(DeviceModel& model) : model_(model), port_(model) {}

InProcessTransport::~InProcessTransport() = default;

void InProcessTransport::poke_locked() {
  const std::lock_guard lock(incoming_mu_);
  poked_ = true;
  cv_.notify_all();
}

void InProcessTransport::mark_gone_locked() {
  {
    const std::lock_guard lock(incoming_mu_);
    gone_ = true;
  }
  // What was queued before: into the HostPort, which completes it as no_device at its next run().
  take_incoming_locked();
}

void InProcessTransport::take_incoming_locked() {
  {
    // Swapped, not moved: both vectors keep their capacity, so submit() does not allocate.
    const std::lock_guard lock(incoming_mu_);
    taken_.swap(incoming_);
  }
  for (PortRequest* r : taken_) port_.submit(r);
  taken_.clear();
}

usb::ControlResult InProcessTransport::control(const usb::ControlSetup& setup, std::span<std::uint8_t> data,
                                               unsigned /*timeout_ms*/) {
  const std::lock_guard lock(mu_);
  take_incoming_locked();
  if (gone_ || !port_.connected()) {
    mark_gone_locked();
    poke_locked();
    return {usb::TransferStatus::no_device, 0};
  }
  SetupPacket s;
  s.request_type = setup.request_type;
  s.request = setup.request;
  s.value = setup.value;
  s.index = setup.index;
  s.length = static_cast<std::uint16_t>(std::min<std::size_t>(data.size(), 0xffff));
  const std::optional<std::size_t> n = port_.control(s, data.first(s.length));
  if (!port_.connected()) mark_gone_locked();
  poke_locked();
  if (gone_) return {usb::TransferStatus::no_device, 0};
  if (!n) return {usb::TransferStatus::stall, 0};
  return {usb::TransferStatus::completed, *n};
}

usb::TransferStatus InProcessTransport::set_alt_setting(std::uint8_t interface_number,
                                                        std::uint8_t alternate_setting) {
  const std::lock_guard lock(mu_);
  take_incoming_locked();
  if (gone_ || !port_.connected()) return usb::TransferStatus::no_device;
  const bool ok = port_.set_interface(interface_number, alternate_setting);
  poke_locked();
  return ok ? usb::TransferStatus::completed : usb::TransferStatus::stall;
}

usb::TransferStatus InProcessTransport::clear_halt(std::uint8_t endpoint) {
  const std::lock_guard lock(mu_);
  take_incoming_locked();
  if (gone_ || !port_.connected()) return usb::TransferStatus::no_device;
  const bool ok = port_.clear_halt(endpoint);
  poke_locked();
  return ok ? usb::TransferStatus::completed : usb::TransferStatus::stall;
}

usb::TransferStatus InProcessTransport::submit(usb::Transfer& transfer) {
  if (transfer.length > transfer.buffer.size()) return usb::TransferStatus::error;
  const std::lock_guard lock(incoming_mu_);
  // gone_ is set under incoming_mu_ (mark_gone_locked): a request queued before that is taken
  // and completed as no_device by the call that saw the device leave; one after is refused here.
  if (gone_) return usb::TransferStatus::no_device;
  std::unique_ptr<Pending>& pending = pending_[&transfer];
  if (!pending) pending = std::make_unique<Pending>();
  transfer.backend = pending.get();
  PortRequest& r = pending->request;
  r.endpoint = transfer.endpoint;
  r.buffer = transfer.buffer;
  r.length = transfer.length;
  r.tag = &transfer;
  r.deadline.reset();
  if (transfer.timeout_ms != 0)
    r.deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(transfer.timeout_ms);
  incoming_.push_back(&r);
  // No syscall unless the event thread waits (glibc counts the waiters).
  cv_.notify_all();
  return usb::TransferStatus::completed;
}

void InProcessTransport::cancel(usb::Transfer& transfer) {
  const std::lock_guard lock(mu_);
  take_incoming_locked();
  // Submitted before (its record exists and is the transfer's backend) or never: nothing to do.
  auto* pending = static_cast<Pending*>(transfer.backend);
  if (pending != nullptr && port_.cancel(&pending->request)) poke_locked();
}

void InProcessTransport::wake() {
  const std::lock_guard lock(incoming_mu_);
  woken_ = true;
  cv_.notify_all();
}

bool InProcessTransport::device_gone() const {
  const std::lock_guard lock(mu_);
  return gone_ || !port_.connected();
}

void InProcessTransport::with_model(const std::function<void(DeviceModel&)>& fn) {
  const std::lock_guard lock(mu_);
  take_incoming_locked();
  fn(model_);
  poke_locked();
}

void InProcessTransport::handle_events(unsigned timeout_ms) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::vector<PortRequest*> done;
  {
    std::unique_lock lock(mu_);
    for (;;) {
      {
        const std::lock_guard in(incoming_mu_);
        poked_ = false;
      }
      take_incoming_locked();
      port_.run(done, std::chrono::steady_clock::now());
      if (!port_.connected() && !gone_) {
        // The device left. Nobody calls handle_events() for a device that is gone (the daemon
        // stops at the no_device completions of this call), so requests submitted until now must
        // complete in this call too, or their pipe is destroyed with them in flight.
        mark_gone_locked();
        port_.run(done, std::chrono::steady_clock::now());
      }
      if (!done.empty()) break;
      const auto now = std::chrono::steady_clock::now();
      auto wait_until = until;
      if (const auto next = port_.next_deadline(); next && *next < wait_until) wait_until = *next;
      // A deadline that has passed was just served by the run() above; if the model still has
      // nothing, wait a millisecond instead of spinning on a deadline that does not move.
      if (wait_until <= now) wait_until = now + std::chrono::milliseconds(1);
      {
        std::unique_lock in(incoming_mu_);
        if (woken_ || now >= until) break;
        // The model is idle: let cancel() and control requests in while this waits.
        lock.unlock();
        cv_.wait_until(in, wait_until, [this] { return poked_ || woken_ || !incoming_.empty(); });
      }
      lock.lock();
    }
  }
  {
    const std::lock_guard in(incoming_mu_);
    woken_ = false;
  }
  // Callbacks run without the lock: they resubmit, which takes it.
  for (PortRequest* r : done) {
    auto* t = static_cast<usb::Transfer*>(r->tag);
    t->status = to_transfer_status(r->status);
    t->actual_bytes = r->status == RequestStatus::completed ? r->actual_bytes : 0;
    if (t->on_complete != nullptr) t->on_complete(*t);
  }
}

}  // namespace wwan::sim
