// USB descriptor parser and modem function classifier. See descriptors.hpp for the why.
#include "usb/descriptors.hpp"

#include <algorithm>

#include "datapath/ntb_wire.hpp"  // fits / load_le16 / load_le32: the one bounds helper of the tree

namespace wwan::usb {
namespace {

using ntb::fits;
using ntb::load_le16;
using ntb::load_le32;

// ---- class codes (usb.org "Defined Class Codes"; CDC 1.2 Table 4/5/6) ------------------------
constexpr std::uint8_t kClassMassStorage = 0x08;
constexpr std::uint8_t kClassCdcControl = 0x02;
constexpr std::uint8_t kClassCdcData = 0x0A;
constexpr std::uint8_t kClassWirelessController = 0xE0;
constexpr std::uint8_t kClassMiscellaneous = 0xEF;
constexpr std::uint8_t kClassVendor = 0xFF;
constexpr std::uint8_t kCdcSubclassAcm = 0x02;
constexpr std::uint8_t kCdcSubclassNcm = 0x0D;
constexpr std::uint8_t kCdcSubclassMbim = 0x0E;
// CDC 1.2 Table 5: ACM protocols 01 (V.250) .. 06 (GSM 07.07 / 3GPP 27.007) are AT command sets.
constexpr std::uint8_t kAcmProtocolAtFirst = 0x01;
constexpr std::uint8_t kAcmProtocolAtLast = 0x06;
constexpr std::uint8_t kAcmProtocolVendor = 0xFF;  // Microsoft RNDIS control
constexpr std::uint8_t kDataProtocolNcmNtb = 0x01;  // CDC 1.2 Table 7 / NCM 1.0 §4.6
constexpr std::uint8_t kDataProtocolMbimNtb = 0x02;  // MBIM 1.0 §6.6
// Android's ADB interface (AOSP adb usb_vendors / the gadget's descriptor): ff/42/01.
constexpr std::uint8_t kAdbSubclass = 0x42;
constexpr std::uint8_t kAdbProtocol = 0x01;

constexpr std::uint16_t kVendorHuawei = 0x12D1;

// ---- the quirk table: vendor serial ports and vendor network interfaces ---------------------
// Quirks are table rows, not forks. A row applies only to vendor-class (ff) alt settings; the
// first matching row wins, so product rows come before vendor-wide rows of the same vendor.
enum class PortMatch : std::uint8_t {
  InterfaceNumber,  // value = bInterfaceNumber
  Protocol,         // value = bInterfaceProtocol (any subclass)
  QmiShape,         // ff/ff/ff with an interrupt IN and a bulk IN/OUT pair (value unused)
};
struct PortRule {
  std::uint16_t vendor_id;
  std::uint16_t product_id;  // 0: every product of the vendor
  PortMatch match;
  std::uint8_t value;
  Function function;
};
using enum PortMatch;
constexpr PortRule kPortRules[] = {
    // Quectel RM500Q 2c7c:0800, usb_descriptors.md D7 (kernel commit accf227de4d2: the option
    // driver's interface order "diag, nmea, at_port, modem, rmnet, adb"; qmi_wwan binds if4).
    {0x2C7C, 0x0800, InterfaceNumber, 0, Function::Diag},
    {0x2C7C, 0x0800, InterfaceNumber, 1, Function::Nmea},
    {0x2C7C, 0x0800, InterfaceNumber, 2, Function::At},
    {0x2C7C, 0x0800, InterfaceNumber, 3, Function::Modem},
    {0x2C7C, 0x0800, InterfaceNumber, 4, Function::Qmi},
    // Quectel RM520N 2c7c:0801 (SDX62): the same order. Kernel patch "USB: serial: option: add
    // Quectel RM520N" (jerry.meng, linux-usb 2022-09-05): "0x0801: DIAG + NMEA + AT + MODEM +
    // RMNET", its usb-devices dump if0 ff/ff/30, if1 ff/00/40, if2 and if3 ff/00/00 (option),
    // if4 ff/ff/ff (qmi_wwan). In usbnet NCM/ECM mode the network function replaces if4 (assumed
    // as on 0800; no NCM-mode dump of either is public).
    {0x2C7C, 0x0801, InterfaceNumber, 0, Function::Diag},
    {0x2C7C, 0x0801, InterfaceNumber, 1, Function::Nmea},
    {0x2C7C, 0x0801, InterfaceNumber, 2, Function::At},
    {0x2C7C, 0x0801, InterfaceNumber, 3, Function::Modem},
    {0x2C7C, 0x0801, InterfaceNumber, 4, Function::Qmi},
    // Quectel RM500U-CN 2c7c:0900 (Unisoc): one id in RNDIS, ECM and NCM mode, the network
    // function on if0+1 and five ff/00/00 bulk-only serial ports on if2..6 (option.c patch for
    // 0x0900, Bjørn Mork, its three usb-devices dumps). The AT port is if4: quectel-CM device.c
    // "case 0x0900: //RG500U atIntf = 4" (its RM500U logs: "Auto find qmichannel = /dev/ttyUSB2",
    // the third option port). The roles of if2, 3, 5, 6 are not documented: left unclassified.
    {0x2C7C, 0x0900, InterfaceNumber, 4, Function::At},
    // Quectel, every product: qmi_wwan matches ff/ff/ff on 2c7c:0125/0306/0512/0620/0800/0801
    // (QMI_MATCH_FF_FF_FF); the DIAG port of the older modules is ff/ff/ff too but has no
    // interrupt endpoint, which is the check qmi_wwan's Quectel quirk makes. 0x30 is the DIAG
    // protocol byte (D7 if0 ff/ff/30).
    {0x2C7C, 0, QmiShape, 0, Function::Qmi},
    {0x2C7C, 0, Protocol, 0x30, Function::Diag},
    // Telit FE990 1bc7:1081, D8: iConfiguration "DIAG_ADB_MBIM_NMEA_DUN_DUN_SER" names the
    // functions in interface order (0 DIAG ff/ff/30, 1 ADB, 2+3 MBIM, 4 NMEA ff/ff/60, 5 and 6
    // DUN ff/ff/40, 7 SER ff/ff/40). SER as the AT port is INFERENCE from the name.
    {0x1BC7, 0x1081, InterfaceNumber, 0, Function::Diag},
    {0x1BC7, 0x1081, InterfaceNumber, 4, Function::Nmea},
    {0x1BC7, 0x1081, InterfaceNumber, 5, Function::Modem},
    {0x1BC7, 0x1081, InterfaceNumber, 6, Function::Modem},
    {0x1BC7, 0x1081, InterfaceNumber, 7, Function::At},
    {0x1BC7, 0, Protocol, 0x30, Function::Diag},
    // Sierra Wireless EM74xx 1199:9079 (D5), MC74xx 1199:9071, Dell DW5809e = EM7305 413c:81b1
    // (D6): qcserial's "Sierra Wireless layout" (0 DM/DIAG, 2 NMEA, 3 AT-capable modem port,
    // 8 QMI/net) for these DEVICE_SWI ids; qmi_wwan QMI_FIXED_INTF 8 and 10 for 1199:9071/9079,
    // 8 for 413c:81b1. The MBIM function (12/13) is class 02/0a and needs no row.
    {0x1199, 0x9079, InterfaceNumber, 0, Function::Diag},
    {0x1199, 0x9079, InterfaceNumber, 2, Function::Nmea},
    {0x1199, 0x9079, InterfaceNumber, 3, Function::Modem},
    {0x1199, 0x9079, InterfaceNumber, 8, Function::Qmi},
    {0x1199, 0x9079, InterfaceNumber, 10, Function::Qmi},
    {0x1199, 0x9071, InterfaceNumber, 0, Function::Diag},
    {0x1199, 0x9071, InterfaceNumber, 2, Function::Nmea},
    {0x1199, 0x9071, InterfaceNumber, 3, Function::Modem},
    {0x1199, 0x9071, InterfaceNumber, 8, Function::Qmi},
    {0x1199, 0x9071, InterfaceNumber, 10, Function::Qmi},
    {0x413C, 0x81B1, InterfaceNumber, 0, Function::Diag},
    {0x413C, 0x81B1, InterfaceNumber, 2, Function::Nmea},
    {0x413C, 0x81B1, InterfaceNumber, 3, Function::Modem},
    {0x413C, 0x81B1, InterfaceNumber, 8, Function::Qmi},
    // Fibocom FM350-GL in USB mode 40 (0e8d:7126) and 41 (0e8d:7127), D1: the AT port is
    // interface 6 (4IceG/luci-app-3ginfo-lite#122 for 7127; mrhaav/openwrt keys on 1.6 for both).
    // The other ff/00/00 ports (GNSS, META, DEBUG, NPT, LOG) are not told apart by any source.
    {0x0E8D, 0x7126, InterfaceNumber, 6, Function::At},
    {0x0E8D, 0x7127, InterfaceNumber, 6, Function::At},
    // Huawei: the protocol byte names the function and the subclass the firmware source
    // (qcserial QCSERIAL_HWI comment), so rows match the protocol under any subclass.
    //   01 modem: ModemManager 77-mm-huawei-net-port-types.rules ff/01|02/01 -> AT_PPP; D2 if0 ff/03/01
    //   02 PCUI (AT): the same rules ff/01|02/02 -> AT_PRIMARY; D2 if3 ff/03/02
    //   03 DIAG: INFERENCE, D2's order 01, 16, 03, 02 is Huawei's MDM+NDIS+DIAG+PCUI composition
    //   05, 14 GPS: the same rules ff/01/05 (MU609), ff/01/14 (MU909), ff/06/14 (MU906e) -> GPS
    //   12 PCUI (AT): E3372 12d1:1506 if0 ff/03/12 (gargoyle#537); AT^SETPORT code 12 = PCUI
    // 16/46/76 (NCM) are not rows: the NCM rule needs the descriptor content too (huawei_ncm).
    {kVendorHuawei, 0, Protocol, 0x01, Function::Modem},
    {kVendorHuawei, 0, Protocol, 0x02, Function::At},
    {kVendorHuawei, 0, Protocol, 0x03, Function::Diag},
    {kVendorHuawei, 0, Protocol, 0x05, Function::Nmea},
    {kVendorHuawei, 0, Protocol, 0x12, Function::At},
    {kVendorHuawei, 0, Protocol, 0x14, Function::Nmea},
};

// Huawei vendor-class NCM protocol bytes: huawei_cdc_ncm.c binds ff/02/16, ff/02/46, ff/02/76,
// ff/03/16 (D9); qcserial keeps its hands off 16/46/76 under every subclass; the ME909s-821 uses
// ff/06/16, which no kernel driver binds (anchors §1.4).
constexpr std::uint8_t kHuaweiNcmProtocols[] = {0x16, 0x46, 0x76};

// Vendors whose mass-storage-only or serial-only devices are taken for modems.
constexpr std::uint16_t kModemVendors[] = {
    0x03F0,  // HP (lt4132 = Huawei ME906s, 03f0:a31d)
    0x05C6,  // Qualcomm (reference designs, QDL/EDL, ZeroCD 05c6:f000)
    0x0AF0,  // Option
    0x0BDB,  // Ericsson (MBM)
    0x0E8D,  // MediaTek (Fibocom FM350-GL, D1)
    0x1199,  // Sierra Wireless
    0x12D1,  // Huawei
    0x1410,  // Novatel Wireless
    0x1519,  // Comneon / Intel mobile (Infineon HSPA platform)
    0x1546,  // u-blox
    0x19D2,  // ZTE
    0x1BBB,  // T&A Mobile (Alcatel sticks)
    0x1BC7,  // Telit
    0x1C9E,  // Longcheer (many rebadged 3G sticks)
    0x1E0E,  // Qualcomm / Option (SIMCom modules)
    0x2C7C,  // Quectel
    0x2CB7,  // Fibocom
    0x413C,  // Dell (DW58xx = Sierra / Huawei / Foxconn modules)
};
// Caveat: HP and Dell also sell flash drives; one of theirs shows as "mass-storage". A stick that
// is really a modem hides behind the same ids, so the table errs on the side of listing it.

struct UsbId {
  std::uint16_t vendor_id, product_id;
};
constexpr UsbId kDownloadModeIds[] = {
    {0x05C6, 0x9008},  // Qualcomm HS-USB QDLoader (EDL / Sahara)
    {0x1199, 0x907A},  // Sierra EM74xx QDL (qcserial: "Sierra Wireless EM74xx QDL")
};

// ---- small helpers -----------------------------------------------------------------------------

std::string hex2(std::uint8_t v) {
  static constexpr char kHex[] = "0123456789abcdef";
  return {kHex[v >> 4], kHex[v & 0x0F]};
}
std::string num(std::size_t v) { return std::to_string(v); }

bool is_network(Function f) {
  return f == Function::Ncm || f == Function::HuaweiNcm || f == Function::Mbim || f == Function::Rndis ||
         f == Function::Qmi;
}
bool is_serial(Function f) {
  return f == Function::At || f == Function::Modem || f == Function::Diag || f == Function::Nmea;
}

// When alt settings of one interface disagree, the interface is named after the most specific
// one: network functions in classify_mode's order (the MBIM half of an NCM/MBIM function wins),
// then the rest; "other" last.
constexpr Function kPreference[] = {
    Function::Mbim, Function::HuaweiNcm, Function::Ncm,  Function::Rndis, Function::Qmi,
    Function::Qdl,  Function::CdcData,   Function::MassStorage,
    Function::At,   Function::Modem,     Function::Diag, Function::Nmea,  Function::Adb,
    Function::Other,
};
constexpr std::size_t rank(Function f) {
  std::size_t r = 0;
  while (r + 1 < std::size(kPreference) && kPreference[r] != f) ++r;
  return r;
}
static_assert(rank(Function::Mbim) < rank(Function::Ncm) && rank(Function::Other) + 1 == std::size(kPreference));

bool has_interrupt_in(const AltSetting& a) {
  return std::any_of(a.endpoints.begin(), a.endpoints.end(),
                     [](const Endpoint& e) { return e.is_interrupt() && e.is_in() && e.max_packet_size != 0; });
}

// ---- the walk ----------------------------------------------------------------------------------

class Walker {
 public:
  explicit Walker(Configuration& cfg) : cfg_(cfg) { index_.fill(kNone); }

