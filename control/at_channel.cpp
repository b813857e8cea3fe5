#include "control/at_channel.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <utility>

#include "control/at_text.hpp"

namespace wwan::control::at {
namespace {

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Prefixes of lines the modem sends on its own. Huawei's come from ModemManager's Huawei plugin
// regexes (vectors §J); the 3GPP ones are TS 27.007's registration / indication URCs and those of
// §K2's examples (+CMTI, +CIEV, +CRING, +CLIP). +CPIN: is here because several firmwares announce
// "+CPIN: READY" by themselves after boot.
constexpr std::array<std::string_view, 46> kUnsolicitedPrefixes = {
    "^RSSI:", "^RSSILVL:", "^HRSSILVL:", "^MODE:", "^DSFLOWRPT:", "^NDISSTAT:", "^ORIG:", "^CONF:",
    "^CONN:", "^CEND:", "^DDTMF:", "^BOOT:", "^CONNECT", "^CSNR:", "+CUSATP:", "+CUSATEND",
    "^DSDORMANT:", "^SIMST:", "^SRVST:", "^STIN:", "^HCSQ:", "^PDPDEACT:", "^NDISEND:", "^RFSWITCH:",
    "^POSITION:", "^POSEND:", "^ECCLIST:", "^LTERSRP:", "^CSCHANNELINFO:", "^NWTIME:", "^TIME:",
    "+CREG:", "+CGREG:", "+CEREG:", "+C5GREG:", "+CMTI:", "+CIEV:", "+CRING:", "+CLIP:", "+CGEV:",
    "+CUSD:", "+CPIN:", "^SYSSTART", "RING", "+PACSP", "^EONS:",
};

}  // namespace

const char* to_string(FinalResult r) {
  switch (r) {
    case FinalResult::ok: return "OK";
    case FinalResult::error: return "ERROR";
    case FinalResult::cme_error: return "+CME ERROR";
    case FinalResult::cms_error: return "+CMS ERROR";
    case FinalResult::no_carrier: return "NO CARRIER";
    case FinalResult::busy: return "BUSY";
    case FinalResult::no_answer: return "NO ANSWER";
    case FinalResult::no_dialtone: return "NO DIALTONE";
    case FinalResult::modem_error: return "MODEM ERROR";
    case FinalResult::command_not_support: return "COMMAND NOT SUPPORT";
    case FinalResult::too_many_parameters: return "TOO MANY PARAMETERS";
    case FinalResult::timeout: return "timeout";
    case FinalResult::cancelled: return "cancelled";
  }
  return "?";
}

std::optional<FinalResult> classify_final_result(std::string_view line) {
  // Leading blanks are not part of a result code; trailing ones matter only for §K2's
  // "+CME ERROR: " (a space after the colon makes it final, nothing after it does not).
  while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
  const std::string_view word = trim_blanks(line);
  if (word == "OK") return FinalResult::ok;
  if (word == "ERROR") return FinalResult::error;
  if (word == "NO CARRIER") return FinalResult::no_carrier;
  if (word == "BUSY") return FinalResult::busy;
  if (word == "NO ANSWER") return FinalResult::no_answer;
  if (word == "NO DIALTONE") return FinalResult::no_dialtone;
  if (word == "COMMAND NOT SUPPORT") return FinalResult::command_not_support;
  if (word == "TOO MANY PARAMETERS") return FinalResult::too_many_parameters;
  constexpr std::string_view kCme = "+CME ERROR:", kCms = "+CMS ERROR:", kModem = "MODEM ERROR:";
  if (line.size() > kCme.size() && line.substr(0, kCme.size()) == kCme) return FinalResult::cme_error;
  if (line.size() > kCms.size() && line.substr(0, kCms.size()) == kCms) return FinalResult::cms_error;
  if (line.substr(0, kModem.size()) == kModem && all_digits(trim_blanks(line.substr(std::min(line.size(), kModem.size())))))
    return FinalResult::modem_error;
  return std::nullopt;
}

std::optional<std::uint16_t> error_code(std::string_view final_line) {
  const std::size_t colon = final_line.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  const std::string_view digits = trim_blanks(final_line.substr(colon + 1));
  std::uint16_t v = 0;
  const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (ec != std::errc() || ptr != digits.data() + digits.size() || digits.empty()) return std::nullopt;
  return v;
}

bool has_unsolicited_prefix(std::string_view line) {
  line = trim_blanks(line);
  return std::any_of(kUnsolicitedPrefixes.begin(), kUnsolicitedPrefixes.end(),
                     [&](std::string_view p) { return starts_with_nocase(line, p); });
}

AtChannel::AtChannel(AtChannelOptions options) : options_(options) {
  options_.max_line_bytes = std::max<std::size_t>(options_.max_line_bytes, 16);
}

std::optional<CommandId> AtChannel::submit(std::string command, Clock::time_point now,
                                           std::chrono::milliseconds timeout, std::uint8_t retries) {
  // A CR or LF inside would end the command early and start another one: a builder bug or an
  // injection attempt through a user-supplied string. Neither is sent.
  const bool bad = command.empty() || command.size() > options_.max_line_bytes ||
                   command.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos;
  if (bad || queue_.size() >= options_.max_queued_commands) {
    ++counters_.commands_rejected;
    return std::nullopt;
  }
  Pending p;
  p.id = next_id_++;
  if (next_id_ == 0) next_id_ = 1;
  p.command = std::move(command);
  p.timeout = timeout.count() > 0 ? timeout : options_.default_timeout;
  p.retries_left = retries;
  const CommandId id = p.id;
  queue_.push_back(std::move(p));
  if (!in_flight_) start_next(now);
  return id;
}

std::optional<CommandId> AtChannel::in_flight() const {
  if (!in_flight_) return std::nullopt;
  return in_flight_->id;
}

std::vector<std::vector<std::uint8_t>> AtChannel::take_output() { return std::exchange(output_, {}); }

void AtChannel::start_next(Clock::time_point now) {
  if (in_flight_ || queue_.empty()) return;
  in_flight_ = std::move(queue_.front());
  queue_.pop_front();
  send(*in_flight_, now);
}

void AtChannel::send(Pending& p, Clock::time_point now) {
  std::vector<std::uint8_t> bytes(p.command.begin(), p.command.end());
  bytes.push_back('\r');  // V.250 §5.2.1: S3, carriage return, ends the command line
  output_.push_back(std::move(bytes));
  p.deadline = now + p.timeout;
  p.lines.clear();
  ++counters_.commands_sent;
  // §K1: only a response that starts at a line boundary can start with the echo.
  expect_echo_ = line_.empty() && !discarding_;
  in_echo_ = false;
}

std::vector<AtEvent> AtChannel::feed(std::string_view text, Clock::time_point now) {
  return feed(std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()), now);
}

