// AtChannel tests: framing, echo, final results, unsolicited lines, bounds, the command queue,
// timeouts and retries. The vectors are those of reference/vectors/modemmanager_huawei_at.md that
// are about framing (§K1 echo removal, §K2 final-result detection, §J unsolicited prefixes) and,
// as framing cases, every other response string of the file that no parser of ours owns (§D-§I,
// §L1, §L4-§L7): each must come out as exactly its information lines, whatever the chunking.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "control/at_channel.hpp"

namespace wwan::control::at {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;

const Clock::time_point t0 = Clock::time_point{} + 1h;

std::string sent(AtChannel& ch) {
  std::string s;
  for (const auto& c : ch.take_output()) s.append(c.begin(), c.end());
  return s;
}

struct Collected {
  std::vector<std::string> echo, information, unsolicited;
  std::vector<AtResponse> finals;
  void add(std::vector<AtEvent> events) {
    for (AtEvent& e : events) {
      switch (e.kind) {
        case AtEventKind::echo: echo.push_back(e.line); break;
        case AtEventKind::information: information.push_back(e.line); break;
        case AtEventKind::unsolicited: unsolicited.push_back(e.line); break;
        case AtEventKind::final_result: finals.push_back(*e.response); break;
      }
    }
  }
};

// Feeds `text` in chunks of `chunk` bytes (0 = whole).
Collected feed(AtChannel& ch, std::string_view text, std::size_t chunk = 0) {
  Collected c;
  if (chunk == 0) chunk = text.size() + 1;
  for (std::size_t at = 0; at < text.size(); at += chunk) c.add(ch.feed(text.substr(at, chunk), t0));
  return c;
}

std::vector<std::string> lines_of(std::string_view s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= s.size(); ++i) {
    if (i < s.size() && s[i] != '\r' && s[i] != '\n') continue;
    if (i > start) out.emplace_back(s.substr(start, i - start));
    start = i + 1;
  }
  return out;
}

// ---- basics ----------------------------------------------------------------------------------------

TEST(AtChannel, SendsOneCommandAtATimeWithCr) {
  AtChannel ch;
  const auto a = ch.submit("AT+CPIN?", t0);
  const auto b = ch.submit("AT+CFUN?", t0);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(sent(ch), "AT+CPIN?\r");
  EXPECT_EQ(ch.in_flight(), a);
  Collected c = feed(ch, "\r\n+CPIN: READY\r\n\r\nOK\r\n");
  ASSERT_EQ(c.finals.size(), 1u);
  EXPECT_EQ(c.finals[0].id, *a);
  EXPECT_TRUE(c.finals[0].ok());
  EXPECT_THAT(c.finals[0].lines, ElementsAre("+CPIN: READY"));
  EXPECT_EQ(sent(ch), "AT+CFUN?\r");  // released after the chunk
  c = feed(ch, "\r\n+CFUN: 1\r\n\r\nOK\r\n");
  ASSERT_EQ(c.finals.size(), 1u);
  EXPECT_EQ(c.finals[0].id, *b);
  EXPECT_FALSE(ch.busy());
}

TEST(AtChannel, EchoIsRecognisedAndSkipped) {
  AtChannel ch;
  ch.submit("AT^NDISDUP=1,1,\"internet\"", t0);
  (void)sent(ch);
  const Collected c = feed(ch, "AT^NDISDUP=1,1,\"internet\"\r\r\nOK\r\n");
  EXPECT_THAT(c.echo, ElementsAre("AT^NDISDUP=1,1,\"internet\""));
  EXPECT_TRUE(c.information.empty());
  ASSERT_EQ(c.finals.size(), 1u);
  EXPECT_TRUE(c.finals[0].ok());
}

// A URC can come before the echo; the echo is then recognised by its text.
TEST(AtChannel, EchoAfterAUnsolicitedLine) {
  AtChannel ch;
  ch.submit("AT+CPIN?", t0);
  const Collected c = feed(ch, "\r\n^RSSI:19\r\nAT+CPIN?\r\r\n+CPIN: READY\r\n\r\nOK\r\n");
  EXPECT_THAT(c.unsolicited, ElementsAre("^RSSI:19"));
  EXPECT_THAT(c.echo, ElementsAre("AT+CPIN?"));
  EXPECT_THAT(c.information, ElementsAre("+CPIN: READY"));
  ASSERT_EQ(c.finals.size(), 1u);
}

TEST(AtChannel, UnsolicitedInterleavedEverywhere) {
  AtChannel ch;
  ch.submit("AT^DHCP?", t0);
  const Collected c = feed(ch,
                           "AT^DHCP?\r\r\n^BOOT:20436354,0,0,0,72\r\n\r\n^DHCP: 0202400a,fcffffff,0102400a,0102400a,0,0,1,1\r\n"
                           "\r\n^MODE:7,17\r\n\r\n+CREG: 1\r\n\r\nOK\r\n\r\n^SRVST:2\r\n\r\n^DSFLOWRPT:1,2,3\r\n");
  EXPECT_THAT(c.information, ElementsAre("^DHCP: 0202400a,fcffffff,0102400a,0102400a,0,0,1,1"));
  EXPECT_THAT(c.unsolicited, ElementsAre("^BOOT:20436354,0,0,0,72", "^MODE:7,17", "+CREG: 1", "^SRVST:2", "^DSFLOWRPT:1,2,3"));
  ASSERT_EQ(c.finals.size(), 1u);
  EXPECT_THAT(c.finals[0].lines, ElementsAre("^DHCP: 0202400a,fcffffff,0102400a,0102400a,0,0,1,1"));
}

