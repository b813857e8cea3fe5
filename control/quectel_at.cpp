#include "control/quectel_at.hpp"

#include <algorithm>
#include <bit>
#include <cctype>
#include <charconv>
#include <vector>

#include "control/huawei_at.hpp"

namespace wwan::control::quectel {

namespace {

constexpr std::string_view kStatusPrefix = "+QNETDEVSTATUS:";
constexpr std::string_view kCtlPrefix = "+QNETDEVCTL:";
constexpr std::size_t kMaxStatusFields = 12;  // the RM500U line: six IPv4 fields, six IPv6 fields

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

// The text after `prefix` (matched without case), or nullopt.
std::optional<std::string_view> after_prefix(std::string_view line, std::string_view prefix) {
  line = trim(line);
  if (line.size() < prefix.size()) return std::nullopt;
  for (std::size_t i = 0; i < prefix.size(); ++i)
    if (std::toupper(static_cast<unsigned char>(line[i])) != prefix[i]) return std::nullopt;
  return trim(line.substr(prefix.size()));
}

// Fields split at commas, each trimmed and unquoted (firmware may quote addresses). At most
// `max` + 1 are collected, so a line with too many is seen as such without storing them all.
std::vector<std::string_view> fields(std::string_view s, std::size_t max) {
  std::vector<std::string_view> out;
  for (;;) {
    const std::size_t comma = s.find(',');
    std::string_view f = trim(s.substr(0, comma));
    if (f.size() >= 2 && f.front() == '"' && f.back() == '"') f = f.substr(1, f.size() - 2);
    out.push_back(f);
    if (comma == std::string_view::npos || out.size() > max) break;
    s.remove_prefix(comma + 1);
  }
  return out;
}

std::optional<unsigned> small_number(std::string_view s, unsigned max) {
  unsigned v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty() || v > max) return std::nullopt;
  return v;
}

// Dotted quad, each part 0..255.
std::optional<eth::Ipv4Address> dotted(std::string_view s) {
  eth::Ipv4Address a;
  for (std::size_t i = 0; i < 4; ++i) {
    const std::size_t dot = i < 3 ? s.find('.') : s.size();
    if (dot == std::string_view::npos) return std::nullopt;
    const std::optional<unsigned> v = small_number(s.substr(0, dot), 255);
    if (!v || dot > 3) return std::nullopt;
    a.bytes[i] = static_cast<std::uint8_t>(*v);
    s.remove_prefix(std::min(dot + 1, s.size()));
  }
  return a;
}

// Eight hex digits, the least significant byte the first address byte (quectel-CM:
// sscanf("%02X%02X%02X%02X", &addr[3], &addr[2], &addr[1], &addr[0])).
std::optional<eth::Ipv4Address> hex_lsb_first(std::string_view s) {
  if (s.size() != 8) return std::nullopt;
  std::uint32_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 16);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return eth::Ipv4Address{{static_cast<std::uint8_t>(v), static_cast<std::uint8_t>(v >> 8),
                           static_cast<std::uint8_t>(v >> 16), static_cast<std::uint8_t>(v >> 24)}};
}

// An IPv4 field: empty -> nullopt in `out`, true; an address -> set; anything else -> false.
bool ipv4_field(std::string_view s, std::optional<eth::Ipv4Address>& out) {
  out.reset();
  if (s.empty()) return true;
  std::optional<eth::Ipv4Address> a = s.find('.') != std::string_view::npos ? dotted(s) : hex_lsb_first(s);
  if (!a) return false;
  if (*a != eth::Ipv4Address{}) out = a;  // 0.0.0.0: not set
  return true;
}

bool ipv6_field(std::string_view s, std::optional<eth::Ipv6Address>& out) {
  out.reset();
  if (s.empty()) return true;
  std::optional<eth::Ipv6Address> a = huawei::parse_ipv6_text(s);
  if (!a) return false;
  if (*a != eth::Ipv6Address{}) out = a;  // :: : not set
  return true;
}

// A netmask's prefix length when its one bits are contiguous; nullopt otherwise.
template <std::size_t N>
std::optional<std::uint8_t> prefix_of(const std::array<std::uint8_t, N>& mask) {
  std::size_t ones = 0;
  bool zero_seen = false;
  for (const std::uint8_t b : mask) {
    for (int bit = 7; bit >= 0; --bit) {
      const bool one = ((b >> bit) & 1) != 0;
      if (one && zero_seen) return std::nullopt;
      if (one) ++ones;
      else zero_seen = true;
    }
  }
  return static_cast<std::uint8_t>(ones);
}

}  // namespace

namespace {
std::string qnetdevctl(int op, int cid, int urc_en, QnetdevctlOrder order) {
  const std::string o = std::to_string(op), c = std::to_string(cid);
  return "AT+QNETDEVCTL=" + (order == QnetdevctlOrder::cid_op_urc ? c + "," + o : o + "," + c) + "," +
         std::to_string(urc_en);
}
}  // namespace

std::string qnetdevctl_connect(int cid, QnetdevctlOrder order) {
  return qnetdevctl(kQnetdevctlConnectOnce, cid, 1, order);
}
std::string qnetdevctl_disconnect(int cid, QnetdevctlOrder order) {
  return qnetdevctl(kQnetdevctlDisconnect, cid, 0, order);
}
std::string qnetdevstatus_query(int cid) { return "AT+QNETDEVSTATUS=" + std::to_string(cid); }
std::string qnetdevstatus_read() { return "AT+QNETDEVSTATUS?"; }

