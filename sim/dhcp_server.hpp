// The DHCP server on an emulated modem's link (RFC 2131 §4.3, the server side), for the profiles
// whose host must get its address by DHCP (generic-ncm: a plain NCM function has no AT^DHCP? and
// no IP_CONFIGURATION). One client, one address: the one the network assigns (NetworkConfig
// host_ipv4), with the network's gateway, DNS servers and MTU.
//
// Leases are short by default (kDefaultLeaseSeconds) so that every run of the daemon against it
// renews; switches make it misbehave the way servers do: answer the next DHCPREQUEST with a
// DHCPNAK, fall silent for a while (the lease runs out), hand out another lease time. The
// network's control port reaches them (sim/network.hpp: dhcp-nak, dhcp-silent, dhcp-lease).
//
// Untrusted input like everything the host sends: parsed with the bounds-checked codec
// (control/dhcp4_wire.hpp); what is not a well-formed client message is counted, never answered.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "control/dhcp4_wire.hpp"

namespace wwan::sim {

inline constexpr std::uint32_t kDefaultLeaseSeconds = 20;

struct DhcpServerConfig {
  eth::Ipv4Address client_address;     // the one address handed out
  std::uint8_t prefix_length = 30;
  eth::Ipv4Address server_address;     // server identifier, router, and source of the replies
  std::vector<eth::Ipv4Address> dns;
  std::uint16_t mtu = 1500;
  std::uint32_t lease_s = kDefaultLeaseSeconds;
};

struct DhcpServerCounters {
  std::uint64_t discovers = 0, requests = 0, releases = 0, declines = 0;  // received, valid
  std::uint64_t offers = 0, acks = 0, naks = 0;                           // sent
  std::uint64_t malformed = 0;   // not a valid UDP/IPv4 DHCP client message
  std::uint64_t ignored = 0;     // while silent, for another server, or nothing to answer
};

class DhcpServer {
 public:
  using Clock = std::chrono::steady_clock;
  explicit DhcpServer(DhcpServerConfig config);

  // An IPv4 packet from the host to UDP port 67. The answer as a whole IPv4 packet, or nullopt.
  std::optional<std::vector<std::uint8_t>> from_client(eth::Bytes ip_packet, Clock::time_point now);

  // Switches (the control port's commands).
  void nak_next_request() { nak_next_ = true; }
  void silent_until(Clock::time_point t) { silent_until_ = t; }
  void set_lease_seconds(std::uint32_t s) { config_.lease_s = s; }

  const DhcpServerConfig& config() const { return config_; }
  const DhcpServerCounters& counters() const { return counters_; }
  // When the lease handed out last runs out (nullopt: none held, or released).
  std::optional<Clock::time_point> lease_expiry() const { return lease_until_; }

 private:
  std::vector<std::uint8_t> reply(const dhcp4::Message& request, dhcp4::MessageType type, const char* message);

  DhcpServerConfig config_;
  DhcpServerCounters counters_;
  bool nak_next_ = false;
  std::optional<Clock::time_point> silent_until_;
  std::optional<Clock::time_point> lease_until_;
  std::uint16_t ip_identification_ = 0;
};

}  // namespace wwan::sim
