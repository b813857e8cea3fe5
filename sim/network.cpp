#include "sim/network.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <string>

#include "datapath/offload/checksum.hpp"  // RFC 1624 update16
#include "sim/tcp_source.hpp"

namespace wwan::sim {

using eth::Bytes;
using eth::fits;
using eth::load_be16;
using eth::MutableBytes;
using eth::store_be16;

namespace {

constexpr std::uint8_t kIpProtocolIcmp = 1;
constexpr std::uint8_t kIpProtocolTcp = 6;
constexpr std::uint8_t kIpProtocolUdp = 17;
constexpr std::size_t kTcpHeaderMinSize = 20;  // RFC 9293 §3.1
constexpr std::uint8_t kIcmpEchoReply = 0, kIcmpEchoRequest = 8;           // RFC 792
constexpr std::uint8_t kIcmpv6EchoRequest = 128, kIcmpv6EchoReply = 129;  // RFC 4443 §4
constexpr std::size_t kUdpHeaderSize = 8;                                 // RFC 768
constexpr std::size_t kIcmpEchoHeaderSize = 8;  // type, code, checksum, identifier, sequence
// What the far end puts into the TTL / Hop Limit of what it sends: Linux's default.
constexpr std::uint8_t kReplyHopLimit = 64;
constexpr std::size_t kMaxIpv4PacketSize = 0xFFFF;  // Total Length is 16 bits

// The IPv4 pseudo-header (RFC 768; RFC 9293 §3.1): source, destination, zero, protocol, length.
std::uint16_t ipv4_pseudo_header_sum(Bytes ip, std::uint8_t protocol, std::uint16_t upper_length) {
  std::uint64_t acc = eth::ones_complement_sum(ip.subspan(12, 8));
  acc += protocol;
  acc += upper_length;
  return eth::fold_checksum(acc);
}

// TCP / UDP checksum over IPv4 (RFC 768, RFC 9293 §3.1): pseudo-header + segment with the
// checksum field as it is. Computing: zero the field first; verifying: a correct one sums to 0.
std::uint16_t l4_checksum4(Bytes ip, std::uint8_t protocol, Bytes l4) {
  const std::uint16_t pseudo = ipv4_pseudo_header_sum(ip, protocol, static_cast<std::uint16_t>(l4.size()));
  return static_cast<std::uint16_t>(~eth::ones_complement_sum(l4, pseudo));
}
std::uint16_t udp4_checksum(Bytes ip, Bytes udp) { return l4_checksum4(ip, kIpProtocolUdp, udp); }

void swap_bytes(MutableBytes p, std::size_t a, std::size_t b, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) std::swap(p[a + i], p[b + i]);
}

bool ipv4_is_group(const std::uint8_t* dst) {
  return (dst[0] & 0xF0) == 0xE0 || (dst[0] == 255 && dst[1] == 255 && dst[2] == 255 && dst[3] == 255);
}

// ---- control-port command parsing ----

constexpr std::size_t kMaxSourcePayload = kMaxIpv4PacketSize - eth::kIpv4MinHeaderSize - kUdpHeaderSize;  // 65507

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::vector<std::string_view> split_fields(std::string_view text) {
  std::vector<std::string_view> fields;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && is_blank(text[i])) ++i;
    const std::size_t start = i;
    while (i < text.size() && !is_blank(text[i])) ++i;
    if (i > start) fields.push_back(text.substr(start, i - start));
  }
  return fields;
}

// A whole field of decimal digits no larger than `max`.
std::optional<std::uint64_t> parse_number(std::string_view field, std::uint64_t max) {
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), v);
  if (ec != std::errc{} || end != field.data() + field.size() || v > max) return std::nullopt;
  return v;
}

struct ControlCommand {
  enum class Kind : std::uint8_t { source, stop_source, drop_session, unplug, fault, tcp_source } kind;
  SourceConfig source;
  FaultRequest fault;
  std::uint16_t tcp_port = 0;       // tcp-source
  std::uint64_t tcp_bytes = 0;
};

