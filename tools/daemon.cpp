#include "tools/daemon.hpp"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "control/huawei_session.hpp"
#include "control/link_session.hpp"
#include "control/mbim_session.hpp"
#include "control/ncm_negotiation.hpp"
#include "control/quirks.hpp"
#include "control/session_runner.hpp"
#include "datapath/link_state.hpp"
#include "datapath/links.hpp"
#include "datapath/rx_path.hpp"
#include "datapath/tx_path.hpp"
#include "datapath/worker.hpp"
#include "sim/inprocess_transport.hpp"
#include "sim/modem.hpp"
#include "tools/device_args.hpp"
#include "tools/shutdown.hpp"
#include "tools/text.hpp"
#include "tun/tun_device.hpp"
#include "tun/uring_io.hpp"
#include "usb/capturing_transport.hpp"
#include "usb/transfer_pipes.hpp"
#include "usb/usbmon_capture.hpp"

namespace wwan::cli {
namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr std::string_view kUsage =
    "usage: wwan-dp --dev VID:PID[@BUS-PORT] [--serial S] [--configuration N] --tun NAME [options]\n"
    "       wwan-dp --sim huawei-e3372|generic-ncm|mbim --tun NAME [options]\n"
    "\n"
    "Claims the modem, negotiates the NTB parameters, brings the data session up (Huawei NCM:\n"
    "AT^NDISDUP + AT^DHCP? over the encapsulated channel; MBIM: OPEN ... CONNECT + IP_CONFIGURATION,\n"
    "with the FCC unlock where needed), configures the TUN NAME from the session and moves packets\n"
    "until Ctrl-C / SIGTERM; redials after network drops and waits for a modem that re-enumerates.\n"
    "--sim runs an emulated modem in this process instead of a USB device (no modem needed).\n"
    "\n"
    "session:  --apn APN  --user U --password P  --auth none|pap|chap|mschapv2  --pin PIN\n"
    "          --ip-type ipv4|ipv6|ipv4v6  --fcc-unlock\n"
    "          --static-ipv4 ADDR/PREFIX[,GATEWAY]   for a plain CDC NCM function (no session to dial)\n"
    "link:     --default-route [METRIC]   add a default route via the TUN (metric default 1024)\n"
    "          --resolv FILE              write the DNS servers to FILE (resolv.conf format)\n"
    "data:     --threads 1|2              RX and TX workers on one thread or two (default 2)\n"
    "          --transfers K              bulk transfers in flight per direction (default 8)\n"
    "output:   --json                     one JSON event per line on stdout\n"
    "          --stats-interval SECONDS   a stats event this often (0 = only on SIGUSR1)\n"
    "          --capture FILE             the USB traffic as a usbmon pcap (Wireshark, tshark)\n"
    "          -v                         say more on stderr\n"
    "\n"
    "Needs root (or CAP_NET_ADMIN and access to the USB device). SIGUSR1 prints the counters.\n";

struct Options {
  DeviceArgs device_args;
  std::optional<std::string> sim_profile;
  std::string tun_name;
  control::SessionSettings settings;
  bool force_fcc = false;
  std::optional<control::Ipv4Config> static_ipv4;
  std::optional<std::uint32_t> default_route_metric;
  std::string resolv_path;
  std::string capture_path;
  bool json = false;
  int verbose = 0;
  unsigned stats_interval_s = 0;
  unsigned threads = 2;
  unsigned transfers = 8;
};

// ---------------------------------------------------------------- text helpers

std::optional<eth::Ipv4Address> parse_ipv4(std::string_view s) {
  eth::Ipv4Address a;
  for (std::size_t i = 0; i < 4; ++i) {
    unsigned v = 0;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || v > 255 || p == s.data()) return std::nullopt;
    a.bytes[i] = static_cast<std::uint8_t>(v);
    s.remove_prefix(static_cast<std::size_t>(p - s.data()));
    if (i < 3) {
      if (s.empty() || s.front() != '.') return std::nullopt;
      s.remove_prefix(1);
    }
  }
  if (!s.empty()) return std::nullopt;
  return a;
}

// ADDR/PREFIX[,GATEWAY]
std::optional<control::Ipv4Config> parse_static_ipv4(std::string_view s) {
  control::Ipv4Config c;
  std::string_view gw;
  if (const std::size_t comma = s.find(','); comma != std::string_view::npos) {
    gw = s.substr(comma + 1);
    s = s.substr(0, comma);
  }
  const std::size_t slash = s.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  const auto addr = parse_ipv4(s.substr(0, slash));
  unsigned prefix = 0;
  const std::string_view ps = s.substr(slash + 1);
  const auto [p, ec] = std::from_chars(ps.data(), ps.data() + ps.size(), prefix);
  if (!addr || ec != std::errc() || p != ps.data() + ps.size() || prefix == 0 || prefix > 32) return std::nullopt;
  c.address = *addr;
  c.prefix_length = static_cast<std::uint8_t>(prefix);
  if (!gw.empty()) {
    const auto g = parse_ipv4(gw);
    if (!g) return std::nullopt;
    c.gateway = *g;
  }
  return c;
}

