// USB descriptor parser and classifier tests. The devices are the real ones of
// ../shared/reference/vectors/usb_descriptors.md (D1-D9), encoded as raw configuration bytes:
//   - where the source is an lsusb -v dump (D2, D3) the bytes are written out field by field here,
//     with the functional descriptors verbatim from lsusb's raw bytes;
//   - where the source is usb-devices or a table (D1, D4-D8) they are built with ConfigBuilder, a
//     dumb writer that knows USB 2.0 §9.6 layouts and nothing of the parser. Every value the
//     source does not give is marked "assumed" where it is chosen.
// Synthetic configurations (keyboard, hub, QDL, Union-less NCM) say what they follow.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <fstream>
#include <iterator>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "usb/descriptors.hpp"
#include "usb/network_function.hpp"
#include "usb/serial_port.hpp"

namespace wwan::usb {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using Raw = std::vector<std::uint8_t>;

// ---- a dumb configuration writer --------------------------------------------------------------
// Fills in wTotalLength, bNumInterfaces (distinct interface numbers) and each interface's
// bNumEndpoints (endpoints written after it) when build() is called.
class ConfigBuilder {
 public:
  explicit ConfigBuilder(std::uint8_t value = 1, std::uint8_t attributes = 0x80, std::uint8_t max_power = 250,
                         std::uint8_t configuration_string = 0)
      : b_{9, 0x02, 0, 0, 0, value, configuration_string, attributes, max_power} {}

  ConfigBuilder& iad(std::uint8_t first, std::uint8_t count, std::uint8_t c, std::uint8_t s, std::uint8_t p,
                     std::uint8_t function_string = 0) {
    return bytes({8, 0x0B, first, count, c, s, p, function_string});
  }
  ConfigBuilder& interface(std::uint8_t number, std::uint8_t alt, std::uint8_t c, std::uint8_t s, std::uint8_t p,
                           std::uint8_t interface_string = 0) {
    last_interface_ = b_.size();
    numbers_.insert(number);
    return bytes({9, 0x04, number, alt, 0, c, s, p, interface_string});
  }
  ConfigBuilder& endpoint(std::uint8_t address, std::uint8_t attributes, std::uint16_t max_packet,
                          std::uint8_t interval) {
    ++b_.at(last_interface_ + 4);
    return bytes({7, 0x05, address, attributes, lo(max_packet), hi(max_packet), interval});
  }
  ConfigBuilder& bulk_in(std::uint8_t address, std::uint16_t max_packet = 512) {
    return endpoint(address, 0x02, max_packet, 0);
  }
  ConfigBuilder& bulk_out(std::uint8_t address, std::uint16_t max_packet = 512) {
    return endpoint(address, 0x02, max_packet, 0);
  }
  ConfigBuilder& interrupt_in(std::uint8_t address, std::uint16_t max_packet, std::uint8_t interval) {
    return endpoint(address, 0x03, max_packet, interval);
  }
  // USB 3.2 §9.6.7 SuperSpeed Endpoint Companion: bMaxBurst, bmAttributes, wBytesPerInterval.
  ConfigBuilder& ss_companion(std::uint8_t max_burst, std::uint16_t bytes_per_interval = 0) {
    return bytes({6, 0x30, max_burst, 0, lo(bytes_per_interval), hi(bytes_per_interval)});
  }
  ConfigBuilder& bytes(const Raw& v) {
    b_.insert(b_.end(), v.begin(), v.end());
    return *this;
  }
  Raw build() const {
    Raw out = b_;
    out[2] = lo(static_cast<std::uint16_t>(out.size()));
    out[3] = hi(static_cast<std::uint16_t>(out.size()));
    out[4] = static_cast<std::uint8_t>(numbers_.size());
    return out;
  }

  static std::uint8_t lo(std::uint16_t v) { return static_cast<std::uint8_t>(v & 0xFF); }
  static std::uint8_t hi(std::uint16_t v) { return static_cast<std::uint8_t>(v >> 8); }

