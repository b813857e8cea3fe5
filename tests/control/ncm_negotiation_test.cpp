// NTB negotiation: the pure plan (clamps of insane device values, quirk switches) and the request
// sequence against the emulated modems through the in-process transport, including the E3372h
// firmware that comes back in another NTB format after the alt-setting switch.
#include "control/ncm_negotiation.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "control/quirks.hpp"
#include "sim/inprocess_transport.hpp"
#include "sim/modem.hpp"
#include "sim/ncm_modem.hpp"
#include "usb/descriptors.hpp"

namespace wwan::control {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;

// The network function of a modem model's active configuration, as open_modem finds it.
usb::NetworkFunction function_of(const sim::DeviceModel& m) {
  const auto& d = m.identity().descriptors;
  const auto dev = usb::parse_device_descriptor(std::span(d).first(18));
  const auto configs = usb::parse_configurations(std::span(d).subspan(18), dev->vendor_id, dev->product_id);
  std::string error;
  const auto f = usb::find_network_function(configs.at(0), error);
  if (!f) throw std::runtime_error(error);
  return *f;
}

cdc::NtbParameters sane() {
  cdc::NtbParameters p;
  p.ntb_formats_supported = 3;
  p.ntb_in_max_size = 32768;
  p.ntb_out_max_size = 32768;
  return p;
}

usb::NetworkFunction ncm_function(std::uint8_t caps) {
  usb::NetworkFunction f;
  f.kind = usb::Function::Ncm;
  f.ncm = usb::NcmFunctionalDescriptor{0x0100, caps};
  f.ethernet = usb::EthernetFunctionalDescriptor{0, 0, 1514, 0, 0};
  f.bulk_out.max_packet_size = 512;
  return f;
}

TEST(PlanNtb, PrefersNtb32OnlyWhenTheQuirkSaysAndTheDeviceCan) {
  Quirks huawei;
  huawei.prefer_ntb32 = true;
  EXPECT_EQ(plan_ntb(sane(), ncm_function(0), huawei).format, ntb::NtbFormat::Ntb32);
  EXPECT_EQ(plan_ntb(sane(), ncm_function(0), Quirks{}).format, ntb::NtbFormat::Ntb16);
  cdc::NtbParameters only16 = sane();
  only16.ntb_formats_supported = 1;
  EXPECT_EQ(plan_ntb(only16, ncm_function(0), huawei).format, ntb::NtbFormat::Ntb16);
}

TEST(PlanNtb, ClampsInsaneSizesAndSaysSo) {
  cdc::NtbParameters p = sane();
  p.ntb_in_max_size = 100;          // below the 2048 floor
  p.ntb_out_max_size = 0x7fffffff;  // absurd
  p.ndp_out_divisor = 3;            // not a power of two
  p.ndp_out_alignment = 0;
  const NtbPlan plan = plan_ntb(p, ncm_function(0), Quirks{});
  EXPECT_EQ(plan.ntb_in_max_size, 2048u);
  EXPECT_EQ(plan.out.ntb_out_max_size, 65535u) << "NTB16 offsets stop at 65535";
  EXPECT_EQ(plan.out.ndp_out_divisor, 4);
  EXPECT_EQ(plan.out.ndp_out_alignment, 4);
  EXPECT_THAT(plan.adjustments, Contains(HasSubstr("dwNtbInMaxSize 100")));
  EXPECT_THAT(plan.adjustments, Contains(HasSubstr("dwNtbOutMaxSize")));
  EXPECT_THAT(plan.adjustments, Contains(HasSubstr("wNdpOutDivisor 3")));

  p.ntb_in_max_size = 1u << 20;  // 1 MiB: more than any host allocates
  EXPECT_EQ(plan_ntb(p, ncm_function(0), Quirks{}).ntb_in_max_size, 65535u);
  Quirks ntb32;
  ntb32.prefer_ntb32 = true;
  EXPECT_EQ(plan_ntb(p, ncm_function(0), ntb32).ntb_in_max_size, 65536u);
}

TEST(PlanNtb, CapabilitiesDecideTheOptionalRequests) {
  const NtbPlan none = plan_ntb(sane(), ncm_function(0), Quirks{});
  EXPECT_FALSE(none.crc_off || none.set_max_datagram_size || none.input_size_long_form);
  const NtbPlan all = plan_ntb(sane(), ncm_function(cdc::kNcapCrcMode | cdc::kNcapMaxDatagramSize | cdc::kNcapNtbInputSize8),
                               Quirks{});
  EXPECT_TRUE(all.crc_off && all.set_max_datagram_size && all.input_size_long_form);
  EXPECT_EQ(all.max_datagram_size, 1514);
}

TEST(PlanNtb, PadByteUnlessTheDeviceWantsZlps) {
  cdc::NtbParameters p = sane();
  p.ntb_out_max_size = 0;  // "no limit": 65536 for NTB32, a multiple of 512
  Quirks ntb32;
  ntb32.prefer_ntb32 = true;
  EXPECT_EQ(plan_ntb(p, ncm_function(0), ntb32).out_transfer_bytes, 65537u) << "the kernel's tx_max + 1";
  ntb32.out_termination = OutTermination::zero_length_packet;
  EXPECT_EQ(plan_ntb(p, ncm_function(0), ntb32).out_transfer_bytes, 65536u);
}

TEST(Quirks, TableRowsMatchTheKernelsDevices) {
  const QuirkMatch e3372 = find_quirks(0x12d1, 0x1506, 0xff, 0x03);
  ASSERT_NE(e3372.row, nullptr);
  EXPECT_TRUE(e3372.quirks.ndp_at_end && e3372.quirks.prefer_ntb32);
  const QuirkMatch huawei_mbim = find_quirks(0x12d1, 0x15c1, 0x02, 0x0e);
  EXPECT_TRUE(huawei_mbim.quirks.ndp_at_end);
  EXPECT_FALSE(huawei_mbim.quirks.prefer_ntb32);
  EXPECT_EQ(huawei_mbim.quirks.out_termination, OutTermination::pad_one_byte);
  EXPECT_TRUE(find_quirks(0x1bc7, 0x1081, 0x02, 0x0e).quirks.avoid_alt_toggle);
  EXPECT_TRUE(find_quirks(0x413c, 0x81bb, 0x02, 0x0d).quirks.no_arp);
  EXPECT_EQ(find_quirks(0x1199, 0x9079, 0x02, 0x0e).quirks.fcc_unlock, FccUnlock::sierra_qmi);
  // Defaults: unknown MBIM sends ZLPs (except Ericsson), unknown NCM pads.
  EXPECT_EQ(find_quirks(0x2c7c, 0x0800, 0x02, 0x0e).quirks.out_termination, OutTermination::zero_length_packet);
  EXPECT_EQ(find_quirks(0x0bdb, 0x1900, 0x02, 0x0e).quirks.out_termination, OutTermination::pad_one_byte);
  EXPECT_EQ(find_quirks(0x0525, 0xa4a1, 0x02, 0x0d).row, nullptr);
  for (const QuirkRow& r : quirk_table()) EXPECT_STRNE(r.evidence, "") << r.name;
}

TEST(Negotiate, E3372GetsNtb32AndTheRequestedInputSize) {
  auto modem = sim::make_modem("huawei-e3372");
  sim::InProcessTransport t(*modem);
  const usb::NetworkFunction f = function_of(*modem);
  const QuirkMatch q = find_quirks(0x12d1, 0x1506, f);
  ASSERT_NE(q.row, nullptr) << "the Huawei vendor NCM row, matched through the function's class";
  Quirks fast = q.quirks;
  fast.settle_before_data_alt = std::chrono::milliseconds(0);
  const NegotiationResult r = negotiate(t, f, fast);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.plan.format, ntb::NtbFormat::Ntb32);
  EXPECT_TRUE(r.plan.out.ndp_at_end);
  EXPECT_FALSE(r.format_reverted);
  auto& ncm = dynamic_cast<sim::NcmModem&>(*modem);
  EXPECT_EQ(ncm.ntb_format(), ntb::NtbFormat::Ntb32);
  EXPECT_EQ(ncm.ntb_in_size(), r.plan.ntb_in_max_size);
  EXPECT_EQ(ncm.data_alternate_setting(), 1);
}

