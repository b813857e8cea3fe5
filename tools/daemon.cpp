#include "tools/daemon.hpp"

#include <linux/if_tun.h>
#include <net/if.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <latch>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "control/huawei_session.hpp"
#include "control/link_autoconf.hpp"
#include "control/link_session.hpp"
#include "control/mbim_session.hpp"
#include "control/ncm_negotiation.hpp"
#include "control/quectel_session.hpp"
#include "control/quirks.hpp"
#include "control/rndis_at_runner.hpp"
#include "control/session_runner.hpp"
#include "datapath/link_state.hpp"
#include "datapath/links.hpp"
#include "datapath/rx_path.hpp"
#include "datapath/tx_path.hpp"
#include "datapath/worker.hpp"
#include "sim/inprocess_transport.hpp"
#include "sim/modem.hpp"
#include "tools/device_args.hpp"
#include "tools/privileges.hpp"
#include "tools/shutdown.hpp"
#include "tools/text.hpp"
#include "tun/tun_device.hpp"
#include "tun/tun_offload.hpp"
#include "tun/uring_io.hpp"
#include "usb/capturing_transport.hpp"
#include "usb/transfer_pipes.hpp"
#include "usb/usbmon_capture.hpp"

namespace wwan::cli {
namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr std::string_view kUsage =
    "usage: wwan-dp --dev VID:PID[@BUS-PORT] [--serial S] [--configuration N] --tun NAME [options]\n"
    "       wwan-dp --sim huawei-e3372|generic-ncm|mbim|fm350-rndis|quectel-ncm --tun NAME [options]\n"
    "\n"
    "Claims the modem, negotiates the NTB parameters, brings the data session up (Huawei NCM:\n"
    "AT^NDISDUP + AT^DHCP? over the encapsulated channel; MBIM: OPEN ... CONNECT + IP_CONFIGURATION,\n"
    "with the FCC unlock where needed), configures the TUN NAME from the session and moves packets\n"
    "until Ctrl-C / SIGTERM; redials after network drops and waits for a modem that re-enumerates.\n"
    "--sim runs an emulated modem in this process instead of a USB device (no modem needed).\n"
    "\n"
    "session:  --apn APN  --apn-user U --apn-password P  --auth none|pap|chap|mschapv2  --pin PIN\n"
    "          --ip-type ipv4|ipv6|ipv4v6  --fcc-unlock\n"
    "          --static-ipv4 ADDR/PREFIX[,GATEWAY]   for a plain CDC NCM function instead of DHCP on its link\n"
    "link:     --default-route [METRIC]   add a default route via the TUN (metric default 1024)\n"
    "          --resolv FILE              write the DNS servers to FILE (resolv.conf format)\n"
    "          --tap NAME                 instead of --tun: a TAP carrying the modem's Ethernet frames\n"
    "                                     unchanged (NCM functions only); wwan-dp dials and sets it up,\n"
    "                                     the system's DHCP client / SLAAC, bridges, VLANs do the rest\n"
    "data:     --threads 1|2              RX and TX workers on one thread or two (default 2)\n"
    "          --transfers K              bulk transfers in flight per direction (default 8)\n"
    "          --offload auto|on|off      TUN offload, GRO into and GSO out of the TUN (default auto:\n"
    "                                     what the kernel grants; on: refuse to run without)\n"
    "output:   --json                     one JSON event per line on stdout\n"
    "          --stats-interval SECONDS   a stats event this often (0 = only on SIGUSR1)\n"
    "          --capture FILE             the USB traffic as a usbmon pcap (Wireshark, tshark)\n"
    "          -v                         say more on stderr\n"
"faults:   --once                     exit (status 3) when the modem leaves the bus instead of waiting\n"
"          --command-timeout SECONDS  a control answer later than this is a timeout, retried (default 10)\n"
"privilege: --user NAME               after setup run as user NAME with only CAP_NET_ADMIN (docs/reliability.md)\n"
    "\n"
    "Needs root (or CAP_NET_ADMIN and access to the USB device). SIGUSR1 prints the counters.\n";

struct Options {
  DeviceArgs device_args;
  std::optional<std::string> sim_profile;
  std::string tun_name;
  bool tap = false;  // --tap NAME: tun_name is a TAP, addressed by the system (docs/tun.md "TAP mode")
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
  // --offload: IFF_VNET_HDR + TUNSETOFFLOAD (docs/offload.md). automatic = what the kernel grants.
  enum class Offload : std::uint8_t { automatic, on, off } offload = Offload::automatic;
  bool once = false;                      // --once: the modem leaving the bus ends the run (status 3)
  std::string run_as;                     // --user NAME
  std::vector<int> inherited_descriptors;  // open at startup beyond 0-2: closed by --user
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

