// The real daemon binary (`wwan-dp --dev … --tun …`) through REAL libusb on the emulated usbfs:
// every wrong invocation ends with one line on stderr and a non-zero exit, before any TUN exists.
// (The daemon moving packets is tested on real TUNs by tests/integration with --sim: under
// umockdev's preload a TUN's ioctls do not reach the kernel, so a TUN cannot be made here.)
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tests/usbfs/child.hpp"

namespace wwan::usbfs_test {
namespace {

using ::testing::HasSubstr;

TEST(DaemonBinaryErrors, OneLineAndNonZeroExit) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--dev", "dead:beef", "--tun", "wwx0"},         // no such modem
           {"--dev", "12d1:1506"},                          // no --tun
           {"--dev", "nonsense", "--tun", "wwx0"},          // not VID:PID
           {"--dev", "12d1:1506@", "--tun", "wwx0"},        // @ without a port
           {"--sim", "nokia-3310", "--tun", "wwx0"},        // no such emulated modem
           {"--dev", "12d1:1506", "--tun", "wwx0", "--threads", "3"}}) {
    Child c(args);
    EXPECT_NE(c.wait_exit(), 0) << args[1];
    const std::string err = c.stderr_text();
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
    EXPECT_THAT(err, HasSubstr("wwan-dp: "));
  }
}

}  // namespace
}  // namespace wwan::usbfs_test
