// CDC / NCM control codec tests. Golden bytes are written out field by field from the spec tables
// (NCM 1.0 Table 6-3 / 6-4, CDC 1.2 §6.3) in the style of libmbim's builder tests, so a field in
// the wrong place or the wrong byte order fails on the line that names it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <vector>

#include "control/cdc_ncm.hpp"

namespace wwan::cdc {
namespace {

using Vec = std::vector<std::uint8_t>;

Vec cat(std::initializer_list<Vec> parts) {
  Vec out;
  for (const Vec& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// The Linux gadget's f_ncm answer to GET_NTB_PARAMETERS: NTB16+NTB32, 16 KiB both ways.
const Vec kFncmParameters = cat({
    {0x1c, 0x00},              // wLength 28
    {0x03, 0x00},              // bmNtbFormatsSupported: NTB16 | NTB32
    {0x00, 0x40, 0x00, 0x00},  // dwNtbInMaxSize 16384
    {0x04, 0x00},              // wNdpInDivisor 4
    {0x00, 0x00},              // wNdpInPayloadRemainder 0
    {0x04, 0x00},              // wNdpInAlignment 4
    {0x00, 0x00},              // wPadding1
    {0x00, 0x40, 0x00, 0x00},  // dwNtbOutMaxSize 16384
    {0x04, 0x00},              // wNdpOutDivisor 4
    {0x00, 0x00},              // wNdpOutPayloadRemainder 0
    {0x04, 0x00},              // wNdpOutAlignment 4
    {0x00, 0x00},              // wNtbOutMaxDatagrams 0 (no limit)
});

NtbParameters fncm() {
  NtbParameters p;
  p.ntb_formats_supported = kNtbFormatsSupported16 | kNtbFormatsSupported32;
  p.ntb_in_max_size = 16384;
  p.ntb_out_max_size = 16384;
  return p;
}

TEST(CdcNcmTest, RequestCodesMatchTheSpecTables) {
  // CDC 1.2 Table 19 / NCM 1.0 Table 6-2 / Linux uapi cdc.h (anchors.md §1.2).
  EXPECT_EQ(kSendEncapsulatedCommand, 0x00);
  EXPECT_EQ(kGetEncapsulatedResponse, 0x01);
  EXPECT_EQ(kSetEthernetPacketFilter, 0x43);
  EXPECT_EQ(kGetNtbParameters, 0x80);
  EXPECT_EQ(kGetNtbFormat, 0x83);
  EXPECT_EQ(kSetNtbFormat, 0x84);
  EXPECT_EQ(kGetNtbInputSize, 0x85);
  EXPECT_EQ(kSetNtbInputSize, 0x86);
  EXPECT_EQ(kGetMaxDatagramSize, 0x87);
  EXPECT_EQ(kSetMaxDatagramSize, 0x88);
  EXPECT_EQ(kGetCrcMode, 0x89);
  EXPECT_EQ(kSetCrcMode, 0x8a);
  EXPECT_EQ(kNotifyNetworkConnection, 0x00);
  EXPECT_EQ(kNotifyResponseAvailable, 0x01);
  EXPECT_EQ(kNotifyConnectionSpeedChange, 0x2a);
  EXPECT_STREQ(request_name(0x80), "GET_NTB_PARAMETERS");
  EXPECT_STREQ(request_name(0x84), "SET_NTB_FORMAT");
  EXPECT_STREQ(request_name(0x7f), "UNKNOWN");
  EXPECT_STREQ(notification_name(0x2a), "CONNECTION_SPEED_CHANGE");
}

TEST(CdcNcmTest, NtbParametersEncodeToTheGoldenBytes) {
  std::array<std::uint8_t, 40> out{};
  ASSERT_EQ(encode_ntb_parameters(fncm(), out), kNtbParametersSize);
  EXPECT_EQ(Vec(out.begin(), out.begin() + 28), kFncmParameters);
  std::array<std::uint8_t, 27> short_out{};
  EXPECT_EQ(encode_ntb_parameters(fncm(), short_out), 0u);
}

TEST(CdcNcmTest, NtbParametersDecodeEveryFieldFromItsOffset) {
  // Each field a distinct value so that a swapped pair cannot pass.
  const Vec bytes = cat({
      {0x1c, 0x00},              // wLength 28
      {0x02, 0x00},              // bmNtbFormatsSupported: NTB32 only
      {0x00, 0x00, 0x02, 0x00},  // dwNtbInMaxSize 0x20000
      {0x08, 0x00},              // wNdpInDivisor 8
      {0x02, 0x00},              // wNdpInPayloadRemainder 2
      {0x10, 0x00},              // wNdpInAlignment 16
      {0xaa, 0x55},              // wPadding1 (carried, not interpreted)
      {0x00, 0x00, 0x01, 0x00},  // dwNtbOutMaxSize 65536
      {0x20, 0x00},              // wNdpOutDivisor 32
      {0x0e, 0x00},              // wNdpOutPayloadRemainder 14
      {0x40, 0x00},              // wNdpOutAlignment 64
      {0x28, 0x00},              // wNtbOutMaxDatagrams 40
  });
  const auto p = decode_ntb_parameters(bytes);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->length, 28);
  EXPECT_EQ(p->ntb_formats_supported, 2);
  EXPECT_FALSE(p->supports(ntb::NtbFormat::Ntb16));
  EXPECT_TRUE(p->supports(ntb::NtbFormat::Ntb32));
  EXPECT_EQ(p->ntb_in_max_size, 0x20000u);
  EXPECT_EQ(p->ndp_in_divisor, 8);
  EXPECT_EQ(p->ndp_in_payload_remainder, 2);
  EXPECT_EQ(p->ndp_in_alignment, 16);
  EXPECT_EQ(p->padding1, 0x55aa);
  EXPECT_EQ(p->ntb_out_max_size, 65536u);
  EXPECT_EQ(p->ndp_out_divisor, 32);
  EXPECT_EQ(p->ndp_out_payload_remainder, 14);
  EXPECT_EQ(p->ndp_out_alignment, 64);
  EXPECT_EQ(p->ntb_out_max_datagrams, 40);
  // Round trip.
  std::array<std::uint8_t, 28> again{};
  ASSERT_EQ(encode_ntb_parameters(*p, again), 28u);
  EXPECT_EQ(Vec(again.begin(), again.end()), bytes);
}

TEST(CdcNcmTest, NtbParametersNeedAll28BytesWhateverWLengthSays) {
  EXPECT_FALSE(decode_ntb_parameters(Vec(kFncmParameters.begin(), kFncmParameters.end() - 1)));
  EXPECT_FALSE(decode_ntb_parameters({}));
  Vec liar = kFncmParameters;
  liar[0] = 0xff;  // wLength 255: reported, not trusted
  liar.push_back(0x99);
  const auto p = decode_ntb_parameters(liar);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->length, 0xff);
  EXPECT_EQ(p->ntb_in_max_size, 16384u);
}

TEST(CdcNcmTest, OutParamsTakeTheOutHalfAndTheQuirkRow) {
  NtbParameters p = fncm();
  p.ndp_out_divisor = 8;
  p.ndp_out_payload_remainder = 2;
  p.ndp_out_alignment = 16;
  p.ntb_out_max_datagrams = 12;
  const ntb::NtbOutParams o = out_params(p, ntb::NtbFormat::Ntb32, true);
  EXPECT_EQ(o.format, ntb::NtbFormat::Ntb32);
  EXPECT_EQ(o.ntb_out_max_size, 16384u);
  EXPECT_EQ(o.ndp_out_divisor, 8);
  EXPECT_EQ(o.ndp_out_payload_remainder, 2);
  EXPECT_EQ(o.ndp_out_alignment, 16);
  EXPECT_EQ(o.ntb_out_max_datagrams, 12);
  EXPECT_TRUE(o.ndp_at_end);
  EXPECT_TRUE(o.ethernet_framing);
}

TEST(CdcNcmTest, NtbInputSizeShortAndLongForms) {
  std::array<std::uint8_t, 8> out{};
  ASSERT_EQ(encode_ntb_input_size({16384, 7}, false, out), 4u);
  EXPECT_EQ(Vec(out.begin(), out.begin() + 4), (Vec{0x00, 0x40, 0x00, 0x00}));  // dwNtbInMaxSize only
  ASSERT_EQ(encode_ntb_input_size({0x10000, 40}, true, out), 8u);
  EXPECT_EQ(Vec(out.begin(), out.end()), cat({
                                             {0x00, 0x00, 0x01, 0x00},  // dwNtbInMaxSize 65536
                                             {0x28, 0x00},              // wNtbInMaxDatagrams 40
                                             {0x00, 0x00},              // wReserved
                                         }));
  std::array<std::uint8_t, 7> seven{};
  EXPECT_EQ(encode_ntb_input_size({1, 1}, true, seven), 0u);

  EXPECT_EQ(decode_ntb_input_size(Vec{0x00, 0x08, 0x00, 0x00}), (NtbInputSize{2048, 0}));
  EXPECT_EQ(decode_ntb_input_size(Vec{0x00, 0x00, 0x01, 0x00, 0x10, 0x00, 0xff, 0xff}), (NtbInputSize{65536, 16}));
  EXPECT_FALSE(decode_ntb_input_size(Vec{0x00, 0x08, 0x00}));
  EXPECT_FALSE(decode_ntb_input_size(Vec(5, 0)));
  EXPECT_FALSE(decode_ntb_input_size(Vec(12, 0)));
}

TEST(CdcNcmTest, NtbFormatValues) {
  EXPECT_EQ(ntb_format_value(ntb::NtbFormat::Ntb16), 0);
  EXPECT_EQ(ntb_format_value(ntb::NtbFormat::Ntb32), 1);
  EXPECT_EQ(ntb_format_from_value(0), ntb::NtbFormat::Ntb16);
  EXPECT_EQ(ntb_format_from_value(1), ntb::NtbFormat::Ntb32);
  EXPECT_FALSE(ntb_format_from_value(2));
}

TEST(CdcNcmTest, NotificationsEncodeToTheGoldenBytes) {
  std::array<std::uint8_t, 16> out{};
  ASSERT_EQ(encode_network_connection(1, true, out), 8u);
  EXPECT_EQ(Vec(out.begin(), out.begin() + 8), cat({
                                                   {0xa1},        // bmRequestType: IN, class, interface
                                                   {0x00},        // NETWORK_CONNECTION
                                                   {0x01, 0x00},  // wValue 1: connected
                                                   {0x01, 0x00},  // wIndex: interface 1
                                                   {0x00, 0x00},  // wLength 0
                                               }));
  ASSERT_EQ(encode_network_connection(0, false, out), 8u);
  EXPECT_EQ(Vec(out.begin(), out.begin() + 8), (Vec{0xa1, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}));
  ASSERT_EQ(encode_response_available(1, out), 8u);
  EXPECT_EQ(Vec(out.begin(), out.begin() + 8), (Vec{0xa1, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00}));
  ASSERT_EQ(encode_connection_speed_change(0, {150'000'000, 50'000'000}, out), 16u);
  EXPECT_EQ(Vec(out.begin(), out.end()), cat({
                                             {0xa1, 0x2a},              // CONNECTION_SPEED_CHANGE
                                             {0x00, 0x00},              // wValue 0
                                             {0x00, 0x00},              // wIndex 0
                                             {0x08, 0x00},              // wLength 8
                                             {0x80, 0xd1, 0xf0, 0x08},  // DLBitRate 150000000
                                             {0x80, 0xf0, 0xfa, 0x02},  // ULBitRate 50000000
                                         }));
  std::array<std::uint8_t, 15> short_out{};
  EXPECT_EQ(encode_connection_speed_change(0, {}, short_out), 0u);
  EXPECT_EQ(encode_response_available(0, std::span<std::uint8_t>(short_out).subspan(0, 7)), 0u);
}

TEST(CdcNcmTest, NotificationsDecodeIncludingASplitSpeedChange) {
  const Vec speed = {0xa1, 0x2a, 0x00, 0x00, 0x03, 0x00, 0x08, 0x00, 0x80, 0xd1, 0xf0, 0x08, 0x80, 0xf0, 0xfa, 0x02};
  const auto n = decode_notification(speed);
  ASSERT_TRUE(n);
  EXPECT_EQ(n->header.notification, kNotifyConnectionSpeedChange);
  EXPECT_EQ(n->header.index, 3);
  EXPECT_EQ(n->header.length, 8);
  EXPECT_TRUE(n->complete);
  EXPECT_EQ(decode_connection_speed(n->data), (ConnectionSpeed{150'000'000, 50'000'000}));

  // The first half of a SPEED_CHANGE sent in two 8-byte interrupt transfers.
  const auto half = decode_notification(std::span<const std::uint8_t>(speed).subspan(0, 8));
  ASSERT_TRUE(half);
  EXPECT_FALSE(half->complete);
  EXPECT_TRUE(half->data.empty());
  EXPECT_FALSE(decode_connection_speed(half->data));

  const auto ra = decode_notification(Vec{0xa1, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00});
  ASSERT_TRUE(ra);
  EXPECT_EQ(ra->header, (NotificationHeader{0xa1, kNotifyResponseAvailable, 0, 1, 0}));
  EXPECT_TRUE(ra->complete);

  EXPECT_FALSE(decode_notification(Vec{0xa1, 0x00, 0x01}));                                  // short
  EXPECT_FALSE(decode_notification(Vec{0x21, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00}));  // not IN/class
}

}  // namespace
}  // namespace wwan::cdc
