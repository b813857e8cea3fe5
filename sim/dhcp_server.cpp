#include "sim/dhcp_server.hpp"

#include <array>

namespace wwan::sim {

using dhcp4::Message;
using dhcp4::MessageType;

namespace {
constexpr eth::Ipv4Address kUnspecified{};
constexpr eth::Ipv4Address kLimitedBroadcast{{255, 255, 255, 255}};
}  // namespace

DhcpServer::DhcpServer(DhcpServerConfig config) : config_(std::move(config)) {}

// RFC 2131 §4.3.1 / §4.3.2 / Table 3: what a server puts into a DHCPOFFER / DHCPACK / DHCPNAK,
// and §4.1 where it goes: to ciaddr when the client has one, else (our clients do not set the
// broadcast bit, and a NAK always goes to broadcast) to yiaddr, which the modem frames to the
// client's MAC.
std::vector<std::uint8_t> DhcpServer::reply(const Message& request, MessageType type, const char* message) {
  Message r;
  r.op = dhcp4::kOpBootReply;
  r.xid = request.xid;
  r.flags = request.flags;
  r.giaddr = request.giaddr;
  r.chaddr = request.chaddr;
  r.type = type;
  r.server_identifier = config_.server_address;
  if (type != MessageType::nak) {
    r.yiaddr = config_.client_address;
    r.lease_time_s = config_.lease_s;
    r.subnet_mask = dhcp4::netmask_of(config_.prefix_length);
    r.routers = {config_.server_address};
    r.dns = config_.dns;
    r.interface_mtu = config_.mtu;
  } else if (message != nullptr) {
    r.message = message;
  }
  std::array<std::uint8_t, 576> dhcp{};
  const std::size_t n = dhcp4::encode_message(r, dhcp);
  eth::Ipv4Address to = config_.client_address;
  if (type == MessageType::nak || (request.flags & dhcp4::kFlagBroadcast) != 0) to = kLimitedBroadcast;
  else if (request.ciaddr != kUnspecified) to = request.ciaddr;
  std::vector<std::uint8_t> ip(eth::kIpv4MinHeaderSize + dhcp4::kUdpHeaderSize + n);
  ip.resize(dhcp4::encode_udp_ipv4(config_.server_address, to, dhcp4::kServerPort, dhcp4::kClientPort,
                                   eth::Bytes(dhcp).first(n), ++ip_identification_, ip));
  if (type == MessageType::offer) ++counters_.offers;
  if (type == MessageType::ack) ++counters_.acks;
  if (type == MessageType::nak) ++counters_.naks;
  return ip;
}

std::optional<std::vector<std::uint8_t>> DhcpServer::from_client(eth::Bytes ip, Clock::time_point now) {
  dhcp4::UdpError udp_error{};
  const auto d = dhcp4::parse_udp_ipv4(ip, udp_error);
  dhcp4::ParseError error{};
  const auto m = d && d->destination_port == dhcp4::kServerPort ? dhcp4::parse_message(d->payload, error) : std::nullopt;
  if (!m || m->op != dhcp4::kOpBootRequest) {
    ++counters_.malformed;
    return std::nullopt;
  }
  if (silent_until_ && now < *silent_until_) {
    ++counters_.ignored;
    return std::nullopt;
  }
  switch (*m->type) {
    case MessageType::discover:
      ++counters_.discovers;
      return reply(*m, MessageType::offer, nullptr);
    case MessageType::request: {
      ++counters_.requests;
      // SELECTING names the server it chose; a DHCPREQUEST for another server is not ours.
      if (m->server_identifier && *m->server_identifier != config_.server_address) {
        ++counters_.ignored;
        return std::nullopt;
      }
      const eth::Ipv4Address wanted = m->ciaddr != kUnspecified ? m->ciaddr : m->requested_address.value_or(kUnspecified);
      if (nak_next_) {
        nak_next_ = false;
        lease_until_.reset();
        return reply(*m, MessageType::nak, "lease revoked (dhcp-nak)");
      }
      if (wanted != config_.client_address) {
        lease_until_.reset();
        return reply(*m, MessageType::nak, "wrong address");
      }
      lease_until_ = now + std::chrono::seconds(config_.lease_s);
      return reply(*m, MessageType::ack, nullptr);
    }
    case MessageType::release:
      ++counters_.releases;
      lease_until_.reset();
      return std::nullopt;
    case MessageType::decline:
      ++counters_.declines;
      lease_until_.reset();
      return std::nullopt;
    default:
      ++counters_.ignored;
      return std::nullopt;
  }
}

}  // namespace wwan::sim
