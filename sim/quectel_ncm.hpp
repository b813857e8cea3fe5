// The quectel-ncm profile: a Quectel RM500Q-class module with AT+QCFG="usbnet",5, i.e. a plain CDC
// NCM function next to Quectel's serial ports, dialled over the AT port with AT+QNETDEVCTL, the
// host's address from a DHCP server on the link (control/quectel_session.hpp drives it).
//
// The composition is usb_descriptors.md D7 (RM500Q 2c7c:0800, the kernel patch's lsusb -v) with
// the QMI/RMNET interface 4 replaced by an NCM function on interfaces 4+5: no dump of a Quectel
// in NCM mode is in reference/ (D7: "MBIM mode ... descriptors: not found", and none for NCM), so
// the NCM function's own values are ASSUMED — f_ncm-like (Header, Union 4->5, Ethernet with
// iMACAddress, NCM 1.00 caps 0x11; data 0a/00/01 alt 0 empty, alt 1 bulk pair; NTB16+NTB32, 16 KiB).
// Interfaces 0..3 keep D7's classes, functional descriptors and order (DIAG ff/ff/30, NMEA, AT,
// modem, all but DIAG ff/00/00 with an interrupt endpoint), so usb/descriptors.cpp's D7 rules find
// the AT port at interface 2 as on the real module. Served at high speed (bcdUSB 2.00), not D7's
// SuperSpeed. The ADB interface of D7 is left out (ADB off, the default on shipped modules).
//
// The model is NcmModem (sim/ncm_modem.hpp) for the NCM function plus a QuectelAt engine
// (sim/quectel_at.hpp) behind a SerialAtPort on interface 2's bulk pair (0x84 IN / 0x03 OUT).
// The data call gates the function: while no QNETDEVCTL call is up, the NCM bulk IN endpoint
// NAKs and bulk OUT frames are dropped (counted), so DHCP and pings work only after the dial, as
// on the module. A network-initiated drop (control-port drop-session, Faults::drop_session) takes
// the NCM link down (NETWORK_CONNECTION(0), back by itself 1 s later, as generic-ncm) and ends the
// call: "+QNETDEVSTATUS: 0" on the AT port; the host redials.
//
// +unisoc (ModemOptions::quectel_unisoc): an RM500U-CN instead, 2c7c:0900 with the NCM-mode
// composition of the kernel's option.c patch for it (usb-devices dump: IAD 02/0d, NCM control if0
// with interrupt 0x82 16 bytes, data if1 0a/00/01 alt 0 empty / alt 1 bulk 0x81 / 0x01, then five
// ff/00/00 serial interfaces 2..6 with only a bulk pair each, 0x83/0x02 .. 0x87/0x06; bcdUSB 2.10,
// bcdDevice 4.04, "Quectel" / "RM500U-CN", bmAttributes 0xc0, 500 mA). The AT engine sits on
// interface 4 (0x85 / 0x04: quectel-CM's atIntf for 0x0900) and takes AT+QNETDEVCTL with the cid
// first. The NCM function's class-specific values are the RM500Q profile's (ASSUMED, none dumped).
#pragma once

#include <memory>

#include "sim/ncm_modem.hpp"
#include "sim/quectel_at.hpp"
#include "sim/serial_at_port.hpp"

namespace wwan::sim {

struct QuectelNcmCounters {
  std::uint64_t frames_before_dial = 0;  // NCM OUT transfers dropped because no call was up
  std::uint64_t calls_dropped = 0;       // data calls the network ended
};

class QuectelNcmModem final : public Modem {
 public:
  static constexpr std::uint8_t kAtBulkIn = 0x84, kAtBulkOut = 0x03;
  static constexpr std::uint8_t kUnisocAtBulkIn = 0x85, kUnisocAtBulkOut = 0x04;  // RM500U-CN if4

  explicit QuectelNcmModem(const ModemOptions& options);

  // DeviceModel
  const DeviceIdentity& identity() const override { return ncm_.identity(); }
  bool set_configuration(std::uint8_t configuration_value) override;
  bool set_interface(std::uint8_t interface_number, std::uint8_t alternate_setting) override;
  bool clear_halt(std::uint8_t endpoint_address) override;
  std::optional<std::size_t> control(const SetupPacket& setup, std::span<std::uint8_t> data) override;
  EndpointResult out(std::uint8_t endpoint_address, std::span<const std::uint8_t> data) override;
  InResult in(std::uint8_t endpoint_address, std::span<std::uint8_t> buffer) override;
  std::optional<Clock::time_point> next_deadline() const override;
  bool connected() const override { return ncm_.connected(); }

  // Modem
  std::string_view profile() const override { return unisoc_ ? "quectel-ncm+unisoc" : "quectel-ncm"; }
  Network& network() override { return ncm_.network(); }
  Faults& faults() override { return ncm_.faults(); }
  const ModemCounters& counters() const override { return ncm_.counters(); }
  bool session_active() const override { return at_.connected() && ncm_.session_active(); }

  QuectelAt& at() { return at_; }
  const SerialAtPort& serial_at() const { return port_; }
  NcmModem& function() { return ncm_; }
  const QuectelNcmCounters& quectel_counters() const { return counters_; }
  std::uint8_t at_bulk_in() const { return unisoc_ ? kUnisocAtBulkIn : kAtBulkIn; }
  std::uint8_t at_bulk_out() const { return unisoc_ ? kUnisocAtBulkOut : kAtBulkOut; }

 private:
  void sync();  // URCs to the AT port; a call whose NCM link went away ends
  void service_function();

  bool unisoc_;
  NcmModem ncm_;
  QuectelAt at_;
  SerialAtPort port_;
  bool link_was_up_ = false;
  QuectelNcmCounters counters_;
};

// The NCM function's row (descriptors of the whole composition; the RM500U-CN's with +unisoc).
NcmProfile quectel_ncm_profile(const ModemOptions& options);

}  // namespace wwan::sim
