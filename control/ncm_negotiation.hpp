// NTB parameter negotiation (NCM 1.0 §6.2, used unchanged by MBIM 1.0 §9.4) in the order the
// kernel's cdc_ncm_bind_common proved on real devices (anchors.md §1.5), with every device value
// clamped (§1.6) and the quirk switches applied:
//
//   1. unless avoid_alt_toggle: SET_INTERFACE(data, alt) then SET_INTERFACE(data, 0) — "some
//      devices will not reset properly unless they are configured first";
//   2. GET_NTB_PARAMETERS (mandatory) — clamped by plan_ntb();
//   3. SET_CRC_MODE(off) if bmNetworkCapabilities has CRC mode;
//   4. SET_NTB_FORMAT(NTB32 if prefer_ntb32 and supported, else NTB16) — only valid in alt 0;
//   5. SET_NTB_INPUT_SIZE, always, in the 4- or 8-byte form bmNetworkCapabilities asks for;
//   6. SET_MAX_DATAGRAM_SIZE if the capability is there;
//   7. settle (EM7455), then SET_INTERFACE(data, alt);
//   8. GET_NTB_FORMAT again: a device that came back in another format (Huawei E3372h fw 21.318)
//      is followed — the RX parser detects the format per NTB anyway; TX must match the device.
//
// plan_ntb() is pure (the numbers); negotiate() runs the requests over the Transport seam.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "control/cdc_ncm.hpp"
#include "control/quirks.hpp"
#include "datapath/ntb_build.hpp"
#include "usb/network_function.hpp"
#include "usb/transport.hpp"

namespace wwan::control {

// NTB size bounds are the builder's (ntb::kNtbMinSize .. ntb::kNtbOutMaxSizeLimit, anchors.md §1.6).
// Datagram size bounds: NCM min 1514 (spec 6.2.9), MBIM min 2048 (MBIM 8.1.3), max 8192.
inline constexpr std::uint16_t kNcmMinDatagramSize = 1514, kMbimMinDatagramSize = 2048, kMaxDatagramSize = 8192;

struct NtbPlan {
  ntb::NtbFormat format = ntb::NtbFormat::Ntb16;
  std::uint32_t ntb_in_max_size = 0;      // what we ask for with SET_NTB_INPUT_SIZE, bytes
  bool input_size_long_form = false;      // the 8-byte SET_NTB_INPUT_SIZE (bmNetworkCapabilities bit 5)
  ntb::NtbOutParams out;                  // sanitised: what the TX builder uses
  std::uint32_t out_transfer_bytes = 0;   // OUT buffer size (dwNtbOutMaxSize clamped)
  std::uint16_t max_datagram_size = 0;    // bytes, incl. the Ethernet header for NCM
  bool crc_off = false;                   // send SET_CRC_MODE(0)
  bool set_max_datagram_size = false;     // send SET_MAX_DATAGRAM_SIZE
  std::vector<std::string> adjustments;   // "dwNtbInMaxSize 1024 < 2048: using 2048", for the log
};

// The plan from the device's numbers, its functional descriptors and the quirks. `mbim` = the
// function is MBIM (no Ethernet framing; 2048-byte datagram minimum).
NtbPlan plan_ntb(const cdc::NtbParameters& device, const usb::NetworkFunction& function, const Quirks& quirks);

struct NegotiationResult {
  bool ok = false;
  NtbPlan plan;
  std::optional<cdc::NtbParameters> device;  // what GET_NTB_PARAMETERS said
  bool format_reverted = false;             // step 8 found another format than the one set
  std::string error;                        // one line when !ok
  std::vector<std::string> log;             // every request and what came back, for --verbose
};

// Runs steps 1–8 on a claimed function. Blocks for the control transfers and the settle delay.
NegotiationResult negotiate(usb::Transport& transport, const usb::NetworkFunction& function, const Quirks& quirks,
                            unsigned timeout_ms = 5000);

}  // namespace wwan::control
