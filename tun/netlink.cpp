// rtnetlink builders and parsers (see netlink.hpp). libmnl does the attribute layout (lengths,
// NLA_ALIGN padding, zeroed padding bytes) and the attribute bounds checks; this file says which
// header and which attributes each message carries.
#include "tun/netlink.hpp"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/if_tun.h>

#include <cstdint>
#include <cstring>

namespace wwan::tun::rtnl {
namespace {

// Kernel structures are read and written in place; callers guarantee 4-byte alignment
// (checked) so the casts go through void* (no alignment-increasing cast for -Wcast-align).
template <typename T>
T* at(std::uint8_t* p) {
  return static_cast<T*>(static_cast<void*>(p));
}
template <typename T>
const T* at(const std::uint8_t* p) {
  return static_cast<const T*>(static_cast<const void*>(p));
}

bool aligned(const std::uint8_t* p) { return reinterpret_cast<std::uintptr_t>(p) % NLMSG_ALIGNTO == 0; }

// nlmsghdr + a zeroed family header of `header_size` bytes; nullptr if the buffer cannot hold them.
nlmsghdr* start(MutableBytes buf, std::uint16_t type, std::uint16_t flags, std::uint32_t seq,
                std::size_t header_size, void** header) {
  if (!aligned(buf.data()) || buf.size() < NLMSG_HDRLEN + NLMSG_ALIGN(header_size)) return nullptr;
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = flags;
  nlh->nlmsg_seq = seq;
  *header = mnl_nlmsg_put_extra_header(nlh, header_size);
  return nlh;
}

std::size_t address_length(std::uint8_t family) { return family == AF_INET6 ? 16 : 4; }

// Attribute table: the last attribute of each type wins, as in the kernel's nla_parse.
template <std::size_t N>
struct Attributes {
  std::array<const nlattr*, N> at{};
  const nlattr* operator[](std::size_t type) const { return type < N ? at[type] : nullptr; }
};
template <std::size_t N>
int collect(const nlattr* attr, void* data) {
  auto* table = static_cast<Attributes<N>*>(data);
  const std::uint16_t type = mnl_attr_get_type(attr);
  if (type < N) table->at[type] = attr;
  return MNL_CB_OK;
}

std::optional<std::uint32_t> u32(const nlattr* attr) {
  if (attr == nullptr || mnl_attr_validate(attr, MNL_TYPE_U32) < 0) return std::nullopt;
  return mnl_attr_get_u32(attr);
}
std::optional<std::uint8_t> u8(const nlattr* attr) {
  if (attr == nullptr || mnl_attr_validate(attr, MNL_TYPE_U8) < 0) return std::nullopt;
  return mnl_attr_get_u8(attr);
}
// A string attribute that may or may not carry its NUL; never reads past the payload.
std::string str(const nlattr* attr) {
  if (attr == nullptr) return {};
  const auto* p = static_cast<const char*>(mnl_attr_get_payload(attr));
  const std::size_t n = mnl_attr_get_payload_len(attr);
  return std::string(p, strnlen(p, n));
}
// An address attribute of exactly the family's length.
bool address(const nlattr* attr, std::uint8_t family, std::array<std::uint8_t, 16>& out) {
  const std::size_t n = address_length(family);
  if (attr == nullptr || mnl_attr_get_payload_len(attr) != n) return false;
  std::memcpy(out.data(), mnl_attr_get_payload(attr), n);
  return true;
}

// The message as an nlmsghdr with its family header inside, or nullptr.
const nlmsghdr* header_of(Bytes message, std::uint16_t type, std::size_t family_header_size) {
  if (!aligned(message.data()) || message.size() < NLMSG_HDRLEN) return nullptr;
  const auto* nlh = at<nlmsghdr>(message.data());
  if (nlh->nlmsg_len > message.size() || nlh->nlmsg_type != type) return nullptr;
  if (nlh->nlmsg_len < NLMSG_HDRLEN + family_header_size) return nullptr;
  return nlh;
}

template <std::size_t N>
bool parse_attributes(const nlmsghdr* nlh, std::size_t family_header_size, Attributes<N>& table) {
  return mnl_attr_parse(nlh, static_cast<unsigned>(NLMSG_ALIGN(family_header_size)), collect<N>, &table) >=
         MNL_CB_STOP;
}

}  // namespace

InterfaceAddress make_address(const eth::Ipv4Address& a, std::uint8_t prefix_length, std::uint32_t flags) {
  InterfaceAddress out;
  out.family = AF_INET;
  std::memcpy(out.bytes.data(), a.bytes.data(), a.bytes.size());
  out.prefix_length = prefix_length;
  out.flags = flags;
  return out;
}

InterfaceAddress make_address(const eth::Ipv6Address& a, std::uint8_t prefix_length, std::uint32_t flags) {
  InterfaceAddress out;
  out.family = AF_INET6;
  out.bytes = a.bytes;
  out.prefix_length = prefix_length;
  out.flags = flags;
  return out;
}

std::string address_to_string(std::uint8_t family, const std::array<std::uint8_t, 16>& bytes) {
  char text[INET6_ADDRSTRLEN] = {};
  if (inet_ntop(family == AF_INET6 ? AF_INET6 : AF_INET, bytes.data(), text, sizeof text) == nullptr) return "?";
  return text;
}

std::string to_string(const InterfaceAddress& a) {
  return address_to_string(a.family, a.bytes) + "/" + std::to_string(a.prefix_length);
}

std::string describe(const DefaultRoute& route, std::string_view ifname) {
  return std::string("the ") + (route.family == AF_INET6 ? "IPv6" : "IPv4") + " default route dev " +
         std::string(ifname) + " metric " + std::to_string(route.metric);
}

// ---- builders ------------------------------------------------------------------------------------

std::size_t build_set_link(MutableBytes buf, std::uint32_t seq, unsigned ifindex, std::uint32_t mtu,
                           std::optional<bool> up) {
  void* extra = nullptr;
  nlmsghdr* nlh = start(buf, RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK, seq, sizeof(ifinfomsg), &extra);
  if (nlh == nullptr) return 0;
  auto* ifi = static_cast<ifinfomsg*>(extra);
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = static_cast<int>(ifindex);
  if (up) {
    // Only the bits in ifi_change are changed: the rest of the link's flags stay as they are.
    ifi->ifi_change = IFF_UP;
    ifi->ifi_flags = *up ? unsigned{IFF_UP} : 0u;
  }
  if (mtu != 0 && !mnl_attr_put_u32_check(nlh, buf.size(), IFLA_MTU, mtu)) return 0;
  return nlh->nlmsg_len;
}

std::size_t build_get_link(MutableBytes buf, std::uint32_t seq, unsigned ifindex) {
  void* extra = nullptr;
  nlmsghdr* nlh = start(buf, RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, seq, sizeof(ifinfomsg), &extra);
  if (nlh == nullptr) return 0;
  auto* ifi = static_cast<ifinfomsg*>(extra);
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = static_cast<int>(ifindex);
  return nlh->nlmsg_len;
}

std::size_t build_get_link(MutableBytes buf, std::uint32_t seq, std::string_view name) {
  if (name.empty() || name.size() >= IFNAMSIZ) return 0;
  void* extra = nullptr;
  nlmsghdr* nlh = start(buf, RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, seq, sizeof(ifinfomsg), &extra);
  if (nlh == nullptr) return 0;
  static_cast<ifinfomsg*>(extra)->ifi_family = AF_UNSPEC;
  char text[IFNAMSIZ] = {};
  std::memcpy(text, name.data(), name.size());
  if (!mnl_attr_put_strz_check(nlh, buf.size(), IFLA_IFNAME, text)) return 0;
  return nlh->nlmsg_len;
}

std::size_t build_address(MutableBytes buf, std::uint32_t seq, Change change, unsigned ifindex,
                          const InterfaceAddress& address) {
  const bool add = change == Change::add;
  const auto flags = static_cast<std::uint16_t>(NLM_F_REQUEST | NLM_F_ACK | (add ? NLM_F_CREATE | NLM_F_EXCL : 0));
  void* extra = nullptr;
  nlmsghdr* nlh = start(buf, add ? RTM_NEWADDR : RTM_DELADDR, flags, seq, sizeof(ifaddrmsg), &extra);
  if (nlh == nullptr) return 0;
  auto* ifa = static_cast<ifaddrmsg*>(extra);
  ifa->ifa_family = address.family;
  ifa->ifa_prefixlen = address.prefix_length;
  ifa->ifa_flags = static_cast<std::uint8_t>(address.flags & 0xFFu);
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  ifa->ifa_index = ifindex;
  const std::size_t n = address_length(address.family);
  if (!mnl_attr_put_check(nlh, buf.size(), IFA_LOCAL, n, address.bytes.data()) ||
      !mnl_attr_put_check(nlh, buf.size(), IFA_ADDRESS, n, address.bytes.data()))
    return 0;
  if (address.flags != 0 && !mnl_attr_put_u32_check(nlh, buf.size(), IFA_FLAGS, address.flags)) return 0;
  return nlh->nlmsg_len;
}

std::size_t build_default_route(MutableBytes buf, std::uint32_t seq, Change change, unsigned ifindex,
                                const DefaultRoute& route) {
  const bool add = change == Change::add;
  const auto flags = static_cast<std::uint16_t>(NLM_F_REQUEST | NLM_F_ACK | (add ? NLM_F_CREATE : 0));
  void* extra = nullptr;
  nlmsghdr* nlh = start(buf, add ? RTM_NEWROUTE : RTM_DELROUTE, flags, seq, sizeof(rtmsg), &extra);
  if (nlh == nullptr) return 0;
  auto* rtm = static_cast<rtmsg*>(extra);
  rtm->rtm_family = route.family;
  rtm->rtm_dst_len = 0;  // 0.0.0.0/0 or ::/0: no RTA_DST
  rtm->rtm_table = RT_TABLE_MAIN;
  rtm->rtm_protocol = kRouteProtocol;
  // No gateway: the destination is directly on the link (what iproute2 chooses for a route
  // without "via"). The delete carries the same scope, type and protocol so that it matches only
  // the route this builder added.
  rtm->rtm_scope = RT_SCOPE_LINK;
  rtm->rtm_type = RTN_UNICAST;
  if (!mnl_attr_put_u32_check(nlh, buf.size(), RTA_OIF, ifindex) ||
      !mnl_attr_put_u32_check(nlh, buf.size(), RTA_PRIORITY, route.metric))
    return 0;
  return nlh->nlmsg_len;
}

std::size_t build_dump(MutableBytes buf, std::uint32_t seq, std::uint16_t type, std::uint8_t family) {
  std::size_t header_size = 0;
  switch (type) {
    case RTM_GETLINK: header_size = sizeof(ifinfomsg); break;
    case RTM_GETADDR: header_size = sizeof(ifaddrmsg); break;
    case RTM_GETROUTE: header_size = sizeof(rtmsg); break;
    default: return 0;
  }
  void* extra = nullptr;
  nlmsghdr* nlh = start(buf, type, NLM_F_REQUEST | NLM_F_DUMP, seq, header_size, &extra);
  if (nlh == nullptr) return 0;
  // The family is the first byte of all three headers (ifi_family, ifa_family, rtm_family).
  *static_cast<std::uint8_t*>(extra) = family;
  return nlh->nlmsg_len;
}

// ---- parsers ---------------------------------------------------------------------------------------

Bytes next_message(Bytes& rest) {
  if (rest.size() < NLMSG_HDRLEN || !aligned(rest.data())) {
    rest = {};
    return {};
  }
  const std::uint32_t len = at<nlmsghdr>(rest.data())->nlmsg_len;
  if (len < NLMSG_HDRLEN || len > rest.size()) {
    rest = {};
    return {};
  }
  const Bytes message = rest.first(len);
  const std::size_t advance = NLMSG_ALIGN(len);
  rest = advance >= rest.size() ? Bytes{} : rest.subspan(advance);
  return message;
}

std::uint16_t message_type(Bytes message) {
  if (message.size() < NLMSG_HDRLEN || !aligned(message.data())) return 0;
  return at<nlmsghdr>(message.data())->nlmsg_type;
}

std::uint32_t message_seq(Bytes message) {
  if (message.size() < NLMSG_HDRLEN || !aligned(message.data())) return 0;
  return at<nlmsghdr>(message.data())->nlmsg_seq;
}

std::optional<Acknowledgement> parse_acknowledgement(Bytes message) {
  if (message.size() < NLMSG_HDRLEN || !aligned(message.data())) return std::nullopt;
  const auto* nlh = at<nlmsghdr>(message.data());
  if (nlh->nlmsg_len > message.size()) return std::nullopt;
  const std::size_t payload = nlh->nlmsg_len - NLMSG_HDRLEN;
  if (nlh->nlmsg_type == NLMSG_DONE) {
    Acknowledgement done;
    if (payload >= sizeof(int)) {
      int error = 0;
      std::memcpy(&error, message.data() + NLMSG_HDRLEN, sizeof error);
      done.error = error < 0 ? -error : 0;
    }
    return done;
  }
  if (nlh->nlmsg_type != NLMSG_ERROR || payload < sizeof(nlmsgerr)) return std::nullopt;
  const auto* err = at<nlmsgerr>(message.data() + NLMSG_HDRLEN);
  Acknowledgement ack;
  ack.error = err->error < 0 ? -err->error : err->error;
  if ((nlh->nlmsg_flags & NLM_F_ACK_TLVS) == 0) return ack;
  // The extended-ACK attributes follow the nlmsgerr and, unless NLM_F_CAPPED, the echoed request.
  std::size_t offset = NLMSG_HDRLEN + sizeof(nlmsgerr);
  if ((nlh->nlmsg_flags & NLM_F_CAPPED) == 0) {
    if (err->msg.nlmsg_len < NLMSG_HDRLEN) return ack;
    offset += NLMSG_ALIGN(err->msg.nlmsg_len - NLMSG_HDRLEN);
  }
  if (offset >= nlh->nlmsg_len) return ack;
  Attributes<NLMSGERR_ATTR_MAX + 1> table;
  if (mnl_attr_parse_payload(message.data() + offset, nlh->nlmsg_len - offset, collect<NLMSGERR_ATTR_MAX + 1>,
                             &table) >= MNL_CB_STOP)
    ack.kernel_message = str(table[NLMSGERR_ATTR_MSG]);
  return ack;
}

std::optional<LinkInfo> parse_link(Bytes message) {
  const nlmsghdr* nlh = header_of(message, RTM_NEWLINK, sizeof(ifinfomsg));
  if (nlh == nullptr) return std::nullopt;
  const auto* ifi = at<ifinfomsg>(message.data() + NLMSG_HDRLEN);
  Attributes<IFLA_MAX + 1> table;
  if (!parse_attributes(nlh, sizeof(ifinfomsg), table)) return std::nullopt;
  LinkInfo link;
  link.ifindex = static_cast<unsigned>(ifi->ifi_index);
  link.arp_type = ifi->ifi_type;
  link.flags = ifi->ifi_flags;
  link.name = str(table[IFLA_IFNAME]);
  link.mtu = u32(table[IFLA_MTU]).value_or(0);
  if (const nlattr* linkinfo = table[IFLA_LINKINFO]) {
    Attributes<IFLA_INFO_MAX + 1> info;
    if (mnl_attr_parse_nested(linkinfo, collect<IFLA_INFO_MAX + 1>, &info) < MNL_CB_STOP) return std::nullopt;
    link.kind = str(info[IFLA_INFO_KIND]);
    if (link.kind == "tun") {
      TunLinkInfo tun;
      if (const nlattr* data = info[IFLA_INFO_DATA]) {
        Attributes<IFLA_TUN_MAX + 1> t;
        if (mnl_attr_parse_nested(data, collect<IFLA_TUN_MAX + 1>, &t) < MNL_CB_STOP) return std::nullopt;
        tun.owner = u32(t[IFLA_TUN_OWNER]);
        tun.group = u32(t[IFLA_TUN_GROUP]);
        tun.type = u8(t[IFLA_TUN_TYPE]).value_or(0);
        tun.pi = u8(t[IFLA_TUN_PI]).value_or(0) != 0;
        tun.vnet_hdr = u8(t[IFLA_TUN_VNET_HDR]).value_or(0) != 0;
        tun.persist = u8(t[IFLA_TUN_PERSIST]).value_or(0) != 0;
        tun.multi_queue = u8(t[IFLA_TUN_MULTI_QUEUE]).value_or(0) != 0;
      }
      link.tun = tun;
    }
  }
  return link;
}

std::optional<AddressInfo> parse_address(Bytes message) {
  const nlmsghdr* nlh = header_of(message, RTM_NEWADDR, sizeof(ifaddrmsg));
  if (nlh == nullptr) return std::nullopt;
  const auto* ifa = at<ifaddrmsg>(message.data() + NLMSG_HDRLEN);
  if (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6) return std::nullopt;
  Attributes<IFA_MAX + 1> table;
  if (!parse_attributes(nlh, sizeof(ifaddrmsg), table)) return std::nullopt;
  AddressInfo info;
  info.ifindex = ifa->ifa_index;
  info.scope = ifa->ifa_scope;
  info.address.family = ifa->ifa_family;
  info.address.prefix_length = ifa->ifa_prefixlen;
  info.address.flags = u32(table[IFA_FLAGS]).value_or(ifa->ifa_flags);
  // IPv4 sends IFA_LOCAL (ours) and IFA_ADDRESS (the peer on a point-to-point link); IPv6 sends
  // IFA_ADDRESS alone unless a peer was configured.
  if (!address(table[IFA_LOCAL], ifa->ifa_family, info.address.bytes) &&
      !address(table[IFA_ADDRESS], ifa->ifa_family, info.address.bytes))
    return std::nullopt;
  return info;
}

std::optional<RouteInfo> parse_route(Bytes message) {
  const nlmsghdr* nlh = header_of(message, RTM_NEWROUTE, sizeof(rtmsg));
  if (nlh == nullptr) return std::nullopt;
  const auto* rtm = at<rtmsg>(message.data() + NLMSG_HDRLEN);
  Attributes<RTA_MAX + 1> table;
  if (!parse_attributes(nlh, sizeof(rtmsg), table)) return std::nullopt;
  RouteInfo route;
  route.family = rtm->rtm_family;
  route.dst_length = rtm->rtm_dst_len;
  address(table[RTA_DST], rtm->rtm_family, route.dst);
  route.table = u32(table[RTA_TABLE]).value_or(rtm->rtm_table);
  route.protocol = rtm->rtm_protocol;
  route.scope = rtm->rtm_scope;
  route.type = rtm->rtm_type;
  route.oif = u32(table[RTA_OIF]).value_or(0);
  route.priority = u32(table[RTA_PRIORITY]).value_or(0);
  route.has_gateway = table[RTA_GATEWAY] != nullptr;
  return route;
}

}  // namespace wwan::tun::rtnl