bool parse_unsigned(std::string_view s, unsigned& v) {
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

// ---------------------------------------------------------------- events

// Every event goes to stdout: a JSON object per line with --json, else a line of text. Problems
// also go to stderr as one line each.
class Events {
 public:
  Events(std::ostream& out, std::ostream& err, bool json) : out_(out), err_(err), json_(json) {}

  void started(const std::string& tun, const std::string& device, std::string_view function,
               const control::NtbPlan& plan, bool sim) {
    if (json_) {
      emit(std::string(R"({"event":"started","tun":)") + json_string(tun) + R"(,"device":)" + json_string(device) +
           R"(,"function":)" + json_string(function) + R"(,"sim":)" + (sim ? "true" : "false") +
           R"(,"ntb":{"format":")" + (plan.format == ntb::NtbFormat::Ntb32 ? "ntb32" : "ntb16") +
           R"(","in_max_size":)" + std::to_string(plan.ntb_in_max_size) +
           R"(,"out_max_size":)" + std::to_string(plan.out.ntb_out_max_size) +
           R"(,"ndp_at_end":)" + (plan.out.ndp_at_end ? "true" : "false") + "}}");
    } else {
      emit("started: " + tun + " on " + device + " (" + std::string(function) + ", " +
           (plan.format == ntb::NtbFormat::Ntb32 ? "NTB32" : "NTB16") + " in " + std::to_string(plan.ntb_in_max_size) +
           " / out " + std::to_string(plan.out.ntb_out_max_size) + " bytes)");
    }
  }

  void connected(const control::IpConfig& ip, std::uint32_t mtu) {
    if (json_) {
      std::string o = R"({"event":"connected")";
      if (ip.ipv4) {
        const auto& v = *ip.ipv4;
        o += R"(,"ipv4":{"address":")" + ipv4_text(v.address) + R"(","prefix":)" + std::to_string(v.prefix_length);
        if (v.gateway) o += R"(,"gateway":")" + ipv4_text(*v.gateway) + '"';
        o += R"(,"dns":[)";
        for (std::size_t i = 0; i < v.dns.size(); ++i) o += (i ? ",\"" : "\"") + ipv4_text(v.dns[i]) + '"';
        o += "]}";
      }
      if (ip.ipv6) {
        const auto& v = *ip.ipv6;
        o += R"(,"ipv6":{"address":")" + ipv6_text(v.address) + R"(","prefix":)" + std::to_string(v.prefix_length);
        if (v.gateway) o += R"(,"gateway":")" + ipv6_text(*v.gateway) + '"';
        o += R"(,"dns":[)";
        for (std::size_t i = 0; i < v.dns.size(); ++i) o += (i ? ",\"" : "\"") + ipv6_text(v.dns[i]) + '"';
        o += "]}";
      }
      emit(o + R"(,"mtu":)" + std::to_string(mtu) + "}");
      return;
    }
    std::string o = "connected:";
    if (ip.ipv4) {
      o += ' ' + ipv4_text(ip.ipv4->address) + '/' + std::to_string(ip.ipv4->prefix_length);
      if (ip.ipv4->gateway) o += " gateway " + ipv4_text(*ip.ipv4->gateway);
      for (const auto& d : ip.ipv4->dns) o += " dns " + ipv4_text(d);
    }
    if (ip.ipv6) {
      o += ' ' + ipv6_text(ip.ipv6->address) + '/' + std::to_string(ip.ipv6->prefix_length);
      for (const auto& d : ip.ipv6->dns) o += " dns " + ipv6_text(d);
    }
    emit(o + " mtu " + std::to_string(mtu));
  }

  void disconnected(std::string_view reason) {
    emit(json_ ? std::string(R"({"event":"disconnected","reason":)") + json_string(reason) + "}"
               : "disconnected: " + std::string(reason));
  }
  void stats(const std::string& json_body, const std::string& text) {
    emit(json_ ? std::string(R"({"event":"stats",)") + json_body + "}" : text);
  }
  void error(std::string_view message) {
    err_ << "wwan-dp: " << message << "\n";
    err_.flush();
    if (json_) emit(std::string(R"({"event":"error","message":)") + json_string(message) + "}");
  }
  void note(std::string_view message) {
    err_ << "wwan-dp: " << message << "\n";
    err_.flush();
  }
  void stopped() { emit(json_ ? R"({"event":"stopped"})" : "stopped"); }

 private:
  void emit(const std::string& line) {
    out_ << line << "\n";
    out_.flush();
  }
  std::ostream& out_;
  std::ostream& err_;
  bool json_;
};

// ---------------------------------------------------------------- the modem, wherever it is

// One presence of the modem on the bus (or the emulated one): the transport stack, its network
// function, and what negotiation agreed.
struct Attachment {
  std::unique_ptr<sim::Modem> sim_modem;
  std::unique_ptr<sim::InProcessTransport> sim_transport;
  std::optional<OpenedModem> opened;
  std::unique_ptr<usb::CapturingTransport> capturing;
  usb::Transport* transport = nullptr;
  usb::NetworkFunction function;
  std::string device_text;
  std::uint16_t vendor_id = 0, product_id = 0;
  control::QuirkMatch quirks;

  ~Attachment() {
    // The capturing decorator goes before what it wraps; the libusb transport's destructor
    // releases the interfaces and reattaches the kernel drivers.
    capturing.reset();
    opened.reset();
    sim_transport.reset();
    sim_modem.reset();
  }
};

std::optional<usb::NetworkFunction> function_of_model(const sim::DeviceModel& m, std::string& error) {
  const auto& d = m.identity().descriptors;
  if (d.size() < 18) {
    error = "emulated modem without descriptors";
    return std::nullopt;
  }
  const auto dev = usb::parse_device_descriptor(std::span(d).first(18));
  if (!dev) {
    error = "emulated modem: bad device descriptor";
    return std::nullopt;
  }
  const auto configs = usb::parse_configurations(std::span(d).subspan(18), dev->vendor_id, dev->product_id);
  if (configs.empty()) {
    error = "emulated modem: no configuration";
    return std::nullopt;
  }
  return usb::find_network_function(configs.front(), error);
}

