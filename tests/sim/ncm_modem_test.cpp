// The NCM function model, driven the way a host driver drives a real one: class requests on EP0,
// NTBs built with the datapath NtbBuilder on bulk OUT, NTBs on bulk IN read back with the datapath
// parser, notifications decoded with the control codec. The clock is a fake one: no test sleeps.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "control/cdc_ncm.hpp"
#include "datapath/ethernet.hpp"
#include "datapath/ntb_build.hpp"
#include "datapath/ntb_parse.hpp"
#include "sim/ncm_modem.hpp"
#include "sim/profiles.hpp"

namespace wwan::sim {
namespace {

using Vec = std::vector<std::uint8_t>;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

const eth::MacAddress kHostMac{{0x00, 0x1e, 0x10, 0x1f, 0x00, 0x00}};

std::uint16_t ref_checksum(Vec data) {
  if (data.size() % 2 != 0) data.push_back(0);
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i < data.size(); i += 2) {
    sum += static_cast<std::uint32_t>(data[i] << 8 | data[i + 1]);
    sum = (sum & 0xFFFF) + (sum >> 16);
  }
  return static_cast<std::uint16_t>(~sum & 0xFFFF);
}
Vec sub(const Vec& v, std::size_t from, std::size_t n) {
  return Vec(v.begin() + static_cast<std::ptrdiff_t>(from), v.begin() + static_cast<std::ptrdiff_t>(from + n));
}

// `ip` (a 20-byte IPv4 header and its payload) with Total Length and the header checksum filled
// in, in an Ethernet frame from the host to `to`.
Vec ipv4_frame(const eth::MacAddress& to, Vec ip) {
  ip[2] = static_cast<std::uint8_t>(ip.size() >> 8);
  ip[3] = static_cast<std::uint8_t>(ip.size());
  const std::uint16_t hc = ref_checksum(sub(ip, 0, 20));
  ip[10] = static_cast<std::uint8_t>(hc >> 8);
  ip[11] = static_cast<std::uint8_t>(hc);
  Vec f(to.bytes.begin(), to.bytes.end());
  f.insert(f.end(), kHostMac.bytes.begin(), kHostMac.bytes.end());
  f.insert(f.end(), {0x08, 0x00});
  f.insert(f.end(), ip.begin(), ip.end());
  return f;
}

// Ethernet + IPv4 + ICMP echo request from the host (10.64.64.2) to 8.8.8.8, checksums by hand.
Vec echo_request_frame(const eth::MacAddress& to, std::uint16_t seq, std::size_t data_bytes = 32) {
  Vec ip = {0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 1, 0, 0, 10, 64, 64, 2, 8, 8, 8, 8};
  Vec icmp = {8, 0, 0, 0, 0x77, 0x77, static_cast<std::uint8_t>(seq >> 8), static_cast<std::uint8_t>(seq)};
  for (std::size_t i = 0; i < data_bytes; ++i) icmp.push_back(static_cast<std::uint8_t>(i));
  const std::uint16_t ic = ref_checksum(icmp);
  icmp[2] = static_cast<std::uint8_t>(ic >> 8);
  icmp[3] = static_cast<std::uint8_t>(ic);
  ip.insert(ip.end(), icmp.begin(), icmp.end());
  return ipv4_frame(to, std::move(ip));
}

// Ethernet + IPv4 + UDP from the host (10.64.64.2:40000) to 192.0.2.1 on the network's control
// port, carrying `command`; UDP checksum 0 (none, RFC 768).
Vec control_frame(const eth::MacAddress& to, const std::string& command) {
  Vec ip = {0x45, 0, 0, 0, 0, 2, 0x40, 0, 64, 17, 0, 0, 10, 64, 64, 2, 192, 0, 2, 1};
  const std::size_t udp_length = 8 + command.size();
  ip.insert(ip.end(), {0x9c, 0x40, static_cast<std::uint8_t>(kSimControlPort >> 8),
                       static_cast<std::uint8_t>(kSimControlPort), static_cast<std::uint8_t>(udp_length >> 8),
                       static_cast<std::uint8_t>(udp_length), 0, 0});
  ip.insert(ip.end(), command.begin(), command.end());
  return ipv4_frame(to, std::move(ip));
}

// An ARP frame (RFC 826) from the host.
Vec arp_frame(std::uint16_t op, const eth::MacAddress& dst_mac, const eth::MacAddress& target_mac,
              const std::array<std::uint8_t, 4>& target_ip) {
  Vec f(dst_mac.bytes.begin(), dst_mac.bytes.end());
  f.insert(f.end(), kHostMac.bytes.begin(), kHostMac.bytes.end());
  f.insert(f.end(), {0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, static_cast<std::uint8_t>(op)});
  f.insert(f.end(), kHostMac.bytes.begin(), kHostMac.bytes.end());
  f.insert(f.end(), {10, 64, 64, 2});
  f.insert(f.end(), target_mac.bytes.begin(), target_mac.bytes.end());
  f.insert(f.end(), target_ip.begin(), target_ip.end());
  f.resize(60, 0);
  return f;
}

struct Parsed {
  std::vector<Vec> datagrams;
  std::vector<ntb::NtbError> errors;
  std::vector<ntb::NtbInfo> ntbs;
};
Parsed parse(const Vec& transfer) {
  struct Sink {
    const Vec& t;
    Parsed& p;
    void datagram(const ntb::DatagramView& d) { p.datagrams.push_back(sub(t, static_cast<std::size_t>(d.offset), d.length)); }
    void error(std::uint32_t, ntb::NtbError e) { p.errors.push_back(e); }
    void ntb(const ntb::NtbInfo& i) { p.ntbs.push_back(i); }
  };
  Parsed p;
  Sink s{transfer, p};
  ntb::parse_transfer(transfer, {}, s);
  return p;
}

// The UDP payloads from the control port in one IN transfer.
std::vector<std::string> control_answers(const Vec& transfer) {
  std::vector<std::string> out;
  for (const Vec& f : parse(transfer).datagrams) {
    if (f.size() < 14 + 28 || f[12] != 0x08 || f[13] != 0x00 || f[14 + 9] != 17) continue;
    if ((f[14 + 20] << 8 | f[14 + 21]) != kSimControlPort) continue;
    out.emplace_back(f.begin() + 14 + 28, f.end());
  }
  return out;
}

// A host driver in miniature, and the modem it drives.
struct Host {
  std::unique_ptr<Modem> owned;
  NcmModem& m;
  Clock::time_point now = Clock::time_point{} + 24h;

