// The cost of the libusb path: the RX and TX cases of bench/e2e_bench.cpp through REAL libusb
// against the usbfs emulation (tests/usbfs/usb_testbed.hpp: umockdev's sysfs and /dev, an ioctl
// handler per node playing the kernel's usbfs, in this process), instead of the in-process
// transport. Runs under umockdev-wrapper; e2e_bench runs it and merges its cases (path "usbfs").
//
// What is real: libusb (enumeration, claim, async bulk transfers, its event loop), the transfer
// pipes, NTB negotiation, the RX and TX stages and their worker threads, exactly as the daemon
// wires them. What is not: under the umockdev preload TUN ioctls fail (ENOTTY), so the daemon
// cannot run here; the TUN is a counting fake PacketIo (RX: writes counted and completed at once;
// TX: every read returns a ready-made UDP packet to the emulated network's discard port). And the
// emulation's own cost dominates: every URB goes through umockdev's ioctl forwarding (a socket round
// trip to the handler thread) and the FIFO trick that wakes libusb, far more than a kernel usbfs
// URB costs. So the figures bound the libusb path from below; they are not what a real modem gets.
//
//   umockdev-wrapper usbfs_bench [--quick] [--seconds S] [--json]
// --json: one JSON array on one line on stdout (e2e_bench reads it); else a table.
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <iomanip>
#include <iostream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "bench/e2e_support.hpp"
#include "control/ncm_negotiation.hpp"
#include "control/quirks.hpp"
#include "datapath/link_state.hpp"
#include "datapath/rx_path.hpp"
#include "datapath/tx_path.hpp"
#include "datapath/worker.hpp"
#include "sim/modem.hpp"
#include "tests/usbfs/profiles.hpp"
#include "tests/usbfs/usb_testbed.hpp"
#include "tools/device_args.hpp"
#include "usb/libusb_context.hpp"
#include "usb/transfer_pipes.hpp"

namespace wwan::bench {
namespace {

using namespace std::chrono_literals;

[[noreturn]] void fail(const std::string& why) {
  std::cerr << "usbfs_bench: " << why << '\n';
  std::exit(1);
}

// The TUN, faked and counted. Writes complete at once; reads complete at once with a ready-made
// packet while `reading` is on, and wait (held, like reads on an idle TUN) while it is off.
class CountingPacketIo final : public dp::PacketIo {
 public:
  static constexpr std::size_t kCapacity = 1024;

  std::size_t free_slots() const override {
    const std::lock_guard lock(mu_);
    return kCapacity - std::min(kCapacity, done_.size() + held_.size());
  }
  bool prepare_write(std::span<const std::uint8_t> packet, std::uint64_t tag) override {
    const std::lock_guard lock(mu_);
    if (done_.size() + held_.size() >= kCapacity) return false;
    written_.fetch_add(1, std::memory_order_relaxed);
    written_bytes_.fetch_add(packet.size(), std::memory_order_relaxed);
    done_.push_back({tag, static_cast<std::int32_t>(packet.size())});
    return true;
  }
  // The RX stage writes with writev only with TUN offload (never here); counted the same way.
  bool prepare_writev(const iovec* iov, unsigned count, std::uint64_t tag) override {
    std::size_t bytes = 0;
    for (unsigned i = 0; i < count; ++i) bytes += iov[i].iov_len;
    const std::lock_guard lock(mu_);
    if (done_.size() + held_.size() >= kCapacity) return false;
    written_.fetch_add(1, std::memory_order_relaxed);
    written_bytes_.fetch_add(bytes, std::memory_order_relaxed);
    done_.push_back({tag, static_cast<std::int32_t>(bytes)});
    return true;
  }
  bool prepare_read(std::span<std::uint8_t> buffer, std::uint64_t tag) override {
    const std::lock_guard lock(mu_);
    if (done_.size() + held_.size() >= kCapacity) return false;
    held_.push_back({buffer, tag});
    serve_locked();
    return true;
  }
  void submit() override {}
  std::size_t reap(std::span<dp::IoCompletion> out, int timeout_ms) override {
    std::unique_lock lock(mu_);
    serve_locked();
    if (done_.empty() && !woken_ && timeout_ms != 0) {
      const auto pred = [&] { return !done_.empty() || woken_; };
      if (timeout_ms < 0)
        cv_.wait(lock, pred);
      else
        cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), pred);
    }
    woken_ = false;
    std::size_t n = 0;
    while (n < out.size() && !done_.empty()) {
      out[n++] = done_.front();
      done_.pop_front();
    }
    return n;
  }
  void cancel_all() override {
    const std::lock_guard lock(mu_);
    for (const Held& h : held_) done_.push_back({h.tag, -ECANCELED});
    held_.clear();
    cv_.notify_all();
  }
  void wake() override {
    const std::lock_guard lock(mu_);
    woken_ = true;
    cv_.notify_all();
  }

