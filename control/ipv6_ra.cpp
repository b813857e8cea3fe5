#include "control/ipv6_ra.hpp"

#include <algorithm>

namespace wwan::ipv6 {

using eth::fits;
using eth::load_be16;
using eth::load_be32;
using eth::store_be16;
using eth::store_be32;

const char* to_string(RaError e) {
  switch (e) {
    case RaError::not_ipv6: return "not_ipv6";
    case RaError::bad_length: return "bad_length";
    case RaError::not_icmpv6: return "not_icmpv6";
    case RaError::too_short: return "too_short";
    case RaError::not_router_advertisement: return "not_router_advertisement";
    case RaError::bad_code: return "bad_code";
    case RaError::bad_hop_limit: return "bad_hop_limit";
    case RaError::source_not_link_local: return "source_not_link_local";
    case RaError::bad_checksum: return "bad_checksum";
    case RaError::bad_option_length: return "bad_option_length";
  }
  return "?";
}

InterfaceId interface_id_from_mac(const MacAddress& m) {
  return {static_cast<std::uint8_t>(m.bytes[0] ^ 0x02), m.bytes[1], m.bytes[2], 0xFF, 0xFE, m.bytes[3], m.bytes[4],
          m.bytes[5]};
}

InterfaceId interface_id_of(const Ipv6Address& a) {
  InterfaceId iid{};
  std::copy(a.bytes.begin() + 8, a.bytes.end(), iid.begin());
  return iid;
}

Ipv6Address with_interface_id(const Ipv6Address& prefix, const InterfaceId& iid) {
  Ipv6Address a = prefix;
  std::copy(iid.begin(), iid.end(), a.bytes.begin() + 8);
  return a;
}

Ipv6Address link_local_address(const InterfaceId& iid) {
  return with_interface_id(Ipv6Address{{0xFE, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}}, iid);
}

namespace {

// Clears the bits of `a` past `length` (a prefix as the RA states it may carry junk there).
Ipv6Address masked(Ipv6Address a, std::uint8_t length) {
  for (std::size_t i = 0; i < a.bytes.size(); ++i) {
    const std::size_t bit = i * 8;
    if (bit >= length) a.bytes[i] = 0;
    else if (bit + 8 > length) a.bytes[i] &= static_cast<std::uint8_t>(0xFF << (8 - (length - bit)));
  }
  return a;
}

void write_ipv6_header(MutableBytes out, std::size_t payload_length, const Ipv6Address& source,
                       const Ipv6Address& destination) {
  std::fill(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(eth::kIpv6HeaderSize), std::uint8_t{0});
  out[0] = 0x60;
  store_be16(out, 4, static_cast<std::uint16_t>(payload_length));
  out[6] = eth::kIpProtocolIcmpv6;
  out[7] = eth::kNdHopLimit;
  std::copy(source.bytes.begin(), source.bytes.end(), out.begin() + 8);
  std::copy(destination.bytes.begin(), destination.bytes.end(), out.begin() + 24);
}

void fill_checksum(MutableBytes packet, std::size_t icmp_length, const Ipv6Address& source,
                   const Ipv6Address& destination) {
  const MutableBytes icmp = packet.subspan(eth::kIpv6HeaderSize, icmp_length);
  store_be16(icmp, 2, 0);
  store_be16(icmp, 2, eth::ipv6_upper_layer_checksum(source, destination, eth::kIpProtocolIcmpv6, icmp));
}

}  // namespace

std::optional<RouterAdvertisement> parse_router_advertisement(Bytes ip, RaError& error) {
  const auto fail = [&error](RaError e) {
    error = e;
    return std::nullopt;
  };
  if (ip.size() < eth::kIpv6HeaderSize || (ip[0] >> 4) != 6) return fail(RaError::not_ipv6);
  const std::size_t payload_length = load_be16(ip, 4);
  if (!fits(ip.size(), eth::kIpv6HeaderSize, payload_length)) return fail(RaError::bad_length);
  if (ip[6] != eth::kIpProtocolIcmpv6) return fail(RaError::not_icmpv6);
  const Bytes icmp = ip.subspan(eth::kIpv6HeaderSize, payload_length);
  if (icmp.size() < kRouterAdvertisementSize) return fail(RaError::too_short);
  if (icmp[0] != kIcmpv6RouterAdvertisement) return fail(RaError::not_router_advertisement);
  if (icmp[1] != 0) return fail(RaError::bad_code);
  if (ip[7] != eth::kNdHopLimit) return fail(RaError::bad_hop_limit);
  RouterAdvertisement ra;
  ra.source = Ipv6Address::load(ip, 8);
  ra.destination = Ipv6Address::load(ip, 24);
  if (!is_link_local(ra.source)) return fail(RaError::source_not_link_local);
  if (eth::ipv6_upper_layer_checksum(ra.source, ra.destination, eth::kIpProtocolIcmpv6, icmp) != 0)
    return fail(RaError::bad_checksum);
  // Options first: one of length 0 or running past the end discards the whole RA (§6.1.2).
  for (std::size_t at = kRouterAdvertisementSize; at < icmp.size();) {
    if (!fits(icmp.size(), at, 2) || icmp[at + 1] == 0 || !fits(icmp.size(), at, std::size_t{icmp[at + 1]} * 8))
      return fail(RaError::bad_option_length);
    at += std::size_t{icmp[at + 1]} * 8;
  }

  ra.cur_hop_limit = icmp[4];
  ra.managed = (icmp[5] & 0x80) != 0;
  ra.other = (icmp[5] & 0x40) != 0;
  ra.router_lifetime_s = load_be16(icmp, 6);
  ra.reachable_time_ms = load_be32(icmp, 8);
  ra.retrans_timer_ms = load_be32(icmp, 12);
  for (std::size_t at = kRouterAdvertisementSize; at < icmp.size();) {
    const std::uint8_t type = icmp[at];
    const std::size_t length = std::size_t{icmp[at + 1]} * 8;
    const Bytes o = icmp.subspan(at, length);  // checked above
    at += length;
    switch (type) {
      case kNdOptionSourceLinkLayerAddress:
        if (o.size() != 8) {
          ++ra.ignored_options;
          break;
        }
        ra.source_link_layer = MacAddress::load(o, 2);
        break;
      case kNdOptionMtu:
        if (o.size() != 8) {
          ++ra.ignored_options;
          break;
        }
        if (const std::uint32_t mtu = load_be32(o, 4); mtu >= kMinLinkMtu) ra.mtu = mtu;
        else ++ra.ignored_options;
        break;
      case kNdOptionPrefixInformation: {
        if (o.size() != kPrefixInformationSize || o[2] > 128 || ra.prefixes.size() >= kMaxPrefixes) {
          ++ra.ignored_options;
          break;
        }
        PrefixInformation p;
        p.prefix_length = o[2];
        p.on_link = (o[3] & 0x80) != 0;
        p.autonomous = (o[3] & 0x40) != 0;
        p.valid_lifetime_s = load_be32(o, 4);
        p.preferred_lifetime_s = load_be32(o, 8);
        p.prefix = masked(Ipv6Address::load(o, 16), p.prefix_length);
        ra.prefixes.push_back(p);
        break;
      }
      case kNdOptionRdnss: {
        // RFC 8106 §5.1: length 1 + 2 per address, at least one address.
        if (o.size() < 24 || (o.size() - 8) % 16 != 0) {
          ++ra.ignored_options;
          break;
        }
        const std::uint32_t lifetime = load_be32(o, 4);
        for (std::size_t a = 8; a < o.size(); a += 16) {
          if (ra.rdnss.size() >= kMaxRdnssServers) {
            ++ra.ignored_options;
            break;
          }
          ra.rdnss.push_back(RdnssServer{Ipv6Address::load(o, a), lifetime});
        }
        break;
      }
      default: break;  // §4.6: unknown options are skipped
    }
  }
  return ra;
}

std::size_t build_router_solicitation(const Ipv6Address& source, const std::optional<MacAddress>& source_link_layer,
                                      MutableBytes out) {
  const bool with_slla = source_link_layer.has_value() && !source.is_unspecified();
  const std::size_t icmp_length = kRouterSolicitationSize + (with_slla ? eth::kNdLinkLayerOptionSize : 0);
  const std::size_t total = eth::kIpv6HeaderSize + icmp_length;
  if (out.size() < total) return 0;
  const Ipv6Address destination = all_routers();
  write_ipv6_header(out, icmp_length, source, destination);
  const MutableBytes icmp = out.subspan(eth::kIpv6HeaderSize, icmp_length);
  std::fill(icmp.begin(), icmp.end(), std::uint8_t{0});
  icmp[0] = kIcmpv6RouterSolicitation;
  if (with_slla) {
    icmp[8] = kNdOptionSourceLinkLayerAddress;
    icmp[9] = 1;  // in units of 8 bytes
    std::copy(source_link_layer->bytes.begin(), source_link_layer->bytes.end(), icmp.begin() + 10);
  }
  fill_checksum(out, icmp_length, source, destination);
  return total;
}

std::size_t build_router_advertisement(const RouterAdvertisement& ra, MutableBytes out) {
  const std::size_t rdnss = std::min(ra.rdnss.size(), kMaxRdnssServers);
  const std::size_t icmp_length = kRouterAdvertisementSize + (ra.source_link_layer ? 8 : 0) + (ra.mtu ? 8 : 0) +
                                  kPrefixInformationSize * std::min(ra.prefixes.size(), kMaxPrefixes) +
                                  (rdnss > 0 ? 8 + 16 * rdnss : 0);
  const std::size_t total = eth::kIpv6HeaderSize + icmp_length;
  if (out.size() < total) return 0;
  write_ipv6_header(out, icmp_length, ra.source, ra.destination);
  const MutableBytes icmp = out.subspan(eth::kIpv6HeaderSize, icmp_length);
  std::fill(icmp.begin(), icmp.end(), std::uint8_t{0});
  icmp[0] = kIcmpv6RouterAdvertisement;
  icmp[4] = ra.cur_hop_limit;
  icmp[5] = static_cast<std::uint8_t>((ra.managed ? 0x80 : 0) | (ra.other ? 0x40 : 0));
  store_be16(icmp, 6, ra.router_lifetime_s);
  store_be32(icmp, 8, ra.reachable_time_ms);
  store_be32(icmp, 12, ra.retrans_timer_ms);
  std::size_t at = kRouterAdvertisementSize;
  if (ra.source_link_layer) {
    icmp[at] = kNdOptionSourceLinkLayerAddress;
    icmp[at + 1] = 1;
    std::copy(ra.source_link_layer->bytes.begin(), ra.source_link_layer->bytes.end(), icmp.begin() + static_cast<std::ptrdiff_t>(at + 2));
    at += 8;
  }
  if (ra.mtu) {
    icmp[at] = kNdOptionMtu;
    icmp[at + 1] = 1;
    store_be32(icmp, at + 4, *ra.mtu);
    at += 8;
  }
  for (std::size_t i = 0; i < std::min(ra.prefixes.size(), kMaxPrefixes); ++i) {
    const PrefixInformation& p = ra.prefixes[i];
    icmp[at] = kNdOptionPrefixInformation;
    icmp[at + 1] = 4;
    icmp[at + 2] = p.prefix_length;
    icmp[at + 3] = static_cast<std::uint8_t>((p.on_link ? 0x80 : 0) | (p.autonomous ? 0x40 : 0));
    store_be32(icmp, at + 4, p.valid_lifetime_s);
    store_be32(icmp, at + 8, p.preferred_lifetime_s);
    std::copy(p.prefix.bytes.begin(), p.prefix.bytes.end(), icmp.begin() + static_cast<std::ptrdiff_t>(at + 16));
    at += kPrefixInformationSize;
  }
  if (rdnss > 0) {
    icmp[at] = kNdOptionRdnss;
    icmp[at + 1] = static_cast<std::uint8_t>(1 + 2 * rdnss);
    store_be32(icmp, at + 4, ra.rdnss[0].lifetime_s);
    for (std::size_t i = 0; i < rdnss; ++i)
      std::copy(ra.rdnss[i].address.bytes.begin(), ra.rdnss[i].address.bytes.end(),
                icmp.begin() + static_cast<std::ptrdiff_t>(at + 8 + 16 * i));
  }
  fill_checksum(out, icmp_length, ra.source, ra.destination);
  return total;
}

bool is_router_solicitation(Bytes ip) {
  return ip.size() >= eth::kIpv6HeaderSize + kRouterSolicitationSize && (ip[0] >> 4) == 6 &&
         ip[6] == eth::kIpProtocolIcmpv6 && ip[eth::kIpv6HeaderSize] == kIcmpv6RouterSolicitation;
}

}  // namespace wwan::ipv6
