#include "tools/at_command.hpp"

#include <chrono>
#include <cstdlib>
#include <mutex>
#include <vector>

#include "control/at_channel.hpp"
#include "control/cdc_ncm.hpp"
#include "control/session_runner.hpp"
#include "tools/device_args.hpp"
#include "tools/shutdown.hpp"
#include "usb/transfer_pipes.hpp"

namespace wwan::cli {
namespace {

constexpr std::string_view kUsage =
    "usage: wwan-dp at --dev VID:PID [--path BUS-PORT] [--serial SERIAL] [--timeout-ms N] 'AT…' ['AT…' …]\n"
    "\n"
    "Sends AT commands over the modem's CDC encapsulated-command channel (the AT port of a Huawei\n"
    "NCM stick, also when no ttyUSB exists) and prints each answer: the information lines, then the\n"
    "final result (OK, ERROR, +CME ERROR: n, ...). Unsolicited lines that arrive meanwhile are\n"
    "printed prefixed with \"unsolicited: \" on standard error. Exit status 0 when every command\n"
    "ended in OK, 1 otherwise. The kernel driver is given back afterwards.\n";

constexpr std::chrono::milliseconds kPollInterval{100};  // GET_ENCAPSULATED_RESPONSE without RESPONSE_AVAILABLE

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
  std::optional<OpenedModem> modem = open_modem(*ctx, *device_args.selector, error, device_args.configuration);
  if (!modem) {
    err << "wwan-dp at: " << error << "\n";
    return 1;
  }
  if (modem->function.kind == usb::Function::Mbim) {
    err << "wwan-dp at: " << modem->device.describe()
        << " is in MBIM mode: its control channel speaks MBIM, not AT (use its serial AT port)\n";
    return 1;
  }
  usb::LibusbTransport& t = *modem->transport;
  const std::uint8_t iface = modem->function.control_interface;

  Notifications notes;
  usb::InPipe pipe(t, control::notification_pipe_config(modem->function), &Notifications::sink, &notes);
  notes.pipe = &pipe;
  pipe.start();

  control::at::AtChannel channel;
  for (const std::string& c : commands)
    if (!channel.submit(c, control::at::Clock::now(), timeout)) {
      err << "wwan-dp at: '" << c << "' cannot be sent (a command with CR/LF in it, or more than 16 at once)\n";
      return 2;
    }

  bool all_ok = true;
  std::size_t answered = 0;
  auto next_poll = control::at::Clock::now();
  std::vector<std::uint8_t> buffer(4096);
  const auto handle = [&](const std::vector<control::at::AtEvent>& events) {
    for (const control::at::AtEvent& e : events) {
      if (e.kind == control::at::AtEventKind::unsolicited) err << "unsolicited: " << e.line << "\n";
      if (e.kind != control::at::AtEventKind::final_result || !e.response) continue;
      for (const std::string& l : e.response->lines) out << l << "\n";
      out << (e.response->final_line.empty() ? control::at::to_string(e.response->result) : e.response->final_line)
          << "\n";
      out.flush();
      all_ok = all_ok && e.response->ok();
      ++answered;
    }
  };
  while (answered < commands.size() && !t.device_gone()) {
    for (std::vector<std::uint8_t>& c : channel.take_output()) {
      const usb::ControlResult r =
          t.control({cdc::kRequestTypeClassInterfaceOut, cdc::kSendEncapsulatedCommand, 0, iface}, c, 5000);
      if (r.status != usb::TransferStatus::completed) {
        err << "wwan-dp at: SEND_ENCAPSULATED_COMMAND failed (" << usb::to_string(r.status)
            << "): this function has no encapsulated AT channel\n";
        return 1;
      }
    }
    t.handle_events(20);
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
    if (now >= next_poll) {
      read = true;
      next_poll = now + kPollInterval;
    }
    for (int i = 0; read && i < 32; ++i) {
      const usb::ControlResult r =
          t.control({cdc::kRequestTypeClassInterfaceIn, cdc::kGetEncapsulatedResponse, 0, iface}, buffer, 5000);
      if (r.status != usb::TransferStatus::completed || r.actual_bytes == 0) break;
      handle(channel.feed(std::span<const std::uint8_t>(buffer.data(), r.actual_bytes), control::at::Clock::now()));
    }
    handle(channel.on_timer(control::at::Clock::now()));
  }
  pipe.stop();
  pipe.drain(2000);
  if (t.device_gone()) {
    err << "wwan-dp at: " << modem->device.describe() << " left the bus\n";
    return 1;
  }
  return all_ok ? 0 : 1;
}

}  // namespace wwan::cli