 private:
  Raw b_;
  std::set<std::uint8_t> numbers_;
  std::size_t last_interface_ = 0;
};

// CDC functional descriptors (CS_INTERFACE 0x24), laid out per CDC 1.2 / NCM 1.0 / MBIM 1.0.
Raw header_fd() { return {0x05, 0x24, 0x00, 0x10, 0x01}; }  // bcdCDC 1.10
Raw union_fd(std::uint8_t control, std::uint8_t subordinate) { return {0x05, 0x24, 0x06, control, subordinate}; }
Raw mbim_fd(std::uint16_t max_control, std::uint8_t filters, std::uint8_t filter_size, std::uint16_t segment,
            std::uint8_t caps) {
  return {0x0C, 0x24, 0x1B, 0x00, 0x01, ConfigBuilder::lo(max_control), ConfigBuilder::hi(max_control), filters,
          filter_size, ConfigBuilder::lo(segment), ConfigBuilder::hi(segment), caps};
}
Raw mbim_extended_fd(std::uint8_t outstanding, std::uint16_t mtu) {
  return {0x08, 0x24, 0x1C, 0x00, 0x01, outstanding, ConfigBuilder::lo(mtu), ConfigBuilder::hi(mtu)};
}
Raw ncm_fd(std::uint8_t caps) { return {0x06, 0x24, 0x1A, 0x00, 0x01, caps}; }
Raw ethernet_fd(std::uint8_t mac_string, std::uint16_t segment) {
  return {0x0D, 0x24, 0x0F, mac_string, 0, 0, 0, 0, ConfigBuilder::lo(segment), ConfigBuilder::hi(segment), 0, 0, 0};
}
// The ACM-style set Qualcomm serial ports carry (D7 raw bytes): Header, Call Management, ACM, Union.
Raw acm_style_fds() {
  return {0x05, 0x24, 0x00, 0x10, 0x01, 0x05, 0x24, 0x01, 0x00, 0x00,
          0x04, 0x24, 0x02, 0x02, 0x05, 0x24, 0x06, 0x00, 0x00};
}

Raw operator+(Raw a, const Raw& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// ---- helpers over the result --------------------------------------------------------------------

// Parses from an exactly-sized heap copy so that ASan flags any read past the end.
std::optional<Configuration> parse(const Raw& raw, std::uint16_t vid, std::uint16_t pid) {
  Raw exact(raw);
  exact.shrink_to_fit();
  return parse_configuration(Bytes(exact), vid, pid);
}

// "number:function" per interface, in order.
std::vector<std::string> functions(const Configuration& c) {
  std::vector<std::string> out;
  for (const Interface& i : c.interfaces) out.push_back(std::to_string(i.number) + ":" + to_string(i.function));
  return out;
}

const Interface& at(const Configuration& c, std::uint8_t number) {
  const Interface* i = c.interface(number);
  if (i == nullptr) {
    ADD_FAILURE() << "no interface " << int{number};
    static const Interface kEmpty;
    return kEmpty;
  }
  return *i;
}

// What must hold for any parse, whatever the bytes.
void check_invariants(const Configuration& c) {
  EXPECT_LE(c.problems.size(), kMaxProblems + 1);
  for (std::size_t i = 1; i < c.interfaces.size(); ++i) EXPECT_LT(c.interfaces[i - 1].number, c.interfaces[i].number);
  for (const Interface& i : c.interfaces) {
    EXPECT_FALSE(i.alt_settings.empty());
    std::set<std::uint8_t> alts;
    for (const AltSetting& a : i.alt_settings) EXPECT_TRUE(alts.insert(a.alternate).second);
    EXPECT_NE(i.alt(i.function_alt_setting), nullptr);
    if (i.data_interface) {
      const Interface* data = c.interface(*i.data_interface);
      ASSERT_NE(data, nullptr);
      if (i.data_alt_setting) {
        ASSERT_NE(data->alt(*i.data_alt_setting), nullptr);
        EXPECT_TRUE(data->alt(*i.data_alt_setting)->has_bulk_pair());
      }
    } else {
      EXPECT_FALSE(i.data_alt_setting);
    }
  }
}

// ================================ D2: Huawei 12d1:1506 ==========================================
// lsusb -vd 12d1:1506 (ubuntuforums 2015, usb_descriptors.md D2), vendor-class NCM with control
// and data in one interface. Standard descriptors field by field from lsusb's decode; functional
// descriptors verbatim from its raw bytes. Not in the source, assumed: iInterface 0 where no
// string is named, bInterval 0 for bulk endpoints, wMaxPacketSize 512 for the storage endpoints.
const Raw kHuawei1506 = {
    // Configuration: bLength 9, CONFIGURATION, wTotalLength 225, bNumInterfaces 6,
    // bConfigurationValue 1, iConfiguration 0, bmAttributes 0x80, bMaxPower 250 (500 mA)
    0x09, 0x02, 0xE1, 0x00, 0x06, 0x01, 0x00, 0x80, 0xFA,
    // Interface 0 alt 0, 3 endpoints, ff/03/01 (modem), iInterface 0
    0x09, 0x04, 0x00, 0x00, 0x03, 0xFF, 0x03, 0x01, 0x00,
    0x05, 0x24, 0x00, 0x10, 0x01,              // CDC Header, bcdCDC 1.10
    0x04, 0x24, 0x02, 0x02,                    // CDC ACM, bmCapabilities 0x02
    0x05, 0x24, 0x01, 0x00, 0x00,              // CDC Call Management
    0x05, 0x24, 0x06, 0x00, 0x00,              // CDC Union, master 0 slave 0
    0x07, 0x05, 0x83, 0x03, 0x40, 0x00, 0x05,  // EP 0x83 interrupt IN, 64 bytes, bInterval 5
    0x07, 0x05, 0x82, 0x02, 0x00, 0x02, 0x00,  // EP 0x82 bulk IN, 512 bytes
    0x07, 0x05, 0x02, 0x02, 0x00, 0x02, 0x00,  // EP 0x02 bulk OUT, 512 bytes
    // Interface 1 alt 0, 1 endpoint, ff/03/16 (Huawei NCM control)
    0x09, 0x04, 0x01, 0x00, 0x01, 0xFF, 0x03, 0x16, 0x00,
    0x05, 0x24, 0x00, 0x10, 0x01,              // CDC Header, bcdCDC 1.10
    0x06, 0x24, 0x1A, 0x00, 0x01, 0x1F,        // NCM: bcdNcmVersion 1.00, bmNetworkCapabilities 0x1F
    0x0D, 0x24, 0x0F, 0x07, 0x0F, 0x00, 0x00, 0x00, 0xEA, 0x05, 0x03, 0x00, 0x01,
    //                Ethernet: iMACAddress 7, bmEthernetStatistics 0x0000000F,
    //                wMaxSegmentSize 1514, wNumberMCFilters 3, bNumberPowerFilters 1
    0x05, 0x24, 0x06, 0x01, 0x01,              // CDC Union, master 1 slave 1 (itself)
    0x07, 0x05, 0x85, 0x03, 0x10, 0x00, 0x09,  // EP 0x85 interrupt IN, 16 bytes, bInterval 9
    // Interface 1 alt 1, 3 endpoints, ff/03/16, iInterface 6
    0x09, 0x04, 0x01, 0x01, 0x03, 0xFF, 0x03, 0x16, 0x06,
    0x07, 0x05, 0x85, 0x03, 0x10, 0x00, 0x09,  // EP 0x85 interrupt IN, 16 bytes, bInterval 9
    0x07, 0x05, 0x84, 0x02, 0x00, 0x02, 0x00,  // EP 0x84 bulk IN, 512 bytes
    0x07, 0x05, 0x03, 0x02, 0x00, 0x02, 0x00,  // EP 0x03 bulk OUT, 512 bytes
    // Interface 2 alt 0, 2 endpoints, ff/03/03
    0x09, 0x04, 0x02, 0x00, 0x02, 0xFF, 0x03, 0x03, 0x00,
    0x07, 0x05, 0x86, 0x02, 0x00, 0x02, 0x00,  // EP 0x86 bulk IN
    0x07, 0x05, 0x04, 0x02, 0x00, 0x02, 0x00,  // EP 0x04 bulk OUT
    // Interface 3 alt 0, 2 endpoints, ff/03/02
    0x09, 0x04, 0x03, 0x00, 0x02, 0xFF, 0x03, 0x02, 0x00,
    0x07, 0x05, 0x87, 0x02, 0x00, 0x02, 0x00,  // EP 0x87 bulk IN
    0x07, 0x05, 0x05, 0x02, 0x00, 0x02, 0x00,  // EP 0x05 bulk OUT
    // Interface 4 alt 0, 2 endpoints, 08/06/50 (mass storage)
    0x09, 0x04, 0x04, 0x00, 0x02, 0x08, 0x06, 0x50, 0x00,
    0x07, 0x05, 0x88, 0x02, 0x00, 0x02, 0x00,  // EP 0x88 bulk IN
    0x07, 0x05, 0x06, 0x02, 0x00, 0x02, 0x01,  // EP 0x06 bulk OUT, bInterval 1
    // Interface 5 alt 0, 2 endpoints, 08/06/50
    0x09, 0x04, 0x05, 0x00, 0x02, 0x08, 0x06, 0x50, 0x00,
    0x07, 0x05, 0x89, 0x02, 0x00, 0x02, 0x00,  // EP 0x89 bulk IN
    0x07, 0x05, 0x07, 0x02, 0x00, 0x02, 0x01,  // EP 0x07 bulk OUT, bInterval 1
};

// The device descriptor of the same dump: bcdUSB 2.00, class 02/00/00, bMaxPacketSize0 64,
// 12d1:1506, bcdDevice 1.02, 1 configuration. String indices not in the source: 3/2/0 assumed.
const Raw kHuawei1506Device = {0x12, 0x01, 0x00, 0x02, 0x02, 0x00, 0x00, 0x40, 0xD1,
                               0x12, 0x06, 0x15, 0x02, 0x01, 0x03, 0x02, 0x00, 0x01};

TEST(DescriptorsHuawei1506, ParsesEveryDescriptorWithoutProblems) {
  const auto c = parse(kHuawei1506, 0x12D1, 0x1506);
  ASSERT_TRUE(c);
  EXPECT_THAT(c->problems, IsEmpty());
  EXPECT_EQ(c->total_length, kHuawei1506.size());
  EXPECT_EQ(c->declared_interfaces, 6);
  EXPECT_EQ(c->value, 1);
  EXPECT_EQ(c->attributes, 0x80);
  EXPECT_EQ(c->max_power_2ma, 250);
  ASSERT_EQ(c->interfaces.size(), 6u);
  const Interface& ncm = at(*c, 1);
  ASSERT_EQ(ncm.alt_settings.size(), 2u);
  EXPECT_EQ(ncm.alt_settings[0].endpoints.size(), 1u);
  ASSERT_EQ(ncm.alt_settings[1].endpoints.size(), 3u);
  EXPECT_EQ(ncm.alt_settings[1].interface_string_index, 6);
  const Endpoint& in = ncm.alt_settings[1].endpoints[1];
  EXPECT_EQ(in.address, 0x84);
  EXPECT_TRUE(in.is_bulk() && in.is_in());
  EXPECT_EQ(in.max_packet_size, 512);
  const Endpoint& irq = ncm.alt_settings[0].endpoints[0];
  EXPECT_TRUE(irq.is_interrupt() && irq.is_in());
  EXPECT_EQ(irq.max_packet_size, 16);
  EXPECT_EQ(irq.interval, 9);
}

TEST(DescriptorsHuawei1506, CombinedInterfaceIsHuaweiNcmWithItselfAsData) {
  const auto c = parse(kHuawei1506, 0x12D1, 0x1506);
  ASSERT_TRUE(c);
  const Interface& ncm = at(*c, 1);
  EXPECT_EQ(ncm.function, Function::HuaweiNcm);
  EXPECT_EQ(ncm.bcd_cdc, 0x0110);
  ASSERT_TRUE(ncm.ncm);
  EXPECT_EQ(ncm.ncm->bcd_ncm_version, 0x0100);
  EXPECT_EQ(ncm.ncm->network_capabilities, 0x1F);  // bit 2: encapsulated command = the AT channel
  ASSERT_TRUE(ncm.ethernet);
  EXPECT_EQ(ncm.ethernet->mac_address_string_index, 7);
  EXPECT_EQ(ncm.ethernet->ethernet_statistics, 0x0Fu);
  EXPECT_EQ(ncm.ethernet->max_segment_size, 1514);
  EXPECT_EQ(ncm.ethernet->number_mc_filters, 3);
  EXPECT_EQ(ncm.ethernet->number_power_filters, 1);
  EXPECT_EQ(ncm.union_control, 1);
  EXPECT_THAT(ncm.union_subordinates, ElementsAre(1));
  EXPECT_EQ(ncm.data_interface, 1);    // the Union names itself
  EXPECT_EQ(ncm.data_alt_setting, 1);  // alt 1 adds the bulk pair
  EXPECT_FALSE(ncm.mbim);
}

TEST(DescriptorsHuawei1506, SerialPortsAndModeFromTheProtocolBytes) {
  const auto c = parse(kHuawei1506, 0x12D1, 0x1506);
  ASSERT_TRUE(c);
  EXPECT_THAT(functions(*c), ElementsAre("0:modem", "1:huawei-ncm", "2:diag", "3:at", "4:mass-storage",
                                         "5:mass-storage"));
  EXPECT_EQ(at(*c, 0).union_control, 0);  // the modem port's own ACM-style Union is kept as is
  EXPECT_FALSE(at(*c, 0).data_interface);  // ... but serial ports get no data interface
  EXPECT_EQ(classify_mode(0x12D1, 0x1506, *c), ModemMode::HuaweiNcm);
  EXPECT_TRUE(is_drivable(ModemMode::HuaweiNcm));
  check_invariants(*c);
}

TEST(DescriptorsHuawei1506, TheHuaweiRulesNeedTheHuaweiVendorId) {
  const auto c = parse(kHuawei1506, 0x1234, 0x1506);
  ASSERT_TRUE(c);
  EXPECT_THAT(functions(*c), ElementsAre("0:other", "1:other", "2:other", "3:other", "4:mass-storage",
                                         "5:mass-storage"));
  EXPECT_FALSE(at(*c, 1).data_interface);
  EXPECT_EQ(classify_mode(0x1234, 0x1506, *c), ModemMode::NotAModem);
}

// Splits a configuration into the header and one block per interface descriptor (with what
// follows it), by bLength: a test-side walk over bytes known to be well formed.
std::vector<Raw> interface_blocks(const Raw& cfg) {
  std::vector<Raw> blocks{Raw(cfg.begin(), cfg.begin() + 9)};
  for (std::size_t off = 9; off < cfg.size(); off += cfg[off]) {
    if (cfg[off + 1] == 0x04) blocks.emplace_back();
    blocks.back().insert(blocks.back().end(), cfg.begin() + static_cast<std::ptrdiff_t>(off),
                         cfg.begin() + static_cast<std::ptrdiff_t>(off + cfg[off]));
  }
  return blocks;
}

TEST(DescriptorsHuawei1506, AltSettingsInterleavedWithOtherInterfacesAreGrouped) {
  // Raw order: header, if0, if1/0, if1/1, if2, if3, if4, if5. Move if1/1 behind if5 and if0 last.
  const std::vector<Raw> b = interface_blocks(kHuawei1506);
  ASSERT_EQ(b.size(), 8u);
  const Raw shuffled = b[0] + b[2] + b[4] + b[5] + b[6] + b[7] + b[3] + b[1];
  ASSERT_EQ(shuffled.size(), kHuawei1506.size());
  const auto c = parse(shuffled, 0x12D1, 0x1506);
  ASSERT_TRUE(c);
  EXPECT_THAT(c->problems, IsEmpty());
  EXPECT_THAT(functions(*c), ElementsAre("0:modem", "1:huawei-ncm", "2:diag", "3:at", "4:mass-storage",
                                         "5:mass-storage"));
  const Interface& ncm = at(*c, 1);
  ASSERT_EQ(ncm.alt_settings.size(), 2u);
  EXPECT_EQ(ncm.alt_settings[1].endpoints.size(), 3u);
  EXPECT_EQ(ncm.data_alt_setting, 1);
  EXPECT_EQ(ncm.ncm->network_capabilities, 0x1F);
}

TEST(DescriptorsDevice, Huawei1506DeviceDescriptor) {
  const auto d = parse_device_descriptor(kHuawei1506Device);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->bcd_usb, 0x0200);
  EXPECT_EQ(d->device_class, 0x02);
  EXPECT_EQ(d->max_packet_size0, 64);
  EXPECT_EQ(d->vendor_id, 0x12D1);
  EXPECT_EQ(d->product_id, 0x1506);
  EXPECT_EQ(d->bcd_device, 0x0102);
  EXPECT_EQ(d->manufacturer_index, 3);
  EXPECT_EQ(d->product_index, 2);
  EXPECT_EQ(d->serial_index, 0);
  EXPECT_EQ(d->num_configurations, 1);
}

TEST(DescriptorsDevice, RejectsShortWrongTypeAndShortBLength) {
  EXPECT_FALSE(parse_device_descriptor(Bytes(kHuawei1506Device).first(17)));
  EXPECT_FALSE(parse_device_descriptor(Bytes{}));
  Raw wrong_type = kHuawei1506Device;
  wrong_type[1] = 0x02;
  EXPECT_FALSE(parse_device_descriptor(wrong_type));
  Raw short_length = kHuawei1506Device;
  short_length[0] = 17;
  EXPECT_FALSE(parse_device_descriptor(short_length));
  Raw longer = kHuawei1506Device;  // a longer buffer (a whole sysfs `descriptors` file) is fine
  longer.insert(longer.end(), kHuawei1506.begin(), kHuawei1506.end());
  EXPECT_TRUE(parse_device_descriptor(longer));
}

// ================================ D3: Huawei 12d1:1446 ==========================================
// Same dump, before the switch: configuration 1 is a ZeroCD (wTotalLength 32), configuration 2 is
// MBIM (wTotalLength 110). lsusb decoded configuration 2's FDs; the MBIM FD bytes are D3's
// reconstruction. Assumed: bmAttributes 0x80 and bMaxPower 250 for both, bulk bInterval 0.
const Raw kHuawei1446Config1 = {
    0x09, 0x02, 0x20, 0x00, 0x01, 0x01, 0x00, 0x80, 0xFA,  // wTotalLength 32, 1 interface, value 1
    0x09, 0x04, 0x00, 0x00, 0x02, 0x08, 0x06, 0x50, 0x00,  // interface 0, 2 EPs, 08/06/50
    0x07, 0x05, 0x81, 0x02, 0x00, 0x02, 0x00,              // EP 0x81 bulk IN 512
    0x07, 0x05, 0x01, 0x02, 0x00, 0x02, 0x00,              // EP 0x01 bulk OUT 512
};
const Raw kHuawei1446Config2 = {
    0x09, 0x02, 0x6E, 0x00, 0x03, 0x02, 0x00, 0x80, 0xFA,  // wTotalLength 110, 3 interfaces, value 2
    0x08, 0x0B, 0x00, 0x02, 0x02, 0x0E, 0x00, 0x08,        // IAD: first 0, count 2, 02/0e/00, iFunction 8
    0x09, 0x04, 0x00, 0x00, 0x01, 0x02, 0x0E, 0x00, 0x05,  // interface 0 alt 0, 1 EP, 02/0e/00, iInterface 5
    0x05, 0x24, 0x00, 0x10, 0x01,                          // CDC Header, bcdCDC 1.10
    0x0C, 0x24, 0x1B, 0x00, 0x01, 0x00, 0x04, 0x10, 0x14, 0xDC, 0x05, 0x20,
    //                MBIM: bcdMBIMVersion 1.00, wMaxControlMessage 1024, bNumberFilters 16,
    //                bMaxFilterSize 20, wMaxSegmentSize 1500, bmNetworkCapabilities 0x20
    0x05, 0x24, 0x06, 0x00, 0x01,                          // CDC Union, master 0 slave 1
    0x07, 0x05, 0x82, 0x03, 0x10, 0x00, 0x09,              // EP 0x82 interrupt IN, 16 bytes, bInterval 9
    0x09, 0x04, 0x01, 0x00, 0x00, 0x0A, 0x00, 0x02, 0x00,  // interface 1 alt 0, 0 EPs, 0a/00/02
    0x09, 0x04, 0x01, 0x01, 0x02, 0x0A, 0x00, 0x02, 0x00,  // interface 1 alt 1, 2 EPs, 0a/00/02
    0x07, 0x05, 0x81, 0x02, 0x00, 0x02, 0x00,              // EP 0x81 bulk IN 512
    0x07, 0x05, 0x01, 0x02, 0x00, 0x02, 0x00,              // EP 0x01 bulk OUT 512
    0x09, 0x04, 0x02, 0x00, 0x02, 0x08, 0x06, 0x50, 0x00,  // interface 2, 2 EPs, 08/06/50
    0x07, 0x05, 0x83, 0x02, 0x00, 0x02, 0x00,              // EP 0x83 bulk IN 512
    0x07, 0x05, 0x02, 0x02, 0x00, 0x02, 0x00,              // EP 0x02 bulk OUT 512
};

TEST(DescriptorsHuawei1446, Configuration2IsMbimWithItsFunctionalDescriptor) {
  const auto c = parse(kHuawei1446Config2, 0x12D1, 0x1446);
  ASSERT_TRUE(c);
  EXPECT_THAT(c->problems, IsEmpty());
  EXPECT_EQ(c->value, 2);
  EXPECT_THAT(functions(*c), ElementsAre("0:mbim", "1:cdc-data", "2:mass-storage"));
  const Interface& mbim = at(*c, 0);
  ASSERT_TRUE(mbim.mbim);
  EXPECT_EQ(mbim.mbim->bcd_mbim_version, 0x0100);
  EXPECT_EQ(mbim.mbim->max_control_message, 1024);
  EXPECT_EQ(mbim.mbim->number_filters, 16);
  EXPECT_EQ(mbim.mbim->max_filter_size, 20);
  EXPECT_EQ(mbim.mbim->max_segment_size, 1500);
  EXPECT_EQ(mbim.mbim->network_capabilities, 0x20);
  EXPECT_FALSE(mbim.mbim_extended);
  EXPECT_EQ(mbim.data_interface, 1);
  EXPECT_EQ(mbim.data_alt_setting, 1);
  ASSERT_EQ(c->associations.size(), 1u);
  const InterfaceAssociation& iad = c->associations[0];
  EXPECT_EQ(iad.first_interface, 0);
  EXPECT_EQ(iad.interface_count, 2);
  EXPECT_EQ(iad.function_class, 0x02);
  EXPECT_EQ(iad.function_subclass, 0x0E);
  EXPECT_EQ(iad.function_string_index, 8);
  EXPECT_EQ(at(*c, 0).alt_settings[0].interface_string_index, 5);
  EXPECT_EQ(classify_mode(0x12D1, 0x1446, *c), ModemMode::Mbim);
  EXPECT_TRUE(is_drivable(ModemMode::Mbim));
}

TEST(DescriptorsHuawei1446, Configuration1IsAStickWaitingForModeswitch) {
  const auto c = parse(kHuawei1446Config1, 0x12D1, 0x1446);
  ASSERT_TRUE(c);
  EXPECT_THAT(c->problems, IsEmpty());
  EXPECT_THAT(functions(*c), ElementsAre("0:mass-storage"));
  EXPECT_EQ(classify_mode(0x12D1, 0x1446, *c), ModemMode::MassStorage);
  EXPECT_FALSE(is_drivable(ModemMode::MassStorage));
}

TEST(DescriptorsHuawei1446, EveryConfigurationOfTheSysfsLayout) {
  const auto all = parse_configurations(kHuawei1446Config1 + kHuawei1446Config2, 0x12D1, 0x1446);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].value, 1);
  EXPECT_EQ(classify_mode(0x12D1, 0x1446, all[0]), ModemMode::MassStorage);
  EXPECT_EQ(all[1].value, 2);
  EXPECT_EQ(classify_mode(0x12D1, 0x1446, all[1]), ModemMode::Mbim);
  EXPECT_THAT(all[1].problems, IsEmpty());
}