  void problem(std::string text) {
    if (cfg_.problems.size() < kMaxProblems) {
      cfg_.problems.push_back(std::move(text));
    } else {
      ++dropped_problems_;
    }
  }

  // Walks [start, end) of `raw` descriptor by descriptor.
  void walk(Bytes raw, std::size_t start, std::size_t end);

  // Checks that need the whole walk (endpoint and interface counts); sorts the interfaces.
  void finish();
  // Appends the line that counts the problems beyond kMaxProblems. Last call.
  void close();

 private:
  static constexpr std::int16_t kNone = -1;

  void on_interface(Bytes d, std::size_t at);
  void on_endpoint(Bytes d, std::size_t at);
  void on_association(Bytes d, std::size_t at);
  void on_class_specific(Bytes d, std::size_t at);

  Interface* current_interface() {
    return current_interface_ == kNone ? nullptr : &cfg_.interfaces[static_cast<std::size_t>(current_interface_)];
  }
  template <class T>
  void keep_first(std::optional<T>& slot, const T& value, const Interface& i, const char* what) {
    if (!slot) {
      slot = value;
    } else if (!(*slot == value)) {
      problem("interface " + num(i.number) + ": a second " + what +
              " functional descriptor differs from the first, ignored");
    }
  }

  Configuration& cfg_;
  std::array<std::int16_t, 256> index_;  // bInterfaceNumber -> position in cfg_.interfaces
  std::int16_t current_interface_ = kNone;  // the most recent interface descriptor
  std::int16_t current_alt_ = kNone;        // ... and its alt setting, for endpoints
  struct Declared {
    std::size_t interface, alt;
    std::uint8_t endpoints;  // bNumEndpoints
  };
  std::vector<Declared> declared_;
  std::size_t dropped_problems_ = 0;
};

void Walker::walk(Bytes raw, std::size_t start, std::size_t end) {
  std::size_t off = start;
  while (off < end) {
    if (!fits(end, off, 2)) {
      problem("offset " + num(off) + ": 1 byte left, too short for a descriptor header");
      return;
    }
    const std::size_t length = raw[off];
    const std::uint8_t type = raw[off + 1];
    if (length < 2) {  // would never advance: stop here
      problem("offset " + num(off) + ": bLength " + num(length) + ", the rest is not walked");
      return;
    }
    if (!fits(end, off, length)) {
      problem("offset " + num(off) + ": descriptor type 0x" + hex2(type) + " bLength " + num(length) +
              " runs past the end (" + num(end - off) + " bytes left)");
      return;
    }
    const Bytes d = raw.subspan(off, length);
    switch (type) {
      case kDescriptorInterface: on_interface(d, off); break;
      case kDescriptorEndpoint: on_endpoint(d, off); break;
      case kDescriptorInterfaceAssociation: on_association(d, off); break;
      case kDescriptorCsInterface: on_class_specific(d, off); break;
      default: break;  // HID, SuperSpeed companions, CS_ENDPOINT, vendor: not needed here
    }
    off += length;
  }
}

void Walker::on_interface(Bytes d, std::size_t at) {
  current_interface_ = current_alt_ = kNone;  // whatever follows a bad one belongs to nothing
  if (d.size() < kInterfaceDescriptorSize) {
    problem("offset " + num(at) + ": interface descriptor of " + num(d.size()) + " bytes (needs 9), skipped");
    return;
  }
  const std::uint8_t number = d[2];
  AltSetting alt;
  alt.alternate = d[3];
  alt.interface_class = d[5];
  alt.interface_subclass = d[6];
  alt.interface_protocol = d[7];
  alt.interface_string_index = d[8];

  if (index_[number] == kNone) {
    index_[number] = static_cast<std::int16_t>(cfg_.interfaces.size());
    cfg_.interfaces.emplace_back().number = number;
  }
  Interface& iface = cfg_.interfaces[static_cast<std::size_t>(index_[number])];
  if (iface.alt(alt.alternate) != nullptr) {
    problem("offset " + num(at) + ": interface " + num(number) + " alt setting " + num(alt.alternate) +
            " appears twice, the second is skipped");
    return;
  }
  current_interface_ = index_[number];
  current_alt_ = static_cast<std::int16_t>(iface.alt_settings.size());
  declared_.push_back({static_cast<std::size_t>(current_interface_), iface.alt_settings.size(), d[4]});
  iface.alt_settings.push_back(std::move(alt));
}

void Walker::on_endpoint(Bytes d, std::size_t at) {
  if (d.size() < kEndpointDescriptorSize) {
    problem("offset " + num(at) + ": endpoint descriptor of " + num(d.size()) + " bytes (needs 7), skipped");
    return;
  }
  Interface* iface = current_interface();
  if (iface == nullptr) {
    problem("offset " + num(at) + ": endpoint 0x" + hex2(d[2]) + " outside any interface, skipped");
    return;
  }
  Endpoint ep;
  ep.address = d[2];
  ep.attributes = d[3];
  ep.max_packet_size = static_cast<std::uint16_t>(load_le16(d, 4) & 0x07FF);
  ep.interval = d[6];
  iface->alt_settings[static_cast<std::size_t>(current_alt_)].endpoints.push_back(ep);
}

void Walker::on_association(Bytes d, std::size_t at) {
  if (d.size() < kInterfaceAssociationSize) {
    problem("offset " + num(at) + ": interface association of " + num(d.size()) + " bytes (needs 8), skipped");
    return;
  }
  cfg_.associations.push_back({.first_interface = d[2],
                               .interface_count = d[3],
                               .function_class = d[4],
                               .function_subclass = d[5],
                               .function_protocol = d[6],
                               .function_string_index = d[7]});
}

void Walker::on_class_specific(Bytes d, std::size_t at) {
  Interface* iface = current_interface();
  if (d.size() < 3) {
    problem("offset " + num(at) + ": class-specific descriptor of " + num(d.size()) + " bytes, skipped");
    return;
  }
  const std::uint8_t subtype = d[2];
  if (iface == nullptr) {
    problem("offset " + num(at) + ": functional descriptor 0x" + hex2(subtype) + " outside any interface, skipped");
    return;
  }
  const auto too_short = [&](const char* what, std::size_t need) {
    if (d.size() >= need) return false;
    problem("offset " + num(at) + ": interface " + num(iface->number) + " " + what + " functional descriptor of " +
            num(d.size()) + " bytes (needs " + num(need) + "), skipped");
    return true;
  };
  switch (subtype) {
    case kCdcHeaderSubtype:
      if (!too_short("Header", kCdcHeaderSize) && !iface->bcd_cdc) iface->bcd_cdc = load_le16(d, 3);
      break;
    case kCdcUnionSubtype: {
      if (too_short("Union", kCdcUnionMinSize)) break;
      const std::vector<std::uint8_t> subordinates(d.begin() + 4, d.end());
      if (!iface->union_control) {
        iface->union_control = d[3];
        iface->union_subordinates = subordinates;
      } else if (*iface->union_control != d[3] || iface->union_subordinates != subordinates) {
        problem("interface " + num(iface->number) +
                ": a second Union functional descriptor differs from the first, ignored");
      }
      break;
    }
    case kCdcEthernetSubtype:
      if (too_short("Ethernet", kCdcEthernetSize)) break;
      keep_first(iface->ethernet,
                 EthernetFunctionalDescriptor{.mac_address_string_index = d[3],
                                              .ethernet_statistics = load_le32(d, 4),
                                              .max_segment_size = load_le16(d, 8),
                                              .number_mc_filters = load_le16(d, 10),
                                              .number_power_filters = d[12]},
                 *iface, "Ethernet");
      break;
    case kCdcNcmSubtype:
      if (too_short("NCM", kCdcNcmSize)) break;
      keep_first(iface->ncm, NcmFunctionalDescriptor{.bcd_ncm_version = load_le16(d, 3), .network_capabilities = d[5]},
                 *iface, "NCM");
      break;
    case kCdcMbimSubtype:
      if (too_short("MBIM", kCdcMbimSize)) break;
      keep_first(iface->mbim,
                 MbimFunctionalDescriptor{.bcd_mbim_version = load_le16(d, 3),
                                          .max_control_message = load_le16(d, 5),
                                          .number_filters = d[7],
                                          .max_filter_size = d[8],
                                          .max_segment_size = load_le16(d, 9),
                                          .network_capabilities = d[11]},
                 *iface, "MBIM");
      break;
    case kCdcMbimExtendedSubtype:
      if (too_short("MBIM Extended", kCdcMbimExtendedSize)) break;
      keep_first(iface->mbim_extended,
                 MbimExtendedFunctionalDescriptor{.bcd_mbim_extended_version = load_le16(d, 3),
                                                  .max_outstanding_command_messages = d[5],
                                                  .mtu = load_le16(d, 6)},
                 *iface, "MBIM Extended");
      break;
    default: break;  // Call Management, ACM, ... : not needed to classify or drive
  }
}

void Walker::finish() {
  for (const Declared& dc : declared_) {
    const Interface& iface = cfg_.interfaces[dc.interface];
    const AltSetting& alt = iface.alt_settings[dc.alt];
    if (alt.endpoints.size() != dc.endpoints)
      problem("interface " + num(iface.number) + " alt setting " + num(alt.alternate) + ": bNumEndpoints " +
              num(dc.endpoints) + " but " + num(alt.endpoints.size()) + " endpoint descriptors");
  }
  if (cfg_.interfaces.size() != cfg_.declared_interfaces)
    problem("bNumInterfaces " + num(cfg_.declared_interfaces) + " but " + num(cfg_.interfaces.size()) +
            " interfaces found");
  std::sort(cfg_.interfaces.begin(), cfg_.interfaces.end(),
            [](const Interface& a, const Interface& b) { return a.number < b.number; });
}

void Walker::close() {
  if (dropped_problems_ != 0) cfg_.problems.push_back("... and " + num(dropped_problems_) + " more problems");
}

// ---- classification ----------------------------------------------------------------------------

bool in_download_mode_table(std::uint16_t vid, std::uint16_t pid) {
  return std::any_of(std::begin(kDownloadModeIds), std::end(kDownloadModeIds),
                     [&](const UsbId& id) { return id.vendor_id == vid && id.product_id == pid; });
}

bool rule_matches(const PortRule& r, const AltSetting& a, std::uint8_t number, std::uint16_t vid,
                  std::uint16_t pid) {
  if (r.vendor_id != vid || (r.product_id != 0 && r.product_id != pid)) return false;
  switch (r.match) {
    case InterfaceNumber: return number == r.value;
    case Protocol: return a.interface_protocol == r.value;
    case QmiShape:
      return a.interface_subclass == 0xFF && a.interface_protocol == 0xFF && has_interrupt_in(a) && a.has_bulk_pair();
  }
  return false;
}

// One alt setting on its own: the class triple, then the vendor rules.
Function classify_alt(const AltSetting& a, std::uint8_t number, std::uint16_t vid, std::uint16_t pid) {
  const std::uint8_t c = a.interface_class, s = a.interface_subclass, p = a.interface_protocol;
  if (c == kClassCdcControl) {
    if (s == kCdcSubclassMbim) return Function::Mbim;
    if (s == kCdcSubclassNcm) return Function::Ncm;
    if (s == kCdcSubclassAcm && p == kAcmProtocolVendor) return Function::Rndis;
    if (s == kCdcSubclassAcm && p >= kAcmProtocolAtFirst && p <= kAcmProtocolAtLast) return Function::At;
    return Function::Other;
  }
  // RNDIS outside CDC: Linux rndis_host matches e0/01/03 ("RNDIS for tethering", FM350 D1's IAD)
  // and ef/04/01 ("Mobile Broadband Modem, seen in Novatel Verizon USB730L and Telit FN990A").
  if (c == kClassWirelessController && s == 0x01 && p == 0x03) return Function::Rndis;
  if (c == kClassMiscellaneous && s == 0x04 && p == 0x01) return Function::Rndis;
  if (c == kClassCdcData) return Function::CdcData;
  if (c == kClassMassStorage) return Function::MassStorage;
  if (c != kClassVendor) return Function::Other;

  if (s == kAdbSubclass && p == kAdbProtocol) return Function::Adb;
  // qcserial's QDL check: the download-mode id with a bulk IN/OUT pair.
  if (in_download_mode_table(vid, pid) && a.has_bulk_pair()) return Function::Qdl;
  if (vid == kVendorHuawei && std::find(std::begin(kHuaweiNcmProtocols), std::end(kHuaweiNcmProtocols), p) !=
                                  std::end(kHuaweiNcmProtocols))
    return Function::HuaweiNcm;  // a candidate: resolve_data_interfaces checks for a data path
  for (const PortRule& r : kPortRules)
    if (rule_matches(r, a, number, vid, pid)) return r.function;
  return Function::Other;
}

void classify_interface(Interface& iface, std::uint16_t vid, std::uint16_t pid) {
  iface.function = Function::Other;
  iface.function_alt_setting = iface.alt_settings.empty() ? 0 : iface.alt_settings.front().alternate;
  for (const AltSetting& a : iface.alt_settings) {
    const Function f = classify_alt(a, iface.number, vid, pid);
    if (rank(f) < rank(iface.function)) {
      iface.function = f;
      iface.function_alt_setting = a.alternate;
    }
  }
}

std::optional<std::uint8_t> first_bulk_alt(const Interface& iface) {
  for (const AltSetting& a : iface.alt_settings)
    if (a.has_bulk_pair()) return a.alternate;
  return std::nullopt;
}

// The alt setting of `data` to select for `function`. An NCM/MBIM function (MBIM 1.0 §3.2) has a
// data interface with both: protocol 01 (NCM NTB, NCM 1.0 §4.6) at alt 1 and 02 (MBIM NTB) at
// alt 2 (the kernel's CDC_NCM_DATA_ALTSETTING_NCM/_MBIM); the one matching the function wins,
// else the first alt setting with a bulk pair.
std::optional<std::uint8_t> data_alt_for(Function function, const Interface& data) {
  const std::uint8_t wanted = function == Function::Mbim ? kDataProtocolMbimNtb
                              : function == Function::Ncm ? kDataProtocolNcmNtb
                                                          : 0;
  for (const AltSetting& a : data.alt_settings)
    if (wanted != 0 && a.interface_class == kClassCdcData && a.interface_protocol == wanted && a.has_bulk_pair())
      return a.alternate;
  return first_bulk_alt(data);
}

// The data interface of one network interface: Union, else IAD pair, else itself (anchors §1.5).
std::optional<std::uint8_t> find_data_interface(const Configuration& cfg, const Interface& iface, Walker& w) {
  if (!iface.union_subordinates.empty()) {
    const std::uint8_t sub = iface.union_subordinates.front();
    if (cfg.interface(sub) != nullptr) return sub;
    w.problem("interface " + num(iface.number) + ": Union names data interface " + num(sub) +
              ", which does not exist");
  }
  // cdc_ncm_bind_common: "some buggy devices have an IAD but no CDC Union" -> the other
  // interface of a two-interface association (control + 1 when the control comes first).
  for (const InterfaceAssociation& iad : cfg.associations) {
    if (iad.interface_count != 2 || !iad.contains(iface.number)) continue;
    const int other = iface.number == iad.first_interface ? iad.first_interface + 1 : iad.first_interface;
    if (other <= 0xFF && cfg.interface(static_cast<std::uint8_t>(other)) != nullptr)
      return static_cast<std::uint8_t>(other);
  }
  if (first_bulk_alt(iface)) return iface.number;  // control and data share the interface
  return std::nullopt;
}

void resolve_data_interfaces(Configuration& cfg, Walker& w) {
  for (Interface& iface : cfg.interfaces) {
    if (!is_network(iface.function)) continue;
    iface.data_interface = find_data_interface(cfg, iface, w);
    const Interface* data = iface.data_interface ? cfg.interface(*iface.data_interface) : nullptr;
    if (data != nullptr) iface.data_alt_setting = data_alt_for(iface.function, *data);
    if (iface.data_alt_setting) continue;
    if (iface.function == Function::HuaweiNcm) {
      // The protocol byte alone is not enough (anchors §1.4): without a data path it is not NCM.
      w.problem("interface " + num(iface.number) + ": Huawei NCM protocol byte but no bulk IN/OUT pair, not NCM");
      iface.function = Function::Other;
      iface.data_interface.reset();
    } else if (data == nullptr) {
      w.problem("interface " + num(iface.number) + " (" + to_string(iface.function) + "): no data interface found");
    } else {
      w.problem("interface " + num(iface.number) + " (" + to_string(iface.function) + "): data interface " +
                num(data->number) + " has no alt setting with a bulk IN/OUT pair");
    }
  }
  // A vendor-class data interface named by a network function's Union is that function's data.
  for (const Interface& iface : cfg.interfaces) {
    if (!is_network(iface.function) || !iface.data_interface || *iface.data_interface == iface.number) continue;
    for (Interface& data : cfg.interfaces)
      if (data.number == *iface.data_interface && data.function == Function::Other) data.function = Function::CdcData;
  }
}

}  // namespace

// ---- names ---------------------------------------------------------------------------------------

const char* to_string(Function f) {
  switch (f) {
    case Function::Ncm: return "ncm";
    case Function::HuaweiNcm: return "huawei-ncm";
    case Function::Mbim: return "mbim";
    case Function::Rndis: return "rndis";
    case Function::CdcData: return "cdc-data";
    case Function::Qmi: return "qmi";
    case Function::At: return "at";
    case Function::Modem: return "modem";
    case Function::Diag: return "diag";
    case Function::Nmea: return "nmea";
    case Function::Adb: return "adb";
    case Function::Qdl: return "qdl";
    case Function::MassStorage: return "mass-storage";
    case Function::Other: return "other";
  }
  return "other";
}

const char* to_string(ModemMode m) {
  switch (m) {
    case ModemMode::Ncm: return "ncm";
    case ModemMode::HuaweiNcm: return "huawei-ncm";
    case ModemMode::Mbim: return "mbim";
    case ModemMode::Rndis: return "rndis";
    case ModemMode::Qmi: return "qmi";
    case ModemMode::MassStorage: return "mass-storage";
    case ModemMode::Qdl: return "qdl";
    case ModemMode::SerialOnly: return "serial-only";
    case ModemMode::NotAModem: return "not-a-modem";
  }
  return "not-a-modem";
}

// ---- small accessors -----------------------------------------------------------------------------

bool AltSetting::has_bulk_pair() const {
  const auto bulk = [&](bool in) {
    return std::any_of(endpoints.begin(), endpoints.end(), [&](const Endpoint& e) {
      return e.is_bulk() && e.is_in() == in && e.max_packet_size != 0;
    });
  };
  return bulk(true) && bulk(false);
}

const AltSetting* Interface::alt(std::uint8_t alternate) const {
  for (const AltSetting& a : alt_settings)
    if (a.alternate == alternate) return &a;
  return nullptr;
}

const Interface* Configuration::interface(std::uint8_t number) const {
  for (const Interface& i : interfaces)
    if (i.number == number) return &i;
  return nullptr;
}

bool is_modem_vendor(std::uint16_t vendor_id) {
  return std::find(std::begin(kModemVendors), std::end(kModemVendors), vendor_id) != std::end(kModemVendors);
}

bool is_download_mode_id(std::uint16_t vendor_id, std::uint16_t product_id) {
  return in_download_mode_table(vendor_id, product_id);
}

// ---- parsing -------------------------------------------------------------------------------------

std::optional<DeviceDescriptor> parse_device_descriptor(Bytes raw) {
  if (raw.size() < kDeviceDescriptorSize || raw[0] < kDeviceDescriptorSize || raw[1] != kDescriptorDevice)
    return std::nullopt;
  return DeviceDescriptor{
      .bcd_usb = load_le16(raw, 2),
      .device_class = raw[4],
      .device_subclass = raw[5],
      .device_protocol = raw[6],
      .max_packet_size0 = raw[7],
      .vendor_id = load_le16(raw, 8),
      .product_id = load_le16(raw, 10),
      .bcd_device = load_le16(raw, 12),
      .manufacturer_index = raw[14],
      .product_index = raw[15],
      .serial_index = raw[16],
      .num_configurations = raw[17],
  };
}

std::optional<Configuration> parse_configuration(Bytes raw, std::uint16_t vendor_id, std::uint16_t product_id) {
  if (raw.size() < kConfigurationHeaderSize || raw[0] < kConfigurationHeaderSize ||
      raw[1] != kDescriptorConfiguration)
    return std::nullopt;
  Configuration cfg;
  cfg.total_length = load_le16(raw, 2);
  cfg.declared_interfaces = raw[4];
  cfg.value = raw[5];
  cfg.configuration_string_index = raw[6];
  cfg.attributes = raw[7];
  cfg.max_power_2ma = raw[8];

  Walker w(cfg);
  std::size_t end = cfg.total_length;
  if (cfg.total_length < raw[0]) {
    w.problem("wTotalLength " + num(cfg.total_length) + " is shorter than the header; walking all " +
              num(raw.size()) + " bytes");
    end = raw.size();
  } else if (cfg.total_length > raw.size()) {
    w.problem("wTotalLength " + num(cfg.total_length) + " but only " + num(raw.size()) + " bytes");
    end = raw.size();
  }
  if (raw[0] > end) {  // a header bLength that runs past everything there is
    w.problem("configuration bLength " + num(raw[0]) + " runs past the end");
  } else {
    w.walk(raw, raw[0], end);
  }
  w.finish();

  for (Interface& iface : cfg.interfaces) classify_interface(iface, vendor_id, product_id);
  resolve_data_interfaces(cfg, w);
  w.close();
  return cfg;
}

std::vector<Configuration> parse_configurations(Bytes raw, std::uint16_t vendor_id, std::uint16_t product_id) {
  std::vector<Configuration> out;
  std::size_t off = 0;
  while (off < raw.size()) {
    const Bytes rest = raw.subspan(off);
    std::optional<Configuration> cfg = parse_configuration(rest, vendor_id, product_id);
    if (!cfg) break;
    const std::size_t length = cfg->total_length;
    out.push_back(std::move(*cfg));
    if (length < kConfigurationHeaderSize) break;  // cannot know where the next one starts
    off += std::min(length, rest.size());
  }
  return out;
}

// ---- mode --------------------------------------------------------------------------------------

ModemMode classify_mode(std::uint16_t vendor_id, std::uint16_t product_id, const Configuration& active) {
  const auto has = [&](Function f) {
    return std::any_of(active.interfaces.begin(), active.interfaces.end(),
                       [&](const Interface& i) { return i.function == f; });
  };
  if (has(Function::Mbim)) return ModemMode::Mbim;
  if (has(Function::HuaweiNcm)) return ModemMode::HuaweiNcm;
  if (has(Function::Ncm)) return ModemMode::Ncm;
  if (has(Function::Rndis)) return ModemMode::Rndis;
  if (has(Function::Qmi)) return ModemMode::Qmi;
  if (is_download_mode_id(vendor_id, product_id) || has(Function::Qdl)) return ModemMode::Qdl;
  if (!is_modem_vendor(vendor_id)) return ModemMode::NotAModem;
  if (std::any_of(active.interfaces.begin(), active.interfaces.end(),
                  [](const Interface& i) { return is_serial(i.function); }))
    return ModemMode::SerialOnly;
  if (!active.interfaces.empty() &&
      std::all_of(active.interfaces.begin(), active.interfaces.end(),
                  [](const Interface& i) { return i.function == Function::MassStorage; }))
    return ModemMode::MassStorage;
  return ModemMode::NotAModem;
}

bool is_drivable(ModemMode mode) {
  switch (mode) {
    case ModemMode::Ncm:
    case ModemMode::HuaweiNcm:
    case ModemMode::Mbim:
    // RNDIS: REMOTE_NDIS_PACKET_MSG framing in the workers, the RNDIS control session on the
    // encapsulated channel, AT on the serial port for the dial (docs/rndis.md).
    case ModemMode::Rndis:
      return true;
    // QMI/rmnet needs QMI WDA/WDS on the control side and raw-IP or QMAP framing: not planned yet.
    case ModemMode::Qmi:
    case ModemMode::MassStorage:  // needs a modeswitch first
    case ModemMode::Qdl:          // firmware download mode, no network
    case ModemMode::SerialOnly:   // PPP over a TTY is the kernel's job
    case ModemMode::NotAModem:
      return false;
  }
  return false;
}

std::optional<std::array<std::uint8_t, 6>> parse_mac_string(std::string_view text) {
  if (text.size() != 12) return std::nullopt;
  const auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::array<std::uint8_t, 6> mac{};
  for (std::size_t i = 0; i < mac.size(); ++i) {
    const int hi = nibble(text[2 * i]), lo = nibble(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    mac[i] = static_cast<std::uint8_t>(hi * 16 + lo);
  }
  return mac;
}

}  // namespace wwan::usb