std::vector<AtEvent> AtChannel::feed(std::span<const std::uint8_t> bytes, Clock::time_point now) {
  std::vector<AtEvent> events;
  for (const std::uint8_t b : bytes) {
    if (b == 0) {  // GET_ENCAPSULATED_RESPONSE buffers padded with NULs
      ++counters_.nul_bytes;
      continue;
    }
    const bool line_end = b == '\r' || b == '\n';
    if (expect_echo_) {
      expect_echo_ = false;
      in_echo_ = !line_end;
    }
    if (line_end) {
      end_line(events);
      continue;
    }
    if (discarding_) continue;
    if (line_.size() >= options_.max_line_bytes) {
      ++counters_.lines_too_long;
      discarding_ = true;
      continue;
    }
    line_.push_back(static_cast<char>(b));
  }
  // Released only now: whatever followed a final result in this chunk was sent by the modem
  // before it could have seen the next command.
  start_next(now);
  return events;
}

void AtChannel::end_line(std::vector<AtEvent>& events) {
  discarding_ = false;
  if (line_.empty()) return;
  std::string line = std::exchange(line_, {});
  const bool echo = std::exchange(in_echo_, false);
  ++counters_.lines;
  if (echo && in_flight_) {
    ++counters_.echo_lines;
    events.push_back({AtEventKind::echo, std::move(line), std::nullopt});
    return;
  }
  classify(std::move(line), events);
}

bool AtChannel::is_echo(std::string_view line) const {
  return in_flight_ && in_flight_->lines.empty() && equals_nocase(trim_blanks(line), trim_blanks(in_flight_->command));
}

