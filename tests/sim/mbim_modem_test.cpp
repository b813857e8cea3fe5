// The emulated EM7455 driven the way a host drives a real one: class requests on interface 12,
// RESPONSE_AVAILABLE on 0x82, NTBs on 0x81/0x01, every MBIM message built and read with the same
// control/mbim_wire codec the driver's control plane uses. No sleeps: time-driven behaviour runs
// on a clock the test steps.
#include "sim/mbim_modem.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "control/cdc_ncm.hpp"
#include "control/mbim_wire.hpp"
#include "datapath/ethernet.hpp"
#include "datapath/ntb_build.hpp"
#include "datapath/ntb_parse.hpp"
#include "sim/descriptor_builder.hpp"

namespace wwan::sim {
namespace {

using mbim::BasicConnectCid;
using mbim::ByteVector;
using mbim::CommandType;
using mbim::Status;
using namespace em7455;

// An answer the host read, owning its bytes.
struct Answer {
  mbim::MessageType type = mbim::MessageType::CommandDone;
  mbim::TransactionId transaction_id = 0;
  Status status = Status::None;
  std::uint32_t cid = 0;
  mbim::ProtocolError error = mbim::ProtocolError::Invalid;
  ByteVector information_buffer;
};

class Host {
 public:
  explicit Host(Modem& modem) : m_(modem) {}

  std::uint32_t max_control_transfer = 4096;
  std::vector<Answer> indications;
  std::size_t fragments_read = 0;
  std::size_t notifications = 0;

  std::optional<std::size_t> request(std::uint8_t type, std::uint8_t request, std::uint16_t value,
                                     std::span<std::uint8_t> data) {
    return m_.control(SetupPacket{type, request, value, kControlInterface, static_cast<std::uint16_t>(data.size())},
                      data);
  }

  void send(const ByteVector& message) {
    auto pieces = mbim::fragment(message, max_control_transfer);
    ASSERT_TRUE(pieces);
    for (auto& piece : pieces.value()) {
      ASSERT_EQ(request(0x21, cdc::kSendEncapsulatedCommand, 0, piece), std::optional<std::size_t>(0));
    }
  }

  // One GET_ENCAPSULATED_RESPONSE (wLength = wMaxControlMessage, as cdc-wdm reads).
  std::optional<ByteVector> read_fragment() {
    ByteVector buffer(kMaxControlMessage);
    const auto n = request(0xA1, cdc::kGetEncapsulatedResponse, 0, buffer);
    if (!n || *n == 0) return std::nullopt;
    buffer.resize(*n);
    ++fragments_read;
    return buffer;
  }

  bool notification() {
    std::array<std::uint8_t, 16> n{};
    const InResult r = m_.in(kNotificationEndpoint, n);
    if (r.result != EndpointResult::ok) return false;
    EXPECT_EQ(r.bytes, 8u);
    EXPECT_EQ(ByteVector(n.begin(), n.begin() + 8), (ByteVector{0xA1, 0x01, 0, 0, kControlInterface, 0, 0, 0}));
    ++notifications;
    return true;
  }

  // The next whole message from the device (reassembled), or nullopt when nothing is queued.
  std::optional<Answer> read_message() {
    for (;;) {
      const auto f = read_fragment();
      if (!f) return std::nullopt;
      const auto s = reassembler_.feed(*f);
      EXPECT_TRUE(s) << mbim::to_string(s.error());
      if (!s) return std::nullopt;
      if (*s == mbim::Reassembler::State::NeedMore) continue;
      return decode(reassembler_.message());
    }
  }

  static Answer decode(mbim::Bytes message) {
    Answer a;
    const auto h = mbim::validate(message);
    EXPECT_TRUE(h);
    a.type = h->type;
    a.transaction_id = h->transaction_id;
    if (h->type == mbim::MessageType::CommandDone) {
      const auto d = mbim::parse_command_done(message);
      a.status = d->status;
      a.cid = d->cid;
      a.information_buffer.assign(d->information_buffer.begin(), d->information_buffer.end());
    } else if (h->type == mbim::MessageType::IndicateStatus) {
      const auto d = mbim::parse_indicate_status(message);
      a.cid = d->cid;
      a.information_buffer.assign(d->information_buffer.begin(), d->information_buffer.end());
    } else if (h->type == mbim::MessageType::OpenDone || h->type == mbim::MessageType::CloseDone) {
      a.status = mbim::parse_done(message)->status;
    } else if (h->type == mbim::MessageType::FunctionError) {
      a.error = mbim::parse_error(message)->error_status_code;
    }
    return a;
  }

  // Sends and returns the answer with the same TransactionId; indications read on the way are kept.
  Answer transact(const ByteVector& message) {
    const auto tid = mbim::read_header(message)->transaction_id;
    send(message);
    while (notification()) {}
    for (;;) {
      auto a = read_message();
      if (!a) {
        ADD_FAILURE() << "no answer for transaction " << tid;
        return {};
      }
      if (a->type == mbim::MessageType::IndicateStatus) {
        indications.push_back(std::move(*a));
        continue;
      }
      EXPECT_EQ(a->transaction_id, tid);
      return std::move(*a);
    }
  }

