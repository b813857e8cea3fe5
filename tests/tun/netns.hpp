// Helpers for the tun/ tests that need the real kernel: a fresh network namespace per test, raw
// TUN/TAP devices made with the ioctls directly (not through the code under test), and `ip` and
// TUNGETIFF as independent readers of what the kernel holds; and the refusals of TunDevice::open
// that the TUN and TAP tests both check.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "tun/tun_device.hpp"

namespace wwan::tun::testing {

// Moves this process into a new, empty network namespace (unshare(CLONE_NEWNET)). Returns "" or
// why it could not (EPERM without CAP_SYS_ADMIN). gtest runs tests on the main thread, and this
// process has no other threads, so the whole test runs in the new namespace; the previous one
// dies with its last reference.
std::string enter_fresh_network_namespace();

// Every test of a fixture derived from this runs in its own network namespace, or is skipped
// with the reason.
class NetnsTest : public ::testing::Test {
 protected:
  void SetUp() override;
};

// A TUN or TAP made with TUNSETIFF (+ TUNSETOWNER / TUNSETGROUP / TUNSETPERSIST when asked);
// returns the attached descriptor (close it to let go), or -1 with a gtest failure.
struct RawTun {
  short flags = 0;  // IFF_TUN or IFF_TAP, | IFF_MULTI_QUEUE...
  bool persist = false;
  std::optional<std::uint32_t> owner;
  std::optional<std::uint32_t> group;
};
int make_raw_tun(const std::string& name, const RawTun& how);
// A persistent device (`how` with persist set) that no process holds: made with make_raw_tun and
// its descriptor closed at once. False, with a gtest failure, if it could not be made.
bool make_persistent(const std::string& name, const RawTun& how);
// Attaches to the persistent device `name` with `flags` and clears TUNSETPERSIST: it vanishes.
void remove_persistent(const std::string& name, short flags);

// The interface index from the kernel's ioctl (SIOCGIFINDEX via if_nametoindex), 0 if none.
unsigned index_of(const std::string& name);

// Runs `command` with /bin/sh, returns its stdout (stderr goes to the test log); `status` gets
// the exit status when given.
std::string shell(const std::string& command, int* status = nullptr);

// True if `text` has no line break: every error of the tun/ API is one line.
bool one_line(const std::string& text);

// The flags the kernel granted the device behind `fd` (TUNGETIFF).
short granted_flags(int fd);

// The error TunDevice::open gives for `name`, expecting it to refuse (a gtest failure if it
// opens) in one line (a gtest failure if not).
std::string refusal(std::string_view name, const TunOptions& options = {});

}  // namespace wwan::tun::testing
