// USB descriptor parsing and modem function classification. Pure: raw descriptor bytes in,
// plain structs out; no libusb here (usb/libusb_*.cpp feeds it the bytes libusb reads).
//
// USB 2.0 §9.6 (standard descriptors), USB ECN "Interface Association Descriptor", CDC 1.2 §5.2.3
// (functional descriptors: Header 0x00, Union 0x06, Ethernet 0x0F), CDC NCM 1.0 §5.2 (NCM 0x1A),
// MBIM 1.0 §6.4/§6.5 (MBIM 0x1B, MBIM Extended 0x1C). Devices are untrusted: every bLength is
// checked against what is left, and a descriptor that lies is reported, not followed.
//
// What real devices do that this accepts (../shared/reference/vectors/usb_descriptors.md D1-D9,
// anchors.md §1.3-1.5):
//   - the network function anywhere: Sierra numbers its MBIM function 12/13 (D5, D6)
//   - NCM control and data in one vendor interface whose alt 1 adds the bulk pair, with a Union
//     naming itself (Huawei ff/03/16, D2)
//   - no Union but an IAD over the pair (the kernel's "IAD fallback", anchors §1.3)
//   - alt settings of one interface grouped (libusb) or interleaved with other interfaces (raw)
//   - functional descriptors longer than their type needs (the known fields are read)
//   - SuperSpeed endpoint companions, HID and other descriptors this does not need (skipped)
// What it rejects, each with a line in Configuration::problems: bLength below 2 or past the end
// (the walk stops there), a descriptor shorter than its type, a duplicate alt setting, endpoints
// or functional descriptors outside any interface, wTotalLength that disagrees with the bytes.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace wwan::usb {

using Bytes = std::span<const std::uint8_t>;

// What one interface is, in `wwan-dp list` vocabulary (the JSON "function" strings, to_string).
enum class Function : std::uint8_t {
  Ncm,          // "ncm": CDC NCM communication interface (02/0d)
  HuaweiNcm,    // "huawei-ncm": Huawei vendor-class NCM: vendor 12d1, ff/xx/16|46|76 with a bulk
                //   pair reachable (kernel binds ff/02|03; ff/06/16 is the ME909s-821 it does not)
  Mbim,         // "mbim": MBIM communication interface (02/0e)
  Rndis,        // "rndis": RNDIS control (02/02/ff, e0/01/03 or ef/04/01)
  CdcData,      // "cdc-data": the data interface (0a/xx/xx, or the Union's vendor-class data
                //   interface) of an NCM, MBIM or RNDIS function
  Qmi,          // "qmi": Qualcomm QMI / rmnet vendor network interface (known by the quirk table)
  At,           // "at": AT command port (vendor serial known to the quirk table, or CDC ACM 02/02/01-06)
  Modem,        // "modem": the PPP/modem port
  Diag,         // "diag": Qualcomm DIAG
  Nmea,         // "nmea": GPS NMEA port
  Adb,          // "adb": Android debug bridge (ff/42/01)
  Qdl,          // "qdl": Qualcomm download mode (QDL/EDL/Sahara)
  MassStorage,  // "mass-storage": class 08 (08/06/50 on sticks waiting for modeswitch, SD, CD-ROM)
  Other,        // "other"
};
const char* to_string(Function f);

// What mode the whole device is in (the JSON "mode" strings, to_string).
enum class ModemMode : std::uint8_t {
  Ncm,          // "ncm"
  HuaweiNcm,    // "huawei-ncm"
  Mbim,         // "mbim"
  Rndis,        // "rndis"
  Qmi,          // "qmi"
  MassStorage,  // "mass-storage"
  Qdl,          // "qdl"
  SerialOnly,   // "serial-only"
  NotAModem,    // "not-a-modem": keyboards, hubs, disks of other vendors: `wwan-dp list` skips these
};
const char* to_string(ModemMode m);

