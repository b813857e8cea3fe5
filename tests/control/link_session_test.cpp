// LinkSession: the session of a plain CDC NCM function — up from the start with the user's
// address, following NETWORK_CONNECTION with a debounce so the 1, 0, 1 an alt-setting toggle
// produces is not a disconnect.
#include "control/link_session.hpp"

#include <gtest/gtest.h>

namespace wwan::control {
namespace {

cdc::Notification network_connection(bool connected) {
  cdc::Notification n;
  n.header.notification = cdc::kNotifyNetworkConnection;
  n.header.value = connected ? 1 : 0;
  n.complete = true;
  return n;
}

IpConfig static_ip() {
  IpConfig ip;
  Ipv4Config v4;
  v4.address = eth::Ipv4Address{{10, 64, 64, 2}};
  v4.prefix_length = 30;
  ip.ipv4 = v4;
  return ip;
}

TEST(LinkSession, UpAtStartWithTheGivenAddress) {
  LinkSession s(static_ip());
  const Clock::time_point t0{};
  s.start(t0);
  EXPECT_EQ(s.status().state, SessionState::connected);
  ASSERT_TRUE(s.status().ip.ipv4);
  EXPECT_EQ(s.status().ip.ipv4->address, (eth::Ipv4Address{{10, 64, 64, 2}}));
  EXPECT_TRUE(s.take_commands().empty()) << "nothing to dial";
}

TEST(LinkSession, TheOneZeroOneOfAnAltToggleIsNotADisconnect) {
  LinkSession s(static_ip());
  const Clock::time_point t0{};
  s.start(t0);
  s.on_notification(network_connection(true), t0);
  s.on_notification(network_connection(false), t0 + std::chrono::milliseconds(1));
  s.on_notification(network_connection(true), t0 + std::chrono::milliseconds(2));
  ASSERT_FALSE(s.next_timer()) << "the 1 cancelled the pending disconnect";
  s.on_timer(t0 + kCarrierDebounce * 2);
  EXPECT_EQ(s.status().state, SessionState::connected);
  EXPECT_EQ(s.status().connects, 1u);
  EXPECT_EQ(s.status().drops, 0u);
}

TEST(LinkSession, ALastingZeroDisconnectsAndAOneReconnects) {
  LinkSession s(static_ip());
  const Clock::time_point t0{};
  s.start(t0);
  s.on_notification(network_connection(false), t0);
  ASSERT_TRUE(s.next_timer());
  EXPECT_EQ(*s.next_timer(), t0 + kCarrierDebounce);
  s.on_timer(t0 + kCarrierDebounce - std::chrono::milliseconds(1));
  EXPECT_EQ(s.status().state, SessionState::connected) << "not before the debounce";
  s.on_timer(t0 + kCarrierDebounce);
  EXPECT_EQ(s.status().state, SessionState::disconnected);
  EXPECT_FALSE(s.status().ip.ipv4);
  EXPECT_EQ(s.status().drops, 1u);
  s.on_notification(network_connection(true), t0 + std::chrono::seconds(1));
  EXPECT_EQ(s.status().state, SessionState::connected);
  EXPECT_EQ(s.status().connects, 2u);
  s.stop(t0 + std::chrono::seconds(2));
  EXPECT_EQ(s.status().state, SessionState::stopped);
  s.on_notification(network_connection(true), t0 + std::chrono::seconds(3));
  EXPECT_EQ(s.status().state, SessionState::stopped) << "stopped stays stopped";
}

}  // namespace
}  // namespace wwan::control
