#include "control/mbim_session.hpp"

#include <algorithm>
#include <cstdio>
#include <utility>

namespace wwan::control {

using mbim::BasicConnectCid;
using mbim::CommandType;
using mbim::MessageType;
using mbim::ProtocolError;
using mbim::Status;
using Step = MbimSession::Step;

namespace {

// MBIM_STATUS_BUSY: "the device cannot take the command now"; asking again at once would only
// hammer it (libmbim leaves this to the caller; ModemManager retries after a second).
constexpr std::chrono::milliseconds kBusyRetry{1000};
// OPEN sequences restarted without reaching connected before the session gives up (a function
// that keeps answering NOT_OPENED is not going to work, and a loop would be silent).
constexpr unsigned kMaxReopensWithoutProgress = 3;

std::string status_text(Status s) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%s (%u)", mbim::to_string(s), static_cast<unsigned>(s));
  return buf;
}

std::string hex16(std::uint16_t v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%04x", static_cast<unsigned>(v));
  return buf;
}

mbim::AuthProtocol auth_protocol(AuthProtocol a) {
  switch (a) {
    case AuthProtocol::none: return mbim::AuthProtocol::None;
    case AuthProtocol::pap: return mbim::AuthProtocol::Pap;
    case AuthProtocol::chap: return mbim::AuthProtocol::Chap;
    case AuthProtocol::mschapv2: return mbim::AuthProtocol::MsChapV2;
  }
  return mbim::AuthProtocol::None;
}

// MBIM 1.0 §10.5.12 IPType: IPv4v6 asks for a dual-stack context (what ModemManager sends for
// "ipv4v6"); IPv4AndIPv6 (two contexts) is not what a single IPS session wants.
mbim::IpType ip_type(IpFamilies f) {
  switch (f) {
    case IpFamilies::ipv4: return mbim::IpType::IPv4;
    case IpFamilies::ipv6: return mbim::IpType::IPv6;
    case IpFamilies::ipv4v6: return mbim::IpType::IPv4v6;
  }
  return mbim::IpType::Default;
}

bool registered(mbim::RegisterState s) {
  return s == mbim::RegisterState::Home || s == mbim::RegisterState::Roaming || s == mbim::RegisterState::Partner;
}

// CONNECT refusals that a redial cannot fix: the user's settings are wrong.
bool permanent_connect_failure(Status s) {
  return s == Status::InvalidAccessString || s == Status::InvalidUserNamePwd || s == Status::ContextNotSupported;
}

// MBIM 1.0 §10.5.20: OnLinkPrefixLength is a u32 on the wire; anything above the address width
// is a device bug, read as a host route.
std::uint8_t prefix_length(std::uint32_t wire, std::uint8_t max_bits) {
  return static_cast<std::uint8_t>(std::min<std::uint32_t>(wire, max_bits));
}

IpConfig to_ip_config(const mbim::IpConfigurationInfo& info) {
  namespace a = mbim::ip_config_available;
  IpConfig ip;
  if ((info.ipv4_configuration_available & a::kAddress) != 0 && !info.ipv4_addresses.empty()) {
    Ipv4Config v4;
    v4.address = info.ipv4_addresses.front().address;
    v4.prefix_length = prefix_length(info.ipv4_addresses.front().on_link_prefix_length, 32);
    if ((info.ipv4_configuration_available & a::kGateway) != 0) v4.gateway = info.ipv4_gateway;
    if ((info.ipv4_configuration_available & a::kDns) != 0) v4.dns = info.ipv4_dns_servers;
    if ((info.ipv4_configuration_available & a::kMtu) != 0) v4.mtu = info.ipv4_mtu;
    ip.ipv4 = std::move(v4);
  }
  if ((info.ipv6_configuration_available & a::kAddress) != 0 && !info.ipv6_addresses.empty()) {
    Ipv6Config v6;
    v6.address = info.ipv6_addresses.front().address;
    v6.prefix_length = prefix_length(info.ipv6_addresses.front().on_link_prefix_length, 128);
    if ((info.ipv6_configuration_available & a::kGateway) != 0) v6.gateway = info.ipv6_gateway;
    if ((info.ipv6_configuration_available & a::kDns) != 0) v6.dns = info.ipv6_dns_servers;
    if ((info.ipv6_configuration_available & a::kMtu) != 0) v6.mtu = info.ipv6_mtu;
    ip.ipv6 = std::move(v6);
  }
  return ip;
}

SessionState state_of(Step s) {
  switch (s) {
    case Step::Idle: return SessionState::idle;
    case Step::PacketAttach:
    case Step::Connect:
    case Step::IpConfiguration: return SessionState::connecting;
    case Step::Up: return SessionState::connected;
    case Step::RedialWait: return SessionState::disconnected;
    case Step::Deactivate:
    case Step::Close: return SessionState::stopping;
    case Step::Stopped: return SessionState::stopped;
    case Step::Failed: return SessionState::failed;
    default: return SessionState::starting;
  }
}

}  // namespace

