// Small text helpers for AT lines, shared by the channel (control/at_channel.cpp) and the response
// parsers (control/huawei_at.cpp). Prefixes and echoes are compared without case, as ModemManager
// matches them (vectors/modemmanager_huawei_at.md §B: "^NDISSTATQry:" is accepted). ASCII only on
// purpose: the bytes are the modem's, and <cctype> would follow the C locale.
#pragma once

#include <cstddef>
#include <string_view>

namespace wwan::control::at {

constexpr char ascii_upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }

constexpr bool starts_with_nocase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i)
    if (ascii_upper(s[i]) != ascii_upper(prefix[i])) return false;
  return true;
}

constexpr bool equals_nocase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && starts_with_nocase(a, b);
}

// Without the blanks (space, tab) around it; CR and LF are line ends, not blanks, and are the
// channel's to strip.
constexpr std::string_view trim_blanks(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace wwan::control::at