TEST(DescriptorsHuawei1446, ParseConfigurationsStopsWhereTheNextStartCannotBeKnown) {
  Raw zero_total = kHuawei1446Config1;
  zero_total[2] = zero_total[3] = 0;  // wTotalLength 0
  const auto all = parse_configurations(zero_total + kHuawei1446Config2, 0x12D1, 0x1446);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_THAT(all[0].problems, Contains(HasSubstr("wTotalLength 0")));
  EXPECT_THAT(parse_configurations(Raw{0x09, 0x02}, 0x12D1, 0x1446), IsEmpty());
  // A trailing partial configuration ends the list; what came before is returned.
  const auto two = parse_configurations(kHuawei1446Config1 + Raw{0x09, 0x02, 0x6E}, 0x12D1, 0x1446);
  EXPECT_EQ(two.size(), 1u);
}

// ================================ 12d1:1f01, a ZeroCD stick ======================================
// usb_modeswitch_huawei.md M1: "Use interface number 0 with class 8 / Use endpoints 0x01 (out) and
// 0x81 (in)" on an E3372h at 12d1:1f01. Assumed: 512-byte endpoints, subclass 06 protocol 50.
Raw huawei_1f01() {
  return ConfigBuilder(1, 0x80, 250).interface(0, 0, 0x08, 0x06, 0x50).bulk_in(0x81).bulk_out(0x01).build();
}

TEST(DescriptorsMassStorage, HuaweiZeroCdIsMassStorageMode) {
  const auto c = parse(huawei_1f01(), 0x12D1, 0x1F01);
  ASSERT_TRUE(c);
  EXPECT_THAT(functions(*c), ElementsAre("0:mass-storage"));
  EXPECT_EQ(classify_mode(0x12D1, 0x1F01, *c), ModemMode::MassStorage);
}

TEST(DescriptorsMassStorage, ADiskOfAnotherVendorIsNotAModem) {
  const auto c = parse(huawei_1f01(), 0x0781, 0x5567);  // a SanDisk flash drive id
  ASSERT_TRUE(c);
  EXPECT_EQ(classify_mode(0x0781, 0x5567, *c), ModemMode::NotAModem);
}

// ================================ D4: Huawei ME906s 12d1:15c1 ===================================
// usb-devices, configuration 3 (MBIM). The source prints interfaces only; cdc_mbim bound it, which
// needs an MBIM FD and a Union or IAD, so Header + Union 0->1 + an MBIM FD (D3's values) are
// assumed, as are endpoint addresses and data alt 0 without endpoints.
Raw huawei_me906s_config3() {
  return ConfigBuilder(3, 0xA0, 1)  // Cfg#=3 Atr=a0 MxPwr=2mA
      .interface(0, 0, 0x02, 0x0E, 0x00)
      .bytes(header_fd() + union_fd(0, 1) + mbim_fd(1024, 16, 20, 1500, 0x20))
      .interrupt_in(0x82, 16, 9)
      .interface(1, 0, 0x0A, 0x00, 0x02)
      .interface(1, 1, 0x0A, 0x00, 0x02)
      .bulk_in(0x81)
      .bulk_out(0x01)
      .interface(2, 0, 0xFF, 0x06, 0x14)
      .bulk_in(0x83)
      .bulk_out(0x02)
      .build();
}

TEST(DescriptorsHuaweiMe906s, Configuration3IsMbimWithAGpsPort) {
  const auto c = parse(huawei_me906s_config3(), 0x12D1, 0x15C1);
  ASSERT_TRUE(c);
  EXPECT_THAT(c->problems, IsEmpty());
  EXPECT_EQ(c->value, 3);
  // ff/06/14: ModemManager tags it GPS ("GPS NMEA port on MU906e"); D4's user saw it used for AT.
  EXPECT_THAT(functions(*c), ElementsAre("0:mbim", "1:cdc-data", "2:nmea"));
  EXPECT_EQ(at(*c, 0).data_interface, 1);
  EXPECT_EQ(classify_mode(0x12D1, 0x15C1, *c), ModemMode::Mbim);
}

// ================================ ME909s-821 12d1:15c1, ff/06/16 ================================
// anchors.md §2.1 (gl-inet thread): interface 3 ff/06/16, alt 0 interrupt EP 0x86, alt 1
// interrupt + bulk 0x85/0x04. The other interfaces are not in the source and are left out, which
// also keeps the NCM function away from interface 0. Assumed: packet sizes, bInterval.
Raw huawei_me909s_821() {
  return ConfigBuilder(1, 0xA0, 250)
      .interface(3, 0, 0xFF, 0x06, 0x16)
      .interrupt_in(0x86, 16, 9)
      .interface(3, 1, 0xFF, 0x06, 0x16)
      .interrupt_in(0x86, 16, 9)
      .bulk_in(0x85)
      .bulk_out(0x04)
      .build();
}

TEST(DescriptorsHuaweiMe909s, Ff0616TheKernelDoesNotBindIsHuaweiNcm) {
  const auto c = parse(huawei_me909s_821(), 0x12D1, 0x15C1);
  ASSERT_TRUE(c);
  EXPECT_THAT(c->problems, IsEmpty());
  EXPECT_THAT(functions(*c), ElementsAre("3:huawei-ncm"));
  EXPECT_EQ(at(*c, 3).data_interface, 3);
  EXPECT_EQ(at(*c, 3).data_alt_setting, 1);
  EXPECT_EQ(classify_mode(0x12D1, 0x15C1, *c), ModemMode::HuaweiNcm);
}

TEST(DescriptorsHuaweiMe909s, TheProtocolByteWithoutADataPathIsNotNcm) {
  const Raw no_bulk =
      ConfigBuilder().interface(3, 0, 0xFF, 0x06, 0x16).interrupt_in(0x86, 16, 9).build();
  const auto c = parse(no_bulk, 0x12D1, 0x15C1);
  ASSERT_TRUE(c);
  EXPECT_THAT(functions(*c), ElementsAre("3:other"));
  EXPECT_FALSE(at(*c, 3).data_interface);
  EXPECT_THAT(c->problems, ElementsAre(HasSubstr("Huawei NCM protocol byte but no bulk IN/OUT pair")));
  EXPECT_EQ(classify_mode(0x12D1, 0x15C1, *c), ModemMode::NotAModem);
}

TEST(DescriptorsHuaweiMe909s, HuaweiNcmProtocolBytes46And76AndSubclass02) {
  for (const std::uint8_t subclass : std::initializer_list<std::uint8_t>{0x02, 0x03, 0x06}) {
    for (const std::uint8_t protocol : std::initializer_list<std::uint8_t>{0x16, 0x46, 0x76}) {
      const Raw raw = ConfigBuilder()
                          .interface(0, 0, 0xFF, subclass, protocol)
                          .interrupt_in(0x81, 16, 9)
                          .interface(0, 1, 0xFF, subclass, protocol)
                          .interrupt_in(0x81, 16, 9)
                          .bulk_in(0x82)
                          .bulk_out(0x01)
                          .build();
      const auto c = parse(raw, 0x12D1, 0x1506);
      ASSERT_TRUE(c);
      EXPECT_EQ(at(*c, 0).function, Function::HuaweiNcm) << int{subclass} << "/" << int{protocol};
    }
  }
}

