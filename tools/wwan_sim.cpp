// wwan-sim: an emulated modem (sim/) exported over USB/IP, so that a real Linux kernel — the VM
// rig's guest (tests/vm, docs/vm.md), or any machine with vhci-hcd — sees it as a USB device and
// its own drivers (huawei_cdc_ncm, cdc_ncm, cdc_mbim, cdc-wdm, usbfs + libusb) drive it.
//
//   wwan-sim --usbip 127.0.0.1:3240 --profile huawei-e3372 [--quirk NAME=VALUE]... [--fault NAME[=N]]...
//
// Prints one JSON object per line on stdout: "listening" (with the port, useful with port 0),
// "devlist", "imported", "detached" (with the modem's counters), "protocol_error", "stopped".
// Runs until SIGINT / SIGTERM.
#include <algorithm>
#include <charconv>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "sim/modem.hpp"
#include "sim/ncm_modem.hpp"
#include "sim/usbip_server.hpp"
#include "tools/shutdown.hpp"
#include "tools/text.hpp"

namespace {

using wwan::cli::json_string;
namespace sim = wwan::sim;
namespace usbip = wwan::sim::usbip;

constexpr std::string_view kUsage =
    "usage: wwan-sim --usbip ADDR:PORT --profile huawei-e3372|generic-ncm|mbim\n"
    "                [--quirk NAME=VALUE]... [--fault NAME[=N]]... [--busid BUSID]\n"
    "\n"
    "Exports an emulated modem over USB/IP (Linux Documentation/usb/usbip_protocol.rst): a kernel\n"
    "with vhci-hcd imports it (usbip attach, or tests/vm's attach helper) and binds its own drivers.\n"
    "ADDR is an IPv4 address; PORT 0 picks a free port (printed in the \"listening\" event).\n"
    "Every import is a fresh device, as if plugged in. One JSON event per line on stdout.\n"
    "\n"
    "NCM profile knobs (--quirk), the firmware behaviours of sim/ncm_modem.hpp NcmProfile:\n"
    "  ndp-in-front=dropped|accepted        OUT NTBs with the NDP before the datagrams (Huawei: dropped)\n"
    "  reset-ntb-format=ntb16|ntb32         the NTB format after reset (Huawei: ntb32; NCM 1.0: ntb16)\n"
    "  arps-host-before-forwarding=0|1      ARP for the host and forward nothing until answered (Huawei: 1)\n"
    "Faults (--fault), sim/modem.hpp Faults:\n"
    "  lose-response-available              no RESPONSE_AVAILABLE notifications (responses stay readable)\n"
    "  ntb-format-reverts-after-alt         the NTB format falls back to the reset format at alt 1\n"
    "  garbage-ntbs=N truncated-ntbs=N oversize-ntbs=N   the next N NTBs toward the host are damaged\n"
    "  control-answer-delay-ms=N            encapsulated responses become readable N ms late\n"
    "  unplug-after-in-transfers=N          the device leaves the bus after N more bulk-IN transfers\n";

struct Options {
  std::string address;
  std::uint16_t port = 0;
  std::string profile;
  std::string busid = "1-1";
  std::vector<std::pair<std::string, std::string>> quirks;  // NAME, VALUE
  std::vector<std::pair<std::string, std::string>> faults;  // NAME, N ("" = on)
};

bool parse_u32(std::string_view s, std::uint32_t& v) {
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

// One row per NcmProfile knob: how --quirk NAME=VALUE changes the profile. Returns the error text
// for a bad value ("" = applied).
struct QuirkRow {
  std::string_view name;
  std::string (*apply)(sim::NcmProfile& p, std::string_view value);
};
constexpr QuirkRow kQuirks[] = {
    {"ndp-in-front",
     [](sim::NcmProfile& p, std::string_view v) -> std::string {
       if (v != "dropped" && v != "accepted") return "ndp-in-front is dropped or accepted";
       p.accepts_ndp_in_front_on_out = v == "accepted";
       return {};
     }},
    {"reset-ntb-format",
     [](sim::NcmProfile& p, std::string_view v) -> std::string {
       if (v != "ntb16" && v != "ntb32") return "reset-ntb-format is ntb16 or ntb32";
       p.reset_ntb_format = v == "ntb32" ? wwan::ntb::NtbFormat::Ntb32 : wwan::ntb::NtbFormat::Ntb16;
       return {};
     }},
    {"arps-host-before-forwarding",
     [](sim::NcmProfile& p, std::string_view v) -> std::string {
       if (v != "0" && v != "1") return "arps-host-before-forwarding is 0 or 1";
       p.arps_host_before_forwarding = v == "1";
       return {};
     }},
};

// One row per Fault: how --fault NAME[=N] sets it.
struct FaultRow {
  std::string_view name;
  bool takes_number;
  void (*apply)(sim::Faults& f, std::uint32_t n);
};
constexpr FaultRow kFaults[] = {
    {"lose-response-available", false, [](sim::Faults& f, std::uint32_t) { f.lose_response_available = true; }},
    {"ntb-format-reverts-after-alt", false, [](sim::Faults& f, std::uint32_t) { f.ntb_format_reverts_after_alt = true; }},
    {"garbage-ntbs", true, [](sim::Faults& f, std::uint32_t n) { f.garbage_ntbs = n; }},
    {"truncated-ntbs", true, [](sim::Faults& f, std::uint32_t n) { f.truncated_ntbs = n; }},
    {"oversize-ntbs", true, [](sim::Faults& f, std::uint32_t n) { f.oversize_ntbs = n; }},
    {"control-answer-delay-ms", true,
     [](sim::Faults& f, std::uint32_t n) { f.control_answer_delay = std::chrono::milliseconds(n); }},
    {"unplug-after-in-transfers", true, [](sim::Faults& f, std::uint32_t n) { f.unplug_after_in_transfers = n; }},
};

int bad(const std::string& what) {
  std::cerr << "wwan-sim: " << what << " (see wwan-sim --help)\n";
  return 2;
}

// 0 = parsed; 2 = bad usage (said); -1 = --help printed.
int parse(const std::vector<std::string_view>& args, Options& o) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view a = args[i];
    if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      return -1;
    }
    if (i + 1 >= args.size()) return bad(std::string(a) + (a.starts_with("--") ? " needs a value" : ": unknown argument"));
    const std::string_view v = args[++i];
    if (a == "--usbip") {
      const std::size_t colon = v.rfind(':');
      std::uint32_t port = 0;
      if (colon == std::string_view::npos || !parse_u32(v.substr(colon + 1), port) || port > 65535)
        return bad("--usbip is ADDR:PORT, e.g. 127.0.0.1:3240, not '" + std::string(v) + "'");
      o.address = std::string(v.substr(0, colon));
      o.port = static_cast<std::uint16_t>(port);
    } else if (a == "--profile") {
      o.profile = std::string(v);
    } else if (a == "--busid") {
      if (v.empty() || v.size() >= usbip::kBusIdSize) return bad("--busid is 1..31 characters, e.g. 1-1");
      o.busid = std::string(v);
    } else if (a == "--quirk" || a == "--fault") {
      const std::size_t eq = v.find('=');
      const std::string name(v.substr(0, eq));
      const std::string value(eq == std::string_view::npos ? "" : v.substr(eq + 1));
      (a == "--quirk" ? o.quirks : o.faults).emplace_back(name, value);
    } else {
      return bad("unknown argument '" + std::string(a) + "'");
    }
  }
  if (o.address.empty()) return bad("where to listen? --usbip ADDR:PORT");
  const auto names = sim::modem_profiles();
  if (std::find(names.begin(), names.end(), o.profile) == names.end()) {
    std::string list;
    for (const auto n : names) list += (list.empty() ? "" : ", ") + std::string(n);
    return bad("--profile is one of " + list + (o.profile.empty() ? "" : ", not '" + o.profile + "'"));
  }
  return 0;
}

