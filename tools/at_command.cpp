#include "tools/at_command.hpp"

#include <chrono>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <vector>

#include "control/at_channel.hpp"
#include "control/at_transport.hpp"
#include "control/cdc_ncm.hpp"
#include "control/quirks.hpp"
#include "control/session_runner.hpp"
#include "tools/device_args.hpp"
#include "tools/shutdown.hpp"
#include "usb/transfer_pipes.hpp"

namespace wwan::cli {
namespace {

constexpr std::string_view kUsage =
    "usage: wwan-dp at --dev VID:PID [--path BUS-PORT] [--serial SERIAL] [--timeout-ms N]\n"
    "                  [--at-port auto|encapsulated|serial] 'AT…' ['AT…' …]\n"
    "\n"
    "Sends AT commands to the modem and prints each answer: the information lines, then the final\n"
    "result (OK, ERROR, +CME ERROR: n, ...). Unsolicited lines that arrive meanwhile are printed\n"
    "prefixed with \"unsolicited: \" on standard error. Exit status 0 when every command ended in OK,\n"
    "1 otherwise. The kernel drivers are given back afterwards.\n"
    "\n"
    "--at-port: where the commands go. encapsulated: the CDC encapsulated-command channel of the\n"
    "network function (a Huawei NCM stick's AT port, also when no ttyUSB exists). serial: the\n"
    "modem's serial AT interface over its bulk endpoints (what the kernel's option driver makes a\n"
    "ttyUSB of; detached while in use). auto (the default): the encapsulated channel, checked with\n"
    "a plain AT first, and the serial port when it answers nothing; the serial port straight away\n"
    "for modems without an encapsulated AT channel (the quirk table: FM350-GL) or MBIM modems.\n";

constexpr std::chrono::milliseconds kPollInterval{100};  // GET_ENCAPSULATED_RESPONSE without RESPONSE_AVAILABLE
// auto: how long the probe (a plain AT, once retried) waits before the encapsulated channel counts
// as dead. A live channel answers AT within milliseconds.
constexpr std::chrono::milliseconds kProbeTimeout{2000};

struct Notifications {
  std::mutex mu;
  bool response_available = false;
  usb::InPipe* pipe = nullptr;
  static void sink(void* user, unsigned slot, std::span<const std::uint8_t> data) {
    auto* n = static_cast<Notifications*>(user);
    const auto decoded = cdc::decode_notification(data);
    if (decoded && decoded->header.notification == cdc::kNotifyResponseAvailable) {
      const std::lock_guard lock(n->mu);
      n->response_available = true;
    }
    n->pipe->release(slot);
  }
};

}  // namespace

int run_at(std::span<const std::string_view> args, std::ostream& out, std::ostream& err) {
  DeviceArgs device_args;
  std::vector<std::string> commands;
  std::chrono::milliseconds timeout{10000};
  control::AtPortChoice choice = control::AtPortChoice::automatic;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view a = args[i];
    if (a == "--help" || a == "-h") {
      out << kUsage;
      return 0;
    }
    std::string error;
    const int used = device_args.take(args, i, error);
    if (used < 0) {
      err << "wwan-dp at: " << error << "\n";
      return 2;
    }
    if (used > 0) {
      i += static_cast<std::size_t>(used - 1);
      continue;
    }
    if (a == "--timeout-ms" && i + 1 < args.size()) {
      const std::string v(args[++i]);
      char* end = nullptr;
      const unsigned long ms = std::strtoul(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || ms == 0 || ms > 600000) {
        err << "wwan-dp at: --timeout-ms wants 1..600000, not '" << v << "'\n";
        return 2;
      }
      timeout = std::chrono::milliseconds(ms);
    } else if (a == "--at-port" && i + 1 < args.size()) {
      const std::optional<control::AtPortChoice> c = control::parse_at_port_choice(args[++i]);
      if (!c) {
        err << "wwan-dp at: --at-port is auto, encapsulated or serial, not '" << args[i] << "'\n";
        return 2;
      }
      choice = *c;
    } else if (a.size() >= 2 && (a.substr(0, 2) == "AT" || a.substr(0, 2) == "at")) {
      commands.emplace_back(a);
    } else {
      err << "wwan-dp at: '" << a << "' is neither an option nor an AT command (see wwan-dp at --help)\n";
      return 2;
    }
  }
  if (!device_args.selector) {
    err << "wwan-dp at: which modem? --dev VID:PID (see `wwan-dp list`)\n";
    return 2;
  }
  if (commands.empty()) {
    err << "wwan-dp at: which command? e.g. wwan-dp at --dev 12d1:1506 'ATI'\n";
    return 2;
  }

  ShutdownSignals signals;  // Ctrl-C ends the wait and still gives the modem back
  std::string error;
  std::optional<usb::Context> ctx = usb::Context::open(error);
  if (!ctx) {
    err << "wwan-dp at: cannot use USB on this machine: " << error << "\n";
    return 1;
  }
  const usb::VidPid id = device_args.selector->id;
  const bool quirk_serial = control::find_quirks(id.vendor_id, id.product_id, 0, 0).quirks.at_over_serial;