TEST(Negotiate, FollowsAFormatThatRevertedAfterTheAltSwitch) {
  auto modem = sim::make_modem("huawei-e3372");
  modem->faults().ntb_format_reverts_after_alt = true;
  sim::InProcessTransport t(*modem);
  Quirks no_ntb32;  // a host that asked for NTB16 (the 2016 kernel's behaviour)
  no_ntb32.ndp_at_end = true;
  no_ntb32.settle_before_data_alt = std::chrono::milliseconds(0);
  const NegotiationResult r = negotiate(t, function_of(*modem), no_ntb32);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_TRUE(r.format_reverted);
  EXPECT_EQ(r.plan.format, ntb::NtbFormat::Ntb32) << "TX follows what the device is in";
  EXPECT_EQ(r.plan.out.format, ntb::NtbFormat::Ntb32);
}

TEST(Negotiate, GenericNcmAndMbim) {
  for (const char* profile : {"generic-ncm", "mbim"}) {
    auto modem = sim::make_modem(profile);
    sim::InProcessTransport t(*modem);
    const usb::NetworkFunction f = function_of(*modem);
    Quirks q;
    q.settle_before_data_alt = std::chrono::milliseconds(0);
    const NegotiationResult r = negotiate(t, f, q);
    ASSERT_TRUE(r.ok) << profile << ": " << r.error;
    EXPECT_EQ(r.plan.format, ntb::NtbFormat::Ntb16) << profile;
    EXPECT_EQ(r.plan.out.ethernet_framing, std::string(profile) != "mbim") << profile;
    EXPECT_GE(r.plan.ntb_in_max_size, 2048u) << profile;
  }
}

TEST(Negotiate, AGoneDeviceFailsWithOneLine) {
  auto modem = sim::make_modem("generic-ncm");
  modem->faults().unplug = true;
  sim::InProcessTransport t(*modem);
  const NegotiationResult r = negotiate(t, function_of(*modem), Quirks{});
  EXPECT_FALSE(r.ok);
  EXPECT_THAT(r.error, HasSubstr("left the bus"));
}

}  // namespace
}  // namespace wwan::control