  Answer open(std::uint32_t max_transfer = 4096) {
    max_control_transfer = max_transfer;
    return transact(mbim::encode_open(next_tid_++, max_transfer));
  }
  Answer command(BasicConnectCid cid, CommandType type, const ByteVector& info = {}) {
    return transact(mbim::encode_command(next_tid_++, mbim::kUuidBasicConnect, mbim::cid(cid), type, info));
  }
  Answer qmi(const ByteVector& qmux) {
    return transact(mbim::encode_command(next_tid_++, mbim::kUuidQmi, mbim::kQmiCidMsg, CommandType::Set, qmux));
  }
  // CTL Allocate Client ID for DMS, then DMS 0x555F with it (anchors §4.5).
  void fcc_unlock() {
    const Answer alloc = qmi(mbim::qmi::encode_ctl_allocate_client_id(1, mbim::qmi::kServiceDms));
    ASSERT_EQ(alloc.status, Status::None);
    const auto q = mbim::qmi::parse(alloc.information_buffer);
    ASSERT_TRUE(q);
    const auto info = mbim::qmi::find_tlv(q->tlvs, mbim::qmi::kTlvAllocationInfo);
    ASSERT_TRUE(info);
    ASSERT_EQ(info->size(), 2u);
    const Answer fcc = qmi(mbim::qmi::encode_dms_set_fcc_authentication((*info)[1], 1));
    ASSERT_EQ(fcc.status, Status::None);
    const auto r = mbim::qmi::parse(fcc.information_buffer);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->message_id, mbim::qmi::kDmsSetFccAuthentication);
    EXPECT_EQ(mbim::qmi::parse_result(r->tlvs)->result, 0);
  }
  // OPEN, FCC unlock, radio on, attach, CONNECT session `session`.
  void bring_up(std::uint32_t session = 0) {
    ASSERT_EQ(open().status, Status::None);
    fcc_unlock();
    ASSERT_EQ(command(BasicConnectCid::RadioState, CommandType::Set, mbim::encode_radio_state_set(mbim::RadioState::On))
                  .status,
              Status::None);
    ASSERT_EQ(command(BasicConnectCid::PacketService, CommandType::Set,
                      mbim::encode_packet_service_set(mbim::PacketServiceAction::Attach))
                  .status,
              Status::None);
    mbim::ConnectSet c;
    c.session_id = session;
    c.access_string = "internet";
    ASSERT_EQ(command(BasicConnectCid::Connect, CommandType::Set, mbim::encode(c)).status, Status::None);
    ASSERT_TRUE(m_.session_active());
  }

