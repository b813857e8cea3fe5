#include "tools/monitor.hpp"
#include "tools/text.hpp"

#include <sys/eventfd.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <sstream>
#include <thread>

#include "control/cdc_ncm.hpp"
#include "control/session_runner.hpp"
#include "tools/device_args.hpp"
#include "tools/shutdown.hpp"
#include "usb/libusb_transport.hpp"
#include "usb/network_function.hpp"
#include "usb/transfer_pipes.hpp"

namespace wwan::cli {
namespace {

constexpr std::string_view kUsage =
    "usage: wwan-dp monitor --dev VID:PID [--path BUS-PORT] [--serial SERIAL] [--configuration N]\n"
    "                       [--json] [--count N]\n"
    "\n"
    "Claims the modem's network function (detaching huawei_cdc_ncm / cdc_ncm / cdc_mbim), prints\n"
    "every notification its interrupt endpoint sends (NETWORK_CONNECTION, RESPONSE_AVAILABLE,\n"
    "CONNECTION_SPEED_CHANGE) and, after each RESPONSE_AVAILABLE, the encapsulated response it\n"
    "announces (Huawei: unsolicited AT lines such as ^NDISSTAT; MBIM: the message, in hex).\n"
    "When the active configuration has no NCM/MBIM function another one that has is selected\n"
    "(Huawei 12d1:1446: MBIM in configuration 2); --configuration N forces one.\n"
    "Runs until Ctrl-C / SIGTERM, or N notifications with --count; then gives the interfaces back\n"
    "to the kernel driver.\n";

// GET_ENCAPSULATED_RESPONSE reads at most this much per request (cdc-wdm's default buffer; MBIM
// devices announce theirs in wMaxControlMessage, which replaces it).
constexpr std::uint16_t kDefaultResponseBytes = 4096;
constexpr unsigned kControlTimeout_ms = 5000;


std::string hex(std::span<const std::uint8_t> b) {
  std::string s;
  char x[4];
  for (const std::uint8_t v : b) {
    std::snprintf(x, sizeof x, "%02x", v);
    s += x;
  }
  return s;
}

// Printable text (AT lines) or hex (MBIM messages, garbage).
bool is_text(std::span<const std::uint8_t> b) {
  for (const std::uint8_t v : b)
    if ((v < 0x20 && v != '\r' && v != '\n' && v != '\t') || v >= 0x7f) return false;
  return true;
}

struct Monitor {
  usb::Transport& transport;
  const usb::NetworkFunction& function;
  bool json = false;
  std::ostream& out;
  std::mutex out_mu;
  usb::InPipe* pipe = nullptr;
  int wake_fd = -1;                          // eventfd: the main thread has work
  std::atomic<unsigned> responses_due{0};    // RESPONSE_AVAILABLE seen, not yet read
  std::atomic<std::uint64_t> notifications{0};
  std::atomic<bool> stop{false};

  void line(const std::string& text_form, const std::string& json_form) {
    const std::lock_guard lock(out_mu);
    out << (json ? json_form : text_form) << "\n";
    out.flush();
  }
  void wake_main() {
    const std::uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = write(wake_fd, &one, sizeof one);
  }

  // Event thread: one interrupt transfer.
  static void on_notification(void* user, unsigned slot, std::span<const std::uint8_t> data) {
    auto* self = static_cast<Monitor*>(user);
    self->notification(data);
    self->pipe->release(slot);
  }
  void notification(std::span<const std::uint8_t> data) {
    const std::optional<cdc::Notification> n = cdc::decode_notification(data);
    if (!n) {
      line("notification (malformed, " + std::to_string(data.size()) + " bytes): " + hex(data),
           R"({"notification":"malformed","bytes":")" + hex(data) + "\"}");
    } else {
      const char* name = cdc::notification_name(n->header.notification);
      std::ostringstream text, js;
      text << name << " interface " << n->header.index;
      js << R"({"notification":")" << name << R"(","interface":)" << n->header.index;
      if (n->header.notification == cdc::kNotifyNetworkConnection) {
        text << (n->header.value != 0 ? " connected" : " disconnected");
        js << R"(,"connected":)" << (n->header.value != 0 ? "true" : "false");
      } else if (n->header.notification == cdc::kNotifyConnectionSpeedChange) {
        if (const auto speed = cdc::decode_connection_speed(n->data)) {
          text << " downlink " << speed->downlink_bits_per_s << " bit/s uplink " << speed->uplink_bits_per_s
               << " bit/s";
          js << R"(,"downlink_bits_per_s":)" << speed->downlink_bits_per_s << R"(,"uplink_bits_per_s":)"
             << speed->uplink_bits_per_s;
        } else {
          text << " (speeds split over a second transfer)";
        }
      } else if (n->header.notification != cdc::kNotifyResponseAvailable) {
        text << " value " << n->header.value << " data " << hex(n->data);
        js << R"(,"value":)" << n->header.value << R"(,"data":")" << hex(n->data) << '"';
      }
      js << '}';
      line(text.str(), js.str());
      if (n->header.notification == cdc::kNotifyResponseAvailable) {
        responses_due.fetch_add(1);
        wake_main();
      }
    }
    notifications.fetch_add(1);
    wake_main();
  }

