#include "tools/connect.hpp"

#include <cstdio>
#include <sstream>

#include "control/at_transport.hpp"
#include "control/fcc_unlock_at.hpp"
#include "control/huawei_session.hpp"
#include "control/mbim_session.hpp"
#include "control/ncm_negotiation.hpp"
#include "control/quirks.hpp"
#include "control/session_runner.hpp"
#include "tools/device_args.hpp"
#include "tools/text.hpp"
#include "tools/shutdown.hpp"

namespace wwan::cli {
namespace {

constexpr std::string_view kUsage =
    "usage: wwan-dp connect --dev VID:PID [--path BUS-PORT] [--serial SERIAL] [--configuration N]\n"
    "                       [--apn APN] [--apn-user U --apn-password P [--auth pap|chap|mschapv2]] [--pin PIN]\n"
    "                       [--ip ipv4|ipv6|ipv4v6] [--fcc-unlock] [--vendor-hash lenovo|dell|HEX8]\n"
    "                       [--at-port auto|encapsulated|serial] [--once] [--json]\n"
    "\n"
    "Claims the modem, negotiates the NTB parameters and brings the data session up the way wwan-dp's\n"
    "daemon does — Huawei NCM: AT^NDISDUP and AT^DHCP? over the encapsulated channel; MBIM: OPEN,\n"
    "radio, registration, attach, CONNECT, IP_CONFIGURATION (with the FCC unlock where the quirk\n"
    "table or --fcc-unlock says so) — and prints the IP configuration the network assigned. It then\n"
    "stays connected, redialling after network drops, until Ctrl-C / SIGTERM (or at once with\n"
    "--once), disconnects and gives the modem back to its kernel driver. No packets move: this is the\n"
    "control plane alone, to check an APN, a PIN or a modem before running the daemon.\n"
    "\n"
    "--at-port (Huawei NCM): auto (the default) uses the encapsulated channel and moves to the modem's\n"
    "serial AT interface if the channel answers nothing (some E3372h firmware), saying so once;\n"
    "encapsulated or serial force one. An FM350-GL is FCC-unlocked over its serial AT port first\n"
    "(--vendor-hash: the OEM key, Lenovo's by default).\n";

std::string describe(const control::SessionStatus& st, bool json) {
  std::ostringstream o;
  if (json) {
    o << R"({"state":")" << control::to_string(st.state) << '"';
    if (st.ip.ipv4) {
      const control::Ipv4Config& v = *st.ip.ipv4;
      o << R"(,"ipv4":{"address":")" << ipv4_text(v.address) << '/' << unsigned{v.prefix_length} << '"';
      if (v.gateway) o << R"(,"gateway":")" << ipv4_text(*v.gateway) << '"';
      o << R"(,"dns":[)";
      for (std::size_t i = 0; i < v.dns.size(); ++i) o << (i ? "," : "") << '"' << ipv4_text(v.dns[i]) << '"';
      o << ']';
      if (v.mtu) o << R"(,"mtu":)" << v.mtu;
      o << '}';
    }
    if (st.ip.ipv6) {
      const control::Ipv6Config& v = *st.ip.ipv6;
      o << R"(,"ipv6":{"address":")" << ipv6_text(v.address) << '/' << unsigned{v.prefix_length} << '"';
      if (v.gateway) o << R"(,"gateway":")" << ipv6_text(*v.gateway) << '"';
      o << R"(,"dns":[)";
      for (std::size_t i = 0; i < v.dns.size(); ++i) o << (i ? "," : "") << '"' << ipv6_text(v.dns[i]) << '"';
      o << ']';
      if (v.mtu) o << R"(,"mtu":)" << v.mtu;
      o << '}';
    }
    o << R"(,"connects":)" << st.connects << R"(,"drops":)" << st.drops << '}';
    return o.str();
  }
  o << control::to_string(st.state);
  if (st.ip.ipv4) {
    const control::Ipv4Config& v = *st.ip.ipv4;
    o << ": " << ipv4_text(v.address) << '/' << unsigned{v.prefix_length};
    if (v.gateway) o << " gateway " << ipv4_text(*v.gateway);
    for (const auto& d : v.dns) o << " dns " << ipv4_text(d);
    if (v.mtu) o << " mtu " << v.mtu;
  }
  if (st.ip.ipv6) {
    const control::Ipv6Config& v = *st.ip.ipv6;
    o << (st.ip.ipv4 ? ";" : ":") << ' ' << ipv6_text(v.address) << '/' << unsigned{v.prefix_length};
    if (v.gateway) o << " gateway " << ipv6_text(*v.gateway);
  }
  if (!st.error.empty() && st.state != control::SessionState::connected) o << " (" << st.error << ')';
  return o.str();
}

}  // namespace