  explicit Host(std::unique_ptr<Modem> modem) : owned(std::move(modem)), m(dynamic_cast<NcmModem&>(*owned)) {
    m.set_clock([this] { return now; });
  }
  std::uint16_t iface() const { return m.ncm_profile().control_interface; }

  std::optional<Vec> get(std::uint8_t request, std::uint16_t value, std::uint16_t length) {
    Vec d(length);
    const auto r = m.control({cdc::kRequestTypeClassInterfaceIn, request, value, iface(), length}, d);
    if (!r) return std::nullopt;
    d.resize(*r);
    return d;
  }
  bool set(std::uint8_t request, std::uint16_t value, Vec data = {}) {
    return m.control({cdc::kRequestTypeClassInterfaceOut, request, value, iface(), static_cast<std::uint16_t>(data.size())},
                     data)
        .has_value();
  }
  cdc::NtbParameters parameters() { return *cdc::decode_ntb_parameters(*get(cdc::kGetNtbParameters, 0, 28)); }
  std::optional<cdc::Notification> notification(Vec& storage) {
    storage.assign(64, 0);
    const InResult r = m.in(m.ncm_profile().interrupt_in_endpoint, storage);
    if (r.result != EndpointResult::ok) return std::nullopt;
    storage.resize(r.bytes);
    return cdc::decode_notification(storage);
  }
  std::vector<std::uint8_t> notifications() {  // bNotification of every pending one
    std::vector<std::uint8_t> out;
    Vec b;
    while (auto n = notification(b)) out.push_back(n->header.notification);
    return out;
  }
  // Every encapsulated response waiting, concatenated.
  std::string responses() {
    std::string all;
    for (;;) {
      const auto r = get(cdc::kGetEncapsulatedResponse, 0, 1024);
      if (!r || r->empty()) return all;
      all.append(r->begin(), r->end());
    }
  }
  // SEND_ENCAPSULATED_COMMAND, then what a cdc-wdm reader would get after RESPONSE_AVAILABLE.
  std::string at(const std::string& command) {
    Vec d(command.begin(), command.end());
    d.push_back('\r');
    if (!set(cdc::kSendEncapsulatedCommand, 0, d)) return "<stall>";
    return responses();
  }
  // The E3372 bind sequence of anchors §1.5 + dial; drains the notifications it causes.
  void bring_up(ntb::NtbFormat format, bool dial = true) {
    ASSERT_TRUE(m.set_interface(m.ncm_profile().data_interface, 0));
    ASSERT_TRUE(set(cdc::kSetCrcMode, cdc::kCrcNotAppended));
    ASSERT_TRUE(set(cdc::kSetNtbFormat, cdc::ntb_format_value(format)));
    ASSERT_TRUE(m.set_interface(m.ncm_profile().data_interface, 1));
    notifications();
    responses();
    if (dial && m.at()) {
      ASSERT_THAT(at("AT^NDISDUP=1,1,\"internet\""), HasSubstr("OK"));
      notifications();
    }
  }
  Vec ntb(const std::vector<Vec>& frames, ntb::NtbFormat format, bool ndp_at_end) {
    Vec buf(65536);
    ntb::NtbBuilder b(buf, cdc::out_params(parameters(), format, ndp_at_end), {format, ntb::DatagramKind::Ncm, 0});
    for (const Vec& f : frames) EXPECT_EQ(b.append(f), ntb::AppendResult::Appended);
    const ntb::Bytes out = b.finish();
    return Vec(out.begin(), out.end());
  }
  EndpointResult send(const Vec& transfer) { return m.out(m.ncm_profile().bulk_out_endpoint, transfer); }
  InResult receive(Vec& buffer, std::size_t size = 65536) {
    buffer.assign(size, 0);
    const InResult r = m.in(m.ncm_profile().bulk_in_endpoint, buffer);
    buffer.resize(r.result == EndpointResult::ok ? r.bytes : 0);
    return r;
  }
};

void expect_echo_reply(const Vec& frame, const eth::MacAddress& from, std::uint16_t seq) {
  ASSERT_GE(frame.size(), 14u + 28);
  EXPECT_EQ(sub(frame, 0, 6), Vec(kHostMac.bytes.begin(), kHostMac.bytes.end()));
  EXPECT_EQ(sub(frame, 6, 6), Vec(from.bytes.begin(), from.bytes.end()));
  EXPECT_EQ(sub(frame, 12, 2), (Vec{0x08, 0x00}));
  const Vec ip = sub(frame, 14, frame.size() - 14);
  EXPECT_EQ(ref_checksum(sub(ip, 0, 20)), 0);
  EXPECT_EQ(sub(ip, 12, 4), (Vec{8, 8, 8, 8}));
  EXPECT_EQ(sub(ip, 16, 4), (Vec{10, 64, 64, 2}));
  EXPECT_EQ(ip[20], 0);  // echo reply
  EXPECT_EQ(ref_checksum(sub(ip, 20, ip.size() - 20)), 0);
  EXPECT_EQ(ip[26] << 8 | ip[27], seq);
}

// ---- identity ----------------------------------------------------------------------------------

TEST(NcmModemTest, HuaweiIdentityIsLayoutD2) {
  ModemOptions o;
  o.serial = "E3372-X";
  const auto m = make_huawei_e3372(o);
  const DeviceIdentity& id = m->identity();
  ASSERT_GE(id.descriptors.size(), 18u + 225);
  EXPECT_EQ(id.descriptors.size(), 18u + 225);  // device + configuration, wTotalLength 225
  EXPECT_EQ(sub(id.descriptors, 8, 4), (Vec{0xd1, 0x12, 0x06, 0x15}));
  EXPECT_EQ(id.descriptors[18 + 2] | id.descriptors[18 + 3] << 8, 225);
  EXPECT_EQ(id.strings.at(3), "E3372-X");
  EXPECT_EQ(id.strings.at(7), "001E101F0000");  // iMACAddress of the Ethernet FD
  EXPECT_EQ(id.kernel_drivers.at(1), "huawei_cdc_ncm");
  EXPECT_EQ(id.kernel_drivers.at(0), "option");
  EXPECT_EQ(id.kernel_drivers.at(5), "usb-storage");
  EXPECT_EQ(m->profile(), "huawei-e3372");
  EXPECT_EQ(make_modem("huawei-e3372")->profile(), "huawei-e3372");
  EXPECT_EQ(make_modem("generic-ncm")->profile(), "generic-ncm");
}

TEST(NcmModemTest, GenericIdentityIsAConformantNcmFunction) {
  const auto m = make_generic_ncm({});
  const Vec& d = m->identity().descriptors;
  EXPECT_EQ(sub(d, 8, 4), (Vec{0x25, 0x05, 0xa1, 0xa4}));
  // Walk: IAD 02/0d, interface 0 02/0d/00, NCM FD, interface 1 alt 0 no EPs, alt 1 two bulk EPs.
  bool iad = false, ncm_fd = false, data_alt0_empty = false, data_alt1_bulk = false;
  for (std::size_t at = 18 + 9; at + 1 < d.size(); at += d[at]) {
    if (d[at + 1] == 0x0b) iad = d[at + 4] == 0x02 && d[at + 5] == 0x0d;
    if (d[at + 1] == 0x24 && d[at + 2] == 0x1a) ncm_fd = d[at + 5] == 0x11;
    if (d[at + 1] == 0x04 && d[at + 2] == 1 && d[at + 3] == 0) data_alt0_empty = d[at + 4] == 0;
    if (d[at + 1] == 0x04 && d[at + 2] == 1 && d[at + 3] == 1) data_alt1_bulk = d[at + 4] == 2 && d[at + 5] == 0x0a;
  }
  EXPECT_TRUE(iad && ncm_fd && data_alt0_empty && data_alt1_bulk);
}

// ---- the E3372 end to end ------------------------------------------------------------------------

TEST(NcmModemTest, E3372DialsAndEchoesAPingLikeTheRealStick) {
  Host h(make_huawei_e3372({}));
  // The boot noise is waiting before anyone asked.
  EXPECT_THAT(h.notifications(), ::testing::Contains(cdc::kNotifyResponseAvailable));
  EXPECT_THAT(h.responses(), HasSubstr("^BOOT:"));

  const cdc::NtbParameters p = h.parameters();
  EXPECT_EQ(p.ntb_formats_supported, 3);
  EXPECT_EQ(p.ntb_in_max_size, 0x20000u);
  ASSERT_TRUE(h.m.set_interface(1, 0));
  // Huawei answers NTB32 right after alt 0 (linux-usb msg92633 #A).
  EXPECT_EQ(*h.get(cdc::kGetNtbFormat, 0, 2), (Vec{0x01, 0x00}));
  ASSERT_TRUE(h.set(cdc::kSetNtbFormat, cdc::kNtbFormatValue32));
  ASSERT_TRUE(h.set(cdc::kSetNtbInputSize, 0, {0x00, 0x40, 0x00, 0x00}));  // 16384
  EXPECT_EQ(*h.get(cdc::kGetNtbInputSize, 0, 4), (Vec{0x00, 0x40, 0x00, 0x00}));
  ASSERT_TRUE(h.m.set_interface(1, 1));
  EXPECT_EQ(h.m.ntb_format(), ntb::NtbFormat::Ntb32);

  // Dial over the encapsulated channel: OK, then RESPONSE_AVAILABLE for ^NDISSTAT.
  Vec d;
  const std::string cmd = "AT^NDISDUP=1,1,\"internet\"\r";
  ASSERT_TRUE(h.set(cdc::kSendEncapsulatedCommand, 0, Vec(cmd.begin(), cmd.end())));
  const auto n1 = h.notification(d);
  ASSERT_TRUE(n1);
  EXPECT_EQ(n1->header.notification, cdc::kNotifyResponseAvailable);
  EXPECT_EQ(n1->header.index, 1);
  const std::string echo_and_ok = cmd + "\r\nOK\r\n";  // echo is on after power-up (V.250 E1)
  EXPECT_EQ(*h.get(cdc::kGetEncapsulatedResponse, 0, 1024), Vec(echo_and_ok.begin(), echo_and_ok.end()));
  EXPECT_EQ(h.notifications(), (std::vector<std::uint8_t>{cdc::kNotifyResponseAvailable,
                                                          cdc::kNotifyConnectionSpeedChange,
                                                          cdc::kNotifyNetworkConnection}));
  EXPECT_EQ(h.responses(), "\r\n^NDISSTAT:1,,,\"IPV4\"\r\n");
  EXPECT_TRUE(h.m.session_active());
  EXPECT_THAT(h.at("AT^DHCP?"), HasSubstr("^DHCP: 0240400a,fcffffff,0140400a,"));

  // An echo request in an NTB32 with the NDP at the end, as Huawei wants it.
  const eth::MacAddress modem_mac = h.m.ncm_profile().device_mac;
  ASSERT_EQ(h.send(h.ntb({echo_request_frame(modem_mac, 1)}, ntb::NtbFormat::Ntb32, true)), EndpointResult::ok);
  EXPECT_EQ(h.m.counters().ntbs_from_host, 1u);
  EXPECT_EQ(h.m.counters().datagrams_from_host, 1u);
  EXPECT_EQ(h.m.network().counters().icmp_echo_replies, 1u);

  Vec in;
  ASSERT_EQ(h.receive(in).result, EndpointResult::ok);
  const Parsed r = parse(in);
  EXPECT_TRUE(r.errors.empty());
  ASSERT_EQ(r.ntbs.size(), 1u);
  EXPECT_EQ(r.ntbs[0].format, ntb::NtbFormat::Ntb32);
  ASSERT_EQ(r.datagrams.size(), 1u);
  expect_echo_reply(r.datagrams[0], modem_mac, 1);
  EXPECT_EQ(h.receive(in).result, EndpointResult::nak);  // nothing more
  EXPECT_EQ(h.m.counters().ntbs_to_host, 1u);
  EXPECT_EQ(h.m.counters().arp_requests_to_host, 0u);  // the host's frame taught it the MAC
  EXPECT_EQ(h.m.counters().commands_received, 2u);
}

TEST(NcmModemTest, HuaweiDropsNdpInFrontGenericAcceptsIt) {
  for (const bool huawei : {true, false}) {
    Host h(huawei ? make_huawei_e3372({}) : make_generic_ncm({}));
    h.bring_up(ntb::NtbFormat::Ntb16);
    const eth::MacAddress to = h.m.ncm_profile().device_mac;
    ASSERT_EQ(h.send(h.ntb({echo_request_frame(to, 1), echo_request_frame(to, 2)}, ntb::NtbFormat::Ntb16, false)),
              EndpointResult::ok);
    ASSERT_EQ(h.send(h.ntb({echo_request_frame(to, 3)}, ntb::NtbFormat::Ntb16, true)), EndpointResult::ok);
    const ModemCounters& c = h.m.counters();
    if (huawei) {
      EXPECT_EQ(c.ntbs_from_host_dropped, 1u);
      EXPECT_EQ(h.m.ncm_counters().ntbs_ndp_in_front, 1u);
      EXPECT_EQ(c.ntbs_from_host, 1u);
      EXPECT_EQ(h.m.network().counters().icmp_echo_replies, 1u);
    } else {
      EXPECT_EQ(c.ntbs_from_host_dropped, 0u);
      EXPECT_EQ(c.ntbs_from_host, 2u);
      EXPECT_EQ(h.m.network().counters().icmp_echo_replies, 3u);
    }
  }
}

TEST(NcmModemTest, HuaweiArpsForTheHostBeforeForwarding) {
  Host h(make_huawei_e3372({}));
  h.bring_up(ntb::NtbFormat::Ntb32);
  h.m.network().start_source({0, 64, 2, 5001, 5001}, h.now);
  Vec in;
  ASSERT_EQ(h.receive(in).result, EndpointResult::ok);
  Parsed r = parse(in);
  ASSERT_EQ(r.datagrams.size(), 1u);  // the ARP, and no data yet
  const auto arp = eth::parse_ethernet(r.datagrams[0]);
  ASSERT_TRUE(arp);
  EXPECT_EQ(arp->ethertype, eth::kEtherTypeArp);
  EXPECT_TRUE(arp->destination.is_broadcast());
  EXPECT_EQ(eth::load_be16(arp->payload, 6), 1);                  // request
  EXPECT_EQ(sub(Vec(arp->payload.begin(), arp->payload.end()), 24, 4), (Vec{10, 64, 64, 2}));  // who has the host
  EXPECT_EQ(h.m.counters().arp_requests_to_host, 1u);
  EXPECT_EQ(h.receive(in).result, EndpointResult::nak);
  ASSERT_TRUE(h.m.next_deadline());
  EXPECT_EQ(*h.m.next_deadline(), h.now + 1s);
  h.now += 1s;  // unanswered: asked again a second later
  ASSERT_EQ(h.receive(in).result, EndpointResult::ok);
  EXPECT_EQ(h.m.counters().arp_requests_to_host, 2u);

  // The host answers with the datapath responder; the modem learns the MAC and forwards.
  Vec reply(eth::kArpReplyFrameSize);
  const auto n = eth::answer_arp(parse(in).datagrams[0], {{10, 64, 64, 2}}, kHostMac, reply);
  ASSERT_TRUE(n);
  ASSERT_EQ(h.send(h.ntb({reply}, ntb::NtbFormat::Ntb32, true)), EndpointResult::ok);
  EXPECT_EQ(h.m.ncm_counters().arp_replies_from_host, 1u);
  EXPECT_EQ(h.m.learned_host_mac(), kHostMac);
  ASSERT_EQ(h.receive(in).result, EndpointResult::ok);
  r = parse(in);
  ASSERT_EQ(r.datagrams.size(), 2u);  // both sourced packets in one NTB
  for (const Vec& f : r.datagrams) {
    EXPECT_EQ(sub(f, 0, 6), Vec(kHostMac.bytes.begin(), kHostMac.bytes.end()));
    EXPECT_EQ(f[14 + 9], 17);  // UDP
  }
}

TEST(NcmModemTest, AnswersTheHostsArpForTheGatewayAndCountsFramesBeforeTheSession) {
  Host h(make_huawei_e3372({}));
  h.bring_up(ntb::NtbFormat::Ntb32, false);
  const eth::MacAddress modem_mac = h.m.ncm_profile().device_mac;
  ASSERT_EQ(h.send(h.ntb({arp_frame(1, eth::MacAddress::broadcast(), {}, {10, 64, 64, 1}),
                          echo_request_frame(modem_mac, 1)},
                         ntb::NtbFormat::Ntb32, true)),
            EndpointResult::ok);
  EXPECT_EQ(h.m.counters().arp_requests_from_host, 1u);
  EXPECT_EQ(h.m.counters().frames_before_session, 1u);
  EXPECT_EQ(h.m.network().counters().packets_from_host, 0u);
  Vec in;
  ASSERT_EQ(h.receive(in).result, EndpointResult::ok);
  const Parsed r = parse(in);
  ASSERT_EQ(r.datagrams.size(), 1u);
  const auto f = eth::parse_ethernet(r.datagrams[0]);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->ethertype, eth::kEtherTypeArp);
  EXPECT_EQ(eth::load_be16(f->payload, 6), 2);  // reply
  EXPECT_EQ(eth::MacAddress::load(f->payload, 8), modem_mac);
  EXPECT_EQ(f->destination, kHostMac);
}

