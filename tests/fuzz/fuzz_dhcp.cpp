// libFuzzer target: the link's addressing parsers and state machines on arbitrary packets (what a
// modem's DHCP server or router could send; docs/dhcp.md).
//
// 1. The input as an IPv4/UDP packet, as a bare DHCP message, and as an IPv6 router
//    advertisement. ASan/UBSan catch any read outside the input; the checks below hold what the
//    parsers promise (bounded lists, a payload inside its packet, a known message type).
// 2. A DHCP message that parsed is encoded again and must parse to the same message type, xid,
//    addresses and lease times (the encoder's contract with the parser).
// 3. The same bytes go to a DHCP client in every state and to the RA client: nothing crashes,
//    and what they then send still parses.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "tests/fuzz/fuzz_check.hpp"

#include "control/dhcp4_client.hpp"
#include "control/dhcp4_wire.hpp"
#include "control/ipv6_ra.hpp"
#include "control/ipv6_ra_client.hpp"

namespace {

using namespace wwan;

void check_message(const dhcp4::Message& m) {
  FUZZ_CHECK(m.type.has_value());
  FUZZ_CHECK(static_cast<unsigned>(*m.type) >= 1 && static_cast<unsigned>(*m.type) <= 8);
  FUZZ_CHECK(m.routers.size() <= dhcp4::kMaxAddressesPerOption && m.dns.size() <= dhcp4::kMaxAddressesPerOption);
  if (m.interface_mtu) FUZZ_CHECK(*m.interface_mtu >= dhcp4::kMinInterfaceMtu);
  if (m.subnet_mask) FUZZ_CHECK(dhcp4::prefix_length_of(*m.subnet_mask).has_value());
  // Round trip (lists beyond 255 bytes cannot be re-encoded in one option; they are bounded here).
  std::vector<std::uint8_t> out(2048);
  const std::size_t n = dhcp4::encode_message(m, out);
  FUZZ_CHECK(n >= dhcp4::kMinMessageSize);
  dhcp4::ParseError e{};
  const auto again = dhcp4::parse_message(eth::Bytes(out).first(n), e);
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(again->type == m.type && again->xid == m.xid && again->yiaddr == m.yiaddr && again->chaddr == m.chaddr);
  FUZZ_CHECK(again->lease_time_s == m.lease_time_s && again->server_identifier == m.server_identifier);
  FUZZ_CHECK(again->routers == m.routers && again->dns == m.dns);
}

void check_sent(const std::vector<dhcp4::OutgoingPacket>& packets) {
  for (const auto& p : packets) {
    dhcp4::UdpError ue{};
    const auto udp = dhcp4::parse_udp_ipv4(p.ip, ue);
    FUZZ_CHECK(udp.has_value());
    dhcp4::ParseError pe{};
    FUZZ_CHECK(dhcp4::parse_message(udp->payload, pe).has_value());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::vector<std::uint8_t> input(data, data + size);  // exactly sized: ASan sees the end
  const eth::Bytes bytes(input);

  dhcp4::UdpError ue{};
  if (const auto udp = dhcp4::parse_udp_ipv4(bytes, ue)) {
    FUZZ_CHECK(udp->payload.data() >= input.data() && udp->payload.data() + udp->payload.size() <= input.data() + size);
    dhcp4::ParseError pe{};
    if (const auto m = dhcp4::parse_message(udp->payload, pe)) check_message(*m);
  }
  dhcp4::ParseError pe{};
  if (const auto m = dhcp4::parse_message(bytes, pe)) check_message(*m);

  ipv6::RaError re{};
  if (const auto ra = ipv6::parse_router_advertisement(bytes, re)) {
    FUZZ_CHECK(ra->prefixes.size() <= ipv6::kMaxPrefixes && ra->rdnss.size() <= ipv6::kMaxRdnssServers);
    if (ra->mtu) FUZZ_CHECK(*ra->mtu >= ipv6::kMinLinkMtu);
    FUZZ_CHECK(ipv6::is_link_local(ra->source));
  }

  // The clients: the input arrives in SELECTING, then again after a (matching-xid-free) timer run.
  const auto t0 = dhcp4::Clock::time_point{} + std::chrono::hours(1);
  dhcp4::ClientSettings s;
  s.mac = eth::MacAddress{{0x02, 0, 0, 0, 0, 2}};
  dhcp4::Client client(s);
  client.start(t0);
  check_sent(client.take_packets());
  client.on_packet(bytes, t0);
  for (int i = 0; i < 4; ++i) {
    const auto next = client.next_timer();
    if (!next) break;
    client.on_timer(*next);
    client.on_packet(bytes, *next);
  }
  check_sent(client.take_packets());
  client.release(t0 + std::chrono::hours(2));
  check_sent(client.take_packets());

  ipv6::RaClient ra_client(ipv6::RaClientSettings{});
  ra_client.start(t0);
  ra_client.on_packet(bytes, t0);
  ra_client.on_timer(t0 + std::chrono::hours(3));
  if (ra_client.config().address) FUZZ_CHECK(!ipv6::is_link_local(*ra_client.config().address));
  return 0;
}