  // TX source: reads return IPv4/UDP packets from 10.64.64.2 to 10.64.64.1:9 with IP sizes
  // cycling through `pattern`; an empty pattern turns it off.
  void set_reading(const std::vector<std::size_t>& pattern) {
    const std::lock_guard lock(mu_);
    packets_.clear();
    for (std::size_t s : pattern) packets_.push_back(udp_packet(s));
    next_ = 0;
    serve_locked();
    cv_.notify_all();
  }
  std::uint64_t written() const { return written_.load(std::memory_order_relaxed); }
  std::uint64_t written_bytes() const { return written_bytes_.load(std::memory_order_relaxed); }

 private:
  struct Held {
    std::span<std::uint8_t> buffer;
    std::uint64_t tag;
  };
  static std::vector<std::uint8_t> udp_packet(std::size_t ip_bytes) {
    std::vector<std::uint8_t> p(ip_bytes, 0);
    const eth::MutableBytes b(p);
    p[0] = 0x45;
    eth::store_be16(b, 2, static_cast<std::uint16_t>(ip_bytes));
    p[8] = 64;
    p[9] = 17;
    const std::uint8_t from[4] = {10, 64, 64, 2}, to[4] = {10, 64, 64, 1};
    std::memcpy(p.data() + 12, from, 4);
    std::memcpy(p.data() + 16, to, 4);
    eth::store_be16(b, 10, eth::ipv4_header_checksum(b.first(20)));
    eth::store_be16(b, 20, 40000);
    eth::store_be16(b, 22, sim::kUdpDiscardPort);
    eth::store_be16(b, 24, static_cast<std::uint16_t>(ip_bytes - 20));
    return p;
  }
  void serve_locked() {
    if (packets_.empty()) return;
    while (!held_.empty()) {
      const std::vector<std::uint8_t>& p = packets_[next_];
      next_ = next_ + 1 == packets_.size() ? 0 : next_ + 1;
      const Held h = held_.front();
      held_.pop_front();
      const std::size_t n = std::min(p.size(), h.buffer.size());
      std::memcpy(h.buffer.data(), p.data(), n);
      done_.push_back({h.tag, static_cast<std::int32_t>(n)});
    }
  }

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<dp::IoCompletion> done_;
  std::deque<Held> held_;
  bool woken_ = false;
  std::vector<std::vector<std::uint8_t>> packets_;
  std::size_t next_ = 0;
  std::atomic<std::uint64_t> written_{0}, written_bytes_{0};
};

