// The modem side of Huawei's AT command set, as the E3372 answers it over the CDC encapsulated
// channel (huawei_cdc_ncm registers that channel as a cdc-wdm AT port; anchors.md §1.4, §2.1).
// Pure: one command line in, the response text out, plus a queue of unsolicited result codes;
// no USB, no clock. sim/ncm_modem wraps it in SEND_ENCAPSULATED_COMMAND / RESPONSE_AVAILABLE /
// GET_ENCAPSULATED_RESPONSE.
//
// What it answers and where the forms come from (vectors/modemmanager_huawei_at.md, anchors §3.2):
//   ATE0 / ATE1 / ATE, ATZ, ATQ0, ATV1, AT, ATI, AT+CGMI/+CGMM/+CGMR/+CGSN (+GMI/+GMM/+GMR/+GSN)
//   AT+CPIN? / AT+CPIN="xxxx"      +CPIN: READY | +CPIN: SIM PIN; wrong PIN +CME ERROR: 16
//   AT+CFUN? / AT+CFUN=<0|1|4>     +CFUN: 1; leaving 1 ends the data session (radio off)
//   AT+CGDCONT=<cid>,"<type>"[,"<apn>"] / AT+CGDCONT? / AT+CGDCONT=?
//   AT+COPS?, AT^SYSINFOEX          registered on LTE (^SYSINFOEX vector E's field order)
//   AT^CURC=<0|1>                   accepted (init scripts send it to quieten periodic reports)
//   AT^NDISDUP=<cid>,1[,"apn"[,"user","pass",auth]]  OK, then the URC ^NDISSTAT:1,,,"IPV4"
//                                   (the form modemmanager-devel 2014-October/001576 quotes)
//   AT^NDISDUP=<cid>,0              OK + ^NDISSTAT:0,,,"IPV4"; ERROR when already disconnected
//                                   (ModemManager's comment on NDISDUP=1,0, §A of the vectors)
//   AT^NDISSTATQRY?                 ^NDISSTATQRY: 1,,,"IPV4",0,33,,"IPV6" (the newer one-line form
//                                   of vector B / commit 663d4969; 33 = "not subscribed")
//   AT^DHCP?                        ^DHCP: LSB-first hex addr,mask,gw,dhcp,dns1,dns2,rx,tx
//                                   (Balong format and example, anchors §3.2); ERROR when not dialed
//   AT^DHCPV6?                      textual v6 addresses in the same field order. The anchors name
//                                   the command but quote no answer: this form is an assumption.
//   anything else                   ERROR (COMMAND NOT SUPPORT is what some Huawei firmware says
//                                   for unknown ^ commands; plain ERROR is the common case)
// Responses are framed "\r\n<line>\r\n" per line, final result last, as V.250 §5.7.1 (ATV1)
// and every vector shows; with echo on the command and its "\r" come first.
// Not modelled: several commands on one line separated by ';', S-registers, ATV0 numeric codes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "sim/at_responder.hpp"
#include "sim/network.hpp"

namespace wwan::sim {

struct HuaweiAtIdentity {
  std::string manufacturer = "huawei";
  std::string model = "E3372";
  // The firmware of linux-usb msg92633 that reverts to NTB32 after the alt switch (anchors §1.3).
  std::string revision = "21.318.01.00.541";
  std::string imei = "866000000000001";
  // false: AT^DHCP? answers ERROR, as on firmware that lacks it (ModemOptions::no_dhcp_at).
  bool answers_dhcp = true;
};

// execute(), the unsolicited queue (at most kMaxUnsolicited, the oldest dropped first) and echo()
// are sim::AtResponder's.
class HuaweiAt final : public AtResponder {
 public:
  static constexpr int kMaxCid = 16;  // "+CGDCONT: (1-16),..." (AT+CGDCONT=?)

  HuaweiAt(const NetworkConfig& network, std::string sim_pin, HuaweiAtIdentity identity = {});

  // Queues the power-on noise a Huawei stick prints before anyone asks (vectors §J names the
  // prefixes; the values here are plausible, not captured): ^BOOT, ^RSSI, ^MODE, ^SIMST, ^SRVST.
  void power_on();

  // The network ended the session (Faults::drop_session): the URC ^NDISSTAT:0,,,"IPV4" is queued.
  // Returns false when no session was up.
  bool network_disconnect();

  bool connected() const { return ipv4_connected_ || ipv6_connected_; }
  bool ipv4_connected() const { return ipv4_connected_; }
  bool ipv6_connected() const { return ipv6_connected_; }
  bool sim_locked() const { return sim_locked_; }
  int cfun() const { return cfun_; }
  const std::string& apn() const { return apn_; }

 private:
  std::string run(std::string_view command) override;  // without echo and framing; returns framed lines
  std::string ndisdup(std::string_view args);
  std::string dhcp() const;
  std::string dhcpv6() const;
  void disconnect_with_urc();

  NetworkConfig network_;
  std::string sim_pin_;
  HuaweiAtIdentity identity_;
  bool sim_locked_ = false;
  int cfun_ = 1;
  PdpContexts contexts_{kMaxCid};
  std::string apn_;
  bool ipv4_connected_ = false;
  bool ipv6_connected_ = false;
};

}  // namespace wwan::sim