TEST(NcmModemTest, GenericLinkFollowsTheAltSettingAndNeedsNoAt) {
  Host h(make_generic_ncm({}));
  EXPECT_FALSE(h.m.session_active());
  EXPECT_FALSE(h.set(cdc::kSendEncapsulatedCommand, 0, {'A', 'T', '\r'}));  // no AT channel: STALL
  EXPECT_EQ(h.parameters().ntb_in_max_size, 16384u);
  EXPECT_EQ(*h.get(cdc::kGetNtbFormat, 0, 2), (Vec{0x00, 0x00}));  // NTB16 after reset (§7.2)
  ASSERT_TRUE(h.m.set_interface(1, 1));
  EXPECT_TRUE(h.m.session_active());
  Vec b;
  const auto speed = h.notification(b);
  ASSERT_TRUE(speed);
  EXPECT_EQ(speed->header.notification, cdc::kNotifyConnectionSpeedChange);
  EXPECT_EQ(*cdc::decode_connection_speed(speed->data), h.m.ncm_profile().speed);
  const auto link = h.notification(b);
  ASSERT_TRUE(link);
  EXPECT_EQ(link->header, (cdc::NotificationHeader{0xa1, cdc::kNotifyNetworkConnection, 1, 0, 0}));
  // Before it has seen the host, the generic function sends to the iMACAddress it advertised.
  h.m.network().start_source({0, 10, 1, 1, 1}, h.now);
  Vec in;
  ASSERT_EQ(h.receive(in).result, EndpointResult::ok);
  const Parsed r = parse(in);
  ASSERT_EQ(r.datagrams.size(), 1u);
  EXPECT_EQ(sub(r.datagrams[0], 0, 6), (Vec{0x02, 0, 0, 0, 0, 0x02}));
  ASSERT_TRUE(h.m.set_interface(1, 0));
  EXPECT_FALSE(h.m.session_active());
  EXPECT_EQ(h.notifications(), std::vector<std::uint8_t>{cdc::kNotifyNetworkConnection});
}