const char* to_string(Step step) {
  switch (step) {
    case Step::Idle: return "idle";
    case Step::Open: return "open";
    case Step::CloseBeforeOpen: return "close_before_open";
    case Step::DeviceCaps: return "device_caps";
    case Step::SubscriberReady: return "subscriber_ready_status";
    case Step::Pin: return "pin";
    case Step::PinEnter: return "pin_enter";
    case Step::RadioQuery: return "radio_state_query";
    case Step::RadioOn: return "radio_state_on";
    case Step::FccClientId: return "fcc_client_id";
    case Step::FccAuthenticate: return "fcc_authenticate";
    case Step::RegisterState: return "register_state";
    case Step::PacketAttach: return "packet_service_attach";
    case Step::Connect: return "connect";
    case Step::IpConfiguration: return "ip_configuration";
    case Step::Up: return "up";
    case Step::RedialWait: return "redial_wait";
    case Step::Deactivate: return "deactivate";
    case Step::Close: return "close";
    case Step::Stopped: return "stopped";
    case Step::Failed: return "failed";
  }
  return "?";
}

MbimSession::MbimSession(SessionSettings settings, std::uint32_t max_control_message)
    : settings_(std::move(settings)),
      max_control_message_(std::clamp(max_control_message, mbim::kMinControlTransfer, mbim::kHostMaxControlTransfer)),
      max_control_transfer_(max_control_message_),
      // Memory is bounded by kMaxAnswerBytes; the fragment count only has to allow that many
      // bytes in fragments of MaxControlTransfer (each carries MaxControlTransfer - 20 bytes).
      reassembler_(mbim::ReassemblyLimits{kMaxAnswerBytes / (max_control_transfer_ - 20) + 1, kMaxAnswerBytes}),
      redial_delay_(settings_.redial_initial) {}

// ---- Session interface -----------------------------------------------------------------------

void MbimSession::start(Clock::time_point now) {
  if (step_ != Step::Idle && step_ != Step::Stopped && step_ != Step::Failed) return;
  status_.error.clear();
  close_tried_ = false;
  reopens_without_progress_ = 0;
  pin_entered_ = false;
  ready_state_locked_ = false;
  fcc_tried_ = false;
  context_may_be_active_ = false;
  redial_delay_ = settings_.redial_initial;
  enter(Step::Open, now);
}

void MbimSession::stop(Clock::time_point now) {
  switch (step_) {
    case Step::Idle:
    case Step::Stopped: enter(Step::Stopped, now); return;
    case Step::Deactivate:
    case Step::Close: return;  // already on the way down
    default: break;
  }
  poll_at_.reset();
  redial_at_.reset();
  const bool opening = step_ == Step::Open || step_ == Step::CloseBeforeOpen;
  // The teardown ladder mirrors the setup (style-anchors §8): deactivate what may be active,
  // then close what may be open. A CLOSE after an unanswered OPEN is harmless (CLOSE_DONE or
  // NOT_OPENED) and leaves no half-open function for the next run.
  if (function_open_ && context_may_be_active_) enter(Step::Deactivate, now);
  else if (function_open_ || opening) enter(Step::Close, now);
  else enter(Step::Stopped, now);
}

void MbimSession::on_response(std::span<const std::uint8_t> bytes, Clock::time_point now) {
  ++counters_.fragments;
  if (partial_since_ && now - *partial_since_ > kInterFragmentTimeout) {
    reassembler_.reset();
    partial_since_.reset();
    ++counters_.fragment_timeouts;
  }
  const auto fed = reassembler_.feed(bytes);
  if (!fed) {
    ++counters_.bad_messages;
    partial_since_.reset();
    return;
  }
  if (*fed == mbim::Reassembler::State::NeedMore) {
    if (!partial_since_) partial_since_ = now;
    return;
  }
  partial_since_.reset();
  handle_message(reassembler_.message(), now);
}

void MbimSession::on_notification(const cdc::Notification&, Clock::time_point) {}

void MbimSession::on_timer(Clock::time_point now) {
  if (partial_since_ && now - *partial_since_ > kInterFragmentTimeout) {
    reassembler_.reset();
    partial_since_.reset();
    ++counters_.fragment_timeouts;
  }
  if (pending_ && now >= pending_->deadline) {
    ++counters_.timeouts;
    retry_or_give_up(now, "no answer within " + std::to_string(settings_.command_timeout.count()) + " ms");
  }
  if (poll_at_ && now >= *poll_at_) {
    poll_at_.reset();
    // Re-ask instead of trusting the indication to come (it is as lossy as RESPONSE_AVAILABLE).
    // Set steps that are waiting for the network ask with a query, not a second set.
    if (step_ == Step::PacketAttach) query(BasicConnectCid::PacketService, {}, now);
    else if (step_ == Step::Connect) query(BasicConnectCid::Connect, mbim::encode(mbim::ConnectInfo{kSessionId}), now);
    else enter(step_, now);
  }
  if (redial_at_ && now >= *redial_at_) {
    redial_at_.reset();
    enter(Step::RegisterState, now);
  }
}