 private:
  Modem& m_;
  mbim::Reassembler reassembler_;
  mbim::TransactionId next_tid_ = 1;
};

std::unique_ptr<Modem> make(const ModemOptions& options = {}) {
  auto m = make_modem("mbim", options);
  EXPECT_TRUE(m);
  return m;
}

MbimModem& mbim_of(Modem& m) { return dynamic_cast<MbimModem&>(m); }

// An IPv4 ICMP echo request from the host's address.
ByteVector icmp_echo(const NetworkConfig& n, std::uint16_t sequence) {
  ByteVector p(20 + 8 + 16, 0);
  p[0] = 0x45;
  p[2] = 0;
  p[3] = static_cast<std::uint8_t>(p.size());
  p[8] = 64;  // TTL
  p[9] = 1;   // ICMP
  std::copy(n.host_ipv4.bytes.begin(), n.host_ipv4.bytes.end(), p.begin() + 12);
  const std::uint8_t dst[4] = {192, 0, 2, 1};
  std::copy(dst, dst + 4, p.begin() + 16);
  const std::uint16_t hc = eth::ipv4_header_checksum(eth::Bytes(p).first(20));
  p[10] = static_cast<std::uint8_t>(hc >> 8);
  p[11] = static_cast<std::uint8_t>(hc & 0xff);
  p[20] = 8;  // echo request
  p[24] = 0x12;
  p[25] = 0x34;
  p[26] = static_cast<std::uint8_t>(sequence >> 8);
  p[27] = static_cast<std::uint8_t>(sequence & 0xff);
  for (std::size_t i = 28; i < p.size(); ++i) p[i] = static_cast<std::uint8_t>(i);
  const std::uint16_t ic = eth::internet_checksum(eth::Bytes(p).subspan(20));
  p[22] = static_cast<std::uint8_t>(ic >> 8);
  p[23] = static_cast<std::uint8_t>(ic & 0xff);
  return p;
}

// One OUT NTB carrying `datagrams` in IPS<session>.
ByteVector ntb_of(const std::vector<ByteVector>& datagrams, std::uint8_t session,
                  ntb::NtbFormat format = ntb::NtbFormat::Ntb16) {
  ByteVector buffer(16384);
  ntb::NtbOutParams p;
  p.format = format;
  p.ethernet_framing = false;
  ntb::NtbBuilder b(buffer, p, ntb::NdpSignature{format, ntb::DatagramKind::Ips, session});
  for (const auto& d : datagrams) EXPECT_EQ(b.append(d), ntb::AppendResult::Appended);
  const auto out = b.finish();
  return ByteVector(out.begin(), out.end());
}

struct Parsed {
  std::vector<ntb::DatagramView> datagrams;
  std::vector<ntb::NtbError> errors;
  std::vector<ntb::NtbInfo> ntbs;
  void datagram(const ntb::DatagramView& d) { datagrams.push_back(d); }
  void error(std::uint32_t, ntb::NtbError e) { errors.push_back(e); }
  void ntb(const ntb::NtbInfo& i) { ntbs.push_back(i); }
};

Parsed parse_in(mbim::Bytes transfer) {
  Parsed p;
  ntb::parse_transfer(transfer, ntb::ParseOptions{ntb::FunctionKind::Mbim, false}, p);
  return p;
}

// Reads one bulk IN transfer into a dwNtbInMaxSize buffer.
std::pair<InResult, ByteVector> read_in(Modem& m, std::size_t buffer_bytes = kNtbInMaxSize) {
  ByteVector buffer(buffer_bytes);
  const InResult r = m.in(kBulkInEndpoint, buffer);
  buffer.resize(r.result == EndpointResult::ok ? r.bytes : 0);
  return {r, buffer};
}

// ---- the device ------------------------------------------------------------------------------------

TEST(MbimModem, IdentityIsTheEm7455MbimComposition) {
  ModemOptions options;
  options.serial = "LQ62750110021011";
  const auto m = make(options);
  const DeviceIdentity& id = m->identity();
  // usb_descriptors.md D5/D6: MBIM-only composition, control 12 (02/0e/00) + data 13 (0a/00/02).
  const ByteVector expected = concat({
      device_descriptor(0x0200, 0x00, 0x00, 0x00, 0x1199, 0x9079, 0x0006, 1, 2, 3, 1),
      configuration(1, 0xa0, 0xfa,
                    {
                        iad(12, 2, 0x02, 0x0e, 0x00),
                        interface(12, 0, 1, 0x02, 0x0e, 0x00),
                        {0x05, 0x24, 0x00, 0x10, 0x01},
                        {0x0c, 0x24, 0x1b, 0x00, 0x01, 0x00, 0x10, 0x20, 0x80, 0x00, 0x08, 0x20},
                        {0x08, 0x24, 0x1c, 0x00, 0x01, 0x40, 0xdc, 0x05},
                        {0x05, 0x24, 0x06, 12, 13},
                        endpoint(0x82, kInterrupt, 64, 9),
                        interface(13, 0, 0, 0x0a, 0x00, 0x02),
                        interface(13, 1, 2, 0x0a, 0x00, 0x02),
                        endpoint(0x81, kBulk, 512, 0),
                        endpoint(0x01, kBulk, 512, 0),
                    }),
  });
  EXPECT_EQ(id.descriptors, expected);
  EXPECT_EQ(id.strings.at(2), "Sierra Wireless EM7455 Qualcomm Snapdragon X7 LTE-A");
  EXPECT_EQ(id.strings.at(3), "LQ62750110021011");
  EXPECT_EQ(id.kernel_drivers, (std::map<std::uint8_t, std::string>{{12, "cdc_mbim"}, {13, "cdc_mbim"}}));
  EXPECT_EQ(m->profile(), "mbim");
}

TEST(MbimModem, NtbParameterRequests) {
  const auto m = make();
  Host h(*m);
  std::array<std::uint8_t, 28> p{};
  ASSERT_EQ(h.request(0xA1, cdc::kGetNtbParameters, 0, p), std::optional<std::size_t>(28));
  const auto params = cdc::decode_ntb_parameters(p);
  ASSERT_TRUE(params);
  EXPECT_TRUE(params->supports(ntb::NtbFormat::Ntb16));
  EXPECT_TRUE(params->supports(ntb::NtbFormat::Ntb32));
  EXPECT_EQ(params->ntb_in_max_size, kNtbInMaxSize);
  EXPECT_EQ(params->ntb_out_max_size, kNtbOutMaxSize);
  std::array<std::uint8_t, 4> size{};
  ntb::store_le32(size, 0, 16384);
  EXPECT_EQ(h.request(0x21, cdc::kSetNtbInputSize, 0, size), std::optional<std::size_t>(0));
  ntb::store_le32(size, 0, 1024);  // below 2048
  EXPECT_FALSE(h.request(0x21, cdc::kSetNtbInputSize, 0, size));
  std::array<std::uint8_t, 8> got{};
  ASSERT_EQ(h.request(0xA1, cdc::kGetNtbInputSize, 0, got), std::optional<std::size_t>(8));
  EXPECT_EQ(ntb::load_le32(got, 0), 16384u);
  EXPECT_EQ(h.request(0x21, cdc::kSetNtbFormat, 1, {}), std::optional<std::size_t>(0));
  std::array<std::uint8_t, 2> format{};
  ASSERT_EQ(h.request(0xA1, cdc::kGetNtbFormat, 0, format), std::optional<std::size_t>(2));
  EXPECT_EQ(format[0], 1);
  EXPECT_FALSE(h.request(0x21, cdc::kSetNtbFormat, 2, {}));
  // Not while the data interface is in alt 1 (NCM 1.0 §6.2.5); alt 0 resets to NTB16.
  ASSERT_TRUE(m->set_interface(kDataInterface, 1));
  EXPECT_FALSE(h.request(0x21, cdc::kSetNtbFormat, 0, {}));
  ASSERT_TRUE(m->set_interface(kDataInterface, 0));
  ASSERT_EQ(h.request(0xA1, cdc::kGetNtbFormat, 0, format), std::optional<std::size_t>(2));
  EXPECT_EQ(format[0], 0);
  // No MAX_DATAGRAM_SIZE (bmNetworkCapabilities 0x20), no requests to another interface.
  std::array<std::uint8_t, 2> dgram{};
  EXPECT_FALSE(h.request(0xA1, cdc::kGetMaxDatagramSize, 0, dgram));
  EXPECT_FALSE(m->control(SetupPacket{0xA1, cdc::kGetNtbParameters, 0, 13, 28}, p));
  EXPECT_FALSE(m->set_interface(kDataInterface, 2));
  EXPECT_FALSE(m->set_interface(0, 0));
}

// ---- the session ----------------------------------------------------------------------------------

TEST(MbimModem, SessionFromOpenToIpConfiguration) {
  const auto m = make();
  Host h(*m);
  const Answer open = h.open();
  EXPECT_EQ(open.type, mbim::MessageType::OpenDone);
  EXPECT_EQ(open.status, Status::None);
  EXPECT_TRUE(mbim_of(*m).function_open());

  const Answer caps_answer = h.command(BasicConnectCid::DeviceCaps, CommandType::Query);
  ASSERT_EQ(caps_answer.status, Status::None);
  const auto caps = mbim::parse_device_caps_info(caps_answer.information_buffer);
  ASSERT_TRUE(caps);
  EXPECT_EQ(caps->max_sessions, kMaxSessions);
  EXPECT_EQ(caps->hardware_info, "EM7455");
  EXPECT_FALSE(caps->device_id.empty());

  const auto sub = mbim::parse_subscriber_ready_status_info(
      h.command(BasicConnectCid::SubscriberReadyStatus, CommandType::Query).information_buffer);
  ASSERT_TRUE(sub);
  EXPECT_EQ(sub->ready_state, mbim::ReadyState::Initialized);
  EXPECT_EQ(sub->subscriber_id.size(), 15u);
  EXPECT_EQ(sub->sim_icc_id.size(), 20u);
  const auto pin = mbim::parse_pin_info(h.command(BasicConnectCid::Pin, CommandType::Query).information_buffer);
  ASSERT_TRUE(pin);
  EXPECT_EQ(pin->pin_state, 0u);

  // Radio on is refused while FCC-locked: FAILURE, and the hardware radio reads off.
  const Answer refused =
      h.command(BasicConnectCid::RadioState, CommandType::Set, mbim::encode_radio_state_set(mbim::RadioState::On));
  EXPECT_EQ(refused.status, Status::Failure);
  const auto radio = mbim::parse_radio_state_info(refused.information_buffer);
  ASSERT_TRUE(radio);
  EXPECT_EQ(radio->hw_radio_state, mbim::RadioState::Off);
  EXPECT_EQ(radio->sw_radio_state, mbim::RadioState::Off);
  EXPECT_EQ(h.command(BasicConnectCid::PacketService, CommandType::Set,
                      mbim::encode_packet_service_set(mbim::PacketServiceAction::Attach))
                .status,
            Status::RadioPowerOff);
  EXPECT_FALSE(mbim_of(*m).fcc_authenticated());

  h.fcc_unlock();
  EXPECT_TRUE(mbim_of(*m).fcc_authenticated());

  const Answer on =
      h.command(BasicConnectCid::RadioState, CommandType::Set, mbim::encode_radio_state_set(mbim::RadioState::On));
  EXPECT_EQ(on.status, Status::None);
  EXPECT_EQ(mbim::parse_radio_state_info(on.information_buffer)->hw_radio_state, mbim::RadioState::On);
  // Registration follows the radio, and says so in an indication.
  const auto reg = mbim::parse_registration_state_info(
      h.command(BasicConnectCid::RegisterState, CommandType::Query).information_buffer);
  ASSERT_TRUE(reg);
  EXPECT_EQ(reg->register_state, mbim::RegisterState::Home);
  EXPECT_EQ(reg->provider_id, "00101");

  const Answer attach = h.command(BasicConnectCid::PacketService, CommandType::Set,
                                  mbim::encode_packet_service_set(mbim::PacketServiceAction::Attach));
  ASSERT_EQ(attach.status, Status::None);
  EXPECT_EQ(mbim::parse_packet_service_info(attach.information_buffer)->packet_service_state,
            mbim::PacketServiceState::Attached);

  EXPECT_EQ(h.command(BasicConnectCid::IpConfiguration, CommandType::Query, mbim::encode_ip_configuration_query(0))
                .status,
            Status::ContextNotActivated);

  // Indications queue behind the answer that caused them; the host read them on the way.
  std::vector<std::uint32_t> indicated;
  for (const Answer& a : h.indications) indicated.push_back(a.cid);
  EXPECT_THAT(indicated, ::testing::ElementsAre(mbim::cid(BasicConnectCid::RadioState),
                                                mbim::cid(BasicConnectCid::RegisterState),
                                                mbim::cid(BasicConnectCid::PacketService)));
  const auto reg_ind = mbim::parse_registration_state_info(h.indications[1].information_buffer);
  ASSERT_TRUE(reg_ind);
  EXPECT_EQ(reg_ind->register_state, mbim::RegisterState::Home);

  mbim::ConnectSet connect;
  connect.session_id = 0;
  connect.access_string = "internet";
  connect.ip_type = mbim::IpType::IPv4v6;
  const Answer up = h.command(BasicConnectCid::Connect, CommandType::Set, mbim::encode(connect));
  ASSERT_EQ(up.status, Status::None);
  const auto up_info = mbim::parse_connect_info(up.information_buffer);
  ASSERT_TRUE(up_info);
  EXPECT_EQ(up_info->activation_state, mbim::ActivationState::Activated);
  EXPECT_EQ(up_info->context_type, mbim::kUuidContextTypeInternet);
  EXPECT_TRUE(m->session_active());

  const Answer ip =
      h.command(BasicConnectCid::IpConfiguration, CommandType::Query, mbim::encode_ip_configuration_query(0));
  ASSERT_EQ(ip.status, Status::None);
  const auto config = mbim::parse_ip_configuration_info(ip.information_buffer);
  ASSERT_TRUE(config) << mbim::to_string(config.error());
  const NetworkConfig& n = m->network().config();
  ASSERT_EQ(config->ipv4_addresses.size(), 1u);
  EXPECT_EQ(config->ipv4_addresses[0].address, n.host_ipv4);
  EXPECT_EQ(config->ipv4_addresses[0].on_link_prefix_length, n.host_ipv4_prefix_length);
  EXPECT_EQ(config->ipv4_gateway, n.gateway_ipv4);
  EXPECT_THAT(config->ipv4_dns_servers, ::testing::ElementsAre(n.dns_ipv4[0], n.dns_ipv4[1]));
  EXPECT_EQ(config->ipv4_mtu, n.mtu);
  ASSERT_EQ(config->ipv6_addresses.size(), 1u);
  EXPECT_EQ(config->ipv6_addresses[0].address, n.host_ipv6);
  EXPECT_EQ(config->ipv6_gateway, n.gateway_ipv6);

  const auto query = mbim::parse_connect_info(
      h.command(BasicConnectCid::Connect, CommandType::Query, mbim::encode(mbim::ConnectInfo{})).information_buffer);
  EXPECT_EQ(query->activation_state, mbim::ActivationState::Activated);

  connect.activation_command = mbim::ActivationCommand::Deactivate;
  const Answer down = h.command(BasicConnectCid::Connect, CommandType::Set, mbim::encode(connect));
  EXPECT_EQ(mbim::parse_connect_info(down.information_buffer)->activation_state, mbim::ActivationState::Deactivated);
  EXPECT_FALSE(m->session_active());

  const Answer close = h.transact(mbim::encode_close(99));
  EXPECT_EQ(close.type, mbim::MessageType::CloseDone);
  EXPECT_FALSE(mbim_of(*m).function_open());
  EXPECT_EQ(h.notifications, h.fragments_read);  // one RESPONSE_AVAILABLE per answer
  EXPECT_EQ(m->counters().notifications_sent, h.notifications);
}

TEST(MbimModem, ProtocolErrorsAreFunctionErrors) {
  const auto m = make();
  Host h(*m);
  // Before OPEN: NOT_OPENED.
  const Answer early = h.command(BasicConnectCid::DeviceCaps, CommandType::Query);
  EXPECT_EQ(early.type, mbim::MessageType::FunctionError);
  EXPECT_EQ(early.error, mbim::ProtocolError::NotOpened);
  h.open();
  // The EM7455's own reaction to real_mbim_qmi_over_mbim_traces.md T2.6: LENGTH_MISMATCH, tid 7.
  ByteVector bad = mbim::encode_command(7, mbim::kUuidQmi, 1, CommandType::Set,
                                        ByteVector{0x01, 0x10, 0x00, 0x00, 0x02, 0x03, 0x00, 0x08, 0x00, 0x5c, 0x55,
                                                   0x04, 0x00, 0x01, 0x01, 0x00, 0x06});
  bad[4] = 0x3d;  // MessageLength 61 with 65 bytes sent
  const Answer mismatch = h.transact(bad);
  EXPECT_EQ(mismatch.type, mbim::MessageType::FunctionError);
  EXPECT_EQ(mismatch.transaction_id, 7u);
  EXPECT_EQ(mismatch.error, mbim::ProtocolError::LengthMismatch);
  // Unknown service and unknown CID: NO_DEVICE_SUPPORT.
  EXPECT_EQ(h.transact(mbim::encode_command(50, mbim::kUuidDss, 1, CommandType::Query, {})).status,
            Status::NoDeviceSupport);
  EXPECT_EQ(h.transact(mbim::encode_command(51, mbim::kUuidBasicConnect, 77, CommandType::Query, {})).status,
            Status::NoDeviceSupport);
  // FCC authentication from a client id nobody allocated: a QMI failure, the radio stays locked.
  const Answer fcc = h.qmi(mbim::qmi::encode_dms_set_fcc_authentication(0x14, 1));
  EXPECT_EQ(fcc.status, Status::None);
  EXPECT_EQ(mbim::qmi::parse_result(mbim::qmi::parse(fcc.information_buffer)->tlvs)->result, 1);
  EXPECT_FALSE(mbim_of(*m).fcc_authenticated());
  // CONNECT for a session beyond MaxSessions.
  mbim::ConnectSet c;
  c.session_id = kMaxSessions;
  EXPECT_EQ(h.command(BasicConnectCid::Connect, CommandType::Set, mbim::encode(c)).status, Status::InvalidParameters);
  // A fragment out of sequence.
  auto pieces = *mbim::fragment(mbim::encode_command(60, mbim::kUuidBasicConnect, 1, CommandType::Query,
                                                     ByteVector(100, 0)),
                                64);
  ASSERT_GE(pieces.size(), 3u);
  ASSERT_EQ(h.request(0x21, cdc::kSendEncapsulatedCommand, 0, pieces[0]), std::optional<std::size_t>(0));
  ASSERT_EQ(h.request(0x21, cdc::kSendEncapsulatedCommand, 0, pieces[2]), std::optional<std::size_t>(0));
  const auto oos = h.read_message();
  ASSERT_TRUE(oos);
  EXPECT_EQ(oos->error, mbim::ProtocolError::FragmentOutOfSequence);
}

TEST(MbimModem, SimPinBlocksRegistrationUntilEntered) {
  ModemOptions options;
  options.sim_pin = "1234";
  const auto m = make(options);
  Host h(*m);
  h.open();
  EXPECT_EQ(mbim::parse_subscriber_ready_status_info(
                h.command(BasicConnectCid::SubscriberReadyStatus, CommandType::Query).information_buffer)
                ->ready_state,
            mbim::ReadyState::DeviceLocked);
  h.fcc_unlock();
  ASSERT_EQ(h.command(BasicConnectCid::RadioState, CommandType::Set, mbim::encode_radio_state_set(mbim::RadioState::On))
                .status,
            Status::None);
  EXPECT_EQ(h.command(BasicConnectCid::PacketService, CommandType::Set,
                      mbim::encode_packet_service_set(mbim::PacketServiceAction::Attach))
                .status,
            Status::NotRegistered);
  const Answer wrong = h.command(BasicConnectCid::Pin, CommandType::Set, mbim::encode(mbim::PinSet{2, 0, "0000", ""}));
  EXPECT_EQ(wrong.status, Status::Failure);
  EXPECT_EQ(mbim::parse_pin_info(wrong.information_buffer)->remaining_attempts, 2u);
  EXPECT_EQ(h.command(BasicConnectCid::Pin, CommandType::Set, mbim::encode(mbim::PinSet{2, 0, "1234", ""})).status,
            Status::None);
  EXPECT_EQ(h.command(BasicConnectCid::PacketService, CommandType::Set,
                      mbim::encode_packet_service_set(mbim::PacketServiceAction::Attach))
                .status,
            Status::None);
}

TEST(MbimModem, AnswersAreFragmentedToTheHostsMaxControlTransfer) {
  const auto m = make();
  Host h(*m);
  ASSERT_EQ(h.open(64).status, Status::None);
  const std::size_t before = h.fragments_read;
  const Answer caps = h.command(BasicConnectCid::DeviceCaps, CommandType::Query);
  const std::size_t fragments = h.fragments_read - before;
  EXPECT_GE(fragments, 3u);  // 48 + ~150 bytes in 44-byte slices
  EXPECT_EQ(h.notifications, h.fragments_read);
  const auto info = mbim::parse_device_caps_info(caps.information_buffer);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->firmware_info, "SWI9X30C_02.24.05.06");
  // The host's commands may be fragmented too (CONNECT with a long APN in 64-byte pieces).
  h.fcc_unlock();
  h.command(BasicConnectCid::RadioState, CommandType::Set, mbim::encode_radio_state_set(mbim::RadioState::On));
  h.command(BasicConnectCid::PacketService, CommandType::Set,
            mbim::encode_packet_service_set(mbim::PacketServiceAction::Attach));
  mbim::ConnectSet c;
  c.session_id = 2;
  c.access_string = "a.very.long.access.point.name.example";
  const Answer up = h.command(BasicConnectCid::Connect, CommandType::Set, mbim::encode(c));
  EXPECT_EQ(up.status, Status::None);
  EXPECT_EQ(mbim::parse_connect_info(up.information_buffer)->session_id, 2u);
  // An OPEN below the 64-byte minimum is raised to it (MBIM_CTRLMSG_MINLEN).
  ASSERT_EQ(h.open(16).status, Status::None);
  h.max_control_transfer = 64;
  const std::size_t n = h.fragments_read;
  h.command(BasicConnectCid::DeviceCaps, CommandType::Query);
  EXPECT_EQ(h.fragments_read - n, fragments);
}