// The host's MAC: the function's iMACAddress (CDC ECM 1.2 §5.4: the address the device expects
// the host to use, what cdc_ncm gives the netdev), read with GET_DESCRIPTOR(STRING); else a
// random locally administered one.
eth::MacAddress host_mac(usb::Transport& transport, const usb::NetworkFunction& function) {
  if (function.ethernet && function.ethernet->mac_address_string_index != 0) {
    std::array<std::uint8_t, 64> buf{};
    usb::ControlSetup setup;
    setup.request_type = usb::kRequestTypeIn;  // standard, device
    setup.request = 6;                         // GET_DESCRIPTOR (USB 2.0 §9.4.3)
    setup.value = static_cast<std::uint16_t>(0x0300 | function.ethernet->mac_address_string_index);
    setup.index = 0x0409;                      // US English
    const usb::ControlResult r = transport.control(setup, buf, 1000);
    if (r.status == usb::TransferStatus::completed && r.actual_bytes >= 2 && buf[1] == 3) {
      const std::size_t n = std::min<std::size_t>({r.actual_bytes, buf[0], buf.size()});
      std::string text;
      for (std::size_t i = 2; i + 1 < n; i += 2) text += static_cast<char>(buf[i]);  // UTF-16LE, ASCII digits
      if (const auto mac = usb::parse_mac_string(text)) return eth::MacAddress{*mac};
    }
  }
  std::random_device rd;
  eth::MacAddress m;
  for (auto& b : m.bytes) b = static_cast<std::uint8_t>(rd());
  m.bytes[0] = static_cast<std::uint8_t>((m.bytes[0] & 0xFE) | 0x02);  // unicast, locally administered
  return m;
}

// ---------------------------------------------------------------- the data plane

// The pipes, the workers and their io_urings for one attachment. The USB event thread is the
// control thread (SessionRunner::step runs the transport's events): IN completions are posted to
// RX from there, OUT completions wake TX from there.
class DataPlane final : public dp::InLink, public dp::OutLink {
 public:
  struct Config {
    usb::NetworkFunction function;
    control::NtbPlan plan;
    control::Quirks quirks;
    int tun_fd = -1;
    eth::MacAddress our_mac;
    std::size_t mtu_bytes = 1500;
    unsigned threads = 2;
    unsigned transfers = 8;
  };

  DataPlane(usb::Transport& transport, Config config, dp::LinkState& link_state)
      : transport_(transport), config_(std::move(config)), link_state_(link_state) {}

  ~DataPlane() override { stop(); }

  bool start(std::string& error) {
    const bool mbim = config_.function.kind == usb::Function::Mbim;
    const unsigned k = std::clamp(config_.transfers, 1u, usb::kMaxTransfersInFlight);
    constexpr unsigned kReads = 64;
    constexpr unsigned kWrites = 256;

    if (config_.threads == 1) {
      rx_io_ = tun::UringPacketIo::create(config_.tun_fd, kReads + kWrites, error);
      if (!rx_io_) return false;
    } else {
      rx_io_ = tun::UringPacketIo::create(config_.tun_fd, kWrites, error);
      if (rx_io_) tx_io_ = tun::UringPacketIo::create(config_.tun_fd, kReads, error);
      if (!rx_io_ || !tx_io_) return false;
    }
    dp::PacketIo& tx_io = tx_io_ ? *tx_io_ : *rx_io_;

    usb::PipeConfig out;
    out.endpoint = config_.function.bulk_out.address;
    out.transfer_bytes = config_.plan.out_transfer_bytes;
    out.transfers_in_flight = k;
    out.zero_length_packet = config_.quirks.out_termination == control::OutTermination::zero_length_packet;
    out_pipe_ = std::make_unique<usb::OutPipe>(transport_, out);
    out_pipe_->set_on_free([](void* io) { static_cast<dp::PacketIo*>(io)->wake(); }, &tx_io);

    dp::TxConfig tc;
    tc.out = config_.plan.out;
    tc.signature = mbim ? ntb::NdpSignature{config_.plan.format, ntb::DatagramKind::Ips, 0}
                        : ntb::NdpSignature{config_.plan.format, ntb::DatagramKind::Ncm, 0};
    tc.ethernet = !mbim;
    tc.our_mac = config_.our_mac;
    tc.mtu_bytes = config_.mtu_bytes;
    tc.reads_in_flight = kReads;
    tc.out_slots = k;
    tc.pad_one_byte = !out.zero_length_packet;
    tx_ = std::make_unique<dp::TxStage>(tc, tx_io, *this, link_state_);

    dp::RxConfig rc;
    rc.function = mbim ? ntb::FunctionKind::Mbim : ntb::FunctionKind::Ncm;
    rc.transfer_bytes = config_.plan.ntb_in_max_size;
    rc.in_slots = k;
    rc.ring_capacity = k;
    rc.our_mac = config_.our_mac;
    rx_ = std::make_unique<dp::RxStage>(rc, *rx_io_, *this, link_state_, mbim ? nullptr : &tx_->replies(), &tx_io);

    usb::PipeConfig in;
    in.endpoint = config_.function.bulk_in.address;
    in.transfer_bytes = config_.plan.ntb_in_max_size;
    in.transfers_in_flight = k;
    in_pipe_ = std::make_unique<usb::InPipe>(transport_, in, &DataPlane::on_in, this);

    if (config_.threads == 1) {
      workers_.push_back(std::make_unique<dp::Worker>(*rx_io_, rx_.get(), tx_.get()));
    } else {
      workers_.push_back(std::make_unique<dp::Worker>(*rx_io_, rx_.get(), nullptr));
      workers_.push_back(std::make_unique<dp::Worker>(*tx_io_, nullptr, tx_.get()));
    }
    // Named so per-thread CPU (top -H, /proc/PID/task/TID/comm, the end-to-end benchmark) tells
    // the workers apart from the control/USB thread, which keeps the process name.
    const char* names[2] = {config_.threads == 1 ? "wwan-dp rx+tx" : "wwan-dp rx", "wwan-dp tx"};
    for (std::size_t i = 0; i < workers_.size(); ++i) {
      threads_.emplace_back([w = workers_[i].get()] { w->run(); });
      ::pthread_setname_np(threads_.back().native_handle(), names[i]);
    }
    if (!in_pipe_->start()) {
      error = std::string("cannot start the bulk-IN transfers: ") + usb::to_string(in_pipe_->state());
      return false;
    }
    return true;
  }

