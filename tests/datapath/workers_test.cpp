// The RX and TX stages against an in-memory PacketIo and in-memory USB links: NTBs in, the exact
// packets written to the "TUN" out (and written from inside the NTB buffer, not from a copy);
// packets read from the "TUN" in, NTBs that parse back to the exact frames out. Plus the rules
// around them: ARP/NS answered and handed to TX, the buffer released only after its last write,
// back-pressure in both directions, the pad byte, MBIM sessions. The fakes and the wiring of a
// stage to them are tests/datapath/stage_harness.hpp.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "datapath/ethernet.hpp"
#include "datapath/link_state.hpp"
#include "datapath/links.hpp"
#include "datapath/ntb_build.hpp"
#include "datapath/ntb_parse.hpp"
#include "datapath/packet_io.hpp"
#include "datapath/rndis_packet.hpp"
#include "datapath/rx_path.hpp"
#include "datapath/tx_path.hpp"
#include "tests/datapath/stage_harness.hpp"
#include "tests/support/hex.hpp"

namespace wwan::dp {
namespace {

using stage_test::build_ntb;
using stage_test::ByteVector;
using stage_test::FakeOutLink;
using stage_test::parse_ntb;
using stage_test::ParsedNtb;
using stage_test::RxHarness;
using stage_test::TxHarness;

// ---- packets ------------------------------------------------------------------------------------

constexpr eth::MacAddress kModemMac{{0x00, 0x1e, 0x10, 0x1f, 0x00, 0x00}};  // the Huawei fixed MAC
constexpr eth::MacAddress kHostMac{{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}};
constexpr eth::Ipv4Address kHostIp{{10, 64, 64, 2}};
constexpr eth::Ipv4Address kGatewayIp{{10, 64, 64, 1}};

// A minimal IPv4/UDP packet of `payload` bytes (checksums are not the stages' business).
ByteVector ipv4_udp(std::size_t payload, std::uint8_t fill) {
  ByteVector p(20 + 8 + payload, fill);
  p[0] = 0x45;
  p[1] = 0;
  const auto total = static_cast<std::uint16_t>(p.size());
  p[2] = static_cast<std::uint8_t>(total >> 8);
  p[3] = static_cast<std::uint8_t>(total);
  p[8] = 64;
  p[9] = 17;
  std::copy(kGatewayIp.bytes.begin(), kGatewayIp.bytes.end(), p.begin() + 12);
  std::copy(kHostIp.bytes.begin(), kHostIp.bytes.end(), p.begin() + 16);
  return p;
}

ByteVector ethernet(const eth::MacAddress& dst, const eth::MacAddress& src, std::uint16_t type, const ByteVector& payload) {
  // Sized once and filled in place (GCC 12 warns falsely about insert() after a 14-byte vector).
  ByteVector f(14 + payload.size());
  std::copy(dst.bytes.begin(), dst.bytes.end(), f.begin());
  std::copy(src.bytes.begin(), src.bytes.end(), f.begin() + 6);
  f[12] = static_cast<std::uint8_t>(type >> 8);
  f[13] = static_cast<std::uint8_t>(type);
  std::copy(payload.begin(), payload.end(), f.begin() + 14);
  return f;
}

// The modem asking who has 10.64.64.2 (RFC 826).
ByteVector arp_request_for_host() {
  ByteVector a = {0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01};
  a.insert(a.end(), kModemMac.bytes.begin(), kModemMac.bytes.end());
  a.insert(a.end(), kGatewayIp.bytes.begin(), kGatewayIp.bytes.end());
  a.insert(a.end(), 6, 0);
  a.insert(a.end(), kHostIp.bytes.begin(), kHostIp.bytes.end());
  return ethernet(eth::MacAddress::broadcast(), kModemMac, eth::kEtherTypeArp, a);
}

RxConfig ncm_rx_config() {
  RxConfig c;
  c.framing = Framing::ncm;
  c.transfer_bytes = 16384;
  c.in_slots = 4;
  c.ring_capacity = 4;
  c.our_mac = kHostMac;
  return c;
}

// ---- RX ------------------------------------------------------------------------------------------

TEST(RxStage, NcmWritesEachIpPacketFromInsideTheNtbAndReleasesAfterTheLastWrite) {
  RxHarness h(ncm_rx_config(), /*with_replies=*/true);
  h.state.set_host_addresses(HostAddresses{kHostIp, {}});

  const ByteVector p1 = ipv4_udp(100, 0xA1);
  const ByteVector p2 = ipv4_udp(3, 0xA2);  // 31-byte IP packet: Ethernet pads it to 46 bytes
  ByteVector padded = p2;
  padded.resize(46, 0);
  const ByteVector ntb = build_ntb({ethernet(kHostMac, kModemMac, eth::kEtherTypeIpv4, p1), arp_request_for_host(),
                                    ethernet(kHostMac, kModemMac, 0x88CC, ByteVector(46, 1)),  // LLDP: not IP
                                    ethernet(kHostMac, kModemMac, eth::kEtherTypeIpv4, padded)},
                                   {ntb::NtbFormat::Ntb16, ntb::DatagramKind::Ncm, 0});

  ASSERT_TRUE(h.post(ntb, 2));
  EXPECT_TRUE(h.rx.pump());
  EXPECT_TRUE(h.in.released.empty()) << "released while its writes are still in flight";
  EXPECT_EQ(h.rx.writes_in_flight(), 2u);
  h.reap();

  ASSERT_EQ(h.io.written.size(), 2u);
  EXPECT_EQ(h.io.written[0], p1);
  EXPECT_EQ(h.io.written[1], p2) << "the Ethernet padding is cut off at the IP total length";
  for (const std::uint8_t* from : h.io.written_from)
    EXPECT_TRUE(from >= ntb.data() && from < ntb.data() + ntb.size()) << "a write must point into the NTB buffer";
  EXPECT_THAT(h.in.released, ::testing::ElementsAre(2u));

  h.rx.publish();
  const RxCounters c = h.rx.counters();
  EXPECT_EQ(c.packets, 2u);
  EXPECT_EQ(c.bytes, p1.size() + p2.size());
  EXPECT_EQ(c.ntb.datagrams, 4u);
  EXPECT_EQ(c.not_ip, 1u);
  EXPECT_EQ(c.arp_replies, 1u);
  EXPECT_EQ(c.padding_trimmed, 1u);
  EXPECT_EQ(c.dropped(), 1u);

  // The ARP reply went to TX: to the modem, from us, "10.64.64.2 is at 02:00:00:00:00:02".
  ReplyFrame reply;
  ASSERT_TRUE(h.replies.try_pop(reply));
  ASSERT_EQ(reply.length, eth::kArpReplyFrameSize);
  EXPECT_TRUE(std::equal(kModemMac.bytes.begin(), kModemMac.bytes.end(), reply.bytes.begin()));
  EXPECT_TRUE(std::equal(kHostMac.bytes.begin(), kHostMac.bytes.end(), reply.bytes.begin() + 6));
  EXPECT_EQ(reply.bytes[21], 2) << "ARP opcode: reply";
  // And the modem's MAC was learned for TX.
  EXPECT_EQ(h.state.modem_mac(), kModemMac);
}

TEST(RxStage, ArpIsNotAnsweredBeforeTheSessionGaveUsAnAddress) {
  RxHarness h(ncm_rx_config(), /*with_replies=*/true);
  const ByteVector ntb = build_ntb({arp_request_for_host()}, {ntb::NtbFormat::Ntb32, ntb::DatagramKind::Ncm, 0});
  ASSERT_TRUE(h.post(ntb, 0));
  h.rx.pump();
  ReplyFrame reply;
  EXPECT_FALSE(h.replies.try_pop(reply));
  EXPECT_THAT(h.in.released, ::testing::ElementsAre(0u)) << "nothing to write: released at once";
  h.rx.publish();
  EXPECT_EQ(h.rx.counters().arp_ignored, 1u);
}

TEST(RxStage, GarbageIsCountedByReasonAndTheBufferComesBack) {
  RxHarness h(ncm_rx_config());
  ByteVector garbage(512, 0x5A);
  ASSERT_TRUE(h.post(garbage, 1));
  h.rx.pump();
  EXPECT_THAT(h.in.released, ::testing::ElementsAre(1u));
  EXPECT_TRUE(h.io.prepared.empty());
  h.rx.publish();
  EXPECT_EQ(h.rx.counters().ntb[ntb::NtbError::NthBadSignature], 1u);
}

TEST(RxStage, WhenTheTunSideIsFullItStopsAndResumesInOrder) {
  RxHarness h(ncm_rx_config());
  h.io.capacity = 1;  // one write in flight at a time
  std::vector<ByteVector> packets, frames;
  for (std::uint8_t i = 0; i < 3; ++i) {
    packets.push_back(ipv4_udp(40 + i, i));
    frames.push_back(ethernet(kHostMac, kModemMac, eth::kEtherTypeIpv4, packets.back()));
  }
  const ByteVector ntb = build_ntb(frames, {ntb::NtbFormat::Ntb16, ntb::DatagramKind::Ncm, 0});
  ASSERT_TRUE(h.post(ntb, 3));
  for (int round = 0; round < 3; ++round) {
    h.rx.pump();
    EXPECT_EQ(h.rx.writes_in_flight(), 1u);
    EXPECT_TRUE(h.in.released.empty() || round == 3);
    h.reap();
  }
  h.rx.pump();
  EXPECT_EQ(h.io.written, packets);
  EXPECT_THAT(h.in.released, ::testing::ElementsAre(3u));
  EXPECT_TRUE(h.rx.idle());
}

TEST(RxStage, MbimDeliversSessionZeroAndCountsTheRest) {
  RxConfig c = ncm_rx_config();
  c.framing = Framing::mbim;
  RxHarness h(c);
  const ByteVector p = ipv4_udp(64, 7);
  const ByteVector ips0 = build_ntb({p, ByteVector{0x00, 0x01, 0x08, 0x00}}, {ntb::NtbFormat::Ntb16, ntb::DatagramKind::Ips, 0}, false);
  const ByteVector ips1 = build_ntb({p}, {ntb::NtbFormat::Ntb16, ntb::DatagramKind::Ips, 1}, false);
  ASSERT_TRUE(h.post(ips0, 0));
  ASSERT_TRUE(h.post(ips1, 1));
  h.rx.pump();
  h.reap();
  EXPECT_THAT(h.io.written, ::testing::ElementsAre(p));
  EXPECT_THAT(h.in.released, ::testing::UnorderedElementsAre(0u, 1u));
  h.rx.publish();
  EXPECT_EQ(h.rx.counters().other_session, 1u);
  EXPECT_EQ(h.rx.counters().not_ip, 1u) << "the K5160's header-less ARP in an IPS session";
}

TEST(RxStage, AFullRingIsRefusedAndCounted) {
  RxConfig c = ncm_rx_config();
  c.in_slots = 1;
  c.ring_capacity = 1;
  RxHarness h(c);
  const ByteVector b(64, 0);
  // moodycamel rounds the capacity up; push until it refuses, which it must within a few.
  bool refused = false;
  for (int i = 0; i < 64 && !refused; ++i) refused = !h.post(b, 0);
  EXPECT_TRUE(refused);
  EXPECT_EQ(h.rx.counters().ring_full, 1u);
}

// ---- TX ------------------------------------------------------------------------------------------

TxConfig ncm_tx_config(std::size_t out_bytes = 16384) {
  TxConfig c;
  c.out.format = ntb::NtbFormat::Ntb32;
  c.out.ntb_out_max_size = static_cast<std::uint32_t>(out_bytes);
  c.out.ndp_at_end = true;  // Huawei
  c.signature = {ntb::NtbFormat::Ntb32, ntb::DatagramKind::Ncm, 0};
  c.framing = Framing::ncm;
  c.our_mac = kHostMac;
  c.mtu_bytes = 1500;
  c.reads_in_flight = 8;
  c.out_slots = 2;
  return c;
}

// `c` turned into an MBIM function's: raw IP datagrams, NTB16, in an IPS NDP of session 0.
TxConfig as_mbim(TxConfig c) {
  c.framing = Framing::mbim;
  c.out.ethernet_framing = false;
  c.signature = {ntb::NtbFormat::Ntb16, ntb::DatagramKind::Ips, 0};
  c.out.format = ntb::NtbFormat::Ntb16;
  return c;
}

TEST(TxStage, PacketsFromTheTunLeaveAsOneNtbOfEthernetFramesToTheLearnedMac) {
  TxHarness h(ncm_tx_config());
  h.state.set_modem_mac(kModemMac);
  h.io.submit();
  EXPECT_EQ(h.io.reads_waiting(), 8u);

  const std::vector<ByteVector> packets = {ipv4_udp(10, 1), ipv4_udp(1400, 2), ipv4_udp(0, 3)};
  for (const auto& p : packets) h.io.arriving.push_back(p);
  EXPECT_EQ(h.reap(), 3u);
  EXPECT_TRUE(h.tx.pump(false));  // the TUN has nothing more: send now

  ASSERT_EQ(h.out.sent.size(), 1u);
  const ParsedNtb p = parse_ntb(h.out.sent[0], ntb::FunctionKind::Ncm);
  EXPECT_TRUE(p.errors.empty());
  ASSERT_EQ(p.datagrams.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i)
    EXPECT_EQ(p.datagrams[i], ethernet(kModemMac, kHostMac, eth::kEtherTypeIpv4, packets[i])) << "datagram " << i;
  h.io.submit();
  EXPECT_EQ(h.io.reads_waiting(), 8u) << "every read buffer goes back to the TUN";
  h.tx.publish();
  EXPECT_EQ(h.tx.counters().packets, 3u);
  EXPECT_EQ(h.tx.counters().ntbs, 1u);
}

TEST(TxStage, AnNtbWaitsWhileMoreIsComingButNotLongerThanMaxHold) {
  TxConfig c = ncm_tx_config();
  c.max_hold = std::chrono::hours(1);
  TxHarness h(c);
  h.io.arriving.push_back(ipv4_udp(20, 1));
  h.reap();
  h.tx.pump(true);
  EXPECT_TRUE(h.out.sent.empty()) << "more completions are waiting: keep filling the NTB";
  h.io.arriving.push_back(ipv4_udp(20, 2));
  h.reap();
  h.tx.pump(false);
  ASSERT_EQ(h.out.sent.size(), 1u);
  EXPECT_EQ(parse_ntb(h.out.sent[0], ntb::FunctionKind::Ncm).datagrams.size(), 2u);

  // With max_hold 0 nothing waits, even when more is coming.
  c.max_hold = std::chrono::microseconds(0);
  TxHarness no_hold(c);
  no_hold.io.arriving.push_back(ipv4_udp(20, 1));
  no_hold.reap();
  no_hold.tx.pump(true);
  EXPECT_EQ(no_hold.out.sent.size(), 1u);
}

TEST(TxStage, NoFreeOutBufferHoldsThePacketsAndTheirReadsThenSendsThemTogether) {
  TxHarness h(ncm_tx_config(), /*out_slots=*/1);
  h.io.arriving.push_back(ipv4_udp(30, 1));
  h.reap();
  h.tx.pump(false);
  ASSERT_EQ(h.out.sent.size(), 1u);  // the only OUT buffer is now in flight

  for (std::uint8_t i = 2; i < 6; ++i) h.io.arriving.push_back(ipv4_udp(30, i));
  h.reap();
  h.tx.pump(false);
  EXPECT_EQ(h.out.sent.size(), 1u);
  EXPECT_TRUE(h.tx.backpressured());
  h.io.submit();
  EXPECT_EQ(h.io.reads_waiting(), 4u) << "held packets keep their read buffers: the TUN queue absorbs the rest";

  h.out.complete_all();  // the transfer completed (the pipe's on_free wakes the worker)
  h.tx.pump(false);
  ASSERT_EQ(h.out.sent.size(), 2u);
  EXPECT_EQ(parse_ntb(h.out.sent[1], ntb::FunctionKind::Ncm).datagrams.size(), 4u);
  h.tx.publish();
  EXPECT_EQ(h.tx.counters().out_buffer_waits, 1u);
  EXPECT_EQ(h.tx.counters().dropped(), 0u);
}

TEST(TxStage, AnNtbThatEndsOnAPacketBoundaryGetsOneZeroByte) {
  // Find a packet size whose NTB is a multiple of 64 bytes (full-speed wMaxPacketSize).
  for (std::size_t payload = 0; payload < 200; ++payload) {
    TxHarness h(ncm_tx_config(), /*out_slots=*/1, /*out_bytes=*/16384, /*max_packet=*/64);
    h.io.arriving.push_back(ipv4_udp(payload, 9));
    h.reap();
    h.tx.pump(false);
    ASSERT_EQ(h.out.sent.size(), 1u);
    const ByteVector& sent = h.out.sent[0];
    const std::uint32_t block = ntb::load_le32(sent, 8);  // NTH32 dwBlockLength
    if (block % 64 != 0) {
      EXPECT_EQ(sent.size(), block);
      continue;
    }
    EXPECT_EQ(sent.size(), block + 1u) << "NCM 1.0 §3.2.2: end with a short packet";
    EXPECT_EQ(sent.back(), 0);
    EXPECT_EQ(parse_ntb(sent, ntb::FunctionKind::Ncm).errors.size(), 0u) << "a trailing zero is not garbage";
    return;
  }
  FAIL() << "no payload size gave a block length that is a multiple of 64";
}

TEST(TxStage, MbimSendsRawIpInIps0AndDropsWhatIsNotIp) {
  TxHarness h(as_mbim(ncm_tx_config()));
  const ByteVector p = ipv4_udp(77, 4);
  h.io.arriving.push_back(p);
  h.io.arriving.push_back(ByteVector{0x20, 0x00, 0x00});  // version 2: not IP
  h.reap();
  h.tx.pump(false);
  ASSERT_EQ(h.out.sent.size(), 1u);
  const ParsedNtb parsed = parse_ntb(h.out.sent[0], ntb::FunctionKind::Mbim);
  ASSERT_EQ(parsed.views.size(), 1u);
  EXPECT_EQ(parsed.views[0].kind, ntb::DatagramKind::Ips);
  EXPECT_EQ(parsed.views[0].session, 0);
  EXPECT_EQ(parsed.datagrams[0], p);
  h.tx.publish();
  EXPECT_EQ(h.tx.counters().not_ip, 1u);
}

TEST(TxStage, RepliesFromRxGoOutFirst) {
  TxHarness h(ncm_tx_config());
  ReplyFrame r;
  r.length = 60;
  std::fill_n(r.bytes.begin(), 60, std::uint8_t{0x77});
  ASSERT_TRUE(h.tx.replies().try_push(r));
  h.io.arriving.push_back(ipv4_udp(5, 1));
  h.reap();
  h.tx.pump(false);
  ASSERT_EQ(h.out.sent.size(), 1u);
  const ParsedNtb parsed = parse_ntb(h.out.sent[0], ntb::FunctionKind::Ncm);
  ASSERT_EQ(parsed.datagrams.size(), 2u);
  EXPECT_EQ(parsed.datagrams[0], ByteVector(60, 0x77));
  h.tx.publish();
  EXPECT_EQ(h.tx.counters().replies, 1u);
  EXPECT_EQ(h.tx.counters().packets, 1u) << "replies are not counted as TUN packets";
}

TEST(TxStage, ASubmitTheDeviceRefusesCountsItsPacketsAsDropped) {
  TxHarness h(ncm_tx_config());
  h.out.refuse_submit = true;
  h.io.arriving.push_back(ipv4_udp(5, 1));
  h.io.arriving.push_back(ipv4_udp(6, 1));
  h.reap();
  h.tx.pump(false);
  h.tx.publish();
  EXPECT_EQ(h.tx.counters().submit_failed, 2u);
  EXPECT_EQ(h.tx.counters().packets, 0u);
}

}  // namespace
}  // namespace wwan::dp