// The modem for one import, or the error text of a bad --quirk / --fault.
std::unique_ptr<sim::Modem> make(const Options& o, std::string& error) {
  std::unique_ptr<sim::Modem> modem;
  if (o.quirks.empty()) {
    modem = sim::make_modem(o.profile);
  } else {
    if (o.profile == "mbim") {
      error = "--quirk applies to the NCM profiles (huawei-e3372, generic-ncm), not mbim";
      return nullptr;
    }
    const sim::ModemOptions mo;
    sim::NcmProfile p = o.profile == "huawei-e3372" ? sim::huawei_e3372_profile(mo) : sim::generic_ncm_profile(mo);
    for (const auto& quirk : o.quirks) {
      const std::string& name = quirk.first;
      const std::string& value = quirk.second;
      const auto row = std::find_if(std::begin(kQuirks), std::end(kQuirks), [&](const QuirkRow& r) { return r.name == name; });
      if (row == std::end(kQuirks)) {
        error = "no profile knob '" + name + "' (ndp-in-front, reset-ntb-format, arps-host-before-forwarding)";
        return nullptr;
      }
      if (std::string e = row->apply(p, value); !e.empty()) {
        error = "--quirk " + e + ", not '" + value + "'";
        return nullptr;
      }
    }
    modem = std::make_unique<sim::NcmModem>(std::move(p), mo);
  }
  for (const auto& fault : o.faults) {
    const std::string& name = fault.first;
    const std::string& value = fault.second;
    const auto row = std::find_if(std::begin(kFaults), std::end(kFaults), [&](const FaultRow& r) { return r.name == name; });
    if (row == std::end(kFaults)) {
      error = "no fault '" + name + "' (see wwan-sim --help)";
      return nullptr;
    }
    std::uint32_t n = 0;
    if (row->takes_number && !parse_u32(value, n)) {
      error = "--fault " + name + "=N needs a number, not '" + value + "'";
      return nullptr;
    }
    if (!row->takes_number && !value.empty()) {
      error = "--fault " + name + " takes no value";
      return nullptr;
    }
    row->apply(modem->faults(), n);
  }
  return modem;
}

