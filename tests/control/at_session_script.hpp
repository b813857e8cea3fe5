// A test fixture for playing the modem to an AT-dialled session (control/huawei_session.hpp,
// control/quectel_session.hpp) line by line: what the session sent since the last look, the
// modem's reply as raw bytes (echo, CR LF, URCs as the vectors frame them), and a clock that moves
// only when the test says so (no sleeps: time is a variable).
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "control/session.hpp"

namespace wwan::control {

template <typename AtSession>
class AtSessionScript : public ::testing::Test {
 protected:
  static constexpr Clock::time_point kStart = Clock::time_point{} + std::chrono::hours(24);

  // What the session sent since the last call, concatenated.
  std::string sent() {
    std::string s;
    for (const ByteVector& c : session->take_commands()) s.append(c.begin(), c.end());
    return s;
  }
  void reply(std::string_view text) {
    session->on_response(std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()), now);
  }
  void at(Clock::time_point t) {
    now = t;
    session->on_timer(now);
  }
  void advance(std::chrono::milliseconds d) { at(now + d); }
  SessionState state() const { return session->status().state; }

  // The 27.007 steps every attempt starts with, answered as a ready modem answers them: AT+CPIN?
  // READY, AT+CFUN? 1 (no AT+CFUN=1 then), and `cgdcont` (the context) OK.
  void answer_sim_radio_and_context(std::string_view cgdcont = "AT+CGDCONT=1,\"IP\",\"internet\"\r") {
    EXPECT_EQ(sent(), "AT+CPIN?\r");
    reply("\r\n+CPIN: READY\r\n\r\nOK\r\n");
    EXPECT_EQ(sent(), "AT+CFUN?\r");
    reply("\r\n+CFUN: 1\r\n\r\nOK\r\n");
    EXPECT_EQ(sent(), cgdcont);
    reply("\r\nOK\r\n");
  }

  std::unique_ptr<AtSession> session;
  Clock::time_point now = kStart;
};

}  // namespace wwan::control