// `fault <name> [<value>]` (network.hpp): f[0] is "fault".
std::optional<FaultRequest> parse_fault(const std::vector<std::string_view>& f, std::string& why) {
  using K = FaultRequest::Kind;
  const char* usage =
      "usage: fault stall-in | stall-out | garbage N | truncated N | oversize N | unplug-after-in N | "
      "lose-notifications on|off | control-delay MS | clear";
  if (f.size() < 2) {
    why = usage;
    return std::nullopt;
  }
  const std::string_view name = f[1];
  if (name == "stall-in" || name == "stall-out" || name == "clear") {
    if (f.size() != 2) {
      why = "fault " + std::string(name) + " takes no value";
      return std::nullopt;
    }
    return FaultRequest{name == "stall-in" ? K::stall_in : name == "stall-out" ? K::stall_out : K::clear, 0};
  }
  if (f.size() != 3) {
    why = usage;
    return std::nullopt;
  }
  if (name == "lose-notifications") {
    if (f[2] != "on" && f[2] != "off") {
      why = "fault lose-notifications is on or off";
      return std::nullopt;
    }
    return FaultRequest{K::lose_notifications, f[2] == "on" ? 1u : 0u};
  }
  if (name == "control-delay") {
    const auto ms = parse_number(f[2], kMaxControlDelayMs);
    if (!ms) {
      why = "fault control-delay is 0.." + std::to_string(kMaxControlDelayMs) + " milliseconds";
      return std::nullopt;
    }
    return FaultRequest{K::control_delay, *ms};
  }
  const K k = name == "garbage"           ? K::garbage
              : name == "truncated"       ? K::truncated
              : name == "oversize"        ? K::oversize
              : name == "unplug-after-in" ? K::unplug_after_in
                                          : K::clear;
  if (k == K::clear) {
    why = "unknown fault '" + std::string(name) + "' (" + usage + ")";
    return std::nullopt;
  }
  const auto n = parse_number(f[2], UINT32_MAX);
  if (!n || *n == 0) {
    why = "fault " + std::string(name) + " takes a count 1..4294967295";
    return std::nullopt;
  }
  return FaultRequest{k, *n};
}

// The command, or why the payload is none (the text of the "error: ..." answer).
std::optional<ControlCommand> parse_control(Bytes payload, std::string& why) {
  for (const std::uint8_t b : payload) {
    if (b < 0x09 || b > 0x7E || (b > 0x0D && b < 0x20)) {
      why = "not ASCII text";
      return std::nullopt;
    }
  }
  const std::string_view text(reinterpret_cast<const char*>(payload.data()), payload.size());
  const std::vector<std::string_view> f = split_fields(text);
  if (f.empty()) {
    why = "empty command";
    return std::nullopt;
  }
  if (f[0] == "stop-source" || f[0] == "drop-session" || f[0] == "unplug") {
    if (f.size() != 1) {
      why = std::string(f[0]) + " takes no arguments";
      return std::nullopt;
    }
    const ControlCommand::Kind k = f[0] == "stop-source"    ? ControlCommand::Kind::stop_source
                                   : f[0] == "drop-session" ? ControlCommand::Kind::drop_session
                                                            : ControlCommand::Kind::unplug;
    return ControlCommand{k, {}, {}};
  }
  if (f[0] == "fault") {
    const std::optional<FaultRequest> fault = parse_fault(f, why);
    if (!fault) return std::nullopt;
    return ControlCommand{ControlCommand::Kind::fault, {}, *fault};
  }
  if (f[0] == "source") {
    const char* usage = "usage: source <rate_bits_per_s> <payload_bytes 0-65507> <packet_limit> <destination_port 1-65535>";
    if (f.size() != 5) {
      why = usage;
      return std::nullopt;
    }
    const auto rate = parse_number(f[1], UINT64_MAX);
    const auto payload_bytes = parse_number(f[2], kMaxSourcePayload);
    const auto limit = parse_number(f[3], UINT64_MAX);
    const auto port = parse_number(f[4], 0xFFFF);
    if (!rate || !payload_bytes || !limit || !port || *port == 0) {
      why = usage;
      return std::nullopt;
    }
    ControlCommand c{ControlCommand::Kind::source, {}, {}};
    c.source.rate_bits_per_s = *rate;
    c.source.payload_bytes = static_cast<std::size_t>(*payload_bytes);
    c.source.packet_limit = *limit;
    c.source.destination_port = static_cast<std::uint16_t>(*port);
    return c;
  }
  if (f[0] == "tcp-source") {
    const char* usage = "usage: tcp-source <destination_port 1-65535> <byte_limit, 0 = no end>";
    const auto port = f.size() == 3 ? parse_number(f[1], 0xFFFF) : std::nullopt;
    const auto bytes = f.size() == 3 ? parse_number(f[2], UINT64_MAX / 2) : std::nullopt;
    if (!port || *port == 0 || !bytes) {
      why = usage;
      return std::nullopt;
    }
    ControlCommand c{ControlCommand::Kind::tcp_source, {}, {}};
    c.tcp_port = static_cast<std::uint16_t>(*port);
    c.tcp_bytes = *bytes;
    return c;
  }
  why = "unknown command (source, tcp-source, stop-source, drop-session, unplug, fault)";
  return std::nullopt;
}

}  // namespace

namespace {
TcpSinkConfig sink_config(const NetworkConfig& c) {
  TcpSinkConfig s;
  s.local_ipv4 = c.server_ipv4;
  s.local_ipv6 = c.server_ipv6;
  s.mss_ipv4 = static_cast<std::uint16_t>(c.mtu - eth::kIpv4MinHeaderSize - kTcpHeaderMinSize);
  s.mss_ipv6 = static_cast<std::uint16_t>(c.mtu - eth::kIpv6HeaderSize - kTcpHeaderMinSize);
  return s;
}
}  // namespace