TEST(MbimModem, ResetFunctionClosesAndForgetsAnswers) {
  const auto m = make();
  Host h(*m);
  h.bring_up();
  h.send(mbim::encode_command(500, mbim::kUuidBasicConnect, 1, CommandType::Query, {}));
  EXPECT_EQ(h.request(0x21, 0x05, 0, {}), std::optional<std::size_t>(0));
  EXPECT_FALSE(mbim_of(*m).function_open());
  EXPECT_FALSE(m->session_active());
  EXPECT_FALSE(h.read_fragment());
  EXPECT_TRUE(mbim_of(*m).fcc_authenticated());  // firmware state survives
}

// ---- data -------------------------------------------------------------------------------------------

TEST(MbimModem, IcmpEchoThroughIps0) {
  const auto m = make();
  Host h(*m);
  h.bring_up(0);
  ASSERT_TRUE(m->set_interface(kDataInterface, kDataAltSetting));
  EXPECT_EQ(read_in(*m).first.result, EndpointResult::nak);
  const ByteVector echo = icmp_echo(m->network().config(), 1);
  ASSERT_EQ(m->out(kBulkOutEndpoint, ntb_of({echo}, 0)), EndpointResult::ok);
  EXPECT_EQ(m->counters().ntbs_from_host, 1u);
  EXPECT_EQ(m->counters().datagrams_from_host, 1u);
  EXPECT_EQ(m->network().counters().icmp_echo_replies, 1u);
  const auto [r, bytes] = read_in(*m);
  ASSERT_EQ(r.result, EndpointResult::ok);
  const Parsed p = parse_in(bytes);
  EXPECT_TRUE(p.errors.empty());
  ASSERT_EQ(p.ntbs.size(), 1u);
  EXPECT_EQ(p.ntbs[0].format, ntb::NtbFormat::Ntb16);
  ASSERT_EQ(p.datagrams.size(), 1u);
  EXPECT_EQ(p.datagrams[0].kind, ntb::DatagramKind::Ips);
  EXPECT_EQ(p.datagrams[0].session, 0);
  const auto reply = mbim::Bytes(bytes).subspan(static_cast<std::size_t>(p.datagrams[0].offset), p.datagrams[0].length);
  ASSERT_GE(reply.size(), 28u);
  EXPECT_EQ(reply[9], 1);   // ICMP
  EXPECT_EQ(reply[20], 0);  // echo reply
  EXPECT_TRUE(std::equal(reply.begin() + 16, reply.begin() + 20, echo.begin() + 12));  // back to us
  EXPECT_EQ(m->counters().ntbs_to_host, 1u);
  EXPECT_EQ(m->counters().datagrams_to_host, 1u);
  EXPECT_EQ(read_in(*m).first.result, EndpointResult::nak);
}

