// The emulated RNDIS function and the FM350 descriptors: the descriptors as the classifier of
// usb/descriptors sees them (what `wwan-dp list` would print), then the device's control and data
// behaviour driven by hand, hostile host input included.
#include "sim/rndis_function.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

#include "control/rndis_wire.hpp"
#include "datapath/rndis_packet.hpp"
#include "sim/rndis_fm350.hpp"
#include "tests/support/hex.hpp"
#include "usb/descriptors.hpp"
#include "usb/network_function.hpp"

namespace wwan::sim {
namespace {

using ::testing::ElementsAre;
using Vec = std::vector<std::uint8_t>;
using wwan::test::hex;
using namespace std::chrono_literals;

// ---- FM350 descriptors (vectors/usb_descriptors.md D1) ---------------------------------------------

std::vector<std::string> functions(const usb::Configuration& c) {
  std::vector<std::string> out;
  for (const usb::Interface& i : c.interfaces) out.push_back(std::to_string(i.number) + ":" + usb::to_string(i.function));
  return out;
}

usb::Configuration parse_fm350(fm350::UsbMode mode, std::uint16_t product_id) {
  const DeviceIdentity id = fm350::identity(mode, "0123456789");
  const auto device = usb::parse_device_descriptor(id.descriptors);
  EXPECT_TRUE(device);
  EXPECT_EQ(device->vendor_id, fm350::kVendorId);
  EXPECT_EQ(device->product_id, product_id);
  EXPECT_EQ(device->device_class, 0xEF);
  EXPECT_EQ(device->bcd_usb, 0x0210);
  const auto configs = usb::parse_configurations(
      std::span<const std::uint8_t>(id.descriptors).subspan(usb::kDeviceDescriptorSize), fm350::kVendorId, product_id);
  EXPECT_EQ(configs.size(), 1u);
  return configs.empty() ? usb::Configuration{} : configs.front();
}

TEST(Fm350Descriptors, Mode41IsTheRndisCompositionWithItsAtPort) {
  const usb::Configuration c = parse_fm350(fm350::UsbMode::Mode41, fm350::kProductIdMode41);
  EXPECT_THAT(c.problems, ::testing::IsEmpty());
  EXPECT_THAT(functions(c), ElementsAre("0:rndis", "1:cdc-data", "2:other", "3:other", "4:other", "5:adb", "6:at",
                                        "7:other", "8:other", "9:other"));
  EXPECT_EQ(usb::classify_mode(fm350::kVendorId, fm350::kProductIdMode41, c), usb::ModemMode::Rndis);
  const usb::Interface* control = c.interface(fm350::kRndisControlInterface);
  ASSERT_NE(control, nullptr);
  EXPECT_EQ(control->union_control, fm350::kRndisControlInterface);  // the f_rndis Union (INFERENCE)
  EXPECT_EQ(control->data_interface, fm350::kRndisDataInterface);
  EXPECT_EQ(control->data_alt_setting, 0);
  ASSERT_EQ(c.associations.size(), 1u);
  EXPECT_EQ(c.associations[0].function_class, 0xE0);
  // The AT port's bulk pair is where the constants say.
  const usb::AltSetting* at = c.interface(fm350::kAtInterface)->alt(0);
  ASSERT_NE(at, nullptr);
  ASSERT_EQ(at->endpoints.size(), 2u);
  EXPECT_EQ(at->endpoints[0].address, fm350::kAtBulkInEndpoint);
  EXPECT_EQ(at->endpoints[1].address, fm350::kAtBulkOutEndpoint);
  // The notification endpoint: interrupt IN 0x82, 64 bytes.
  const usb::AltSetting* ctl = control->alt(0);
  ASSERT_EQ(ctl->endpoints.size(), 1u);
  EXPECT_TRUE(ctl->endpoints[0].is_interrupt());
  EXPECT_EQ(ctl->endpoints[0].address, fm350::kNotificationEndpoint);
  EXPECT_EQ(ctl->endpoints[0].max_packet_size, 64);
}

TEST(Fm350Descriptors, Mode40) {
  const usb::Configuration c = parse_fm350(fm350::UsbMode::Mode40, fm350::kProductIdMode40);
  EXPECT_THAT(c.problems, ::testing::IsEmpty());
  EXPECT_THAT(functions(c), ElementsAre("0:rndis", "1:cdc-data", "2:other", "3:adb", "4:other", "5:other", "6:at",
                                        "7:other"));
  EXPECT_EQ(usb::classify_mode(fm350::kVendorId, fm350::kProductIdMode40, c), usb::ModemMode::Rndis);
  const DeviceIdentity id = fm350::identity(fm350::UsbMode::Mode40, "x");
  EXPECT_EQ(id.kernel_drivers.at(0), "rndis_host");
  EXPECT_EQ(id.kernel_drivers.at(6), "option");
  EXPECT_EQ(id.kernel_drivers.count(3), 0u);  // ADB: no kernel driver
  EXPECT_EQ(id.strings.at(2), "FM350-GL");
}

// ---- the function ---------------------------------------------------------------------------------

constexpr std::uint8_t kIf = 0;

struct Device {
  Network network;
  RndisFunction f;
  Clock::time_point now{std::chrono::seconds(100)};
  std::uint32_t next_id = 1;