std::string counters_json(sim::Modem& m, const usbip::SessionCounters* s) {
  std::ostringstream o;
  const sim::ModemCounters& c = m.counters();
  const sim::NetworkCounters& n = m.network().counters();
  o << R"("session_active":)" << (m.session_active() ? "true" : "false");
  o << R"(,"modem":{"control_requests":)" << c.control_requests << R"(,"ntbs_from_host":)" << c.ntbs_from_host
    << R"(,"datagrams_from_host":)" << c.datagrams_from_host << R"(,"ntbs_from_host_dropped":)"
    << c.ntbs_from_host_dropped << R"(,"ntbs_to_host":)" << c.ntbs_to_host << R"(,"datagrams_to_host":)"
    << c.datagrams_to_host << R"(,"frames_before_session":)" << c.frames_before_session
    << R"(,"arp_requests_to_host":)" << c.arp_requests_to_host << R"(,"notifications_sent":)" << c.notifications_sent
    << R"(,"commands_received":)" << c.commands_received << R"(,"faults_injected":)" << c.faults_injected << '}';
  if (const auto* ncm = dynamic_cast<const sim::NcmModem*>(&m)) {
    const sim::NcmCounters& x = ncm->ncm_counters();
    o << R"(,"ncm":{"ntbs_wrong_format":)" << x.ntbs_wrong_format << R"(,"ntbs_ndp_in_front":)" << x.ntbs_ndp_in_front
      << R"(,"ntbs_too_large":)" << x.ntbs_too_large << R"(,"ntbs_unparsable":)" << x.ntbs_unparsable
      << R"(,"arp_replies_from_host":)" << x.arp_replies_from_host << R"(,"ntb_format":")"
      << (ncm->ntb_format() == wwan::ntb::NtbFormat::Ntb32 ? "ntb32" : "ntb16") << "\"}";
  }
  o << R"(,"network":{"packets_from_host":)" << n.packets_from_host << R"(,"icmp_echo_replies":)"
    << n.icmp_echo_replies << R"(,"udp_echo_replies":)" << n.udp_echo_replies << R"(,"packets_to_host":)"
    << n.packets_to_host << '}';
  if (s != nullptr) {
    o << R"(,"usbip":{"control_urbs":)" << s->control_urbs << R"(,"control_stalls":)" << s->control_stalls
      << R"(,"bulk_interrupt_urbs":)" << s->bulk_interrupt_urbs << R"(,"in_bytes":)" << s->in_bytes
      << R"(,"out_bytes":)" << s->out_bytes << R"(,"stalls":)" << s->stalls << R"(,"unlinks":)" << s->unlinks
      << R"(,"unlinks_cancelled":)" << s->unlinks_cancelled << '}';
  }
  return o.str();
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string_view> args(argv + 1, argv + argc);
  Options o;
  if (const int rc = parse(args, o); rc != 0) return rc < 0 ? 0 : rc;
  std::string error;
  if (!make(o, error)) return bad(error);  // a bad --quirk / --fault is said before listening

  wwan::cli::ShutdownSignals signals;
  usbip::ServerOptions so;
  so.busid = o.busid;
  usbip::UsbipServer server([&o] {
    std::string e;
    return make(o, e);
  }, so);
  if (!server.listen(o.address, o.port, error)) {
    std::cerr << "wwan-sim: " << error << "\n";
    return 1;
  }
  const auto emit = [](const std::string& line) { std::cout << line << std::endl; };
  emit(R"({"event":"listening","address":)" + json_string(o.address) + R"(,"port":)" + std::to_string(server.port()) +
       R"(,"profile":)" + json_string(o.profile) + R"(,"busid":)" + json_string(o.busid) + "}");
  const bool ok = server.run(signals.fd(), [&](const usbip::ServerEvent& e) {
    switch (e.kind) {
      case usbip::ServerEvent::Kind::devlist:
        emit(R"({"event":"devlist"})");
        break;
      case usbip::ServerEvent::Kind::imported:
        emit(R"({"event":"imported","busid":)" + json_string(e.detail) + "}");
        break;
      case usbip::ServerEvent::Kind::import_refused:
        emit(R"({"event":"import_refused","busid":)" + json_string(e.detail) + "}");
        break;
      case usbip::ServerEvent::Kind::protocol_error:
        emit(R"({"event":"protocol_error","error":)" + json_string(e.detail) + "}");
        break;
      case usbip::ServerEvent::Kind::detached:
        emit(R"({"event":"detached","why":)" + json_string(e.detail) + "," + counters_json(*e.modem, e.session) + "}");
        break;
    }
  }, error);
  emit(R"({"event":"stopped"})");
  if (!ok) {
    std::cerr << "wwan-sim: " << error << "\n";
    return 1;
  }
  return 0;
}
