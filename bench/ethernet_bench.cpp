// The Ethernet responder on the RX path (datapath/ethernet.hpp): what it costs to answer the
// modem's ARP requests and IPv6 Neighbour Solicitations, and what it costs every other frame to
// be looked at and passed on (the common case: IP, not for the responder).
//
// Frames are built once, untimed, and each is checked once to get the expected answer (or none)
// before it is timed: a fast wrong answer fails the benchmark. items = frames.
// Ceiling: BM_CopyReply copies a reply-sized frame, the least an answer can cost.
#include <benchmark/benchmark.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

#include "datapath/ethernet.hpp"

namespace {

using namespace wwan::eth;

const MacAddress kOurMac{{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}};
const MacAddress kModemMac{{0x00, 0x1e, 0x10, 0x1f, 0x00, 0x00}};
const Ipv4Address kOurIpv4{{10, 64, 64, 2}};
const Ipv4Address kModemIpv4{{10, 64, 64, 1}};
const Ipv6Address kOurIpv6{{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2}};
const Ipv6Address kModemIpv6{{0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x02, 0x1e, 0x10, 0xff, 0xfe, 0x1f, 0, 0}};

// An ARP request (RFC 826) from the modem for `target`, padded to 60 bytes as on the wire.
std::vector<std::uint8_t> arp_request(const Ipv4Address& target) {
  std::vector<std::uint8_t> f(60, 0);
  const MutableBytes b(f);
  (void)write_ethernet_header(b, MacAddress::broadcast(), kModemMac, kEtherTypeArp);
  store_be16(b, 14, 1);       // htype Ethernet
  store_be16(b, 16, kEtherTypeIpv4);
  f[18] = 6;                  // hlen
  f[19] = 4;                  // plen
  store_be16(b, 20, 1);       // request
  std::memcpy(f.data() + 22, kModemMac.bytes.data(), 6);
  std::memcpy(f.data() + 28, kModemIpv4.bytes.data(), 4);
  std::memcpy(f.data() + 38, target.bytes.data(), 4);
  return f;
}

// A Neighbour Solicitation (RFC 4861 §4.3) from the modem's link-local address for kOurIpv6, to its
// solicited-node group, with a Source Link-Layer Address option and a correct checksum.
std::vector<std::uint8_t> neighbour_solicitation() {
  constexpr std::size_t kIcmp = 24 + 8;
  std::vector<std::uint8_t> f(14 + 40 + kIcmp, 0);
  const MutableBytes b(f);
  const Ipv6Address group = solicited_node_multicast(kOurIpv6);
  (void)write_ethernet_header(b, ipv6_multicast_mac(group), kModemMac, kEtherTypeIpv6);
  f[14] = 0x60;
  store_be16(b, 18, kIcmp);  // payload length
  f[20] = 58;                 // ICMPv6
  f[21] = 255;                // hop limit
  std::memcpy(f.data() + 22, kModemIpv6.bytes.data(), 16);
  std::memcpy(f.data() + 38, group.bytes.data(), 16);
  std::uint8_t* icmp = f.data() + 54;
  icmp[0] = 135;  // NS
  std::memcpy(icmp + 8, kOurIpv6.bytes.data(), 16);
  icmp[24] = 1;  // Source Link-Layer Address
  icmp[25] = 1;  // 8 bytes
  std::memcpy(icmp + 26, kModemMac.bytes.data(), 6);
  const std::uint16_t c = ipv6_upper_layer_checksum(kModemIpv6, group, 58, Bytes(icmp, kIcmp));
  store_be16(b, 54 + 2, c);
  return f;
}

// A 1500-byte IPv4 packet in a frame: what almost every frame is.
std::vector<std::uint8_t> ipv4_frame(std::size_t ip_bytes) {
  std::vector<std::uint8_t> f(14 + ip_bytes, 0);
  const MutableBytes b(f);
  (void)write_ethernet_header(b, kOurMac, kModemMac, kEtherTypeIpv4);
  f[14] = 0x45;
  store_be16(b, 16, static_cast<std::uint16_t>(ip_bytes));
  f[22] = 64;
  f[23] = 17;
  return f;
}

void BM_AnswerArp(benchmark::State& state) {
  const auto frame = arp_request(state.range(0) ? kOurIpv4 : kModemIpv4);
  const bool ours = state.range(0) != 0;
  std::array<std::uint8_t, kNeighbourAdvertisementFrameSize> out{};
  if (answer_arp(frame, kOurIpv4, kOurMac, out).has_value() != ours) {
    state.SkipWithError("the prepared ARP request is not answered as expected");
    return;
  }
  for (auto _ : state) {
    auto n = answer_arp(frame, kOurIpv4, kOurMac, out);
    benchmark::DoNotOptimize(n);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.SetLabel(ours ? "for our address: answered" : "for another address: ignored");
}
BENCHMARK(BM_AnswerArp)->Arg(1)->Arg(0);

void BM_AnswerNeighbourSolicitation(benchmark::State& state) {
  const auto frame = neighbour_solicitation();
  const std::array<Ipv6Address, 2> ours = {kOurIpv6, Ipv6Address{{0xfe, 0x80}}};
  std::array<std::uint8_t, kNeighbourAdvertisementFrameSize> out{};
  if (!answer_neighbour_solicitation(frame, ours, kOurMac, true, out)) {
    state.SkipWithError("the prepared NS is not answered");
    return;
  }
  for (auto _ : state) {
    auto n = answer_neighbour_solicitation(frame, ours, kOurMac, true, out);
    benchmark::DoNotOptimize(n);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_AnswerNeighbourSolicitation);

// What the RX path does with every frame before it is an IP packet to write: parse the Ethernet
// header, learn the source MAC, classify and trim the IP packet (rx_path.cpp deliver_ncm).
void BM_PassIpFrame(benchmark::State& state) {
  const auto frame = ipv4_frame(static_cast<std::size_t>(state.range(0)));
  ModemMacLearner learner;
  {
    const auto f = parse_ethernet(frame);
    if (!f || f->ethertype != kEtherTypeIpv4 || !trim_to_ip_length(f->payload)) {
      state.SkipWithError("the prepared IPv4 frame does not parse");
      return;
    }
  }
  for (auto _ : state) {
    const auto f = parse_ethernet(frame);
    learner.observe(f->source);
    auto ip = trim_to_ip_length(f->payload);
    benchmark::DoNotOptimize(ip);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_PassIpFrame)->Arg(64)->Arg(1500);

void BM_CopyReply(benchmark::State& state) {
  const auto frame = neighbour_solicitation();
  std::array<std::uint8_t, kNeighbourAdvertisementFrameSize> out{};
  for (auto _ : state) {
    std::memcpy(out.data(), frame.data(), std::min(out.size(), frame.size()));
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_CopyReply);

}  // namespace

BENCHMARK_MAIN();