namespace {
int run_session(std::span<const std::string_view> args, std::ostream& out, std::ostream& err, bool fcc_only);
}  // namespace

int run_connect(std::span<const std::string_view> args, std::ostream& out, std::ostream& err) {
  return run_session(args, out, err, false);
}

int run_fcc_unlock(std::span<const std::string_view> args, std::ostream& out, std::ostream& err) {
  for (const std::string_view a : args)
    if (a == "--help" || a == "-h") {
      out << "usage: wwan-dp fcc-unlock --dev VID:PID [--path BUS-PORT] [--serial SERIAL]\n"
             "                          [--vendor-hash lenovo|dell|HEX8]\n"
             "\n"
             "Sierra EM7455-class (MBIM): opens the MBIM function and, if the radio is refused, sends the\n"
             "FCC authentication over QMI-over-MBIM (DMS 0x555F), then checks that the radio turns on. A\n"
             "modem whose radio comes on without it needs no unlock and is left alone.\n"
             "Fibocom FM350-GL (0e8d:7126/7127): over its serial AT port, AT+GTFCCEFFSTATUS?, then the\n"
             "AT+GTFCCLOCKGEN challenge answered with AT+GTFCCLOCKVER (SHA-256 with the OEM's vendor hash:\n"
             "--vendor-hash, Lenovo's 3df8c719 by default), then AT+CFUN=1 to check the radio.\n"
             "The lock comes back at the next power cycle: the daemon and `connect` unlock by themselves\n"
             "where the quirk table says so.\n";
      return 0;
    }
  return run_session(args, out, err, true);
}