// ---- descriptor constants (USB 2.0 Table 9-5, CDC 1.2 Table 12/13) ----------------------------
inline constexpr std::uint8_t kDescriptorDevice = 0x01;
inline constexpr std::uint8_t kDescriptorConfiguration = 0x02;
inline constexpr std::uint8_t kDescriptorInterface = 0x04;
inline constexpr std::uint8_t kDescriptorEndpoint = 0x05;
inline constexpr std::uint8_t kDescriptorInterfaceAssociation = 0x0B;
inline constexpr std::uint8_t kDescriptorCsInterface = 0x24;
inline constexpr std::uint8_t kCdcHeaderSubtype = 0x00;
inline constexpr std::uint8_t kCdcUnionSubtype = 0x06;
inline constexpr std::uint8_t kCdcEthernetSubtype = 0x0F;
inline constexpr std::uint8_t kCdcNcmSubtype = 0x1A;
inline constexpr std::uint8_t kCdcMbimSubtype = 0x1B;
inline constexpr std::uint8_t kCdcMbimExtendedSubtype = 0x1C;
// Sizes in bytes: the minimum bLength each descriptor needs for the fields read here.
inline constexpr std::size_t kDeviceDescriptorSize = 18;
inline constexpr std::size_t kConfigurationHeaderSize = 9;
inline constexpr std::size_t kInterfaceDescriptorSize = 9;
inline constexpr std::size_t kEndpointDescriptorSize = 7;
inline constexpr std::size_t kInterfaceAssociationSize = 8;
inline constexpr std::size_t kCdcHeaderSize = 5;         // CDC 1.2 Table 15
inline constexpr std::size_t kCdcUnionMinSize = 5;       // CDC 1.2 Table 16: control + >= 1 subordinate
inline constexpr std::size_t kCdcEthernetSize = 13;      // ECM 1.2 Table 3
inline constexpr std::size_t kCdcNcmSize = 6;            // NCM 1.0 Table 5-2
inline constexpr std::size_t kCdcMbimSize = 12;          // MBIM 1.0 Table 6-3
inline constexpr std::size_t kCdcMbimExtendedSize = 8;   // MBIM 1.0 errata Table 6-4
// At most this many problems are listed; one more line counts the rest.
inline constexpr std::size_t kMaxProblems = 32;

struct Endpoint {
  std::uint8_t address = 0;     // bEndpointAddress (bit 7 = IN)
  std::uint8_t attributes = 0;  // bmAttributes (bits 0-1: 0 control, 1 iso, 2 bulk, 3 interrupt)
  std::uint16_t max_packet_size = 0;  // wMaxPacketSize bits 0-10, bytes (high-bandwidth bits dropped)
  std::uint8_t interval = 0;    // bInterval
  bool is_in() const { return (address & 0x80) != 0; }
  bool is_bulk() const { return (attributes & 3) == 2; }
  bool is_interrupt() const { return (attributes & 3) == 3; }
};

// CDC NCM 1.0 Table 5-2.
struct NcmFunctionalDescriptor {
  std::uint16_t bcd_ncm_version = 0;
  std::uint8_t network_capabilities = 0;  // bmNetworkCapabilities (bit 5: 8-byte SET_NTB_INPUT_SIZE)
  bool operator==(const NcmFunctionalDescriptor&) const = default;
};
// CDC ECM 1.2 Table 3 (also required by NCM).
struct EthernetFunctionalDescriptor {
  std::uint8_t mac_address_string_index = 0;  // iMACAddress: a string of 12 hex digits (parse_mac_string)
  std::uint32_t ethernet_statistics = 0;      // bmEthernetStatistics
  std::uint16_t max_segment_size = 0;         // wMaxSegmentSize, bytes
  std::uint16_t number_mc_filters = 0;        // wNumberMCFilters (bit 15: imperfect filtering)
  std::uint8_t number_power_filters = 0;      // bNumberPowerFilters
  bool operator==(const EthernetFunctionalDescriptor&) const = default;
};
// MBIM 1.0 Table 6-3.
struct MbimFunctionalDescriptor {
  std::uint16_t bcd_mbim_version = 0;
  std::uint16_t max_control_message = 0;  // wMaxControlMessage, bytes
  std::uint8_t number_filters = 0;
  std::uint8_t max_filter_size = 0;       // bytes
  std::uint16_t max_segment_size = 0;     // wMaxSegmentSize, bytes
  std::uint8_t network_capabilities = 0;
  bool operator==(const MbimFunctionalDescriptor&) const = default;
};
// MBIM 1.0 errata Table 6-4.
struct MbimExtendedFunctionalDescriptor {
  std::uint16_t bcd_mbim_extended_version = 0;
  std::uint8_t max_outstanding_command_messages = 0;
  std::uint16_t mtu = 0;  // wMTU, bytes
  bool operator==(const MbimExtendedFunctionalDescriptor&) const = default;
};