std::optional<Clock::time_point> MbimSession::next_timer() const {
  std::optional<Clock::time_point> next;
  const auto consider = [&next](std::optional<Clock::time_point> t) {
    if (t && (!next || *t < *next)) next = t;
  };
  if (pending_) consider(pending_->deadline);
  consider(poll_at_);
  consider(redial_at_);
  if (partial_since_) consider(*partial_since_ + kInterFragmentTimeout + std::chrono::milliseconds(1));
  return next;
}

std::vector<ByteVector> MbimSession::take_commands() { return std::exchange(outbox_, {}); }

// ---- sending ---------------------------------------------------------------------------------

void MbimSession::send(MessageType type, const mbim::Uuid& service, std::uint32_t cid, CommandType command_type,
                       ByteVector information_buffer, Clock::time_point now) {
  poll_at_.reset();
  pending_ = Pending{type, 0, service, cid, command_type, std::move(information_buffer), now, 0};
  transmit(now);
}

// (Re)sends the command in flight with a fresh TransactionId: re-using one invites
// DUPLICATED_TID (anchors §4.2), and a late answer to the old one is then recognisably stale.
void MbimSession::transmit(Clock::time_point now) {
  Pending& p = *pending_;
  ++p.attempts;
  p.transaction_id = next_transaction_id_++;
  if (next_transaction_id_ == 0) next_transaction_id_ = 1;  // 0 is what indications carry
  p.deadline = now + settings_.command_timeout;
  ByteVector message;
  switch (p.type) {
    case MessageType::Open: message = mbim::encode_open(p.transaction_id, max_control_transfer_); break;
    case MessageType::Close: message = mbim::encode_close(p.transaction_id); break;
    default:
      message = mbim::encode_command(p.transaction_id, p.service, p.cid, p.command_type, p.information_buffer);
      break;
  }
  auto pieces = mbim::fragment(message, max_control_message_);
  if (!pieces) {
    // Cannot happen for messages built here (max_control_message_ >= 64 > 21); never send half.
    fail(std::string("cannot fragment an MBIM command: ") + mbim::to_string(pieces.error()));
    return;
  }
  // One command in flight: whatever the runner has not taken yet belongs to an abandoned one.
  outbox_ = std::move(pieces).value();
  ++counters_.commands_sent;
}

void MbimSession::query(BasicConnectCid cid, ByteVector information_buffer, Clock::time_point now) {
  send(MessageType::Command, mbim::kUuidBasicConnect, mbim::cid(cid), CommandType::Query,
       std::move(information_buffer), now);
}

void MbimSession::set(BasicConnectCid cid, ByteVector information_buffer, Clock::time_point now) {
  send(MessageType::Command, mbim::kUuidBasicConnect, mbim::cid(cid), CommandType::Set, std::move(information_buffer),
       now);
}

void MbimSession::retry_or_give_up(Clock::time_point now, const std::string& why) {
  // Teardown and the "close before open" CLOSE get one try: the way down must not hang.
  const bool one_shot = step_ == Step::Deactivate || step_ == Step::Close || step_ == Step::CloseBeforeOpen;
  if (!one_shot && pending_->attempts < kMaxAttempts) {
    ++counters_.retries;
    transmit(now);
    return;
  }
  const std::string what = std::string(to_string(step_)) + " after " + std::to_string(pending_->attempts) +
                           " attempt(s): " + why;
  pending_.reset();
  switch (step_) {
    case Step::Open:
      if (!close_tried_) return enter(Step::CloseBeforeOpen, now);
      return fail("the modem does not answer MBIM OPEN (" + what + "); is this the MBIM control interface?");
    case Step::CloseBeforeOpen: return enter(Step::Open, now);
    case Step::Deactivate: return enter(Step::Close, now);
    case Step::Close: return enter(Step::Stopped, now);
    case Step::RegisterState:
    case Step::PacketAttach:
    case Step::Connect:
    case Step::IpConfiguration: return dial_failed(now, "no usable answer to " + what);
    default: return fail("no usable answer to " + what);
  }
}

// ---- the ladder ------------------------------------------------------------------------------