  // `rndis_out`: an RNDIS function (docs/rndis.md), whose limits are INITIALIZE's, not an NTB's:
  // our MaxTransferSize (IN) and the device's INITIALIZE_CMPLT MaxTransferSize,
  // MaxPacketsPerTransfer and PacketAlignmentFactor (OUT, after the clamps).
  void started(const std::string& tun, const std::string& device, std::string_view function,
               const control::NtbPlan& plan, bool sim, const rndis::PacketOutParams* rndis_out = nullptr) {
    if (rndis_out != nullptr) {
      const auto& o = *rndis_out;
      const std::uint64_t alignment_bytes = o.packet_alignment_factor < 32 ? 1ULL << o.packet_alignment_factor : 0;
      if (json_) {
        emit(std::string(R"({"event":"started","tun":)") + json_string(tun) + R"(,"device":)" + json_string(device) +
             R"(,"function":)" + json_string(function) + R"(,"sim":)" + (sim ? "true" : "false") +
             R"(,"rndis":{"in_max_transfer_size":)" + std::to_string(plan.ntb_in_max_size) +
             R"(,"out_max_transfer_size":)" + std::to_string(o.max_transfer_size) +
             R"(,"max_packets_per_transfer":)" + std::to_string(o.max_packets_per_transfer) +
             R"(,"packet_alignment_factor":)" + std::to_string(o.packet_alignment_factor) +
             R"(,"packet_alignment_bytes":)" + std::to_string(alignment_bytes) + "}}");
      } else {
        emit("started: " + tun + " on " + device + " (" + std::string(function) + ", transfers in " +
             std::to_string(plan.ntb_in_max_size) + " / out " + std::to_string(o.max_transfer_size) + " bytes, " +
             std::to_string(o.max_packets_per_transfer) + " packets per transfer, " + std::to_string(alignment_bytes) +
             "-byte alignment)");
      }
      return;
    }
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

  // The DHCP lease was acquired, renewed or lost (docs/dhcp.md).
  void lease(const control::LeaseEvent& e) {
    const char* what = dhcp4::to_string(e.kind);
    if (json_) {
      std::string o = std::string(R"({"event":"lease","state":")") + what + '"';
      if (e.lease)
        o += R"(,"address":")" + ipv4_text(e.lease->address) + R"(","prefix":)" + std::to_string(e.lease->prefix_length) +
             R"(,"server":")" + ipv4_text(e.lease->server) + R"(","lease_s":)" + std::to_string(e.lease->lease_s) +
             R"(,"t1_s":)" + std::to_string(e.lease->t1_s) + R"(,"t2_s":)" + std::to_string(e.lease->t2_s);
      if (!e.reason.empty()) o += R"(,"reason":)" + json_string(e.reason);
      emit(o + "}");
      return;
    }
    std::string o = std::string("lease ") + what;
    if (e.lease) o += ": " + ipv4_text(e.lease->address) + " for " + std::to_string(e.lease->lease_s) + " s";
    if (!e.reason.empty()) o += " (" + e.reason + ")";
    emit(o);
  }

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

// --sim: the emulated modem's serial AT port on the in-process transport (nothing to claim there),
// for the AT fallback (control/at_transport.hpp).
std::unique_ptr<control::CommandTransport> serial_at_of_model(usb::Transport& transport, const sim::DeviceModel& m,
                                                              std::string& error) {
  const auto& d = m.identity().descriptors;
  const auto dev = d.size() >= 18 ? usb::parse_device_descriptor(std::span(d).first(18)) : std::nullopt;
  const auto configs = dev ? usb::parse_configurations(std::span(d).subspan(18), dev->vendor_id, dev->product_id)
                           : std::vector<usb::Configuration>{};
  if (configs.empty()) {
    error = "emulated modem: no configuration";
    return nullptr;
  }
  const std::optional<usb::SerialAtPort> port = usb::find_serial_at_port(configs.front(), error);
  if (!port) return nullptr;
  return control::make_serial_at_transport(transport, *port);
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
    bool workers_without_capabilities = false;
    // TUN offload (docs/offload.md): the TUN has IFF_VNET_HDR and these TUNSETOFFLOAD flags.
    bool vnet_hdr = false;
    unsigned offload_flags = 0;  // --user: the workers give up CAP_NET_ADMIN too
    // RNDIS (docs/rndis.md): what INITIALIZE_CMPLT allowed, for the TX builder; plan.ntb_in_max_size
    // is then our MaxTransferSize and plan.out_transfer_bytes the device's.
    std::optional<rndis::PacketOutParams> rndis_out;
    // --tap: the descriptor is a TAP; NCM frames pass through unchanged (framing.hpp ncm_tap).
    bool tap = false;
  };

  DataPlane(usb::Transport& transport, Config config, dp::LinkState& link_state)
      : transport_(transport), config_(std::move(config)), link_state_(link_state) {}

  ~DataPlane() override { stop(); }

  // RNDIS: the limits INITIALIZE_CMPLT gave, the host MAC the device named and the MTU, known only
  // once the RNDIS session is set up; before start().
  void set_rndis(const rndis::PacketOutParams& out, const eth::MacAddress& our_mac, std::size_t mtu_bytes) {
    config_.rndis_out = out;
    config_.plan.out_transfer_bytes = out.max_transfer_size;
    config_.our_mac = our_mac;
    config_.mtu_bytes = std::max<std::size_t>(mtu_bytes, 1500);
  }

  bool start(std::string& error) {
    const bool mbim = config_.function.kind == usb::Function::Mbim;
    const dp::Framing framing = mbim                ? dp::Framing::mbim
                                : config_.rndis_out ? dp::Framing::rndis
                                : config_.tap       ? dp::Framing::ncm_tap
                                                    : dp::Framing::ncm;
    const unsigned k = std::clamp(config_.transfers, 1u, usb::kMaxTransfersInFlight);
    // With offload a read buffer holds a 64 KiB super-packet (up to 45 MTU-sized segments), so
    // half as many reads hold far more packets, in 2 MiB instead of 4.
    const unsigned kReads = config_.vnet_hdr ? 32 : 64;
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

    dp::TxConfig tc;
    tc.framing = framing;
    if (config_.rndis_out) tc.rndis_out = *config_.rndis_out;
    tc.out = config_.plan.out;
    tc.signature = mbim ? ntb::NdpSignature{config_.plan.format, ntb::DatagramKind::Ips, 0}
                        : ntb::NdpSignature{config_.plan.format, ntb::DatagramKind::Ncm, 0};
    tc.our_mac = config_.our_mac;
    tc.mtu_bytes = config_.mtu_bytes;
    tc.reads_in_flight = kReads;
    tc.out_slots = k;
    tc.pad_one_byte = !out.zero_length_packet;
    tc.vnet_hdr = config_.vnet_hdr;
    tx_ = std::make_unique<dp::TxStage>(tc, tx_io, *this, link_state_);

    dp::RxConfig rc;
    rc.framing = framing;
    rc.transfer_bytes = config_.plan.ntb_in_max_size;
    rc.in_slots = k;
    rc.ring_capacity = k;
    rc.our_mac = config_.our_mac;
    // DHCP to the client and RAs go to the control thread (docs/dhcp.md); on a TAP to the system's.
    rc.divert_control = !config_.tap;
    rc.vnet_hdr = config_.vnet_hdr;
    rc.gro_udp = (config_.offload_flags & tun::kTunFUso4) != 0 && (config_.offload_flags & tun::kTunFUso6) != 0;
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
    // An OUT transfer completed: the worker running TX is woken only if it waits for a buffer.
    out_pipe_->set_on_free([](void* w) { static_cast<dp::Worker*>(w)->notify_out_buffer_freed(); }, workers_.back().get());
    // Named so per-thread CPU (top -H, /proc/PID/task/TID/comm, the end-to-end benchmark) tells
    // the workers apart from the control/USB thread, which keeps the process name.
    const char* names[2] = {config_.threads == 1 ? "wwan-dp rx+tx" : "wwan-dp rx", "wwan-dp tx"};
    // This thread waits until every worker is named and holds what it may hold before going on
    // (and, later, announcing "connected"): a worker that has not run yet would otherwise still
    // carry the process name and, under --user, this thread's CAP_NET_ADMIN (seen under ASan in
    // CI: /proc listed no worker right after "connected").
    // Shared, not on this stack: a count_down() may still be inside its notify when wait() returns.
    const auto ready = std::make_shared<std::latch>(static_cast<std::ptrdiff_t>(workers_.size()));
    for (std::size_t i = 0; i < workers_.size(); ++i) {
      threads_.emplace_back([w = workers_[i].get(), name = names[i], drop = config_.workers_without_capabilities, ready] {
        ::pthread_setname_np(::pthread_self(), name);
        // Capabilities are per thread: the workers only move packets on descriptors they were
        // handed, so under --user they hold none (the control thread keeps CAP_NET_ADMIN).
        if (drop) (void)drop_thread_capabilities();
        ready->count_down();
        w->run();
      });
    }
    ready->wait();
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
  bool vnet_hdr() const { return config_.vnet_hdr; }
  unsigned offload_flags() const { return config_.offload_flags; }
  const usb::InPipe* in_pipe() const { return in_pipe_.get(); }
  const usb::OutPipe* out_pipe() const { return out_pipe_.get(); }

  // Control thread: the packets RX diverted (DHCP, RAs), and the ones to send (TX puts them into
  // its NTBs). false = none waiting / TX's ring is full (the clients retransmit).
  bool take_control_packet(dp::ControlPacket& p) { return rx_ && rx_->control_packets().try_pop(p); }
  bool send_control_packet(const control::AutoconfPacket& packet) {
    if (!tx_ || packet.ip.size() > dp::kControlPacketMaxBytes) return false;
    control_out_.length = static_cast<std::uint16_t>(packet.ip.size());
    std::copy(packet.ip.begin(), packet.ip.end(), control_out_.bytes.begin());
    control_out_.has_destination = packet.destination.has_value();
    control_out_.destination = packet.destination.value_or(eth::MacAddress{});
    if (!tx_->control_packets().try_push(control_out_)) return false;
    (tx_io_ ? *tx_io_ : *rx_io_).wake();
    return true;
  }

  // dp::InLink (RX worker thread)
  void release(unsigned slot) override { in_pipe_->release(slot); }
  // dp::OutLink (TX worker thread)
  std::optional<unsigned> acquire() override { return out_pipe_->acquire(); }
  bool has_free_buffer() const override { return out_pipe_->has_free(); }
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
    // workers_[0] runs the RX stage (alone, or with TX under --threads 1); the pipe is started
    // only after the workers exist.
    self->workers_.front()->notify();
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
  dp::ControlPacket control_out_;  // scratch for send_control_packet
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
    << R"(,"control_diverted":)" << rx.control_diverted
    << R"(,"in_flight":)" << (plane.in_pipe() ? plane.in_pipe()->in_flight() : 0u) << R"(,"dropped":)" << rx.dropped()
    << ',';
  drops(rx);
  // TUN offload: what the coalescers built (rx.packets counts their segments), docs/offload.md.
  // batches: coalescer runs, each over the IN transfers found waiting together (transfers /
  // batches = transfers per batch).
  o << R"(,"gro":{"super_packets":)" << rx.gro.super_packets << R"(,"coalesced":)" << rx.gro.coalesced
    << R"(,"batches":)" << rx.gro_batches << R"(,"plain":)" << rx.gro.plain << R"(,"plain_by_reason":{)";
  for (std::size_t i = 0; i < offload::kGroPlainCount; ++i)
    o << (i ? "," : "") << '"' << offload::to_string(static_cast<offload::GroPlain>(i)) << "\":" << rx.gro.plain_by_reason[i];
  o << "}}";
  o << R"(},"tx":{"tun_reads":)" << tx.tun_reads << R"(,"packets":)" << tx.packets << R"(,"bytes":)" << tx.bytes
    << R"(,"ntbs":)" << tx.ntbs << R"(,"transfers":)"
    << (plane.out_pipe() ? plane.out_pipe()->counters().transfers.load() : 0u) << R"(,"in_flight":)"
    << (plane.out_pipe() ? plane.out_pipe()->in_flight() : 0u) << R"(,"replies":)" << tx.replies
    << R"(,"control_packets":)" << tx.control_packets
    << R"(,"padded":)" << tx.padded << R"(,"out_buffer_waits":)" << tx.out_buffer_waits << R"(,"dropped":)"
    << tx.dropped() << ',';
  drops(tx);
  o << R"(,"gso":{"super_packets":)" << tx.gso_super_packets << R"(,"segments":)" << tx.gso_segments
    << R"(,"csum_completed":)" << tx.csum_completed << R"(,"errors":{)";
  for (std::size_t i = 1; i < offload::kGsoErrorCount; ++i)
    o << (i > 1 ? "," : "") << '"' << offload::to_string(static_cast<offload::GsoError>(i)) << "\":" << tx.gso_errors[i];
  o << "}}";
  o << R"(},"offload":{"vnet_hdr":)" << (plane.vnet_hdr() ? "true" : "false") << R"(,"granted":")"
    << tun::describe_offload(plane.offload_flags()) << '"';
  o << R"(},"ntb_errors":{)";
  for (std::size_t i = 0; i < ntb::kNtbErrorCount; ++i)
    o << (i ? "," : "") << '"' << ntb::to_string(static_cast<ntb::NtbError>(i)) << "\":" << rx.ntb.errors[i];
  o << '}';
  // RNDIS framing (docs/rndis.md): the packet messages of the IN transfers, and every message the
  // parser skipped or tolerated, by PacketError.
  o << R"(,"rndis":{"transfers":)" << rx.rndis.transfers << R"(,"messages":)" << rx.rndis.messages
    << R"(,"frames":)" << rx.rndis.frames << R"(,"errors":{)";
  for (std::size_t i = 0; i < rndis::kPacketErrorCount; ++i)
    o << (i ? "," : "") << '"' << rndis::to_string(static_cast<rndis::PacketError>(i)) << "\":" << rx.rndis.errors[i];
  o << "}}";
  // The bulk pipes' view of the endpoints: stalls seen and cleared with CLEAR_FEATURE(HALT),
  // transfers the device overran, timeouts, other errors (docs/reliability.md, the stall rows).
  const auto pipe = [&o](const char* name, const usb::PipeCounters* c, bool first) {
    o << (first ? "" : ",") << '"' << name << "\":{";
    if (c != nullptr)
      o << R"("stalls":)" << c->stalls.load() << R"(,"halts_cleared":)" << c->halts_cleared.load()
        << R"(,"overflows":)" << c->overflows.load() << R"(,"timeouts":)" << c->timeouts.load() << R"(,"errors":)"
        << c->errors.load();
    o << '}';
  };
  o << R"(,"pipes":{)";
  pipe("in", plane.in_pipe() ? &plane.in_pipe()->counters() : nullptr, true);
  pipe("out", plane.out_pipe() ? &plane.out_pipe()->counters() : nullptr, false);
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
    WWAN_FIELD(n, reflected_packets, false);
    WWAN_FIELD(n, tcp_source_segments, false);
    if (const sim::TcpSource* t = modem->network().tcp_source()) {
      o << R"(,"tcp_source":{)";
      WWAN_FIELD(t->counters(), segments_sent, true);
      WWAN_FIELD(t->counters(), bytes_sent, false);
      WWAN_FIELD(t->counters(), bytes_acked, false);
      WWAN_FIELD(t->counters(), fast_retransmits, false);
      WWAN_FIELD(t->counters(), timeouts, false);
      WWAN_FIELD(t->counters(), syn_retransmits, false);
      WWAN_FIELD(t->counters(), acks_from_host, false);
      WWAN_FIELD(t->counters(), ignored, false);
      WWAN_FIELD(t->counters(), resets, false);
      o << ",\"state\":\"" << (t->state() == sim::TcpSource::State::syn_sent      ? "syn_sent"
                                : t->state() == sim::TcpSource::State::established ? "established"
                                : t->state() == sim::TcpSource::State::fin_sent    ? "fin_sent"
                                : t->state() == sim::TcpSource::State::fin_acked   ? "fin_acked"
                                                                                   : "closed")
        << "\"}";
    }
    {
      const sim::TcpSink& k = modem->network().tcp_sink();
      o << R"(,"tcp_sink":{)";
      WWAN_FIELD(k.counters(), connections, true);
      WWAN_FIELD(k.counters(), replaced, false);
      WWAN_FIELD(k.counters(), segments, false);
      WWAN_FIELD(k.counters(), bytes, false);
      WWAN_FIELD(k.counters(), corrupt_segments, false);
      WWAN_FIELD(k.counters(), out_of_order, false);
      WWAN_FIELD(k.counters(), ranges_full, false);
      WWAN_FIELD(k.counters(), acks_sent, false);
      WWAN_FIELD(k.counters(), fins, false);
      WWAN_FIELD(k.counters(), resets, false);
      WWAN_FIELD(k.counters(), ignored, false);
      o << R"(,"state":")" << (k.state() == sim::TcpSink::State::listen         ? "listen"
                                : k.state() == sim::TcpSink::State::syn_received ? "syn_received"
                                : k.state() == sim::TcpSink::State::established  ? "established"
                                                                                 : "last_ack")
        << R"("})";
    }
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
    o << '}';
    if (const sim::DhcpServer* d = modem->network().dhcp_server()) {
      const sim::DhcpServerCounters& c = d->counters();
      o << R"(,"dhcp_server":{)";
      WWAN_FIELD(c, discovers, true);
      WWAN_FIELD(c, offers, false);
      WWAN_FIELD(c, requests, false);
      WWAN_FIELD(c, acks, false);
      WWAN_FIELD(c, naks, false);
      WWAN_FIELD(c, releases, false);
      WWAN_FIELD(c, malformed, false);
      WWAN_FIELD(c, ignored, false);
      o << '}';
    }
    if (const sim::RouterAdvertiser* r = modem->network().router_advertiser()) {
      const sim::RouterAdvertiserCounters& c = r->counters();
      o << R"(,"router":{)";
      WWAN_FIELD(c, solicitations, true);
      WWAN_FIELD(c, bad_solicitations, false);
      WWAN_FIELD(c, solicited, false);
      WWAN_FIELD(c, unsolicited, false);
      WWAN_FIELD(c, rate_limited, false);
      o << '}';
    }
