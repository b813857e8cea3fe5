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

using namespace v250;  // line, ok, error, info, cme_error, split_params, to_int, unquote, ...

constexpr int kCmeOperationNotAllowed = 3, kCmeNoNetworkService = 30, kCmeIncorrectParameters = 50;

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
    : network_(network), identity_(std::move(identity)) {}

QuectelAtIdentity rm500u_identity() {
  QuectelAtIdentity id;
  id.model = "RM500U-CN";
  id.revision = "RM500UCNVAAR03A06M2G_01.001.01.001";
  id.unisoc = true;
  return id;
}

const std::string& QuectelAt::apn(int cid) const {
  static const std::string kNone;
  const auto it = contexts_.table().find(cid);
  return it == contexts_.table().end() ? kNone : it->second.second;
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

std::string QuectelAt::run(std::string_view command) {
  const v250::Command c(command);  // matched upper-case; arguments in their case (APNs)

  if (c.empty() || c.is("Q0") || c.is("V1") || c.is("&F")) return ok();
  if (c.is("E0") || c.is("E")) { echo_ = false; return ok(); }
  if (c.is("E1") || c.is("Z")) { echo_ = true; return ok(); }
  if (c.is("E0Q0V1")) { echo_ = false; return ok(); }  // quectel-CM's handshake
  if (c.is("I")) return info({identity_.manufacturer, identity_.model, "Revision: " + identity_.revision});
  if (auto id = v250::identification(c, {identity_.manufacturer, identity_.model, identity_.revision, identity_.imei}))
    return *id;
  if (c.is("+CPIN?")) return info({"+CPIN: READY"});

  if (c.is("+CFUN?")) return info({"+CFUN: " + std::to_string(cfun_)});
  if (auto a = c.args_of("+CFUN=")) {
    const std::optional<int> fun = to_int(split_params(*a)[0]);
    if (!fun || (*fun != 0 && *fun != 1 && *fun != 4)) return cme_error(kCmeIncorrectParameters);
    cfun_ = *fun;
    if (cfun_ != 1 && connected_) disconnect(urc_);
    return ok();
  }

  if (c.is("+CGDCONT?")) return contexts_.read();
  if (auto a = c.args_of("+CGDCONT=")) return contexts_.define(*a);
  if (auto a = c.args_of("+QICSGP=")) {
    const std::vector<std::string> p = split_params(*a);
    const std::optional<int> cid = to_int(p[0]);
    if (!cid || *cid < 1 || *cid > kMaxCid || p.size() < 3) return cme_error(kCmeIncorrectParameters);
    const std::optional<std::string> apn = unquote(p[2]);
    if (!apn) return cme_error(kCmeIncorrectParameters);
    auto& ctx = contexts_.table()[*cid];
    ctx.second = *apn;
    if (ctx.first.empty()) ctx.first = "IP";
    return ok();
  }

  if (c.is("+QCFG=\"USBNET\"")) return info({"+QCFG: \"usbnet\",5"});
  if (c.args_of("+QCFG=\"USBNET\",")) return ok();  // takes effect after a reset: not modelled

  if (c.is("+QNETDEVCTL=?"))
    return info({identity_.unisoc ? "+QNETDEVCTL: (1-8),(0-3),(0,1)" : "+QNETDEVCTL: (0,1,3),(1-15),(0,1)"});
  if (c.is("+QNETDEVCTL?"))
    return info({"+QNETDEVCTL: " + std::to_string(op_) + "," + std::to_string(cid_) + "," + (urc_ ? "1" : "0") + "," +
                 (connected_ ? "1" : "0")});
  if (auto a = c.args_of("+QNETDEVCTL=")) return qnetdevctl(*a);

  if (c.is("+QNETDEVSTATUS=?")) return info({"+QNETDEVSTATUS: (1-8)"});
  if (c.is("+QNETDEVSTATUS?")) return qnetdevstatus();
  if (auto a = c.args_of("+QNETDEVSTATUS=")) {
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
  const auto ctx = contexts_.table().find(cid_);
  const std::string type = ctx == contexts_.table().end() ? "IP" : ctx->second.first;
  std::string v4 = ",,,,,", v6 = ",,,,,";
  if (type != "IPV6")
    v4 = dotted(identity_.wan_ipv4) + ",255.255.255.0," + dotted(identity_.wan_gateway_ipv4) + ",," +
         dotted(network_.dns_ipv4[0]) + "," + dotted(network_.dns_ipv4[1]);
  if (type != "IP") v6 = ipv6_full(network_.host_ipv6) + ",,,,,";
  return info({"+QNETDEVSTATUS: " + v4 + "," + v6});
}

}  // namespace wwan::sim
