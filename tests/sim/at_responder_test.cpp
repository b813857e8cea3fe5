// The V.250 core the emulated AT engines share (sim/at_responder.hpp), with golden strings: answer
// framing (V.250 §5.7.1, ATV1), parameter splitting (§5.4.2), the command line discipline (echo
// before parsing, "AT" prefix, length limit), the bounded URC queue and the AT+CGDCONT table
// (3GPP TS 27.007 §10.1.1). The engines' own tables are tested in huawei_at_test / fm350_at_test.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "sim/at_responder.hpp"

namespace wwan::sim {
namespace {

using ::testing::ElementsAre;
using namespace std::string_view_literals;

TEST(V250, AnswerFraming) {
  EXPECT_EQ(v250::line("+CFUN: 1"), "\r\n+CFUN: 1\r\n");
  EXPECT_EQ(v250::ok(), "\r\nOK\r\n");
  EXPECT_EQ(v250::error(), "\r\nERROR\r\n");
  EXPECT_EQ(v250::cme_error(16), "\r\n+CME ERROR: 16\r\n");
  // Information lines: CR LF before the first, between them, after the last; then the final result.
  EXPECT_EQ(v250::info({"Manufacturer: huawei", "Model: E3372"}),
            "\r\nManufacturer: huawei\r\nModel: E3372\r\n\r\nOK\r\n");
  EXPECT_EQ(v250::dotted(eth::Ipv4Address{{10, 64, 64, 2}}), "10.64.64.2");
}

TEST(V250, ParametersAndQuotes) {
  // Commas inside quotes do not split; spaces around a parameter go, inside quotes they stay.
  EXPECT_THAT(v250::split_params("1, \"IP\" ,\"a,b c\""), ElementsAre("1", "\"IP\"", "\"a,b c\""));
  EXPECT_THAT(v250::split_params(""), ElementsAre(""));
  EXPECT_THAT(v250::split_params("1,,3"), ElementsAre("1", "", "3"));
  EXPECT_EQ(v250::to_int("16"), 16);
  EXPECT_EQ(v250::to_int("-1"), -1);
  EXPECT_EQ(v250::to_int(""), std::nullopt);
  EXPECT_EQ(v250::to_int("1a"), std::nullopt);
  EXPECT_EQ(v250::unquote("\"Internet\""), "Internet");
  EXPECT_EQ(v250::unquote("\""), std::nullopt);
  EXPECT_EQ(v250::unquote("internet"), std::nullopt);
  EXPECT_EQ(v250::upper_outside_quotes("+cgdcont=1,\"ip\",\"apn.Example\""), "+CGDCONT=1,\"ip\",\"apn.Example\"");
}

TEST(V250, CommandMatchesWithoutCaseAndKeepsTheArgumentsCase) {
  const v250::Command c("+cpin=\"1234aB\"");
  EXPECT_FALSE(c.is("+CPIN?"));
  ASSERT_TRUE(c.args_of("+CPIN="));
  EXPECT_EQ(*c.args_of("+CPIN="), "\"1234aB\"");
  EXPECT_FALSE(c.args_of("+CPIN=\"1234AB\"X")) << "longer than the command";
  EXPECT_TRUE(v250::Command("+cgmi").is("+CGMI"));
  EXPECT_TRUE(v250::Command("").empty());
}

TEST(V250, IdentificationAnswersBothSpellings) {
  const std::string manufacturer = "huawei", model = "E3372", revision = "21.318.01.00.541", imei = "866000000000001";
  const v250::Identification id{manufacturer, model, revision, imei};
  EXPECT_EQ(v250::identification(v250::Command("+CGMI"), id), "\r\nhuawei\r\n\r\nOK\r\n");
  EXPECT_EQ(v250::identification(v250::Command("+gmm"), id), "\r\nE3372\r\n\r\nOK\r\n");
  EXPECT_EQ(v250::identification(v250::Command("+GMR"), id), "\r\n21.318.01.00.541\r\n\r\nOK\r\n");
  EXPECT_EQ(v250::identification(v250::Command("+CGSN"), id), "\r\n866000000000001\r\n\r\nOK\r\n");
  EXPECT_EQ(v250::identification(v250::Command("+CGSN=1"), id), std::nullopt);
}

// The smallest engine: "+X" answers OK and queues a URC, everything else ERROR.
class Echoing final : public AtResponder {
 public:
  std::vector<std::string> ran;
  void set_echo(bool on) { echo_ = on; }

