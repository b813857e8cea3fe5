// The addressing that happens on the link after (or instead of) the session's: the DHCPv4 client
// (control/dhcp4_client.hpp) and router discovery (control/ipv6_ra_client.hpp), merged with what
// the session reported into the one IpConfig the daemon applies to the TUN. Pure: session status,
// diverted packets and time in; packets to send, the merged configuration and lease events out
// (tests/control/link_autoconf_test.cpp drives it with a fake clock).
//
//   data path RX ─ UDP 67→68, ICMPv6 RA (diverted) ─▶ on_packet ─▶ dhcp4::Client / ipv6::RaClient
//   take_packets() ─▶ data path TX (NTBs, next to the ARP/NA replies)
//   config() / up() / version() ─▶ the daemon: LinkConfigurator + the `connected` event
//
// Merge rules:
// - IPv4: the DHCP lease when `dhcp4` (a plain NCM function or Quectel: the session has no
//   address), or when `dhcp4_fallback` and the session connected without an IPv4 address although
//   IPv4 was asked for (Huawei firmware whose AT^DHCP? answers ERROR, is missing or garbled: the
//   stick runs a DHCP server on its link, anchors §2.1); else the session's.
// - IPv6 (only when `ipv6_ra`: the user asked for IPv6): the session's address when it gave one;
//   when an RA advertises an autonomous /64, that prefix + the interface identifier (the
//   session's, so the network's IID is kept, else ours from the MAC). Gateway: the RA's router
//   while its lifetime lasts, else the session's. DNS: the session's, then RDNSS. MTU: the RA's,
//   else the session's.
// - up(): the session is connected and the merged configuration has an address. For a DHCP link
//   that means a lease (or an RA address when only IPv6 was asked for).
// The clients start when the session connects and stop (silently: the link is gone) when it
// drops; release() sends the DHCPRELEASE at a clean exit. The fallback DHCP client starts with the
// connect that lacks the address and lives as long as that connect (a redial decides again).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "control/dhcp4_client.hpp"
#include "control/ipv6_ra_client.hpp"
#include "control/session.hpp"

namespace wwan::control {

struct AutoconfSettings {
  bool dhcp4 = false;    // run the DHCPv4 client (generic NCM / Quectel without --static-ipv4)
  // Run it only when the connected session reports no IPv4 configuration (Huawei ^DHCP? failed).
  bool dhcp4_fallback = false;
  bool ipv6_ra = false;  // solicit RAs and follow them (the user asked for IPv6)
  bool link_layer = true;  // NCM (Ethernet) or MBIM (raw IP: RS without SLLA, no broadcast)
  eth::MacAddress mac;
  std::uint32_t seed = 1;
  dhcp4::ClientSettings dhcp;  // mac and seed are filled in from the fields above
  ipv6::RaClientSettings ra;   // mac and link_layer likewise
};

// A packet for the link: a whole IP packet; `destination` the Ethernet destination (broadcast
// for DHCPDISCOVER, 33:33:00:00:00:02 for an RS), nullopt = the modem's learned MAC.
struct AutoconfPacket {
  std::vector<std::uint8_t> ip;
  std::optional<eth::MacAddress> destination;
};

// What happened to the DHCP lease, for the daemon's `lease` event.
struct LeaseEvent {
  dhcp4::ClientEvent::Kind kind;
  std::string reason;                  // lost: why
  std::optional<dhcp4::Lease> lease;   // acquired / renewed: the lease now held
};

class LinkAutoconf {
 public:
  explicit LinkAutoconf(AutoconfSettings settings);

  // Every loop: starts the clients when the session is connected, stops them when it is not.
  void on_session(const SessionStatus& status, Clock::time_point now);
  // A packet the data path diverted (DHCP to the client, or an RA).
  void on_packet(eth::Bytes ip_packet, Clock::time_point now);
  void on_timer(Clock::time_point now);
  std::optional<Clock::time_point> next_timer() const;
  std::vector<AutoconfPacket> take_packets();
  std::vector<LeaseEvent> take_events();
  // DHCPRELEASE (when a lease is held); everything stops.
  void release(Clock::time_point now);

  bool up() const { return up_; }
  const IpConfig& config() const { return config_; }
  // Changes whenever up() or config() changed.
  std::uint64_t version() const { return version_; }
  // Why the link is not up (the last lease loss or session error), for the `disconnected` event.
  const std::string& down_reason() const { return down_reason_; }
  // Our link-local IPv6 address while IPv6 runs (the modem may solicit it).
  std::optional<eth::Ipv6Address> link_local() const;

  const dhcp4::Client& dhcp() const { return dhcp_; }
  // True while DHCPv4 stands in for a session that gave no IPv4 address (dhcp4_fallback).
  bool dhcp4_fallback_active() const { return fallback_active_; }
  const ipv6::RaClient& ra() const { return ra_; }

 private:
  void merge();

  AutoconfSettings settings_;
  dhcp4::Client dhcp_;
  ipv6::RaClient ra_;
  bool session_up_ = false;
  bool fallback_active_ = false;
  IpConfig session_ip_;
  std::uint64_t session_connects_ = 0;
  bool up_ = false;
  IpConfig config_;
  std::uint64_t version_ = 0;
  std::string down_reason_;
  std::vector<LeaseEvent> events_;
};

}  // namespace wwan::control
