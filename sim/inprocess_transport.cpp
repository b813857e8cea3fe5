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
  poked_ = true;
  cv_.notify_all();
}

usb::ControlResult InProcessTransport::control(const usb::ControlSetup& setup, std::span<std::uint8_t> data,
                                               unsigned /*timeout_ms*/) {
  const std::lock_guard lock(mu_);
  if (gone_ || !port_.connected()) {
    gone_ = true;
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
  poke_locked();
  if (!port_.connected()) {
    gone_ = true;
    return {usb::TransferStatus::no_device, 0};
  }
  if (!n) return {usb::TransferStatus::stall, 0};
  return {usb::TransferStatus::completed, *n};
}

usb::TransferStatus InProcessTransport::set_alt_setting(std::uint8_t interface_number,
                                                        std::uint8_t alternate_setting) {
  const std::lock_guard lock(mu_);
  if (gone_ || !port_.connected()) return usb::TransferStatus::no_device;
  const bool ok = port_.set_interface(interface_number, alternate_setting);
  poke_locked();
  return ok ? usb::TransferStatus::completed : usb::TransferStatus::stall;
}

usb::TransferStatus InProcessTransport::clear_halt(std::uint8_t endpoint) {
  const std::lock_guard lock(mu_);
  if (gone_ || !port_.connected()) return usb::TransferStatus::no_device;
  const bool ok = port_.clear_halt(endpoint);
  poke_locked();
  return ok ? usb::TransferStatus::completed : usb::TransferStatus::stall;
}

usb::TransferStatus InProcessTransport::submit(usb::Transfer& transfer) {
  if (transfer.length > transfer.buffer.size()) return usb::TransferStatus::error;
  const std::lock_guard lock(mu_);
  if (gone_ || !port_.connected()) return usb::TransferStatus::no_device;
  // One record per Transfer object, reused by every later submit of it; owned here so that the
  // caller's Transfer stays a plain struct.
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
  port_.submit(&r);
  poke_locked();
  return usb::TransferStatus::completed;
}

void InProcessTransport::cancel(usb::Transfer& transfer) {
  const std::lock_guard lock(mu_);
  const auto it = pending_.find(&transfer);
  if (it != pending_.end() && port_.cancel(&it->second->request)) poke_locked();
}

void InProcessTransport::wake() {
  const std::lock_guard lock(mu_);
  woken_ = true;
  cv_.notify_all();
}

bool InProcessTransport::device_gone() const {
  const std::lock_guard lock(mu_);
  return gone_ || !port_.connected();
}

void InProcessTransport::with_model(const std::function<void(DeviceModel&)>& fn) {
  const std::lock_guard lock(mu_);
  fn(model_);
  poke_locked();
}

void InProcessTransport::handle_events(unsigned timeout_ms) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::vector<PortRequest*> done;
  {
    std::unique_lock lock(mu_);
    for (;;) {
      poked_ = false;
      port_.run(done, std::chrono::steady_clock::now());
      if (!port_.connected()) gone_ = true;
      if (!done.empty() || woken_) break;
      const auto now = std::chrono::steady_clock::now();
      if (now >= until) break;
      auto wait_until = until;
      if (const auto next = port_.next_deadline(); next && *next < wait_until) wait_until = *next;
      // A deadline that has passed was just served by the run() above; if the model still has
      // nothing, wait a millisecond instead of spinning on a deadline that does not move.
      if (wait_until <= now) wait_until = now + std::chrono::milliseconds(1);
      cv_.wait_until(lock, wait_until, [this] { return poked_ || woken_; });
    }
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