// ---- negotiation rules -----------------------------------------------------------------------------

TEST(NcmModemTest, SetNtbFormatOnlyInAlt0AndOnlySupportedFormats) {
  Host h(make_generic_ncm({}));
  ASSERT_TRUE(h.m.set_interface(1, 1));
  EXPECT_FALSE(h.set(cdc::kSetNtbFormat, cdc::kNtbFormatValue32));  // NCM 1.0 §6.2.5: STALL in alt 1
  EXPECT_FALSE(h.set(cdc::kSetCrcMode, cdc::kCrcNotAppended));
  ASSERT_TRUE(h.m.set_interface(1, 0));
  EXPECT_FALSE(h.set(cdc::kSetNtbFormat, 7));
  EXPECT_TRUE(h.set(cdc::kSetNtbFormat, cdc::kNtbFormatValue32));
  EXPECT_EQ(h.m.ntb_format(), ntb::NtbFormat::Ntb32);
  // Direction and recipient are checked; unknown requests STALL.
  Vec two(2);
  EXPECT_FALSE(h.m.control({0x21, cdc::kGetNtbFormat, 0, 0, 2}, two));
  EXPECT_FALSE(h.m.control({0xA1, cdc::kGetNtbFormat, 0, 1, 2}, two));  // the data interface
  EXPECT_FALSE(h.m.control({0xC1, cdc::kGetNtbFormat, 0, 0, 2}, two));  // vendor
  EXPECT_FALSE(h.get(0x7f, 0, 8));
  EXPECT_FALSE(h.get(cdc::kGetMaxDatagramSize, 0, 2));  // f_ncm caps 0x11: no bit 3
  EXPECT_GE(h.m.counters().control_requests, 7u);
}

