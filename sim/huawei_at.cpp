#include "sim/huawei_at.hpp"

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

// Link rates ^DHCP reports in its last two fields (bit/s): an LTE category 4 stick, as the E3372 is.
constexpr std::string_view kMaxRxTx = "150000000,50000000";
// 3GPP TS 27.007 §9.2 codes used here.
constexpr int kCmeOperationNotAllowed = 3, kCmeSimPinRequired = 11, kCmeIncorrectPassword = 16,
              kCmeNoNetworkService = 30, kCmeIncorrectParameters = 50;

// ^DHCP's address encoding (anchors §3.2, vectors §C): the four address bytes read as a
// little-endian 32-bit number, in hex. 10.126.0.22 -> "16007e0a" (the Balong example).
std::string lsb_hex(const eth::Ipv4Address& a) {
  const std::uint32_t v = std::uint32_t{a.bytes[0]} | std::uint32_t{a.bytes[1]} << 8 |
                          std::uint32_t{a.bytes[2]} << 16 | std::uint32_t{a.bytes[3]} << 24;
  std::array<char, 9> buf{};
  std::snprintf(buf.data(), buf.size(), "%08x", v);
  return buf.data();
}

eth::Ipv4Address netmask(std::uint8_t prefix_length) {
  eth::Ipv4Address m;
  for (std::size_t i = 0; i < 4; ++i) {
    const int bits = std::clamp(static_cast<int>(prefix_length) - static_cast<int>(8 * i), 0, 8);
    m.bytes[i] = static_cast<std::uint8_t>(0xFF00 >> bits);
  }
  return m;
}

// RFC 5952 text: lower-case hex groups, the longest run (>= 2) of zero groups as "::".
std::string ipv6_text(const eth::Ipv6Address& a) {
  std::array<unsigned, 8> g{};
  for (std::size_t i = 0; i < 8; ++i) g[i] = unsigned{a.bytes[2 * i]} << 8 | a.bytes[2 * i + 1];
  std::size_t best = 8, best_len = 0;
  for (std::size_t i = 0; i < 8;) {
    std::size_t j = i;
    while (j < 8 && g[j] == 0) ++j;
    if (j - i > best_len && j - i >= 2) best = i, best_len = j - i;
    i = j == i ? i + 1 : j;
  }
  std::string s;
  std::array<char, 8> buf{};
  for (std::size_t i = 0; i < 8; ++i) {
    if (i == best) {
      s += "::";
      i += best_len - 1;
      continue;
    }
    if (!s.empty() && s.back() != ':') s += ':';
    std::snprintf(buf.data(), buf.size(), "%x", g[i]);
    s += buf.data();
  }
  return s;
}

std::string ndisstat_urc(bool connected, std::string_view family) {
  return line(std::string("^NDISSTAT:") + (connected ? "1" : "0") + ",,,\"" + std::string(family) + "\"");
}

}  // namespace

HuaweiAt::HuaweiAt(const NetworkConfig& network, std::string sim_pin, HuaweiAtIdentity identity)
    : network_(network), sim_pin_(std::move(sim_pin)), identity_(std::move(identity)) {
  sim_locked_ = !sim_pin_.empty();
}

void HuaweiAt::power_on() {
  // Prefixes from vectors §J (what ModemManager filters as noise); values plausible, not captured.
  queue_unsolicited(line("^BOOT:20436354,0,0,0,72"));
  queue_unsolicited(line("^SIMST:1"));
  queue_unsolicited(line("^SRVST:2"));
  queue_unsolicited(line("^MODE:7,17"));
  queue_unsolicited(line("^RSSI:19"));
  queue_unsolicited(line("^HCSQ:\"LTE\",50,41,140,22"));
}

bool HuaweiAt::network_disconnect() {
  if (!connected()) return false;
  disconnect_with_urc();
  return true;
}

void HuaweiAt::disconnect_with_urc() {
  if (ipv4_connected_) queue_unsolicited(ndisstat_urc(false, "IPV4"));
  if (ipv6_connected_) queue_unsolicited(ndisstat_urc(false, "IPV6"));
  ipv4_connected_ = ipv6_connected_ = false;
}

