// The AT side of a Quectel module in usbnet NCM mode (RM500Q-class), as its AT serial port
// (interface 2, usb_descriptors.md D7) answers it. Pure: one command line in, the answer text
// out, plus the +QNETDEVSTATUS URCs; no USB, no clock. sim/quectel_ncm.hpp puts it behind a
// sim::SerialAtPort next to the NCM function.
//
// What it answers, and where the forms come from (control/quectel_at.hpp cites the sources):
//   ATE0 / ATE1, AT, ATZ, ATI, AT+CGMI/+CGMM/+CGMR/+CGSN   the usual
//   AT+CPIN?                       +CPIN: READY (no PIN modelled)
//   AT+CFUN? / AT+CFUN=<0|1|4>     +CFUN: 1; leaving 1 ends the data call
//   AT+CGDCONT=<cid>,"<type>"[,"<apn>"] / AT+CGDCONT?    contexts 1..15
//   AT+QICSGP=<cid>,<type>,"apn","user","pass",<auth>    accepted (quectel-CM's credentials)
//   AT+QCFG="usbnet"               +QCFG: "usbnet",5 (the NCM mode, quectel-CM's log); setting it
//                                  is accepted and changes nothing until a reset (not modelled)
//   AT+QNETDEVCTL=?                +QNETDEVCTL: (0,1,3),(1-15),(0,1) — ASSUMED from the <op>,
//                                  <cid>,<urc_en> ranges of the EC200A manual; the RM500U (cid
//                                  first) answers "(1-8),(0-3),(0,1)"
//   AT+QNETDEVCTL=<op>,<cid>[,<urc_en>]   op 1/3: the call comes up at once, OK then (urc_en 1)
//                                  "+QNETDEVSTATUS: 1"; op 0: OK then "+QNETDEVSTATUS: 0", ERROR
//                                  when no call is up (a forum report the notes summarise)
//   unisoc identity (RM500U-CN): AT+QNETDEVCTL=<cid>,<op>[,<urc_en>] instead, cid 1..8, and =?
//                                  answers "(1-8),(0-3),(0,1)" (quectel-CM atc.c and its RM500U
//                                  logs); the other order is refused: "1,2,1" is op 2 (+CME ERROR:
//                                  50), the hang-up "0,1,0" is cid 0 (+CME ERROR: 50)
//   AT+QNETDEVCTL?                 +QNETDEVCTL: <op>,<cid>,<urc_en>,<state> (ModemManager's form)
//   AT+QNETDEVSTATUS=<cid> / ?     connected: the twelve-field addressing line of the RM500U log,
//                                  with this network's values: the WAN side a NAT-mode module
//                                  reports (wan_ipv4, not the host's DHCP address — in quectel-CM's
//                                  log they differ too), the network's DNS, host_ipv6; ERROR while
//                                  no call is up (quectel-CM polls through ERRORs) — ASSUMED
//   AT+QNETDEVSTATUS=?             +QNETDEVSTATUS: (1-8) (quectel-CM's log)
//   anything else                  ERROR
// Responses "\r\n<line>\r\n" per line, final result last; echo on (E1) until ATE0.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "sim/at_responder.hpp"
#include "sim/network.hpp"

namespace wwan::sim {

struct QuectelAtIdentity {
  std::string manufacturer = "Quectel";
  std::string model = "RM500Q-GL";
  std::string revision = "RM500QGLABR11A06M4G";  // plausible, not captured
  std::string imei = "869710030000500";
  // The module's own (WAN) address in NAT mode: what QNETDEVSTATUS shows; the host gets
  // NetworkConfig::host_ipv4 from the DHCP server on the link.
  eth::Ipv4Address wan_ipv4{{100, 72, 3, 4}};
  eth::Ipv4Address wan_gateway_ipv4{{100, 72, 3, 1}};
  // Unisoc-platform firmware: AT+QNETDEVCTL=<cid>,<op>,<urc_en> (see the top of this file).
  bool unisoc = false;
};
// The RM500U-CN's: the revision string of quectel-CM's RM500U NCM log.
QuectelAtIdentity rm500u_identity();

// execute(), the unsolicited queue and echo() are sim::AtResponder's.
class QuectelAt final : public AtResponder {
 public:
  static constexpr int kMaxCid = 15;
  static constexpr int kMaxUnisocCid = 8;  // "+QNETDEVCTL: (1-8),..." (RM500U)

  explicit QuectelAt(const NetworkConfig& network, QuectelAtIdentity identity = {});

  // The network ended the data call: "+QNETDEVSTATUS: 0" when URCs are on. false when none was up.
  bool network_disconnect();

  bool connected() const { return connected_; }
  int connected_cid() const { return cid_; }
  const std::string& apn(int cid) const;
  int cfun() const { return cfun_; }
  std::uint64_t dials() const { return dials_; }
  std::uint64_t hangups() const { return hangups_; }

 private:
  std::string run(std::string_view command) override;
  std::string qnetdevctl(std::string_view args);
  std::string qnetdevstatus() const;
  void disconnect(bool urc);

  NetworkConfig network_;
  QuectelAtIdentity identity_;
  int cfun_ = 1;
  PdpContexts contexts_{kMaxCid};
  bool connected_ = false;
  int op_ = 0, cid_ = 0;
  bool urc_ = false;
  std::uint64_t dials_ = 0, hangups_ = 0;
};

}  // namespace wwan::sim
