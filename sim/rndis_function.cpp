#include "sim/rndis_function.hpp"

#include <algorithm>
#include <cstring>

#include "control/cdc_ncm.hpp"

namespace wwan::sim {

namespace {

// fe80::/64 + modified EUI-64 of `mac` (RFC 4291 Appendix A): the device's link-local address.
eth::Ipv6Address link_local_of(const eth::MacAddress& m) {
  return {{0xFE, 0x80, 0, 0, 0, 0, 0, 0, static_cast<std::uint8_t>(m.bytes[0] ^ 0x02), m.bytes[1], m.bytes[2], 0xFF,
           0xFE, m.bytes[3], m.bytes[4], m.bytes[5]}};
}

// The OIDs answered by QUERY (OID_GEN_SUPPORTED_LIST lists them).
constexpr std::uint32_t kSupportedOids[] = {
    rndis::kOidGenSupportedList,       rndis::kOidGenMaximumFrameSize,   rndis::kOidGenLinkSpeed,
    rndis::kOidGenCurrentPacketFilter, rndis::kOidGenMaximumTotalSize,   rndis::kOidGenMediaConnectStatus,
    rndis::kOidGenPhysicalMedium,      rndis::kOidGenXmitOk,             rndis::kOidGenRcvOk,
    rndis::kOid8023PermanentAddress,   rndis::kOid8023CurrentAddress,    rndis::kOid8023MulticastList,
    rndis::kOid8023MaximumListSize,
};
// OID_802_3_MAXIMUM_LIST_SIZE answered (f_rndis answers 32).
constexpr std::uint32_t kMulticastListSize = 32;

// Collects the frames of one OUT transfer and checks the message layout the host promised.
struct OutSink {
  RndisFunctionCounters& counters;
  std::vector<rndis::FrameView> frames;
  void frame(const rndis::FrameView& f) { frames.push_back(f); }
  void error(rndis::PacketError e) { counters.out_parse.count(e); }
};

}  // namespace

RndisFunction::RndisFunction(RndisFunctionConfig config, Network& network)
    : config_(config), network_(network), staged_frame_(eth::kEthernetHeaderSize + 65535) {}

bool RndisFunction::owns_endpoint(std::uint8_t endpoint_address) const {
  return endpoint_address == config_.notification_endpoint || endpoint_address == config_.bulk_in_endpoint ||
         endpoint_address == config_.bulk_out_endpoint;
}

// ---- control channel ---------------------------------------------------------------------------------

void RndisFunction::service(Clock::time_point now) {
  // A response becomes readable (and is announced) when its due time has come, in queue order.
  while (announced_ < responses_.size() && responses_[announced_].due <= now) {
    ++announced_;
    if (!faults_.lose_response_available) ++notifications_;
  }
}

void RndisFunction::queue_response(rndis::ByteVector bytes, Clock::time_point now) {
  if (responses_.size() >= kMaxQueuedResponses) {
    ++counters_.responses_dropped;
    return;
  }
  responses_.push_back({now + faults_.answer_delay, std::move(bytes)});
  service(now);
}

std::optional<std::size_t> RndisFunction::control(const SetupPacket& setup, std::span<std::uint8_t> data) {
  const Clock::time_point now = clock_();
  service(now);
  if (setup.index != config_.control_interface) return std::nullopt;
  if (setup.request_type == cdc::kRequestTypeClassInterfaceOut && setup.request == cdc::kSendEncapsulatedCommand) {
    handle_command(data, now);
    return 0;
  }
  if (setup.request_type == cdc::kRequestTypeClassInterfaceIn && setup.request == cdc::kGetEncapsulatedResponse) {
    if (announced_ == 0) return 0;  // nothing due: a zero-length answer
    const rndis::ByteVector bytes = std::move(responses_.front().bytes);
    responses_.pop_front();
    --announced_;
    const std::size_t n = std::min(bytes.size(), data.size());
    std::memcpy(data.data(), bytes.data(), n);
    return n;
  }
  return std::nullopt;
}

void RndisFunction::handle_command(std::span<const std::uint8_t> bytes, Clock::time_point now) {
  ++counters_.commands;
  const rndis::DecodedControl d = rndis::decode_control(bytes);
  if (!d.ok()) {
    ++counters_.bad_commands;
    // MS-RNDIS §2.2.10: a message the device cannot handle is answered with INDICATE_STATUS
    // RNDIS_STATUS_INVALID_DATA (the diagnostic buffer is optional and left out).
    if (initialized_) queue_response(rndis::encode_indicate_status(rndis::kStatusInvalidData), now);
    return;
  }
  if (const auto* init = std::get_if<rndis::InitializeMsg>(&d.message)) {
    initialized_ = true;
    packet_filter_ = 0;
    flush_data();
    host_max_transfer_size_ = std::clamp(init->max_transfer_size, rndis::kMinTransferSize, rndis::kMaxTransferSizeLimit);
    rndis::InitializeCmplt c;
    c.request_id = init->request_id;
    c.max_packets_per_transfer = config_.max_packets_per_transfer;
    c.max_transfer_size = config_.max_transfer_size;
    c.packet_alignment_factor = config_.packet_alignment_factor;
    if (faults_.initialize_answer) {
      c = *faults_.initialize_answer;
      c.request_id = init->request_id;
    }
    queue_response(rndis::encode_initialize_cmplt(c), now);
  } else if (const auto* q = std::get_if<rndis::OidRequest>(&d.message)) {
    if (q->oid == faults_.ignore_oid && q->oid != 0) return;
    if (q->set) answer_set(*q, now);
    else answer_query(*q, now);
  } else if (const auto* k = std::get_if<rndis::KeepaliveMsg>(&d.message)) {
    ++counters_.keepalives_from_host;
    if (!faults_.ignore_keepalives) queue_response(rndis::encode_keepalive_cmplt(k->request_id, faults_.keepalive_status), now);
  } else if (std::holds_alternative<rndis::KeepaliveCmplt>(d.message)) {
    ++counters_.keepalive_answers_from_host;
  } else if (std::holds_alternative<rndis::ResetMsg>(d.message)) {
    // The addressing state is lost (AddressingReset = 1): the host must set the filter again.
    ++counters_.resets;
    packet_filter_ = 0;
    flush_data();
    queue_response(rndis::encode_reset_cmplt(rndis::kStatusSuccess, 1), now);
  } else if (std::holds_alternative<rndis::HaltMsg>(d.message)) {
    ++counters_.halts;
    initialized_ = false;
    packet_filter_ = 0;
    flush_data();
  } else {
    ++counters_.bad_commands;  // a device-bound completion or indication: not a host's message
  }
}

void RndisFunction::answer_query(const rndis::OidRequest& q, Clock::time_point now) {
  const auto answer_u32 = [&](std::uint32_t v) {
    const rndis::ByteVector b = rndis::oid_u32_buffer(v);
    queue_response(rndis::encode_query_cmplt(q.request_id, rndis::kStatusSuccess, b), now);
  };
  if (q.oid == faults_.refuse_oid && q.oid != 0) {
    queue_response(rndis::encode_query_cmplt(q.request_id, rndis::kStatusNotSupported), now);
    return;
  }
  switch (q.oid) {
    case rndis::kOidGenSupportedList: {
      rndis::ByteVector b(sizeof kSupportedOids);
      for (std::size_t i = 0; i < std::size(kSupportedOids); ++i) ntb::store_le32(b, 4 * i, kSupportedOids[i]);
      queue_response(rndis::encode_query_cmplt(q.request_id, rndis::kStatusSuccess, b), now);
      return;
    }
    case rndis::kOid8023PermanentAddress:
    case rndis::kOid8023CurrentAddress:
      queue_response(rndis::encode_query_cmplt(q.request_id, rndis::kStatusSuccess, config_.host_mac.bytes), now);
      return;
    case rndis::kOidGenMaximumFrameSize: answer_u32(config_.max_frame_size); return;
    case rndis::kOidGenMaximumTotalSize:
      answer_u32(config_.max_frame_size + static_cast<std::uint32_t>(eth::kEthernetHeaderSize + rndis::kPacketHeaderSize));
      return;
    case rndis::kOidGenLinkSpeed: answer_u32(config_.link_speed_100bps); return;
    case rndis::kOidGenMediaConnectStatus:
      answer_u32(media_connected_ ? rndis::kMediaStateConnected : rndis::kMediaStateDisconnected);
      return;
    case rndis::kOidGenCurrentPacketFilter: answer_u32(packet_filter_); return;
    case rndis::kOidGenPhysicalMedium: answer_u32(config_.physical_medium); return;
    case rndis::kOidGenXmitOk: answer_u32(static_cast<std::uint32_t>(counters_.frames_to_host)); return;
    case rndis::kOidGenRcvOk: answer_u32(static_cast<std::uint32_t>(counters_.frames_from_host)); return;
    case rndis::kOid8023MaximumListSize: answer_u32(kMulticastListSize); return;
    default: queue_response(rndis::encode_query_cmplt(q.request_id, rndis::kStatusNotSupported), now); return;
  }
}

void RndisFunction::answer_set(const rndis::OidRequest& s, Clock::time_point now) {
  std::uint32_t status = rndis::kStatusSuccess;
  if (s.oid == faults_.refuse_oid && s.oid != 0) {
    status = rndis::kStatusNotSupported;
  } else if (s.oid == rndis::kOidGenCurrentPacketFilter) {
    const auto v = rndis::oid_u32(s.information_buffer);
    if (v && s.information_buffer.size() == 4) packet_filter_ = *v;
    else status = rndis::kStatusInvalidLength;
  } else if (s.oid == rndis::kOid8023MulticastList) {
    if (s.information_buffer.size() % 6 != 0 || s.information_buffer.size() / 6 > kMulticastListSize)
      status = rndis::kStatusInvalidLength;
  } else {
    status = rndis::kStatusNotSupported;
  }
  queue_response(rndis::encode_set_cmplt(s.request_id, status), now);
}

void RndisFunction::set_media_connected(bool connected) {
  if (connected == media_connected_) return;
  media_connected_ = connected;
  if (!connected) flush_data();
  if (initialized_)
    queue_response(rndis::encode_indicate_status(connected ? rndis::kStatusMediaConnect : rndis::kStatusMediaDisconnect),
                   clock_());
}

void RndisFunction::send_keepalive() {
  if (initialized_) queue_response(rndis::encode_keepalive(next_keepalive_id_++), clock_());
}

void RndisFunction::send_indication(std::uint32_t status) {
  if (initialized_) queue_response(rndis::encode_indicate_status(status), clock_());
}

std::optional<Clock::time_point> RndisFunction::next_deadline() const {
  std::optional<Clock::time_point> next = network_.next_deadline();
  if (announced_ < responses_.size()) {
    const Clock::time_point due = responses_[announced_].due;
    if (!next || due < *next) next = due;
  }
  return next;
}

// ---- data --------------------------------------------------------------------------------------------

void RndisFunction::flush_data() {
  link_frames_.clear();
  staged_length_ = 0;
}

EndpointResult RndisFunction::out(std::uint8_t endpoint_address, std::span<const std::uint8_t> data) {
  const Clock::time_point now = clock_();
  service(now);
  if (endpoint_address != config_.bulk_out_endpoint) return EndpointResult::stall;
  ++counters_.transfers_from_host;
  if (data.size() > config_.max_transfer_size) {
    ++counters_.transfers_too_large;
    return EndpointResult::ok;  // taken off the bus and dropped, as a device's full buffer would
  }
  receive_transfer(data, now);
  return EndpointResult::ok;
}

void RndisFunction::receive_transfer(std::span<const std::uint8_t> transfer, Clock::time_point now) {
  OutSink sink{counters_, {}};
  const rndis::PacketTransferSummary s = rndis::parse_packet_transfer(transfer, sink);
  counters_.out_parse.add(s);
  if (s.messages > config_.max_packets_per_transfer) ++counters_.transfers_too_many_packets;
  if (s.messages > 1) {
    // Every message of a multi-message transfer must start at a multiple of 2^PacketAlignmentFactor
    // (MS-RNDIS §2.2.3). Walk the MessageLengths again to see where they start.
    const std::uint64_t mask = (std::uint64_t{1} << std::min<std::uint32_t>(config_.packet_alignment_factor, 31)) - 1;
    std::uint64_t at = 0;
    for (std::uint32_t i = 0; i < s.messages && ntb::fits(transfer.size(), at, rndis::kMessageHeaderSize); ++i) {
      if ((at & mask) != 0) ++counters_.messages_misaligned;
      at += ntb::load_le32(transfer, static_cast<std::size_t>(at) + rndis::kPacketMessageLengthAt);
    }
  }
  for (const rndis::FrameView& f : sink.frames)
    receive_frame(transfer.subspan(static_cast<std::size_t>(f.offset), f.length), now);
}

void RndisFunction::receive_frame(std::span<const std::uint8_t> frame, Clock::time_point now) {
  ++counters_.frames_from_host;
  const std::optional<eth::EthernetFrame> f = eth::parse_ethernet(frame);
  if (!f) {
    ++counters_.frames_malformed;
    return;
  }
  const NetworkConfig& net = network_.config();
  std::array<std::uint8_t, eth::kNeighbourAdvertisementFrameSize> reply{};
  if (f->ethertype == eth::kEtherTypeArp) {
    if (const auto n = eth::answer_arp(frame, net.gateway_ipv4, config_.device_mac, reply)) {
      ++counters_.arp_requests_from_host;
      queue_link_frame(std::span<const std::uint8_t>(reply).first(*n));
    }
    return;
  }
  if (f->ethertype == eth::kEtherTypeIpv6) {
    const std::array<eth::Ipv6Address, 2> ours = {net.gateway_ipv6, link_local_of(config_.device_mac)};
    if (const auto n = eth::answer_neighbour_solicitation(frame, ours, config_.device_mac, true, reply)) {
      ++counters_.neighbour_advertisements_sent;
      queue_link_frame(std::span<const std::uint8_t>(reply).first(*n));
      return;
    }
  }
  if (f->ethertype != eth::kEtherTypeIpv4 && f->ethertype != eth::kEtherTypeIpv6) {
    ++counters_.frames_other_ethertype;
    return;
  }
  if (!data_flowing()) {
    ++counters_.frames_before_data;
    return;
  }
  network_.from_host(f->payload, now);
}

void RndisFunction::queue_link_frame(std::span<const std::uint8_t> frame) {
  if (link_frames_.size() >= kMaxQueuedLinkFrames) {
    ++counters_.link_frames_dropped;
    return;
  }
  link_frames_.emplace_back(frame.begin(), frame.end());
}

InResult RndisFunction::in(std::uint8_t endpoint_address, std::span<std::uint8_t> buffer) {
  const Clock::time_point now = clock_();
  service(now);
  if (endpoint_address == config_.notification_endpoint) {
    if (notifications_ == 0) return {EndpointResult::nak, 0};
    const std::size_t n = rndis::encode_response_available(buffer);
    if (n == 0) return {EndpointResult::stall, 0};  // a host buffer below 8 bytes: protocol error
    --notifications_;
    ++counters_.notifications_sent;
    return {EndpointResult::ok, n};
  }
  if (endpoint_address != config_.bulk_in_endpoint) return {EndpointResult::stall, 0};
  // MS-RNDIS: no data before the host set a nonzero filter (and none while uninitialised).
  if (!initialized_ || packet_filter_ == 0) return {EndpointResult::nak, 0};
  return send_packets(buffer, now);
}

InResult RndisFunction::send_packets(std::span<std::uint8_t> buffer, Clock::time_point now) {
  // Never more than the host's INITIALIZE MaxTransferSize; one byte of it kept for the pad.
  const bool pad = config_.short_packet_pad && config_.bulk_max_packet_size != 0;
  std::span<std::uint8_t> room = buffer.first(std::min<std::size_t>(buffer.size(), host_max_transfer_size_));
  if (pad && !room.empty()) room = room.first(room.size() - 1);
  rndis::PacketOutParams params;
  params.max_transfer_size = host_max_transfer_size_;
  params.max_packets_per_transfer = config_.in_max_packets_per_transfer;
  params.packet_alignment_factor = config_.in_alignment_factor;
  params.max_packet_size = 0;  // the pad is added below, over the whole transfer
  std::size_t hostile = 0;
  if (faults_.hostile_in_messages > 0 && room.size() >= 2 * rndis::kPacketHeaderSize + eth::kEthernetMinFrameSize) {
    // A PACKET_MSG whose DataOffset + DataLength + 8 wraps to 52 in 32 bits (0xFFFFFFF0 + 60 + 8):
    // rndis_host's check passes it, a 64-bit check does not. MessageLength frames it correctly,
    // so a parser that skips bad messages keeps the rest of the transfer.
    (void)rndis::write_packet_header(room, eth::kEthernetMinFrameSize);
    ntb::store_le32(room, rndis::kPacketDataOffsetAt, 0xFFFFFFF0u);
    std::memset(room.data() + rndis::kPacketHeaderSize, 0xEE, eth::kEthernetMinFrameSize);
    hostile = rndis::kPacketHeaderSize + eth::kEthernetMinFrameSize;
    --faults_.hostile_in_messages;
    ++counters_.hostile_messages_sent;
  }
  rndis::PacketBuilder b(room.subspan(hostile), params);
  const auto place = [&](std::span<const std::uint8_t> frame) {
    const rndis::PacketAppendResult r = b.append(frame);
    if (r == rndis::PacketAppendResult::Appended) return 1;
    if (r == rndis::PacketAppendResult::Full) return 0;
    ++counters_.frames_to_host_dropped;  // larger than any transfer the host allows (or shorter than a header)
    return -1;
  };
  while (!link_frames_.empty()) {
    if (place(link_frames_.front()) == 0) break;
    link_frames_.pop_front();
  }
  if (media_connected_ && !b.full()) {
    const std::size_t max_ip = config_.max_frame_size;
    for (;;) {
      if (staged_length_ == 0) {
        const std::optional<std::size_t> n =
            network_.to_host(std::span<std::uint8_t>(staged_frame_).subspan(eth::kEthernetHeaderSize, max_ip), now);
        if (!n) break;
        const std::uint16_t type =
            (staged_frame_[eth::kEthernetHeaderSize] >> 4) == 6 ? eth::kEtherTypeIpv6 : eth::kEtherTypeIpv4;
        (void)eth::write_ethernet_header(staged_frame_, config_.host_mac, config_.device_mac, type);
        staged_length_ = eth::kEthernetHeaderSize + *n;
      }
      const int r = place(std::span<const std::uint8_t>(staged_frame_).first(staged_length_));
      if (r == 0) break;  // kept for the next transfer
      staged_length_ = 0;
      if (r > 0) ++counters_.frames_to_host;
    }
  }
  const rndis::Bytes built = b.finish();
  if (built.empty() && hostile == 0) return {EndpointResult::nak, 0};
  std::size_t length = hostile + built.size();
  // The USB mapping's short packet instead of a ZLP (usbnet pads the same way toward devices).
  if (pad && length % config_.bulk_max_packet_size == 0 && length < buffer.size()) buffer[length++] = 0;
  ++counters_.transfers_to_host;
  return {EndpointResult::ok, length};
}

}  // namespace wwan::sim