// The daemon's DataPlane (tools/daemon.cpp) over the usbfs transport with the counting fake TUN.
class Plane final : public dp::InLink, public dp::OutLink {
 public:
  Plane(usb::Transport& t, const usb::NetworkFunction& f, const control::NtbPlan& plan, const control::Quirks& q)
      : transport_(t), function_(f) {
    constexpr unsigned kTransfers = 8;  // the daemon's default --transfers
    usb::PipeConfig out;
    out.endpoint = f.bulk_out.address;
    out.transfer_bytes = plan.out_transfer_bytes;
    out.transfers_in_flight = kTransfers;
    out.zero_length_packet = q.out_termination == control::OutTermination::zero_length_packet;
    out_pipe_ = std::make_unique<usb::OutPipe>(t, out);
    dp::TxConfig tc;
    tc.out = plan.out;
    tc.signature = ntb::NdpSignature{plan.format, ntb::DatagramKind::Ncm, 0};
    tc.our_mac = eth::MacAddress{{0x02, 0, 0, 0, 0, 0x02}};
    tc.reads_in_flight = 64;
    tc.out_slots = kTransfers;
    tc.pad_one_byte = !out.zero_length_packet;
    tx_ = std::make_unique<dp::TxStage>(tc, tx_io_, *this, link_state_);
    dp::RxConfig rc;
    rc.transfer_bytes = plan.ntb_in_max_size;
    rc.in_slots = kTransfers;
    rc.ring_capacity = kTransfers;
    rc.our_mac = tc.our_mac;
    rx_ = std::make_unique<dp::RxStage>(rc, rx_io_, *this, link_state_, &tx_->replies(), &tx_io_);
    usb::PipeConfig in;
    in.endpoint = f.bulk_in.address;
    in.transfer_bytes = plan.ntb_in_max_size;
    in.transfers_in_flight = kTransfers;
    in_pipe_ = std::make_unique<usb::InPipe>(t, in, &Plane::on_in, this);
    workers_.push_back(std::make_unique<dp::Worker>(rx_io_, rx_.get(), nullptr));
    workers_.push_back(std::make_unique<dp::Worker>(tx_io_, nullptr, tx_.get()));
    // As the daemon: wakes only a worker that waits (datapath/worker.hpp).
    out_pipe_->set_on_free([](void* w) { static_cast<dp::Worker*>(w)->notify_out_buffer_freed(); }, workers_[1].get());
    const char* names[2] = {"usbfs rx", "usbfs tx"};
    for (std::size_t i = 0; i < workers_.size(); ++i) {
      threads_.emplace_back([w = workers_[i].get()] { w->run(); });
      ::pthread_setname_np(threads_.back().native_handle(), names[i]);
    }
    events_ = std::thread([this] {
      while (!stop_events_.load()) transport_.handle_events(50);
    });
    ::pthread_setname_np(events_.native_handle(), "usbfs events");
    if (!in_pipe_->start()) fail(std::string("cannot start the bulk-IN transfers: ") + usb::to_string(in_pipe_->state()));
  }
  ~Plane() override {
    for (auto& w : workers_) w->stop();
    for (auto& t : threads_) t.join();
    stop_events_ = true;
    events_.join();
    in_pipe_->stop();
    in_pipe_->drain(1000);
    out_pipe_->stop();
    out_pipe_->drain(1000);
  }

  CountingPacketIo& rx_io() { return rx_io_; }
  CountingPacketIo& tx_io() { return tx_io_; }

  void release(unsigned slot) override { in_pipe_->release(slot); }
  std::optional<unsigned> acquire() override { return out_pipe_->acquire(); }
  bool has_free_buffer() const override { return out_pipe_->has_free(); }
  std::span<std::uint8_t> buffer(unsigned slot) override { return out_pipe_->buffer(slot); }
  bool submit(unsigned slot, std::size_t length_bytes) override {
    return out_pipe_->submit(slot, length_bytes) == usb::TransferStatus::completed;
  }
  void give_back(unsigned slot) override { out_pipe_->give_back(slot); }
  std::size_t max_packet_bytes() const override { return function_.bulk_out.max_packet_size; }

 private:
  static void on_in(void* user, unsigned slot, std::span<const std::uint8_t> data) {
    auto* self = static_cast<Plane*>(user);
    if (!self->rx_->post(dp::RxBuffer{data.data(), static_cast<std::uint32_t>(data.size()), slot})) {
      self->in_pipe_->release(slot);
      return;
    }
    self->workers_[0]->notify();
  }

  usb::Transport& transport_;
  usb::NetworkFunction function_;
  dp::LinkState link_state_;
  CountingPacketIo rx_io_, tx_io_;
  std::unique_ptr<dp::TxStage> tx_;
  std::unique_ptr<dp::RxStage> rx_;
  std::unique_ptr<usb::OutPipe> out_pipe_;
  std::unique_ptr<usb::InPipe> in_pipe_;
  std::vector<std::unique_ptr<dp::Worker>> workers_;
  std::vector<std::thread> threads_;
  std::thread events_;
  std::atomic<bool> stop_events_{false};
};