// The query for a URC's own prefix gets it as its answer.
TEST(AtChannel, QueryOwnsItsPrefix) {
  AtChannel ch;
  ch.submit("AT+CREG?", t0);
  Collected c = feed(ch, "\r\n+CREG: 0,1\r\n\r\nOK\r\n");
  EXPECT_THAT(c.information, ElementsAre("+CREG: 0,1"));
  ch.submit("AT^NDISSTATQRY?", t0);
  c = feed(ch, "\r\n^NDISSTAT: 1,,,IPV4\r\n\r\nOK\r\n");  // old firmware answers with the URC prefix
  EXPECT_THAT(c.information, ElementsAre("^NDISSTAT: 1,,,IPV4"));
  ch.submit("AT^NDISDUP=1,1,\"a\"", t0);
  c = feed(ch, "\r\nOK\r\n\r\n^NDISSTAT:1,,,\"IPV4\"\r\n");
  EXPECT_THAT(c.unsolicited, ElementsAre("^NDISSTAT:1,,,\"IPV4\""));
}

TEST(AtChannel, NoCommandMeansUnsolicited) {
  AtChannel ch;
  const Collected c = feed(ch, "\r\n^BOOT:1\r\n\r\nOK\r\n\r\nsomething\r\n");
  EXPECT_THAT(c.unsolicited, ElementsAre("^BOOT:1", "OK", "something"));
  EXPECT_EQ(ch.counters().stray_final_results, 1u);
}

TEST(AtChannel, ErrorCodes) {
  AtChannel ch;
  ch.submit("AT+CPIN=\"0000\"", t0);
  Collected c = feed(ch, "\r\n+CME ERROR: 16\r\n");
  ASSERT_EQ(c.finals.size(), 1u);
  EXPECT_EQ(c.finals[0].result, FinalResult::cme_error);
  EXPECT_EQ(c.finals[0].error_code, 16);
  EXPECT_EQ(c.finals[0].final_line, "+CME ERROR: 16");
  ch.submit("AT+CMGS", t0);
  c = feed(ch, "\r\n+CMS ERROR: 321\r\n");
  EXPECT_EQ(c.finals.at(0).error_code, 321);
  ch.submit("AT^FOO", t0);
  c = feed(ch, "\r\nCOMMAND NOT SUPPORT\r\n");
  EXPECT_EQ(c.finals.at(0).result, FinalResult::command_not_support);
  ch.submit("AT^FOO=1,2,3,4,5,6,7,8,9", t0);
  c = feed(ch, "\r\nTOO MANY PARAMETERS\r\n");
  EXPECT_EQ(c.finals.at(0).result, FinalResult::too_many_parameters);
  ch.submit("AT+CPIN?", t0);
  c = feed(ch, "\r\n+CME ERROR: SIM not inserted\r\n");
  EXPECT_EQ(c.finals.at(0).result, FinalResult::cme_error);
  EXPECT_FALSE(c.finals.at(0).error_code);
}

// ---- §K1: echo removal -----------------------------------------------------------------------------

struct EchoRow {
  const char* input;
  const char* echo;                       // nullptr: none
  std::vector<std::string> information;   // MM's output lines, minus a final result code
  const char* final_line;                 // nullptr: the appended OK ends the command
};

TEST(AtChannel, K1EchoRemoval) {
  const EchoRow rows[] = {
      {"\r\n", nullptr, {}, nullptr},
      {"\r", nullptr, {}, nullptr},
      {"\n", nullptr, {}, nullptr},
      // MM leaves these unchanged until a CR LF arrives; then what precedes it is the echo.
      {"this is a string that ends just with <CR>\r", "this is a string that ends just with <CR>", {}, nullptr},
      {"this is a string that ends just with <CR>\n", "this is a string that ends just with <CR>", {}, nullptr},
      {"\r\nthis is valid", nullptr, {"this is valid"}, nullptr},
      {"a\r\nthis is valid", "a", {"this is valid"}, nullptr},
      {"a\r\n", "a", {}, nullptr},
      {"all this string is to be considered echo\r\n", "all this string is to be considered echo", {}, nullptr},
      {"all this string is to be considered echo\r\nthis is valid", "all this string is to be considered echo",
       {"this is valid"}, nullptr},
      {"echo echo\r\nthis is valid\r\nand so is this", "echo echo", {"this is valid", "and so is this"}, nullptr},
      {"\r\nthis is valid\r\nand so is this", nullptr, {"this is valid", "and so is this"}, nullptr},
      {"\r\nthis is valid\r\nand so is this\r\n", nullptr, {"this is valid", "and so is this"}, nullptr},
      {"\nNO CARRIER\r\n", nullptr, {}, "NO CARRIER"},
      {"\nCONNECT\r\n", nullptr, {"CONNECT"}, nullptr},
  };
  for (const EchoRow& r : rows) {
    for (std::size_t chunk : {std::size_t{0}, std::size_t{1}, std::size_t{3}}) {
      SCOPED_TRACE(::testing::Message() << "input " << ::testing::PrintToString(std::string(r.input)) << " chunk " << chunk);
      AtChannel ch;
      ch.submit("AT+TEST", t0);
      Collected c = feed(ch, r.input, chunk);
      Collected tail = feed(ch, "\r\nOK\r\n", chunk);
      c.echo.insert(c.echo.end(), tail.echo.begin(), tail.echo.end());
      c.information.insert(c.information.end(), tail.information.begin(), tail.information.end());
      c.finals.insert(c.finals.end(), tail.finals.begin(), tail.finals.end());
      if (r.echo) {
        EXPECT_THAT(c.echo, ElementsAre(r.echo));
      } else {
        EXPECT_TRUE(c.echo.empty());
      }
      EXPECT_THAT(c.information, ElementsAreArray(r.information));
      ASSERT_EQ(c.finals.size(), 1u);
      EXPECT_EQ(c.finals[0].final_line, r.final_line ? r.final_line : "OK");
    }
  }
}

