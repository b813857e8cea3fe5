// The Fibocom FM350-GL FCC unlock over AT (AT+GTFCCLOCKGEN / AT+GTFCCLOCKVER): the pure
// challenge/response computation, and Fm350FccUnlock, the state machine that runs it over an AT
// channel (on USB the FM350's serial AT port, interface 6: usb/serial_port.hpp).
//
// The algorithm (reference/vectors/fm350_fcc_unlock.md, from ModemManager's CC0 dispatcher script
// data/dispatcher-fcc-unlock/14c3 and an independent OpenWrt implementation that agrees with it):
//   1. AT+GTFCCLOCKGEN answers a 32-bit challenge as "0x" + hex, alone on its line or after
//      "+GTFCCLOCKGEN: " (both scripts just look for 0x[0-9a-fA-F]+).
//   2. response = the first 4 bytes, big-endian, of SHA-256 over 8 bytes: the challenge as 4 bytes
//      big-endian (printf '%08x': a short challenge is zero-padded), then the 4-byte vendor hash.
//   3. AT+GTFCCLOCKVER=<response in unsigned decimal> (values >= 2^31 occur: never print as int32).
//   4. Success is a "+GTFCCLOCKVER:" line whose number is 1.
// The vendor hash is the first 4 bytes of SHA-256 of the OEM's model-id string (Lenovo
// "KHOIHGIUCCHHII" -> 3df8c719, Dell DW5931e "DW5931EFCCLOCK" -> 4909b5a4).
//
// SHA-256 comes from nettle (Debian nettle-dev), not from code of our own.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "control/at_channel.hpp"

namespace wwan::control::fcc {

inline constexpr std::uint32_t kFm350VendorHashLenovo = 0x3df8c719;  // sha256("KHOIHGIUCCHHII")[0:4]
inline constexpr std::uint32_t kFm350VendorHashDell = 0x4909b5a4;    // sha256("DW5931EFCCLOCK")[0:4]

inline constexpr std::string_view kGtFccLockGen = "AT+GTFCCLOCKGEN";
inline constexpr std::string_view kGtFccEffStatusQuery = "AT+GTFCCEFFSTATUS?";

// The first 4 bytes (big-endian) of SHA-256 over `bytes`.
std::uint32_t sha256_prefix32(std::string_view bytes);
// The vendor hash of an OEM model-id string.
std::uint32_t fm350_vendor_hash(std::string_view model_id);

// The challenge in an AT+GTFCCLOCKGEN answer: the first "0x" followed by 1 to 8 hex digits.
// nullopt when there is none or it has more than 8 digits (does not fit the 4 bytes hashed).
std::optional<std::uint32_t> parse_gtfcclockgen(std::string_view response);

// Step 2 of the algorithm.
std::uint32_t fm350_unlock_response(std::uint32_t challenge, std::uint32_t vendor_hash);
// "AT+GTFCCLOCKVER=<decimal>".
std::string gtfcclockver_command(std::uint32_t challenge, std::uint32_t vendor_hash);
// True when the answer holds a "+GTFCCLOCKVER:" line whose value is 1.
bool gtfcclockver_accepted(std::string_view response);

// AT+GTFCCEFFSTATUS? (Fibocom's GET_FCCLOCK_STATUS; mrhaav's script reads "<mode>,<status>" out of
// the answer's digits): mode 0 = not locked, 1 = one-time lock, 2 = power-up lock. What `status`
// means no source says; it is kept, not interpreted. nullopt when no "<n>,<n>" is in the answer.
struct FccLockStatus {
  unsigned mode = 0;
  unsigned status = 0;
};
std::optional<FccLockStatus> parse_gtfcceffstatus(std::string_view response);
// The vendor hash a `--vendor-hash` value names: "lenovo", "dell", or 8 hex digits.
std::optional<std::uint32_t> parse_vendor_hash(std::string_view text);

// ---- the executor --------------------------------------------------------------------------------
// One command at a time over an at::AtChannel (echo, URCs and timeouts handled there):
//   AT+GTFCCEFFSTATUS?      mode 0: nothing to unlock (straight to the radio check); 1 or 2, or
//                           ERROR (firmware without the query, as ModemManager's script assumes
//                           nothing): unlock. No answer at all: failed, the port is not an AT port.
//   AT+GTFCCLOCKGEN         the challenge; ERROR: failed (no FCC lock commands: not an FM350?)
//   AT+GTFCCLOCKVER=<n>     accepted: unlocked. Rejected ("+GTFCCLOCKVER: 0" or ERROR): a fresh
//                           challenge after retry_interval, up to `attempts` rounds (ModemManager
//                           tries 9 times, 0.5 s apart), then failed naming the vendor hash used.
//   AT+CFUN=1               (turn_radio_on) proves it: a locked FM350 refuses the radio.
// Never sent: AT+GTFCCLOCKMODE=0, which would make the unlock permanent (mrhaav does it after a
// power-up lock). Lifting the lock for good is the owner's decision, not a driver's.
struct Fm350UnlockOptions {
  std::uint32_t vendor_hash = kFm350VendorHashLenovo;
  unsigned attempts = 3;
  std::chrono::milliseconds retry_interval{500};
  std::chrono::milliseconds command_timeout{5000};
  bool turn_radio_on = true;
  at::AtChannelOptions channel;
};

enum class Fm350UnlockState : std::uint8_t {
  idle, querying, challenging, verifying, waiting_retry, radio_on, done, failed,
};
const char* to_string(Fm350UnlockState s);

class Fm350FccUnlock {
 public:
  explicit Fm350FccUnlock(Fm350UnlockOptions options = {});

  void start(at::Clock::time_point now);
  // Bytes from the AT port (any split).
  void on_response(std::span<const std::uint8_t> bytes, at::Clock::time_point now);
  void on_timer(at::Clock::time_point now);
  std::optional<at::Clock::time_point> next_timer() const;
  // Command lines to write to the AT port now ("AT+GTFCCLOCKGEN\r").
  std::vector<std::vector<std::uint8_t>> take_commands() { return channel_.take_output(); }

  Fm350UnlockState state() const { return state_; }
  bool finished() const { return state_ == Fm350UnlockState::done || state_ == Fm350UnlockState::failed; }
  const std::string& error() const { return error_; }      // one line, for failed
  std::optional<FccLockStatus> lock_status() const { return lock_status_; }
  bool unlocked_by_us() const { return unlocked_; }         // AT+GTFCCLOCKVER said 1
  bool radio_on() const { return radio_on_; }               // AT+CFUN=1 said OK
  unsigned rounds() const { return rounds_; }               // challenge/response rounds used
  const at::AtChannel& channel() const { return channel_; }

 private:
  enum class Step : std::uint8_t { status, gen, ver, cfun };
  void submit(Step step, std::string command, at::Clock::time_point now, std::uint8_t retries);
  void handle(std::vector<at::AtEvent> events, at::Clock::time_point now);
  void on_result(Step step, const at::AtResponse& r, at::Clock::time_point now);
  void challenge(at::Clock::time_point now);
  void after_unlock(at::Clock::time_point now);
  void fail(std::string why);

  Fm350UnlockOptions options_;
  at::AtChannel channel_;
  Fm350UnlockState state_ = Fm350UnlockState::idle;
  std::deque<std::pair<at::CommandId, Step>> pending_;
  std::optional<at::Clock::time_point> retry_at_;
  std::optional<FccLockStatus> lock_status_;
  std::string error_;
  std::string last_rejection_;
  unsigned rounds_ = 0;
  bool unlocked_ = false;
  bool radio_on_ = false;
};

}  // namespace wwan::control::fcc
