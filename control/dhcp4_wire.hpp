// DHCPv4 on the wire (RFC 2131 messages, RFC 2132 options) and the IPv4/UDP around it: pure
// functions, spans in and structs out, so the client (control/dhcp4_client.hpp), the emulated
// server (sim/dhcp_server.hpp), the unit tests and the fuzzer call the same code.
//
// Why wwan-dp speaks DHCP at all: a TUN carries IP, not Ethernet, so the system's DHCP client
// cannot run on it, and many NCM functions (generic CDC NCM, Quectel in NCM mode, phones
// tethering, Huawei firmware whose ^DHCP? is missing) hand out their address only by DHCP on the
// link (issue 9; anchors.md §2.1).
//
// The server is untrusted input: every option is bounds-checked (code, length, then exactly that
// many bytes, in 64-bit arithmetic through eth::fits), an option whose length does not fit its
// type or the message rejects the whole message with a named ParseError, and the lists kept are
// bounded (kMaxAddressesPerOption). Repeated options are concatenated before they are read, as
// RFC 3396 §7 says a receiver must. Not read: the sname/file fields, even when option 52
// (overload) says they carry options — no NCM modem's server is known to overload, and a lease
// without its options in the options field is refused for a missing lease time, not misread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "datapath/ethernet.hpp"

namespace wwan::dhcp4 {

using eth::Bytes;
using eth::Ipv4Address;
using eth::MacAddress;
using eth::MutableBytes;

// ---- numbers ------------------------------------------------------------------------------------
inline constexpr std::uint16_t kServerPort = 67;  // RFC 2131 §4.1 (BOOTP's ports, RFC 951)
inline constexpr std::uint16_t kClientPort = 68;
inline constexpr std::uint8_t kIpProtocolUdp = 17;
inline constexpr std::size_t kUdpHeaderSize = 8;         // RFC 768
inline constexpr std::size_t kFixedFieldsSize = 236;     // op .. file, RFC 2131 §2 Figure 1
inline constexpr std::size_t kOptionsOffset = 240;       // after the magic cookie
inline constexpr std::uint32_t kMagicCookie = 0x63825363;  // 99.130.83.99, RFC 2131 §3
// RFC 1542 §2.1: a BOOTP message is at least 300 bytes; some servers and relays drop shorter
// ones, so what we encode is padded to this.
inline constexpr std::size_t kMinMessageSize = 300;
// RFC 2131 §2: every DHCP participant must accept 576-byte IP datagrams; what we send fits.
inline constexpr std::size_t kMinIpDatagramSize = 576;
inline constexpr std::uint8_t kOpBootRequest = 1, kOpBootReply = 2;
inline constexpr std::uint8_t kHtypeEthernet = 1, kHlenEthernet = 6;  // RFC 1700 hardware type 1
inline constexpr std::uint16_t kFlagBroadcast = 0x8000;               // RFC 2131 §2 Figure 2
inline constexpr std::uint8_t kDefaultTtl = 64;
// Of each address list (routers, DNS servers) this many are kept; more are ignored.
inline constexpr std::size_t kMaxAddressesPerOption = 4;

// Option codes (RFC 2132 section given).
inline constexpr std::uint8_t kOptionPad = 0;                 // §3.1
inline constexpr std::uint8_t kOptionSubnetMask = 1;          // §3.3
inline constexpr std::uint8_t kOptionRouter = 3;              // §3.5
inline constexpr std::uint8_t kOptionDomainNameServer = 6;    // §3.8
inline constexpr std::uint8_t kOptionInterfaceMtu = 26;       // §5.1
inline constexpr std::uint8_t kOptionRequestedIpAddress = 50; // §9.1
inline constexpr std::uint8_t kOptionLeaseTime = 51;          // §9.2
inline constexpr std::uint8_t kOptionOverload = 52;           // §9.3
inline constexpr std::uint8_t kOptionMessageType = 53;        // §9.6
inline constexpr std::uint8_t kOptionServerIdentifier = 54;   // §9.7
inline constexpr std::uint8_t kOptionParameterRequestList = 55;  // §9.8
inline constexpr std::uint8_t kOptionMessage = 56;            // §9.9
inline constexpr std::uint8_t kOptionMaxMessageSize = 57;     // §9.10
inline constexpr std::uint8_t kOptionRenewalTime = 58;        // §9.11 (T1)
inline constexpr std::uint8_t kOptionRebindingTime = 59;      // §9.12 (T2)
inline constexpr std::uint8_t kOptionClientIdentifier = 61;   // §9.14
inline constexpr std::uint8_t kOptionEnd = 255;               // §3.2
inline constexpr std::uint16_t kMinInterfaceMtu = 68;         // RFC 2132 §5.1: the minimum legal value
inline constexpr std::uint32_t kInfiniteLease = 0xFFFFFFFF;   // RFC 2131 §3.3

// RFC 2132 §9.6.
enum class MessageType : std::uint8_t {
  discover = 1,
  offer = 2,
  request = 3,
  decline = 4,
  ack = 5,
  nak = 6,
  release = 7,
  inform = 8,
};
// "DHCPDISCOVER", ...; "DHCP?" for a value outside the enum.
const char* to_string(MessageType t);

// One DHCP message: the fixed fields and the options wwan-dp reads or writes.
struct Message {
  std::uint8_t op = kOpBootRequest;
  std::uint8_t hops = 0;
  std::uint32_t xid = 0;
  std::uint16_t secs = 0;
  std::uint16_t flags = 0;
  Ipv4Address ciaddr, yiaddr, siaddr, giaddr;
  MacAddress chaddr;  // htype 1 / hlen 6 only