// ---- the control plane's packets (docs/dhcp.md) ------------------------------------------------

namespace wwan::dp {
namespace {

// A DHCP reply (UDP 67 -> 68) and an RA (ICMPv6 134): headers only, the stages look no further.
ByteVector dhcp_reply() {
  ByteVector p = ipv4_udp(300, 0);
  p[20] = 0;
  p[21] = 67;  // source port
  p[22] = 0;
  p[23] = 68;  // destination port
  return p;
}
ByteVector router_advertisement() {
  ByteVector p(40 + 16, 0);
  p[0] = 0x60;
  p[5] = 16;    // payload length
  p[6] = 58;    // ICMPv6
  p[7] = 255;
  p[40] = 134;  // Router Advertisement
  return p;
}

TEST(ControlPlanePackets, OnlyDhcpToTheClientAndRouterAdvertisementsAreControlPlane) {
  EXPECT_TRUE(is_control_plane_packet(dhcp_reply()));
  EXPECT_TRUE(is_control_plane_packet(router_advertisement()));
  ByteVector p = dhcp_reply();
  p[23] = 67;  // to a server: not ours
  EXPECT_FALSE(is_control_plane_packet(p));
  p = dhcp_reply();
  p[7] = 10;  // a later fragment: its "ports" are payload
  EXPECT_FALSE(is_control_plane_packet(p));
  p = router_advertisement();
  p[40] = 135;  // a Neighbour Solicitation
  EXPECT_FALSE(is_control_plane_packet(p));
  EXPECT_FALSE(is_control_plane_packet(ipv4_udp(10, 1)));
  EXPECT_FALSE(is_control_plane_packet(ByteVector{}));
}

TEST(ControlPlanePackets, RxDivertsACopyToTheControlRingInsteadOfTheTun) {
  RxConfig c = ncm_rx_config();
  c.divert_control = true;
  RxHarness h(c);
  const ByteVector data = ipv4_udp(20, 3);
  const ByteVector ntb = build_ntb({ethernet(kHostMac, kModemMac, eth::kEtherTypeIpv4, dhcp_reply()),
                                    ethernet(kHostMac, kModemMac, eth::kEtherTypeIpv4, data),
                                    ethernet(eth::ipv6_multicast_mac(eth::Ipv6Address::all_nodes()), kModemMac,
                                             eth::kEtherTypeIpv6, router_advertisement())},
                                   {ntb::NtbFormat::Ntb16, ntb::DatagramKind::Ncm, 0});
  ASSERT_TRUE(h.post(ntb, 1));
  h.rx.pump();
  h.reap();
  EXPECT_THAT(h.io.written, ::testing::ElementsAre(data)) << "only the ordinary packet reaches the TUN";
  ControlPacket p;
  ASSERT_TRUE(h.rx.control_packets().try_pop(p));
  EXPECT_EQ(ByteVector(p.bytes.begin(), p.bytes.begin() + p.length), dhcp_reply());
  ASSERT_TRUE(h.rx.control_packets().try_pop(p));
  EXPECT_EQ(ByteVector(p.bytes.begin(), p.bytes.begin() + p.length), router_advertisement());
  EXPECT_FALSE(h.rx.control_packets().try_pop(p));
  h.rx.publish();
  EXPECT_EQ(h.rx.counters().control_diverted, 2u);
  EXPECT_EQ(h.rx.counters().packets, 1u);
  EXPECT_THAT(h.in.released, ::testing::ElementsAre(1u)) << "the copies do not hold the IN buffer";
}

TEST(ControlPlanePackets, WithoutDivertingTheyGoToTheTunAndAFullRingIsADrop) {
  RxHarness plain(ncm_rx_config());
  const ByteVector one = build_ntb({ethernet(kHostMac, kModemMac, eth::kEtherTypeIpv4, dhcp_reply())},
                                   {ntb::NtbFormat::Ntb16, ntb::DatagramKind::Ncm, 0});
  ASSERT_TRUE(plain.post(one, 0));
  plain.rx.pump();
  plain.reap();
  EXPECT_EQ(plain.io.written.size(), 1u);

  RxConfig c = ncm_rx_config();
  c.divert_control = true;
  c.control_ring_capacity = 1;
  RxHarness diverting(c);
  std::vector<ByteVector> frames(40, ethernet(kHostMac, kModemMac, eth::kEtherTypeIpv4, dhcp_reply()));
  const ByteVector many = build_ntb(frames, {ntb::NtbFormat::Ntb16, ntb::DatagramKind::Ncm, 0});
  ASSERT_TRUE(diverting.post(many, 2));
  diverting.rx.pump();
  diverting.rx.publish();
  const RxCounters k = diverting.rx.counters();
  EXPECT_GT(k.control_ring_full, 0u) << "nobody drains the ring: drops, counted";
  EXPECT_EQ(k.control_diverted + k.control_ring_full, 40u);
  EXPECT_EQ(k.dropped(), k.control_ring_full);
  EXPECT_TRUE(diverting.io.written.empty());
}

TEST(ControlPlanePackets, TxSendsTheControlThreadsPacketsFirstToTheirDestination) {
  TxHarness h(ncm_tx_config(), /*out_slots=*/1);
  h.state.set_modem_mac(kModemMac);
  ControlPacket discover;
  const ByteVector d = ipv4_udp(300, 5);
  std::copy(d.begin(), d.end(), discover.bytes.begin());
  discover.length = static_cast<std::uint16_t>(d.size());
  discover.has_destination = true;
  discover.destination = eth::MacAddress::broadcast();
  ControlPacket renew = discover;
  renew.has_destination = false;  // unicast: to the modem
  ASSERT_TRUE(h.tx.control_packets().try_push(discover));
  ASSERT_TRUE(h.tx.control_packets().try_push(renew));
  h.io.arriving.push_back(ipv4_udp(5, 1));
  h.reap();
  h.tx.pump(false);
  ASSERT_EQ(h.out.sent.size(), 1u);
  const ParsedNtb p = parse_ntb(h.out.sent[0], ntb::FunctionKind::Ncm);
  ASSERT_EQ(p.datagrams.size(), 3u);
  EXPECT_EQ(p.datagrams[0], ethernet(eth::MacAddress::broadcast(), kHostMac, eth::kEtherTypeIpv4, d));
  EXPECT_EQ(p.datagrams[1], ethernet(kModemMac, kHostMac, eth::kEtherTypeIpv4, d));
  h.tx.publish();
  EXPECT_EQ(h.tx.counters().control_packets, 2u);
  EXPECT_EQ(h.tx.counters().packets, 1u) << "control packets are not TUN packets";
}

TEST(ControlPlanePackets, AControlPacketWaitsForAnOutBufferInsteadOfBeingDropped) {
  TxHarness h(ncm_tx_config(), /*out_slots=*/1);
  h.io.arriving.push_back(ipv4_udp(30, 1));
  h.reap();
  h.tx.pump(false);
  ASSERT_EQ(h.out.sent.size(), 1u);  // the only OUT buffer is in flight
  h.io.arriving.push_back(ipv4_udp(30, 2));
  h.reap();
  h.tx.pump(false);  // back-pressured now
  ControlPacket rs;
  const ByteVector r = router_advertisement();  // any IPv6 packet
  std::copy(r.begin(), r.end(), rs.bytes.begin());
  rs.length = static_cast<std::uint16_t>(r.size());
  ASSERT_TRUE(h.tx.control_packets().try_push(rs));
  h.tx.pump(false);
  EXPECT_EQ(h.out.sent.size(), 1u);
  h.out.complete_all();
  h.tx.pump(false);
  ASSERT_EQ(h.out.sent.size(), 2u);
  const ParsedNtb p = parse_ntb(h.out.sent[1], ntb::FunctionKind::Ncm);
  ASSERT_EQ(p.datagrams.size(), 2u);
  EXPECT_EQ(p.datagrams[0], ethernet(eth::MacAddress::broadcast(), kHostMac, eth::kEtherTypeIpv6, r))
      << "no modem MAC learned: broadcast, and the EtherType follows the version";
}

}  // namespace
}  // namespace wwan::dp

