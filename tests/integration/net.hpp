// What the integration tests do with the kernel of their network namespace
// (tests/support/network.hpp, shared with the end-to-end benchmark), under the names they use.
#pragma once

#include "tests/support/network.hpp"

namespace wwan::integration {

using testsupport::ControlPort;
using testsupport::dev_counters;
using testsupport::DevCounters;
using testsupport::enter_fresh_network_namespace;
using testsupport::Fd;
using testsupport::ipv4_address;
using testsupport::link_state;
using testsupport::LinkState;
using testsupport::Pinger;
using testsupport::readable;
using testsupport::snmp;
using testsupport::udp_socket;
using testsupport::write_sysctl;

}  // namespace wwan::integration