void MbimSession::enter(Step step, Clock::time_point now) {
  step_ = step;
  set_state(state_of(step));
  poll_at_.reset();
  switch (step) {
    case Step::Idle:
    case Step::Up:
    case Step::RedialWait:
    case Step::Failed: pending_.reset(); return;
    case Step::Stopped:
      pending_.reset();
      function_open_ = false;
      context_may_be_active_ = false;
      return;
    case Step::Open:
      function_open_ = false;
      reassembler_.reset();
      partial_since_.reset();
      return send(MessageType::Open, {}, 0, CommandType::Query, {}, now);
    case Step::CloseBeforeOpen:
      close_tried_ = true;
      ++counters_.reopens;
      return send(MessageType::Close, {}, 0, CommandType::Query, {}, now);
    case Step::Close: return send(MessageType::Close, {}, 0, CommandType::Query, {}, now);
    case Step::DeviceCaps: return query(BasicConnectCid::DeviceCaps, {}, now);
    case Step::SubscriberReady: return query(BasicConnectCid::SubscriberReadyStatus, {}, now);
    case Step::Pin: return query(BasicConnectCid::Pin, {}, now);
    case Step::PinEnter: {
      mbim::PinSet pin;
      pin.pin_type = mbim::pin_type::kPin1;
      pin.pin_operation = mbim::pin_operation::kEnter;
      pin.pin = settings_.pin;
      return set(BasicConnectCid::Pin, mbim::encode(pin), now);
    }
    case Step::RadioQuery: return query(BasicConnectCid::RadioState, {}, now);
    case Step::RadioOn: return set(BasicConnectCid::RadioState, mbim::encode_radio_state_set(mbim::RadioState::On), now);
    case Step::FccClientId: {
      // anchors §4.5 step 1: QMI CTL Allocate Client ID for DMS, in a QMI-service CID 1 SET.
      const auto tid = static_cast<std::uint8_t>(next_qmi_transaction_id_++ & 0xff);
      return send(MessageType::Command, mbim::kUuidQmi, mbim::kQmiCidMsg, CommandType::Set,
                  mbim::qmi::encode_ctl_allocate_client_id(tid == 0 ? 1 : tid, mbim::qmi::kServiceDms), now);
    }
    case Step::FccAuthenticate:
      // anchors §4.5 step 2: DMS 0x555F "Set FCC Authentication", no TLVs.
      return send(MessageType::Command, mbim::kUuidQmi, mbim::kQmiCidMsg, CommandType::Set,
                  mbim::qmi::encode_dms_set_fcc_authentication(qmi_dms_client_id_, next_qmi_transaction_id_++), now);
    case Step::RegisterState: return query(BasicConnectCid::RegisterState, {}, now);
    case Step::PacketAttach:
      return set(BasicConnectCid::PacketService, mbim::encode_packet_service_set(mbim::PacketServiceAction::Attach),
                 now);
    case Step::Connect: {
      mbim::ConnectSet c;
      c.session_id = kSessionId;
      c.activation_command = mbim::ActivationCommand::Activate;
      c.access_string = settings_.apn;
      c.user_name = settings_.user;
      c.password = settings_.password;
      c.auth_protocol = auth_protocol(settings_.auth);
      c.ip_type = ip_type(settings_.families);
      c.context_type = mbim::kUuidContextTypeInternet;
      context_may_be_active_ = true;
      return set(BasicConnectCid::Connect, mbim::encode(c), now);
    }
    case Step::IpConfiguration:
      return query(BasicConnectCid::IpConfiguration, mbim::encode_ip_configuration_query(kSessionId), now);
    case Step::Deactivate: {
      mbim::ConnectSet c;
      c.session_id = kSessionId;
      c.activation_command = mbim::ActivationCommand::Deactivate;
      c.ip_type = ip_type(settings_.families);
      return set(BasicConnectCid::Connect, mbim::encode(c), now);
    }
  }
}

void MbimSession::wait_for_indication(Clock::time_point now, std::string why) {
  pending_.reset();
  status_.error = std::move(why);
  poll_at_ = now + settings_.command_timeout;
}

void MbimSession::fail(std::string error) {
  step_ = Step::Failed;
  set_state(SessionState::failed);
  status_.error = std::move(error);
  pending_.reset();
  poll_at_.reset();
  redial_at_.reset();
  outbox_.clear();
}

// A dial that did not get to connected (or a connection that ended): wait, then start again
// from REGISTER_STATE, the first step the network can undo. The wait doubles per failure.
void MbimSession::dial_failed(Clock::time_point now, std::string error) {
  status_.error = std::move(error);
  enter(Step::RedialWait, now);
  redial_at_ = now + redial_delay_;
  redial_delay_ = std::min(redial_delay_ * 2, settings_.redial_max);
}

void MbimSession::dropped(Clock::time_point now, std::string why) {
  ++status_.drops;
  context_may_be_active_ = false;
  dial_failed(now, "session dropped by the network: " + why);
}

void MbimSession::reopen(Clock::time_point now, std::string why) {
  if (step_ == Step::Up) ++status_.drops;
  ++counters_.reopens;
  context_may_be_active_ = false;
  function_open_ = false;
  if (++reopens_without_progress_ > kMaxReopensWithoutProgress) {
    return fail("the modem keeps closing the MBIM function (" + why + ")");
  }
  status_.error = std::move(why);
  close_tried_ = false;
  enter(Step::Open, now);
}

void MbimSession::connected(const mbim::IpConfigurationInfo& info) {
  IpConfig ip = to_ip_config(info);
  step_ = Step::Up;
  set_state(SessionState::connected);
  pending_.reset();
  poll_at_.reset();
  status_.ip = std::move(ip);
  status_.mbim_session_id = kSessionId;
  ++status_.connects;
  redial_delay_ = settings_.redial_initial;
  reopens_without_progress_ = 0;
}

bool MbimSession::dialing() const {
  return step_ == Step::PacketAttach || step_ == Step::Connect || step_ == Step::IpConfiguration;
}

