#include "tests/support/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <sstream>

#include "tests/support/network.hpp"

namespace wwan::testsupport {

namespace {

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("killed by signal ") + strsignal(WTERMSIG(status));
  return "wait status " + std::to_string(status);
}

constexpr std::size_t kStderrKeep = 16384;  // the tail of stderr kept for failure messages

}  // namespace

Daemon::~Daemon() {
  if (pid_ > 0 && !status_) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  for (int fd : {out_fd_, err_fd_, pidfd_})
    if (fd >= 0) ::close(fd);
}

bool Daemon::start(const std::string& exe, const std::vector<std::string>& args) {
  command_ = exe;
  for (const std::string& a : args) command_ += " " + a;
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0) {
    start_error_ = std::string("pipe2: ") + std::strerror(errno);
    return false;
  }
  if (::pipe2(err, O_CLOEXEC) != 0) {
    start_error_ = std::string("pipe2: ") + std::strerror(errno);
    ::close(out[0]);
    ::close(out[1]);
    return false;
  }
  std::vector<std::string> storage;
  storage.push_back(exe);
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& s : storage) argv.push_back(s.data());
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();

  const pid_t pid = ::fork();
  if (pid < 0) {
    start_error_ = std::string("fork: ") + std::strerror(errno);
    for (const int fd : {out[0], out[1], err[0], err[1]}) ::close(fd);
    return false;
  }
  if (pid == 0) {
    // The child: only async-signal-safe calls until exec.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(err[1], STDERR_FILENO);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (const int fd : inherited_) ::fcntl(fd, F_SETFD, 0);  // no FD_CLOEXEC: survives the exec
    ::execv(argv[0], argv.data());
    const char* why = std::strerror(errno);
    (void)!::write(STDERR_FILENO, "exec failed: ", 13);
    (void)!::write(STDERR_FILENO, why, std::strlen(why));
    ::_exit(127);
  }
  pid_ = pid;
  ::close(out[1]);
  ::close(err[1]);
  out_fd_ = out[0];
  err_fd_ = err[0];
  ::fcntl(out_fd_, F_SETFL, O_NONBLOCK);
  ::fcntl(err_fd_, F_SETFL, O_NONBLOCK);
  pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));  // -1 on kernels before 5.3: polled instead
  return true;
}

void Daemon::reap_nonblocking() {
  if (pid_ <= 0 || status_) return;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) status_ = status;
}

bool Daemon::pump(int timeout_ms) {
  std::array<pollfd, 3> fds{};
  nfds_t n = 0;
  if (!out_eof_) fds[n++] = {out_fd_, POLLIN, 0};
  if (!err_eof_) fds[n++] = {err_fd_, POLLIN, 0};
  if (pidfd_ >= 0 && !status_) fds[n++] = {pidfd_, POLLIN, 0};
  if (n == 0) return false;
  // Without a pidfd the exit is only seen through the pipes' EOF; poll in short steps then.
  if (pidfd_ < 0 && !status_) timeout_ms = std::min(timeout_ms, 20);
  const int r = ::poll(fds.data(), n, timeout_ms);
  if (r < 0 && errno != EINTR) return false;
  std::array<char, 65536> chunk{};
  const auto read_all = [&](int fd, std::string& into, bool& eof, bool keep_tail) {
    for (;;) {
      const ssize_t got = ::read(fd, chunk.data(), chunk.size());
      if (got > 0) {
        into.append(chunk.data(), static_cast<std::size_t>(got));
        if (keep_tail && into.size() > 2 * kStderrKeep) into.erase(0, into.size() - kStderrKeep);
        continue;
      }
      if (got == 0) eof = true;
      if (got < 0 && errno == EINTR) continue;
      return;
    }
  };
  if (!out_eof_) read_all(out_fd_, out_buffer_, out_eof_, false);
  if (!err_eof_) read_all(err_fd_, err_text_, err_eof_, true);
  reap_nonblocking();
  return true;
}

bool Daemon::read_line(Clock::time_point deadline, std::string& line) {
  for (;;) {
    const std::size_t nl = out_buffer_.find('\n');
    if (nl != std::string::npos) {
      line = out_buffer_.substr(0, nl);
      out_buffer_.erase(0, nl + 1);
      return true;
    }
    if (out_eof_) return false;
    if (Clock::now() >= deadline) return false;
    if (!pump(remaining_ms(deadline))) return false;
  }
}

