// A data session as a pure state machine (OpenBSD umb(4) style): bytes and time in, bytes to send
// and a status out. The Huawei AT session (control/huawei_session.hpp) and the MBIM session
// (control/mbim_session.hpp) implement it; the session runner (control/session_runner.hpp) is the
// only code that touches the Transport: it sends what take_commands() returns with
// SEND_ENCAPSULATED_COMMAND, reads GET_ENCAPSULATED_RESPONSE after every RESPONSE_AVAILABLE (and
// on a poll timer, because some firmware loses notifications), passes the interrupt endpoint's
// notifications on, and calls on_timer() at next_timer().
//
// Nothing here blocks, sleeps or allocates without bound; every input is untrusted device output.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "control/cdc_ncm.hpp"
#include "datapath/ethernet.hpp"

namespace wwan::control {

using Clock = std::chrono::steady_clock;
using ByteVector = std::vector<std::uint8_t>;

enum class AuthProtocol : std::uint8_t { none, pap, chap, mschapv2 };
enum class IpFamilies : std::uint8_t { ipv4, ipv6, ipv4v6 };

// What the user asked for (command line / config file).
struct SessionSettings {
  std::string apn;                  // empty: the modem's default context
  std::string user, password;
  AuthProtocol auth = AuthProtocol::none;
  IpFamilies families = IpFamilies::ipv4;
  std::string pin;                  // SIM PIN, entered only when the SIM asks for it
  // Redial after a network-initiated drop: first wait, doubled per failure up to the maximum.
  std::chrono::milliseconds redial_initial{1000};
  std::chrono::milliseconds redial_max{60000};
  // An answer that does not come within this is a timeout (retried, then the step fails).
  std::chrono::milliseconds command_timeout{10000};
  bool fcc_unlock = false;          // the quirk table says this modem needs an FCC unlock first
};

struct Ipv4Config {
  eth::Ipv4Address address;
  std::uint8_t prefix_length = 32;
  std::optional<eth::Ipv4Address> gateway;
  std::vector<eth::Ipv4Address> dns;
  std::uint32_t mtu = 0;  // 0 = not reported
};
struct Ipv6Config {
  eth::Ipv6Address address;
  std::uint8_t prefix_length = 64;
  std::optional<eth::Ipv6Address> gateway;
  std::vector<eth::Ipv6Address> dns;
  std::uint32_t mtu = 0;
};
struct IpConfig {
  std::optional<Ipv4Config> ipv4;
  std::optional<Ipv6Config> ipv6;
  bool empty() const { return !ipv4 && !ipv6; }
};

enum class SessionState : std::uint8_t {
  idle,           // start() not called yet
  starting,       // opening the channel, SIM/PIN, radio, registration, FCC unlock
  connecting,     // dial / CONNECT sent
  connected,      // data may flow; ip_config() is known
  disconnected,   // the network dropped it; a redial is scheduled (next_timer)
  stopping,       // stop() called: disconnecting
  stopped,        // cleanly ended
  failed,         // cannot go on (wrong PIN, SIM missing, modem refuses): status().error says why
};
const char* to_string(SessionState s);

struct SessionStatus {
  SessionState state = SessionState::idle;
  IpConfig ip;                 // valid in connected
  std::uint32_t mbim_session_id = 0;  // MBIM: the IPS session the data path uses
  std::string error;           // one line, for failed (and the last problem otherwise)
  std::uint64_t connects = 0;  // times it reached connected (a redial counts again)
  std::uint64_t drops = 0;     // network-initiated disconnects seen
};

class Session {
 public:
  virtual ~Session() = default;

  virtual void start(Clock::time_point now) = 0;
  // Ends the session: disconnects if connected, then stopped.
  virtual void stop(Clock::time_point now) = 0;

  // One GET_ENCAPSULATED_RESPONSE payload (an AT text chunk, or one MBIM fragment). Never empty.
  virtual void on_response(std::span<const std::uint8_t> bytes, Clock::time_point now) = 0;
  // A decoded notification of the interrupt endpoint (RESPONSE_AVAILABLE is handled by the runner
  // and passed on too, for information).
  virtual void on_notification(const cdc::Notification& notification, Clock::time_point now) = 0;
  // Called at (or after) next_timer().
  virtual void on_timer(Clock::time_point now) = 0;
  virtual std::optional<Clock::time_point> next_timer() const = 0;

  // Encapsulated commands to send now, in order (each one SEND_ENCAPSULATED_COMMAND data stage;
  // an MBIM message larger than the device's wMaxControlMessage arrives here already fragmented).
  virtual std::vector<ByteVector> take_commands() = 0;

  virtual const SessionStatus& status() const = 0;
};

}  // namespace wwan::control
