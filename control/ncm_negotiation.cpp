#include "control/ncm_negotiation.hpp"

#include <algorithm>
#include <cstdio>
#include <thread>

namespace wwan::control {
namespace {

std::uint8_t capabilities(const usb::NetworkFunction& f) {
  if (f.kind == usb::Function::Mbim && f.mbim) return f.mbim->network_capabilities;
  return f.ncm ? f.ncm->network_capabilities : 0;
}

std::string hex16(std::uint16_t v) {
  char b[8];
  std::snprintf(b, sizeof b, "0x%02x", v);
  return b;
}

}  // namespace

NtbPlan plan_ntb(const cdc::NtbParameters& device, const usb::NetworkFunction& function, const Quirks& quirks) {
  NtbPlan p;
  const bool mbim = function.kind == usb::Function::Mbim;
  const std::uint8_t caps = capabilities(function);

  p.format = quirks.prefer_ntb32 && device.supports(ntb::NtbFormat::Ntb32) ? ntb::NtbFormat::Ntb32
                                                                           : ntb::NtbFormat::Ntb16;
  if (!device.supports(ntb::NtbFormat::Ntb16) && device.supports(ntb::NtbFormat::Ntb32)) {
    p.format = ntb::NtbFormat::Ntb32;  // NCM 1.0 §6.2.1: NTB16 is mandatory, but a device may lie
    p.adjustments.push_back("bmNtbFormatsSupported lacks NTB16: using NTB32");
  }

  // IN: the kernel's rx_max = clamp(dwNtbInMaxSize, 2048, 65536); NTB16 offsets stop at 65535.
  const std::uint32_t in_limit = p.format == ntb::NtbFormat::Ntb16 ? ntb::kNtb16MaxSize : ntb::kNtbOutMaxSizeLimit;
  p.ntb_in_max_size = std::clamp<std::uint32_t>(device.ntb_in_max_size, static_cast<std::uint32_t>(ntb::kNtbMinSize), in_limit);
  if (p.ntb_in_max_size != device.ntb_in_max_size)
    p.adjustments.push_back("dwNtbInMaxSize " + std::to_string(device.ntb_in_max_size) + " outside " +
                            std::to_string(ntb::kNtbMinSize) + ".." + std::to_string(in_limit) + ": using " +
                            std::to_string(p.ntb_in_max_size));
  p.input_size_long_form = (caps & cdc::kNcapNtbInputSize8) != 0;

  // OUT: the builder's sanitiser applies the kernel's clamps and says which values it replaced.
  ntb::NtbOutParams raw = cdc::out_params(device, p.format, quirks.ndp_at_end);
  raw.ethernet_framing = !mbim;
  const ntb::SanitizedOutParams s = ntb::sanitize_out_params(raw);
  p.out = s.params;
  if (s.overridden.ntb_out_max_size)
    p.adjustments.push_back("dwNtbOutMaxSize " + std::to_string(device.ntb_out_max_size) + ": using " +
                            std::to_string(p.out.ntb_out_max_size));
  if (s.overridden.ndp_out_divisor)
    p.adjustments.push_back("wNdpOutDivisor " + std::to_string(device.ndp_out_divisor) + ": using " +
                            std::to_string(p.out.ndp_out_divisor));
  if (s.overridden.ndp_out_payload_remainder)
    p.adjustments.push_back("wNdpOutPayloadRemainder " + std::to_string(device.ndp_out_payload_remainder) + ": using " +
                            std::to_string(p.out.ndp_out_payload_remainder));
  if (s.overridden.ndp_out_alignment)
    p.adjustments.push_back("wNdpOutAlignment " + std::to_string(device.ndp_out_alignment) + ": using " +
                            std::to_string(p.out.ndp_out_alignment));
  // The kernel's tx_max + 1: a transfer that is not dwNtbOutMaxSize long and is a multiple of
  // wMaxPacketSize would need a ZLP; one spare byte avoids it (for devices that dislike ZLPs).
  p.out_transfer_bytes = p.out.ntb_out_max_size;
  const std::uint16_t mps = function.bulk_out.max_packet_size;
  if (quirks.out_termination == OutTermination::pad_one_byte && mps != 0 && p.out_transfer_bytes % mps == 0 &&
      p.out_transfer_bytes != device.ntb_out_max_size)
    p.out_transfer_bytes += 1;

  // Datagram size: the descriptor's wMaxSegmentSize within the spec's bounds.
  const std::uint16_t floor = mbim ? kMbimMinDatagramSize : kNcmMinDatagramSize;
  std::uint16_t segment = 0;
  if (mbim && function.mbim) segment = function.mbim->max_segment_size;
  if (!mbim && function.ethernet) segment = function.ethernet->max_segment_size;
  if (segment == 0) segment = floor;
  p.max_datagram_size = std::clamp<std::uint16_t>(segment, floor, kMaxDatagramSize);
  if (p.max_datagram_size != segment)
    p.adjustments.push_back("wMaxSegmentSize " + std::to_string(segment) + ": using " + std::to_string(p.max_datagram_size));
  p.set_max_datagram_size = !mbim && (caps & cdc::kNcapMaxDatagramSize) != 0;
  p.crc_off = !mbim && (caps & cdc::kNcapCrcMode) != 0;
  return p;
}

NegotiationResult negotiate(usb::Transport& transport, const usb::NetworkFunction& function, const Quirks& quirks,
                            unsigned timeout_ms) {
  NegotiationResult r;
  const auto control_out = [&](std::uint8_t request, std::uint16_t value, std::vector<std::uint8_t> data) {
    const usb::ControlResult c = transport.control(
        {cdc::kRequestTypeClassInterfaceOut, request, value, function.control_interface}, data, timeout_ms);
    r.log.push_back(std::string(cdc::request_name(request)) + " value " + hex16(value) + ": " + usb::to_string(c.status));
    return c.status;
  };
  const auto control_in = [&](std::uint8_t request, std::vector<std::uint8_t>& data) {
    const usb::ControlResult c = transport.control(
        {cdc::kRequestTypeClassInterfaceIn, request, 0, function.control_interface}, data, timeout_ms);
    r.log.push_back(std::string(cdc::request_name(request)) + ": " + usb::to_string(c.status) + ", " +
                    std::to_string(c.actual_bytes) + " bytes");
    data.resize(c.status == usb::TransferStatus::completed ? c.actual_bytes : 0);
    return c.status;
  };
  const auto set_alt = [&](std::uint8_t alt) {
    const usb::TransferStatus st = transport.set_alt_setting(function.data_interface, alt);
    r.log.push_back("SET_INTERFACE " + std::to_string(function.data_interface) + " alt " + std::to_string(alt) + ": " +
                    usb::to_string(st));
    return st;
  };
  const auto fail = [&](std::string why) {
    r.ok = false;
    r.error = std::move(why);
    return r;
  };

  // 1. The reset toggle (skipped on the Telit MBIM rows, and on a shared control/data interface:
  //    the Huawei ff/03/16 interface would lose its interrupt endpoint's state for nothing).
  if (!quirks.avoid_alt_toggle && !function.shared_interface()) {
    if (set_alt(function.data_alt_setting) == usb::TransferStatus::no_device) return fail("the modem left the bus");
  }
  if (set_alt(0) == usb::TransferStatus::no_device) return fail("the modem left the bus");

  // 2. GET_NTB_PARAMETERS: mandatory (NCM 1.0 §6.2.1); without it nothing can be sized.
  std::vector<std::uint8_t> params(cdc::kNtbParametersSize);
  const usb::TransferStatus st = control_in(cdc::kGetNtbParameters, params);
  if (st != usb::TransferStatus::completed)
    return fail(std::string("GET_NTB_PARAMETERS failed (") + usb::to_string(st) + "): not an NCM/MBIM data function?");
  r.device = cdc::decode_ntb_parameters(params);
  if (!r.device) return fail("GET_NTB_PARAMETERS answered " + std::to_string(params.size()) + " bytes, not 28");
  r.plan = plan_ntb(*r.device, function, quirks);

  // 3.–6. in alt 0. Failures of the optional requests are logged, not fatal (the kernel does the same).
  if (r.plan.crc_off) control_out(cdc::kSetCrcMode, cdc::kCrcNotAppended, {});
  if (r.device->supports(ntb::NtbFormat::Ntb32)) {
    if (control_out(cdc::kSetNtbFormat, cdc::ntb_format_value(r.plan.format), {}) != usb::TransferStatus::completed &&
        r.plan.format == ntb::NtbFormat::Ntb32) {
      Quirks ntb16 = quirks;
      ntb16.prefer_ntb32 = false;
      r.plan = plan_ntb(*r.device, function, ntb16);
      r.log.push_back("SET_NTB_FORMAT(NTB32) refused: staying in NTB16");
    }
  }
  {
    std::vector<std::uint8_t> size(cdc::kNtbInputSizeLong);
    const std::size_t n = cdc::encode_ntb_input_size({r.plan.ntb_in_max_size, 0}, r.plan.input_size_long_form, size);
    size.resize(n);
    control_out(cdc::kSetNtbInputSize, 0, size);
  }
  if (r.plan.set_max_datagram_size) {
    const std::uint16_t v = r.plan.max_datagram_size;
    control_out(cdc::kSetMaxDatagramSize, 0, {static_cast<std::uint8_t>(v & 0xff), static_cast<std::uint8_t>(v >> 8)});
  }

  // 7. Settle, then the data alt setting.
  if (quirks.settle_before_data_alt.count() > 0) std::this_thread::sleep_for(quirks.settle_before_data_alt);
  const usb::TransferStatus alt = set_alt(function.data_alt_setting);
  if (alt != usb::TransferStatus::completed)
    return fail("cannot select alt setting " + std::to_string(function.data_alt_setting) + " of interface " +
                std::to_string(function.data_interface) + ": " + usb::to_string(alt));

  // 8. The format the device is really in now.
  if (r.device->supports(ntb::NtbFormat::Ntb32)) {
    std::vector<std::uint8_t> format(2);
    if (control_in(cdc::kGetNtbFormat, format) == usb::TransferStatus::completed && format.size() == 2) {
      const auto now = cdc::ntb_format_from_value(static_cast<std::uint16_t>(format[0] | format[1] << 8));
      if (now && *now != r.plan.format) {
        r.format_reverted = true;
        r.log.push_back(std::string("the device came back in ") + (*now == ntb::NtbFormat::Ntb32 ? "NTB32" : "NTB16") +
                        " after the alt switch: following it");
        Quirks follow = quirks;
        follow.prefer_ntb32 = *now == ntb::NtbFormat::Ntb32;
        const std::vector<std::string> notes = r.plan.adjustments;
        r.plan = plan_ntb(*r.device, function, follow);
        r.plan.format = *now;
        r.plan.out.format = *now;
        r.plan.adjustments.insert(r.plan.adjustments.begin(), notes.begin(), notes.end());
      }
    }
  }
  r.ok = true;
  return r;
}

}  // namespace wwan::control
