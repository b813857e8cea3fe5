// Per-core RX and TX stage benchmarks from memory: the real TxStage and RxStage
// (datapath/tx_path.*, rx_path.*) driven exactly the way datapath/worker.cpp drives them (pump,
// submit, reap a batch of 64, hand each completion to its stage), against a PacketIo and USB links
// that complete at once. What is left is the stages' own CPU per packet, which the end-to-end TX
// figure cannot show (it includes the TUN read and the kernel's UDP send path, docs/benchmarks.md).
//
//   BM_TxStage  "TUN reads" that complete at once with ready-made IPv4/UDP packets (written into
//               each read buffer once, before timing: the kernel's copy is not the stage's cost)
//               -> TxStage: IP check, Ethernet header in front, append to the NTB -> an OUT link
//               whose transfers complete at once. Counts packets in submitted NTBs.
//               Issue 6 target: >= 2 M packets/s per core into NTBs at 1500 bytes.
//   BM_RxStage  one ready-made bulk-IN transfer (a full NTB of Ethernet/IPv4/UDP frames) posted
//               per iteration -> RxStage: parse, strip Ethernet, learn the MAC, trim to the IP
//               length, control-plane check -> one TUN write per packet into a PacketIo that
//               discards it and completes at once; the buffer is released after its last write.
//
// Sweep: IP packet size 64 / 576 / 1500 / IMIX (0: 7 x 64, 4 x 576, 1 x 1500 by read buffer),
// NTB16 / NTB32, NDP in front / at the end, 16 / 64 KiB blocks. The configuration is the daemon's
// (tools/daemon.cpp): 64 reads in flight, 8 OUT slots, max_hold 500 us, the default front-NDP
// capacity (64 entries); RX diverts control-plane packets. Before timing, each case is checked
// once: TX: the first NTB must parse back to exactly the packets read, behind Ethernet headers;
// RX: every write must be exactly one source packet, in order. A fast wrong answer fails it.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "bench/instant_out.hpp"
#include "datapath/ethernet.hpp"
#include "datapath/link_state.hpp"
#include "datapath/links.hpp"
#include "datapath/ntb_build.hpp"
#include "datapath/ntb_parse.hpp"
#include "datapath/packet_io.hpp"
#include "datapath/rx_path.hpp"
#include "datapath/tx_path.hpp"

