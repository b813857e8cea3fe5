// The DHCPv4 client (RFC 2131 §4.4) as a pure state machine: diverted packets and time in,
// packets to send and lease events out. It never sees a socket, a TUN or a clock of its own, so
// every path — renewal at T1, rebinding at T2, expiry, a DHCPNAK, a lost DHCPOFFER — is a unit
// test with a fake clock (tests/control/dhcp4_client_test.cpp).
//
//   stopped ─start()─▶ INIT ─DHCPDISCOVER─▶ SELECTING ─DHCPOFFER─▶ DHCPREQUEST ─▶ REQUESTING
//     REQUESTING ─DHCPACK─▶ BOUND (event acquired) ─T1─▶ RENEWING (DHCPREQUEST unicast to the server)
//     RENEWING ─DHCPACK─▶ BOUND (event renewed) │ ─T2─▶ REBINDING (DHCPREQUEST broadcast)
//     REBINDING ─DHCPACK─▶ BOUND (renewed) │ ─lease expiry─▶ INIT (event lost)
//     DHCPNAK in REQUESTING / RENEWING / REBINDING ─▶ INIT (event lost if a lease was held)
//   release(): DHCPRELEASE unicast to the server when a lease is held, then stopped.
//
// Choices (and why):
// - No random 1–10 s wait before the first DHCPDISCOVER (RFC 2131 §4.4.1 "SHOULD"): the wait
//   spreads many hosts booting on one LAN; a USB link has one host, and the user waits for it.
// - The first DHCPOFFER is taken (no collection window): the link's only server is the modem.
// - Retransmission (§4.1): 4 s, doubled per attempt up to 64 s, ±1 s of jitter from a seeded
//   generator (settings.seed: tests are repeatable). DHCPREQUEST in REQUESTING is sent
//   request_attempts times, then the client starts over with a DHCPDISCOVER. In RENEWING and
//   REBINDING the wait is half the time left to T2 / to expiry, at least min_renew_retransmit
//   (§4.4.5: "down to a minimum of 60 seconds"), never past T2 / expiry.
// - Lease times count from the first transmission of the DHCPREQUEST that got the DHCPACK
//   (§4.4.1), so a slow answer shortens the lease rather than stretching it. T1/T2 default to
//   0.5 and 0.875 of the lease (§4.4.5) and are replaced by those defaults unless
//   0 < T1 < T2 < lease. An infinite lease (0xffffffff) is never renewed.
// - A DHCPNAK restarts at once; consecutive ones back off as retransmissions do, so a server that
//   refuses everything is not asked in a tight loop.
// - No ARP probe of the offered address and no DHCPDECLINE (§4.4.1 "SHOULD"): on a point-to-point
//   NCM link the only other station is the modem, and the address is the network's to assign.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "control/dhcp4_wire.hpp"

