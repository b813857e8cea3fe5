#include "datapath/tx_path.hpp"

#include <algorithm>
#include <stdexcept>

namespace wwan::dp {

namespace {
// A TUN that keeps failing reads (detached, or the fd closed under us) must not make the worker
// spin: after this many failures in a row a read buffer is not posted again.
constexpr unsigned kMaxConsecutiveReadErrors = 64;
}  // namespace

TxStage::TxStage(const TxConfig& config, PacketIo& io, OutLink& link, LinkState& link_state)
    : config_(config),
      io_(io),
      link_(link),
      link_state_(link_state),
      replies_(64),
      control_(16),
      read_stride_(config.vnet_hdr                      ? kVnetReadBytes
                   : framing_row(config.framing).passthrough ? eth::kEthernetHeaderSize + kVlanTagBytes + config.mtu_bytes
                                                             : eth::kEthernetHeaderSize + config.mtu_bytes),
      read_memory_(read_stride_ * config.reads_in_flight),
      read_length_(config.reads_in_flight, 0),
      ready_(config.reads_in_flight, 0),
      ethernet_(framing_row(config.framing).ethernet),
      passthrough_(framing_row(config.framing).passthrough),
      builders_(config.out_slots) {
  if (config.reads_in_flight == 0 || config.out_slots == 0 || config.mtu_bytes == 0)
    throw std::invalid_argument("TxStage: reads_in_flight, out_slots and mtu_bytes must be nonzero");
  if (passthrough_ && config.vnet_hdr) throw std::invalid_argument("TxStage: a TAP framing has no TUN offload");
  if (passthrough_) {
    // A TAP read is the whole frame: it lands at the start of its buffer, which it may fill.
    read_offset_ = 0;
    read_bytes_ = read_stride_;
    return;
  }
  // Without offload reads land behind room for the Ethernet header, so NCM frames are finished
  // in place; with it the segmenter writes each packet into the NTB behind its own header.
  read_offset_ = config.vnet_hdr ? 0 : eth::kEthernetHeaderSize;
  read_bytes_ = config.vnet_hdr ? kVnetReadBytes : config.mtu_bytes;
}

void TxStage::post_read(unsigned index) {
  if (stopping_) return;
  const std::span<std::uint8_t> room(read_memory_.data() + index * read_stride_ + read_offset_, read_bytes_);
  if (io_.prepare_read(room, kTxReadTag | index)) ++reads_posted_;
}

void TxStage::start() {
  for (unsigned i = 0; i < config_.reads_in_flight; ++i) post_read(i);
}

void TxStage::on_completion(const IoCompletion& completion) {
  const auto index = static_cast<std::uint32_t>(completion.tag & 0xFFFFFFFFu);
  if (index >= config_.reads_in_flight) return;  // not ours: cannot happen
  --reads_posted_;
  if (completion.result <= 0) {
    // -EAGAIN/-EINTR are transient; anything else is counted. Either way the read goes back.
    ++counters_.read_errors;
    if (++consecutive_read_errors_ < kMaxConsecutiveReadErrors) post_read(index);
    return;
  }
  consecutive_read_errors_ = 0;
  ++counters_.tun_reads;
  read_length_[index] = static_cast<std::uint32_t>(completion.result);
  // The FIFO has room for every read buffer, and a buffer is in it at most once.
  ready_[(ready_head_ + ready_count_) % ready_.size()] = index;
  ++ready_count_;
}

ntb::AppendResult TxStage::SlotBuilder::append(ntb::Bytes frame) {
  if (ntb) return ntb->append(frame);
  switch (rndis->append(frame)) {
    case rndis::PacketAppendResult::Appended: return ntb::AppendResult::Appended;
    case rndis::PacketAppendResult::Full: return ntb::AppendResult::Full;
    case rndis::PacketAppendResult::TooLarge: return ntb::AppendResult::TooLarge;
    case rndis::PacketAppendResult::TooShort: return ntb::AppendResult::ZeroLength;  // counted too_large
  }
  return ntb::AppendResult::TooLarge;
}

bool TxStage::open_ntb() {
  if (open_slot_) return true;
  const std::optional<unsigned> slot = link_.acquire();
  if (!slot) {
    if (!backpressured_) ++counters_.out_buffer_waits;
    backpressured_ = true;
    return false;
  }
  backpressured_ = false;
  SlotBuilder& b = builders_.at(*slot);
  if (framing_row(config_.framing).ntb) {
    if (!b.ntb) b.ntb.emplace(link_.buffer(*slot), config_.out, config_.signature);
    b.ntb->reset(sequence_++);
  } else {
    if (!b.rndis) b.rndis.emplace(link_.buffer(*slot), config_.rndis_out);
    b.rndis->reset();
  }
  open_slot_ = slot;
  open_packets_ = 0;
  open_bytes_ = 0;
  opened_at_ = std::chrono::steady_clock::now();
  return true;
}

void TxStage::send_ntb() {
  const unsigned slot = *open_slot_;
  open_slot_.reset();
  SlotBuilder& sb = builders_[slot];
  if (sb.empty()) {
    link_.give_back(slot);
    return;
  }
  std::size_t length = 0;
  if (sb.rndis) {
    // The builder ends a transfer that is a multiple of wMaxPacketSize with one zero byte itself
    // (RNDIS forbids ZLPs on the data channel; the device steps by MessageLength and ignores it).
    length = sb.rndis->finish().size();
    if (sb.rndis->padded()) ++counters_.padded;
  } else {
    ntb::NtbBuilder& b = *sb.ntb;
    const std::size_t block_limit = b.block_limit_bytes();
    length = b.finish().size();
    // NCM 1.0 §3.2.2: a transfer shorter than dwNtbOutMaxSize must end with a short packet. The
    // kernel's cdc_ncm adds one zero byte rather than a ZLP (devices ignore bytes past
    // wBlockLength); a device that needs a real ZLP has the OUT pipe configured for it instead.
    const std::size_t mps = link_.max_packet_bytes();
    if (config_.pad_one_byte && mps != 0 && length % mps == 0 && length < block_limit) {
      link_.buffer(slot)[length] = 0;
      ++length;
      ++counters_.padded;
    }
  }
  if (link_.submit(slot, length)) {
    ++counters_.ntbs;
    counters_.packets += open_packets_;
    counters_.bytes += open_bytes_;
  } else {
    counters_.submit_failed += open_packets_;
  }
}

// Appends one frame; sends the NTB and retries in a fresh one when it is full. false = no OUT
// buffer (the frame was not taken).
bool TxStage::append_frame(ntb::Bytes frame, std::size_t ip_bytes) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!open_ntb()) return false;
    SlotBuilder& b = builders_[*open_slot_];
    switch (b.append(frame)) {
      case ntb::AppendResult::Appended:
        if (ip_bytes != 0) {
          ++open_packets_;
          open_bytes_ += ip_bytes;
        }
        if (b.full()) send_ntb();
        return true;
      case ntb::AppendResult::Full:
        send_ntb();
        continue;
      case ntb::AppendResult::TooLarge:
      case ntb::AppendResult::ZeroLength:
        ++counters_.too_large;
        return true;  // consumed (dropped)
    }
  }
  ++counters_.too_large;  // did not fit an empty NTB either
  return true;
}