  // Main thread: GET_ENCAPSULATED_RESPONSE until the device has nothing more (a zero-length
  // answer, CDC 1.2 §6.2.2), bounded so a device that never stops answering cannot pin us here.
  void read_responses() {
    while (responses_due.load() > 0) {
      responses_due.fetch_sub(1);
      const std::uint16_t room =
          function.mbim && function.mbim->max_control_message >= 64 ? function.mbim->max_control_message
                                                                    : kDefaultResponseBytes;
      std::vector<std::uint8_t> buffer(room);
      for (int reads = 0; reads < 16; ++reads) {
        const usb::ControlResult r = transport.control({.request_type = cdc::kRequestTypeClassInterfaceIn,
                                                        .request = cdc::kGetEncapsulatedResponse,
                                                        .value = 0,
                                                        .index = function.control_interface},
                                                       buffer, kControlTimeout_ms);
        if (r.status != usb::TransferStatus::completed) {
          line(std::string("GET_ENCAPSULATED_RESPONSE failed: ") + usb::to_string(r.status),
               R"({"response_error":")" + std::string(usb::to_string(r.status)) + "\"}");
          break;
        }
        if (r.actual_bytes == 0) break;
        const std::span<const std::uint8_t> b(buffer.data(), r.actual_bytes);
        if (is_text(b)) {
          // AT responses arrive as "\r\n^NDISSTAT: 0,,,\"IPV4\"\r\n": one printed line per text line.
          std::string text(b.begin(), b.end());
          std::size_t at = 0;
          while (at < text.size()) {
            std::size_t end = text.find_first_of("\r\n", at);
            if (end == std::string::npos) end = text.size();
            if (end > at) {
              const std::string l = text.substr(at, end - at);
              line("response: " + l, R"({"response":)" + json_string(l) + "}");
            }
            at = end + 1;
          }
        } else {
          line("response (" + std::to_string(b.size()) + " bytes): " + hex(b), R"({"response_hex":")" + hex(b) + "\"}");
        }
      }
    }
  }
};

}  // namespace

