#include "control/quirks.hpp"

#include <array>

namespace wwan::control {

const char* to_string(FccUnlock f) {
  switch (f) {
    case FccUnlock::none: return "none";
    case FccUnlock::sierra_qmi: return "sierra-qmi";
    case FccUnlock::fibocom_at: return "fibocom-at";
  }
  return "?";
}

const char* to_string(DialMethod d) {
  switch (d) {
    case DialMethod::by_class: return "by-class";
    case DialMethod::quectel_at: return "quectel-at";
  }
  return "?";
}

const char* to_string(QnetdevctlOrder o) {
  switch (o) {
    case QnetdevctlOrder::op_cid_urc: return "op,cid,urc";
    case QnetdevctlOrder::cid_op_urc: return "cid,op,urc";
  }
  return "?";
}

namespace {

constexpr std::uint8_t kClassComm = 0x02, kClassVendor = 0xff;
constexpr std::uint8_t kSubclassMbim = 0x0e, kSubclassNcm = 0x0d;

Quirks huawei_ncm() {
  Quirks q;
  q.ndp_at_end = true;
  q.prefer_ntb32 = true;
  return q;
}
Quirks huawei_mbim() {
  Quirks q;
  q.ndp_at_end = true;
  return q;  // no ZLP (cdc_mbim's Huawei entry)
}
Quirks telit_mbim() {
  Quirks q;
  q.avoid_alt_toggle = true;
  q.out_termination = OutTermination::zero_length_packet;
  return q;
}
Quirks no_arp() {
  Quirks q;
  q.no_arp = true;
  return q;
}
Quirks sierra_mbim_fcc() {
  Quirks q;
  q.out_termination = OutTermination::zero_length_packet;
  q.fcc_unlock = FccUnlock::sierra_qmi;
  return q;
}
Quirks fibocom_fcc() {
  Quirks q;
  q.fcc_unlock = FccUnlock::fibocom_at;
  q.at_over_serial = true;
  return q;
}
// Quectel in usbnet NCM (or ECM) mode: a plain CDC function with no AT channel of its own; AT on
// the vendor serial interface, dialled with AT+QNETDEVCTL (control/quectel_at.hpp).
Quirks quectel_usbnet() {
  Quirks q;
  q.at_over_serial = true;
  q.dial = DialMethod::quectel_at;
  return q;
}
// The Unisoc-platform firmware: the same, with the cid first in AT+QNETDEVCTL.
Quirks quectel_usbnet_unisoc() {
  Quirks q = quectel_usbnet();
  q.qnetdevctl_order = QnetdevctlOrder::cid_op_urc;
  return q;
}
Quirks zlp() {
  Quirks q;
  q.out_termination = OutTermination::zero_length_packet;
  return q;
}
Quirks hp_lt4132() {
  Quirks q = huawei_mbim();
  q.out_termination = OutTermination::zero_length_packet;  // the HP entry keeps cdc_mbim's ZLP default
  return q;
}

const std::array<QuirkRow, 18> kRows = {{
    {0x1bc7, 0x1041, kClassComm, kSubclassMbim, "Telit LE922A6 MBIM", "kernel 7b8076ce8a00 (avoid altsetting toggle)",
     telit_mbim()},
    {0x1bc7, 0x1061, kClassComm, kSubclassMbim, "Telit LN920 MBIM", "cdc_mbim.c mbim_devs", telit_mbim()},
    {0x1bc7, 0x1071, kClassComm, kSubclassMbim, "Telit FN990A MBIM", "cdc_mbim.c mbim_devs", telit_mbim()},
    {0x1bc7, 0x1081, kClassComm, kSubclassMbim, "Telit FE990A MBIM", "cdc_mbim.c mbim_devs", telit_mbim()},
    {0x1bc7, 0x0036, std::nullopt, std::nullopt, "Telit LE910 V2 NCM", "cdc_ncm.c wwan_noarp_info", no_arp()},
    {0x413c, 0x81bb, std::nullopt, std::nullopt, "Dell DW5812", "cdc_ncm.c: \"Unlike DW5550 this device requires FLAG_NOARP\"",
     no_arp()},
    {0x413c, 0x81bc, std::nullopt, std::nullopt, "Dell DW5813", "cdc_ncm.c wwan_noarp_info", no_arp()},
    {0x1519, 0x0443, std::nullopt, std::nullopt, "Infineon/Intel HSPA platform", "cdc_ncm.c wwan_noarp_info", no_arp()},
    {0x1199, 0x9079, kClassComm, kSubclassMbim, "Sierra EM7455 MBIM", "anchors.md §4.5 (FCC lock, QMI DMS 0x555F); ModemManager fcc-unlock.d 1199",
     sierra_mbim_fcc()},
    {0x1199, 0x9071, kClassComm, kSubclassMbim, "Sierra EM7355 MBIM", "ModemManager fcc-unlock.d 1199", sierra_mbim_fcc()},
    {0x03f0, 0xa31d, kClassComm, kSubclassMbim, "HP lt4132 (Huawei ME906s)", "cdc_mbim.c cdc_mbim_info_ndp_to_end",
     hp_lt4132()},
    // The FM350-GL in USB mode 40 / 41 (usb_descriptors.md D1): FCC-locked until the AT unlock
    // (ModemManager dispatcher-fcc-unlock 14c3), and AT only on its serial port (interface 6).
    {0x0e8d, 0x7126, std::nullopt, std::nullopt, "Fibocom FM350-GL (USB mode 40)",
     "vectors/fm350_fcc_unlock.md (AT+GTFCCLOCKGEN/VER); usb_descriptors.md D1 (RNDIS + serial, AT on if6)",
     fibocom_fcc()},
    {0x0e8d, 0x7127, std::nullopt, std::nullopt, "Fibocom FM350-GL (USB mode 41)",
     "vectors/fm350_fcc_unlock.md (AT+GTFCCLOCKGEN/VER); usb_descriptors.md D1 (RNDIS + serial, AT on if6)",
     fibocom_fcc()},
    // Quectel RM500Q / RM520N with AT+QCFG="usbnet",5 (NCM): the NCM function (02/0d) next to
    // the serial ports; MBIM mode (usbnet 2, 02/0e) keeps the MBIM session, QMI mode has no NCM.
    // The AT port is interface 2 (usb_descriptors.md D7: option's "diag, nmea, at_port, modem").
    {0x2c7c, 0x0800, kClassComm, kSubclassNcm, "Quectel RM500Q (usbnet NCM)",
     "ModemManager mm-broadband-bearer-quectel-ecm.c (AT+QNETDEVCTL=1,<cid>,1); quectel-CM atc.c + NCM log (anchors §3.5)",
     quectel_usbnet()},
    {0x2c7c, 0x0801, kClassComm, kSubclassNcm, "Quectel RM520N (usbnet NCM)",
     "as RM500Q; AT on if2 by the kernel patch \"USB: serial: option: add Quectel RM520N\" (2022-09-05: DIAG + NMEA + "
     "AT + MODEM + RMNET)",
     quectel_usbnet()},
    // Quectel RM500U-CN (Unisoc): one id in every usbnet mode; NCM on 0+1, five ff/00/00 serial
    // ports, AT on if4 (Linux option.c 0x0900 patch; quectel-CM device.c atIntf 4 for 0x0900).
    // AT+QNETDEVCTL takes the cid first (quectel-CM atc.c, its RM500U NCM logs).
    {0x2c7c, 0x0900, kClassComm, kSubclassNcm, "Quectel RM500U (Unisoc, usbnet NCM)",
     "quectel-CM atc.c (AT+QNETDEVCTL=<pdp>,1,1 / <pdp>,0,0) and RM500U logs (+QNETDEVCTL: (1-8),(0-3),(0,1)); "
     "option.c RM500U-CN patch (NCM-mode dump)",
     quectel_usbnet_unisoc()},
    // Every Huawei vendor-class NCM function (huawei_cdc_ncm_bind: NDP_TO_END | PREFER_NTB32).
    {0x12d1, std::nullopt, kClassVendor, std::nullopt, "Huawei vendor NCM",
     "kernel 4a0e3e989d66 (NDP to end), 0fa81b304a79 (prefer NTB32), 2b02c20ce0c2 (E3372h fw 21.318)", huawei_ncm()},
    // Every Huawei MBIM function (cdc_mbim_info_ndp_to_end, no ZLP).
    {0x12d1, std::nullopt, kClassComm, kSubclassMbim, "Huawei MBIM", "cdc_mbim.c mbim_devs (E3372 12d1:157d, ME906s 12d1:15c1)",
     huawei_mbim()},
}};

}  // namespace

std::span<const QuirkRow> quirk_table() { return kRows; }

QuirkMatch find_quirks(std::uint16_t vendor_id, std::uint16_t product_id, std::uint8_t interface_class,
                       std::uint8_t interface_subclass) {
  for (const QuirkRow& r : kRows) {
    if (r.vendor_id != 0 && r.vendor_id != vendor_id) continue;
    if (r.product_id && *r.product_id != product_id) continue;
    if (r.interface_class && *r.interface_class != interface_class) continue;
    if (r.interface_subclass && *r.interface_subclass != interface_subclass) continue;
    return {r.quirks, &r};
  }
  // Defaults: cdc_mbim sends ZLPs for unknown MBIM devices except Ericsson (0bdb: known
  // conformant, padding kept); cdc_ncm's generic entry is "CDC NCM (NO ZLP)".
  const bool mbim = interface_class == kClassComm && interface_subclass == kSubclassMbim;
  return {mbim && vendor_id != 0x0bdb ? zlp() : Quirks{}, nullptr};
}

QuirkMatch find_quirks(std::uint16_t vendor_id, std::uint16_t product_id, const usb::NetworkFunction& function) {
  return find_quirks(vendor_id, product_id, function.interface_class, function.interface_subclass);
}

}  // namespace wwan::control
