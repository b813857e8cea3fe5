#include "sim/tcp_source.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>

#include "datapath/offload/checksum.hpp"
#include "sim/tcp_wire.hpp"

namespace wwan::sim {

namespace csum = offload::csum;
using offload::load_be16;
using offload::load_be32;
using offload::store_be16;
using offload::store_be32;

namespace {

using tcp::kIpProtocol;
constexpr std::size_t kTcpHeaderSize = tcp::kHeaderSize;
constexpr std::size_t kSynOptionsSize = 8;     // MSS (4) + NOP (1) + Window Scale (3)
constexpr std::uint16_t kOurWindow = 65535;    // we receive nothing but FINs
// RFC 9293 §3.7.1: the MSS to assume when the peer sends no option (536 over IPv4; RFC 8200 §5:
// 1280 - 60 over IPv6).
constexpr std::uint16_t kDefaultMssIpv4 = 536, kDefaultMssIpv6 = 1220;

// stream_byte()'s sequence, one period, from a fixed xorshift32 seed: cheap to copy from, and
// no two nearby offsets look alike.
const std::array<std::uint8_t, TcpSource::kPatternPeriod + 2048>& pattern() {
  static const auto table = [] {
    std::array<std::uint8_t, TcpSource::kPatternPeriod + 2048> t{};
    std::uint32_t x = 0x2545F491;
    for (std::size_t i = 0; i < TcpSource::kPatternPeriod; ++i) {
      x ^= x << 13;
      x ^= x >> 17;
      x ^= x << 5;
      t[i] = static_cast<std::uint8_t>(x >> 24);
    }
    // The period again after its end, so one segment (≤ 2048 bytes here; longer ones wrap) is one memcpy.
    for (std::size_t i = TcpSource::kPatternPeriod; i < t.size(); ++i) t[i] = t[i - TcpSource::kPatternPeriod];
    return t;
  }();
  return table;
}

void copy_stream(std::uint8_t* out, std::uint64_t offset, std::size_t n) {
  const auto& t = pattern();
  while (n > 0) {
    const std::size_t at = static_cast<std::size_t>(offset % TcpSource::kPatternPeriod);
    const std::size_t chunk = std::min(n, t.size() - at);
    std::memcpy(out, t.data() + at, chunk);
    out += chunk;
    offset += chunk;
    n -= chunk;
  }
}

}  // namespace

std::uint8_t TcpSource::stream_byte(std::uint64_t offset) { return pattern()[offset % kPatternPeriod]; }

bool TcpSource::stream_matches(std::uint64_t offset, std::span<const std::uint8_t> bytes) {
  const auto& t = pattern();
  while (!bytes.empty()) {
    const std::size_t at = static_cast<std::size_t>(offset % kPatternPeriod);
    const std::size_t chunk = std::min(bytes.size(), t.size() - at);
    if (std::memcmp(bytes.data(), t.data() + at, chunk) != 0) return false;
    bytes = bytes.subspan(chunk);
    offset += chunk;
  }
  return true;
}

TcpSource::TcpSource(const TcpSourceConfig& config)
    : config_(config),
      ends_{config.ipv6, config.local_ipv4, config.host_ipv4, config.local_ipv6, config.host_ipv6, config.local_port,
            config.host_port},
      syn_due_(Clock::time_point{}) {
  (void)pattern();  // built here, not on the first data segment
}

// ---- from the host ------------------------------------------------------------------------------

bool TcpSource::matches(std::span<const std::uint8_t> ip, std::size_t l3) const {
  if (ip.empty() || l3 > ip.size() || ip.size() - l3 < 4) return false;
  if (config_.ipv6) {
    if ((ip[0] >> 4) != 6 || ip.size() < 40 || ip[6] != kIpProtocol) return false;
    if (std::memcmp(ip.data() + 8, config_.host_ipv6.bytes.data(), 16) != 0 ||
        std::memcmp(ip.data() + 24, config_.local_ipv6.bytes.data(), 16) != 0)
      return false;
  } else {
    if ((ip[0] >> 4) != 4 || ip.size() < 20 || ip[9] != kIpProtocol) return false;
    if (std::memcmp(ip.data() + 12, config_.host_ipv4.bytes.data(), 4) != 0 ||
        std::memcmp(ip.data() + 16, config_.local_ipv4.bytes.data(), 4) != 0)
      return false;
  }
  return load_be16(ip.data() + l3) == config_.host_port && load_be16(ip.data() + l3 + 2) == config_.local_port;
}

void TcpSource::from_host(std::span<const std::uint8_t> ip, std::size_t l3, Clock::time_point now) {
  const std::optional<std::size_t> header = tcp::header_size(ip, l3);
  if (!header) {
    ++counters_.ignored;
    return;
  }
  const std::span<const std::uint8_t> tcp = ip.subspan(l3);
  const std::size_t data_offset = *header;
  ++counters_.acks_from_host;
  const std::uint32_t seq = load_be32(tcp.data() + 4), ack = load_be32(tcp.data() + 8);
  const std::uint8_t flags = tcp[13];
  const std::uint16_t window = load_be16(tcp.data() + 14);
  const std::size_t payload = tcp.size() - data_offset;

  if (state_ == State::closed) {
    ++counters_.ignored;
    return;
  }
  if ((flags & kRst) != 0) {  // RFC 9293 §3.10.7.3/4: a reset closes (no window check: we trust our own link)
    ++counters_.resets;
    state_ = State::closed;
    ack_due_ = false;
    return;
  }

  if (state_ == State::syn_sent) {
    // RFC 9293 §3.10.7.3: a SYN-ACK acknowledging our SYN (and nothing else).
    if ((flags & (kSyn | kAck)) != (kSyn | kAck) || ack != kInitialSequence + 1) {
      ++counters_.ignored;
      return;
    }
    const tcp::SynOptions options = tcp::parse_syn_options(tcp, data_offset);
    const std::uint16_t host_mss = options.mss.value_or(config_.ipv6 ? kDefaultMssIpv6 : kDefaultMssIpv4);
    rcv_nxt_ = seq + 1;
    host_window_shift_ = options.window_shift.value_or(0);
    host_window_ = window;  // RFC 7323 §2.2: the window of a SYN segment is never scaled
    segment_bytes_ = std::max<std::uint16_t>(1, std::min(config_.mss, host_mss));
    state_ = State::established;
    syn_due_.reset();
    ack_due_ = true;
    last_progress_ = now;
    return;
  }

  if ((flags & kAck) == 0) {
    ++counters_.ignored;
    return;
  }
  // The acknowledgment as a stream offset: how far past snd_una it reaches. Beyond what was sent
  // (the FIN counts one) it acknowledges nothing we know of: ignored (RFC 9293 §3.10.7.4).
  // After a go-back-N restart the host may acknowledge up to the highest offset ever sent.
  const std::uint64_t sent_end = snd_max_ + (fin_ever_sent_ ? 1 : 0);
  const std::uint32_t advance = ack - static_cast<std::uint32_t>(kInitialSequence + 1 + snd_una_);
  if (advance > sent_end - snd_una_) {
    ++counters_.ignored;
    return;
  }
  const std::uint64_t window_bytes = std::uint64_t{window} << host_window_shift_;  // RFC 7323 §2.3
  const bool window_changed = window_bytes != host_window_;
  host_window_ = window_bytes;
  if (advance > 0) {
    const std::uint64_t data_end = std::min(snd_una_ + advance, stream_end());
    counters_.bytes_acked += data_end > snd_una_ ? data_end - snd_una_ : 0;
    snd_una_ += advance;
    snd_nxt_ = std::max(snd_nxt_, std::min(snd_una_, stream_end()));
    duplicate_acks_ = 0;
    probe_allowed_ = false;
    last_progress_ = now;
    if (snd_una_ == stream_end() + 1) state_ = State::fin_acked;  // FIN-WAIT-2 (RFC 9293 §3.6)
  } else if (payload == 0 && (flags & (kSyn | kFin)) == 0 && !window_changed && snd_nxt_ > snd_una_ &&
             ++duplicate_acks_ == 3) {
    // RFC 5681 §3.2's signal, answered by going back to the hole (go-back-N, not SACK).
    snd_nxt_ = snd_una_;
    fin_sent_ = false;
    if (state_ == State::fin_sent) state_ = State::established;
    ++counters_.fast_retransmits;
    last_progress_ = now;
  }
  // The host's data or FIN in order (a download's receiver sends none but a FIN at the end):
  // acknowledge it.
  if (seq == rcv_nxt_ && (payload > 0 || (flags & kFin) != 0)) {
    rcv_nxt_ += static_cast<std::uint32_t>(payload) + ((flags & kFin) != 0 ? 1 : 0);
    ack_due_ = true;
    // Both FINs acknowledged once this ACK leaves: done (no TIME-WAIT: nothing reuses the pair).
    if ((flags & kFin) != 0 && state_ == State::fin_acked) state_ = State::closed;
  }
}

// ---- toward the host ------------------------------------------------------------------------------

std::uint64_t TcpSource::stream_end() const {
  return config_.byte_limit == 0 ? std::numeric_limits<std::uint64_t>::max() - 1 : config_.byte_limit;
}

bool TcpSource::data_allowed() const {
  if (state_ != State::established || snd_nxt_ >= stream_end()) return false;
  const std::uint64_t len = std::min<std::uint64_t>(segment_bytes_, stream_end() - snd_nxt_);
  if (probe_allowed_ && snd_nxt_ == snd_una_) return true;
  // Sender-side silly window avoidance (RFC 9293 §3.8.6.2.1): whole segments only, or the
  // stream's last piece.
  return snd_nxt_ + len <= snd_una_ + host_window_;
}

bool TcpSource::ready(Clock::time_point now) const {
  switch (state_) {
    case State::closed:
    case State::fin_acked: return ack_due_;
    case State::syn_sent: return syn_due_ && now >= *syn_due_;
    case State::established:
    case State::fin_sent: break;
  }
  if (ack_due_ || data_allowed()) return true;
  if (config_.byte_limit != 0 && !fin_sent_ && snd_nxt_ == stream_end()) return true;
  const std::optional<Clock::time_point> timer = next_deadline();
  return timer && now >= *timer;
}

std::optional<TcpSource::Clock::time_point> TcpSource::next_deadline() const {
  if (state_ == State::syn_sent) return syn_due_;
  if (state_ == State::closed || state_ == State::fin_acked) return std::nullopt;
  const bool outstanding = snd_nxt_ > snd_una_ || fin_sent_;
  const bool zero_window = host_window_ == 0 && snd_nxt_ < stream_end();
  if (outstanding || zero_window) return last_progress_ + kRetransmitTimeout;
  return std::nullopt;
}

std::optional<std::size_t> TcpSource::to_host(std::span<std::uint8_t> out, Clock::time_point now) {
  if ((state_ == State::closed || state_ == State::fin_acked) && !ack_due_) return std::nullopt;
  if (state_ == State::syn_sent) {
    if (!syn_due_ || now < *syn_due_ || out.size() < l3_size() + kTcpHeaderSize + kSynOptionsSize) return std::nullopt;
    if (*syn_due_ != Clock::time_point{}) ++counters_.syn_retransmits;
    syn_due_ = now + kSynRetransmit;
    return write_segment(out, kSyn, kInitialSequence, 0, 0);
  }
  // The retransmission timer (RFC 6298 §5.4, without the back-off: a lossless link with a
  // fixed 200 ms is what is tested here).
  if (const std::optional<Clock::time_point> timer = next_deadline(); timer && now >= *timer) {
    if (snd_nxt_ > snd_una_ || fin_sent_) {
      snd_nxt_ = snd_una_;
      fin_sent_ = false;
      if (state_ == State::fin_sent) state_ = State::established;
      ++counters_.timeouts;
    } else {
      probe_allowed_ = true;  // zero window, nothing outstanding: one segment as the probe (RFC 9293 §3.8.6.1)
    }
    last_progress_ = now;
  }
  if (data_allowed()) {
    const std::size_t len = static_cast<std::size_t>(std::min<std::uint64_t>(segment_bytes_, stream_end() - snd_nxt_));
    if (out.size() < l3_size() + kTcpHeaderSize + len) return std::nullopt;
    const bool last = snd_nxt_ + len == stream_end();
    const std::size_t n = write_segment(out, static_cast<std::uint8_t>(kAck | (last ? kPsh : 0)),
                                        static_cast<std::uint32_t>(kInitialSequence + 1 + snd_nxt_), snd_nxt_, len);
    if (snd_nxt_ == snd_una_) last_progress_ = now;  // the timer starts with the first byte outstanding
    snd_nxt_ += len;
    snd_max_ = std::max(snd_max_, snd_nxt_);
    probe_allowed_ = false;
    ack_due_ = false;
    ++counters_.segments_sent;
    counters_.bytes_sent += len;
    return n;
  }
  if (out.size() < l3_size() + kTcpHeaderSize) return std::nullopt;
  if (config_.byte_limit != 0 && !fin_sent_ && snd_nxt_ == stream_end() && state_ == State::established) {
    if (snd_una_ == snd_nxt_) last_progress_ = now;
    fin_sent_ = fin_ever_sent_ = true;
    state_ = State::fin_sent;
    ack_due_ = false;
    return write_segment(out, kFin | kAck, static_cast<std::uint32_t>(kInitialSequence + 1 + snd_nxt_), 0, 0);
  }
  if (ack_due_) {
    ack_due_ = false;
    const std::uint64_t seq_offset = snd_nxt_ + (fin_sent_ ? 1 : 0);
    return write_segment(out, kAck, static_cast<std::uint32_t>(kInitialSequence + 1 + seq_offset), 0, 0);
  }
  return std::nullopt;
}

std::optional<std::size_t> TcpSource::reset(std::span<std::uint8_t> out) {
  const bool open = state_ == State::established || state_ == State::fin_sent || state_ == State::fin_acked;
  state_ = State::closed;
  if (!open || out.size() < l3_size() + kTcpHeaderSize) return std::nullopt;
  return write_segment(out, kRst | kAck, static_cast<std::uint32_t>(kInitialSequence + 1 + snd_nxt_), 0, 0);
}

std::size_t TcpSource::write_segment(std::span<std::uint8_t> out, std::uint8_t flags, std::uint32_t seq,
                                     std::uint64_t offset, std::size_t payload) {
  std::array<std::uint8_t, kSynOptionsSize> options{};
  options[0] = tcp::kOptionMss;
  options[1] = 4;
  store_be16(options.data() + 2, config_.mss);
  options[4] = tcp::kOptionNop;
  options[5] = tcp::kOptionWindowScale;
  options[6] = 3;
  options[7] = kWindowScale;
  tcp::SegmentFields f;
  f.flags = flags;
  f.seq = seq;
  f.ack = rcv_nxt_;
  f.window = kOurWindow;
  if ((flags & kSyn) != 0) f.options = options;
  if (!config_.ipv6) f.ip_identification = ++ip_identification_;
  const std::size_t headers = tcp::write_headers(out.data(), ends_, f, payload);
  copy_stream(out.data() + headers, offset, payload);
  return tcp::finish(out.data(), ends_, headers, payload);
}

}  // namespace wwan::sim
