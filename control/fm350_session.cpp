#include "control/fm350_session.hpp"

#include <algorithm>
#include <charconv>

namespace wwan::control {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
  return s;
}

std::string_view unquote(std::string_view s) {
  s = trim(s);
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
  return s;
}

// The fields after "<prefix>:" split at commas (commas inside quotes kept); nullopt without the prefix.
std::optional<std::vector<std::string_view>> fields_after(std::string_view line, std::string_view prefix) {
  line = trim(line);
  if (line.substr(0, prefix.size()) != prefix) return std::nullopt;
  line.remove_prefix(prefix.size());
  std::vector<std::string_view> out;
  bool quoted = false;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= line.size(); ++i) {
    if (i == line.size() || (line[i] == ',' && !quoted)) {
      out.push_back(trim(line.substr(start, i - start)));
      start = i + 1;
    } else if (line[i] == '"') {
      quoted = !quoted;
    }
  }
  return out;
}

std::optional<int> small_number(std::string_view s) {
  s = trim(s);
  int v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

// Dotted decimal of exactly `count` numbers 0..255 ("a.b.c.d", or the 8-number address-and-mask form).
std::optional<std::vector<std::uint8_t>> dotted(std::string_view s, std::size_t count) {
  std::vector<std::uint8_t> out;
  while (out.size() < count) {
    unsigned v = 0;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p == s.data() || v > 255) return std::nullopt;
    out.push_back(static_cast<std::uint8_t>(v));
    s.remove_prefix(static_cast<std::size_t>(p - s.data()));
    if (out.size() < count) {
      if (s.empty() || s.front() != '.') return std::nullopt;
      s.remove_prefix(1);
    }
  }
  if (!s.empty()) return std::nullopt;
  return out;
}

std::optional<eth::Ipv4Address> ipv4_of(std::string_view s) {
  const auto b = dotted(unquote(s), 4);
  if (!b) return std::nullopt;
  eth::Ipv4Address a;
  std::copy(b->begin(), b->end(), a.bytes.begin());
  return a;
}

bool is_zero(const eth::Ipv4Address& a) { return a.bytes == std::array<std::uint8_t, 4>{}; }

// A contiguous netmask's prefix length; nullopt for a mask with holes.
std::optional<std::uint8_t> prefix_of(const std::uint8_t* mask) {
  std::uint32_t m = std::uint32_t{mask[0]} << 24 | std::uint32_t{mask[1]} << 16 | std::uint32_t{mask[2]} << 8 | mask[3];
  std::uint8_t n = 0;
  while (m & 0x80000000u) {
    ++n;
    m <<= 1;
  }
  if (m != 0) return std::nullopt;
  return n;
}

bool is_deactivation_urc(std::string_view line) {
  // 27.007 §10.1.19: "+CGEV: NW PDN DEACT <cid>", "+CGEV: ME PDN DEACT <cid>", "+CGEV: NW DEACT ...",
  // "+CGEV: ME DEACT ...", and "+CGEV: NW DETACH" (the whole packet domain is gone).
  line = trim(line);
  if (line.substr(0, 6) != "+CGEV:") return false;
  return line.find("DEACT") != std::string_view::npos || line.find("DETACH") != std::string_view::npos;
}

}  // namespace

std::optional<eth::Ipv4Address> parse_cgpaddr(std::string_view line, int cid) {
  const auto f = fields_after(line, "+CGPADDR:");
  if (!f || f->size() < 2 || small_number((*f)[0]) != cid) return std::nullopt;
  const auto a = ipv4_of((*f)[1]);
  if (!a || is_zero(*a)) return std::nullopt;
  return a;
}

std::optional<Cgcontrdp> parse_cgcontrdp(std::string_view line) {
  const auto f = fields_after(line, "+CGCONTRDP:");
  if (!f || f->size() < 4) return std::nullopt;
  Cgcontrdp c;
  const auto cid = small_number((*f)[0]);
  if (!cid) return std::nullopt;
  c.cid = *cid;
  c.apn = std::string(unquote((*f)[2]));
  const std::string_view local = unquote((*f)[3]);
  std::size_t next = 4;  // the field after the address (and mask)
  if (const auto both = dotted(local, 8)) {
    std::copy_n(both->begin(), 4, c.address.bytes.begin());
    c.prefix_length = prefix_of(both->data() + 4);
  } else if (const auto a = ipv4_of(local)) {
    c.address = *a;
    // The older form: the mask as a field of its own (ModemManager's tests show both).
    if (f->size() > 4) {
      if (const auto mask = dotted(unquote((*f)[4]), 4); mask && ((*mask)[0] & 0x80)) {
        c.prefix_length = prefix_of(mask->data());
        next = 5;
      }
    }
  } else {
    return std::nullopt;  // IPv6 (16 numbers) or garbage
  }
  if (f->size() > next)
    if (const auto g = ipv4_of((*f)[next]); g && !is_zero(*g)) c.gateway = *g;
  for (std::size_t i = next + 1; i < f->size() && i <= next + 2; ++i)
    if (const auto d = ipv4_of((*f)[i]); d && !is_zero(*d)) c.dns.push_back(*d);
  return c;
}

