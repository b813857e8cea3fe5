// Quectel usbnet AT commands: the command builders and the +QNETDEVSTATUS / +QNETDEVCTL parsers of
// the Quectel NCM/ECM data session (control/quectel_session.hpp). Pure: text in, plain structs
// out; every field is untrusted modem output, checked, and a malformed line is nullopt.
//
// Sources (no capture of these strings is in reference/vectors; anchors.md §3.5 names the commands):
//   AT+QNETDEVCTL=<op>,<cid>,<urc_en>   ModemManager plugins/quectel/mm-broadband-bearer-quectel-ecm.c
//                 ("AT+QNETDEVCTL=<start/stop>,<cid>,<urc enable>", dial "+QNETDEVCTL=1,%u,1");
//                 Quectel EC200A/EC801E AT manuals as summarised in public notes: <op> 0 disconnect,
//                 1 connect once, 3 connect automatically; <urc_en> 1 = report +QNETDEVSTATUS.
//                 Unisoc-platform firmware (RM500U, RG500U, RG801H) takes <cid> first: quectel-CM
//                 atc.c sends "AT+QNETDEVCTL=%d,1,%d" (pdp, 1) and hangs up with "%d,0,%d" (pdp, 0)
//                 on every module that answers AT+QNETDEVSTATUS=? ("RG801/RG500U support"), and
//                 "1,%d,%d" / "0,%d,%d" only on the ASR ones (EC200T/EC100Y) that do not; its
//                 RM500U NCM logs answer AT+QNETDEVCTL=? with "(1-8),(0-3),(0,1)" (cid range
//                 first). With cid 1 the dial reads the same both ways, the hang-up does not
//                 ("0,1,0" is cid 0 to Unisoc). The order is a quirk-table property
//                 (control::QnetdevctlOrder, row 2c7c:0900).
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
//   AT+QNETDEVSTATUS?                  the call-state form (Qualcomm-platform firmware): one line per
//                 IP type, "+QNETDEVSTATUS: <on_off>[,<state>,<IP_type>,<profile_num>]" — the
//                 RG520N&RG525F&RG5x0F&RM5x0N AT Commands Manual v1.1 §9.9 (RM520N's family):
//                 <on_off> URC reporting 0/1, <state> 0 disconnected / 1 connected, <IP_type> 4 or 6,
//                 <profile_num> 1..42; its examples "+QNETDEVSTATUS: 1,1,4,1", "1,1,6,1", the URC
//                 "+QNETDEVSTATUS: 1,0,4,1", and "+QNETDEVSTATUS: 1" (URCs on, no call). On that
//                 firmware the WRITE form AT+QNETDEVSTATUS=<on_off> only switches the URC and answers
//                 a bare OK. ModemManager (mm-modem-helpers-quectel.c, "many Quectel LTE modems (EG9x,
//                 EC2x, etc)") reads the same four numbers from AT+QNETDEVSTATUS?, with state 1 "ready"
//                 (waiting for the host's DHCP) and 2 "connected"; its test vectors "1,2,4,1",
//                 "1,2,6,1" parse, "1,7,4,1", "1,11,4,1", "1,2,8,1" do not.
//
// NCM mode itself is AT+QCFG="usbnet",5 (anchors §3.5: "+QCFG: \"usbnet\",5" in quectel-CM's
// NCM log; 0 = QMI/RMNET, 1 = ECM, 2 = MBIM, 3 = RNDIS). wwan-dp does not switch it: the change
// needs a module reset and persists, so it is the user's decision.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "control/quirks.hpp"
#include "control/session.hpp"

namespace wwan::control::quectel {

// <op> of AT+QNETDEVCTL.
inline constexpr int kQnetdevctlDisconnect = 0, kQnetdevctlConnectOnce = 1, kQnetdevctlConnectAuto = 3;

// AT+QNETDEVCTL=1,<cid>,1 (connect once, URC on); Unisoc: AT+QNETDEVCTL=<cid>,1,1.
std::string qnetdevctl_connect(int cid, QnetdevctlOrder order = QnetdevctlOrder::op_cid_urc);
// AT+QNETDEVCTL=0,<cid>,0; Unisoc: AT+QNETDEVCTL=<cid>,0,0.
std::string qnetdevctl_disconnect(int cid, QnetdevctlOrder order = QnetdevctlOrder::op_cid_urc);
std::string qnetdevstatus_query(int cid);    // AT+QNETDEVSTATUS=<cid> (the addressing form)
std::string qnetdevstatus_read();            // AT+QNETDEVSTATUS? (the call-state form)
// AT+QICSGP=<cid>,<type>,"<apn>","<user>","<password>",<auth>: the credentials of a context
// (quectel-CM requestSetProfile; type 1 IPv4, 2 IPv6, 3 IPv4v6; auth 0 none, 1 PAP, 2 CHAP,
// 3 PAP or CHAP, CHAP when credentials are given without a protocol).
std::string qicsgp(const SessionSettings& settings, int cid);

// One +QNETDEVSTATUS: line.
struct NetdevStatus {
  enum class Form : std::uint8_t {
    addressing,  // the answer to AT+QNETDEVSTATUS=<cid>: addresses, maybe all empty
    urc,         // "+QNETDEVSTATUS: <0|1>": connected or not, no addresses
    call_state,  // "+QNETDEVSTATUS: <on_off>,<state>,<IP_type>,<profile_num>": one IP type of one call
  };
  Form form = Form::addressing;
  bool connected = false;         // urc: the status; addressing: an address is set; call_state: state >= 1
  // call_state only.
  bool urc_enabled = false;       // <on_off>
  std::uint8_t call_state = 0;    // 0 disconnected, 1 connected (manual) / ready (ModemManager), 2 connected
  std::uint8_t ip_version = 0;    // <IP_type>: 4 or 6
  std::uint8_t profile = 0;       // <profile_num>: the PDP context, 1..42
  std::optional<Ipv4Config> ipv4; // address, prefix from the mask (/32 when none), gateway, DNS
  std::optional<Ipv6Config> ipv6; // address (prefix 64 unless the mask field says otherwise), gateway, DNS
};
// `line` is one line ("+QNETDEVSTATUS: ..."; the prefix is matched without case, the space after
// the colon optional). Four small numbers in the call-state ranges (on_off 0..1, state 0..2,
// IP_type 4|6, profile 1..42) are the call-state form; one 0|1 the URC; anything else is read as
// the addressing form. nullopt: not such a line, or a field that is neither empty nor an address
// of its family, or more than twelve fields.
std::optional<NetdevStatus> parse_qnetdevstatus(std::string_view line);

// "+QNETDEVCTL: <op>,<cid>,<urc_en>,<state>".
struct NetdevCtl {
  int op = 0, cid = 0;
  bool urc = false, connected = false;
};
std::optional<NetdevCtl> parse_qnetdevctl(std::string_view line);

}  // namespace wwan::control::quectel
