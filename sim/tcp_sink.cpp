#include "sim/tcp_sink.hpp"

#include <algorithm>
#include <array>
#include <cstring>

#include "datapath/offload/checksum.hpp"
#include "sim/tcp_source.hpp"
#include "sim/tcp_wire.hpp"

namespace wwan::sim {

using offload::load_be16;
using offload::load_be32;
using offload::store_be16;
using offload::store_be32;

namespace {
using tcp::kIpProtocol;
constexpr std::size_t kTcpHeaderSize = tcp::kHeaderSize;
constexpr std::size_t kMaxSackBlocks = 3;  // 2 NOPs + 2 + 3 x 8 = 28 bytes of the 40 there are
}  // namespace

TcpSink::TcpSink(const TcpSinkConfig& config) : config_(config) {
  ends_.local_ipv4 = config.local_ipv4;
  ends_.local_ipv6 = config.local_ipv6;
  ends_.local_port = config.local_port;
}

bool TcpSink::matches(std::span<const std::uint8_t> ip, std::size_t l3) const {
  if (ip.empty() || l3 > ip.size() || ip.size() - l3 < 4) return false;
  if ((ip[0] >> 4) == 6) {
    if (ip.size() < 40 || ip[6] != kIpProtocol) return false;
    if (std::memcmp(ip.data() + 24, config_.local_ipv6.bytes.data(), 16) != 0) return false;
  } else {
    if ((ip[0] >> 4) != 4 || ip.size() < 20 || ip[9] != kIpProtocol) return false;
    if (std::memcmp(ip.data() + 16, config_.local_ipv4.bytes.data(), 4) != 0) return false;
  }
  return load_be16(ip.data() + l3 + 2) == config_.local_port;
}

void TcpSink::from_host(std::span<const std::uint8_t> ip, std::size_t l3) {
  const std::optional<std::size_t> header = tcp::header_size(ip, l3);
  if (!header) {
    ++counters_.ignored;
    return;
  }
  const std::span<const std::uint8_t> tcp = ip.subspan(l3);
  const std::size_t data_offset = *header;
  const bool v6 = (ip[0] >> 4) == 6;
  const std::uint16_t source_port = load_be16(tcp.data());
  const bool ours = state_ != State::listen && v6 == ends_.ipv6 && source_port == ends_.host_port &&
                    (v6 ? std::memcmp(ip.data() + 8, ends_.host_ipv6.bytes.data(), 16) == 0
                        : std::memcmp(ip.data() + 12, ends_.host_ipv4.bytes.data(), 4) == 0);
  const std::uint8_t flags = tcp[13];
  const std::uint32_t seq = load_be32(tcp.data() + 4);

  if ((flags & kSyn) != 0) {
    if ((flags & (kAck | kRst | kFin)) != 0) {  // only a plain SYN opens (RFC 9293 §3.10.7.2)
      ++counters_.ignored;
      return;
    }
    if (ours && state_ == State::syn_received && seq == irs_) {
      due_ |= kDueSynAck;  // our SYN-ACK was lost: the host sent its SYN again
      return;
    }
    if (state_ != State::listen) ++counters_.replaced;
    open(ip, tcp, data_offset);
    return;
  }
  if (!ours) {
    ++counters_.ignored;
    return;
  }
  if ((flags & kRst) != 0) {  // RFC 9293 §3.10.7.4 (our own link: no window check)
    ++counters_.resets;
    state_ = State::listen;
    due_ = 0;
    return;
  }
  if ((flags & kAck) == 0) {  // every segment after the SYN carries an ACK (RFC 9293 §3.10.7.4)
    ++counters_.ignored;
    return;
  }
  const std::uint32_t ack = load_be32(tcp.data() + 8);
  if (state_ == State::syn_received) {
    if (ack != kInitialSequence + 1) {
      ++counters_.ignored;
      return;
    }
    state_ = State::established;
    due_ &= static_cast<std::uint8_t>(~kDueSynAck);
  }
  if (state_ == State::last_ack && ack == kInitialSequence + 2) {  // our FIN acknowledged
    state_ = State::listen;
    due_ = 0;
    return;
  }

  std::size_t payload = tcp.size() - data_offset;
  std::span<const std::uint8_t> data = tcp.subspan(data_offset);
  const bool fin = (flags & kFin) != 0;
  if (payload == 0 && !fin) return;  // a bare ACK: nothing to take, nothing to answer
  // Where the segment starts against what we expect, in sequence space (RFC 9293 §3.4: modulo
  // 2^32, so the signed difference).
  auto ahead = static_cast<std::int32_t>(seq - rcv_nxt_);
  if (state_ == State::last_ack) {
    // Everything was taken. A FIN again (seq = rcv_nxt - 1) gets its FIN+ACK again; anything
    // else an ACK.
    if (fin && payload == 0 && ahead == -1) {
      ++counters_.fins;
      due_ |= kDueFin;
    } else {
      ++counters_.out_of_order;
      due_ |= kDueAck;
    }
    return;
  }
  if (ahead < 0) {
    // Starts before rcv_nxt: a retransmission. What it has beyond rcv_nxt is new.
    const std::uint64_t old_bytes = static_cast<std::uint64_t>(-static_cast<std::int64_t>(ahead));
    if (old_bytes >= payload) {
      ++counters_.out_of_order;
      due_ |= kDueAck;  // a duplicate: our ACK says where we are
      return;
    }
    data = data.subspan(static_cast<std::size_t>(old_bytes));
    payload -= static_cast<std::size_t>(old_bytes);
    ahead = 0;
  }
  if (ahead > 0) {
    // Past a gap: kept as a range (checked now, its bytes counted once the gap is filled), and
    // answered at once with a duplicate ACK carrying SACK blocks (RFC 2018), so that the host
    // retransmits only what is missing. A FIN out of order is left for its retransmission.
    ++counters_.out_of_order;
    due_ |= kDueAck;
    if (payload == 0 || static_cast<std::uint64_t>(ahead) + payload > kWindowBytes) return;
    const std::uint64_t begin = rcv_offset_ + static_cast<std::uint64_t>(ahead);
    if (!TcpSource::stream_matches(begin, data)) ++counters_.corrupt_segments;
    if (!add_range(begin, begin + payload)) ++counters_.ranges_full;
    return;
  }
  if (payload > 0) {
    if (!TcpSource::stream_matches(rcv_offset_, data)) ++counters_.corrupt_segments;
    ++counters_.segments;
    advance(rcv_offset_ + payload);
    due_ |= kDueAck;
  }
  if (fin && ranges_ == 0) {
    ++counters_.fins;
    rcv_nxt_ += 1;
    state_ = State::last_ack;
    due_ = kDueFin;  // the FIN+ACK acknowledges everything
  }
}

void TcpSink::advance(std::uint64_t to) {
  // The ranges the new data reaches are taken with it.
  std::size_t taken = 0;
  while (taken < ranges_ && range_[taken].begin <= to) to = std::max(to, range_[taken++].end);
  std::copy(range_.begin() + static_cast<std::ptrdiff_t>(taken), range_.begin() + static_cast<std::ptrdiff_t>(ranges_),
            range_.begin());
  ranges_ -= taken;
  counters_.bytes += to - rcv_offset_;
  rcv_nxt_ += static_cast<std::uint32_t>(to - rcv_offset_);
  rcv_offset_ = to;
}

bool TcpSink::add_range(std::uint64_t begin, std::uint64_t end) {
  // Sorted, disjoint, not touching: merge with every range [begin, end) overlaps or touches.
  std::size_t first = 0;
  while (first < ranges_ && range_[first].end < begin) ++first;
  std::size_t last = first;
  while (last < ranges_ && range_[last].begin <= end) {
    begin = std::min(begin, range_[last].begin);
    end = std::max(end, range_[last].end);
    ++last;
  }
  const std::size_t merged = last - first;  // ranges replaced by the one new range
  if (merged == 0 && ranges_ == kMaxRanges) return false;
  if (merged == 0) {
    std::copy_backward(range_.begin() + static_cast<std::ptrdiff_t>(first), range_.begin() + static_cast<std::ptrdiff_t>(ranges_),
                       range_.begin() + static_cast<std::ptrdiff_t>(ranges_ + 1));
    ++ranges_;
  } else if (merged > 1) {
    std::copy(range_.begin() + static_cast<std::ptrdiff_t>(last), range_.begin() + static_cast<std::ptrdiff_t>(ranges_),
              range_.begin() + static_cast<std::ptrdiff_t>(first + 1));
    ranges_ -= merged - 1;
  }
  range_[first] = Range{begin, end};
  latest_range_ = first;
  return true;
}

void TcpSink::open(std::span<const std::uint8_t> ip, std::span<const std::uint8_t> tcp, std::size_t data_offset) {
  ends_.ipv6 = (ip[0] >> 4) == 6;
  if (ends_.ipv6) std::memcpy(ends_.host_ipv6.bytes.data(), ip.data() + 8, 16);
  else std::memcpy(ends_.host_ipv4.bytes.data(), ip.data() + 12, 4);
  ends_.host_port = load_be16(tcp.data());
  irs_ = load_be32(tcp.data() + 4);
  rcv_nxt_ = irs_ + 1;
  rcv_offset_ = 0;
  const tcp::SynOptions options = tcp::parse_syn_options(tcp, data_offset);
  window_scaled_ = options.window_shift.has_value();
  sack_permitted_ = options.sack_permitted;
  ranges_ = 0;
  state_ = State::syn_received;
  due_ = kDueSynAck;
  ++counters_.connections;
}

std::optional<std::size_t> TcpSink::to_host(std::span<std::uint8_t> out) {
  if (due_ == 0 || state_ == State::listen) return std::nullopt;
  if (out.size() < l3_size() + kTcpHeaderSize + 40) return std::nullopt;  // room for any options
  if ((due_ & kDueSynAck) != 0) {
    due_ &= static_cast<std::uint8_t>(~kDueSynAck);
    return write_segment(out, kSyn | kAck, kInitialSequence);
  }
  if ((due_ & kDueFin) != 0) {
    due_ = 0;
    return write_segment(out, kFin | kAck, kInitialSequence + 1);
  }
  due_ = 0;
  ++counters_.acks_sent;
  // After our FIN its sequence number is taken (RFC 9293 §3.4).
  return write_segment(out, kAck, state_ == State::last_ack ? kInitialSequence + 2 : kInitialSequence + 1);
}

std::optional<std::size_t> TcpSink::reset(std::span<std::uint8_t> out) {
  if (state_ == State::listen || out.size() < l3_size() + kTcpHeaderSize + 40) return std::nullopt;
  const std::uint32_t seq = state_ == State::last_ack ? kInitialSequence + 2 : kInitialSequence + 1;
  const std::size_t n = write_segment(out, kRst | kAck, seq);
  state_ = State::listen;
  due_ = 0;
  return n;
}

std::size_t TcpSink::write_segment(std::span<std::uint8_t> out, std::uint8_t flags, std::uint32_t seq) {
  // Options: in the SYN-ACK our MSS, Window Scale (RFC 7323 §2.2) and SACK-permitted (RFC 2018
  // §2) only when the SYN carried them; in an ACK the SACK blocks, the range just changed first
  // (RFC 2018 §4), when SACK was agreed.
  std::array<std::uint8_t, 40> options{};
  std::size_t o = 0;
  if ((flags & kSyn) != 0) {
    options[o++] = tcp::kOptionMss;
    options[o++] = 4;
    store_be16(options.data() + o, ends_.ipv6 ? config_.mss_ipv6 : config_.mss_ipv4);
    o += 2;
    if (window_scaled_) {
      options[o++] = tcp::kOptionNop;
      options[o++] = tcp::kOptionWindowScale;
      options[o++] = 3;
      options[o++] = kWindowScale;
    }
    if (sack_permitted_) {
      options[o++] = tcp::kOptionNop;
      options[o++] = tcp::kOptionNop;
      options[o++] = tcp::kOptionSackPermitted;
      options[o++] = 2;
    }
  } else if (sack_permitted_ && ranges_ > 0 && (flags & kRst) == 0) {
    const std::size_t blocks = std::min(ranges_, kMaxSackBlocks);
    options[o++] = tcp::kOptionNop;
    options[o++] = tcp::kOptionNop;
    options[o++] = tcp::kOptionSack;
    options[o++] = static_cast<std::uint8_t>(2 + 8 * blocks);
    for (std::size_t b = 0; b < blocks; ++b) {
      // The latest range first, then the others from the lowest.
      const std::size_t r = b == 0 ? latest_range_ : (b <= latest_range_ ? b - 1 : b);
      const auto to_seq = [&](std::uint64_t offset) { return static_cast<std::uint32_t>(irs_ + 1 + offset); };
      store_be32(options.data() + o, to_seq(range_[r].begin));
      store_be32(options.data() + o + 4, to_seq(range_[r].end));
      o += 8;
    }
  }
  tcp::SegmentFields f;
  f.flags = flags;
  f.seq = seq;
  f.ack = rcv_nxt_;
  f.window = kWindowField;
  f.options = std::span<const std::uint8_t>(options.data(), o);
  if (!ends_.ipv6) f.ip_identification = ++ip_identification_;
  return tcp::finish(out.data(), ends_, tcp::write_headers(out.data(), ends_, f, 0), 0);
}

}  // namespace wwan::sim
