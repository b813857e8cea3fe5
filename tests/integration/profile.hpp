// The emulated modem a parameterised integration test runs the daemon against (wwan-dp --sim
// NAME), and the gtest name of each instance.
#pragma once

#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

namespace wwan::integration {

struct Profile {
  std::string name;                    // --sim NAME
  std::vector<std::string> args = {};  // beyond --sim NAME
  bool reports_dns = true;             // the session reports DNS servers (a static configuration has none)
};

inline std::ostream& operator<<(std::ostream& o, const Profile& p) { return o << p.name; }

// "fm350-rndis" -> "fm350_rndis": gtest parameter names are letters, digits and underscores.
inline std::string test_name(const ::testing::TestParamInfo<Profile>& p) {
  std::string n = p.param.name;
  for (char& c : n)
    if (c == '-' || c == '+') c = '_';
  return n;
}

}  // namespace wwan::integration
