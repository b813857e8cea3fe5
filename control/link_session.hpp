// The session of a plain CDC NCM function (02/0d): there is nothing to dial. The link is up from
// the start and follows the device's NETWORK_CONNECTION notifications (CDC 1.2 §6.3.1 / NCM 1.0
// §7.1); the IP configuration is what the user gave (`--static-ipv4`), or empty: the address of
// such a function comes from DHCP on the link, which control/link_autoconf.hpp runs while this
// session is connected (docs/dhcp.md). Lets the daemon drive every function through the same
// SessionRunner.
//
// NETWORK_CONNECTION(0) takes effect only if no NETWORK_CONNECTION(1) follows within
// kCarrierDebounce: every SET_INTERFACE alt 0 → alt 1 toggle of the negotiation makes an NCM
// device (Linux's f_ncm gadget, the emulated generic-ncm) announce 1, 0, 1 within milliseconds,
// and those arrive queued after the session has started. A kernel netdev would only flip its
// carrier; here a disconnect would strip the TUN's address, so a flap is not a disconnect.
#pragma once

#include "control/session.hpp"

namespace wwan::control {

inline constexpr std::chrono::milliseconds kCarrierDebounce{300};

class LinkSession final : public Session {
 public:
  explicit LinkSession(IpConfig ip) : ip_(std::move(ip)) {}

  void start(Clock::time_point) override { up(); }
  void stop(Clock::time_point) override { status_.state = SessionState::stopped; }
  void on_response(std::span<const std::uint8_t>, Clock::time_point) override {}
  void on_notification(const cdc::Notification& n, Clock::time_point now) override {
    if (n.header.notification != cdc::kNotifyNetworkConnection || status_.state == SessionState::stopped) return;
    if (n.header.value != 0) {
      down_at_.reset();
      if (status_.state != SessionState::connected) up();
    } else if (status_.state == SessionState::connected && !down_at_) {
      down_at_ = now + kCarrierDebounce;
    }
  }
  void on_timer(Clock::time_point now) override {
    if (!down_at_ || now < *down_at_) return;
    down_at_.reset();
    status_.state = SessionState::disconnected;
    status_.ip = {};
    status_.error = "the device reported NETWORK_CONNECTION disconnected";
    ++status_.drops;
  }
  std::optional<Clock::time_point> next_timer() const override { return down_at_; }
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
  std::optional<Clock::time_point> down_at_;  // a NETWORK_CONNECTION(0) waiting out the debounce
};

}  // namespace wwan::control