// ================================ D5/D6: Sierra MBIM on 12/13 ===================================
// usb-devices: EM7455 1199:9079 and Dell DW5809e (EM7305) 413c:81b1, MBIM-only, the function on
// interfaces 12/13 (D5's caveat: the script printed 0). cdc_mbim bound them, so Header, Union
// 12->13 and an MBIM FD are assumed (the FD with D8's "typical Qualcomm" values), as are endpoint
// addresses and data alt 0 without endpoints.
Raw sierra_mbim(std::uint8_t attributes) {
  return ConfigBuilder(1, attributes, 250)
      .interface(12, 0, 0x02, 0x0E, 0x00)
      .bytes(header_fd() + union_fd(12, 13) + mbim_fd(4096, 32, 128, 2048, 0x20))
      .interrupt_in(0x82, 64, 9)
      .interface(13, 0, 0x0A, 0x00, 0x02)
      .interface(13, 1, 0x0A, 0x00, 0x02)
      .bulk_in(0x81)
      .bulk_out(0x01)
      .build();
}

TEST(DescriptorsSierra, Em7455MbimOnInterfaces12And13) {
  const auto c = parse(sierra_mbim(0xA0), 0x1199, 0x9079);
  ASSERT_TRUE(c);
  EXPECT_THAT(c->problems, IsEmpty());
  EXPECT_THAT(functions(*c), ElementsAre("12:mbim", "13:cdc-data"));
  EXPECT_EQ(c->interfaces.front().number, 12);
  EXPECT_EQ(at(*c, 12).data_interface, 13);
  EXPECT_EQ(at(*c, 12).data_alt_setting, 1);
  EXPECT_EQ(classify_mode(0x1199, 0x9079, *c), ModemMode::Mbim);
}

TEST(DescriptorsSierra, Dw5809eEm7305MbimOnInterfaces12And13) {
  const auto c = parse(sierra_mbim(0xE0), 0x413C, 0x81B1);
  ASSERT_TRUE(c);
  EXPECT_THAT(functions(*c), ElementsAre("12:mbim", "13:cdc-data"));
  EXPECT_EQ(at(*c, 12).data_interface, 13);
  EXPECT_EQ(classify_mode(0x413C, 0x81B1, *c), ModemMode::Mbim);
}

// Synthetic, after qcserial's "Sierra Wireless layout" (0 DM/DIAG, 2 NMEA, 3 modem, 8 QMI/net)
// and qmi_wwan's QMI_FIXED_INTF(0x1199, 0x9079, 8): the QMI composition of the same module.
TEST(DescriptorsSierra, Em7455QmiCompositionFromTheQuirkTable) {
  ConfigBuilder b(1, 0xA0, 250);
  for (const std::uint8_t n : std::initializer_list<std::uint8_t>{0, 2, 3})
    b.interface(n, 0, 0xFF, 0xFF, 0xFF)
        .bulk_in(static_cast<std::uint8_t>(0x81 + n))
        .bulk_out(static_cast<std::uint8_t>(0x01 + n));
  b.interface(8, 0, 0xFF, 0xFF, 0xFF).interrupt_in(0x88, 8, 9).bulk_in(0x89).bulk_out(0x09);
  const auto c = parse(b.build(), 0x1199, 0x9079);
  ASSERT_TRUE(c);
  EXPECT_THAT(functions(*c), ElementsAre("0:diag", "2:nmea", "3:modem", "8:qmi"));
  EXPECT_EQ(at(*c, 8).data_interface, 8);
  EXPECT_EQ(classify_mode(0x1199, 0x9079, *c), ModemMode::Qmi);
  // The same ports on an id without rows are nothing in particular.
  EXPECT_EQ(classify_mode(0x1199, 0x68A3, *parse(b.build(), 0x1199, 0x68A3)), ModemMode::NotAModem);
}

// ================================ D7: Quectel RM500Q 2c7c:0800 ==================================
// lsusb -v in the kernel patch adding the RM500Q (QMI composition), built from the table. FDs of
// interfaces 1-3 are D7's raw bytes. Assumed: SuperSpeed companions' bMaxBurst 0 (except the
// source's 6 and 2 on interface 4), wBytesPerInterval, interrupt bInterval 9 on interface 4,
// iInterface indices. Total must come out at D7's wTotalLength 328.
Raw quectel_rm500q() {
  ConfigBuilder b(1, 0xA0, 28, 4);  // bMaxPower 28 = 224 mA in SuperSpeed's 8 mA units
  b.interface(0, 0, 0xFF, 0xFF, 0x30).bulk_in(0x81, 1024).ss_companion(0).bulk_out(0x01, 1024).ss_companion(0);
  const std::uint8_t irq[] = {0x83, 0x85, 0x87}, in[] = {0x82, 0x84, 0x86}, out[] = {0x02, 0x03, 0x04};
  for (std::uint8_t i = 0; i < 3; ++i) {
    b.interface(static_cast<std::uint8_t>(1 + i), 0, 0xFF, 0x00, 0x00)
        .bytes(acm_style_fds())
        .interrupt_in(irq[i], 10, 9)
        .ss_companion(0, 10)
        .bulk_in(in[i], 1024)
        .ss_companion(0)
        .bulk_out(out[i], 1024)
        .ss_companion(0);
  }
  b.interface(4, 0, 0xFF, 0xFF, 0xFF, 5)  // "CDEV Serial"
      .interrupt_in(0x88, 8, 9)
      .ss_companion(0, 8)
      .bulk_in(0x8E, 1024)
      .ss_companion(6)
      .bulk_out(0x0F, 1024)
      .ss_companion(2);
  b.interface(5, 0, 0xFF, 0x42, 0x01, 6).bulk_out(0x05, 1024).ss_companion(0).bulk_in(0x89, 1024).ss_companion(0);
  return b.build();
}

// D7's device descriptor: bcdUSB 3.20, class 0, bMaxPacketSize0 9, 2c7c:0800, bcdDevice 4.14,
// 1 configuration. String indices assumed 1/2/3.
const Raw kRm500qDevice = {0x12, 0x01, 0x20, 0x03, 0x00, 0x00, 0x00, 0x09, 0x7C,
                           0x2C, 0x00, 0x08, 0x14, 0x04, 0x01, 0x02, 0x03, 0x01};

TEST(DescriptorsQuectel, Rm500qQmiCompositionWithItsSerialPorts) {
  const Raw raw = quectel_rm500q();
  EXPECT_EQ(raw.size(), 328u);  // D7: wTotalLength 328
  const auto c = parse(raw, 0x2C7C, 0x0800);
  ASSERT_TRUE(c);
  EXPECT_THAT(c->problems, IsEmpty());  // companions skipped, FDs' odd Unions (to 0) kept quietly
  EXPECT_EQ(c->configuration_string_index, 4);
  EXPECT_EQ(c->max_power_2ma, 28);
  EXPECT_THAT(functions(*c), ElementsAre("0:diag", "1:nmea", "2:at", "3:modem", "4:qmi", "5:adb"));
  const Interface& qmi = at(*c, 4);
  ASSERT_EQ(qmi.alt_settings[0].endpoints.size(), 3u);
  EXPECT_EQ(qmi.alt_settings[0].endpoints[1].address, 0x8E);
  EXPECT_EQ(qmi.alt_settings[0].endpoints[1].max_packet_size, 1024);
  EXPECT_EQ(qmi.data_interface, 4);
  EXPECT_EQ(qmi.data_alt_setting, 0);
  EXPECT_EQ(at(*c, 2).union_control, 0);
  EXPECT_EQ(classify_mode(0x2C7C, 0x0800, *c), ModemMode::Qmi);
  EXPECT_FALSE(is_drivable(ModemMode::Qmi));
}

TEST(DescriptorsQuectel, OtherQuectelProductsByShape) {
  // Another product id: interface numbers are not trusted, the shape and protocol bytes are.
  const auto c = parse(quectel_rm500q(), 0x2C7C, 0x0125);
  ASSERT_TRUE(c);
  EXPECT_THAT(functions(*c), ElementsAre("0:diag", "1:other", "2:other", "3:other", "4:qmi", "5:adb"));
  // The older modules' DIAG is ff/ff/ff with only a bulk pair: not QMI.
  const Raw diag = ConfigBuilder().interface(0, 0, 0xFF, 0xFF, 0xFF).bulk_in(0x81).bulk_out(0x01).build();
  EXPECT_THAT(functions(*parse(diag, 0x2C7C, 0x0125)), ElementsAre("0:other"));
}

// ================================ Quectel RM520N 2c7c:0801 ======================================
// The kernel patch "USB: serial: option: add Quectel RM520N" (jerry.meng, linux-usb 2022-09-05):
// "0x0801: DIAG + NMEA + AT + MODEM + RMNET", its usb-devices dump built from the table (high
// speed, 512-byte bulk). Assumed: the functional descriptors of the serial ports (usb-devices
// prints none; D7's ACM-style set, which the classification ignores), interrupt bInterval 9.
Raw quectel_rm520n() {
  ConfigBuilder b(1, 0xA0, 250, 0);
  b.interface(0, 0, 0xFF, 0xFF, 0x30).bulk_out(0x01).bulk_in(0x81);  // DIAG
  b.interface(1, 0, 0xFF, 0x00, 0x40).bytes(acm_style_fds()).interrupt_in(0x83, 10, 9).bulk_in(0x82).bulk_out(0x02);
  b.interface(2, 0, 0xFF, 0x00, 0x00).bytes(acm_style_fds()).interrupt_in(0x85, 10, 9).bulk_in(0x84).bulk_out(0x03);
  b.interface(3, 0, 0xFF, 0x00, 0x00).bytes(acm_style_fds()).interrupt_in(0x87, 10, 9).bulk_in(0x86).bulk_out(0x04);
  b.interface(4, 0, 0xFF, 0xFF, 0xFF).interrupt_in(0x88, 8, 9).bulk_in(0x8E).bulk_out(0x0F);  // qmi_wwan
  return b.build();
}

TEST(DescriptorsQuectel, Rm520nHasTheRm500qOrderAndItsAtPortOnInterface2) {
  const auto c = parse(quectel_rm520n(), 0x2C7C, 0x0801);
  ASSERT_TRUE(c);
  EXPECT_THAT(c->problems, IsEmpty());
  // NMEA is ff/00/40 on the RM520N (0x40 on no other row): the interface number decides.
  EXPECT_THAT(functions(*c), ElementsAre("0:diag", "1:nmea", "2:at", "3:modem", "4:qmi"));
  EXPECT_EQ(classify_mode(0x2C7C, 0x0801, *c), ModemMode::Qmi);
  std::string error;
  const auto port = find_serial_at_port(*c, error);
  ASSERT_TRUE(port) << error;
  EXPECT_EQ(port->interface_number, 2);
  EXPECT_EQ(port->bulk_in.address, 0x84);
  EXPECT_EQ(port->bulk_out.address, 0x03);
  // Before the rows the same bytes had no AT port ("no serial AT interface"): the rows are what finds it.
  const auto unknown = parse(quectel_rm520n(), 0x2C7C, 0x0802);
  ASSERT_TRUE(unknown);
  EXPECT_FALSE(find_serial_at_port(*unknown, error));
}

// ================================ Quectel RM500U-CN 2c7c:0900 ===================================
// The option.c patch adding 0x0900 (Bjørn Mork; three usb-devices dumps, NCM mode here): NCM on
// 0+1 under an IAD, five ff/00/00 serial ports 2..6 with only a bulk pair. Assumed: the NCM
// functional descriptors (usb-devices prints none; cdc_ncm bound the pair, so Header, Union,
// Ethernet and NCM are there).
Raw quectel_rm500u_ncm() {
  ConfigBuilder b(1, 0xC0, 250, 0);
  b.iad(0, 2, 0x02, 0x0D, 0x00)
      .interface(0, 0, 0x02, 0x0D, 0x00)
      .bytes(header_fd() + union_fd(0, 1) + ethernet_fd(4, 1514) + ncm_fd(0x11))
      .interrupt_in(0x82, 16, 9)
      .interface(1, 0, 0x0A, 0x00, 0x01)
      .interface(1, 1, 0x0A, 0x00, 0x01)
      .bulk_in(0x81)
      .bulk_out(0x01);
  for (std::uint8_t i = 2; i <= 6; ++i)
    b.interface(i, 0, 0xFF, 0x00, 0x00).bulk_in(static_cast<std::uint8_t>(0x81 + i)).bulk_out(i);
  return b.build();
}