struct Result {
  std::string direction;
  std::optional<std::size_t> size;
  double pps = 0, gbps = 0, cpu_ns_per_packet = 0;
  std::map<std::string, double> by_thread;
};

void sleep_for(double seconds) { ::usleep(static_cast<useconds_t>(seconds * 1e6)); }

// Every thread of this process that is not a plane thread is the emulation (umockdev's handler
// threads and their helpers) or this program's main thread, which only sleeps.
void cpu_per_packet(Result& r, const std::map<std::string, std::uint64_t>& c0,
                    const std::map<std::string, std::uint64_t>& c1, std::uint64_t packets) {
  std::uint64_t total = 0;
  for (const auto& [name, ns] : c1) {
    const auto before = c0.find(name);
    const std::uint64_t d = ns - (before == c0.end() ? 0 : std::min(ns, before->second));
    total += d;
    if (packets > 0) r.by_thread[name] += static_cast<double>(d) / static_cast<double>(packets);
  }
  r.cpu_ns_per_packet = packets > 0 ? static_cast<double>(total) / static_cast<double>(packets) : 0;
}

// One emulated modem at `port`, opened through libusb, negotiated and with its data plane up;
// runs `sizes` in the directions asked.
void run_device(usbfs_test::UsbTestbed& bed, const std::string& profile, const std::string& port,
                std::uint8_t devnum, const std::vector<std::optional<std::size_t>>& rx_sizes,
                const std::vector<std::optional<std::size_t>>& tx_sizes, double seconds, std::vector<Result>& out) {
  std::shared_ptr<sim::Modem> modem = sim::make_modem(profile);
  if (!modem) fail("no emulated modem " + profile);
  bed.add(usbfs_test::from_model(port, devnum, modem));
  std::string error;
  std::optional<usb::Context> ctx = usb::Context::open(error);
  if (!ctx) fail(error);
  auto opened = cli::open_modem(*ctx, {.id = {0x0525, 0xa4a1}, .port_path = port, .serial = std::nullopt}, error);
  if (!opened) fail("opening " + profile + " at " + port + " through libusb: " + error);
  control::Quirks q = control::find_quirks(0x0525, 0xa4a1, opened->function).quirks;
  q.settle_before_data_alt = 0ms;
  const control::NegotiationResult n = control::negotiate(*opened->transport, opened->function, q);
  if (!n.ok) fail("NTB negotiation: " + n.error);
  const auto sink = [&] {
    std::uint64_t v = 0;
    bed.with_model(port, [&](sim::DeviceModel& m) { v = static_cast<sim::Modem&>(m).network().counters().sink_packets; });
    return v;
  };
  {
    Plane plane(*opened->transport, opened->function, n.plan, q);
    const pid_t self = ::getpid();
    for (const auto& size : rx_sizes) {
      Result r;
      r.direction = "rx";
      r.size = size;
      sim::SourceConfig src;
      src.payload_bytes = (size ? *size : 1500) - 28;
      src.destination_port = 5201;
      bed.with_model(port, [&](sim::DeviceModel& m) {
        static_cast<sim::Modem&>(m).network().start_source(src, sim::Clock::now());
      });
      sleep_for(0.2);
      const auto c0 = thread_cpu_ns(self);
      const std::uint64_t p0 = plane.rx_io().written(), b0 = plane.rx_io().written_bytes();
      const Clock::time_point t0 = Clock::now();
      sleep_for(seconds);
      const auto c1 = thread_cpu_ns(self);
      const std::uint64_t p1 = plane.rx_io().written(), b1 = plane.rx_io().written_bytes();
      const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
      bed.with_model(port, [](sim::DeviceModel& m) { static_cast<sim::Modem&>(m).network().stop_source(); });
      r.pps = static_cast<double>(p1 - p0) / dt;
      r.gbps = static_cast<double>(b1 - b0) * 8 / dt / 1e9;
      cpu_per_packet(r, c0, c1, p1 - p0);
      out.push_back(r);
      sleep_for(0.2);
    }
    for (const auto& size : tx_sizes) {
      Result r;
      r.direction = "tx";
      r.size = size;
      const std::vector<std::size_t> pattern = size_pattern(size);
      plane.tx_io().set_reading(pattern);
      sleep_for(0.2);
      const auto c0 = thread_cpu_ns(self);
      const std::uint64_t s0 = sink();
      const Clock::time_point t0 = Clock::now();
      sleep_for(seconds);
      const auto c1 = thread_cpu_ns(self);
      const std::uint64_t s1 = sink();
      const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
      plane.tx_io().set_reading({});
      double mean = 0;
      for (std::size_t s : pattern) mean += static_cast<double>(s);
      mean /= static_cast<double>(pattern.size());
      r.pps = static_cast<double>(s1 - s0) / dt;
      r.gbps = r.pps * mean * 8 / 1e9;
      cpu_per_packet(r, c0, c1, s1 - s0);
      out.push_back(r);
      sleep_for(0.2);
    }
  }
  opened.reset();
}

}  // namespace
}  // namespace wwan::bench