// ---- §K2: final results ------------------------------------------------------------------------------

struct FinalRow {
  const char* buffer;
  bool found, error;
};
const FinalRow kFinalRows[] = {
    {"\r\nOK\r\n", true, false},
    {"\r\nOK\r\n\r\n+CMTI: \"ME\",1\r\n", true, false},
    {"\r\nOK\r\n\r\n+CIEV: 7,1\r\n\r\n+CRING: VOICE\r\n\r\n+CLIP: \"+0123456789\",145,,,,0\r\n", true, false},
    {"\r\nUNKNOWN COMMAND\r\n", false, false},
    {"\r\nUNKNOWN COMMAND\r\n", false, false},
    {"\r\nERROR\r\n", true, true},
    {"\r\nERROR\r\n\r\noooops\r\n", true, true},
    {"\r\n+CME ERROR: raspberry\r\n", true, true},
    {"\r\n+CME ERROR: 123\r\n", true, true},
    {"\r\n+CME ERROR: \r\n", true, true},
    {"\r\n+CME ERROR:\r\n", false, false},
    {"\r\n+CMS ERROR: bananas\r\n", true, true},
    {"\r\n+CMS ERROR: 456\r\n", true, true},
    {"\r\n+CMS ERROR: \r\n", true, true},
    {"\r\n+CMS ERROR:\r\n", false, false},
    {"\r\nMODEM ERROR: 5\r\n", true, true},
    {"\r\nMODEM ERROR: apple\r\n", false, false},
    {"\r\nMODEM ERROR: \r\n", false, false},
    {"\r\nMODEM ERROR:\r\n", false, false},
    {"\r\nCOMMAND NOT SUPPORT\r\n", true, true},
    {"\r\nCOMMAND NOT SUPPORT\r\n\r\nSomething extra\r\n", true, true},
    {"\r\nNO CARRIER\r\n", true, true},
    {"\r\nNO CARRIER\r\n\r\nSomething extra\r\n", true, true},
    {"\r\nBUSY\r\n", true, true},
    {"\r\nBUSY\r\n\r\nSomething extra\r\n", true, true},
    {"\r\nNO ANSWER\r\n", true, true},
    {"\r\nNO ANSWER\r\n\r\nSomething extra\r\n", true, true},
    {"\r\nNO DIALTONE\r\n", true, true},
    {"\r\nNO DIALTONE\r\n\r\nSomething extra\r\n", true, true},
};

TEST(AtChannel, K2FinalResultDetection) {
  for (const FinalRow& r : kFinalRows) {
    for (std::size_t chunk : {std::size_t{0}, std::size_t{1}, std::size_t{5}}) {
      SCOPED_TRACE(::testing::Message() << ::testing::PrintToString(std::string(r.buffer)) << " chunk " << chunk);
      AtChannel ch;
      ch.submit("AT+TEST", t0);
      const Collected c = feed(ch, r.buffer, chunk);
      ASSERT_EQ(c.finals.size(), r.found ? 1u : 0u);
      if (r.found) {
        EXPECT_EQ(!c.finals[0].ok(), r.error);
      }
      EXPECT_EQ(ch.busy(), !r.found);
    }
  }
  EXPECT_EQ(std::size(kFinalRows), 29u);
}

// §K2: "OK followed by unsolicited lines is still a successful final response"; what follows a
// final result in the same chunk is unsolicited, not the answer of the next queued command.
TEST(AtChannel, LinesAfterTheFinalResultAreUnsolicited) {
  AtChannel ch;
  ch.submit("AT+TEST", t0);
  ch.submit("AT+NEXT", t0);
  (void)sent(ch);
  const Collected c = feed(ch, "\r\nERROR\r\n\r\noooops\r\n");
  EXPECT_THAT(c.unsolicited, ElementsAre("oooops"));
  EXPECT_EQ(sent(ch), "AT+NEXT\r");
  EXPECT_TRUE(c.information.empty());
}

// ---- §J: Huawei unsolicited messages ----------------------------------------------------------------

