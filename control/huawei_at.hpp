// Huawei and 3GPP AT response parsers and command builders for the Huawei NDIS/NCM data session
// (control/huawei_session.hpp). Pure: text in, plain structs out; every input is untrusted modem
// output, so every field is length- and range-checked and a malformed line is nullopt, never a
// crash or a guess.
//
// Sources (reference/vectors/modemmanager_huawei_at.md, reference/anchors.md §3.2):
//   ^DHCP:        vectors §C and the Balong command table (anchors §3.2): eight fields, the first
//                 six IPv4 addresses as a 32-bit number in hex whose least significant byte is
//                 the first address byte ("2032A8C0" = 192.168.50.32), "0x"/"0X" optional, leading
//                 zeros may be dropped ("1010A0A" = 10.10.1.1, "0" = 0.0.0.0); the last two are the
//                 link rates in bit/s. The prefix length is the number of 1 bits of the netmask
//                 (ModemManager's rule), which also copes with the ME936 firmware that writes its
//                 mask most-significant byte first (vectors "Provenance": 0xff000000 -> /8).
//   ^DHCPV6:      the Balong table names it (anchors §3.2) but no capture or test gives an answer.
//                 Parsed in the form the emulated modem uses (sim/huawei_at.hpp): the same field
//                 order as ^DHCP with RFC 4291 text addresses. An assumption, marked as such.
//   ^NDISSTAT: / ^NDISSTATQRY:  vectors §B (52 forms, all accepted) and the Balong semantics
//                 (anchors §3.2): stat 0 disconnected, 1 connected, 2 connecting, 3 disconnecting.
//   +CPIN:        vectors §L3, 3GPP TS 27.007 §8.3.
//   +CFUN:        vectors §L2, 3GPP TS 27.007 §8.2.
//   +CME ERROR:   3GPP TS 27.007 §9.2.1 code names.
//   AT^NDISDUP    vectors §A (ModemManager's mm-broadband-bearer-huawei.c): the exact strings and
//                 the auth numbering 0 none, 1 PAP, 2 CHAP, 3 MSCHAPv2, CHAP when credentials are
//                 given with no protocol.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/at_channel.hpp"
#include "control/session.hpp"
#include "datapath/ethernet.hpp"