int main(int argc, char** argv) {
  using namespace wwan::bench;
  using wwan::usbfs_test::UsbTestbed;
  bool json_out = false, quick = false;
  double seconds = 2;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--json") {
      json_out = true;
    } else if (a == "--quick") {
      quick = true;
      seconds = 0.5;
    } else if (a == "--seconds" && i + 1 < argc) {
      seconds = std::strtod(argv[++i], nullptr);
      if (!(seconds > 0 && seconds <= 3600)) fail("--seconds: a number of seconds in (0, 3600]");
    } else {
      fail("usage: umockdev-wrapper usbfs_bench [--quick] [--seconds S] [--json]");
    }
  }
  if (!UsbTestbed::preloaded()) fail("run me under umockdev-wrapper (umockdev-wrapper " + std::string(argv[0]) + ")");
  UsbTestbed bed;
  bed.add(wwan::usbfs_test::root_hub(1, 480));
  std::vector<Result> results;
  const std::vector<std::optional<std::size_t>> sizes =
      quick ? std::vector<std::optional<std::size_t>>{64, 1500}
            : std::vector<std::optional<std::size_t>>{64, 576, 1500};
  std::vector<std::optional<std::size_t>> tx_sizes = sizes;
  tx_sizes.push_back(std::nullopt);
  run_device(bed, "generic-ncm+ntb16", "1-1", 2, sizes, tx_sizes, seconds, results);
  // RX IMIX: a second modem whose stream is cut to the mix (sim/modem.hpp "+imix").
  run_device(bed, "generic-ncm+ntb16+imix", "1-2", 3, {std::nullopt}, {}, seconds, results);

  nlohmann::json a = nlohmann::json::array();
  for (const Result& r : results) {
    nlohmann::json o;
    o["direction"] = r.direction;
    if (r.size)
      o["size"] = *r.size;
    else
      o["size"] = "imix";
    o["pps"] = std::llround(r.pps);
    o["gbps"] = std::round(r.gbps * 1e4) / 1e4;
    o["cpu_ns_per_packet"] = std::round(r.cpu_ns_per_packet * 10) / 10;
    o["path"] = "usbfs";
    o["profile"] = r.direction == "rx" && !r.size ? "generic-ncm+ntb16+imix" : "generic-ncm+ntb16";
    o["ntb"] = "ntb16";
    o["ndp"] = "front";
    o["seconds"] = seconds;
    nlohmann::json t = nlohmann::json::object();
    for (const auto& [name, ns] : r.by_thread) t[name] = std::round(ns * 10) / 10;
    o["cpu_ns_per_packet_by_thread"] = t;
    a.push_back(o);
  }
  if (json_out) {
    std::cout << a.dump() << std::endl;
  } else {
    for (const Result& r : results)
      std::cout << std::left << std::setw(4) << r.direction << std::setw(6) << (r.size ? std::to_string(*r.size) : "imix")
                << std::right << std::setw(10) << std::fixed << std::setprecision(3) << r.pps / 1e6 << " Mpps"
                << std::setw(8) << std::setprecision(2) << r.gbps << " Gbit/s" << std::setw(8) << std::setprecision(0)
                << r.cpu_ns_per_packet << " ns/packet (whole process, emulation included)\n";
  }
  return 0;
}
