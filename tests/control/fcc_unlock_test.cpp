// The FM350-GL FCC unlock executor (control/fcc_unlock_at.hpp, Fm350FccUnlock) against the emulated
// FM350 (sim/fm350_at.hpp), which computes the expected response its own way (the shell pipeline of
// ModemManager's script): first byte for byte with a fake clock, then through the real
// SerialAtTransport over the in-process transport on the FM350's interface 6. Scripted modems
// cover what the emulation does not do (no status query, no lock commands, a silent port).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <string>

#include "control/at_transport.hpp"
#include "control/fcc_unlock_at.hpp"
#include "sim/fm350_at.hpp"
#include "sim/inprocess_transport.hpp"
#include "usb/serial_port.hpp"

namespace wwan::control::fcc {
namespace {

using namespace std::chrono_literals;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// Drives the executor against `modem` (one command line in, answer text out) with a fake clock:
// every command is answered at once; a modem that returns "" stays silent and time moves on.
struct Bench {
  Fm350FccUnlock unlock;
  std::function<std::string(std::string_view)> modem;
  std::vector<std::string> sent;
  at::Clock::time_point now{};
  Bench(Fm350UnlockOptions o, std::function<std::string(std::string_view)> m) : unlock(o), modem(std::move(m)) {}
  void run() {
    unlock.start(now);
    for (int i = 0; i < 200 && !unlock.finished(); ++i) {
      const auto commands = unlock.take_commands();
      for (const auto& c : commands) {
        std::string line(c.begin(), c.end());
        sent.push_back(line.substr(0, line.size() - 1));  // without the CR
        const std::string answer = modem(line);
        if (!answer.empty())
          unlock.on_response(std::span(reinterpret_cast<const std::uint8_t*>(answer.data()), answer.size()), now);
      }
      if (unlock.finished() || !commands.empty()) continue;  // time moves only while nothing is said
      if (const auto t = unlock.next_timer()) {
        now = std::max(now, *t);
        unlock.on_timer(now);
      }
    }
  }
};

Fm350UnlockOptions with_key(std::uint32_t vendor_hash) {
  Fm350UnlockOptions o;
  o.vendor_hash = vendor_hash;
  return o;
}

TEST(Fm350FccUnlock, UnlocksAPowerUpLockedModuleAndTurnsTheRadioOn) {
  sim::Fm350At fm350;  // power-up lock, Lenovo key, challenge 0x5754cabc, echo on
  ASSERT_TRUE(fm350.locked());
  Bench b({}, [&](std::string_view l) { return fm350.execute(l); });
  b.run();
  ASSERT_EQ(b.unlock.state(), Fm350UnlockState::done) << b.unlock.error();
  // The vectors' challenge and its response (fm350_fcc_unlock.md: 0x5754cabc -> 3833547434).
  EXPECT_THAT(b.sent, ElementsAre("AT+GTFCCEFFSTATUS?", "AT+GTFCCLOCKGEN", "AT+GTFCCLOCKVER=3833547434", "AT+CFUN=1"));
  EXPECT_TRUE(b.unlock.unlocked_by_us());
  EXPECT_TRUE(b.unlock.radio_on());
  ASSERT_TRUE(b.unlock.lock_status());
  EXPECT_EQ(b.unlock.lock_status()->mode, 2u);
  EXPECT_EQ(b.unlock.rounds(), 1u);
  EXPECT_FALSE(fm350.locked());
  EXPECT_EQ(fm350.cfun(), 1);
  EXPECT_EQ(fm350.counters().responses_accepted, 1u);
  EXPECT_EQ(fm350.lock_mode(), 2u) << "AT+GTFCCLOCKMODE=0 is never sent: the lock comes back at power-up";
}

TEST(Fm350FccUnlock, TheDellKeyForADellModule) {
  sim::Fm350At fm350({.mode = 1, .vendor_hash = kFm350VendorHashDell, .first_challenge = 0x5754cabc});
  Bench b(with_key(kFm350VendorHashDell), [&](std::string_view l) { return fm350.execute(l); });
  b.run();
  ASSERT_EQ(b.unlock.state(), Fm350UnlockState::done) << b.unlock.error();
  EXPECT_THAT(b.sent, Contains("AT+GTFCCLOCKVER=1143433072"));  // the vectors' Dell row
  EXPECT_FALSE(fm350.locked());
}

TEST(Fm350FccUnlock, TheWrongKeyFailsAfterItsAttemptsAndSaysWhichKey) {
  sim::Fm350At fm350({.mode = 2, .vendor_hash = kFm350VendorHashDell, .first_challenge = 1});
  Bench b(with_key(kFm350VendorHashLenovo), [&](std::string_view l) { return fm350.execute(l); });
  b.run();
  ASSERT_EQ(b.unlock.state(), Fm350UnlockState::failed);
  EXPECT_THAT(b.unlock.error(), HasSubstr("rejected the FCC unlock response 3 times (+GTFCCLOCKVER: 0)"));
  EXPECT_THAT(b.unlock.error(), HasSubstr("3df8c719"));
  EXPECT_EQ(fm350.counters().challenges, 3u) << "a fresh challenge per round";
  EXPECT_EQ(fm350.counters().responses_rejected, 3u);
  EXPECT_THAT(b.sent, Not(Contains("AT+CFUN=1")));
  EXPECT_TRUE(fm350.locked());
  EXPECT_GE(b.now - at::Clock::time_point{}, 2 * 500ms) << "retry_interval between rounds";
}

TEST(Fm350FccUnlock, AnUnlockedModuleIsLeftAlone) {
  sim::Fm350At fm350({.mode = 0});
  Bench b({}, [&](std::string_view l) { return fm350.execute(l); });
  b.run();
  ASSERT_EQ(b.unlock.state(), Fm350UnlockState::done) << b.unlock.error();
  EXPECT_THAT(b.sent, ElementsAre("AT+GTFCCEFFSTATUS?", "AT+CFUN=1"));
  EXPECT_FALSE(b.unlock.unlocked_by_us());
  EXPECT_EQ(fm350.counters().challenges, 0u);
}

TEST(Fm350FccUnlock, FirmwareWithoutTheStatusQueryIsUnlockedAnyway) {
  sim::Fm350At fm350;
  Bench b({}, [&](std::string_view l) {
    return l.starts_with("AT+GTFCCEFFSTATUS?") ? std::string("\r\nERROR\r\n") : fm350.execute(l);
  });
  b.run();
  ASSERT_EQ(b.unlock.state(), Fm350UnlockState::done) << b.unlock.error();
  EXPECT_FALSE(b.unlock.lock_status());
  EXPECT_FALSE(fm350.locked());
}

TEST(Fm350FccUnlock, ClearErrors) {
  // No lock commands at all: not an FM350.
  Bench not_fm350({}, [](std::string_view l) {
    return l.starts_with("AT+GTFCCLOCKGEN") ? std::string("\r\nERROR\r\n") : std::string("\r\nOK\r\n");
  });
  not_fm350.run();
  EXPECT_EQ(not_fm350.unlock.state(), Fm350UnlockState::failed);
  EXPECT_EQ(not_fm350.unlock.error(),
            "AT+GTFCCLOCKGEN failed: ERROR (this firmware has no FCC lock commands: is it an FM350-GL?)");
  // A challenge without 0x.
  Bench no_challenge({}, [](std::string_view l) {
    return l.starts_with("AT+GTFCCLOCKGEN") ? std::string("\r\n+GTFCCLOCKGEN: 12345\r\n\r\nOK\r\n")
                                            : std::string("\r\nOK\r\n");
  });
  no_challenge.run();
  EXPECT_EQ(no_challenge.unlock.error(), "AT+GTFCCLOCKGEN gave no 0x challenge: '+GTFCCLOCKGEN: 12345'");
  // A silent port (not the AT port): the status query and its retry time out.
  Fm350UnlockOptions quick;
  quick.command_timeout = 1000ms;
  Bench silent(quick, [](std::string_view) { return std::string(); });
  silent.run();
  EXPECT_EQ(silent.unlock.state(), Fm350UnlockState::failed);
  EXPECT_EQ(silent.unlock.error(), "the AT port does not answer (AT+GTFCCEFFSTATUS?: no answer)");
  // Accepted, but the radio still refused.
  sim::Fm350At fm350;
  Bench radio({}, [&](std::string_view l) {
    return l.starts_with("AT+CFUN=1") ? std::string("\r\n+CME ERROR: 3\r\n") : fm350.execute(l);
  });
  radio.run();
  EXPECT_EQ(radio.unlock.error(), "the unlock was accepted but AT+CFUN=1 failed: +CME ERROR: 3 (the radio is still refused)");
}

TEST(Fm350FccUnlock, StatusAndVendorHashParsers) {
  EXPECT_EQ(parse_gtfcceffstatus("+GTFCCEFFSTATUS: 2,0")->mode, 2u);
  EXPECT_EQ(parse_gtfcceffstatus("+GTFCCEFFSTATUS: 2,0")->status, 0u);
  EXPECT_EQ(parse_gtfcceffstatus("1,1")->mode, 1u);
  EXPECT_FALSE(parse_gtfcceffstatus("+GTFCCEFFSTATUS: 2"));
  EXPECT_FALSE(parse_gtfcceffstatus("OK"));
  EXPECT_EQ(parse_vendor_hash("lenovo"), kFm350VendorHashLenovo);
  EXPECT_EQ(parse_vendor_hash("dell"), kFm350VendorHashDell);
  EXPECT_EQ(parse_vendor_hash("4909B5A4"), 0x4909b5a4u);
  EXPECT_FALSE(parse_vendor_hash("4909b5a"));
  EXPECT_FALSE(parse_vendor_hash("4909b5ax"));
  EXPECT_FALSE(parse_vendor_hash("acme"));
}

// Through the real seam: the FM350's descriptors -> find_serial_at_port (interface 6) ->
// SerialAtTransport over the in-process transport -> the executor.
TEST(Fm350FccUnlock, OverTheSerialAtPortInProcess) {
  sim::Fm350AtPortModel model(0x7127);
  sim::InProcessTransport t(model);
  const auto& d = model.identity().descriptors;
  const auto configs = usb::parse_configurations(std::span(d).subspan(18), 0x0e8d, 0x7127);
  std::string error;
  const auto port = usb::find_serial_at_port(configs.at(0), error);
  ASSERT_TRUE(port) << error;
  ASSERT_EQ(port->interface_number, 6);
  std::unique_ptr<SerialAtTransport> serial = make_serial_at_transport(t, *port);
  ASSERT_TRUE(serial->start(error)) << error;

  Fm350FccUnlock unlock;
  unlock.start(at::Clock::now());
  const auto deadline = at::Clock::now() + 20s;
  while (!unlock.finished() && at::Clock::now() < deadline) {
    for (const auto& c : unlock.take_commands()) ASSERT_TRUE(serial->send(c, at::Clock::now()));
    t.handle_events(10);
    serial->receive(false, false, at::Clock::now(),
                    [&](std::span<const std::uint8_t> b, bool) { unlock.on_response(b, at::Clock::now()); });
    if (const auto next = unlock.next_timer(); next && at::Clock::now() >= *next) unlock.on_timer(at::Clock::now());
  }
  ASSERT_EQ(unlock.state(), Fm350UnlockState::done) << unlock.error();
  EXPECT_TRUE(unlock.unlocked_by_us());
  serial->stop();
  t.with_model([](sim::DeviceModel& m) {
    auto& fm350 = dynamic_cast<sim::Fm350AtPortModel&>(m);
    EXPECT_FALSE(fm350.at().locked());
    EXPECT_EQ(fm350.at().cfun(), 1);
    EXPECT_EQ(fm350.port().counters().command_lines, 4u);
  });
}

}  // namespace
}  // namespace wwan::control::fcc
