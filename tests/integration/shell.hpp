// The host's programs as the integration tests use them: a shell command's output and exit
// status, and where a program is on PATH (tests that need one skip without it).
#pragma once

#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <string>

namespace wwan::integration {

// Runs `command` with /bin/sh; its stdout, and the wait status in `status` (-1 if it could not run).
inline std::string run(const std::string& command, int& status) {
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  if (p == nullptr) {
    status = -1;
    return out;
  }
  std::array<char, 4096> chunk{};
  std::size_t n = 0;
  while ((n = std::fread(chunk.data(), 1, chunk.size(), p)) > 0) out.append(chunk.data(), n);
  status = ::pclose(p);
  return out;
}

// The executable `program` in a directory of $PATH (/usr/bin:/bin when unset), or nullopt.
inline std::optional<std::string> find_in_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + program;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return std::nullopt;
}

}  // namespace wwan::integration
