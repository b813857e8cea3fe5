// `wwan-dp connect --dev VID:PID [--apn …]`: the control plane alone — claim, negotiate, bring the
// Huawei AT or MBIM session up, print the IP configuration, stay up (redialling) until stopped,
// disconnect and give the modem back. See run_connect's usage text.
#pragma once

#include <ostream>
#include <span>
#include <string_view>

namespace wwan::cli {

int run_connect(std::span<const std::string_view> args, std::ostream& out, std::ostream& err);

}  // namespace wwan::cli
