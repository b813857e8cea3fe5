#include "control/huawei_at.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cstdio>

#include "control/at_text.hpp"

namespace wwan::control::huawei {
namespace {

using at::equals_nocase;
using at::starts_with_nocase;
using at::trim_blanks;

std::string_view unquote(std::string_view s) {
  s = trim_blanks(s);
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') return s.substr(1, s.size() - 2);
  return s;
}

// The lines of a response: split at CR and LF, empty ones skipped, blanks trimmed.
std::vector<std::string_view> lines_of(std::string_view text) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= text.size(); ++i) {
    if (i < text.size() && text[i] != '\r' && text[i] != '\n') continue;
    const std::string_view l = trim_blanks(text.substr(start, i - start));
    if (!l.empty()) out.push_back(l);
    start = i + 1;
  }
  return out;
}

// Comma-separated parameters; a comma inside double quotes does not split. Blanks trimmed.
std::vector<std::string_view> params_of(std::string_view s) {
  std::vector<std::string_view> out;
  bool quoted = false;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= s.size(); ++i) {
    if (i < s.size()) {
      if (s[i] == '"') quoted = !quoted;
      if (s[i] != ',' || quoted) continue;
    }
    out.push_back(trim_blanks(s.substr(start, i - start)));
    start = i + 1;
  }
  return out;
}

// The text after `prefix` on the first line that starts with it (case-insensitive), or nullopt.
std::optional<std::string_view> value_after(std::string_view text, std::string_view prefix) {
  for (const std::string_view l : lines_of(text))
    if (starts_with_nocase(l, prefix)) return trim_blanks(l.substr(prefix.size()));
  return std::nullopt;
}

template <typename T>
std::optional<T> to_unsigned(std::string_view s, int base = 10) {
  T v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

// One ^DHCP address field (vectors §C): optional 0x/0X, 1 to 8 hex digits. ModemManager accepts
// exactly 8, 7 (one leading zero dropped) or the lone "0"; reading the field as a number accepts
// those and any other count of dropped leading zeros, with the same value.
std::optional<eth::Ipv4Address> lsb_hex_address(std::string_view s) {
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s.remove_prefix(2);
  if (s.empty() || s.size() > 8 || !std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
      }))
    return std::nullopt;
  const std::optional<std::uint32_t> v = to_unsigned<std::uint32_t>(s, 16);
  if (!v) return std::nullopt;
  return eth::Ipv4Address{{static_cast<std::uint8_t>(*v), static_cast<std::uint8_t>(*v >> 8),
                           static_cast<std::uint8_t>(*v >> 16), static_cast<std::uint8_t>(*v >> 24)}};
}

std::uint8_t popcount(const eth::Ipv4Address& a) {
  int n = 0;
  for (std::uint8_t b : a.bytes) n += std::popcount(b);
  return static_cast<std::uint8_t>(n);
}

eth::Ipv4Address netmask_of(std::uint8_t prefix_length) {
  eth::Ipv4Address m;
  for (std::size_t i = 0; i < 4; ++i) {
    const int bits = std::clamp(static_cast<int>(prefix_length) - static_cast<int>(8 * i), 0, 8);
    m.bytes[i] = static_cast<std::uint8_t>(0xFF00 >> bits);
  }
  return m;
}

bool is_zero(const eth::Ipv4Address& a) { return a == eth::Ipv4Address{}; }

std::optional<NdisState> ndis_state(std::string_view s) {
  const std::optional<unsigned> v = to_unsigned<unsigned>(unquote(s));
  if (!v || *v > 3) return std::nullopt;
  return static_cast<NdisState>(*v);
}

enum class Family : std::uint8_t { ipv4, ipv6, ipv4v6 };
std::optional<Family> family_of(std::string_view field) {
  const std::string_view f = unquote(field);
  if (equals_nocase(f, "IPV4") || equals_nocase(f, "IP")) return Family::ipv4;
  if (equals_nocase(f, "IPV6")) return Family::ipv6;
  if (equals_nocase(f, "IPV4V6")) return Family::ipv4v6;
  return std::nullopt;
}

