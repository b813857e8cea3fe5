// The rtnetlink messages, pure: every request wwan-dp sends pinned to golden bytes annotated field
// by field (uapi linux/netlink.h, rtnetlink.h, if_link.h, if_addr.h), and the parsers fed
// kernel-shaped replies, truncated ones and the extended ACK. Netlink is in host byte order: the
// golden bytes are little-endian, so these tests skip on a big-endian host.
#include "tun/netlink.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/if.h>
#include <linux/if_arp.h>
#include <linux/if_tun.h>

#include <bit>
#include <cstdint>
#include <string>
#include <vector>

#include "tests/support/hex.hpp"

namespace wwan::tun::rtnl {
namespace {

using ByteVector = std::vector<std::uint8_t>;

using wwan::test::hex;

ByteVector built(const RequestBuffer& buf, std::size_t length) {
  return ByteVector(buf.bytes.begin(), buf.bytes.begin() + static_cast<std::ptrdiff_t>(length));
}

// A received datagram: aligned like the socket's buffer.
struct Received {
  alignas(NLMSG_ALIGNTO) std::array<std::uint8_t, 512> bytes{};
  std::size_t size = 0;
  explicit Received(const ByteVector& v) : size(v.size()) { std::copy(v.begin(), v.end(), bytes.begin()); }
  Bytes span() const { return Bytes(bytes.data(), size); }
};

class Golden : public ::testing::Test {
 protected:
  void SetUp() override {
    if constexpr (std::endian::native != std::endian::little) GTEST_SKIP() << "golden bytes are little-endian";
  }
};

const eth::Ipv4Address k10_64_64_2{{10, 64, 64, 2}};
const eth::Ipv6Address k2001_db8_1__2{{0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}};

// ---- requests ---------------------------------------------------------------------------------

TEST_F(Golden, SetLinkUpWithMtu) {
  RequestBuffer buf;
  const std::size_t n = build_set_link(buf.span(), 1, 7, 1500, true);
  EXPECT_EQ(built(buf, n), hex(
      "28 00 00 00"   // nlmsg_len 40
      "13 00"         // nlmsg_type RTM_SETLINK (19)
      "05 00"         // nlmsg_flags NLM_F_REQUEST | NLM_F_ACK
      "01 00 00 00"   // nlmsg_seq 1
      "00 00 00 00"   // nlmsg_pid 0 (to the kernel)
      "00"            // ifi_family AF_UNSPEC
      "00"            // __ifi_pad
      "00 00"         // ifi_type (ignored on a request)
      "07 00 00 00"   // ifi_index 7
      "01 00 00 00"   // ifi_flags IFF_UP
      "01 00 00 00"   // ifi_change IFF_UP: only this bit changes
      "08 00 04 00"   // nla_len 8, nla_type IFLA_MTU (4)
      "dc 05 00 00"   // 1500
  ));
}

TEST_F(Golden, SetLinkDownKeepsTheMtu) {
  RequestBuffer buf;
  const std::size_t n = build_set_link(buf.span(), 2, 7, 0, false);
  EXPECT_EQ(built(buf, n), hex(
      "20 00 00 00"   // nlmsg_len 32: no IFLA_MTU
      "13 00"         // RTM_SETLINK
      "05 00"         // NLM_F_REQUEST | NLM_F_ACK
      "02 00 00 00"   // nlmsg_seq 2
      "00 00 00 00"   // nlmsg_pid
      "00 00 00 00"   // ifi_family AF_UNSPEC, pad, ifi_type
      "07 00 00 00"   // ifi_index 7
      "00 00 00 00"   // ifi_flags: IFF_UP cleared...
      "01 00 00 00"   // ifi_change IFF_UP: ...and only it
  ));
}

TEST_F(Golden, GetLinkByNameAndByIndex) {
  RequestBuffer buf;
  std::size_t n = build_get_link(buf.span(), 3, std::string_view("wwan0"));
  EXPECT_EQ(built(buf, n), hex(
      "2c 00 00 00"   // nlmsg_len 44
      "12 00"         // nlmsg_type RTM_GETLINK (18)
      "05 00"         // NLM_F_REQUEST | NLM_F_ACK (one link, not a dump)
      "03 00 00 00"   // nlmsg_seq 3
      "00 00 00 00"   // nlmsg_pid
      "00 00 00 00"   // ifi_family AF_UNSPEC, pad, ifi_type
      "00 00 00 00"   // ifi_index 0: by name
      "00 00 00 00"   // ifi_flags
      "00 00 00 00"   // ifi_change
      "0a 00 03 00"   // nla_len 10, IFLA_IFNAME (3)
      "77 77 61 6e 30 00"  // "wwan0" NUL
      "00 00"         // NLA_ALIGN padding
  ));
  n = build_get_link(buf.span(), 4, 7u);
  EXPECT_EQ(built(buf, n), hex(
      "20 00 00 00"   // nlmsg_len 32
      "12 00 05 00"   // RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK
      "04 00 00 00"   // nlmsg_seq 4
      "00 00 00 00"   // nlmsg_pid
      "00 00 00 00"   // ifi_family, pad, ifi_type
      "07 00 00 00"   // ifi_index 7
      "00 00 00 00 00 00 00 00"  // ifi_flags, ifi_change
  ));
}

TEST_F(Golden, AddIpv4Address) {
  RequestBuffer buf;
  const std::size_t n = build_address(buf.span(), 5, Change::add, 7, make_address(k10_64_64_2, 30));
  EXPECT_EQ(built(buf, n), hex(
      "28 00 00 00"   // nlmsg_len 40
      "14 00"         // nlmsg_type RTM_NEWADDR (20)
      "05 06"         // NLM_F_REQUEST | NLM_F_ACK | NLM_F_EXCL (0x200) | NLM_F_CREATE (0x400)
      "05 00 00 00"   // nlmsg_seq 5
      "00 00 00 00"   // nlmsg_pid
      "02"            // ifa_family AF_INET
      "1e"            // ifa_prefixlen 30
      "00"            // ifa_flags
      "00"            // ifa_scope RT_SCOPE_UNIVERSE
      "07 00 00 00"   // ifa_index 7
      "08 00 02 00"   // nla_len 8, IFA_LOCAL (2): our address
      "0a 40 40 02"   // 10.64.64.2
      "08 00 01 00"   // nla_len 8, IFA_ADDRESS (1): the same (no peer): the prefix route's base
      "0a 40 40 02"   // 10.64.64.2
  ));
}

TEST_F(Golden, AddIpv6AddressWithoutDad) {
  RequestBuffer buf;
  const std::size_t n = build_address(buf.span(), 6, Change::add, 7, make_address(k2001_db8_1__2, 64, IFA_F_NODAD));
  EXPECT_EQ(built(buf, n), hex(
      "48 00 00 00"   // nlmsg_len 72
      "14 00"         // RTM_NEWADDR
      "05 06"         // NLM_F_REQUEST | NLM_F_ACK | NLM_F_EXCL | NLM_F_CREATE
      "06 00 00 00"   // nlmsg_seq 6
      "00 00 00 00"   // nlmsg_pid
      "0a"            // ifa_family AF_INET6 (10)
      "40"            // ifa_prefixlen 64
      "02"            // ifa_flags IFA_F_NODAD (low byte of IFA_FLAGS, for old kernels)
      "00"            // ifa_scope RT_SCOPE_UNIVERSE
      "07 00 00 00"   // ifa_index 7
      "14 00 02 00"   // nla_len 20, IFA_LOCAL
      "20 01 0d b8 00 01 00 00 00 00 00 00 00 00 00 02"  // 2001:db8:1::2
      "14 00 01 00"   // nla_len 20, IFA_ADDRESS
      "20 01 0d b8 00 01 00 00 00 00 00 00 00 00 00 02"  // 2001:db8:1::2
      "08 00 08 00"   // nla_len 8, IFA_FLAGS (8)
      "02 00 00 00"   // IFA_F_NODAD
  ));
}

TEST_F(Golden, RemoveIpv4Address) {
  RequestBuffer buf;
  const std::size_t n = build_address(buf.span(), 7, Change::remove, 7, make_address(k10_64_64_2, 30));
  EXPECT_EQ(built(buf, n), hex(
      "28 00 00 00"   // nlmsg_len 40
      "15 00"         // nlmsg_type RTM_DELADDR (21)
      "05 00"         // NLM_F_REQUEST | NLM_F_ACK
      "07 00 00 00"   // nlmsg_seq 7
      "00 00 00 00"   // nlmsg_pid
      "02 1e 00 00"   // AF_INET, /30, ifa_flags 0, RT_SCOPE_UNIVERSE
      "07 00 00 00"   // ifa_index 7
      "08 00 02 00 0a 40 40 02"  // IFA_LOCAL 10.64.64.2
      "08 00 01 00 0a 40 40 02"  // IFA_ADDRESS 10.64.64.2
  ));
}

TEST_F(Golden, AddIpv4DefaultRoute) {
  RequestBuffer buf;
  const std::size_t n = build_default_route(buf.span(), 8, Change::add, 7, DefaultRoute{AF_INET, 100});
  EXPECT_EQ(built(buf, n), hex(
      "2c 00 00 00"   // nlmsg_len 44
      "18 00"         // nlmsg_type RTM_NEWROUTE (24)
      "05 04"         // NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE, no NLM_F_EXCL
      "08 00 00 00"   // nlmsg_seq 8
      "00 00 00 00"   // nlmsg_pid
      "02"            // rtm_family AF_INET
      "00"            // rtm_dst_len 0: the default route, no RTA_DST
      "00"            // rtm_src_len
      "00"            // rtm_tos
      "fe"            // rtm_table RT_TABLE_MAIN (254)
      "04"            // rtm_protocol RTPROT_STATIC
      "fd"            // rtm_scope RT_SCOPE_LINK (253): no gateway
      "01"            // rtm_type RTN_UNICAST
      "00 00 00 00"   // rtm_flags
      "08 00 04 00"   // nla_len 8, RTA_OIF (4)
      "07 00 00 00"   // ifindex 7
      "08 00 06 00"   // nla_len 8, RTA_PRIORITY (6): the metric
      "64 00 00 00"   // 100
  ));
}

TEST_F(Golden, RemoveIpv6DefaultRoute) {
  RequestBuffer buf;
  const std::size_t n = build_default_route(buf.span(), 9, Change::remove, 7, DefaultRoute{AF_INET6, 1024});
  EXPECT_EQ(built(buf, n), hex(
      "2c 00 00 00"   // nlmsg_len 44
      "19 00"         // nlmsg_type RTM_DELROUTE (25)
      "05 00"         // NLM_F_REQUEST | NLM_F_ACK
      "09 00 00 00"   // nlmsg_seq 9
      "00 00 00 00"   // nlmsg_pid
      "0a 00 00 00"   // rtm_family AF_INET6, dst_len 0, src_len 0, tos 0
      "fe 04 fd 01"   // RT_TABLE_MAIN, RTPROT_STATIC, RT_SCOPE_LINK, RTN_UNICAST: match only ours
      "00 00 00 00"   // rtm_flags
      "08 00 04 00 07 00 00 00"  // RTA_OIF 7
      "08 00 06 00 00 04 00 00"  // RTA_PRIORITY 1024
  ));
}

TEST_F(Golden, DumpAddresses) {
  RequestBuffer buf;
  const std::size_t n = build_dump(buf.span(), 10, RTM_GETADDR, AF_INET6);
  EXPECT_EQ(built(buf, n), hex(
      "18 00 00 00"   // nlmsg_len 24
      "16 00"         // nlmsg_type RTM_GETADDR (22)
      "01 03"         // NLM_F_REQUEST | NLM_F_DUMP (NLM_F_ROOT | NLM_F_MATCH = 0x300)
      "0a 00 00 00"   // nlmsg_seq 10
      "00 00 00 00"   // nlmsg_pid
      "0a 00 00 00"   // ifa_family AF_INET6, prefixlen, flags, scope
      "00 00 00 00"   // ifa_index 0: all interfaces
  ));
}

TEST(Builders, RefuseWhatDoesNotFit) {
  RequestBuffer buf;
  // Too small for the header, too small for the attributes, misaligned, bad names and types.
  EXPECT_EQ(build_set_link(buf.span().first(16), 1, 7, 1500, true), 0u);
  EXPECT_EQ(build_set_link(buf.span().first(32), 1, 7, 1500, true), 0u);
  EXPECT_EQ(build_set_link(buf.span().first(40), 1, 7, 1500, true), 40u);
  EXPECT_EQ(build_address(buf.span().first(60), 1, Change::add, 7, make_address(k2001_db8_1__2, 64)), 0u);
  EXPECT_EQ(build_default_route(buf.span().subspan(1, 100), 1, Change::add, 7, DefaultRoute{}), 0u);
  EXPECT_EQ(build_get_link(buf.span(), 1, std::string_view("")), 0u);
  EXPECT_EQ(build_get_link(buf.span(), 1, std::string_view("sixteen-bytes-xx")), 0u);
  EXPECT_EQ(build_dump(buf.span(), 1, RTM_NEWLINK, AF_UNSPEC), 0u);
}

TEST(Describe, AddressesAndRoutesInIproute2Notation) {
  EXPECT_EQ(to_string(make_address(k10_64_64_2, 30)), "10.64.64.2/30");
  EXPECT_EQ(to_string(make_address(k2001_db8_1__2, 64)), "2001:db8:1::2/64");
  EXPECT_EQ(describe(DefaultRoute{AF_INET, 100}, "wwan0"), "the IPv4 default route dev wwan0 metric 100");
  EXPECT_EQ(describe(DefaultRoute{AF_INET6, 5}, "wwan1"), "the IPv6 default route dev wwan1 metric 5");
}

// ---- replies ----------------------------------------------------------------------------------

// What the kernel answers to RTM_GETLINK for `ip tuntap add dev wwan0 mode tun user 12345`
// (drivers/net/tun.c tun_fill_info; statistics and the other attributes left out).
const ByteVector kTunLink = hex(
    "74 00 00 00"   // nlmsg_len 116
    "10 00"         // nlmsg_type RTM_NEWLINK (16)
    "00 00"         // nlmsg_flags
    "03 00 00 00"   // nlmsg_seq 3
    "39 30 00 00"   // nlmsg_pid: our port id
    "00 00"         // ifi_family AF_UNSPEC, pad
    "fe ff"         // ifi_type ARPHRD_NONE (0xfffe): a TUN has no link layer
    "05 00 00 00"   // ifi_index 5
    "90 10 00 00"   // ifi_flags IFF_POINTOPOINT | IFF_NOARP | IFF_MULTICAST
    "00 00 00 00"   // ifi_change
    "0a 00 03 00"   // nla_len 10, IFLA_IFNAME
    "77 77 61 6e 30 00 00 00"   // "wwan0" NUL, padding
    "08 00 04 00"   // nla_len 8, IFLA_MTU
    "dc 05 00 00"   // 1500
    "40 00 12 00"   // nla_len 64, IFLA_LINKINFO (18)
    "08 00 01 00"   //   nla_len 8, IFLA_INFO_KIND (1)
    "74 75 6e 00"   //   "tun" NUL
    "34 00 02 80"   //   nla_len 52, IFLA_INFO_DATA (2) | NLA_F_NESTED (0x8000)
    "08 00 01 00"   //     nla_len 8, IFLA_TUN_OWNER (1)
    "39 30 00 00"   //     uid 12345
    "05 00 03 00"   //     nla_len 5, IFLA_TUN_TYPE (3)
    "01 00 00 00"   //     IFF_TUN, padding
    "05 00 04 00"   //     IFLA_TUN_PI (4)
    "00 00 00 00"   //     off
    "05 00 05 00"   //     IFLA_TUN_VNET_HDR (5)
    "00 00 00 00"   //     off
    "05 00 06 00"   //     IFLA_TUN_PERSIST (6)
    "01 00 00 00"   //     on
    "05 00 07 00"   //     IFLA_TUN_MULTI_QUEUE (7)
    "00 00 00 00"   //     off
);

TEST_F(Golden, ParseTunLink) {
  ASSERT_EQ(kTunLink.size(), 116u);
  const Received reply(kTunLink);
  const auto link = parse_link(reply.span());
  ASSERT_TRUE(link);
  EXPECT_EQ(link->ifindex, 5u);
  EXPECT_EQ(link->arp_type, ARPHRD_NONE);
  EXPECT_EQ(link->flags, unsigned{IFF_POINTOPOINT | IFF_NOARP | IFF_MULTICAST});
  EXPECT_EQ(link->name, "wwan0");
  EXPECT_EQ(link->mtu, 1500u);
  EXPECT_EQ(link->kind, "tun");
  ASSERT_TRUE(link->tun);
  EXPECT_EQ(link->tun->owner, 12345u);
  EXPECT_FALSE(link->tun->group);  // absent: no group set
  EXPECT_EQ(link->tun->type, IFF_TUN);
  EXPECT_TRUE(link->tun->persist);
  EXPECT_FALSE(link->tun->pi);
  EXPECT_FALSE(link->tun->vnet_hdr);
  EXPECT_FALSE(link->tun->multi_queue);
}

TEST_F(Golden, ParseLinkWithoutKind) {
  // A physical NIC or lo: no IFLA_LINKINFO at all.
  const Received reply(hex(
      "2c 00 00 00"   // nlmsg_len 44
      "10 00 00 00"   // RTM_NEWLINK, flags
      "01 00 00 00 00 00 00 00"   // seq, pid
      "00 00 01 00"   // AF_UNSPEC, pad, ifi_type ARPHRD_ETHER (1)
      "02 00 00 00"   // ifi_index 2
      "03 10 00 00"   // IFF_UP | IFF_BROADCAST | IFF_MULTICAST
      "00 00 00 00"   // ifi_change
      "09 00 03 00"   // nla_len 9, IFLA_IFNAME
      "65 74 68 30 00 00 00 00"   // "eth0" NUL, padding
  ));
  const auto link = parse_link(reply.span());
  ASSERT_TRUE(link);
  EXPECT_EQ(link->name, "eth0");
  EXPECT_EQ(link->arp_type, ARPHRD_ETHER);
  EXPECT_EQ(link->kind, "");
  EXPECT_FALSE(link->tun);
}

TEST_F(Golden, ParseLinkRejectsAndBounds) {
  // Wrong type, a header that claims more than there is, and an attribute running past the
  // message: the first two are refused, the last is cut (libmnl stops at the bad attribute).
  ByteVector other = kTunLink;
  other[4] = RTM_NEWADDR;
  EXPECT_FALSE(parse_link(Received(other).span()));
  const ByteVector whole = kTunLink;
  EXPECT_FALSE(parse_link(Received(whole).span().first(100)));
  ByteVector long_name = kTunLink;
  long_name[32] = 0xff;  // IFLA_IFNAME nla_len 255
  const auto cut = parse_link(Received(long_name).span());
  ASSERT_TRUE(cut);
  EXPECT_EQ(cut->name, "");
  EXPECT_EQ(cut->kind, "");
}

TEST_F(Golden, ParseExtendedAck) {
  // EEXIST for an RTM_NEWADDR, NETLINK_CAP_ACK on (only the request's header is echoed) and
  // NETLINK_EXT_ACK on (the kernel's sentence follows).
  ByteVector message = hex(
      "48 00 00 00"   // nlmsg_len 72
      "02 00"         // nlmsg_type NLMSG_ERROR (2)
      "00 03"         // nlmsg_flags NLM_F_CAPPED (0x100) | NLM_F_ACK_TLVS (0x200)
      "05 00 00 00"   // nlmsg_seq 5: the request's
      "39 30 00 00"   // nlmsg_pid
      "ef ff ff ff"   // error -17 (-EEXIST)
      "28 00 00 00 14 00 05 06 05 00 00 00 00 00 00 00"   // the request's nlmsghdr
      "24 00 01 00"   // nla_len 36, NLMSGERR_ATTR_MSG (1)
  );
  const std::string sentence = "ipv4: Address already assigned.";
  message.insert(message.end(), sentence.begin(), sentence.end());
  message.push_back(0);  // NUL: 31 + 1 = 32 bytes, no padding needed
  ASSERT_EQ(message.size(), 72u);
  const auto ack = parse_acknowledgement(Received(message).span());
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->error, EEXIST);
  EXPECT_EQ(ack->kernel_message, sentence);
}

TEST_F(Golden, ParseUncappedAckAndDone) {
  // Without NETLINK_CAP_ACK the whole request is echoed before the attributes.
  const ByteVector uncapped = hex(
      "34 00 00 00"   // nlmsg_len 52
      "02 00 00 02"   // NLMSG_ERROR, NLM_F_ACK_TLVS
      "0b 00 00 00 00 00 00 00"   // seq 11, pid
      "ea ff ff ff"   // error -22 (-EINVAL)
      "18 00 00 00 16 00 01 03 0b 00 00 00 00 00 00 00"   // echoed request: nlmsghdr (24 bytes)...
      "0a 00 00 00 00 00 00 00"   // ...and its ifaddrmsg
      "08 00 01 00 62 61 64 00"   // NLMSGERR_ATTR_MSG "bad"
  );
  auto ack = parse_acknowledgement(Received(uncapped).span());
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->error, EINVAL);
  EXPECT_EQ(ack->kernel_message, "bad");
  // A plain ACK: error 0, the request's header echoed.
  ack = parse_acknowledgement(Received(hex(
      "24 00 00 00 02 00 00 01 05 00 00 00 00 00 00 00"   // NLMSG_ERROR, NLM_F_CAPPED
      "00 00 00 00"   // error 0: ACK
      "28 00 00 00 14 00 05 06 05 00 00 00 00 00 00 00")).span());
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->error, 0);
  EXPECT_EQ(ack->kernel_message, "");
  // NLMSG_DONE ends a dump; its int is the dump's error.
  ack = parse_acknowledgement(Received(hex("14 00 00 00 03 00 02 00 0a 00 00 00 00 00 00 00 00 00 00 00")).span());
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->error, 0);
  ack = parse_acknowledgement(Received(hex("14 00 00 00 03 00 02 00 0a 00 00 00 00 00 00 00 f0 ff ff ff")).span());
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->error, EBUSY);
  EXPECT_FALSE(parse_acknowledgement(Received(kTunLink).span()));
}

