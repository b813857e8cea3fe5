#include "control/modeswitch.hpp"

namespace wwan::control {
namespace {

constexpr std::array<std::uint8_t, kCbwSize> cbw(std::array<std::uint8_t, 16> cdb, std::uint8_t cb_length = 0) {
  // dCBWSignature "USBC", dCBWTag 0x78563412 (the bytes usb_modeswitch sends), no data stage,
  // LUN 0, bCBWCBLength 0 — a quirk Huawei firmware ignores (M1) — then the 16-byte CBWCB.
  std::array<std::uint8_t, kCbwSize> m{0x55, 0x53, 0x42, 0x43, 0x12, 0x34, 0x56, 0x78, 0, 0, 0, 0, 0, 0, cb_length};
  for (std::size_t i = 0; i < cdb.size(); ++i) m[15 + i] = cdb[i];
  return m;
}

// M2 "HuaweiAltMode": the stick (serial + NCM) composition, not HiLink's NAT router mode.
constexpr auto kAltMode = cbw({0x11, 0x06, 0x30, 0x00, 0x00, 0x00, 0x00, 0x01});
// M3 row 1: the message usb-modeswitch-data sends 12d1:1446 / 12d1:14fe to 12d1:1506.
constexpr auto k1446 = cbw({0x11, 0x06, 0x20, 0x00, 0x00, 0x01});

const ModeswitchRow kRows[] = {
    {0x12d1, 0x1f01, kAltMode, {0x155e, 0x1001}, "Huawei E3372h/E353 ZeroCD",
     "usb_modeswitch 2.5 HuaweiAltMode (vectors/usb_modeswitch_huawei.md M2, M6)"},
    {0x12d1, 0x1446, k1446, {0x1506, 0x1001, 0x1406, 0x140b, 0x140c, 0x1412, 0x141b, 0x1433, 0x1436, 0x14ac},
     "Huawei (older) ZeroCD", "usb-modeswitch-data 12d1:1446 (M3)"},
    {0x12d1, 0x14fe, k1446, {0x1506}, "T-Mobile NL E352", "usb-modeswitch-data 12d1:14fe (M3)"},
};

}  // namespace

std::span<const ModeswitchRow> modeswitch_table() { return kRows; }

const ModeswitchRow* find_modeswitch(std::uint16_t vendor_id, std::uint16_t product_id) {
  for (const ModeswitchRow& r : kRows)
    if (r.vendor_id == vendor_id && r.product_id == product_id) return &r;
  return nullptr;
}

bool is_huawei_switch_cbw(std::span<const std::uint8_t> b) {
  return b.size() == kCbwSize && b[0] == 0x55 && b[1] == 0x53 && b[2] == 0x42 && b[3] == 0x43 && b[15] == 0x11 &&
         b[16] == 0x06;
}

}  // namespace wwan::control