TEST(NcmModemTest, SetNtbInputSizeIsHonouredAndRangeChecked) {
  Host h(make_huawei_e3372({}));
  ASSERT_TRUE(h.m.set_interface(1, 0));
  EXPECT_FALSE(h.set(cdc::kSetNtbInputSize, 0, {0x00, 0x04, 0x00, 0x00}));  // 1024 < 2048
  EXPECT_FALSE(h.set(cdc::kSetNtbInputSize, 0, {0x00, 0x00, 0x04, 0x00}));  // above dwNtbInMaxSize
  EXPECT_FALSE(h.set(cdc::kSetNtbInputSize, 0, {0x00, 0x10, 0x00}));        // 3 bytes
  ASSERT_TRUE(h.set(cdc::kSetNtbInputSize, 0, {0x00, 0x10, 0x00, 0x00}));   // 4096
  EXPECT_EQ(h.m.ntb_in_size(), 4096u);
  h.bring_up(ntb::NtbFormat::Ntb32);
  ASSERT_TRUE(h.set(cdc::kSetNtbInputSize, 0, {0x00, 0x10, 0x00, 0x00}));  // bring_up's alt 0 reset it
  ASSERT_TRUE(h.send(h.ntb({echo_request_frame(h.m.ncm_profile().device_mac, 0)}, ntb::NtbFormat::Ntb32, true)) ==
              EndpointResult::ok);
  Vec reply;
  ASSERT_EQ(h.receive(reply).result, EndpointResult::ok);  // the echo reply (it taught the modem the host MAC)
  h.m.network().start_source({0, 1000, 20, 1, 1}, h.now);
  std::size_t packets = 0;
  Vec in;
  while (h.receive(in).result == EndpointResult::ok) {
    EXPECT_LE(in.size(), 4096u);
    const Parsed r = parse(in);
    EXPECT_TRUE(r.errors.empty());
    EXPECT_LE(r.datagrams.size(), 3u);
    packets += r.datagrams.size();
  }
  EXPECT_EQ(packets, 20u);
  EXPECT_EQ(h.m.network().counters().dropped_too_large, 0u);
}