// The control thread's packets, after the replies and before the TUN's: few, and a DHCP exchange
// or an RS is what the link's addressing waits for. One without an OUT buffer is kept (not
// dropped, unlike a reply: the client would only retransmit seconds later) for the next pump.
bool TxStage::send_control_packets() {
  bool progress = false;
  // Not gated on backpressured_ (which may be stale from the last pump): append_frame tries for
  // an OUT buffer, and only when there is a packet to send.
  for (;;) {
    if (!holding_control_) {
      if (!control_.try_pop(control_held_)) break;
      holding_control_ = true;
    }
    const std::size_t n = std::min<std::size_t>(control_held_.length, kControlPacketMaxBytes);
    ntb::Bytes frame(control_held_.bytes.data(), n);
    if (ethernet_) {
      const eth::MacAddress to = control_held_.has_destination ? control_held_.destination : link_state_.modem_mac();
      const bool v6 = n > 0 && (control_held_.bytes[0] >> 4) == 6;
      (void)eth::write_ethernet_header(control_frame_, to, config_.our_mac, v6 ? eth::kEtherTypeIpv6 : eth::kEtherTypeIpv4);
      std::copy_n(control_held_.bytes.begin(), n, control_frame_.begin() + eth::kEthernetHeaderSize);
      frame = ntb::Bytes(control_frame_.data(), eth::kEthernetHeaderSize + n);
    }
    if (!append_frame(frame, 0)) break;
    holding_control_ = false;
    ++counters_.control_packets;
    progress = true;
  }
  return progress;
}