TEST(AtChannel, JUnsolicitedPrefixesWhileACommandIsInFlight) {
  const char* urcs[] = {
      "^RSSI:19", "^RSSILVL:80", "^HRSSILVL:60", "^MODE:7,17", "^DSFLOWRPT:0000000A,00000000,00000000,0000000000000000,0000000000000000,0000BB80,0001F400",
      "^NDISSTAT:0,,,\"IPV4\"", "^ORIG:1,0", "^CONF:1", "^CONN:1,0", "^CEND:1,0,104,16", "^CEND:1,0,104", "^DDTMF:5",
      "^BOOT:20436354,0,0,0,72", "^CONNECT 1", "^CSNR:-100,-5", "+CUSATP:\"D0\"", "+CUSATEND", "^DSDORMANT:1",
      "^SIMST:1", "^SRVST:2", "^STIN:1,0,1", "^HCSQ:\"LTE\",50,41,140,22", "^PDPDEACT:1", "^NDISEND:1,0",
      "^RFSWITCH:1,1", "^POSITION:1", "^POSEND:0", "^ECCLIST:112,911", "^LTERSRP:-90,-10", "^CSCHANNELINFO:0,0",
  };
  for (const char* urc : urcs) {
    SCOPED_TRACE(urc);
    EXPECT_TRUE(has_unsolicited_prefix(urc));
    AtChannel ch;
    ch.submit("AT+CGMI", t0);
    const Collected c = feed(ch, std::string("\r\n") + urc + "\r\n\r\nhuawei\r\n\r\nOK\r\n");
    EXPECT_THAT(c.unsolicited, ElementsAre(urc));
    ASSERT_EQ(c.finals.size(), 1u);
    EXPECT_THAT(c.finals[0].lines, ElementsAre("huawei"));
  }
  EXPECT_FALSE(has_unsolicited_prefix("+CPINX"));
  EXPECT_FALSE(has_unsolicited_prefix("huawei"));
}

// ---- every other response string of the vectors, as framing ------------------------------------------

