#include "control/link_autoconf.hpp"

#include <algorithm>
#include <utility>

namespace wwan::control {

namespace {

bool same(const std::optional<Ipv4Config>& a, const std::optional<Ipv4Config>& b) {
  if (a.has_value() != b.has_value()) return false;
  if (!a) return true;
  return a->address == b->address && a->prefix_length == b->prefix_length && a->gateway == b->gateway &&
         a->dns == b->dns && a->mtu == b->mtu;
}
bool same(const std::optional<Ipv6Config>& a, const std::optional<Ipv6Config>& b) {
  if (a.has_value() != b.has_value()) return false;
  if (!a) return true;
  return a->address == b->address && a->prefix_length == b->prefix_length && a->gateway == b->gateway &&
         a->dns == b->dns && a->mtu == b->mtu;
}

AutoconfSettings completed(AutoconfSettings s) {
  s.dhcp.mac = s.mac;
  s.dhcp.seed = s.seed;
  s.ra.mac = s.mac;
  s.ra.link_layer = s.link_layer;
  return s;
}

}  // namespace

LinkAutoconf::LinkAutoconf(AutoconfSettings settings)
    : settings_(completed(settings)), dhcp_(settings_.dhcp), ra_(settings_.ra) {}

void LinkAutoconf::on_session(const SessionStatus& status, Clock::time_point now) {
  const bool connected = status.state == SessionState::connected;
  // A redial (connects moved on) is a new link: start over even if no disconnected state was seen.
  const bool redialled = connected && session_up_ && status.connects != session_connects_;
  if (connected && (!session_up_ || redialled)) {
    if (redialled) ++version_;  // a new link: the daemon configures (and announces) it again
    session_up_ = true;
    session_connects_ = status.connects;
    fallback_active_ = false;
    if (settings_.dhcp4) dhcp_.start(now);
    else dhcp_.stop();  // a fallback client of the previous connect (decided again below)
    if (settings_.ipv6_ra) ra_.start(now);
  } else if (!connected && session_up_) {
    session_up_ = false;
    fallback_active_ = false;
    dhcp_.stop();
    ra_.stop();
    down_reason_ = status.error.empty() ? "the network ended the session" : status.error;
  }
  session_ip_ = connected ? status.ip : IpConfig{};
  // The session is up without the IPv4 configuration it should have given: DHCP on the link.
  if (connected && settings_.dhcp4_fallback && !settings_.dhcp4 && !fallback_active_ && !session_ip_.ipv4) {
    fallback_active_ = true;
    dhcp_.start(now);
  }
  if (settings_.ipv6_ra) {
    std::optional<ipv6::InterfaceId> iid;
    if (session_ip_.ipv6) iid = ipv6::interface_id_of(session_ip_.ipv6->address);
    ra_.set_interface_id(iid);
  }
  merge();
}

void LinkAutoconf::on_packet(eth::Bytes ip, Clock::time_point now) {
  if (ip.empty()) return;
  if ((ip[0] >> 4) == 4) {
    if (settings_.dhcp4 || fallback_active_) dhcp_.on_packet(ip, now);
  } else if (settings_.ipv6_ra) {
    ra_.on_packet(ip, now);
  }
  on_timer(now);  // collects events and merges
}

void LinkAutoconf::on_timer(Clock::time_point now) {
  dhcp_.on_timer(now);
  ra_.on_timer(now);
  for (dhcp4::ClientEvent& e : dhcp_.take_events()) {
    if (e.kind == dhcp4::ClientEvent::Kind::lost) down_reason_ = e.reason;
    events_.push_back(LeaseEvent{e.kind, std::move(e.reason), dhcp_.lease()});
  }
  merge();
}

std::optional<Clock::time_point> LinkAutoconf::next_timer() const {
  const auto a = dhcp_.next_timer(), b = ra_.next_timer();
  if (a && b) return std::min(*a, *b);
  return a ? a : b;
}

std::vector<AutoconfPacket> LinkAutoconf::take_packets() {
  std::vector<AutoconfPacket> out;
  for (dhcp4::OutgoingPacket& p : dhcp_.take_packets()) {
    std::optional<eth::MacAddress> destination;
    if (p.broadcast) destination = eth::MacAddress::broadcast();
    out.push_back(AutoconfPacket{std::move(p.ip), destination});
  }
  for (std::vector<std::uint8_t>& p : ra_.take_packets())
    out.push_back(AutoconfPacket{std::move(p), eth::ipv6_multicast_mac(ipv6::all_routers())});
  return out;
}

std::vector<LeaseEvent> LinkAutoconf::take_events() { return std::exchange(events_, {}); }

void LinkAutoconf::release(Clock::time_point now) {
  dhcp_.release(now);
  ra_.stop();
  session_up_ = false;
  fallback_active_ = false;
  merge();
}

std::optional<eth::Ipv6Address> LinkAutoconf::link_local() const {
  if (!ra_.running()) return std::nullopt;
  return ra_.link_local();
}

void LinkAutoconf::merge() {
  IpConfig c;
  if (session_up_) {
    if (settings_.dhcp4 || fallback_active_) {
      if (const auto& l = dhcp_.lease()) {
        Ipv4Config v4;
        v4.address = l->address;
        v4.prefix_length = l->prefix_length;
        v4.gateway = l->router;
        v4.dns = l->dns;
        v4.mtu = l->mtu;
        c.ipv4 = v4;
      }
    } else {
      c.ipv4 = session_ip_.ipv4;
    }
    if (settings_.ipv6_ra) {
      const ipv6::RaConfig& ra = ra_.config();
      std::optional<Ipv6Config> v6 = session_ip_.ipv6;
      if (ra.address) {
        if (!v6) v6 = Ipv6Config{};
        v6->address = *ra.address;
        v6->prefix_length = ra.prefix_length;
      }
      if (v6) {
        if (ra.gateway) v6->gateway = ra.gateway;
        for (const eth::Ipv6Address& d : ra.dns)
          if (std::find(v6->dns.begin(), v6->dns.end(), d) == v6->dns.end()) v6->dns.push_back(d);
        if (ra.mtu) v6->mtu = *ra.mtu;
      }
      c.ipv6 = v6;
    } else {
      c.ipv6 = session_ip_.ipv6;
    }
  }
  const bool up = session_up_ && !c.empty();
  if (up != up_ || !same(c.ipv4, config_.ipv4) || !same(c.ipv6, config_.ipv6)) {
    up_ = up;
    config_ = std::move(c);
    ++version_;
  }
}

}  // namespace wwan::control