// ---- receiving -------------------------------------------------------------------------------

void MbimSession::handle_message(mbim::Bytes message, Clock::time_point now) {
  ++counters_.messages;
  const auto header = mbim::validate(message);
  if (!header) {
    ++counters_.bad_messages;
    return;
  }
  const auto matches = [this, &header](MessageType type) {
    return pending_ && pending_->type == type && pending_->transaction_id == header->transaction_id;
  };
  switch (header->type) {
    case MessageType::OpenDone: {
      const auto done = mbim::parse_done(message);
      if (!done) { ++counters_.bad_messages; return; }
      if (!matches(MessageType::Open)) { ++counters_.stale_answers; return; }
      return on_open_done(done->status, now);
    }
    case MessageType::CloseDone: {
      if (!mbim::parse_done(message)) { ++counters_.bad_messages; return; }
      if (!matches(MessageType::Close)) { ++counters_.stale_answers; return; }
      return on_close_done(now);
    }
    case MessageType::CommandDone: {
      const auto done = mbim::parse_command_done(message);
      if (!done) { ++counters_.bad_messages; return; }
      if (!matches(MessageType::Command) || done->service != pending_->service || done->cid != pending_->cid) {
        ++counters_.stale_answers;
        return;
      }
      return on_command_done(done->status, done->information_buffer, now);
    }
    case MessageType::IndicateStatus: {
      const auto ind = mbim::parse_indicate_status(message);
      if (!ind) { ++counters_.bad_messages; return; }
      ++counters_.indications;
      return on_indication(*ind, now);
    }
    case MessageType::FunctionError: {
      const auto e = mbim::parse_error(message);
      if (!e) { ++counters_.bad_messages; return; }
      ++counters_.function_errors;
      return on_function_error(*e, now);
    }
    default:
      // OPEN / CLOSE / COMMAND / HOST_ERROR travel host -> device only.
      ++counters_.bad_messages;
      return;
  }
}

void MbimSession::on_open_done(Status status, Clock::time_point now) {
  pending_.reset();
  if (status == Status::None) {
    function_open_ = true;
    return enter(Step::DeviceCaps, now);
  }
  // A function left open by a previous run (or another program) may refuse a second OPEN:
  // libmbim then sends CLOSE and OPEN again ("close before open", anchors §3.3 / §4.2).
  if (!close_tried_) return enter(Step::CloseBeforeOpen, now);
  fail("the modem refused MBIM OPEN with " + status_text(status) + " even after a CLOSE");
}

void MbimSession::on_close_done(Clock::time_point now) {
  pending_.reset();
  function_open_ = false;
  if (step_ == Step::CloseBeforeOpen) return enter(Step::Open, now);
  if (step_ == Step::Close) return enter(Step::Stopped, now);
}

void MbimSession::on_function_error(const mbim::ErrorMessage& e, Clock::time_point now) {
  const bool ours = pending_ && pending_->transaction_id == e.transaction_id;
  if (e.error_status_code == ProtocolError::NotOpened) {
    // Whatever TransactionId it carries: the function is closed (modem reset, another program
    // sent CLOSE, or the OPEN of a previous run never happened).
    function_open_ = false;
    switch (step_) {
      case Step::Idle:
      case Step::Stopped:
      case Step::Failed:
      case Step::RedialWait: ++counters_.stale_answers; return;
      case Step::Deactivate:
      case Step::Close: pending_.reset(); return enter(Step::Stopped, now);
      case Step::Open:
      case Step::CloseBeforeOpen:
        if (!ours) { ++counters_.stale_answers; return; }
        pending_.reset();
        if (step_ == Step::CloseBeforeOpen) return enter(Step::Open, now);
        if (!close_tried_) return enter(Step::CloseBeforeOpen, now);
        return fail("the modem answers MBIM OPEN with FUNCTION_ERROR not_opened even after a CLOSE");
      default: return reopen(now, "FUNCTION_ERROR not_opened in " + std::string(to_string(step_)));
    }
  }
  if (!ours) { ++counters_.stale_answers; return; }
  const std::string why = std::string("FUNCTION_ERROR ") + mbim::to_string(e.error_status_code);
  if (step_ == Step::Open) {
    pending_.reset();
    if (!close_tried_) return enter(Step::CloseBeforeOpen, now);
    return fail("the modem refused MBIM OPEN with " + why + " even after a CLOSE");
  }
  retry_or_give_up(now, why);
}