bool TxStage::pump(bool more_pending) {
  bool progress = false;

  // ARP / NA replies first: the modem may be holding traffic until it hears them.
  ReplyFrame reply;
  while (ethernet_ && !backpressured_) {
    if (!replies_.try_pop(reply)) break;
    if (!append_frame(ntb::Bytes(reply.bytes.data(), reply.length), 0)) {
      // No OUT buffer: a reply is small and the modem repeats its request; drop it rather than
      // hold a second queue.
      break;
    }
    ++counters_.replies;
    progress = true;
  }

  progress |= send_control_packets();

  const eth::MacAddress destination = ethernet_ ? link_state_.modem_mac() : eth::MacAddress{};
  while (ready_count_ > 0) {
    const std::uint32_t index = ready_[ready_head_];
    const bool taken = passthrough_      ? take_frame(index)
                       : config_.vnet_hdr ? segment_read(index, destination)
                                          : take_read(index, destination);
    if (!taken) break;  // back-pressure: the packet stays ready, its read is not reposted
    ready_head_ = (ready_head_ + 1) % ready_.size();
    --ready_count_;
    post_read(index);
    progress = true;
  }

  // Send now unless more packets are about to be reaped and the NTB is still young.
  if (open_slot_ && !backpressured_) {
    const bool young = std::chrono::steady_clock::now() - opened_at_ < config_.max_hold;
    if (!(more_pending && young)) {
      send_ntb();
      progress = true;
    }
  }
  // Ordered before the worker's wait by its fence (worker.cpp). backpressured_ alone may be stale
  // (a dropped reply sets it and nothing waits): only a packet still held makes a buffer news.
  wants_out_buffer_.store(backpressured_ && (ready_count_ > 0 || holding_control_), std::memory_order_relaxed);
  return progress;
}

namespace {
// What a read holds: IPv4 or IPv6 of exactly the stated length, or the drop's reason. The kernel
// hands a TUN reader whole packets; a stated length other than what arrived is a packet cut short
// by a read buffer smaller than the MTU someone set since (bad_ip).
enum class ReadCheck : std::uint8_t { ipv4, ipv6, not_ip, bad_ip };
ReadCheck check_ip(ntb::Bytes ip) {
  const eth::IpClass c = eth::classify_ip(ip);
  if (c != eth::IpClass::Ipv4 && c != eth::IpClass::Ipv6) return ReadCheck::not_ip;
  if (const auto whole = eth::trim_to_ip_length(ip); !whole || whole->size() != ip.size()) return ReadCheck::bad_ip;
  return c == eth::IpClass::Ipv4 ? ReadCheck::ipv4 : ReadCheck::ipv6;
}
}  // namespace

bool TxStage::take_read(std::uint32_t index, const eth::MacAddress& destination) {
  std::uint8_t* const slot = read_memory_.data() + index * read_stride_;
  const std::size_t ip_bytes = read_length_[index];
  const ntb::Bytes ip(slot + eth::kEthernetHeaderSize, ip_bytes);
  switch (check_ip(ip)) {
    case ReadCheck::not_ip: ++counters_.not_ip; return true;
    case ReadCheck::bad_ip: ++counters_.bad_ip; return true;
    case ReadCheck::ipv4:
    case ReadCheck::ipv6: break;
  }
  if (!ethernet_) return append_frame(ip, ip_bytes);
  (void)eth::write_ethernet_header(std::span(slot, eth::kEthernetHeaderSize), destination, config_.our_mac,
                                   (ip[0] >> 4) == 4 ? eth::kEtherTypeIpv4 : eth::kEtherTypeIpv6);
  return append_frame(ntb::Bytes(slot, eth::kEthernetHeaderSize + ip_bytes), ip_bytes);
}