Network::Network(NetworkConfig config) : config_(config), sink_(sink_config(config_)) {
  if (config_.dhcp_server) {
    DhcpServerConfig d;
    d.client_address = config_.host_ipv4;
    d.prefix_length = config_.host_ipv4_prefix_length;
    d.server_address = config_.gateway_ipv4;
    d.dns = {config_.dns_ipv4[0], config_.dns_ipv4[1]};
    d.mtu = config_.mtu;
    d.lease_s = config_.dhcp_lease_s;
    dhcp_.emplace(d);
  }
  if (config_.router_advertisements.enabled) ra_.emplace(config_.router_advertisements, config_.host_ipv6, config_.mtu);
}

bool Network::enqueue(std::vector<std::uint8_t> packet, AfterAnswer after, FaultRequest fault) {
  if (to_host_.size() >= config_.to_host_queue_packets) {
    ++counters_.dropped_queue_full;
    return false;
  }
  if (after == AfterAnswer::fault) ++faults_answering_;
  to_host_.push_back(Queued{std::move(packet), after, fault});
  return true;
}

void Network::schedule(AfterAnswer after, Clock::time_point answer_left, const FaultRequest& fault) {
  if (after == AfterAnswer::fault) {
    // At once: unlike a drop or an unplug, a fault does not take the host's stack away under
    // an answer that has already left.
    faults_due_.push_back(fault);
    return;
  }
  std::optional<Clock::time_point>& at = after == AfterAnswer::unplug ? unplug_at_ : drop_session_at_;
  if (after != AfterAnswer::none && !at) at = answer_left + kDropSessionAfterAnswer;
}

bool Network::take_drop_session_request(Clock::time_point now) {
  if (!drop_session_at_ || now < *drop_session_at_) return false;
  drop_session_at_.reset();
  return true;
}

std::optional<FaultRequest> Network::take_fault_request() {
  if (faults_due_.empty()) return std::nullopt;
  const FaultRequest f = faults_due_.front();
  faults_due_.pop_front();
  return f;
}

bool Network::take_unplug_request(Clock::time_point now) {
  if (!unplug_at_ || now < *unplug_at_) return false;
  unplug_at_.reset();
  return true;
}

void Network::from_host(std::span<const std::uint8_t> ip_packet, Clock::time_point now) {
  ++counters_.packets_from_host;
  counters_.bytes_from_host += ip_packet.size();
  // Ethernet pads short frames (46-byte minimum payload): the far end reads the IP length.
  const std::optional<Bytes> trimmed = eth::trim_to_ip_length(ip_packet);
  if (!trimmed) {
    ++counters_.malformed_from_host;
    return;
  }
  if (eth::classify_ip(*trimmed) == eth::IpClass::Ipv4)
    answer_ipv4(*trimmed, now);
  else
    answer_ipv6(*trimmed, now);
}

// ---- the control port ------------------------------------------------------------------------------

// A UDP datagram carrying `payload` answering `request` (IPv4 or IPv6, its IP header `l3` bytes):
// addresses and ports swapped, a fresh header without options, checksums computed.
void Network::answer_udp(std::span<const std::uint8_t> request, std::size_t l3, std::string_view payload,
                         AfterAnswer after, Clock::time_point now, FaultRequest fault) {
  const bool v6 = (request[0] >> 4) == 6;
  const std::size_t ip_header = v6 ? eth::kIpv6HeaderSize : eth::kIpv4MinHeaderSize;
  const std::size_t udp_length = kUdpHeaderSize + payload.size();
  std::vector<std::uint8_t> r(ip_header + udp_length, 0);
  const MutableBytes rb(r);
  if (v6) {
    rb[0] = 0x60;
    store_be16(rb, 4, static_cast<std::uint16_t>(udp_length));
    rb[6] = kIpProtocolUdp;
    rb[7] = kReplyHopLimit;
    std::memcpy(r.data() + 8, request.data() + 24, 16);
    std::memcpy(r.data() + 24, request.data() + 8, 16);
  } else {
    rb[0] = 0x45;
    store_be16(rb, 2, static_cast<std::uint16_t>(r.size()));
    store_be16(rb, 4, ++ipv4_identification_);
    store_be16(rb, 6, 0x4000);  // DF
    rb[8] = kReplyHopLimit;
    rb[9] = kIpProtocolUdp;
    std::memcpy(r.data() + 12, request.data() + 16, 4);
    std::memcpy(r.data() + 16, request.data() + 12, 4);
    store_be16(rb, 10, eth::ipv4_header_checksum(Bytes(r).subspan(0, ip_header)));
  }
  store_be16(rb, ip_header, load_be16(request, l3 + 2));
  store_be16(rb, ip_header + 2, load_be16(request, l3));
  store_be16(rb, ip_header + 4, static_cast<std::uint16_t>(udp_length));
  std::memcpy(r.data() + ip_header + kUdpHeaderSize, payload.data(), payload.size());
  const Bytes udp = Bytes(r).subspan(ip_header);
  std::uint16_t c = v6 ? eth::ipv6_upper_layer_checksum(eth::Ipv6Address::load(r, 8), eth::Ipv6Address::load(r, 24),
                                                        kIpProtocolUdp, udp)
                       : udp4_checksum(Bytes(r), udp);
  if (c == 0) c = 0xFFFF;  // RFC 768 / RFC 8200 §8.1: a computed 0 is sent as all ones
  store_be16(rb, ip_header + 6, c);
  // The drop must not wait for an answer that will never leave.
  if (!enqueue(std::move(r), after, fault)) schedule(after, now, fault);
}

