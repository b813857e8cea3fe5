// TunDevice against the real kernel, each test in a fresh network namespace: what it creates and
// what it attaches to, that a created TUN vanishes with the object, and every refusal with the
// one-line message that says what to do. Devices the tests need are made with the ioctls
// directly (netns.cpp) or with `ip`, never through the code under test; what the kernel holds is
// read back with if_nametoindex, TUNGETIFF and `ip`.
#include "tun/tun_device.hpp"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <grp.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "netns.hpp"

namespace wwan::tun {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using testing::granted_flags;
using testing::index_of;
using testing::make_persistent;
using testing::make_raw_tun;
using testing::one_line;
using testing::RawTun;
using testing::refusal;
using testing::remove_persistent;
using testing::shell;

const std::string kName = "wwantest0";

// Runs `body` in a child process (which may change its mount namespace or drop privileges
// without touching this one) and returns the error string it reports through a pipe.
template <typename Body>
std::string in_child(Body body) {
  int fds[2];
  if (::pipe(fds) != 0) return "pipe failed";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    const std::string result = body();
    const ssize_t ignored = ::write(fds[1], result.data(), result.size());
    (void)ignored;
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string out;
  char chunk[512];
  ssize_t n = 0;
  while ((n = ::read(fds[0], chunk, sizeof chunk)) > 0) out.append(chunk, static_cast<std::size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return out;
}

// ---- names (pure; no privileges needed) --------------------------------------------------------

TEST(InterfaceName, TheKernelsRules) {
  EXPECT_EQ(check_interface_name("wwan0"), "");
  EXPECT_EQ(check_interface_name("wwan%d"), "");
  EXPECT_EQ(check_interface_name("fifteen-bytes-x"), "");
  EXPECT_THAT(check_interface_name(""), HasSubstr("empty"));
  EXPECT_THAT(check_interface_name("sixteen-bytes-xx"), HasSubstr("16 bytes long and the kernel's limit is 15"));
  for (const char* bad : {"a/b", "a b", "a:b", ".", "..", "a\tb", "a%s", "a%d%d", "a%"})
    EXPECT_THAT(check_interface_name(bad), HasSubstr("is not a valid interface name")) << bad;
}

TEST(TunDeviceName, RefusedBeforeAnythingIsOpened) {
  EXPECT_THAT(refusal(""), HasSubstr("empty"));
  EXPECT_THAT(refusal("a-name-that-is-too-long"), HasSubstr("IFNAMSIZ"));
  EXPECT_THAT(refusal("wwan/0"), HasSubstr("not a valid interface name"));
}

// ---- the kernel --------------------------------------------------------------------------------

class TunDeviceTest : public testing::NetnsTest {};

TEST_F(TunDeviceTest, CreatesATunThatVanishesWithTheObject) {
  std::string error;
  auto tun = TunDevice::open(kName, {}, error);
  ASSERT_NE(tun, nullptr) << error;
  EXPECT_TRUE(tun->created());
  EXPECT_EQ(tun->name(), kName);
  EXPECT_EQ(tun->ifindex(), index_of(kName));
  EXPECT_NE(tun->ifindex(), 0u);
  EXPECT_EQ(granted_flags(tun->fd()), IFF_TUN | IFF_NO_PI);
  EXPECT_FALSE(tun->vnet_hdr());
  EXPECT_EQ(::fcntl(tun->fd(), F_GETFL) & O_NONBLOCK, 0);
  EXPECT_EQ(::fcntl(tun->fd(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  // `ip` agrees: a TUN (not a TAP), not persistent.
  const std::string details = shell("ip -d link show dev " + kName);
  EXPECT_THAT(details, HasSubstr("tun type tun pi off vnet_hdr off persist off"));
  tun.reset();
  EXPECT_EQ(index_of(kName), 0u) << "a created TUN must vanish with its descriptor";
}

TEST_F(TunDeviceTest, VnetHdrAndNonblockingAreGranted) {
  std::string error;
  auto tun = TunDevice::open(kName, TunOptions{.vnet_hdr = true, .nonblocking = true}, error);
  ASSERT_NE(tun, nullptr) << error;
  EXPECT_EQ(granted_flags(tun->fd()), IFF_TUN | IFF_NO_PI | IFF_VNET_HDR);
  EXPECT_TRUE(tun->vnet_hdr());
  EXPECT_EQ(::fcntl(tun->fd(), F_GETFL) & O_NONBLOCK, O_NONBLOCK);
}

TEST_F(TunDeviceTest, ResolvesATemplateName) {
  std::string error;
  auto first = TunDevice::open("wwantest%d", {}, error);
  ASSERT_NE(first, nullptr) << error;
  auto second = TunDevice::open("wwantest%d", {}, error);
  ASSERT_NE(second, nullptr) << error;
  EXPECT_EQ(first->name(), "wwantest0");
  EXPECT_EQ(second->name(), "wwantest1");
  EXPECT_EQ(second->ifindex(), index_of("wwantest1"));
  EXPECT_TRUE(second->created());
}

TEST_F(TunDeviceTest, AttachesToAPersistentTunAndLeavesIt) {
  // Persistent, owned by this uid (what `ip tuntap add ... user $USER` makes for wwan-dp).
  const int raw = make_raw_tun(kName, RawTun{IFF_TUN, true, static_cast<std::uint32_t>(::geteuid()), std::nullopt});
  ASSERT_GE(raw, 0);
  const unsigned ifindex = index_of(kName);
  ::close(raw);
  std::string error;
  auto tun = TunDevice::open(kName, {}, error);
  ASSERT_NE(tun, nullptr) << error;
  EXPECT_FALSE(tun->created());
  EXPECT_EQ(tun->ifindex(), ifindex);
  tun.reset();
  EXPECT_EQ(index_of(kName), ifindex) << "an attached persistent TUN must stay";
  remove_persistent(kName, IFF_TUN);
  EXPECT_EQ(index_of(kName), 0u);
}

TEST_F(TunDeviceTest, RefusesATap) {
  ASSERT_TRUE(make_persistent(kName, RawTun{IFF_TAP, true, std::nullopt, std::nullopt}));
  EXPECT_EQ(refusal(kName), "wwantest0 is a TAP device, not a TUN: delete it (ip tuntap del dev wwantest0 mode tap) "
                            "or choose another name");
  EXPECT_THAT(shell("ip -d link show dev " + kName), HasSubstr("tun type tap"));  // left as it was
  remove_persistent(kName, IFF_TAP);
}

TEST_F(TunDeviceTest, RefusesATunOfAnotherUidEvenToRoot) {
  ASSERT_TRUE(make_persistent(kName, RawTun{IFF_TUN, true, 12345, std::nullopt}));
  const std::string error = refusal(kName, TunOptions{true, false});
  EXPECT_THAT(error, StartsWith("TUN wwantest0 belongs to uid 12345 and wwan-dp runs as uid "));
  EXPECT_THAT(error, HasSubstr("run wwan-dp as that user"));
  // Refused before TUNSETIFF: the device's flags were not rewritten by an attach.
  EXPECT_THAT(shell("ip -d link show dev " + kName), HasSubstr("vnet_hdr off persist on user 12345"));
  remove_persistent(kName, IFF_TUN);
}

TEST_F(TunDeviceTest, RefusesATunOfAnotherGroup) {
  ASSERT_TRUE(make_persistent(kName, RawTun{IFF_TUN, true, std::nullopt, 12345}));
  EXPECT_THAT(refusal(kName), StartsWith("TUN wwantest0 belongs to group 12345 and wwan-dp is not in that group"));
  remove_persistent(kName, IFF_TUN);
}

TEST_F(TunDeviceTest, RefusesAPersistentTunAnotherProcessHolds) {
  const int raw = make_raw_tun(kName, RawTun{IFF_TUN, true, std::nullopt, std::nullopt});
  ASSERT_GE(raw, 0);
  EXPECT_THAT(refusal(kName), StartsWith("TUN wwantest0 is busy: another process has it open"));
  // Once the holder lets go it can be attached.
  ::close(raw);
  std::string error;
  auto tun = TunDevice::open(kName, {}, error);
  ASSERT_NE(tun, nullptr) << error;
  EXPECT_FALSE(tun->created());
  tun.reset();
  remove_persistent(kName, IFF_TUN);
}

TEST_F(TunDeviceTest, RefusesANonPersistentTunAnotherOwnerHolds) {
  std::string error;
  auto holder = TunDevice::open(kName, {}, error);
  ASSERT_NE(holder, nullptr) << error;
  EXPECT_THAT(refusal(kName), StartsWith("TUN wwantest0 is busy: another process has it open"));
}

TEST_F(TunDeviceTest, RefusesAMultiQueueTun) {
  ASSERT_TRUE(make_persistent(kName, RawTun{IFF_TUN | IFF_MULTI_QUEUE, true, std::nullopt, std::nullopt}));
  EXPECT_THAT(refusal(kName), StartsWith("TUN wwantest0 is a multi-queue TUN"));
  remove_persistent(kName, IFF_TUN | IFF_MULTI_QUEUE);
}

TEST_F(TunDeviceTest, RefusesAnInterfaceThatIsNotATun) {
  // No dummy driver on every kernel; veth and lo always exist.
  int status = 0;
  shell("ip link add " + kName + " type veth peer name wwantest1", &status);
  ASSERT_EQ(status, 0);
  EXPECT_EQ(refusal(kName), "an interface named wwantest0 already exists and is not a TUN (it is a veth device): "
                            "choose another name, or delete it if it is not needed");
  EXPECT_THAT(refusal("lo"), HasSubstr("(it is the loopback device)"));
  EXPECT_NE(index_of(kName), 0u);  // untouched
}

TEST_F(TunDeviceTest, SaysToLoadTheModuleWhenThereIsNoDevNetTun) {
  // A child with its own mount namespace and an empty /dev/net: what a system without the tun
  // driver (or without devtmpfs's node) looks like.
  const std::string error = in_child([]() -> std::string {
    if (::unshare(CLONE_NEWNS) != 0) return "skip: unshare(CLONE_NEWNS)";
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return "skip: mount private";
    if (::mount("tmpfs", "/dev/net", "tmpfs", 0, nullptr) != 0) return "skip: mount tmpfs on /dev/net";
    std::string e;
    return TunDevice::open(kName, {}, e) ? "opened" : e;
  });
  if (error.starts_with("skip: ")) GTEST_SKIP() << error;
  EXPECT_EQ(error, "/dev/net/tun does not exist (the tun driver is not loaded): run \"modprobe tun\" as root");
}

TEST_F(TunDeviceTest, SaysToRunAsRootWithoutPermission) {
  const std::string error = in_child([]() -> std::string {
    // nobody, without supplementary groups or capabilities.
    if (::setgroups(0, nullptr) != 0 || ::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0)
      return "skip: dropping privileges";
    std::string e;
    return TunDevice::open(kName, {}, e) ? "opened" : e;
  });
  if (error.starts_with("skip: ")) GTEST_SKIP() << error;
  // /dev/net/tun is 0600 on some systems (open fails) and 0666 on others (TUNSETIFF fails).
  EXPECT_THAT(error, StartsWith("no permission to "));
  EXPECT_THAT(error, HasSubstr(": run as root or give CAP_NET_ADMIN"));
  EXPECT_TRUE(one_line(error));
  EXPECT_EQ(index_of(kName), 0u);
}

}  // namespace
}  // namespace wwan::tun