TEST(DescriptorsQuectel, Rm500uNcmModeHasItsAtPortOnInterface4) {
  const auto c = parse(quectel_rm500u_ncm(), 0x2C7C, 0x0900);
  ASSERT_TRUE(c);
  EXPECT_THAT(c->problems, IsEmpty());
  // quectel-CM device.c: "case 0x0900: //RG500U atIntf = 4"; the other four ports have no documented role.
  EXPECT_THAT(functions(*c), ElementsAre("0:ncm", "1:cdc-data", "2:other", "3:other", "4:at", "5:other", "6:other"));
  std::string error;
  const auto port = find_serial_at_port(*c, error);
  ASSERT_TRUE(port) << error;
  EXPECT_EQ(port->interface_number, 4);
  EXPECT_EQ(port->bulk_in.address, 0x85);
  EXPECT_EQ(port->bulk_out.address, 0x04);
  const auto f = find_network_function(*c, error);
  ASSERT_TRUE(f) << error;
  EXPECT_EQ(f->kind, Function::Ncm);
  EXPECT_EQ(f->control_interface, 0);
}

TEST(DescriptorsDevice, Rm500qSuperSpeedDeviceDescriptor) {
  const auto d = parse_device_descriptor(kRm500qDevice);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->bcd_usb, 0x0320);
  EXPECT_EQ(d->max_packet_size0, 9);
  EXPECT_EQ(d->vendor_id, 0x2C7C);
  EXPECT_EQ(d->product_id, 0x0800);
  EXPECT_EQ(d->bcd_device, 0x0414);
}

// ================================ D8: Telit FE990 1bc7:1081 =====================================
// The netdev patch's lsusb (D8), built from its description: FD values as printed; the
// ACM-style FDs of interfaces 4-7 as on Quectel (D7); assumed: endpoint addresses of 5-7, packet
// sizes of the serial endpoints, string indices. Total must come out at D8's wTotalLength 0x0151.
Raw telit_fe990() {
  ConfigBuilder b(1, 0x80, 250, 4);
  b.interface(0, 0, 0xFF, 0xFF, 0x30).bulk_in(0x81).bulk_out(0x01);
  b.interface(1, 0, 0xFF, 0x42, 0x01).bulk_in(0x82).bulk_out(0x02);
  b.iad(2, 2, 0x02, 0x0E, 0x00);
  b.interface(2, 0, 0x02, 0x0E, 0x00, 5)  // "MBIM Control"
      .bytes(header_fd() + union_fd(2, 3) + mbim_fd(4096, 32, 128, 2048, 0x20) + mbim_extended_fd(64, 1500))
      .interrupt_in(0x83, 64, 9);
  b.interface(3, 0, 0x0A, 0x00, 0x02);
  b.interface(3, 1, 0x0A, 0x00, 0x02, 6).bulk_in(0x8E).bulk_out(0x0F);  // "MBIM Data"
  b.interface(4, 0, 0xFF, 0xFF, 0x60).bytes(acm_style_fds()).interrupt_in(0x85, 10, 9).bulk_in(0x84).bulk_out(0x03);
  const std::uint8_t irq[] = {0x87, 0x89, 0x8B}, in[] = {0x86, 0x88, 0x8A}, out[] = {0x04, 0x05, 0x06};
  for (std::uint8_t i = 0; i < 3; ++i)
    b.interface(static_cast<std::uint8_t>(5 + i), 0, 0xFF, 0xFF, 0x40)
        .bytes(acm_style_fds())
        .interrupt_in(irq[i], 10, 9)
        .bulk_in(in[i])
        .bulk_out(out[i]);
  return b.build();
}

TEST(DescriptorsTelit, Fe990MbimWithTheExtendedFunctionalDescriptor) {
  const Raw raw = telit_fe990();
  EXPECT_EQ(raw.size(), 0x0151u);  // D8: wTotalLength 0x0151
  const auto c = parse(raw, 0x1BC7, 0x1081);
  ASSERT_TRUE(c);
  EXPECT_THAT(c->problems, IsEmpty());
  const Interface& mbim = at(*c, 2);
  ASSERT_TRUE(mbim.mbim);
  EXPECT_EQ(mbim.mbim->max_control_message, 4096);
  EXPECT_EQ(mbim.mbim->number_filters, 32);
  EXPECT_EQ(mbim.mbim->max_filter_size, 128);
  EXPECT_EQ(mbim.mbim->max_segment_size, 2048);
  EXPECT_EQ(mbim.mbim->network_capabilities, 0x20);
  ASSERT_TRUE(mbim.mbim_extended);
  EXPECT_EQ(mbim.mbim_extended->bcd_mbim_extended_version, 0x0100);
  EXPECT_EQ(mbim.mbim_extended->max_outstanding_command_messages, 64);
  EXPECT_EQ(mbim.mbim_extended->mtu, 1500);
  EXPECT_EQ(mbim.data_interface, 3);
  EXPECT_EQ(mbim.data_alt_setting, 1);
  EXPECT_THAT(functions(*c), ElementsAre("0:diag", "1:adb", "2:mbim", "3:cdc-data", "4:nmea", "5:modem",
                                         "6:modem", "7:at"));
  EXPECT_EQ(classify_mode(0x1BC7, 0x1081, *c), ModemMode::Mbim);
}

// ================================ D1: Fibocom FM350-GL ==========================================
// usb-devices in the kernel patch adding the FM350 (D1), built from its tables. The source shows
// no FDs, so the RNDIS function has no Union and the IAD gives its data interface. Assumed: the
// interrupt bInterval 1 (125 us at high speed), iInterface 0.
Raw fibocom_fm350(bool mode41) {
  ConfigBuilder b(1, 0xA0, 250);
  b.iad(0, 2, 0xE0, 0x01, 0x03);
  b.interface(0, 0, 0x02, 0x02, 0xFF).interrupt_in(0x82, 64, 1);
  b.interface(1, 0, 0x0A, 0x00, 0x00).bulk_in(0x81).bulk_out(0x01);
  const std::uint8_t count = mode41 ? 10 : 8, adb = mode41 ? 5 : 3;
  for (std::uint8_t n = 2; n < count; ++n) {
    b.interface(n, 0, 0xFF, n == adb ? 0x42 : 0x00, n == adb ? 0x01 : 0x00)
        .bulk_in(static_cast<std::uint8_t>(0x81 + n))
        .bulk_out(n);
  }
  return b.build();
}

TEST(DescriptorsFibocom, Fm350Mode41IsRndisWithItsAtPort) {
  const auto c = parse(fibocom_fm350(true), 0x0E8D, 0x7127);
  ASSERT_TRUE(c);
  EXPECT_THAT(c->problems, IsEmpty());
  EXPECT_THAT(functions(*c), ElementsAre("0:rndis", "1:cdc-data", "2:other", "3:other", "4:other", "5:adb",
                                         "6:at", "7:other", "8:other", "9:other"));
  EXPECT_FALSE(at(*c, 0).union_control);
  EXPECT_EQ(at(*c, 0).data_interface, 1);  // from the IAD
  EXPECT_EQ(at(*c, 0).data_alt_setting, 0);
  EXPECT_EQ(classify_mode(0x0E8D, 0x7127, *c), ModemMode::Rndis);
  EXPECT_TRUE(is_drivable(ModemMode::Rndis));
  // The function the daemon drives: RNDIS control 0 with its interrupt IN, data 1 alt 0.
  std::string error;
  const auto f = find_network_function(*c, error);
  ASSERT_TRUE(f) << error;
  EXPECT_EQ(f->kind, Function::Rndis);
  EXPECT_EQ(f->control_interface, 0);
  EXPECT_EQ(f->data_interface, 1);
  EXPECT_EQ(f->data_alt_setting, 0);
  EXPECT_EQ(f->notification.address, 0x82);
  EXPECT_EQ(f->bulk_in.address, 0x81);
  EXPECT_EQ(f->bulk_out.address, 0x01);
  EXPECT_EQ(f->bulk_out.max_packet_size, 512);
  EXPECT_THAT(f->interfaces(), ElementsAre(0, 1));
}

TEST(DescriptorsFibocom, Fm350Mode40) {
  const auto c = parse(fibocom_fm350(false), 0x0E8D, 0x7126);
  ASSERT_TRUE(c);
  EXPECT_THAT(functions(*c), ElementsAre("0:rndis", "1:cdc-data", "2:other", "3:adb", "4:other", "5:other",
                                         "6:at", "7:other"));
  EXPECT_EQ(classify_mode(0x0E8D, 0x7126, *c), ModemMode::Rndis);
}

TEST(DescriptorsRndis, OtherRndisClassTriples) {
  for (const auto& [c, s, p] : {std::tuple{0xE0, 0x01, 0x03}, std::tuple{0xEF, 0x04, 0x01}}) {
    const Raw raw = ConfigBuilder()
                        .interface(0, 0, static_cast<std::uint8_t>(c), static_cast<std::uint8_t>(s),
                                   static_cast<std::uint8_t>(p))
                        .bytes(header_fd() + union_fd(0, 1))
                        .interrupt_in(0x81, 8, 1)
                        .interface(1, 0, 0x0A, 0x00, 0x00)
                        .bulk_in(0x82)
                        .bulk_out(0x02)
                        .build();
    const auto cfg = parse(raw, 0x18D1, 0x4EE3);
    ASSERT_TRUE(cfg);
    EXPECT_THAT(functions(*cfg), ElementsAre("0:rndis", "1:cdc-data"));
    EXPECT_EQ(at(*cfg, 0).data_interface, 1);  // from the Union
    EXPECT_EQ(classify_mode(0x18D1, 0x4EE3, *cfg), ModemMode::Rndis);
  }
}

// ================================ synthetic shapes =============================================

// Union-less NCM with an IAD over the pair: the kernel's fallback (anchors §1.3, "buggy devices
// have an IAD but no CDC Union", e.g. Sierra MC7710). Synthetic.
Raw ncm_iad_without_union() {
  return ConfigBuilder()
      .iad(0, 2, 0x02, 0x0D, 0x00)
      .interface(0, 0, 0x02, 0x0D, 0x00)
      .bytes(header_fd() + ethernet_fd(4, 1514) + ncm_fd(0x21))
      .interrupt_in(0x81, 16, 9)
      .interface(1, 0, 0x0A, 0x00, 0x01)
      .interface(1, 1, 0x0A, 0x00, 0x01)
      .bulk_in(0x82)
      .bulk_out(0x02)
      .build();
}

TEST(DescriptorsNcm, UnionlessNcmFindsItsDataInterfaceThroughTheIad) {
  const auto c = parse(ncm_iad_without_union(), 0x1199, 0x68C0);
  ASSERT_TRUE(c);
  EXPECT_THAT(c->problems, IsEmpty());
  EXPECT_THAT(functions(*c), ElementsAre("0:ncm", "1:cdc-data"));
  const Interface& ncm = at(*c, 0);
  EXPECT_FALSE(ncm.union_control);
  EXPECT_EQ(ncm.data_interface, 1);
  EXPECT_EQ(ncm.data_alt_setting, 1);
  ASSERT_TRUE(ncm.ncm);
  EXPECT_EQ(ncm.ncm->network_capabilities, 0x21);
  ASSERT_TRUE(ncm.ethernet);
  EXPECT_EQ(ncm.ethernet->max_segment_size, 1514);
  EXPECT_EQ(ncm.ethernet->mac_address_string_index, 4);
  EXPECT_EQ(classify_mode(0x1199, 0x68C0, *c), ModemMode::Ncm);
  EXPECT_TRUE(is_drivable(ModemMode::Ncm));
}

