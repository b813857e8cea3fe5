// IPv6 router discovery on the wire (RFC 4861 §4.1, §4.2, §4.6; RFC 8106 RDNSS) and SLAAC
// addresses (RFC 4862, RFC 4291 Appendix A): pure functions, spans in and structs out.
//
// Why: a TUN has no link layer, so the kernel's own router discovery never sees the modem's
// router advertisements on an NCM link (and on MBIM the data path diverts them too, so that one
// place configures the TUN). The mobile /64 is a routed prefix (anchors.md §2.7: "IPv6 done
// right"); the TUN's global address is the advertised prefix + our interface identifier — the one
// the session gave (3GPP networks hand the host an IID with the PDN, TS 23.401 §5.3.1.2.2) or
// one made from our MAC.
//
// Validation follows RFC 4861 §6.1.2 (an RA failing it is discarded with a named RaError): IP
// source link-local, Hop Limit 255, correct ICMPv6 checksum, code 0, ICMPv6 length >= 16, every
// option of nonzero length inside the message. An option of a known type whose length is wrong
// for it is ignored (counted in ignored_options), the rest of the RA is used. Lists are bounded
// (kMaxPrefixes, kMaxRdnssServers); what is beyond is ignored.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "datapath/ethernet.hpp"

namespace wwan::ipv6 {

using eth::Bytes;
using eth::Ipv6Address;
using eth::MacAddress;
using eth::MutableBytes;

inline constexpr std::uint8_t kIcmpv6RouterSolicitation = 133;   // RFC 4861 §4.1
inline constexpr std::uint8_t kIcmpv6RouterAdvertisement = 134;  // RFC 4861 §4.2
inline constexpr std::uint8_t kNdOptionSourceLinkLayerAddress = 1;  // §4.6.1
inline constexpr std::uint8_t kNdOptionPrefixInformation = 3;       // §4.6.2
inline constexpr std::uint8_t kNdOptionMtu = 5;                     // §4.6.4
inline constexpr std::uint8_t kNdOptionRdnss = 25;                  // RFC 8106 §5.1
inline constexpr std::size_t kRouterSolicitationSize = 8;   // type, code, checksum, reserved
inline constexpr std::size_t kRouterAdvertisementSize = 16; // ... + hop limit, flags, lifetime, reachable, retrans
inline constexpr std::size_t kPrefixInformationSize = 32;   // option length 4
inline constexpr std::uint32_t kMinLinkMtu = 1280;          // RFC 8200 §5
inline constexpr std::uint32_t kInfiniteLifetime = 0xFFFFFFFF;
inline constexpr std::size_t kMaxPrefixes = 8;
inline constexpr std::size_t kMaxRdnssServers = 4;
inline constexpr std::uint8_t kSlaacPrefixLength = 64;  // RFC 4862 §5.5.3 (d) + RFC 4291 §2.5.1 on Ethernet

// ff02::2, the link-local all-routers group (RFC 4291 §2.7.1): where an RS goes.
constexpr Ipv6Address all_routers() { return {{0xFF, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}}; }
constexpr bool is_link_local(const Ipv6Address& a) { return a.bytes[0] == 0xFE && (a.bytes[1] & 0xC0) == 0x80; }

using InterfaceId = std::array<std::uint8_t, 8>;
// Modified EUI-64 (RFC 4291 Appendix A): MAC split by ff:fe, universal/local bit inverted.
InterfaceId interface_id_from_mac(const MacAddress& mac);
// The low 64 bits of `address`.
InterfaceId interface_id_of(const Ipv6Address& address);
// The high 64 bits of `prefix` + `iid`.
Ipv6Address with_interface_id(const Ipv6Address& prefix, const InterfaceId& iid);
// fe80::/64 + `iid`.
Ipv6Address link_local_address(const InterfaceId& iid);

struct PrefixInformation {
  Ipv6Address prefix;                 // bits past prefix_length cleared
  std::uint8_t prefix_length = 0;
  bool on_link = false;               // L
  bool autonomous = false;            // A: use it for SLAAC
  std::uint32_t valid_lifetime_s = 0;
  std::uint32_t preferred_lifetime_s = 0;
};

struct RdnssServer {
  Ipv6Address address;
  std::uint32_t lifetime_s = 0;
};

struct RouterAdvertisement {
  Ipv6Address source;                 // the router (link-local): the gateway
  Ipv6Address destination;
  std::uint8_t cur_hop_limit = 0;
  bool managed = false, other = false;  // M, O: DHCPv6 (not spoken; reported)
  std::uint16_t router_lifetime_s = 0;  // 0: not a default router
  std::uint32_t reachable_time_ms = 0, retrans_timer_ms = 0;
  std::optional<MacAddress> source_link_layer;
  std::vector<PrefixInformation> prefixes;
  std::optional<std::uint32_t> mtu;     // only values >= 1280 (RFC 8200 §5)
  std::vector<RdnssServer> rdnss;
  std::uint32_t ignored_options = 0;    // known type, wrong length; or beyond the list bounds
};

enum class RaError : std::uint8_t {
  not_ipv6,               // version, or shorter than the fixed header
  bad_length,             // Payload Length past the packet
  not_icmpv6,             // next header not 58 (extension headers are not walked: no router sends them on an RA)
  too_short,              // ICMPv6 message below 16 bytes
  not_router_advertisement,
  bad_code,
  bad_hop_limit,          // not 255: not from this link
  source_not_link_local,
  bad_checksum,
  bad_option_length,      // an option of length 0, or running past the message
};
inline constexpr std::size_t kRaErrorCount = 10;
const char* to_string(RaError e);

// `ip_packet`: a whole IPv6 packet (trailing bytes past the Payload Length are ignored).
std::optional<RouterAdvertisement> parse_router_advertisement(Bytes ip_packet, RaError& error);

// An RS (RFC 4861 §4.1) as a whole IPv6 packet from `source` to ff02::2, Hop Limit 255, with a
// Source Link-Layer Address option when `source_link_layer` is given (§4.1: MUST NOT when the
// source is ::). Returns the bytes written (48 or 56), 0 when `out` is too small.
std::size_t build_router_solicitation(const Ipv6Address& source, const std::optional<MacAddress>& source_link_layer,
                                      MutableBytes out);

// An RA as a whole IPv6 packet from ra.source to ra.destination, Hop Limit 255, with the options
// ra holds (SLLA, MTU, prefixes, one RDNSS option for all servers with the first one's
// lifetime). Returns the bytes written, 0 when `out` is too small. (The emulated routers use it.)
std::size_t build_router_advertisement(const RouterAdvertisement& ra, MutableBytes out);

// True for an IPv6 packet carrying an ICMPv6 RS directly after the fixed header (cheap: type
// only, no validation), for the emulated router to pick solicitations out of the host's traffic.
bool is_router_solicitation(Bytes ip_packet);

}  // namespace wwan::ipv6