// ---- TUN offload (docs/offload.md): RX coalesces into writev super-packets, TX segments ---------

#include "datapath/offload/checksum.hpp"
#include "datapath/offload/virtio_net_hdr.hpp"
#include "offload_packets.hpp"

namespace wwan::dp {
namespace {

namespace ot = wwan::offload::testing;
using offload::GroPlain;
using offload::VirtioNetHdr;

const ot::Flow kDown = ot::flow_v4({10, 64, 64, 1}, {10, 64, 64, 2}, 443, 40000);  // gateway -> host
const ot::Flow kUp = ot::flow_v4({10, 64, 64, 2}, {10, 64, 64, 1}, 40000, 443);    // host -> gateway

// `n` TCP segments of `size` payload bytes in order (IDs and sequence numbers counting up).
std::vector<ByteVector> tcp_train(const ot::Flow& f, std::size_t n, std::size_t size, std::uint32_t seq,
                                  std::uint16_t id, std::uint32_t fill) {
  std::vector<ByteVector> out;
  for (std::size_t i = 0; i < n; ++i) {
    const auto payload = ot::pattern(size, fill + static_cast<std::uint32_t>(i * size));
    out.push_back(ot::tcp_packet(f, {.id = static_cast<std::uint16_t>(id + i)},
                                 {.seq = seq + static_cast<std::uint32_t>(i * size)}, payload));
  }
  return out;
}

ByteVector ncm_ntb_of(const std::vector<ByteVector>& ip_packets) {
  std::vector<ByteVector> frames;
  for (const auto& p : ip_packets) frames.push_back(ethernet(kHostMac, kModemMac, eth::kEtherTypeIpv4, p));
  return build_ntb(frames, {ntb::NtbFormat::Ntb32, ntb::DatagramKind::Ncm, 0});
}

RxConfig vnet_rx_config(bool udp) {
  RxConfig c = ncm_rx_config();
  c.vnet_hdr = true;
  c.gro_udp = udp;
  return c;
}

VirtioNetHdr header_of(const ByteVector& write) { return offload::decode(write.data()); }
ByteVector after_header(const ByteVector& write) { return ByteVector(write.begin() + 10, write.end()); }
ByteVector payload_of(const ByteVector& ip) {
  return ByteVector(ip.begin() + static_cast<std::ptrdiff_t>(ot::l4_offset(ip) + (ip[9] == 6 || ip[6] == 6 ? 20 : 8)),
                    ip.end());
}
// The payloads of `packets` back to back: what a super-packet of them carries behind its headers.
ByteVector joined_payloads(const std::vector<ByteVector>& packets) {
  ByteVector joined;
  for (const ByteVector& p : packets) {
    const ByteVector payload = payload_of(p);
    joined.insert(joined.end(), payload.begin(), payload.end());
  }
  return joined;
}

TEST(RxStageOffload, TcpSegmentsOfOneNtbLeaveAsOneSuperPacketWrittenFromTheNtbAndOddPacketsPlain) {
  RxHarness h(vnet_rx_config(false));

  std::vector<ByteVector> packets = tcp_train(kDown, 3, 1000, 7000, 0x100, 0);
  const ByteVector udp = ot::udp_packet(kDown, {}, ot::pattern(200));
  ByteVector corrupted = tcp_train(kDown, 1, 1000, 10000, 0x103, 3000)[0];
  corrupted.back() ^= 0x01;  // its TCP checksum no longer verifies
  packets.push_back(udp);
  packets.push_back(corrupted);
  const ByteVector ntb = ncm_ntb_of(packets);

  ASSERT_TRUE(h.post(ntb, 1));
  h.rx.pump();
  EXPECT_EQ(h.rx.writes_in_flight(), 3u) << "one super-packet and two plain packets";
  EXPECT_TRUE(h.in.released.empty()) << "released while its writes are in flight";
  h.reap();
  ASSERT_EQ(h.io.written.size(), 3u);
  EXPECT_EQ(h.io.writevs, 3u) << "every write carries a virtio_net_hdr: all are writev";

  // 1: the super-packet. The header says TCPV4, gso_size 1000, checksum to be completed from the
  // TCP header on; behind it the first segment's headers (Total Length of the whole) and every
  // segment's payload, the payloads read from inside the NTB.
  const VirtioNetHdr header = header_of(h.io.written[0]);
  EXPECT_EQ(header.flags, offload::kVirtioNetHdrFNeedsCsum);
  EXPECT_EQ(header.gso_type, offload::kVirtioNetHdrGsoTcpv4);
  EXPECT_EQ(header.gso_size, 1000);
  EXPECT_EQ(header.hdr_len, 40);
  EXPECT_EQ(header.csum_start, 20);
  EXPECT_EQ(header.csum_offset, 16);
  const ByteVector super = after_header(h.io.written[0]);
  ASSERT_EQ(super.size(), 40u + 3000u);
  EXPECT_EQ(eth::load_be16(super, 2), 3040) << "IPv4 Total Length of the super-packet";
  EXPECT_TRUE(ot::naive_ipv4_ok(super)) << "the IPv4 header checksum follows the new length";
  EXPECT_EQ(ByteVector(super.begin() + 40, super.end()), joined_payloads({packets[0], packets[1], packets[2]}));
  ASSERT_EQ(h.io.written_pieces[0].size(), 4u) << "headers + 3 payloads";
  for (std::size_t i = 1; i < 4; ++i)
    EXPECT_TRUE(h.io.written_pieces[0][i] >= ntb.data() && h.io.written_pieces[0][i] < ntb.data() + ntb.size())
        << "payload " << i << " must be written from the NTB, not a copy";

  // 2, 3: plain, behind a zero header, exactly as they came (UDP coalescing is off; the
  // corrupted segment is never merged: the kernel drops it).
  EXPECT_EQ(ByteVector(h.io.written[1].begin(), h.io.written[1].begin() + 10), ByteVector(10, 0));
  EXPECT_EQ(after_header(h.io.written[1]), udp);
  EXPECT_EQ(after_header(h.io.written[2]), corrupted);
  EXPECT_THAT(h.in.released, ::testing::ElementsAre(1u));

  h.rx.publish();
  const RxCounters c = h.rx.counters();
  EXPECT_EQ(c.packets, 5u) << "IP packets, segments of super-packets included";
  std::uint64_t bytes = 0;
  for (const auto& p : packets) bytes += p.size();
  EXPECT_EQ(c.bytes, bytes) << "the IP bytes of the packets as they arrived";
  EXPECT_EQ(c.gro.super_packets, 1u);
  EXPECT_EQ(c.gro.coalesced, 3u);
  EXPECT_EQ(c.gro.plain_by_reason[static_cast<std::size_t>(GroPlain::UdpOff)], 1u);
  EXPECT_EQ(c.gro.plain_by_reason[static_cast<std::size_t>(GroPlain::L4ChecksumBad)], 1u);
  EXPECT_EQ(c.dropped(), 0u);
}

TEST(RxStageOffload, EachBufferInFlightKeepsItsOwnCoalescerUntilItsWritesComplete) {
  RxHarness h(vnet_rx_config(false));
  const std::vector<ByteVector> a = tcp_train(kDown, 4, 500, 1, 0x10, 0);
  const std::vector<ByteVector> b = tcp_train(kDown, 2, 700, 2001, 0x14, 100);
  const ByteVector ntb_a = ncm_ntb_of(a), ntb_b = ncm_ntb_of(b);
  // The worker gets to each buffer alone (a batch of one each), and both are queued before any
  // write completes (buffers on the ring together would share one batch: the tests below).
  ASSERT_TRUE(h.post(ntb_a, 0));
  h.rx.pump();
  ASSERT_TRUE(h.post(ntb_b, 2));
  h.rx.pump();
  EXPECT_EQ(h.rx.writes_in_flight(), 2u);
  h.reap();  // the fake reads the iovecs only now
  ASSERT_EQ(h.io.written.size(), 2u);
  EXPECT_EQ(header_of(h.io.written[0]).gso_size, 500);
  EXPECT_EQ(after_header(h.io.written[0]).size(), 40u + 2000u);
  EXPECT_EQ(header_of(h.io.written[1]).gso_size, 700);
  EXPECT_EQ(after_header(h.io.written[1]).size(), 40u + 1400u);
  EXPECT_EQ(ByteVector(h.io.written[1].begin() + 50, h.io.written[1].end()), joined_payloads(b))
      << "the first buffer's coalescer must not have been reused for the second";
  EXPECT_THAT(h.in.released, ::testing::UnorderedElementsAre(0u, 2u));
  h.rx.publish();
  EXPECT_EQ(h.rx.counters().packets, 6u);
}

TEST(RxStageOffload, UdpDatagramsOfOneFlowAndSizeCoalesceOnlyWhenUsoWasGranted) {
  std::vector<ByteVector> datagrams;
  for (std::uint32_t i = 0; i < 5; ++i)
    datagrams.push_back(ot::udp_packet(kDown, {.id = static_cast<std::uint16_t>(0x200 + i)}, ot::pattern(1200, i * 1200)));
  const ByteVector ntb = ncm_ntb_of(datagrams);
  for (const bool uso : {true, false}) {
    RxHarness h(vnet_rx_config(uso));
    ASSERT_TRUE(h.post(ntb, 3));
    h.rx.pump();
    h.reap();
    h.rx.publish();
    EXPECT_EQ(h.rx.counters().packets, 5u);
    if (uso) {
      ASSERT_EQ(h.io.written.size(), 1u);
      EXPECT_EQ(header_of(h.io.written[0]).gso_type, offload::kVirtioNetHdrGsoUdpL4);
      EXPECT_EQ(header_of(h.io.written[0]).gso_size, 1200);
      EXPECT_EQ(header_of(h.io.written[0]).csum_offset, 6);
    } else {
      ASSERT_EQ(h.io.written.size(), 5u);
      for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ(after_header(h.io.written[i]), datagrams[i]);
    }
  }
}

// Completes the prepared writes one at a time (the fake completes in order): `n` of them.
void complete_writes(RxHarness& h, std::size_t n) {
  h.io.submit();
  for (std::size_t i = 0; i < n; ++i) {
    std::array<IoCompletion, 1> c{};
    ASSERT_EQ(h.io.reap(c, 0), 1u);
    h.rx.on_completion(c[0]);
  }
}

bool points_into(const std::uint8_t* p, const ByteVector& buffer) {
  return p >= buffer.data() && p < buffer.data() + buffer.size();
}

TEST(RxStageOffload, ASuperPacketGathersOneFlowAcrossTheTransfersAlreadyOnTheRing) {
  const std::vector<ByteVector> train = tcp_train(kDown, 6, 1000, 5000, 0x40, 0);
  const ByteVector ntb_a = ncm_ntb_of({train.begin(), train.begin() + 3});
  const ByteVector ntb_b = ncm_ntb_of({train.begin() + 3, train.end()});
  for (const unsigned batch_transfers : {8u, 1u}) {
    SCOPED_TRACE(batch_transfers);
    RxConfig config = vnet_rx_config(false);
    config.gro_batch_transfers = batch_transfers;
    RxHarness h(config);
    ASSERT_TRUE(h.post(ntb_a, 0));
    ASSERT_TRUE(h.post(ntb_b, 2));
    h.rx.pump();
    EXPECT_TRUE(h.in.released.empty()) << "released while a write points into it";
    h.reap();
    EXPECT_THAT(h.in.released, ::testing::ElementsAre(0u, 2u));
    h.rx.publish();
    const RxCounters c = h.rx.counters();
    EXPECT_EQ(c.packets, 6u);
    if (batch_transfers == 1) {  // each transfer alone: a super-packet of 3 from each
      EXPECT_EQ(c.gro_batches, 2u);
      ASSERT_EQ(h.io.written.size(), 2u);
      EXPECT_EQ(header_of(h.io.written[0]).gso_size, 1000);
      EXPECT_EQ(after_header(h.io.written[0]).size(), 40u + 3000u);
      continue;
    }
    EXPECT_EQ(c.gro_batches, 1u);
    ASSERT_EQ(h.io.written.size(), 1u) << "one super-packet of all six segments";
    EXPECT_EQ(header_of(h.io.written[0]).gso_type, offload::kVirtioNetHdrGsoTcpv4);
    EXPECT_EQ(header_of(h.io.written[0]).gso_size, 1000);
    const ByteVector super = after_header(h.io.written[0]);
    ASSERT_EQ(super.size(), 40u + 6000u);
    EXPECT_EQ(eth::load_be16(super, 2), 6040);
    EXPECT_TRUE(ot::naive_ipv4_ok(super));
    EXPECT_EQ(ByteVector(super.begin() + 40, super.end()), joined_payloads(train));
    ASSERT_EQ(h.io.written_pieces[0].size(), 7u);
    for (std::size_t i = 1; i <= 3; ++i) EXPECT_TRUE(points_into(h.io.written_pieces[0][i], ntb_a)) << i;
    for (std::size_t i = 4; i <= 6; ++i) EXPECT_TRUE(points_into(h.io.written_pieces[0][i], ntb_b)) << i;
    EXPECT_EQ(c.gro.super_packets, 1u);
    EXPECT_EQ(c.gro.coalesced, 6u);
  }
}

TEST(RxStageOffload, TheBuffersOfABatchGoBackOnlyWhenItsLastWriteCompletesInArrivalOrder) {
  RxHarness h(vnet_rx_config(false));
  // A: three segments of a flow; B: the rest of it and a UDP datagram (plain: USO off); C: one
  // more segment. One batch, two writes: the super-packet (pointing into A, B and C) and the UDP.
  const std::vector<ByteVector> train = tcp_train(kDown, 5, 800, 1, 0x10, 0);
  const ByteVector udp = ot::udp_packet(kUp, {}, ot::pattern(100));
  const ByteVector ntb_a = ncm_ntb_of({train[0], train[1], train[2]});
  const ByteVector ntb_b = ncm_ntb_of({train[3], udp});
  const ByteVector ntb_c = ncm_ntb_of({train[4]});
  ASSERT_TRUE(h.post(ntb_a, 3));
  ASSERT_TRUE(h.post(ntb_b, 1));
  ASSERT_TRUE(h.post(ntb_c, 0));
  h.rx.pump();
  ASSERT_EQ(h.rx.writes_in_flight(), 2u);
  complete_writes(h, 1);
  EXPECT_TRUE(h.in.released.empty()) << "the batch's second write still points into its buffers";
  EXPECT_FALSE(h.rx.idle());
  complete_writes(h, 1);
  EXPECT_THAT(h.in.released, ::testing::ElementsAre(3u, 1u, 0u)) << "all three, in the order they came";
  EXPECT_TRUE(h.rx.idle());
  ASSERT_EQ(h.io.written.size(), 2u);
  EXPECT_EQ(after_header(h.io.written[0]).size(), 40u + 5u * 800u);
  EXPECT_TRUE(points_into(h.io.written_pieces[0][4], ntb_b));
  EXPECT_TRUE(points_into(h.io.written_pieces[0][5], ntb_c));
  EXPECT_EQ(after_header(h.io.written[1]), udp);

  // The slots are free again: the next buffers start a new batch (the coalescer reset), and a
  // batch still in flight keeps its own coalescer while the next one is queued.
  const std::vector<ByteVector> more = tcp_train(kDown, 2, 800, 4001, 0x15, 4000);
  const std::vector<ByteVector> other = tcp_train(kUp, 2, 300, 9, 0x70, 77);
  const ByteVector ntb_d = ncm_ntb_of(more), ntb_e = ncm_ntb_of(other);
  ASSERT_TRUE(h.post(ntb_d, 3));
  h.rx.pump();
  ASSERT_TRUE(h.post(ntb_e, 1));
  h.rx.pump();
  h.reap();
  ASSERT_EQ(h.io.written.size(), 4u);
  EXPECT_EQ(header_of(h.io.written[2]).gso_size, 800);
  EXPECT_EQ(ByteVector(h.io.written[2].begin() + 50, h.io.written[2].end()), joined_payloads(more));
  EXPECT_EQ(header_of(h.io.written[3]).gso_size, 300);
  EXPECT_THAT(h.in.released, ::testing::ElementsAre(3u, 1u, 0u, 3u, 1u));
  h.rx.publish();
  EXPECT_EQ(h.rx.counters().gro_batches, 3u);
  EXPECT_EQ(h.rx.counters().packets, 10u);
}

TEST(RxStageOffload, AFlowInterruptedAtATransferBoundaryKeepsItsOrder) {
  RxHarness h(vnet_rx_config(false));
  // Flow X: two segments in A; in B a pure ACK of X (it closes X's super-packet), then two more
  // segments. Flow Y: one segment in A and its next in B (one super-packet across the boundary).
  const std::vector<ByteVector> x = tcp_train(kDown, 4, 600, 100, 0x20, 0);
  const ByteVector x_ack = ot::tcp_packet(kDown, {.id = 0x22}, {.seq = 1300}, {});
  const ot::Flow y_flow = ot::flow_v4({10, 64, 64, 1}, {10, 64, 64, 2}, 80, 40001);
  const std::vector<ByteVector> y = tcp_train(y_flow, 2, 900, 7, 0x90, 500);
  const ByteVector ntb_a = ncm_ntb_of({x[0], x[1], y[0]});
  const ByteVector ntb_b = ncm_ntb_of({x_ack, x[2], x[3], y[1]});
  ASSERT_TRUE(h.post(ntb_a, 0));
  ASSERT_TRUE(h.post(ntb_b, 1));
  h.rx.pump();
  h.reap();
  // Writes in the order their first packet came: X's first super-packet, Y's, X's ACK, X's
  // second super-packet. X's three writes are in X's order.
  ASSERT_EQ(h.io.written.size(), 4u);
  const auto seq_of = [](const ByteVector& w) { return eth::load_be32(after_header(w), 24); };
  EXPECT_EQ(header_of(h.io.written[0]).gso_type, offload::kVirtioNetHdrGsoTcpv4);
  EXPECT_EQ(seq_of(h.io.written[0]), 100u);
  EXPECT_EQ(after_header(h.io.written[0]).size(), 40u + 1200u);
  EXPECT_EQ(header_of(h.io.written[1]).gso_size, 900);
  EXPECT_EQ(after_header(h.io.written[1]).size(), 40u + 1800u) << "Y across the boundary";
  EXPECT_EQ(after_header(h.io.written[2]), x_ack) << "the ACK plain, after what came before it";
  EXPECT_EQ(seq_of(h.io.written[3]), 1300u);
  EXPECT_EQ(after_header(h.io.written[3]).size(), 40u + 1200u);
  EXPECT_THAT(h.in.released, ::testing::ElementsAre(0u, 1u));
}

TEST(RxStageOffload, ABatchTakesAnotherTransferOnlyWhileItsWorstCaseStillFits) {
  // Small transfers (transfer_bytes 2048: room for 2048 / 14 + 1 = 147 datagrams; a batch's
  // coalescer holds two such worst cases, 294), each 1784 bytes long with 28 datagrams of 28
  // bytes. A transfer of 1784 bytes could hold 1784 / 14 + 1 = 128 datagrams, so a batch takes
  // another one while the packets it has + 128 <= 294: after five (140) a sixth, after six (168)
  // not the seventh, which starts the next batch. Nothing is dropped or reordered.
  RxConfig config = vnet_rx_config(false);
  config.transfer_bytes = 2048;
  config.in_slots = 8;
  config.ring_capacity = 8;
  RxHarness h(config);
  std::vector<ByteVector> ntbs;
  std::vector<ByteVector> sent;
  for (unsigned t = 0; t < 8; ++t) {
    std::vector<ByteVector> datagrams;
    for (unsigned i = 0; i < 28; ++i) datagrams.push_back(ipv4_udp(0, static_cast<std::uint8_t>(t * 28 + i)));
    sent.insert(sent.end(), datagrams.begin(), datagrams.end());
    ntbs.push_back(ncm_ntb_of(datagrams));
    ASSERT_EQ(ntbs.back().size(), 1784u);
  }
  for (unsigned t = 0; t < 8; ++t)
    ASSERT_TRUE(h.post(ntbs[t], t));
  h.rx.pump();
  EXPECT_FALSE(h.rx.idle());
  while (h.reap() > 0) {  // 64 completions per reap
  }
  EXPECT_TRUE(h.rx.idle());
  h.rx.publish();
  const RxCounters c = h.rx.counters();
  EXPECT_EQ(c.gro_batches, 2u) << "transfers 1-6, then 7-8";
  EXPECT_EQ(c.packets, 224u);
  EXPECT_EQ(c.dropped(), 0u);
  ASSERT_EQ(h.io.written.size(), 224u);
  for (std::size_t i = 0; i < 224; ++i) EXPECT_EQ(after_header(h.io.written[i]), sent[i]) << i;
  EXPECT_THAT(h.in.released, ::testing::ElementsAre(0u, 1u, 2u, 3u, 4u, 5u, 6u, 7u));
}

// ---- TX ----

TxConfig vnet_tx_config(std::size_t out_bytes = 16384) {
  TxConfig c = ncm_tx_config(out_bytes);
  c.vnet_hdr = true;
  return c;
}

// What a TUN with TSO/USO granted hands out: the virtio_net_hdr (GSO, NEEDS_CSUM) and the
// super-packet with the pseudo-header seed in its checksum field.
ByteVector gso_read(std::uint8_t gso_type, std::uint16_t gso_size, ByteVector packet) {
  const bool tcp = (packet[0] >> 4) == 4 ? packet[9] == 6 : packet[6] == 6;
  const std::size_t l4 = ot::l4_offset(packet);
  ot::Flow f;
  f.version = packet[0] >> 4;
  const std::size_t alen = f.version == 4 ? 4 : 16;
  std::copy_n(packet.begin() + (f.version == 4 ? 12 : 8), alen, f.source.begin());
  std::copy_n(packet.begin() + (f.version == 4 ? 16 : 24), alen, f.destination.begin());
  ot::put16(packet, l4 + (tcp ? 16 : 6), ot::naive_fold(ot::pseudo_sum(f, tcp ? 6 : 17, packet.size() - l4)));
  VirtioNetHdr h;
  h.flags = offload::kVirtioNetHdrFNeedsCsum;
  h.gso_type = gso_type;
  h.gso_size = gso_size;
  h.csum_start = static_cast<std::uint16_t>(l4);
  h.csum_offset = tcp ? 16 : 6;
  ByteVector read(10);
  offload::encode(h, read.data());
  read.insert(read.end(), packet.begin(), packet.end());
  return read;
}

ByteVector plain_read(const ByteVector& packet) {
  ByteVector read(10, 0);
  read.insert(read.end(), packet.begin(), packet.end());
  return read;
}

// Every datagram of every NTB sent, NCM: the Ethernet header checked and stripped.
std::vector<ByteVector> sent_ip_packets(const FakeOutLink& out, bool ncm = true) {
  std::vector<ByteVector> ip;
  for (const ByteVector& ntb : out.sent) {
    const ParsedNtb p = parse_ntb(ntb, ncm ? ntb::FunctionKind::Ncm : ntb::FunctionKind::Mbim);
    EXPECT_TRUE(p.errors.empty());
    for (const ByteVector& d : p.datagrams) {
      if (!ncm) {
        ip.push_back(d);
        continue;
      }
      EXPECT_TRUE(std::equal(kModemMac.bytes.begin(), kModemMac.bytes.end(), d.begin())) << "to the modem";
      EXPECT_TRUE(std::equal(kHostMac.bytes.begin(), kHostMac.bytes.end(), d.begin() + 6)) << "from us";
      ip.emplace_back(d.begin() + 14, d.end());
    }
  }
  return ip;
}

TEST(TxStageOffload, ATsoSuperPacketLeavesAsEthernetFramedSegmentsWithValidChecksums) {
  TxHarness h(vnet_tx_config());
  h.state.set_modem_mac(kModemMac);
  const auto payload = ot::pattern(3500);
  const ByteVector super = ot::tcp_packet(kUp, {.id = 0x40}, {.seq = 1000, .flags = 0x18}, payload);
  h.io.arriving.push_back(gso_read(offload::kVirtioNetHdrGsoTcpv4, 1000, super));
  h.reap();
  h.tx.pump(false);

  ASSERT_EQ(h.out.sent.size(), 1u);
  const std::vector<ByteVector> segments = sent_ip_packets(h.out);
  ASSERT_EQ(segments.size(), 4u) << "3500 bytes at gso_size 1000";
  ByteVector joined;
  std::uint64_t bytes = 0;
  for (std::size_t i = 0; i < segments.size(); ++i) {
    const ByteVector& s = segments[i];
    EXPECT_TRUE(ot::naive_ipv4_ok(s)) << "segment " << i;
    EXPECT_TRUE(ot::naive_l4_ok(s)) << "segment " << i << ": NCM has no checksum offload";
    EXPECT_EQ(eth::load_be16(s, 4), 0x40 + i) << "IPv4 ID counts up";
    EXPECT_EQ(eth::load_be32(s, 24), 1000 + 1000 * i) << "TCP sequence number";
    EXPECT_EQ((s[33] & 0x08) != 0, i == 3) << "PSH only on the last segment";
    const ByteVector p = payload_of(s);
    joined.insert(joined.end(), p.begin(), p.end());
    bytes += s.size();
  }
  EXPECT_EQ(joined, ByteVector(payload.begin(), payload.end()));
  h.io.submit();
  EXPECT_EQ(h.io.reads_waiting(), 8u) << "the read buffer went back to the TUN";
  h.tx.publish();
  const TxCounters c = h.tx.counters();
  EXPECT_EQ(c.tun_reads, 1u);
  EXPECT_EQ(c.gso_super_packets, 1u);
  EXPECT_EQ(c.gso_segments, 4u);
  EXPECT_EQ(c.packets, 4u);
  EXPECT_EQ(c.bytes, bytes);
  EXPECT_EQ(c.dropped(), 0u);
}

TEST(TxStageOffload, ASuperPacketStraddlesNtbsAndWaitsForAnOutBufferHalfWay) {
  // One OUT buffer of 4 KiB: three 1014-byte frames per NTB.
  TxHarness h(vnet_tx_config(4096), /*out_slots=*/1, /*out_bytes=*/4096);
  h.state.set_modem_mac(kModemMac);
  const auto payload = ot::pattern(20 * 960);
  const ByteVector super = ot::tcp_packet(kUp, {}, {.seq = 5}, payload);
  h.io.arriving.push_back(gso_read(offload::kVirtioNetHdrGsoTcpv4, 960, super));
  h.reap();
  h.tx.pump(false);
  ASSERT_EQ(h.out.sent.size(), 1u) << "the first NTB is full and sent; the only OUT buffer is in flight";
  EXPECT_TRUE(h.tx.backpressured());
  h.io.submit();
  EXPECT_EQ(h.io.reads_waiting(), 7u) << "the super-packet keeps its read buffer until its last segment is out";
  for (int round = 0; round < 20 && h.out.sent.size() < 7; ++round) {
    h.out.complete_all();
    h.tx.pump(false);
  }
  const std::vector<ByteVector> segments = sent_ip_packets(h.out);
  ASSERT_EQ(segments.size(), 20u);
  ByteVector joined;
  for (std::size_t i = 0; i < segments.size(); ++i) {
    EXPECT_TRUE(ot::naive_l4_ok(segments[i])) << "segment " << i;
    EXPECT_EQ(eth::load_be32(segments[i], 24), 5 + 960 * i) << "segment " << i << " in order";
    const ByteVector p = payload_of(segments[i]);
    joined.insert(joined.end(), p.begin(), p.end());
  }
  EXPECT_EQ(joined, ByteVector(payload.begin(), payload.end()));
  h.io.submit();
  EXPECT_EQ(h.io.reads_waiting(), 8u);
  h.tx.publish();
  EXPECT_EQ(h.tx.counters().gso_segments, 20u);
  EXPECT_EQ(h.tx.counters().packets, 20u);
  EXPECT_GE(h.tx.counters().ntbs, 7u);
}

TEST(TxStageOffload, PlainReadsAreCopiedChecksumsCompletedAndMalformedReadsCountedByName) {
  TxHarness h(vnet_tx_config());
  h.state.set_modem_mac(kModemMac);
  const ByteVector plain = ot::udp_packet(kUp, {}, ot::pattern(100));
  // NEEDS_CSUM without GSO: the UDP checksum field holds the seed, the rest is ours to finish.
  ByteVector partial = gso_read(offload::kVirtioNetHdrGsoNone, 0, ot::udp_packet(kUp, {.id = 7}, ot::pattern(333)));
  ByteVector zero_gso_size = gso_read(offload::kVirtioNetHdrGsoTcpv4, 0, ot::tcp_packet(kUp, {}, {}, ot::pattern(10)));
  h.io.arriving.push_back(plain_read(plain));
  h.io.arriving.push_back(partial);
  h.io.arriving.push_back(zero_gso_size);
  h.io.arriving.push_back(ByteVector{1, 2, 3});            // shorter than a virtio_net_hdr
  h.io.arriving.push_back(plain_read(ByteVector{0x20, 0}));  // version 2: not IP
  h.reap();
  h.tx.pump(false);
  const std::vector<ByteVector> sent = sent_ip_packets(h.out);
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0], plain);
  EXPECT_EQ(sent[1], ot::udp_packet(kUp, {.id = 7}, ot::pattern(333))) << "the checksum completed to the real one";
  h.tx.publish();
  const TxCounters c = h.tx.counters();
  EXPECT_EQ(c.csum_completed, 1u);
  EXPECT_EQ(c.gso_super_packets, 0u);
  EXPECT_EQ(c.gso_errors[static_cast<std::size_t>(offload::GsoError::GsoSizeZero)], 1u);
  EXPECT_EQ(c.gso_errors[static_cast<std::size_t>(offload::GsoError::NoVirtioNetHdr)], 1u);
  EXPECT_EQ(c.not_ip, 1u);
  EXPECT_EQ(c.dropped(), 3u);
  EXPECT_EQ(c.packets, 2u);
}

