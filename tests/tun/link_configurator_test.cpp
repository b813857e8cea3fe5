// LinkConfigurator against the real kernel, each test in a fresh network namespace with a fresh
// TUN. What was applied is read back from the kernel twice over: with our own RTM_GETADDR /
// RTM_GETROUTE dumps (exact fields: flags, protocol, metric) and with `ip` (an independent
// parser of the same kernel state). Then clear() must leave nothing of ours behind.
#include "tun/link_configurator.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/if.h>

#include <algorithm>
#include <string>
#include <vector>

#include "netns.hpp"
#include "tun/rtnl_socket.hpp"
#include "tun/tun_device.hpp"

namespace wwan::tun {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;
using testing::one_line;
using testing::shell;

const eth::Ipv4Address k10_64_64_2{{10, 64, 64, 2}};
const eth::Ipv4Address k10_64_64_6{{10, 64, 64, 6}};
const eth::Ipv6Address k2001_db8_1__2{{0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}};

// What a connected Huawei stick hands over (README's `wwan-dp connect` example) plus IPv6.
LinkSettings dual_stack(std::uint32_t metric = 700) {
  LinkSettings s;
  s.ipv4 = Ipv4Settings{k10_64_64_2, 30, eth::Ipv4Address{{10, 64, 64, 1}}};
  s.ipv6 = Ipv6Settings{k2001_db8_1__2, 64, std::nullopt};
  s.mtu = 1400;
  s.default_route_metric = metric;
  return s;
}

class LinkConfiguratorTest : public testing::NetnsTest {
 protected:
  void SetUp() override {
    NetnsTest::SetUp();
    if (IsSkipped()) return;
    std::string error;
    tun_ = TunDevice::open("wwantest0", {}, error);
    ASSERT_NE(tun_, nullptr) << error;
    config_ = LinkConfigurator::open(tun_->ifindex(), error);
    ASSERT_NE(config_, nullptr) << error;
    socket_ = rtnl::Socket::open(error);
    ASSERT_NE(socket_, nullptr) << error;
  }

  // Our addresses on the TUN as the kernel holds them (the kernel's own fe80:: left out), with
  // the flags the kernel reports (IFA_F_PERMANENT, IFA_F_NODAD...).
  std::vector<rtnl::InterfaceAddress> addresses() {
    std::vector<rtnl::AddressInfo> all;
    EXPECT_EQ(rtnl::dump_addresses(*socket_, AF_UNSPEC, all), 0);
    std::vector<rtnl::InterfaceAddress> out;
    for (const auto& a : all)
      if (a.ifindex == tun_->ifindex() && a.scope == RT_SCOPE_UNIVERSE) out.push_back(a.address);
    return out;
  }
  // Default routes in the main table through `ifindex` (the TUN unless told).
  std::vector<rtnl::RouteInfo> default_routes(std::uint8_t family, unsigned ifindex = 0) {
    std::vector<rtnl::RouteInfo> all;
    EXPECT_EQ(rtnl::dump_routes(*socket_, family, all), 0);
    std::vector<rtnl::RouteInfo> out;
    for (const auto& r : all)
      if (r.oif == (ifindex != 0 ? ifindex : tun_->ifindex()) && r.dst_length == 0 && r.table == RT_TABLE_MAIN)
        out.push_back(r);
    return out;
  }
  rtnl::LinkInfo link() {
    int e = 0;
    auto l = rtnl::get_link(*socket_, tun_->ifindex(), e);
    EXPECT_TRUE(l) << e;
    return l.value_or(rtnl::LinkInfo{});
  }
  static std::vector<std::uint32_t> metrics(const std::vector<rtnl::RouteInfo>& routes) {
    std::vector<std::uint32_t> out;
    for (const auto& r : routes) out.push_back(r.priority);
    return out;
  }
  void expect_nothing_of_ours() {
    EXPECT_THAT(addresses(), IsEmpty());
    EXPECT_THAT(default_routes(AF_INET), IsEmpty());
    EXPECT_THAT(default_routes(AF_INET6), IsEmpty());
    EXPECT_THAT(config_->addresses(), IsEmpty());
    EXPECT_THAT(config_->routes(), IsEmpty());
  }