std::string HuaweiAt::run(std::string_view command) {
  const v250::Command c(command);  // matched upper-case; arguments in their case (APNs, PINs)

  if (c.empty() || c.is("Q0") || c.is("V1") || c.is("&F")) return ok();
  if (c.is("E") || c.is("E0")) { echo_ = false; return ok(); }
  if (c.is("E1")) { echo_ = true; return ok(); }
  if (c.is("Z")) { echo_ = true; return ok(); }
  if (c.is("I"))
    return info({"Manufacturer: " + identity_.manufacturer, "Model: " + identity_.model,
                 "Revision: " + identity_.revision, "IMEI: " + identity_.imei, "+GCAP: +CGSM,+DS,+ES"});
  if (auto id = v250::identification(c, {identity_.manufacturer, identity_.model, identity_.revision, identity_.imei}))
    return *id;

  if (c.is("+CPIN?")) return info({sim_locked_ ? "+CPIN: SIM PIN" : "+CPIN: READY"});
  if (auto a = c.args_of("+CPIN=")) {
    const std::vector<std::string> p = split_params(*a);
    const std::optional<std::string> pin = unquote(p[0]);
    if (!pin) return cme_error(kCmeIncorrectParameters);
    if (!sim_locked_) return cme_error(kCmeOperationNotAllowed);
    if (*pin != sim_pin_) return cme_error(kCmeIncorrectPassword);
    sim_locked_ = false;
    return ok();
  }

  if (c.is("+CFUN?")) return info({"+CFUN: " + std::to_string(cfun_)});
  if (auto a = c.args_of("+CFUN=")) {
    const std::optional<int> fun = to_int(split_params(*a)[0]);
    if (!fun || (*fun != 0 && *fun != 1 && *fun != 4)) return cme_error(kCmeIncorrectParameters);
    cfun_ = *fun;
    if (cfun_ != 1) disconnect_with_urc();  // radio off: the PDN goes with it
    return ok();
  }

  if (c.is("+CGDCONT=?"))
    return info({"+CGDCONT: (1-16),\"IP\",,,(0-2),(0-4)", "+CGDCONT: (1-16),\"IPV6\",,,(0-2),(0-4)",
                 "+CGDCONT: (1-16),\"IPV4V6\",,,(0-2),(0-4)"});
  if (c.is("+CGDCONT?")) return contexts_.read();
  if (auto a = c.args_of("+CGDCONT=")) return contexts_.define(*a);

  if (c.is("+COPS?")) {
    if (sim_locked_ || cfun_ != 1) return info({"+COPS: 0"});
    return info({"+COPS: 0,0,\"wwan-dp sim\",7"});
  }
  if (c.is("^SYSINFOEX")) {
    // vectors §E field order: srv_status, srv_domain, roam, sim_state, lock, sysmode, name, submode, name.
    if (sim_locked_ || cfun_ != 1) return info({"^SYSINFOEX:0,0,0,1,,0,\"NO SERVICE\",0,\"NO SERVICE\""});
    return info({"^SYSINFOEX:2,3,0,1,,6,\"LTE\",101,\"LTE\""});
  }
  if (auto a = c.args_of("^CURC=")) {
    const std::optional<int> v = to_int(*a);
    return v && (*v == 0 || *v == 1) ? ok() : cme_error(kCmeIncorrectParameters);
  }

  if (auto a = c.args_of("^NDISDUP=")) return ndisdup(*a);
  if (c.is("^NDISSTATQRY?")) {
    const std::string v4 = ipv4_connected_ ? "1,,,\"IPV4\"" : "0,,,\"IPV4\"";
    const std::string v6 = ipv6_connected_ ? "1,,,\"IPV6\"" : ipv4_connected_ ? "0,33,,\"IPV6\"" : "0,,,\"IPV6\"";
    return info({"^NDISSTATQRY: " + v4 + "," + v6});
  }
  if (c.is("^DHCP?")) return dhcp();
  if (c.is("^DHCPV6?")) return dhcpv6();
  return error();
}

// ^NDISDUP=<cid>,<connect>[,<APN>[,<user>[,<pass>[,<authpref>]]]] (anchors §3.2, Balong table).
std::string HuaweiAt::ndisdup(std::string_view args) {
  const std::vector<std::string> p = split_params(args);
  const std::optional<int> cid = to_int(p[0]);
  // -1 for a missing or non-numeric value (a plain int: gcc 12 warns on optional<int> here).
  const int connect = p.size() > 1 ? to_int(p[1]).value_or(-1) : -1;
  if (!cid || *cid < 1 || *cid > kMaxCid || (connect != 0 && connect != 1))
    return cme_error(kCmeIncorrectParameters);
  if (p.size() > 2 && !p[2].empty() && !unquote(p[2])) return cme_error(kCmeIncorrectParameters);
  if (p.size() > 5 && !p[5].empty()) {
    const std::optional<int> auth = to_int(p[5]);
    if (!auth || *auth < 0 || *auth > 3) return cme_error(kCmeIncorrectParameters);
  }
  if (sim_locked_) return cme_error(kCmeSimPinRequired);

  if (connect == 0) {
    // "Running NDISDUP=1,0 on an already disconnected bearer ... will return ERROR" (ModemManager).
    if (!connected()) return error();
    disconnect_with_urc();
    return ok();
  }
  if (cfun_ != 1) return cme_error(kCmeNoNetworkService);
  const auto ctx = contexts_.table().find(*cid);
  const bool defined = ctx != contexts_.table().end();
  const std::string type = defined ? ctx->second.first : "IP";
  apn_ = p.size() > 2 && !p[2].empty() ? *unquote(p[2]) : defined ? ctx->second.second : "";
  // The PDN comes up right after OK, announced by ^NDISSTAT (modemmanager-devel 2014-10/001576).
  ipv4_connected_ = type != "IPV6";
  ipv6_connected_ = type != "IP";
  if (ipv4_connected_) queue_unsolicited(ndisstat_urc(true, "IPV4"));
  if (ipv6_connected_) queue_unsolicited(ndisstat_urc(true, "IPV6"));
  return ok();
}

// "only for PDPs activated via ^NDISDUP, ERROR when not dialed" (anchors §3.2).
std::string HuaweiAt::dhcp() const {
  if (!ipv4_connected_ || !identity_.answers_dhcp) return error();
  const std::string fields = lsb_hex(network_.host_ipv4) + "," + lsb_hex(netmask(network_.host_ipv4_prefix_length)) +
                             "," + lsb_hex(network_.gateway_ipv4) + "," + lsb_hex(network_.gateway_ipv4) + "," +
                             lsb_hex(network_.dns_ipv4[0]) + "," + lsb_hex(network_.dns_ipv4[1]) + "," +
                             std::string(kMaxRxTx);
  return info({"^DHCP: " + fields});
}

std::string HuaweiAt::dhcpv6() const {
  if (!ipv6_connected_) return error();
  const std::string any = "::";
  return info({"^DHCPV6: " + ipv6_text(network_.host_ipv6) + ",ffff:ffff:ffff:ffff::," +
               ipv6_text(network_.gateway_ipv6) + "," + ipv6_text(network_.gateway_ipv6) + "," + any + "," + any +
               "," + std::string(kMaxRxTx)});
}

}  // namespace wwan::sim