namespace wwan::control::huawei {

// ---- ^DHCP / ^DHCPV6 -------------------------------------------------------------------------------

// AT^DHCP? answer: "^DHCP: <clip>,<netmask>,<gate>,<dhcp>,<pDNS>,<sDNS>,<max_rx_data>,<max_tx_data>".
struct Dhcp {
  eth::Ipv4Address address;
  eth::Ipv4Address netmask;      // as the modem wrote it (see the ME936 note above)
  std::uint8_t prefix_length = 0;  // 1 bits of the netmask
  eth::Ipv4Address gateway;
  eth::Ipv4Address dhcp_server;
  eth::Ipv4Address dns1, dns2;   // 0.0.0.0 = none
  std::optional<std::uint64_t> max_rx_bits_per_s, max_tx_bits_per_s;  // absent or not a number: nullopt
};

// Finds the ^DHCP: line in `text` (one line, or a whole response with CR/LF) and parses it.
std::optional<Dhcp> parse_dhcp(std::string_view text);
// The session's view: zero DNS entries dropped (ModemManager does the same), gateway unset when 0.
Ipv4Config to_ipv4_config(const Dhcp& dhcp);

struct Dhcpv6 {
  eth::Ipv6Address address;
  std::uint8_t prefix_length = 0;
  eth::Ipv6Address gateway;
  eth::Ipv6Address dhcp_server;
  eth::Ipv6Address dns1, dns2;   // :: = none
};
std::optional<Dhcpv6> parse_dhcpv6(std::string_view text);
Ipv6Config to_ipv6_config(const Dhcpv6& dhcp);

// RFC 4291 §2.2 text form (all three forms; no zone index). nullopt on anything else.
std::optional<eth::Ipv6Address> parse_ipv6_text(std::string_view text);
std::string format_ipv4(const eth::Ipv4Address& a);

// ---- ^NDISSTAT / ^NDISSTATQRY ----------------------------------------------------------------------

enum class NdisState : std::uint8_t { disconnected = 0, connected = 1, connecting = 2, disconnecting = 3 };
const char* to_string(NdisState s);

// Per family: nullopt when the report does not mention the family ("available" in ModemManager's
// words). error_* is the 3GPP TS 24.008 SM cause the modem gave (the 33 of "0,33,,IPV6").
struct NdisStatus {
  std::optional<NdisState> ipv4, ipv6;
  std::optional<std::uint16_t> ipv4_error, ipv6_error;
  friend bool operator==(const NdisStatus&, const NdisStatus&) = default;
};

// Parses every ^NDISSTAT: / ^NDISSTATQRY: line of `text` (prefix case-insensitive, lines split at
// CR/LF, other lines such as "OK" ignored). Forms (vectors §B, anchors §3.2):
//   ^NDISSTAT: 1,,,IPV4                       one family per line (quoted or not, with or without
//   ^NDISSTATQRY: 0,33,,"IPV6"                the space after the colon)
//   ^NDISSTAT: 1,,,"IPV4",0,,,"IPV6"          both families on one line
//   ^NDISSTATQry:1                            the old form: one value, the IPv4 state
//   ^NDISSTATQRY: 1,1,,,"IPV4"                the Balong form with the cid first (5 fields a group)
// A group of type "IPV4V6" sets both families. nullopt when no line parses, or a line is malformed.
std::optional<NdisStatus> parse_ndisstat(std::string_view text);

// ---- +CPIN / +CFUN / +CME ERROR ------------------------------------------------------------------

// 3GPP TS 27.007 §8.3 <code>.
enum class SimLock : std::uint8_t {
  ready, sim_pin, sim_puk, sim_pin2, sim_puk2, ph_sim_pin, ph_fsim_pin, ph_fsim_puk, ph_net_pin,
  ph_net_puk, ph_netsub_pin, ph_netsub_puk, ph_sp_pin, ph_sp_puk, ph_corp_pin, ph_corp_puk,
  unknown,  // anything else, "+CME ERROR: ..." included (vectors §L3)
};
const char* to_string(SimLock s);
// `text`: a +CPIN: line (or a whole response), or with expect_prefix = false the bare value.
SimLock parse_cpin(std::string_view text, bool expect_prefix = true);

// +CFUN: <fun>[,<rst>] -> <fun> (vectors §L2). nullopt when there is no +CFUN: line.
std::optional<int> parse_cfun(std::string_view text);

// 3GPP TS 27.007 §9.2.1 names for the codes a data session meets ("SIM PIN required"); nullptr for
// codes without a name here.
const char* cme_error_name(std::uint16_t code);
// How a one-line error quotes a command's end: "+CME ERROR: 16 (incorrect password)", "ERROR",
// "no answer (timeout)", "cancelled".
std::string describe(const at::AtResponse& r);
// A response's information lines joined by single spaces, for the parsers above that read text.
std::string join_lines(const std::vector<std::string>& lines);
inline constexpr std::uint16_t kCmeSimNotInserted = 10;
inline constexpr std::uint16_t kCmeSimPinRequired = 11;
inline constexpr std::uint16_t kCmeSimPukRequired = 12;
inline constexpr std::uint16_t kCmeSimFailure = 13;
inline constexpr std::uint16_t kCmeSimBusy = 14;
inline constexpr std::uint16_t kCmeSimWrong = 15;
inline constexpr std::uint16_t kCmeIncorrectPassword = 16;

// ---- command builders ------------------------------------------------------------------------------

// A V.250 §5.4.2.2 string constant: in double quotes, with '"', '\' and control characters written
// as '\' + two hex digits (ModemManager's quoting writes '"' as \22 and '\' as \5C). No CR or LF can
// reach the command line through an APN, user name or PIN.
std::string quote(std::string_view s);

// The auth number of AT^NDISDUP: 0 none, 1 PAP, 2 CHAP, 3 MSCHAPv2; CHAP when user or password is
// set but no protocol was chosen (vectors §A).
int ndisdup_auth(const SessionSettings& settings);
// AT^NDISDUP=<cid>,1,"<apn>" without credentials, else AT^NDISDUP=<cid>,1,"<apn>","<user>","<pass>",<auth>.
std::string ndisdup_connect(const SessionSettings& settings, int cid = 1);
std::string ndisdup_disconnect(int cid = 1);  // AT^NDISDUP=<cid>,0
// AT+CGDCONT=<cid>,"IP"|"IPV6"|"IPV4V6","<apn>": the PDP type the following ^NDISDUP dials.
std::string cgdcont(const SessionSettings& settings, int cid = 1);
std::string cpin_enter(std::string_view pin);  // AT+CPIN="<pin>"

// ---- the `wwan-dp decode at` JSON (tools/decode_at.hpp prints it) ----------------------------------
//   ^DHCP:                     {"kind":"huawei-dhcp","address":"a.b.c.d","netmask":"...","gateway":"...","dns":[...]}
//   ^NDISSTAT: / ^NDISSTATQRY: {"kind":"huawei-ndisstat","ipv4":S,"ipv6":S}  (a family not mentioned is left out)
//   anything else              {"kind":"unknown"}
// The netmask printed is the one of the prefix length (the ME936's MSB-first mask prints as
// 255.0.0.0, not as the 0.0.0.255 an LSB-first read gives); dns lists non-zero servers only.
std::string decode_at_json(std::string_view line);

}  // namespace wwan::control::huawei
