// The TAP framing (datapath/framing.hpp ncm_tap, wwan-dp --tap): Ethernet frames pass between the
// NTBs and the TAP byte for byte, both ways. RX: a golden NTB16 (annotated field by field) whose
// datagrams the NCM framing would answer (ARP), divert (DHCP to the client) or strip (an 802.1Q
// tagged frame); in TAP mode each is written to the TAP unchanged, padding and tag included, from inside the
// NTB buffer. TX: frames the system's stack wrote to the TAP leave in an NTB unchanged, with no
// Ethernet header prepended; a read shorter than an Ethernet header is counted.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <deque>
#include <optional>
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

namespace wwan::dp {
namespace {

using ByteVector = std::vector<std::uint8_t>;

// ---- fakes (only what the two stages need) --------------------------------------------------------

// Writes complete at the next reap with their bytes as they are then; reads complete from
// `arriving`, the frames the system's stack wrote to the TAP.
class TapIo final : public PacketIo {
 public:
  struct Op {
    bool write;
    std::span<const std::uint8_t> out;
    std::span<std::uint8_t> in;
    std::uint64_t tag;
  };
  std::vector<Op> prepared, in_flight;
  std::deque<ByteVector> arriving;
  std::vector<ByteVector> written;
  std::vector<const std::uint8_t*> written_from;

  std::size_t free_slots() const override { return 1024 - prepared.size() - in_flight.size(); }
  bool prepare_write(std::span<const std::uint8_t> frame, std::uint64_t tag) override {
    prepared.push_back(Op{true, frame, {}, tag});
    return true;
  }
  bool prepare_read(std::span<std::uint8_t> buffer, std::uint64_t tag) override {
    prepared.push_back(Op{false, {}, buffer, tag});
    return true;
  }
  bool prepare_writev(const iovec*, unsigned, std::uint64_t) override {
    ADD_FAILURE() << "a writev (offload) in TAP mode";
    return false;
  }
  void submit() override {
    in_flight.insert(in_flight.end(), prepared.begin(), prepared.end());
    prepared.clear();
  }
  std::size_t reap(std::span<IoCompletion> out, int) override {
    std::size_t n = 0;
    for (auto it = in_flight.begin(); it != in_flight.end() && n < out.size();) {
      if (it->write) {
        written.emplace_back(it->out.begin(), it->out.end());
        written_from.push_back(it->out.data());
        out[n++] = IoCompletion{it->tag, static_cast<std::int32_t>(it->out.size())};
        it = in_flight.erase(it);
      } else if (!arriving.empty()) {
        const ByteVector f = arriving.front();
        arriving.pop_front();
        EXPECT_LE(f.size(), it->in.size()) << "a TAP read buffer too small for a frame";
        const std::size_t len = std::min(f.size(), it->in.size());
        std::copy_n(f.begin(), len, it->in.begin());
        out[n++] = IoCompletion{it->tag, static_cast<std::int32_t>(len)};
        it = in_flight.erase(it);
      } else {
        ++it;
      }
    }
    return n;
  }
  void cancel_all() override {}
  void wake() override {}
};

class TapInLink final : public InLink {
 public:
  std::vector<unsigned> released;
  void release(unsigned slot) override { released.push_back(slot); }
};

class TapOutLink final : public OutLink {
 public:
  std::array<ByteVector, 2> buffers{ByteVector(16384), ByteVector(16384)};
  std::array<bool, 2> free{true, true};
  std::vector<ByteVector> sent;
  std::optional<unsigned> acquire() override {
    for (unsigned i = 0; i < free.size(); ++i)
      if (free[i]) {
        free[i] = false;
        return i;
      }
    return std::nullopt;
  }
  std::span<std::uint8_t> buffer(unsigned slot) override { return buffers.at(slot); }
  bool submit(unsigned slot, std::size_t length) override {
    sent.emplace_back(buffers.at(slot).begin(), buffers.at(slot).begin() + static_cast<std::ptrdiff_t>(length));
    return true;
  }
  void give_back(unsigned slot) override { free.at(slot) = true; }
  std::size_t max_packet_bytes() const override { return 512; }
};

void reap_into(TapIo& io, RxStage* rx, TxStage* tx) {
  std::array<IoCompletion, 64> c{};
  io.submit();
  const std::size_t n = io.reap(c, 0);
  for (std::size_t i = 0; i < n; ++i) {
    if ((c[i].tag & kTagStageMask) == kRxWriteTag && rx != nullptr) rx->on_completion(c[i]);
    if ((c[i].tag & kTagStageMask) == kTxReadTag && tx != nullptr) tx->on_completion(c[i]);
  }
}

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
  TapIo io;
  TapInLink in;
  LinkState state;
  // An address, so that NCM mode would answer the ARP: TAP mode must not.
  state.set_host_addresses(HostAddresses{eth::Ipv4Address{{10, 64, 64, 2}}, {}});
  ReplyRing replies(8);
  RxStage rx(rx_config(Framing::ncm_tap), io, in, state, &replies, &io);
  ASSERT_TRUE(rx.post(RxBuffer{ntb.data(), static_cast<std::uint32_t>(ntb.size()), 1}));
  EXPECT_TRUE(rx.pump());
  reap_into(io, &rx, nullptr);

