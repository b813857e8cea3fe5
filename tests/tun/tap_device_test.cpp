// TunDevice in TAP mode (wwan-dp --tap, docs/tun.md "TAP mode") against the real kernel, each
// test in a fresh network namespace: the TAP it creates (IFF_TAP | IFF_NO_PI, the MAC it was
// given), the persistent TAP it attaches to, and the TUN refusals mirrored (a TUN of that name is
// refused when a TAP was asked for). Devices the tests need are made with the ioctls directly
// (netns.cpp) or with `ip`, never through the code under test; what the kernel holds is read back
// with TUNGETIFF, SIOCGIFHWADDR and `ip`.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <string>

#include "netns.hpp"
#include "tun/tun_device.hpp"

namespace wwan::tun {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using testing::granted_flags;
using testing::index_of;
using testing::make_persistent;
using testing::make_raw_tun;
using testing::RawTun;
using testing::refusal;
using testing::remove_persistent;
using testing::shell;

const std::string kName = "wwantap0";
// The generic-ncm emulated modem's iMACAddress: what the daemon gives its TAP.
constexpr std::array<std::uint8_t, 6> kMac{0x02, 0x00, 0x00, 0x00, 0x00, 0x02};

TunOptions tap(std::optional<std::array<std::uint8_t, 6>> mac = kMac) {
  TunOptions o;
  o.mode = DeviceMode::tap;
  o.nonblocking = true;
  o.mac = mac;
  return o;
}

// The device's MAC as the kernel reports it (SIOCGIFHWADDR on an ordinary socket).
std::array<std::uint8_t, 6> mac_of(const std::string& name) {
  std::array<std::uint8_t, 6> mac{};
  const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, name.data(), std::min(name.size(), std::size_t{IFNAMSIZ - 1}));
  EXPECT_EQ(::ioctl(s, SIOCGIFHWADDR, &ifr), 0) << std::strerror(errno);
  ::close(s);
  std::memcpy(mac.data(), ifr.ifr_hwaddr.sa_data, mac.size());
  return mac;
}

TEST(TapName, TheMessagesSayTap) {
  EXPECT_EQ(check_interface_name("", DeviceMode::tap), "the TAP name is empty: give a name such as wwan0");
  EXPECT_THAT(check_interface_name("a/b", DeviceMode::tap), StartsWith("the TAP name \"a/b\" is not a valid"));
  EXPECT_THAT(check_interface_name("sixteen-bytes-xx", DeviceMode::tap), StartsWith("the TAP name "));
  // The TUN's wording is unchanged.
  EXPECT_EQ(check_interface_name(""), "the TUN name is empty: give a name such as wwan0");
  EXPECT_THAT(refusal("", tap()), HasSubstr("the TAP name is empty"));
}

class TapDeviceTest : public testing::NetnsTest {};

TEST_F(TapDeviceTest, CreatesATapWithTheHostMacThatVanishesWithTheObject) {
  std::string error;
  auto dev = TunDevice::open(kName, tap(), error);
  ASSERT_NE(dev, nullptr) << error;
  EXPECT_TRUE(dev->created());
  EXPECT_EQ(dev->mode(), DeviceMode::tap);
  EXPECT_EQ(dev->name(), kName);
  EXPECT_EQ(dev->ifindex(), index_of(kName));
  EXPECT_EQ(granted_flags(dev->fd()), IFF_TAP | IFF_NO_PI);
  EXPECT_FALSE(dev->vnet_hdr());
  EXPECT_EQ(::fcntl(dev->fd(), F_GETFL) & O_NONBLOCK, O_NONBLOCK) << "the daemon's io_uring needs O_NONBLOCK";
  EXPECT_EQ(mac_of(kName), kMac);
  // `ip` agrees: a TAP without packet information, not persistent, with that address.
  const std::string details = shell("ip -d link show dev " + kName);
  EXPECT_THAT(details, HasSubstr("tun type tap pi off vnet_hdr off persist off"));
  EXPECT_THAT(details, HasSubstr("link/ether 02:00:00:00:00:02"));
  dev.reset();
  EXPECT_EQ(index_of(kName), 0u) << "a created TAP must vanish with its descriptor";
}

TEST_F(TapDeviceTest, WithoutAMacTheKernelsRandomOneStays) {
  std::string error;
  auto dev = TunDevice::open(kName, tap(std::nullopt), error);
  ASSERT_NE(dev, nullptr) << error;
  const auto mac = mac_of(kName);
  EXPECT_NE(mac, kMac);
  EXPECT_EQ(mac[0] & 0x03, 0x02) << "the kernel's random address is unicast and locally administered";
}

