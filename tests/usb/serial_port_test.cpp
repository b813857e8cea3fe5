// find_serial_at_port: which interface of a real composition carries AT over its bulk pair.
// Devices: the E3531s-class 12d1:1506 of usb_descriptors.md D2 (the emulated E3372's bytes, PCUI at
// if3 ff/03/02), the E3372h-153 stick mode after AT^SETPORT="A1,A2;12,1,16,A1,A2" (if0 4G PCUI
// ff/03/12, if1 3G modem ff/03/01, if2 NCM ff/03/16; gist aliicex, gargoyle#537), the FM350-GL
// in modes 40 and 41 (D1: AT on if6), and shapes that must not be taken for an AT port.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "sim/descriptor_builder.hpp"
#include "sim/rndis_fm350.hpp"
#include "sim/modem.hpp"
#include "usb/descriptors.hpp"
#include "usb/serial_port.hpp"

namespace wwan::usb {
namespace {

using ::testing::HasSubstr;
using sim::kBulk;
using sim::kInterrupt;

Configuration parse(const std::vector<std::uint8_t>& descriptors) {
  const auto dev = parse_device_descriptor(std::span(descriptors).first(18));
  const auto configs = parse_configurations(std::span(descriptors).subspan(18), dev->vendor_id, dev->product_id);
  return configs.at(0);
}

Configuration huawei(const std::vector<sim::ByteVector>& parts) {
  return parse(sim::concat({sim::device_descriptor(0x0200, 0, 0, 0, 0x12d1, 0x1506, 0x0102, 1, 2, 0, 1),
                            sim::configuration(1, 0x80, 0xfa, parts)}));
}

TEST(SerialAtPort, E3531sClassD2HasItsPcuiOnInterface3) {
  const auto modem = sim::make_modem("huawei-e3372");
  std::string error;
  const auto port = find_serial_at_port(parse(modem->identity().descriptors), error);
  ASSERT_TRUE(port) << error;
  EXPECT_EQ(port->interface_number, 3);  // not if0 ff/03/01, the modem (PPP) port
  EXPECT_EQ(port->function, Function::At);
  EXPECT_EQ(port->alt_setting, 0);
  EXPECT_EQ(port->bulk_in.address, 0x87);
  EXPECT_EQ(port->bulk_out.address, 0x05);
  EXPECT_EQ(port->describe(), "interface 3 (ff/03/02, bulk 0x87/0x05)");
}

TEST(SerialAtPort, E3372h153StickModeHasItsPcuiOnInterface0) {
  const Configuration c = huawei({
      sim::interface(0, 0, 3, 0xff, 0x03, 0x12), sim::endpoint(0x81, kInterrupt, 16, 5),
      sim::endpoint(0x82, kBulk, 512, 0), sim::endpoint(0x01, kBulk, 512, 0),       // 12 = 4G PCUI
      sim::interface(1, 0, 2, 0xff, 0x03, 0x01), sim::endpoint(0x83, kBulk, 512, 0),
      sim::endpoint(0x02, kBulk, 512, 0),                                              // 01 = 3G modem
      sim::interface(2, 0, 1, 0xff, 0x03, 0x16), sim::endpoint(0x85, kInterrupt, 16, 9),
      sim::interface(2, 1, 3, 0xff, 0x03, 0x16), sim::endpoint(0x85, kInterrupt, 16, 9),
      sim::endpoint(0x84, kBulk, 512, 0), sim::endpoint(0x03, kBulk, 512, 0),       // 16 = NCM
  });
  std::string error;
  const auto port = find_serial_at_port(c, error);
  ASSERT_TRUE(port) << error;
  EXPECT_EQ(port->interface_number, 0);
  EXPECT_EQ(port->interface_protocol, 0x12);
  EXPECT_EQ(port->bulk_in.address, 0x82);  // the bulk pair, not the interrupt endpoint
  EXPECT_EQ(port->bulk_out.address, 0x01);
}

TEST(SerialAtPort, Fm350HasItsAtPortOnInterface6InBothModes) {
  for (const auto mode : {sim::fm350::UsbMode::Mode40, sim::fm350::UsbMode::Mode41}) {
    std::string error;
    const auto port = find_serial_at_port(parse(sim::fm350::identity(mode, "X").descriptors), error);
    ASSERT_TRUE(port) << error;
    EXPECT_EQ(port->interface_number, 6);
    EXPECT_EQ(port->bulk_in.address, 0x87);
    EXPECT_EQ(port->bulk_out.address, 0x06);
  }
}

TEST(SerialAtPort, AModemPortIsTheSecondChoice) {
  const Configuration c = huawei({sim::interface(0, 0, 2, 0xff, 0x03, 0x01), sim::endpoint(0x81, kBulk, 512, 0),
                                  sim::endpoint(0x01, kBulk, 512, 0)});
  std::string error;
  const auto port = find_serial_at_port(c, error);
  ASSERT_TRUE(port) << error;
  EXPECT_EQ(port->function, Function::Modem);
}

TEST(SerialAtPort, NoPortAndAPortWithoutBulkAreErrors) {
  std::string error;
  // A Huawei PCUI whose only endpoint is interrupt: nothing to carry the bytes.
  EXPECT_FALSE(find_serial_at_port(huawei({sim::interface(0, 0, 1, 0xff, 0x03, 0x02),
                                           sim::endpoint(0x81, kInterrupt, 16, 5)}),
                                   error));
  EXPECT_THAT(error, HasSubstr("no bulk IN/OUT pair"));
  // Vendor-class ports of an unknown vendor are not guessed at.
  const Configuration unknown = parse(sim::concat(
      {sim::device_descriptor(0x0200, 0, 0, 0, 0x1234, 0x5678, 0x0100, 0, 0, 0, 1),
       sim::configuration(1, 0x80, 0xfa,
                          {sim::interface(0, 0, 2, 0xff, 0x00, 0x00), sim::endpoint(0x81, kBulk, 512, 0),
                           sim::endpoint(0x01, kBulk, 512, 0)})}));
  EXPECT_FALSE(find_serial_at_port(unknown, error));
  EXPECT_THAT(error, HasSubstr("no serial AT interface"));
}

}  // namespace
}  // namespace wwan::usb