// One ^NDISSTAT line's parameters into `st`. Groups end at their PDP type field: 4 fields
// (<stat>,<err>,<wx_state>,<type>: ModemManager's form) or 5 (<cid> first: the Balong form).
bool parse_ndisstat_params(std::string_view params, NdisStatus& st) {
  const std::vector<std::string_view> f = params_of(params);
  if (f.size() == 1) {  // the old form: "^NDISSTATQry:1" is the IPv4 state
    const std::optional<NdisState> s = ndis_state(f[0]);
    if (!s) return false;
    st.ipv4 = s;
    return true;
  }
  std::size_t group_start = 0;
  for (std::size_t i = 0; i < f.size(); ++i) {
    const std::optional<Family> fam = family_of(f[i]);
    if (!fam) continue;
    const std::size_t n = i - group_start + 1;
    if (n != 4 && n != 5) return false;
    const std::size_t stat_at = group_start + (n - 4);
    const std::optional<NdisState> s = ndis_state(f[stat_at]);
    if (!s) return false;
    const std::optional<std::uint16_t> err = to_unsigned<std::uint16_t>(unquote(f[stat_at + 1]));
    if (*fam != Family::ipv6) st.ipv4 = s, st.ipv4_error = err;
    if (*fam != Family::ipv4) st.ipv6 = s, st.ipv6_error = err;
    group_start = i + 1;
  }
  return group_start == f.size() && group_start > 0;
}

std::uint8_t popcount6(const eth::Ipv6Address& a) {
  int n = 0;
  for (std::uint8_t b : a.bytes) n += std::popcount(b);
  return static_cast<std::uint8_t>(n);
}

}  // namespace

// ---- ^DHCP ----------------------------------------------------------------------------------------

std::optional<Dhcp> parse_dhcp(std::string_view text) {
  const std::optional<std::string_view> v = value_after(text, "^DHCP:");
  if (!v) return std::nullopt;
  const std::vector<std::string_view> f = params_of(*v);
  if (f.size() < 6 || f.size() > 8) return std::nullopt;
  std::array<eth::Ipv4Address, 6> a{};
  for (std::size_t i = 0; i < a.size(); ++i) {
    const std::optional<eth::Ipv4Address> x = lsb_hex_address(f[i]);
    if (!x) return std::nullopt;
    a[i] = *x;
  }
  Dhcp d;
  d.address = a[0];
  d.netmask = a[1];
  d.prefix_length = popcount(a[1]);
  d.gateway = a[2];
  d.dhcp_server = a[3];
  d.dns1 = a[4];
  d.dns2 = a[5];
  if (f.size() > 6) d.max_rx_bits_per_s = to_unsigned<std::uint64_t>(f[6]);
  if (f.size() > 7) d.max_tx_bits_per_s = to_unsigned<std::uint64_t>(f[7]);
  return d;
}

Ipv4Config to_ipv4_config(const Dhcp& dhcp) {
  Ipv4Config c;
  c.address = dhcp.address;
  c.prefix_length = dhcp.prefix_length;
  if (!is_zero(dhcp.gateway)) c.gateway = dhcp.gateway;
  for (const eth::Ipv4Address& d : {dhcp.dns1, dhcp.dns2})
    if (!is_zero(d)) c.dns.push_back(d);
  return c;
}

std::optional<eth::Ipv6Address> parse_ipv6_text(std::string_view text) {
  text = unquote(text);
  std::array<char, 64> buf{};
  if (text.empty() || text.size() >= buf.size()) return std::nullopt;
  std::copy(text.begin(), text.end(), buf.begin());
  eth::Ipv6Address a;
  if (inet_pton(AF_INET6, buf.data(), a.bytes.data()) != 1) return std::nullopt;
  return a;
}

std::optional<Dhcpv6> parse_dhcpv6(std::string_view text) {
  const std::optional<std::string_view> v = value_after(text, "^DHCPV6:");
  if (!v) return std::nullopt;
  const std::vector<std::string_view> f = params_of(*v);
  if (f.size() < 6 || f.size() > 8) return std::nullopt;
  std::array<eth::Ipv6Address, 6> a{};
  for (std::size_t i = 0; i < a.size(); ++i) {
    const std::optional<eth::Ipv6Address> x = parse_ipv6_text(f[i]);
    if (!x) return std::nullopt;
    a[i] = *x;
  }
  Dhcpv6 d;
  d.address = a[0];
  d.prefix_length = popcount6(a[1]);
  d.gateway = a[2];
  d.dhcp_server = a[3];
  d.dns1 = a[4];
  d.dns2 = a[5];
  return d;
}

Ipv6Config to_ipv6_config(const Dhcpv6& dhcp) {
  Ipv6Config c;
  c.address = dhcp.address;
  c.prefix_length = dhcp.prefix_length == 0 ? 64 : dhcp.prefix_length;
  if (!dhcp.gateway.is_unspecified()) c.gateway = dhcp.gateway;
  for (const eth::Ipv6Address& d : {dhcp.dns1, dhcp.dns2})
    if (!d.is_unspecified()) c.dns.push_back(d);
  return c;
}

