// resolv.conf writing and removal (see resolv_conf.hpp).
#include "tun/resolv_conf.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace wwan::tun {
namespace {

constexpr std::string_view kMarker = "# written by wwan-dp";

std::string failure(const std::string& doing, int error) { return doing + ": " + std::strerror(error); }

// The directory of `path` ("." for a bare file name), to fsync after the rename.
std::string directory_of(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

bool write_all(int fd, std::string_view text) {
  while (!text.empty()) {
    const ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    text.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace

std::string format_resolv_conf(std::string_view ifname, std::span<const eth::Ipv4Address> v4,
                               std::span<const eth::Ipv6Address> v6) {
  std::string text(kMarker);
  text += " for ";
  for (char c : ifname) text += (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) ? '?' : c;
  text += '\n';
  char address[INET6_ADDRSTRLEN];
  for (const auto& a : v4) {
    if (inet_ntop(AF_INET, a.bytes.data(), address, sizeof address) != nullptr)
      text += std::string("nameserver ") + address + "\n";
  }
  for (const auto& a : v6) {
    if (inet_ntop(AF_INET6, a.bytes.data(), address, sizeof address) != nullptr)
      text += std::string("nameserver ") + address + "\n";
  }
  return text;
}

bool write_resolv_conf(const std::string& path, std::string_view ifname, std::span<const eth::Ipv4Address> v4,
                       std::span<const eth::Ipv6Address> v6, std::string& error) {
  const std::string text = format_resolv_conf(ifname, v4, v6);
  const std::string tmp = path + ".tmp";
  // O_NOFOLLOW: wwan-dp runs as root; a symlink planted at PATH.tmp must not redirect the write.
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) {
    error = failure("writing the DNS servers of " + std::string(ifname) + ": creating " + tmp, errno);
    return false;
  }
  // Readable by every resolver whatever the umask.
  bool ok = ::fchmod(fd, 0644) == 0 && write_all(fd, text) && ::fsync(fd) == 0;
  int saved = errno;
  if (::close(fd) != 0 && ok) {
    ok = false;
    saved = errno;
  }
  if (!ok) {
    ::unlink(tmp.c_str());
    error = failure("writing the DNS servers of " + std::string(ifname) + " to " + tmp, saved);
    return false;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    saved = errno;
    ::unlink(tmp.c_str());
    error = failure("renaming " + tmp + " to " + path, saved);
    return false;
  }
  // The rename is durable once the directory is on disk too. Best effort: the file itself is
  // complete either way.
  const int dir = ::open(directory_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return true;
}

bool remove_resolv_conf(const std::string& path, std::string& error) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT) return true;
    error = failure("removing " + path + ": opening it", errno);
    return false;
  }
  char head[kMarker.size()];
  std::size_t got = 0;
  while (got < sizeof head) {
    const ssize_t n = ::read(fd, head + got, sizeof head - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  if (std::string_view(head, got) != kMarker) {
    error = "not removing " + path + ": it was not written by wwan-dp (its first line is not \"" +
            std::string(kMarker) + " ...\"); someone replaced it, so it is left in place";
    return false;
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    error = failure("removing " + path, errno);
    return false;
  }
  return true;
}

}  // namespace wwan::tun