  // Workers first (nothing releases IN buffers or submits OUT after this), then the pipes: their
  // cancelled transfers are reaped by drain() on this thread, the event thread.
  void stop() {
    for (auto& w : workers_) w->stop();
    for (auto& t : threads_) t.join();
    threads_.clear();
    if (in_pipe_ && in_pipe_->in_flight() > 0 && !transport_.device_gone()) {
      in_pipe_->stop();
      in_pipe_->drain(1000);
    }
    if (out_pipe_ && out_pipe_->in_flight() > 0 && !transport_.device_gone()) {
      out_pipe_->stop();
      out_pipe_->drain(1000);
    }
    in_pipe_.reset();
    out_pipe_.reset();
    workers_.clear();
    rx_.reset();
    tx_.reset();
    tx_io_.reset();
    rx_io_.reset();
  }

  bool device_gone() const {
    return (in_pipe_ && in_pipe_->state() == usb::PipeState::device_gone) ||
           (out_pipe_ && out_pipe_->state() == usb::PipeState::device_gone);
  }
  std::string failure() const {
    if (in_pipe_ && in_pipe_->state() == usb::PipeState::failed) return "the bulk-IN endpoint keeps failing";
    if (out_pipe_ && out_pipe_->state() == usb::PipeState::failed) return "the bulk-OUT endpoint keeps failing";
    return {};
  }

  dp::RxCounters rx_counters() const { return rx_ ? rx_->counters() : dp::RxCounters{}; }
  dp::TxCounters tx_counters() const { return tx_ ? tx_->counters() : dp::TxCounters{}; }
  const usb::InPipe* in_pipe() const { return in_pipe_.get(); }
  const usb::OutPipe* out_pipe() const { return out_pipe_.get(); }

  // dp::InLink (RX worker thread)
  void release(unsigned slot) override { in_pipe_->release(slot); }
  // dp::OutLink (TX worker thread)
  std::optional<unsigned> acquire() override { return out_pipe_->acquire(); }
  std::span<std::uint8_t> buffer(unsigned slot) override { return out_pipe_->buffer(slot); }
  bool submit(unsigned slot, std::size_t length_bytes) override {
    return out_pipe_->submit(slot, length_bytes) == usb::TransferStatus::completed;
  }
  void give_back(unsigned slot) override { out_pipe_->give_back(slot); }
  std::size_t max_packet_bytes() const override { return config_.function.bulk_out.max_packet_size; }

 private:
  // The IN pipe's sink, on the event thread.
  static void on_in(void* user, unsigned slot, std::span<const std::uint8_t> data) {
    auto* self = static_cast<DataPlane*>(user);
    if (!self->rx_->post(dp::RxBuffer{data.data(), static_cast<std::uint32_t>(data.size()), slot})) {
      self->in_pipe_->release(slot);  // counted (ring_full); cannot happen with ring capacity >= K
      return;
    }
    self->rx_io_->wake();
  }

  usb::Transport& transport_;
  Config config_;
  dp::LinkState& link_state_;
  std::unique_ptr<tun::UringPacketIo> rx_io_, tx_io_;
  std::unique_ptr<dp::TxStage> tx_;
  std::unique_ptr<dp::RxStage> rx_;
  std::unique_ptr<usb::OutPipe> out_pipe_;
  std::unique_ptr<usb::InPipe> in_pipe_;
  std::vector<std::unique_ptr<dp::Worker>> workers_;
  std::vector<std::thread> threads_;
};

// ---------------------------------------------------------------- stats