struct OtherRow {
  const char* section;
  const char* text;
};
const OtherRow kOtherRows[] = {
    {"D", "^SYSINFO:2,4,5,3,1"},
    {"D", "^SYSINFO:2,4,5,3,1,"},
    {"D", "^SYSINFO:2,4,5,3,1,,"},
    {"D", "^SYSINFO:2,4,5,3,1,6"},
    {"D", "^SYSINFO:2,4,5,3,1,6,"},
    {"D", "^SYSINFO:2,4,5,3,1,,6"},
    {"D", "^SYSINFO:2,4,5,3,1,0,6"},
    {"D", "^SYSINFO: 2,4,5,3,1,0,6"},
    {"E", "^SYSINFOEX:2,4,5,1,,3,WCDMA,41,HSPA+"},
    {"E", "^SYSINFOEX:2,4,5,1,,3,\"WCDMA\",41,\"HSPA+\""},
    {"E", "^SYSINFOEX: 2,4,5,1,0,3,\"WCDMA\",41,\"HSPA+\""},
    {"F", "^PREFMODE:(2,4,8)\r\n"},
    {"F", "^PREFMODE:(2,4)\r\n"},
    {"F", "^PREFMODE:(2)\r\n"},
    {"F", "^PREFMODE:2\r\n"},
    {"F", "^PREFMODE:4\r\n"},
    {"F", "^PREFMODE:8\r\n"},
    {"F", "^SYSCFG:(2,13,14,16),(0-3),,,"},
    {"F", "^SYSCFG:(2,13,14,16),(0-3),((400000,\"WCDMA2100\")),(0-2),(0-4)\r\n"},
    {"F", "^SYSCFG:(2,13,14,16),(0),((2000000400380,\"GSM900/GSM1800/WCDMA900/WCDMA2100\"),(280000,\"GSM850/GSM1900\"),(3fffffff,\"All bands\")),(0-2),(0-4)\r\n"},
    {"F", "^SYSCFG:(13),(0),((2000000400380,\"GSM900/GSM1800/WCDMA900/WCDMA2100\"),(280000,\"GSM850/GSM1900\"),(3fffffff,\"All bands\")),(0-2),(0-4)\r\n"},
    {"F", "^SYSCFG: 2,0,400000,0,3\r\n"},
    {"F", "^SYSCFG: 2,1,400000,0,3\r\n"},
    {"F", "^SYSCFG: 2,2,400000,0,3\r\n"},
    {"F", "^SYSCFG: 13,0,400000,0,3\r\n"},
    {"F", "^SYSCFG: 14,0,400000,0,3\r\n"},
    {"F", "^SYSCFG:2,2,3FFFFFFF,1,2\r\n"},
    {"F", "^SYSCFG: 14,2,400000,0,3\r\n"},
    {"F", "^SYSCFG: 13,1,400000,0,3\r\n"},
    {"F", "^SYSCFGEX: (\"00\",\"03\",\"02\",\"01\",\"99\"),((2000004e80380,\"GSM850/GSM900/GSM1800/GSM1900/WCDMA850/WCDMA900/WCDMA1900/WCDMA2100\"),(3fffffff,\"All Bands\")),(0-3),(0-4),((800c5,\"LTE2100/LTE1800/LTE2600/LTE900/LTE800\"),(7fffffffffffffff,\"All bands\"))\r\n"},
    {"F", "^SYSCFGEX: (\"00\",\"01\",\"02\",\"0102\",\"0201\"),((3fffffff,\"All Bands\"),(2000000400180,\"GSM900/GSM1800/WCDMA900/WCDMA2100\"),(6A80000,\"GSM850/GSM1900/WCDMA850/AWS/WCDMA1900\")),(0-2),(0-4),,\r\n"},
    {"F", "^SYSCFGEX: \"00\",3FFFFFFF,1,2,7FFFFFFFFFFFFFFF"},
    {"F", "^SYSCFGEX: \"03\",3FFFFFFF,1,2,7FFFFFFFFFFFFFFF"},
    {"F", "^SYSCFGEX: \"02\",3FFFFFFF,1,2,7FFFFFFFFFFFFFFF"},
    {"F", "^SYSCFGEX: \"01\",3FFFFFFF,1,2,7FFFFFFFFFFFFFFF"},
    {"F", "^SYSCFGEX: \"00\",3fffffff,1,2,"},
    {"F", "^SYSCFGEX: \"01\",3fffffff,1,2,"},
    {"F", "^SYSCFGEX: \"02\",3fffffff,1,2,"},
    {"F", "^SYSCFGEX: \"0102\",3fffffff,1,2,"},
    {"F", "^SYSCFGEX: \"0201\",3fffffff,1,2,"},
    {"G", "^NWTIME: 14/08/05,04:00:21+40,00"},
    {"G", "^NWTIME: 14/08/05,04:00:21+20,00"},
    {"G", "^NWTIME: 14/08/05,04:00:21+40,01"},
    {"G", "^NWTIME: 14/08/05,04:00:21+40,02"},
    {"G", "^TIME: XX/XX/XX,XX:XX:XX+XX,XX"},
    {"G", "^TIME: 14/08/05,04:00:21+40,00"},
    {"G", "^TIME: 14/08/05 04:00:21"},
    {"G", "^TIME: 2014/08/05 04:00:21"},
    {"G", "^TIME: 14-08-05 04:00:21"},
    {"G", "^TIME: 14-08-05,04:00:21"},
    {"G", "^TIME: 14/08/05 04:00:21 AEST"},
    {"H", "^HCSQ:\"LTE\",30,19,66,0\r\n"},
    {"H", "^HCSQ: \"WCDMA\",30,30,58\r\n"},
    {"H", "^HCSQ: \"GSM\",36,255\r\n"},
    {"H", "^HCSQ: LTE,33,40,135,11\r\n"},
    {"H", "^HCSQ: \"NOSERVICE\"\r\n"},
    {"H", "^HCSQ: NOSERVICE\r\n"},
    {"I", "^GETPORTMODE: TYPE: WCDMA: huawei,PCUI:0,MDM:1"},
    {"I", "^GETPORTMODE: TYPE: WCDMA: huawei,MDM:0,PCUI:1,NDIS:2,CDROM:3,SD:4,"},
    {"I", "^GETPORTMODE: TYPE: WCDMA: huawei,MDM:0,PCUI:1,NDIS:2,GPS:3,BT:4,"},
    {"I", "^GETPORTMODE: TYPE: WCDMA: huawei,PCUI:0,MDM:1,NDIS:2,CDROM:3,SD:4,GPS:5,BT:6"},
    {"I", "^getportmode:type:WCDMA:Qualcomm,NDIS:0,DIAG:1,PCUI:2,MDM:3,SD:4"},
    {"I", "^GETPORTMODE: TYPE: WCDMA: ,pcui:1,modem:2,ncm:3,mass:4,mass_two:5,"},
    {"I", "^GETPORTMODE: TYPE: WCDMA: huawei ,, rndis: 0, pcui: 1, c_shell: 2, a_shell: 3,3g_diag: 4, gps: 5, 4g_diag: 6, mass_two: 7"},
    {"I", "^GETPORTMODE: TYPE: WCDMA: huawei,ecm:1,pcui:2,c_shell:3,a_shell:4,3g_diag:5,gps:6,4g_diag:7,mass:8,"},
    {"I", "^GETPORTMODE: TYPE: WCDMA: huawei,rndis:1,pcui:2,c_shell:3,a_shell:4,3g_diag:5,gps:6,4g_diag:7,mass:8,"},
    {"I", "^GETPORTMODE: TYPE: WCDMA: huawei,,pcui:0,3g_modem:1,ncm:2,mass:3,mass_two:4"},
    {"I", "^GETPORTMODE:TYPE:WCDMA:Qualcomm,MDM:0,NDIS:1,DIAG:2,PCUI:3,CDROM:4,SD:5"},
    {"I", "^GETPORTMODE: TYPE: WCDMA: Huawei Technologies Co.,Ltd.,"},
    {"L", "+CGCONTRDP: 4,5,\"ibox.tim.it.mnc001.mcc222.gprs\",\"2.197.17.49.255.255.255.255\",\"2.197.17.49\",\"10.207.43.46\",\"10.206.56.132\",\"0.0.0.0\",\"0.0.0.0\",0"},
    {"L", "+CGCONTRDP: 4,5,\"ibox.tim.it.mnc001.mcc222.gprs\",\"2.197.17.49.255.255.255.255\",\"2.197.17.49\",\"10.207.43.46\""},
    {"L", "+CGCONTRDP: 4,5,\"ibox.tim.it.mnc001.mcc222.gprs\",\"2.197.17.49.255.255.255.255\",\"2.197.17.49\""},
    {"L", "+CGCONTRDP: 4,5,\"ibox.tim.it.mnc001.mcc222.gprs\",\"2.197.17.49.255.255.255.255\""},
    {"L", "+CGCONTRDP: 4,5,\"ibox.tim.it.mnc001.mcc222.gprs\",\"2.197.17.49\",\"255.255.255.255\",\"2.197.17.49\",\"10.207.43.46\",\"10.206.56.132\",\"0.0.0.0\",\"0.0.0.0\""},
    {"L", "+CGCONTRDP: 4,5,\"ibox.tim.it.mnc001.mcc222.gprs\",\"2.197.17.49\",\"255.255.255.255\",\"2.197.17.49\",\"10.207.43.46\""},
    {"L", "+CGCONTRDP: 4,5,\"ibox.tim.it.mnc001.mcc222.gprs\",\"2.197.17.49\",\"255.255.255.255\",\"2.197.17.49\""},
    {"L", "+CGCONTRDP: 4,5,\"ibox.tim.it.mnc001.mcc222.gprs\",\"2.197.17.49\",\"255.255.255.255\""},
    {"L", "+CGCONTRDP: 4,5,\"ibox.tim.it.mnc001.mcc222.gprs\",\"2.197.17.49\""},
    {"L", "+CGCONTRDP: 1,5,\"internetipv6.mnc003.mcc260.gprs\",\"254.128.0.0.0.0.0.0.0.0.0.37.88.136.248.1\",\"\",\"42.1.23.0.0.2.255.255.0.0.0.0.0.0.159.1\",\"42.1.23.0.0.3.255.255.0.0.0.0.0.0.152.34\",\"\",\"\",0,0"},
    {"L", "+CGCONTRDP: 2,6,\"fast.t-mobile.com\",\"38.7.251.144.154.37.192.120.172.57.189.17.176.171.138.245\",,\"253.0.151.106.0.0.0.0.0.0.0.0.0.0.0.9\",\"253.0.151.106.0.0.0.0.0.0.0.0.0.0.0.16\""},
    {"L", "+CGCONTRDP: 1,0,\"fast.t-mobile.com\",\"2607:FB90:B59A:02C1:0AD3:1B57:4FD4:21F4\",\"FE80:0000:0000:0000:B46D:57FF:FE45:4545\",\"fd00:976a::9\",\"fd00:976a::10\""},
    {"L", "+CGCONTRDP: 2,6,\"fast.t-mobile.com\",,,\"253.0.151.106.0.0.0.0.0.0.0.0.0.0.0.9\",\"253.0.151.106.0.0.0.0.0.0.0.0.0.0.0.16\""},
    {"L", "+CGCONTRDP: 4,5,\"ibox.tim.it.mnc001.mcc222.gprs\""},
    {"L", "+CGCONTRDP: 4,5,\"\""},
    {"L", "+CFUN: 1"},
    {"L", "+CFUN: 1,0"},
    {"L", "+CFUN: 0"},
    {"L", "+CFUN: 0,0"},
    {"L", "+CFUN: 19"},
    {"L", "+CFUN: 19,0"},
    {"L", "+CME ERROR: 100"},
    {"L", "+CPIN: SIM PIN"},
    {"L", "+CPIN: SIM PUK2"},
    {"L", "   SIM PUK"},
    {"L", "   SIM PUK2"},
    {"L", "+CPIN: \"SIM PIN\""},
    {"L", "+CPIN: PH-NET PIN"},
    {"L", "+CESQ: 99,99,255,255,20,80"},
    {"L", "+CESQ: 99,99,95,40,255,255"},
    {"L", "+CESQ: 10,6,255,255,255,255"},
    {"L", "+CESQ:10,6,255,255,255,255"},
    {"L", "+CGDCONT: (1-10),\"IP\",,,(0,1),(0,1)"},
    {"L", "+CGDCONT: (1-10),\"IP\",,,(0,1),(0,1)\r\n+CGDCONT: (1-10),\"IPV6\",,,(0,1),(0,1)\r\n+CGDCONT: (1-10),\"IPV4V6\",,,(0,1),(0,1)\r\n"},
    {"L", "+CGDCONT: (1-16),\"IP\",,,(0-2),(0-4)\r\n+CGDCONT: (1-16),\"PPP\",,,(0-2),(0-4)\r\n+CGDCONT: (1-16),\"IPV6\",,,(0-2),(0-4)\r\n"},
    {"L", "+CGDCONT: (1),\"IP\",,,(0),(0)\r\n+CGDCONT: (1),\"IPV6\",,,(0),(0)\r\n"},
    {"L", "+CGDCONT: ( 1 ) , \"IP\" ,,, (0-2),(0-3)\r\n+CGDCONT: , \"PPP\" ,,, (0-2),(0-3)\r\n"},
    {"L", "+CGDCONT: (1-17,101-116),\"IP\",,,(0),(0-4)\r\n"},
    {"L", "+CGDCONT: 1,\"IP\",,,0,0"},
    {"L", "+CGDCONT: 1,\"IP\",\"nate.sktelecom.com\",\"\",0,0\r\n+CGDCONT: 2,\"IP\",\"epc.tmobile.com\",\"\",0,0\r\n+CGDCONT: 3,\"IP\",\"MAXROAM.com\",\"\",0,0\r\n"},
    {"L", "+CGDCONT: 1,\"IP\",\"nate.sktelecom.com\"\r\n+CGDCONT: 2,\"IP\",\"epc.tmobile.com\"\r\n+CGDCONT: 3,\"IP\",\"MAXROAM.com\"\r\n"},
    {"L", ""},
    {"L", "+CGACT: 1,0\r\n"},
    {"L", "+CGACT: 1,1\r\n"},
    {"L", "+CGACT: 1,0\r\n+CGACT: 4,1\r\n+CGACT: 5,0\r\n"},
    {"L", "\"984402003576012594F9\""},
    {"L", "98231420326409614067"},
    {"L", "8944200053671052499F"},
    {"L", "8944200053671052499"},
    {"L", "\"89324102234690160476\""},
    {"L", "\"898602F9091830030220\""},
    {"L", "\"898602C0123456789012\""},
    // §F5 rows 2 and 3: row 1 with the modes the table gives.
    {"F", "^SYSCFGEX: (\"030201\",\"0302\",\"03\",\"99\"),((2000004e80380,\"GSM850/GSM900/GSM1800/GSM1900/WCDMA850/WCDMA900/WCDMA1900/WCDMA2100\"),(3fffffff,\"All Bands\")),(0-3),(0-4),((800c5,\"LTE2100/LTE1800/LTE2600/LTE900/LTE800\"),(7fffffffffffffff,\"All bands\"))\r\n"},
    {"F", "^SYSCFGEX: (\"03\"),((2000004e80380,\"GSM850/GSM900/GSM1800/GSM1900/WCDMA850/WCDMA900/WCDMA1900/WCDMA2100\"),(3fffffff,\"All Bands\")),(0-3),(0-4),((800c5,\"LTE2100/LTE1800/LTE2600/LTE900/LTE800\"),(7fffffffffffffff,\"All bands\"))\r\n"},
};