TEST(MbimModem, SeveralRepliesAggregateIntoOneNtb32OnTheConnectedSession) {
  const auto m = make();
  Host h(*m);
  h.bring_up(3);
  ASSERT_EQ(h.request(0x21, cdc::kSetNtbFormat, 1, {}), std::optional<std::size_t>(0));
  ASSERT_TRUE(m->set_interface(kDataInterface, kDataAltSetting));
  const auto& n = m->network().config();
  ASSERT_EQ(m->out(kBulkOutEndpoint,
                   ntb_of({icmp_echo(n, 1), icmp_echo(n, 2), icmp_echo(n, 3)}, 3, ntb::NtbFormat::Ntb32)),
            EndpointResult::ok);
  const auto [r, bytes] = read_in(*m);
  ASSERT_EQ(r.result, EndpointResult::ok);
  const Parsed p = parse_in(bytes);
  ASSERT_EQ(p.ntbs.size(), 1u);
  EXPECT_EQ(p.ntbs[0].format, ntb::NtbFormat::Ntb32);
  ASSERT_EQ(p.datagrams.size(), 3u);
  for (const auto& d : p.datagrams) EXPECT_EQ(d.session, 3);
  // Datagrams for a session that is not connected are dropped and counted.
  ASSERT_EQ(m->out(kBulkOutEndpoint, ntb_of({icmp_echo(n, 4)}, 0)), EndpointResult::ok);
  EXPECT_EQ(m->counters().frames_before_session, 1u);
  EXPECT_EQ(m->network().counters().packets_from_host, 3u);
  // Garbage on bulk OUT is dropped and counted, never parsed into the network.
  const ByteVector junk(100, 0x5A);
  ASSERT_EQ(m->out(kBulkOutEndpoint, junk), EndpointResult::ok);
  EXPECT_EQ(m->counters().ntbs_from_host_dropped, 1u);
}