#undef WWAN_FIELD
    o << "}";
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

// "autoconf":{"dhcp":{...},"ra":{...}}: the link's DHCP client and router discovery (docs/dhcp.md).
std::string autoconf_json(const control::LinkAutoconf& a) {
  const dhcp4::ClientCounters& d = a.dhcp().counters();
  const ipv6::RaCounters& r = a.ra().counters();
  std::ostringstream o;
  o << R"("autoconf":{"dhcp":{"state":")" << dhcp4::to_string(a.dhcp().state()) << '"';
  if (const auto& l = a.dhcp().lease()) o << R"(,"address":")" << ipv4_text(l->address) << R"(","lease_s":)" << l->lease_s;
  o << R"(,"discovers":)" << d.discovers << R"(,"requests":)" << d.requests << R"(,"releases":)" << d.releases
    << R"(,"retransmissions":)" << d.retransmissions << R"(,"offers":)" << d.offers << R"(,"acks":)" << d.acks
    << R"(,"naks":)" << d.naks << R"(,"leases":)" << d.leases << R"(,"renewals":)" << d.renewals
    << R"(,"expiries":)" << d.expiries << R"(,"not_ours":)" << d.not_ours << R"(,"malformed":)" << d.malformed
    << R"(},"ra":{"solicitations":)" << r.solicitations << R"(,"advertisements":)" << r.advertisements
    << R"(,"invalid":)" << r.invalid << R"(,"ignored_prefixes":)" << r.ignored_prefixes << R"(,"expiries":)"
    << r.expiries << "}}";
  return o.str();
}