// TAP: the frame the system's stack built goes into the NTB byte for byte. The kernel hands a TAP
// reader whole frames of at least an Ethernet header; a shorter read is counted, not sent. Packets
// and bytes count frames and their bytes here.
bool TxStage::take_frame(std::uint32_t index) {
  const std::size_t frame_bytes = read_length_[index];
  if (frame_bytes < eth::kEthernetHeaderSize) {
    ++counters_.too_short;
    return true;
  }
  return append_frame(ntb::Bytes(read_memory_.data() + index * read_stride_, frame_bytes), frame_bytes);
}

// vnet_hdr: the read through the segmenter, one packet at a time straight into the open NTB.
bool TxStage::segment_read(std::uint32_t index, const eth::MacAddress& destination) {
  const ntb::Bytes read(read_memory_.data() + index * read_stride_, read_length_[index]);
  if (!gso_started_) {
    if (const offload::GsoError e = gso_.start(read); e != offload::GsoError::None) {
      ++counters_.gso_errors[static_cast<std::size_t>(e)];
      return true;  // dropped
    }
    const offload::VirtioNetHdr h = offload::decode(read.data());
    gso_segmenting_ = (h.gso_type & ~offload::kVirtioNetHdrGsoEcn) != offload::kVirtioNetHdrGsoNone;
    if (!gso_segmenting_) {
      // One packet, as without offload: the same checks (the segmenter copies it as it is).
      const ReadCheck c = check_ip(read.subspan(offload::kVirtioNetHdrSize));
      if (c == ReadCheck::not_ip || c == ReadCheck::bad_ip) {
        ++(c == ReadCheck::not_ip ? counters_.not_ip : counters_.bad_ip);
        return true;
      }
      if ((h.flags & offload::kVirtioNetHdrFNeedsCsum) != 0) ++counters_.csum_completed;
    } else {
      ++counters_.gso_super_packets;
    }
    gso_started_ = true;
  }
  const std::size_t framing = ethernet_ ? eth::kEthernetHeaderSize : 0;
  // Every segment has the version of the read's packet (parse_l4 / check_ip looked at it).
  const bool v4 = (read[offload::kVirtioNetHdrSize] >> 4) == 4;
  while (!gso_.done()) {
    if (!open_ntb()) return false;  // resumes here at the next pump
    SlotBuilder& b = builders_[*open_slot_];
    const std::size_t ip_bytes = gso_.next_length();
    const std::optional<ntb::MutableBytes> room = b.reserve(framing + ip_bytes);
    if (!room) {
      if (!b.empty()) {
        send_ntb();
        continue;
      }
      // Does not fit an empty NTB: the rest of this read cannot be sent (each segment is as
      // long as the first but the last).
      counters_.too_large += gso_.segments();
      gso_started_ = false;
      return true;
    }
    if (framing != 0)
      (void)eth::write_ethernet_header(room->first(framing), destination, config_.our_mac,
                                       v4 ? eth::kEtherTypeIpv4 : eth::kEtherTypeIpv6);
    gso_.write_next(room->subspan(framing));
    b.commit(framing + ip_bytes);
    ++open_packets_;
    open_bytes_ += ip_bytes;
    if (gso_segmenting_) ++counters_.gso_segments;
    if (b.full()) send_ntb();
  }
  gso_started_ = false;
  return true;
}

void TxStage::publish() {
  std::lock_guard lock(published_mu_);
  published_ = counters_;
}

TxCounters TxStage::counters() const {
  std::lock_guard lock(published_mu_);
  return published_;
}

}  // namespace wwan::dp