struct AltSetting {
  std::uint8_t alternate = 0;  // bAlternateSetting
  std::uint8_t interface_class = 0, interface_subclass = 0, interface_protocol = 0;
  std::uint8_t interface_string_index = 0;  // iInterface
  std::vector<Endpoint> endpoints;
  // Both a bulk IN and a bulk OUT endpoint with a nonzero wMaxPacketSize (the kernel ignores
  // endpoints of size 0, anchors §1.5 step 7).
  bool has_bulk_pair() const;
};

struct Interface {
  std::uint8_t number = 0;          // bInterfaceNumber: never assume 0 (Sierra MBIM is 12/13)
  std::vector<AltSetting> alt_settings;  // in descriptor order
  Function function = Function::Other;
  std::uint8_t function_alt_setting = 0;  // the bAlternateSetting whose triple gave `function`
                                          // (1 for the MBIM half of an NCM/MBIM function)
  // From the CDC functional descriptors that follow this interface's alt settings. When an alt
  // setting repeats one (Header and Union in both halves of an NCM/MBIM function) the first is kept.
  std::optional<std::uint16_t> bcd_cdc;            // Header bcdCDC
  std::optional<std::uint8_t> union_control;       // Union bControlInterface (usually == number)
  std::vector<std::uint8_t> union_subordinates;    // Union bSubordinateInterface0..n
  std::optional<NcmFunctionalDescriptor> ncm;
  std::optional<EthernetFunctionalDescriptor> ethernet;
  std::optional<MbimFunctionalDescriptor> mbim;
  std::optional<MbimExtendedFunctionalDescriptor> mbim_extended;
  // For a network interface (ncm, huawei-ncm, mbim, rndis, qmi): its data interface, from the
  // Union, else the IAD (first + 1), else itself when control and data share one interface
  // (Huawei ff/03/16: alt 1 adds bulk; QMI ff/ff/ff).
  std::optional<std::uint8_t> data_interface;
  // The alt setting of data_interface to select: the first with a bulk IN/OUT pair, except that
  // an NCM/MBIM function's data interface picks the one of its protocol (01 NCM, 02 MBIM).
  std::optional<std::uint8_t> data_alt_setting;

  const AltSetting* alt(std::uint8_t alternate) const;  // nullptr if absent
};

struct InterfaceAssociation {  // IAD (USB ECN)
  std::uint8_t first_interface = 0, interface_count = 0;
  std::uint8_t function_class = 0, function_subclass = 0, function_protocol = 0;
  std::uint8_t function_string_index = 0;  // iFunction
  bool contains(std::uint8_t interface_number) const {
    return interface_number >= first_interface && interface_number - first_interface < interface_count;
  }
};

struct Configuration {
  std::uint8_t value = 0;  // bConfigurationValue
  std::uint8_t attributes = 0;
  std::uint8_t max_power_2ma = 0;  // bMaxPower, in 2 mA units (8 mA units when SuperSpeed)
  std::uint8_t configuration_string_index = 0;  // iConfiguration
  std::uint16_t total_length = 0;               // wTotalLength as the device claimed it, bytes
  std::uint8_t declared_interfaces = 0;         // bNumInterfaces as the device claimed it
  std::vector<Interface> interfaces;  // ordered by bInterfaceNumber, one entry per number
  std::vector<InterfaceAssociation> associations;
  std::vector<std::string> problems;  // descriptors that lied and were skipped, for `list --verbose`