const char* to_string(Fm350Session::Step s) {
  using S = Fm350Session::Step;
  switch (s) {
    case S::idle: return "idle";
    case S::unlock: return "unlock";
    case S::radio_on: return "radio_on";
    case S::echo_off: return "echo_off";
    case S::define_context: return "define_context";
    case S::activate: return "activate";
    case S::query_address: return "query_address";
    case S::query_dns: return "query_dns";
    case S::connected: return "connected";
    case S::redial_wait: return "redial_wait";
    case S::deactivate: return "deactivate";
    case S::stopped: return "stopped";
    case S::failed: return "failed";
  }
  return "?";
}

namespace {
fcc::Fm350UnlockOptions unlock_options(const SessionSettings& s, fcc::Fm350UnlockOptions o) {
  o.command_timeout = s.command_timeout;
  o.turn_radio_on = true;
  return o;
}
}  // namespace

Fm350Session::Fm350Session(SessionSettings settings, Fm350SessionOptions options)
    : settings_(std::move(settings)),
      options_(options),
      unlock_(unlock_options(settings_, options_.unlock)),
      commands_(at::AtChannelOptions{.default_timeout = settings_.command_timeout}) {}

void Fm350Session::fail(std::string why) {
  commands_.forget();  // an answer still on its way is moot
  step_ = Step::failed;
  wake_at_.reset();
  status_.state = SessionState::failed;
  status_.error = std::move(why);
}

void Fm350Session::submit(Step step, std::string command, Clock::time_point now, std::uint8_t retries) {
  step_ = step;
  commands_.forget();
  if (!commands_.submit(step, std::move(command), now, std::chrono::milliseconds{0}, retries))
    fail("the AT channel refused a command (queue full)");
}

void Fm350Session::start(Clock::time_point now) {
  status_ = SessionStatus{};
  status_.state = SessionState::starting;
  backoff_ = settings_.redial_initial;
  if (settings_.fcc_unlock) {
    step_ = Step::unlock;
    unlock_.start(now);
    return;
  }
  // No unlock asked for: the radio on by itself. A locked module refuses it (fm350_at.hpp).
  submit(Step::radio_on, "AT+CFUN=1", now);
}

void Fm350Session::after_unlock(Clock::time_point now) { submit(Step::echo_off, "ATE0", now); }

void Fm350Session::activate(Clock::time_point now) {
  status_.state = SessionState::connecting;
  address_polls_ = 0;
  ipv4_ = Ipv4Config{};
  // Not retried on a timeout: a second AT+CGACT=1 while the first is still working is refused by
  // some firmware; the redial back-off covers it.
  submit(Step::activate, "AT+CGACT=1," + std::to_string(options_.cid), now, 0);
}

void Fm350Session::schedule_redial(Clock::time_point now) {
  step_ = Step::redial_wait;
  wake_at_ = now + backoff_;
  backoff_ = std::min(backoff_ * 2, settings_.redial_max);
}

void Fm350Session::connect(Clock::time_point now) {
  (void)now;
  step_ = Step::connected;
  status_.state = SessionState::connected;
  status_.ip = IpConfig{};
  status_.ip.ipv4 = ipv4_;
  status_.error.clear();
  ++status_.connects;
  backoff_ = settings_.redial_initial;
}

void Fm350Session::stop(Clock::time_point now) {
  if (step_ == Step::stopped || step_ == Step::failed || step_ == Step::idle) {
    step_ = Step::stopped;
    status_.state = SessionState::stopped;
    return;
  }
  // The command in flight still finishes on the wire; its answer is forgotten either way.
  commands_.cancel_queued();
  commands_.forget();
  wake_at_.reset();
  status_.state = SessionState::stopping;
  if (step_ == Step::connected || step_ == Step::query_address || step_ == Step::query_dns) {
    step_ = Step::deactivate;
    if (commands_.submit(Step::deactivate, "AT+CGACT=0," + std::to_string(options_.cid), now, std::chrono::seconds(5), 0))
      return;
  }
  step_ = Step::stopped;
  status_.state = SessionState::stopped;
}

void Fm350Session::on_response(std::span<const std::uint8_t> bytes, Clock::time_point now) {
  if (step_ == Step::unlock) {
    unlock_.on_response(bytes, now);
    if (unlock_.state() == fcc::Fm350UnlockState::failed) fail("FCC unlock: " + unlock_.error());
    else if (unlock_.state() == fcc::Fm350UnlockState::done) after_unlock(now);
    return;
  }
  commands_.feed(
      bytes, now, [&](const std::string& line) { on_unsolicited(line, now); },
      [&](Step, const at::AtResponse& r) { on_result(r, now); });
}