TEST(TxStageOffload, MbimUdpSuperPacketsBecomeRawIpDatagramsInIps0) {
  TxHarness h(as_mbim(vnet_tx_config()));
  const ot::Flow v6 = ot::flow_v6(2, 1, 40000, 53);
  const auto payload = ot::pattern(1250);
  h.io.arriving.push_back(gso_read(offload::kVirtioNetHdrGsoUdpL4, 500, ot::udp_packet(v6, {}, payload)));
  h.reap();
  h.tx.pump(false);
  const std::vector<ByteVector> sent = sent_ip_packets(h.out, false);
  ASSERT_EQ(sent.size(), 3u) << "500 + 500 + 250";
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(sent[i], ot::udp_packet(v6, {}, std::span(payload).subspan(i * 500, i == 2 ? 250 : 500)))
        << "datagram " << i << ": each exactly what a plain UDP send would have made";
  }
}


// ---- RNDIS framing (datapath/framing.hpp: the same stages, REMOTE_NDIS_PACKET_MSG transfers) -----

// The 44-byte PACKET_MSG header of a frame right behind it, as hex (MS-RNDIS §2.2.14).
std::string packet_msg_header(std::uint32_t message_length, std::uint32_t data_length) {
  const auto le32 = [](std::uint32_t v) {
    char b[16];
    std::snprintf(b, sizeof b, "%02x %02x %02x %02x ", v & 0xFF, (v >> 8) & 0xFF, (v >> 16) & 0xFF, v >> 24);
    return std::string(b);
  };
  return "01 00 00 00 " + le32(message_length) + "24 00 00 00 " + le32(data_length) +
         "00 00 00 00  00 00 00 00  00 00 00 00  00 00 00 00  00 00 00 00  00 00 00 00  00 00 00 00";
}

