// The modem-side Huawei AT engine. Expected strings are the forms of
// reference/vectors/modemmanager_huawei_at.md; ^DHCP is additionally decoded by a re-implementation
// of ModemManager's rule (hex, least-significant byte first), so the encoding is checked against
// the parser real hosts use, not only against itself.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "sim/huawei_at.hpp"

namespace wwan::sim {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string ok() { return "\r\nOK\r\n"; }

// The engine with echo off: responses only.
HuaweiAt quiet(const std::string& pin = "") {
  HuaweiAt at(NetworkConfig{}, pin);
  EXPECT_EQ(at.execute("ATE0\r"), "ATE0\r" + ok());  // its own echo still comes back
  return at;
}

std::vector<std::string> drain(HuaweiAt& at) {
  std::vector<std::string> out;
  while (at.has_unsolicited()) out.push_back(at.take_unsolicited());
  return out;
}

// vectors §C: "192.168.50.32 is 2032A8C0"; leading zeros may be stripped; optional 0x.
std::string mm_decode_ip(std::string field) {
  if (field.rfind("0x", 0) == 0 || field.rfind("0X", 0) == 0) field = field.substr(2);
  if (field.size() == 7) field = "0" + field;
  if (field.size() != 8) return "bad";
  const unsigned long v = std::stoul(field, nullptr, 16);
  return std::to_string(v & 0xff) + "." + std::to_string(v >> 8 & 0xff) + "." + std::to_string(v >> 16 & 0xff) +
         "." + std::to_string(v >> 24 & 0xff);
}

std::vector<std::string> fields(const std::string& s) {
  std::vector<std::string> out(1);
  for (char c : s) {
    if (c == ',') out.emplace_back();
    else out.back().push_back(c);
  }
  return out;
}

TEST(HuaweiAtTest, EchoIsOnByDefaultAndAte0TurnsItOff) {
  HuaweiAt at(NetworkConfig{}, "");
  EXPECT_TRUE(at.echo());
  EXPECT_EQ(at.execute("AT\r"), "AT\r" + ok());
  EXPECT_EQ(at.execute("ATE0\r"), "ATE0\r" + ok());
  EXPECT_FALSE(at.echo());
  EXPECT_EQ(at.execute("AT\r"), ok());
  EXPECT_EQ(at.execute("ate1"), ok());  // case-insensitive; echo back from the next command on
  EXPECT_EQ(at.execute("AT"), "AT\r" + ok());
  EXPECT_EQ(at.execute("ATZ"), "ATZ\r" + ok());
  EXPECT_EQ(at.execute("\r\n"), "");
}

TEST(HuaweiAtTest, IdentityCommands) {
  HuaweiAt at = quiet();
  EXPECT_EQ(at.execute("ATI"),
            "\r\nManufacturer: huawei\r\nModel: E3372\r\nRevision: 21.318.01.00.541\r\nIMEI: 866000000000001\r\n"
            "+GCAP: +CGSM,+DS,+ES\r\n" + ok());
  EXPECT_EQ(at.execute("AT+CGMI"), "\r\nhuawei\r\n" + ok());
  EXPECT_EQ(at.execute("AT+CGMM"), "\r\nE3372\r\n" + ok());
  EXPECT_EQ(at.execute("AT+GMR"), "\r\n21.318.01.00.541\r\n" + ok());
  EXPECT_EQ(at.execute("AT+CGSN"), "\r\n866000000000001\r\n" + ok());
}

TEST(HuaweiAtTest, UnknownCommandsAndNonsenseAnswerError) {
  HuaweiAt at = quiet();
  EXPECT_EQ(at.execute("AT+FOO"), "\r\nERROR\r\n");
  EXPECT_EQ(at.execute("hello"), "\r\nERROR\r\n");
  EXPECT_EQ(at.execute(std::string(600, 'A')), "\r\nERROR\r\n");
  EXPECT_EQ(at.execute("AT^NDISDUP=1"), "\r\n+CME ERROR: 50\r\n");
  EXPECT_EQ(at.execute("AT^NDISDUP=x,1"), "\r\n+CME ERROR: 50\r\n");
  EXPECT_EQ(at.execute("AT^NDISDUP=1,1,internet"), "\r\n+CME ERROR: 50\r\n");  // APN must be quoted
}

TEST(HuaweiAtTest, SimPinFlow) {
  HuaweiAt at = quiet("1234");
  EXPECT_TRUE(at.sim_locked());
  EXPECT_EQ(at.execute("AT+CPIN?"), "\r\n+CPIN: SIM PIN\r\n" + ok());
  EXPECT_EQ(at.execute("AT^NDISDUP=1,1,\"internet\""), "\r\n+CME ERROR: 11\r\n");
  EXPECT_EQ(at.execute("AT+CPIN=\"0000\""), "\r\n+CME ERROR: 16\r\n");
  EXPECT_EQ(at.execute("AT+CPIN=\"1234\""), ok());
  EXPECT_EQ(at.execute("AT+CPIN?"), "\r\n+CPIN: READY\r\n" + ok());
  EXPECT_EQ(at.execute("AT+CPIN=\"1234\""), "\r\n+CME ERROR: 3\r\n");
  EXPECT_EQ(quiet().execute("AT+CPIN?"), "\r\n+CPIN: READY\r\n" + ok());
}

TEST(HuaweiAtTest, NdisdupConnectAnnouncesNdisstatAndQueriesFollow) {
  HuaweiAt at = quiet();
  EXPECT_EQ(at.execute("AT^NDISSTATQRY?"), "\r\n^NDISSTATQRY: 0,,,\"IPV4\",0,,,\"IPV6\"\r\n" + ok());
  EXPECT_EQ(at.execute("AT^DHCP?"), "\r\nERROR\r\n");  // only after ^NDISDUP
  // ModemManager's exact connect string (vectors §A.1).
  EXPECT_EQ(at.execute("AT^NDISDUP=1,1,\"internet\"\r"), ok());
  EXPECT_TRUE(at.connected());
  EXPECT_EQ(at.apn(), "internet");
  EXPECT_EQ(drain(at), std::vector<std::string>{"\r\n^NDISSTAT:1,,,\"IPV4\"\r\n"});
  // The newer one-line form (vectors §B rows 41-48), IPv6 refused with cause 33.
  EXPECT_EQ(at.execute("AT^NDISSTATQRY?"), "\r\n^NDISSTATQRY: 1,,,\"IPV4\",0,33,,\"IPV6\"\r\n" + ok());
  // With user, password and CHAP (vectors §A.2).
  EXPECT_EQ(at.execute("AT^NDISDUP=1,1,\"internet\",\"user\",\"pass\",2"), ok());
  EXPECT_EQ(at.execute("AT^NDISDUP=1,1,\"internet\",\"user\",\"pass\",9"), "\r\n+CME ERROR: 50\r\n");
}

TEST(HuaweiAtTest, DhcpEncodesTheNetworkConfigLsbFirst) {
  HuaweiAt at = quiet();
  ASSERT_EQ(at.execute("AT^NDISDUP=1,1,\"internet\""), ok());
  const std::string r = at.execute("AT^DHCP?");
  // Default NetworkConfig: 10.64.64.2/30 via 10.64.64.1, DNS 10.11.12.13 and 10.11.12.14.
  EXPECT_EQ(r, "\r\n^DHCP: 0240400a,fcffffff,0140400a,0140400a,0d0c0b0a,0e0c0b0a,150000000,50000000\r\n" + ok());
  const std::string body = r.substr(std::string("\r\n^DHCP: ").size(), r.find("\r\n", 2) - 9);
  const std::vector<std::string> f = fields(body);
  ASSERT_EQ(f.size(), 8u);
  EXPECT_EQ(mm_decode_ip(f[0]), "10.64.64.2");
  EXPECT_EQ(mm_decode_ip(f[1]), "255.255.255.252");
  EXPECT_EQ(mm_decode_ip(f[2]), "10.64.64.1");
  EXPECT_EQ(mm_decode_ip(f[4]), "10.11.12.13");
  EXPECT_EQ(mm_decode_ip(f[5]), "10.11.12.14");
  // The Balong example of anchors §3.2, through the same rule: 10.126.0.22.
  EXPECT_EQ(mm_decode_ip("16007e0a"), "10.126.0.22");
}

TEST(HuaweiAtTest, DhcpFollowsACustomConfig) {
  NetworkConfig c;
  c.host_ipv4 = {{100, 92, 236, 163}};
  c.host_ipv4_prefix_length = 29;
  c.gateway_ipv4 = {{100, 92, 236, 161}};
  c.dns_ipv4[0] = {{10, 177, 0, 34}};
  c.dns_ipv4[1] = {{10, 168, 187, 116}};
  HuaweiAt at(c, "");
  at.execute("ATE0");
  at.execute("AT^NDISDUP=1,1,\"\"");
  // vectors §C row 1 carries the same addresses: a3ec5c64,f8ffffff,a1ec5c64,a1ec5c64,2200b10a,74bba80a.
  EXPECT_THAT(at.execute("AT^DHCP?"), HasSubstr("^DHCP: a3ec5c64,f8ffffff,a1ec5c64,a1ec5c64,2200b10a,74bba80a,"));
}

TEST(HuaweiAtTest, DisconnectAndTheErrorOfDisconnectingTwice) {
  HuaweiAt at = quiet();
  EXPECT_EQ(at.execute("AT^NDISDUP=1,0"), "\r\nERROR\r\n");  // not connected (vectors §A)
  at.execute("AT^NDISDUP=1,1,\"internet\"");
  drain(at);
  EXPECT_EQ(at.execute("AT^NDISDUP=1,0"), ok());
  EXPECT_FALSE(at.connected());
  EXPECT_EQ(drain(at), std::vector<std::string>{"\r\n^NDISSTAT:0,,,\"IPV4\"\r\n"});
  EXPECT_EQ(at.execute("AT^NDISDUP=1,0"), "\r\nERROR\r\n");
}

TEST(HuaweiAtTest, NetworkDisconnectQueuesTheUrc) {
  HuaweiAt at = quiet();
  EXPECT_FALSE(at.network_disconnect());
  at.execute("AT^NDISDUP=1,1,\"internet\"");
  drain(at);
  EXPECT_TRUE(at.network_disconnect());
  EXPECT_FALSE(at.connected());
  EXPECT_EQ(drain(at), std::vector<std::string>{"\r\n^NDISSTAT:0,,,\"IPV4\"\r\n"});
}

TEST(HuaweiAtTest, CfunOffEndsTheSessionAndRefusesNewOnes) {
  HuaweiAt at = quiet();
  EXPECT_EQ(at.execute("AT+CFUN?"), "\r\n+CFUN: 1\r\n" + ok());
  at.execute("AT^NDISDUP=1,1,\"internet\"");
  drain(at);
  EXPECT_EQ(at.execute("AT+CFUN=4"), ok());
  EXPECT_FALSE(at.connected());
  EXPECT_EQ(drain(at), std::vector<std::string>{"\r\n^NDISSTAT:0,,,\"IPV4\"\r\n"});
  EXPECT_EQ(at.execute("AT^NDISDUP=1,1,\"internet\""), "\r\n+CME ERROR: 30\r\n");
  EXPECT_EQ(at.execute("AT+COPS?"), "\r\n+COPS: 0\r\n" + ok());
  EXPECT_EQ(at.execute("AT+CFUN=1"), ok());
  EXPECT_EQ(at.execute("AT+COPS?"), "\r\n+COPS: 0,0,\"wwan-dp sim\",7\r\n" + ok());
  EXPECT_EQ(at.execute("AT+CFUN=9"), "\r\n+CME ERROR: 50\r\n");
}

TEST(HuaweiAtTest, DualStackContextBringsUpBothFamilies) {
  HuaweiAt at = quiet();
  EXPECT_EQ(at.execute("AT+CGDCONT=1,\"IPV4V6\",\"internet\""), ok());
  EXPECT_EQ(at.execute("AT+CGDCONT?"), "\r\n+CGDCONT: 1,\"IPV4V6\",\"internet\",\"0.0.0.0\",0,0\r\n" + ok());
  EXPECT_THAT(at.execute("AT+CGDCONT=?"), HasSubstr("+CGDCONT: (1-16),\"IPV4V6\""));
  EXPECT_EQ(at.execute("AT^NDISDUP=1,1"), ok());  // APN from the context
  EXPECT_EQ(at.apn(), "internet");
  EXPECT_EQ(drain(at), (std::vector<std::string>{"\r\n^NDISSTAT:1,,,\"IPV4\"\r\n", "\r\n^NDISSTAT:1,,,\"IPV6\"\r\n"}));
  EXPECT_EQ(at.execute("AT^NDISSTATQRY?"), "\r\n^NDISSTATQRY: 1,,,\"IPV4\",1,,,\"IPV6\"\r\n" + ok());
  EXPECT_EQ(at.execute("AT^DHCPV6?"),
            "\r\n^DHCPV6: 2001:db8:0:1::2,ffff:ffff:ffff:ffff::,2001:db8:0:1::1,2001:db8:0:1::1,::,::,"
            "150000000,50000000\r\n" + ok());
  EXPECT_EQ(at.execute("AT+CGDCONT=1,\"X25\""), "\r\n+CME ERROR: 50\r\n");
  EXPECT_EQ(at.execute("AT+CGDCONT=1"), ok());
  EXPECT_EQ(at.execute("AT+CGDCONT?"), ok());
}

TEST(HuaweiAtTest, SysinfoexFollowsTheVectorFieldOrder) {
  HuaweiAt at = quiet();
  // srv_status 2, srv_domain 3, roam 0, sim_state 1, lock empty, sysmode 6 "LTE", submode 101 "LTE".
  EXPECT_EQ(at.execute("AT^SYSINFOEX"), "\r\n^SYSINFOEX:2,3,0,1,,6,\"LTE\",101,\"LTE\"\r\n" + ok());
  EXPECT_EQ(at.execute("AT^CURC=0"), ok());
}

TEST(HuaweiAtTest, PowerOnQueuesBootNoiseAndTheQueueIsBounded) {
  HuaweiAt at(NetworkConfig{}, "");
  at.power_on();
  const std::vector<std::string> noise = drain(at);
  ASSERT_FALSE(noise.empty());
  for (const std::string& s : noise) {
    EXPECT_THAT(s, StartsWith("\r\n^"));
    EXPECT_EQ(s.substr(s.size() - 2), "\r\n");
  }
  EXPECT_THAT(noise.front(), StartsWith("\r\n^BOOT:"));
  for (std::size_t i = 0; i < 2 * HuaweiAt::kMaxUnsolicited; ++i) at.power_on();
  std::size_t n = 0;
  while (at.has_unsolicited()) {
    at.take_unsolicited();
    ++n;
  }
  EXPECT_EQ(n, HuaweiAt::kMaxUnsolicited);
  EXPECT_GT(at.unsolicited_dropped(), 0u);
}

}  // namespace
}  // namespace wwan::sim
