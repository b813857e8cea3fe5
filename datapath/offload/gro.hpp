// RX coalescing (userspace GRO) for a TUN opened with IFF_VNET_HDR: the IP packets of one NTB in,
// a list of writev-ready items out. Each item is either a plain packet (a zero virtio_net_hdr
// and the packet, as it came) or a super-packet: one virtio_net_hdr (GSO TCPV4/TCPV6/UDP_L4,
// NEEDS_CSUM) plus the first segment's IP and L4 headers rewritten for the whole, both in a small
// scratch area, followed by the payload of every segment, still pointing into the NTB. The
// kernel takes the super-packet as if its own GRO had built it (docs/offload.md).
//
//   GroCoalescer gro(limits);          // all storage sized here, nothing allocated afterwards
//   gro.reset();                       // per NTB
//   for (packet : ntb) gro.add(packet);
//   for (const GroItem& item : gro.finish()) writev(tun_fd, item.iov, item.iov_count);
//   // the NTB buffer must outlive the writes (the iovecs point into it)
//
// The rules a segment must meet to join a super-packet are the kernel's GRO rules (Linux
// net/ipv4/tcp_offload.c tcp_gro_receive, net/ipv4/af_inet.c inet_gro_flush, net/ipv6/
// ip6_offload.c ipv6_gro_receive, net/ipv4/udp_offload.c udp_gro_receive_segment), made stricter
// where being exact is cheap; each is written next to the check in gro.cpp. Because NEEDS_CSUM
// makes the kernel trust the payload, every segment's TCP/UDP checksum (and IPv4 header
// checksum) is verified here first; one that fails goes out plain, for the kernel to drop.
//
// Order: the packets of one flow leave in the order they came (a flow's open super-packet is
// closed by any packet of that flow that does not join it); different flows may be reordered
// relative to each other, as the kernel's GRO does.
#pragma once

#include <sys/uio.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "datapath/offload/ip_packet.hpp"
#include "datapath/offload/virtio_net_hdr.hpp"

namespace wwan::offload {

struct GroLimits {
  std::size_t max_packets = 0;           // per batch (NTB): bounds every table
  std::uint32_t max_ip_bytes = kIpv4MaxTotalLength;  // IP length of a super-packet
  // writev / IORING_OP_WRITEV take at most UIO_MAXIOV (1024) iovecs: one for the headers.
  std::uint32_t max_tcp_segments = 1023;
  // Linux caps a UDP GSO send at UDP_MAX_SEGMENTS (64 in older releases, raised since): keep
  // to the lowest.
  std::uint32_t max_udp_segments = 64;
  // UDP_L4 super-packets. The kernel accepts them from a TUN only since Linux 6.2 (the same
  // release as TUN_F_USO4/6), so turn this on only when TUNSETOFFLOAD granted USO.
  bool udp = false;
};

// Why a packet went out plain (counted per reason; names are the JSON names, see to_string).
enum class GroPlain : std::uint8_t {
  NotL4,          // not IPv4/IPv6 + TCP/UDP as parse_l4 understands it (ICMP, fragments, ...)
  Ipv4Options,    // IHL > 5 (the kernel's GRO takes only 20-byte IPv4 headers)
  TcpControl,     // SYN, FIN, RST, URG or CWR set
  NoPayload,      // a pure ACK or an empty datagram
  UdpOff,         // UDP while GroLimits::udp is false
  UdpNoChecksum,  // UDP checksum 0 (IPv4 "none"; invalid in IPv6): nothing to verify it by
  IpChecksumBad,  // IPv4 header checksum does not verify
  L4ChecksumBad,  // TCP/UDP checksum does not verify: never merged, the kernel drops it
  Single,         // could have been merged, but nothing next to it could join it
};
inline constexpr std::size_t kGroPlainCount = static_cast<std::size_t>(GroPlain::Single) + 1;
const char* to_string(GroPlain reason);

struct GroCounters {
  std::uint64_t packets = 0;        // taken in by add()
  std::uint64_t super_packets = 0;  // built
  std::uint64_t coalesced = 0;      // packets inside those super-packets
  std::uint64_t plain = 0;          // packets written as they came
  std::uint64_t batch_full = 0;     // add() refused: more than max_packets in one batch
  std::array<std::uint64_t, kGroPlainCount> plain_by_reason{};
};

// One write to the TUN. iov[0] is the virtio_net_hdr (plain: a shared zero header; super: the
// scratch header + rewritten IP/L4 headers); the rest point into the packets given to add().
struct GroItem {
  const iovec* iov = nullptr;
  std::uint32_t iov_count = 0;
  std::uint32_t segments = 0;  // 1: a plain packet
  std::uint32_t bytes = 0;     // what writev should return (virtio_net_hdr included)
};

class GroCoalescer {
 public:
  explicit GroCoalescer(const GroLimits& limits);
  GroCoalescer(const GroCoalescer&) = delete;
  GroCoalescer& operator=(const GroCoalescer&) = delete;

