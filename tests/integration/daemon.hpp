// The wwan-dp daemon as a child process (tests/support/process.hpp, shared with the end-to-end
// benchmark), under the names the integration tests use.
#pragma once

#include "tests/support/process.hpp"

namespace wwan::integration {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

using testsupport::Daemon;
using testsupport::number_at;

}  // namespace wwan::integration