// `modem`: the emulated modem, whose counters join the event (read under its transport's lock).
std::string stats_json(const char* session_state, const DataPlane& plane, sim::Modem* modem) {
  const dp::RxCounters rx = plane.rx_counters();
  const dp::TxCounters tx = plane.tx_counters();
  std::ostringstream o;
  const auto drops = [&o](const auto& c) {
    o << R"("drops":{)";
    bool first = true;
    c.for_each_drop([&](const char* name, std::uint64_t v) {
      o << (first ? "" : ",") << '"' << name << "\":" << v;
      first = false;
    });
    o << '}';
  };
  o << R"("session":")" << session_state << '"';
  o << R"(,"rx":{"transfers":)" << rx.ntb.transfers << R"(,"ntbs":)" << rx.ntb.ntbs << R"(,"datagrams":)"
    << rx.ntb.datagrams << R"(,"packets":)" << rx.packets << R"(,"bytes":)" << rx.bytes << R"(,"arp_replies":)"
    << rx.arp_replies << R"(,"na_replies":)" << rx.na_replies << R"(,"padding_trimmed":)" << rx.padding_trimmed
    << R"(,"in_flight":)" << (plane.in_pipe() ? plane.in_pipe()->in_flight() : 0u) << R"(,"dropped":)" << rx.dropped()
    << ',';
  drops(rx);
  o << R"(},"tx":{"tun_reads":)" << tx.tun_reads << R"(,"packets":)" << tx.packets << R"(,"bytes":)" << tx.bytes
    << R"(,"ntbs":)" << tx.ntbs << R"(,"transfers":)"
    << (plane.out_pipe() ? plane.out_pipe()->counters().transfers.load() : 0u) << R"(,"in_flight":)"
    << (plane.out_pipe() ? plane.out_pipe()->in_flight() : 0u) << R"(,"replies":)" << tx.replies
    << R"(,"padded":)" << tx.padded << R"(,"out_buffer_waits":)" << tx.out_buffer_waits << R"(,"dropped":)"
    << tx.dropped() << ',';
  drops(tx);
  o << R"(},"ntb_errors":{)";
  for (std::size_t i = 0; i < ntb::kNtbErrorCount; ++i)
    o << (i ? "," : "") << '"' << ntb::to_string(static_cast<ntb::NtbError>(i)) << "\":" << rx.ntb.errors[i];
  o << '}';
  if (modem != nullptr) {
    const sim::NetworkCounters& n = modem->network().counters();
    const sim::ModemCounters& m = modem->counters();
    o << R"(,"sim":{"network":{)";
#define WWAN_FIELD(s, f, first) o << (first ? "" : ",") << "\"" #f "\":" << s.f
    WWAN_FIELD(n, packets_from_host, true);
    WWAN_FIELD(n, bytes_from_host, false);
    WWAN_FIELD(n, icmp_echo_replies, false);
    WWAN_FIELD(n, udp_echo_replies, false);
    WWAN_FIELD(n, sink_packets, false);
    WWAN_FIELD(n, sink_bytes, false);
    WWAN_FIELD(n, other_packets, false);
    WWAN_FIELD(n, malformed_from_host, false);
    WWAN_FIELD(n, source_packets, false);
    WWAN_FIELD(n, source_bytes, false);
    WWAN_FIELD(n, packets_to_host, false);
    WWAN_FIELD(n, bytes_to_host, false);
    WWAN_FIELD(n, dropped_queue_full, false);
    WWAN_FIELD(n, dropped_too_large, false);
    WWAN_FIELD(n, control_commands, false);
    WWAN_FIELD(n, control_rejected, false);
    o << R"(},"modem":{)";
    WWAN_FIELD(m, control_requests, true);
    WWAN_FIELD(m, ntbs_from_host, false);
    WWAN_FIELD(m, datagrams_from_host, false);
    WWAN_FIELD(m, ntbs_from_host_dropped, false);
    WWAN_FIELD(m, ntbs_to_host, false);
    WWAN_FIELD(m, datagrams_to_host, false);
    WWAN_FIELD(m, frames_before_session, false);
    WWAN_FIELD(m, arp_requests_from_host, false);
    WWAN_FIELD(m, arp_requests_to_host, false);
    WWAN_FIELD(m, notifications_sent, false);
    WWAN_FIELD(m, commands_received, false);
    WWAN_FIELD(m, faults_injected, false);
#undef WWAN_FIELD
    o << "}}";
  }
  return o.str();
}

std::string stats_text(const char* session_state, const DataPlane& plane) {
  const dp::RxCounters rx = plane.rx_counters();
  const dp::TxCounters tx = plane.tx_counters();
  std::uint64_t ntb_errors = 0;
  for (const auto e : rx.ntb.errors) ntb_errors += e;
  std::ostringstream o;
  o << "stats: " << session_state << "; rx " << rx.packets << " packets " << rx.bytes << " bytes in " << rx.ntb.ntbs
    << " NTBs, " << rx.dropped() << " dropped, " << ntb_errors << " NTB errors; tx " << tx.packets << " packets "
    << tx.bytes << " bytes in " << tx.ntbs << " NTBs, " << tx.dropped() << " dropped";
  return o.str();
}

// ---------------------------------------------------------------- the daemon

enum class RunEnd : std::uint8_t { stop, gone, failed };

class Daemon {
 public:
  Daemon(const Options& options, Events& events, ShutdownSignals& signals)
      : options_(options), events_(events), signals_(signals) {}

  int run();

 private:
  std::unique_ptr<Attachment> attach(std::string& error);
  RunEnd serve(Attachment& a);
  void on_connected(const control::SessionStatus& st, std::uint32_t mtu);
  void on_disconnected(std::string_view reason);
  // Polls signals; true = stop requested. Handles SIGUSR1.
  bool poll_signals(int timeout_ms, const char* state, const DataPlane* plane, Attachment* a);
  void emit_stats(const char* state, const DataPlane& plane, Attachment* a);

  const Options& options_;
  Events& events_;
  ShutdownSignals& signals_;
  std::optional<usb::Context> usb_;
  std::unique_ptr<usb::UsbmonCaptureWriter> capture_;
  std::unique_ptr<tun::TunDevice> tun_;
  std::unique_ptr<tun::LinkConfigurator> link_;
  dp::LinkState link_state_;
  bool started_ = false;
  bool up_ = false;
  bool stop_requested_ = false;
};

std::unique_ptr<Attachment> Daemon::attach(std::string& error) {
  auto a = std::make_unique<Attachment>();
  if (options_.sim_profile) {
    a->sim_modem = sim::make_modem(*options_.sim_profile);
    if (!a->sim_modem) {
      error = "no emulated modem called '" + *options_.sim_profile + "'";
      return nullptr;
    }
    const auto f = function_of_model(*a->sim_modem, error);
    if (!f) return nullptr;
    a->function = *f;
    const auto& d = a->sim_modem->identity().descriptors;
    const auto dev = usb::parse_device_descriptor(std::span(d).first(18));
    a->vendor_id = dev->vendor_id;
    a->product_id = dev->product_id;
    char id[32];
    std::snprintf(id, sizeof id, "%04x:%04x", a->vendor_id, a->product_id);
    a->device_text = "emulated " + *options_.sim_profile + " " + id;
    a->sim_transport = std::make_unique<sim::InProcessTransport>(*a->sim_modem);
    a->transport = a->sim_transport.get();
  } else {
    if (!usb_) {
      usb_ = usb::Context::open(error);
      if (!usb_) {
        error = "cannot use USB on this machine: " + error;
        return nullptr;
      }
    }
    a->opened = open_modem(*usb_, *options_.device_args.selector, error, options_.device_args.configuration);
    if (!a->opened) return nullptr;
    a->function = a->opened->function;
    a->vendor_id = a->opened->device.vendor_id;
    a->product_id = a->opened->device.product_id;
    a->device_text = a->opened->device.describe();
    a->transport = a->opened->transport.get();
  }
  if (capture_) {
    const std::uint16_t bus = a->opened ? a->opened->device.bus : 1;
    const std::uint8_t address = a->opened ? a->opened->device.address : 2;
    a->capturing = std::make_unique<usb::CapturingTransport>(*a->transport, *capture_, bus, address);
    a->transport = a->capturing.get();
  }
  a->quirks = control::find_quirks(a->vendor_id, a->product_id, a->function);
  return a;
}

