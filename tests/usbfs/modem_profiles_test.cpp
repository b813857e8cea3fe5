// Every emulated modem profile through REAL libusb (the usbfs emulation serves the sim::Modem
// models of the bench): enumeration by VID:PID and classification into a network function, claim
// and alt setting, class requests on the control channel, RESPONSE_AVAILABLE / NETWORK_CONNECTION
// on the interrupt endpoint, asynchronous bulk IN with several transfers queued at the device,
// a ping through an NCM modem and back, STALL + clear-halt, and an unplug in the middle of the
// data flow. The models themselves are unit-tested in tests/sim; this is the USB layer's test.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "control/cdc_ncm.hpp"
#include "control/mbim_wire.hpp"
#include "datapath/ethernet.hpp"
#include "datapath/ntb_build.hpp"
#include "datapath/ntb_parse.hpp"
#include "sim/modem.hpp"
#include "sim/ncm_modem.hpp"
#include "tests/usbfs/bench.hpp"
#include "tests/usbfs/profiles.hpp"
#include "usb/discovery.hpp"
#include "usb/libusb_transport.hpp"
#include "usb/network_function.hpp"
#include "usb/transfer_pipes.hpp"

namespace wwan::usbfs_test {
namespace {

using ::testing::HasSubstr;
using Vec = std::vector<std::uint8_t>;

struct Profile {
  const char* name;
  const char* port_path;
  std::uint16_t vid, pid;
  usb::Function kind;
  std::vector<std::uint8_t> interfaces;
  const char* kernel_driver;  // on the control interface
};

std::ostream& operator<<(std::ostream& os, const Profile& p) { return os << p.name; }

const Profile kProfiles[] = {
    {"huawei_e3372", "1-1.2", 0x12d1, 0x1506, usb::Function::HuaweiNcm, {1}, "huawei_cdc_ncm"},
    {"generic_ncm", "1-1.3", 0x0525, 0xa4a1, usb::Function::Ncm, {0, 1}, "cdc_ncm"},
    {"mbim_em7455", "1-1.4", 0x1199, 0x9079, usb::Function::Mbim, {12, 13}, "cdc_mbim"},
};

usb::Context open_context() {
  std::string error;
  auto ctx = usb::Context::open(error);
  if (!ctx) throw std::runtime_error(error);
  return std::move(*ctx);
}

// Pumps libusb until `done()`; 5 s bounds a hang, it is not a timing assumption.
template <class Done>
bool pump(usb::Transport& t, Done done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!done() && std::chrono::steady_clock::now() < deadline) t.handle_events(50);
  return done();
}

struct Collected {
  std::vector<Vec> transfers;
  usb::InPipe* pipe = nullptr;
};
void collect(void* user, unsigned slot, std::span<const std::uint8_t> data) {
  auto* c = static_cast<Collected*>(user);
  c->transfers.emplace_back(data.begin(), data.end());
  c->pipe->release(slot);
}

class ModemProfile : public ::testing::TestWithParam<Profile> {
 protected:
  void SetUp() override {
    const Profile& p = GetParam();
    // A fresh modem per test: the previous test may have dialled, stalled or unplugged it.
    g_bed->with_model(p.port_path, [](sim::DeviceModel& m) {
      sim::Faults& f = static_cast<sim::Modem&>(m).faults();
      f = sim::Faults{};
    });
    std::string error;
    device = usb::find_device(ctx, {.id = {p.vid, p.pid}, .port_path = p.port_path, .serial = std::nullopt}, error);
    ASSERT_TRUE(device) << error;
    const auto config = usb::parse_configuration(device->active()->bytes, p.vid, p.pid);
    ASSERT_TRUE(config);
    auto f = usb::find_network_function(*config, error);
    ASSERT_TRUE(f) << error;
    function = *f;
    transport = usb::LibusbTransport::open(ctx, *device, {.configuration = std::nullopt, .interfaces = function.interfaces()}, error);
    ASSERT_NE(transport, nullptr) << error;
  }

  usb::ControlResult class_in(std::uint8_t request, Vec& data) {
    return transport->control({cdc::kRequestTypeClassInterfaceIn, request, 0, function.control_interface}, data, 1000);
  }
  usb::ControlResult class_out(std::uint8_t request, std::uint16_t value, Vec data) {
    return transport->control({cdc::kRequestTypeClassInterfaceOut, request, value, function.control_interface}, data,
                              1000);
  }

