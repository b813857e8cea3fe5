// USB/IP codec tests (sim/usbip_codec.hpp). Golden bytes written field by field from
// Linux Documentation/usb/usbip_protocol.rst, so a field in the wrong place or the wrong byte order
// fails on the line that names it. USB/IP is big-endian; the SETUP packet inside stays USB's
// little-endian.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "sim/modem.hpp"
#include "sim/usbip_codec.hpp"
#include "tests/support/hex.hpp"

namespace wwan::sim::usbip {
namespace {

using test::hex;
using Vec = std::vector<std::uint8_t>;

Vec cat(std::initializer_list<Vec> parts) {
  Vec out;
  for (const Vec& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}
Vec zeros(std::size_t n) { return Vec(n, 0); }
Vec text(const char* s, std::size_t size) {
  Vec v(s, s + std::strlen(s));
  v.resize(size, 0);
  return v;
}

TEST(UsbipCodec, ImportRequestIsHeaderAndNulPaddedBusid) {
  Vec out;
  append_import_request(out, "1-1");
  EXPECT_EQ(out, cat({hex("01 11"),          // version 1.1.1
                      hex("80 03"),          // OP_REQ_IMPORT
                      hex("00 00 00 00"),    // status
                      text("1-1", 32)}));    // busid[32]
  EXPECT_EQ(out.size(), kOpHeaderSize + kBusIdSize);
  const auto h = parse_op_header(out);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->code, kOpReqImport);
  EXPECT_EQ(parse_busid(std::span(out).subspan(kOpHeaderSize)), "1-1");
}

TEST(UsbipCodec, BusidWithoutNulIsRefused) {
  const Vec body(32, 'x');
  EXPECT_FALSE(parse_busid(body));
  EXPECT_FALSE(parse_busid(Vec(31, 0)));  // short
}

ExportedDevice huawei_record() {
  ExportedDevice d;
  d.path = "/sys/x";
  d.busid = "1-1";
  d.busnum = 1;
  d.devnum = 2;
  d.speed = kSpeedHigh;
  d.vendor_id = 0x12d1;
  d.product_id = 0x1506;
  d.bcd_device = 0x0102;
  d.configuration_value = 1;
  d.num_configurations = 1;
  d.num_interfaces = 1;
  d.interfaces = {{0xff, 0x03, 0x16}};
  return d;
}

const Vec kHuaweiRecord = cat({
    text("/sys/x", 256),   // path[256]
    text("1-1", 32),       // busid[32]
    hex("00 00 00 01"),    // busnum 1
    hex("00 00 00 02"),    // devnum 2
    hex("00 00 00 03"),    // speed: USB_SPEED_HIGH
    hex("12 d1"),          // idVendor
    hex("15 06"),          // idProduct
    hex("01 02"),          // bcdDevice
    hex("00 00 00"),       // bDeviceClass / SubClass / Protocol
    hex("01"),             // bConfigurationValue
    hex("01"),             // bNumConfigurations
    hex("01"),             // bNumInterfaces
});

TEST(UsbipCodec, ImportReplyCarriesTheDeviceRecord) {
  const ExportedDevice d = huawei_record();
  Vec out;
  append_import_reply(out, 0, &d);
  EXPECT_EQ(out, cat({hex("01 11 00 03 00 00 00 00"), kHuaweiRecord}));  // OP_REP_IMPORT, status 0
  ASSERT_EQ(kHuaweiRecord.size(), kDeviceRecordSize);
  const auto back = parse_device_record(std::span(out).subspan(kOpHeaderSize));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->busid, "1-1");
  EXPECT_EQ(back->vendor_id, 0x12d1);
  EXPECT_EQ(back->product_id, 0x1506);
  EXPECT_EQ(back->speed, kSpeedHigh);
  EXPECT_EQ(devid(back->busnum, back->devnum), 0x00010002u);
}

TEST(UsbipCodec, RefusedImportIsTheHeaderAlone) {
  Vec out;
  append_import_reply(out, 1, nullptr);
  EXPECT_EQ(out, hex("01 11 00 03 00 00 00 01"));
}

TEST(UsbipCodec, DevlistReplyListsInterfacesAfterTheRecord) {
  const ExportedDevice d = huawei_record();
  Vec out;
  append_devlist_reply(out, std::span(&d, 1));
  EXPECT_EQ(out, cat({hex("01 11 00 05 00 00 00 00"),  // OP_REP_DEVLIST, status 0
                      hex("00 00 00 01"),              // number of exported devices
                      kHuaweiRecord,
                      hex("ff 03 16 00")}));           // interface 0: class, subclass, protocol, padding
}

TEST(UsbipCodec, ExportedDeviceComesFromTheModemsDescriptors) {
  const auto modem = make_modem("huawei-e3372");
  const auto d = exported_device(modem->identity(), "1-1", 1, 2);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->vendor_id, 0x12d1);
  EXPECT_EQ(d->product_id, 0x1506);
  EXPECT_EQ(d->speed, kSpeedHigh);
  EXPECT_EQ(d->configuration_value, 1);
  ASSERT_EQ(d->interfaces.size(), d->num_interfaces);
  // The E3372's composition (vectors/usb_descriptors.md D2): the NCM function ff/03/16 among them.
  bool ncm = false;
  for (const auto& i : d->interfaces) ncm |= i.interface_class == 0xff && i.interface_subclass == 0x03 && i.interface_protocol == 0x16;
  EXPECT_TRUE(ncm);
}