std::optional<std::string> Network::dhcp_command(std::span<const std::uint8_t> payload, Clock::time_point now) {
  if (!std::all_of(payload.begin(), payload.end(), [](std::uint8_t b) { return b >= 0x09 && b <= 0x7E; }))
    return std::nullopt;
  const std::vector<std::string_view> f =
      split_fields(std::string_view(reinterpret_cast<const char*>(payload.data()), payload.size()));
  if (f.empty() || (f[0] != "dhcp-nak" && f[0] != "dhcp-silent" && f[0] != "dhcp-lease")) return std::nullopt;
  if (!dhcp_) return "error: this network has no DHCP server";
  if (f[0] == "dhcp-nak") {
    if (f.size() != 1) return "error: dhcp-nak takes no arguments";
    dhcp_->nak_next_request();
    return "ok";
  }
  const auto seconds = f.size() == 2 ? parse_number(f[1], 86400) : std::nullopt;
  if (!seconds || (f[0] == "dhcp-lease" && *seconds == 0))
    return "error: usage: " + std::string(f[0]) + (f[0] == "dhcp-lease" ? " <seconds 1-86400>" : " <seconds 0-86400>");
  if (f[0] == "dhcp-silent")
    dhcp_->silent_until(now + std::chrono::seconds(static_cast<std::int64_t>(*seconds)));
  else
    dhcp_->set_lease_seconds(static_cast<std::uint32_t>(*seconds));
  return "ok";
}

void Network::control(std::span<const std::uint8_t> ip, std::size_t l3, Clock::time_point now) {
  if (const auto answer = dhcp_command(ip.subspan(l3 + kUdpHeaderSize), now)) {
    ++(answer->rfind("error", 0) == 0 ? counters_.control_rejected : counters_.control_commands);
    answer_udp(ip, l3, *answer, AfterAnswer::none, now);
    return;
  }
  std::string why;
  std::optional<ControlCommand> c = parse_control(ip.subspan(l3 + kUdpHeaderSize), why);
  if (c && c->kind == ControlCommand::Kind::fault && faults_answering_ + faults_due_.size() >= kMaxPendingFaults) {
    why = "too many fault commands waiting to be applied (" + std::to_string(kMaxPendingFaults) + ")";
    c.reset();
  }
  if (!c) {
    ++counters_.control_rejected;
    answer_udp(ip, l3, "error: " + why, AfterAnswer::none, now);
    return;
  }
  ++counters_.control_commands;
  switch (c->kind) {
    case ControlCommand::Kind::source: start_source(c->source, now); break;
    case ControlCommand::Kind::tcp_source: start_tcp_source(ip, c->tcp_port, c->tcp_bytes); break;
    case ControlCommand::Kind::stop_source: stop_source(); break;
    case ControlCommand::Kind::drop_session: break;
    case ControlCommand::Kind::unplug: break;
    case ControlCommand::Kind::fault: break;
  }
  const AfterAnswer after = c->kind == ControlCommand::Kind::drop_session ? AfterAnswer::drop_session
                            : c->kind == ControlCommand::Kind::unplug     ? AfterAnswer::unplug
                            : c->kind == ControlCommand::Kind::fault      ? AfterAnswer::fault
                                                                          : AfterAnswer::none;
  answer_udp(ip, l3, "ok", after, now, c->fault);
}