TEST(NcmModemTest, OutNtbsOfTheWrongFormatOrTooLargeAreDropped) {
  Host h(make_generic_ncm({}));
  h.bring_up(ntb::NtbFormat::Ntb16);
  const eth::MacAddress to = h.m.ncm_profile().device_mac;
  ASSERT_EQ(h.send(h.ntb({echo_request_frame(to, 1)}, ntb::NtbFormat::Ntb32, false)), EndpointResult::ok);
  EXPECT_EQ(h.m.ncm_counters().ntbs_wrong_format, 1u);
  ASSERT_EQ(h.send(Vec(16385, 0)), EndpointResult::ok);  // > dwNtbOutMaxSize 16384
  EXPECT_EQ(h.m.ncm_counters().ntbs_too_large, 1u);
  ASSERT_EQ(h.send(Vec(100, 0x55)), EndpointResult::ok);
  EXPECT_EQ(h.m.ncm_counters().ntbs_unparsable, 1u);
  EXPECT_EQ(h.m.counters().ntbs_from_host_dropped, 3u);
  EXPECT_EQ(h.m.network().counters().packets_from_host, 0u);
}

// ---- faults -----------------------------------------------------------------------------------------

TEST(NcmModemTest, FaultNtbFormatRevertsAfterAlt) {
  Host h(make_huawei_e3372({}));
  h.m.faults().ntb_format_reverts_after_alt = true;
  // The 2017 Linux sequence: SET_NTB_FORMAT(NTB16) at alt 0, then alt 1; the 318 firmware is back in NTB32.
  h.bring_up(ntb::NtbFormat::Ntb16);
  EXPECT_EQ(*h.get(cdc::kGetNtbFormat, 0, 2), (Vec{0x01, 0x00}));
  EXPECT_EQ(h.m.counters().faults_injected, 1u);
  ASSERT_EQ(h.send(h.ntb({echo_request_frame(h.m.ncm_profile().device_mac, 1)}, ntb::NtbFormat::Ntb16, true)),
            EndpointResult::ok);
  EXPECT_EQ(h.m.ncm_counters().ntbs_wrong_format, 1u);  // "never manages to exchange any IP-packets"
}

TEST(NcmModemTest, FaultStallsUntilClearHalt) {
  Host h(make_generic_ncm({}));
  h.bring_up(ntb::NtbFormat::Ntb16);
  h.m.faults().stall_bulk_in = true;
  h.m.faults().stall_bulk_out = true;
  Vec in;
  EXPECT_EQ(h.receive(in).result, EndpointResult::stall);
  EXPECT_EQ(h.receive(in).result, EndpointResult::stall);
  EXPECT_EQ(h.send(Vec{1}), EndpointResult::stall);
  EXPECT_TRUE(h.m.clear_halt(0x82));
  EXPECT_TRUE(h.m.clear_halt(0x01));
  EXPECT_FALSE(h.m.faults().stall_bulk_in);
  EXPECT_EQ(h.receive(in).result, EndpointResult::nak);
  EXPECT_EQ(h.send(h.ntb({echo_request_frame(h.m.ncm_profile().device_mac, 1)}, ntb::NtbFormat::Ntb16, false)),
            EndpointResult::ok);
  EXPECT_EQ(h.receive(in).result, EndpointResult::ok);
  EXPECT_EQ(h.m.counters().faults_injected, 2u);
  EXPECT_FALSE(h.m.clear_halt(0x77));
}

TEST(NcmModemTest, FaultUnplugAndUnplugAfterInTransfers) {
  {
    Host h(make_generic_ncm({}));
    h.m.faults().unplug = true;
    Vec in;
    EXPECT_EQ(h.receive(in).result, EndpointResult::gone);
    EXPECT_FALSE(h.m.connected());
    EXPECT_EQ(h.send(Vec{1}), EndpointResult::gone);
    EXPECT_FALSE(h.get(cdc::kGetNtbParameters, 0, 28));
    EXPECT_FALSE(h.m.set_interface(1, 1));
  }
  Host h(make_generic_ncm({}));
  h.bring_up(ntb::NtbFormat::Ntb16);
  h.m.faults().unplug_after_in_transfers = 2;
  h.m.network().start_source({0, 10, 0, 1, 1}, h.now);
  Vec in;
  EXPECT_EQ(h.receive(in).result, EndpointResult::ok);
  EXPECT_TRUE(h.m.connected());
  EXPECT_EQ(h.receive(in).result, EndpointResult::ok);  // the second completes, then the device is gone
  EXPECT_FALSE(h.m.connected());
  EXPECT_EQ(h.receive(in).result, EndpointResult::gone);
  EXPECT_FALSE(h.m.next_deadline());
}

TEST(NcmModemTest, FaultGarbageTruncatedAndOversizeNtbs) {
  Host h(make_generic_ncm({}));
  h.bring_up(ntb::NtbFormat::Ntb16);
  ASSERT_TRUE(h.m.set_interface(1, 0));
  ASSERT_TRUE(h.set(cdc::kSetNtbInputSize, 0, {0x00, 0x08, 0x00, 0x00}));  // 2048
  ASSERT_TRUE(h.m.set_interface(1, 1));
  h.m.network().start_source({0, 100, 0, 1, 1}, h.now);
  h.m.faults().garbage_ntbs = 1;
  h.m.faults().truncated_ntbs = 1;
  h.m.faults().oversize_ntbs = 1;
  Vec in;
  ASSERT_EQ(h.receive(in).result, EndpointResult::ok);
  EXPECT_EQ(parse(in).errors, std::vector<ntb::NtbError>{ntb::NtbError::NthBadSignature});
  ASSERT_EQ(h.receive(in).result, EndpointResult::ok);
  Parsed r = parse(in);
  EXPECT_GT(in.size(), 2048u);  // above the negotiated size, up to what the device offered (16 KiB)
  EXPECT_LE(in.size(), 16384u);
  EXPECT_EQ(r.ntbs.at(0).block_length, in.size());
  EXPECT_FALSE(r.datagrams.empty());
  ASSERT_EQ(h.receive(in).result, EndpointResult::ok);
  EXPECT_EQ(parse(in).errors, std::vector<ntb::NtbError>{ntb::NtbError::NthBlockExceedsTransfer});
  ASSERT_EQ(h.receive(in).result, EndpointResult::ok);
  r = parse(in);
  EXPECT_TRUE(r.errors.empty());
  EXPECT_LE(in.size(), 2048u);
  EXPECT_EQ(h.m.counters().faults_injected, 3u);
}

