// The emulated MBIM modem: a Sierra Wireless EM7455 (1199:9079) in its MBIM-only composition.
//
// What a host sees (../shared/reference/vectors/usb_descriptors.md D5/D6; the same bytes as
// tests/usbfs/profiles.cpp had, now taken from here):
//   interface 12  02/0e/00 MBIM control: CDC Header 1.10, MBIM FD (bcdMBIMVersion 1.00,
//                 wMaxControlMessage 4096, 32 filters of 128 bytes, wMaxSegmentSize 2048,
//                 bmNetworkCapabilities 0x20 = 8-byte NTB input size), MBIM Extended FD (wMTU 1500),
//                 Union 12 -> 13; endpoint 0x82 interrupt IN 64 bytes (RESPONSE_AVAILABLE)
//   interface 13  0a/00/02 MBIM data: alt 0 no endpoints, alt 1 bulk IN 0x81 + bulk OUT 0x01 (512)
//   IAD 12..13 (02/0e/00); Linux binds cdc_mbim to both interfaces.
// Sierra numbers the MBIM function 12/13 even when it is alone: a host must not assume 0.
//
// Control (MBIM 1.0 §9, anchors.md §4): SEND_ENCAPSULATED_COMMAND / GET_ENCAPSULATED_RESPONSE on
// interface 12, one RESPONSE_AVAILABLE per queued answer on 0x82, answers and indications split
// into fragments of the host's OPEN MaxControlTransfer (capped by wMaxControlMessage), commands
// from the host reassembled. RESET_FUNCTION and the NCM NTB parameter requests that MBIM reuses
// (GET_NTB_PARAMETERS, GET/SET_NTB_FORMAT, GET/SET_NTB_INPUT_SIZE).
//
// The session model (the order umb(4) and ModemManager drive, anchors §3.6, §4.4, §4.5):
//   OPEN -> DEVICE_CAPS / SUBSCRIBER_READY_STATUS / PIN -> RADIO_STATE set ON, which fails with
//   MBIM_STATUS_FAILURE and HwRadioState off while the radio is FCC-locked -> QMI-over-MBIM: CTL
//   Allocate Client ID (DMS) + DMS 0x555F Set FCC Authentication -> RADIO_STATE ON succeeds and
//   REGISTER_STATE goes Home (indicated) -> PACKET_SERVICE attach (indicated) -> CONNECT activate
//   of session n -> IP_CONFIGURATION of session n = ModemOptions::network -> data on IPS<n>.
//
// Data: bulk OUT NTBs are parsed as an MBIM function (IPS/DSS only); IPS datagrams of an active
// session go to the network, the rest are dropped and counted (frames_before_session). Bulk IN
// aggregates the network's packets into NTB16 or NTB32 (what SET_NTB_FORMAT chose) with an
// IPS<n> NDP for the lowest active session n.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "sim/modem.hpp"

namespace wwan::sim {

namespace em7455 {
inline constexpr std::uint16_t kVendorId = 0x1199, kProductId = 0x9079;
inline constexpr std::uint8_t kControlInterface = 12;
inline constexpr std::uint8_t kDataInterface = 13;
inline constexpr std::uint8_t kDataAltSetting = 1;  // alt 0: no endpoints
inline constexpr std::uint8_t kNotificationEndpoint = 0x82;
inline constexpr std::uint8_t kBulkInEndpoint = 0x81;
inline constexpr std::uint8_t kBulkOutEndpoint = 0x01;
inline constexpr std::uint16_t kMaxControlMessage = 4096;  // MBIM FD wMaxControlMessage
inline constexpr std::uint16_t kMaxSegmentSize = 2048;     // MBIM FD wMaxSegmentSize
inline constexpr std::uint16_t kMtu = 1500;                // MBIM Extended FD wMTU
// GET_NTB_PARAMETERS (CDC NCM 1.0 Table 6-3). No EM7455 dump of these was found (anchors §6):
// these are plausible Qualcomm-like values, chosen so both NTB formats and 32 KiB NTBs are used.
inline constexpr std::uint16_t kNtbFormatsSupported = 0x0003;  // NTB16 | NTB32
inline constexpr std::uint32_t kNtbInMaxSize = 32768;
inline constexpr std::uint32_t kNtbOutMaxSize = 32768;
inline constexpr std::uint16_t kNdpDivisor = 4, kNdpPayloadRemainder = 0, kNdpAlignment = 4;
inline constexpr std::uint16_t kNtbOutMaxDatagrams = 32;
inline constexpr std::uint32_t kMaxSessions = 8;  // DEVICE_CAPS MaxSessions (model choice)
}  // namespace em7455

// The MBIM model's extra surface for tests: a settable clock (control_answer_delay and the
// network's rate-limited source are time-driven; tests step time instead of sleeping) and a view
// of the lock state. Reach it with dynamic_cast from make_modem("mbim").
class MbimModem : public Modem {
 public:
  using ClockFunction = std::function<Clock::time_point()>;
  virtual void set_clock(ClockFunction now) = 0;
  virtual bool fcc_authenticated() const = 0;
  virtual bool function_open() const = 0;  // between OPEN_DONE and CLOSE / RESET_FUNCTION
};

}  // namespace wwan::sim
