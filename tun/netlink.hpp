// rtnetlink messages for the TUN's configuration: pure builders and parsers.
//
// Every request wwan-dp sends to NETLINK_ROUTE is built here, by a function that writes one
// message (nlmsghdr + ifinfomsg / ifaddrmsg / rtmsg + attributes) into a caller-owned buffer and
// returns its length; every reply it reads is parsed here from plain bytes. No socket, no errno,
// no allocation in the builders: tests pin the bytes against golden arrays annotated field by
// field (tests/tun/netlink_test.cpp), and the socket shell (tun/rtnl_socket.hpp) only sends and
// reads. Names follow the kernel's uapi (linux/rtnetlink.h, linux/if_link.h, linux/if_addr.h).
//
// Byte order: netlink is in host byte order, so the golden bytes in the tests are little-endian
// and those tests are skipped on a big-endian host. Addresses are in network order (wire bytes).
//
// Buffers: the builders and parsers need the buffer 4-byte aligned (NLMSG_ALIGNTO) because the
// kernel structures are read in place; RequestBuffer provides that. A builder returns 0 (and the
// buffer content is unspecified) when the buffer is too small or misaligned.
#pragma once

#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "datapath/ethernet.hpp"

namespace wwan::tun::rtnl {

using Bytes = std::span<const std::uint8_t>;
using MutableBytes = std::span<std::uint8_t>;

// Large enough for every request built here (the largest, RTM_NEWADDR for IPv6, is 72 bytes).
struct alignas(NLMSG_ALIGNTO) RequestBuffer {
  std::array<std::uint8_t, 256> bytes{};
  MutableBytes span() { return bytes; }
};

// RTM_NEWxxx or RTM_DELxxx.
enum class Change { add, remove };

// One address on an interface, as the kernel keys it: family, address, prefix length.
struct InterfaceAddress {
  std::uint8_t family = AF_INET;           // AF_INET or AF_INET6
  std::array<std::uint8_t, 16> bytes{};    // network order; the first 4 for AF_INET
  std::uint8_t prefix_length = 0;
  std::uint32_t flags = 0;                 // IFA_F_* asked for on RTM_NEWADDR (IFA_FLAGS)
  friend bool operator==(const InterfaceAddress&, const InterfaceAddress&) = default;
};
InterfaceAddress make_address(const eth::Ipv4Address& address, std::uint8_t prefix_length, std::uint32_t flags = 0);
InterfaceAddress make_address(const eth::Ipv6Address& address, std::uint8_t prefix_length, std::uint32_t flags = 0);
// "10.64.64.2/30", "2001:db8::2/64".
std::string to_string(const InterfaceAddress& address);
// "10.64.64.2", "2001:db8::2": `bytes` holds 4 (AF_INET) or 16 (AF_INET6) bytes.
std::string address_to_string(std::uint8_t family, const std::array<std::uint8_t, 16>& bytes);

// A default route (0.0.0.0/0 or ::/0) through the interface itself, without a gateway: see
// docs/tun.md ("Default routes") for why a TUN needs no next hop.
struct DefaultRoute {
  std::uint8_t family = AF_INET;
  std::uint32_t metric = 0;  // RTA_PRIORITY
  friend bool operator==(const DefaultRoute&, const DefaultRoute&) = default;
};
// "the IPv4 default route dev wwan0 metric 100".
std::string describe(const DefaultRoute& route, std::string_view ifname);

// The rtm_protocol of the routes wwan-dp adds. RTPROT_STATIC ("installed by an administrator"
// rather than by a routing daemon) is what NetworkManager uses for configured routes too; the
// delete carries it as well, so clear() can never remove an identical route someone else added
// with another protocol (the IPv4 and IPv6 FIBs both match rtm_protocol on RTM_DELROUTE).
inline constexpr std::uint8_t kRouteProtocol = RTPROT_STATIC;

// ---- builders: each returns the message length (nlmsg_len), 0 if it does not fit ---------------
// `seq` goes into nlmsg_seq (the socket shell overwrites it with its own counter). nlmsg_pid is 0:
// the kernel is the destination.

// RTM_SETLINK: IFLA_MTU when mtu != 0; ifi_change = IFF_UP with ifi_flags = IFF_UP or 0 when
// `up` is set. NLM_F_REQUEST | NLM_F_ACK.
std::size_t build_set_link(MutableBytes buf, std::uint32_t seq, unsigned ifindex, std::uint32_t mtu,
                           std::optional<bool> up);
// RTM_GETLINK for one interface, by index (ifi_index) or by name (IFLA_IFNAME, ifi_index 0).
// NLM_F_REQUEST | NLM_F_ACK: the reply is one RTM_NEWLINK, then the ACK.
std::size_t build_get_link(MutableBytes buf, std::uint32_t seq, unsigned ifindex);
std::size_t build_get_link(MutableBytes buf, std::uint32_t seq, std::string_view name);
// RTM_NEWADDR (NLM_F_CREATE | NLM_F_EXCL, as `ip addr add`) or RTM_DELADDR. IFA_LOCAL and
// IFA_ADDRESS both carry the address (no peer), as iproute2 sends them: IFA_ADDRESS is what the
// kernel derives the prefix route from. IFA_FLAGS carries address.flags when non-zero (the u8
// ifa_flags gets its low byte, for kernels older than IFA_FLAGS).
std::size_t build_address(MutableBytes buf, std::uint32_t seq, Change change, unsigned ifindex,
                          const InterfaceAddress& address);
// RTM_NEWROUTE (NLM_F_CREATE without NLM_F_EXCL: EEXIST then means that exactly this route is
// already there, and a default route of another interface with the same metric is no conflict)
// or RTM_DELROUTE. rtm_table RT_TABLE_MAIN, rtm_protocol kRouteProtocol, rtm_scope
// RT_SCOPE_LINK (no gateway), rtm_type RTN_UNICAST, RTA_OIF, RTA_PRIORITY.
std::size_t build_default_route(MutableBytes buf, std::uint32_t seq, Change change, unsigned ifindex,
                                const DefaultRoute& route);
// A dump of every object of `type` (RTM_GETLINK, RTM_GETADDR, RTM_GETROUTE) of `family`:
// NLM_F_REQUEST | NLM_F_DUMP, the family-specific header zeroed but for its family.
std::size_t build_dump(MutableBytes buf, std::uint32_t seq, std::uint16_t type, std::uint8_t family);

// ---- parsers: one netlink message (nlmsghdr first) in, nullopt if it is not that message -----

// The next message of a datagram: returns it and advances `rest`; empty when none is left or the
// next header is inconsistent (nlmsg_len shorter than a header or longer than what is left).
Bytes next_message(Bytes& rest);
std::uint16_t message_type(Bytes message);  // nlmsg_type; 0 if `message` is shorter than a header
std::uint32_t message_seq(Bytes message);   // nlmsg_seq; 0 likewise

// NLMSG_ERROR: error is a positive errno, 0 for an ACK. kernel_message is NLMSGERR_ATTR_MSG
// (the extended ACK text, e.g. "ipv4: Address already assigned."), empty when absent.
// NLMSG_DONE of a dump is parsed too (its optional int is the dump's error).
struct Acknowledgement {
  int error = 0;
  std::string kernel_message;
};
std::optional<Acknowledgement> parse_acknowledgement(Bytes message);

// IFLA_LINKINFO -> IFLA_INFO_KIND "tun" -> IFLA_INFO_DATA (drivers/net/tun.c tun_fill_info).
struct TunLinkInfo {
  std::optional<std::uint32_t> owner;  // IFLA_TUN_OWNER: absent = no owner (anyone may attach)
  std::optional<std::uint32_t> group;  // IFLA_TUN_GROUP: likewise
  std::uint8_t type = 0;               // IFLA_TUN_TYPE: IFF_TUN (1) or IFF_TAP (2)
  bool pi = false;                     // IFLA_TUN_PI
  bool vnet_hdr = false;               // IFLA_TUN_VNET_HDR
  bool persist = false;                // IFLA_TUN_PERSIST
  bool multi_queue = false;            // IFLA_TUN_MULTI_QUEUE
};
// RTM_NEWLINK.
struct LinkInfo {
  unsigned ifindex = 0;         // ifi_index
  std::uint16_t arp_type = 0;   // ifi_type: ARPHRD_NONE for a TUN, ARPHRD_ETHER for a TAP or a NIC
  std::uint32_t flags = 0;      // ifi_flags: IFF_UP, IFF_RUNNING...
  std::string name;             // IFLA_IFNAME
  std::uint32_t mtu = 0;        // IFLA_MTU
  std::string kind;             // IFLA_INFO_KIND ("tun", "veth"...); empty for a device without
                                // rtnl_link_ops (a physical NIC, lo)
  std::optional<TunLinkInfo> tun;  // set when kind is "tun"
};
std::optional<LinkInfo> parse_link(Bytes message);

// RTM_NEWADDR: the address is IFA_LOCAL, or IFA_ADDRESS when there is no IFA_LOCAL (IPv6);
// flags are IFA_FLAGS when present, else ifa_flags.
struct AddressInfo {
  unsigned ifindex = 0;
  InterfaceAddress address;
  std::uint8_t scope = 0;  // ifa_scope: RT_SCOPE_UNIVERSE, RT_SCOPE_LINK (fe80::/10)...
};
std::optional<AddressInfo> parse_address(Bytes message);

// RTM_NEWROUTE.
struct RouteInfo {
  std::uint8_t family = 0;
  std::uint8_t dst_length = 0;
  std::array<std::uint8_t, 16> dst{};  // RTA_DST (zero when absent: the default route)
  std::uint32_t table = 0;             // RTA_TABLE, else rtm_table
  std::uint8_t protocol = 0;           // rtm_protocol
  std::uint8_t scope = 0;              // rtm_scope
  std::uint8_t type = 0;               // rtm_type
  unsigned oif = 0;                    // RTA_OIF
  std::uint32_t priority = 0;          // RTA_PRIORITY (the metric)
  bool has_gateway = false;            // RTA_GATEWAY present
};
std::optional<RouteInfo> parse_route(Bytes message);

}  // namespace wwan::tun::rtnl
