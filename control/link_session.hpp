// The session of a plain CDC NCM function (02/0d): there is nothing to dial. The link is up from
// the start and follows the device's NETWORK_CONNECTION notifications (CDC 1.2 §6.3.1 / NCM 1.0
// §7.1); the IP configuration is what the user gave (`--static-ipv4`), since the address of such a
// function comes from DHCP on the link and the DHCP client is not built yet (docs/architecture.md).
// Lets the daemon drive every function through the same SessionRunner.
#pragma once

#include "control/session.hpp"

namespace wwan::control {

class LinkSession final : public Session {
 public:
  explicit LinkSession(IpConfig ip) : ip_(std::move(ip)) {}

  void start(Clock::time_point) override { up(); }
  void stop(Clock::time_point) override { status_.state = SessionState::stopped; }
  void on_response(std::span<const std::uint8_t>, Clock::time_point) override {}
  void on_notification(const cdc::Notification& n, Clock::time_point) override {
    if (n.header.notification != cdc::kNotifyNetworkConnection || status_.state == SessionState::stopped) return;
    if (n.header.value != 0) {
      if (status_.state != SessionState::connected) up();
    } else if (status_.state == SessionState::connected) {
      status_.state = SessionState::disconnected;
      status_.ip = {};
      status_.error = "the device reported NETWORK_CONNECTION disconnected";
      ++status_.drops;
    }
  }
  void on_timer(Clock::time_point) override {}
  std::optional<Clock::time_point> next_timer() const override { return std::nullopt; }
  std::vector<ByteVector> take_commands() override { return {}; }
  const SessionStatus& status() const override { return status_; }

 private:
  void up() {
    status_.state = SessionState::connected;
    status_.ip = ip_;
    status_.error.clear();
    ++status_.connects;
  }
  IpConfig ip_;
  SessionStatus status_;
};

}  // namespace wwan::control
