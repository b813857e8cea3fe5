// What every integration test that launches the daemon needs before it starts: root, a usable
// /dev/net/tun, the wwan-dp binary meson built (WWAN_DP_EXE), a fresh network namespace of its
// own, and this process as the subreaper of the daemon's orphans (so "no child remains" sees
// them). Skips, with the reason, where the machine cannot give these.
#pragma once

#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "net.hpp"

namespace wwan::integration {

template <class Param>
class DaemonNamespaceTest : public ::testing::TestWithParam<Param> {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (a network namespace, a TUN, raw sockets)";
    if (::access("/dev/net/tun", R_OK | W_OK) != 0)
      GTEST_SKIP() << "no usable /dev/net/tun: " << std::strerror(errno);
    const char* exe = std::getenv("WWAN_DP_EXE");
    ASSERT_NE(exe, nullptr) << "WWAN_DP_EXE is not set (run through meson test, which sets it)";
    exe_ = exe;
    if (const std::string why = enter_fresh_network_namespace(); !why.empty())
      GTEST_SKIP() << "cannot make a fresh network namespace: " << why;
    ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0) << "PR_SET_CHILD_SUBREAPER: " << std::strerror(errno);
  }

  std::string exe_;  // the wwan-dp binary under test
};

}  // namespace wwan::integration