int run_monitor(std::span<const std::string_view> args, std::ostream& out, std::ostream& err) {
  DeviceArgs device_args;
  bool json = false;
  std::optional<std::uint64_t> count;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view a = args[i];
    if (a == "--help" || a == "-h") {
      out << kUsage;
      return 0;
    }
    std::string error;
    const int used = device_args.take(args, i, error);
    if (used < 0) {
      err << "wwan-dp monitor: " << error << "\n";
      return 2;
    }
    if (used > 0) {
      i += static_cast<std::size_t>(used - 1);
      continue;
    }
    if (a == "--json") {
      json = true;
    } else if (a == "--count" && i + 1 < args.size()) {
      const std::string n(args[++i]);
      char* end = nullptr;
      const unsigned long long v = std::strtoull(n.c_str(), &end, 10);
      if (n.empty() || *end != '\0' || v == 0) {
        err << "wwan-dp monitor: --count wants a positive number, not '" << n << "'\n";
        return 2;
      }
      count = v;
    } else {
      err << "wwan-dp monitor: unknown argument '" << a << "' (see wwan-dp monitor --help)\n";
      return 2;
    }
  }
  if (!device_args.selector) {
    err << "wwan-dp monitor: which modem? --dev VID:PID (see `wwan-dp list`)\n";
    return 2;
  }

  // Signals first, before libusb starts its threads, so that every thread has them blocked.
  ShutdownSignals signals;
  std::string error;
  std::optional<usb::Context> ctx = usb::Context::open(error);
  if (!ctx) {
    err << "wwan-dp monitor: cannot use USB on this machine: " << error << "\n";
    return 1;
  }
  std::optional<OpenedModem> modem = open_modem(*ctx, *device_args.selector, error, device_args.configuration);
  if (!modem) {
    err << "wwan-dp monitor: " << error << "\n";
    return 1;
  }
  usb::LibusbTransport& transport = *modem->transport;
  const usb::NetworkFunction& function = modem->function;

  Monitor m{transport, function, json, out, {}, nullptr, -1, {}, {}, {}};
  m.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (m.wake_fd < 0) {
    err << "wwan-dp monitor: eventfd: " << std::strerror(errno) << "\n";
    return 1;
  }
  usb::InPipe pipe(transport, control::notification_pipe_config(function), &Monitor::on_notification, &m);
  m.pipe = &pipe;
  if (!pipe.start()) {
    err << "wwan-dp monitor: cannot read the notification endpoint 0x" << std::hex
        << unsigned{function.notification.address} << std::dec << " of " << transport.device().describe() << ": "
        << usb::to_string(pipe.state()) << "\n";
    close(m.wake_fd);
    return 1;
  }
  {
    std::ostringstream detached;
    for (const usb::ClaimRecord& c : transport.claims())
      if (c.detached_driver) detached << " " << *c.detached_driver << " (interface " << unsigned{c.interface_number} << ")";
    const std::string who = transport.device().describe();
    m.line("monitoring " + who + ": " + usb::to_string(function.kind) + " control interface " +
               std::to_string(function.control_interface) + ", notifications on endpoint 0x" +
               [&] {
                 char b[8];
                 std::snprintf(b, sizeof b, "%02x", function.notification.address);
                 return std::string(b);
               }() +
               (detached.str().empty() ? std::string() : "; detached" + detached.str()) +
               "; Ctrl-C gives it back",
           R"({"monitoring":)" + json_string(who) + R"(,"function":")" + usb::to_string(function.kind) +
               R"(","control_interface":)" + std::to_string(function.control_interface) + "}");
  }

  std::thread events([&] {
    while (!m.stop.load() && pipe.state() == usb::PipeState::running) transport.handle_events(1000);
    m.wake_main();  // the pipe ended by itself (device gone, failed): tell the main thread
  });

  int exit_code = 0;
  std::string why;
  for (;;) {
    pollfd fds[2] = {{signals.fd(), POLLIN, 0}, {m.wake_fd, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0 && errno != EINTR) break;
    if ((fds[0].revents & POLLIN) != 0) {
      if (const std::optional<int> sig = signals.wait(0)) {
        why = std::string("stopped by ") + sigabbrev_np(*sig);
        break;
      }
    }
    if ((fds[1].revents & POLLIN) != 0) {
      std::uint64_t v = 0;
      [[maybe_unused]] const ssize_t n = read(m.wake_fd, &v, sizeof v);
      m.read_responses();
      if (count && m.notifications.load() >= *count) {
        why = "stopped after " + std::to_string(*count) + " notifications";
        break;
      }
      if (pipe.state() == usb::PipeState::device_gone) {
        why = transport.device().describe() + " left the bus";
        exit_code = 1;
        break;
      }
      if (pipe.state() == usb::PipeState::failed) {
        why = "the notification endpoint keeps failing";
        exit_code = 1;
        break;
      }
    }
  }
  m.stop.store(true);
  transport.wake();
  events.join();
  pipe.stop();
  pipe.drain(2000);
  close(m.wake_fd);
  std::vector<usb::ClaimRecord> claims = transport.claims();
  modem->transport.reset();  // release the interfaces, reattach the kernel drivers
  std::ostringstream given_back;
  for (const usb::ClaimRecord& c : claims)
    if (c.detached_driver) given_back << "; interface " << unsigned{c.interface_number} << " given back to " << *c.detached_driver;
  err << "wwan-dp monitor: " << why << given_back.str() << "\n";
  return exit_code;
}

}  // namespace wwan::cli
