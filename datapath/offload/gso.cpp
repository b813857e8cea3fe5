#include "datapath/offload/gso.hpp"

#include <algorithm>
#include <cstring>

namespace wwan::offload {

const char* to_string(GsoError e) {
  switch (e) {
    case GsoError::None: return "none";
    case GsoError::NoVirtioNetHdr: return "no_virtio_net_hdr";
    case GsoError::EmptyPacket: return "empty_packet";
    case GsoError::UnsupportedGsoType: return "unsupported_gso_type";
    case GsoError::GsoSizeZero: return "gso_size_zero";
    case GsoError::NotL4: return "not_l4";
    case GsoError::GsoTypeMismatch: return "gso_type_mismatch";
    case GsoError::NoPayload: return "no_payload";
    case GsoError::CsumOutOfPacket: return "csum_out_of_packet";
  }
  return "?";
}

GsoError GsoSegmenter::start(Bytes read) {
  count_ = next_ = last_length_ = 0;
  l4_reason_ = L4Parse::Ok;
  if (read.size() < kVirtioNetHdrSize) return GsoError::NoVirtioNetHdr;
  hdr_ = decode(read.data());
  packet_ = read.subspan(kVirtioNetHdrSize);
  if (packet_.empty()) return GsoError::EmptyPacket;

  const std::uint8_t type = static_cast<std::uint8_t>(hdr_.gso_type & ~kVirtioNetHdrGsoEcn);
  if (type == kVirtioNetHdrGsoNone) {
    if ((hdr_.flags & kVirtioNetHdrFNeedsCsum) != 0) {
      if (std::uint64_t{hdr_.csum_start} + hdr_.csum_offset + 2 > packet_.size()) return GsoError::CsumOutOfPacket;
      mode_ = Mode::CompleteChecksum;
    } else {
      mode_ = Mode::Copy;
    }
    count_ = 1;
    return GsoError::None;
  }
  if (type != kVirtioNetHdrGsoTcpv4 && type != kVirtioNetHdrGsoTcpv6 && type != kVirtioNetHdrGsoUdpL4)
    return GsoError::UnsupportedGsoType;
  if (hdr_.gso_size == 0) return GsoError::GsoSizeZero;
  // The headers are found by parsing, not from hdr_len / csum_start: the packet says where its
  // L4 header is, and the checksums are computed from scratch whatever the seed.
  l4_reason_ = parse_l4(packet_, l4_);
  if (l4_reason_ != L4Parse::Ok) return GsoError::NotL4;
  const bool ok_type = (type == kVirtioNetHdrGsoTcpv4 && l4_.version == 4 && l4_.tcp()) ||
                       (type == kVirtioNetHdrGsoTcpv6 && l4_.version == 6 && l4_.tcp()) ||
                       (type == kVirtioNetHdrGsoUdpL4 && !l4_.tcp());
  if (!ok_type) return GsoError::GsoTypeMismatch;
  if (l4_.payload_length == 0) return GsoError::NoPayload;
  gso_size_ = hdr_.gso_size;
  count_ = (std::size_t{l4_.payload_length} + gso_size_ - 1) / gso_size_;
  mode_ = Mode::Segment;
  return GsoError::None;
}

std::size_t GsoSegmenter::next_length() const {
  if (done()) return 0;
  if (mode_ != Mode::Segment) return packet_.size();
  const std::uint64_t offset = std::uint64_t{next_} * gso_size_;
  const std::uint64_t payload = std::min<std::uint64_t>(gso_size_, l4_.payload_length - offset);
  return static_cast<std::size_t>(l4_.headers_length() + payload);
}

void GsoSegmenter::write_next(MutableBytes out) {
  if (done()) return;
  last_length_ = next_length();
  if (mode_ == Mode::Segment) {
    write_segment(out, next_);
  } else {
    std::memcpy(out.data(), packet_.data(), packet_.size());
    if (mode_ == Mode::CompleteChecksum) {
      // The field holds the pseudo-header seed; the sum from csum_start on, folded and
      // complemented, is the checksum (the CHECKSUM_PARTIAL contract). A computed 0 is stored
      // as 0xFFFF, as Linux's skb_checksum_help does (CSUM_MANGLED_0): for UDP a 0 would mean
      // "no checksum", and for TCP both are the same one's complement zero.
      const std::size_t field = std::size_t{hdr_.csum_start} + hdr_.csum_offset;
      std::uint16_t c = csum::finish_be(csum::accumulate(out.subspan(hdr_.csum_start, packet_.size() - hdr_.csum_start)));
      if (c == 0) c = 0xFFFF;
      store_be16(out.data() + field, c);
    }
  }
  ++next_;
}

void GsoSegmenter::write_segment(MutableBytes out, std::size_t index) {
  const bool tcp = l4_.tcp();
  const std::uint32_t headers = l4_.headers_length();
  const std::uint64_t offset = std::uint64_t{index} * gso_size_;
  const auto payload = static_cast<std::uint32_t>(std::min<std::uint64_t>(gso_size_, l4_.payload_length - offset));
  const std::uint32_t l4_length = l4_.l4_header_length + payload;
  std::uint8_t* ip = out.data();
  std::memcpy(ip, packet_.data(), headers);
  const Bytes data = packet_.subspan(headers + static_cast<std::size_t>(offset), payload);
  std::memcpy(ip + headers, data.data(), payload);

  if (l4_.version == 4) {
    // Total Length and Identification change. The header checksum is computed afresh (20 bytes)
    // rather than updated: what the kernel left in a GSO packet's header is not ours to trust.
    const auto total = static_cast<std::uint16_t>(headers + payload);
    const auto id = static_cast<std::uint16_t>(load_be16(packet_.data() + 4) + index);
    store_be16(ip + 2, total);
    store_be16(ip + 4, id);
    store_be16(ip + 10, csum::ipv4_header(Bytes(ip, l4_.ip_header_length)));
  } else {
    store_be16(ip + 4, static_cast<std::uint16_t>(l4_length));
  }
  std::uint8_t* l4 = ip + l4_.ip_header_length;
  std::size_t checksum_at = 0;
  if (tcp) {
    store_be32(l4 + 4, static_cast<std::uint32_t>(load_be32(l4 + 4) + offset));
    std::uint8_t flags = l4[13];
    if (index + 1 < count_) flags = static_cast<std::uint8_t>(flags & ~(kTcpFin | kTcpPsh));
    if (index > 0) flags = static_cast<std::uint8_t>(flags & ~kTcpCwr);
    l4[13] = flags;
    checksum_at = kTcpChecksumOffset;
  } else {
    store_be16(l4 + 4, static_cast<std::uint16_t>(l4_length));
    checksum_at = kUdpChecksumOffset;
  }
  store_be16(l4 + checksum_at, 0);
  csum::Sum s = csum::pseudo_header(l4_.source(), l4_.destination(), l4_.protocol, l4_length);
  s = csum::accumulate(Bytes(l4, l4_.l4_header_length), s);
  s = csum::accumulate(data, s);
  std::uint16_t c = csum::finish_be(s);
  if (!tcp && c == 0) c = 0xFFFF;  // RFC 768: a computed 0 is sent as all ones
  store_be16(l4 + checksum_at, c);
}

}  // namespace wwan::offload