TEST(RxStageRndis, FramesOfEveryGoodPacketMessageAreWrittenAHostileOneIsSkippedAndArpIsAnswered) {
  RxConfig c = ncm_rx_config();
  c.framing = Framing::rndis;
  RxHarness h(c, /*with_replies=*/true);
  h.state.set_host_addresses(HostAddresses{kHostIp, {}});

  const ByteVector ip = ipv4_udp(10, 0xB1);  // 38 bytes of IP, a 52-byte frame
  const ByteVector frame1 = ethernet(kHostMac, kModemMac, eth::kEtherTypeIpv4, ip);
  const ByteVector arp = arp_request_for_host();  // 42 bytes
  ByteVector xfer = test::hex(
      // message 0 at 0: PACKET_MSG, MessageLength 96, DataOffset 36 (-> byte 44), DataLength 52,
      // OOBDataOffset/Length, NumOOBDataElements, PerPacketInfoOffset/Length, VcHandle, Reserved 0
      packet_msg_header(96, 52));
  xfer.insert(xfer.end(), frame1.begin(), frame1.end());
  const ByteVector hostile = test::hex(
      // message 1 at 96: MessageLength 64 still frames it, but DataOffset 0xFFFFFFF0 wraps rndis_host's
      // 32-bit check; here: data_out_of_message, skipped, and the next message is still read
      "01 00 00 00  40 00 00 00  f0 ff ff ff  14 00 00 00"
      "00 00 00 00  00 00 00 00  00 00 00 00  00 00 00 00  00 00 00 00  00 00 00 00  00 00 00 00"
      "ee ee ee ee  ee ee ee ee  ee ee ee ee  ee ee ee ee  ee ee ee ee");
  xfer.insert(xfer.end(), hostile.begin(), hostile.end());
  const ByteVector arp_header = test::hex(
      // message 2 at 160: the modem's ARP request for our address, MessageLength 86, DataLength 42
      packet_msg_header(86, 42));
  xfer.insert(xfer.end(), arp_header.begin(), arp_header.end());
  xfer.insert(xfer.end(), arp.begin(), arp.end());
  xfer.push_back(0x00);  // the 1-byte short-packet pad
  ASSERT_EQ(xfer.size(), 247u);

  ASSERT_TRUE(h.post(xfer, 1));
  EXPECT_TRUE(h.rx.pump());
  h.reap();
  ASSERT_EQ(h.io.written.size(), 1u);
  EXPECT_EQ(h.io.written[0], ip);
  EXPECT_EQ(h.io.written_from[0], xfer.data() + 44 + 14) << "written from inside the IN buffer";
  EXPECT_THAT(h.in.released, ::testing::ElementsAre(1u));

  h.rx.publish();
  const RxCounters counters = h.rx.counters();
  EXPECT_EQ(counters.rndis.transfers, 1u);
  EXPECT_EQ(counters.rndis.messages, 3u);
  EXPECT_EQ(counters.rndis.frames, 2u);
  EXPECT_EQ(counters.rndis[rndis::PacketError::DataOutOfMessage], 1u);
  EXPECT_EQ(counters.rndis[rndis::PacketError::ShortPacketPadding], 1u);
  EXPECT_EQ(counters.ntb.transfers, 0u) << "no NTB parsing on an RNDIS function";
  EXPECT_EQ(counters.packets, 1u);
  EXPECT_EQ(counters.arp_replies, 1u);
  EXPECT_EQ(h.state.modem_mac(), kModemMac) << "the modem's MAC learned as on NCM";
  ReplyFrame reply;
  ASSERT_TRUE(h.replies.try_pop(reply));
  EXPECT_EQ(reply.length, eth::kArpReplyFrameSize);
}