TEST(NcmModemTest, FaultLostResponseAvailableStillLeavesTheResponseReadable) {
  Host h(make_huawei_e3372({}));
  h.notifications();
  h.responses();
  h.m.faults().lose_response_available = true;
  ASSERT_TRUE(h.set(cdc::kSendEncapsulatedCommand, 0, {'A', 'T', '\r'}));
  EXPECT_TRUE(h.notifications().empty());
  EXPECT_EQ(h.responses(), "AT\r\r\nOK\r\n");  // polling GET_ENCAPSULATED_RESPONSE finds it
  EXPECT_GE(h.m.counters().faults_injected, 1u);
}

TEST(NcmModemTest, FaultControlAnswerDelayUsesNextDeadline) {
  Host h(make_huawei_e3372({}));
  h.notifications();
  h.responses();
  h.m.faults().control_answer_delay = 250ms;
  ASSERT_TRUE(h.set(cdc::kSendEncapsulatedCommand, 0, {'A', 'T', 'E', '0', '\r'}));
  EXPECT_TRUE(h.notifications().empty());
  EXPECT_EQ(h.responses(), "");
  ASSERT_TRUE(h.m.next_deadline());
  EXPECT_EQ(*h.m.next_deadline(), h.now + 250ms);
  h.now += 249ms;
  EXPECT_TRUE(h.notifications().empty());
  h.now += 1ms;
  EXPECT_EQ(h.notifications(), std::vector<std::uint8_t>{cdc::kNotifyResponseAvailable});
  EXPECT_EQ(h.responses(), "ATE0\r\r\nOK\r\n");
  EXPECT_FALSE(h.m.next_deadline());
}

TEST(NcmModemTest, FaultDropSessionSendsNdisstatAndNetworkConnection) {
  Host h(make_huawei_e3372({}));
  h.bring_up(ntb::NtbFormat::Ntb32);
  ASSERT_TRUE(h.m.session_active());
  h.m.faults().drop_session = true;
  Vec in;
  EXPECT_EQ(h.receive(in).result, EndpointResult::nak);  // "at the next transaction"
  EXPECT_FALSE(h.m.faults().drop_session);
  EXPECT_FALSE(h.m.session_active());
  EXPECT_EQ(h.notifications(),
            (std::vector<std::uint8_t>{cdc::kNotifyResponseAvailable, cdc::kNotifyNetworkConnection}));
  EXPECT_EQ(h.responses(), "\r\n^NDISSTAT:0,,,\"IPV4\"\r\n");
  EXPECT_THAT(h.at("AT^NDISSTATQRY?"), HasSubstr("^NDISSTATQRY: 0,,,\"IPV4\""));
  // Traffic now counts as before-session.
  ASSERT_EQ(h.send(h.ntb({echo_request_frame(h.m.ncm_profile().device_mac, 1)}, ntb::NtbFormat::Ntb32, true)),
            EndpointResult::ok);
  EXPECT_EQ(h.m.counters().frames_before_session, 1u);

  Host g(make_generic_ncm({}));
  g.bring_up(ntb::NtbFormat::Ntb16);
  g.m.faults().drop_session = true;
  EXPECT_TRUE(g.parameters().ntb_in_max_size > 0);
  EXPECT_FALSE(g.m.session_active());
  EXPECT_EQ(g.notifications(), std::vector<std::uint8_t>{cdc::kNotifyNetworkConnection});
}

TEST(NcmModemTest, ControlPortDropSessionAnswersThenDropsTheHuaweiSession) {
  Host h(make_huawei_e3372({}));
  h.bring_up(ntb::NtbFormat::Ntb32);
  ASSERT_TRUE(h.m.session_active());
  const eth::MacAddress dev = h.m.ncm_profile().device_mac;
  ASSERT_EQ(h.send(h.ntb({control_frame(dev, "drop-session")}, ntb::NtbFormat::Ntb32, true)), EndpointResult::ok);
  EXPECT_TRUE(h.m.session_active());  // not before the answer has gone
  Vec in;
  ASSERT_EQ(h.receive(in).result, EndpointResult::ok);
  EXPECT_THAT(control_answers(in), ::testing::ElementsAre("ok"));
  // kDropSessionAfterAnswer later (announced), the next transaction carries the drop out, as
  // Faults::drop_session does.
  EXPECT_TRUE(h.notifications().empty());
  ASSERT_TRUE(h.m.next_deadline());
  EXPECT_EQ(*h.m.next_deadline(), h.now + kDropSessionAfterAnswer);
  h.now += kDropSessionAfterAnswer;
  EXPECT_EQ(h.notifications(),
            (std::vector<std::uint8_t>{cdc::kNotifyResponseAvailable, cdc::kNotifyNetworkConnection}));
  EXPECT_FALSE(h.m.session_active());
  EXPECT_EQ(h.responses(), "\r\n^NDISSTAT:0,,,\"IPV4\"\r\n");
  EXPECT_EQ(h.m.network().counters().control_commands, 1u);
  EXPECT_EQ(h.m.counters().faults_injected, 1u);
  // A redial brings it back (the AT engine is as before).
  EXPECT_THAT(h.at("AT^NDISDUP=1,1,\"internet\""), HasSubstr("OK"));
  EXPECT_TRUE(h.m.session_active());
}