TEST_F(TapDeviceTest, RefusesAMulticastMacInOneLine) {
  std::array<std::uint8_t, 6> multicast = kMac;
  multicast[0] = 0x03;
  const std::string error = refusal(kName, tap(multicast));
  EXPECT_THAT(error, StartsWith("setting the MAC address of TAP wwantap0 (SIOCSIFHWADDR): "));
  EXPECT_EQ(index_of(kName), 0u) << "the TAP made on the way vanished with its descriptor";
}

TEST_F(TapDeviceTest, AttachesToAPersistentTapGivesItTheMacAndLeavesIt) {
  const int raw = make_raw_tun(kName, RawTun{IFF_TAP, true, static_cast<std::uint32_t>(::geteuid()), std::nullopt});
  ASSERT_GE(raw, 0);
  const unsigned ifindex = index_of(kName);
  ::close(raw);
  std::string error;
  auto dev = TunDevice::open(kName, tap(), error);
  ASSERT_NE(dev, nullptr) << error;
  EXPECT_FALSE(dev->created());
  EXPECT_EQ(dev->ifindex(), ifindex);
  EXPECT_EQ(mac_of(kName), kMac);
  dev.reset();
  EXPECT_EQ(index_of(kName), ifindex) << "an attached persistent TAP must stay";
  remove_persistent(kName, IFF_TAP);
}

TEST_F(TapDeviceTest, RefusesATun) {
  ASSERT_TRUE(make_persistent(kName, RawTun{IFF_TUN, true, std::nullopt, std::nullopt}));
  EXPECT_EQ(refusal(kName, tap()),
            "wwantap0 is a TUN device, not a TAP: delete it (ip tuntap del dev wwantap0 mode tun) or choose another name");
  EXPECT_THAT(shell("ip -d link show dev " + kName), HasSubstr("tun type tun"));  // left as it was
  remove_persistent(kName, IFF_TUN);
}

TEST_F(TapDeviceTest, RefusesAnInterfaceThatIsNotATap) {
  int status = 0;
  shell("ip link add " + kName + " type veth peer name wwantap1", &status);
  ASSERT_EQ(status, 0);
  EXPECT_EQ(refusal(kName, tap()), "an interface named wwantap0 already exists and is not a TAP (it is a veth device): "
                                   "choose another name, or delete it if it is not needed");
}

TEST_F(TapDeviceTest, RefusesATapOfAnotherUidEvenToRoot) {
  ASSERT_TRUE(make_persistent(kName, RawTun{IFF_TAP, true, 12345, std::nullopt}));
  const std::string error = refusal(kName, tap());
  EXPECT_THAT(error, StartsWith("TAP wwantap0 belongs to uid 12345 and wwan-dp runs as uid "));
  EXPECT_THAT(error, HasSubstr("(ip tuntap del dev wwantap0 mode tap)"));
  // Refused before TUNSETIFF and before SIOCSIFHWADDR: the device was not touched.
  EXPECT_NE(mac_of(kName), kMac);
  remove_persistent(kName, IFF_TAP);
}

TEST_F(TapDeviceTest, RefusesATapOfAnotherGroup) {
  ASSERT_TRUE(make_persistent(kName, RawTun{IFF_TAP, true, std::nullopt, 12345}));
  EXPECT_THAT(refusal(kName, tap()), StartsWith("TAP wwantap0 belongs to group 12345 and wwan-dp is not in that group"));
  remove_persistent(kName, IFF_TAP);
}

TEST_F(TapDeviceTest, RefusesATapAnotherProcessHolds) {
  const int raw = make_raw_tun(kName, RawTun{IFF_TAP, true, std::nullopt, std::nullopt});
  ASSERT_GE(raw, 0);
  EXPECT_THAT(refusal(kName, tap()), StartsWith("TAP wwantap0 is busy: another process has it open"));
  ::close(raw);
  remove_persistent(kName, IFF_TAP);
}

TEST_F(TapDeviceTest, RefusesAMultiQueueTap) {
  ASSERT_TRUE(make_persistent(kName, RawTun{IFF_TAP | IFF_MULTI_QUEUE, true, std::nullopt, std::nullopt}));
  EXPECT_EQ(refusal(kName, tap()),
            "TAP wwantap0 is a multi-queue TAP and wwan-dp uses single-queue TAPs: delete it (ip tuntap del dev "
            "wwantap0 mode tap multi_queue) or choose another name");
  remove_persistent(kName, IFF_TAP | IFF_MULTI_QUEUE);
}

}  // namespace
}  // namespace wwan::tun