// A packet whose header or upper-layer checksum fails counts as malformed: the far end's stack
// would discard it, and a driver that corrupts packets must show up in a counter, not as silence.
void Network::answer_ipv4(std::span<const std::uint8_t> ip, Clock::time_point now) {
  const std::size_t ihl = static_cast<std::size_t>(ip[0] & 0x0F) * 4;  // trim_to_ip_length checked it
  if (eth::ipv4_header_checksum(ip.subspan(0, ihl)) != load_be16(ip, 10)) {
    ++counters_.malformed_from_host;
    return;
  }
  // DHCP for the link's server (it parses and counts what it gets); a DHCPDISCOVER is broadcast.
  if (dhcp_ && ip[9] == kIpProtocolUdp && ip.size() >= ihl + kUdpHeaderSize && load_be16(ip, ihl + 2) == dhcp4::kServerPort) {
    if (auto reply = dhcp_->from_client(ip, now)) enqueue(std::move(*reply));
    return;
  }
  // Fragments are not reassembled (nothing a modem test sends needs it): MF or an offset.
  if ((load_be16(ip, 6) & 0x3FFF) != 0 || ipv4_is_group(ip.data() + 16)) {
    ++counters_.other_packets;
    return;
  }
  if (std::memcmp(ip.data() + 16, config_.reflector_ipv4.bytes.data(), 4) == 0 ||
      std::memcmp(ip.data() + 16, config_.reflector_peer_ipv4.bytes.data(), 4) == 0)
    return reflect(ip, ihl);
  const std::uint8_t protocol = ip[9];
  const Bytes l4 = ip.subspan(ihl);
  if (protocol == kIpProtocolTcp && sink_.matches(ip, ihl)) {
    if (l4.size() < kTcpHeaderMinSize || l4_checksum4(ip, kIpProtocolTcp, l4) != 0) {
      ++counters_.malformed_from_host;
      return;
    }
    sink_.from_host(ip, ihl);
    return;
  }
  if (protocol == kIpProtocolTcp && tcp_ && tcp_->matches(ip, ihl)) {
    if (l4.size() < kTcpHeaderMinSize || l4_checksum4(ip, kIpProtocolTcp, l4) != 0) {
      ++counters_.malformed_from_host;
      return;
    }
    tcp_->from_host(ip, ihl, now);
    return;
  }

  if (protocol == kIpProtocolIcmp) {
    if (l4.size() < kIcmpEchoHeaderSize || eth::internet_checksum(l4) != 0) {
      ++counters_.malformed_from_host;
      return;
    }
    if (l4[0] != kIcmpEchoRequest || l4[1] != 0) {
      ++counters_.other_packets;
      return;
    }
    // RFC 792: the reply is the request with the addresses swapped, type 0 and a new checksum.
    std::vector<std::uint8_t> r(ip.begin(), ip.end());
    const MutableBytes rb(r);
    swap_bytes(rb, 12, 16, 4);
    rb[8] = kReplyHopLimit;
    store_be16(rb, 4, ++ipv4_identification_);
    store_be16(rb, 10, eth::ipv4_header_checksum(Bytes(r).subspan(0, ihl)));
    rb[ihl] = kIcmpEchoReply;
    store_be16(rb, ihl + 2, 0);
    store_be16(rb, ihl + 2, eth::internet_checksum(Bytes(r).subspan(ihl)));
    ++counters_.icmp_echo_replies;
    enqueue(std::move(r));
    return;
  }

  if (protocol == kIpProtocolUdp) {
    if (l4.size() < kUdpHeaderSize || load_be16(l4, 4) != l4.size()) {
      ++counters_.malformed_from_host;
      return;
    }
    // RFC 768: checksum 0 means "not computed" over IPv4.
    if (load_be16(l4, 6) != 0 && udp4_checksum(ip, l4) != 0) {
      ++counters_.malformed_from_host;
      return;
    }
    const std::uint16_t port = load_be16(l4, 2);
    if (port == kUdpDiscardPort) {
      ++counters_.sink_packets;
      counters_.sink_bytes += ip.size();
      return;
    }
    if (port == kSimControlPort) return control(ip, ihl, now);
    if (port != kUdpEchoPort) {
      ++counters_.other_packets;
      return;
    }
    std::vector<std::uint8_t> r(ip.begin(), ip.end());
    const MutableBytes rb(r);
    swap_bytes(rb, 12, 16, 4);
    swap_bytes(rb, ihl, ihl + 2, 2);
    rb[8] = kReplyHopLimit;
    store_be16(rb, 4, ++ipv4_identification_);
    store_be16(rb, 10, eth::ipv4_header_checksum(Bytes(r).subspan(0, ihl)));
    store_be16(rb, ihl + 6, 0);
    std::uint16_t c = udp4_checksum(Bytes(r), Bytes(r).subspan(ihl));
    store_be16(rb, ihl + 6, c == 0 ? 0xFFFF : c);  // RFC 768: a computed 0 is sent as all ones
    ++counters_.udp_echo_replies;
    enqueue(std::move(r));
    return;
  }
  ++counters_.other_packets;
}

