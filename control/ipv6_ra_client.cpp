#include "control/ipv6_ra_client.hpp"

#include <algorithm>
#include <utility>

namespace wwan::ipv6 {

namespace {
std::chrono::seconds seconds(std::uint32_t s) { return std::chrono::seconds(static_cast<std::int64_t>(s)); }
}  // namespace

RaClient::RaClient(RaClientSettings settings) : settings_(settings) {}

void RaClient::start(Clock::time_point now) {
  stop();
  running_ = true;
  rs_wait_ = settings_.rs_interval;
  solicit(now);
}

void RaClient::stop() {
  running_ = false;
  answered_ = false;
  next_rs_.reset();
  prefix_.reset();
  router_.reset();
  dns_.clear();
  mtu_.reset();
  last_.reset();
  packets_.clear();
  if (config_ != RaConfig{}) {
    config_ = RaConfig{};
    ++version_;
  }
}

void RaClient::set_interface_id(const std::optional<InterfaceId>& iid) {
  if (iid == session_iid_) return;
  session_iid_ = iid;
  if (running_) derive();
}

void RaClient::solicit(Clock::time_point now) {
  std::vector<std::uint8_t> p(eth::kIpv6HeaderSize + kRouterSolicitationSize + eth::kNdLinkLayerOptionSize);
  const std::optional<MacAddress> slla = settings_.link_layer ? std::optional<MacAddress>(settings_.mac) : std::nullopt;
  p.resize(build_router_solicitation(link_local(), slla, p));
  packets_.push_back(std::move(p));
  ++counters_.solicitations;
  next_rs_ = now + rs_wait_;
  rs_wait_ = std::min(rs_wait_ * 2, settings_.max_rs_interval);
}

void RaClient::on_packet(Bytes ip_packet, Clock::time_point now) {
  if (!running_) return;
  RaError error{};
  std::optional<RouterAdvertisement> ra = parse_router_advertisement(ip_packet, error);
  if (!ra) {
    ++counters_.invalid;
    return;
  }
  ++counters_.advertisements;

  // RFC 4861 §6.3.4: a router lifetime of 0 removes the router at once.
  if (ra->router_lifetime_s > 0) {
    router_ = ra->source;
    router_until_ = now + seconds(ra->router_lifetime_s);
  } else if (router_ == ra->source) {
    router_.reset();
  }
  if (ra->mtu) mtu_ = ra->mtu;
  for (const RdnssServer& s : ra->rdnss) {
    auto it = std::find_if(dns_.begin(), dns_.end(), [&](const Dns& d) { return d.address == s.address; });
    if (s.lifetime_s == 0) {  // RFC 8106 §5.1: 0 = no longer use it
      if (it != dns_.end()) dns_.erase(it);
      continue;
    }
    Dns d{s.address, now + seconds(s.lifetime_s), s.lifetime_s == kInfiniteLifetime};
    if (it != dns_.end()) *it = d;
    else if (dns_.size() < kMaxRdnssServers) dns_.push_back(d);
  }

  for (const PrefixInformation& p : ra->prefixes) {
    // RFC 4862 §5.5.3 (a)-(d): autonomous, not link-local, preferred <= valid, and a prefix our
    // 64-bit IID completes.
    if (!p.autonomous || is_link_local(p.prefix) || p.preferred_lifetime_s > p.valid_lifetime_s ||
        p.prefix_length != kSlaacPrefixLength) {
      ++counters_.ignored_prefixes;
      continue;
    }
    const bool infinite = p.valid_lifetime_s == kInfiniteLifetime;
    const Clock::time_point advertised = now + seconds(p.valid_lifetime_s);
    if (!prefix_ || prefix_->prefix != p.prefix) {
      if (prefix_ && prefix_->valid_until > now) continue;  // keep the address we have while it is valid
      if (p.valid_lifetime_s == 0) continue;
      prefix_ = Prefix{p.prefix, advertised, infinite};
      continue;
    }
    // §5.5.3 (e): the "two hours rule".
    const Clock::time_point two_hours = now + settings_.two_hours;
    if (infinite || advertised > two_hours || advertised > prefix_->valid_until) {
      prefix_->valid_until = advertised;
      prefix_->infinite = infinite;
    } else if (prefix_->infinite || prefix_->valid_until > two_hours) {
      prefix_->valid_until = two_hours;
      prefix_->infinite = false;
    }  // else: remaining <= 2 h: ignore the advertised lifetime
  }
  // Solicitations end once a router or a prefix is known (an RA that gave neither, e.g. router
  // lifetime 0 without a prefix, leaves the back-off running rather than making an RS/RA loop).
  if (prefix_ || router_) {
    answered_ = true;
    next_rs_.reset();
  }
  last_ = std::move(ra);
  recompute(now);
}

void RaClient::on_timer(Clock::time_point now) {
  if (!running_) return;
  if (next_rs_ && now >= *next_rs_) solicit(now);
  recompute(now);
}

std::optional<Clock::time_point> RaClient::next_timer() const {
  if (!running_) return std::nullopt;
  std::optional<Clock::time_point> t = next_rs_;
  const auto consider = [&t](Clock::time_point at) {
    if (!t || at < *t) t = at;
  };
  if (prefix_ && !prefix_->infinite) consider(prefix_->valid_until);
  if (router_) consider(router_until_);
  for (const Dns& d : dns_)
    if (!d.infinite) consider(d.until);
  return t;
}

// Drops what expired at `now` and derives the configuration.
void RaClient::recompute(Clock::time_point now) {
  if (prefix_ && !prefix_->infinite && now >= prefix_->valid_until) {
    prefix_.reset();
    ++counters_.expiries;
  }
  if (router_ && now >= router_until_) {
    router_.reset();
    ++counters_.expiries;
  }
  // Nothing valid left after having been answered: solicit again (RFC 7559's spirit: a host
  // without a router keeps asking).
  if (answered_ && !prefix_ && !router_ && !next_rs_) {
    rs_wait_ = settings_.rs_interval;
    next_rs_ = now;
  }
  const auto before = dns_.size();
  dns_.erase(std::remove_if(dns_.begin(), dns_.end(), [now](const Dns& d) { return !d.infinite && now >= d.until; }),
             dns_.end());
  counters_.expiries += before - dns_.size();
  derive();
}

void RaClient::derive() {
  RaConfig c;
  if (prefix_) c.address = with_interface_id(prefix_->prefix, iid());
  c.gateway = router_;
  for (const Dns& d : dns_) c.dns.push_back(d.address);
  c.mtu = mtu_;
  if (c != config_) {
    config_ = std::move(c);
    ++version_;
  }
}

std::vector<std::vector<std::uint8_t>> RaClient::take_packets() { return std::exchange(packets_, {}); }

}  // namespace wwan::ipv6
