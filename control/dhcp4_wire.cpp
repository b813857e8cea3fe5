#include "control/dhcp4_wire.hpp"

#include <algorithm>
#include <array>

namespace wwan::dhcp4 {

using eth::fits;
using eth::load_be16;
using eth::load_be32;
using eth::store_be16;
using eth::store_be32;

const char* to_string(MessageType t) {
  switch (t) {
    case MessageType::discover: return "DHCPDISCOVER";
    case MessageType::offer: return "DHCPOFFER";
    case MessageType::request: return "DHCPREQUEST";
    case MessageType::decline: return "DHCPDECLINE";
    case MessageType::ack: return "DHCPACK";
    case MessageType::nak: return "DHCPNAK";
    case MessageType::release: return "DHCPRELEASE";
    case MessageType::inform: return "DHCPINFORM";
  }
  return "DHCP?";
}

const char* to_string(ParseError e) {
  switch (e) {
    case ParseError::too_short: return "too_short";
    case ParseError::not_ethernet: return "not_ethernet";
    case ParseError::bad_magic_cookie: return "bad_magic_cookie";
    case ParseError::option_truncated: return "option_truncated";
    case ParseError::bad_option_length: return "bad_option_length";
    case ParseError::no_message_type: return "no_message_type";
    case ParseError::bad_message_type: return "bad_message_type";
  }
  return "?";
}

const char* to_string(UdpError e) {
  switch (e) {
    case UdpError::not_ipv4: return "not_ipv4";
    case UdpError::bad_length: return "bad_length";
    case UdpError::bad_header_checksum: return "bad_header_checksum";
    case UdpError::fragment: return "fragment";
    case UdpError::not_udp: return "not_udp";
    case UdpError::bad_udp_length: return "bad_udp_length";
    case UdpError::bad_udp_checksum: return "bad_udp_checksum";
  }
  return "?";
}

std::optional<std::uint8_t> prefix_length_of(const Ipv4Address& mask) {
  const std::uint32_t m = load_be32(mask.bytes, 0);
  const std::uint32_t inverted = ~m;
  // Contiguous: the host part is 0...01...1, so host + 1 is a power of two (or 0 for /0).
  if ((inverted & (inverted + 1)) != 0) return std::nullopt;
  std::uint8_t n = 0;
  for (std::uint32_t v = m; v & 0x80000000u; v <<= 1) ++n;
  return n;
}

Ipv4Address netmask_of(std::uint8_t prefix_length) {
  const std::uint32_t m = prefix_length == 0 ? 0 : prefix_length >= 32 ? 0xFFFFFFFFu : ~(0xFFFFFFFFu >> prefix_length);
  Ipv4Address a;
  store_be32(a.bytes, 0, m);
  return a;
}

namespace {

// The options wwan-dp reads, each with the bytes of all its instances concatenated (RFC 3396).
constexpr std::array<std::uint8_t, 14> kReadOptions = {
    kOptionSubnetMask,   kOptionRouter,         kOptionDomainNameServer,     kOptionInterfaceMtu,
    kOptionRequestedIpAddress, kOptionLeaseTime, kOptionMessageType,          kOptionServerIdentifier,
    kOptionParameterRequestList, kOptionMessage, kOptionMaxMessageSize,       kOptionRenewalTime,
    kOptionRebindingTime, kOptionClientIdentifier};

std::optional<std::size_t> read_index(std::uint8_t code) {
  for (std::size_t i = 0; i < kReadOptions.size(); ++i)
    if (kReadOptions[i] == code) return i;
  return std::nullopt;
}

// A 4-byte value option: exactly 4 bytes or it is malformed.
bool read_address(const std::vector<std::uint8_t>& v, std::optional<Ipv4Address>& out) {
  if (v.empty()) return true;
  if (v.size() != 4) return false;
  out = Ipv4Address::load(v, 0);
  return true;
}
bool read_u32(const std::vector<std::uint8_t>& v, std::optional<std::uint32_t>& out) {
  if (v.empty()) return true;
  if (v.size() != 4) return false;
  out = load_be32(v, 0);
  return true;
}
bool read_u16(const std::vector<std::uint8_t>& v, std::optional<std::uint16_t>& out) {
  if (v.empty()) return true;
  if (v.size() != 2) return false;
  out = load_be16(v, 0);
  return true;
}
// A list of addresses: a nonzero multiple of 4 (RFC 2132 §3.5 "minimum length ... is 4").
bool read_addresses(const std::vector<std::uint8_t>& v, std::vector<Ipv4Address>& out) {
  if (v.empty()) return true;
  if (v.size() % 4 != 0) return false;
  for (std::size_t at = 0; at < v.size() && out.size() < kMaxAddressesPerOption; at += 4)
    out.push_back(Ipv4Address::load(v, at));
  return true;
}

// One's complement sum of the IPv4 pseudo-header (RFC 768): source, destination, zero, protocol,
// UDP length.
std::uint16_t pseudo_header_sum(const Ipv4Address& source, const Ipv4Address& destination, std::uint16_t udp_length) {
  std::uint64_t acc = eth::ones_complement_sum(source.bytes);
  acc += eth::ones_complement_sum(destination.bytes);
  acc += kIpProtocolUdp;
  acc += udp_length;
  return eth::fold_checksum(acc);
}

}  // namespace

std::optional<Message> parse_message(Bytes p, ParseError& error) {
  if (!fits(p.size(), 0, kOptionsOffset)) {
    error = ParseError::too_short;
    return std::nullopt;
  }
  Message m;
  m.op = p[0];
  if (p[1] != kHtypeEthernet || p[2] != kHlenEthernet) {
    error = ParseError::not_ethernet;
    return std::nullopt;
  }
  m.hops = p[3];
  m.xid = load_be32(p, 4);
  m.secs = load_be16(p, 8);
  m.flags = load_be16(p, 10);
  m.ciaddr = Ipv4Address::load(p, 12);
  m.yiaddr = Ipv4Address::load(p, 16);
  m.siaddr = Ipv4Address::load(p, 20);
  m.giaddr = Ipv4Address::load(p, 24);
  m.chaddr = MacAddress::load(p, 28);
  if (load_be32(p, 236) != kMagicCookie) {
    error = ParseError::bad_magic_cookie;
    return std::nullopt;
  }

  // Pass 1: walk code/length/value to End (or the end of the message: RFC 2131 requires End,
  // but a missing one loses nothing that was read), concatenating each known option's instances.
  std::array<std::vector<std::uint8_t>, kReadOptions.size()> value;
  std::size_t at = kOptionsOffset;
  while (at < p.size()) {
    const std::uint8_t code = p[at];
    if (code == kOptionPad) {
      ++at;
      continue;
    }
    if (code == kOptionEnd) break;
    if (!fits(p.size(), at, 2)) {
      error = ParseError::option_truncated;
      return std::nullopt;
    }
    const std::size_t length = p[at + 1];
    if (!fits(p.size(), at + 2, length)) {
      error = ParseError::option_truncated;
      return std::nullopt;
    }
    if (const auto i = read_index(code)) value[*i].insert(value[*i].end(), p.begin() + static_cast<std::ptrdiff_t>(at + 2),
                                                          p.begin() + static_cast<std::ptrdiff_t>(at + 2 + length));
    at += 2 + length;
  }

  // Pass 2: interpret. A concatenation is at most the message's length, so nothing here is unbounded.
  const auto v = [&](std::uint8_t code) -> const std::vector<std::uint8_t>& { return value[*read_index(code)]; };
  std::optional<Ipv4Address> mask;
  std::optional<std::uint16_t> mtu;
  bool ok = read_address(v(kOptionSubnetMask), mask) && read_addresses(v(kOptionRouter), m.routers) &&
            read_addresses(v(kOptionDomainNameServer), m.dns) && read_u16(v(kOptionInterfaceMtu), mtu) &&
            read_address(v(kOptionRequestedIpAddress), m.requested_address) &&
            read_u32(v(kOptionLeaseTime), m.lease_time_s) &&
            read_address(v(kOptionServerIdentifier), m.server_identifier) &&
            read_u16(v(kOptionMaxMessageSize), m.max_message_size) &&
            read_u32(v(kOptionRenewalTime), m.renewal_time_s) && read_u32(v(kOptionRebindingTime), m.rebinding_time_s);
  const std::vector<std::uint8_t>& type = v(kOptionMessageType);
  if (type.size() > 1) ok = false;
  if (!ok) {
    error = ParseError::bad_option_length;
    return std::nullopt;
  }
  if (type.empty()) {
    error = ParseError::no_message_type;
    return std::nullopt;
  }
  if (type[0] < 1 || type[0] > 8) {
    error = ParseError::bad_message_type;
    return std::nullopt;
  }
  m.type = static_cast<MessageType>(type[0]);
  if (mask && prefix_length_of(*mask)) m.subnet_mask = mask;  // a non-contiguous mask is no mask
  if (mtu && *mtu >= kMinInterfaceMtu) m.interface_mtu = mtu;
  m.parameter_request_list = v(kOptionParameterRequestList);
  m.client_identifier = v(kOptionClientIdentifier);
  const std::vector<std::uint8_t>& text = v(kOptionMessage);
  if (std::all_of(text.begin(), text.end(), [](std::uint8_t c) { return c >= 0x20 && c < 0x7F; }))
    m.message.assign(text.begin(), text.end());
  return m;
}

std::size_t encode_message(const Message& m, MutableBytes out) {
  // Worst case of the options below: fixed ones 3+8+6+6+6+6+6+6+6+4+4, the lists and the text.
  const std::size_t lists = 2 + 4 * std::min(m.routers.size(), kMaxAddressesPerOption) + 2 +
                            4 * std::min(m.dns.size(), kMaxAddressesPerOption) + 2 +
                            std::min<std::size_t>(m.parameter_request_list.size(), 255) + 2 +
                            std::min<std::size_t>(m.client_identifier.size(), 255) + 2 +
                            std::min<std::size_t>(m.message.size(), 255);
  const std::size_t needed = std::max(kMinMessageSize, kOptionsOffset + 61 + lists + 1);
  if (out.size() < needed) return 0;
  std::fill(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(needed), std::uint8_t{0});
  out[0] = m.op;
  out[1] = kHtypeEthernet;
  out[2] = kHlenEthernet;
  out[3] = m.hops;
  store_be32(out, 4, m.xid);
  store_be16(out, 8, m.secs);
  store_be16(out, 10, m.flags);
  std::copy(m.ciaddr.bytes.begin(), m.ciaddr.bytes.end(), out.begin() + 12);
  std::copy(m.yiaddr.bytes.begin(), m.yiaddr.bytes.end(), out.begin() + 16);
  std::copy(m.siaddr.bytes.begin(), m.siaddr.bytes.end(), out.begin() + 20);
  std::copy(m.giaddr.bytes.begin(), m.giaddr.bytes.end(), out.begin() + 24);
  std::copy(m.chaddr.bytes.begin(), m.chaddr.bytes.end(), out.begin() + 28);  // then 10 bytes of zero
  store_be32(out, 236, kMagicCookie);

  std::size_t at = kOptionsOffset;
  const auto put = [&](std::uint8_t code, Bytes data) {
    const std::size_t n = std::min<std::size_t>(data.size(), 255);
    out[at] = code;
    out[at + 1] = static_cast<std::uint8_t>(n);
    std::copy_n(data.begin(), n, out.begin() + static_cast<std::ptrdiff_t>(at + 2));
    at += 2 + n;
  };
  const auto put32 = [&](std::uint8_t code, std::uint32_t value) {
    std::array<std::uint8_t, 4> b{};
    store_be32(b, 0, value);
    put(code, b);
  };
  const auto put16 = [&](std::uint8_t code, std::uint16_t value) {
    std::array<std::uint8_t, 2> b{};
    store_be16(b, 0, value);
    put(code, b);
  };
  const auto put_list = [&](std::uint8_t code, const std::vector<Ipv4Address>& list) {
    if (list.empty()) return;
    std::array<std::uint8_t, 4 * kMaxAddressesPerOption> b{};
    const std::size_t n = std::min(list.size(), kMaxAddressesPerOption);
    for (std::size_t i = 0; i < n; ++i) std::copy(list[i].bytes.begin(), list[i].bytes.end(), b.begin() + 4 * i);
    put(code, Bytes(b).first(4 * n));
  };

  if (m.type) {
    const std::array<std::uint8_t, 1> t = {static_cast<std::uint8_t>(*m.type)};
    put(kOptionMessageType, t);
  }
  if (!m.client_identifier.empty()) put(kOptionClientIdentifier, m.client_identifier);
  if (m.requested_address) put(kOptionRequestedIpAddress, m.requested_address->bytes);
  if (m.server_identifier) put(kOptionServerIdentifier, m.server_identifier->bytes);
  if (m.lease_time_s) put32(kOptionLeaseTime, *m.lease_time_s);
  if (m.renewal_time_s) put32(kOptionRenewalTime, *m.renewal_time_s);
  if (m.rebinding_time_s) put32(kOptionRebindingTime, *m.rebinding_time_s);
  if (m.subnet_mask) put(kOptionSubnetMask, m.subnet_mask->bytes);
  put_list(kOptionRouter, m.routers);
  put_list(kOptionDomainNameServer, m.dns);
  if (m.interface_mtu) put16(kOptionInterfaceMtu, *m.interface_mtu);
  if (m.max_message_size) put16(kOptionMaxMessageSize, *m.max_message_size);
  if (!m.parameter_request_list.empty()) put(kOptionParameterRequestList, m.parameter_request_list);
  if (!m.message.empty())
    put(kOptionMessage, Bytes(reinterpret_cast<const std::uint8_t*>(m.message.data()), m.message.size()));
  out[at++] = kOptionEnd;
  return std::max(at, kMinMessageSize);
}

std::optional<UdpDatagram> parse_udp_ipv4(Bytes ip, UdpError& error) {
  if (ip.size() < eth::kIpv4MinHeaderSize || (ip[0] >> 4) != 4 || (ip[0] & 0x0F) < 5) {
    error = UdpError::not_ipv4;
    return std::nullopt;
  }
  const std::size_t ihl = static_cast<std::size_t>(ip[0] & 0x0F) * 4;
  const std::size_t total = load_be16(ip, 2);
  if (total < ihl || total > ip.size()) {
    error = UdpError::bad_length;
    return std::nullopt;
  }
  const Bytes packet = ip.first(total);
  if (eth::ipv4_header_checksum(packet.first(ihl)) != load_be16(packet, 10)) {
    error = UdpError::bad_header_checksum;
    return std::nullopt;
  }
  if ((load_be16(packet, 6) & 0x3FFF) != 0) {  // MF, or a fragment offset
    error = UdpError::fragment;
    return std::nullopt;
  }
  if (packet[9] != kIpProtocolUdp) {
    error = UdpError::not_udp;
    return std::nullopt;
  }
  const Bytes udp = packet.subspan(ihl);
  if (udp.size() < kUdpHeaderSize || load_be16(udp, 4) < kUdpHeaderSize || load_be16(udp, 4) > udp.size()) {
    error = UdpError::bad_udp_length;
    return std::nullopt;
  }
  const Bytes datagram = udp.first(load_be16(udp, 4));
  UdpDatagram d;
  d.source = Ipv4Address::load(packet, 12);
  d.destination = Ipv4Address::load(packet, 16);
  // RFC 768: 0 means "no checksum"; otherwise the sum over pseudo-header + datagram is 0xFFFF.
  if (load_be16(datagram, 6) != 0 &&
      static_cast<std::uint16_t>(~eth::ones_complement_sum(
          datagram, pseudo_header_sum(d.source, d.destination, static_cast<std::uint16_t>(datagram.size())))) != 0) {
    error = UdpError::bad_udp_checksum;
    return std::nullopt;
  }
  d.source_port = load_be16(datagram, 0);
  d.destination_port = load_be16(datagram, 2);
  d.payload = datagram.subspan(kUdpHeaderSize);
  return d;
}

std::size_t encode_udp_ipv4(const Ipv4Address& source, const Ipv4Address& destination, std::uint16_t source_port,
                            std::uint16_t destination_port, Bytes payload, std::uint16_t identification,
                            MutableBytes out) {
  const std::size_t udp_length = kUdpHeaderSize + payload.size();
  const std::size_t total = eth::kIpv4MinHeaderSize + udp_length;
  if (total > 0xFFFF || out.size() < total) return 0;
  std::fill(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(total), std::uint8_t{0});
  out[0] = 0x45;  // version 4, IHL 5
  store_be16(out, 2, static_cast<std::uint16_t>(total));
  store_be16(out, 4, identification);
  out[8] = kDefaultTtl;
  out[9] = kIpProtocolUdp;
  std::copy(source.bytes.begin(), source.bytes.end(), out.begin() + 12);
  std::copy(destination.bytes.begin(), destination.bytes.end(), out.begin() + 16);
  store_be16(out, 10, eth::ipv4_header_checksum(Bytes(out).first(eth::kIpv4MinHeaderSize)));
  const MutableBytes udp = out.subspan(eth::kIpv4MinHeaderSize, udp_length);
  store_be16(udp, 0, source_port);
  store_be16(udp, 2, destination_port);
  store_be16(udp, 4, static_cast<std::uint16_t>(udp_length));
  std::copy(payload.begin(), payload.end(), udp.begin() + kUdpHeaderSize);
  std::uint16_t c = static_cast<std::uint16_t>(
      ~eth::ones_complement_sum(udp, pseudo_header_sum(source, destination, static_cast<std::uint16_t>(udp_length))));
  if (c == 0) c = 0xFFFF;  // RFC 768: a computed 0 is sent as all ones (0 means "none")
  store_be16(udp, 6, c);
  return total;
}

}  // namespace wwan::dhcp4
