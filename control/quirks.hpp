// The quirk table: what a modem needs that the specs do not say. One row per device family,
// matched by VID:PID, by vendor, or by interface class; the first matching row wins and the
// defaults apply to everything else. Every row names its evidence (anchors.md §1.3/§1.4 and the
// threads behind them); docs/quirks.md lists them for people.
//
// Pure data and one lookup: no I/O. The negotiation (control/ncm_negotiation.hpp), the session
// runner and the data path read the switches; nothing else forks on a device.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "usb/network_function.hpp"

namespace wwan::control {

enum class FccUnlock : std::uint8_t {
  none,
  sierra_qmi,   // QMI DMS 0x555F over QMI-over-MBIM (anchors.md §4.5)
  fibocom_at,   // AT+GTFCCLOCKGEN / AT+GTFCCLOCKVER (vectors/fm350_fcc_unlock.md)
};
const char* to_string(FccUnlock f);

// How the data session is brought up on a function whose class says nothing about it.
enum class DialMethod : std::uint8_t {
  by_class,    // from the function: Huawei vendor NCM -> ^NDISDUP, MBIM -> CONNECT, plain NCM -> none (DHCP)
  quectel_at,  // AT+QNETDEVCTL on the serial AT port, then DHCP on the link (control/quectel_session.hpp)
};
const char* to_string(DialMethod d);

// The argument order of AT+QNETDEVCTL (DialMethod::quectel_at). Same command, two firmware
// families: Qualcomm/ASR-platform firmware and ModemManager take "<op>,<cid>,<urc_en>"
// (mm-broadband-bearer-quectel-ecm.c "+QNETDEVCTL=1,%u,1"); Unisoc-platform firmware (RM500U,
// RG500U, RG801H) takes "<cid>,<op>,<urc_en>" (quectel-CM atc.c "AT+QNETDEVCTL=%d,1,%d" with the
// pdp first, hang-up "%d,0,%d"; its RM500U logs answer AT+QNETDEVCTL=? with "(1-8),(0-3),(0,1)").
enum class QnetdevctlOrder : std::uint8_t {
  op_cid_urc,  // AT+QNETDEVCTL=1,<cid>,1 / =0,<cid>,0
  cid_op_urc,  // AT+QNETDEVCTL=<cid>,1,1 / =<cid>,0,0 (Unisoc)
};
const char* to_string(QnetdevctlOrder o);

// How the end of an OUT transfer is marked when its length is a multiple of wMaxPacketSize.
enum class OutTermination : std::uint8_t {
  // Add one byte instead (the kernel's tx_max + 1 rule): no ZLP ever needed (Huawei, Ericsson,
  // generic NCM: the "NO ZLP" entries of cdc_ncm / cdc_mbim).
  pad_one_byte,
  // Send a zero-length packet (cdc_mbim's default for unknown MBIM: "a number of devices from
  // different vendor IDs will fail unless we send ZLPs"; DisplayLink; Telit avoid-toggle rows).
  zero_length_packet,
};

struct Quirks {
  // OUT NTBs with the NDP after the datagrams (CDC_NCM_FLAG_NDP_TO_END).
  bool ndp_at_end = false;
  // Ask for NTB32 when the device supports it (CDC_NCM_FLAG_PREFER_NTB32); otherwise NTB16.
  bool prefer_ntb32 = false;
  // Skip the SET_INTERFACE(data, alt) → SET_INTERFACE(data, 0) reset toggle before negotiation
  // (CDC_MBIM_FLAG_AVOID_ALTSETTING_TOGGLE: the toggle leaves bulk URBs NAKed on these).
  bool avoid_alt_toggle = false;
  // Pause between the NTB requests (alt 0) and selecting the data alt setting (EM7455/MC7455
  // "silent data interface"; 1–2 ms were not enough, the kernel sleeps 10–20 ms for everyone).
  std::chrono::milliseconds settle_before_data_alt{20};
  // Send SET_NTB_INPUT_SIZE even when the value equals the device's default (Surface Go 3 LTE
  // 045e:09a5 needs it). wwan-dp always sends it; the row records the device that forced it.
  bool set_input_size_always = true;
  OutTermination out_termination = OutTermination::pad_one_byte;
  // The device neither answers nor needs ARP (FLAG_NOARP): build Ethernet headers from the
  // learned / descriptor MAC and never ARP (Telit LE910 V2, DW5812/DW5813, Infineon 1519:0443).
  bool no_arp = false;
  FccUnlock fcc_unlock = FccUnlock::none;
  // AT goes over the serial AT interface (usb/serial_port.hpp) from the start: the modem has no
  // CDC encapsulated AT channel (FM350-GL in USB mode: RNDIS + vendor serial ports, D1). Other AT
  // modems use the encapsulated channel and fall back to the serial port when it is dead
  // (control/at_transport.hpp).
  bool at_over_serial = false;
  DialMethod dial = DialMethod::by_class;
  QnetdevctlOrder qnetdevctl_order = QnetdevctlOrder::op_cid_urc;  // with dial = quectel_at
  // Use this bConfigurationValue (Huawei ME906s: MBIM in configuration 3).
  std::optional<std::uint8_t> configuration;
};

struct QuirkRow {
  std::uint16_t vendor_id = 0;                 // 0 = any vendor
  std::optional<std::uint16_t> product_id;     // nullopt = any product of the vendor
  // Interface class of the network function's control interface the row applies to: 0x02 with
  // subclass 0x0d (NCM) / 0x0e (MBIM), 0xff vendor; nullopt = any.
  std::optional<std::uint8_t> interface_class, interface_subclass;
  const char* name = "";      // "Huawei vendor NCM"
  const char* evidence = "";  // where the quirk comes from
  Quirks quirks;
};

// The rows in match order (most specific first). Exposed for `wwan-dp list --verbose`, docs and tests.
std::span<const QuirkRow> quirk_table();

struct QuirkMatch {
  Quirks quirks;
  const QuirkRow* row = nullptr;  // nullptr = the defaults for the class
};

// The quirks for a function: the first row matching VID:PID, vendor and the control interface's
// class/subclass; else the defaults (MBIM: ZLP, as cdc_mbim's default entry; NCM: pad byte).
QuirkMatch find_quirks(std::uint16_t vendor_id, std::uint16_t product_id, std::uint8_t interface_class,
                       std::uint8_t interface_subclass);
// The same for a network function found by usb::find_network_function (its control interface's class).
QuirkMatch find_quirks(std::uint16_t vendor_id, std::uint16_t product_id, const usb::NetworkFunction& function);

}  // namespace wwan::control
