// The real wwan-dp binary as a child process, its stdout and stderr on pipes, every wait bounded.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

namespace wwan::usbfs_test {

// A child process: the real binary with its stdout and stderr on pipes.
class Child {
 public:
  explicit Child(const std::vector<std::string>& args) {
    const char* exe = std::getenv("WWAN_DP_EXE");
    if (exe == nullptr) throw std::runtime_error("WWAN_DP_EXE is not set (meson sets it)");
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], 1);
      dup2(err[1], 2);
      std::vector<char*> argv{const_cast<char*>(exe)};
      for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execv(exe, argv.data());
      _exit(127);
    }
    close(out[1]);
    close(err[1]);
    out_ = out[0];
    err_ = err[0];
  }
  ~Child() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(out_);
    close(err_);
  }

  // The next stdout line, or "" after 10 s / at EOF (a bound against a hang).
  std::string line() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
      const std::size_t nl = buffered_.find('\n');
      if (nl != std::string::npos) {
        std::string l = buffered_.substr(0, nl);
        buffered_.erase(0, nl + 1);
        return l;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return "";
      pollfd p{out_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) return "";
      char b[512];
      const ssize_t n = read(out_, b, sizeof b);
      if (n <= 0) return "";
      buffered_.append(b, static_cast<std::size_t>(n));
    }
  }
  // Reads lines until one contains `what`; "" if none does within the bound.
  std::string line_with(const std::string& what) {
    for (std::string l = line(); !l.empty(); l = line())
      if (l.find(what) != std::string::npos) return l;
    return "";
  }

  void signal(int sig) { kill(pid_, sig); }

  // Waits for the exit and returns the exit code (-1: killed by a signal, or still running after
  // 10 s, a bound against a hang). Reads stderr to its end first so the child never blocks on it.
  int wait_exit() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (bool eof = false; !eof;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return -1;
      pollfd p{err_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) return -1;
      char b[512];
      const ssize_t n = read(err_, b, sizeof b);
      if (n <= 0) eof = true;
      else err_text_.append(b, static_cast<std::size_t>(n));
    }
    int status = 0;
    if (waitpid(pid_, &status, 0) != pid_) return -1;
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  std::string stderr_text() {
    drain_err();
    return err_text_;
  }

 private:
  void drain_err() {
    const int flags = fcntl(err_, F_GETFL);
    fcntl(err_, F_SETFL, flags | O_NONBLOCK);
    char b[512];
    for (ssize_t n; (n = read(err_, b, sizeof b)) > 0;) err_text_.append(b, static_cast<std::size_t>(n));
    fcntl(err_, F_SETFL, flags);
  }
  pid_t pid_ = -1;
  int out_ = -1, err_ = -1;
  std::string buffered_, err_text_;
};

}  // namespace wwan::usbfs_test