void Daemon::on_connected(const control::SessionStatus& st, std::uint32_t mtu) {
  tun::LinkSettings ls;
  dp::HostAddresses host;
  if (st.ip.ipv4) {
    ls.ipv4 = tun::Ipv4Settings{st.ip.ipv4->address, st.ip.ipv4->prefix_length, st.ip.ipv4->gateway};
    host.ipv4 = st.ip.ipv4->address;
  }
  if (st.ip.ipv6) {
    ls.ipv6 = tun::Ipv6Settings{st.ip.ipv6->address, st.ip.ipv6->prefix_length, st.ip.ipv6->gateway};
    host.ipv6.push_back(st.ip.ipv6->address);
  }
  ls.mtu = mtu;
  ls.default_route_metric = options_.default_route_metric;
  link_state_.set_host_addresses(host);
  std::string error;
  if (!link_->apply(ls, error)) events_.error("configuring " + tun_->name() + ": " + error);
  if (!options_.resolv_path.empty()) {
    std::vector<eth::Ipv4Address> v4;
    std::vector<eth::Ipv6Address> v6;
    if (st.ip.ipv4) v4 = st.ip.ipv4->dns;
    if (st.ip.ipv6) v6 = st.ip.ipv6->dns;
    if (!tun::write_resolv_conf(options_.resolv_path, tun_->name(), v4, v6, error)) events_.error(error);
  }
  up_ = true;
  events_.connected(st.ip, mtu);
}

void Daemon::on_disconnected(std::string_view reason) {
  link_state_.set_host_addresses({});
  std::string error;
  if (!link_->clear(true, error)) events_.error("unconfiguring " + tun_->name() + ": " + error);
  up_ = false;
  events_.disconnected(reason);
}

void Daemon::emit_stats(const char* state, const DataPlane& plane, Attachment* a) {
  std::string body;
  if (a != nullptr && a->sim_transport) {
    a->sim_transport->with_model([&](sim::DeviceModel&) { body = stats_json(state, plane, a->sim_modem.get()); });
  } else {
    body = stats_json(state, plane, nullptr);
  }
  events_.stats(body, stats_text(state, plane));
}

bool Daemon::poll_signals(int timeout_ms, const char* state, const DataPlane* plane, Attachment* a) {
  while (const std::optional<int> sig = signals_.wait(timeout_ms)) {
    timeout_ms = 0;
    if (*sig == SIGUSR1) {
      if (plane != nullptr) emit_stats(state, *plane, a);
      continue;
    }
    events_.note(std::string("stopping (") + sigabbrev_np(*sig) + ")");
    stop_requested_ = true;
    return true;
  }
  return false;
}

