// The IPv6 router of an emulated modem's network (RFC 4861 §6.2): answers the host's router
// solicitations and advertises unsolicited every interval, as a PDN gateway does on every 3GPP
// bearer with IPv6 (TS 29.061 §11.2.1.3: the /64 is advertised with A=1, L=0 — a routed prefix,
// nothing on-link). What it advertises: the /64 of the address the network assigns
// (NetworkConfig host_ipv6), the router's link-local address as the gateway, the MTU and an
// RDNSS server (RFC 8106).
//
// Solicitations are validated as a router must (RFC 4861 §6.1.1: Hop Limit 255, checksum,
// code 0, ICMPv6 length >= 8); a bad one is counted and not answered. Answers go to ff02::1
// (§6.2.6 allows a multicast answer), at most one per kMinAnswerInterval so a host flooding RSs
// cannot flood the queue toward itself (the §10 MIN_DELAY_BETWEEN_RAS idea, shortened for tests).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "control/ipv6_ra.hpp"

namespace wwan::sim {

struct RouterAdvertiserConfig {
  bool enabled = true;
  eth::Ipv6Address router{{0xFE, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}};  // fe80::1
  std::uint16_t router_lifetime_s = 1800;   // RFC 4861 default: 3 * MaxRtrAdvInterval
  std::uint32_t valid_lifetime_s = 7200;
  std::uint32_t preferred_lifetime_s = 3600;
  eth::Ipv6Address dns{{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53}};  // 2001:db8::53
  std::uint32_t dns_lifetime_s = 1800;
  // Unsolicited RAs this often (RFC 4861 MaxRtrAdvInterval, 600 s by default); 0 = only answers
  // to RSs. Off by default so a model driven by a fake clock stays quiet unless asked; the
  // daemon's --sim turns it on (kPeriodicAdvertisementInterval).
  std::chrono::seconds interval{0};
};
inline constexpr std::chrono::seconds kPeriodicAdvertisementInterval{60};

struct RouterAdvertiserCounters {
  std::uint64_t solicitations = 0;         // valid RSs received
  std::uint64_t bad_solicitations = 0;
  std::uint64_t solicited = 0;             // RAs answering an RS
  std::uint64_t unsolicited = 0;           // periodic RAs
  std::uint64_t rate_limited = 0;          // RSs not answered: one was sent just before
};

class RouterAdvertiser {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kMinAnswerInterval{200};

  // `host_address`: its /64 is advertised. `link_layer`: the router's MAC for the SLLA option
  // (NCM), nullopt on a raw-IP link (MBIM).
  RouterAdvertiser(RouterAdvertiserConfig config, const eth::Ipv6Address& host_address, std::uint16_t mtu,
                   std::optional<eth::MacAddress> link_layer = std::nullopt);

  // An RS from the host (a whole IPv6 packet, ipv6::is_router_solicitation said so). The RA to
  // send, or nullopt (invalid, or rate-limited).
  std::optional<std::vector<std::uint8_t>> on_solicitation(eth::Bytes ip_packet, Clock::time_point now);
  // The periodic RA when it is due at `now` (the first one is due one interval after the first call).
  std::optional<std::vector<std::uint8_t>> take_unsolicited(Clock::time_point now);
  std::optional<Clock::time_point> next_deadline() const { return next_unsolicited_; }
  void set_link_layer(std::optional<eth::MacAddress> mac) { link_layer_ = mac; }

  const RouterAdvertiserCounters& counters() const { return counters_; }
  ipv6::RouterAdvertisement advertisement() const;

 private:
  std::vector<std::uint8_t> build() const;

  RouterAdvertiserConfig config_;
  eth::Ipv6Address prefix_;
  std::uint16_t mtu_;
  std::optional<eth::MacAddress> link_layer_;
  std::optional<Clock::time_point> next_unsolicited_;
  std::optional<Clock::time_point> last_answer_;
  RouterAdvertiserCounters counters_;
};

}  // namespace wwan::sim