TEST_F(Golden, ParseAddressAndRoute) {
  const Received address(hex(
      "34 00 00 00"   // nlmsg_len 52
      "14 00 02 00"   // RTM_NEWADDR, NLM_F_MULTI (a dump entry)
      "0a 00 00 00 00 00 00 00"   // seq, pid
      "0a 40 82 00"   // AF_INET6, /64, ifa_flags IFA_F_PERMANENT | IFA_F_NODAD, RT_SCOPE_UNIVERSE
      "07 00 00 00"   // ifa_index 7
      "14 00 01 00"   // nla_len 20, IFA_ADDRESS (IPv6 sends no IFA_LOCAL without a peer)
      "20 01 0d b8 00 01 00 00 00 00 00 00 00 00 00 02"   // 2001:db8:1::2
      "08 00 08 00"   // IFA_FLAGS
      "82 00 00 00"   // IFA_F_PERMANENT | IFA_F_NODAD
  ));
  const auto a = parse_address(address.span());
  ASSERT_TRUE(a);
  EXPECT_EQ(a->ifindex, 7u);
  EXPECT_EQ(a->address, make_address(k2001_db8_1__2, 64, IFA_F_PERMANENT | IFA_F_NODAD));

  const Received route(hex(
      "34 00 00 00"   // nlmsg_len 52
      "18 00 02 00"   // RTM_NEWROUTE, NLM_F_MULTI
      "0b 00 00 00 00 00 00 00"   // seq, pid
      "02 00 00 00"   // AF_INET, dst_len 0, src_len 0, tos 0
      "fe 04 fd 01"   // RT_TABLE_MAIN, RTPROT_STATIC, RT_SCOPE_LINK, RTN_UNICAST
      "00 00 00 00"   // rtm_flags
      "08 00 0f 00 fe 00 00 00"   // RTA_TABLE (15) 254
      "08 00 06 00 64 00 00 00"   // RTA_PRIORITY 100
      "08 00 04 00 07 00 00 00"   // RTA_OIF 7
  ));
  const auto r = parse_route(route.span());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->family, AF_INET);
  EXPECT_EQ(r->dst_length, 0);
  EXPECT_EQ(r->table, unsigned{RT_TABLE_MAIN});
  EXPECT_EQ(r->protocol, RTPROT_STATIC);
  EXPECT_EQ(r->scope, RT_SCOPE_LINK);
  EXPECT_EQ(r->oif, 7u);
  EXPECT_EQ(r->priority, 100u);
  EXPECT_FALSE(r->has_gateway);
}