// GET_DESCRIPTOR(DEVICE) as vhci-hcd submits it during enumeration.
const Vec kGetDeviceDescriptor = cat({
    hex("00 00 00 01"),  // command: USBIP_CMD_SUBMIT
    hex("00 00 00 05"),  // seqnum 5
    hex("00 01 00 02"),  // devid: bus 1, device 2
    hex("00 00 00 01"),  // direction: IN
    hex("00 00 00 00"),  // ep 0
    hex("00 00 02 00"),  // transfer_flags: URB_DIR_IN
    hex("00 00 00 12"),  // transfer_buffer_length 18
    hex("00 00 00 00"),  // start_frame
    hex("00 00 00 00"),  // number_of_packets
    hex("00 00 00 00"),  // interval
    hex("80 06 00 01 00 00 12 00"),  // setup: IN standard device, GET_DESCRIPTOR, wValue 0x0100, wLength 18 (LE)
});

TEST(UsbipCodec, DecodesAControlSubmit) {
  ASSERT_EQ(kGetDeviceDescriptor.size(), kHeaderSize);
  const Decoded d = decode_command(kGetDeviceDescriptor, 65536);
  ASSERT_EQ(d.status, DecodeStatus::ok) << d.error;
  EXPECT_EQ(d.consumed, kHeaderSize);
  EXPECT_EQ(d.command.command, kCmdSubmit);
  EXPECT_EQ(d.command.seqnum, 5u);
  EXPECT_EQ(d.command.devid, 0x00010002u);
  EXPECT_EQ(d.command.direction, kDirectionIn);
  EXPECT_EQ(d.command.endpoint_address(), 0x80);
  EXPECT_EQ(d.command.submit.transfer_buffer_length, 18u);
  EXPECT_EQ(d.command.submit.setup.request_type, 0x80);
  EXPECT_EQ(d.command.submit.setup.request, 6);
  EXPECT_EQ(d.command.submit.setup.value, 0x0100);
  EXPECT_EQ(d.command.submit.setup.length, 18);
  // The encoder writes the same bytes.
  Vec again;
  append_cmd_submit(again, 5, 0x00010002, kDirectionIn, 0, d.command.submit, {});
  EXPECT_EQ(again, kGetDeviceDescriptor);
}

const Vec kBulkOut = cat({
    hex("00 00 00 01"),  // USBIP_CMD_SUBMIT
    hex("00 00 00 09"),  // seqnum 9
    hex("00 01 00 02"),  // devid
    hex("00 00 00 00"),  // direction: OUT
    hex("00 00 00 01"),  // ep 1
    hex("00 00 00 00"),  // transfer_flags
    hex("00 00 00 04"),  // transfer_buffer_length 4
    hex("00 00 00 00 00 00 00 00 00 00 00 00"),  // start_frame, number_of_packets, interval
    hex("00 00 00 00 00 00 00 00"),              // setup (unused off ep 0)
    hex("de ad be ef"),                          // the OUT data
});