namespace wwan::dhcp4 {

using Clock = std::chrono::steady_clock;

struct ClientSettings {
  MacAddress mac;                                        // chaddr, and the client identifier (type 1)
  std::uint32_t seed = 1;                                // xid and jitter
  std::chrono::milliseconds initial_retransmit{4000};    // RFC 2131 §4.1
  std::chrono::milliseconds max_retransmit{64000};
  std::chrono::milliseconds jitter{1000};                // ± this much on every retransmission wait
  std::chrono::milliseconds min_renew_retransmit{60000}; // RFC 2131 §4.4.5
  unsigned request_attempts = 4;                         // REQUESTING: sends before starting over
  // Option 57: the largest DHCP message we take. The RX path hands over whole IP packets up to
  // the link MTU; 1500 - 20 (IP) - 8 (UDP).
  std::uint16_t max_message_size = 1472;
};

enum class ClientState : std::uint8_t { stopped, init, selecting, requesting, bound, renewing, rebinding };
const char* to_string(ClientState s);  // "INIT", "SELECTING", ... ("stopped")

struct Lease {
  Ipv4Address address;
  std::uint8_t prefix_length = 32;     // from the subnet mask; 32 when the server gave none
  std::optional<Ipv4Address> router;   // the first of option 3
  std::vector<Ipv4Address> dns;
  std::uint16_t mtu = 0;               // option 26; 0 = not given
  Ipv4Address server;                  // option 54: where renewals go
  std::uint32_t lease_s = 0, t1_s = 0, t2_s = 0;
  Clock::time_point start{};           // the lease's times count from here
  // Everything the TUN is configured from (not the times).
  bool same_configuration(const Lease& o) const {
    return address == o.address && prefix_length == o.prefix_length && router == o.router && dns == o.dns &&
           mtu == o.mtu;
  }
};

struct ClientEvent {
  enum class Kind : std::uint8_t { acquired, renewed, lost } kind;
  std::string reason;  // lost: "DHCPNAK from 10.64.64.1: <message>", "the lease expired"
};
const char* to_string(ClientEvent::Kind k);

// One packet to send: a whole IPv4 packet (UDP inside). `broadcast`: to ff:ff:ff:ff:ff:ff (the
// client has no address yet, or is rebinding); else unicast to the modem's MAC.
struct OutgoingPacket {
  std::vector<std::uint8_t> ip;
  bool broadcast = false;
};

struct ClientCounters {
  std::uint64_t discovers = 0, requests = 0, releases = 0;  // sent (retransmissions included)
  std::uint64_t retransmissions = 0;
  std::uint64_t offers = 0, acks = 0, naks = 0;             // accepted from the server
  std::uint64_t leases = 0, renewals = 0, expiries = 0;     // bound from INIT / extended / lost to time
  std::uint64_t not_ours = 0;     // a reply for another xid or chaddr, or unexpected in this state
  std::uint64_t malformed = 0;    // not a valid UDP/IPv4 packet, DHCP message, or usable lease
};

class Client {
 public:
  explicit Client(ClientSettings settings);

  void start(Clock::time_point now);  // from stopped (otherwise: a restart from INIT)
  void stop();                        // silently (the link went down): stopped, the lease forgotten
  void release(Clock::time_point now);  // DHCPRELEASE if a lease is held; stopped either way

  // An IPv4 packet from the link that the data path diverted (UDP from 67 to 68).
  void on_packet(Bytes ip_packet, Clock::time_point now);
  void on_timer(Clock::time_point now);
  std::optional<Clock::time_point> next_timer() const;

  std::vector<OutgoingPacket> take_packets();
  std::vector<ClientEvent> take_events();

  ClientState state() const { return state_; }
  // The lease in BOUND, RENEWING and REBINDING.
  const std::optional<Lease>& lease() const { return lease_; }
  const ClientCounters& counters() const { return counters_; }

 private:
  void enter_init(Clock::time_point now, std::chrono::milliseconds delay);
  void send_discover(Clock::time_point now);
  void send_request(Clock::time_point now);
  void on_offer(const Message& m, Clock::time_point now);
  void on_ack(const Message& m, Clock::time_point now);
  void on_nak(const Message& m, Clock::time_point now);
  void lose_lease(std::string reason);
  Message base_message(MessageType type, Clock::time_point now) const;
  void emit(const Message& m, const Ipv4Address& source, const Ipv4Address& destination, bool broadcast);
  std::chrono::milliseconds backoff(unsigned attempt);
  Clock::time_point renew_retransmit_time(Clock::time_point now, Clock::time_point limit) const;
  Clock::time_point t1_time() const;
  Clock::time_point t2_time() const;
  Clock::time_point expiry_time() const;
  bool infinite() const { return lease_ && lease_->lease_s == kInfiniteLease; }

  ClientSettings settings_;
  std::minstd_rand rng_;
  ClientState state_ = ClientState::stopped;
  std::uint32_t xid_ = 0;
  unsigned attempt_ = 0;                          // sends of the current message
  unsigned consecutive_naks_ = 0;
  Clock::time_point exchange_started_{};          // for secs
  Clock::time_point request_sent_{};              // first send of the current DHCPREQUEST
  std::optional<Clock::time_point> timer_;
  std::optional<Message> offer_;                  // the DHCPOFFER being requested
  std::optional<Lease> lease_;
  std::uint16_t ip_identification_ = 0;
  std::vector<OutgoingPacket> packets_;
  std::vector<ClientEvent> events_;
  ClientCounters counters_;
};

}  // namespace wwan::dhcp4