// The hairpin (network.hpp): to the reflector, back from its peer address, and the reverse. The
// IPv4 header checked out in answer_ipv4; the TCP / UDP checksum is verified here before the four
// address words change and both checksums follow them (RFC 1624 eqn. 3).
void Network::reflect(std::span<const std::uint8_t> ip, std::size_t ihl) {
  const std::uint8_t protocol = ip[9];
  const Bytes l4 = ip.subspan(ihl);
  const bool tcp = protocol == kIpProtocolTcp;
  if (!tcp && protocol != kIpProtocolUdp) {
    ++counters_.other_packets;
    return;
  }
  if (l4.size() < (tcp ? kTcpHeaderMinSize : kUdpHeaderSize) || (!tcp && load_be16(l4, 4) != l4.size())) {
    ++counters_.malformed_from_host;
    return;
  }
  const std::size_t checksum_at = ihl + (tcp ? 16 : 6);
  const bool has_checksum = tcp || load_be16(l4, 6) != 0;  // RFC 768: UDP over IPv4 may send none
  if (has_checksum && l4_checksum4(ip, protocol, l4) != 0) {
    ++counters_.malformed_from_host;
    return;
  }
  std::vector<std::uint8_t> r(ip.begin(), ip.end());
  const MutableBytes rb(r);
  const bool to_reflector = std::memcmp(ip.data() + 16, config_.reflector_ipv4.bytes.data(), 4) == 0;
  const eth::Ipv4Address& from = to_reflector ? config_.reflector_peer_ipv4 : config_.reflector_ipv4;
  std::memcpy(r.data() + 16, ip.data() + 12, 4);  // back to whoever sent it
  std::memcpy(r.data() + 12, from.bytes.data(), 4);
  std::uint16_t header_checksum = load_be16(ip, 10);
  std::uint16_t l4_checksum = load_be16(ip, checksum_at);
  for (std::size_t at = 12; at < 20; at += 2) {  // source and destination, one 16-bit word at a time
    const std::uint16_t old_word = load_be16(ip, at), new_word = load_be16(r, at);
    header_checksum = offload::csum::update16(header_checksum, old_word, new_word);
    if (has_checksum) l4_checksum = offload::csum::update16(l4_checksum, old_word, new_word);
  }
  // UDP: 0 means "no checksum"; its one's complement twin 0xFFFF is the same sum (RFC 768).
  if (!tcp && has_checksum && l4_checksum == 0) l4_checksum = 0xFFFF;
  store_be16(rb, 10, header_checksum);
  store_be16(rb, checksum_at, l4_checksum);
  ++counters_.reflected_packets;
  enqueue(std::move(r));
}

void Network::answer_ipv6(std::span<const std::uint8_t> ip, Clock::time_point now) {
  const std::uint8_t next_header = ip[6];
  const eth::Ipv6Address source = eth::Ipv6Address::load(ip, 8);
  const eth::Ipv6Address destination = eth::Ipv6Address::load(ip, 24);
  const Bytes l4 = ip.subspan(eth::kIpv6HeaderSize);
  // Router solicitations go to the network's router (sim/router_advertiser.hpp).
  if (ra_ && ipv6::is_router_solicitation(ip)) {
    if (auto advertisement = ra_->on_solicitation(ip, now)) enqueue(std::move(*advertisement));
    return;
  }
  if (next_header == kIpProtocolTcp && sink_.matches(ip, eth::kIpv6HeaderSize)) {
    if (l4.size() < kTcpHeaderMinSize || eth::ipv6_upper_layer_checksum(source, destination, next_header, l4) != 0) {
      ++counters_.malformed_from_host;
      return;
    }
    sink_.from_host(ip, eth::kIpv6HeaderSize);
    return;
  }
  if (next_header == kIpProtocolTcp && tcp_ && tcp_->matches(ip, eth::kIpv6HeaderSize)) {
    if (l4.size() < kTcpHeaderMinSize || eth::ipv6_upper_layer_checksum(source, destination, next_header, l4) != 0) {
      ++counters_.malformed_from_host;
      return;
    }
    tcp_->from_host(ip, eth::kIpv6HeaderSize, now);
    return;
  }
  // Extension headers are not walked: no test traffic carries them, and a multicast destination
  // (the host's NS, MLD reports) is nothing an echo server answers.
  if (destination.is_multicast() || (next_header != eth::kIpProtocolIcmpv6 && next_header != kIpProtocolUdp)) {
    ++counters_.other_packets;
    return;
  }
  // Both ICMPv6 and UDP over IPv6 carry a mandatory checksum (RFC 8200 §8.1).
  if (l4.size() < kUdpHeaderSize || eth::ipv6_upper_layer_checksum(source, destination, next_header, l4) != 0 ||
      (next_header == kIpProtocolUdp && (load_be16(l4, 6) == 0 || load_be16(l4, 4) != l4.size()))) {
    ++counters_.malformed_from_host;
    return;
  }

  std::vector<std::uint8_t> r(ip.begin(), ip.end());
  const MutableBytes rb(r);
  const std::size_t at = eth::kIpv6HeaderSize;
  if (next_header == eth::kIpProtocolIcmpv6) {
    if (l4[0] != kIcmpv6EchoRequest || l4[1] != 0) {
      ++counters_.other_packets;
      return;
    }
    rb[at] = kIcmpv6EchoReply;
    ++counters_.icmp_echo_replies;
  } else {
    const std::uint16_t port = load_be16(l4, 2);
    if (port == kUdpDiscardPort) {
      ++counters_.sink_packets;
      counters_.sink_bytes += ip.size();
      return;
    }
    if (port == kSimControlPort) return control(ip, at, now);
    if (port != kUdpEchoPort) {
      ++counters_.other_packets;
      return;
    }
    swap_bytes(rb, at, at + 2, 2);
    ++counters_.udp_echo_replies;
  }
  swap_bytes(rb, 8, 24, 16);
  rb[7] = kReplyHopLimit;
  const std::size_t checksum_at = at + (next_header == kIpProtocolUdp ? 6 : 2);
  store_be16(rb, checksum_at, 0);
  std::uint16_t c = eth::ipv6_upper_layer_checksum(destination, source, next_header, Bytes(r).subspan(at));
  if (c == 0 && next_header == kIpProtocolUdp) c = 0xFFFF;  // RFC 8200 §8.1
  store_be16(rb, checksum_at, c);
  enqueue(std::move(r));
}

