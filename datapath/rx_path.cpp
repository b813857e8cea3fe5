#include "datapath/rx_path.hpp"

#include <algorithm>
#include <stdexcept>

namespace wwan::dp {

namespace {
// The shortest datagram the parser hands over is an Ethernet header (NCM, DpeTooShort below it),
// one byte (MBIM) or a 44-byte PACKET_MSG header + an Ethernet header (RNDIS, DataTooShort below
// it); a transfer of N bytes therefore holds fewer than N / 14 + 1 NCM datagrams. MBIM datagrams
// shorter than an IPv4 header are dropped anyway, so size the list for 20-byte ones plus slack
// and count the rest as too_many_datagrams rather than size it for 1-byte ones (FramingRow).
std::size_t datagram_capacity(const RxConfig& c) {
  return c.transfer_bytes / framing_row(c.framing).smallest_datagram_bytes + 1;
}

// The most datagrams a received transfer of `length` bytes can hand over (as above).
std::size_t datagram_bound(const RxConfig& c, std::size_t length) {
  return length / framing_row(c.framing).smallest_datagram_bytes + 1;
}

constexpr unsigned kTagPacketsShift = 32, kTagHeaderShift = 48;
constexpr std::uint64_t kTagPacketsMask = 0xFFFF, kTagHeaderMask = 0xFF;

// The extra bits of an RX write's tag (rx_path.hpp): the packets it holds and, for a
// super-packet, the header bytes each of its segments had.
std::uint64_t write_tag_bits(std::uint32_t packets, std::size_t header_bytes) {
  return (std::uint64_t{packets} & kTagPacketsMask) << kTagPacketsShift |
         (std::uint64_t{header_bytes} & kTagHeaderMask) << kTagHeaderShift;
}
}  // namespace

RxStage::RxStage(const RxConfig& config, PacketIo& io, InLink& link, LinkState& link_state, ReplyRing* replies,
                 PacketIo* tx_io)
    : config_(config),
      io_(io),
      link_(link),
      link_state_(link_state),
      replies_(replies),
      tx_io_(tx_io),
      ring_(config.ring_capacity),
      control_ring_(config.control_ring_capacity),
      writes_(config.vnet_hdr ? 0 : datagram_capacity(config)),
      pending_(config.in_slots, 0) {
  if (config.transfer_bytes == 0 || config.in_slots == 0 || config.ring_capacity < config.in_slots)
    throw std::invalid_argument("RxStage: transfer_bytes, in_slots and ring_capacity >= in_slots are required");
  if (config.vnet_hdr && framing_row(config.framing).passthrough)
    throw std::invalid_argument("RxStage: a TAP framing has no TUN offload");
  if (config.vnet_hdr) {
    if (config.gro_batch_transfers == 0) throw std::invalid_argument("RxStage: gro_batch_transfers >= 1 is required");
    offload::GroLimits limits;
    // Room for one worst-case transfer (degenerate NTBs of minimal datagrams), and with batching
    // for a second: a batch takes another transfer only while its worst case still fits
    // (start_batch), so real traffic (a few dozen datagrams per transfer) fills a batch by
    // gro_batch_transfers long before this, and no transfer is ever cut short by it.
    limits.max_packets = datagram_capacity(config) * (config.gro_batch_transfers > 1 ? 2 : 1);
    limits.udp = config.gro_udp;
    batches_.resize(config.in_slots);
    for (GroBatch& b : batches_) {
      b.gro = std::make_unique<offload::GroCoalescer>(limits);
      b.slots.reserve(config.gro_batch_transfers);
    }
  }
}

bool RxStage::post(const RxBuffer& buffer) {
  if (ring_.try_push(buffer)) return true;
  ring_full_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

void RxStage::reload_addresses() {
  const std::uint64_t v = link_state_.host_addresses_version();
  if (v == addresses_version_) return;
  addresses_version_ = v;
  addresses_ = link_state_.host_addresses();
}

bool RxStage::pump() {
  bool progress = false;
  for (;;) {
    // Finish queueing the current buffer first: writes go out in the order the datagrams came.
    while (cursor_ < count_) {
      if (!queue_next_write()) return progress;
      ++(config_.vnet_hdr ? batches_[current_batch_].pending : pending_[current_slot_]);
      ++writes_in_flight_;
      ++cursor_;
      progress = true;
    }
    if (have_current_) finish_queueing();

    if (config_.vnet_hdr) {
      if (!start_batch()) return progress;
      progress = true;
      continue;
    }
    RxBuffer next;
    if (!ring_.try_pop(next)) return progress;
    progress = true;
    start_buffer(next);
  }
}

bool RxStage::queue_next_write() {
  // The low 32 bits: the IN slot, or with vnet_hdr the batch (its slots go back together).
  const std::uint64_t tag = kRxWriteTag | (config_.vnet_hdr ? current_batch_ : current_slot_);
  if (config_.vnet_hdr) {
    const offload::GroItem& g = items_[cursor_];
    // iov[0] of a super-packet: the virtio_net_hdr and the headers every segment had.
    const std::size_t header_bytes = g.segments > 1 ? g.iov[0].iov_len - offload::kVirtioNetHdrSize : 0;
    return io_.prepare_writev(g.iov, g.iov_count, tag | write_tag_bits(g.segments, header_bytes));
  }
  const Write& w = writes_[cursor_];
  return io_.prepare_write(std::span(w.data, w.length), tag | write_tag_bits(1, 0));
}

void RxStage::finish_queueing() {
  have_current_ = false;
  if (config_.vnet_hdr) {
    if (--batches_[current_batch_].pending == 0) release_batch(current_batch_);
    return;
  }
  // Drop the "still queueing" reference; with no write in flight the buffer can go back now.
  if (--pending_[current_slot_] == 0) link_.release(current_slot_);
}

void RxStage::start_buffer(const RxBuffer& buffer) {
  reload_addresses();
  if (buffer.slot >= pending_.size()) return;  // a programming error upstream: never touch it
  current_slot_ = buffer.slot;
  have_current_ = true;
  pending_[current_slot_] = 1;
  count_ = 0;
  cursor_ = 0;
  parse_transfer(buffer);
}

void RxStage::parse_transfer(const RxBuffer& buffer) {
  const ntb::Bytes xfer(buffer.data, buffer.length);
  if (framing_row(config_.framing).ntb)
    parse_ntbs(xfer);
  else
    parse_rndis(xfer);
}

// vnet_hdr: the next buffer (a stashed one first) and every further one already on the ring, up
// to gro_batch_transfers and while a worst-case transfer still fits the coalescer, through one
// coalescer. false = nothing to take.
bool RxStage::start_batch() {
  RxBuffer next;
  if (have_stashed_) {
    next = stashed_;
    have_stashed_ = false;
  } else if (!ring_.try_pop(next)) {
    return false;
  }
  if (next.slot >= pending_.size()) return true;  // a programming error upstream: never touch it
  // A free batch: every batch in flight holds at least one slot other than next.slot.
  std::uint32_t b = 0;
  while (b < batches_.size() && batches_[b].pending != 0) ++b;
  if (b == batches_.size()) {  // cannot happen (above); keep the buffer rather than lose it
    stashed_ = next;
    have_stashed_ = true;
    return false;
  }
  reload_addresses();
  GroBatch& batch = batches_[b];
  batch.gro->reset();
  batch.slots.clear();
  batch.pending = 1;
  current_batch_ = b;
  have_current_ = true;
  count_ = 0;
  cursor_ = 0;
  ++counters_.gro_batches;
  for (bool more = true; more;) {
    batch.slots.push_back(next.slot);
    current_slot_ = next.slot;
    parse_transfer(next);
    more = false;
    while (batch.slots.size() < config_.gro_batch_transfers && ring_.try_pop(next)) {
      if (next.slot >= pending_.size()) continue;  // never touch it (as above)
      if (batch.gro->batch_packets() + datagram_bound(config_, next.length) > batch.gro->limits().max_packets) {
        stashed_ = next;  // starts the next batch
        have_stashed_ = true;
        break;
      }
      more = true;
      break;
    }
  }
  items_ = batch.gro->finish();
  count_ = items_.size();
  return true;
}

// The batch's last write completed (or it had none): its buffers go back to the pipe, in the
// order they came, and its coalescer is free for the next batch.
void RxStage::release_batch(std::uint32_t batch) {
  for (const std::uint32_t slot : batches_[batch].slots) link_.release(slot);
  batches_[batch].slots.clear();
}

void RxStage::parse_ntbs(ntb::Bytes xfer) {
  ntb::ParseOptions options;
  options.function = framing_row(config_.framing).ntb_function;
  options.verify_crc = config_.verify_crc;
  const bool passthrough = framing_row(config_.framing).passthrough;
  ntb::CountingSink sink{counters_.ntb, [&](const ntb::DatagramView& d) {
                           // The parser checked offset + length against the block (64-bit).
                           const ntb::Bytes datagram = xfer.subspan(static_cast<std::size_t>(d.offset), d.length);
                           if (passthrough) {
                             // TAP (framing.hpp ncm_tap): the whole frame, unchanged, for the
                             // system's stack (its ARP, NS, DHCP); the parser refused shorter
                             // than an Ethernet header. No vnet_hdr here (constructor).
                             if (count_ == writes_.size())
                               ++counters_.too_many_datagrams;
                             else
                               writes_[count_++] = Write{datagram.data(), static_cast<std::uint32_t>(datagram.size())};
                           } else if (config_.framing == Framing::ncm) {
                             deliver_ethernet(datagram);
                           } else {
                             deliver_mbim(d, datagram);
                           }
                         }};
  counters_.ntb.add(ntb::parse_transfer(xfer, options, sink));
}

// RNDIS: every REMOTE_NDIS_PACKET_MSG of the transfer, each one Ethernet frame. A bad message is
// skipped and counted by its PacketError (rx.rndis); the frames around it still go through.
void RxStage::parse_rndis(ntb::Bytes xfer) {
  rndis::CountingPacketSink sink{counters_.rndis, [&](const rndis::FrameView& f) {
                                   // The parser checked offset + length against the message (64-bit).
                                   deliver_ethernet(xfer.subspan(static_cast<std::size_t>(f.offset), f.length));
                                 }};
  counters_.rndis.add(rndis::parse_packet_transfer(xfer, sink));
}

bool is_control_plane_packet(ntb::Bytes ip) {
  constexpr std::uint8_t kIpProtocolUdp = 17;
  constexpr std::uint16_t kDhcpServerPort = 67, kDhcpClientPort = 68;  // RFC 2131 §4.1
  constexpr std::uint8_t kIcmpv6RouterAdvertisement = 134;             // RFC 4861 §4.2
  if (ip.empty()) return false;
  if ((ip[0] >> 4) == 4) {
    const std::size_t ihl = static_cast<std::size_t>(ip[0] & 0x0F) * 4;
    // Not a later fragment (offset 0), UDP, and the ports in reach.
    return ihl >= eth::kIpv4MinHeaderSize && eth::fits(ip.size(), ihl, 4) && ip[9] == kIpProtocolUdp &&
           (eth::load_be16(ip, 6) & 0x1FFF) == 0 && eth::load_be16(ip, ihl) == kDhcpServerPort &&
           eth::load_be16(ip, ihl + 2) == kDhcpClientPort;
  }
  return (ip[0] >> 4) == 6 && ip.size() > eth::kIpv6HeaderSize && ip[6] == eth::kIpProtocolIcmpv6 &&
         ip[eth::kIpv6HeaderSize] == kIcmpv6RouterAdvertisement;
}

// A copy for the control thread: it is rare traffic, and the IN buffer must not wait for the
// control thread's 50 ms loop.
void RxStage::divert(ntb::Bytes packet) {
  if (packet.size() > kControlPacketMaxBytes) {
    ++counters_.control_too_large;
    return;
  }
  std::copy(packet.begin(), packet.end(), control_scratch_.bytes.begin());
  control_scratch_.length = static_cast<std::uint16_t>(packet.size());
  if (!control_ring_.try_push(control_scratch_)) {
    ++counters_.control_ring_full;
    return;
  }
  ++counters_.control_diverted;
}

// `datagram` starts with an IPv4/IPv6 header (classify_ip said so): cut what follows the IP packet
// (Ethernet padding, the K5160's padding inside IPS) and queue its write.
void RxStage::queue_ip(ntb::Bytes datagram) {
  const std::optional<ntb::Bytes> packet = eth::trim_to_ip_length(datagram);
  if (!packet) {
    ++counters_.bad_ip;
    return;
  }
  if (packet->size() != datagram.size()) ++counters_.padding_trimmed;
  if (config_.divert_control && is_control_plane_packet(*packet)) {
    divert(*packet);
    return;
  }
  if (config_.vnet_hdr) {
    // Sized like the list below: refuses only a degenerate NTB's extra datagrams.
    if (!batches_[current_batch_].gro->add(*packet)) ++counters_.too_many_datagrams;
    return;
  }
  if (count_ == writes_.size()) {
    ++counters_.too_many_datagrams;
    return;
  }
  writes_[count_++] = Write{packet->data(), static_cast<std::uint32_t>(packet->size())};
}

void RxStage::queue_reply(std::size_t length) {
  if (replies_ == nullptr) return;
  reply_.length = static_cast<std::uint8_t>(length);
  if (!replies_->try_push(reply_)) {
    ++counters_.reply_ring_full;
    return;
  }
  if (tx_io_ != nullptr && tx_io_ != &io_) tx_io_->wake();
}

void RxStage::deliver_ethernet(ntb::Bytes frame) {
  const std::optional<eth::EthernetFrame> f = eth::parse_ethernet(frame);
  if (!f) {  // shorter than its header: the parser already refuses those, kept for safety
    ++counters_.bad_ip;
    return;
  }
  const std::uint64_t changes_before = learner_.changes();
  const bool had_mac = learner_.learned().has_value();
  learner_.observe(f->source);
  if (learner_.learned() && (!had_mac || learner_.changes() != changes_before)) {
    link_state_.set_modem_mac(*learner_.learned());
    if (had_mac) ++counters_.modem_mac_changes;
  }

  switch (f->ethertype) {
    case eth::kEtherTypeIpv4:
    case eth::kEtherTypeIpv6: {
      const eth::IpClass c = eth::classify_ip(f->payload);
      if (c == eth::IpClass::NotIp || c == eth::IpClass::Truncated) {
        ++(c == eth::IpClass::NotIp ? counters_.not_ip : counters_.bad_ip);
        return;
      }
      if ((c == eth::IpClass::Ipv4) != (f->ethertype == eth::kEtherTypeIpv4)) {
        ++counters_.ethertype_mismatch;
        return;
      }
      if (c == eth::IpClass::Ipv6 && !addresses_.ipv6.empty()) {
        // The modem's Neighbour Solicitations never reach a kernel that could answer them (a TUN
        // has no link layer), and a modem without an answer stops forwarding (cdc_mbim answers
        // them itself for that reason, anchors.md §1.9). Answered here; not passed on.
        if (const auto n = eth::answer_neighbour_solicitation(frame, addresses_.ipv6, config_.our_mac, true,
                                                              reply_.bytes)) {
          ++counters_.na_replies;
          queue_reply(*n);
          return;
        }
      }
      queue_ip(f->payload);
      return;
    }
    case eth::kEtherTypeArp:
      if (addresses_.ipv4) {
        if (const auto n = eth::answer_arp(frame, *addresses_.ipv4, config_.our_mac, reply_.bytes)) {
          ++counters_.arp_replies;
          queue_reply(*n);
          return;
        }
      }
      ++counters_.arp_ignored;
      return;
    default:
      ++counters_.not_ip;
      return;
  }
}

void RxStage::deliver_mbim(const ntb::DatagramView& view, ntb::Bytes datagram) {
  // One data session (IPS0) is what the control plane connects; other sessions and device
  // service streams have nowhere to go yet and are counted.
  if (view.kind != ntb::DatagramKind::Ips || view.session != 0) {
    ++counters_.other_session;
    return;
  }
  const eth::IpClass c = eth::classify_ip(datagram);
  if (c == eth::IpClass::NotIp || c == eth::IpClass::Truncated) {  // the K5160's header-less ARP, or a stub
    ++(c == eth::IpClass::NotIp ? counters_.not_ip : counters_.bad_ip);
    return;
  }
  queue_ip(datagram);
}

void RxStage::on_completion(const IoCompletion& completion) {
  // The IN slot, or with vnet_hdr the batch (queue_next_write).
  const auto slot = static_cast<std::uint32_t>(completion.tag & 0xFFFFFFFFu);
  if (config_.vnet_hdr ? slot >= batches_.size() || batches_[slot].pending == 0
                       : slot >= pending_.size() || pending_[slot] == 0)
    return;  // not ours: cannot happen
  --writes_in_flight_;
  const std::uint64_t packets = (completion.tag >> kTagPacketsShift) & kTagPacketsMask;
  if (completion.result < 0) {
    counters_.tun_write_errors += packets;
  } else {
    counters_.packets += packets;
    std::uint64_t bytes = static_cast<std::uint64_t>(completion.result);
    if (config_.vnet_hdr) {
      const std::uint64_t header_bytes = (completion.tag >> kTagHeaderShift) & kTagHeaderMask;
      bytes = bytes > offload::kVirtioNetHdrSize ? bytes - offload::kVirtioNetHdrSize : 0;
      bytes += (packets - 1) * header_bytes;
    }
    counters_.bytes += bytes;
  }
  if (config_.vnet_hdr) {
    if (--batches_[slot].pending == 0) release_batch(slot);
    return;
  }
  if (--pending_[slot] == 0) link_.release(slot);
}

void RxStage::publish() {
  // The coalescers count for themselves (one per batch): their sum is the stage's.
  if (config_.vnet_hdr) {
    offload::GroCounters sum;
    for (const GroBatch& b : batches_) {
      const offload::GroCounters& c = b.gro->counters();
      sum.packets += c.packets;
      sum.super_packets += c.super_packets;
      sum.coalesced += c.coalesced;
      sum.plain += c.plain;
      sum.batch_full += c.batch_full;
      for (std::size_t i = 0; i < sum.plain_by_reason.size(); ++i) sum.plain_by_reason[i] += c.plain_by_reason[i];
    }
    counters_.gro = sum;
  }
  std::lock_guard lock(published_mu_);
  published_ = counters_;
}

RxCounters RxStage::counters() const {
  std::lock_guard lock(published_mu_);
  RxCounters c = published_;
  c.ring_full = ring_full_.load(std::memory_order_relaxed);
  return c;
}

}  // namespace wwan::dp