TEST(MbimModem, ReplyLargerThanRoomWaitsForTheNextNtb) {
  const auto m = make();
  Host h(*m);
  h.bring_up();
  ASSERT_TRUE(m->set_interface(kDataInterface, kDataAltSetting));
  const auto& n = m->network().config();
  std::vector<ByteVector> pings;
  for (std::uint16_t i = 0; i < 10; ++i) pings.push_back(icmp_echo(n, i));
  ASSERT_EQ(m->out(kBulkOutEndpoint, ntb_of(pings, 0)), EndpointResult::ok);
  // A 300-byte IN buffer holds a few 44-byte replies per NTB; nothing is lost across NTBs.
  std::size_t replies = 0;
  for (int i = 0; i < 20; ++i) {
    const auto [r, bytes] = read_in(*m, 300);
    if (r.result != EndpointResult::ok) break;
    const Parsed p = parse_in(bytes);
    EXPECT_TRUE(p.errors.empty());
    replies += p.datagrams.size();
  }
  EXPECT_EQ(replies, 10u);
}

// ---- faults -----------------------------------------------------------------------------------------

class MbimFaults : public ::testing::Test {
 protected:
  void SetUp() override {
    modem = make();
    host = std::make_unique<Host>(*modem);
    host->bring_up();
    ASSERT_TRUE(modem->set_interface(kDataInterface, kDataAltSetting));
  }
  void ping(std::uint16_t seq = 1) {
    ASSERT_EQ(modem->out(kBulkOutEndpoint, ntb_of({icmp_echo(modem->network().config(), seq)}, 0)),
              EndpointResult::ok);
  }
  std::unique_ptr<Modem> modem;
  std::unique_ptr<Host> host;
};