  std::optional<MessageType> type;                 // 53
  std::optional<Ipv4Address> subnet_mask;          // 1 (nullopt also when not contiguous)
  std::vector<Ipv4Address> routers;                // 3
  std::vector<Ipv4Address> dns;                    // 6
  std::optional<std::uint16_t> interface_mtu;      // 26 (nullopt when below 68)
  std::optional<Ipv4Address> requested_address;    // 50
  std::optional<std::uint32_t> lease_time_s;       // 51
  std::optional<Ipv4Address> server_identifier;    // 54
  std::vector<std::uint8_t> parameter_request_list;  // 55
  std::string message;                             // 56: why a NAK (printable ASCII only; else empty)
  std::optional<std::uint16_t> max_message_size;   // 57
  std::optional<std::uint32_t> renewal_time_s;     // 58
  std::optional<std::uint32_t> rebinding_time_s;   // 59
  std::vector<std::uint8_t> client_identifier;     // 61 (type byte first)
};

enum class ParseError : std::uint8_t {
  too_short,             // shorter than the fixed fields and the magic cookie
  not_ethernet,          // htype/hlen not 1/6
  bad_magic_cookie,      // not 99.130.83.99: plain BOOTP, or garbage
  option_truncated,      // an option's length runs past the message
  bad_option_length,     // a known option whose length does not fit its type (RFC 2132)
  no_message_type,       // option 53 missing: a BOOTP reply, not DHCP
  bad_message_type,      // option 53 outside 1..8
};
inline constexpr std::size_t kParseErrorCount = 7;
const char* to_string(ParseError e);

// `payload`: the UDP payload. nullopt + `error` when it is no DHCP message.
std::optional<Message> parse_message(Bytes payload, ParseError& error);

// Writes `m` to the start of `out`: the fixed fields, the cookie, the options that are set (in
// the order 53, 61, 50, 54, 51, 58, 59, 1, 3, 6, 26, 57, 55, 56), End, then zero padding up to
// kMinMessageSize. Returns the bytes written, or 0 when `out` is too small (nothing useful
// written).
std::size_t encode_message(const Message& m, MutableBytes out);

// A contiguous netmask's prefix length (255.255.255.0 -> 24), nullopt when not contiguous.
std::optional<std::uint8_t> prefix_length_of(const Ipv4Address& mask);
Ipv4Address netmask_of(std::uint8_t prefix_length);  // 0..32

// ---- IPv4 + UDP ----------------------------------------------------------------------------------

struct UdpDatagram {
  Ipv4Address source, destination;
  std::uint16_t source_port = 0, destination_port = 0;
  Bytes payload;  // a view into the packet
};

enum class UdpError : std::uint8_t {
  not_ipv4,            // version nibble, IHL < 5, or shorter than the header
  bad_length,          // Total Length below the header or past the packet
  bad_header_checksum,
  fragment,            // MF or a fragment offset: DHCP is never fragmented by a sane server
  not_udp,
  bad_udp_length,      // UDP length below 8 or past the IP payload
  bad_udp_checksum,    // a nonzero checksum that does not verify (RFC 768)
};
const char* to_string(UdpError e);

// An IPv4 packet carrying UDP, checked as above (trailing bytes past Total Length are ignored).
std::optional<UdpDatagram> parse_udp_ipv4(Bytes ip_packet, UdpError& error);

// IPv4 header (no options, DF clear, TTL kDefaultTtl, `identification`) + UDP header with its
// checksum + `payload`, to the start of `out`. Returns the bytes written, 0 when `out` is too small.
std::size_t encode_udp_ipv4(const Ipv4Address& source, const Ipv4Address& destination, std::uint16_t source_port,
                            std::uint16_t destination_port, Bytes payload, std::uint16_t identification,
                            MutableBytes out);

}  // namespace wwan::dhcp4
