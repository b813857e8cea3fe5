#include "control/rndis_session.hpp"

#include <cstdio>
#include <type_traits>
#include <utility>
#include <variant>

namespace wwan::control {

using Step = RndisSession::Step;

namespace {

std::string status_text(std::uint32_t s) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s (0x%08x)", rndis::status_name(s), static_cast<unsigned>(s));
  return buf;
}

// The OID a query step asks for (0 for steps that are no query).
std::uint32_t query_oid(Step s) {
  switch (s) {
    case Step::QueryMac: return rndis::kOid8023PermanentAddress;
    case Step::QueryMaxFrameSize: return rndis::kOidGenMaximumFrameSize;
    case Step::QueryLinkSpeed: return rndis::kOidGenLinkSpeed;
    case Step::QueryMediaConnect: return rndis::kOidGenMediaConnectStatus;
    default: return 0;
  }
}

}  // namespace

const char* to_string(Step step) {
  switch (step) {
    case Step::Idle: return "idle";
    case Step::Initialize: return "initialize";
    case Step::QueryMac: return "query_permanent_address";
    case Step::QueryMaxFrameSize: return "query_maximum_frame_size";
    case Step::QueryLinkSpeed: return "query_link_speed";
    case Step::QueryMediaConnect: return "query_media_connect_status";
    case Step::SetPacketFilter: return "set_packet_filter";
    case Step::Up: return "up";
    case Step::Keepalive: return "keepalive";
    case Step::Reset: return "reset";
    case Step::Stopped: return "stopped";
    case Step::Failed: return "failed";
  }
  return "?";
}

RndisSession::RndisSession(RndisSessionSettings settings) : settings_(std::move(settings)) {
  info_.host_max_transfer_size = settings_.host_max_transfer_size;
}

// ---- Session interface -------------------------------------------------------------------------

void RndisSession::start(Clock::time_point now) {
  if (step_ != Step::Idle && step_ != Step::Stopped && step_ != Step::Failed) return;
  status_.error.clear();
  pending_.reset();
  info_ = RndisDeviceInfo{};
  info_.host_max_transfer_size = settings_.host_max_transfer_size;
  last_device_message_ = now;
  enter(Step::Initialize, now);
}

void RndisSession::stop(Clock::time_point now) {
  (void)now;
  // REMOTE_NDIS_HALT_MSG has no completion (MS-RNDIS §2.2.4): send it and be done. A device that
  // never answered INITIALIZE may not be initialized; HALT is harmless then (rndis_host sends it
  // on every failure after its INITIALIZE went out).
  if (step_ != Step::Idle && step_ != Step::Stopped) {
    outbox_.push_back(rndis::encode_halt(next_request_id()));
    ++counters_.commands_sent;
  }
  pending_.reset();
  if (step_ != Step::Failed) step_ = Step::Stopped;
  if (step_ == Step::Stopped) status_.state = SessionState::stopped;
  status_.ip = {};
}

void RndisSession::on_response(std::span<const std::uint8_t> bytes, Clock::time_point now) {
  last_device_message_ = now;
  const rndis::DecodedControl d = rndis::decode_control(bytes);
  if (!d.ok()) {
    ++counters_.bad_messages;
    return;
  }
  ++counters_.messages;
  handle(d, now);
}

void RndisSession::on_notification(const cdc::Notification&, Clock::time_point) {}

void RndisSession::on_timer(Clock::time_point now) {
  if (pending_) {
    if (now >= pending_->deadline)
      retry_or_give_up(now, std::string("no answer to ") + rndis::message_name(pending_->type));
    return;
  }
  if (step_ == Step::Up && now - last_device_message_ >= settings_.keepalive_interval) enter(Step::Keepalive, now);
}

std::optional<Clock::time_point> RndisSession::next_timer() const {
  if (pending_) return pending_->deadline;
  if (step_ == Step::Up) return last_device_message_ + settings_.keepalive_interval;
  return std::nullopt;
}

std::vector<ByteVector> RndisSession::take_commands() { return std::exchange(outbox_, {}); }

void RndisSession::set_ip_config(IpConfig ip) {
  settings_.ip = std::move(ip);
  publish_state();
}

void RndisSession::note_device_activity(Clock::time_point now) {
  if (now > last_device_message_) last_device_message_ = now;
}

std::vector<RndisLinkEvent> RndisSession::take_link_events() { return std::exchange(link_events_, {}); }