// The command that asks for a line: "AT" + its prefix + "?" (so the query owns URC-looking
// prefixes such as ^HCSQ and ^TIME); a line without a prefix (ICCID, a bare "SIM PUK") any command.
std::string command_for(std::string_view first_line) {
  if (first_line.empty() || (first_line[0] != '^' && first_line[0] != '+')) return "AT+CCID";
  return "AT" + std::string(first_line.substr(0, first_line.find(':'))) + "?";
}

TEST(AtChannel, EveryOtherVectorStringFramesAsItsInformationLines) {
  for (const OtherRow& r : kOtherRows) {
    const std::vector<std::string> want = lines_of(r.text);
    const std::string response = std::string("\r\n") + r.text + "\r\n\r\nOK\r\n";
    for (std::size_t chunk : {std::size_t{0}, std::size_t{1}, std::size_t{7}}) {
      SCOPED_TRACE(::testing::Message() << "§" << r.section << " " << r.text << " chunk " << chunk);
      AtChannel ch;
      ch.submit(command_for(want.empty() ? "" : want[0]), t0);
      const Collected c = feed(ch, response, chunk);
      if (!want.empty() && classify_final_result(want[0])) {  // §L3's "+CME ERROR: 100"
        ASSERT_EQ(c.finals.size(), 1u);
        EXPECT_EQ(c.finals[0].result, FinalResult::cme_error);
        EXPECT_EQ(c.finals[0].error_code, 100);
        continue;
      }
      ASSERT_EQ(c.finals.size(), 1u);
      EXPECT_TRUE(c.finals[0].ok());
      EXPECT_THAT(c.finals[0].lines, ElementsAreArray(want));
      EXPECT_TRUE(c.unsolicited.empty());
    }
  }
}

