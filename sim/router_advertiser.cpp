#include "sim/router_advertiser.hpp"

namespace wwan::sim {

RouterAdvertiser::RouterAdvertiser(RouterAdvertiserConfig config, const eth::Ipv6Address& host_address,
                                   std::uint16_t mtu, std::optional<eth::MacAddress> link_layer)
    : config_(config), prefix_(ipv6::with_interface_id(host_address, ipv6::InterfaceId{})), mtu_(mtu),
      link_layer_(link_layer) {}

ipv6::RouterAdvertisement RouterAdvertiser::advertisement() const {
  ipv6::RouterAdvertisement ra;
  ra.source = config_.router;
  ra.destination = eth::Ipv6Address::all_nodes();
  ra.cur_hop_limit = 64;
  ra.router_lifetime_s = config_.router_lifetime_s;
  ra.source_link_layer = link_layer_;
  ra.mtu = mtu_;
  ipv6::PrefixInformation p;
  p.prefix = prefix_;
  p.prefix_length = ipv6::kSlaacPrefixLength;
  p.on_link = false;  // TS 29.061: the /64 is routed to the host, not on-link
  p.autonomous = true;
  p.valid_lifetime_s = config_.valid_lifetime_s;
  p.preferred_lifetime_s = config_.preferred_lifetime_s;
  ra.prefixes.push_back(p);
  ra.rdnss.push_back(ipv6::RdnssServer{config_.dns, config_.dns_lifetime_s});
  return ra;
}

std::vector<std::uint8_t> RouterAdvertiser::build() const {
  std::vector<std::uint8_t> out(256);
  out.resize(ipv6::build_router_advertisement(advertisement(), out));
  return out;
}

std::optional<std::vector<std::uint8_t>> RouterAdvertiser::on_solicitation(eth::Bytes ip, Clock::time_point now) {
  // RFC 4861 §6.1.1.
  const bool valid = ip.size() >= eth::kIpv6HeaderSize + ipv6::kRouterSolicitationSize && (ip[0] >> 4) == 6 &&
                     ip[7] == eth::kNdHopLimit && eth::fits(ip.size(), eth::kIpv6HeaderSize, eth::load_be16(ip, 4)) &&
                     eth::load_be16(ip, 4) >= ipv6::kRouterSolicitationSize &&
                     ip[eth::kIpv6HeaderSize + 1] == 0 &&
                     eth::ipv6_upper_layer_checksum(eth::Ipv6Address::load(ip, 8), eth::Ipv6Address::load(ip, 24),
                                                    eth::kIpProtocolIcmpv6,
                                                    ip.subspan(eth::kIpv6HeaderSize, eth::load_be16(ip, 4))) == 0;
  if (!valid) {
    ++counters_.bad_solicitations;
    return std::nullopt;
  }
  ++counters_.solicitations;
  if (last_answer_ && now - *last_answer_ < kMinAnswerInterval) {
    ++counters_.rate_limited;
    return std::nullopt;
  }
  last_answer_ = now;
  ++counters_.solicited;
  return build();
}

std::optional<std::vector<std::uint8_t>> RouterAdvertiser::take_unsolicited(Clock::time_point now) {
  if (config_.interval.count() == 0) return std::nullopt;
  if (!next_unsolicited_) next_unsolicited_ = now + config_.interval;  // the first call starts the period
  if (now < *next_unsolicited_) return std::nullopt;
  next_unsolicited_ = now + config_.interval;
  ++counters_.unsolicited;
  return build();
}

}  // namespace wwan::sim