  // Where the commands go: the serial port alone, or the network function's encapsulated channel
  // (with the serial port as its fallback in auto).
  std::optional<OpenedModem> modem;
  std::optional<OpenedSerialModem> serial;
  std::unique_ptr<control::CommandTransport> port;
  bool probe = false;  // auto: a plain AT first, so that a dead encapsulated channel shows before the user's commands
  if (choice == control::AtPortChoice::serial || (choice == control::AtPortChoice::automatic && quirk_serial)) {
    serial = open_serial_modem(*ctx, *device_args.selector, error);
  } else {
    modem = open_modem(*ctx, *device_args.selector, error, device_args.configuration);
    const bool mbim = modem && modem->function.kind == usb::Function::Mbim;
    if (mbim && choice == control::AtPortChoice::encapsulated) {
      err << "wwan-dp at: " << modem->device.describe()
          << " is in MBIM mode: its control channel speaks MBIM, not AT (use --at-port serial)\n";
      return 1;
    }
    if ((!modem || mbim) && choice == control::AtPortChoice::automatic) {
      // No AT-speaking network function (MBIM, RNDIS, serial-only): its serial AT port, if it has one.
      const std::string why = error;
      modem.reset();  // gives the network function back before the serial interface is claimed
      serial = open_serial_modem(*ctx, *device_args.selector, error);
      if (!serial && !mbim) error = why;
    }
  }
  usb::Transport* events = nullptr;
  if (serial) {
    events = serial->transport.get();
    port = control::make_serial_at_transport(*serial->transport, serial->port);
  } else if (modem) {
    events = modem->transport.get();
    const control::FallbackOptions fallback{.answer_timeout = kProbeTimeout, .unanswered_commands = 2};
    port = make_at_command_transport(*modem->transport, modem->function.control_interface, choice, false, fallback,
                                     libusb_serial_at_factory(*ctx, modem->device, modem->configuration), error);
    probe = choice == control::AtPortChoice::automatic;
  }
  if (!port) {
    err << "wwan-dp at: " << error << "\n";
    return 1;
  }
  if (!port->start(error)) {
    err << "wwan-dp at: cannot use the " << port->describe() << ": " << error << "\n";
    return 1;
  }

  Notifications notes;
  std::optional<usb::InPipe> pipe;
  if (modem) {
    pipe.emplace(*modem->transport, control::notification_pipe_config(modem->function), &Notifications::sink, &notes);
    notes.pipe = &*pipe;
    pipe->start();
  }

  control::at::AtChannel channel;
  std::optional<control::at::CommandId> probe_id;
  if (probe) probe_id = channel.submit("AT", control::at::Clock::now(), kProbeTimeout, 1);
  for (const std::string& c : commands)
    if (!channel.submit(c, control::at::Clock::now(), timeout)) {
      err << "wwan-dp at: '" << c << "' cannot be sent (a command with CR/LF in it, or more than 15 at once)\n";
      return 2;
    }

  bool all_ok = true;
  std::size_t answered = 0;
  auto next_poll = control::at::Clock::now();
  const auto handle = [&](const std::vector<control::at::AtEvent>& events_done) {
    for (const control::at::AtEvent& e : events_done) {
      if (e.kind == control::at::AtEventKind::unsolicited) err << "unsolicited: " << e.line << "\n";
      if (e.kind != control::at::AtEventKind::final_result || !e.response) continue;
      if (probe_id && e.response->id == *probe_id) continue;  // the probe's answer is not the user's
      for (const std::string& l : e.response->lines) out << l << "\n";
      out << (e.response->final_line.empty() ? control::at::to_string(e.response->result) : e.response->final_line)
          << "\n";
      out.flush();
      all_ok = all_ok && e.response->ok();
      ++answered;
    }
  };
  while (answered < commands.size() && !events->device_gone() && !port->broken()) {
    for (std::vector<std::uint8_t>& c : channel.take_output()) {
      if (!port->send(c, control::at::Clock::now()) && choice == control::AtPortChoice::encapsulated) {
        err << "wwan-dp at: SEND_ENCAPSULATED_COMMAND failed: this function has no encapsulated AT channel"
            << " (try --at-port serial)\n";
        return 1;
      }
    }
    events->handle_events(20);
    if (signals.wait(0)) {
      err << "wwan-dp at: interrupted\n";
      all_ok = false;
      break;
    }
    bool read = false;
    {
      const std::lock_guard lock(notes.mu);
      read = notes.response_available;
      notes.response_available = false;
    }
    const auto now = control::at::Clock::now();
    const bool poll = now >= next_poll;
    if (poll) next_poll = now + kPollInterval;
    port->receive(read, poll, now, [&](std::span<const std::uint8_t> bytes, bool) {
      handle(channel.feed(bytes, control::at::Clock::now()));
    });
    if (const std::string notice = port->take_notice(); !notice.empty()) err << "wwan-dp at: " << notice << "\n";
    handle(channel.on_timer(control::at::Clock::now()));
  }
  if (pipe) {
    pipe->stop();
    pipe->drain(2000);
  }
  port->stop();
  if (events->device_gone()) {
    err << "wwan-dp at: " << (modem ? modem->device.describe() : serial->device.describe()) << " left the bus\n";
    return 1;
  }
  if (port->broken() && answered < commands.size()) {
    err << "wwan-dp at: the " << port->describe() << " stopped working\n";
    return 1;
  }
  return all_ok ? 0 : 1;
}

}  // namespace wwan::cli