TxConfig rndis_tx_config() {
  TxConfig c = ncm_tx_config();
  c.framing = Framing::rndis;
  c.rndis_out.max_transfer_size = 16384;
  c.rndis_out.max_packets_per_transfer = 2;  // INITIALIZE_CMPLT MaxPacketsPerTransfer
  c.rndis_out.packet_alignment_factor = 3;   // messages start at multiples of 8
  c.rndis_out.max_packet_size = 512;
  return c;
}

TEST(TxStageRndis, PacketsLeaveAsAlignedPacketMessagesWithinMaxPacketsPerTransfer) {
  TxHarness h(rndis_tx_config());
  h.state.set_modem_mac(kModemMac);
  const std::vector<ByteVector> packets = {ipv4_udp(10, 1), ipv4_udp(11, 2), ipv4_udp(0, 3)};
  for (const auto& p : packets) h.io.arriving.push_back(p);
  EXPECT_EQ(h.reap(), 3u);
  EXPECT_TRUE(h.tx.pump(false));
  ASSERT_EQ(h.out.sent.size(), 2u) << "two messages per transfer at most: the third goes in a second transfer";

  const ByteVector& t = h.out.sent[0];
  ASSERT_EQ(t.size(), 96u + 97u);
  // Message 0: MessageLength 96 (44 + a 52-byte frame, already a multiple of 8: no padding),
  // DataOffset 36, DataLength 52. Message 1 at 96: MessageLength 97, DataLength 53, not padded
  // (the last message of a transfer is never padded).
  EXPECT_EQ(ByteVector(t.begin(), t.begin() + 44), test::hex(packet_msg_header(96, 52)));
  EXPECT_EQ(ByteVector(t.begin() + 96, t.begin() + 140), test::hex(packet_msg_header(97, 53)));

  std::vector<ByteVector> frames;
  rndis::PacketCounters pc;
  for (const ByteVector& sent : h.out.sent) {
    rndis::CountingPacketSink sink{pc, [&](const rndis::FrameView& f) {
                                     frames.emplace_back(sent.begin() + static_cast<std::ptrdiff_t>(f.offset),
                                                         sent.begin() + static_cast<std::ptrdiff_t>(f.offset + f.length));
                                   }};
    pc.add(rndis::parse_packet_transfer(sent, sink));
  }
  ASSERT_EQ(frames.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i)
    EXPECT_EQ(frames[i], ethernet(kModemMac, kHostMac, eth::kEtherTypeIpv4, packets[i])) << "frame " << i;
  h.tx.publish();
  EXPECT_EQ(h.tx.counters().packets, 3u);
  EXPECT_EQ(h.tx.counters().ntbs, 2u);
}