  explicit Device(RndisFunctionConfig config = {}) : f(config, network) { f.set_clock([this] { return now; }); }

  void command(const rndis::ByteVector& m) {
    rndis::ByteVector copy = m;
    ASSERT_EQ(f.control(SetupPacket{0x21, 0x00, 0, kIf, static_cast<std::uint16_t>(copy.size())}, copy),
              std::optional<std::size_t>(0));
  }
  std::optional<rndis::ByteVector> response() {
    rndis::ByteVector b(4096);
    const auto n = f.control(SetupPacket{0xA1, 0x01, 0, kIf, 4096}, b);
    if (!n || *n == 0) return std::nullopt;
    b.resize(*n);
    return b;
  }
  std::size_t notifications() {
    std::size_t n = 0;
    std::array<std::uint8_t, 64> buf{};
    while (f.in(0x82, buf).result == EndpointResult::ok) ++n;
    return n;
  }
  // INITIALIZE + SET filter, as a host would.
  void bring_up(std::uint32_t host_max_transfer = 16384) {
    command(rndis::encode_initialize({next_id++, 1, 0, host_max_transfer}));
    ASSERT_TRUE(response());
    command(rndis::encode_set(next_id++, rndis::kOidGenCurrentPacketFilter, rndis::oid_u32_buffer(0x0b)));
    ASSERT_TRUE(response());
    f.set_media_connected(true);
    (void)response();  // the MEDIA_CONNECT indication
    (void)notifications();
  }
};

std::uint16_t checksum(const Vec& data) {
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i + 1 < data.size(); i += 2) sum += static_cast<std::uint32_t>(data[i] << 8 | data[i + 1]);
  if (data.size() % 2) sum += static_cast<std::uint32_t>(data.back() << 8);
  while (sum > 0xFFFF) sum = (sum & 0xFFFF) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

// Ethernet + IPv4 + ICMP echo request from 10.64.64.2 to 8.8.8.8.
Vec echo_request(const eth::MacAddress& from, const eth::MacAddress& to, std::uint16_t seq) {
  Vec icmp = {8, 0, 0, 0, 0x12, 0x34, static_cast<std::uint8_t>(seq >> 8), static_cast<std::uint8_t>(seq)};
  for (std::uint8_t i = 0; i < 24; ++i) icmp.push_back(i);
  const std::uint16_t ic = checksum(icmp);
  icmp[2] = static_cast<std::uint8_t>(ic >> 8);
  icmp[3] = static_cast<std::uint8_t>(ic);
  Vec ip = {0x45, 0, 0, static_cast<std::uint8_t>(20 + icmp.size()), 0, 1, 0x40, 0, 64, 1, 0, 0, 10, 64, 64, 2, 8, 8, 8, 8};
  const std::uint16_t hc = checksum(ip);
  ip[10] = static_cast<std::uint8_t>(hc >> 8);
  ip[11] = static_cast<std::uint8_t>(hc);
  Vec f(to.bytes.begin(), to.bytes.end());
  f.insert(f.end(), from.bytes.begin(), from.bytes.end());
  f.insert(f.end(), {0x08, 0x00});
  f.insert(f.end(), icmp.begin(), icmp.end());
  f.insert(f.begin() + 14, ip.begin(), ip.end());
  return f;
}

Vec one_message(const Vec& frame) {
  Vec t(rndis::kPacketHeaderSize + frame.size());
  (void)rndis::write_packet_header(t, frame.size());
  std::copy(frame.begin(), frame.end(), t.begin() + rndis::kPacketHeaderSize);
  return t;
}

struct Parsed {
  std::vector<Vec> frames;
  rndis::PacketCounters counters;
};
Parsed parse_in(const Vec& transfer) {
  Parsed p;
  rndis::CountingPacketSink sink{p.counters, [&](const rndis::FrameView& v) {
                                   const auto b = transfer.begin() + static_cast<std::ptrdiff_t>(v.offset);
                                   p.frames.emplace_back(b, b + v.length);
                                 }};
  p.counters.add(rndis::parse_packet_transfer(transfer, sink));
  return p;
}

Vec take_in(Device& d, std::size_t buffer = 16384) {
  Vec b(buffer);
  const InResult r = d.f.in(0x81, b);
  if (r.result != EndpointResult::ok) return {};
  b.resize(r.bytes);
  return b;
}

TEST(RndisFunctionTest, InitializeAnswersTheConfiguredLimits) {
  Device d;
  d.command(rndis::encode_initialize({7, 1, 0, 100000}));
  EXPECT_EQ(d.notifications(), 1u);
  const auto r = d.response();
  ASSERT_TRUE(r);
  const rndis::DecodedControl c = rndis::decode_control(*r);
  ASSERT_TRUE(c.ok());
  const auto& init = std::get<rndis::InitializeCmplt>(c.message);
  EXPECT_EQ(init.request_id, 7u);
  EXPECT_EQ(init.max_transfer_size, d.f.config().max_transfer_size);
  EXPECT_EQ(init.max_packets_per_transfer, d.f.config().max_packets_per_transfer);
  EXPECT_EQ(init.packet_alignment_factor, d.f.config().packet_alignment_factor);
  EXPECT_EQ(d.f.host_max_transfer_size(), rndis::kMaxTransferSizeLimit);  // clamped
  EXPECT_FALSE(d.response());  // nothing more: a zero-length answer
  // Not the function's interface, or not a class request it knows: STALL.
  Vec none;
  EXPECT_FALSE(d.f.control(SetupPacket{0x21, 0x00, 0, 3, 0}, none));
  EXPECT_FALSE(d.f.control(SetupPacket{0x21, 0x43, 0, kIf, 0}, none));
}

TEST(RndisFunctionTest, NoDataBeforeTheFilterAndPingThroughTheNetwork) {
  Device d;
  d.command(rndis::encode_initialize({1, 1, 0, 16384}));
  (void)d.response();
  d.f.set_media_connected(true);
  const eth::MacAddress host = d.f.config().host_mac, dev = d.f.config().device_mac;
  ASSERT_EQ(d.f.out(0x01, one_message(echo_request(host, dev, 1))), EndpointResult::ok);
  EXPECT_EQ(d.f.counters().frames_before_data, 1u);  // filter still 0
  EXPECT_TRUE(take_in(d).empty());                    // NAK
  d.command(rndis::encode_set(2, rndis::kOidGenCurrentPacketFilter, rndis::oid_u32_buffer(0x0b)));
  EXPECT_EQ(d.f.packet_filter(), 0x0bu);

  for (std::uint16_t seq = 1; seq <= 3; ++seq)
    ASSERT_EQ(d.f.out(0x01, one_message(echo_request(host, dev, seq))), EndpointResult::ok);
  const Parsed p = parse_in(take_in(d));
  ASSERT_EQ(p.frames.size(), 3u);  // the three replies in one transfer
  for (const Vec& f : p.frames) {
    EXPECT_TRUE(std::equal(host.bytes.begin(), host.bytes.end(), f.begin()));
    EXPECT_TRUE(std::equal(dev.bytes.begin(), dev.bytes.end(), f.begin() + 6));
    EXPECT_EQ(f[14 + 20], 0);  // ICMP echo reply
  }
  EXPECT_EQ(d.network.counters().icmp_echo_replies, 3u);
}

TEST(RndisFunctionTest, InTransfersRespectTheHostsLimitAlignmentAndPad) {
  RndisFunctionConfig c;
  c.in_alignment_factor = 3;
  Device d(c);
  d.bring_up(/*host_max_transfer=*/2048);
  const eth::MacAddress host = d.f.config().host_mac, dev = d.f.config().device_mac;
  for (std::uint16_t seq = 0; seq < 40; ++seq) (void)d.f.out(0x01, one_message(echo_request(host, dev, seq)));
  std::size_t frames = 0;
  for (int i = 0; i < 100; ++i) {
    const Vec t = take_in(d, 65536);
    if (t.empty()) break;
    EXPECT_LE(t.size(), 2048u);
    EXPECT_NE(t.size() % 512, 0u);  // never a multiple of wMaxPacketSize: the 1-byte pad instead
    const Parsed p = parse_in(t);
    frames += p.frames.size();
    EXPECT_EQ(p.counters.errors[static_cast<std::size_t>(rndis::PacketError::DataOutOfMessage)], 0u);
    std::size_t at = 0;
    for (std::size_t m = 0; m < p.counters.messages; ++m) {
      EXPECT_EQ(at % 8, 0u);
      at += ntb::load_le32(t, at + rndis::kPacketMessageLengthAt);
    }
  }
  EXPECT_EQ(frames, 40u);
}

TEST(RndisFunctionTest, HostileMessageToTheHostIsSkippedByOurParser) {
  Device d;
  d.bring_up();
  d.f.faults().hostile_in_messages = 1;
  const eth::MacAddress host = d.f.config().host_mac, dev = d.f.config().device_mac;
  (void)d.f.out(0x01, one_message(echo_request(host, dev, 9)));
  const Parsed p = parse_in(take_in(d));
  EXPECT_EQ(p.frames.size(), 1u);  // the echo reply behind it survives
  EXPECT_EQ(p.counters[rndis::PacketError::DataOutOfMessage], 1u);
  EXPECT_EQ(d.f.counters().hostile_messages_sent, 1u);
}

TEST(RndisFunctionTest, ChecksWhatTheHostSends) {
  RndisFunctionConfig c;
  c.max_transfer_size = 4096;
  c.max_packets_per_transfer = 2;
  c.packet_alignment_factor = 3;
  Device d(c);
  d.bring_up();
  const eth::MacAddress host = d.f.config().host_mac, dev = d.f.config().device_mac;
  const Vec m = one_message(echo_request(host, dev, 1));  // 44 + 66 = 110 bytes: not a multiple of 8
  Vec three = m;
  three.insert(three.end(), m.begin(), m.end());
  three.insert(three.end(), m.begin(), m.end());
  (void)d.f.out(0x01, three);
  EXPECT_EQ(d.f.counters().transfers_too_many_packets, 1u);
  EXPECT_EQ(d.f.counters().messages_misaligned, 2u);
  EXPECT_EQ(d.f.counters().frames_from_host, 3u);  // still taken, as a lenient device would
  Vec big(4097, 0);
  (void)d.f.out(0x01, big);
  EXPECT_EQ(d.f.counters().transfers_too_large, 1u);
}

TEST(RndisFunctionTest, ResetLosesTheFilterHaltUninitialises) {
  Device d;
  d.bring_up();
  d.command(rndis::encode_reset());
  const auto r = d.response();
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, hex("06000080 10000000 00000000 01000000"));  // success, AddressingReset 1
  EXPECT_EQ(d.f.packet_filter(), 0u);
  EXPECT_FALSE(d.f.data_flowing());
  d.command(rndis::encode_halt(9));
  EXPECT_FALSE(d.response());  // HALT has no completion
  EXPECT_FALSE(d.f.initialized());
}

TEST(RndisFunctionTest, QueriesAndSets) {
  Device d;
  d.bring_up();
  const auto query = [&](std::uint32_t oid) {
    d.command(rndis::encode_query(d.next_id++, oid));
    const auto r = d.response();
    EXPECT_TRUE(r);
    const rndis::DecodedControl c = rndis::decode_control(*r);
    EXPECT_TRUE(c.ok());
    const auto& q = std::get<rndis::QueryCmplt>(c.message);
    return std::pair{q.status, Vec(q.information_buffer.begin(), q.information_buffer.end())};
  };
  EXPECT_EQ(query(rndis::kOid8023PermanentAddress).second, Vec(d.f.config().host_mac.bytes.begin(), d.f.config().host_mac.bytes.end()));
  EXPECT_EQ(rndis::oid_u32(query(rndis::kOidGenMaximumFrameSize).second), 1500u);
  EXPECT_EQ(rndis::oid_u32(query(rndis::kOidGenMediaConnectStatus).second), rndis::kMediaStateConnected);
  EXPECT_EQ(rndis::oid_u32(query(rndis::kOidGenCurrentPacketFilter).second), 0x0bu);
  EXPECT_EQ(query(rndis::kOidGenSupportedList).second.size() % 4, 0u);
  EXPECT_EQ(query(0x0DEADBEE).first, rndis::kStatusNotSupported);
  // A filter of the wrong size is refused.
  d.command(rndis::encode_set(d.next_id++, rndis::kOidGenCurrentPacketFilter, hex("0b00")));
  const auto r = d.response();
  ASSERT_TRUE(r);
  EXPECT_EQ(std::get<rndis::SetCmplt>(rndis::decode_control(*r).message).status, rndis::kStatusInvalidLength);
  EXPECT_EQ(d.f.packet_filter(), 0x0bu);
}

TEST(RndisFunctionTest, BadCommandsAreAnsweredWithInvalidData) {
  Device d;
  d.bring_up();
  d.command(hex("04000000 ff000000 01000000"));
  const auto r = d.response();
  ASSERT_TRUE(r);
  const rndis::DecodedControl c = rndis::decode_control(*r);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(std::get<rndis::IndicateStatus>(c.message).status, rndis::kStatusInvalidData);
  EXPECT_EQ(d.f.counters().bad_commands, 1u);
}

TEST(RndisFunctionTest, AnswerDelayAndLostNotifications) {
  Device d;
  d.f.faults().answer_delay = 2s;
  d.command(rndis::encode_initialize({1, 1, 0, 16384}));
  EXPECT_EQ(d.notifications(), 0u);
  EXPECT_FALSE(d.response());
  ASSERT_EQ(d.f.next_deadline(), d.now + 2s);
  d.now += 2s;
  EXPECT_EQ(d.notifications(), 1u);
  EXPECT_TRUE(d.response());
  d.f.faults().answer_delay = 0s;
  d.f.faults().lose_response_available = true;
  d.command(rndis::encode_keepalive(5));
  EXPECT_EQ(d.notifications(), 0u);
  EXPECT_TRUE(d.response());  // still readable by polling
}

TEST(RndisFunctionTest, RandomInputFromTheHostNeverCrashes) {
  Device d;
  d.bring_up();
  std::mt19937 rng(11);
  for (int i = 0; i < 3000; ++i) {
    Vec junk(rng() % 200);
    for (auto& b : junk) b = static_cast<std::uint8_t>(rng());
    if (junk.size() >= 8) {
      ntb::store_le32(junk, 0, 1 + rng() % 8);
      ntb::store_le32(junk, 4, static_cast<std::uint32_t>(rng() % 2 ? junk.size() : rng()));
    }
    if (i % 2 == 0) {
      (void)d.f.control(SetupPacket{0x21, 0x00, 0, kIf, static_cast<std::uint16_t>(junk.size())}, junk);
    } else {
      (void)d.f.out(0x01, junk);
    }
    while (d.response()) {
    }
    (void)d.notifications();
    (void)take_in(d);
  }
  EXPECT_GT(d.f.counters().bad_commands, 0u);
}

}  // namespace
}  // namespace wwan::sim