TEST(DescriptorsNcm, NoUnionNoIadNoBulkMeansNoDataInterface) {
  const Raw raw = ConfigBuilder()
                      .interface(0, 0, 0x02, 0x0D, 0x00)
                      .bytes(header_fd() + ncm_fd(0))
                      .interrupt_in(0x81, 16, 9)
                      .interface(1, 1, 0x0A, 0x00, 0x01)
                      .bulk_in(0x82)
                      .bulk_out(0x02)
                      .build();
  const auto c = parse(raw, 0x1199, 0x68C0);
  ASSERT_TRUE(c);
  EXPECT_FALSE(at(*c, 0).data_interface);
  EXPECT_THAT(c->problems, ElementsAre(HasSubstr("no data interface found")));
  EXPECT_EQ(at(*c, 0).function, Function::Ncm);  // still NCM: the class says so
}

TEST(DescriptorsNcm, UnionNamingAMissingInterfaceFallsBackToTheIad) {
  const Raw raw = ConfigBuilder()
                      .iad(4, 2, 0x02, 0x0D, 0x00)
                      .interface(4, 0, 0x02, 0x0D, 0x00)
                      .bytes(header_fd() + union_fd(4, 9))
                      .interrupt_in(0x81, 16, 9)
                      .interface(5, 1, 0x0A, 0x00, 0x01)
                      .bulk_in(0x82)
                      .bulk_out(0x02)
                      .build();
  const auto c = parse(raw, 0x1199, 0x68C0);
  ASSERT_TRUE(c);
  EXPECT_EQ(at(*c, 4).data_interface, 5);
  EXPECT_THAT(c->problems, ElementsAre(HasSubstr("Union names data interface 9, which does not exist")));
}

TEST(DescriptorsNcm, IadAtInterface255DoesNotWrapToZero) {
  const Raw raw = ConfigBuilder()
                      .iad(255, 2, 0x02, 0x0D, 0x00)
                      .interface(0, 1, 0x0A, 0x00, 0x01)
                      .bulk_in(0x82)
                      .bulk_out(0x02)
                      .interface(255, 0, 0x02, 0x0D, 0x00)
                      .interrupt_in(0x81, 16, 9)
                      .build();
  const auto c = parse(raw, 0x1199, 0x68C0);
  ASSERT_TRUE(c);
  EXPECT_FALSE(at(*c, 255).data_interface);
  check_invariants(*c);
}

// An NCM/MBIM function (MBIM 1.0 §3.2): communication alt 0 NCM, alt 1 MBIM; data alt 1 NCM
// (protocol 01), alt 2 MBIM (protocol 02). Each MBIM alt setting has endpoints of its own
// (interrupt 0x83, bulk 0x84/0x04), so that what is read from it can be told apart. Synthetic.
Raw ncm_mbim_function() {
  return ConfigBuilder()
      .interface(0, 0, 0x02, 0x0D, 0x00)
      .bytes(header_fd() + union_fd(0, 1) + ethernet_fd(4, 1514) + ncm_fd(0x21))
      .interrupt_in(0x81, 16, 9)
      .interface(0, 1, 0x02, 0x0E, 0x00)
      .bytes(header_fd() + union_fd(0, 1) + mbim_fd(4096, 32, 128, 2048, 0x20))
      .interrupt_in(0x83, 16, 9)
      .interface(1, 0, 0x0A, 0x00, 0x01)
      .interface(1, 1, 0x0A, 0x00, 0x01)
      .bulk_in(0x82)
      .bulk_out(0x02)
      .interface(1, 2, 0x0A, 0x00, 0x02)
      .bulk_in(0x84)
      .bulk_out(0x04)
      .build();
}

// MBIM wins, and its data alt setting is 2.
TEST(DescriptorsNcm, NcmMbimFunctionPrefersMbimAndItsDataAltSetting) {
  const auto c = parse(ncm_mbim_function(), 0x1199, 0x9041);
  ASSERT_TRUE(c);
  EXPECT_THAT(c->problems, IsEmpty());  // the repeated Header and Union are identical
  const Interface& comm = at(*c, 0);
  EXPECT_EQ(comm.function, Function::Mbim);
  EXPECT_EQ(comm.function_alt_setting, 1);
  EXPECT_TRUE(comm.ncm && comm.ethernet && comm.mbim);
  EXPECT_EQ(comm.data_interface, 1);
  EXPECT_EQ(comm.data_alt_setting, 2);
  EXPECT_EQ(classify_mode(0x1199, 0x9041, *c), ModemMode::Mbim);
}

// ================================ the network function to drive ===================================

TEST(NetworkFunction, Huawei1506SharesOneInterfaceForControlAndData) {
  const auto c = parse(kHuawei1506, 0x12D1, 0x1506);
  ASSERT_TRUE(c);
  std::string error;
  const auto f = find_network_function(*c, error);
  ASSERT_TRUE(f) << error;
  EXPECT_EQ(f->kind, Function::HuaweiNcm);
  EXPECT_EQ(f->interface_class, 0xff);
  EXPECT_EQ(f->interface_subclass, 0x03);
  EXPECT_EQ(f->interface_protocol, 0x16);
  EXPECT_EQ(f->control_interface, 1);
  EXPECT_TRUE(f->shared_interface());
  EXPECT_EQ(f->data_alt_setting, 1);
  EXPECT_THAT(f->interfaces(), ElementsAre(1));
  EXPECT_TRUE(f->notification.is_interrupt() && f->notification.is_in());
  EXPECT_TRUE(f->bulk_in.is_bulk() && f->bulk_in.is_in());
  EXPECT_TRUE(f->bulk_out.is_bulk() && !f->bulk_out.is_in());
  EXPECT_GT(f->bulk_in.max_packet_size, 0);
  EXPECT_TRUE(f->ncm);
}

TEST(NetworkFunction, SierraMbimOn12And13) {
  const auto c = parse(sierra_mbim(0xA0), 0x1199, 0x9079);
  ASSERT_TRUE(c);
  std::string error;
  const auto f = find_network_function(*c, error);
  ASSERT_TRUE(f) << error;
  EXPECT_EQ(f->kind, Function::Mbim);
  EXPECT_EQ(f->interface_class, 0x02);
  EXPECT_EQ(f->interface_subclass, 0x0e);
  EXPECT_THAT(f->interfaces(), ElementsAre(12, 13));
  EXPECT_EQ(f->notification.address, 0x82);
  EXPECT_EQ(f->bulk_in.address, 0x81);
  EXPECT_EQ(f->bulk_out.address, 0x01);
  EXPECT_EQ(f->data_alt_setting, 1);
  ASSERT_TRUE(f->mbim);
  EXPECT_EQ(f->mbim->max_control_message, 4096);
}

TEST(NetworkFunction, NcmMbimFunctionIsDrivenAsMbimWithItsDataAltSetting) {
  const auto c = parse(ncm_mbim_function(), 0x1199, 0x9041);
  ASSERT_TRUE(c);
  std::string error;
  const auto f = find_network_function(*c, error);
  ASSERT_TRUE(f) << error;
  EXPECT_EQ(f->kind, Function::Mbim);
  EXPECT_EQ(f->notification.address, 0x83) << "the interrupt endpoint of the MBIM alt setting";
  EXPECT_EQ(f->interface_subclass, 0x0e) << "the class of the MBIM alt setting, not of alt 0 (NCM)";
  EXPECT_EQ(f->data_alt_setting, 2);
  EXPECT_EQ(f->bulk_in.address, 0x84);
}

TEST(NetworkFunction, NoneInAMassStorageConfigurationSaysSo) {
  const auto c = parse(kHuawei1446Config1, 0x12D1, 0x1446);
  ASSERT_TRUE(c);
  std::string error;
  EXPECT_FALSE(find_network_function(*c, error));
  EXPECT_THAT(error, HasSubstr("no NCM, Huawei NCM, MBIM or RNDIS function"));
}

TEST(NetworkFunction, ControlWithoutInterruptEndpointIsRefused) {
  const Raw raw = ConfigBuilder()
                      .interface(0, 0, 0x02, 0x0D, 0x00)
                      .bytes(header_fd() + union_fd(0, 1) + ncm_fd(0x21))
                      .interface(1, 0, 0x0A, 0x00, 0x01)
                      .interface(1, 1, 0x0A, 0x00, 0x01)
                      .bulk_in(0x82)
                      .bulk_out(0x02)
                      .build();
  const auto c = parse(raw, 0x0525, 0xA4A1);
  ASSERT_TRUE(c);
  std::string error;
  EXPECT_FALSE(find_network_function(*c, error));
  EXPECT_THAT(error, HasSubstr("no interrupt IN endpoint"));
}

// Qualcomm EDL: one ff/ff/ff interface with a bulk pair at 05c6:9008 (qcserial's QDL check).
TEST(DescriptorsQdl, QualcommEdl) {
  const Raw raw = ConfigBuilder(1, 0x80, 1).interface(0, 0, 0xFF, 0xFF, 0xFF).bulk_in(0x81).bulk_out(0x01).build();
  const auto c = parse(raw, 0x05C6, 0x9008);
  ASSERT_TRUE(c);
  EXPECT_THAT(functions(*c), ElementsAre("0:qdl"));
  EXPECT_EQ(classify_mode(0x05C6, 0x9008, *c), ModemMode::Qdl);
  EXPECT_FALSE(is_drivable(ModemMode::Qdl));
  EXPECT_TRUE(is_download_mode_id(0x1199, 0x907A));
  EXPECT_FALSE(is_download_mode_id(0x05C6, 0x9006));
  // The id decides the mode even when the interface looks like nothing.
  const Raw odd = ConfigBuilder().interface(0, 0, 0xFF, 0x00, 0x00).interrupt_in(0x81, 8, 1).build();
  EXPECT_EQ(classify_mode(0x05C6, 0x9008, *parse(odd, 0x05C6, 0x9008)), ModemMode::Qdl);
}

// A boot keyboard after HID 1.11 Appendix E (configuration, interface 03/01/01, HID descriptor,
// interrupt IN endpoint); a Logitech id as a vendor that makes no modems.
const Raw kKeyboard = {
    0x09, 0x02, 0x22, 0x00, 0x01, 0x01, 0x00, 0xA0, 0x32,  // wTotalLength 34, remote wakeup, 100 mA
    0x09, 0x04, 0x00, 0x00, 0x01, 0x03, 0x01, 0x01, 0x00,  // interface 0, 1 EP, HID boot keyboard
    0x09, 0x21, 0x01, 0x01, 0x00, 0x01, 0x22, 0x3F, 0x00,  // HID 1.01, 1 report descriptor of 63 bytes
    0x07, 0x05, 0x81, 0x03, 0x08, 0x00, 0x0A,              // EP 0x81 interrupt IN, 8 bytes, 10 ms
};
// A USB 2.0 hub (USB 2.0 §11.23.1): interface 09/00/00 with its status-change endpoint.
const Raw kHub = {
    0x09, 0x02, 0x19, 0x00, 0x01, 0x01, 0x00, 0xE0, 0x00,
    0x09, 0x04, 0x00, 0x00, 0x01, 0x09, 0x00, 0x00, 0x00,
    0x07, 0x05, 0x81, 0x03, 0x01, 0x00, 0x0C,
};