// ---- sending -------------------------------------------------------------------------------------

std::uint32_t RndisSession::next_request_id() {
  if (next_request_id_ == 0) next_request_id_ = 1;  // 0 is what rndis_host leaves to HALT / RESET
  return next_request_id_++;
}

void RndisSession::enter(Step step, Clock::time_point now) {
  step_ = step;
  pending_.reset();
  const auto command = [this](std::uint32_t type, std::uint32_t oid = 0, ByteVector buffer = {}) {
    pending_ = Pending{};
    pending_->type = type;
    pending_->oid = oid;
    pending_->information_buffer = std::move(buffer);
  };
  switch (step) {
    case Step::Initialize: command(rndis::kInitializeMsg); break;
    case Step::QueryMac:
    case Step::QueryMaxFrameSize:
    case Step::QueryLinkSpeed:
    case Step::QueryMediaConnect: command(rndis::kQueryMsg, query_oid(step)); break;
    case Step::SetPacketFilter:
      command(rndis::kSetMsg, rndis::kOidGenCurrentPacketFilter, rndis::oid_u32_buffer(settings_.packet_filter));
      break;
    case Step::Keepalive:
      command(rndis::kKeepaliveMsg);
      ++counters_.keepalives_sent;
      break;
    case Step::Reset:
      command(rndis::kResetMsg);
      ++counters_.resets;
      break;
    case Step::Up:
      last_device_message_ = now;  // the keepalive period starts now
      break;
    case Step::Idle:
    case Step::Stopped:
    case Step::Failed:
      break;
  }
  if (pending_) transmit(now);
  publish_state();
}

void RndisSession::transmit(Clock::time_point now) {
  Pending& p = *pending_;
  ++p.attempts;
  p.deadline = now + settings_.command_timeout;
  // Every attempt gets a new RequestId, so a late answer to the previous one is stale.
  p.request_id = p.type == rndis::kResetMsg ? 0 : next_request_id();
  ByteVector m;
  switch (p.type) {
    case rndis::kInitializeMsg:
      m = rndis::encode_initialize({p.request_id, rndis::kMajorVersion, rndis::kMinorVersion,
                                    settings_.host_max_transfer_size});
      break;
    case rndis::kQueryMsg: m = rndis::encode_query(p.request_id, p.oid); break;
    case rndis::kSetMsg: m = rndis::encode_set(p.request_id, p.oid, p.information_buffer); break;
    case rndis::kKeepaliveMsg: m = rndis::encode_keepalive(p.request_id); break;
    case rndis::kResetMsg: m = rndis::encode_reset(); break;
    default: return;
  }
  outbox_.push_back(std::move(m));
  ++counters_.commands_sent;
}

void RndisSession::retry_or_give_up(Clock::time_point now, const std::string& why) {
  ++counters_.timeouts;
  if (pending_->attempts < kMaxAttempts) {
    ++counters_.retries;
    transmit(now);
    return;
  }
  switch (step_) {
    case Step::QueryMaxFrameSize:
    case Step::QueryLinkSpeed:
    case Step::QueryMediaConnect:
      ++counters_.optional_refused;  // optional: keep the default and go on
      after_setup_step(now);
      return;
    case Step::Keepalive:
      enter(Step::Reset, now);  // MS-RNDIS: an unhealthy device is reset
      return;
    case Step::Reset:
      fail("the RNDIS device stopped answering: " + why + " after KEEPALIVE went unanswered");
      return;
    default:
      fail("the RNDIS device does not answer: " + why + " (" + std::to_string(kMaxAttempts) + " attempts)");
      return;
  }
}

void RndisSession::fail(std::string error) {
  pending_.reset();
  step_ = Step::Failed;
  status_.error = std::move(error);
  publish_state();
}

void RndisSession::after_setup_step(Clock::time_point now) {
  switch (step_) {
    case Step::Initialize: enter(Step::QueryMac, now); return;
    case Step::QueryMac: enter(Step::QueryMaxFrameSize, now); return;
    case Step::QueryMaxFrameSize: enter(Step::QueryLinkSpeed, now); return;
    case Step::QueryLinkSpeed: enter(Step::QueryMediaConnect, now); return;
    case Step::QueryMediaConnect: enter(Step::SetPacketFilter, now); return;
    case Step::SetPacketFilter: enter(Step::Up, now); return;
    default: return;
  }
}

// ---- state -----------------------------------------------------------------------------------------

