#include "sim/at_responder.hpp"

#include <cctype>
#include <charconv>

namespace wwan::sim {

namespace v250 {

namespace {
constexpr std::string_view kCrLf = "\r\n";
}  // namespace

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

std::string upper_outside_quotes(std::string_view s) {
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

std::optional<std::string> identification(const Command& c, const Identification& id) {
  if (c.is("+CGMI") || c.is("+GMI")) return info({id.manufacturer});
  if (c.is("+CGMM") || c.is("+GMM")) return info({id.model});
  if (c.is("+CGMR") || c.is("+GMR")) return info({id.revision});
  if (c.is("+CGSN") || c.is("+GSN")) return info({id.imei});
  return std::nullopt;
}

}  // namespace v250

std::string PdpContexts::define(std::string_view args) {
  constexpr int kCmeIncorrectParameters = 50;  // 3GPP TS 27.007 §9.2
  const std::vector<std::string> p = v250::split_params(args);
  const std::optional<int> cid = v250::to_int(p[0]);
  if (!cid || *cid < 1 || *cid > max_cid_) return v250::cme_error(kCmeIncorrectParameters);
  if (p.size() == 1) {  // AT+CGDCONT=<cid>: undefine the context
    table_.erase(*cid);
    return v250::ok();
  }
  std::optional<std::string> type = v250::unquote(p[1]);
  if (type) type = v250::upper_outside_quotes(*type);
  if (!type || (*type != "IP" && *type != "IPV6" && *type != "IPV4V6")) return v250::cme_error(kCmeIncorrectParameters);
  std::string apn;
  if (p.size() > 2 && !p[2].empty()) {
    const std::optional<std::string> q = v250::unquote(p[2]);
    if (!q) return v250::cme_error(kCmeIncorrectParameters);
    apn = *q;
  }
  table_[*cid] = {*type, apn};
  return v250::ok();
}

std::string PdpContexts::read() const {
  std::vector<std::string> lines;
  for (const auto& [cid, ctx] : table_)
    lines.push_back("+CGDCONT: " + std::to_string(cid) + ",\"" + ctx.first + "\",\"" + ctx.second + "\",\"0.0.0.0\",0,0");
  return lines.empty() ? v250::ok() : v250::info(lines);
}

void UnsolicitedQueue::push(std::string text) {
  if (queue_.size() >= kMaxUnsolicited) {
    queue_.pop_front();
    ++dropped_;
  }
  queue_.push_back(std::move(text));
}

std::string UnsolicitedQueue::take() {
  if (queue_.empty()) return {};
  std::string s = std::move(queue_.front());
  queue_.pop_front();
  return s;
}

std::string AtResponder::execute(std::string_view raw) {
  while (!raw.empty() && (raw.back() == '\r' || raw.back() == '\n' || raw.back() == '\0')) raw.remove_suffix(1);
  while (!raw.empty() && (raw.front() == '\r' || raw.front() == '\n' || raw.front() == ' ')) raw.remove_prefix(1);
  if (raw.empty()) return {};
  // The modem echoes what it received, before it has parsed it: ATE0's own echo still appears.
  std::string out = echo_ ? std::string(raw) + "\r" : std::string();
  if (raw.size() > kMaxCommandLength || raw.size() < 2 || std::toupper(static_cast<unsigned char>(raw[0])) != 'A' ||
      std::toupper(static_cast<unsigned char>(raw[1])) != 'T')
    return out + v250::error();
  return out + run(raw.substr(2));
}

}  // namespace wwan::sim