TEST_F(Golden, NextMessageSplitsADatagram) {
  // Two messages back to back (the second is a 20-byte NLMSG_DONE), then garbage too short for
  // a header: two messages come out, then nothing.
  ByteVector datagram = kTunLink;
  const ByteVector done = hex("14 00 00 00 03 00 02 00 03 00 00 00 00 00 00 00 00 00 00 00");
  datagram.insert(datagram.end(), done.begin(), done.end());
  datagram.insert(datagram.end(), {1, 2, 3});
  const Received received(datagram);
  Bytes rest = received.span();
  const Bytes first = next_message(rest);
  EXPECT_EQ(first.size(), 116u);
  EXPECT_EQ(message_type(first), RTM_NEWLINK);
  const Bytes second = next_message(rest);
  EXPECT_EQ(second.size(), 20u);
  EXPECT_EQ(message_type(second), NLMSG_DONE);
  EXPECT_EQ(message_seq(second), 3u);
  EXPECT_TRUE(next_message(rest).empty());
  EXPECT_TRUE(rest.empty());
  // A header claiming more than the datagram holds ends the walk.
  Bytes truncated = received.span().first(50);
  EXPECT_TRUE(next_message(truncated).empty());
}

}  // namespace
}  // namespace wwan::tun::rtnl
