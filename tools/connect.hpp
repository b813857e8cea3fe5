// `wwan-dp connect --dev VID:PID [--apn …]`: the control plane alone — claim, negotiate, bring the
// Huawei AT or MBIM session up, print the IP configuration, stay up (redialling) until stopped,
// disconnect and give the modem back. See run_connect's usage text.
#pragma once

#include <ostream>
#include <span>
#include <string_view>

namespace wwan::cli {

int run_connect(std::span<const std::string_view> args, std::ostream& out, std::ostream& err);

// `wwan-dp fcc-unlock --dev VID:PID`: the FCC unlock on demand — Sierra: QMI DMS 0x555F over
// QMI-over-MBIM when the radio is refused, then the session is closed again; Fibocom FM350-GL:
// AT+GTFCCLOCKGEN / AT+GTFCCLOCKVER over its serial AT port (control/fcc_unlock_at.hpp).
int run_fcc_unlock(std::span<const std::string_view> args, std::ostream& out, std::ostream& err);

}  // namespace wwan::cli