std::string qicsgp(const SessionSettings& settings, int cid) {
  const int type = settings.families == IpFamilies::ipv4 ? 1 : settings.families == IpFamilies::ipv6 ? 2 : 3;
  int auth = 0;
  switch (settings.auth) {
    case AuthProtocol::pap: auth = 1; break;
    case AuthProtocol::chap: auth = 2; break;
    case AuthProtocol::mschapv2: auth = 2; break;  // QICSGP has no MSCHAPv2: CHAP is the nearest
    case AuthProtocol::none: auth = settings.user.empty() && settings.password.empty() ? 0 : 2; break;
  }
  return "AT+QICSGP=" + std::to_string(cid) + "," + std::to_string(type) + "," + huawei::quote(settings.apn) + "," +
         huawei::quote(settings.user) + "," + huawei::quote(settings.password) + "," + std::to_string(auth);
}

std::optional<NetdevStatus> parse_qnetdevstatus(std::string_view line) {
  const std::optional<std::string_view> rest = after_prefix(line, kStatusPrefix);
  if (!rest) return std::nullopt;
  const std::vector<std::string_view> f = fields(*rest, kMaxStatusFields);
  if (f.size() > kMaxStatusFields) return std::nullopt;
  NetdevStatus st;
  if (f.size() == 1 && (f[0] == "0" || f[0] == "1")) {
    st.form = NetdevStatus::Form::urc;
    st.connected = f[0] == "1";
    return st;
  }
  if (f.size() == 4) {
    // The call-state form (RM5x0N manual §9.9 ranges; ModemManager's state 2). An addressing
    // line of four fields starts with an address, which is never a number 0..1.
    const std::optional<unsigned> on_off = small_number(f[0], 1), state = small_number(f[1], 2),
                                  ip_type = small_number(f[2], 6), profile = small_number(f[3], 42);
    if (on_off && state && ip_type && profile) {
      if ((*ip_type != 4 && *ip_type != 6) || *profile == 0) return std::nullopt;
      st.form = NetdevStatus::Form::call_state;
      st.urc_enabled = *on_off == 1;
      st.call_state = static_cast<std::uint8_t>(*state);
      st.ip_version = static_cast<std::uint8_t>(*ip_type);
      st.profile = static_cast<std::uint8_t>(*profile);
      st.connected = *state >= 1;
      return st;
    }
    // "1,7,4,1" (ModemManager: an unhandled state): numbers that are no call state are no address either.
    if (on_off && small_number(f[1], 255) && small_number(f[2], 255) && small_number(f[3], 255)) return std::nullopt;
  }
  const auto at = [&](std::size_t i) { return i < f.size() ? f[i] : std::string_view(); };
  // IPv4: address, mask, gateway, DHCP server (not used), primary and secondary DNS.
  std::optional<eth::Ipv4Address> v4[6];
  for (std::size_t i = 0; i < 6; ++i)
    if (!ipv4_field(at(i), v4[i])) return std::nullopt;
  // IPv6: address, mask (a prefix length or an address-form mask), gateway, DHCP, DNS x2.
  std::optional<eth::Ipv6Address> v6[6];
  std::optional<std::uint8_t> v6_prefix;
  for (std::size_t i = 0; i < 6; ++i) {
    const std::string_view s = at(6 + i);
    if (i == 1 && !s.empty() && s.find(':') == std::string_view::npos) {
      const std::optional<unsigned> n = small_number(s, 128);
      if (!n) return std::nullopt;
      v6_prefix = static_cast<std::uint8_t>(*n);
      continue;
    }
    if (!ipv6_field(s, v6[i])) return std::nullopt;
  }
  if (v4[0]) {
    Ipv4Config c;
    c.address = *v4[0];
    c.prefix_length = 32;
    if (v4[1]) {
      const std::optional<std::uint8_t> p = prefix_of(v4[1]->bytes);
      if (!p) return std::nullopt;  // a mask with holes is no mask
      c.prefix_length = *p == 0 ? 32 : *p;
    }
    c.gateway = v4[2];
    for (const std::size_t i : {4u, 5u})
      if (v4[i]) c.dns.push_back(*v4[i]);
    st.ipv4 = c;
  }
  if (v6[0]) {
    Ipv6Config c;
    c.address = *v6[0];
    if (v6_prefix && *v6_prefix != 0) c.prefix_length = *v6_prefix;
    if (v6[1]) {
      const std::optional<std::uint8_t> p = prefix_of(v6[1]->bytes);
      if (!p) return std::nullopt;
      if (*p != 0) c.prefix_length = *p;
    }
    c.gateway = v6[2];
    for (const std::size_t i : {4u, 5u})
      if (v6[i]) c.dns.push_back(*v6[i]);
    st.ipv6 = c;
  }
  st.connected = st.ipv4.has_value() || st.ipv6.has_value();
  return st;
}

std::optional<NetdevCtl> parse_qnetdevctl(std::string_view line) {
  const std::optional<std::string_view> rest = after_prefix(line, kCtlPrefix);
  if (!rest) return std::nullopt;
  const std::vector<std::string_view> f = fields(*rest, 4);
  if (f.size() != 4) return std::nullopt;
  // ModemManager's ranges: op 0..3, cid 0..15, state 0/1.
  const std::optional<unsigned> op = small_number(f[0], 3), cid = small_number(f[1], 15), urc = small_number(f[2], 1),
                                state = small_number(f[3], 1);
  if (!op || !cid || !urc || !state) return std::nullopt;
  return NetdevCtl{static_cast<int>(*op), static_cast<int>(*cid), *urc == 1, *state == 1};
}

}  // namespace wwan::control::quectel
