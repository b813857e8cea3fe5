// Quectel usbnet AT commands: the command builders and the +QNETDEVSTATUS / +QNETDEVCTL parsers of
// the Quectel NCM/ECM data session (control/quectel_session.hpp). Pure: text in, plain structs
// out; every field is untrusted modem output, checked, and a malformed line is nullopt.
//
// Sources (no capture of these strings is in reference/vectors; anchors.md §3.5 names the commands):
//   AT+QNETDEVCTL=<op>,<cid>,<urc_en>   ModemManager plugins/quectel/mm-broadband-bearer-quectel-ecm.c
//                 ("AT+QNETDEVCTL=<start/stop>,<cid>,<urc enable>", dial "+QNETDEVCTL=1,%u,1");
//                 Quectel EC200A/EC801E AT manuals as summarised in public notes: <op> 0 disconnect,
//                 1 connect once, 3 connect automatically; <urc_en> 1 = report +QNETDEVSTATUS.
//                 Unisoc-platform firmware (RM500U, RG500U) takes <cid> first (quectel-CM atc.c:
//                 "AT+QNETDEVCTL=%d,1,%d" with the pdp first; =? answers "(1-8),(0-3),(0,1)"): with
//                 cid 1 the dial is the same "1,1,1", the hang-up differs. Not handled here.
//   AT+QNETDEVCTL?                     "+QNETDEVCTL: <op>,<cid>,<urc_en>,<state>" (ModemManager's
//                 test vectors "+QNETDEVCTL: 0,0,0,0" and "+QNETDEVCTL: 3,1,0,1"; state 1 = up).
//   AT+QNETDEVSTATUS=<cid>             the addressing form, one line of up to twelve fields:
//                 <v4 addr>,<v4 mask>,<v4 gw>,<v4 dhcp>,<v4 pDNS>,<v4 sDNS>,<v6 addr>,<v6 mask>,
//                 <v6 gw>,<v6 dhcp>,<v6 pDNS>,<v6 sDNS>. The real line (quectel-CM log, RM500U in NCM
//                 mode): "+QNETDEVSTATUS: 10.109.166.163,255.255.255.0,10.109.166.1,,111.11.1.3,
//                 111.11.11.3,2409:8d05:0004:3b5e:1872:a064:1de5:923a,,,,2409:8008:2000:0010:0000:
//                 0000:0000:0001,2409:8008:2000:0110:0000:0000:0000:0001". IPv4 fields are dotted,
//                 or 8 hex digits least significant byte first as Huawei's ^DHCP (quectel-CM parses
//                 both). ERROR while no data call is up (quectel-CM polls through ERRORs after
//                 the dial for up to 15 s).
//   +QNETDEVSTATUS: <status>           the URC QNETDEVCTL's <urc_en> turns on: 1 connected,
//                 0 disconnected (EC200A manual summary). ASSUMED to be the same on RM5xx.
// Not parsed: the "+QNETDEVSTATUS: <cid>,<state>,<iptype>,<x>" lines some LTE modules (EG9x, EC2x)
// answer instead (ModemManager parses those and says the addressing form "is not yet handled").
//
// NCM mode itself is AT+QCFG="usbnet",5 (anchors §3.5: "+QCFG: \"usbnet\",5" in quectel-CM's
// NCM log; 0 = QMI/RMNET, 1 = ECM, 2 = MBIM, 3 = RNDIS). wwan-dp does not switch it: the change
// needs a module reset and persists, so it is the user's decision.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "control/session.hpp"

namespace wwan::control::quectel {

// <op> of AT+QNETDEVCTL.
inline constexpr int kQnetdevctlDisconnect = 0, kQnetdevctlConnectOnce = 1, kQnetdevctlConnectAuto = 3;

std::string qnetdevctl_connect(int cid);     // AT+QNETDEVCTL=1,<cid>,1 (connect once, URC on)
std::string qnetdevctl_disconnect(int cid);  // AT+QNETDEVCTL=0,<cid>,0
std::string qnetdevstatus_query(int cid);    // AT+QNETDEVSTATUS=<cid>
// AT+QICSGP=<cid>,<type>,"<apn>","<user>","<password>",<auth>: the credentials of a context
// (quectel-CM requestSetProfile; type 1 IPv4, 2 IPv6, 3 IPv4v6; auth 0 none, 1 PAP, 2 CHAP,
// 3 PAP or CHAP, CHAP when credentials are given without a protocol).
std::string qicsgp(const SessionSettings& settings, int cid);

// One +QNETDEVSTATUS: line.
struct NetdevStatus {
  enum class Form : std::uint8_t {
    addressing,  // the answer to AT+QNETDEVSTATUS=<cid>: addresses, maybe all empty
    urc,         // "+QNETDEVSTATUS: <0|1>": connected or not, no addresses
  };
  Form form = Form::addressing;
  bool connected = false;         // urc: the status; addressing: an IPv4 or IPv6 address is set
  std::optional<Ipv4Config> ipv4; // address, prefix from the mask (/32 when none), gateway, DNS
  std::optional<Ipv6Config> ipv6; // address (prefix 64 unless the mask field says otherwise), gateway, DNS
};
// `line` is one line ("+QNETDEVSTATUS: ..."; the prefix is matched without case, the space after
// the colon optional). nullopt: not such a line, or a field that is neither empty nor an address
// of its family, or more than twelve fields.
std::optional<NetdevStatus> parse_qnetdevstatus(std::string_view line);

// "+QNETDEVCTL: <op>,<cid>,<urc_en>,<state>".
struct NetdevCtl {
  int op = 0, cid = 0;
  bool urc = false, connected = false;
};
std::optional<NetdevCtl> parse_qnetdevctl(std::string_view line);

}  // namespace wwan::control::quectel