RunEnd Daemon::serve(Attachment& a) {
  const usb::NetworkFunction& f = a.function;
  const bool mbim = f.kind == usb::Function::Mbim;
  if (a.quirks.row != nullptr && options_.verbose > 0)
    events_.note(std::string("quirks: ") + a.quirks.row->name + " (" + a.quirks.row->evidence + ")");

  const control::NegotiationResult n = control::negotiate(*a.transport, f, a.quirks.quirks);
  if (!n.ok) {
    events_.error("NTB negotiation with " + a.device_text + " failed: " + n.error);
    return a.transport->device_gone() ? RunEnd::gone : RunEnd::failed;
  }
  for (const std::string& adj : n.plan.adjustments) events_.note(adj);
  if (options_.verbose > 1)
    for (const std::string& line : n.log) events_.note(line);

  // The session.
  control::SessionSettings settings = options_.settings;
  settings.fcc_unlock = options_.force_fcc || a.quirks.quirks.fcc_unlock == control::FccUnlock::sierra_qmi;
  std::unique_ptr<control::Session> session;
  control::RunnerOptions ro;
  if (mbim) {
    const std::uint32_t max_control = f.mbim ? f.mbim->max_control_message : 4096;
    session = std::make_unique<control::MbimSession>(settings, max_control);
    ro.response_buffer_bytes = static_cast<std::uint16_t>(std::clamp<std::uint32_t>(max_control, 64, 4096));
  } else if (f.kind == usb::Function::HuaweiNcm) {
    session = std::make_unique<control::HuaweiSession>(settings);
  } else {
    if (!options_.static_ipv4) {
      events_.error(a.device_text +
                    " is a plain CDC NCM function: its address comes from DHCP on the link, which this build "
                    "cannot do yet; give it with --static-ipv4 ADDR/PREFIX[,GATEWAY]");
      return RunEnd::failed;
    }
    control::IpConfig ip;
    ip.ipv4 = *options_.static_ipv4;
    session = std::make_unique<control::LinkSession>(ip);
  }

  // The MTU: what the session reports, else 1500, never more than one NTB datagram can carry.
  const std::size_t framing = mbim ? 0 : eth::kEthernetHeaderSize;
  const std::size_t datagram_max = n.plan.max_datagram_size > framing ? n.plan.max_datagram_size - framing : 1500;
  DataPlane::Config dc;
  dc.function = f;
  dc.plan = n.plan;
  dc.quirks = a.quirks.quirks;
  dc.tun_fd = tun_->fd();
  dc.our_mac = mbim ? eth::MacAddress{} : host_mac(*a.transport, f);
  dc.mtu_bytes = std::max<std::size_t>(datagram_max, 1500);
  dc.threads = options_.threads;
  dc.transfers = options_.transfers;
  DataPlane plane(*a.transport, dc, link_state_);
  std::string error;
  if (!plane.start(error)) {
    events_.error(error);
    return RunEnd::failed;
  }
  if (!started_) {
    events_.started(tun_->name(), a.device_text, usb::to_string(f.kind), n.plan, options_.sim_profile.has_value());
    started_ = true;
  }

  control::SessionRunner runner(*a.transport, f, *session, ro);
  if (!runner.start()) {
    events_.error(runner.error());
    return a.transport->device_gone() ? RunEnd::gone : RunEnd::failed;
  }

  RunEnd end = RunEnd::stop;
  control::SessionState last = control::SessionState::idle;
  std::uint64_t last_connects = 0;
  auto next_stats = SteadyClock::now() + std::chrono::seconds(options_.stats_interval_s);
  for (;;) {
    runner.step(50);
    const control::SessionStatus& st = runner.status();
    if (st.state != last || st.connects != last_connects) {
      if (st.state == control::SessionState::connected) {
        std::uint32_t mtu = 0;
        if (st.ip.ipv4 && st.ip.ipv4->mtu) mtu = st.ip.ipv4->mtu;
        if (st.ip.ipv6 && st.ip.ipv6->mtu && (mtu == 0 || st.ip.ipv6->mtu < mtu)) mtu = st.ip.ipv6->mtu;
        if (mtu == 0) mtu = 1500;
        mtu = static_cast<std::uint32_t>(std::min<std::size_t>(mtu, datagram_max));
        on_connected(st, mtu);
      } else if (up_) {
        on_disconnected(st.error.empty() ? "the network ended the session" : st.error);
      }
      last = st.state;
      last_connects = st.connects;
    }
    if (st.state == control::SessionState::failed) {
      events_.error(st.error);
      end = RunEnd::failed;
      break;
    }
    if (runner.device_gone() || plane.device_gone()) {
      end = RunEnd::gone;
      break;
    }
    if (const std::string why = plane.failure(); !why.empty()) {
      events_.error(why);
      end = RunEnd::failed;
      break;
    }
    if (poll_signals(0, control::to_string(st.state), &plane, &a)) break;
    if (options_.stats_interval_s > 0 && SteadyClock::now() >= next_stats) {
      emit_stats(control::to_string(st.state), plane, &a);
      next_stats += std::chrono::seconds(options_.stats_interval_s);
    }
  }

  if (end != RunEnd::gone) runner.stop(std::chrono::milliseconds(800));
  if (up_) on_disconnected(end == RunEnd::gone ? a.device_text + " left the bus" : "stopped");
  plane.stop();
  return end;
}

int Daemon::run() {
  std::string error;
  if (const std::string why = tun::UringPacketIo::probe(); !why.empty()) {
    events_.error("io_uring is not usable: " + why);
    return 1;
  }
  if (!options_.capture_path.empty()) {
    capture_ = usb::UsbmonCaptureWriter::open(options_.capture_path, error);
    if (!capture_) {
      events_.error(error);
      return 1;
    }
  }
  // The modem first: a wrong --dev should not create a TUN on its way to failing.
  std::unique_ptr<Attachment> first = attach(error);
  if (!first) {
    events_.error(error);
    return 1;
  }
  tun_ = tun::TunDevice::open(options_.tun_name, tun::TunOptions{}, error);
  if (!tun_) {
    events_.error(error);
    return 1;
  }
  link_ = tun::LinkConfigurator::open(tun_->ifindex(), error);
  if (!link_) {
    events_.error(error);
    return 1;
  }

  int code = 0;
  bool waiting_said = false;
  while (!stop_requested_) {
    std::unique_ptr<Attachment> a = first ? std::move(first) : attach(error);
    if (!a) {
      if (options_.sim_profile) {
        events_.error(error);
        code = 1;
        break;
      }
      // The modem went away and has not come back yet (re-enumeration, a firmware reset, a
      // mode switch): keep the TUN and wait for it.
      if (!waiting_said) events_.note("waiting for the modem to come back: " + error);
      waiting_said = true;
      if (poll_signals(500, "waiting", nullptr, nullptr)) break;
      continue;
    }
    waiting_said = false;
    const RunEnd end = serve(*a);
    a.reset();  // gives the modem back before anything else
    if (end == RunEnd::failed) {
      code = 1;
      break;
    }
    if (end == RunEnd::gone) {
      // A real modem is waited for (attach() fails until it is back); an emulated one comes
      // back at once as a fresh device, which is what a re-enumeration looks like from here.
      events_.note("the modem left the bus; waiting for it to come back");
    }
  }

  link_->clear(true, error);
  link_.reset();
  if (!options_.resolv_path.empty()) tun::remove_resolv_conf(options_.resolv_path, error);
  tun_.reset();  // a TUN we created vanishes with its fd
  if (capture_) {
    const auto c = capture_->counters();
    if (options_.verbose > 0)
      events_.note("capture: " + std::to_string(c.records) + " records in " + options_.capture_path);
    if (capture_->failed()) events_.error("capture stopped early: " + capture_->error());
  }
  events_.stopped();
  return code;
}

// ---------------------------------------------------------------- arguments

