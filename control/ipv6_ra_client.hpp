// Router discovery and SLAAC for the TUN (RFC 4861 §6.3, RFC 4862 §5.5, RFC 7559, RFC 8106) as
// a pure state machine: diverted RAs and time in, router solicitations and an IPv6
// configuration out. Tested with a fake clock (tests/control/ipv6_ra_client_test.cpp).
//
// - Solicits at start, then every rs_interval doubled per unanswered RS up to max_rs_interval
//   (RFC 7559's back-off; it allows up to an hour, a modem that missed the first RS should not
//   leave IPv6 down that long). Stops soliciting at the first valid RA. No initial random delay
//   (RFC 4861 §6.3.7 spreads hosts on a LAN; the link has one).
// - The address: the first autonomous /64 prefix (RFC 4862 §5.5.3 (a)-(d): not link-local,
//   preferred <= valid, 64 bits) + the interface identifier: the session's (set_interface_id)
//   or the one from our MAC. Its valid lifetime follows §5.5.3 (e), the "two hours rule" that
//   keeps a forged RA from killing the address at once. When it runs out the address goes.
// - The gateway (default route) while the router lifetime lasts (§6.3.4); RDNSS servers while
//   their lifetime lasts (RFC 8106 §5.1); the MTU option as sent (§6.3.4; >= 1280).
// - Every change of the resulting configuration bumps version(); the daemon re-applies it.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "control/ipv6_ra.hpp"

namespace wwan::ipv6 {

using Clock = std::chrono::steady_clock;

struct RaClientSettings {
  MacAddress mac;                 // our MAC: SLLA option (NCM) and the default interface identifier
  bool link_layer = true;         // NCM (Ethernet): RSs carry the SLLA option; MBIM: none
  std::chrono::milliseconds rs_interval{4000};       // RFC 4861 RTR_SOLICITATION_INTERVAL
  std::chrono::milliseconds max_rs_interval{60000};
  std::chrono::seconds two_hours{7200};              // RFC 4862 §5.5.3 (e)
};

// What the RAs say the TUN's IPv6 should be.
struct RaConfig {
  std::optional<Ipv6Address> address;   // SLAAC address (prefix + IID), while the prefix is valid
  std::uint8_t prefix_length = kSlaacPrefixLength;
  std::optional<Ipv6Address> gateway;   // the router, while its router lifetime lasts
  std::vector<Ipv6Address> dns;         // RDNSS, while their lifetime lasts
  std::optional<std::uint32_t> mtu;
  friend bool operator==(const RaConfig&, const RaConfig&) = default;
};

struct RaCounters {
  std::uint64_t solicitations = 0;       // RSs sent
  std::uint64_t advertisements = 0;      // valid RAs taken
  std::uint64_t invalid = 0;             // RAs discarded (RaError)
  std::uint64_t ignored_prefixes = 0;    // not autonomous, link-local, not /64, preferred > valid
  std::uint64_t expiries = 0;            // address, router or RDNSS lifetimes that ran out
};

class RaClient {
 public:
  explicit RaClient(RaClientSettings settings);

  void start(Clock::time_point now);  // forgets what was learned, solicits
  void stop();                        // silent; forgets everything
  // The interface identifier the session gave (MBIM IP_CONFIGURATION, Huawei ^DHCPV6); nullopt
  // = the one from our MAC.
  void set_interface_id(const std::optional<InterfaceId>& iid);

  void on_packet(Bytes ip_packet, Clock::time_point now);
  void on_timer(Clock::time_point now);
  std::optional<Clock::time_point> next_timer() const;
  // RS packets to send (whole IPv6 packets to ff02::2; on Ethernet to 33:33:00:00:00:02).
  std::vector<std::vector<std::uint8_t>> take_packets();

  bool running() const { return running_; }
  const RaConfig& config() const { return config_; }
  std::uint64_t version() const { return version_; }
  // fe80::IID: the source of our RSs (and an address the modem may send Neighbour Solicitations to).
  Ipv6Address link_local() const { return link_local_address(iid()); }
  InterfaceId iid() const { return session_iid_.value_or(interface_id_from_mac(settings_.mac)); }
  // The router that last advertised (for the stats / debugging), nullopt before any RA.
  const std::optional<RouterAdvertisement>& last_advertisement() const { return last_; }
  const RaCounters& counters() const { return counters_; }

 private:
  void solicit(Clock::time_point now);
  void recompute(Clock::time_point now);  // expire what ran out, then derive()
  void derive();

  RaClientSettings settings_;
  std::optional<InterfaceId> session_iid_;
  bool running_ = false;
  bool answered_ = false;
  std::chrono::milliseconds rs_wait_{0};
  std::optional<Clock::time_point> next_rs_;

  struct Prefix {
    Ipv6Address prefix;
    Clock::time_point valid_until;
    bool infinite = false;
  };
  std::optional<Prefix> prefix_;
  std::optional<Ipv6Address> router_;
  Clock::time_point router_until_{};
  struct Dns {
    Ipv6Address address;
    Clock::time_point until;
    bool infinite = false;
  };
  std::vector<Dns> dns_;
  std::optional<std::uint32_t> mtu_;
  std::optional<RouterAdvertisement> last_;

  RaConfig config_;
  std::uint64_t version_ = 0;
  std::vector<std::vector<std::uint8_t>> packets_;
  RaCounters counters_;
};

}  // namespace wwan::ipv6