TEST(DescriptorsNotAModem, KeyboardAndHub) {
  const auto k = parse(kKeyboard, 0x046D, 0xC31C);
  ASSERT_TRUE(k);
  EXPECT_THAT(k->problems, IsEmpty());  // the HID descriptor is skipped quietly
  EXPECT_THAT(functions(*k), ElementsAre("0:other"));
  EXPECT_EQ(classify_mode(0x046D, 0xC31C, *k), ModemMode::NotAModem);
  EXPECT_FALSE(is_drivable(ModemMode::NotAModem));
  const auto h = parse(kHub, 0x1D6B, 0x0002);
  ASSERT_TRUE(h);
  EXPECT_THAT(h->problems, IsEmpty());
  EXPECT_EQ(classify_mode(0x1D6B, 0x0002, *h), ModemMode::NotAModem);
  // A keyboard of a modem vendor is not a modem either: nothing in it is a modem function.
  EXPECT_EQ(classify_mode(0x12D1, 0x0001, *parse(kKeyboard, 0x12D1, 0x0001)), ModemMode::NotAModem);
}

TEST(DescriptorsSerialOnly, AcmAtPortsOfAModemVendorAreSerialOnly) {
  const Raw raw = ConfigBuilder()
                      .interface(0, 0, 0x02, 0x02, 0x01)
                      .bytes(acm_style_fds())
                      .interrupt_in(0x81, 10, 9)
                      .interface(1, 0, 0x0A, 0x00, 0x00)
                      .bulk_in(0x82)
                      .bulk_out(0x02)
                      .build();
  const auto c = parse(raw, 0x1546, 0x1102);
  ASSERT_TRUE(c);
  EXPECT_THAT(functions(*c), ElementsAre("0:at", "1:cdc-data"));
  EXPECT_EQ(classify_mode(0x1546, 0x1102, *c), ModemMode::SerialOnly);
  EXPECT_FALSE(is_drivable(ModemMode::SerialOnly));
  // The same CDC ACM on a vendor that makes no modems (an Arduino) is not a modem.
  EXPECT_EQ(classify_mode(0x2341, 0x0043, *parse(raw, 0x2341, 0x0043)), ModemMode::NotAModem);
  // Huawei serial-only composition (12d1:1001 style): modem + PCUI by protocol byte.
  const Raw huawei = ConfigBuilder()
                         .interface(0, 0, 0xFF, 0x02, 0x01)
                         .bulk_in(0x81)
                         .bulk_out(0x01)
                         .interface(1, 0, 0xFF, 0x02, 0x02)
                         .bulk_in(0x82)
                         .bulk_out(0x02)
                         .interface(2, 0, 0x08, 0x06, 0x50)
                         .bulk_in(0x83)
                         .bulk_out(0x03)
                         .build();
  const auto hc = parse(huawei, 0x12D1, 0x1001);
  EXPECT_THAT(functions(*hc), ElementsAre("0:modem", "1:at", "2:mass-storage"));
  EXPECT_EQ(classify_mode(0x12D1, 0x1001, *hc), ModemMode::SerialOnly);
}

// ================================ names ========================================================

TEST(DescriptorsNames, FunctionStrings) {
  const std::vector<std::pair<Function, std::string>> names = {
      {Function::Ncm, "ncm"},     {Function::HuaweiNcm, "huawei-ncm"},
      {Function::Mbim, "mbim"},   {Function::Rndis, "rndis"},
      {Function::CdcData, "cdc-data"}, {Function::Qmi, "qmi"},
      {Function::At, "at"},       {Function::Modem, "modem"},
      {Function::Diag, "diag"},   {Function::Nmea, "nmea"},
      {Function::Adb, "adb"},     {Function::Qdl, "qdl"},
      {Function::MassStorage, "mass-storage"}, {Function::Other, "other"},
  };
  ASSERT_EQ(names.size(), static_cast<std::size_t>(Function::Other) + 1);
  for (const auto& [f, name] : names) EXPECT_EQ(to_string(f), name);
}

TEST(DescriptorsNames, ModeStringsAndDrivability) {
  const std::vector<std::tuple<ModemMode, std::string, bool>> modes = {
      {ModemMode::Ncm, "ncm", true},
      {ModemMode::HuaweiNcm, "huawei-ncm", true},
      {ModemMode::Mbim, "mbim", true},
      {ModemMode::Rndis, "rndis", true},
      {ModemMode::Qmi, "qmi", false},
      {ModemMode::MassStorage, "mass-storage", false},
      {ModemMode::Qdl, "qdl", false},
      {ModemMode::SerialOnly, "serial-only", false},
      {ModemMode::NotAModem, "not-a-modem", false},
  };
  ASSERT_EQ(modes.size(), static_cast<std::size_t>(ModemMode::NotAModem) + 1);
  for (const auto& [m, name, drivable] : modes) {
    EXPECT_EQ(to_string(m), name);
    EXPECT_EQ(is_drivable(m), drivable) << name;
  }
}

TEST(DescriptorsNames, MacString) {
  // D8b: cdc_ncm printed "MAC-Address: 00:1e:10:1f:00:00" for the E3372h-320 at 12d1:155e.
  EXPECT_THAT(parse_mac_string("001E101F0000"), ::testing::Optional(ElementsAre(0x00, 0x1E, 0x10, 0x1F, 0x00, 0x00)));
  EXPECT_THAT(parse_mac_string("001e101f0000"), ::testing::Optional(ElementsAre(0x00, 0x1E, 0x10, 0x1F, 0x00, 0x00)));
  EXPECT_FALSE(parse_mac_string("001E101F000"));
  EXPECT_FALSE(parse_mac_string("001E101F00000"));
  EXPECT_FALSE(parse_mac_string("001E101F000G"));
  EXPECT_FALSE(parse_mac_string("00:1E:10:1F:"));
  EXPECT_FALSE(parse_mac_string(""));
}

// ================================ malformed ====================================================

TEST(DescriptorsMalformed, UnusableHeaderIsNullopt) {
  EXPECT_FALSE(parse(Raw{}, 0x12D1, 0x1506));
  EXPECT_FALSE(parse(Raw(kHuawei1506.begin(), kHuawei1506.begin() + 8), 0x12D1, 0x1506));
  Raw wrong_type = kHuawei1506;
  wrong_type[1] = 0x01;
  EXPECT_FALSE(parse(wrong_type, 0x12D1, 0x1506));
  Raw short_header = kHuawei1506;
  short_header[0] = 8;
  EXPECT_FALSE(parse(short_header, 0x12D1, 0x1506));
}

TEST(DescriptorsMalformed, BLengthZeroStopsTheWalkAndKeepsWhatCameBefore) {
  for (const std::uint8_t bad : std::initializer_list<std::uint8_t>{0, 1}) {
    Raw raw = ConfigBuilder().interface(0, 0, 0x08, 0x06, 0x50).bulk_in(0x81).bulk_out(0x01).build();
    raw.insert(raw.end(), {bad, 0x04, 0x09, 0x04, 0x01, 0x00, 0x00, 0x03, 0x01});
    raw[2] = static_cast<std::uint8_t>(raw.size());
    const auto c = parse(raw, 0x12D1, 0x1F01);
    ASSERT_TRUE(c);
    EXPECT_THAT(functions(*c), ElementsAre("0:mass-storage"));
    EXPECT_THAT(c->problems, ElementsAre(HasSubstr("offset 32: bLength " + std::to_string(bad))));
  }
}

TEST(DescriptorsMalformed, BLengthPastTheEnd) {
  Raw raw = kHuawei1506;
  raw[raw.size() - 7] = 0x20;  // the last endpoint claims 32 bytes with 7 left
  const auto c = parse(raw, 0x12D1, 0x1506);
  ASSERT_TRUE(c);
  EXPECT_THAT(c->problems, Contains(HasSubstr("runs past the end (7 bytes left)")));
  EXPECT_THAT(c->problems, Contains(HasSubstr("interface 5 alt setting 0: bNumEndpoints 2 but 1")));
  EXPECT_EQ(at(*c, 1).function, Function::HuaweiNcm);  // everything before is kept
}

TEST(DescriptorsMalformed, TruncatedFunctionalDescriptorsAreSkipped) {
  const Raw raw = ConfigBuilder()
                      .interface(0, 0, 0x02, 0x0E, 0x00)
                      .bytes({0x04, 0x24, 0x00, 0x10})                                  // Header, needs 5
                      .bytes({0x04, 0x24, 0x06, 0x00})                                  // Union, needs 5
                      .bytes({0x05, 0x24, 0x1A, 0x00, 0x01})                            // NCM, needs 6
                      .bytes({0x0C, 0x24, 0x0F, 7, 0, 0, 0, 0, 0xEA, 0x05, 0, 0})       // Ethernet, needs 13
                      .bytes({0x0B, 0x24, 0x1B, 0x00, 0x01, 0x00, 0x04, 0x10, 0x14, 0xDC, 0x05})  // MBIM, needs 12
                      .bytes({0x07, 0x24, 0x1C, 0x00, 0x01, 0x40, 0xDC})                // MBIM Ext, needs 8
                      .bytes({0x02, 0x24})                                              // no subtype
                      .interrupt_in(0x81, 16, 9)
                      .build();
  const auto c = parse(raw, 0x1BC7, 0x1081);
  ASSERT_TRUE(c);
  const Interface& i = at(*c, 0);
  EXPECT_FALSE(i.bcd_cdc);
  EXPECT_FALSE(i.union_control);
  EXPECT_FALSE(i.ncm);
  EXPECT_FALSE(i.ethernet);
  EXPECT_FALSE(i.mbim);
  EXPECT_FALSE(i.mbim_extended);
  EXPECT_THAT(c->problems,
              ElementsAre(HasSubstr("Header functional descriptor of 4 bytes (needs 5)"),
                          HasSubstr("Union functional descriptor of 4 bytes (needs 5)"),
                          HasSubstr("NCM functional descriptor of 5 bytes (needs 6)"),
                          HasSubstr("Ethernet functional descriptor of 12 bytes (needs 13)"),
                          HasSubstr("MBIM functional descriptor of 11 bytes (needs 12)"),
                          HasSubstr("MBIM Extended functional descriptor of 7 bytes (needs 8)"),
                          HasSubstr("class-specific descriptor of 2 bytes"),
                          HasSubstr("interface 0 (mbim): no data interface found")));
  EXPECT_EQ(i.alt_settings[0].endpoints.size(), 1u);  // the walk went on after each
}

TEST(DescriptorsMalformed, LongerFunctionalDescriptorsAreRead) {
  const Raw raw = ConfigBuilder()
                      .interface(0, 0, 0x02, 0x0D, 0x00)
                      .bytes({0x08, 0x24, 0x1A, 0x00, 0x01, 0x21, 0xAA, 0xBB})  // NCM + 2 unknown bytes
                      .build();
  const auto c = parse(raw, 0x1199, 0x68C0);
  ASSERT_TRUE(c);
  ASSERT_TRUE(at(*c, 0).ncm);
  EXPECT_EQ(at(*c, 0).ncm->network_capabilities, 0x21);
}

TEST(DescriptorsMalformed, WTotalLengthLongerThanTheBytes) {
  Raw raw = kHuawei1446Config2;
  raw[2] = 0xFF;  // wTotalLength 255, 110 bytes there
  const auto c = parse(raw, 0x12D1, 0x1446);
  ASSERT_TRUE(c);
  EXPECT_THAT(c->problems, ElementsAre("wTotalLength 255 but only 110 bytes"));
  EXPECT_EQ(classify_mode(0x12D1, 0x1446, *c), ModemMode::Mbim);
}

TEST(DescriptorsMalformed, WTotalLengthShorterThanTheBytes) {
  Raw raw = kHuawei1446Config2;
  raw[2] = 87;  // ends right after interface 1 alt 1's endpoints: interface 2 is not seen
  const auto c = parse(raw, 0x12D1, 0x1446);
  ASSERT_TRUE(c);
  EXPECT_THAT(functions(*c), ElementsAre("0:mbim", "1:cdc-data"));
  EXPECT_THAT(c->problems, ElementsAre("bNumInterfaces 3 but 2 interfaces found"));
  raw[2] = 90;  // ... and now the cut goes through interface 2's descriptor
  EXPECT_THAT(parse(raw, 0x12D1, 0x1446)->problems,
              Contains(HasSubstr("offset 87: descriptor type 0x04 bLength 9 runs past the end (3 bytes left)")));
  // A buffer larger than the configuration is normal: the tail is ignored without a problem.
  EXPECT_THAT(parse(kHuawei1446Config2 + Raw{0xDE, 0xAD}, 0x12D1, 0x1446)->problems, IsEmpty());
}

