// The Fibocom FM350-GL's data session over its serial AT port (USB modes 40/41: interface 6,
// vectors/usb_descriptors.md D1), as a pure control::Session: answer bytes and time in, command
// lines and a status out. It is the AT half of the FM350 link; the RNDIS half (control/
// rndis_session.hpp) runs next to it on the encapsulated channel, and control/rndis_at_runner.hpp
// joins the two.
//
//   unlock     the FCC unlock (control/fcc_unlock_at.hpp Fm350FccUnlock: AT+GTFCCEFFSTATUS?,
//              AT+GTFCCLOCKGEN / AT+GTFCCLOCKVER, AT+CFUN=1) when SessionSettings::fcc_unlock says
//              so (the quirk row of 0e8d:7126/7127, or --fcc-unlock); else AT+CFUN=1 alone, whose
//              refusal fails the session with the hint to unlock
//   ATE0       no echo (its result is not needed)
//   AT+CGDCONT=<cid>,"IP"|"IPV6"|"IPV4V6","<apn>"   refusal tolerated (the stored context is used)
//   AT+CGACT=1,<cid>       +CME ERROR: 3 (operation not allowed: the radio is off) fails the
//                          session; other refusals are retried after the redial back-off
//   AT+CGPADDR=<cid>       the address (27.007 §10.1.14); none yet: asked again, kMaxAddressPolls times
//   AT+CGCONTRDP=<cid>     gateway, mask and DNS (27.007 §10.1.23); refused or empty: tolerated,
//                          the address is then taken as a /32 without DNS
//   connected  until "+CGEV: NW PDN DEACT <cid>" / "+CGEV: NW DEACT ..." / "+CGEV: ME PDN DEACT"
//              (27.007 §10.1.19): disconnected, redial after redial_initial (doubling to
//              redial_max) from AT+CGACT=1 on
//   stop()     AT+CGACT=0,<cid> when connected (5 s), then stopped
//
// The address comes from AT+CGPADDR, not DHCP: users of the FM350 over USB dial exactly this way
// and configure the reported address statically (anchors.md §2.3; docs/quirks.md). AT+GTDNS, which
// some scripts name for the DNS servers, has no source in the vectors; AT+CGCONTRDP is the 3GPP
// command ModemManager parses (vectors/modemmanager_huawei_at.md L1). That the FM350 answers it is
// ASSUMED (docs/rndis.md).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/at_command_queue.hpp"
#include "control/fcc_unlock_at.hpp"
#include "control/session.hpp"

namespace wwan::control {

// "+CGPADDR: 1,"10.64.64.2"" (also unquoted, or with a second IPv6 address after it) for `cid`:
// the IPv4 address. nullopt for another cid, no address, 0.0.0.0 or anything unparsable.
std::optional<eth::Ipv4Address> parse_cgpaddr(std::string_view line, int cid);

// One "+CGCONTRDP:" line: what the host needs of it. IPv4 only (IPv6 lines give nullopt).
struct Cgcontrdp {
  int cid = 0;
  std::string apn;
  eth::Ipv4Address address;
  std::optional<std::uint8_t> prefix_length;  // from the mask of the "a.b.c.d.m.m.m.m" form; contiguous only
  std::optional<eth::Ipv4Address> gateway;
  std::vector<eth::Ipv4Address> dns;
};
std::optional<Cgcontrdp> parse_cgcontrdp(std::string_view line);

struct Fm350SessionOptions {
  int cid = 1;
  fcc::Fm350UnlockOptions unlock;  // vendor hash, attempts (the command timeout follows the settings)
};

struct Fm350SessionCounters {
  std::uint64_t activations = 0;        // AT+CGACT=1 accepted
  std::uint64_t activation_refusals = 0;
  std::uint64_t address_polls = 0;      // AT+CGPADDR answered without an address
  std::uint64_t deactivation_urcs = 0;  // +CGEV ... DEACT seen
};

class Fm350Session final : public Session {
 public:
  enum class Step : std::uint8_t {
    idle, unlock, radio_on, echo_off, define_context, activate, query_address, query_dns, connected,
    redial_wait, deactivate, stopped, failed,
  };
  static constexpr unsigned kMaxAddressPolls = 10;
  static constexpr std::chrono::milliseconds kAddressPollInterval{500};

  explicit Fm350Session(SessionSettings settings, Fm350SessionOptions options = {});

  void start(Clock::time_point now) override;
  void stop(Clock::time_point now) override;
  void on_response(std::span<const std::uint8_t> bytes, Clock::time_point now) override;
  // A serial port has no notifications.
  void on_notification(const cdc::Notification&, Clock::time_point) override {}
  void on_timer(Clock::time_point now) override;
  std::optional<Clock::time_point> next_timer() const override;
  std::vector<ByteVector> take_commands() override;
  const SessionStatus& status() const override { return status_; }

  Step step() const { return step_; }
  const Fm350SessionCounters& counters() const { return counters_; }
  const fcc::Fm350FccUnlock& unlock() const { return unlock_; }

 private:
  void submit(Step step, std::string command, Clock::time_point now, std::uint8_t retries = 1);
  void on_result(const at::AtResponse& r, Clock::time_point now);
  void on_unsolicited(std::string_view line, Clock::time_point now);
  void after_unlock(Clock::time_point now);
  void activate(Clock::time_point now);
  void schedule_redial(Clock::time_point now);
  void connect(Clock::time_point now);
  void fail(std::string why);

  SessionSettings settings_;
  Fm350SessionOptions options_;
  fcc::Fm350FccUnlock unlock_;
  // One command awaited at a time, submitted for step_: every other answer is forgotten.
  at::CommandQueue<Step> commands_;
  Step step_ = Step::idle;
  std::optional<Clock::time_point> wake_at_;  // redial or the next address poll
  std::chrono::milliseconds backoff_{0};
  unsigned address_polls_ = 0;
  Ipv4Config ipv4_;
  SessionStatus status_;
  Fm350SessionCounters counters_;
};

const char* to_string(Fm350Session::Step s);

}  // namespace wwan::control
