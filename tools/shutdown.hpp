// SIGINT / SIGTERM / SIGHUP turned into an ordinary event, so that a stop request unwinds the
// program normally and every destructor runs: the transport releases the modem's interfaces and
// reattaches its kernel drivers (usb/libusb_transport.hpp). A handler that calls exit() would skip
// that and leave the modem without a driver until it is replugged.
//
// The signals are blocked in the calling thread before any other thread exists (threads inherit
// the mask), and read from a signalfd: no async-signal-safety puzzles, no EINTR in worker loops.
#pragma once

#include <initializer_list>
#include <optional>

namespace wwan::cli {

class ShutdownSignals {
 public:
  // Blocks SIGINT, SIGTERM, SIGHUP (and `also`, e.g. SIGUSR1 for the daemon's stats) and opens
  // the signalfd. Call before starting threads.
  explicit ShutdownSignals(std::initializer_list<int> also = {});
  ~ShutdownSignals();  // restores the previous mask
  ShutdownSignals(const ShutdownSignals&) = delete;
  ShutdownSignals& operator=(const ShutdownSignals&) = delete;

  // The signal number if one arrived within timeout_ms (-1 = wait forever), else nullopt.
  std::optional<int> wait(int timeout_ms);
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
  unsigned char old_mask_[128] = {};  // sigset_t storage, kept opaque here
};

}  // namespace wwan::cli