// RNDIS has no NTB negotiation: the IN transfers are our INITIALIZE MaxTransferSize (what
// Windows asks, control/rndis_session.hpp), the OUT ones the device's (DataPlane::set_rndis), and
// the largest frame is Ethernet's until OID_GEN_MAXIMUM_FRAME_SIZE says otherwise.
control::NegotiationResult rndis_negotiation() {
  control::NegotiationResult r;
  r.ok = true;
  r.plan.ntb_in_max_size = control::RndisSessionSettings{}.host_max_transfer_size;
  r.plan.out_transfer_bytes = r.plan.ntb_in_max_size;
  r.plan.max_datagram_size = static_cast<std::uint16_t>(eth::kEthernetHeaderSize + 1500);
  return r;
}

// ---------------------------------------------------------------- the daemon

// gone: the modem left the bus; tun_gone: someone deleted the TUN under the daemon.
enum class RunEnd : std::uint8_t { stop, gone, failed, tun_gone };

// True once the TUN behind `fd` was deleted (`ip link del`): the kernel detaches the descriptor
// and TUNGETIFF answers EBADFD (drivers/net/tun.c, __tun_chr_ioctl), while reads and writes on it
// fail the same way; the workers would only count errors.
bool tun_detached(int fd) {
  ifreq ifr{};
  return ::ioctl(fd, TUNGETIFF, &ifr) != 0 && errno == EBADFD;
}

// The network namespace this process is in, for the lock of an emulated modem: a TUN name is
// only unique within its namespace.
std::string netns_id() {
  struct stat st{};
  if (::stat("/proc/self/ns/net", &st) != 0) return "unknown";
  return std::to_string(st.st_ino);
}

class Daemon {
 public:
  Daemon(const Options& options, Events& events, ShutdownSignals& signals)
      : options_(options), events_(events), signals_(signals) {}

  int run();

 private:
  std::unique_ptr<Attachment> attach(std::string& error);
  RunEnd serve(Attachment& a);
  void on_connected(const control::IpConfig& ip, std::uint32_t mtu);
  void on_disconnected(std::string_view reason);
  // Polls signals; true = stop requested. Handles SIGUSR1.
  bool poll_signals(int timeout_ms, const char* state, const DataPlane* plane, Attachment* a);
  void emit_stats(const char* state, const DataPlane& plane, Attachment* a);
  bool lock_modem(std::string& error);
  bool recreate_tun(std::string& error);
  // Opens the TUN with offload as --offload says (sets vnet_hdr_ / offload_flags_).
  std::unique_ptr<tun::TunDevice> open_tun(std::string& error);
  // The link's DHCP / router discovery: packets between it and the data path, its timers and
  // lease events, and the TUN following its configuration (docs/dhcp.md).
  void run_autoconf(control::LinkAutoconf& autoconf, DataPlane& plane, const control::SessionStatus& st,
                    std::size_t datagram_max);
  // --tap: the TAP follows the session alone (up and `connected` when it connects, down when it
  // drops); the system's DHCP client and SLAAC address it (docs/tun.md "TAP mode").
  void follow_session_on_tap(const control::SessionStatus& st, std::size_t datagram_max);

  const Options& options_;
  Events& events_;
  ShutdownSignals& signals_;
  std::optional<usb::Context> usb_;
  std::unique_ptr<usb::UsbmonCaptureWriter> capture_;
  std::unique_ptr<tun::TunDevice> tun_;
  bool vnet_hdr_ = false;          // tun_ carries virtio_net_hdr (--offload)
  unsigned offload_flags_ = 0;     // what TUNSETOFFLOAD granted
  bool offload_noted_ = false;     // a refusal is said once per run
  eth::MacAddress tap_mac_;        // --tap: the host MAC, the TAP's address (kept across re-enumerations)
  std::uint64_t tap_connects_ = 0; // --tap: the session's connect the TAP is up for
  std::unique_ptr<tun::LinkConfigurator> link_;
  dp::LinkState link_state_;
  bool started_ = false;
  bool up_ = false;
  const control::LinkAutoconf* autoconf_ = nullptr;  // serve()'s, for the stats event
  std::uint64_t autoconf_version_ = 0;               // the configuration the TUN has
  bool stop_requested_ = false;
  std::optional<InstanceLock> lock_;
  // --sim: the faults the control port set that a reset does not cure (sim::faults_surviving_reset),
  // given to the fresh emulated modem after a re-enumeration.
  std::optional<sim::Faults> sim_faults_;
};