// 0 = parsed; 2 = bad usage (already said); -1 = --help printed.
int parse(std::span<const std::string_view> args, Options& o, std::ostream& out, std::ostream& err) {
  const auto bad = [&err](const std::string& what) {
    err << "wwan-dp: " << what << " (see wwan-dp --help)\n";
    return 2;
  };
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view a = args[i];
    if (a == "--help" || a == "-h") {
      out << kUsage;
      return -1;
    }
    std::string error;
    const int used = o.device_args.take(args, i, error);
    if (used < 0) return bad(error);
    if (used > 0) {
      i += static_cast<std::size_t>(used - 1);
      continue;
    }
    const bool has_value = i + 1 < args.size();
    const auto value = [&]() { return std::string(args[++i]); };
    if (a == "--json") {
      o.json = true;
    } else if (a == "-v" || a == "--verbose") {
      ++o.verbose;
    } else if (a == "-vv") {
      o.verbose += 2;
    } else if (a == "--fcc-unlock") {
      o.force_fcc = true;
    } else if (a == "--default-route") {
      o.default_route_metric = 1024;
      if (has_value && !args[i + 1].empty() && args[i + 1][0] != '-') {
        unsigned m = 0;
        if (!parse_unsigned(args[i + 1], m)) return bad("--default-route METRIC is a number, not '" + std::string(args[i + 1]) + "'");
        o.default_route_metric = m;
        ++i;
      }
    } else if (!has_value &&
               (a == "--sim" || a == "--tun" || a == "--apn" || a == "--user" || a == "--password" || a == "--auth" ||
                a == "--pin" || a == "--ip-type" || a == "--ip" || a == "--resolv" || a == "--capture" ||
                a == "--stats-interval" || a == "--static-ipv4" || a == "--threads" || a == "--transfers")) {
      return bad(std::string(a) + " needs a value");
    } else if (a == "--sim") {
      o.sim_profile = value();
    } else if (a == "--tun") {
      o.tun_name = value();
    } else if (a == "--apn") {
      o.settings.apn = value();
    } else if (a == "--user") {
      o.settings.user = value();
    } else if (a == "--password") {
      o.settings.password = value();
    } else if (a == "--pin") {
      o.settings.pin = value();
    } else if (a == "--resolv") {
      o.resolv_path = value();
    } else if (a == "--capture") {
      o.capture_path = value();
    } else if (a == "--auth") {
      const std::string v = value();
      if (v == "none") o.settings.auth = control::AuthProtocol::none;
      else if (v == "pap") o.settings.auth = control::AuthProtocol::pap;
      else if (v == "chap") o.settings.auth = control::AuthProtocol::chap;
      else if (v == "mschapv2") o.settings.auth = control::AuthProtocol::mschapv2;
      else return bad("--auth is none, pap, chap or mschapv2, not '" + v + "'");
    } else if (a == "--ip-type" || a == "--ip") {
      const std::string v = value();
      if (v == "ipv4") o.settings.families = control::IpFamilies::ipv4;
      else if (v == "ipv6") o.settings.families = control::IpFamilies::ipv6;
      else if (v == "ipv4v6") o.settings.families = control::IpFamilies::ipv4v6;
      else return bad("--ip-type is ipv4, ipv6 or ipv4v6, not '" + v + "'");
    } else if (a == "--static-ipv4") {
      const std::string v = value();
      o.static_ipv4 = parse_static_ipv4(v);
      if (!o.static_ipv4) return bad("--static-ipv4 is ADDR/PREFIX[,GATEWAY], e.g. 10.0.0.2/24,10.0.0.1, not '" + v + "'");
    } else if (a == "--stats-interval") {
      const std::string v = value();
      if (!parse_unsigned(v, o.stats_interval_s)) return bad("--stats-interval is whole seconds, not '" + v + "'");
    } else if (a == "--threads") {
      const std::string v = value();
      if (!parse_unsigned(v, o.threads) || o.threads < 1 || o.threads > 2) return bad("--threads is 1 or 2, not '" + v + "'");
    } else if (a == "--transfers") {
      const std::string v = value();
      if (!parse_unsigned(v, o.transfers) || o.transfers < 1 || o.transfers > usb::kMaxTransfersInFlight)
        return bad("--transfers is 1.." + std::to_string(usb::kMaxTransfersInFlight) + ", not '" + v + "'");
    } else {
      return bad("unknown argument '" + std::string(a) + "'");
    }
  }
  if (o.sim_profile && o.device_args.selector) return bad("--sim and --dev are exclusive: an emulated modem or a real one");
  if (!o.sim_profile && !o.device_args.selector) return bad("which modem? --dev VID:PID (see `wwan-dp list`), or --sim PROFILE");
  if (o.sim_profile) {
    const auto names = sim::modem_profiles();
    if (std::find(names.begin(), names.end(), *o.sim_profile) == names.end()) {
      std::string list;
      for (const auto n : names) list += (list.empty() ? "" : ", ") + std::string(n);
      return bad("--sim " + *o.sim_profile + ": no such emulated modem (there are: " + list + ")");
    }
  }
  if (o.tun_name.empty()) return bad("which TUN? --tun NAME (e.g. --tun wwan0; created if it does not exist)");
  if (!o.settings.user.empty() && o.settings.auth == control::AuthProtocol::none) o.settings.auth = control::AuthProtocol::chap;
  return 0;
}

}  // namespace

int run_daemon(std::span<const std::string_view> args, std::ostream& out, std::ostream& err) {
  Options options;
  if (const int rc = parse(args, options, out, err); rc != 0) return rc < 0 ? 0 : rc;
  ShutdownSignals signals({SIGUSR1});  // before any thread exists: the workers inherit the mask
  Events events(out, err, options.json);
  Daemon daemon(options, events, signals);
  return daemon.run();
}

}  // namespace wwan::cli