void MbimSession::on_command_done(Status status, mbim::Bytes info, Clock::time_point now) {
  if (status == Status::Busy && step_ != Step::Deactivate) {
    ++counters_.retries;
    pending_.reset();
    poll_at_ = now + std::min<Clock::duration>(kBusyRetry, settings_.command_timeout);
    return;
  }
  const CommandType sent_as = pending_->command_type;
  pending_.reset();
  switch (step_) {
    case Step::DeviceCaps: {
      // Informational: a modem that cannot describe itself can still connect.
      if (const auto caps = mbim::parse_device_caps_info(info); status == Status::None && caps) {
        device_info_ = MbimDeviceInfo{caps->device_id, caps->firmware_info, caps->hardware_info, caps->max_sessions};
      } else if (status == Status::None) {
        ++counters_.bad_messages;
      }
      return enter(Step::SubscriberReady, now);
    }
    case Step::SubscriberReady: return on_subscriber_ready(status, info, now);
    case Step::Pin: return on_pin(status, info, now);
    case Step::PinEnter: return on_pin_enter(status, info, now);
    case Step::RadioQuery:
    case Step::RadioOn: return on_radio(status, info, now);
    case Step::FccClientId: return on_fcc_client_id(status, info, now);
    case Step::FccAuthenticate: return on_fcc_authenticate(status, info, now);
    case Step::RegisterState: {
      const auto r = mbim::parse_registration_state_info(info);
      if (status != Status::None || !r) {
        if (status == Status::None) ++counters_.bad_messages;
        return wait_for_indication(now, "REGISTER_STATE query answered " + status_text(status) + "; waiting");
      }
      return on_register_state(*r, now);
    }
    case Step::PacketAttach: {
      const auto p = mbim::parse_packet_service_info(info);
      if (status != Status::None || !p) {
        if (status == Status::None) ++counters_.bad_messages;
        return dial_failed(now, std::string("PACKET_SERVICE ") + (sent_as == CommandType::Set ? "attach" : "query") +
                                    " answered " + status_text(status));
      }
      return on_packet_service(*p, now);
    }
    case Step::Connect: return on_connect(status, info, now);
    case Step::IpConfiguration: return on_ip_configuration(status, info, now);
    case Step::Deactivate:
      // Whatever the answer (an already inactive context answers failure on some firmware).
      context_may_be_active_ = false;
      return enter(Step::Close, now);
    default: ++counters_.stale_answers; return;
  }
}

void MbimSession::on_subscriber_ready(Status status, mbim::Bytes info, Clock::time_point now) {
  switch (status) {
    case Status::None: break;
    case Status::SimNotInserted: return fail("no SIM card: the modem reports SIM not inserted");
    case Status::BadSim: return fail("the SIM card is unusable (the modem reports a bad SIM)");
    case Status::PinRequired: ready_state_locked_ = true; return enter(Step::Pin, now);
    default: return wait_for_indication(now, "SUBSCRIBER_READY_STATUS answered " + status_text(status) + "; waiting");
  }
  // Only ReadyState matters here. The strings (IMSI, ICCID, numbers) are for show: when they are
  // out of bounds (libmbim.md A2: a real-looking answer whose ICCID runs past
  // InformationBufferLength) the strict decoder rejects the whole structure, and the session
  // falls back to the fixed first field instead of refusing a usable SIM.
  mbim::ReadyState ready;
  if (const auto s = mbim::parse_subscriber_ready_status_info(info)) {
    ready = s->ready_state;
  } else if (info.size() >= 4) {
    ++counters_.bad_messages;
    ready = static_cast<mbim::ReadyState>(mbim::InfoReader(info).u32(0));
  } else {
    ++counters_.bad_messages;
    return wait_for_indication(now, "SUBSCRIBER_READY_STATUS answer unreadable; waiting");
  }
  switch (ready) {
    case mbim::ReadyState::Initialized: return enter(Step::Pin, now);
    case mbim::ReadyState::DeviceLocked: ready_state_locked_ = true; return enter(Step::Pin, now);
    case mbim::ReadyState::SimNotInserted: return fail("no SIM card: the modem reports SIM not inserted");
    case mbim::ReadyState::BadSim: return fail("the SIM card is unusable (the modem reports a bad SIM)");
    case mbim::ReadyState::Failure: return fail("the SIM failed to initialise (ReadyState failure)");
    case mbim::ReadyState::NotActivated: return fail("the SIM is not activated (ReadyState not activated)");
    case mbim::ReadyState::NoEsimProfile: return fail("no eSIM profile is enabled");
    case mbim::ReadyState::NotInitialized:
    default: return wait_for_indication(now, "waiting for the SIM to initialise");
  }
}

void MbimSession::on_pin(Status status, mbim::Bytes info, Clock::time_point now) {
  const auto pin = mbim::parse_pin_info(info);
  if (status != Status::None || !pin) {
    // Some firmware answers the PIN query only while a PIN is involved: rely on ReadyState.
    if (!ready_state_locked_) return enter(Step::RadioQuery, now);
    if (settings_.pin.empty()) return fail("the SIM needs a PIN and none is configured (--pin)");
    if (pin_entered_) return fail("the SIM still asks for a PIN after it was entered");
    return enter(Step::PinEnter, now);
  }
  if (pin->pin_state == 0) return enter(Step::RadioQuery, now);  // unlocked
  if (pin->pin_type == mbim::pin_type::kPin1) {
    if (settings_.pin.empty()) {
      return fail("the SIM needs a PIN and none is configured (--pin); " + std::to_string(pin->remaining_attempts) +
                  " attempts left");
    }
    if (pin_entered_) return fail("the SIM still asks for a PIN after it was entered");
    return enter(Step::PinEnter, now);
  }
  if (pin->pin_type == mbim::pin_type::kPuk1) {
    return fail("the SIM is PUK-blocked: unlock it with the PUK first (" + std::to_string(pin->remaining_attempts) +
                " attempts left)");
  }
  fail("the SIM asks for PIN type " + std::to_string(pin->pin_type) + ", which wwan-dp cannot enter");
}

