#include "netns.hpp"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace wwan::tun::testing {

std::string enter_fresh_network_namespace() {
  if (unshare(CLONE_NEWNET) != 0)
    return std::string("unshare(CLONE_NEWNET) failed: ") + std::strerror(errno) +
           " (these tests need root, or CAP_SYS_ADMIN and CAP_NET_ADMIN)";
  return "";
}

void NetnsTest::SetUp() {
  if (std::string why = enter_fresh_network_namespace(); !why.empty()) GTEST_SKIP() << why;
}

int make_raw_tun(const std::string& name, const RawTun& how) {
  const int fd = ::open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    ADD_FAILURE() << "open /dev/net/tun: " << std::strerror(errno);
    return -1;
  }
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  ifr.ifr_flags = static_cast<short>(how.flags | IFF_NO_PI);
  bool ok = ::ioctl(fd, TUNSETIFF, &ifr) == 0;
  if (ok && how.owner) ok = ::ioctl(fd, TUNSETOWNER, static_cast<unsigned long>(*how.owner)) == 0;
  if (ok && how.group) ok = ::ioctl(fd, TUNSETGROUP, static_cast<unsigned long>(*how.group)) == 0;
  if (ok && how.persist) ok = ::ioctl(fd, TUNSETPERSIST, 1UL) == 0;
  if (!ok) {
    ADD_FAILURE() << "making " << name << ": " << std::strerror(errno);
    ::close(fd);
    return -1;
  }
  return fd;
}

bool make_persistent(const std::string& name, const RawTun& how) {
  EXPECT_TRUE(how.persist) << name << ": a device nobody holds vanishes unless it is persistent";
  const int fd = make_raw_tun(name, how);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

void remove_persistent(const std::string& name, short flags) {
  const int fd = ::open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) return;
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  ifr.ifr_flags = static_cast<short>(flags | IFF_NO_PI);
  if (::ioctl(fd, TUNSETIFF, &ifr) == 0) ::ioctl(fd, TUNSETPERSIST, 0UL);
  ::close(fd);
}

unsigned index_of(const std::string& name) { return if_nametoindex(name.c_str()); }

std::string shell(const std::string& command, int* status) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) {
    if (status != nullptr) *status = -1;
    return out;
  }
  std::array<char, 4096> chunk{};
  std::size_t n = 0;
  while ((n = std::fread(chunk.data(), 1, chunk.size(), pipe)) > 0) out.append(chunk.data(), n);
  const int rc = ::pclose(pipe);
  if (status != nullptr) *status = rc;
  return out;
}

bool one_line(const std::string& text) { return text.find('\n') == std::string::npos; }

short granted_flags(int fd) {
  ifreq ifr{};
  EXPECT_EQ(::ioctl(fd, TUNGETIFF, &ifr), 0);
  return ifr.ifr_flags;
}

std::string refusal(std::string_view name, const TunOptions& options) {
  std::string error;
  const auto device = TunDevice::open(name, options, error);
  EXPECT_EQ(device, nullptr) << "opened " << name;
  EXPECT_TRUE(one_line(error)) << error;
  return error;
}

}  // namespace wwan::tun::testing
