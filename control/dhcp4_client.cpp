#include "control/dhcp4_client.hpp"

#include <algorithm>
#include <array>
#include <utility>

namespace wwan::dhcp4 {

namespace {
constexpr Ipv4Address kUnspecified{};
constexpr Ipv4Address kLimitedBroadcast{{255, 255, 255, 255}};
// Option 55: what we ask the server for (RFC 2132 numbers).
const std::vector<std::uint8_t> kParameterRequestList = {kOptionSubnetMask,  kOptionRouter,      kOptionDomainNameServer,
                                                         kOptionInterfaceMtu, kOptionLeaseTime,  kOptionRenewalTime,
                                                         kOptionRebindingTime};
// A DHCP message plus the IP and UDP headers around it: kMinMessageSize padding and every option
// we send fit easily.
constexpr std::size_t kMaxPacketSize = 576;

std::chrono::seconds seconds(std::uint32_t s) { return std::chrono::seconds(static_cast<std::int64_t>(s)); }
}  // namespace

const char* to_string(ClientState s) {
  switch (s) {
    case ClientState::stopped: return "stopped";
    case ClientState::init: return "INIT";
    case ClientState::selecting: return "SELECTING";
    case ClientState::requesting: return "REQUESTING";
    case ClientState::bound: return "BOUND";
    case ClientState::renewing: return "RENEWING";
    case ClientState::rebinding: return "REBINDING";
  }
  return "?";
}

const char* to_string(ClientEvent::Kind k) {
  switch (k) {
    case ClientEvent::Kind::acquired: return "acquired";
    case ClientEvent::Kind::renewed: return "renewed";
    case ClientEvent::Kind::lost: return "lost";
  }
  return "?";
}

Client::Client(ClientSettings settings) : settings_(settings), rng_(settings.seed == 0 ? 1 : settings.seed) {}

// ---- time -----------------------------------------------------------------------------------------

std::chrono::milliseconds Client::backoff(unsigned attempt) {
  std::chrono::milliseconds wait = settings_.initial_retransmit;
  for (unsigned i = 1; i < attempt && wait < settings_.max_retransmit; ++i) wait *= 2;
  wait = std::min(wait, settings_.max_retransmit);
  const auto j = settings_.jitter.count();
  if (j > 0) {
    const auto offset = static_cast<std::int64_t>(rng_() % static_cast<std::uint32_t>(2 * j + 1)) - j;
    wait += std::chrono::milliseconds(offset);
  }
  return std::max(wait, std::chrono::milliseconds(1));
}

Clock::time_point Client::t1_time() const { return lease_->start + seconds(lease_->t1_s); }
Clock::time_point Client::t2_time() const { return lease_->start + seconds(lease_->t2_s); }
Clock::time_point Client::expiry_time() const { return lease_->start + seconds(lease_->lease_s); }

// RFC 2131 §4.4.5: wait half the time remaining until `limit`, at least min_renew_retransmit,
// never past `limit`.
Clock::time_point Client::renew_retransmit_time(Clock::time_point now, Clock::time_point limit) const {
  const auto half = (limit - now) / 2;
  const Clock::time_point at = now + std::max<Clock::duration>(half, settings_.min_renew_retransmit);
  return std::min(at, limit);
}

// ---- sending --------------------------------------------------------------------------------------

Message Client::base_message(MessageType type, Clock::time_point now) const {
  Message m;
  m.op = kOpBootRequest;
  m.xid = xid_;
  const auto elapsed = std::chrono::duration_cast<std::chrono::seconds>(now - exchange_started_).count();
  m.secs = static_cast<std::uint16_t>(std::clamp<std::int64_t>(elapsed, 0, 0xFFFF));
  m.chaddr = settings_.mac;
  m.type = type;
  // RFC 2132 §9.14: type 1 (Ethernet) + the MAC, what dhclient and systemd-networkd send.
  // (Sized once and filled in place: GCC 12 warns falsely about insert() after a push_back.)
  m.client_identifier.assign(1 + settings_.mac.bytes.size(), kHtypeEthernet);
  std::copy(settings_.mac.bytes.begin(), settings_.mac.bytes.end(), m.client_identifier.begin() + 1);
  if (type != MessageType::release) {  // RFC 2131 Table 5: MUST NOT in DHCPRELEASE
    m.max_message_size = settings_.max_message_size;
    m.parameter_request_list = kParameterRequestList;
  }
  return m;
}

void Client::emit(const Message& m, const Ipv4Address& source, const Ipv4Address& destination, bool broadcast) {
  std::array<std::uint8_t, kMaxPacketSize> dhcp{};
  const std::size_t n = encode_message(m, dhcp);
  OutgoingPacket p;
  p.ip.resize(eth::kIpv4MinHeaderSize + kUdpHeaderSize + n);
  const std::size_t written = encode_udp_ipv4(source, destination, kClientPort, kServerPort, Bytes(dhcp).first(n),
                                              ++ip_identification_, p.ip);
  if (n == 0 || written == 0) return;  // cannot happen: kMaxPacketSize holds every message we build
  p.broadcast = broadcast;
  packets_.push_back(std::move(p));
}

void Client::send_discover(Clock::time_point now) {
  state_ = ClientState::selecting;
  if (attempt_ == 0) {
    xid_ = static_cast<std::uint32_t>(rng_());
    exchange_started_ = now;
  } else {
    ++counters_.retransmissions;
  }
  ++attempt_;
  ++counters_.discovers;
  emit(base_message(MessageType::discover, now), kUnspecified, kLimitedBroadcast, true);
  timer_ = now + backoff(attempt_);
}

void Client::send_request(Clock::time_point now) {
  if (attempt_ == 0) {
    request_sent_ = now;
    if (state_ != ClientState::requesting) {  // a renewal is a new exchange (§4.4.5): new xid
      xid_ = static_cast<std::uint32_t>(rng_());
      exchange_started_ = now;
    }
  } else {
    ++counters_.retransmissions;
  }
  ++attempt_;
  ++counters_.requests;
  Message m = base_message(MessageType::request, now);
  switch (state_) {
    case ClientState::requesting:
      // SELECTING's DHCPREQUEST (§4.3.2): ciaddr 0, the offered address and the chosen server.
      m.requested_address = offer_->yiaddr;
      m.server_identifier = offer_->server_identifier;
      emit(m, kUnspecified, kLimitedBroadcast, true);
      timer_ = now + backoff(attempt_);
      return;
    case ClientState::renewing:
      m.ciaddr = lease_->address;
      emit(m, lease_->address, lease_->server, false);
      timer_ = renew_retransmit_time(now, t2_time());
      return;
    case ClientState::rebinding:
      m.ciaddr = lease_->address;
      emit(m, lease_->address, kLimitedBroadcast, true);
      timer_ = renew_retransmit_time(now, expiry_time());
      return;
    default:
      return;
  }
}

// ---- states ---------------------------------------------------------------------------------------

void Client::enter_init(Clock::time_point now, std::chrono::milliseconds delay) {
  state_ = ClientState::init;
  attempt_ = 0;
  offer_.reset();
  timer_ = now + delay;
  if (delay.count() == 0) send_discover(now);
}

void Client::start(Clock::time_point now) {
  lease_.reset();
  consecutive_naks_ = 0;
  enter_init(now, std::chrono::milliseconds(0));
}

void Client::stop() {
  state_ = ClientState::stopped;
  timer_.reset();
  offer_.reset();
  lease_.reset();
  attempt_ = 0;
}

void Client::release(Clock::time_point now) {
  if (lease_ && (state_ == ClientState::bound || state_ == ClientState::renewing || state_ == ClientState::rebinding)) {
    xid_ = static_cast<std::uint32_t>(rng_());
    exchange_started_ = now;
    Message m = base_message(MessageType::release, now);
    m.secs = 0;
    m.ciaddr = lease_->address;
    m.server_identifier = lease_->server;  // RFC 2131 Table 5: MUST
    ++counters_.releases;
    emit(m, lease_->address, lease_->server, false);
  }
  stop();
}

void Client::lose_lease(std::string reason) {
  if (!lease_) return;
  lease_.reset();
  events_.push_back(ClientEvent{ClientEvent::Kind::lost, std::move(reason)});
}

void Client::on_timer(Clock::time_point now) {
  if (state_ == ClientState::stopped || !timer_ || now < *timer_) return;
  const bool held = state_ == ClientState::bound || state_ == ClientState::renewing || state_ == ClientState::rebinding;
  if (held && !infinite()) {
    // Checked from the latest deadline down, so a clock that jumped past several acts once.
    if (now >= expiry_time()) {
      ++counters_.expiries;
      lose_lease("the DHCP lease expired");
      enter_init(now, std::chrono::milliseconds(0));
      return;
    }
    if (now >= t2_time() && state_ != ClientState::rebinding) {
      state_ = ClientState::rebinding;
      attempt_ = 0;
      send_request(now);
      return;
    }
    if (state_ == ClientState::bound && now >= t1_time()) {
      state_ = ClientState::renewing;
      attempt_ = 0;
      send_request(now);
      return;
    }
  }
  switch (state_) {
    case ClientState::init:
    case ClientState::selecting: send_discover(now); return;
    case ClientState::requesting:
      if (attempt_ >= settings_.request_attempts) {
        enter_init(now, std::chrono::milliseconds(0));  // the server went quiet: start over
        return;
      }
      send_request(now);
      return;
    case ClientState::renewing:
    case ClientState::rebinding: send_request(now); return;
    default: return;
  }
}

std::optional<Clock::time_point> Client::next_timer() const { return state_ == ClientState::stopped ? std::nullopt : timer_; }

// ---- receiving ------------------------------------------------------------------------------------

void Client::on_packet(Bytes ip_packet, Clock::time_point now) {
  if (state_ == ClientState::stopped) return;
  UdpError udp_error{};
  const std::optional<UdpDatagram> d = parse_udp_ipv4(ip_packet, udp_error);
  if (!d || d->source_port != kServerPort || d->destination_port != kClientPort) {
    ++counters_.malformed;
    return;
  }
  ParseError error{};
  const std::optional<Message> m = parse_message(d->payload, error);
  if (!m || m->op != kOpBootReply) {
    ++counters_.malformed;
    return;
  }
  if (m->xid != xid_ || m->chaddr != settings_.mac) {
    ++counters_.not_ours;
    return;
  }
  switch (*m->type) {
    case MessageType::offer:
      if (state_ == ClientState::selecting) return on_offer(*m, now);
      break;
    case MessageType::ack:
      if (state_ == ClientState::requesting || state_ == ClientState::renewing || state_ == ClientState::rebinding)
        return on_ack(*m, now);
      break;
    case MessageType::nak:
      if (state_ == ClientState::requesting || state_ == ClientState::renewing || state_ == ClientState::rebinding)
        return on_nak(*m, now);
      break;
    default: break;
  }
  ++counters_.not_ours;
}

void Client::on_offer(const Message& m, Clock::time_point now) {
  // RFC 2131 Table 3: an offer carries an address and the server identifier (MUST).
  if (m.yiaddr == kUnspecified || !m.server_identifier) {
    ++counters_.malformed;
    return;
  }
  ++counters_.offers;
  offer_ = m;
  state_ = ClientState::requesting;
  attempt_ = 0;
  send_request(now);
}

void Client::on_ack(const Message& m, Clock::time_point now) {
  if (m.yiaddr == kUnspecified || !m.lease_time_s || *m.lease_time_s == 0) {
    ++counters_.malformed;  // Table 3: the lease time is a MUST in a DHCPACK to a DHCPREQUEST
    return;
  }
  ++counters_.acks;
  consecutive_naks_ = 0;
  Lease l;
  l.address = m.yiaddr;
  l.prefix_length = m.subnet_mask ? prefix_length_of(*m.subnet_mask).value_or(32) : 32;
  if (!m.routers.empty()) l.router = m.routers.front();
  l.dns = m.dns;
  l.mtu = m.interface_mtu.value_or(0);
  if (m.server_identifier)
    l.server = *m.server_identifier;
  else if (lease_)
    l.server = lease_->server;
  else if (offer_ && offer_->server_identifier)
    l.server = *offer_->server_identifier;
  l.lease_s = *m.lease_time_s;
  l.start = request_sent_;
  // §4.4.5 defaults unless the server's T1 < T2 < lease hold.
  const std::uint64_t lease = l.lease_s;
  std::uint64_t t1 = m.renewal_time_s.value_or(0), t2 = m.rebinding_time_s.value_or(0);
  if (!(t1 > 0 && t1 < t2 && t2 < lease)) {
    t1 = lease / 2;
    t2 = lease * 7 / 8;
  }
  l.t1_s = static_cast<std::uint32_t>(t1);
  l.t2_s = static_cast<std::uint32_t>(t2);

  const bool renewal = lease_.has_value();
  lease_ = l;
  offer_.reset();
  attempt_ = 0;
  state_ = ClientState::bound;
  if (renewal) {
    ++counters_.renewals;
    events_.push_back(ClientEvent{ClientEvent::Kind::renewed, {}});
  } else {
    ++counters_.leases;
    events_.push_back(ClientEvent{ClientEvent::Kind::acquired, {}});
  }
  if (infinite()) {
    timer_.reset();
    return;
  }
  timer_ = t1_time();
  if (now >= *timer_) on_timer(now);  // an answer slower than T1 (a tiny lease): renew at once
}

void Client::on_nak(const Message& m, Clock::time_point now) {
  ++counters_.naks;
  std::string reason = "DHCPNAK";
  if (m.server_identifier)
    reason += " from " + std::to_string(m.server_identifier->bytes[0]) + "." + std::to_string(m.server_identifier->bytes[1]) +
              "." + std::to_string(m.server_identifier->bytes[2]) + "." + std::to_string(m.server_identifier->bytes[3]);
  if (!m.message.empty()) reason += ": " + m.message;
  lose_lease(reason);
  ++consecutive_naks_;
  enter_init(now, consecutive_naks_ == 1 ? std::chrono::milliseconds(0) : backoff(consecutive_naks_ - 1));
}

std::vector<OutgoingPacket> Client::take_packets() { return std::exchange(packets_, {}); }
std::vector<ClientEvent> Client::take_events() { return std::exchange(events_, {}); }

}  // namespace wwan::dhcp4
