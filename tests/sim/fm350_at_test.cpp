// The emulated FM350-GL AT engine (sim/fm350_at.hpp), the serial AT port building block
// (sim/serial_at_port.hpp) and the E3372 model's PCUI port and dead encapsulated channel
// (sim/ncm_modem.hpp). The FM350's expected responses are checked against the derived vectors of
// reference/vectors/fm350_fcc_unlock.md, which makes it an independent check of the executor.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "control/cdc_ncm.hpp"
#include "sim/fm350_at.hpp"
#include "sim/modem.hpp"
#include "sim/ncm_modem.hpp"
#include "sim/serial_at_port.hpp"

namespace wwan::sim {
namespace {

using ::testing::HasSubstr;

TEST(Fm350At, ExpectedResponsesAreTheVectors) {
  // fm350_fcc_unlock.md, vendor hash 3df8c719 (Lenovo) and 4909b5a4 (Dell).
  EXPECT_EQ(Fm350At::expected_response(0x00000000, 0x3df8c719), 4024328548u);
  EXPECT_EQ(Fm350At::expected_response(0x00000001, 0x3df8c719), 3093654045u);
  EXPECT_EQ(Fm350At::expected_response(0x5754cabc, 0x3df8c719), 3833547434u);
  EXPECT_EQ(Fm350At::expected_response(0x12345678, 0x3df8c719), 1787294009u);
  EXPECT_EQ(Fm350At::expected_response(0xdeadbeef, 0x3df8c719), 4242922276u);
  EXPECT_EQ(Fm350At::expected_response(0xffffffff, 0x3df8c719), 2515725042u);
  EXPECT_EQ(Fm350At::expected_response(0x00000000, 0x4909b5a4), 2065811812u);
  EXPECT_EQ(Fm350At::expected_response(0x5754cabc, 0x4909b5a4), 1143433072u);
}

TEST(Fm350At, LockedUntilTheRightResponse) {
  Fm350At m;
  EXPECT_EQ(m.execute("ATE0"), "ATE0\r\r\nOK\r\n");  // echo on until now
  EXPECT_EQ(m.execute("AT+CFUN?"), "\r\n+CFUN: 4\r\n\r\nOK\r\n");
  EXPECT_EQ(m.execute("AT+CFUN=1"), "\r\n+CME ERROR: 3\r\n");
  EXPECT_EQ(m.execute("AT+GTFCCEFFSTATUS?"), "\r\n+GTFCCEFFSTATUS: 2,0\r\n\r\nOK\r\n");
  EXPECT_EQ(m.execute("AT+GTFCCLOCKVER=3833547434"), "\r\nERROR\r\n") << "no challenge asked for";
  EXPECT_EQ(m.execute("AT+GTFCCLOCKGEN"), "\r\n+GTFCCLOCKGEN: 0x5754cabc\r\n\r\nOK\r\n");
  EXPECT_EQ(m.execute("AT+GTFCCLOCKVER=1"), "\r\n+GTFCCLOCKVER: 0\r\n\r\nOK\r\n");
  EXPECT_TRUE(m.locked());
  EXPECT_EQ(m.execute("AT+GTFCCLOCKVER=3833547434"), "\r\nERROR\r\n") << "the challenge is used up";
  const std::string gen = m.execute("AT+GTFCCLOCKGEN");
  EXPECT_THAT(gen, HasSubstr("+GTFCCLOCKGEN: 0x"));
  EXPECT_EQ(gen.find("5754cabc"), std::string::npos) << "a fresh challenge";
  const std::uint32_t challenge = static_cast<std::uint32_t>(std::stoul(gen.substr(gen.find("0x") + 2, 8), nullptr, 16));
  EXPECT_EQ(m.execute("AT+GTFCCLOCKVER=" + std::to_string(Fm350At::expected_response(challenge, 0x3df8c719))),
            "\r\n+GTFCCLOCKVER: 1\r\n\r\nOK\r\n");
  EXPECT_FALSE(m.locked());
  EXPECT_EQ(m.execute("AT+GTFCCEFFSTATUS?"), "\r\n+GTFCCEFFSTATUS: 2,1\r\n\r\nOK\r\n");
  EXPECT_EQ(m.execute("AT+CFUN=1"), "\r\nOK\r\n");
  m.power_cycle();
  EXPECT_TRUE(m.locked()) << "a power-up lock comes back";
  EXPECT_EQ(m.cfun(), 4);
}

TEST(Fm350At, TheDataSessionNeedsTheRadioAndReportsItsAddress) {
  Fm350At m(Fm350Lock{.mode = 0});  // not locked: the radio may come on
  bool medium = false;
  m.on_context_change([&](bool up) { medium = up; });
  EXPECT_EQ(m.execute("ATE0"), "ATE0\r\r\nOK\r\n");
  EXPECT_EQ(m.execute("AT+CGDCONT=1,\"IP\",\"internet\""), "\r\nOK\r\n");
  EXPECT_EQ(m.execute("AT+CGDCONT=1,\"X25\""), "\r\n+CME ERROR: 50\r\n");
  EXPECT_EQ(m.execute("AT+CGDCONT?"), "\r\n+CGDCONT: 1,\"IP\",\"INTERNET\",\"0.0.0.0\",0,0\r\n\r\nOK\r\n");
  EXPECT_EQ(m.execute("AT+CGACT=1,1"), "\r\n+CME ERROR: 3\r\n") << "the radio is still off (CFUN 4)";
  EXPECT_EQ(m.execute("AT+CFUN=1"), "\r\nOK\r\n");
  EXPECT_EQ(m.execute("AT+CGACT=1,2"), "\r\n+CME ERROR: 3\r\n") << "no context 2";
  EXPECT_EQ(m.execute("AT+CGPADDR=1"), "\r\n+CGPADDR: 1\r\n\r\nOK\r\n");
  EXPECT_EQ(m.execute("AT+CGACT=1,1"), "\r\nOK\r\n");
  EXPECT_TRUE(medium);
  EXPECT_EQ(m.execute("AT+CGACT?"), "\r\n+CGACT: 1,1\r\n\r\nOK\r\n");
  EXPECT_EQ(m.execute("AT+CGPADDR=1"), "\r\n+CGPADDR: 1,\"10.64.64.2\"\r\n\r\nOK\r\n");
  EXPECT_EQ(m.execute("AT+CGCONTRDP=1"),
            "\r\n+CGCONTRDP: 1,5,\"INTERNET\",\"10.64.64.2.255.255.255.252\",\"10.64.64.1\",\"10.11.12.13\","
            "\"10.11.12.14\"\r\n\r\nOK\r\n");
  EXPECT_EQ(m.execute("AT+GTDNS"), "\r\nERROR\r\n") << "not modelled: no source";

  EXPECT_TRUE(m.network_deactivate());
  EXPECT_FALSE(medium);
  EXPECT_EQ(m.take_unsolicited(), "\r\n+CGEV: NW PDN DEACT 1\r\n");
  EXPECT_FALSE(m.network_deactivate()) << "nothing active any more";
  EXPECT_EQ(m.execute("AT+CGACT=1,1"), "\r\nOK\r\n");
  EXPECT_EQ(m.execute("AT+CGACT=0,1"), "\r\nOK\r\n");
  EXPECT_FALSE(m.context_active());
  EXPECT_EQ(m.counters().activations, 2u);
  EXPECT_EQ(m.counters().activations_refused, 2u);
}

TEST(SerialAtPort, LinesAtCrAnswersOnInAndBounds) {
  SerialAtPort p(0x87, 0x06, [](std::string_view l) { return "<" + std::string(l) + ">"; });
  std::array<std::uint8_t, 4> buf{};
  EXPECT_EQ(p.in(buf).result, EndpointResult::nak);
  const std::string part1 = "AT+C", part2 = "GMI\r\nATI\r";
  p.out(std::span(reinterpret_cast<const std::uint8_t*>(part1.data()), part1.size()));
  EXPECT_FALSE(p.has_pending()) << "no CR yet";
  p.out(std::span(reinterpret_cast<const std::uint8_t*>(part2.data()), part2.size()));
  std::string got;
  for (InResult r = p.in(buf); r.result == EndpointResult::ok; r = p.in(buf))
    got.append(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(r.bytes));
  EXPECT_EQ(got, "<AT+CGMI><ATI>");
  EXPECT_EQ(p.counters().command_lines, 2u);
  const std::string long_line(SerialAtPort::kMaxLineBytes + 10, 'A');
  p.out(std::span(reinterpret_cast<const std::uint8_t*>(long_line.data()), long_line.size()));
  p.out(std::span(reinterpret_cast<const std::uint8_t*>("\r"), 1));
  EXPECT_EQ(p.counters().lines_too_long, 1u);
  EXPECT_FALSE(p.has_pending()) << "a line cut at the limit is not executed";
  for (int i = 0; i < 20000; ++i) p.push("0123456789");
  EXPECT_GT(p.counters().bytes_dropped, 0u) << "a host that never reads costs a counter, not memory";
}

std::string read_in(DeviceModel& m, std::uint8_t ep) {
  std::string got;
  std::array<std::uint8_t, 64> buf{};
  for (InResult r = m.in(ep, buf); r.result == EndpointResult::ok; r = m.in(ep, buf))
    got.append(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(r.bytes));
  return got;
}

TEST(NcmModemSerialAt, ThePcuiAnswersAndTakesTheUrcs) {
  auto modem = make_modem("huawei-e3372");
  auto& m = dynamic_cast<NcmModem&>(*modem);
  ASSERT_NE(m.serial_at(), nullptr);
  const std::string dial = "ATE0\rAT^NDISDUP=1,1,\"internet\"\r";
  EXPECT_EQ(m.out(0x05, std::span(reinterpret_cast<const std::uint8_t*>(dial.data()), dial.size())), EndpointResult::ok);
  const std::string answer = read_in(m, 0x87);
  EXPECT_THAT(answer, HasSubstr("ATE0\r\r\nOK\r\n"));
  EXPECT_THAT(answer, HasSubstr("^NDISSTAT:1,,,\"IPV4\""));  // the URC follows on the port that dialled
  EXPECT_TRUE(m.session_active());
  m.faults().drop_session = true;
  EXPECT_THAT(read_in(m, 0x87), HasSubstr("^NDISSTAT:0"));
}

TEST(NcmModemSerialAt, ADeadEncapsulatedChannelTakesCommandsAndNeverAnswers) {
  auto modem = make_modem("huawei-e3372");
  auto& m = dynamic_cast<NcmModem&>(*modem);
  m.set_encapsulated_at_dead(true);
  std::string ati = "ATI\r";
  const SetupPacket send{cdc::kRequestTypeClassInterfaceOut, cdc::kSendEncapsulatedCommand, 0, 1,
                         static_cast<std::uint16_t>(ati.size())};
  EXPECT_EQ(m.control(send, std::span(reinterpret_cast<std::uint8_t*>(ati.data()), ati.size())), 0u) << "ACKed";
  std::array<std::uint8_t, 256> buf{};
  const SetupPacket get{cdc::kRequestTypeClassInterfaceIn, cdc::kGetEncapsulatedResponse, 0, 1, 256};
  EXPECT_EQ(m.control(get, buf), 0u) << "nothing, ever";
  EXPECT_EQ(m.counters().commands_received, 0u);
  const std::string cgmi = "AT+CGMI\r";
  m.out(0x05, std::span(reinterpret_cast<const std::uint8_t*>(cgmi.data()), cgmi.size()));
  EXPECT_THAT(read_in(m, 0x87), HasSubstr("huawei"));
}

}  // namespace
}  // namespace wwan::sim