void Fm350Session::on_timer(Clock::time_point now) {
  if (step_ == Step::unlock) {
    unlock_.on_timer(now);
    if (unlock_.state() == fcc::Fm350UnlockState::failed) fail("FCC unlock: " + unlock_.error());
    else if (unlock_.state() == fcc::Fm350UnlockState::done) after_unlock(now);
    return;
  }
  commands_.on_timer(
      now, [&](const std::string& line) { on_unsolicited(line, now); },
      [&](Step, const at::AtResponse& r) { on_result(r, now); });
  if (wake_at_ && now >= *wake_at_) {
    wake_at_.reset();
    if (step_ == Step::redial_wait) activate(now);
    else if (step_ == Step::query_address) submit(Step::query_address, "AT+CGPADDR=" + std::to_string(options_.cid), now);
  }
}

std::optional<Clock::time_point> Fm350Session::next_timer() const {
  if (step_ == Step::unlock) return unlock_.next_timer();
  return commands_.next_timer({wake_at_});
}

std::vector<ByteVector> Fm350Session::take_commands() {
  if (step_ == Step::unlock) return unlock_.take_commands();
  return commands_.take_output();
}

void Fm350Session::on_unsolicited(std::string_view line, Clock::time_point now) {
  if (!is_deactivation_urc(line)) return;
  ++counters_.deactivation_urcs;
  if (step_ != Step::connected && step_ != Step::query_address && step_ != Step::query_dns) return;
  const bool was_connected = step_ == Step::connected;
  commands_.cancel_queued();
  commands_.forget();
  status_.state = SessionState::disconnected;
  status_.ip = IpConfig{};
  status_.error = "the network ended the PDP context (" + std::string(trim(line)) + ")";
  if (was_connected) ++status_.drops;
  schedule_redial(now);
}

// The one command awaited was submitted for step_ (submit() and stop() forget any other).
void Fm350Session::on_result(const at::AtResponse& r, Clock::time_point now) {
  const std::string cid = std::to_string(options_.cid);
  switch (step_) {
    case Step::radio_on:
      if (!r.ok()) {
        fail("the FM350 refused to turn its radio on (" + (r.final_line.empty() ? at::to_string(r.result) : r.final_line) +
             "): it is probably FCC-locked; run with --fcc-unlock");
        return;
      }
      submit(Step::echo_off, "ATE0", now);
      return;
    case Step::echo_off: {
      const char* type = settings_.families == IpFamilies::ipv4   ? "IP"
                         : settings_.families == IpFamilies::ipv6 ? "IPV6"
                                                                  : "IPV4V6";
      submit(Step::define_context, "AT+CGDCONT=" + cid + ",\"" + type + "\",\"" + settings_.apn + "\"", now);
      return;
    }
    case Step::define_context:
      // Refused (some firmware will not redefine an active context): the stored one is dialled.
      activate(now);
      return;
    case Step::activate:
      if (r.ok()) {
        ++counters_.activations;
        submit(Step::query_address, "AT+CGPADDR=" + cid, now);
        return;
      }
      ++counters_.activation_refusals;
      if (r.result == at::FinalResult::cme_error && r.error_code == 3) {
        fail("AT+CGACT=1," + cid + " refused (+CME ERROR: 3, operation not allowed): the radio is off; is the FM350 "
             "FCC-locked? (--fcc-unlock)");
        return;
      }
      status_.state = SessionState::disconnected;
      status_.error = "AT+CGACT=1," + cid + ": " + (r.final_line.empty() ? at::to_string(r.result) : r.final_line);
      schedule_redial(now);
      return;
    case Step::query_address: {
      std::optional<eth::Ipv4Address> a;
      for (const std::string& l : r.lines)
        if (!a) a = parse_cgpaddr(l, options_.cid);
      if (!a) {
        ++counters_.address_polls;
        if (++address_polls_ >= kMaxAddressPolls) {
          status_.state = SessionState::disconnected;
          status_.error = "AT+CGPADDR=" + cid + " gave no IPv4 address after " + std::to_string(address_polls_) + " tries";
          schedule_redial(now);
          return;
        }
        wake_at_ = now + kAddressPollInterval;  // on_timer asks again
        return;
      }
      ipv4_.address = *a;
      ipv4_.prefix_length = 32;
      submit(Step::query_dns, "AT+CGCONTRDP=" + cid, now);
      return;
    }
    case Step::query_dns:
      for (const std::string& l : r.lines) {
        const auto c = parse_cgcontrdp(l);
        if (!c || c->cid != options_.cid || c->address.bytes != ipv4_.address.bytes) continue;
        if (c->prefix_length && *c->prefix_length > 0) ipv4_.prefix_length = *c->prefix_length;
        ipv4_.gateway = c->gateway;
        ipv4_.dns = c->dns;
        break;
      }
      connect(now);
      return;
    case Step::deactivate:
      step_ = Step::stopped;
      status_.state = SessionState::stopped;
      return;
    default:
      return;
  }
}

}  // namespace wwan::control