// The command in flight asks for this prefix: "+CREG: 0,1" answers AT+CREG?, "^NDISSTAT: 1,,,IPV4"
// answers AT^NDISSTATQRY? on old firmware (vectors §B accepts both prefixes for the query).
bool AtChannel::owned_by_in_flight(std::string_view line) const {
  if (!in_flight_) return false;
  line = trim_blanks(line);
  const std::string_view name = line.substr(0, line.find(':'));
  std::string_view command = trim_blanks(in_flight_->command);
  if (starts_with_nocase(command, "AT")) command.remove_prefix(2);
  return !name.empty() && starts_with_nocase(command, name);
}

void AtChannel::classify(std::string line, std::vector<AtEvent>& events) {
  if (!in_flight_) {
    if (classify_final_result(line)) ++counters_.stray_final_results;
    ++counters_.unsolicited_lines;
    events.push_back({AtEventKind::unsolicited, std::move(line), std::nullopt});
    return;
  }
  if (is_echo(line)) {
    ++counters_.echo_lines;
    events.push_back({AtEventKind::echo, std::move(line), std::nullopt});
    return;
  }
  if (const std::optional<FinalResult> r = classify_final_result(line)) {
    events.push_back(complete(*r, std::move(line)));
    return;
  }
  if (has_unsolicited_prefix(line) && !owned_by_in_flight(line)) {
    ++counters_.unsolicited_lines;
    events.push_back({AtEventKind::unsolicited, std::move(line), std::nullopt});
    return;
  }
  if (in_flight_->lines.size() >= options_.max_information_lines) {
    ++counters_.information_lines_dropped;
    return;
  }
  in_flight_->lines.push_back(line);
  events.push_back({AtEventKind::information, std::move(line), std::nullopt});
}

AtEvent AtChannel::complete(FinalResult result, std::string final_line) {
  AtResponse r;
  r.id = in_flight_->id;
  r.command = std::move(in_flight_->command);
  r.result = result;
  r.lines = std::move(in_flight_->lines);
  if (result == FinalResult::cme_error || result == FinalResult::cms_error || result == FinalResult::modem_error)
    r.error_code = error_code(final_line);
  r.final_line = final_line;
  in_flight_.reset();
  expect_echo_ = in_echo_ = false;
  return {AtEventKind::final_result, std::move(final_line), std::move(r)};
}

std::vector<AtEvent> AtChannel::on_timer(Clock::time_point now) {
  std::vector<AtEvent> events;
  if (in_flight_ && now >= in_flight_->deadline) {
    if (in_flight_->retries_left > 0) {
      --in_flight_->retries_left;
      ++counters_.retries;
      send(*in_flight_, now);
    } else {
      ++counters_.timeouts;
      events.push_back(complete(FinalResult::timeout, {}));
    }
  }
  start_next(now);
  return events;
}

std::optional<Clock::time_point> AtChannel::next_timer() const {
  if (!in_flight_) return std::nullopt;
  return in_flight_->deadline;
}

std::vector<AtEvent> AtChannel::cancel_queued() {
  std::vector<AtEvent> events;
  std::optional<Pending> current = std::exchange(in_flight_, std::nullopt);
  const bool expect_echo = expect_echo_, in_echo = in_echo_;  // complete() resets them
  while (!queue_.empty()) {
    in_flight_ = std::move(queue_.front());
    queue_.pop_front();
    events.push_back(complete(FinalResult::cancelled, {}));
  }
  in_flight_ = std::move(current);
  expect_echo_ = expect_echo;
  in_echo_ = in_echo;
  return events;
}

std::vector<AtEvent> AtChannel::cancel_all() {
  std::vector<AtEvent> events;
  if (in_flight_) events.push_back(complete(FinalResult::cancelled, {}));
  while (!queue_.empty()) {
    in_flight_ = std::move(queue_.front());
    queue_.pop_front();
    events.push_back(complete(FinalResult::cancelled, {}));
  }
  output_.clear();
  line_.clear();
  discarding_ = expect_echo_ = in_echo_ = false;
  return events;
}

}  // namespace wwan::control::at
