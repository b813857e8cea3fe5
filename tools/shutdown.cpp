#include "tools/shutdown.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

namespace wwan::cli {

static_assert(sizeof(sigset_t) <= 128, "old_mask_ storage");

ShutdownSignals::ShutdownSignals(std::initializer_list<int> also) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  for (const int s : also) sigaddset(&set, s);
  sigset_t old;
  if (pthread_sigmask(SIG_BLOCK, &set, &old) != 0) throw std::runtime_error("cannot block SIGINT/SIGTERM");
  std::memcpy(old_mask_, &old, sizeof old);
  fd_ = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (fd_ < 0) throw std::runtime_error(std::string("signalfd: ") + std::strerror(errno));
}

ShutdownSignals::~ShutdownSignals() {
  if (fd_ >= 0) close(fd_);
  sigset_t old;
  std::memcpy(&old, old_mask_, sizeof old);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

std::optional<int> ShutdownSignals::wait(int timeout_ms) {
  pollfd p{fd_, POLLIN, 0};
  const int n = poll(&p, 1, timeout_ms);
  if (n <= 0) return std::nullopt;
  signalfd_siginfo info{};
  if (read(fd_, &info, sizeof info) != static_cast<ssize_t>(sizeof info)) return std::nullopt;
  return static_cast<int>(info.ssi_signo);
}

}  // namespace wwan::cli