void MbimSession::on_pin_enter(Status status, mbim::Bytes info, Clock::time_point now) {
  if (status == Status::None) {
    pin_entered_ = true;
    return enter(Step::RadioQuery, now);
  }
  // Never retried: a wrong PIN entered again costs another attempt and ends in a PUK lock.
  std::string error = "the SIM rejected the PIN (" + status_text(status);
  if (const auto pin = mbim::parse_pin_info(info)) error += ", " + std::to_string(pin->remaining_attempts) + " attempts left";
  fail(error + "); not retried");
}

void MbimSession::on_radio(Status status, mbim::Bytes info, Clock::time_point now) {
  const auto radio = mbim::parse_radio_state_info(info);
  const bool on = status == Status::None && radio && radio->hw_radio_state == mbim::RadioState::On &&
                  radio->sw_radio_state == mbim::RadioState::On;
  if (on) return enter(Step::RegisterState, now);
  if (step_ == Step::RadioQuery) return enter(Step::RadioOn, now);
  // Refused, or accepted with the radio still off in hardware: the FCC lock of Sierra
  // EM7455-class modems (anchors §4.4 "HW off => FCC lock / rfkill suspect", §4.5).
  const std::string seen = "RADIO_STATE on answered " + status_text(status) +
                           (radio ? std::string(", HwRadioState ") + (radio->hw_radio_state == mbim::RadioState::On ? "on" : "off")
                                  : std::string());
  if (settings_.fcc_unlock && !fcc_tried_) {
    fcc_tried_ = true;
    status_.error = seen + "; trying the FCC unlock";
    return enter(Step::FccClientId, now);
  }
  if (fcc_tried_) return fail("the radio stays off after the FCC unlock (" + seen + ")");
  fail("the modem refuses to turn the radio on (" + seen +
       "): FCC-locked or rfkill; Sierra EM7455-class modems need the FCC unlock (fcc_unlock quirk)");
}

void MbimSession::on_fcc_client_id(Status status, mbim::Bytes info, Clock::time_point now) {
  if (status != Status::None) {
    return fail("FCC unlock: the modem has no usable QMI-over-MBIM service (CTL allocate client id answered " +
                status_text(status) + ")");
  }
  const auto m = mbim::qmi::parse(info);
  if (!m || m->service != mbim::qmi::kServiceCtl || m->message_id != mbim::qmi::kCtlAllocateClientId) {
    ++counters_.bad_messages;
    return fail("FCC unlock: unreadable answer to QMI CTL allocate client id");
  }
  const auto result = mbim::qmi::parse_result(m->tlvs);
  const auto allocation = mbim::qmi::find_tlv(m->tlvs, mbim::qmi::kTlvAllocationInfo);
  if (!result || result->result != 0) {
    return fail("FCC unlock: QMI CTL allocate client id failed (QMI error " +
                (result ? hex16(result->error) : std::string("unreadable")) + ")");
  }
  if (!allocation || allocation->size() < 2 || (*allocation)[0] != mbim::qmi::kServiceDms) {
    return fail("FCC unlock: QMI CTL allocate client id answer carries no DMS client id");
  }
  qmi_dms_client_id_ = (*allocation)[1];
  enter(Step::FccAuthenticate, now);
}

void MbimSession::on_fcc_authenticate(Status status, mbim::Bytes info, Clock::time_point now) {
  if (status != Status::None) return fail("FCC unlock: DMS 0x555F answered " + status_text(status));
  const auto m = mbim::qmi::parse(info);
  if (!m || m->service != mbim::qmi::kServiceDms || m->message_id != mbim::qmi::kDmsSetFccAuthentication) {
    ++counters_.bad_messages;
    return fail("FCC unlock: unreadable answer to DMS 0x555F");
  }
  const auto result = mbim::qmi::parse_result(m->tlvs);
  if (!result || result->result != 0) {
    return fail("FCC unlock: DMS 0x555F set FCC authentication refused (QMI error " +
                (result ? hex16(result->error) : std::string("unreadable")) + ")");
  }
  fcc_authenticated_ = true;
  enter(Step::RadioOn, now);
}

void MbimSession::on_register_state(const mbim::RegistrationStateInfo& info, Clock::time_point now) {
  if (registered(info.register_state)) return enter(Step::PacketAttach, now);
  if (info.register_state == mbim::RegisterState::Denied) {
    return wait_for_indication(now, "registration denied by the network (nw error " +
                                        std::to_string(info.nw_error) + "); waiting");
  }
  wait_for_indication(now, "waiting for network registration");
}