void Daemon::drain() {
  pump(0);
  std::string line;
  // Parse what is complete (keeps history in order) without waiting for more.
  while (out_buffer_.find('\n') != std::string::npos && read_line(Clock::now(), line)) {
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("event"))
      bad_lines_.push_back(line);
    else
      history_.push_back(std::move(j));
  }
}

void Daemon::idle(milliseconds duration) {
  const Clock::time_point until = Clock::now() + duration;
  while (Clock::now() < until) {
    if (!pump(remaining_ms(until))) {
      ::poll(nullptr, 0, remaining_ms(until));  // nothing left to read: the pipes are closed
      break;
    }
  }
  drain();
}

std::optional<json> Daemon::wait_for(std::string_view name, milliseconds timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  std::string line;
  while (read_line(deadline, line)) {
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("event") || !j["event"].is_string()) {
      bad_lines_.push_back(line);
      continue;
    }
    history_.push_back(j);
    if (j["event"].get<std::string>() == name) return j;
  }
  return std::nullopt;
}

bool Daemon::signal(int sig) {
  reap_nonblocking();
  if (pid_ <= 0 || status_) return false;
  return ::kill(pid_, sig) == 0;
}

std::optional<json> Daemon::stats(milliseconds timeout) {
  drain();
  if (!signal(SIGUSR1)) return std::nullopt;
  return wait_for("stats", timeout);
}

std::optional<int> Daemon::wait_exit(milliseconds timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  for (;;) {
    reap_nonblocking();
    if (status_) {
      drain();
      return status_;
    }
    if (Clock::now() >= deadline) return std::nullopt;
    if (!pump(remaining_ms(deadline))) {
      // Both pipes closed and no pidfd: the exit is near; wait for it in short bounded steps.
      ::poll(nullptr, 0, std::min(remaining_ms(deadline), 10));
    }
  }
}

int Daemon::stop(milliseconds grace) {
  if (pid_ <= 0) return -1;
  if (!status_) {
    signal(SIGTERM);
    if (!wait_exit(grace)) {
      signal(SIGKILL);
      wait_exit(milliseconds(60'000));
    }
  }
  return status_.value_or(-1);
}

std::size_t Daemon::count(std::string_view name) const {
  return static_cast<std::size_t>(std::count_if(history_.begin(), history_.end(), [&](const json& j) {
    return j.contains("event") && j["event"].is_string() && j["event"].get<std::string>() == name;
  }));
}

std::string Daemon::describe() const {
  std::ostringstream o;
  o << "\n  command: " << command_;
  if (!start_error_.empty()) o << "\n  not started: " << start_error_;
  o << "\n  events (" << history_.size() << "):";
  const std::size_t first = history_.size() > 12 ? history_.size() - 12 : 0;
  if (first > 0) o << " ... " << first << " earlier";
  for (std::size_t i = first; i < history_.size(); ++i) {
    std::string text = history_[i].dump();
    if (text.size() > 600) text = text.substr(0, 600) + "...";
    o << "\n    " << text;
  }
  for (const std::string& l : bad_lines_) o << "\n  NOT a JSON event on stdout: " << l.substr(0, 300);
  if (!out_buffer_.empty()) o << "\n  unterminated stdout: " << out_buffer_.substr(0, 300);
  o << "\n  daemon: " << (status_ ? describe_status(*status_) : pid_ > 0 ? "running" : "not started");
  o << "\n  stderr (tail):\n" << (err_text_.size() > kStderrKeep ? err_text_.substr(err_text_.size() - kStderrKeep) : err_text_);
  return o.str();
}

std::optional<std::uint64_t> number_at(const json& object, std::string_view dotted) {
  const json* at = &object;
  while (!dotted.empty()) {
    const std::size_t dot = dotted.find('.');
    const std::string key(dotted.substr(0, dot));
    if (!at->is_object() || !at->contains(key)) return std::nullopt;
    at = &(*at)[key];
    dotted = dot == std::string_view::npos ? std::string_view{} : dotted.substr(dot + 1);
  }
  if (!at->is_number_unsigned() && !(at->is_number_integer() && at->get<std::int64_t>() >= 0)) return std::nullopt;
  return at->get<std::uint64_t>();
}

}  // namespace wwan::testsupport
