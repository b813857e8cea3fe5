// Golden bytes written as hex text in the tests: "28 00 00 00 ..." -> bytes. Anything that is not
// a hex digit separates (spaces, line breaks); field-by-field comments go on their own lines in the
// C++ source, outside the strings.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace wwan::test {

inline std::vector<std::uint8_t> hex(const std::string& text) {
  std::vector<std::uint8_t> out;
  int high = -1;
  for (const char c : text) {
    int v = -1;
    if (c >= '0' && c <= '9') v = c - '0';
    else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
    else continue;
    if (high < 0) {
      high = v;
    } else {
      out.push_back(static_cast<std::uint8_t>(high * 16 + v));
      high = -1;
    }
  }
  return out;
}

}  // namespace wwan::test