TEST(UsbipCodec, BulkOutNeedsItsDataBeforeItDecodes) {
  for (std::size_t n = 0; n < kBulkOut.size(); ++n)
    EXPECT_EQ(decode_command(std::span(kBulkOut).first(n), 65536).status, DecodeStatus::need_more) << n;
  const Decoded d = decode_command(kBulkOut, 65536);
  ASSERT_EQ(d.status, DecodeStatus::ok);
  EXPECT_EQ(d.consumed, kBulkOut.size());
  EXPECT_EQ(d.command.endpoint_address(), 0x01);
  EXPECT_EQ(Vec(d.command.out_data.begin(), d.command.out_data.end()), hex("de ad be ef"));
}

TEST(UsbipCodec, DecodesAnUnlink) {
  const Vec unlink = cat({
      hex("00 00 00 02"),  // USBIP_CMD_UNLINK
      hex("00 00 00 0a"),  // seqnum 10
      hex("00 01 00 02"),  // devid
      hex("00 00 00 00"),  // direction
      hex("00 00 00 00"),  // ep
      hex("00 00 00 09"),  // unlink_seqnum 9
      zeros(24),           // padding
  });
  const Decoded d = decode_command(unlink, 65536);
  ASSERT_EQ(d.status, DecodeStatus::ok);
  EXPECT_EQ(d.command.command, kCmdUnlink);
  EXPECT_EQ(d.command.unlink_seqnum, 9u);
  Vec again;
  append_cmd_unlink(again, 10, 0x00010002, 9);
  EXPECT_EQ(again, unlink);
}

TEST(UsbipCodec, RefusesWhatCannotBeResynchronised) {
  Vec v = kGetDeviceDescriptor;
  v[15] = 2;  // direction 2
  EXPECT_EQ(decode_command(v, 65536).status, DecodeStatus::bad);
  v = kGetDeviceDescriptor;
  v[19] = 16;  // endpoint 16
  EXPECT_EQ(decode_command(v, 65536).status, DecodeStatus::bad);
  v = kGetDeviceDescriptor;
  v[3] = 7;  // unknown command
  EXPECT_EQ(decode_command(v, 65536).status, DecodeStatus::bad);
  v = kGetDeviceDescriptor;
  v[35] = 1;  // one isochronous packet
  EXPECT_EQ(decode_command(v, 65536).status, DecodeStatus::bad);
  v = kBulkOut;
  v[24] = 0xff;  // transfer_buffer_length 0xff000004: above the limit (and negative as an int)
  const Decoded d = decode_command(v, 65536);
  EXPECT_EQ(d.status, DecodeStatus::bad);
  EXPECT_THAT(d.error, testing::HasSubstr("above the limit"));
}

TEST(UsbipCodec, RetSubmitCarriesInDataAfterTheHeader) {
  Vec out;
  append_ret_submit(out, 5, 0, 3, hex("12 01 00"));
  EXPECT_EQ(out, cat({hex("00 00 00 03"),   // USBIP_RET_SUBMIT
                      hex("00 00 00 05"),   // seqnum 5
                      hex("00 00 00 00"),   // devid 0
                      hex("00 00 00 00"),   // direction 0
                      hex("00 00 00 00"),   // ep 0
                      hex("00 00 00 00"),   // status 0
                      hex("00 00 00 03"),   // actual_length 3
                      hex("00 00 00 00"),   // start_frame
                      hex("00 00 00 00"),   // number_of_packets
                      hex("00 00 00 00"),   // error_count
                      zeros(8),             // padding
                      hex("12 01 00")}));   // the IN data
}

TEST(UsbipCodec, RetSubmitStatusIsANegativeLinuxErrno) {
  Vec out;
  append_ret_submit(out, 1, kErrnoPipe, 0, {});
  EXPECT_EQ(Vec(out.begin() + 20, out.begin() + 24), hex("ff ff ff e0"));  // -32, -EPIPE (a STALL)
}

TEST(UsbipCodec, RetUnlink) {
  Vec out;
  append_ret_unlink(out, 10, kErrnoConnReset);
  EXPECT_EQ(out, cat({hex("00 00 00 04"),   // USBIP_RET_UNLINK
                      hex("00 00 00 0a"),   // seqnum 10
                      zeros(12),            // devid, direction, ep
                      hex("ff ff ff 98"),   // status -104, -ECONNRESET
                      zeros(24)}));         // padding
}

}  // namespace
}  // namespace wwan::sim::usbip