std::unique_ptr<Attachment> Daemon::attach(std::string& error) {
  auto a = std::make_unique<Attachment>();
  if (options_.sim_profile) {
    sim::ModemOptions sim_options;
    // The emulated router also advertises unsolicited, as a PDN gateway does (docs/dhcp.md).
    sim_options.network.router_advertisements.interval = sim::kPeriodicAdvertisementInterval;
    a->sim_modem = sim::make_modem(*options_.sim_profile, sim_options);
    if (!a->sim_modem) {
      error = "no emulated modem called '" + *options_.sim_profile + "'";
      return nullptr;
    }
    if (sim_faults_) a->sim_modem->faults() = *sim_faults_;
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

void Daemon::on_connected(const control::IpConfig& ip, std::uint32_t mtu) {
  if (options_.tap) {
    // The system addresses the TAP (its DHCP client, the kernel's SLAAC, a bridge): wwan-dp only
    // sets the link up so that they can run; no address, route, MTU or resolv.conf of its own.
    std::string error;
    if (!link_->apply(tun::LinkSettings{}, error)) events_.error("setting " + tun_->name() + " up: " + error);
    up_ = true;
    events_.connected(ip, mtu);  // what the session knows (Huawei ^DHCP?; nothing on a DHCP link)
    return;
  }
  tun::LinkSettings ls;
  dp::HostAddresses host;
  if (ip.ipv4) {
    ls.ipv4 = tun::Ipv4Settings{ip.ipv4->address, ip.ipv4->prefix_length, ip.ipv4->gateway};
    host.ipv4 = ip.ipv4->address;
  }
  if (ip.ipv6) {
    ls.ipv6 = tun::Ipv6Settings{ip.ipv6->address, ip.ipv6->prefix_length, ip.ipv6->gateway};
    host.ipv6.push_back(ip.ipv6->address);
    // The modem may resolve the source of our RSs (NCM answers NS for it: ethernet.hpp).
    if (autoconf_ != nullptr)
      if (const auto ll = autoconf_->link_local()) host.ipv6.push_back(*ll);
  }
  ls.mtu = mtu;
  ls.default_route_metric = options_.default_route_metric;
  // IPv6: a default route only while there is a default router (the RA's router lifetime, or the
  // session's gateway); LinkAutoconf's merge drops the gateway when the lifetime runs out.
  ls.ipv6_default_route = ip.ipv6 && ip.ipv6->gateway.has_value();
  link_state_.set_host_addresses(host);
  std::string error;
  if (!link_->apply(ls, error)) events_.error("configuring " + tun_->name() + ": " + error);
  if (!options_.resolv_path.empty()) {
    std::vector<eth::Ipv4Address> v4;
    std::vector<eth::Ipv6Address> v6;
    if (ip.ipv4) v4 = ip.ipv4->dns;
    if (ip.ipv6) v6 = ip.ipv6->dns;
    if (!tun::write_resolv_conf(options_.resolv_path, tun_->name(), v4, v6, error)) events_.error(error);
  }
  up_ = true;
  events_.connected(ip, mtu);
}

void Daemon::run_autoconf(control::LinkAutoconf& autoconf, DataPlane& plane, const control::SessionStatus& st,
                          std::size_t datagram_max) {
  const auto now = SteadyClock::now();
  autoconf.on_session(st, now);
  dp::ControlPacket packet;
  while (plane.take_control_packet(packet)) autoconf.on_packet(eth::Bytes(packet.bytes.data(), packet.length), now);
  autoconf.on_timer(now);
  for (const control::AutoconfPacket& p : autoconf.take_packets())
    if (!plane.send_control_packet(p) && options_.verbose > 0) events_.note("a DHCP / RS packet found TX's ring full");
  for (const control::LeaseEvent& e : autoconf.take_events()) events_.lease(e);
  if (autoconf.version() == autoconf_version_) return;
  autoconf_version_ = autoconf.version();
  if (autoconf.up()) {
    // The MTU: the smallest the configuration reports, else 1500, never above what an NTB carries.
    const control::IpConfig& ip = autoconf.config();
    std::uint32_t mtu = 0;
    if (ip.ipv4 && ip.ipv4->mtu) mtu = ip.ipv4->mtu;
    if (ip.ipv6 && ip.ipv6->mtu && (mtu == 0 || ip.ipv6->mtu < mtu)) mtu = ip.ipv6->mtu;
    if (mtu == 0) mtu = 1500;
    on_connected(ip, static_cast<std::uint32_t>(std::min<std::size_t>(mtu, datagram_max)));
  } else if (up_) {
    on_disconnected(autoconf.down_reason().empty() ? (st.error.empty() ? "the network ended the session" : st.error)
                                                   : autoconf.down_reason());
  }
}

void Daemon::follow_session_on_tap(const control::SessionStatus& st, std::size_t datagram_max) {
  const bool connected = st.state == control::SessionState::connected;
  if (connected && (!up_ || st.connects != tap_connects_)) {
    tap_connects_ = st.connects;
    std::uint32_t mtu = 0;
    if (st.ip.ipv4 && st.ip.ipv4->mtu) mtu = st.ip.ipv4->mtu;
    if (st.ip.ipv6 && st.ip.ipv6->mtu && (mtu == 0 || st.ip.ipv6->mtu < mtu)) mtu = st.ip.ipv6->mtu;
    if (mtu == 0) mtu = 1500;
    on_connected(st.ip, static_cast<std::uint32_t>(std::min<std::size_t>(mtu, datagram_max)));
  } else if (!connected && up_) {
    on_disconnected(st.error.empty() ? "the network ended the session" : st.error);
  }
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
  if (autoconf_ != nullptr) body += ',' + autoconf_json(*autoconf_);
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
  // RNDIS (the FM350, docs/rndis.md): no NTB negotiation; INITIALIZE on the RNDIS session sets
  // the limits, and the dial goes over the serial AT port.
  const bool rndis = f.kind == usb::Function::Rndis;
  if (a.quirks.row != nullptr && options_.verbose > 0)
    events_.note(std::string("quirks: ") + a.quirks.row->name + " (" + a.quirks.row->evidence + ")");

  const control::NegotiationResult n = rndis ? rndis_negotiation() : control::negotiate(*a.transport, f, a.quirks.quirks);
  if (!n.ok) {
    events_.error("NTB negotiation with " + a.device_text + " failed: " + n.error);
    return a.transport->device_gone() ? RunEnd::gone : RunEnd::failed;
  }
  for (const std::string& adj : n.plan.adjustments) events_.note(adj);
  if (options_.verbose > 1)
    for (const std::string& line : n.log) events_.note(line);

  // The session.
  const bool quectel = !mbim && !rndis && a.quirks.quirks.dial == control::DialMethod::quectel_at;
  control::SessionSettings settings = options_.settings;
  settings.fcc_unlock = options_.force_fcc || a.quirks.quirks.fcc_unlock == control::FccUnlock::sierra_qmi ||
                        (rndis && a.quirks.quirks.fcc_unlock == control::FccUnlock::fibocom_at);
  std::unique_ptr<control::Session> session;
  control::RunnerOptions ro;
  if (mbim) {
    const std::uint32_t max_control = f.mbim ? f.mbim->max_control_message : 4096;
    session = std::make_unique<control::MbimSession>(settings, max_control);
    ro.response_buffer_bytes = static_cast<std::uint16_t>(std::clamp<std::uint32_t>(max_control, 64, 4096));
  } else if (f.kind == usb::Function::HuaweiNcm) {
    session = std::make_unique<control::HuaweiSession>(settings);
  } else if (quectel) {
    // Quectel usbnet NCM: AT+QNETDEVCTL on the serial AT port, the address from DHCP (below).
    // The quirk row names the firmware's AT+QNETDEVCTL argument order (Unisoc: the cid first).
    control::QuectelSessionOptions qo;
    qo.qnetdevctl_order = a.quirks.quirks.qnetdevctl_order;
    session = std::make_unique<control::QuectelSession>(settings, qo);
  } else if (rndis) {
    // control::RndisAtRunner below holds the RNDIS session and the AT dial.
  } else {
    // A plain CDC NCM function: nothing to dial; its address comes from DHCP on the link unless
    // the user gave one.
    control::IpConfig ip;
    if (options_.static_ipv4) ip.ipv4 = *options_.static_ipv4;
    session = std::make_unique<control::LinkSession>(ip);
  }

  // The MTU: what the session reports, else 1500, never more than one NTB datagram can carry.
  const std::size_t framing = mbim ? 0 : eth::kEthernetHeaderSize;
  std::size_t datagram_max = n.plan.max_datagram_size > framing ? n.plan.max_datagram_size - framing : 1500;
  DataPlane::Config dc;
  dc.function = f;
  dc.plan = n.plan;
  dc.quirks = a.quirks.quirks;
  dc.tun_fd = tun_->fd();
  dc.our_mac = mbim || rndis ? eth::MacAddress{} : options_.tap ? tap_mac_ : host_mac(*a.transport, f);  // RNDIS: the device names it
  dc.tap = options_.tap;
  dc.mtu_bytes = std::max<std::size_t>(datagram_max, 1500);
  dc.threads = options_.threads;
  dc.vnet_hdr = vnet_hdr_;
  dc.offload_flags = offload_flags_;
  dc.transfers = options_.transfers;
  dc.workers_without_capabilities = !options_.run_as.empty();
  DataPlane plane(*a.transport, dc, link_state_);
  std::string error;
  std::optional<rndis::PacketOutParams> rndis_limits;  // RNDIS: INITIALIZE_CMPLT's, for the started event
  const auto start_plane = [&] {
    if (!plane.start(error)) {
      events_.error(error);
      return false;
    }
    if (!started_) {
      events_.started(tun_->name(), a.device_text, usb::to_string(f.kind), n.plan, options_.sim_profile.has_value(),
                      rndis_limits ? &*rndis_limits : nullptr);
      started_ = true;
    }
    return true;
  };
  if (!rndis && !start_plane()) return RunEnd::failed;  // RNDIS: once INITIALIZE told the limits

  // AT sessions: the encapsulated channel, moving to the serial AT port if it answers nothing
  // (some E3372h firmware), or that port from the start where the quirk table says so.
  std::unique_ptr<control::CommandTransport> commands;
  if (f.kind == usb::Function::HuaweiNcm || quectel) {
    control::CommandTransportFactory open_serial;
    if (a.opened) open_serial = libusb_serial_at_factory(*usb_, a.opened->device, a.opened->configuration);
    else open_serial = [&a](std::string& e) { return serial_at_of_model(*a.transport, *a.sim_modem, e); };
    commands = make_at_command_transport(*a.transport, f.control_interface, control::AtPortChoice::automatic,
                                         a.quirks.quirks.at_over_serial,
                                         {.answer_timeout = settings.command_timeout, .unanswered_commands = 2},
                                         std::move(open_serial), error);
    if (!commands) {
      events_.error(a.device_text + ": " + error);
      return RunEnd::failed;
    }
  }
  std::unique_ptr<control::SessionDriver> runner;
  control::RndisAtRunner* rndis_runner = nullptr;
  if (rndis) {
    // The FM350 has no AT on the encapsulated channel (D1): its serial AT port, claimed on a
    // second handle (--sim: the emulated one on the same transport).
    commands = a.opened ? libusb_serial_at_factory(*usb_, a.opened->device, a.opened->configuration)(error)
                        : serial_at_of_model(*a.transport, *a.sim_modem, error);
    if (!commands) {
      events_.error(a.device_text + ": the AT port: " + error);
      return RunEnd::failed;
    }
    control::RndisSessionSettings rs;
    rs.host_max_transfer_size = n.plan.ntb_in_max_size;
    rs.bulk_out_max_packet_size = f.bulk_out.max_packet_size;
    auto r = std::make_unique<control::RndisAtRunner>(*a.transport, f, rs, settings, *commands, ro);
    rndis_runner = r.get();
    runner = std::move(r);
  } else {
    runner = std::make_unique<control::SessionRunner>(*a.transport, f, *session, ro, commands.get());
  }
  if (!runner->start()) {
    events_.error(runner->error());
    return a.transport->device_gone() ? RunEnd::gone : RunEnd::failed;
  }
  if (rndis_runner != nullptr) {
    // INITIALIZE, the MAC and the packet filter: then the data path knows its limits.
    const auto ready = [&](const control::SessionStatus& s) {
      return rndis_runner->rndis_ready() || s.state == control::SessionState::failed;
    };
    if (!rndis_runner->run_until(ready, 4 * settings.command_timeout) || !rndis_runner->rndis_ready()) {
      if (a.transport->device_gone()) return RunEnd::gone;
      const std::string& why = runner->status().error;
      events_.error(a.device_text + ": RNDIS setup failed: " + (why.empty() ? "no answer to INITIALIZE" : why));
      return RunEnd::failed;
    }
    const control::RndisDeviceInfo& info = rndis_runner->rndis().device_info();
    for (const char* what : {info.out_overridden.max_transfer_size ? "MaxTransferSize" : nullptr,
                             info.out_overridden.max_packets_per_transfer ? "MaxPacketsPerTransfer" : nullptr,
                             info.out_overridden.packet_alignment_factor ? "PacketAlignmentFactor" : nullptr})
      if (what != nullptr) events_.note(std::string("RNDIS INITIALIZE_CMPLT ") + what + " out of range: clamped (docs/rndis.md)");
    datagram_max = info.max_frame_size;
    dc.our_mac = info.mac;
    plane.set_rndis(info.out, info.mac, datagram_max);
    rndis_limits = info.out;
    if (!start_plane()) return RunEnd::failed;
  }

  RunEnd end = RunEnd::stop;
  // The link's own addressing (docs/dhcp.md): DHCPv4 where the session has no address to give,
  // router discovery wherever IPv6 was asked for.
  control::AutoconfSettings acs;
  // --tap: none of it; the system's DHCP client and SLAAC run on the TAP.
  acs.dhcp4 = !options_.tap && !mbim && !rndis && f.kind != usb::Function::HuaweiNcm && !options_.static_ipv4 &&
              settings.families != control::IpFamilies::ipv6;
  // Huawei: DHCP stands in when AT^DHCP? gave nothing usable (firmware without it, garbled).
  acs.dhcp4_fallback = !options_.tap && f.kind == usb::Function::HuaweiNcm && !options_.static_ipv4 &&
                       settings.families != control::IpFamilies::ipv6;
  acs.ipv6_ra = !options_.tap && settings.families != control::IpFamilies::ipv4;
  acs.link_layer = !mbim;
  acs.mac = dc.our_mac;
  acs.seed = static_cast<std::uint32_t>(std::random_device{}());
  control::LinkAutoconf autoconf(acs);
  autoconf_ = &autoconf;
  autoconf_version_ = autoconf.version();
  auto next_stats = SteadyClock::now() + std::chrono::seconds(options_.stats_interval_s);
  auto next_fault_check = SteadyClock::now();
  auto next_tun_check = SteadyClock::now();
  for (;;) {
    runner->step(50);
    if (const std::string notice = runner->take_notice(); !notice.empty()) events_.note(notice);
    const control::SessionStatus& st = runner->status();
    if (options_.tap)
      follow_session_on_tap(st, datagram_max);
    else
      run_autoconf(autoconf, plane, st, datagram_max);
    if (st.state == control::SessionState::failed) {
      events_.error(st.error);
      end = RunEnd::failed;
      break;
    }
    if (runner->device_gone() || plane.device_gone()) {
      end = RunEnd::gone;
      break;
    }
    if (const std::string why = plane.failure(); !why.empty()) {
      events_.error(why);
      end = RunEnd::failed;
      break;
    }
    if (const auto now = SteadyClock::now(); a.sim_transport && now >= next_fault_check) {
      // The emulated network's control port asked for faults (sim/network.hpp `fault ...`).
      a.sim_transport->with_model([&](sim::DeviceModel&) {
        if (sim::apply_fault_requests(*a.sim_modem) > 0) sim_faults_ = sim::faults_surviving_reset(a.sim_modem->faults());
      });
      next_fault_check = now + std::chrono::milliseconds(20);
    }
    if (const auto now = SteadyClock::now(); now >= next_tun_check) {
      if (tun_detached(tun_->fd())) {
        end = RunEnd::tun_gone;
        break;
      }
      next_tun_check = now + std::chrono::milliseconds(250);
    }
    if (poll_signals(0, control::to_string(st.state), &plane, &a)) break;
    if (options_.stats_interval_s > 0 && SteadyClock::now() >= next_stats) {
      emit_stats(control::to_string(st.state), plane, &a);
      next_stats += std::chrono::seconds(options_.stats_interval_s);
    }
  }

  if (end != RunEnd::gone) {
    // DHCPRELEASE on the way out (RFC 2131 §4.4.6), waiting briefly until TX has sent it.
    autoconf.release(SteadyClock::now());
    const std::uint64_t sent_before = plane.tx_counters().control_packets;
    std::size_t queued = 0;
    for (const control::AutoconfPacket& p : autoconf.take_packets()) queued += plane.send_control_packet(p) ? 1u : 0u;
    const auto deadline = SteadyClock::now() + std::chrono::milliseconds(300);
    while (queued > 0 && plane.tx_counters().control_packets < sent_before + queued && SteadyClock::now() < deadline)
      runner->step(10);
    runner->stop(std::chrono::milliseconds(800));
  }
  autoconf_ = nullptr;
  if (up_)
    on_disconnected(end == RunEnd::gone       ? a.device_text + " left the bus"
                    : end == RunEnd::tun_gone ? "the TUN " + tun_->name() + " was deleted"
                                              : "stopped");
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
  std::optional<RunAsUser> run_as;
  if (!options_.run_as.empty()) {
    run_as = resolve_user(options_.run_as, error);
    if (!run_as) {
      events_.error(error);
      return 1;
    }
  }
  // One daemon per modem: refused before it touches the modem or the TUN.
  if (!lock_modem(error)) {
    events_.error(error);
    return 1;
  }
  // The modem first: a wrong --dev should not create a TUN on its way to failing.
  std::unique_ptr<Attachment> first = attach(error);
  if (!first) {
    events_.error(error);
    return 1;
  }
  if (options_.tap) {
    // A TAP carries Ethernet frames: MBIM carries raw IP, and RNDIS is not passed through.
    const usb::Function kind = first->function.kind;
    if (kind == usb::Function::Mbim || kind == usb::Function::Rndis) {
      events_.error("--tap needs an NCM function (Ethernet frames), and " + first->device_text + " is " +
                    std::string(usb::to_string(kind)) + ": use --tun NAME");
      return 1;
    }
    // The MAC the modem expects of the host (iMACAddress), once: the TAP keeps it across
    // re-enumerations and a TAP made again.
    tap_mac_ = host_mac(*first->transport, first->function);
  }
  tun_ = open_tun(error);
  if (!tun_) {
    events_.error(error);
    return 1;
  }
  link_ = tun::LinkConfigurator::open(tun_->ifindex(), error);
  if (!link_) {
    events_.error(error);
    return 1;
  }
  if (run_as) {
    // Setup is done: the modem is claimed, the TUN and the rtnetlink socket are open. What was
    // inherited is not needed; root is not needed either (docs/reliability.md).
    close_descriptors(options_.inherited_descriptors);
    if (!drop_privileges(*run_as, error)) {
      events_.error(error);
      return 1;
    }
    if (options_.verbose > 0)
      events_.note("running as " + run_as->name + " (uid " + std::to_string(run_as->uid) + "), keeping CAP_NET_ADMIN");
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
    if (end == RunEnd::tun_gone) {
      // A router wants its WAN back, not a dead daemon: make the TUN again and redial onto it.
      if (!recreate_tun(error)) {
        events_.error(error);
        code = 1;
        break;
      }
      continue;
    }
    if (end == RunEnd::gone && options_.once) {
      events_.note("the modem left the bus; exiting (--once)");
      code = 3;
      break;
    }
    if (end == RunEnd::gone) {
      // A real modem is waited for (attach() fails until it is back); an emulated one comes
      // back at once as a fresh device, which is what a re-enumeration looks like from here.
      events_.note("the modem left the bus; waiting for it to come back");
    }
  }

  if (link_) link_->clear(true, error);
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

bool Daemon::lock_modem(std::string& error) {
  std::string key, what;
  if (options_.sim_profile) {
    key = "sim-" + *options_.sim_profile + "-" + options_.tun_name + "-net" + netns_id();
    what = "the emulated " + *options_.sim_profile + " with TUN " + options_.tun_name;
  } else {
    if (!usb_) {
      usb_ = usb::Context::open(error);
      if (!usb_) {
        error = "cannot use USB on this machine: " + error;
        return false;
      }
    }
    std::string ignored;
    const std::optional<usb::DeviceInfo> d = usb::find_device(*usb_, *options_.device_args.selector, ignored);
    if (!d) return true;  // attach() says why it is not there
    key = "usb-" + d->port_path;
    what = "the modem at USB port " + d->port_path;
  }
  lock_ = InstanceLock::acquire(key, what, error);
  return lock_.has_value();
}

// --offload (docs/offload.md): auto asks for IFF_VNET_HDR and TUNSETOFFLOAD and runs with what
// the kernel grants, or without offload when it grants nothing (said once per run); on refuses to
// run without TCP segmentation both ways (csum, tso4, tso6; USO only noted); off never asks.
std::unique_ptr<tun::TunDevice> Daemon::open_tun(std::string& error) {
  // O_NONBLOCK always: io_uring issues a read or write inline, in submission order, only on a file
  // it counts as non-blocking. The io_uring of Linux 6.1 (Debian 12's kernel) counts a character
  // device such as /dev/net/tun only when it is O_NONBLOCK (__io_file_supports_nowait); otherwise it
  // punts every TUN write to io-wq worker threads that run concurrently, reordering the packets of
  // an NTB. Seen in the VM rig (docs/vm.md) on 6.1: the receiving TCP dropped the late segments as
  // PAWS (TcpExtPAWSEstab 702, 113 fast retransmits in a 4 s stream, 6.5 Mbit/s against cdc_ncm's
  // 72); with O_NONBLOCK none, 49 Mbit/s. Reads then return -EAGAIN and io_uring arms a poll.
  constexpr bool kNonblocking = true;
  vnet_hdr_ = false;
  offload_flags_ = 0;
  if (options_.tap) {
    // Frames pass through unchanged: no virtio_net_hdr, no GRO/GSO on a TAP.
    if (options_.offload == Options::Offload::on && !offload_noted_)
      events_.note("--offload on is ignored with --tap: the TAP carries the modem's frames unchanged, without offload");
    offload_noted_ = true;
    tun::TunOptions o;
    o.nonblocking = kNonblocking;
    o.mode = tun::DeviceMode::tap;
    o.mac = tap_mac_.bytes;
    return tun::TunDevice::open(options_.tun_name, o, error);
  }
  if (options_.offload != Options::Offload::off) {
    std::unique_ptr<tun::TunDevice> t = tun::TunDevice::open(options_.tun_name, tun::TunOptions{.vnet_hdr = true, .nonblocking = kNonblocking}, error);
    if (!t) return nullptr;  // the name, the permissions...: the same refusals as without offload
    std::string why;
    tun::OffloadGrant grant;
    if (!t->vnet_hdr()) {
      why = "TUN offload: the kernel did not grant IFF_VNET_HDR: running without it";
    } else if (!tun::enable_offload(t->fd(), grant, why)) {
      why = "TUN offload: " + why;
    } else if (grant.flags != 0) {
      constexpr unsigned kTcpBothWays = tun::kTunFCsum | tun::kTunFTso4 | tun::kTunFTso6;
      if (options_.offload == Options::Offload::on && (grant.flags & kTcpBothWays) != kTcpBothWays) {
        error = "--offload on, but " + grant.note + " (use --offload auto to run with what the kernel grants)";
        return nullptr;
      }
      if (!offload_noted_ && (!grant.note.empty() || options_.verbose > 0))
        events_.note(grant.note.empty() ? "TUN offload: " + tun::describe_offload(grant.flags) : grant.note);
      offload_noted_ = true;
      vnet_hdr_ = true;
      offload_flags_ = grant.flags;
      return t;
    } else {
      why = grant.note;  // "the kernel refused every offload (...): running without it, ..."
    }
    if (options_.offload == Options::Offload::on) {
      error = "--offload on, but " + why + " (use --offload auto or off)";
      return nullptr;
    }
    if (!offload_noted_) events_.note(why);
    offload_noted_ = true;
    t.reset();  // a TUN it created vanishes; opened again below without IFF_VNET_HDR
  }
  return tun::TunDevice::open(options_.tun_name, tun::TunOptions{.nonblocking = kNonblocking}, error);
}

bool Daemon::recreate_tun(std::string& error) {
  link_.reset();
  tun_.reset();
  tun_ = open_tun(error);
  if (!tun_) {
    error = "the TUN was deleted and cannot be made again: " + error;
    if (!options_.run_as.empty())
      error += " (under --user the user needs read and write access to /dev/net/tun, as mode 0666 gives)";
    return false;
  }
  link_ = tun::LinkConfigurator::open(tun_->ifindex(), error);
  if (!link_) return false;
  events_.note("the TUN " + options_.tun_name + " was deleted: made " + tun_->name() + " again (ifindex " +
               std::to_string(tun_->ifindex()) + ") and redialling onto it");
  return true;
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
    } else if (a == "--once") {
      o.once = true;
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
               (a == "--sim" || a == "--tun" || a == "--apn" || a == "--apn-user" || a == "--apn-password" || a == "--auth" ||
                a == "--pin" || a == "--ip-type" || a == "--ip" || a == "--resolv" || a == "--capture" ||
                a == "--stats-interval" || a == "--static-ipv4" || a == "--threads" || a == "--transfers" ||
                a == "--user" || a == "--command-timeout" || a == "--offload" || a == "--tap")) {
      return bad(std::string(a) + " needs a value");
    } else if (a == "--sim") {
      o.sim_profile = value();
    } else if (a == "--tun" || a == "--tap") {
      if (!o.tun_name.empty() && o.tap != (a == "--tap"))
        return bad("--tun and --tap are exclusive: a TUN that wwan-dp configures, or a TAP the system configures");
      o.tap = a == "--tap";
      o.tun_name = value();
    } else if (a == "--apn") {
      o.settings.apn = value();
    } else if (a == "--apn-user") {
      o.settings.user = value();
    } else if (a == "--apn-password") {
      o.settings.password = value();
    } else if (a == "--user") {
      o.run_as = value();
    } else if (a == "--command-timeout") {
      const std::string v = value();
      unsigned seconds = 0;
      if (!parse_unsigned(v, seconds) || seconds < 1 || seconds > 600)
        return bad("--command-timeout is 1..600 seconds, not '" + v + "'");
      o.settings.command_timeout = std::chrono::seconds(seconds);
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
    } else if (a == "--offload") {
      const std::string v = value();
      if (v == "auto") o.offload = Options::Offload::automatic;
      else if (v == "on") o.offload = Options::Offload::on;
      else if (v == "off") o.offload = Options::Offload::off;
      else return bad("--offload is auto, on or off, not '" + v + "'");
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
    if (!sim::parse_profile(*o.sim_profile)) {  // a name, or a name with benchmark "+variants"
      std::string list;
      for (const auto n : names) list += (list.empty() ? "" : ", ") + std::string(n);
      return bad("--sim " + *o.sim_profile + ": no such emulated modem (there are: " + list + ")");
    }
  }
  if (o.tun_name.empty()) return bad("which TUN? --tun NAME (e.g. --tun wwan0; created if it does not exist)");
  if (o.tap && (o.static_ipv4 || o.default_route_metric || !o.resolv_path.empty()))
    return bad(std::string(o.static_ipv4 ? "--static-ipv4" : o.default_route_metric ? "--default-route" : "--resolv") +
               " configures the TUN, and with --tap the system configures the TAP (its DHCP client, SLAAC): drop it");
  if (!o.settings.user.empty() && o.settings.auth == control::AuthProtocol::none) o.settings.auth = control::AuthProtocol::chap;
  return 0;
}

}  // namespace

int run_daemon(std::span<const std::string_view> args, std::ostream& out, std::ostream& err) {
  Options options;
  if (const int rc = parse(args, options, out, err); rc != 0) return rc < 0 ? 0 : rc;
  // Before this process opens anything of its own: what is open now was inherited.
  options.inherited_descriptors = open_descriptors();
  ShutdownSignals signals({SIGUSR1});  // before any thread exists: the workers inherit the mask
  Events events(out, err, options.json);
  Daemon daemon(options, events, signals);
  return daemon.run();
}

}  // namespace wwan::cli
