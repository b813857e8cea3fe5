#include "sim/quectel_at.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <optional>
#include <vector>

namespace wwan::sim {
namespace {

constexpr std::string_view kCrLf = "\r\n";
constexpr std::size_t kMaxCommandLength = 512;
constexpr int kCmeOperationNotAllowed = 3, kCmeNoNetworkService = 30, kCmeIncorrectParameters = 50;

std::string line(std::string_view text) { return std::string(kCrLf) + std::string(text) + std::string(kCrLf); }
std::string ok() { return line("OK"); }
std::string error() { return line("ERROR"); }
std::string cme_error(int code) { return line("+CME ERROR: " + std::to_string(code)); }

std::string info(const std::vector<std::string>& lines) {
  std::string s(kCrLf);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (i != 0) s += kCrLf;
    s += lines[i];
  }
  return s + std::string(kCrLf) + ok();
}

std::string upper(std::string_view s) {
  std::string u(s);
  bool quoted = false;
  for (char& c : u) {
    if (c == '"') quoted = !quoted;
    if (!quoted) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return u;
}

std::vector<std::string> split_params(std::string_view s) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (char c : s) {
    if (c == '"') quoted = !quoted;
    if (c == ',' && !quoted) {
      out.emplace_back();
      continue;
    }
    out.back().push_back(c);
  }
  for (std::string& p : out) {
    const auto b = p.find_first_not_of(' ');
    const auto e = p.find_last_not_of(' ');
    p = b == std::string::npos ? std::string() : p.substr(b, e - b + 1);
  }
  return out;
}

std::optional<int> to_int(std::string_view s) {
  int v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

std::optional<std::string> unquote(std::string_view s) {
  if (s.size() < 2 || s.front() != '"' || s.back() != '"') return std::nullopt;
  return std::string(s.substr(1, s.size() - 2));
}

std::string dotted(const eth::Ipv4Address& a) {
  return std::to_string(a.bytes[0]) + "." + std::to_string(a.bytes[1]) + "." + std::to_string(a.bytes[2]) + "." +
         std::to_string(a.bytes[3]);
}

// The RM500U log writes every IPv6 group as four digits, no "::" (2409:8d05:0004:3b5e:...).
std::string ipv6_full(const eth::Ipv6Address& a) {
  std::string s;
  std::array<char, 8> buf{};
  for (std::size_t i = 0; i < 8; ++i) {
    std::snprintf(buf.data(), buf.size(), "%s%02x%02x", i == 0 ? "" : ":", unsigned{a.bytes[2 * i]},
                  unsigned{a.bytes[2 * i + 1]});
    s += buf.data();
  }
  return s;
}

}  // namespace

QuectelAt::QuectelAt(const NetworkConfig& network, QuectelAtIdentity identity)
    : network_(network), identity_(std::move(identity)) {
  contexts_[1] = {"IP", ""};
}

void QuectelAt::queue_unsolicited(std::string text) {
  if (unsolicited_.size() >= kMaxUnsolicited) {
    unsolicited_.pop_front();
    ++unsolicited_dropped_;
  }
  unsolicited_.push_back(std::move(text));
}

std::string QuectelAt::take_unsolicited() {
  if (unsolicited_.empty()) return {};
  std::string s = std::move(unsolicited_.front());
  unsolicited_.pop_front();
  return s;
}

QuectelAtIdentity rm500u_identity() {
  QuectelAtIdentity id;
  id.model = "RM500U-CN";
  id.revision = "RM500UCNVAAR03A06M2G_01.001.01.001";
  id.unisoc = true;
  return id;
}

const std::string& QuectelAt::apn(int cid) const {
  static const std::string kNone;
  const auto it = contexts_.find(cid);
  return it == contexts_.end() ? kNone : it->second.second;
}

bool QuectelAt::network_disconnect() {
  if (!connected_) return false;
  disconnect(urc_);
  return true;
}

void QuectelAt::disconnect(bool urc) {
  connected_ = false;
  op_ = 0;
  if (urc) queue_unsolicited(line("+QNETDEVSTATUS: 0"));
}

std::string QuectelAt::execute(std::string_view raw) {
  while (!raw.empty() && (raw.back() == '\r' || raw.back() == '\n' || raw.back() == '\0')) raw.remove_suffix(1);
  while (!raw.empty() && (raw.front() == '\r' || raw.front() == '\n' || raw.front() == ' ')) raw.remove_prefix(1);
  if (raw.empty()) return {};
  std::string out = echo_ ? std::string(raw) + "\r" : std::string();
  if (raw.size() > kMaxCommandLength || raw.size() < 2 || std::toupper(static_cast<unsigned char>(raw[0])) != 'A' ||
      std::toupper(static_cast<unsigned char>(raw[1])) != 'T')
    return out + error();
  return out + run(raw.substr(2));
}

std::string QuectelAt::run(std::string_view command) {
  const std::string u = upper(command);
  const auto is = [&](std::string_view name) { return u == name; };
  const auto args_of = [&](std::string_view prefix) -> std::optional<std::string_view> {
    if (u.size() < prefix.size() || std::string_view(u).substr(0, prefix.size()) != prefix) return std::nullopt;
    return command.substr(prefix.size());  // original case: APNs are case-sensitive
  };

  if (u.empty() || is("Q0") || is("V1") || is("&F")) return ok();
  if (is("E0") || is("E")) { echo_ = false; return ok(); }
  if (is("E1") || is("Z")) { echo_ = true; return ok(); }
  if (is("E0Q0V1")) { echo_ = false; return ok(); }  // quectel-CM's handshake
  if (is("I")) return info({identity_.manufacturer, identity_.model, "Revision: " + identity_.revision});
  if (is("+CGMI") || is("+GMI")) return info({identity_.manufacturer});
  if (is("+CGMM") || is("+GMM")) return info({identity_.model});
  if (is("+CGMR") || is("+GMR")) return info({identity_.revision});
  if (is("+CGSN") || is("+GSN")) return info({identity_.imei});
  if (is("+CPIN?")) return info({"+CPIN: READY"});

  if (is("+CFUN?")) return info({"+CFUN: " + std::to_string(cfun_)});
  if (auto a = args_of("+CFUN=")) {
    const std::optional<int> fun = to_int(split_params(*a)[0]);
    if (!fun || (*fun != 0 && *fun != 1 && *fun != 4)) return cme_error(kCmeIncorrectParameters);
    cfun_ = *fun;
    if (cfun_ != 1 && connected_) disconnect(urc_);
    return ok();
  }

  if (is("+CGDCONT?")) {
    std::vector<std::string> lines;
    for (const auto& [cid, ctx] : contexts_)
      lines.push_back("+CGDCONT: " + std::to_string(cid) + ",\"" + ctx.first + "\",\"" + ctx.second + "\",\"0.0.0.0\",0,0");
    return lines.empty() ? ok() : info(lines);
  }
  if (auto a = args_of("+CGDCONT=")) {
    const std::vector<std::string> p = split_params(*a);
    const std::optional<int> cid = to_int(p[0]);
    if (!cid || *cid < 1 || *cid > kMaxCid) return cme_error(kCmeIncorrectParameters);
    if (p.size() == 1) {
      contexts_.erase(*cid);
      return ok();
    }
    std::optional<std::string> type = unquote(p[1]);
    if (type) type = upper(*type);
    if (!type || (*type != "IP" && *type != "IPV6" && *type != "IPV4V6")) return cme_error(kCmeIncorrectParameters);
    std::string apn;
    if (p.size() > 2 && !p[2].empty()) {
      const std::optional<std::string> q = unquote(p[2]);
      if (!q) return cme_error(kCmeIncorrectParameters);
      apn = *q;
    }
    contexts_[*cid] = {*type, apn};
    return ok();
  }
  if (auto a = args_of("+QICSGP=")) {
    const std::vector<std::string> p = split_params(*a);
    const std::optional<int> cid = to_int(p[0]);
    if (!cid || *cid < 1 || *cid > kMaxCid || p.size() < 3) return cme_error(kCmeIncorrectParameters);
    const std::optional<std::string> apn = unquote(p[2]);
    if (!apn) return cme_error(kCmeIncorrectParameters);
    contexts_[*cid].second = *apn;
    if (contexts_[*cid].first.empty()) contexts_[*cid].first = "IP";
    return ok();
  }

  if (is("+QCFG=\"USBNET\"")) return info({"+QCFG: \"usbnet\",5"});
  if (args_of("+QCFG=\"USBNET\",")) return ok();  // takes effect after a reset: not modelled

  if (is("+QNETDEVCTL=?"))
    return info({identity_.unisoc ? "+QNETDEVCTL: (1-8),(0-3),(0,1)" : "+QNETDEVCTL: (0,1,3),(1-15),(0,1)"});
  if (is("+QNETDEVCTL?"))
    return info({"+QNETDEVCTL: " + std::to_string(op_) + "," + std::to_string(cid_) + "," + (urc_ ? "1" : "0") + "," +
                 (connected_ ? "1" : "0")});
  if (auto a = args_of("+QNETDEVCTL=")) return qnetdevctl(*a);

  if (is("+QNETDEVSTATUS=?")) return info({"+QNETDEVSTATUS: (1-8)"});
  if (is("+QNETDEVSTATUS?")) return qnetdevstatus();
  if (auto a = args_of("+QNETDEVSTATUS=")) {
    const std::optional<int> cid = to_int(*a);
    if (!cid || *cid < 1 || *cid > kMaxCid) return cme_error(kCmeIncorrectParameters);
    if (!connected_ || *cid != cid_) return error();
    return qnetdevstatus();
  }
  return error();
}

// AT+QNETDEVCTL=<op>,<cid>[,<urc_en>]; Unisoc: AT+QNETDEVCTL=<cid>,<op>[,<urc_en>]
std::string QuectelAt::qnetdevctl(std::string_view args) {
  const std::vector<std::string> p = split_params(args);
  // Plain ints, -1 for missing or non-numeric (gcc 12 warns on optional<int> here, as in huawei_at).
  const int first = to_int(p[0]).value_or(-1);
  const int second = p.size() > 1 ? to_int(p[1]).value_or(-1) : -1;
  const int op = identity_.unisoc ? second : first;
  const int cid = identity_.unisoc ? first : second;
  const int max_cid = identity_.unisoc ? kMaxUnisocCid : kMaxCid;
  const int urc = p.size() > 2 ? to_int(p[2]).value_or(-1) : 0;
  if ((op != 0 && op != 1 && op != 3) || cid < 1 || cid > max_cid || (urc != 0 && urc != 1))
    return cme_error(kCmeIncorrectParameters);
  if (op == 0) {
    if (!connected_) return error();  // "stopping while not active may return ERROR"
    ++hangups_;
    urc_ = urc == 1;  // AT+QNETDEVCTL=0,<cid>,0: no URC for the hang-up we asked for
    disconnect(urc_);
    return ok();
  }
  if (cfun_ != 1) return cme_error(kCmeNoNetworkService);
  if (connected_) return cme_error(kCmeOperationNotAllowed);  // one call per module here
  ++dials_;
  op_ = op;
  cid_ = cid;
  urc_ = urc == 1;
  connected_ = true;
  if (urc_) queue_unsolicited(line("+QNETDEVSTATUS: 1"));
  return ok();
}

// The twelve fields of the RM500U line; the mask field of IPv6 is empty there, as here.
std::string QuectelAt::qnetdevstatus() const {
  if (!connected_) return error();
  const auto& ctx = contexts_.find(cid_);
  const std::string type = ctx == contexts_.end() ? "IP" : ctx->second.first;
  std::string v4 = ",,,,,", v6 = ",,,,,";
  if (type != "IPV6")
    v4 = dotted(identity_.wan_ipv4) + ",255.255.255.0," + dotted(identity_.wan_gateway_ipv4) + ",," +
         dotted(network_.dns_ipv4[0]) + "," + dotted(network_.dns_ipv4[1]);
  if (type != "IP") v6 = ipv6_full(network_.host_ipv6) + ",,,,,";
  return info({"+QNETDEVSTATUS: " + v4 + "," + v6});
}

}  // namespace wwan::sim