// The serial trace of the vectors' provenance notes (commit 14ccde2b), <CR><LF> as bytes, echo on.
TEST(AtChannel, SyscfgSerialTrace) {
  AtChannel ch;
  ch.submit("AT^SYSCFG?", t0);
  const Collected c = feed(ch, "AT^SYSCFG?\r\r\n^SYSCFG:14,2,400380,1,2\r\n\r\nOK\r\n");
  EXPECT_THAT(c.echo, ElementsAre("AT^SYSCFG?"));
  ASSERT_EQ(c.finals.size(), 1u);
  EXPECT_THAT(c.finals[0].lines, ElementsAre("^SYSCFG:14,2,400380,1,2"));
}

// ---- robustness --------------------------------------------------------------------------------------

TEST(AtChannel, EverySplitGivesTheSameEvents) {
  const std::string response =
      "AT^DHCP?\r\r\n^RSSI:19\r\n\r\n^DHCP: 0202400a,fcffffff,0102400a,0102400a,0,0,1,1\r\n\r\nOK\r\n\r\n^MODE:7,17\r\n";
  for (std::size_t split = 0; split <= response.size(); ++split) {
    AtChannel ch;
    ch.submit("AT^DHCP?", t0);
    Collected c = feed(ch, response.substr(0, split));
    Collected rest = feed(ch, response.substr(split));
    c.unsolicited.insert(c.unsolicited.end(), rest.unsolicited.begin(), rest.unsolicited.end());
    c.finals.insert(c.finals.end(), rest.finals.begin(), rest.finals.end());
    c.echo.insert(c.echo.end(), rest.echo.begin(), rest.echo.end());
    EXPECT_THAT(c.echo, ElementsAre("AT^DHCP?")) << split;
    EXPECT_THAT(c.unsolicited, ElementsAre("^RSSI:19", "^MODE:7,17")) << split;
    ASSERT_EQ(c.finals.size(), 1u) << split;
    EXPECT_THAT(c.finals[0].lines, ElementsAre("^DHCP: 0202400a,fcffffff,0102400a,0102400a,0,0,1,1")) << split;
  }
}

TEST(AtChannel, NulPaddingIsSkipped) {
  AtChannel ch;
  ch.submit("AT", t0);
  std::string chunk = "\r\nOK\r\n";
  chunk.append(4090, '\0');  // a 4096-byte GET_ENCAPSULATED_RESPONSE buffer, zero-padded
  const Collected c = feed(ch, chunk);
  ASSERT_EQ(c.finals.size(), 1u);
  EXPECT_EQ(ch.counters().nul_bytes, 4090u);
  EXPECT_EQ(ch.partial_line_bytes(), 0u);
}

