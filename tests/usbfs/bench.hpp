// The process-wide emulated bus of the usbfs suite (set up in usbfs_test.cpp before the first
// libusb_init): the standard bench of profiles.hpp plus a loopback device at kLoopbackPort.
#pragma once

#include <memory>

#include "tests/support/loopback_device.hpp"
#include "tests/usbfs/usb_testbed.hpp"

namespace wwan::usbfs_test {

inline constexpr const char* kLoopbackPort = "1-3";
inline constexpr std::uint8_t kLoopbackDevnum = 7;

extern UsbTestbed* g_bed;
extern std::shared_ptr<test::LoopbackDevice> g_loopback;

}  // namespace wwan::usbfs_test
