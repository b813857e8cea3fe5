// at::CommandQueue tests: the commands go out byte for byte, and what the modem answers reaches the
// session's handlers in the order it arrived, each final result with the step its command was
// submitted for; answers the session cancelled or forgot never reach on_result. The modem text is
// V.250 framing as the vectors show it (reference/vectors/modemmanager_huawei_at.md §J, §K1, §K2).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "control/at_command_queue.hpp"

namespace wwan::control::at {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

const Clock::time_point t0 = Clock::time_point{} + 1h;

enum class Step : std::uint8_t { cpin, cfun, dial, poll };

const char* name(Step s) {
  switch (s) {
    case Step::cpin: return "cpin";
    case Step::cfun: return "cfun";
    case Step::dial: return "dial";
    case Step::poll: return "poll";
  }
  return "?";
}

// A session in miniature: the queue, and a log of what reached its handlers.
struct Rig {
  CommandQueue<Step> queue{AtChannelOptions{.max_queued_commands = 2, .default_timeout = 5000ms}};
  Clock::time_point now = t0;
  std::vector<std::string> log;  // "urc <line>" / "<step> <result> <information lines...>"

  void on_unsolicited(const std::string& line) { log.push_back("urc " + line); }
  void on_result(Step step, const AtResponse& r) {
    std::string s = std::string(name(step)) + " " + to_string(r.result);
    for (const std::string& l : r.lines) s += " [" + l + "]";
    log.push_back(s);
  }
  void reply(std::string_view text) {
    queue.feed(
        std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()), now,
        [&](const std::string& line) { on_unsolicited(line); }, [&](Step s, const AtResponse& r) { on_result(s, r); });
  }
  void advance(std::chrono::milliseconds d) {
    now += d;
    queue.on_timer(
        now, [&](const std::string& line) { on_unsolicited(line); }, [&](Step s, const AtResponse& r) { on_result(s, r); });
  }
  std::string sent() {
    std::string s;
    for (const auto& c : queue.take_output()) s.append(c.begin(), c.end());
    return s;
  }
};

TEST(AtCommandQueue, AnswersReachTheirStepsInOrderWithUrcsWhereTheyCame) {
  Rig r;
  ASSERT_TRUE(r.queue.submit(Step::cpin, "AT+CPIN?", r.now, 0ms));
  ASSERT_TRUE(r.queue.submit(Step::cfun, "AT+CFUN?", r.now, 0ms));
  EXPECT_EQ(r.queue.pending(), 2u);
  EXPECT_EQ(r.sent(), "AT+CPIN?\r");  // one command in flight; the second waits
  // Echo, a URC before the answer (§J: "interleaved with command responses"), the answer, OK.
  r.reply("AT+CPIN?\r\r\n^RSSI:19\r\n\r\n+CPIN: READY\r\n\r\nOK\r\n");
  EXPECT_EQ(r.sent(), "AT+CFUN?\r");
  r.reply("\r\n+CFUN: 1\r\n\r\nOK\r\n\r\n^NDISSTAT:0,,,\"IPV4\"\r\n");
  EXPECT_THAT(r.log, ElementsAre("urc ^RSSI:19", "cpin OK [+CPIN: READY]", "cfun OK [+CFUN: 1]",
                                 "urc ^NDISSTAT:0,,,\"IPV4\""));
  EXPECT_EQ(r.queue.pending(), 0u);
  EXPECT_FALSE(r.queue.busy());
}

TEST(AtCommandQueue, ErrorsCarryTheirCodeToTheStep) {
  Rig r;
  ASSERT_TRUE(r.queue.submit(Step::dial, "AT^NDISDUP=1,1,\"internet\"", r.now, 0ms));
  EXPECT_EQ(r.sent(), "AT^NDISDUP=1,1,\"internet\"\r");
  r.reply("\r\n+CME ERROR: 30\r\n");  // 27.007 §9.2: no network service
  EXPECT_THAT(r.log, ElementsAre("dial +CME ERROR"));
}

TEST(AtCommandQueue, CancelQueuedLetsTheCommandInFlightAnswerItsOwnStep) {
  Rig r;
  ASSERT_TRUE(r.queue.submit(Step::cpin, "AT+CPIN?", r.now, 0ms));
  ASSERT_TRUE(r.queue.submit(Step::cfun, "AT+CFUN?", r.now, 0ms));
  EXPECT_EQ(r.sent(), "AT+CPIN?\r");
  r.queue.cancel_queued();
  EXPECT_EQ(r.queue.pending(), 1u);
  ASSERT_TRUE(r.queue.submit(Step::dial, "AT^NDISDUP=1,0", r.now, 0ms));
  EXPECT_EQ(r.sent(), "") << "behind the command in flight";
  // The in-flight AT+CPIN?'s answer is its own, not the hang-up's; AT+CFUN? never goes out.
  r.reply("\r\n+CPIN: READY\r\n\r\nOK\r\n");
  EXPECT_EQ(r.sent(), "AT^NDISDUP=1,0\r");
  r.reply("\r\nERROR\r\n");
  EXPECT_THAT(r.log, ElementsAre("cpin OK [+CPIN: READY]", "dial ERROR"));
}