// ---- the source --------------------------------------------------------------------------------

void Network::start_source(const SourceConfig& source, Clock::time_point now) {
  source_ = source;
  source_started_ = now;
  source_sent_ = 0;
}

void Network::stop_source() {
  source_.reset();
  if (tcp_) {
    std::vector<std::uint8_t> rst(eth::kIpv6HeaderSize + kTcpHeaderMinSize);
    if (const auto n = tcp_->reset(rst)) {
      rst.resize(*n);
      enqueue(std::move(rst));
    }
    tcp_.reset();
  }
}

// `tcp-source`: a connection toward the address the command came from (`request`, the control
// datagram: IPv4 or IPv6), from server_ipv4 / server_ipv6, port 5002. It replaces the UDP stream
// too (stop_source()), so a benchmark that starts a download measures the download alone.
void Network::start_tcp_source(std::span<const std::uint8_t> request, std::uint16_t port, std::uint64_t bytes) {
  stop_source();
  TcpSourceConfig c;
  c.ipv6 = (request[0] >> 4) == 6;
  c.host_port = port;
  c.byte_limit = bytes;
  if (c.ipv6) {
    c.local_ipv6 = config_.server_ipv6;
    c.host_ipv6 = eth::Ipv6Address::load(request, 8);
    c.mss = static_cast<std::uint16_t>(config_.mtu - eth::kIpv6HeaderSize - kTcpHeaderMinSize);
  } else {
    c.local_ipv4 = config_.server_ipv4;
    c.host_ipv4 = eth::Ipv4Address::load(request, 12);
    c.mss = static_cast<std::uint16_t>(config_.mtu - eth::kIpv4MinHeaderSize - kTcpHeaderMinSize);
  }
  tcp_.emplace(c);
}

std::size_t Network::source_packet_bytes() const {
  const std::size_t headers = eth::kIpv4MinHeaderSize + kUdpHeaderSize;
  return headers + std::min(source_->payload_bytes, kMaxIpv4PacketSize - headers);
}

// Packet k (from 0) falls due k * bits-per-packet / rate seconds after the start, so the stream
// averages the set rate whatever the caller's polling pattern, and a caller that polls late gets
// the backlog at once (a token bucket without a cap: the benchmark measures the host, and the
// host being late must not lower the offered load). Whole seconds are integer; only the
// sub-second remainder goes through a double, so the schedule does not drift over long runs.
Clock::time_point Network::source_due_time(std::uint64_t index) const {
  const std::uint64_t rate = source_->rate_bits_per_s;
  if (rate == 0) return source_started_;
  const std::uint64_t bits = index * source_packet_bytes() * 8;
  const std::uint64_t seconds = bits / rate;
  const std::uint64_t remainder = bits % rate;
  const auto fraction_ns = static_cast<std::uint64_t>(
      std::ceil(static_cast<double>(remainder) * 1e9 / static_cast<double>(rate)));
  const std::uint64_t ns = seconds * 1'000'000'000ULL + fraction_ns;
  return source_started_ + std::chrono::nanoseconds(static_cast<std::int64_t>(ns));
}

bool Network::source_due(Clock::time_point now) const {
  if (!source_) return false;
  if (source_->packet_limit != 0 && source_sent_ >= source_->packet_limit) return false;
  return now >= source_due_time(source_sent_);
}

