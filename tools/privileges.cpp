#include "tools/privileges.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>

namespace wwan::cli {

namespace {

std::string errno_text(int e) { return std::strerror(e); }

// capset(2) without libcap: version 3 takes two 32-bit words per set.
bool set_capabilities(std::uint64_t effective, std::uint64_t permitted) {
  __user_cap_header_struct header{};
  header.version = _LINUX_CAPABILITY_VERSION_3;
  header.pid = 0;  // this thread
  std::array<__user_cap_data_struct, 2> data{};
  for (std::size_t i = 0; i < 2; ++i) {
    data[i].effective = static_cast<std::uint32_t>(effective >> (32 * i));
    data[i].permitted = static_cast<std::uint32_t>(permitted >> (32 * i));
    data[i].inheritable = 0;
  }
  return ::syscall(SYS_capset, &header, data.data()) == 0;
}

// The highest capability number this kernel knows (newer than our headers, possibly).
int last_capability() {
  std::ifstream f("/proc/sys/kernel/cap_last_cap");
  int n = -1;
  if (f >> n && n >= 0 && n < 64) return n;
  return CAP_LAST_CAP;
}

}  // namespace

std::optional<RunAsUser> resolve_user(std::string_view name, std::string& error) {
  const std::string n(name);
  std::array<char, 16384> buffer{};
  passwd pw{};
  passwd* found = nullptr;
  const int rc = ::getpwnam_r(n.c_str(), &pw, buffer.data(), buffer.size(), &found);
  if (rc != 0 || found == nullptr) {
    error = "--user " + n + ": no such user" + (rc != 0 ? " (" + errno_text(rc) + ")" : std::string()) +
            "; create it (e.g. useradd --system --no-create-home " + n + ") or name an existing one";
    return std::nullopt;
  }
  return RunAsUser{n, found->pw_uid, found->pw_gid};
}

bool drop_privileges(const RunAsUser& user, std::string& error) {
  const auto fail = [&error](const std::string& step, int e) {
    error = "cannot drop privileges to the --user user: " + step + " failed (" + errno_text(e) +
            "); start wwan-dp as root (or with CAP_SETUID, CAP_SETGID, CAP_SETPCAP and CAP_NET_ADMIN)";
    return false;
  };
  // Keep the permitted set through the uid change (the effective set is cleared by it anyway).
  if (::prctl(PR_SET_KEEPCAPS, 1L, 0L, 0L, 0L) != 0) return fail("PR_SET_KEEPCAPS", errno);
  // Nothing this process or a child could exec may ever regain another capability.
  const int last = last_capability();
  for (int cap = 0; cap <= last; ++cap) {
    if (cap == CAP_NET_ADMIN) continue;
    if (::prctl(PR_CAPBSET_DROP, static_cast<unsigned long>(cap), 0L, 0L, 0L) != 0 && errno != EINVAL)
      return fail("PR_CAPBSET_DROP", errno);
  }
  // Supplementary groups first (needs CAP_SETGID), the user's own: a group that may open the
  // modem's usbfs node (a udev rule) is how re-enumeration keeps working without root.
  if (::initgroups(user.name.c_str(), user.gid) != 0) return fail("initgroups", errno);
  if (::setresgid(user.gid, user.gid, user.gid) != 0) return fail("setresgid", errno);
  if (::setresuid(user.uid, user.uid, user.uid) != 0) return fail("setresuid", errno);
  constexpr std::uint64_t kNetAdmin = std::uint64_t{1} << CAP_NET_ADMIN;
  if (!set_capabilities(kNetAdmin, kNetAdmin)) return fail("capset(CAP_NET_ADMIN)", errno);
  if (::prctl(PR_SET_KEEPCAPS, 0L, 0L, 0L, 0L) != 0) return fail("PR_SET_KEEPCAPS off", errno);
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1L, 0L, 0L, 0L) != 0) return fail("PR_SET_NO_NEW_PRIVS", errno);
  // Proof, not hope: the way back must be closed.
  if (user.uid != 0 && (::setuid(0) == 0 || ::seteuid(0) == 0)) {
    error = "dropped to --user " + user.name + " but could become root again: refusing to run";
    return false;
  }
  return true;
}

bool drop_thread_capabilities() { return set_capabilities(0, 0); }

std::vector<int> open_descriptors() {
  std::vector<int> fds;
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return fds;
  const int own = ::dirfd(d);
  while (const dirent* e = ::readdir(d)) {
    int fd = -1;
    const std::string_view name(e->d_name);
    const auto [p, ec] = std::from_chars(name.data(), name.data() + name.size(), fd);
    if (ec != std::errc() || p != name.data() + name.size() || fd <= 2 || fd == own) continue;
    fds.push_back(fd);
  }
  ::closedir(d);
  return fds;
}

std::size_t close_descriptors(const std::vector<int>& fds) {
  std::size_t n = 0;
  for (const int fd : fds)
    if (::close(fd) == 0) ++n;
  return n;
}

std::string lock_key(std::string_view text) {
  std::string k(text);
  for (char& c : k) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '-' || c == '_';
    if (!ok) c = '_';
  }
  return k;
}

std::optional<InstanceLock> InstanceLock::acquire(const std::string& key, const std::string& what,
                                                  std::string& error) {
  std::string dir = "/tmp";
  for (const char* candidate : {"/run/lock", "/var/lock"}) {
    struct stat st{};
    if (::stat(candidate, &st) == 0 && S_ISDIR(st.st_mode)) {
      dir = candidate;
      break;
    }
  }
  const std::string path = dir + "/wwan-dp-" + lock_key(key) + ".lock";
  // O_NOFOLLOW: the lock directory is world-writable; a symlink planted there is not followed.
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) {
    error = "cannot create the lock file " + path + " (" + errno_text(errno) + "): run as root or make " + dir +
            " writable";
    return std::nullopt;
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int e = errno;
    std::array<char, 32> pid{};
    const ssize_t n = ::pread(fd, pid.data(), pid.size() - 1, 0);
    ::close(fd);
    std::string holder = n > 0 ? std::string(pid.data(), static_cast<std::size_t>(n)) : std::string();
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    if (e == EWOULDBLOCK) {
      error = "another wwan-dp" + (holder.empty() ? std::string() : " (pid " + holder + ")") +
              " is already running on " + what + " (lock " + path + "): stop it first, or choose another modem";
    } else {
      error = "cannot lock " + path + " (" + errno_text(e) + ")";
    }
    return std::nullopt;
  }
  const std::string me = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) == 0) (void)!::pwrite(fd, me.data(), me.size(), 0);
  return InstanceLock(fd, path);
}

InstanceLock::~InstanceLock() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace wwan::cli