TEST(NcmModemTest, GenericNcmLinkComesBackByItselfAfterADrop) {
  Host g(make_generic_ncm({}));
  g.bring_up(ntb::NtbFormat::Ntb16);
  ASSERT_TRUE(g.m.session_active());
  ASSERT_EQ(g.send(g.ntb({control_frame(g.m.ncm_profile().device_mac, "drop-session\n")}, ntb::NtbFormat::Ntb16, false)),
            EndpointResult::ok);
  Vec in;
  ASSERT_EQ(g.receive(in).result, EndpointResult::ok);
  EXPECT_THAT(control_answers(in), ::testing::ElementsAre("ok"));
  EXPECT_TRUE(g.notifications().empty());
  g.now += kDropSessionAfterAnswer;
  Vec b;
  auto n = g.notification(b);
  ASSERT_TRUE(n);
  EXPECT_EQ(n->header.notification, cdc::kNotifyNetworkConnection);
  EXPECT_EQ(n->header.value, 0);  // disconnected
  EXPECT_FALSE(g.m.session_active());
  EXPECT_TRUE(g.notifications().empty());
  ASSERT_TRUE(g.m.next_deadline());
  EXPECT_EQ(*g.m.next_deadline(), g.now + 1s);
  g.now += 999ms;
  EXPECT_TRUE(g.notifications().empty());
  EXPECT_FALSE(g.m.session_active());
  g.now += 1ms;
  n = g.notification(b);
  ASSERT_TRUE(n);
  EXPECT_EQ(n->header.notification, cdc::kNotifyConnectionSpeedChange);
  n = g.notification(b);
  ASSERT_TRUE(n);
  EXPECT_EQ(n->header.notification, cdc::kNotifyNetworkConnection);
  EXPECT_EQ(n->header.value, 1);  // connected again
  EXPECT_TRUE(g.m.session_active());
  EXPECT_FALSE(g.m.next_deadline());
  // Echo works again.
  ASSERT_EQ(g.send(g.ntb({echo_request_frame(g.m.ncm_profile().device_mac, 5)}, ntb::NtbFormat::Ntb16, false)),
            EndpointResult::ok);
  ASSERT_EQ(g.receive(in).result, EndpointResult::ok);
  const Parsed p = parse(in);
  ASSERT_EQ(p.datagrams.size(), 1u);
  expect_echo_reply(p.datagrams[0], g.m.ncm_profile().device_mac, 5);
}

TEST(NcmModemTest, GenericNcmAltZeroCancelsThePendingRelink) {
  Host g(make_generic_ncm({}));
  g.bring_up(ntb::NtbFormat::Ntb16);
  g.m.faults().drop_session = true;
  g.notifications();
  ASSERT_TRUE(g.m.next_deadline());
  ASSERT_TRUE(g.m.set_interface(g.m.ncm_profile().data_interface, 0));
  EXPECT_FALSE(g.m.next_deadline());
  g.now += 2s;
  EXPECT_TRUE(g.notifications().empty());
  EXPECT_FALSE(g.m.session_active());
}

TEST(NcmModemTest, LongResponsesAreReadInPieces) {
  Host h(make_huawei_e3372({}));
  h.notifications();
  h.responses();
  const std::string cmd = "ATI\r";
  ASSERT_TRUE(h.set(cdc::kSendEncapsulatedCommand, 0, Vec(cmd.begin(), cmd.end())));
  std::string all;
  for (;;) {
    const auto r = h.get(cdc::kGetEncapsulatedResponse, 0, 16);
    ASSERT_TRUE(r);
    if (r->empty()) break;
    EXPECT_LE(r->size(), 16u);
    all.append(r->begin(), r->end());
  }
  EXPECT_THAT(all, HasSubstr("Model: E3372"));
  EXPECT_EQ(all.substr(all.size() - 6), "\r\nOK\r\n");
}

// ---- robustness -------------------------------------------------------------------------------------

TEST(NcmModemTest, RandomInputFromTheHostNeverCrashes) {
  std::mt19937 rng(1234);
  for (const bool huawei : {true, false}) {
    Host h(huawei ? make_huawei_e3372({}) : make_generic_ncm({}));
    h.bring_up(ntb::NtbFormat::Ntb16);
    const std::array<std::uint8_t, 4> endpoints = {h.m.ncm_profile().bulk_in_endpoint,
                                                   h.m.ncm_profile().bulk_out_endpoint,
                                                   h.m.ncm_profile().interrupt_in_endpoint, 0x7f};
    for (int i = 0; i < 3000; ++i) {
      Vec bytes(rng() % 3000);
      for (auto& b : bytes) b = static_cast<std::uint8_t>(rng());
      // Half the time a real NTH in front, so the parser gets past the signature.
      if (!bytes.empty() && rng() % 2 && bytes.size() >= 12) {
        const std::uint32_t sig = rng() % 2 ? ntb::kNth16Signature : ntb::kNth32Signature;
        ntb::store_le32(bytes, 0, sig);
      }
      switch (rng() % 6) {
        case 0: h.send(bytes); break;
        case 1: {
          Vec buf(rng() % 70000);
          (void)h.m.in(endpoints[rng() % endpoints.size()], buf);
          break;
        }
        case 2: {
          SetupPacket s{static_cast<std::uint8_t>(rng()), static_cast<std::uint8_t>(rng()),
                        static_cast<std::uint16_t>(rng()), static_cast<std::uint16_t>(rng() % 3),
                        static_cast<std::uint16_t>(bytes.size())};
          if (rng() % 2) s.request_type = (rng() % 2) ? 0x21 : 0xA1;
          if (rng() % 2) s.index = h.iface();
          (void)h.m.control(s, bytes);
          break;
        }
        case 3: (void)h.m.set_interface(static_cast<std::uint8_t>(rng() % 3), static_cast<std::uint8_t>(rng() % 3)); break;
        case 4: (void)h.m.clear_halt(endpoints[rng() % endpoints.size()]); break;
        case 5: h.send(h.ntb({bytes.size() >= 14 ? bytes : Vec(14, 1)}, h.m.ntb_format(), rng() % 2)); break;
      }
      h.now += std::chrono::microseconds(rng() % 1000);
    }
    EXPECT_TRUE(h.m.connected());
  }
}

}  // namespace
}  // namespace wwan::sim