  // Starts a batch. Items from the previous finish() become invalid.
  void reset();
  // One IP packet (exactly its IP length). false = the batch already holds max_packets: nothing
  // was recorded (counted in batch_full); the caller writes that packet some other way.
  bool add(Bytes ip_packet);
  // The batch's writes, in order. Valid until the next reset().
  std::span<const GroItem> finish();

  const GroLimits& limits() const { return limits_; }
  // Packets add()ed since reset() (what is left of max_packets for this batch).
  std::size_t batch_packets() const { return batch_packets_; }
  const GroCounters& counters() const { return counters_; }

 private:
  static constexpr std::size_t kMaxOpenFlows = 16;
  static constexpr std::size_t kScratchBytes = 128;  // vnet hdr 10 + IPv6 40 + TCP 60 = 110

  struct Segment {
    const std::uint8_t* payload;
    std::uint32_t length;
    std::int32_t next;  // index into segments_, -1 = last
  };
  struct Item {
    L4Packet first;               // plain: only .packet is meaningful
    std::uint32_t gso_size = 0;   // payload bytes of the first segment
    std::uint32_t segments = 0;
    std::uint32_t payload_bytes = 0;
    std::int32_t head = -1, tail = -1;
    GroPlain plain_reason = GroPlain::Single;  // counted if it leaves plain
    bool candidate = false;       // an L4 packet that could have been merged
    bool psh = false;             // the last segment carried PSH
  };
  struct FlowKey {
    std::uint8_t version, protocol;
    std::array<std::uint8_t, 16> source, destination;
    std::uint32_t ports;
    bool operator==(const FlowKey&) const = default;
  };
  struct OpenFlow {
    FlowKey key;
    std::uint32_t item;
    std::uint32_t next_seq;    // TCP: where the next segment must start
    std::uint16_t first_id;    // IPv4 ID of the first segment
    bool fixed_id;             // IPv4: all segments carry the same ID (DF set)
    bool in_use;
  };

  void add_plain(Bytes packet, GroPlain reason);
  std::uint32_t start_item(const L4Packet& p);
  bool try_merge(OpenFlow& flow, const L4Packet& p);
  void append_segment(Item& item, const L4Packet& p);
  OpenFlow* find_flow(const FlowKey& key);
  void open_flow(const FlowKey& key, const L4Packet& p, std::uint32_t item);
  void close_flow(const FlowKey& key);
  // Writes the virtio_net_hdr and the rewritten headers; returns their bytes.
  std::uint32_t write_super_header(const Item& item, std::uint8_t* scratch) const;

  GroLimits limits_;
  GroCounters counters_;
  std::size_t batch_packets_ = 0;  // add()ed since reset()
  std::vector<Item> items_;
  std::vector<Segment> segments_;
  std::array<OpenFlow, kMaxOpenFlows> flows_{};
  std::vector<iovec> iovs_;
  // One slot per super-packet (each takes at least two packets: max_packets / 2 + 1 slots).
  // Left uninitialised (make_unique_for_overwrite): only the slots a batch writes are ever
  // touched, so resident memory follows the super-packets actually built, not the worst case.
  std::unique_ptr<std::array<std::uint8_t, kScratchBytes>[]> scratch_;
  std::vector<GroItem> out_;
};

}  // namespace wwan::offload