void RndisSession::publish_state() {
  const SessionState before = status_.state;
  SessionState s = SessionState::starting;
  switch (step_) {
    case Step::Idle: s = SessionState::idle; break;
    case Step::Up:
    case Step::Keepalive:
      s = info_.media_connected ? SessionState::connected
                                : (ever_connected_ ? SessionState::disconnected : SessionState::connecting);
      break;
    case Step::Stopped: s = SessionState::stopped; break;
    case Step::Failed: s = SessionState::failed; break;
    default: s = SessionState::starting; break;  // setup, and a reset in progress
  }
  status_.state = s;
  status_.ip = s == SessionState::connected ? settings_.ip : IpConfig{};
  if (s == SessionState::connected && before != SessionState::connected) {
    ++status_.connects;
    ever_connected_ = true;
    status_.error.clear();
  }
  if (before == SessionState::connected && s == SessionState::disconnected) {
    ++status_.drops;
    status_.error = "the RNDIS device indicated RNDIS_STATUS_MEDIA_DISCONNECT";
  }
}

void RndisSession::link(bool up, Clock::time_point now, bool initial) {
  const bool changed = initial || info_.media_connected != up;
  info_.media_connected = up;
  if (changed && link_events_.size() < kMaxPendingLinkEvents) link_events_.push_back({up, now});
  publish_state();
}

// ---- receiving -------------------------------------------------------------------------------------

bool RndisSession::matches(std::uint32_t completion_type, std::optional<std::uint32_t> request_id) {
  if (!pending_ || (pending_->type | rndis::kCompletion) != completion_type ||
      (request_id && *request_id != pending_->request_id)) {
    ++counters_.stale_answers;
    return false;
  }
  return true;
}

void RndisSession::handle(const rndis::DecodedControl& d, Clock::time_point now) {
  if (step_ == Step::Stopped || step_ == Step::Failed || step_ == Step::Idle) {
    ++counters_.stale_answers;
    return;
  }
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, rndis::InitializeCmplt>) {
          if (matches(rndis::kInitializeCmplt, m.request_id)) on_initialize_cmplt(m, now);
        } else if constexpr (std::is_same_v<T, rndis::QueryCmplt>) {
          if (matches(rndis::kQueryCmplt, m.request_id)) on_query_cmplt(m, now);
        } else if constexpr (std::is_same_v<T, rndis::SetCmplt>) {
          if (matches(rndis::kSetCmplt, m.request_id)) on_set_cmplt(m, now);
        } else if constexpr (std::is_same_v<T, rndis::KeepaliveCmplt>) {
          if (matches(rndis::kKeepaliveCmplt, m.request_id)) on_keepalive_cmplt(m, now);
        } else if constexpr (std::is_same_v<T, rndis::ResetCmplt>) {
          if (matches(rndis::kResetCmplt, std::nullopt)) on_reset_cmplt(m, now);
        } else if constexpr (std::is_same_v<T, rndis::IndicateStatus>) {
          on_indicate_status(m, now);
        } else if constexpr (std::is_same_v<T, rndis::KeepaliveMsg>) {
          // The device checks on us (MS-RNDIS: optional for it, an answer is mandatory for us).
          outbox_.push_back(rndis::encode_keepalive_cmplt(m.request_id, rndis::kStatusSuccess));
          ++counters_.commands_sent;
          ++counters_.keepalives_answered;
        } else {
          ++counters_.unexpected;  // a host-bound message (INITIALIZE_MSG, QUERY_MSG, ...) from the device
        }
      },
      d.message);
}

void RndisSession::on_initialize_cmplt(const rndis::InitializeCmplt& c, Clock::time_point now) {
  if (c.status != rndis::kStatusSuccess) {
    fail("the RNDIS device refused REMOTE_NDIS_INITIALIZE_MSG: " + status_text(c.status));
    return;
  }
  info_.major_version = c.major_version;
  info_.minor_version = c.minor_version;
  info_.device_flags = c.device_flags;
  info_.medium = c.medium;
  // rndis_host fails a device whose MaxTransferSize cannot hold the RNDIS header and a frame
  // ("dev can't take %u byte packets"): nothing could ever be sent to it.
  if (c.max_transfer_size < rndis::kMinTransferSize) {
    fail("the RNDIS device accepts transfers of at most " + std::to_string(c.max_transfer_size) +
         " bytes (MaxTransferSize): not even one Ethernet frame fits");
    return;
  }
  const rndis::SanitizedPacketOutParams s = rndis::sanitize_packet_out_params(
      {c.max_transfer_size, c.max_packets_per_transfer, c.packet_alignment_factor, settings_.bulk_out_max_packet_size});
  info_.out = s.params;
  info_.out_overridden = s.overridden;
  after_setup_step(now);
}