TEST(DescriptorsMalformed, WTotalLengthBelowTheHeader) {
  Raw raw = kHuawei1446Config1;
  raw[2] = 4;
  const auto c = parse(raw, 0x12D1, 0x1446);
  ASSERT_TRUE(c);
  EXPECT_THAT(c->problems, ElementsAre(HasSubstr("wTotalLength 4 is shorter than the header")));
  EXPECT_THAT(functions(*c), ElementsAre("0:mass-storage"));
}

TEST(DescriptorsMalformed, DescriptorsOutsideAnyInterfaceAndDuplicates) {
  const Raw raw = ConfigBuilder()
                      .bytes({0x07, 0x05, 0x81, 0x02, 0x00, 0x02, 0x00})  // endpoint before any interface
                      .bytes(header_fd())                                 // FD before any interface
                      .interface(0, 0, 0x08, 0x06, 0x50)
                      .bulk_in(0x81)
                      .bulk_out(0x01)
                      .bytes({0x09, 0x04, 0x00, 0x00, 0x02, 0xFF, 0xFF, 0xFF, 0x00})  // alt 0 again
                      .bytes({0x07, 0x05, 0x82, 0x02, 0x00, 0x02, 0x00})  // belongs to the duplicate
                      .bytes({0x05, 0x04, 0x01, 0x00, 0x00})              // interface of 5 bytes
                      .bytes({0x07, 0x05, 0x83, 0x02, 0x00, 0x02, 0x00})  // belongs to the short one
                      .build();
  const auto c = parse(raw, 0x12D1, 0x1F01);
  ASSERT_TRUE(c);
  EXPECT_THAT(c->problems, ElementsAre(HasSubstr("offset 9: endpoint 0x81 outside any interface"),
                                       HasSubstr("offset 16: functional descriptor 0x00 outside any interface"),
                                       HasSubstr("interface 0 alt setting 0 appears twice"),
                                       HasSubstr("endpoint 0x82 outside any interface"),
                                       HasSubstr("interface descriptor of 5 bytes (needs 9)"),
                                       HasSubstr("endpoint 0x83 outside any interface")));
  ASSERT_EQ(c->interfaces.size(), 1u);
  EXPECT_EQ(c->interfaces[0].alt_settings.size(), 1u);
  EXPECT_EQ(c->interfaces[0].alt_settings[0].endpoints.size(), 2u);
  EXPECT_EQ(c->interfaces[0].function, Function::MassStorage);
}

TEST(DescriptorsMalformed, ADifferingSecondFunctionalDescriptorIsReported) {
  const Raw raw = ConfigBuilder()
                      .interface(0, 0, 0x02, 0x0E, 0x00)
                      .bytes(union_fd(0, 1) + union_fd(0, 2) + mbim_fd(1024, 16, 20, 1500, 0x20) +
                             mbim_fd(4096, 16, 20, 1500, 0x20))
                      .interface(1, 1, 0x0A, 0x00, 0x02)
                      .bulk_in(0x81)
                      .bulk_out(0x01)
                      .build();
  const auto c = parse(raw, 0x12D1, 0x1446);
  ASSERT_TRUE(c);
  EXPECT_EQ(at(*c, 0).mbim->max_control_message, 1024);  // the first is kept
  EXPECT_THAT(at(*c, 0).union_subordinates, ElementsAre(1));
  EXPECT_THAT(c->problems, ElementsAre(HasSubstr("a second Union functional descriptor differs"),
                                       HasSubstr("a second MBIM functional descriptor differs")));
}

TEST(DescriptorsMalformed, ProblemsAreCapped) {
  ConfigBuilder b;
  for (int i = 0; i < 500; ++i) b.bytes({0x03, 0x24, 0x00});  // FD outside any interface, 500 times
  const auto c = parse(b.build(), 0x12D1, 0x1506);
  ASSERT_TRUE(c);
  ASSERT_EQ(c->problems.size(), kMaxProblems + 1);  // 500 problems in all, kMaxProblems listed
  EXPECT_EQ(c->problems.back(), "... and " + std::to_string(500 - kMaxProblems) + " more problems");
}

TEST(DescriptorsMalformed, EveryPrefixOfRealConfigurations) {
  const std::vector<std::tuple<Raw, std::uint16_t, std::uint16_t>> devices = {
      {kHuawei1506, 0x12D1, 0x1506},       {kHuawei1446Config2, 0x12D1, 0x1446},
      {quectel_rm500q(), 0x2C7C, 0x0800},  {telit_fe990(), 0x1BC7, 0x1081},
      {fibocom_fm350(true), 0x0E8D, 0x7127}, {ncm_iad_without_union(), 0x1199, 0x68C0},
  };
  for (const auto& [raw, vid, pid] : devices) {
    for (std::size_t n = 0; n <= raw.size(); ++n) {
      const auto c = parse(Raw(raw.begin(), raw.begin() + static_cast<std::ptrdiff_t>(n)), vid, pid);
      if (n < 9) {
        EXPECT_FALSE(c) << n;
        continue;
      }
      ASSERT_TRUE(c) << n;
      check_invariants(*c);
      if (n < raw.size()) {
        EXPECT_THAT(c->problems, Contains(HasSubstr("but only " + std::to_string(n) + " bytes"))) << n;
      } else {
        EXPECT_THAT(c->problems, IsEmpty());
      }
      (void)classify_mode(vid, pid, *c);
    }
  }
}

TEST(DescriptorsMalformed, RandomBytesAndMutationsNeverBreakTheInvariants) {
  std::mt19937 rng(20261121);
  const std::vector<Raw> seeds = {kHuawei1506, kHuawei1446Config2, quectel_rm500q(), telit_fe990(),
                                  fibocom_fm350(false), kKeyboard};
  const std::uint8_t types[] = {0x04, 0x05, 0x0B, 0x24, 0x21, 0x30, 0x00};
  for (int iteration = 0; iteration < 20000; ++iteration) {
    Raw raw;
    if (iteration % 2 == 0) {  // a real configuration with a few bytes changed
      raw = seeds[static_cast<std::size_t>(iteration / 2) % seeds.size()];
      for (auto k = rng() % 6; k-- > 0;)
        raw[rng() % raw.size()] = static_cast<std::uint8_t>(rng());
    } else {  // a valid header and descriptors of random length and plausible type
      raw = {0x09, 0x02, 0, 0, static_cast<std::uint8_t>(rng() % 4), 1, 0, 0x80, 0xFA};
      for (auto k = rng() % 24; k-- > 0;) {
        const std::uint8_t length = static_cast<std::uint8_t>(rng() % 16);
        raw.push_back(length);
        raw.push_back(types[rng() % std::size(types)]);
        for (int j = 2; j < length; ++j) raw.push_back(static_cast<std::uint8_t>(rng() % 4 == 0 ? rng() : rng() % 3));
      }
      const auto total = static_cast<std::uint16_t>(rng() % 2 ? raw.size() : rng() % 300);
      raw[2] = ConfigBuilder::lo(total);
      raw[3] = ConfigBuilder::hi(total);
    }
    const std::uint16_t vids[] = {0x12D1, 0x2C7C, 0x1199, 0x05C6, 0x1234};
    const std::uint16_t vid = vids[rng() % std::size(vids)];
    const auto c = parse(raw, vid, 0x9008);
    if (!c) {  // only a header that is not one (a mutation may hit it)
      EXPECT_TRUE(raw[0] < 9 || raw[1] != 0x02) << "iteration " << iteration;
      continue;
    }
    check_invariants(*c);
    (void)classify_mode(vid, 0x9008, *c);
    if (::testing::Test::HasFailure()) {
      ADD_FAILURE() << "iteration " << iteration;
      return;
    }
  }
}

// ================================ fuzz seeds ===================================================
// The seeds of tests/fuzz/corpus/descriptors are these encodings, prefixed with the VID and PID
// (little-endian) the fuzz target reads from its first four bytes. This test checks the files
// when it can find the source tree; WWAN_WRITE_DESCRIPTOR_SEEDS=<dir> writes them.
std::vector<std::pair<std::string, Raw>> fuzz_seeds() {
  const auto seed = [](std::uint16_t vid, std::uint16_t pid, const Raw& cfg) {
    return Raw{ConfigBuilder::lo(vid), ConfigBuilder::hi(vid), ConfigBuilder::lo(pid), ConfigBuilder::hi(pid)} + cfg;
  };
  Raw blength0 = kHuawei1446Config2;
  blength0[17] = 0;  // interface 0's descriptor (after header and IAD) gets bLength 0
  return {
      {"huawei-1506-d2-ncm.bin", seed(0x12D1, 0x1506, kHuawei1506)},
      {"huawei-1446-d3-cfg1-zerocd.bin", seed(0x12D1, 0x1446, kHuawei1446Config1)},
      {"huawei-1446-d3-cfg2-mbim.bin", seed(0x12D1, 0x1446, kHuawei1446Config2)},
      {"huawei-me909s-821-ff0616.bin", seed(0x12D1, 0x15C1, huawei_me909s_821())},
      {"sierra-em7455-d5-mbim-12-13.bin", seed(0x1199, 0x9079, sierra_mbim(0xA0))},
      {"quectel-rm500q-d7-qmi.bin", seed(0x2C7C, 0x0800, quectel_rm500q())},
      {"telit-fe990-d8-mbim-extended.bin", seed(0x1BC7, 0x1081, telit_fe990())},
      {"fibocom-fm350-d1-7127-rndis.bin", seed(0x0E8D, 0x7127, fibocom_fm350(true))},
      {"ncm-iad-without-union.bin", seed(0x1199, 0x68C0, ncm_iad_without_union())},
      {"qualcomm-9008-qdl.bin", seed(0x05C6, 0x9008, ConfigBuilder(1, 0x80, 1)
                                                          .interface(0, 0, 0xFF, 0xFF, 0xFF)
                                                          .bulk_in(0x81)
                                                          .bulk_out(0x01)
                                                          .build())},
      {"keyboard.bin", seed(0x046D, 0xC31C, kKeyboard)},
      {"malformed-blength0.bin", seed(0x12D1, 0x1446, blength0)},
  };
}

std::filesystem::path find_corpus_dir() {
  namespace fs = std::filesystem;
  // __FILE__ is relative to the build directory under meson; tests run from there or below it.
  const fs::path here = fs::path(__FILE__).parent_path();
  for (const fs::path& base : {fs::current_path(), fs::current_path().parent_path()}) {
    std::error_code ec;
    const fs::path dir = fs::weakly_canonical(base / here / ".." / "fuzz" / "corpus" / "descriptors", ec);
    if (!ec && fs::is_directory(dir)) return dir;
  }
  return {};
}

TEST(DescriptorsFuzzSeeds, CorpusFilesAreTheseEncodings) {
  const auto seeds = fuzz_seeds();
  if (const char* out = std::getenv("WWAN_WRITE_DESCRIPTOR_SEEDS")) {
    for (const auto& [name, bytes] : seeds) {
      std::ofstream f(std::filesystem::path(out) / name, std::ios::binary);
      f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
      ASSERT_TRUE(f.good()) << name;
    }
  }
  const std::filesystem::path dir = find_corpus_dir();
  if (dir.empty()) GTEST_SKIP() << "tests/fuzz/corpus/descriptors not found from " << std::filesystem::current_path();
  for (const auto& [name, bytes] : seeds) {
    std::ifstream f(dir / name, std::ios::binary);
    ASSERT_TRUE(f.good()) << dir / name << " is missing";
    const Raw on_disk((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    EXPECT_EQ(on_disk, bytes) << name << " differs from its encoding here";
  }
}

}  // namespace
}  // namespace wwan::usb