TEST(AtChannel, LongLinesCostACounterNotMemory) {
  AtChannelOptions o;
  o.max_line_bytes = 64;
  o.max_information_lines = 4;
  AtChannel ch(o);
  ch.submit("AT+CGMI", t0);
  Collected c;
  c.add(ch.feed("\r\n", t0));  // not an echo: the response starts at a line boundary
  for (int i = 0; i < 1000; ++i) {
    c.add(ch.feed(std::string(1000, 'x'), t0));
    EXPECT_LE(ch.partial_line_bytes(), 64u);
  }
  c.add(ch.feed("\r\n", t0));
  for (int i = 0; i < 100; ++i) c.add(ch.feed("\r\nline\r\n", t0));
  c.add(ch.feed("\r\nOK\r\n", t0));
  EXPECT_EQ(ch.counters().lines_too_long, 1u);
  ASSERT_EQ(c.finals.size(), 1u);
  EXPECT_EQ(c.finals[0].lines.size(), 4u);
  EXPECT_EQ(c.finals[0].lines[0], std::string(64, 'x'));
  EXPECT_EQ(ch.counters().information_lines_dropped, 97u);
}

TEST(AtChannel, QueueIsBoundedAndRejectsLineBreaks) {
  AtChannelOptions o;
  o.max_queued_commands = 2;
  AtChannel ch(o);
  EXPECT_TRUE(ch.submit("AT1", t0));  // in flight
  EXPECT_TRUE(ch.submit("AT2", t0));
  EXPECT_TRUE(ch.submit("AT3", t0));
  EXPECT_FALSE(ch.submit("AT4", t0));
  EXPECT_FALSE(AtChannel().submit("AT+CPIN=\"1\"\rAT+CFUN=0", t0));
  EXPECT_FALSE(AtChannel().submit("", t0));
  EXPECT_EQ(ch.counters().commands_rejected, 1u);
}

TEST(AtChannel, TimeoutRetriesThenGivesUp) {
  AtChannel ch;
  const auto id = ch.submit("AT^NDISSTATQRY?", t0, 3000ms, 1);
  ASSERT_TRUE(id);
  EXPECT_EQ(sent(ch), "AT^NDISSTATQRY?\r");
  EXPECT_EQ(ch.next_timer(), t0 + 3000ms);
  EXPECT_TRUE(ch.on_timer(t0 + 2999ms).empty());
  EXPECT_TRUE(ch.on_timer(t0 + 3000ms).empty());  // retry
  EXPECT_EQ(sent(ch), "AT^NDISSTATQRY?\r");
  EXPECT_EQ(ch.next_timer(), t0 + 6000ms);
  const std::vector<AtEvent> ev = ch.on_timer(t0 + 6000ms);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].response->result, FinalResult::timeout);
  EXPECT_EQ(ev[0].response->id, *id);
  EXPECT_EQ(ch.counters().retries, 1u);
  EXPECT_EQ(ch.counters().timeouts, 1u);
  EXPECT_FALSE(ch.next_timer());
}

TEST(AtChannel, TimeoutReleasesTheNextCommand) {
  AtChannel ch;
  ch.submit("AT+A", t0, 1000ms);
  ch.submit("AT+B", t0, 1000ms);
  EXPECT_EQ(sent(ch), "AT+A\r");
  (void)ch.on_timer(t0 + 1000ms);
  EXPECT_EQ(sent(ch), "AT+B\r");
  EXPECT_EQ(ch.next_timer(), t0 + 2000ms);
}

TEST(AtChannel, CancelAllEndsEverything) {
  AtChannel ch;
  ch.submit("AT+A", t0);
  ch.submit("AT+B", t0);
  (void)ch.feed("\r\npartial", t0);
  const std::vector<AtEvent> ev = ch.cancel_all();
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].response->result, FinalResult::cancelled);
  EXPECT_EQ(ev[1].response->command, "AT+B");
  EXPECT_FALSE(ch.busy());
  EXPECT_EQ(ch.partial_line_bytes(), 0u);
  EXPECT_TRUE(ch.take_output().empty());
}

TEST(AtChannel, CancelQueuedLetsTheCommandInFlightFinish) {
  AtChannel ch;
  const auto a = ch.submit("AT+A", t0);
  ch.submit("AT+B", t0);
  EXPECT_EQ(sent(ch), "AT+A\r");
  const std::vector<AtEvent> ev = ch.cancel_queued();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].response->command, "AT+B");
  EXPECT_EQ(ch.in_flight(), a);
  ch.submit("AT+C", t0);
  const Collected c = feed(ch, "AT+A\r\r\nOK\r\n");  // the echo rule still holds for AT+A
  EXPECT_THAT(c.echo, ElementsAre("AT+A"));
  ASSERT_EQ(c.finals.size(), 1u);
  EXPECT_EQ(c.finals[0].id, *a);
  EXPECT_EQ(sent(ch), "AT+C\r");
}

TEST(AtChannel, FinalResultClassification) {
  EXPECT_EQ(classify_final_result("OK"), FinalResult::ok);
  EXPECT_EQ(classify_final_result("+CME ERROR: 10"), FinalResult::cme_error);
  EXPECT_EQ(classify_final_result("+CME ERROR: "), FinalResult::cme_error);
  EXPECT_FALSE(classify_final_result("+CME ERROR:"));
  EXPECT_EQ(classify_final_result("MODEM ERROR: 5"), FinalResult::modem_error);
  EXPECT_FALSE(classify_final_result("MODEM ERROR: apple"));
  EXPECT_FALSE(classify_final_result("UNKNOWN COMMAND"));
  EXPECT_FALSE(classify_final_result("OKAY"));
  EXPECT_EQ(error_code("+CME ERROR: 16"), 16);
  EXPECT_FALSE(error_code("+CME ERROR: 99999999"));
  EXPECT_STREQ(to_string(FinalResult::command_not_support), "COMMAND NOT SUPPORT");
}

}  // namespace
}  // namespace wwan::control::at