void MbimSession::on_packet_service(const mbim::PacketServiceInfo& info, Clock::time_point now) {
  switch (info.packet_service_state) {
    case mbim::PacketServiceState::Attached: return enter(Step::Connect, now);
    case mbim::PacketServiceState::Detached:
    case mbim::PacketServiceState::Detaching:
      return dial_failed(now, "packet service detached (nw error " + std::to_string(info.nw_error) + ")");
    default: return wait_for_indication(now, "waiting for the packet service attach");
  }
}

void MbimSession::on_connect(Status status, mbim::Bytes info, Clock::time_point now) {
  const auto c = mbim::parse_connect_info(info);
  const std::string nw_error = c ? " (nw error " + std::to_string(c->nw_error) + ")" : std::string();
  if (status != Status::None) {
    if (permanent_connect_failure(status)) {
      return fail("CONNECT refused with " + status_text(status) + nw_error + ": check the APN and credentials");
    }
    return dial_failed(now, "CONNECT refused with " + status_text(status) + nw_error);
  }
  if (!c) {
    ++counters_.bad_messages;
    return dial_failed(now, "unreadable CONNECT answer");
  }
  switch (c->activation_state) {
    case mbim::ActivationState::Activated: return enter(Step::IpConfiguration, now);
    case mbim::ActivationState::Activating: return wait_for_indication(now, "waiting for the context to activate");
    default:
      context_may_be_active_ = false;
      return dial_failed(now, "the context was not activated" + nw_error);
  }
}

void MbimSession::on_ip_configuration(Status status, mbim::Bytes info, Clock::time_point now) {
  if (status != Status::None) return dial_failed(now, "IP_CONFIGURATION answered " + status_text(status));
  const auto ip = mbim::parse_ip_configuration_info(info);
  if (!ip) {
    ++counters_.bad_messages;
    return dial_failed(now, std::string("unreadable IP_CONFIGURATION answer: ") + mbim::to_string(ip.error()));
  }
  if (to_ip_config(*ip).empty()) return dial_failed(now, "IP_CONFIGURATION carries no address");
  connected(*ip);
}

void MbimSession::on_indication(const mbim::IndicateStatusMessage& m, Clock::time_point now) {
  if (m.service != mbim::kUuidBasicConnect) return;  // QMI indications etc.: not subscribed to, not needed
  const bool up = step_ == Step::Up;
  switch (static_cast<BasicConnectCid>(m.cid)) {
    case BasicConnectCid::SubscriberReadyStatus:
      if (step_ == Step::SubscriberReady) on_subscriber_ready(Status::None, m.information_buffer, now);
      return;
    case BasicConnectCid::RegisterState: {
      const auto r = mbim::parse_registration_state_info(m.information_buffer);
      if (!r) { ++counters_.bad_messages; return; }
      if (step_ == Step::RegisterState) return on_register_state(*r, now);
      if (registered(r->register_state)) return;
      if (up) return dropped(now, "REGISTER_STATE " + std::to_string(static_cast<std::uint32_t>(r->register_state)));
      if (dialing()) return dial_failed(now, "registration lost while dialing");
      return;
    }
    case BasicConnectCid::PacketService: {
      const auto p = mbim::parse_packet_service_info(m.information_buffer);
      if (!p) { ++counters_.bad_messages; return; }
      if (step_ == Step::PacketAttach) return on_packet_service(*p, now);
      const bool detached = p->packet_service_state == mbim::PacketServiceState::Detached ||
                            p->packet_service_state == mbim::PacketServiceState::Detaching;
      if (!detached) return;
      if (up) return dropped(now, "PACKET_SERVICE detached (nw error " + std::to_string(p->nw_error) + ")");
      if (step_ == Step::Connect || step_ == Step::IpConfiguration) return dial_failed(now, "detached while dialing");
      return;
    }
    case BasicConnectCid::Connect: {
      const auto c = mbim::parse_connect_info(m.information_buffer);
      if (!c) { ++counters_.bad_messages; return; }
      if (c->session_id != kSessionId) return;
      const bool active = c->activation_state == mbim::ActivationState::Activated;
      // While our CONNECT set is in flight its answer decides; an indication can only speed up
      // an "activating" wait (a late "deactivated" from the previous drop must not end this dial).
      if (step_ == Step::Connect) {
        if (active && !pending_) enter(Step::IpConfiguration, now);
        return;
      }
      if (active) return;
      if (up) return dropped(now, "CONNECT deactivated (nw error " + std::to_string(c->nw_error) + ")");
      if (step_ == Step::IpConfiguration) {
        context_may_be_active_ = false;
        return dial_failed(now, "context deactivated while dialing");
      }
      return;
    }
    case BasicConnectCid::IpConfiguration: {
      if (!up) return;
      const auto ip = mbim::parse_ip_configuration_info(m.information_buffer);
      if (!ip) { ++counters_.bad_messages; return; }
      if (ip->session_id != kSessionId) return;
      IpConfig config = to_ip_config(*ip);
      if (!config.empty()) status_.ip = std::move(config);
      return;
    }
    default: return;
  }
}

}  // namespace wwan::control