TEST(AtCommandQueue, ForgottenAnswersAreDroppedButTheChannelStillRunsTheCommand) {
  Rig r;
  ASSERT_TRUE(r.queue.submit(Step::poll, "AT^NDISSTATQRY?", r.now, 0ms));
  EXPECT_EQ(r.sent(), "AT^NDISSTATQRY?\r");
  r.queue.forget();
  EXPECT_EQ(r.queue.pending(), 0u);
  EXPECT_TRUE(r.queue.busy()) << "still in flight on the wire";
  ASSERT_TRUE(r.queue.submit(Step::cpin, "AT+CPIN?", r.now, 0ms));
  r.reply("\r\n^NDISSTATQRY: 1,,,\"IPV4\"\r\n\r\nOK\r\n");
  EXPECT_EQ(r.sent(), "AT+CPIN?\r");
  r.reply("\r\n+CPIN: READY\r\n\r\nOK\r\n");
  EXPECT_THAT(r.log, ElementsAre("cpin OK [+CPIN: READY]"));
}

TEST(AtCommandQueue, TimeoutsRetryThenReachTheStepAndTimersMerge) {
  Rig r;
  const std::optional<Clock::time_point> none;
  EXPECT_EQ(r.queue.next_timer(), none);
  EXPECT_EQ(r.queue.next_timer({none, t0 + 7s}), t0 + 7s) << "the session's own timer alone";
  ASSERT_TRUE(r.queue.submit(Step::cpin, "AT+CPIN?", r.now, 2000ms, 1));
  EXPECT_EQ(r.sent(), "AT+CPIN?\r");
  EXPECT_EQ(r.queue.next_timer(), t0 + 2s);
  EXPECT_EQ(r.queue.next_timer({t0 + 7s, none}), t0 + 2s) << "the channel's timeout is earlier";
  EXPECT_EQ(r.queue.next_timer({t0 + 1s}), t0 + 1s) << "the session's timer is earlier";
  r.advance(2s);
  EXPECT_EQ(r.sent(), "AT+CPIN?\r") << "the one retry";
  EXPECT_THAT(r.log, IsEmpty());
  r.advance(2s);
  EXPECT_THAT(r.log, ElementsAre("cpin timeout"));
  EXPECT_EQ(r.queue.channel().counters().timeouts, 1u);
  EXPECT_EQ(r.queue.pending(), 0u);
}

TEST(AtCommandQueue, CancelAllEndsEverythingAndNothingIsDispatched) {
  Rig r;
  ASSERT_TRUE(r.queue.submit(Step::cpin, "AT+CPIN?", r.now, 0ms));
  ASSERT_TRUE(r.queue.submit(Step::cfun, "AT+CFUN?", r.now, 0ms));
  EXPECT_EQ(r.sent(), "AT+CPIN?\r");
  r.queue.cancel_all();
  EXPECT_EQ(r.queue.pending(), 0u);
  EXPECT_FALSE(r.queue.busy());
  r.reply("\r\nOK\r\n");  // late: a stray final result for the channel
  EXPECT_THAT(r.log, ElementsAre("urc OK")) << "a line nobody asked for, never a step's result";
  EXPECT_EQ(r.sent(), "");
  EXPECT_EQ(r.queue.channel().counters().stray_final_results, 1u);
}

TEST(AtCommandQueue, AFullChannelRefusesAndRecordsNothing) {
  Rig r;  // max_queued_commands = 2, behind the one in flight
  ASSERT_TRUE(r.queue.submit(Step::cpin, "AT+CPIN?", r.now, 0ms));
  EXPECT_EQ(r.sent(), "AT+CPIN?\r");
  ASSERT_TRUE(r.queue.submit(Step::cfun, "AT+CFUN?", r.now, 0ms));
  ASSERT_TRUE(r.queue.submit(Step::poll, "AT^NDISSTATQRY?", r.now, 0ms));
  EXPECT_FALSE(r.queue.submit(Step::dial, "AT^NDISDUP=1,1", r.now, 0ms));
  EXPECT_EQ(r.queue.pending(), 3u);
  EXPECT_EQ(r.queue.channel().counters().commands_rejected, 1u);
}

TEST(AtCommandQueue, AHandlerMaySubmitTheNextCommand) {
  Rig r;
  ASSERT_TRUE(r.queue.submit(Step::cpin, "AT+CPIN?", r.now, 0ms));
  EXPECT_EQ(r.sent(), "AT+CPIN?\r");
  std::vector<std::string> order;
  const auto on_result = [&](Step s, const AtResponse&) {
    order.push_back(name(s));
    if (s == Step::cpin) {
      EXPECT_TRUE(r.queue.submit(Step::cfun, "AT+CFUN?", r.now, 0ms));
    }
  };
  const std::string_view text = "\r\n+CPIN: READY\r\n\r\nOK\r\n";
  r.queue.feed(std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()), r.now,
               [](const std::string&) {}, on_result);
  EXPECT_EQ(r.sent(), "AT+CFUN?\r");
  const std::string_view cfun = "\r\n+CFUN: 1\r\n\r\nOK\r\n";
  r.queue.feed(std::span(reinterpret_cast<const std::uint8_t*>(cfun.data()), cfun.size()), r.now,
               [](const std::string&) {}, on_result);
  EXPECT_THAT(order, ElementsAre("cpin", "cfun"));
}

}  // namespace
}  // namespace wwan::control::at