TEST_F(MbimFaults, StallUntilClearHalt) {
  modem->faults().stall_bulk_in = true;
  ping();
  EXPECT_EQ(read_in(*modem).first.result, EndpointResult::stall);
  EXPECT_EQ(read_in(*modem).first.result, EndpointResult::stall);
  ASSERT_TRUE(modem->clear_halt(kBulkInEndpoint));
  EXPECT_EQ(read_in(*modem).first.result, EndpointResult::ok);  // the reply was kept
  modem->faults().stall_bulk_out = true;
  EXPECT_EQ(modem->out(kBulkOutEndpoint, ntb_of({icmp_echo(modem->network().config(), 2)}, 0)),
            EndpointResult::stall);
  ASSERT_TRUE(modem->clear_halt(kBulkOutEndpoint));
  ping(3);
  EXPECT_EQ(modem->counters().faults_injected, 2u);
}

TEST_F(MbimFaults, UnplugAndUnplugAfterInTransfers) {
  modem->faults().unplug_after_in_transfers = 2;
  ByteVector small(2048);
  ping(1);
  EXPECT_EQ(modem->in(kBulkInEndpoint, small).result, EndpointResult::ok);
  ping(2);
  EXPECT_EQ(modem->in(kBulkInEndpoint, small).result, EndpointResult::ok);
  EXPECT_FALSE(modem->connected());
  EXPECT_EQ(modem->in(kBulkInEndpoint, small).result, EndpointResult::gone);
  EXPECT_EQ(modem->out(kBulkOutEndpoint, small), EndpointResult::gone);
  EXPECT_FALSE(modem->control(SetupPacket{0xA1, cdc::kGetEncapsulatedResponse, 0, 12, 16}, small));
  EXPECT_FALSE(modem->set_interface(kDataInterface, 0));

  auto other = make();
  other->faults().unplug = true;
  EXPECT_FALSE(other->connected());
  EXPECT_EQ(other->in(kNotificationEndpoint, small).result, EndpointResult::gone);
}

TEST_F(MbimFaults, DamagedNtbsAreWhatTheParserRejects) {
  modem->faults().garbage_ntbs = 1;
  modem->faults().truncated_ntbs = 1;
  modem->faults().oversize_ntbs = 1;
  ping(1);
  auto p = parse_in(read_in(*modem).second);
  EXPECT_THAT(p.errors, ::testing::ElementsAre(ntb::NtbError::NthBadSignature));
  ping(2);
  p = parse_in(read_in(*modem).second);
  EXPECT_THAT(p.errors, ::testing::ElementsAre(ntb::NtbError::NthBlockExceedsTransfer));
  ping(3);
  // Oversize: with a buffer larger than dwNtbInMaxSize the block itself is longer than negotiated.
  const auto [r, bytes] = read_in(*modem, kNtbInMaxSize + 4096);
  ASSERT_EQ(r.result, EndpointResult::ok);
  EXPECT_GT(bytes.size(), kNtbInMaxSize);
  p = parse_in(bytes);
  ASSERT_EQ(p.ntbs.size(), 1u);
  EXPECT_GT(p.ntbs[0].block_length, kNtbInMaxSize);
  ping(4);
  EXPECT_TRUE(parse_in(read_in(*modem).second).errors.empty());  // back to normal
  EXPECT_EQ(modem->counters().faults_injected, 3u);
}

TEST_F(MbimFaults, NtbFormatRevertsAfterAlt) {
  ASSERT_TRUE(modem->set_interface(kDataInterface, 0));
  ASSERT_EQ(host->request(0x21, cdc::kSetNtbFormat, 1, {}), std::optional<std::size_t>(0));
  modem->faults().ntb_format_reverts_after_alt = true;
  ASSERT_TRUE(modem->set_interface(kDataInterface, kDataAltSetting));
  ping();
  const Parsed p = parse_in(read_in(*modem).second);
  ASSERT_EQ(p.ntbs.size(), 1u);
  EXPECT_EQ(p.ntbs[0].format, ntb::NtbFormat::Ntb16);
}

TEST_F(MbimFaults, LostResponseAvailableCanStillBePolled) {
  modem->faults().lose_response_available = true;
  host->send(mbim::encode_command(700, mbim::kUuidBasicConnect, 1, CommandType::Query, {}));
  EXPECT_FALSE(host->notification());
  const auto a = host->read_message();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->transaction_id, 700u);
  EXPECT_EQ(a->status, Status::None);
}

TEST_F(MbimFaults, SlowControlAnswersFollowTheClock) {
  Clock::time_point now = Clock::now();
  mbim_of(*modem).set_clock([&now] { return now; });
  modem->faults().control_answer_delay = std::chrono::milliseconds(300);
  host->send(mbim::encode_command(800, mbim::kUuidBasicConnect, 1, CommandType::Query, {}));
  EXPECT_FALSE(host->notification());
  EXPECT_FALSE(host->read_fragment());
  const auto deadline = modem->next_deadline();
  ASSERT_TRUE(deadline);
  EXPECT_EQ(*deadline, now + std::chrono::milliseconds(300));
  now += std::chrono::milliseconds(300);
  EXPECT_TRUE(host->notification());
  const auto a = host->read_message();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->transaction_id, 800u);
  EXPECT_FALSE(modem->next_deadline());
}

TEST_F(MbimFaults, DropSessionIndicatesDeactivation) {
  modem->faults().drop_session = true;
  ping();  // the next transaction ends the session
  EXPECT_FALSE(modem->session_active());
  EXPECT_FALSE(modem->faults().drop_session);
  ASSERT_TRUE(host->notification());
  const auto ind = host->read_message();
  ASSERT_TRUE(ind);
  EXPECT_EQ(ind->type, mbim::MessageType::IndicateStatus);
  EXPECT_EQ(ind->cid, mbim::cid(BasicConnectCid::Connect));
  const auto info = mbim::parse_connect_info(ind->information_buffer);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->session_id, 0u);
  EXPECT_EQ(info->activation_state, mbim::ActivationState::Deactivated);
  EXPECT_EQ(modem->counters().frames_before_session, 1u);  // the ping that found no session
}