TEST(TxStageRndis, ATransferOfExactlyWMaxPacketSizeGetsTheOneBytePadNeverAZlp) {
  TxHarness h(rndis_tx_config());
  h.state.set_modem_mac(kModemMac);
  h.io.arriving.push_back(ipv4_udp(512 - 44 - 14 - 28, 7));  // 44 + 14 + 454 = 512 bytes
  h.reap();
  h.tx.pump(false);
  ASSERT_EQ(h.out.sent.size(), 1u);
  ASSERT_EQ(h.out.sent[0].size(), 513u);
  EXPECT_EQ(h.out.sent[0].back(), 0u);
  EXPECT_EQ(ByteVector(h.out.sent[0].begin(), h.out.sent[0].begin() + 44), test::hex(packet_msg_header(512, 468)))
      << "the pad is outside MessageLength";
  h.tx.publish();
  EXPECT_EQ(h.tx.counters().padded, 1u);
}

TEST(TxStageRndis, AFrameLargerThanMaxTransferSizeIsDroppedAsTooLarge) {
  TxConfig c = rndis_tx_config();
  c.rndis_out.max_transfer_size = 600;  // a device that takes little
  TxHarness h(c);
  h.io.arriving.push_back(ipv4_udp(1000, 1));
  h.io.arriving.push_back(ipv4_udp(100, 2));
  h.reap();
  h.tx.pump(false);
  ASSERT_EQ(h.out.sent.size(), 1u);
  h.tx.publish();
  EXPECT_EQ(h.tx.counters().too_large, 1u);
  EXPECT_EQ(h.tx.counters().packets, 1u);
}

}  // namespace
}  // namespace wwan::dp