  const Interface* interface(std::uint8_t number) const;  // nullptr if absent
};

struct DeviceDescriptor {
  std::uint16_t bcd_usb = 0;
  std::uint8_t device_class = 0, device_subclass = 0, device_protocol = 0;
  std::uint8_t max_packet_size0 = 0;
  std::uint16_t vendor_id = 0, product_id = 0, bcd_device = 0;
  std::uint8_t manufacturer_index = 0, product_index = 0, serial_index = 0;
  std::uint8_t num_configurations = 0;
};

// The 18-byte device descriptor (USB 2.0 Table 9-8). nullopt when shorter than 18 bytes, when
// bLength is below 18 or when bDescriptorType is not DEVICE.
std::optional<DeviceDescriptor> parse_device_descriptor(Bytes raw);

// Parses one whole configuration (9-byte header + wTotalLength bytes) and classifies every
// interface. nullopt only when the header itself is unusable (fewer than 9 bytes, bLength below 9,
// not a CONFIGURATION descriptor); bad inner descriptors are skipped and listed in `problems`.
// Bytes after wTotalLength are ignored (a read buffer may be larger than the configuration).
// `vendor_id`/`product_id` drive the vendor rules (Huawei's protocol bytes, the quirk table's
// serial-port maps, QDL ids).
std::optional<Configuration> parse_configuration(Bytes raw, std::uint16_t vendor_id, std::uint16_t product_id);

// Every configuration in `raw`, back to back, each wTotalLength long: the layout of sysfs
// `descriptors` after its 18-byte device descriptor (Documentation/ABI/stable/sysfs-bus-usb).
// Stops at the first unusable header, or after a configuration whose wTotalLength is below 9
// (its end cannot be known); what was parsed before is returned.
std::vector<Configuration> parse_configurations(Bytes raw, std::uint16_t vendor_id, std::uint16_t product_id);

// The mode of a device, from its active configuration (and its VID:PID for QDL / mass storage /
// serial-only). Precedence, first match wins:
//   mbim > huawei-ncm > ncm > rndis > qmi > qdl > serial-only / mass-storage > not-a-modem
//   - MBIM first: an NCM/MBIM function (MBIM 1.0 §3.2) offers both and the kernel prefers MBIM
//     (prefer_mbim; Sierra EM7345's NCM does not work, anchors §1.3).
//   - Huawei NCM before CDC NCM: its interface carries the embedded AT channel that dials.
//   - the drivable modes before the ones wwan-dp cannot drive yet (rndis, qmi).
//   - qdl: the VID:PID is a download-mode id (05c6:9008 EDL, 1199:907a EM74xx QDL), whatever the
//     interfaces look like.
//   - serial-only: at least one at/modem/diag/nmea port and a modem vendor (adb alone is not a
//     modem; a CDC ACM gadget of another vendor is not either).
//   - mass-storage: every interface is class 08 and the vendor makes modems (a stick waiting for
//     modeswitch); a disk of another vendor is not-a-modem.
// Network modes (ncm, mbim, rndis) do not look at the vendor: any such function is reported.
ModemMode classify_mode(std::uint16_t vendor_id, std::uint16_t product_id, const Configuration& active);

// Whether wwan-dp can drive a device in this mode today.
bool is_drivable(ModemMode mode);

// Whether `vendor_id` is in the table of vendors whose mass-storage or serial-only devices are
// taken for modems (modems, module makers and the OEMs that rebadge them).
bool is_modem_vendor(std::uint16_t vendor_id);

// Whether VID:PID is a Qualcomm download-mode (QDL/EDL) id.
bool is_download_mode_id(std::uint16_t vendor_id, std::uint16_t product_id);

// The iMACAddress string (ECM 1.2 §5.4: 12 hex digits, most significant byte first, e.g.
// "001E101F0000") as six bytes. nullopt unless exactly 12 hex digits.
std::optional<std::array<std::uint8_t, 6>> parse_mac_string(std::string_view text);

}  // namespace wwan::usb