std::string format_ipv4(const eth::Ipv4Address& a) {
  std::array<char, 16> buf{};
  std::snprintf(buf.data(), buf.size(), "%u.%u.%u.%u", unsigned{a.bytes[0]}, unsigned{a.bytes[1]},
                unsigned{a.bytes[2]}, unsigned{a.bytes[3]});
  return buf.data();
}

// ---- ^NDISSTAT ------------------------------------------------------------------------------------

const char* to_string(NdisState s) {
  switch (s) {
    case NdisState::disconnected: return "disconnected";
    case NdisState::connected: return "connected";
    case NdisState::connecting: return "connecting";
    case NdisState::disconnecting: return "disconnecting";
  }
  return "?";
}

std::optional<NdisStatus> parse_ndisstat(std::string_view text) {
  NdisStatus st;
  bool any = false;
  for (const std::string_view l : lines_of(text)) {
    std::string_view params;
    if (starts_with_nocase(l, "^NDISSTATQRY:")) {
      params = l.substr(13);
    } else if (starts_with_nocase(l, "^NDISSTAT:")) {
      params = l.substr(10);
    } else {
      continue;
    }
    if (!parse_ndisstat_params(params, st)) return std::nullopt;
    any = true;
  }
  if (!any) return std::nullopt;
  return st;
}

// ---- +CPIN / +CFUN / +CME ERROR -----------------------------------------------------------------

namespace {
struct SimLockName {
  std::string_view text;
  SimLock lock;
};
// 3GPP TS 27.007 §8.3.
constexpr std::array<SimLockName, 16> kSimLocks = {{
    {"READY", SimLock::ready},           {"SIM PIN", SimLock::sim_pin},
    {"SIM PUK", SimLock::sim_puk},       {"SIM PIN2", SimLock::sim_pin2},
    {"SIM PUK2", SimLock::sim_puk2},     {"PH-SIM PIN", SimLock::ph_sim_pin},
    {"PH-FSIM PIN", SimLock::ph_fsim_pin}, {"PH-FSIM PUK", SimLock::ph_fsim_puk},
    {"PH-NET PIN", SimLock::ph_net_pin}, {"PH-NET PUK", SimLock::ph_net_puk},
    {"PH-NETSUB PIN", SimLock::ph_netsub_pin}, {"PH-NETSUB PUK", SimLock::ph_netsub_puk},
    {"PH-SP PIN", SimLock::ph_sp_pin},   {"PH-SP PUK", SimLock::ph_sp_puk},
    {"PH-CORP PIN", SimLock::ph_corp_pin}, {"PH-CORP PUK", SimLock::ph_corp_puk},
}};
}  // namespace

const char* to_string(SimLock s) {
  for (const SimLockName& n : kSimLocks)
    if (n.lock == s) return n.text.data();
  return "UNKNOWN";
}

SimLock parse_cpin(std::string_view text, bool expect_prefix) {
  std::optional<std::string_view> v;
  if (expect_prefix) {
    v = value_after(text, "+CPIN:");
  } else {
    const std::vector<std::string_view> l = lines_of(text);
    if (!l.empty()) v = l.front();
  }
  if (!v) return SimLock::unknown;
  const std::string_view code = unquote(*v);
  for (const SimLockName& n : kSimLocks)
    if (equals_nocase(code, n.text)) return n.lock;
  return SimLock::unknown;
}

std::optional<int> parse_cfun(std::string_view text) {
  const std::optional<std::string_view> v = value_after(text, "+CFUN:");
  if (!v) return std::nullopt;
  const std::optional<unsigned> fun = to_unsigned<unsigned>(params_of(*v).front());
  if (!fun || *fun > 255) return std::nullopt;
  return static_cast<int>(*fun);
}

const char* cme_error_name(std::uint16_t code) {
  switch (code) {  // 3GPP TS 27.007 §9.2.1
    case 0: return "phone failure";
    case 3: return "operation not allowed";
    case 4: return "operation not supported";
    case 5: return "PH-SIM PIN required";
    case 10: return "SIM not inserted";
    case 11: return "SIM PIN required";
    case 12: return "SIM PUK required";
    case 13: return "SIM failure";
    case 14: return "SIM busy";
    case 15: return "SIM wrong";
    case 16: return "incorrect password";
    case 17: return "SIM PIN2 required";
    case 18: return "SIM PUK2 required";
    case 30: return "no network service";
    case 31: return "network timeout";
    case 32: return "network not allowed - emergency calls only";
    case 50: return "incorrect parameters";
    case 100: return "unknown";
    case 103: return "illegal MS";
    case 106: return "illegal ME";
    case 107: return "GPRS services not allowed";
    case 111: return "PLMN not allowed";
    case 112: return "location area not allowed";
    case 113: return "roaming not allowed in this location area";
    case 132: return "service option not supported";
    case 133: return "requested service option not subscribed";
    case 134: return "service option temporarily out of order";
    case 148: return "unspecified GPRS error";
    case 149: return "PDP authentication failure";
    default: return nullptr;
  }
}

