// AT command framing over a byte stream: the host side of a V.250 command channel, as Huawei
// modems carry it over CDC encapsulated commands (GET_ENCAPSULATED_RESPONSE chunks) or a tty.
//
// Bytes in (chunks split anywhere, NUL padding tolerated), events out:
//   echo          the modem repeating the command it is executing (ATE1, the V.250 default)
//   information   a line belonging to the command in flight ("+CPIN: READY", "^DHCP: ...")
//   final_result  the command's end: OK, ERROR, +CME ERROR: <n>, +CMS ERROR: <n>, NO CARRIER, BUSY,
//                 NO ANSWER, NO DIALTONE, MODEM ERROR: <n>, and Huawei's COMMAND NOT SUPPORT /
//                 TOO MANY PARAMETERS; it carries the whole response (AtResponse)
//   unsolicited   a line nobody asked for (^NDISSTAT, ^RSSI, ^BOOT, +CREG, ...), anywhere in the
//                 stream, even between a command's echo and its final result
// plus a command queue with one command in flight, a per-command timeout and retries. Pure: no
// I/O, no clock; the caller passes `now` and sends what take_output() returns.
//
// The rules and where they come from (reference/vectors/modemmanager_huawei_at.md):
//   - Echo (§K1, ModemManager's mm_serial_parser_v1_remove_echo): when the first bytes after a
//     command was sent do not start with CR/LF, everything up to the first line end is the echo.
//     Besides that positional rule, a line equal to the command text (ignoring case) before the
//     final result is the echo too: a URC may come before it (§J: URCs arrive "interleaved with
//     command responses"), and then the echo is no longer first.
//   - Final results (§K2): "+CME ERROR:" and "+CMS ERROR:" count only with something after the
//     colon (a space will do); "MODEM ERROR:" only with a number; COMMAND NOT SUPPORT, NO CARRIER,
//     BUSY, NO ANSWER, NO DIALTONE are errors; "UNKNOWN COMMAND" is not a final result. Lines
//     after a final result in the same chunk (OK then +CMTI, ERROR then junk) are unsolicited:
//     the next command is only released after the whole chunk was read, so they cannot be
//     mistaken for its answer.
//   - Unsolicited (§J, ModemManager's Huawei URC regexes, and the 3GPP registration URCs): a line
//     with a known URC prefix is unsolicited even while a command is in flight, unless the
//     command in flight is the one that asks for that prefix (AT+CREG? is answered by "+CREG: ...",
//     AT^NDISSTATQRY? by "^NDISSTATQRY:" or, on old firmware, "^NDISSTAT:").
//
// Untrusted input, bounded memory: a line longer than max_line_bytes is cut off and the rest of
// it discarded (counted); a response keeps at most max_information_lines lines (the rest counted);
// the queue holds at most max_queued_commands. A modem spewing garbage costs counters, never memory.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace wwan::control::at {

using Clock = std::chrono::steady_clock;

// How a command ended. `timeout` is not on the wire: no final result came within the timeout,
// after every retry.
enum class FinalResult : std::uint8_t {
  ok,
  error,                // ERROR
  cme_error,            // +CME ERROR: <n|text> (3GPP TS 27.007 §9.2)
  cms_error,            // +CMS ERROR: <n|text> (3GPP TS 27.005 §3.2.5)
  no_carrier,           // NO CARRIER
  busy,                 // BUSY
  no_answer,            // NO ANSWER
  no_dialtone,          // NO DIALTONE
  modem_error,          // MODEM ERROR: <n>
  command_not_support,  // COMMAND NOT SUPPORT (Huawei)
  too_many_parameters,  // TOO MANY PARAMETERS (Huawei)
  timeout,
  cancelled,            // cancel_all() ended it before a final result came
};
const char* to_string(FinalResult r);

// Classifies one line (without CR/LF) as a final result code, §K2's rules. nullopt: not one.
std::optional<FinalResult> classify_final_result(std::string_view line);
// The numeric code of "+CME ERROR: 16" / "+CMS ERROR: 321" / "MODEM ERROR: 5"; nullopt for a text
// form ("+CME ERROR: SIM PIN required" under AT+CMEE=2) or anything else.
std::optional<std::uint16_t> error_code(std::string_view final_line);
// True for a line starting with a URC prefix this channel knows (§J and 3GPP registration URCs).
bool has_unsolicited_prefix(std::string_view line);

using CommandId = std::uint32_t;

struct AtResponse {
  CommandId id = 0;
  std::string command;                  // as submitted, without the trailing CR
  FinalResult result = FinalResult::timeout;
  std::string final_line;               // "OK", "+CME ERROR: 16"; empty for timeout / cancelled
  std::optional<std::uint16_t> error_code;  // numeric +CME / +CMS / MODEM ERROR code
  std::vector<std::string> lines;       // information lines, in order, without CR/LF
  bool ok() const { return result == FinalResult::ok; }
};

