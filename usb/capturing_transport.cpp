#include "usb/capturing_transport.hpp"

#include <algorithm>
#include <cstdio>
#include <limits>

namespace wwan::usb {

namespace {

constexpr std::uint64_t kControlIdTag = std::uint64_t{1} << 63;  // no user-space address has bit 63

std::uint32_t length_u32(std::size_t bytes) {
  return static_cast<std::uint32_t>(std::min<std::size_t>(bytes, std::numeric_limits<std::uint32_t>::max()));
}

}  // namespace

CapturingTransport::CapturingTransport(Transport& inner, UsbmonCaptureWriter& writer, std::uint16_t bus_number,
                                       std::uint8_t device_address)
    : inner_(inner), writer_(writer), bus_number_(bus_number), device_address_(device_address) {}

CapturingTransport::~CapturingTransport() {
  // A completion that arrives after this would call a trampoline on a dead object: the caller
  // broke the precondition (stop and drain the pipes first). Say so rather than fail silently.
  if (const std::size_t n = in_flight(); n != 0)
    std::fprintf(stderr, "wwan-dp: capturing transport destroyed with %zu transfers in flight\n", n);
}

std::size_t CapturingTransport::in_flight() const {
  const std::lock_guard lock(mu_);
  return in_flight_.size();
}

template <class Call>
ControlResult CapturingTransport::recorded_control(const ControlSetup& setup, std::span<std::uint8_t> data, Call call) {
  // The SETUP packet as it goes on the wire (USB 2.0 §9.3, little-endian words). libusb refuses
  // more than 0xffff bytes; the record says what wLength could carry.
  const auto w_length = static_cast<std::uint16_t>(std::min<std::size_t>(data.size(), 0xffff));
  // usb_submit_urb: a control URB is IN only if bmRequestType says so and there is a data stage.
  const bool in = (setup.request_type & kRequestTypeIn) != 0 && w_length > 0;

  UsbmonEvent e;
  e.urb_id = kControlIdTag | control_sequence_.fetch_add(1, std::memory_order_relaxed);
  e.type = UsbmonEventType::submit;
  e.transfer_type = UsbmonTransferType::control;
  e.endpoint = in ? 0x80 : 0x00;
  e.device_address = device_address_;
  e.bus_number = bus_number_;
  e.status = kUsbmonStatusInProgress;
  e.urb_length_bytes = w_length;
  e.setup = {setup.request_type,
             setup.request,
             static_cast<std::uint8_t>(setup.value),
             static_cast<std::uint8_t>(setup.value >> 8),
             static_cast<std::uint8_t>(setup.index),
             static_cast<std::uint8_t>(setup.index >> 8),
             static_cast<std::uint8_t>(w_length),
             static_cast<std::uint8_t>(w_length >> 8)};
  e.transfer_flags = in ? kUrbDirIn : 0;
  e.data = data.first(w_length);  // OUT: the data stage; IN: ignored by the encoder
  writer_.record(e);

  const ControlResult r = call();

  e.type = UsbmonEventType::complete;
  e.status = usbmon_completion_status(r.status);
  e.urb_length_bytes = length_u32(r.actual_bytes);
  // IN: what arrived, never past the caller's span whatever the transport claims.
  e.data = data.first(std::min<std::size_t>(r.actual_bytes, w_length));
  writer_.record(e);
  return r;
}

ControlResult CapturingTransport::control(const ControlSetup& setup, std::span<std::uint8_t> data, unsigned timeout_ms) {
  return recorded_control(setup, data, [&] { return inner_.control(setup, data, timeout_ms); });
}

TransferStatus CapturingTransport::set_alt_setting(std::uint8_t interface_number, std::uint8_t alternate_setting) {
  const ControlSetup setup{.request_type = kRequestTypeStandardInterfaceOut,
                           .request = kRequestSetInterface,
                           .value = alternate_setting,
                           .index = interface_number};
  return recorded_control(setup, {}, [&] {
           return ControlResult{inner_.set_alt_setting(interface_number, alternate_setting), 0};
         }).status;
}

TransferStatus CapturingTransport::clear_halt(std::uint8_t endpoint) {
  const ControlSetup setup{.request_type = kRequestTypeStandardEndpointOut,
                           .request = kRequestClearFeature,
                           .value = kFeatureEndpointHalt,
                           .index = endpoint};
  return recorded_control(setup, {}, [&] { return ControlResult{inner_.clear_halt(endpoint), 0}; }).status;
}

UsbmonEvent CapturingTransport::event_for(const Transfer& transfer) const {
  UsbmonEvent e;
  e.urb_id = reinterpret_cast<std::uintptr_t>(&transfer);
  e.transfer_type = transfer.interrupt ? UsbmonTransferType::interrupt : UsbmonTransferType::bulk;
  e.endpoint = transfer.endpoint;
  e.device_address = device_address_;
  e.bus_number = bus_number_;
  e.transfer_flags = transfer.is_in() ? kUrbDirIn : (transfer.zero_length_packet ? kUrbZeroPacket : 0);
  return e;
}

TransferStatus CapturingTransport::submit(Transfer& transfer) {
  UsbmonEvent e = event_for(transfer);
  e.type = UsbmonEventType::submit;
  e.status = kUsbmonStatusInProgress;
  e.urb_length_bytes = length_u32(transfer.length);
  // OUT: the bytes that go out; a length past the buffer is the inner transport's to refuse.
  e.data = transfer.buffer.first(std::min(transfer.length, transfer.buffer.size()));

  // Install the trampoline before the inner submit: the completion may run on the event thread
  // before submit() returns here.
  {
    const std::lock_guard lock(mu_);
    in_flight_[&transfer] = Saved{transfer.on_complete, transfer.user};
  }
  transfer.on_complete = &CapturingTransport::on_inner_complete;
  transfer.user = this;
  // The S goes to the file before the inner submit so that its C cannot precede it.
  writer_.record(e);

  const TransferStatus st = inner_.submit(transfer);
  if (st == TransferStatus::completed) return st;

  // Refused: on_complete will not run (transport.hpp), so the caller's values go back now.
  {
    const std::lock_guard lock(mu_);
    const auto it = in_flight_.find(&transfer);
    if (it != in_flight_.end()) {
      transfer.on_complete = it->second.on_complete;
      transfer.user = it->second.user;
      in_flight_.erase(it);
    }
  }
  e.type = UsbmonEventType::error;
  e.status = usbmon_submit_error_status(st);
  e.data = {};
  writer_.record(e);
  return st;
}

void CapturingTransport::on_inner_complete(Transfer& transfer) {
  auto* self = static_cast<CapturingTransport*>(transfer.user);
  Saved saved;
  {
    const std::lock_guard lock(self->mu_);
    const auto it = self->in_flight_.find(&transfer);
    if (it == self->in_flight_.end()) return;  // not ours: cannot happen with a sane inner transport
    saved = it->second;
    self->in_flight_.erase(it);
  }
  // Restore first: the caller's callback may resubmit this Transfer (through us again).
  transfer.on_complete = saved.on_complete;
  transfer.user = saved.user;

  UsbmonEvent e = self->event_for(transfer);
  e.type = UsbmonEventType::complete;
  e.status = usbmon_completion_status(transfer.status);
  e.urb_length_bytes = length_u32(transfer.actual_bytes);
  // IN: the data that arrived, bounded by the buffer and the length asked for.
  e.data = transfer.buffer.first(std::min({transfer.actual_bytes, transfer.length, transfer.buffer.size()}));
  // Before the callback: it may release or reuse the buffer.
  self->writer_.record(e);

  if (transfer.on_complete != nullptr) transfer.on_complete(transfer);
}

void CapturingTransport::cancel(Transfer& transfer) { inner_.cancel(transfer); }

void CapturingTransport::handle_events(unsigned timeout_ms) { inner_.handle_events(timeout_ms); }

void CapturingTransport::wake() { inner_.wake(); }

bool CapturingTransport::device_gone() const { return inner_.device_gone(); }

}  // namespace wwan::usb
