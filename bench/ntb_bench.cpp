// Codec benchmarks: NTB parse and build per core, swept over datagram size (64/576/1500 bytes),
// format (NTB16/NTB32), NDP placement (front/end) and block size (16 KiB / 64 KiB).
//
// Counters: items = datagrams (so items_per_second is datagrams/s), bytes = datagram bytes.
// Inputs are prepared before the timed loop. The parse sink only sums lengths: the parser hands
// out views, and what the RX worker does with them (io_uring writes) is measured elsewhere.
// The build benchmark is paired with BM_MemcpyCeiling over the same bytes in the same run, since
// building an NTB is at heart one copy per datagram.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "datapath/ntb_build.hpp"
#include "datapath/ntb_parse.hpp"

namespace {

using namespace wwan::ntb;

struct Case {
  std::size_t datagram_bytes;
  NtbFormat format;
  bool ndp_at_end;
  std::size_t block_bytes;
};

Case case_of(const benchmark::State& s) {
  return {static_cast<std::size_t>(s.range(0)), s.range(1) == 32 ? NtbFormat::Ntb32 : NtbFormat::Ntb16,
          s.range(2) != 0, static_cast<std::size_t>(s.range(3))};
}

NtbOutParams params_of(const Case& c) {
  NtbOutParams p;
  p.format = c.format;
  p.ntb_out_max_size = static_cast<std::uint32_t>(c.block_bytes);
  p.ndp_out_divisor = 4;
  p.ndp_out_payload_remainder = 2;
  p.ndp_out_alignment = 4;
  p.ndp_at_end = c.ndp_at_end;
  p.front_ndp_capacity = 1024;  // enough entries for 64-byte datagrams in 64 KiB
  return sanitize_out_params(p).params;
}

std::vector<std::uint8_t> datagram(std::size_t n) {
  std::vector<std::uint8_t> d(n);
  for (std::size_t i = 0; i < n; ++i) d[i] = static_cast<std::uint8_t>(i * 7);
  return d;
}

// One full NTB as a device would send it.
std::vector<std::uint8_t> full_ntb(const Case& c, std::size_t& datagrams) {
  std::vector<std::uint8_t> buf(c.block_bytes);
  NtbBuilder b(buf, params_of(c), {c.format, DatagramKind::Ncm, 0});
  const auto d = datagram(c.datagram_bytes);
  while (b.append(d) == AppendResult::Appended) {
  }
  datagrams = b.datagram_count();
  const Bytes ntb = b.finish();
  return {ntb.begin(), ntb.end()};
}

struct SumSink {
  std::uint64_t bytes = 0;
  void datagram(const DatagramView& d) { bytes += d.length; }
  void error(std::uint32_t, NtbError) {}
};

void BM_Parse(benchmark::State& state) {
  const Case c = case_of(state);
  std::size_t per_ntb = 0;
  const auto ntb = full_ntb(c, per_ntb);
  SumSink sink;
  // A fast wrong answer is worthless: check once, untimed, that the parse finds every datagram.
  const TransferSummary check = parse_transfer(Bytes(ntb), {}, sink);
  if (per_ntb == 0 || check.datagrams != per_ntb || check.errors != 0 || sink.bytes != per_ntb * c.datagram_bytes) {
    state.SkipWithError("parse of the prepared NTB does not give back its datagrams");
    return;
  }
  for (auto _ : state) {
    const TransferSummary s = parse_transfer(Bytes(ntb), {}, sink);
    benchmark::DoNotOptimize(s);
    benchmark::DoNotOptimize(sink.bytes);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(static_cast<std::uint64_t>(state.iterations()) * per_ntb));
  state.SetBytesProcessed(static_cast<std::int64_t>(static_cast<std::uint64_t>(state.iterations()) * per_ntb * c.datagram_bytes));
  state.counters["datagrams_per_ntb"] = static_cast<double>(per_ntb);
}

void BM_Build(benchmark::State& state) {
  const Case c = case_of(state);
  std::vector<std::uint8_t> buf(c.block_bytes);
  NtbBuilder b(buf, params_of(c), {c.format, DatagramKind::Ncm, 0});
  const auto d = datagram(c.datagram_bytes);
  std::uint64_t datagrams = 0;
  std::uint16_t seq = 0;
  for (auto _ : state) {
    b.reset(seq++);
    while (b.append(d) == AppendResult::Appended) {
    }
    datagrams += b.datagram_count();
    benchmark::DoNotOptimize(b.finish().data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(datagrams));
  state.SetBytesProcessed(static_cast<std::int64_t>(datagrams * c.datagram_bytes));
}

// The ceiling for BM_Build: the same datagrams copied into the same buffer back to back.
void BM_MemcpyCeiling(benchmark::State& state) {
  const Case c = case_of(state);
  std::vector<std::uint8_t> buf(c.block_bytes);
  const auto d = datagram(c.datagram_bytes);
  const std::size_t per_block = (c.block_bytes - 64) / (c.datagram_bytes + 8);
  for (auto _ : state) {
    std::uint8_t* p = buf.data();
    for (std::size_t i = 0; i < per_block; ++i, p += c.datagram_bytes) std::memcpy(p, d.data(), d.size());
    benchmark::DoNotOptimize(buf.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(static_cast<std::uint64_t>(state.iterations()) * per_block));
  state.SetBytesProcessed(static_cast<std::int64_t>(static_cast<std::uint64_t>(state.iterations()) * per_block * c.datagram_bytes));
}

void Sweep(benchmark::internal::Benchmark* b) {
  b->ArgNames({"dgram", "ntb", "ndp_end", "block"});
  b->ArgsProduct({{64, 576, 1500}, {16, 32}, {0, 1}, {16384, 65536}});
}

BENCHMARK(BM_Parse)->Apply(Sweep);
BENCHMARK(BM_Build)->Apply(Sweep);
BENCHMARK(BM_MemcpyCeiling)->ArgNames({"dgram", "ntb", "ndp_end", "block"})->ArgsProduct({{64, 576, 1500}, {32}, {1}, {16384, 65536}});

}  // namespace

BENCHMARK_MAIN();