enum class AtEventKind : std::uint8_t { echo, information, final_result, unsolicited };

struct AtEvent {
  AtEventKind kind = AtEventKind::unsolicited;
  std::string line;                   // the line (echo / information / unsolicited / final)
  std::optional<AtResponse> response; // final_result only (also for timeout and cancelled)
};

struct AtChannelOptions {
  std::size_t max_line_bytes = 1024;        // longest line kept; ^SYSCFGEX=? answers are ~300
  std::size_t max_information_lines = 64;   // per response
  std::size_t max_queued_commands = 16;     // waiting behind the one in flight
  std::chrono::milliseconds default_timeout{10000};
};

struct AtChannelCounters {
  std::uint64_t commands_sent = 0;        // including retries
  std::uint64_t retries = 0;
  std::uint64_t timeouts = 0;             // commands that ended in FinalResult::timeout
  std::uint64_t commands_rejected = 0;    // submit() with the queue full
  std::uint64_t lines = 0;                // complete non-empty lines received
  std::uint64_t echo_lines = 0;
  std::uint64_t unsolicited_lines = 0;
  std::uint64_t stray_final_results = 0;  // OK / ERROR ... with no command in flight
  std::uint64_t lines_too_long = 0;       // cut at max_line_bytes
  std::uint64_t information_lines_dropped = 0;  // beyond max_information_lines
  std::uint64_t nul_bytes = 0;            // padding skipped
};

class AtChannel {
 public:
  explicit AtChannel(AtChannelOptions options = {});

  // Queues a command ("AT+CPIN?"; the channel appends the CR). It is sent when nothing else is in
  // flight, and resent up to `retries` times when no final result comes within `timeout`
  // (0 = options.default_timeout). Only idempotent commands should get retries: a resent
  // AT+CPIN="..." may burn a PIN attempt. nullopt when the queue is full (counted).
  std::optional<CommandId> submit(std::string command, Clock::time_point now,
                                  std::chrono::milliseconds timeout = std::chrono::milliseconds{0},
                                  std::uint8_t retries = 0);

  // Bytes to write now, one element per command ("AT+CPIN?\r"), oldest first.
  std::vector<std::vector<std::uint8_t>> take_output();

  // One chunk from the modem (any split, any size). Returns the events it completed, in order.
  std::vector<AtEvent> feed(std::span<const std::uint8_t> bytes, Clock::time_point now);
  std::vector<AtEvent> feed(std::string_view text, Clock::time_point now);

  // Fires timeouts (retry or FinalResult::timeout) due at `now`.
  std::vector<AtEvent> on_timer(Clock::time_point now);
  std::optional<Clock::time_point> next_timer() const;

  // Ends the command in flight and every queued one with FinalResult::cancelled (returned), and
  // forgets a partial line. For stop() and for restarting a channel after the modem reset.
  std::vector<AtEvent> cancel_all();
  // Ends the queued commands (cancelled, returned) but lets the one in flight finish, so that its
  // answer is not taken for the answer of whatever is submitted next.
  std::vector<AtEvent> cancel_queued();

  bool busy() const { return in_flight_.has_value() || !queue_.empty(); }
  std::optional<CommandId> in_flight() const;
  std::size_t partial_line_bytes() const { return line_.size(); }
  const AtChannelCounters& counters() const { return counters_; }

 private:
  struct Pending {
    CommandId id = 0;
    std::string command;
    std::chrono::milliseconds timeout{0};
    std::uint8_t retries_left = 0;
    Clock::time_point deadline{};
    std::vector<std::string> lines;
  };

  void start_next(Clock::time_point now);
  void send(Pending& p, Clock::time_point now);
  void end_line(std::vector<AtEvent>& events);
  void classify(std::string line, std::vector<AtEvent>& events);
  bool is_echo(std::string_view line) const;
  bool owned_by_in_flight(std::string_view line) const;
  AtEvent complete(FinalResult result, std::string final_line);

  AtChannelOptions options_;
  AtChannelCounters counters_;
  std::deque<Pending> queue_;
  std::optional<Pending> in_flight_;
  CommandId next_id_ = 1;
  std::vector<std::vector<std::uint8_t>> output_;

  std::string line_;              // the line being received, at most max_line_bytes
  bool discarding_ = false;       // the current line overflowed: drop bytes to its end
  // Set when a command goes out with no partial line pending: the next byte decides whether the
  // response starts with an echo (§K1's positional rule).
  bool expect_echo_ = false;
  bool in_echo_ = false;          // the current line is that positional echo
};

}  // namespace wwan::control::at