// IPv4 + UDP from server_ipv4 to host_ipv4; the payload starts with the packet's sequence number
// (64-bit, big-endian) so a receiver can spot loss and reordering, then a counting pattern.
std::size_t Network::write_source_packet(std::span<std::uint8_t> out) {
  const std::size_t total = source_packet_bytes();
  const MutableBytes p = out.subspan(0, total);
  const std::size_t ihl = eth::kIpv4MinHeaderSize;
  std::fill(p.begin(), p.end(), std::uint8_t{0});
  p[0] = 0x45;  // version 4, IHL 5
  store_be16(p, 2, static_cast<std::uint16_t>(total));
  store_be16(p, 4, ++ipv4_identification_);
  store_be16(p, 6, 0x4000);  // DF: nothing here fragments
  p[8] = kReplyHopLimit;
  p[9] = kIpProtocolUdp;
  std::memcpy(p.data() + 12, config_.server_ipv4.bytes.data(), 4);
  std::memcpy(p.data() + 16, config_.host_ipv4.bytes.data(), 4);
  store_be16(p, 10, eth::ipv4_header_checksum(Bytes(p).subspan(0, ihl)));
  store_be16(p, ihl, source_->source_port);
  store_be16(p, ihl + 2, source_->destination_port);
  store_be16(p, ihl + 4, static_cast<std::uint16_t>(total - ihl));
  const std::size_t payload = ihl + kUdpHeaderSize;
  for (std::size_t i = 0; i < 8 && payload + i < total; ++i)
    p[payload + i] = static_cast<std::uint8_t>(source_sent_ >> (56 - 8 * i));
  for (std::size_t i = payload + 8; i < total; ++i) p[i] = static_cast<std::uint8_t>(i - payload);
  const std::uint16_t c = udp4_checksum(Bytes(p), Bytes(p).subspan(ihl));
  store_be16(p, ihl + 6, c == 0 ? 0xFFFF : c);
  return total;
}

std::optional<std::size_t> Network::to_host(std::span<std::uint8_t> out, Clock::time_point now) {
  if (ra_)
    if (auto advertisement = ra_->take_unsolicited(now)) enqueue(std::move(*advertisement));
  while (!to_host_.empty()) {
    Queued q = std::move(to_host_.front());
    to_host_.pop_front();
    if (q.after == AfterAnswer::fault) --faults_answering_;
    schedule(q.after, now, q.fault);
    const std::vector<std::uint8_t>& p = q.bytes;
    if (p.size() > out.size()) {
      ++counters_.dropped_too_large;
      continue;
    }
    std::copy(p.begin(), p.end(), out.begin());
    ++counters_.packets_to_host;
    counters_.bytes_to_host += p.size();
    return p.size();
  }
  // The sink's ACK before the source's data: an ACK is what keeps an upload going, and one is
  // due at most once per batch of segments from the host.
  if (const std::optional<std::size_t> n = sink_.to_host(out)) {
    ++counters_.packets_to_host;
    counters_.bytes_to_host += *n;
    return n;
  }
  if (tcp_) {
    const std::uint64_t sent = tcp_->counters().segments_sent;
    if (const std::optional<std::size_t> n = tcp_->to_host(out, now)) {
      counters_.tcp_source_segments += tcp_->counters().segments_sent - sent;
      ++counters_.packets_to_host;
      counters_.bytes_to_host += *n;
      return n;
    }
  }
  if (!source_due(now)) return std::nullopt;
  const std::size_t size = source_packet_bytes();
  ++counters_.source_packets;
  counters_.source_bytes += size;
  if (size > out.size()) {
    ++source_sent_;
    ++counters_.dropped_too_large;
    return std::nullopt;
  }
  write_source_packet(out);
  ++source_sent_;
  ++counters_.packets_to_host;
  counters_.bytes_to_host += size;
  return size;
}

bool Network::has_packet_for_host(Clock::time_point now) const {
  const bool ra_due = ra_ && ra_->next_deadline() && now >= *ra_->next_deadline();
  return !to_host_.empty() || source_due(now) || ra_due || sink_.ready() || (tcp_ && tcp_->ready(now));
}

std::optional<Clock::time_point> Network::next_deadline() const {
  std::optional<Clock::time_point> next = drop_session_at_;
  if (unplug_at_ && (!next || *unplug_at_ < *next)) next = unplug_at_;
  if (const auto ra = ra_ ? ra_->next_deadline() : std::nullopt; ra && (!next || *ra < *next)) next = ra;
  if (const auto t = tcp_ ? tcp_->next_deadline() : std::nullopt; t && (!next || *t < *next)) next = t;
  if (source_ && (source_->packet_limit == 0 || source_sent_ < source_->packet_limit)) {
    const Clock::time_point due = source_due_time(source_sent_);
    if (!next || due < *next) next = due;
  }
  return next;
}

}  // namespace wwan::sim
