// The command transport seam (control/at_transport.hpp): the fallback rule with scripted fakes and
// a fake clock, then the real transports over the in-process emulated E3372 — AT over its PCUI bulk
// pair, and the encapsulated channel killed (set_encapsulated_at_dead) with the fallback taking over.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <deque>
#include <memory>
#include <string>

#include "control/at_channel.hpp"
#include "control/at_transport.hpp"
#include "sim/inprocess_transport.hpp"
#include "sim/modem.hpp"
#include "sim/ncm_modem.hpp"
#include "usb/serial_port.hpp"

namespace wwan::control {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::vector<std::uint8_t> bytes(std::string_view s) { return {s.begin(), s.end()}; }
std::string text(std::span<const std::uint8_t> b) { return {b.begin(), b.end()}; }

// Records what was sent; answers what the test queues.
struct FakePort final : CommandTransport {
  std::string name;
  std::vector<std::string> sent;
  std::deque<std::string> answers;
  bool started = false;
  explicit FakePort(std::string n) : name(std::move(n)) {}
  std::string describe() const override { return name; }
  bool start(std::string&) override { return started = true; }
  void stop() override {}
  bool send(std::span<const std::uint8_t> b, Clock::time_point) override {
    sent.push_back(text(b));
    return true;
  }
  unsigned receive(bool, bool, Clock::time_point, const ResponseSink& sink) override {
    while (!answers.empty()) {
      const std::string a = answers.front();
      answers.pop_front();
      sink(bytes(a), false);
    }
    return 0;
  }
};

struct Fallback {
  FakePort* primary;
  FakePort* secondary = nullptr;
  int opened = 0;
  bool open_fails = false;
  std::unique_ptr<AtFallbackTransport> t;
  explicit Fallback(FallbackOptions o = {.answer_timeout = 10s, .unanswered_commands = 2}) {
    auto p = std::make_unique<FakePort>("encapsulated channel of interface 1");
    primary = p.get();
    t = std::make_unique<AtFallbackTransport>(
        std::move(p),
        [this](std::string& error) -> std::unique_ptr<CommandTransport> {
          ++opened;
          if (open_fails) {
            error = "interface 3 is busy";
            return nullptr;
          }
          auto s = std::make_unique<FakePort>("serial AT port interface 3");
          secondary = s.get();
          return s;
        },
        o);
  }
  void send(std::string_view c, Clock::time_point now) { t->send(bytes(c), now); }
  std::string receive(Clock::time_point now) {
    std::string got;
    t->receive(false, true, now, [&](std::span<const std::uint8_t> b, bool) { got += text(b); });
    return got;
  }
};

const Clock::time_point t0{};

TEST(AtFallback, AnAnsweringChannelIsKept) {
  Fallback f;
  for (int i = 0; i < 5; ++i) {
    f.send("AT\r", t0 + i * 20s);
    f.primary->answers.push_back("\r\nOK\r\n");
    EXPECT_EQ(f.receive(t0 + i * 20s + 1s), "\r\nOK\r\n");
  }
  f.send("AT\r", t0 + 200s);
  EXPECT_EQ(f.opened, 0);
  EXPECT_FALSE(f.t->switched());
  EXPECT_EQ(f.primary->sent.size(), 6u);
  EXPECT_THAT(f.t->take_notice(), IsEmpty());
}

// ATE0, its retry 10 s later, nothing back: the next command (AT+CPIN?, sent when ATE0 times out
// 10 s after the retry) goes over the serial port; the switch is said once.
TEST(AtFallback, ACommandAndItsRetryUnansweredMoveTheNextToTheSerialPort) {
  Fallback f;
  f.send("ATE0\r", t0);
  EXPECT_THAT(f.receive(t0 + 5s), IsEmpty());
  f.send("ATE0\r", t0 + 10s);
  EXPECT_THAT(f.receive(t0 + 14s), IsEmpty());
  EXPECT_FALSE(f.t->switched()) << "not before half the answer timeout after the last command";
  f.send("AT+CPIN?\r", t0 + 19999ms);  // a hair before 2 x 10 s: the loop's delays do not matter
  ASSERT_TRUE(f.t->switched());
  EXPECT_EQ(f.opened, 1);
  EXPECT_TRUE(f.secondary->started);
  EXPECT_THAT(f.primary->sent, ElementsAre("ATE0\r", "ATE0\r"));
  EXPECT_THAT(f.secondary->sent, ElementsAre("AT+CPIN?\r"));
  EXPECT_EQ(f.t->take_notice(),
            "the encapsulated channel of interface 1 answered none of 2 commands in 19 s: AT goes over the serial AT "
            "port interface 3 from now on");
  EXPECT_THAT(f.t->take_notice(), IsEmpty()) << "said once";
  f.secondary->answers.push_back("\r\n+CPIN: READY\r\n\r\nOK\r\n");
  EXPECT_EQ(f.receive(t0 + 21s), "\r\n+CPIN: READY\r\n\r\nOK\r\n");
  f.send("AT+CFUN?\r", t0 + 100s);
  EXPECT_EQ(f.opened, 1);
  EXPECT_EQ(f.t->describe(), "serial AT port interface 3");
}

TEST(AtFallback, OneByteMeansTheChannelIsAlive) {
  Fallback f;
  f.send("ATE0\r", t0);
  f.send("ATE0\r", t0 + 10s);
  f.primary->answers.push_back("\r\n^RSSI:20\r\n");  // a URC is an answer from the channel all the same
  EXPECT_EQ(f.receive(t0 + 12s), "\r\n^RSSI:20\r\n");
  EXPECT_EQ(f.t->unanswered(), 0u);
  f.send("AT+CPIN?\r", t0 + 40s);
  EXPECT_FALSE(f.t->switched());
  EXPECT_EQ(f.opened, 0);
}

TEST(AtFallback, OneUnansweredCommandIsNotEnough) {
  Fallback f;
  f.send("AT^NDISDUP=1,1,\"internet\"\r", t0);
  f.receive(t0 + 60s);
  f.send("AT^NDISSTATQRY?\r", t0 + 61s);
  EXPECT_FALSE(f.t->switched());
}

TEST(AtFallback, ANoticeWhenNoSerialPortCanTakeOverAndNoSecondTry) {
  Fallback f;
  f.open_fails = true;
  f.send("ATE0\r", t0);
  f.send("ATE0\r", t0 + 10s);
  f.send("AT+CPIN?\r", t0 + 20s);
  EXPECT_FALSE(f.t->switched());
  EXPECT_THAT(f.primary->sent, ElementsAre("ATE0\r", "ATE0\r", "AT+CPIN?\r"));
  EXPECT_THAT(f.t->take_notice(), HasSubstr("no serial AT port can take over: interface 3 is busy"));
  f.send("AT+CPIN?\r", t0 + 60s);
  EXPECT_EQ(f.opened, 1);
  EXPECT_THAT(f.t->take_notice(), IsEmpty());
}

TEST(AtFallback, TheSwitchAlsoHappensWhileOnlyReading) {
  Fallback f;
  f.send("ATE0\r", t0);
  f.send("ATE0\r", t0 + 10s);
  f.receive(t0 + 20s);
  EXPECT_TRUE(f.t->switched());
}

// ---- the real transports over the in-process emulated E3372 -------------------------------------

usb::SerialAtPort pcui_of(const sim::Modem& m) {
  const auto& d = m.identity().descriptors;
  const auto dev = usb::parse_device_descriptor(std::span(d).first(18));
  const auto configs = usb::parse_configurations(std::span(d).subspan(18), dev->vendor_id, dev->product_id);
  std::string error;
  const auto port = usb::find_serial_at_port(configs.at(0), error);
  if (!port) throw std::runtime_error(error);
  return *port;
}

// Runs `commands` through `port` until every one has a final result (bounded by `deadline`).
std::vector<at::AtResponse> run(usb::Transport& t, CommandTransport& port, std::vector<std::string> commands,
                                std::chrono::milliseconds timeout, std::uint8_t retries, std::chrono::seconds deadline) {
  at::AtChannel channel;
  for (const std::string& c : commands) channel.submit(c, Clock::now(), timeout, retries);
  std::vector<at::AtResponse> done;
  const auto end = Clock::now() + deadline;
  while (done.size() < commands.size() && Clock::now() < end) {
    for (const auto& c : channel.take_output()) port.send(c, Clock::now());
    t.handle_events(10);
    const auto collect = [&](const std::vector<at::AtEvent>& events) {
      for (const at::AtEvent& e : events)
        if (e.kind == at::AtEventKind::final_result && e.response) done.push_back(*e.response);
    };
    port.receive(true, true, Clock::now(),
                 [&](std::span<const std::uint8_t> b, bool) { collect(channel.feed(b, Clock::now())); });
    collect(channel.on_timer(Clock::now()));
  }
  return done;
}

TEST(SerialAtTransport, TheEmulatedE3372AnswersOnItsPcuiBulkPair) {
  std::unique_ptr<sim::Modem> modem = sim::make_modem("huawei-e3372");
  sim::InProcessTransport t(*modem);
  const usb::SerialAtPort pcui = pcui_of(*modem);
  std::unique_ptr<SerialAtTransport> port = make_serial_at_transport(t, pcui);
  std::string error;
  ASSERT_TRUE(port->start(error)) << error;
  EXPECT_EQ(port->describe(), "serial AT port interface 3 (ff/03/02, bulk 0x87/0x05)");
  const auto answers = run(t, *port, {"AT+CGMM", "AT+CPIN?"}, 2000ms, 0, 10s);
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_TRUE(answers[0].ok());
  EXPECT_THAT(answers[0].lines, ElementsAre("E3372"));
  EXPECT_THAT(answers[1].lines, ElementsAre("+CPIN: READY"));
  EXPECT_GT(port->stream().counters().bytes_in.load(), 0u);
  port->stop();
}

TEST(AtFallbackTransport, ADeadEncapsulatedChannelMovesToThePcuiOfTheEmulatedE3372) {
  std::unique_ptr<sim::Modem> modem = sim::make_modem("huawei-e3372");
  dynamic_cast<sim::NcmModem&>(*modem).set_encapsulated_at_dead(true);
  sim::InProcessTransport t(*modem);
  const usb::SerialAtPort pcui = pcui_of(*modem);
  AtFallbackTransport port(std::make_unique<EncapsulatedTransport>(t, 1),
                           [&](std::string&) -> std::unique_ptr<CommandTransport> { return make_serial_at_transport(t, pcui); },
                           {.answer_timeout = 100ms, .unanswered_commands = 2});
  std::string error;
  ASSERT_TRUE(port.start(error)) << error;
  // "AT" and its retry go to the dead channel; the command after them to the PCUI.
  const auto answers = run(t, port, {"AT", "AT+CGMI"}, 100ms, 1, 10s);
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_EQ(answers[0].result, at::FinalResult::timeout);
  EXPECT_TRUE(answers[1].ok());
  EXPECT_THAT(answers[1].lines, ElementsAre("huawei"));
  EXPECT_TRUE(port.switched());
  EXPECT_THAT(port.take_notice(), HasSubstr("answered none of 2 commands"));
}

TEST(EncapsulatedTransport, ALiveChannelAnswers) {
  std::unique_ptr<sim::Modem> modem = sim::make_modem("huawei-e3372");
  sim::InProcessTransport t(*modem);
  EncapsulatedTransport port(t, 1);
  const auto answers = run(t, port, {"AT+CGMR"}, 2000ms, 0, 10s);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_THAT(answers[0].lines, ElementsAre("21.318.01.00.541"));
}

}  // namespace
}  // namespace wwan::control
