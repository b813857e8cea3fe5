// NTB parser tests. Every case of ../shared/reference/anchors.md §5 that concerns RX has a named
// test here (the #N in each comment). NTBs are written by hand with a byte writer that knows
// nothing of the parser or the builder, field by field, so a shared misunderstanding of the
// layout cannot make both sides agree.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "datapath/crc32.hpp"
#include "datapath/ntb_parse.hpp"

namespace wwan::ntb {
namespace {

using ::testing::ElementsAre;

// ---- a dumb little-endian writer ------------------------------------------------------------
struct Wire {
  std::vector<std::uint8_t> b;
  Wire& u8(std::uint8_t v) { b.push_back(v); return *this; }
  Wire& le16(std::uint32_t v) { return u8(static_cast<std::uint8_t>(v)).u8(static_cast<std::uint8_t>(v >> 8)); }
  Wire& le32(std::uint32_t v) { return le16(v & 0xFFFF).le16(v >> 16); }
  Wire& fill(std::size_t n, std::uint8_t v = 0) { b.insert(b.end(), n, v); return *this; }
  Wire& bytes(const std::vector<std::uint8_t>& v) { b.insert(b.end(), v.begin(), v.end()); return *this; }
  Wire& pad_to(std::size_t off) { if (b.size() < off) fill(off - b.size()); return *this; }
  void put16(std::size_t off, std::uint16_t v) { b[off] = static_cast<std::uint8_t>(v); b[off + 1] = static_cast<std::uint8_t>(v >> 8); }
  std::size_t size() const { return b.size(); }
};

std::vector<std::uint8_t> from_hex(const std::string& hex) {
  std::vector<std::uint8_t> out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<std::uint8_t>(std::stoul(hex.substr(i, 2), nullptr, 16)));
  return out;
}

// An Ethernet-looking frame of `n` bytes whose bytes encode `tag` so datagrams can be told apart.
std::vector<std::uint8_t> frame(std::size_t n, std::uint8_t tag) {
  std::vector<std::uint8_t> f(n);
  for (std::size_t i = 0; i < n; ++i) f[i] = static_cast<std::uint8_t>(tag + i);
  return f;
}

// ---- a recording sink -------------------------------------------------------------------------
struct Got {
  std::uint64_t offset;
  std::uint32_t length;
  std::uint32_t ntb;
  NtbFormat format;
  DatagramKind kind;
  std::uint8_t session;
  bool operator==(const Got&) const = default;
};
std::ostream& operator<<(std::ostream& os, const Got& g) {
  return os << "{off " << g.offset << " len " << g.length << " ntb " << g.ntb << " fmt "
            << static_cast<int>(g.format) << " " << to_string(g.kind) << " s" << int{g.session} << "}";
}

struct Recorder {
  std::vector<Got> datagrams;
  std::vector<std::string> errors;  // "ntb:reason"
  std::vector<NtbInfo> ntbs;
  void datagram(const DatagramView& d) {
    datagrams.push_back({d.offset, d.length, d.ntb, d.format, d.kind, d.session});
  }
  void error(std::uint32_t ntb, NtbError e) { errors.push_back(std::to_string(ntb) + ":" + to_string(e)); }
  void ntb(const NtbInfo& i) { ntbs.push_back(i); }
};

Recorder parse(const std::vector<std::uint8_t>& xfer, ParseOptions opt = {}) {
  Recorder r;
  // Parse from an exactly-sized heap copy so that ASan flags any read past the end.
  std::vector<std::uint8_t> exact(xfer);
  exact.shrink_to_fit();
  const TransferSummary s = parse_transfer(Bytes(exact), opt, r);
  EXPECT_EQ(s.datagrams, r.datagrams.size());
  EXPECT_EQ(s.errors, r.errors.size());
  EXPECT_EQ(s.ntbs, r.ntbs.size());
  return r;
}

constexpr auto F16 = NtbFormat::Ntb16;
constexpr auto F32 = NtbFormat::Ntb32;
constexpr auto NCM = DatagramKind::Ncm;

// NTH16 {sig, wHeaderLength, wSequence, wBlockLength, wNdpIndex}
Wire& nth16(Wire& w, std::uint16_t block, std::uint16_t ndp, std::uint16_t seq = 0, std::uint16_t hlen = 12) {
  return w.le32(kNth16Signature).le16(hlen).le16(seq).le16(block).le16(ndp);
}
// NTH32 {sig, wHeaderLength, wSequence, dwBlockLength, dwNdpIndex}
Wire& nth32(Wire& w, std::uint32_t block, std::uint32_t ndp, std::uint16_t seq = 0) {
  return w.le32(kNth32Signature).le16(16).le16(seq).le32(block).le32(ndp);
}
// NDP16 {sig, wLength, wNextNdpIndex} + {wDatagramIndex, wDatagramLength}... + null
Wire& ndp16(Wire& w, std::uint32_t sig, std::vector<std::pair<std::uint16_t, std::uint16_t>> dpes,
            std::uint16_t next = 0, bool null_entry = true) {
  const auto n = dpes.size() + (null_entry ? 1 : 0);
  w.le32(sig).le16(static_cast<std::uint16_t>(8 + 4 * n)).le16(next);
  for (auto [i, l] : dpes) w.le16(i).le16(l);
  if (null_entry) w.le16(0).le16(0);
  return w;
}
// NDP32 {sig, wLength, wReserved6, dwNextNdpIndex, dwReserved12} + {dwIndex, dwLength}... + null
Wire& ndp32(Wire& w, std::uint32_t sig, std::vector<std::pair<std::uint32_t, std::uint32_t>> dpes,
            std::uint32_t next = 0) {
  w.le32(sig).le16(static_cast<std::uint16_t>(16 + 8 * (dpes.size() + 1))).le16(0).le32(next).le32(0);
  for (auto [i, l] : dpes) w.le32(i).le32(l);
  return w.le32(0).le32(0);
}

// ================================ real device vectors =========================================

// vectors/ncm_ntb.md N1: Vodafone K5160 (Huawei OEM) in MBIM mode, a real bulk-IN transfer.
// NTB32 with an ips0 NDP whose only datagram is an ARP request without an Ethernet header.
const char* kK5160 =
    "6e636d68"  // NTH32 dwSignature "ncmh"
    "1000"      // wHeaderLength 16
    "0000"      // wSequence 0
    "62000000"  // dwBlockLength 98
    "10000000"  // dwNdpIndex 16
    "69707300"  // NDP32 dwSignature "ips" + session 0
    "2000"      // wLength 32
    "0000"      // wReserved6
    "00000000"  // dwNextNdpIndex 0
    "00000000"  // dwReserved12
    "32000000" "2e000000"  // dpe32[0]: index 50, length 46
    "00000000" "00000000"  // dpe32[1]: null terminator
    "0000"                 // padding to 50
    "0001080006040001" "4c549945e5d5" "4f666e96" "000000000000" "4f666e95"  // ARP request
    "000000000000000000000000000000000000"                                   // 18 pad bytes
    "0000";  // 2 bytes inside dwBlockLength after the datagram (98 = 50 + 46 + 2)

TEST(NtbParseReal, K5160Ntb32Ips0DeliversOneDatagram) {
  const auto r = parse(from_hex(kK5160), {.function = FunctionKind::Mbim});
  EXPECT_THAT(r.errors, ElementsAre());
  EXPECT_THAT(r.datagrams, ElementsAre(Got{50, 46, 0, F32, DatagramKind::Ips, 0}));
  ASSERT_EQ(r.ntbs.size(), 1u);
  EXPECT_EQ(r.ntbs[0].block_length, 98u);
}

TEST(NtbParseReal, K5160InNcmModeIsCountedNotDelivered) {
  const auto r = parse(from_hex(kK5160), {.function = FunctionKind::Ncm});
  EXPECT_THAT(r.datagrams, ElementsAre());
  EXPECT_THAT(r.errors, ElementsAre("0:ndp_mbim_in_ncm"));
}

// vectors/ncm_ntb.md N2: Huawei E3372 (Telekom Speedstick V) NTB16 header, the modem ARPing the
// host. Bytes 28-29 and the payload were not in the post; block length 94 leaves 4 trailing
// bytes after the datagram inside the block, which must be tolerated.
TEST(NtbParseReal, E3372Ntb16NdpAfterNthWithTrailingBytes) {
  Wire w;
  nth16(w, 94, 12);                        // "NCMH", hdr 12, seq 0, block 94, ndp @12
  ndp16(w, kNdp16NoCrcSignature, {{30, 60}});  // "NCM0", len 16, next 0, (30,60), (0,0)
  w.pad_to(30).bytes(frame(60, 0xff)).fill(4);
  ASSERT_EQ(w.size(), 94u);
  const auto r = parse(w.b);
  EXPECT_THAT(r.errors, ElementsAre());
  EXPECT_THAT(r.datagrams, ElementsAre(Got{30, 60, 0, F16, NCM, 0}));
}

// ============================== anchors.md §5, case by case ===================================

// #1: wBlockLength 0 means "terminated by a short packet", i.e. the rest of the transfer.
TEST(NtbParseEdge, BlockLengthZeroMeansRestOfTransferNtb16) {
  Wire w;
  nth16(w, 0, 12);
  ndp16(w, kNdp16NoCrcSignature, {{28, 100}});
  w.pad_to(28).bytes(frame(100, 1));
  const auto r = parse(w.b);
  EXPECT_THAT(r.errors, ElementsAre());
  EXPECT_THAT(r.datagrams, ElementsAre(Got{28, 100, 0, F16, NCM, 0}));
  EXPECT_EQ(r.ntbs.at(0).block_length, w.size());
}

TEST(NtbParseEdge, BlockLengthZeroMeansRestOfTransferNtb32) {
  Wire w;
  nth32(w, 0, 16);
  ndp32(w, kNdp32NoCrcSignature, {{48, 64}});
  w.bytes(frame(64, 1));
  const auto r = parse(w.b);
  EXPECT_THAT(r.errors, ElementsAre());
  EXPECT_THAT(r.datagrams, ElementsAre(Got{48, 64, 0, F32, NCM, 0}));
}

// #2: several NTBs back to back in one transfer; the kernel parses only the first.
// #10: each NTB's format comes from its own signature, so NTH16 then NTH32 both parse.
TEST(NtbParseEdge, SeveralNtbsInOneTransferEachWithItsOwnFormat) {
  Wire w;
  nth16(w, 60, 12, /*seq*/ 7);
  ndp16(w, kNdp16NoCrcSignature, {{28, 32}});
  w.pad_to(28).bytes(frame(32, 1));
  ASSERT_EQ(w.size(), 60u);
  nth32(w, 0, 16, /*seq*/ 8);  // second NTB: offsets inside it are relative to its own NTH
  ndp32(w, kNdp32NoCrcSignature, {{56, 20}, {76, 30}});  // NDP32 at 16..56
  w.bytes(frame(20, 2)).bytes(frame(30, 3));
  const auto r = parse(w.b);
  EXPECT_THAT(r.errors, ElementsAre());
  EXPECT_THAT(r.datagrams, ElementsAre(Got{28, 32, 0, F16, NCM, 0}, Got{60 + 56, 20, 1, F32, NCM, 0},
                                       Got{60 + 76, 30, 1, F32, NCM, 0}));
  ASSERT_EQ(r.ntbs.size(), 2u);
  EXPECT_EQ(r.ntbs[1].offset, 60u);
  EXPECT_EQ(r.ntbs[0].sequence, 7);
  EXPECT_EQ(r.ntbs[1].sequence, 8);
}

// #3: Linux pads to tx_max with zeros, Windows adds a single zero byte: silent.
TEST(NtbParseEdge, ZeroPaddingAfterTheLastNtbIsSilent) {
  for (std::size_t pad : {1u, 3u, 4u, 500u}) {
    Wire w;
    nth16(w, 48, 12);
    ndp16(w, kNdp16NoCrcSignature, {{28, 20}});
    w.pad_to(28).bytes(frame(20, 1)).fill(pad);
    const auto r = parse(w.b);
    EXPECT_THAT(r.errors, ElementsAre()) << pad;
    EXPECT_EQ(r.datagrams.size(), 1u);
  }
}

TEST(NtbParseEdge, NonZeroBytesAfterTheLastNtbAreCountedAsTrailingGarbage) {
  Wire w;
  nth16(w, 48, 12);
  ndp16(w, kNdp16NoCrcSignature, {{28, 20}});
  w.pad_to(28).bytes(frame(20, 1)).fill(7, 0x5a);
  const auto r = parse(w.b);
  EXPECT_THAT(r.errors, ElementsAre("1:trailing_garbage"));
  EXPECT_EQ(r.datagrams.size(), 1u);  // the good NTB is kept
}

// #4: NDP after the datagrams (Huawei builds it so, Windows always does).
TEST(NtbParseEdge, NdpAtTheEndOfTheBlock) {
  Wire w;
  nth16(w, 0, 0);
  w.bytes(frame(40, 1)).bytes(frame(24, 2));  // datagrams at 12 and 52
  const std::size_t ndp_at = w.size();        // 76
  ndp16(w, kNdp16NoCrcSignature, {{12, 40}, {52, 24}});
  w.put16(10, static_cast<std::uint16_t>(ndp_at));
  const auto r = parse(w.b);
  EXPECT_THAT(r.errors, ElementsAre());
  EXPECT_THAT(r.datagrams, ElementsAre(Got{12, 40, 0, F16, NCM, 0}, Got{52, 24, 0, F16, NCM, 0}));
}

// #5: NDP between datagrams (macOS hosts; zephyr #81960).
TEST(NtbParseEdge, NdpBetweenDatagrams) {
  Wire w;
  nth16(w, 0, 40);
  w.bytes(frame(28, 1));  // datagram A at 12..40
  ndp16(w, kNdp16NoCrcSignature, {{12, 28}, {60, 16}});  // NDP at 40..60
  w.bytes(frame(16, 2));  // datagram B at 60
  const auto r = parse(w.b);
  EXPECT_THAT(r.errors, ElementsAre());
  EXPECT_THAT(r.datagrams, ElementsAre(Got{12, 28, 0, F16, NCM, 0}, Got{60, 16, 0, F16, NCM, 0}));
}

// #6: NDP chains are followed in order.
TEST(NtbParseEdge, NdpChainIsFollowed) {
  Wire w;
  nth16(w, 0, 12);
  ndp16(w, kNdp16NoCrcSignature, {{44, 20}}, /*next*/ 28);  // 12..28
  ndp16(w, kNdp16NoCrcSignature, {{64, 16}});               // 28..44
  w.bytes(frame(20, 1)).bytes(frame(16, 2));
  const auto r = parse(w.b);
  EXPECT_THAT(r.errors, ElementsAre());
  EXPECT_THAT(r.datagrams, ElementsAre(Got{44, 20, 0, F16, NCM, 0}, Got{64, 16, 0, F16, NCM, 0}));
}

TEST(NtbParseEdge, NdpChainLoopIsDetectedAfterDeliveringEachNdpOnce) {
  Wire w;
  nth16(w, 0, 12);
  ndp16(w, kNdp16NoCrcSignature, {{44, 20}}, /*next*/ 28);
  ndp16(w, kNdp16NoCrcSignature, {{64, 16}}, /*next*/ 12);  // back to the first
  w.bytes(frame(20, 1)).bytes(frame(16, 2));
  const auto r = parse(w.b);
  EXPECT_THAT(r.errors, ElementsAre("0:ndp_chain_loop"));
  EXPECT_EQ(r.datagrams.size(), 2u);
}

TEST(NtbParseEdge, NdpPointingAtItselfIsALoop) {
  Wire w;
  nth16(w, 0, 12);
  ndp16(w, kNdp16NoCrcSignature, {{28, 20}}, /*next*/ 12);
  w.bytes(frame(20, 1));
  const auto r = parse(w.b);
  EXPECT_THAT(r.errors, ElementsAre("0:ndp_chain_loop"));
  EXPECT_EQ(r.datagrams.size(), 1u);
}

TEST(NtbParseEdge, NdpChainLongerThanTheBoundIsCut) {
  Wire w;
  nth16(w, 0, 12);
  const std::size_t n = kMaxNdpsPerNtb + 1;
  for (std::size_t i = 0; i < n; ++i) {
    const auto next = static_cast<std::uint16_t>(i + 1 < n ? 12 + 16 * (i + 1) : 0);
    ndp16(w, kNdp16NoCrcSignature, {{static_cast<std::uint16_t>(12 + 16 * n), 20}}, next);
  }
  w.bytes(frame(20, 1));
  const auto r = parse(w.b);
  EXPECT_THAT(r.errors, ElementsAre("0:ndp_chain_too_long"));
  EXPECT_EQ(r.datagrams.size(), kMaxNdpsPerNtb);  // each walked NDP delivered its datagram
}

// #7: no null terminator: read to the end of wLength, deliver the last datagram, count it.
TEST(NtbParseEdge, MissingNullTerminatorStillDeliversTheLastDatagram) {
  Wire w;
  nth16(w, 0, 12);
  ndp16(w, kNdp16NoCrcSignature, {{28, 20}, {48, 16}}, 0, /*null_entry*/ false);  // 12..28
  w.bytes(frame(20, 1)).bytes(frame(16, 2));
  const auto r = parse(w.b);
  EXPECT_THAT(r.errors, ElementsAre("0:ndp_missing_terminator"));
  EXPECT_THAT(r.datagrams, ElementsAre(Got{28, 20, 0, F16, NCM, 0}, Got{48, 16, 0, F16, NCM, 0}));
}

TEST(NtbParseEdge, EntriesAfterTheFirstNullEntryAreIgnored) {
  Wire w;
  nth16(w, 0, 12);
  // NDP at 12..32 = {32,20}, null, {52,16}: CDC NCM 1.0 §3.3.1, entries after the first null are ignored
  w.le32(kNdp16NoCrcSignature).le16(8 + 4 * 3).le16(0).le16(32).le16(20).le16(0).le16(0).le16(52).le16(16);
  w.bytes(frame(20, 1)).bytes(frame(16, 2));
  const auto r = parse(w.b);
  EXPECT_THAT(r.errors, ElementsAre());
  EXPECT_THAT(r.datagrams, ElementsAre(Got{32, 20, 0, F16, NCM, 0}));  // NDP is 12 bytes longer
}

// #8: a bad entry is skipped and counted; the rest of the NDP is kept.
TEST(NtbParseEdge, DatagramPastTheBlockIsSkippedAndTheRestKept) {
  Wire w;
  nth16(w, 0, 12);
  ndp16(w, kNdp16NoCrcSignature, {{36, 20}, {40, 0x7000}, {56, 16}});  // NDP at 12..36
  w.bytes(frame(20, 1)).bytes(frame(16, 2));
  const auto r = parse(w.b);
  EXPECT_THAT(r.errors, ElementsAre("0:dpe_out_of_block"));
  EXPECT_THAT(r.datagrams, ElementsAre(Got{36, 20, 0, F16, NCM, 0}, Got{56, 16, 0, F16, NCM, 0}));
}

TEST(NtbParseEdge, DatagramIndexPlusLengthThatWrapsIn32BitsIsOutOfBlock) {
  Wire w;
  nth32(w, 0, 16);
  // 0xFFFFFFF0 + 0x20 wraps to 0x10 in 32-bit arithmetic: must not pass as "inside".
  ndp32(w, kNdp32NoCrcSignature, {{0xFFFFFFF0u, 0x20}, {56, 20}});
  w.bytes(frame(20, 1));
  const auto r = parse(w.b);
  EXPECT_THAT(r.errors, ElementsAre("0:dpe_out_of_block"));
  EXPECT_THAT(r.datagrams, ElementsAre(Got{56, 20, 0, F32, NCM, 0}));
}

TEST(NtbParseEdge, DatagramOverlappingTheNthIsSkipped) {
  Wire w;
  nth16(w, 0, 12);
  ndp16(w, kNdp16NoCrcSignature, {{4, 30}, {32, 20}});
  w.bytes(frame(20, 1));
  const auto r = parse(w.b);
  EXPECT_THAT(r.errors, ElementsAre("0:dpe_overlaps_header"));
  EXPECT_THAT(r.datagrams, ElementsAre(Got{32, 20, 0, F16, NCM, 0}));
}

TEST(NtbParseEdge, DatagramOverlappingItsOwnNdpIsSkipped) {
  Wire w;
  nth16(w, 0, 12);
  ndp16(w, kNdp16NoCrcSignature, {{14, 20}, {32, 20}});  // NDP spans 12..32
  w.bytes(frame(20, 1));
  const auto r = parse(w.b);
  EXPECT_THAT(r.errors, ElementsAre("0:dpe_overlaps_header"));
  EXPECT_THAT(r.datagrams, ElementsAre(Got{32, 20, 0, F16, NCM, 0}));
}

// The CVE-2026-23447/23448 shape: the NDP's wLength runs past the block while the transfer still
// has bytes there. The kernel checked against the transfer without the NDP offset; we reject.
TEST(NtbParseEdge, NdpWhoseLengthRunsPastTheBlockIsRejected) {
  Wire w;
  nth16(w, 48, 12);
  ndp16(w, kNdp16NoCrcSignature, {{28, 20}});
  w.pad_to(28).bytes(frame(20, 1));
  w.put16(16, 0x40);   // wLength 64: 12 + 64 > 48
  w.fill(100, 0);      // the transfer goes on (zero padding)
  const auto r = parse(w.b);
  EXPECT_THAT(r.errors, ElementsAre("0:ndp_exceeds_block"));
  EXPECT_THAT(r.datagrams, ElementsAre());
}

TEST(NtbParseEdge, Ndp32HeaderPastTheBlockIsRejected) {
  Wire w;
  nth32(w, 40, 32);  // NDP32 header needs 16 bytes at 32: 48 > 40
  w.pad_to(40);
  const auto r = parse(w.b);
  EXPECT_THAT(r.errors, ElementsAre("0:ndp_out_of_block"));
}

TEST(NtbParseEdge, NdpIndexInsideTheNthIsRejected) {
  Wire w;
  nth16(w, 0, 8);
  w.pad_to(64);
  const auto r = parse(w.b);
  EXPECT_THAT(r.errors, ElementsAre("0:ndp_index_overlaps_nth"));
}

TEST(NtbParseEdge, NtbWithoutNdpIsCounted) {
  Wire w;
  nth16(w, 0, 0);
  w.pad_to(32);
  EXPECT_THAT(parse(w.b).errors, ElementsAre("0:nth_no_ndp"));
}

// #9: lenient where firmware is lenient-tested against Linux, but counted.
TEST(NtbParseEdge, LongerHeaderLengthIsToleratedAndCounted) {
  Wire w;
  nth16(w, 0, 16, 0, /*hlen*/ 16);
  w.pad_to(16);
  ndp16(w, kNdp16NoCrcSignature, {{32, 20}});
  w.bytes(frame(20, 1));
  const auto r = parse(w.b);
  EXPECT_THAT(r.errors, ElementsAre("0:nth_header_length_unusual"));
  EXPECT_EQ(r.datagrams.size(), 1u);
}

TEST(NtbParseEdge, HeaderLengthBelowTheMinimumDropsTheTransfer) {
  Wire w;
  nth16(w, 0, 12, 0, /*hlen*/ 8);
  ndp16(w, kNdp16NoCrcSignature, {{28, 20}});
  w.bytes(frame(20, 1));
  const auto r = parse(w.b);
  EXPECT_THAT(r.errors, ElementsAre("0:nth_bad_header_length"));
  EXPECT_THAT(r.datagrams, ElementsAre());
}

TEST(NtbParseEdge, MisalignedNdpIndexIsToleratedAndCounted) {
  Wire w;
  nth16(w, 0, 14);
  w.pad_to(14);
  ndp16(w, kNdp16NoCrcSignature, {{30, 20}});
  w.bytes(frame(20, 1));
  const auto r = parse(w.b);
  EXPECT_THAT(r.errors, ElementsAre("0:ndp_misaligned"));
  EXPECT_THAT(r.datagrams, ElementsAre(Got{30, 20, 0, F16, NCM, 0}));
}

TEST(NtbParseEdge, UnalignedNdpLengthIsToleratedAndCounted) {
  Wire w;
  nth16(w, 0, 12);
  ndp16(w, kNdp16NoCrcSignature, {{30, 20}});
  w.put16(16, 18);  // wLength 18: 2 entries + 2 stray bytes
  w.fill(2).bytes(frame(20, 1));
  const auto r = parse(w.b);
  EXPECT_THAT(r.errors, ElementsAre("0:ndp_length_unaligned"));
  EXPECT_THAT(r.datagrams, ElementsAre(Got{30, 20, 0, F16, NCM, 0}));
}

TEST(NtbParseEdge, NdpShorterThanTheMinimumIsRejected) {
  Wire w;
  nth16(w, 0, 12);
  ndp16(w, kNdp16NoCrcSignature, {{28, 20}});
  w.put16(16, 12);  // wLength 12 < 16
  w.bytes(frame(20, 1));
  EXPECT_THAT(parse(w.b).errors, ElementsAre("0:ndp_bad_length"));
}

// #10: an NDP16 inside an NTH32 (or the reverse) is malformed: no device is known to mix them.
TEST(NtbParseEdge, NdpFormatNotMatchingTheNthIsRejected) {
  Wire w;
  nth32(w, 0, 16);
  ndp16(w, kNdp16NoCrcSignature, {{32, 20}});
  w.bytes(frame(20, 1));
  EXPECT_THAT(parse(w.b).errors, ElementsAre("0:ndp_format_mismatch"));
}

TEST(NtbParseEdge, UnknownNdpSignatureIsRejected) {
  Wire w;
  nth16(w, 0, 12);
  ndp16(w, 0x58585858, {{28, 20}});
  w.bytes(frame(20, 1));
  EXPECT_THAT(parse(w.b).errors, ElementsAre("0:ndp_bad_signature"));
}

// #19: NCM1 datagrams carry a CRC-32 that is stripped, and verified on request.
TEST(NtbParseEdge, Ncm1CrcIsStrippedAndVerified) {
  const auto payload = frame(30, 9);
  const std::uint32_t crc = crc32_ieee(payload);
  Wire w;
  nth16(w, 0, 12);
  ndp16(w, kNdp16CrcSignature, {{32, 34}, {66, 34}});
  w.pad_to(32).bytes(payload).le32(crc);         // good CRC
  w.bytes(payload).le32(crc ^ 1);                // corrupted CRC
  const auto lenient = parse(w.b);
  EXPECT_THAT(lenient.errors, ElementsAre());
  EXPECT_THAT(lenient.datagrams, ElementsAre(Got{32, 30, 0, F16, DatagramKind::NcmCrc, 0},
                                             Got{66, 30, 0, F16, DatagramKind::NcmCrc, 0}));
  const auto strict = parse(w.b, {.verify_crc = true});
  EXPECT_THAT(strict.errors, ElementsAre("0:dpe_crc_mismatch"));
  EXPECT_THAT(strict.datagrams, ElementsAre(Got{32, 30, 0, F16, DatagramKind::NcmCrc, 0}));
}

TEST(NtbParseEdge, Crc32MatchesTheIeeeCheckValue) {
  const std::string s = "123456789";  // the CRC catalogue's check input for CRC-32/ISO-HDLC
  EXPECT_EQ(crc32_ieee({reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}), 0xCBF43926u);
}

TEST(NtbParseEdge, NcmDatagramShorterThanAnEthernetHeaderIsSkipped) {
  Wire w;
  nth16(w, 0, 12);
  ndp16(w, kNdp16NoCrcSignature, {{32, 13}, {48, 14}});
  w.pad_to(32).bytes(frame(13, 1)).pad_to(48).bytes(frame(14, 2));
  const auto r = parse(w.b);
  EXPECT_THAT(r.errors, ElementsAre("0:dpe_too_short"));
  EXPECT_THAT(r.datagrams, ElementsAre(Got{48, 14, 0, F16, NCM, 0}));
}

// MBIM: IPS and DSS with session ids, both formats; an NDP of the wrong family is skipped but the
// chain goes on to the next NDP.
TEST(NtbParseMbim, IpsAndDssSessionsInOneNtb) {
  Wire w;
  nth16(w, 0, 12);
  ndp16(w, kMbimIps16Signature | (5u << 24), {{44, 20}}, /*next*/ 28);  // IPS5 at 12..28
  ndp16(w, kMbimDss16Signature | (2u << 24), {{64, 8}});               // DSS2 at 28..44
  w.bytes(frame(20, 0x45)).bytes(frame(8, 1));
  const auto r = parse(w.b, {.function = FunctionKind::Mbim});
  EXPECT_THAT(r.errors, ElementsAre());
  EXPECT_THAT(r.datagrams, ElementsAre(Got{44, 20, 0, F16, DatagramKind::Ips, 5},
                                       Got{64, 8, 0, F16, DatagramKind::Dss, 2}));
}

TEST(NtbParseMbim, NcmNdpInAnMbimFunctionIsSkippedAndTheChainContinues) {
  Wire w;
  nth32(w, 0, 16);
  ndp32(w, kNdp32NoCrcSignature, {{96, 20}}, /*next*/ 48);  // 16..48
  ndp32(w, kMbimIps32Signature, {{116, 20}});              // 48..80
  w.pad_to(96).bytes(frame(20, 1)).bytes(frame(20, 0x60));
  const auto r = parse(w.b, {.function = FunctionKind::Mbim});
  EXPECT_THAT(r.errors, ElementsAre("0:ndp_ncm_in_mbim"));
  EXPECT_THAT(r.datagrams, ElementsAre(Got{116, 20, 0, F32, DatagramKind::Ips, 0}));
}

// ===================================== NTH framing =============================================

TEST(NtbParseNth, EmptyTransferIsNotAnError) {
  const auto r = parse({});
  EXPECT_THAT(r.errors, ElementsAre());
  EXPECT_THAT(r.ntbs, ElementsAre());
}

TEST(NtbParseNth, BadSignatureDropsTheTransfer) {
  Wire w;
  w.le32(0x12345678).fill(60);
  EXPECT_THAT(parse(w.b).errors, ElementsAre("0:nth_bad_signature"));
}

TEST(NtbParseNth, ShortGarbageIsABadSignatureNotATruncatedNth) {
  EXPECT_THAT(parse({'O', 'K', '\r', '\n', 0}).errors, ElementsAre("0:nth_bad_signature"));
}

TEST(NtbParseNth, TruncatedNthIsReported) {
  Wire w;
  w.le32(kNth32Signature).le16(16);  // 6 bytes of an NTH32
  EXPECT_THAT(parse(w.b).errors, ElementsAre("0:nth_truncated"));
  EXPECT_THAT(parse({0x4e, 0x43}).errors, ElementsAre("0:nth_truncated"));
}

TEST(NtbParseNth, BlockLengthBelowTheNthSizeDropsTheTransfer) {
  Wire w;
  nth16(w, 8, 12);
  w.pad_to(40);
  EXPECT_THAT(parse(w.b).errors, ElementsAre("0:nth_bad_block_length"));
}

// #2 (straddling) and #14: an NTB longer than what arrived is dropped, never read past the end.
TEST(NtbParseNth, BlockLongerThanTheTransferIsDroppedAsTruncated) {
  Wire w;
  nth16(w, 200, 12);
  ndp16(w, kNdp16NoCrcSignature, {{28, 20}});
  w.bytes(frame(20, 1));
  const auto r = parse(w.b);
  EXPECT_THAT(r.errors, ElementsAre("0:nth_block_exceeds_transfer"));
  EXPECT_THAT(r.datagrams, ElementsAre());
}

TEST(NtbParseNth, SecondNtbTruncatedKeepsTheFirst) {
  Wire w;
  nth16(w, 48, 12);
  ndp16(w, kNdp16NoCrcSignature, {{28, 20}});
  w.pad_to(28).bytes(frame(20, 1));
  nth16(w, 100, 12);  // claims 100 bytes, only 12 follow
  const auto r = parse(w.b);
  EXPECT_THAT(r.errors, ElementsAre("1:nth_block_exceeds_transfer"));
  EXPECT_EQ(r.datagrams.size(), 1u);
}

// ============================ counters, names, sequence =======================================

TEST(NtbCounters, CountingSinkCountsEveryReason) {
  Wire w;
  nth16(w, 0, 12);
  ndp16(w, kNdp16NoCrcSignature, {{32, 20}, {40, 0x7000}, {4, 20}}, 0, false);  // NDP at 12..32
  w.bytes(frame(20, 1));
  NtbCounters counters;
  std::uint64_t bytes = 0;
  CountingSink sink{counters, [&](const DatagramView& d) { bytes += d.length; }};
  counters.add(parse_transfer(Bytes(w.b), {}, sink));
  EXPECT_EQ(counters.transfers, 1u);
  EXPECT_EQ(counters.ntbs, 1u);
  EXPECT_EQ(counters.datagrams, 1u);
  EXPECT_EQ(bytes, 20u);
  EXPECT_EQ(counters[NtbError::DpeOutOfBlock], 1u);
  EXPECT_EQ(counters[NtbError::DpeOverlapsHeader], 1u);
  EXPECT_EQ(counters[NtbError::NdpMissingTerminator], 1u);
  EXPECT_EQ(counters[NtbError::NdpChainLoop], 0u);
}

TEST(NtbCounters, EveryReasonHasADistinctStableName) {
  std::set<std::string> names;
  for (std::size_t i = 0; i < kNtbErrorCount; ++i) {
    const std::string n = to_string(static_cast<NtbError>(i));
    EXPECT_NE(n, "unknown");
    EXPECT_TRUE(names.insert(n).second) << n;
  }
  EXPECT_STREQ(to_string(NtbError::NdpExceedsBlock), "ndp_exceeds_block");
}

// #20: sequence gaps are counted, wrap-around is not a gap.
TEST(NtbCounters, SequenceTrackerCountsGapsAndAcceptsWrap) {
  SequenceTracker t;
  for (const int s : {65534, 65535, 0, 1, 5, 6}) t.observe(static_cast<std::uint16_t>(s));
  EXPECT_EQ(t.gaps, 1u);
}

// ================================ robustness properties ========================================

// Every prefix of a valid multi-NTB transfer parses without reading past its end (the parse()
// helper uses exact-size buffers, so ASan builds catch any over-read) and never delivers a
// datagram outside the bytes it was given.
TEST(NtbParseRobust, EveryPrefixOfAValidTransferIsSafe) {
  Wire w;
  nth16(w, 60, 12);
  ndp16(w, kNdp16NoCrcSignature, {{28, 32}});
  w.pad_to(28).bytes(frame(32, 1));
  nth32(w, 0, 16);
  ndp32(w, kNdp32CrcSignature, {{48, 24}, {72, 30}});
  w.bytes(frame(24, 2)).bytes(frame(30, 3));
  for (std::size_t n = 0; n <= w.size(); ++n) {
    const std::vector<std::uint8_t> prefix(w.b.begin(), w.b.begin() + static_cast<std::ptrdiff_t>(n));
    const auto r = parse(prefix);
    for (const auto& d : r.datagrams) EXPECT_LE(d.offset + d.length, n);
  }
}

// Deterministic mutation: flip bytes of valid NTBs and check the invariants the daemon relies on.
TEST(NtbParseRobust, RandomMutationsKeepEveryDatagramInsideItsNtb) {
  std::mt19937 rng(20261121);
  Wire base;
  nth32(base, 0, 16);
  ndp32(base, kNdp32NoCrcSignature, {{64, 40}, {104, 60}}, /*next*/ 0);
  base.pad_to(64).bytes(frame(40, 1)).bytes(frame(60, 2));
  for (int iter = 0; iter < 20000; ++iter) {
    auto v = base.b;
    const int flips = 1 + static_cast<int>(rng() % 6);
    for (int f = 0; f < flips; ++f) v[rng() % v.size()] = static_cast<std::uint8_t>(rng());
    v.resize(rng() % 4 == 0 ? rng() % (v.size() + 1) : v.size());
    const auto r = parse(v);
    for (const auto& d : r.datagrams) {
      ASSERT_LE(d.offset + d.length, v.size());
      ASSERT_LT(d.ntb, r.ntbs.size());
      const auto& ntb = r.ntbs[d.ntb];
      ASSERT_GE(d.offset, ntb.offset + nth_size(ntb.format));
      ASSERT_LE(d.offset + d.length, ntb.offset + ntb.block_length);
    }
  }
}

}  // namespace
}  // namespace wwan::ntb
