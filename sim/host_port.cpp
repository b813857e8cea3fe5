#include "sim/host_port.hpp"

#include <algorithm>
#include <cstring>

#include "sim/descriptor_builder.hpp"

namespace wwan::sim {
namespace {

// USB 2.0 §9.4 Table 9-4 / 9-5.
constexpr std::uint8_t kGetStatus = 0, kClearFeature = 1, kGetDescriptor = 6, kGetConfiguration = 8,
                       kSetConfiguration = 9, kSetInterface = 11;
constexpr std::uint8_t kDtDevice = 1, kDtConfig = 2, kDtString = 3;
constexpr std::uint16_t kEndpointHalt = 0;
constexpr std::uint8_t kTypeMask = 0x60, kTypeStandard = 0x00, kRecipientMask = 0x1f;
constexpr std::uint8_t kRecipientDevice = 0, kRecipientInterface = 1, kRecipientEndpoint = 2;

std::size_t copy_reply(std::span<const std::uint8_t> reply, std::span<std::uint8_t> data) {
  const std::size_t n = std::min(reply.size(), data.size());
  if (n > 0) std::memcpy(data.data(), reply.data(), n);
  return n;
}

// The configuration blobs inside a "descriptors" image (device descriptor first).
std::vector<std::span<const std::uint8_t>> configurations(const std::vector<std::uint8_t>& descriptors) {
  std::vector<std::span<const std::uint8_t>> out;
  std::uint64_t at = 18;
  while (at + 4 <= descriptors.size() && descriptors[at + 1] == kDtConfig) {
    const std::uint64_t total = descriptors[at + 2] | static_cast<std::uint64_t>(descriptors[at + 3]) << 8;
    if (total < 9 || at + total > descriptors.size()) break;
    out.emplace_back(descriptors.data() + at, static_cast<std::size_t>(total));
    at += total;
  }
  return out;
}

}  // namespace

std::optional<std::size_t> HostPort::control(const SetupPacket& setup, std::span<std::uint8_t> data) {
  if (gone_ || !model_.connected()) return std::nullopt;
  if ((setup.request_type & kTypeMask) != kTypeStandard) return model_.control(setup, data);

  const bool in = (setup.request_type & 0x80) != 0;
  const std::uint8_t recipient = setup.request_type & kRecipientMask;
  const DeviceIdentity& id = model_.identity();
  if (in && recipient == kRecipientDevice && setup.request == kGetDescriptor) {
    const auto type = static_cast<std::uint8_t>(setup.value >> 8);
    const auto index = static_cast<std::uint8_t>(setup.value & 0xff);
    if (type == kDtDevice && id.descriptors.size() >= 18)
      return copy_reply(std::span(id.descriptors).first(18), data);
    if (type == kDtConfig) {
      const auto configs = configurations(id.descriptors);
      if (index >= configs.size()) return std::nullopt;
      return copy_reply(configs[index], data);
    }
    if (type == kDtString) {
      if (index == 0) {
        const std::uint8_t langids[] = {4, kDtString, 0x09, 0x04};  // en-US
        return copy_reply(langids, data);
      }
      const auto s = id.strings.find(index);
      if (s == id.strings.end()) return std::nullopt;
      return copy_reply(string_descriptor(s->second.c_str()), data);
    }
    return std::nullopt;
  }
  if (in && setup.request == kGetConfiguration) {
    const std::uint8_t reply[] = {current_configuration_};
    return copy_reply(reply, data);
  }
  if (in && setup.request == kGetStatus) {
    const std::uint8_t reply[] = {0, 0};
    return copy_reply(reply, data);
  }
  if (!in && recipient == kRecipientDevice && setup.request == kSetConfiguration) {
    if (!set_configuration(static_cast<std::uint8_t>(setup.value))) return std::nullopt;
    return 0;
  }
  if (!in && recipient == kRecipientInterface && setup.request == kSetInterface) {
    if (!set_interface(static_cast<std::uint8_t>(setup.index), static_cast<std::uint8_t>(setup.value)))
      return std::nullopt;
    return 0;
  }
  if (!in && recipient == kRecipientEndpoint && setup.request == kClearFeature && setup.value == kEndpointHalt) {
    if (!clear_halt(static_cast<std::uint8_t>(setup.index))) return std::nullopt;
    return 0;
  }
  return model_.control(setup, data);
}

bool HostPort::set_interface(std::uint8_t interface_number, std::uint8_t alternate_setting) {
  if (gone_ || !model_.connected()) return false;
  return model_.set_interface(interface_number, alternate_setting);
}

bool HostPort::set_configuration(std::uint8_t configuration_value) {
  if (gone_ || !model_.connected()) return false;
  if (!model_.set_configuration(configuration_value)) return false;
  current_configuration_ = configuration_value;
  halted_.clear();
  return true;
}

bool HostPort::clear_halt(std::uint8_t endpoint) {
  if (gone_ || !model_.connected()) return false;
  if (!model_.clear_halt(endpoint)) return false;
  halted_.erase(endpoint);
  return true;
}

void HostPort::submit(PortRequest* request) {
  request->status = RequestStatus::pending;
  request->actual_bytes = 0;
  if (gone_) {
    request->status = RequestStatus::no_device;
    finished_.push_back(request);
    return;
  }
  queue_.push_back(request);
}

bool HostPort::cancel(const PortRequest* request) {
  const auto it = std::find(queue_.begin(), queue_.end(), request);
  if (it == queue_.end()) return false;
  PortRequest* r = *it;
  queue_.erase(it);
  r->status = RequestStatus::cancelled;
  finished_.push_back(r);
  return true;
}

void HostPort::disconnect_all() {
  gone_ = true;
  for (PortRequest* r : queue_) {
    r->status = RequestStatus::no_device;
    finished_.push_back(r);
  }
  queue_.clear();
}

void HostPort::run(std::vector<PortRequest*>& done, std::chrono::steady_clock::time_point now) {
  done.insert(done.end(), finished_.begin(), finished_.end());
  finished_.clear();
  if (!gone_ && !model_.connected()) disconnect_all();
  if (gone_) {
    done.insert(done.end(), finished_.begin(), finished_.end());
    finished_.clear();
    return;
  }
  // Passes over the queue until one completes nothing: an OUT late in the queue can give data to
  // an IN that NAKed earlier in the same pass (a loopback, an echo reply), and a host controller
  // would serve that IN as soon as the data exists. Each repeated pass completed a request, so
  // this ends.
  for (bool progressed = true; progressed;) {
    progressed = false;
  // Endpoints that answered NAK in this pass: the device has nothing more for them right now,
  // and the requests queued behind must not overtake (a host controller serves an endpoint's
  // queue in order).
  std::set<std::uint8_t> waiting;
  for (auto it = queue_.begin(); it != queue_.end();) {
    PortRequest* r = *it;
    const std::uint8_t ep = r->endpoint;
    if (halted_.count(ep) != 0 || waiting.count(ep) != 0) {
      if (r->deadline && now >= *r->deadline) {
        r->status = RequestStatus::timed_out;
        done.push_back(r);
        it = queue_.erase(it);
        progressed = true;
      } else {
        ++it;
      }
      continue;
    }
    EndpointResult result;
    if ((ep & 0x80) != 0) {
      const InResult in = model_.in(ep, r->buffer.first(std::min(r->length, r->buffer.size())));
      result = in.result;
      if (result == EndpointResult::ok) r->actual_bytes = std::min(in.bytes, r->buffer.size());
    } else {
      result = model_.out(ep, r->buffer.first(std::min(r->length, r->buffer.size())));
      if (result == EndpointResult::ok) r->actual_bytes = std::min(r->length, r->buffer.size());
    }
    switch (result) {
      case EndpointResult::ok:
        r->status = RequestStatus::completed;
        break;
      case EndpointResult::nak:
        if (r->deadline && now >= *r->deadline) {
          r->status = RequestStatus::timed_out;
          break;
        }
        waiting.insert(ep);
        ++it;
        continue;
      case EndpointResult::stall:
        r->status = RequestStatus::stall;
        halted_.insert(ep);
        break;
      case EndpointResult::gone:
        done.push_back(r);
        queue_.erase(it);
        r->status = RequestStatus::no_device;
        disconnect_all();
        done.insert(done.end(), finished_.begin(), finished_.end());
        finished_.clear();
        return;
    }
    done.push_back(r);
    it = queue_.erase(it);
    progressed = true;
  }
  }
}

std::optional<std::chrono::steady_clock::time_point> HostPort::next_deadline() const {
  if (!finished_.empty()) return std::chrono::steady_clock::time_point::min();
  std::optional<std::chrono::steady_clock::time_point> next = model_.next_deadline();
  for (const PortRequest* r : queue_)
    if (r->deadline && (!next || *r->deadline < *next)) next = r->deadline;
  return next;
}

}  // namespace wwan::sim