  usb::Context ctx = open_context();
  std::optional<usb::DeviceInfo> device;
  usb::NetworkFunction function;
  std::unique_ptr<usb::LibusbTransport> transport;
};

TEST_P(ModemProfile, ClassifiedClaimedAndGivenBack) {
  const Profile& p = GetParam();
  EXPECT_EQ(function.kind, p.kind);
  EXPECT_EQ(function.interfaces(), p.interfaces);
  EXPECT_EQ(g_bed->stats(p.port_path).drivers.at(p.interfaces[0]), "usbfs");
  transport.reset();
  EXPECT_EQ(g_bed->stats(p.port_path).drivers.at(p.interfaces[0]), p.kernel_driver);
}

TEST_P(ModemProfile, NtbParametersOverTheControlChannel) {
  Vec params(cdc::kNtbParametersSize);
  const usb::ControlResult r = class_in(cdc::kGetNtbParameters, params);
  ASSERT_EQ(r.status, usb::TransferStatus::completed);
  ASSERT_EQ(r.actual_bytes, cdc::kNtbParametersSize);
  const auto decoded = cdc::decode_ntb_parameters(params);
  ASSERT_TRUE(decoded);
  EXPECT_TRUE(decoded->supports(ntb::NtbFormat::Ntb16));
  EXPECT_GE(decoded->ntb_in_max_size, 2048u);
  EXPECT_GE(decoded->ntb_out_max_size, 2048u);
}

TEST_P(ModemProfile, NotificationAndEncapsulatedResponse) {
  const Profile& p = GetParam();
  Collected notes;
  usb::InPipe pipe(*transport,
                   {.endpoint = function.notification.address, .transfer_bytes = 64, .transfers_in_flight = 1,
                    .interrupt = true},
                   &collect, &notes);
  notes.pipe = &pipe;
  ASSERT_TRUE(pipe.start());
  const auto saw = [&](std::uint8_t code) {
    for (const Vec& t : notes.transfers)
      if (const auto n = cdc::decode_notification(t); n && n->header.notification == code) return true;
    return false;
  };

  if (p.kind == usb::Function::Ncm) {
    // A plain NCM function has no encapsulated channel; its link comes up with the data alt setting.
    ASSERT_EQ(transport->set_alt_setting(function.data_interface, function.data_alt_setting), usb::TransferStatus::completed);
    ASSERT_TRUE(pump(*transport, [&] { return saw(cdc::kNotifyNetworkConnection); }));
  } else {
    Vec command;
    if (p.kind == usb::Function::HuaweiNcm) {
      const std::string at = "ATI\r";
      command.assign(at.begin(), at.end());
    } else {
      command = mbim::encode_open(1, 4096);
    }
    ASSERT_EQ(class_out(cdc::kSendEncapsulatedCommand, 0, command).status, usb::TransferStatus::completed);
    ASSERT_TRUE(pump(*transport, [&] { return saw(cdc::kNotifyResponseAvailable); }));
    // Read until the answer to our command is there (the Huawei boot noise may come first).
    std::string text;
    Vec answer;
    for (int i = 0; i < 16; ++i) {
      Vec buf(4096);
      const usb::ControlResult r = class_in(cdc::kGetEncapsulatedResponse, buf);
      ASSERT_EQ(r.status, usb::TransferStatus::completed);
      if (r.actual_bytes == 0) break;
      buf.resize(r.actual_bytes);
      text.append(buf.begin(), buf.end());
      answer = buf;
    }
    if (p.kind == usb::Function::HuaweiNcm) {
      EXPECT_THAT(text, HasSubstr("\r\nOK\r\n"));
    } else {
      const auto done = mbim::parse_done(answer);
      ASSERT_TRUE(done.ok()) << mbim::to_string(done.error());
      EXPECT_EQ(done.value().type, mbim::MessageType::OpenDone);
      EXPECT_EQ(done.value().status, mbim::Status::None);
    }
  }
  pipe.stop();
  EXPECT_TRUE(pipe.drain(5000));
}

// Ethernet + IPv4 + ICMP echo request from the host's address to 8.8.8.8.
Vec echo_request(const sim::NetworkConfig& n, const eth::MacAddress& to, const eth::MacAddress& from) {
  Vec ip = {0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 1, 0, 0};
  ip.insert(ip.end(), n.host_ipv4.bytes.begin(), n.host_ipv4.bytes.end());
  ip.insert(ip.end(), {8, 8, 8, 8});
  Vec icmp = {8, 0, 0, 0, 0x12, 0x34, 0, 1, 'w', 'w', 'a', 'n', '-', 'd', 'p', '!'};
  const std::uint16_t ic = eth::internet_checksum(icmp);
  icmp[2] = static_cast<std::uint8_t>(ic >> 8);
  icmp[3] = static_cast<std::uint8_t>(ic);
  ip.insert(ip.end(), icmp.begin(), icmp.end());
  ip[3] = static_cast<std::uint8_t>(ip.size());
  const std::uint16_t hc = eth::ipv4_header_checksum(std::span(ip).first(20));
  ip[10] = static_cast<std::uint8_t>(hc >> 8);
  ip[11] = static_cast<std::uint8_t>(hc);
  Vec f(to.bytes.begin(), to.bytes.end());
  f.insert(f.end(), from.bytes.begin(), from.bytes.end());
  f.insert(f.end(), {0x08, 0x00});
  f.insert(f.end(), ip.begin(), ip.end());
  return f;
}

// The NCM profiles only: an MBIM session needs the MBIM control plane first (OPEN, FCC unlock,
// radio, attach, CONNECT); tests/sim/mbim_modem_test.cpp drives that and the IPS data path.
class NcmProfile : public ModemProfile {};

TEST_P(NcmProfile, PingThroughTheModemWithSeveralInTransfersQueued) {
  const Profile& p = GetParam();
  sim::NetworkConfig net;
  eth::MacAddress modem_mac;
  g_bed->with_model(p.port_path, [&](sim::DeviceModel& m) {
    auto& ncm = dynamic_cast<sim::NcmModem&>(m);
    net = ncm.network().config();
    modem_mac = ncm.ncm_profile().device_mac;
  });
  const eth::MacAddress host_mac{{0x02, 0x77, 0x77, 0x00, 0x00, 0x01}};
  const bool huawei = p.kind == usb::Function::HuaweiNcm;

  // Huawei wants NTB32 with the NDP after the datagrams; the generic function takes NTB16.
  const ntb::NtbFormat format = huawei ? ntb::NtbFormat::Ntb32 : ntb::NtbFormat::Ntb16;
  ASSERT_EQ(transport->set_alt_setting(function.data_interface, 0), usb::TransferStatus::completed);
  ASSERT_EQ(class_out(cdc::kSetNtbFormat, cdc::ntb_format_value(format), {}).status, usb::TransferStatus::completed);
  ASSERT_EQ(transport->set_alt_setting(function.data_interface, function.data_alt_setting), usb::TransferStatus::completed);
  if (huawei) {
    const std::string dial = "AT^NDISDUP=1,1,\"internet\"\r";
    ASSERT_EQ(class_out(cdc::kSendEncapsulatedCommand, 0, Vec(dial.begin(), dial.end())).status,
              usb::TransferStatus::completed);
  }

  Collected rx;
  usb::InPipe in(*transport, {.endpoint = function.bulk_in.address, .transfer_bytes = 65536, .transfers_in_flight = 4},
                 &collect, &rx);
  rx.pipe = &in;
  ASSERT_TRUE(in.start());

  usb::OutPipe out(*transport, {.endpoint = function.bulk_out.address, .transfer_bytes = 16384, .transfers_in_flight = 2});
  const auto send_frame = [&](const Vec& frame) {
    const auto slot = out.acquire();
    ASSERT_TRUE(slot);
    ntb::NtbOutParams params;
    params.format = format;
    params.ntb_out_max_size = 16384;
    params.ndp_at_end = huawei;
    ntb::NtbBuilder b(out.buffer(*slot), params, ntb::NdpSignature{format, ntb::DatagramKind::Ncm, 0});
    b.reset(0);
    ASSERT_EQ(b.append(frame), ntb::AppendResult::Appended);
    ASSERT_EQ(out.submit(*slot, b.finish().size()), usb::TransferStatus::completed);
  };
  send_frame(echo_request(net, modem_mac, host_mac));

  // Read NTBs until the echo reply; answer the modem's ARP for the host on the way (the E3372
  // asks before it forwards anything, anchors.md §5 #12).
  bool replied = false;
  std::size_t seen = 0;
  ASSERT_TRUE(pump(*transport, [&] {
    for (; seen < rx.transfers.size(); ++seen) {
      const Vec& t = rx.transfers[seen];
      struct Sink {
        const Vec& t;
        std::vector<Vec> frames;
        void datagram(const ntb::DatagramView& d) {
          frames.emplace_back(t.begin() + static_cast<std::ptrdiff_t>(d.offset),
                              t.begin() + static_cast<std::ptrdiff_t>(d.offset + d.length));
        }
        void error(std::uint32_t, ntb::NtbError) {}
      } sink{t, {}};
      ntb::parse_transfer(t, {}, sink);
      for (const Vec& f : sink.frames) {
        if (f.size() >= 14 + 28 && f[12] == 0x08 && f[13] == 0x06) {
          Vec reply(60);
          if (eth::answer_arp(f, net.host_ipv4, host_mac, reply)) send_frame(reply);
        }
        if (f.size() >= 14 + 20 + 8 && f[12] == 0x08 && f[13] == 0x00 && f[14 + 9] == 1 && f[14 + 20] == 0) replied = true;
      }
    }
    return replied;
  }));
  // Every IN buffer handed back is resubmitted: all four wait at the device again.
  ASSERT_TRUE(pump(*transport, [&] { return g_bed->stats(p.port_path).max_urbs_queued >= 4; }));
  in.stop();
  EXPECT_TRUE(in.drain(5000));
  g_bed->with_model(p.port_path, [](sim::DeviceModel& m) {
    EXPECT_EQ(static_cast<sim::Modem&>(m).network().counters().icmp_echo_replies, 1u);
  });
}

// Destructive, so on a fresh modem of the profile plugged in for it at its own port and removed
// from the bus at the end (the bench's modems stay usable for every other test).
TEST_P(ModemProfile, StallOnBulkInIsClearedAndUnplugEndsTheFlow) {
  const Profile& p = GetParam();
  transport.reset();
  const int index = p.kind == usb::Function::HuaweiNcm ? 0 : p.kind == usb::Function::Ncm ? 1 : 2;
  const std::string port = "1-" + std::to_string(6 + index);
  const auto devnum = static_cast<std::uint8_t>(20 + index);
  std::shared_ptr<sim::Modem> modem = sim::make_modem(index == 0 ? "huawei-e3372" : index == 1 ? "generic-ncm" : "mbim");
  g_bed->add(from_model(port, devnum, modem));
  std::string error;
  const auto fresh = usb::find_device(ctx, {.id = {p.vid, p.pid}, .port_path = port, .serial = std::nullopt}, error);
  ASSERT_TRUE(fresh) << error;
  auto t = usb::LibusbTransport::open(ctx, *fresh, {.configuration = std::nullopt, .interfaces = function.interfaces()}, error);
  ASSERT_NE(t, nullptr) << error;
  ASSERT_EQ(t->set_alt_setting(function.data_interface, function.data_alt_setting), usb::TransferStatus::completed);

  g_bed->with_model(port, [](sim::DeviceModel& m) { static_cast<sim::Modem&>(m).faults().stall_bulk_in = true; });
  Collected rx;
  usb::InPipe in(*t, {.endpoint = function.bulk_in.address, .transfer_bytes = 16384, .transfers_in_flight = 3},
                 &collect, &rx);
  rx.pipe = &in;
  ASSERT_TRUE(in.start());
  ASSERT_TRUE(pump(*t, [&] { return in.counters().halts_cleared.load() >= 1; }));
  EXPECT_EQ(in.state(), usb::PipeState::running);
  EXPECT_GE(g_bed->stats(port).clear_halts, 1u);

  // The modem drops off the bus with the three transfers queued (its own unplug fault: every
  // later request fails, as after a firmware crash), then the bus reports it gone.
  g_bed->with_model(port, [](sim::DeviceModel& m) { static_cast<sim::Modem&>(m).faults().unplug = true; });
  ASSERT_TRUE(pump(*t, [&] { return in.in_flight() == 0; }));
  EXPECT_EQ(in.state(), usb::PipeState::device_gone);
  EXPECT_TRUE(t->device_gone());
  g_bed->unplug(port);
  t.reset();  // no hang, no reattach attempt on a gone device
}

INSTANTIATE_TEST_SUITE_P(Bench, ModemProfile, ::testing::ValuesIn(kProfiles),
                         [](const auto& param_info) { return std::string(param_info.param.name); });
INSTANTIATE_TEST_SUITE_P(Bench, NcmProfile, ::testing::Values(kProfiles[0], kProfiles[1]),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

}  // namespace
}  // namespace wwan::usbfs_test
