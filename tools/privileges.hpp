// Least privilege for the daemon (docs/reliability.md "Least privilege"):
//   - InstanceLock: one wwan-dp per modem. An flock(2) on a file under /run/lock keyed by what the
//     daemon drives (the modem's bus-port, or the emulated profile + TUN + network namespace); a
//     second instance is refused with one line naming the holder's pid.
//   - inherited_descriptors / close_descriptors: the descriptors the process was started with
//     (beyond stdin/stdout/stderr), which it never needs, closed when it drops privileges.
//   - drop_privileges: after setup, become user NAME (supplementary groups, gid, uid: all three of
//     real/effective/saved) keeping CAP_NET_ADMIN only — the daemon still writes addresses and
//     routes over rtnetlink on every redial and recreates a deleted TUN — with every other
//     capability gone from the bounding set and no_new_privs set. Threads created afterwards
//     inherit exactly that; drop_thread_capabilities() lets a thread that needs none give up even
//     CAP_NET_ADMIN (the data-path workers only read and write the TUN they were handed).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wwan::cli {

// A user to become: resolved at startup, so that a typo fails before anything is set up.
struct RunAsUser {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
};
// nullopt and one line in `error` when there is no such user.
std::optional<RunAsUser> resolve_user(std::string_view name, std::string& error);

// Drops to `user` as described at the top. False and one line in `error` if any step fails (the
// caller must then stop: running on as root after being asked not to is not an option).
bool drop_privileges(const RunAsUser& user, std::string& error);

// Drops every capability of the calling thread (effective, permitted, inheritable). Other threads
// keep theirs (capabilities are per thread). False if the kernel refused.
bool drop_thread_capabilities();

// The open descriptors above 2, now (from /proc/self/fd).
std::vector<int> open_descriptors();
// Closes each of `fds`; how many were open.
std::size_t close_descriptors(const std::vector<int>& fds);

// The name of the lock for a modem: characters outside [A-Za-z0-9._-] become '_'.
std::string lock_key(std::string_view text);

class InstanceLock {
 public:
  // Takes the lock `<dir>/wwan-dp-<key>.lock` (dir: /run/lock, else /var/lock, else /tmp) without
  // waiting. nullopt and one line in `error` when another process holds it ("another wwan-dp
  // (pid N) is already running on WHAT ...") or the file cannot be made. `what` names the modem
  // in that line.
  static std::optional<InstanceLock> acquire(const std::string& key, const std::string& what, std::string& error);
  InstanceLock(InstanceLock&& o) noexcept : fd_(o.fd_), path_(std::move(o.path_)) { o.fd_ = -1; }
  InstanceLock& operator=(InstanceLock&& o) noexcept {
    std::swap(fd_, o.fd_);
    std::swap(path_, o.path_);
    return *this;
  }
  InstanceLock(const InstanceLock&) = delete;
  InstanceLock& operator=(const InstanceLock&) = delete;
  // Closing the descriptor releases the lock; the file stays (unlinking it would race with a
  // process that opened it and is about to lock it).
  ~InstanceLock();
  const std::string& path() const { return path_; }

 private:
  InstanceLock(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_ = -1;
  std::string path_;
};

}  // namespace wwan::cli