void RndisSession::on_query_cmplt(const rndis::QueryCmplt& c, Clock::time_point now) {
  const bool ok = c.status == rndis::kStatusSuccess;
  switch (step_) {
    case Step::QueryMac: {
      if (!ok) {
        fail(std::string("the RNDIS device refused OID_802_3_PERMANENT_ADDRESS: ") + status_text(c.status));
        return;
      }
      // rndis_host insists on exactly ETH_ALEN bytes; a group or zero address cannot be ours.
      const eth::MacAddress mac = c.information_buffer.size() == 6 ? eth::MacAddress::load(c.information_buffer, 0)
                                                                   : eth::MacAddress{};
      if (c.information_buffer.size() != 6 || !mac.is_unicast()) {
        ++counters_.bad_messages;
        fail("the RNDIS device reported an unusable OID_802_3_PERMANENT_ADDRESS (" +
             std::to_string(c.information_buffer.size()) + " bytes" +
             (c.information_buffer.size() == 6 ? std::string(", ") + eth::to_string(mac).c_str() : std::string()) +
             ")");
        return;
      }
      info_.mac = mac;
      break;
    }
    case Step::QueryMaxFrameSize: {
      const auto v = ok ? rndis::oid_u32(c.information_buffer) : std::nullopt;
      if (!ok) ++counters_.optional_refused;
      else if (!v || *v < kMinFrameSize || *v > kMaxFrameSize) ++counters_.bad_messages;
      else info_.max_frame_size = *v;
      break;
    }
    case Step::QueryLinkSpeed: {
      const auto v = ok ? rndis::oid_u32(c.information_buffer) : std::nullopt;
      if (!ok) ++counters_.optional_refused;
      else if (!v) ++counters_.bad_messages;
      else info_.link_speed_bits_per_s = std::uint64_t{*v} * 100;  // OID_GEN_LINK_SPEED: units of 100 bit/s
      break;
    }
    case Step::QueryMediaConnect: {
      // A device that cannot say is taken as connected: rndis_host never asks and treats every
      // RNDIS link as up, and the FM350's link is the PDP context the AT side activates.
      const auto v = ok ? rndis::oid_u32(c.information_buffer) : std::nullopt;
      if (!ok) ++counters_.optional_refused;
      else if (!v || (*v != rndis::kMediaStateConnected && *v != rndis::kMediaStateDisconnected)) ++counters_.bad_messages;
      link(!(v && *v == rndis::kMediaStateDisconnected), now, /*initial=*/true);
      break;
    }
    default: ++counters_.stale_answers; return;
  }
  after_setup_step(now);
}

void RndisSession::on_set_cmplt(const rndis::SetCmplt& c, Clock::time_point now) {
  if (c.status != rndis::kStatusSuccess) {
    fail("the RNDIS device refused OID_GEN_CURRENT_PACKET_FILTER: " + status_text(c.status));
    return;
  }
  after_setup_step(now);
}

void RndisSession::on_keepalive_cmplt(const rndis::KeepaliveCmplt& c, Clock::time_point now) {
  // MS-RNDIS: a KEEPALIVE_CMPLT that is not success asks the host to reset the device.
  enter(c.status == rndis::kStatusSuccess ? Step::Up : Step::Reset, now);
}

void RndisSession::on_reset_cmplt(const rndis::ResetCmplt& c, Clock::time_point now) {
  if (c.status != rndis::kStatusSuccess) {
    fail("the RNDIS device failed REMOTE_NDIS_RESET_MSG: " + status_text(c.status));
    return;
  }
  // AddressingReset: the filter is gone and the device sends nothing until it is set again.
  enter(c.addressing_reset != 0 ? Step::SetPacketFilter : Step::Up, now);
}

void RndisSession::on_indicate_status(const rndis::IndicateStatus& s, Clock::time_point now) {
  ++counters_.indications;
  if (s.status == rndis::kStatusMediaConnect) link(true, now);
  else if (s.status == rndis::kStatusMediaDisconnect) link(false, now);
  else ++counters_.other_indications;
}

}  // namespace wwan::control
