#include "datapath/offload/gro.hpp"

#include <algorithm>
#include <cstring>

namespace wwan::offload {
namespace {

// IPv4 flags/fragment-offset field: DF (RFC 791 §3.1).
constexpr std::uint16_t kIpv4Df = 0x4000;

// iovec has no const variant; writev only reads through iov_base.
iovec iov_of(const std::uint8_t* data, std::size_t length) {
  return iovec{const_cast<std::uint8_t*>(data), length};
}

}  // namespace

const char* to_string(GroPlain reason) {
  switch (reason) {
    case GroPlain::NotL4: return "not_l4";
    case GroPlain::Ipv4Options: return "ipv4_options";
    case GroPlain::TcpControl: return "tcp_control";
    case GroPlain::NoPayload: return "no_payload";
    case GroPlain::UdpOff: return "udp_off";
    case GroPlain::UdpNoChecksum: return "udp_no_checksum";
    case GroPlain::IpChecksumBad: return "ip_checksum_bad";
    case GroPlain::L4ChecksumBad: return "l4_checksum_bad";
    case GroPlain::Single: return "single";
  }
  return "?";
}

GroCoalescer::GroCoalescer(const GroLimits& limits) : limits_(limits) {
  items_.reserve(limits_.max_packets);
  segments_.reserve(limits_.max_packets);
  iovs_.reserve(2 * limits_.max_packets);  // plain: 2 per packet; super: 1 + 1 per packet
  scratch_ = std::make_unique_for_overwrite<std::array<std::uint8_t, kScratchBytes>[]>(limits_.max_packets / 2 + 1);
  out_.reserve(limits_.max_packets);
}

void GroCoalescer::reset() {
  batch_packets_ = 0;
  items_.clear();
  segments_.clear();
  for (OpenFlow& f : flows_) f.in_use = false;
}

bool GroCoalescer::add(Bytes ip_packet) {
  if (batch_packets_ >= limits_.max_packets) {
    ++counters_.batch_full;
    return false;
  }
  ++batch_packets_;
  ++counters_.packets;
  L4Packet p;
  if (parse_l4(ip_packet, p) != L4Parse::Ok) {
    add_plain(ip_packet, GroPlain::NotL4);
    return true;
  }
  FlowKey key{};
  key.version = p.version;
  key.protocol = p.protocol;
  std::memcpy(key.source.data(), p.source().data(), p.source().size());
  std::memcpy(key.destination.data(), p.destination().data(), p.destination().size());
  std::memcpy(&key.ports, p.l4(), 4);

  // Can this packet be part of a super-packet at all? The cheap header checks first, the
  // checksums (a pass over the payload) last.
  std::optional<GroPlain> plain;
  const bool tcp = p.tcp();
  const std::uint8_t tcp_flags = tcp ? p.l4()[13] : 0;
  if (p.version == 4 && p.ip_header_length != kIpv4MinHeaderSize) {
    plain = GroPlain::Ipv4Options;  // inet_gro_receive: *(u8 *)iph != 0x45 -> no GRO
  } else if (tcp && (tcp_flags & (kTcpSyn | kTcpFin | kTcpRst | kTcpUrg | kTcpCwr)) != 0) {
    plain = GroPlain::TcpControl;  // tcp_gro_receive flushes on these; CWR would need GSO_ECN
  } else if (!tcp && !limits_.udp) {
    plain = GroPlain::UdpOff;
  } else if (p.payload_length == 0) {
    plain = GroPlain::NoPayload;
  } else if (!tcp && load_be16(p.l4() + 6) == 0) {
    plain = GroPlain::UdpNoChecksum;
  } else if (!ip_checksum_ok(p)) {
    plain = GroPlain::IpChecksumBad;
  } else if (!l4_checksum_ok(p)) {
    plain = GroPlain::L4ChecksumBad;
  }
  if (plain) {
    close_flow(key);  // it leaves now, so nothing of its flow that came before may leave after it
    add_plain(ip_packet, *plain);
    return true;
  }
  if (OpenFlow* flow = find_flow(key)) {
    if (try_merge(*flow, p)) return true;
    flow->in_use = false;  // the open super-packet ends here; this packet starts the next one
  }
  const std::uint32_t item = start_item(p);
  // A segment with PSH ends a super-packet; as the first one it is a super-packet of one.
  if (!(tcp && (tcp_flags & kTcpPsh) != 0)) open_flow(key, p, item);
  return true;
}

void GroCoalescer::add_plain(Bytes packet, GroPlain reason) {
  Item item;
  item.first.packet = packet;
  item.segments = 1;
  item.plain_reason = reason;
  items_.push_back(item);
}

std::uint32_t GroCoalescer::start_item(const L4Packet& p) {
  Item item;
  item.first = p;
  item.gso_size = p.payload_length;
  item.candidate = true;
  item.plain_reason = GroPlain::Single;
  items_.push_back(item);
  append_segment(items_.back(), p);
  return static_cast<std::uint32_t>(items_.size() - 1);
}

void GroCoalescer::append_segment(Item& item, const L4Packet& p) {
  const auto index = static_cast<std::int32_t>(segments_.size());
  segments_.push_back(Segment{p.packet.data() + p.headers_length(), p.payload_length, -1});
  if (item.tail >= 0) segments_[static_cast<std::size_t>(item.tail)].next = index;
  else item.head = index;
  item.tail = index;
  ++item.segments;
  item.payload_bytes += p.payload_length;
}

bool GroCoalescer::try_merge(OpenFlow& flow, const L4Packet& p) {
  Item& item = items_[flow.item];
  const L4Packet& a = item.first;
  const bool tcp = a.tcp();
  const std::uint32_t max_segments = tcp ? limits_.max_tcp_segments : limits_.max_udp_segments;
  if (item.segments >= max_segments) return false;
  if (std::uint64_t{a.headers_length()} + item.payload_bytes + p.payload_length > limits_.max_ip_bytes)
    return false;
  // Every segment carries gso_size bytes but the last, which may be shorter (tcp_gro_receive:
  // a longer one flushes; udp_gro_receive_segment: the same, and a shorter one ends the train).
  if (p.payload_length > item.gso_size) return false;

  const std::uint8_t* x = a.ip();
  const std::uint8_t* y = p.ip();
  if (a.version == 4) {
    // inet_gro_flush: TTL, TOS and DF must match; the ID either counts up by one per segment
    // or, with DF set, stays fixed, as decided by the second segment. The whole flags/offset
    // field is compared (neither packet is a fragment, so that is DF and the reserved bit).
    if (x[1] != y[1] || x[8] != y[8] || load_be16(x + 6) != load_be16(y + 6)) return false;
    const std::uint16_t id = load_be16(y + 4);
    if (item.segments == 1) {
      if (id == static_cast<std::uint16_t>(flow.first_id + 1)) flow.fixed_id = false;
      else if (id == flow.first_id && (load_be16(y + 6) & kIpv4Df) != 0) flow.fixed_id = true;
      else return false;
    } else {
      const auto expected =
          flow.fixed_id ? flow.first_id : static_cast<std::uint16_t>(flow.first_id + item.segments);
      if (id != expected) return false;
    }
  } else {
    // ipv6_gro_receive: version, traffic class and flow label (the first word) and the hop
    // limit must match.
    if (std::memcmp(x, y, 4) != 0 || x[7] != y[7]) return false;
  }

  bool last = p.payload_length < item.gso_size;
  if (tcp) {
    const std::uint8_t* th = a.l4();
    const std::uint8_t* tp = p.l4();
    if (load_be32(tp + 4) != flow.next_seq) return false;  // in order, no gap, no overlap
    // tcp_gro_receive: the same ACK number, data offset, flags (but PSH), window, and options
    // byte for byte (so timestamps must be identical). The urgent pointer too, so that
    // segmenting gives the original bytes back (URG itself never gets here).
    if (p.l4_header_length != a.l4_header_length) return false;
    if (std::memcmp(th + 8, tp + 8, 5) != 0) return false;            // ACK number, data offset
    if (((th[13] ^ tp[13]) & ~kTcpPsh) != 0) return false;            // flags but PSH
    if (std::memcmp(th + 14, tp + 14, 2) != 0) return false;          // window
    if (std::memcmp(th + 18, tp + 18, a.l4_header_length - 18) != 0) return false;  // urgent pointer, options
    if ((tp[13] & kTcpPsh) != 0) {
      item.psh = true;
      last = true;
    }
    flow.next_seq += p.payload_length;
  }
  append_segment(item, p);
  if (last) flow.in_use = false;
  return true;
}

GroCoalescer::OpenFlow* GroCoalescer::find_flow(const FlowKey& key) {
  for (OpenFlow& f : flows_)
    if (f.in_use && f.key == key) return &f;
  return nullptr;
}

void GroCoalescer::open_flow(const FlowKey& key, const L4Packet& p, std::uint32_t item) {
  // A free slot, else the oldest super-packet is closed (it keeps what it has).
  OpenFlow* slot = nullptr;
  for (OpenFlow& f : flows_) {
    if (!f.in_use) { slot = &f; break; }
    if (slot == nullptr || f.item < slot->item) slot = &f;
  }
  slot->key = key;
  slot->item = item;
  slot->next_seq = p.tcp() ? load_be32(p.l4() + 4) + p.payload_length : 0;
  slot->first_id = p.version == 4 ? load_be16(p.ip() + 4) : 0;
  slot->fixed_id = false;
  slot->in_use = true;
}

void GroCoalescer::close_flow(const FlowKey& key) {
  if (OpenFlow* f = find_flow(key)) f->in_use = false;
}

std::span<const GroItem> GroCoalescer::finish() {
  out_.clear();
  iovs_.clear();
  std::size_t scratch_used = 0;
  for (const Item& item : items_) {
    GroItem g;
    g.iov = iovs_.data() + iovs_.size();
    if (item.segments == 1) {
      iovs_.push_back(iov_of(kVirtioNetHdrNone, kVirtioNetHdrSize));
      iovs_.push_back(iov_of(item.first.packet.data(), item.first.packet.size()));
      g.iov_count = 2;
      g.segments = 1;
      g.bytes = static_cast<std::uint32_t>(kVirtioNetHdrSize + item.first.packet.size());
      ++counters_.plain;
      ++counters_.plain_by_reason[static_cast<std::size_t>(item.plain_reason)];
    } else {
      std::uint8_t* scratch = scratch_[scratch_used++].data();
      const std::uint32_t header_bytes = write_super_header(item, scratch);
      iovs_.push_back(iov_of(scratch, header_bytes));
      for (std::int32_t s = item.head; s >= 0; s = segments_[static_cast<std::size_t>(s)].next) {
        const Segment& seg = segments_[static_cast<std::size_t>(s)];
        iovs_.push_back(iov_of(seg.payload, seg.length));
      }
      g.iov_count = 1 + item.segments;
      g.segments = item.segments;
      g.bytes = header_bytes + item.payload_bytes;
      ++counters_.super_packets;
      counters_.coalesced += item.segments;
    }
    out_.push_back(g);
  }
  return out_;
}

std::uint32_t GroCoalescer::write_super_header(const Item& item, std::uint8_t* scratch) const {
  const L4Packet& a = item.first;
  const bool tcp = a.tcp();
  std::uint8_t* ip = scratch + kVirtioNetHdrSize;
  std::memcpy(ip, a.ip(), a.headers_length());
  std::uint8_t* l4 = ip + a.ip_header_length;
  const std::uint32_t l4_length = a.l4_header_length + item.payload_bytes;
  if (a.version == 4) {
    // Total Length changes; the header checksum follows it (RFC 1624; it verified on the way in).
    const std::uint16_t old_length = load_be16(ip + 2);
    const auto total = static_cast<std::uint16_t>(a.ip_header_length + l4_length);
    store_be16(ip + 2, total);
    store_be16(ip + 10, csum::update16(load_be16(ip + 10), old_length, total));
  } else {
    store_be16(ip + 4, static_cast<std::uint16_t>(l4_length));
  }
  // NEEDS_CSUM: the checksum field holds the pseudo-header sum, not complemented; the kernel
  // adds the rest from csum_start on (what Linux's own tcp_v4_send_check leaves for a NIC).
  const std::uint16_t seed =
      csum::fold_be(csum::pseudo_header(a.source(), a.destination(), a.protocol, l4_length));
  if (tcp) {
    if (item.psh) l4[13] = static_cast<std::uint8_t>(l4[13] | kTcpPsh);
    store_be16(l4 + kTcpChecksumOffset, seed);
  } else {
    store_be16(l4 + 4, static_cast<std::uint16_t>(l4_length));
    store_be16(l4 + kUdpChecksumOffset, seed);
  }
  VirtioNetHdr h;
  h.flags = kVirtioNetHdrFNeedsCsum;
  h.gso_type = tcp ? (a.version == 4 ? kVirtioNetHdrGsoTcpv4 : kVirtioNetHdrGsoTcpv6) : kVirtioNetHdrGsoUdpL4;
  h.hdr_len = static_cast<std::uint16_t>(a.headers_length());
  h.gso_size = static_cast<std::uint16_t>(item.gso_size);
  h.csum_start = static_cast<std::uint16_t>(a.ip_header_length);
  h.csum_offset = tcp ? kTcpChecksumOffset : kUdpChecksumOffset;
  encode(h, scratch);
  return static_cast<std::uint32_t>(kVirtioNetHdrSize + a.headers_length());
}

}  // namespace wwan::offload