namespace {

using namespace wwan;
using Packet = std::vector<std::uint8_t>;

constexpr eth::MacAddress kModemMac{{0x00, 0x1e, 0x10, 0x1f, 0x00, 0x00}};
constexpr eth::MacAddress kHostMac{{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}};
constexpr std::size_t kBatch = 64;  // datapath/worker.cpp: completions reaped per call

// ---- cases -------------------------------------------------------------------------------------

struct Case {
  std::size_t ip_bytes;  // 0 = IMIX
  ntb::NtbFormat format;
  bool ndp_at_end;
  std::size_t block_bytes;
};

Case case_of(const benchmark::State& s) {
  return {static_cast<std::size_t>(s.range(0)), s.range(1) == 32 ? ntb::NtbFormat::Ntb32 : ntb::NtbFormat::Ntb16,
          s.range(2) != 0, static_cast<std::size_t>(s.range(3))};
}

ntb::NtbOutParams out_params(const Case& c) {
  ntb::NtbOutParams p;
  p.format = c.format;
  p.ntb_out_max_size = static_cast<std::uint32_t>(c.block_bytes);
  p.ndp_at_end = c.ndp_at_end;
  return ntb::sanitize_out_params(p).params;
}

// An IPv4/UDP packet of `ip_bytes` from the network (198.51.100.7:5001) to the host
// (10.64.64.2:5201): header checksum right, UDP checksum 0 (none, RFC 768).
Packet ipv4_udp(std::size_t ip_bytes, std::uint8_t seed) {
  Packet p(ip_bytes, 0);
  const eth::MutableBytes b(p);
  p[0] = 0x45;
  eth::store_be16(b, 2, static_cast<std::uint16_t>(ip_bytes));
  p[8] = 64;
  p[9] = 17;
  const std::array<std::uint8_t, 8> addresses = {198, 51, 100, 7, 10, 64, 64, 2};
  std::copy(addresses.begin(), addresses.end(), p.begin() + 12);
  eth::store_be16(b, 10, eth::ipv4_header_checksum(b.first(20)));
  eth::store_be16(b, 20, 5001);
  eth::store_be16(b, 22, 5201);
  eth::store_be16(b, 24, static_cast<std::uint16_t>(ip_bytes - 20));
  for (std::size_t i = 28; i < ip_bytes; ++i) p[i] = static_cast<std::uint8_t>(i * 7 + seed);
  return p;
}

// The packets of a case, one per "source": a single size, or the simple IMIX in its order.
std::vector<Packet> packets_of(const Case& c) {
  std::vector<std::size_t> sizes;
  if (c.ip_bytes != 0) {
    sizes = {c.ip_bytes};
  } else {
    sizes.assign(7, 64);
    sizes.insert(sizes.end(), 4, 576);
    sizes.push_back(1500);
  }
  std::vector<Packet> out;
  for (std::size_t i = 0; i < sizes.size(); ++i) out.push_back(ipv4_udp(sizes[i], static_cast<std::uint8_t>(i)));
  return out;
}

std::vector<std::uint8_t> ethernet_frame(const eth::MacAddress& to, const eth::MacAddress& from, const Packet& ip) {
  std::vector<std::uint8_t> f(eth::kEthernetHeaderSize + ip.size());
  (void)eth::write_ethernet_header(std::span(f.data(), eth::kEthernetHeaderSize), to, from, eth::kEtherTypeIpv4);
  std::copy(ip.begin(), ip.end(), f.begin() + eth::kEthernetHeaderSize);
  return f;
}

// ---- TX fakes ----------------------------------------------------------------------------------

// A TUN whose reads complete at the next reap, each with the packet that belongs to its read
// buffer (packets[index % n], written into the buffer the first time it is posted; TxStage never
// touches the IP bytes of a read buffer, only the 14 bytes in front of them).
class ReadyReads final : public dp::PacketIo {
 public:
  ReadyReads(std::vector<Packet> packets, std::size_t capacity)
      : packets_(std::move(packets)), posted_(capacity), filled_(capacity, nullptr) {}

  std::size_t free_slots() const override { return posted_.size() - count_; }
  bool prepare_read(std::span<std::uint8_t> buffer, std::uint64_t tag) override {
    if (count_ == posted_.size()) return false;
    const auto index = static_cast<std::size_t>(tag & 0xFFFFFFFFu);
    const Packet& p = packets_[index % packets_.size()];
    if (index >= filled_.size() || buffer.size() < p.size()) return false;
    if (filled_[index] != buffer.data()) {
      std::copy(p.begin(), p.end(), buffer.begin());
      filled_[index] = buffer.data();
    }
    posted_[(head_ + count_) % posted_.size()] = dp::IoCompletion{tag, static_cast<std::int32_t>(p.size())};
    ++count_;
    return true;
  }
  bool prepare_write(std::span<const std::uint8_t>, std::uint64_t) override { return false; }
  bool prepare_writev(const iovec*, unsigned, std::uint64_t) override { return false; }
  void submit() override {}
  std::size_t reap(std::span<dp::IoCompletion> out, int) override {
    const std::size_t n = std::min(out.size(), count_);
    for (std::size_t i = 0; i < n; ++i) {
      out[i] = posted_[head_];
      head_ = (head_ + 1) % posted_.size();
    }
    count_ -= n;
    return n;
  }
  void cancel_all() override {}
  void wake() override {}