namespace {

// The FM350-GL FCC unlock over the modem's serial AT port (control/fcc_unlock_at.hpp): 0 when the
// radio is on afterwards, 1 with one line on `err` otherwise.
int run_fm350_unlock(const usb::Context& ctx, const usb::DeviceSelector& selector, std::uint32_t vendor_hash,
                     ShutdownSignals& signals, std::ostream& out, std::ostream& err, const char* who) {
  std::string error;
  std::optional<OpenedSerialModem> serial = open_serial_modem(ctx, selector, error);
  if (!serial) {
    err << who << error << "\n";
    return 1;
  }
  std::unique_ptr<control::SerialAtTransport> port = control::make_serial_at_transport(*serial->transport, serial->port);
  if (!port->start(error)) {
    err << who << "cannot use the " << port->describe() << ": " << error << "\n";
    return 1;
  }
  control::fcc::Fm350UnlockOptions options;
  options.vendor_hash = vendor_hash;
  control::fcc::Fm350FccUnlock unlock(options);
  unlock.start(control::Clock::now());
  // Every step is bounded by its command timeout; this bounds a modem that keeps answering junk.
  const auto deadline = control::Clock::now() + std::chrono::seconds(60);
  while (!unlock.finished()) {
    for (const std::vector<std::uint8_t>& c : unlock.take_commands()) (void)port->send(c, control::Clock::now());
    serial->transport->handle_events(20);
    port->receive(false, false, control::Clock::now(),
                  [&](std::span<const std::uint8_t> bytes, bool) { unlock.on_response(bytes, control::Clock::now()); });
    if (const auto t = unlock.next_timer(); t && control::Clock::now() >= *t) unlock.on_timer(control::Clock::now());
    if (serial->transport->device_gone() || port->broken()) {
      err << who << serial->device.describe() << " left the bus (or its AT port died) during the FCC unlock\n";
      return 1;
    }
    if (const std::optional<int> sig = signals.wait(0)) {
      err << who << "stopped by " << sigabbrev_np(*sig) << " during the FCC unlock\n";
      return 1;
    }
    if (control::Clock::now() >= deadline) {
      err << who << "the FCC unlock did not finish within 60 s (last step: "
          << control::fcc::to_string(unlock.state()) << ")\n";
      return 1;
    }
  }
  port->stop();
  if (unlock.state() == control::fcc::Fm350UnlockState::failed) {
    err << who << unlock.error() << "\n";
    return 1;
  }
  out << (unlock.unlocked_by_us() ? "FCC unlock accepted; the radio is on"
                                  : "not FCC-locked (AT+GTFCCEFFSTATUS? mode 0): nothing to unlock; the radio is on")
      << "\n";
  return 0;
}

int run_session(std::span<const std::string_view> args, std::ostream& out, std::ostream& err, bool fcc_only) {
  const char* const who = fcc_only ? "wwan-dp fcc-unlock: " : "wwan-dp connect: ";
  DeviceArgs device_args;
  control::SessionSettings settings;
  bool once = false, json = false, force_fcc = false;
  control::AtPortChoice at_port = control::AtPortChoice::automatic;
  std::uint32_t vendor_hash = control::fcc::kFm350VendorHashLenovo;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view a = args[i];
    if (a == "--help" || a == "-h") {
      out << kUsage;
      return 0;
    }
    std::string error;
    const int used = device_args.take(args, i, error);
    if (used < 0) {
      err << who << error << "\n";
      return 2;
    }
    if (used > 0) {
      i += static_cast<std::size_t>(used - 1);
      continue;
    }
    const bool has_value = i + 1 < args.size();
    if (a == "--once") {
      once = true;
    } else if (a == "--json") {
      json = true;
    } else if (a == "--fcc-unlock") {
      force_fcc = true;
    } else if (a == "--at-port" && has_value) {
      const std::optional<control::AtPortChoice> c = control::parse_at_port_choice(args[++i]);
      if (!c) {
        err << who << "--at-port is auto, encapsulated or serial, not '" << args[i] << "'\n";
        return 2;
      }
      at_port = *c;
    } else if (a == "--vendor-hash" && has_value) {
      const std::optional<std::uint32_t> h = control::fcc::parse_vendor_hash(args[++i]);
      if (!h) {
        err << who << "--vendor-hash is lenovo, dell or 8 hex digits (the first 4 bytes of SHA-256 of the OEM's "
            << "model id), not '" << args[i] << "'\n";
        return 2;
      }
      vendor_hash = *h;
    } else if (a == "--apn" && has_value) {
      settings.apn = std::string(args[++i]);
    } else if (a == "--apn-user" && has_value) {
      settings.user = std::string(args[++i]);
    } else if (a == "--apn-password" && has_value) {
      settings.password = std::string(args[++i]);
    } else if (a == "--pin" && has_value) {
      settings.pin = std::string(args[++i]);
    } else if (a == "--auth" && has_value) {
      const std::string_view v = args[++i];
      if (v == "pap") settings.auth = control::AuthProtocol::pap;
      else if (v == "chap") settings.auth = control::AuthProtocol::chap;
      else if (v == "mschapv2") settings.auth = control::AuthProtocol::mschapv2;
      else {
        err << who << "--auth is pap, chap or mschapv2, not '" << v << "'\n";
        return 2;
      }
    } else if (a == "--ip" && has_value) {
      const std::string_view v = args[++i];
      if (v == "ipv4") settings.families = control::IpFamilies::ipv4;
      else if (v == "ipv6") settings.families = control::IpFamilies::ipv6;
      else if (v == "ipv4v6") settings.families = control::IpFamilies::ipv4v6;
      else {
        err << who << "--ip is ipv4, ipv6 or ipv4v6, not '" << v << "'\n";
        return 2;
      }
    } else {
      err << who << "unknown argument '" << a << "' (see wwan-dp connect --help)\n";
      return 2;
    }
  }
  if (!device_args.selector) {
    err << who << "which modem? --dev VID:PID (see `wwan-dp list`)\n";
    return 2;
  }
  if (!settings.user.empty() && settings.auth == control::AuthProtocol::none) settings.auth = control::AuthProtocol::chap;

  ShutdownSignals signals;
  std::string error;
  std::optional<usb::Context> ctx = usb::Context::open(error);
  if (!ctx) {
    err << who << "cannot use USB on this machine: " << error << "\n";
    return 1;
  }
  // An FM350-GL unlocks over its serial AT port, before anything claims its network function.
  const usb::VidPid id = device_args.selector->id;
  if (control::find_quirks(id.vendor_id, id.product_id, 0, 0).quirks.fcc_unlock == control::FccUnlock::fibocom_at) {
    if (const int code = run_fm350_unlock(*ctx, *device_args.selector, vendor_hash, signals, out, err, who);
        code != 0 || fcc_only)
      return code;
  }
  // --at-port serial: the serial AT interface is claimed with the network function, on one handle.
  std::optional<OpenedModem> modem = open_modem(*ctx, *device_args.selector, error, device_args.configuration,
                                                at_port == control::AtPortChoice::serial);
  if (!modem) {
    err << who << error << "\n";
    return 1;
  }
  const usb::NetworkFunction& f = modem->function;
  const bool mbim = f.kind == usb::Function::Mbim;
  const control::QuirkMatch quirks = control::find_quirks(modem->device.vendor_id, modem->device.product_id, f);
  settings.fcc_unlock = fcc_only || force_fcc || quirks.quirks.fcc_unlock == control::FccUnlock::sierra_qmi;
  if (fcc_only && !mbim) {
    err << who << modem->device.describe() << " is not an MBIM modem: the QMI-over-MBIM FCC unlock does not apply "
        << "(and it is not an FM350-GL, which unlocks over its AT port)\n";
    return 1;
  }
  if (quirks.row != nullptr) err << who << "quirks: " << quirks.row->name << " (" << quirks.row->evidence << ")\n";

