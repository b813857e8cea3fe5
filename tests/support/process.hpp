// The wwan-dp daemon as a child process, seen only from outside: its JSON events on stdout (one
// object per line), its stderr (kept for failure messages), its exit status. Every wait has a
// deadline and polls the pipes (and a pidfd for the exit), so nothing here sleeps and hopes.
// Shared by the integration tests (tests/integration/daemon.hpp) and the end-to-end benchmark
// (bench/e2e_support.hpp); no GoogleTest in it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wwan::testsupport {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

class Daemon {
 public:
  Daemon() = default;
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;
  // Kills (SIGKILL) and reaps the daemon if it still runs.
  ~Daemon();

  // fork + exec `exe` with `args` (argv[1..]); stdout and stderr to pipes. The child gets SIGKILL
  // if this process dies (PR_SET_PDEATHSIG). False (and describe() says why) if the fork or pipes
  // failed; an exec failure shows as exit status 127 with the reason on its stderr.
  bool start(const std::string& exe, const std::vector<std::string>& args);
  // Before start(): the child inherits `fd` (at the same number) across exec, as a descriptor a
  // careless parent leaves open would be. The caller keeps ownership.
  void inherit(int fd) { inherited_.push_back(fd); }

  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0 && !status_; }

  // The next event whose "event" equals `name` within `timeout`; the events skipped on the way
  // are kept in history(). nullopt on timeout or end of stdout (see describe()).
  std::optional<json> wait_for(std::string_view name, milliseconds timeout);

  // Reads whatever stdout and stderr hold now, without waiting.
  void drain();
  // Keeps reading stdout and stderr for `duration` (events go to history()): the bounded pause
  // between two polls of counters that have no event of their own.
  void idle(milliseconds duration);

  // Sends `signal`; false if the daemon is gone.
  bool signal(int signal);

  // SIGUSR1 and the stats event that follows (events already in the pipe are read first, so the
  // answer is not an older periodic one sitting in the buffer).
  std::optional<json> stats(milliseconds timeout = milliseconds(5000));

  // Waits for the daemon to exit (reaping it) while draining its pipes; the wait status, or
  // nullopt on timeout.
  std::optional<int> wait_exit(milliseconds timeout);
  // SIGTERM, then SIGKILL if it has not exited after `grace`; reaps it. The wait status, or -1 if
  // it was never started.
  int stop(milliseconds grace);

  // The next line of stdout, whatever it is (not parsed, not in history()), within `timeout`;
  // false on timeout or end of stdout. For children whose output is not events (usbfs_bench).
  bool next_line(milliseconds timeout, std::string& line) { return read_line(Clock::now() + timeout, line); }

  // What the daemon wrote to stderr so far.
  const std::string& stderr_text() const { return err_text_; }

  // Every event read so far, in order (the parsed objects).
  const std::vector<json>& history() const { return history_; }
  std::size_t count(std::string_view name) const;

  // For failure messages: the command line, the events seen (the last few), the exit status if
  // it exited, and the tail of stderr.
  std::string describe() const;

 private:
  // Reads both pipes until a whole stdout line is buffered or `deadline`; false on timeout / EOF.
  bool read_line(Clock::time_point deadline, std::string& line);
  bool pump(int timeout_ms);  // one poll over the pipes (and pidfd); false if nothing more will come
  void reap_nonblocking();

  pid_t pid_ = -1;
  int out_fd_ = -1, err_fd_ = -1, pidfd_ = -1;
  bool out_eof_ = false, err_eof_ = false;
  std::optional<int> status_;
  std::string command_;
  std::string out_buffer_, err_text_;
  std::vector<json> history_;
  std::vector<std::string> bad_lines_;  // stdout lines that were not JSON objects
  std::vector<int> inherited_;          // descriptors the child keeps across exec (inherit())
  std::string start_error_;             // why start() failed (for describe())
};

// The value at a dotted path ("rx.dropped", "sim.network.sink_packets"), or nullopt if absent / not an unsigned number.
std::optional<std::uint64_t> number_at(const json& object, std::string_view dotted);

}  // namespace wwan::testsupport