TEST_F(MbimFaults, ControlPortDropSessionAnswersThenIndicatesDeactivation) {
  Clock::time_point now = Clock::now();
  mbim_of(*modem).set_clock([&now] { return now; });
  // IPv4 + UDP from the host to 192.0.2.1 on the control port, checksum 0 (none).
  const std::string command = "drop-session";
  ByteVector p(20 + 8, 0);
  p[0] = 0x45;
  p[8] = 64;
  p[9] = 17;
  const NetworkConfig& n = modem->network().config();
  std::copy(n.host_ipv4.bytes.begin(), n.host_ipv4.bytes.end(), p.begin() + 12);
  const std::uint8_t dst[4] = {192, 0, 2, 1};
  std::copy(dst, dst + 4, p.begin() + 16);
  p[20] = 0x9c;
  p[21] = 0x41;
  p[22] = static_cast<std::uint8_t>(kSimControlPort >> 8);
  p[23] = static_cast<std::uint8_t>(kSimControlPort & 0xff);
  p[25] = static_cast<std::uint8_t>(8 + command.size());
  p.insert(p.end(), command.begin(), command.end());
  p[3] = static_cast<std::uint8_t>(p.size());
  const std::uint16_t hc = eth::ipv4_header_checksum(eth::Bytes(p).first(20));
  p[10] = static_cast<std::uint8_t>(hc >> 8);
  p[11] = static_cast<std::uint8_t>(hc & 0xff);
  ASSERT_EQ(modem->out(kBulkOutEndpoint, ntb_of({p}, 0)), EndpointResult::ok);
  EXPECT_TRUE(modem->session_active());  // not before the answer has gone
  const auto [r, bytes] = read_in(*modem);
  ASSERT_EQ(r.result, EndpointResult::ok);
  const Parsed in = parse_in(bytes);
  ASSERT_EQ(in.datagrams.size(), 1u);
  const auto d = eth::Bytes(bytes).subspan(static_cast<std::size_t>(in.datagrams[0].offset), in.datagrams[0].length);
  ASSERT_EQ(d.size(), 28u + 2);
  EXPECT_EQ(std::string(d.begin() + 28, d.end()), "ok");
  EXPECT_EQ(d[20] << 8 | d[21], kSimControlPort);
  EXPECT_EQ(d[22] << 8 | d[23], 0x9c41);

  EXPECT_FALSE(host->notification());
  EXPECT_TRUE(modem->session_active());
  ASSERT_TRUE(modem->next_deadline());
  EXPECT_EQ(*modem->next_deadline(), now + kDropSessionAfterAnswer);
  now += kDropSessionAfterAnswer;
  ASSERT_TRUE(host->notification());  // the next transaction ends the session
  EXPECT_FALSE(modem->session_active());
  const auto ind = host->read_message();
  ASSERT_TRUE(ind);
  EXPECT_EQ(ind->type, mbim::MessageType::IndicateStatus);
  EXPECT_EQ(ind->cid, mbim::cid(BasicConnectCid::Connect));
  const auto info = mbim::parse_connect_info(ind->information_buffer);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->activation_state, mbim::ActivationState::Deactivated);
  EXPECT_EQ(modem->network().counters().control_commands, 1u);
  EXPECT_EQ(modem->counters().faults_injected, 1u);
}

// ---- hostile host ---------------------------------------------------------------------------------

TEST(MbimModem, RandomBytesNeverCrash) {
  std::mt19937 rng(7455);
  std::uniform_int_distribution<int> byte(0, 255);
  const auto m = make();
  Host h(*m);
  h.bring_up();
  ASSERT_TRUE(m->set_interface(kDataInterface, kDataAltSetting));
  const std::vector<ByteVector> seeds = {
      mbim::encode_open(1, 4096),
      mbim::encode_command(2, mbim::kUuidBasicConnect, 12, CommandType::Set, mbim::encode(mbim::ConnectSet{})),
      mbim::encode_command(3, mbim::kUuidBasicConnect, 15, CommandType::Query, mbim::encode_ip_configuration_query(0)),
      mbim::encode_command(4, mbim::kUuidQmi, 1, CommandType::Set, mbim::qmi::encode_ctl_allocate_client_id(1, 2)),
      mbim::encode_command(5, mbim::kUuidBasicConnect, 4, CommandType::Set, mbim::encode(mbim::PinSet{})),
      ntb_of({icmp_echo(m->network().config(), 1)}, 0),
  };
  ByteVector in_buffer(4096);
  for (int round = 0; round < 4000; ++round) {
    ByteVector b = seeds[static_cast<std::size_t>(rng()) % seeds.size()];
    if (round % 4 == 0) {
      b.resize(static_cast<std::size_t>(rng() % 200));
      for (auto& x : b) x = static_cast<std::uint8_t>(byte(rng));
    } else {
      for (int i = 0; i < 1 + round % 5; ++i) b[static_cast<std::size_t>(rng()) % b.size()] =
          static_cast<std::uint8_t>(byte(rng));
    }
    switch (round % 3) {
      case 0: (void)h.request(0x21, cdc::kSendEncapsulatedCommand, 0, b); break;
      case 1: (void)m->out(kBulkOutEndpoint, b); break;
      default: {
        const auto request = static_cast<std::uint8_t>(byte(rng));
        (void)m->control(SetupPacket{static_cast<std::uint8_t>(round % 2 ? 0x21 : 0xA1), request,
                                     static_cast<std::uint16_t>(rng()), kControlInterface,
                                     static_cast<std::uint16_t>(b.size())},
                         b);
      }
    }
    (void)m->in(kNotificationEndpoint, in_buffer);
    (void)m->in(kBulkInEndpoint, in_buffer);
    if (round % 7 == 0) (void)h.read_fragment();
  }
  EXPECT_TRUE(m->connected());
}

}  // namespace
}  // namespace wwan::sim