  const control::NegotiationResult n = control::negotiate(*modem->transport, f, quirks.quirks);
  if (!n.ok) {
    err << who << "NTB negotiation with " << modem->device.describe() << " failed: " << n.error << "\n";
    return 1;
  }
  for (const std::string& adj : n.plan.adjustments) err << who << adj << "\n";

  std::unique_ptr<control::Session> session;
  control::MbimSession* mbim_session = nullptr;
  control::RunnerOptions ro;
  std::unique_ptr<control::CommandTransport> commands;  // AT sessions: encapsulated, serial or both
  if (mbim) {
    const std::uint32_t max_control = f.mbim ? f.mbim->max_control_message : 4096;
    auto m = std::make_unique<control::MbimSession>(settings, max_control);
    mbim_session = m.get();
    session = std::move(m);
    ro.response_buffer_bytes = static_cast<std::uint16_t>(std::clamp<std::uint32_t>(max_control, 64, 4096));
  } else if (f.kind == usb::Function::HuaweiNcm) {
    session = std::make_unique<control::HuaweiSession>(settings);
    commands = make_at_command_transport(*modem->transport, f.control_interface, at_port, quirks.quirks.at_over_serial,
                                         {.answer_timeout = settings.command_timeout, .unanswered_commands = 2},
                                         modem->serial_at ? claimed_serial_at_factory(*modem)
                                                          : libusb_serial_at_factory(*ctx, modem->device, modem->configuration),
                                         error);
    if (!commands) {
      err << who << modem->device.describe() << ": " << error << "\n";
      return 1;
    }
  } else {
    err << who << modem->device.describe()
        << " is a plain CDC NCM function: it has no session to set up (its address comes from DHCP on the link)\n";
    return 1;
  }
  control::SessionRunner runner(*modem->transport, f, *session, ro, commands.get());
  if (!runner.start()) {
    err << who << runner.error() << "\n";
    return 1;
  }

  int code = 0;
  control::SessionState last = control::SessionState::idle;
  std::uint64_t last_connects = 0;
  for (;;) {
    runner.step(200);
    if (const std::string notice = runner.commands().take_notice(); !notice.empty()) err << who << notice << "\n";
    const control::SessionStatus& st = runner.status();
    if (st.state != last || st.connects != last_connects) {
      if (!fcc_only && (st.state == control::SessionState::connected || st.state == control::SessionState::disconnected ||
                        st.state == control::SessionState::failed)) {
        out << describe(st, json) << "\n";
        out.flush();
      }
      last = st.state;
      last_connects = st.connects;
    }
    if (st.state == control::SessionState::failed) {
      err << who << st.error << "\n";
      code = 1;
      break;
    }
    if (once && st.state == control::SessionState::connected) break;
    if (fcc_only && mbim_session != nullptr) {
      // Done once the unlock went through, or once the session is past the radio step without it.
      if (mbim_session->fcc_authenticated()) {
        out << "FCC unlock accepted; the radio is on\n";
        break;
      }
      if (st.state == control::SessionState::connecting || st.state == control::SessionState::connected) {
        out << "the radio is on without an unlock: nothing to do\n";
        break;
      }
    }
    if (runner.device_gone()) {
      err << who << modem->device.describe() << " left the bus\n";
      return 1;
    }
    if (const std::optional<int> sig = signals.wait(0)) {
      err << who << "stopped by " << sigabbrev_np(*sig) << "\n";
      break;
    }
  }
  runner.stop(std::chrono::seconds(10));
  if (!json && !fcc_only) out << describe(runner.status(), false) << "\n";
  return code;
}

}  // namespace

}  // namespace wwan::cli