  ASSERT_EQ(io.written.size(), 3u);
  EXPECT_EQ(io.written[0], kArpFromModem);
  EXPECT_EQ(io.written[1], kDhcpFromModem) << "the Ethernet padding stays: the frame is unchanged";
  EXPECT_EQ(io.written[2], kTaggedFromModem);
  EXPECT_EQ(io.written_from[0], ntb.data() + 36) << "written from inside the NTB buffer, not a copy";
  EXPECT_EQ(io.written_from[1], ntb.data() + 78);
  EXPECT_EQ(io.written_from[2], ntb.data() + 138);
  EXPECT_THAT(in.released, ::testing::ElementsAre(1u));

  ReplyFrame reply;
  EXPECT_FALSE(replies.try_pop(reply)) << "the system's stack answers ARP on a TAP";
  ControlPacket control;
  EXPECT_FALSE(rx.control_packets().try_pop(control)) << "the system's DHCP client gets the reply";
  rx.publish();
  const RxCounters c = rx.counters();
  EXPECT_EQ(c.packets, 3u);
  EXPECT_EQ(c.bytes, 42u + 60u + 38u);
  EXPECT_EQ(c.ntb.datagrams, 3u);
  EXPECT_EQ(c.arp_replies, 0u);
  EXPECT_EQ(c.control_diverted, 0u);
  EXPECT_EQ(c.padding_trimmed, 0u);
  EXPECT_EQ(c.dropped(), 0u);
  EXPECT_FALSE(state.modem_mac().is_unicast()) << "no MAC learning: nothing in TAP mode uses it";
}

// The same NTB through the NCM framing: what the TAP row turns off (so the test above can fail).
TEST(TapFraming, TheNcmFramingWouldHaveAnsweredDivertedAndDroppedThem) {
  const ByteVector ntb = golden_ntb();
  TapIo io;
  TapInLink in;
  LinkState state;
  state.set_host_addresses(HostAddresses{eth::Ipv4Address{{10, 64, 64, 2}}, {}});
  ReplyRing replies(8);
  RxStage rx(rx_config(Framing::ncm), io, in, state, &replies, &io);
  ASSERT_TRUE(rx.post(RxBuffer{ntb.data(), static_cast<std::uint32_t>(ntb.size()), 0}));
  rx.pump();
  reap_into(io, &rx, nullptr);
  // Only the tagged frame's IP packet reaches the "TUN", without its Ethernet header and tag.
  ASSERT_EQ(io.written.size(), 1u);
  EXPECT_EQ(io.written[0], ByteVector(kTaggedFromModem.begin() + 18, kTaggedFromModem.end()));
  rx.publish();
  const RxCounters c = rx.counters();
  EXPECT_EQ(c.arp_replies, 1u);
  EXPECT_EQ(c.control_diverted, 1u);
  ReplyFrame reply;
  EXPECT_TRUE(replies.try_pop(reply));
}

TEST(TapFraming, OffloadIsRefusedOnATap) {
  TapIo io;
  TapInLink in;
  TapOutLink out;
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

struct ParsedNtb {
  std::vector<ntb::DatagramView> views;
  std::vector<ntb::NtbError> errors;
  void datagram(const ntb::DatagramView& d) { views.push_back(d); }
  void error(std::uint32_t, ntb::NtbError e) { errors.push_back(e); }
};

TEST(TapFraming, TxPutsEveryFrameFromTheTapIntoTheNtbByteForByte) {
  TapIo io;
  TapOutLink out;
  LinkState state;
  state.set_modem_mac(kModemMac);  // would be the destination in NCM mode; unused here
  TxStage tx(tx_config(), io, out, state);
  tx.start();
  const ByteVector tagged = largest_tagged_frame();
  ASSERT_EQ(tagged.size(), 14u + 4u + 1500u);
  io.arriving = {kArpFromHost, ByteVector(10, 0xEE) /* a runt */, tagged};
  reap_into(io, nullptr, &tx);
  EXPECT_TRUE(tx.pump(false));

  ASSERT_EQ(out.sent.size(), 1u);
  const ByteVector& ntb = out.sent[0];
  ParsedNtb parsed;
  (void)ntb::parse_transfer(ntb, ntb::ParseOptions{ntb::FunctionKind::Ncm, false}, parsed);
  EXPECT_TRUE(parsed.errors.empty());
  ASSERT_EQ(parsed.views.size(), 2u);
  const auto datagram = [&](std::size_t i) {
    return ByteVector(ntb.begin() + static_cast<std::ptrdiff_t>(parsed.views[i].offset),
                      ntb.begin() + static_cast<std::ptrdiff_t>(parsed.views[i].offset + parsed.views[i].length));
  };
  EXPECT_EQ(datagram(0), kArpFromHost) << "an ARP request is sent as the kernel wrote it";
  EXPECT_EQ(datagram(1), tagged) << "no Ethernet header prepended, the VLAN tag kept";
  tx.publish();
  const TxCounters c = tx.counters();
  EXPECT_EQ(c.tun_reads, 3u);
  EXPECT_EQ(c.packets, 2u);
  EXPECT_EQ(c.bytes, kArpFromHost.size() + tagged.size());
  EXPECT_EQ(c.too_short, 1u);
  EXPECT_EQ(c.not_ip, 0u) << "ARP is not 'not IP' on a TAP";
  EXPECT_EQ(c.dropped(), 1u);
}

}  // namespace
}  // namespace wwan::dp