std::string describe(const at::AtResponse& r) {
  if (r.result == at::FinalResult::timeout) return "no answer (timeout)";
  if (r.result == at::FinalResult::cancelled) return "cancelled";
  std::string s = r.final_line;
  if (r.result == at::FinalResult::cme_error && r.error_code)
    if (const char* name = cme_error_name(*r.error_code)) s += std::string(" (") + name + ")";
  return s;
}

std::string join_lines(const std::vector<std::string>& lines) {
  std::string s;
  for (const std::string& l : lines) s += (s.empty() ? "" : " ") + l;
  return s;
}

// ---- builders -------------------------------------------------------------------------------------

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\' || u < 0x20 || u == 0x7F) {
      std::array<char, 4> hex{};
      std::snprintf(hex.data(), hex.size(), "\\%02X", unsigned{u});
      out += hex.data();
    } else {
      out += c;
    }
  }
  return out + "\"";
}

int ndisdup_auth(const SessionSettings& settings) {
  switch (settings.auth) {
    case AuthProtocol::pap: return 1;
    case AuthProtocol::chap: return 2;
    case AuthProtocol::mschapv2: return 3;
    case AuthProtocol::none: break;
  }
  // ModemManager: "if user/password given but auth is none/unspecified, use CHAP" (vectors §A).
  return settings.user.empty() && settings.password.empty() ? 0 : 2;
}

std::string ndisdup_connect(const SessionSettings& settings, int cid) {
  std::string s = "AT^NDISDUP=" + std::to_string(cid) + ",1," + quote(settings.apn);
  if (settings.user.empty() && settings.password.empty()) return s;
  return s + "," + quote(settings.user) + "," + quote(settings.password) + "," + std::to_string(ndisdup_auth(settings));
}

std::string ndisdup_disconnect(int cid) { return "AT^NDISDUP=" + std::to_string(cid) + ",0"; }

std::string cgdcont(const SessionSettings& settings, int cid) {
  const char* type = settings.families == IpFamilies::ipv4   ? "IP"
                     : settings.families == IpFamilies::ipv6 ? "IPV6"
                                                             : "IPV4V6";
  return "AT+CGDCONT=" + std::to_string(cid) + "," + quote(type) + "," + quote(settings.apn);
}

std::string cpin_enter(std::string_view pin) { return "AT+CPIN=" + quote(pin); }

// ---- decode at --------------------------------------------------------------------------------------

std::string decode_at_json(std::string_view line) {
  while (!line.empty() && (line.front() == '\r' || line.front() == '\n' || line.front() == ' ')) line.remove_prefix(1);
  if (starts_with_nocase(line, "^DHCP:")) {
    if (const std::optional<Dhcp> d = parse_dhcp(line)) {
      const Ipv4Config c = to_ipv4_config(*d);
      std::string s = "{\"kind\":\"huawei-dhcp\",\"address\":\"" + format_ipv4(d->address) + "\",\"netmask\":\"" +
                      format_ipv4(netmask_of(d->prefix_length)) + "\",\"gateway\":\"" + format_ipv4(d->gateway) +
                      "\",\"dns\":[";
      for (std::size_t i = 0; i < c.dns.size(); ++i) s += (i ? ",\"" : "\"") + format_ipv4(c.dns[i]) + "\"";
      return s + "]}";
    }
  } else if (starts_with_nocase(line, "^NDISSTAT")) {
    if (const std::optional<NdisStatus> st = parse_ndisstat(line)) {
      std::string s = "{\"kind\":\"huawei-ndisstat\"";
      if (st->ipv4) s += std::string(",\"ipv4\":\"") + to_string(*st->ipv4) + "\"";
      if (st->ipv6) s += std::string(",\"ipv6\":\"") + to_string(*st->ipv6) + "\"";
      return s + "}";
    }
  }
  return "{\"kind\":\"unknown\"}";
}

}  // namespace wwan::control::huawei
