// Parser and builder tests for control/huawei_at.hpp and control/fcc_unlock_at.hpp. Every Huawei
// string of reference/vectors/modemmanager_huawei_at.md that these parsers own is here with
// ModemManager's asserted result: §B (all 52 ^NDISSTAT/^NDISSTATQRY rows), §C (all 6 ^DHCP rows plus
// the ME936 capture of the provenance notes), §L2 (+CFUN), §L3 (+CPIN), §A (the ^NDISDUP strings).
// The rest of the file's strings (§D-§I, §J, §K, §L1, §L4-§L7) are framing tests in
// at_channel_test.cpp. FCC unlock: every row of vectors/fm350_fcc_unlock.md.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "control/fcc_unlock_at.hpp"
#include "control/huawei_at.hpp"

namespace wwan::control::huawei {
namespace {

using eth::Ipv4Address;

// ---- §B: ^NDISSTAT / ^NDISSTATQRY ----------------------------------------------------------------

// ModemManager's (available, connected) pairs as one value: a family it does not mention is
// absent; "connected" is only asserted for available families.
enum Expect { kAbsent, kUp, kDown };
struct NdisRow {
  int row;
  const char* text;
  Expect ipv4, ipv6;
};
const NdisRow kNdisRows[] = {
    {1, "^NDISSTAT: 1,,,IPV4\r\n", kUp, kAbsent},
    {2, "^NDISSTAT: 0,,,IPV4\r\n", kDown, kAbsent},
    {3, "^NDISSTAT: 1,,,IPV6\r\n", kAbsent, kUp},
    {4, "^NDISSTAT: 0,,,IPV6\r\n", kAbsent, kDown},
    {5, "^NDISSTAT: 1,,,IPV4\r\n^NDISSTAT: 1,,,IPV6\r\n", kUp, kUp},
    {6, "^NDISSTAT: 1,,,IPV4\r\n^NDISSTAT: 0,,,IPV6\r\n", kUp, kDown},
    {7, "^NDISSTAT: 0,,,IPV4\r\n^NDISSTAT: 1,,,IPV6\r\n", kDown, kUp},
    {8, "^NDISSTAT: 0,,,IPV4\r\n^NDISSTAT: 0,,,IPV6\r\n", kDown, kDown},
    {9, "^NDISSTAT: 1,,,IPV4", kUp, kAbsent},
    {10, "^NDISSTAT: 0,,,IPV4", kDown, kAbsent},
    {11, "^NDISSTAT: 1,,,IPV6", kAbsent, kUp},
    {12, "^NDISSTAT: 0,,,IPV6", kAbsent, kDown},
    {13, "^NDISSTAT: 1,,,IPV4\r\n^NDISSTAT: 1,,,IPV6", kUp, kUp},
    {14, "^NDISSTAT: 1,,,IPV4\r\n^NDISSTAT: 0,,,IPV6", kUp, kDown},
    {15, "^NDISSTAT: 0,,,IPV4\r\n^NDISSTAT: 1,,,IPV6", kDown, kUp},
    {16, "^NDISSTAT: 0,,,IPV4\r\n^NDISSTAT: 0,,,IPV6", kDown, kDown},
    {17, "^NDISSTAT: 1,,,\"IPV4\",1,,,\"IPV6\"", kUp, kUp},
    {18, "^NDISSTAT: 1,,,\"IPV4\",0,,,\"IPV6\"", kUp, kDown},
    {19, "^NDISSTAT: 0,,,\"IPV4\",1,,,\"IPV6\"", kDown, kUp},
    {20, "^NDISSTAT: 0,,,\"IPV4\",0,,,\"IPV6\"", kDown, kDown},
    {21, "^NDISSTAT: 1,,,\"IPV4\",1,,,\"IPV6\"\r\n", kUp, kUp},
    {22, "^NDISSTAT: 1,,,\"IPV4\",0,,,\"IPV6\"\r\n", kUp, kDown},
    {23, "^NDISSTAT: 0,,,\"IPV4\",1,,,\"IPV6\"\r\n", kDown, kUp},
    {24, "^NDISSTAT: 0,,,\"IPV4\",0,,,\"IPV6\"\r\n", kDown, kDown},
    {25, "^NDISSTATQRY: 1,,,IPV4\r\n", kUp, kAbsent},
    {26, "^NDISSTATQRY: 0,,,IPV4\r\n", kDown, kAbsent},
    {27, "^NDISSTATQRY: 1,,,IPV6\r\n", kAbsent, kUp},
    {28, "^NDISSTATQRY: 0,,,IPV6\r\n", kAbsent, kDown},
    {29, "^NDISSTATQRY: 1,,,IPV4\r\n^NDISSTATQRY: 1,,,IPV6\r\n", kUp, kUp},
    {30, "^NDISSTATQRY: 1,,,IPV4\r\n^NDISSTATQRY: 0,,,IPV6\r\n", kUp, kDown},
    {31, "^NDISSTATQRY: 0,,,IPV4\r\n^NDISSTATQRY: 1,,,IPV6\r\n", kDown, kUp},
    {32, "^NDISSTATQRY: 0,,,IPV4\r\n^NDISSTATQRY: 0,,,IPV6\r\n", kDown, kDown},
    {33, "^NDISSTATQRY: 1,,,IPV4", kUp, kAbsent},
    {34, "^NDISSTATQRY: 0,,,IPV4", kDown, kAbsent},
    {35, "^NDISSTATQRY: 1,,,IPV6", kAbsent, kUp},
    {36, "^NDISSTATQRY: 0,,,IPV6", kAbsent, kDown},
    {37, "^NDISSTATQRY: 1,,,IPV4\r\n^NDISSTATQRY: 1,,,IPV6", kUp, kUp},
    {38, "^NDISSTATQRY: 1,,,IPV4\r\n^NDISSTATQRY: 0,,,IPV6", kUp, kDown},
    {39, "^NDISSTATQRY: 0,,,IPV4\r\n^NDISSTATQRY: 1,,,IPV6", kDown, kUp},
    {40, "^NDISSTATQRY: 0,,,IPV4\r\n^NDISSTATQRY: 0,,,IPV6", kDown, kDown},
    {41, "^NDISSTATQRY: 1,,,\"IPV4\",1,,,\"IPV6\"", kUp, kUp},
    {42, "^NDISSTATQRY: 1,,,\"IPV4\",0,,,\"IPV6\"", kUp, kDown},
    {43, "^NDISSTATQRY: 0,,,\"IPV4\",1,,,\"IPV6\"", kDown, kUp},
    {44, "^NDISSTATQRY: 0,,,\"IPV4\",0,,,\"IPV6\"", kDown, kDown},
    {45, "^NDISSTATQRY: 1,,,\"IPV4\",1,,,\"IPV6\"\r\n", kUp, kUp},
    {46, "^NDISSTATQRY: 1,,,\"IPV4\",0,,,\"IPV6\"\r\n", kUp, kDown},
    {47, "^NDISSTATQRY: 0,,,\"IPV4\",1,,,\"IPV6\"\r\n", kDown, kUp},
    {48, "^NDISSTATQRY: 0,,,\"IPV4\",0,,,\"IPV6\"\r\n", kDown, kDown},
    {49, "^NDISSTATQry:1", kUp, kAbsent},
    {50, "^NDISSTATQry:1\r\n", kUp, kAbsent},
    {51, "^NDISSTATQry:0", kDown, kAbsent},
    {52, "^NDISSTATQry:0\r\n", kDown, kAbsent},
};

void expect_family(const std::optional<NdisState>& got, Expect want, int row, const char* family) {
  SCOPED_TRACE(std::string("row ") + std::to_string(row) + " " + family);
  switch (want) {
    case kAbsent: EXPECT_FALSE(got.has_value()); break;
    case kUp: ASSERT_TRUE(got.has_value()); EXPECT_EQ(*got, NdisState::connected); break;
    case kDown: ASSERT_TRUE(got.has_value()); EXPECT_EQ(*got, NdisState::disconnected); break;
  }
}

TEST(Ndisstat, EveryModemManagerRowParses) {
  for (const NdisRow& r : kNdisRows) {
    const std::optional<NdisStatus> st = parse_ndisstat(r.text);
    ASSERT_TRUE(st.has_value()) << "row " << r.row << ": " << r.text;
    expect_family(st->ipv4, r.ipv4, r.row, "ipv4");
    expect_family(st->ipv6, r.ipv6, r.row, "ipv6");
  }
  EXPECT_EQ(std::size(kNdisRows), 52u);
}

// The real captures quoted in the vectors' provenance notes (commit 663d4969): the new one-line
// form with the error cause, and the old two-line form.
TEST(Ndisstat, RealFirmwareFormsCarryTheCause) {
  const std::optional<NdisStatus> fresh = parse_ndisstat("^NDISSTATQRY:0,,,\"IPV4\",0,33,,\"IPV6\"\r\n\r\nOK\r\n");
  ASSERT_TRUE(fresh);
  EXPECT_EQ(fresh->ipv4, NdisState::disconnected);
  EXPECT_EQ(fresh->ipv6, NdisState::disconnected);
  EXPECT_EQ(fresh->ipv6_error, 33);
  EXPECT_FALSE(fresh->ipv4_error);

  const std::optional<NdisStatus> old = parse_ndisstat("^NDISSTATQRY: 1,,,IPV4\r\n^NDISSTATQRY: 0,33,,IPV6\r\nOK");
  ASSERT_TRUE(old);
  EXPECT_EQ(old->ipv4, NdisState::connected);
  EXPECT_EQ(old->ipv6, NdisState::disconnected);
  EXPECT_EQ(old->ipv6_error, 33);
}

// anchors §3.2 (Balong): stat 2 connecting, 3 disconnecting; the cid-first form; IPV4V6.
TEST(Ndisstat, BalongStatesAndForms) {
  EXPECT_EQ(parse_ndisstat("^NDISSTAT: 2,,,\"IPV4\"")->ipv4, NdisState::connecting);
  EXPECT_EQ(parse_ndisstat("^NDISSTAT: 3,,,\"IPV6\"")->ipv6, NdisState::disconnecting);
  const std::optional<NdisStatus> cid_first = parse_ndisstat("^NDISSTATQRY: 1,1,,,\"IPV4\",1,0,36,,\"IPV6\"");
  ASSERT_TRUE(cid_first);
  EXPECT_EQ(cid_first->ipv4, NdisState::connected);
  EXPECT_EQ(cid_first->ipv6, NdisState::disconnected);
  EXPECT_EQ(cid_first->ipv6_error, 36);
  const std::optional<NdisStatus> both = parse_ndisstat("^NDISSTAT:1,,,\"IPV4V6\"");
  ASSERT_TRUE(both);
  EXPECT_EQ(both->ipv4, NdisState::connected);
  EXPECT_EQ(both->ipv6, NdisState::connected);
}

TEST(Ndisstat, MalformedIsRejected) {
  for (const char* bad : {"^NDISSTAT:", "^NDISSTAT: 4,,,IPV4", "^NDISSTAT: 1,,IPV4", "^NDISSTAT: 1,,,IPV5",
                          "^NDISSTAT: 1,,,IPV4,0", "^NDISSTAT: x", "^NDISSTAT: 1,,,,,,,,IPV4", "OK", "",
                          "^NDISSTAT: -1,,,IPV4", "^NDISSTAT: 99999999999999999999,,,IPV4", "^NDISSTAT: ,,,IPV4"})
    EXPECT_FALSE(parse_ndisstat(bad)) << bad;
}

// ---- §C: ^DHCP -------------------------------------------------------------------------------------

struct DhcpRow {
  const char* text;
  const char* address;
  int prefix;
  const char* gateway;
  const char* dns1;
  const char* dns2;
};
const DhcpRow kDhcpRows[] = {
    {"^DHCP:a3ec5c64,f8ffffff,a1ec5c64,a1ec5c64,2200b10a,74bba80a,236800,236800\r\n", "100.92.236.163", 29, "100.92.236.161", "10.177.0.34", "10.168.187.116"},
    {"^DHCP:0xa3ec5c64,0xf8ffffff,0xa1ec5c64,0xa1ec5c64,0x2200b10a,0x74bba80a,236800,236800\r\n", "100.92.236.163", 29, "100.92.236.161", "10.177.0.34", "10.168.187.116"},
    {"^DHCP: 1010A0A,FCFFFFFF,2010A0A,2010A0A,0,0,150000000,150000000\r\n", "10.10.1.1", 30, "10.10.1.2", "0.0.0.0", "0.0.0.0"},
    {"^DHCP: CCDB080A,F8FFFFFF,C9DB080A,C9DB080A,E67B59C0,E77B59C0,85600,85600\r\n", "10.8.219.204", 29, "10.8.219.201", "192.89.123.230", "192.89.123.231"},
    {"^DHCP: 0xCCDB080A,0xF8FFFFFF,0xC9DB080A,0xC9DB080A,0xE67B59C0,0xE77B59C0,85600,85600\r\n", "10.8.219.204", 29, "10.8.219.201", "192.89.123.230", "192.89.123.231"},
    {"^DHCP: 0XCCDB080A,0XF8FFFFFF,0XC9DB080A,0XC9DB080A,0XE67B59C0,0XE77B59C0,85600,85600\r\n", "10.8.219.204", 29, "10.8.219.201", "192.89.123.230", "192.89.123.231"},
};

TEST(Dhcp, EveryModemManagerRowParses) {
  for (const DhcpRow& r : kDhcpRows) {
    SCOPED_TRACE(r.text);
    const std::optional<Dhcp> d = parse_dhcp(r.text);
    ASSERT_TRUE(d);
    EXPECT_EQ(format_ipv4(d->address), r.address);
    EXPECT_EQ(d->prefix_length, r.prefix);
    EXPECT_EQ(format_ipv4(d->gateway), r.gateway);
    EXPECT_EQ(format_ipv4(d->dns1), r.dns1);
    EXPECT_EQ(format_ipv4(d->dns2), r.dns2);
    // "the 4th field decodes to the same value as the gateway in every row" (vectors §C).
    EXPECT_EQ(d->dhcp_server, d->gateway);
  }
}

TEST(Dhcp, LinkRatesAndSessionView) {
  const std::optional<Dhcp> d = parse_dhcp(kDhcpRows[2].text);  // 10.10.1.1/30, DNS 0 and 0
  ASSERT_TRUE(d);
  EXPECT_EQ(d->max_rx_bits_per_s, 150000000u);
  EXPECT_EQ(d->max_tx_bits_per_s, 150000000u);
  const Ipv4Config c = to_ipv4_config(*d);
  EXPECT_EQ(c.address, (Ipv4Address{{10, 10, 1, 1}}));
  EXPECT_EQ(c.prefix_length, 30);
  EXPECT_EQ(c.gateway, (Ipv4Address{{10, 10, 1, 2}}));
  EXPECT_TRUE(c.dns.empty());  // zero DNS entries dropped, as ModemManager does
}

// ME936 capture (vectors provenance, commit 456e1e0d): the netmask written MSB-first still gives /8.
TEST(Dhcp, Me936CaptureWithMsbFirstMask) {
  const std::optional<Dhcp> d =
      parse_dhcp("^DHCP: 0xda7d0e0a,0xff000000,0xdb7d0e0a,0xdb7d0e0a,0x01261aac,0x00000000,100000000,50000000");
  ASSERT_TRUE(d);
  EXPECT_EQ(format_ipv4(d->address), "10.14.125.218");
  EXPECT_EQ(d->prefix_length, 8);
  EXPECT_EQ(format_ipv4(d->gateway), "10.14.125.219");
  EXPECT_EQ(format_ipv4(d->dhcp_server), "10.14.125.219");
  EXPECT_EQ(format_ipv4(d->dns1), "172.26.38.1");
  const Ipv4Config c = to_ipv4_config(*d);
  ASSERT_EQ(c.dns.size(), 1u);
  EXPECT_EQ(c.dns[0], (Ipv4Address{{172, 26, 38, 1}}));
}

// The Balong table's example (anchors §3.2) inside a whole response.
TEST(Dhcp, BalongExampleInAResponse) {
  const std::optional<Dhcp> d =
      parse_dhcp("\r\n^DHCP: 16007e0a,fcffffff,15007e0a,15007e0a,6537480a,64ff480a,7200000,384000\r\n\r\nOK\r\n");
  ASSERT_TRUE(d);
  EXPECT_EQ(format_ipv4(d->address), "10.126.0.22");
  EXPECT_EQ(d->prefix_length, 30);
  EXPECT_EQ(format_ipv4(d->gateway), "10.126.0.21");
  EXPECT_EQ(format_ipv4(d->dns2), "10.72.255.100");
}

TEST(Dhcp, MalformedIsRejected) {
  for (const char* bad : {"^DHCP:", "^DHCP: 1,2,3,4,5", "^DHCP: 123456789,0,0,0,0,0,1,1", "^DHCP: g,0,0,0,0,0",
                          "^DHCP: 0x,0,0,0,0,0", "^DHCP: ,0,0,0,0,0", "^DHCP: 1,2,3,4,5,6,7,8,9", "^DHCPV6: ::,::,::,::,::,::",
                          "DHCP: 1,1,1,1,1,1", "^DHCP: -1,0,0,0,0,0"})
    EXPECT_FALSE(parse_dhcp(bad)) << bad;
}

// ^DHCPV6: no vector gives an answer; this is the emulated modem's form (an assumption).
TEST(Dhcpv6, TextualFormOfTheEmulatedModem) {
  const std::optional<Dhcpv6> d = parse_dhcpv6(
      "^DHCPV6: 2001:db8:0:1::2,ffff:ffff:ffff:ffff::,2001:db8:0:1::1,2001:db8:0:1::1,::,::,150000000,50000000");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->address, parse_ipv6_text("2001:db8:0:1::2"));
  EXPECT_EQ(d->prefix_length, 64);
  const Ipv6Config c = to_ipv6_config(*d);
  EXPECT_EQ(c.gateway, parse_ipv6_text("2001:db8:0:1::1"));
  EXPECT_TRUE(c.dns.empty());
  EXPECT_FALSE(parse_dhcpv6("^DHCPV6: 1.2.3.4,::,::,::,::,::"));
  EXPECT_FALSE(parse_ipv6_text(std::string(100, ':')));
}

// ---- §L2 / §L3: +CFUN, +CPIN ------------------------------------------------------------------------

TEST(Cfun, ModemManagerRows) {
  EXPECT_EQ(parse_cfun("+CFUN: 1"), 1);
  EXPECT_EQ(parse_cfun("+CFUN: 1,0"), 1);
  EXPECT_EQ(parse_cfun("+CFUN: 0"), 0);
  EXPECT_EQ(parse_cfun("+CFUN: 0,0"), 0);
  EXPECT_EQ(parse_cfun("+CFUN: 19"), 19);
  EXPECT_EQ(parse_cfun("+CFUN: 19,0"), 19);
  EXPECT_FALSE(parse_cfun("+CFUN: x"));
  EXPECT_FALSE(parse_cfun("OK"));
}

TEST(Cpin, ModemManagerRows) {
  EXPECT_EQ(parse_cpin("+CME ERROR: 100"), SimLock::unknown);
  EXPECT_EQ(parse_cpin("+CPIN: SIM PIN"), SimLock::sim_pin);
  EXPECT_EQ(parse_cpin("+CPIN: SIM PUK2"), SimLock::sim_puk2);
  EXPECT_EQ(parse_cpin("   SIM PUK", false), SimLock::sim_puk);
  EXPECT_EQ(parse_cpin("   SIM PUK2", false), SimLock::sim_puk2);
  EXPECT_EQ(parse_cpin("+CPIN: \"SIM PIN\""), SimLock::sim_pin);
  EXPECT_EQ(parse_cpin("+CPIN: PH-NET PIN"), SimLock::ph_net_pin);
}

TEST(Cpin, ReadyAndOthers) {
  EXPECT_EQ(parse_cpin("+CPIN: READY"), SimLock::ready);
  EXPECT_EQ(parse_cpin("\r\n+CPIN: READY\r\n\r\nOK\r\n"), SimLock::ready);
  EXPECT_EQ(parse_cpin("+CPIN: SIM PUK"), SimLock::sim_puk);
  EXPECT_EQ(parse_cpin("+CPIN: PH-SIM PIN"), SimLock::ph_sim_pin);
  EXPECT_EQ(parse_cpin("+CPIN: BANANA"), SimLock::unknown);
  EXPECT_STREQ(to_string(SimLock::sim_pin), "SIM PIN");
}

TEST(CmeError, NamesTheSimCodes) {
  EXPECT_STREQ(cme_error_name(kCmeSimNotInserted), "SIM not inserted");
  EXPECT_STREQ(cme_error_name(kCmeSimPinRequired), "SIM PIN required");
  EXPECT_STREQ(cme_error_name(kCmeSimPukRequired), "SIM PUK required");
  EXPECT_STREQ(cme_error_name(kCmeIncorrectPassword), "incorrect password");
  EXPECT_STREQ(cme_error_name(kCmeSimBusy), "SIM busy");
  EXPECT_EQ(cme_error_name(9999), nullptr);
}

// ---- §A: builders ----------------------------------------------------------------------------------

SessionSettings settings(std::string apn, std::string user = {}, std::string password = {},
                         AuthProtocol auth = AuthProtocol::none) {
  SessionSettings s;
  s.apn = std::move(apn);
  s.user = std::move(user);
  s.password = std::move(password);
  s.auth = auth;
  return s;
}

TEST(Ndisdup, ModemManagerStrings) {
  EXPECT_EQ(ndisdup_connect(settings("internet")), "AT^NDISDUP=1,1,\"internet\"");
  EXPECT_EQ(ndisdup_connect(settings("")), "AT^NDISDUP=1,1,\"\"");  // "apn "" if none"
  EXPECT_EQ(ndisdup_connect(settings("apn", "u", "p", AuthProtocol::pap)), "AT^NDISDUP=1,1,\"apn\",\"u\",\"p\",1");
  EXPECT_EQ(ndisdup_connect(settings("apn", "u", "p", AuthProtocol::chap)), "AT^NDISDUP=1,1,\"apn\",\"u\",\"p\",2");
  EXPECT_EQ(ndisdup_connect(settings("apn", "u", "p", AuthProtocol::mschapv2)), "AT^NDISDUP=1,1,\"apn\",\"u\",\"p\",3");
  // Credentials without a protocol: CHAP, as ModemManager does.
  EXPECT_EQ(ndisdup_connect(settings("apn", "u", "p")), "AT^NDISDUP=1,1,\"apn\",\"u\",\"p\",2");
  EXPECT_EQ(ndisdup_connect(settings("apn", "", "p")), "AT^NDISDUP=1,1,\"apn\",\"\",\"p\",2");
  EXPECT_EQ(ndisdup_connect(settings("apn")), "AT^NDISDUP=1,1,\"apn\"");
  EXPECT_EQ(ndisdup_disconnect(), "AT^NDISDUP=1,0");
  EXPECT_EQ(ndisdup_disconnect(2), "AT^NDISDUP=2,0");
  EXPECT_EQ(ndisdup_connect(settings("x"), 3), "AT^NDISDUP=3,1,\"x\"");
}

TEST(Quote, EscapesQuotesBackslashesAndControls) {
  EXPECT_EQ(quote("plain.apn"), "\"plain.apn\"");
  EXPECT_EQ(quote("a\"b"), "\"a\\22b\"");
  EXPECT_EQ(quote("a\\b"), "\"a\\5Cb\"");
  // A CR in a password must not end the command line and start another one.
  EXPECT_EQ(quote("p\rAT+CFUN=0"), "\"p\\0DAT+CFUN=0\"");
  EXPECT_EQ(cpin_enter("1234"), "AT+CPIN=\"1234\"");
  SessionSettings v6 = settings("web");
  v6.families = IpFamilies::ipv4v6;
  EXPECT_EQ(cgdcont(v6), "AT+CGDCONT=1,\"IPV4V6\",\"web\"");
  EXPECT_EQ(cgdcont(settings("web")), "AT+CGDCONT=1,\"IP\",\"web\"");
}

// ---- decode at ---------------------------------------------------------------------------------------

TEST(DecodeAt, Json) {
  EXPECT_EQ(decode_at_json(kDhcpRows[0].text),
            "{\"kind\":\"huawei-dhcp\",\"address\":\"100.92.236.163\",\"netmask\":\"255.255.255.248\","
            "\"gateway\":\"100.92.236.161\",\"dns\":[\"10.177.0.34\",\"10.168.187.116\"]}");
  EXPECT_EQ(decode_at_json(kDhcpRows[2].text),
            "{\"kind\":\"huawei-dhcp\",\"address\":\"10.10.1.1\",\"netmask\":\"255.255.255.252\","
            "\"gateway\":\"10.10.1.2\",\"dns\":[]}");
  EXPECT_EQ(decode_at_json("^NDISSTAT: 1,,,\"IPV4\",0,,,\"IPV6\""),
            "{\"kind\":\"huawei-ndisstat\",\"ipv4\":\"connected\",\"ipv6\":\"disconnected\"}");
  EXPECT_EQ(decode_at_json("^NDISSTATQRY: 0,,,IPV6"), "{\"kind\":\"huawei-ndisstat\",\"ipv6\":\"disconnected\"}");
  EXPECT_EQ(decode_at_json("^NDISSTATQry:1"), "{\"kind\":\"huawei-ndisstat\",\"ipv4\":\"connected\"}");
  EXPECT_EQ(decode_at_json("^NDISSTAT: 2,,,IPV4"), "{\"kind\":\"huawei-ndisstat\",\"ipv4\":\"connecting\"}");
  EXPECT_EQ(decode_at_json("^NDISSTAT: 3,,,IPV6"), "{\"kind\":\"huawei-ndisstat\",\"ipv6\":\"disconnecting\"}");
  EXPECT_EQ(decode_at_json("+CPIN: READY"), "{\"kind\":\"unknown\"}");
  EXPECT_EQ(decode_at_json("^DHCP: garbage"), "{\"kind\":\"unknown\"}");
  EXPECT_EQ(decode_at_json(""), "{\"kind\":\"unknown\"}");
  // Every §B row decodes to a huawei-ndisstat object.
  for (const NdisRow& r : kNdisRows)
    EXPECT_THAT(decode_at_json(r.text), ::testing::StartsWith("{\"kind\":\"huawei-ndisstat\"")) << r.row;
}

// ---- FCC unlock (vectors/fm350_fcc_unlock.md) --------------------------------------------------------

TEST(FccUnlock, VendorHashesFromModelIds) {
  EXPECT_EQ(fcc::fm350_vendor_hash("KHOIHGIUCCHHII"), fcc::kFm350VendorHashLenovo);
  EXPECT_EQ(fcc::fm350_vendor_hash("DW5931EFCCLOCK"), fcc::kFm350VendorHashDell);
}

TEST(FccUnlock, GoldenResponses) {
  struct Row {
    std::uint32_t challenge, vendor, response;
  };
  const Row rows[] = {
      {0x00000000, fcc::kFm350VendorHashLenovo, 4024328548u}, {0x00000001, fcc::kFm350VendorHashLenovo, 3093654045u},
      {0x5754cabc, fcc::kFm350VendorHashLenovo, 3833547434u}, {0x12345678, fcc::kFm350VendorHashLenovo, 1787294009u},
      {0xdeadbeef, fcc::kFm350VendorHashLenovo, 4242922276u}, {0xffffffff, fcc::kFm350VendorHashLenovo, 2515725042u},
      {0x00000000, fcc::kFm350VendorHashDell, 2065811812u},   {0x5754cabc, fcc::kFm350VendorHashDell, 1143433072u},
  };
  for (const Row& r : rows) EXPECT_EQ(fcc::fm350_unlock_response(r.challenge, r.vendor), r.response) << r.challenge;
  // Unsigned decimal: 4024328548 >= 2^31 must not print negative.
  EXPECT_EQ(fcc::gtfcclockver_command(0, fcc::kFm350VendorHashLenovo), "AT+GTFCCLOCKVER=4024328548");
  // The full SHA-256 of the vector's first row, through its first 4 bytes.
  EXPECT_EQ(fcc::sha256_prefix32(std::string_view("\x00\x00\x00\x00\x3d\xf8\xc7\x19", 8)), 0xefde6164u);
}

TEST(FccUnlock, ChallengeForms) {
  EXPECT_EQ(fcc::parse_gtfcclockgen("\r\n+GTFCCLOCKGEN: 0x5754cabc\r\n\r\nOK\r\n"), 0x5754cabcu);
  EXPECT_EQ(fcc::parse_gtfcclockgen("0x5754CABC"), 0x5754cabcu);
  EXPECT_EQ(fcc::parse_gtfcclockgen("+GTFCCLOCKGEN: 0x1"), 1u);  // zero-padded to 8 digits when hashed
  EXPECT_FALSE(fcc::parse_gtfcclockgen("+GTFCCLOCKGEN: 0x123456789"));
  EXPECT_FALSE(fcc::parse_gtfcclockgen("+GTFCCLOCKGEN: 12345"));
  EXPECT_FALSE(fcc::parse_gtfcclockgen("0x"));
  EXPECT_TRUE(fcc::gtfcclockver_accepted("\r\n+GTFCCLOCKVER: 1\r\n\r\nOK\r\n"));
  EXPECT_FALSE(fcc::gtfcclockver_accepted("\r\n+GTFCCLOCKVER: 0\r\n\r\nOK\r\n"));
  EXPECT_FALSE(fcc::gtfcclockver_accepted("\r\nERROR\r\n"));
  EXPECT_FALSE(fcc::gtfcclockver_accepted("x+GTFCCLOCKVER: 1"));
}

}  // namespace
}  // namespace wwan::control::huawei

