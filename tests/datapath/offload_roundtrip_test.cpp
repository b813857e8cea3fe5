// The property that ties RX and TX together: coalescing a batch of packets (GroCoalescer) and
// segmenting every super-packet again (GsoSegmenter) gives back exactly the original packets,
// byte for byte, each flow in its original order; and no packet whose checksum was corrupted is
// ever inside a super-packet. Random flows (IPv4/IPv6, TCP/UDP, timestamps or not), sizes
// (1..1460), interleavings, gaps, retransmissions, PSH, pure ACKs, short UDP datagrams and a
// few corrupted checksums; every seed is printed on failure.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "datapath/offload/gro.hpp"
#include "datapath/offload/gso.hpp"
#include "offload_packets.hpp"

namespace wwan::offload {
namespace {

using namespace testing;

struct GenFlow {
  Flow flow;
  bool tcp;
  std::uint32_t seq;
  std::uint16_t id;
  std::uint32_t mss;
  bool df;
  std::vector<std::uint8_t> options;
};

struct Generated {
  std::vector<Packet> packets;
  std::vector<int> flow_of;
  std::vector<bool> corrupted;
};

Generated generate(std::mt19937& engine) {
  const auto rng = [&] { return static_cast<std::uint32_t>(engine()); };
  const auto chance = [&](int percent) { return static_cast<int>(rng() % 100) < percent; };
  std::vector<GenFlow> flows(1 + rng() % 5);
  for (std::size_t i = 0; i < flows.size(); ++i) {
    GenFlow& f = flows[i];
    const auto port = static_cast<std::uint16_t>(1000 + i);
    f.flow = chance(50) ? flow_v4({10, 0, 0, 2}, {10, 0, 0, 1}, port, 443) : flow_v6(2, 1, port, 443);
    f.tcp = chance(60);
    f.seq = static_cast<std::uint32_t>(rng());
    f.id = static_cast<std::uint16_t>(rng());
    f.mss = chance(70) ? 1 + rng() % 1460 : 1 + rng() % 40;
    f.df = chance(70);
    if (f.tcp && chance(50)) f.options = {1, 1, 8, 10, 0, 0, 0, static_cast<std::uint8_t>(i), 0, 0, 0, 9};
  }
  Generated g;
  static std::uint32_t unique = 0;
  const std::size_t n = 1 + rng() % 150;
  for (std::size_t k = 0; k < n; ++k) {
    const int which = static_cast<int>(rng() % flows.size());
    GenFlow& f = flows[static_cast<std::size_t>(which)];
    const IpFields ip{.id = f.id++, .df = f.df};
    std::uint32_t size = f.mss;
    if (chance(8)) size = 1 + rng() % f.mss;  // a short one
    Packet p;
    if (f.tcp) {
      TcpFields t{.seq = f.seq, .options = f.options};
      if (chance(5)) t.flags |= kTcpPsh;
      if (chance(5)) size = 0;                     // a pure ACK
      if (chance(3)) t.seq -= f.mss;               // a retransmission
      if (chance(3)) f.seq += 1 + rng() % 5000;    // a gap
      if (chance(2)) t.window = 7;
      p = tcp_packet(f.flow, ip, t, pattern(size, unique));
      f.seq = t.seq + size;
    } else {
      if (chance(3)) size = 1 + rng() % 1460;      // another size
      p = udp_packet(f.flow, ip, pattern(size, unique));
    }
    unique += 7919;
    bool bad = chance(4) && size > 0;
    if (bad) p[p.size() - 1 - rng() % size] ^= static_cast<std::uint8_t>(1 + rng() % 255);
    bad = bad && !naive_l4_ok(p);  // (a flip cannot be undone by itself, but be exact)
    g.packets.push_back(std::move(p));
    g.flow_of.push_back(which);
    g.corrupted.push_back(bad);
  }
  return g;
}

Packet flatten(const GroItem& item) {
  Packet out;
  for (std::uint32_t i = 0; i < item.iov_count; ++i) {
    const auto* b = static_cast<const std::uint8_t*>(item.iov[i].iov_base);
    out.insert(out.end(), b, b + item.iov[i].iov_len);
  }
  return out;
}

TEST(OffloadRoundTrip, CoalesceThenSegmentGivesBackTheOriginalPackets) {
  GroCoalescer gro({.max_packets = 150, .udp = true});
  std::uint64_t merged = 0;
  for (std::uint32_t seed = 1; seed <= 400; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937 rng(seed);
    const Generated g = generate(rng);
    std::multimap<Packet, std::size_t> where;
    for (std::size_t i = 0; i < g.packets.size(); ++i) where.emplace(g.packets[i], i);

    gro.reset();
    for (const Packet& p : g.packets) ASSERT_TRUE(gro.add(p));
    std::vector<std::size_t> order;  // input index of every output packet, in output order
    const auto take = [&](const Packet& p, bool in_super) {
      const auto it = where.find(p);
      if (it == where.end()) {
        ADD_FAILURE() << "an output packet of " << p.size() << " bytes is not one of the inputs"
                      << (in_super ? " (from a super-packet)" : "");
        return;
      }
      if (in_super) {
        EXPECT_FALSE(g.corrupted[it->second]) << "packet " << it->second << " has a bad checksum";
      }
      order.push_back(it->second);
      where.erase(it);
    };
    for (const GroItem& item : gro.finish()) {
      const Packet bytes = flatten(item);
      ASSERT_EQ(bytes.size(), item.bytes);
      if (item.segments == 1) {
        ASSERT_TRUE(std::all_of(bytes.begin(), bytes.begin() + kVirtioNetHdrSize, [](auto b) { return b == 0; }));
        take(Packet(bytes.begin() + kVirtioNetHdrSize, bytes.end()), false);
        continue;
      }
      merged += item.segments;
      GsoSegmenter gso;
      ASSERT_EQ(gso.start(bytes), GsoError::None);
      ASSERT_EQ(gso.segments(), item.segments);
      while (!gso.done()) {
        Packet seg(gso.next_length());
        gso.write_next(seg);
        take(seg, true);
      }
    }
    EXPECT_TRUE(where.empty()) << where.size() << " input packets did not come out";
    // Per flow, the original order.
    std::map<int, std::size_t> last;
    for (const std::size_t i : order) {
      const auto it = last.find(g.flow_of[i]);
      if (it != last.end()) {
        EXPECT_LT(it->second, i) << "flow " << g.flow_of[i] << " reordered";
      }
      last[g.flow_of[i]] = i;
    }
    if (HasFailure()) return;
  }
  EXPECT_GT(merged, 10000u) << "the generator should give the coalescer plenty to merge";
}

}  // namespace
}  // namespace wwan::offload