 private:
  std::string run(std::string_view command) override {
    ran.emplace_back(command);
    if (command == "+X") {
      queue_unsolicited(v250::line("+URC: 1"));
      return v250::ok();
    }
    if (command == "E0") {
      echo_ = false;
      return v250::ok();
    }
    return v250::error();
  }
};

TEST(AtResponder, LineDiscipline) {
  Echoing e;
  EXPECT_TRUE(e.echo());
  // Line ends and NUL padding after, CR/LF/space before, are not part of the command.
  EXPECT_EQ(e.execute("\r\n AT+X\r\n\0"sv), "AT+X\r\r\nOK\r\n");
  EXPECT_EQ(e.execute("at+X\r"), "at+X\r\r\nOK\r\n") << "the prefix without case, the echo as received";
  EXPECT_EQ(e.execute("\r\n"), "") << "an empty line is ignored";
  EXPECT_EQ(e.execute("X+X\r"), "X+X\r\r\nERROR\r\n") << "not an AT command: the engine never sees it";
  EXPECT_EQ(e.execute("A\r"), "A\r\r\nERROR\r\n");
  EXPECT_EQ(e.execute("ATE0\r"), "ATE0\r\r\nOK\r\n") << "echoed before it is parsed";
  EXPECT_EQ(e.execute("AT+X\r"), "\r\nOK\r\n");
  EXPECT_THAT(e.ran, ElementsAre("+X", "+X", "E0", "+X"));
}

TEST(AtResponder, OverlongLinesAreRefusedUnread) {
  Echoing e;
  e.set_echo(false);
  const std::string longest = "AT" + std::string(AtResponder::kMaxCommandLength - 2, 'Y');
  EXPECT_EQ(e.execute(longest + "\r"), "\r\nERROR\r\n");
  EXPECT_EQ(e.execute(longest + "Y\r"), "\r\nERROR\r\n");
  EXPECT_EQ(e.ran.size(), 1u) << "only the line within kMaxCommandLength reached the engine";
}

TEST(AtResponder, UrcsQueueBoundedOldestDroppedFirst) {
  Echoing e;
  e.set_echo(false);
  EXPECT_FALSE(e.has_unsolicited());
  EXPECT_EQ(e.take_unsolicited(), "");
  for (std::size_t i = 0; i < AtResponder::kMaxUnsolicited + 3; ++i) (void)e.execute("AT+X\r");
  EXPECT_EQ(e.unsolicited_dropped(), 3u);
  std::size_t n = 0;
  while (e.has_unsolicited()) {
    EXPECT_EQ(e.take_unsolicited(), "\r\n+URC: 1\r\n");
    ++n;
  }
  EXPECT_EQ(n, AtResponder::kMaxUnsolicited);
}

TEST(PdpContexts, DefineReadUndefine) {
  PdpContexts c(16);
  EXPECT_EQ(c.read(), "\r\n+CGDCONT: 1,\"IP\",\"\",\"0.0.0.0\",0,0\r\n\r\nOK\r\n") << "context 1 as shipped";
  EXPECT_EQ(c.define("2,\"ipv4v6\",\"Internet.Example\""), "\r\nOK\r\n");  // the type without case, the APN as given
  EXPECT_EQ(c.read(),
            "\r\n+CGDCONT: 1,\"IP\",\"\",\"0.0.0.0\",0,0\r\n+CGDCONT: 2,\"IPV4V6\",\"Internet.Example\",\"0.0.0.0\",0,0"
            "\r\n\r\nOK\r\n");
  EXPECT_EQ(c.define("1"), "\r\nOK\r\n");  // the cid alone undefines it
  EXPECT_EQ(c.define("2"), "\r\nOK\r\n");
  EXPECT_EQ(c.read(), "\r\nOK\r\n");
  EXPECT_EQ(c.define("16,\"IPV6\""), "\r\nOK\r\n");
  EXPECT_EQ(c.table().at(16), (std::pair<std::string, std::string>{"IPV6", ""}));
}

TEST(PdpContexts, BadParametersAreCme50) {
  PdpContexts c(15);
  const std::string cme50 = "\r\n+CME ERROR: 50\r\n";  // 27.007 §9.2: incorrect parameters
  EXPECT_EQ(c.define("16,\"IP\""), cme50) << "beyond max_cid";
  EXPECT_EQ(c.define("0,\"IP\""), cme50);
  EXPECT_EQ(c.define("x,\"IP\""), cme50);
  EXPECT_EQ(c.define("1,IP"), cme50) << "the type unquoted";
  EXPECT_EQ(c.define("1,\"PPP\""), cme50);
  EXPECT_EQ(c.define("1,\"IP\",internet"), cme50) << "the APN unquoted";
  EXPECT_EQ(c.table().size(), 1u);
}

}  // namespace
}  // namespace wwan::sim