  std::unique_ptr<TunDevice> tun_;
  std::unique_ptr<LinkConfigurator> config_;
  std::unique_ptr<rtnl::Socket> socket_;
};

TEST_F(LinkConfiguratorTest, AppliesThenClearsEverything) {
  std::string error;
  ASSERT_TRUE(config_->apply(dual_stack(), error)) << error;

  const rtnl::LinkInfo l = link();
  EXPECT_EQ(l.mtu, 1400u);
  EXPECT_TRUE(l.flags & IFF_UP);
  // IPv4 as given; IPv6 with IFA_F_NODAD, usable at once (not IFA_F_TENTATIVE).
  const auto held = addresses();
  ASSERT_EQ(held.size(), 2u);
  EXPECT_EQ(held[0], rtnl::make_address(k10_64_64_2, 30, held[0].flags));
  EXPECT_EQ(held[1], rtnl::make_address(k2001_db8_1__2, 64, held[1].flags));
  EXPECT_TRUE(held[1].flags & IFA_F_NODAD);
  EXPECT_FALSE(held[1].flags & IFA_F_TENTATIVE);
  for (const std::uint8_t family : {std::uint8_t{AF_INET}, std::uint8_t{AF_INET6}}) {
    const auto routes = default_routes(family);
    ASSERT_EQ(routes.size(), 1u) << int{family};
    EXPECT_EQ(routes[0].priority, 700u);
    EXPECT_EQ(routes[0].protocol, RTPROT_STATIC);
    EXPECT_FALSE(routes[0].has_gateway);
  }
  // The same state through iproute2's eyes, including the kernel's prefix routes.
  EXPECT_THAT(shell("ip -4 -o addr show dev wwantest0"), HasSubstr("inet 10.64.64.2/30"));
  EXPECT_THAT(shell("ip -6 -o addr show dev wwantest0"), HasSubstr("inet6 2001:db8:1::2/64 scope global nodad"));
  EXPECT_THAT(shell("ip -4 route show"), HasSubstr("default dev wwantest0 proto static scope link metric 700"));
  EXPECT_THAT(shell("ip -4 route show"), HasSubstr("10.64.64.0/30 dev wwantest0 proto kernel scope link src 10.64.64.2"));
  EXPECT_THAT(shell("ip -6 route show"), HasSubstr("default dev wwantest0 proto static metric 700"));
  EXPECT_THAT(shell("ip -6 route show"), HasSubstr("2001:db8:1::/64 dev wwantest0 proto kernel metric 256"));

  ASSERT_TRUE(config_->clear(true, error)) << error;
  expect_nothing_of_ours();
  EXPECT_FALSE(link().flags & IFF_UP);
  EXPECT_THAT(shell("ip route show; ip -6 route show"), Not(HasSubstr("wwantest0")));
}

TEST_F(LinkConfiguratorTest, ApplyingTheSameSettingsTwiceIsFine) {
  std::string error;
  ASSERT_TRUE(config_->apply(dual_stack(), error)) << error;
  ASSERT_TRUE(config_->apply(dual_stack(), error)) << error;
  EXPECT_EQ(addresses().size(), 2u);
  EXPECT_THAT(metrics(default_routes(AF_INET)), ElementsAre(700u));
  EXPECT_THAT(metrics(default_routes(AF_INET6)), ElementsAre(700u));
  EXPECT_EQ(config_->addresses().size(), 2u);
  EXPECT_EQ(config_->routes().size(), 2u);
}

TEST_F(LinkConfiguratorTest, NewSettingsReplaceWhatIsNoLongerWanted) {
  std::string error;
  ASSERT_TRUE(config_->apply(dual_stack(700), error)) << error;
  // The redial got another IPv4 address (here in another /30), no IPv6, and a new metric.
  LinkSettings next;
  next.ipv4 = Ipv4Settings{k10_64_64_6, 30, std::nullopt};
  next.default_route_metric = 800;
  ASSERT_TRUE(config_->apply(next, error)) << error;
  EXPECT_THAT(addresses(), ElementsAre(rtnl::make_address(k10_64_64_6, 30, IFA_F_PERMANENT)));
  EXPECT_THAT(metrics(default_routes(AF_INET)), ElementsAre(800u));
  EXPECT_THAT(default_routes(AF_INET6), IsEmpty());
  EXPECT_EQ(link().mtu, 1400u);  // mtu 0: left as it was
  // No default route wanted any more: the one it added goes, the address stays.
  next.default_route_metric.reset();
  ASSERT_TRUE(config_->apply(next, error)) << error;
  EXPECT_THAT(default_routes(AF_INET), IsEmpty());
  EXPECT_EQ(addresses().size(), 1u);
  ASSERT_TRUE(config_->clear(true, error)) << error;
  expect_nothing_of_ours();
}

// The IPv6 default route follows the family's default router (LinkSettings::ipv6_default_route:
// the RA's router lifetime ran out) while the IPv4 one and both addresses stay.
TEST_F(LinkConfiguratorTest, TheIpv6DefaultRouteComesAndGoesWithItsRouter) {
  std::string error;
  LinkSettings s = dual_stack(700);
  s.ipv6_default_route = false;
  ASSERT_TRUE(config_->apply(s, error)) << error;
  EXPECT_THAT(metrics(default_routes(AF_INET)), ElementsAre(700u));
  EXPECT_THAT(default_routes(AF_INET6), IsEmpty()) << "no IPv6 default router yet";
  s.ipv6_default_route = true;  // the RA arrived
  ASSERT_TRUE(config_->apply(s, error)) << error;
  EXPECT_THAT(metrics(default_routes(AF_INET6)), ElementsAre(700u));
  s.ipv6_default_route = false;  // its router lifetime ran out
  ASSERT_TRUE(config_->apply(s, error)) << error;
  EXPECT_THAT(default_routes(AF_INET6), IsEmpty());
  EXPECT_THAT(metrics(default_routes(AF_INET)), ElementsAre(700u));
  EXPECT_EQ(addresses().size(), 2u);
  s.ipv6_default_route = true;
  ASSERT_TRUE(config_->apply(s, error)) << error;
  ASSERT_TRUE(config_->clear(true, error)) << error;  // teardown removes it
  expect_nothing_of_ours();
}

TEST_F(LinkConfiguratorTest, ApplyBringsBackWhatTheKernelDroppedWithTheLink) {
  std::string error;
  ASSERT_TRUE(config_->apply(dual_stack(), error)) << error;
  // Someone sets the link down: the kernel drops the IPv4 routes and the IPv6 address.
  int status = 0;
  shell("ip link set dev wwantest0 down", &status);
  ASSERT_EQ(status, 0);
  EXPECT_THAT(default_routes(AF_INET), IsEmpty());
  ASSERT_TRUE(config_->apply(dual_stack(), error)) << error;
  EXPECT_EQ(addresses().size(), 2u);
  EXPECT_THAT(metrics(default_routes(AF_INET)), ElementsAre(700u));
  EXPECT_THAT(metrics(default_routes(AF_INET6)), ElementsAre(700u));
}

TEST_F(LinkConfiguratorTest, WhatIsAlreadyThereIsNoErrorAndIsClearedToo) {
  // Leftovers of a run that died on a persistent TUN, identical to what apply adds.
  int status = 0;
  shell("ip link set dev wwantest0 up && ip addr add 10.64.64.2/30 dev wwantest0 && "
        "ip route add default dev wwantest0 proto static metric 700",
        &status);
  ASSERT_EQ(status, 0);
  LinkSettings s;
  s.ipv4 = Ipv4Settings{k10_64_64_2, 30, std::nullopt};
  s.default_route_metric = 700;
  std::string error;
  ASSERT_TRUE(config_->apply(s, error)) << error;
  EXPECT_EQ(addresses().size(), 1u);
  EXPECT_EQ(default_routes(AF_INET).size(), 1u);
  ASSERT_TRUE(config_->clear(false, error)) << error;
  expect_nothing_of_ours();
  EXPECT_TRUE(link().flags & IFF_UP);  // clear(false) leaves the link up
}

TEST_F(LinkConfiguratorTest, AnotherInterfacesRoutesAreNeitherAConflictNorTouched) {
  // Another uplink with a default route of the same metric in both families.
  int status = 0;
  shell("ip link add wwantest1 type veth peer name wwantest2 && ip link set wwantest1 up && "
        "ip route add default dev wwantest1 metric 700 && ip -6 route add default dev wwantest1 metric 700",
        &status);
  ASSERT_EQ(status, 0);
  const unsigned other = testing::index_of("wwantest1");
  std::string error;
  ASSERT_TRUE(config_->apply(dual_stack(700), error)) << error;
  EXPECT_EQ(default_routes(AF_INET).size(), 1u);
  ASSERT_TRUE(config_->clear(true, error)) << error;
  expect_nothing_of_ours();
  EXPECT_THAT(metrics(default_routes(AF_INET, other)), ElementsAre(700u));
  EXPECT_THAT(metrics(default_routes(AF_INET6, other)), ElementsAre(700u));
}

TEST_F(LinkConfiguratorTest, ErrorsSayWhatWasBeingDoneAndWhy) {
  LinkSettings s = dual_stack();
  std::string error;
  s.mtu = 70000;  // a TUN's max_mtu is 65535
  EXPECT_FALSE(config_->apply(s, error));
  // strerror, then the kernel's extended-ACK sentence (its wording varies between kernels).
  EXPECT_THAT(error, StartsWith("setting wwantest0 up with MTU 70000: Invalid argument (kernel: "));
  EXPECT_TRUE(one_line(error)) << error;

  s = dual_stack();
  s.ipv4->prefix_length = 33;
  EXPECT_FALSE(config_->apply(s, error));
  EXPECT_EQ(error, "configuring wwantest0: IPv4 prefix length 33 is out of range (1-32)");

  // IPv6 switched off on the interface: the IPv4 half is applied (and remembered), the IPv6
  // address is refused with the kernel's reason.
  int status = 0;
  shell("sysctl -qw net.ipv6.conf.wwantest0.disable_ipv6=1", &status);
  ASSERT_EQ(status, 0);
  EXPECT_FALSE(config_->apply(dual_stack(), error));
  EXPECT_THAT(error, StartsWith("adding 2001:db8:1::2/64 to wwantest0: Permission denied (kernel: "));
  EXPECT_TRUE(one_line(error)) << error;
  EXPECT_EQ(config_->addresses().size(), 1u);
  ASSERT_TRUE(config_->clear(true, error)) << error;
  expect_nothing_of_ours();
}

TEST_F(LinkConfiguratorTest, ClearAfterTheTunIsGoneSucceeds) {
  std::string error;
  ASSERT_TRUE(config_->apply(dual_stack(), error)) << error;
  // The TUN closes first (the daemon's teardown order is not guaranteed): the kernel removed
  // the interface with everything on it, and clear() has nothing left to do.
  tun_.reset();
  EXPECT_EQ(testing::index_of("wwantest0"), 0u);
  EXPECT_THAT(shell("ip route show; ip -6 route show"), Not(HasSubstr("wwantest0")));
  EXPECT_TRUE(config_->clear(true, error)) << error;
  EXPECT_THAT(config_->addresses(), IsEmpty());
  EXPECT_THAT(config_->routes(), IsEmpty());
}

TEST_F(LinkConfiguratorTest, DestructorClearsAndSetsTheLinkDown) {
  std::string error;
  ASSERT_TRUE(config_->apply(dual_stack(), error)) << error;
  config_.reset();
  EXPECT_THAT(addresses(), IsEmpty());
  EXPECT_THAT(default_routes(AF_INET), IsEmpty());
  EXPECT_THAT(default_routes(AF_INET6), IsEmpty());
  EXPECT_FALSE(link().flags & IFF_UP);
}

TEST_F(LinkConfiguratorTest, OpenRefusesAMissingInterface) {
  std::string error;
  EXPECT_EQ(LinkConfigurator::open(9999, error), nullptr);
  EXPECT_EQ(error, "configuring interface index 9999: there is no such interface (was the TUN closed?)");
  EXPECT_EQ(config_->ifname(), "wwantest0");
}

}  // namespace
}  // namespace wwan::tun
