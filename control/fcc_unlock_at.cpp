#include "control/fcc_unlock_at.hpp"

#include <nettle/sha2.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstddef>
#include <cstdio>

namespace wwan::control::fcc {
namespace {

bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

std::uint32_t digest_prefix32(const std::uint8_t* data, std::size_t length) {
  sha256_ctx ctx;
  sha256_init(&ctx);
  sha256_update(&ctx, length, data);
  std::array<std::uint8_t, SHA256_DIGEST_SIZE> digest{};
  sha256_digest(&ctx, digest.size(), digest.data());
  return std::uint32_t{digest[0]} << 24 | std::uint32_t{digest[1]} << 16 | std::uint32_t{digest[2]} << 8 |
         std::uint32_t{digest[3]};
}

}  // namespace

std::uint32_t sha256_prefix32(std::string_view bytes) {
  return digest_prefix32(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
}

std::uint32_t fm350_vendor_hash(std::string_view model_id) { return sha256_prefix32(model_id); }

std::optional<std::uint32_t> parse_gtfcclockgen(std::string_view response) {
  for (std::size_t i = 0; i + 2 < response.size(); ++i) {
    if (response[i] != '0' || (response[i + 1] != 'x' && response[i + 1] != 'X') || !is_hex(response[i + 2])) continue;
    std::size_t end = i + 2;
    while (end < response.size() && is_hex(response[end])) ++end;
    if (end - (i + 2) > 8) return std::nullopt;
    std::uint32_t v = 0;
    std::from_chars(response.data() + i + 2, response.data() + end, v, 16);
    return v;
  }
  return std::nullopt;
}

std::uint32_t fm350_unlock_response(std::uint32_t challenge, std::uint32_t vendor_hash) {
  const std::array<std::uint8_t, 8> input = {
      static_cast<std::uint8_t>(challenge >> 24),   static_cast<std::uint8_t>(challenge >> 16),
      static_cast<std::uint8_t>(challenge >> 8),    static_cast<std::uint8_t>(challenge),
      static_cast<std::uint8_t>(vendor_hash >> 24), static_cast<std::uint8_t>(vendor_hash >> 16),
      static_cast<std::uint8_t>(vendor_hash >> 8),  static_cast<std::uint8_t>(vendor_hash),
  };
  return digest_prefix32(input.data(), input.size());
}

std::string gtfcclockver_command(std::uint32_t challenge, std::uint32_t vendor_hash) {
  return "AT+GTFCCLOCKVER=" + std::to_string(fm350_unlock_response(challenge, vendor_hash));
}

bool gtfcclockver_accepted(std::string_view response) {
  constexpr std::string_view kPrefix = "+GTFCCLOCKVER:";
  std::size_t at = 0;
  while ((at = response.find(kPrefix, at)) != std::string_view::npos) {
    // Only at a line start, as ModemManager's grep '^+GTFCCLOCKVER:'.
    if (at == 0 || response[at - 1] == '\n' || response[at - 1] == '\r') {
      std::string_view v = response.substr(at + kPrefix.size());
      v = v.substr(0, v.find_first_of("\r\n"));
      while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
      while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
      return v == "1";
    }
    at += kPrefix.size();
  }
  return false;
}

std::optional<FccLockStatus> parse_gtfcceffstatus(std::string_view response) {
  // The first "<digits>,<digits>" anywhere (the script's grep -o '[0-9,]\+'): a prefix such as
  // "+GTFCCEFFSTATUS: " may or may not be there.
  for (std::size_t i = 0; i < response.size(); ++i) {
    if (response[i] < '0' || response[i] > '9' || (i > 0 && response[i - 1] >= '0' && response[i - 1] <= '9')) continue;
    unsigned mode = 0, status = 0;
    const char* end = response.data() + response.size();
    const auto [p1, e1] = std::from_chars(response.data() + i, end, mode);
    if (e1 != std::errc() || p1 == end || *p1 != ',') continue;
    const auto [p2, e2] = std::from_chars(p1 + 1, end, status);
    if (e2 != std::errc() || p2 == p1 + 1) continue;
    return FccLockStatus{mode, status};
  }
  return std::nullopt;
}

std::optional<std::uint32_t> parse_vendor_hash(std::string_view text) {
  if (text == "lenovo") return kFm350VendorHashLenovo;
  if (text == "dell") return kFm350VendorHashDell;
  if (text.size() != 8 || !std::all_of(text.begin(), text.end(), is_hex)) return std::nullopt;
  std::uint32_t v = 0;
  std::from_chars(text.data(), text.data() + text.size(), v, 16);
  return v;
}

// ---- the executor ------------------------------------------------------------------------------

const char* to_string(Fm350UnlockState s) {
  switch (s) {
    case Fm350UnlockState::idle: return "idle";
    case Fm350UnlockState::querying: return "querying";
    case Fm350UnlockState::challenging: return "challenging";
    case Fm350UnlockState::verifying: return "verifying";
    case Fm350UnlockState::waiting_retry: return "waiting_retry";
    case Fm350UnlockState::radio_on: return "radio_on";
    case Fm350UnlockState::done: return "done";
    case Fm350UnlockState::failed: return "failed";
  }
  return "?";
}

namespace {

std::string join(const std::vector<std::string>& lines) {
  std::string s;
  for (const std::string& l : lines) s += (s.empty() ? "" : " ") + l;
  return s;
}

// "ERROR", "+CME ERROR: 3", "no answer (timeout)"
std::string outcome(const at::AtResponse& r) {
  if (r.result == at::FinalResult::timeout) return "no answer (timeout)";
  if (r.result == at::FinalResult::cancelled) return "cancelled";
  return r.final_line;
}

std::string hash_text(std::uint32_t v) {
  std::array<char, 9> b{};
  std::snprintf(b.data(), b.size(), "%08x", v);
  return b.data();
}

}  // namespace

Fm350FccUnlock::Fm350FccUnlock(Fm350UnlockOptions options)
    : options_(options), channel_(options_.channel) {
  options_.attempts = std::max(options_.attempts, 1u);
}

void Fm350FccUnlock::submit(Step step, std::string command, at::Clock::time_point now, std::uint8_t retries) {
  const std::optional<at::CommandId> id = channel_.submit(std::move(command), now, options_.command_timeout, retries);
  if (id) pending_.emplace_back(*id, step);
}

void Fm350FccUnlock::start(at::Clock::time_point now) {
  if (state_ != Fm350UnlockState::idle) return;
  state_ = Fm350UnlockState::querying;
  submit(Step::status, std::string(kGtFccEffStatusQuery), now, 1);
}

void Fm350FccUnlock::on_response(std::span<const std::uint8_t> bytes, at::Clock::time_point now) {
  handle(channel_.feed(bytes, now), now);
}

void Fm350FccUnlock::on_timer(at::Clock::time_point now) {
  handle(channel_.on_timer(now), now);
  if (retry_at_ && now >= *retry_at_ && state_ == Fm350UnlockState::waiting_retry) {
    retry_at_.reset();
    challenge(now);
  }
}

std::optional<at::Clock::time_point> Fm350FccUnlock::next_timer() const {
  std::optional<at::Clock::time_point> t = channel_.next_timer();
  if (retry_at_ && (!t || *retry_at_ < *t)) t = retry_at_;
  return t;
}

void Fm350FccUnlock::handle(std::vector<at::AtEvent> events, at::Clock::time_point now) {
  for (const at::AtEvent& e : events) {
    if (e.kind != at::AtEventKind::final_result || !e.response) continue;  // URCs: nothing to do here
    const auto it = std::find_if(pending_.begin(), pending_.end(), [&](const auto& p) { return p.first == e.response->id; });
    if (it == pending_.end()) continue;
    const Step step = it->second;
    pending_.erase(it);
    if (!finished()) on_result(step, *e.response, now);
  }
}

void Fm350FccUnlock::on_result(Step step, const at::AtResponse& r, at::Clock::time_point now) {
  switch (step) {
    case Step::status:
      if (r.result == at::FinalResult::timeout)
        return fail("the AT port does not answer (" + std::string(kGtFccEffStatusQuery) + ": no answer)");
      if (r.ok()) lock_status_ = parse_gtfcceffstatus(join(r.lines));
      if (lock_status_ && lock_status_->mode == 0) return after_unlock(now);  // not locked
      return challenge(now);
    case Step::gen: {
      if (!r.ok())
        return fail(std::string(kGtFccLockGen) + " failed: " + outcome(r) +
                    " (this firmware has no FCC lock commands: is it an FM350-GL?)");
      const std::optional<std::uint32_t> c = parse_gtfcclockgen(join(r.lines));
      if (!c) return fail(std::string(kGtFccLockGen) + " gave no 0x challenge: '" + join(r.lines) + "'");
      state_ = Fm350UnlockState::verifying;
      submit(Step::ver, gtfcclockver_command(*c, options_.vendor_hash), now, 0);  // one answer per challenge
      return;
    }
    case Step::ver: {
      std::string text;
      for (const std::string& l : r.lines) text += l + "\r\n";
      if (r.ok() && gtfcclockver_accepted(text)) {
        unlocked_ = true;
        return after_unlock(now);
      }
      last_rejection_ = r.ok() ? join(r.lines) : outcome(r);
      if (rounds_ < options_.attempts) {
        state_ = Fm350UnlockState::waiting_retry;
        retry_at_ = now + options_.retry_interval;
        return;
      }
      return fail("the modem rejected the FCC unlock response " + std::to_string(rounds_) + " times (" +
                  last_rejection_ + "): its key is not vendor hash " + hash_text(options_.vendor_hash) +
                  "; try --vendor-hash dell, lenovo or the OEM's 8 hex digits");
    }
    case Step::cfun:
      if (!r.ok())
        return fail(std::string(unlocked_ ? "the unlock was accepted but " : "") + "AT+CFUN=1 failed: " + outcome(r) +
                    " (the radio is still refused)");
      radio_on_ = true;
      state_ = Fm350UnlockState::done;
      return;
  }
}

void Fm350FccUnlock::challenge(at::Clock::time_point now) {
  ++rounds_;
  state_ = Fm350UnlockState::challenging;
  submit(Step::gen, std::string(kGtFccLockGen), now, 1);
}

void Fm350FccUnlock::after_unlock(at::Clock::time_point now) {
  if (!options_.turn_radio_on) {
    state_ = Fm350UnlockState::done;
    return;
  }
  state_ = Fm350UnlockState::radio_on;
  submit(Step::cfun, "AT+CFUN=1", now, 0);
}

void Fm350FccUnlock::fail(std::string why) {
  (void)channel_.cancel_all();
  pending_.clear();
  retry_at_.reset();
  error_ = std::move(why);
  state_ = Fm350UnlockState::failed;
}

}  // namespace wwan::control::fcc
