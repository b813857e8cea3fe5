// The TAP framing (datapath/framing.hpp ncm_tap, wwan-dp --tap): Ethernet frames pass between the
// NTBs and the TAP byte for byte, both ways. RX: a golden NTB16 (annotated field by field) whose
// datagrams the NCM framing would answer (ARP), divert (DHCP to the client) or strip (an 802.1Q
// tagged frame); in TAP mode each is written to the TAP unchanged, padding and tag included, from inside the
// NTB buffer. TX: frames the system's stack wrote to the TAP leave in an NTB unchanged, with no
// Ethernet header prepended; a read shorter than an Ethernet header is counted.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <stdexcept>
#include <vector>

#include "datapath/ethernet.hpp"
#include "datapath/framing.hpp"
#include "datapath/link_state.hpp"
#include "datapath/links.hpp"
#include "datapath/ntb_parse.hpp"
#include "datapath/packet_io.hpp"
#include "datapath/rx_path.hpp"
#include "datapath/tx_path.hpp"
#include "tests/datapath/stage_harness.hpp"

namespace wwan::dp {
namespace {

using stage_test::ByteVector;
using stage_test::FakeInLink;
using stage_test::FakeIo;
using stage_test::FakeOutLink;
using stage_test::parse_ntb;
using stage_test::ParsedNtb;
using stage_test::RxHarness;
using stage_test::TxHarness;

// ---- golden frames ----------------------------------------------------------------------------------

constexpr eth::MacAddress kModemMac{{0x00, 0x1e, 0x10, 0x1f, 0x00, 0x00}};
constexpr eth::MacAddress kHostMac{{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}};

// Modem -> host: who has 10.64.64.2? (RFC 826). 42 bytes. In NCM mode wwan-dp answers it.
const ByteVector kArpFromModem = {
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff,  // destination: broadcast
    0x00, 0x1e, 0x10, 0x1f, 0x00, 0x00,  // source: the modem
    0x08, 0x06,                          // EtherType ARP
    0x00, 0x01, 0x08, 0x00, 0x06, 0x04,  // htype Ethernet, ptype IPv4, hlen 6, plen 4
    0x00, 0x01,                          // oper: request
    0x00, 0x1e, 0x10, 0x1f, 0x00, 0x00,  // sender hardware address
    0x0a, 0x40, 0x40, 0x01,              // sender protocol address 10.64.64.1
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // target hardware address: unknown
    0x0a, 0x40, 0x40, 0x02,              // target protocol address 10.64.64.2
};

// Modem -> host: the start of a DHCP reply, UDP 67 -> 68 (RFC 2131 §4.1), then Ethernet padding to
// the 60-byte minimum. 60 bytes. In NCM mode wwan-dp diverts it to its own DHCP client.
const ByteVector kDhcpFromModem = {
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff,  // destination: broadcast
    0x00, 0x1e, 0x10, 0x1f, 0x00, 0x00,  // source: the modem
    0x08, 0x00,                          // EtherType IPv4
    0x45, 0x00, 0x00, 0x20,              // version 4, IHL 5, DSCP 0, total length 32
    0x00, 0x01, 0x00, 0x00,              // identification 1, no fragment
    0x40, 0x11, 0x00, 0x00,              // TTL 64, protocol UDP, checksum (not checked here)
    0x0a, 0x40, 0x40, 0x01,              // source 10.64.64.1
    0xff, 0xff, 0xff, 0xff,              // destination 255.255.255.255
    0x00, 0x43, 0x00, 0x44,              // UDP source port 67 (server), destination port 68 (client)
    0x00, 0x0c, 0x00, 0x00,              // UDP length 12, checksum none
    0x02, 0x01, 0x06, 0x00,              // op BOOTREPLY, htype 1, hlen 6, hops 0
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // Ethernet padding (14 bytes)
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};

// Modem -> host, VLAN 100 (IEEE 802.1Q tag): an IPv4 header of protocol 253 (RFC 3692,
// experimentation). 38 bytes. In NCM mode the tag and the Ethernet header are stripped.
const ByteVector kTaggedFromModem = {
    0x02, 0x00, 0x00, 0x00, 0x00, 0x02,  // destination: the host
    0x00, 0x1e, 0x10, 0x1f, 0x00, 0x00,  // source: the modem
    0x81, 0x00, 0x00, 0x64,              // TPID 802.1Q, PCP 0 DEI 0 VID 100
    0x08, 0x00,                          // EtherType IPv4
    0x45, 0x00, 0x00, 0x14,              // version 4, IHL 5, total length 20
    0x00, 0x02, 0x00, 0x00,              // identification 2
    0x40, 0xfd, 0x00, 0x00,              // TTL 64, protocol 253, checksum (not checked here)
    0x0a, 0x40, 0x40, 0x01,              // source 10.64.64.1
    0x0a, 0x40, 0x40, 0x02,              // destination 10.64.64.2
};

// One NTB16 (NCM 1.0 §3.2.1, §3.3.1) carrying the three frames back to back: 176 bytes.
ByteVector golden_ntb() {
  ByteVector ntb = {
      // NTH16
      0x4e, 0x43, 0x4d, 0x48,  // dwSignature "NCMH"
      0x0c, 0x00,              // wHeaderLength 12
      0x00, 0x00,              // wSequence 0
      0xb0, 0x00,              // wBlockLength 176
      0x0c, 0x00,              // wNdpIndex 12
      // NDP16 at 12
      0x4e, 0x43, 0x4d, 0x30,  // dwSignature "NCM0" (no CRC)
      0x18, 0x00,              // wLength 24: header 8 + 3 entries + the terminating null entry
      0x00, 0x00,              // wNextNdpIndex: none
      0x24, 0x00, 0x2a, 0x00,  // datagram 0: wDatagramIndex 36, wDatagramLength 42 (ARP)
      0x4e, 0x00, 0x3c, 0x00,  // datagram 1: index 78, length 60 (DHCP + padding)
      0x8a, 0x00, 0x26, 0x00,  // datagram 2: index 138, length 38 (802.1Q)
      0x00, 0x00, 0x00, 0x00,  // terminator
  };
  for (const ByteVector* f : {&kArpFromModem, &kDhcpFromModem, &kTaggedFromModem})
    ntb.insert(ntb.end(), f->begin(), f->end());
  return ntb;
}

RxConfig rx_config(Framing framing) {
  RxConfig c;
  c.framing = framing;
  c.transfer_bytes = 16384;
  c.in_slots = 2;
  c.ring_capacity = 2;
  c.our_mac = kHostMac;
  c.divert_control = true;  // what the daemon sets; TAP mode must not divert anyway
  return c;
}

// ---- RX --------------------------------------------------------------------------------------------

TEST(TapFraming, TheRowPassesEthernetThroughOnNcmNtbs) {
  const FramingRow& row = framing_row(Framing::ncm_tap);
  EXPECT_TRUE(row.passthrough);
  EXPECT_TRUE(row.ntb);
  EXPECT_EQ(row.ntb_function, ntb::FunctionKind::Ncm);
  EXPECT_TRUE(row.ethernet);
  EXPECT_FALSE(framing_row(Framing::ncm).passthrough);
}

TEST(TapFraming, RxWritesEveryFrameOfTheNtbToTheTapByteForByte) {
  const ByteVector ntb = golden_ntb();
  ASSERT_EQ(ntb.size(), 176u);
  RxHarness h(rx_config(Framing::ncm_tap), /*with_replies=*/true);
  // An address, so that NCM mode would answer the ARP: TAP mode must not.
  h.state.set_host_addresses(HostAddresses{eth::Ipv4Address{{10, 64, 64, 2}}, {}});
  ASSERT_TRUE(h.post(ntb, 1));
  EXPECT_TRUE(h.rx.pump());
  h.reap();

  ASSERT_EQ(h.io.written.size(), 3u);
  EXPECT_EQ(h.io.writevs, 0u) << "a writev (offload) in TAP mode";
  EXPECT_EQ(h.io.written[0], kArpFromModem);
  EXPECT_EQ(h.io.written[1], kDhcpFromModem) << "the Ethernet padding stays: the frame is unchanged";
  EXPECT_EQ(h.io.written[2], kTaggedFromModem);
  EXPECT_EQ(h.io.written_from[0], ntb.data() + 36) << "written from inside the NTB buffer, not a copy";
  EXPECT_EQ(h.io.written_from[1], ntb.data() + 78);
  EXPECT_EQ(h.io.written_from[2], ntb.data() + 138);
  EXPECT_THAT(h.in.released, ::testing::ElementsAre(1u));

  ReplyFrame reply;
  EXPECT_FALSE(h.replies.try_pop(reply)) << "the system's stack answers ARP on a TAP";
  ControlPacket control;
  EXPECT_FALSE(h.rx.control_packets().try_pop(control)) << "the system's DHCP client gets the reply";
  h.rx.publish();
  const RxCounters c = h.rx.counters();
  EXPECT_EQ(c.packets, 3u);
  EXPECT_EQ(c.bytes, 42u + 60u + 38u);
  EXPECT_EQ(c.ntb.datagrams, 3u);
  EXPECT_EQ(c.arp_replies, 0u);
  EXPECT_EQ(c.control_diverted, 0u);
  EXPECT_EQ(c.padding_trimmed, 0u);
  EXPECT_EQ(c.dropped(), 0u);
  EXPECT_FALSE(h.state.modem_mac().is_unicast()) << "no MAC learning: nothing in TAP mode uses it";
}

// The same NTB through the NCM framing: what the TAP row turns off (so the test above can fail).
TEST(TapFraming, TheNcmFramingWouldHaveAnsweredDivertedAndDroppedThem) {
  const ByteVector ntb = golden_ntb();
  RxHarness h(rx_config(Framing::ncm), /*with_replies=*/true);
  h.state.set_host_addresses(HostAddresses{eth::Ipv4Address{{10, 64, 64, 2}}, {}});
  ASSERT_TRUE(h.post(ntb, 0));
  h.rx.pump();
  h.reap();
  // Only the tagged frame's IP packet reaches the "TUN", without its Ethernet header and tag.
  ASSERT_EQ(h.io.written.size(), 1u);
  EXPECT_EQ(h.io.writevs, 0u) << "a writev (offload) without a virtio_net_hdr";
  EXPECT_EQ(h.io.written[0], ByteVector(kTaggedFromModem.begin() + 18, kTaggedFromModem.end()));
  h.rx.publish();
  const RxCounters c = h.rx.counters();
  EXPECT_EQ(c.arp_replies, 1u);
  EXPECT_EQ(c.control_diverted, 1u);
  ReplyFrame reply;
  EXPECT_TRUE(h.replies.try_pop(reply));
}

TEST(TapFraming, OffloadIsRefusedOnATap) {
  FakeIo io;
  FakeInLink in;
  FakeOutLink out(2, 16384);
  LinkState state;
  RxConfig rc = rx_config(Framing::ncm_tap);
  rc.vnet_hdr = true;
  EXPECT_THROW(RxStage(rc, io, in, state, nullptr, nullptr), std::invalid_argument);
  TxConfig tc;
  tc.framing = Framing::ncm_tap;
  tc.vnet_hdr = true;
  EXPECT_THROW(TxStage(tc, io, out, state), std::invalid_argument);
}

// ---- TX --------------------------------------------------------------------------------------------

// Host -> modem, written by the kernel's ARP on the TAP: who has 10.64.64.1? 42 bytes.
const ByteVector kArpFromHost = {
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff,  // destination: broadcast
    0x02, 0x00, 0x00, 0x00, 0x00, 0x02,  // source: the TAP's MAC
    0x08, 0x06,                          // EtherType ARP
    0x00, 0x01, 0x08, 0x00, 0x06, 0x04,  // htype Ethernet, ptype IPv4, hlen 6, plen 4
    0x00, 0x01,                          // oper: request
    0x02, 0x00, 0x00, 0x00, 0x00, 0x02,  // sender hardware address
    0x0a, 0x40, 0x40, 0x02,              // sender protocol address 10.64.64.2
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // target hardware address: unknown
    0x0a, 0x40, 0x40, 0x01,              // target protocol address 10.64.64.1
};

// Host -> modem on VLAN 100, the largest frame a TAP of MTU 1500 gives: header 14 + tag 4 +
// 1500 bytes of IPv4 (total length 1500, protocol 253, the rest a counting pattern).
ByteVector largest_tagged_frame() {
  ByteVector f = {
      0x00, 0x1e, 0x10, 0x1f, 0x00, 0x00,  // destination: the modem
      0x02, 0x00, 0x00, 0x00, 0x00, 0x02,  // source: the TAP's MAC
      0x81, 0x00, 0x00, 0x64,              // 802.1Q, VID 100
      0x08, 0x00,                          // EtherType IPv4
      0x45, 0x00, 0x05, 0xdc,              // version 4, IHL 5, total length 1500
      0x00, 0x03, 0x00, 0x00, 0x40, 0xfd, 0x00, 0x00,  // id 3, TTL 64, protocol 253
      0x0a, 0x40, 0x40, 0x02, 0x0a, 0x40, 0x40, 0x01,  // 10.64.64.2 -> 10.64.64.1
  };
  for (std::size_t i = 20; i < 1500; ++i) f.push_back(static_cast<std::uint8_t>(i));
  return f;
}

TxConfig tx_config() {
  TxConfig c;
  c.framing = Framing::ncm_tap;
  c.out.format = ntb::NtbFormat::Ntb16;
  c.out.ntb_out_max_size = 16384;
  c.signature = {ntb::NtbFormat::Ntb16, ntb::DatagramKind::Ncm, 0};
  c.our_mac = kHostMac;
  c.mtu_bytes = 1500;
  c.reads_in_flight = 4;
  c.out_slots = 2;
  return c;
}

TEST(TapFraming, TxPutsEveryFrameFromTheTapIntoTheNtbByteForByte) {
  TxHarness h(tx_config());
  h.state.set_modem_mac(kModemMac);  // would be the destination in NCM mode; unused here
  const ByteVector tagged = largest_tagged_frame();
  ASSERT_EQ(tagged.size(), 14u + 4u + 1500u);
  h.io.arriving = {kArpFromHost, ByteVector(10, 0xEE) /* a runt */, tagged};
  h.reap();
  EXPECT_TRUE(h.tx.pump(false));

  ASSERT_EQ(h.out.sent.size(), 1u);
  EXPECT_TRUE(h.io.written.empty()) << "TX writes nothing to the TAP";
  const ParsedNtb parsed = parse_ntb(h.out.sent[0], ntb::FunctionKind::Ncm);
  EXPECT_TRUE(parsed.errors.empty());
  ASSERT_EQ(parsed.datagrams.size(), 2u);
  EXPECT_EQ(parsed.datagrams[0], kArpFromHost) << "an ARP request is sent as the kernel wrote it";
  EXPECT_EQ(parsed.datagrams[1], tagged) << "no Ethernet header prepended, the VLAN tag kept";
  h.tx.publish();
  const TxCounters c = h.tx.counters();
  EXPECT_EQ(c.tun_reads, 3u);
  EXPECT_EQ(c.packets, 2u);
  EXPECT_EQ(c.bytes, kArpFromHost.size() + tagged.size());
  EXPECT_EQ(c.too_short, 1u);
  EXPECT_EQ(c.not_ip, 0u) << "ARP is not 'not IP' on a TAP";
  EXPECT_EQ(c.dropped(), 1u);
}

}  // namespace
}  // namespace wwan::dp