 private:
  std::vector<Packet> packets_;
  std::vector<dp::IoCompletion> posted_;  // FIFO of reads in flight (fixed capacity)
  std::size_t head_ = 0, count_ = 0;
  std::vector<const std::uint8_t*> filled_;  // per read buffer: where its packet was written
};

struct Collect {
  std::vector<ntb::DatagramView> views;
  unsigned errors = 0;
  void datagram(const ntb::DatagramView& d) { views.push_back(d); }
  void error(std::uint32_t, ntb::NtbError) { ++errors; }
};

// "" if `ntb_bytes` parses back to Ethernet frames (modem <- host, IPv4) carrying the case's
// packets in the order the read buffers complete (buffer i holds packets[i % n]).
std::string check_ntb(const std::vector<std::uint8_t>& ntb_bytes, const std::vector<Packet>& packets, std::size_t reads) {
  Collect sink;
  const ntb::TransferSummary s = ntb::parse_transfer(ntb::Bytes(ntb_bytes), {}, sink);
  if (sink.errors != 0 || s.datagrams == 0 || sink.views.empty()) return "the first NTB does not parse";
  for (std::size_t i = 0; i < sink.views.size(); ++i) {
    const Packet& want = packets[(i % reads) % packets.size()];
    const std::vector<std::uint8_t> frame = ethernet_frame(kModemMac, kHostMac, want);
    const ntb::DatagramView& v = sink.views[i];
    if (v.length != frame.size() ||
        !std::equal(frame.begin(), frame.end(), ntb_bytes.begin() + static_cast<std::ptrdiff_t>(v.offset)))
      return "datagram " + std::to_string(i) + " of the first NTB is not the packet read";
  }
  return "";
}

void BM_TxStage(benchmark::State& state) {
  const Case c = case_of(state);
  const std::vector<Packet> packets = packets_of(c);
  dp::TxConfig config;
  config.out = out_params(c);
  config.signature = {c.format, ntb::DatagramKind::Ncm, 0};
  config.our_mac = kHostMac;
  ReadyReads io(packets, config.reads_in_flight);
  bench::InstantOut out(config.out_slots, config.out.ntb_out_max_size);
  dp::LinkState link_state;
  link_state.set_modem_mac(kModemMac);
  dp::TxStage tx(config, io, out, link_state);

  std::array<dp::IoCompletion, kBatch> completions{};
  bool more_pending = false;
  const auto step = [&] {  // one turn of Worker::run
    tx.pump(more_pending);
    io.submit();
    const std::size_t n = io.reap(completions, 0);
    more_pending = n == completions.size();
    for (std::size_t i = 0; i < n; ++i) tx.on_completion(completions[i]);
  };
  tx.start();
  // Untimed: fill the first NTBs, check the first one.
  for (int i = 0; i < 64; ++i) step();
  if (const std::string e = check_ntb(out.first_ntb(), packets, config.reads_in_flight); !e.empty()) {
    state.SkipWithError(e.c_str());
    return;
  }
  tx.publish();
  const dp::TxCounters before = tx.counters();
  const std::uint64_t bytes0 = out.bytes();
  for (auto _ : state) step();
  tx.publish();
  const dp::TxCounters after = tx.counters();
  if (after.dropped() != 0 || after.read_errors != 0) {
    state.SkipWithError("TxStage dropped packets");
    return;
  }
  const std::uint64_t sent = after.packets - before.packets;
  const std::uint64_t ntbs = after.ntbs - before.ntbs;
  state.SetItemsProcessed(static_cast<std::int64_t>(sent));
  state.SetBytesProcessed(static_cast<std::int64_t>(after.bytes - before.bytes));
  state.counters["packets_per_ntb"] = ntbs > 0 ? static_cast<double>(sent) / static_cast<double>(ntbs) : 0;
  state.counters["ntb_bytes"] = ntbs > 0 ? static_cast<double>(out.bytes() - bytes0) / static_cast<double>(ntbs) : 0;
  state.counters["time_per_packet"] =
      benchmark::Counter(static_cast<double>(sent), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// ---- RX fakes ----------------------------------------------------------------------------------

// A TUN that takes every write and completes it at the next reap. While `expect` is set, each
// write is compared with the next expected packet (the untimed check).
class DiscardWrites final : public dp::PacketIo {
 public:
  explicit DiscardWrites(std::size_t capacity) : done_(capacity) {}
  const std::vector<Packet>* expect = nullptr;
  std::size_t expected_next = 0;
  bool mismatch = false;

  std::size_t free_slots() const override { return done_.size() - count_; }
  bool prepare_write(std::span<const std::uint8_t> packet, std::uint64_t tag) override {
    if (count_ == done_.size()) return false;
    if (expect != nullptr) {
      const Packet& want = (*expect)[expected_next++ % expect->size()];
      if (!std::equal(packet.begin(), packet.end(), want.begin(), want.end())) mismatch = true;
    }
    done_[count_++] = dp::IoCompletion{tag, static_cast<std::int32_t>(packet.size())};
    return true;
  }
  bool prepare_writev(const iovec*, unsigned, std::uint64_t) override { return false; }
  bool prepare_read(std::span<std::uint8_t>, std::uint64_t) override { return false; }
  void submit() override {}
  std::size_t reap(std::span<dp::IoCompletion> out, int) override {
    const std::size_t n = std::min(out.size(), count_);
    std::copy_n(done_.begin() + static_cast<std::ptrdiff_t>(count_ - n), n, out.begin());
    count_ -= n;
    return n;
  }
  void cancel_all() override {}
  void wake() override {}

 private:
  std::vector<dp::IoCompletion> done_;
  std::size_t count_ = 0;
};

class CountReleases final : public dp::InLink {
 public:
  std::uint64_t released = 0;
  void release(unsigned) override { ++released; }
};

// A full bulk-IN transfer: one NTB of the case's format and block size, Ethernet frames (modem ->
// host) carrying the case's packets in turn, as the emulated modem builds them.
std::vector<std::uint8_t> in_transfer(const Case& c, const std::vector<Packet>& packets, std::vector<Packet>& carried) {
  std::vector<std::uint8_t> buf(c.block_bytes);
  ntb::NtbBuilder b(buf, out_params(c), {c.format, ntb::DatagramKind::Ncm, 0});
  for (std::size_t i = 0;; ++i) {
    const Packet& p = packets[i % packets.size()];
    if (b.append(ethernet_frame(kHostMac, kModemMac, p)) != ntb::AppendResult::Appended) break;
    carried.push_back(p);
  }
  const ntb::Bytes ntb_bytes = b.finish();
  return {ntb_bytes.begin(), ntb_bytes.end()};
}

void BM_RxStage(benchmark::State& state) {
  const Case c = case_of(state);
  std::vector<Packet> carried;
  const std::vector<std::uint8_t> transfer = in_transfer(c, packets_of(c), carried);
  dp::RxConfig config;
  config.transfer_bytes = c.block_bytes;
  config.our_mac = kHostMac;
  config.divert_control = true;  // as the daemon runs it
  DiscardWrites io(256);         // tools/daemon.cpp: kWrites
  CountReleases link;
  dp::LinkState link_state;
  dp::RxStage rx(config, io, link, link_state, nullptr, nullptr);

  std::array<dp::IoCompletion, kBatch> completions{};
  const dp::RxBuffer buffer{transfer.data(), static_cast<std::uint32_t>(transfer.size()), 0};
  const auto one_transfer = [&] {  // post, then turns of Worker::run until the buffer is released
    rx.post(buffer);
    do {
      rx.pump();
      io.submit();
      const std::size_t n = io.reap(completions, 0);
      for (std::size_t i = 0; i < n; ++i) rx.on_completion(completions[i]);
    } while (!rx.idle());
  };
  io.expect = &carried;
  one_transfer();
  io.expect = nullptr;
  rx.publish();
  const dp::RxCounters first = rx.counters();
  if (io.mismatch || io.expected_next != carried.size() || first.packets != carried.size() || link.released != 1) {
    state.SkipWithError("RxStage did not write exactly the packets of the NTB");
    return;
  }
  for (auto _ : state) one_transfer();
  rx.publish();
  const dp::RxCounters after = rx.counters();
  if (after.dropped() != 0 || after.ring_full != 0) {
    state.SkipWithError("RxStage dropped packets");
    return;
  }
  const std::uint64_t written = after.packets - first.packets;
  state.SetItemsProcessed(static_cast<std::int64_t>(written));
  state.SetBytesProcessed(static_cast<std::int64_t>(after.bytes - first.bytes));
  state.counters["packets_per_ntb"] = static_cast<double>(carried.size());
  state.counters["time_per_packet"] =
      benchmark::Counter(static_cast<double>(written), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void Sweep(benchmark::internal::Benchmark* b) {
  b->ArgNames({"ip", "ntb", "ndp_end", "block"});
  b->ArgsProduct({{64, 576, 1500, 0}, {16, 32}, {0, 1}, {16384, 65536}});
}

BENCHMARK(BM_TxStage)->Apply(Sweep);
BENCHMARK(BM_RxStage)->Apply(Sweep);

}  // namespace

BENCHMARK_MAIN();
