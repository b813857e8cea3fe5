// NTB builder: golden bytes for hand-annotated NTBs, one test per layout rule, and a property test
// that every NTB built from random parameters and datagrams parses back, byte for byte, with the
// parser, at exactly the offsets an independent model of the rules predicts.
#include "datapath/ntb_build.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <random>
#include <string>
#include <vector>

#include "datapath/crc32.hpp"
#include "datapath/ntb_parse.hpp"

namespace wwan::ntb {
namespace {

using ByteVector = std::vector<std::uint8_t>;

// ---- helpers --------------------------------------------------------------------------------

struct Parsed {
  std::vector<DatagramView> datagrams;
  std::vector<NtbError> errors;
  std::vector<NtbInfo> ntbs;
  TransferSummary summary;

  void datagram(const DatagramView& d) { datagrams.push_back(d); }
  void error(std::uint32_t, NtbError e) { errors.push_back(e); }
  void ntb(const NtbInfo& i) { ntbs.push_back(i); }
};

Parsed parse(Bytes ntb, FunctionKind function, bool verify_crc = false) {
  Parsed p;
  p.summary = parse_transfer(ntb, ParseOptions{function, verify_crc}, p);
  return p;
}

std::string error_names(const std::vector<NtbError>& errors) {
  std::string s;
  for (NtbError e : errors) s += std::string(s.empty() ? "" : ", ") + to_string(e);
  return s;
}

std::string hex_line(Bytes b, std::size_t from) {
  std::string s;
  char cell[4];
  for (std::size_t i = from; i < from + 16 && i < b.size(); ++i) {
    std::snprintf(cell, sizeof cell, "%02X ", static_cast<unsigned>(b[i]));
    s += cell;
  }
  return s;
}

// Byte-exact comparison; on mismatch, lists each differing index and dumps both sides as hex,
// 16 bytes a line, with the lines that differ marked.
testing::AssertionResult SameBytes(Bytes actual, const ByteVector& expected) {
  const std::size_t common = std::min(actual.size(), expected.size());
  std::string diffs;
  std::size_t ndiff = 0;
  for (std::size_t i = 0; i < common; ++i) {
    if (actual[i] == expected[i]) continue;
    if (++ndiff <= 32) {
      char line[128];
      std::snprintf(line, sizeof line, "  [%zu] (0x%04zX): expected %02X, actual %02X\n", i, i,
                    static_cast<unsigned>(expected[i]), static_cast<unsigned>(actual[i]));
      diffs += line;
    }
  }
  if (ndiff == 0 && actual.size() == expected.size()) return testing::AssertionSuccess();
  auto r = testing::AssertionFailure();
  r << "length expected " << expected.size() << ", actual " << actual.size() << "; " << ndiff
    << " differing byte(s) in the common part\n"
    << diffs << "offset  expected                                          | actual\n";
  const std::size_t total = std::max(actual.size(), expected.size());
  for (std::size_t row = 0; row < total; row += 16) {
    const std::string e = hex_line(Bytes(expected), row);
    const std::string a = hex_line(actual, row);
    char head[32];
    std::snprintf(head, sizeof head, "%04zX  ", row);
    r << (e == a ? "  " : "! ") << head << e << std::string(48 - e.size(), ' ') << "| " << a << "\n";
  }
  return r;
}

ByteVector pattern(std::size_t length_bytes, std::uint8_t first) {
  ByteVector v(length_bytes);
  for (std::size_t i = 0; i < length_bytes; ++i) v[i] = static_cast<std::uint8_t>(first + i);
  return v;
}

constexpr NdpSignature kNcm16{NtbFormat::Ntb16, DatagramKind::Ncm, 0};
constexpr NdpSignature kNcm32{NtbFormat::Ntb32, DatagramKind::Ncm, 0};

NtbOutParams ncm_params(NtbFormat format, bool ndp_at_end) {
  NtbOutParams p;
  p.format = format;
  p.ntb_out_max_size = 16384;
  p.ndp_out_divisor = 4;
  p.ndp_out_payload_remainder = 0;
  p.ndp_out_alignment = 4;
  p.ntb_out_max_datagrams = 0;
  p.ndp_at_end = ndp_at_end;
  p.ethernet_framing = true;
  return p;
}

NtbOutParams mbim_params(NtbFormat format, bool ndp_at_end) {
  NtbOutParams p = ncm_params(format, ndp_at_end);
  p.ethernet_framing = false;
  return p;
}

// ---- golden bytes ---------------------------------------------------------------------------
// Datagram contents are opaque to the builder: patterns (0xA0.., 0xB0..) make them easy to spot.

// (a) NTB16, NCM0, NDP at the front (the Linux default layout), divisor 4 / remainder 0 /
// alignment 4, room for 3 entries reserved. Ethernet framing: the IP header (offset + 14) must
// land on a multiple of 4, so each frame starts at 2 mod 4.
TEST(NtbBuildGolden, Ntb16Ncm0NdpAtFront) {
  NtbOutParams p = ncm_params(NtbFormat::Ntb16, /*ndp_at_end=*/false);
  p.ntb_out_max_size = 2048;
  p.front_ndp_capacity = 3;
  ByteVector buf(2048, 0xAA);
  NtbBuilder b(buf, p, kNcm16);
  b.reset(1);
  ASSERT_EQ(b.append(pattern(16, 0xA0)), AppendResult::Appended);
  ASSERT_EQ(b.append(pattern(17, 0xB0)), AppendResult::Appended);

  const ByteVector expected = {
      // NTH16 @0
      0x4E, 0x43, 0x4D, 0x48,  // dwSignature "NCMH"
      0x0C, 0x00,              // wHeaderLength 12
      0x01, 0x00,              // wSequence 1
      0x47, 0x00,              // wBlockLength 71 (ends with the last datagram)
      0x0C, 0x00,              // wNdpIndex 12 (first multiple of wNdpOutAlignment 4 after the NTH)
      // NDP16 @12, reserved for 3 entries + null: 8 + 4 * 4 = 24 bytes, [12, 36)
      0x4E, 0x43, 0x4D, 0x30,  // dwSignature "NCM0"
      0x14, 0x00,              // wLength 20 = 8 + (2 datagrams + null) * 4
      0x00, 0x00,              // wNextNdpIndex 0: no other NDP
      0x26, 0x00, 0x10, 0x00,  // datagram 0: wDatagramIndex 38, wDatagramLength 16
      0x36, 0x00, 0x11, 0x00,  // datagram 1: wDatagramIndex 54, wDatagramLength 17
      0x00, 0x00, 0x00, 0x00,  // null entry: end of table
      0x00, 0x00, 0x00, 0x00,  // @32 the unused third reserved entry (zeroed, outside wLength)
      0x00, 0x00,              // @36 padding: 36 + 14 = 50 is 2 mod 4, 38 + 14 = 52 is 0 mod 4
      // datagram 0 @38, 16 bytes
      0xA0, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xAB, 0xAC, 0xAD, 0xAE, 0xAF,
      // datagram 1 @54, 17 bytes: 54 + 14 = 68 is 0 mod 4 already, no padding
      0xB0, 0xB1, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA, 0xBB, 0xBC, 0xBD, 0xBE, 0xBF,
      0xC0,
      // @71: end of block
  };
  const Bytes ntb = b.finish();
  EXPECT_TRUE(SameBytes(ntb, expected));
  const Parsed parsed = parse(ntb, FunctionKind::Ncm);
  EXPECT_EQ(parsed.summary.errors, 0u) << error_names(parsed.errors);
  EXPECT_EQ(parsed.summary.datagrams, 2u);
}

// (b) NTB32, NCM0, NDP at the end, as Huawei NCM firmware (E3372 12d1:157d) requires and Windows
// builds: divisor 4 / remainder 2 with Ethernet framing means the frame itself starts at
// (2 - 14) mod 4 = 0 mod 4 and its IP header at 2 mod 4.
TEST(NtbBuildGolden, Ntb32Ncm0NdpAtEndHuaweiStyle) {
  NtbOutParams p = ncm_params(NtbFormat::Ntb32, /*ndp_at_end=*/true);
  p.ndp_out_payload_remainder = 2;
  ByteVector buf(16384, 0xAA);
  NtbBuilder b(buf, p, kNcm32);
  b.reset(0x1234);
  ASSERT_EQ(b.append(pattern(18, 0xA0)), AppendResult::Appended);
  ASSERT_EQ(b.append(pattern(21, 0xB0)), AppendResult::Appended);

  const ByteVector expected = {
      // NTH32 @0
      0x6E, 0x63, 0x6D, 0x68,  // dwSignature "ncmh"
      0x10, 0x00,              // wHeaderLength 16
      0x34, 0x12,              // wSequence 0x1234
      0x64, 0x00, 0x00, 0x00,  // dwBlockLength 100 (ends with the NDP)
      0x3C, 0x00, 0x00, 0x00,  // dwNdpIndex 60
      // datagram 0 @16 (16 + 14 = 30 is 2 mod 4), 18 bytes
      0xA0, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xAB, 0xAC, 0xAD, 0xAE, 0xAF,
      0xB0, 0xB1,
      0x00, 0x00,              // @34 padding: 34 + 14 = 48 is 0 mod 4, 36 + 14 = 50 is 2 mod 4
      // datagram 1 @36, 21 bytes
      0xB0, 0xB1, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA, 0xBB, 0xBC, 0xBD, 0xBE, 0xBF,
      0xC0, 0xC1, 0xC2, 0xC3, 0xC4,
      0x00, 0x00, 0x00,        // @57 padding up to wNdpOutAlignment 4
      // NDP32 @60
      0x6E, 0x63, 0x6D, 0x30,  // dwSignature "ncm0"
      0x28, 0x00,              // wLength 40 = 16 + (2 datagrams + null) * 8
      0x00, 0x00,              // wReserved6
      0x00, 0x00, 0x00, 0x00,  // dwNextNdpIndex 0
      0x00, 0x00, 0x00, 0x00,  // dwReserved12
      0x10, 0x00, 0x00, 0x00,  // datagram 0: dwDatagramIndex 16
      0x12, 0x00, 0x00, 0x00,  //             dwDatagramLength 18
      0x24, 0x00, 0x00, 0x00,  // datagram 1: dwDatagramIndex 36
      0x15, 0x00, 0x00, 0x00,  //             dwDatagramLength 21
      0x00, 0x00, 0x00, 0x00,  // null entry
      0x00, 0x00, 0x00, 0x00,
      // @100: end of block
  };
  const Bytes ntb = b.finish();
  EXPECT_TRUE(SameBytes(ntb, expected));
  const Parsed parsed = parse(ntb, FunctionKind::Ncm);
  EXPECT_EQ(parsed.summary.errors, 0u) << error_names(parsed.errors);
  EXPECT_EQ(parsed.summary.datagrams, 2u);
}

// (c) NTB16, MBIM IPS session 3, NDP at the end (all Huawei MBIM, Linux cdc_mbim_info_ndp_to_end).
// Raw IP: no Ethernet adjustment, each datagram starts at a multiple of 4.
TEST(NtbBuildGolden, Ntb16Ips3NdpAtEnd) {
  NtbOutParams p = mbim_params(NtbFormat::Ntb16, /*ndp_at_end=*/true);
  ByteVector buf(16384, 0xAA);
  NtbBuilder b(buf, p, {NtbFormat::Ntb16, DatagramKind::Ips, 3});
  b.reset(7);
  ASSERT_EQ(b.append(pattern(21, 0xA0)), AppendResult::Appended);
  ASSERT_EQ(b.append(pattern(10, 0xB0)), AppendResult::Appended);

  const ByteVector expected = {
      // NTH16 @0
      0x4E, 0x43, 0x4D, 0x48,  // dwSignature "NCMH"
      0x0C, 0x00,              // wHeaderLength 12
      0x07, 0x00,              // wSequence 7
      0x44, 0x00,              // wBlockLength 68
      0x30, 0x00,              // wNdpIndex 48
      // datagram 0 @12, 21 bytes
      0xA0, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xAB, 0xAC, 0xAD, 0xAE, 0xAF,
      0xB0, 0xB1, 0xB2, 0xB3, 0xB4,
      0x00, 0x00, 0x00,        // @33 padding up to wNdpOutDivisor 4
      // datagram 1 @36, 10 bytes
      0xB0, 0xB1, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7, 0xB8, 0xB9,
      0x00, 0x00,              // @46 padding up to wNdpOutAlignment 4
      // NDP16 @48
      0x49, 0x50, 0x53, 0x03,  // dwSignature "IPS" + session id 3 in the top byte
      0x14, 0x00,              // wLength 20 = 8 + (2 datagrams + null) * 4
      0x00, 0x00,              // wNextNdpIndex 0
      0x0C, 0x00, 0x15, 0x00,  // datagram 0: wDatagramIndex 12, wDatagramLength 21
      0x24, 0x00, 0x0A, 0x00,  // datagram 1: wDatagramIndex 36, wDatagramLength 10
      0x00, 0x00, 0x00, 0x00,  // null entry
      // @68: end of block
  };
  const Bytes ntb = b.finish();
  EXPECT_TRUE(SameBytes(ntb, expected));
  const Parsed parsed = parse(ntb, FunctionKind::Mbim);
  EXPECT_EQ(parsed.summary.errors, 0u) << error_names(parsed.errors);
  ASSERT_EQ(parsed.datagrams.size(), 2u);
  EXPECT_EQ(parsed.datagrams[0].kind, DatagramKind::Ips);
  EXPECT_EQ(parsed.datagrams[0].session, 3);
}

// (d) NTB16, NCM1 (CRC mode), NDP at the end: the builder appends the CRC-32 (IEEE 802.3, LE)
// and counts it in wDatagramLength (NCM 1.0 §3.3.2).
TEST(NtbBuildGolden, Ntb16Ncm1AppendsCrc) {
  NtbOutParams p = ncm_params(NtbFormat::Ntb16, /*ndp_at_end=*/true);
  ByteVector buf(4096, 0xAA);
  NtbBuilder b(buf, p, {NtbFormat::Ntb16, DatagramKind::NcmCrc, 0});
  const ByteVector frame = pattern(16, 0xA0);
  ASSERT_EQ(b.append(frame), AppendResult::Appended);
  const ByteVector expected = {
      // NTH16 @0
      0x4E, 0x43, 0x4D, 0x48,  // dwSignature "NCMH"
      0x0C, 0x00,              // wHeaderLength 12
      0x00, 0x00,              // wSequence 0 (the builder starts as if reset(0))
      0x34, 0x00,              // wBlockLength 52
      0x24, 0x00,              // wNdpIndex 36
      0x00, 0x00,              // @12 padding: 14 + 14 = 28 is 0 mod 4
      // datagram 0 @14: the 16-byte frame, then its CRC-32, little-endian
      0xA0, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xAB, 0xAC, 0xAD, 0xAE, 0xAF,
      0x6F, 0x24, 0x25, 0xB2,  // CRC-32 0xB225246F (Python zlib.crc32(bytes(range(0xA0, 0xB0))))
      0x00, 0x00,              // @34 padding up to wNdpOutAlignment 4
      // NDP16 @36
      0x4E, 0x43, 0x4D, 0x31,  // dwSignature "NCM1"
      0x10, 0x00,              // wLength 16 = 8 + (1 datagram + null) * 4
      0x00, 0x00,              // wNextNdpIndex 0
      0x0E, 0x00, 0x14, 0x00,  // datagram 0: wDatagramIndex 14, wDatagramLength 20 (16 + CRC)
      0x00, 0x00, 0x00, 0x00,  // null entry
      // @52: end of block
  };
  const Bytes ntb = b.finish();
  EXPECT_TRUE(SameBytes(ntb, expected));
  const Parsed parsed = parse(ntb, FunctionKind::Ncm, /*verify_crc=*/true);
  EXPECT_EQ(parsed.summary.errors, 0u) << error_names(parsed.errors);
  ASSERT_EQ(parsed.datagrams.size(), 1u);
  EXPECT_EQ(parsed.datagrams[0].length, 16u);  // CRC stripped by the parser
}

// ---- structural helpers for the rule and property tests -------------------------------------

std::size_t ndp_index_of(Bytes ntb) {
  return load_le32(ntb, 0) == kNth16Signature ? load_le16(ntb, 10) : load_le32(ntb, 12);
}

// Every byte of the block that is not NTH, NDP (up to wLength) or datagram (+ CRC) must be zero:
// padding goes on the wire and must not leak what the buffer held before.
testing::AssertionResult PaddingIsZero(Bytes ntb, const Parsed& parsed, std::size_t trailer_bytes) {
  std::vector<bool> covered(ntb.size(), false);
  const auto cover = [&](std::size_t from, std::size_t length_bytes) {
    for (std::size_t i = from; i < from + length_bytes && i < ntb.size(); ++i) covered[i] = true;
  };
  const bool b16 = load_le32(ntb, 0) == kNth16Signature;
  cover(0, b16 ? kNth16Size : kNth32Size);
  const std::size_t ndp = ndp_index_of(ntb);
  cover(ndp, load_le16(ntb, ndp + 4));
  for (const DatagramView& d : parsed.datagrams) cover(static_cast<std::size_t>(d.offset), d.length + trailer_bytes);
  for (std::size_t i = 0; i < ntb.size(); ++i) {
    if (!covered[i] && ntb[i] != 0)
      return testing::AssertionFailure() << "padding byte " << i << " is 0x" << std::hex
                                         << static_cast<unsigned>(ntb[i]) << ", not zero";
  }
  return testing::AssertionSuccess();
}

std::vector<std::uint64_t> offsets_of(const Parsed& parsed) {
  std::vector<std::uint64_t> v;
  for (const DatagramView& d : parsed.datagrams) v.push_back(d.offset);
  return v;
}

// The largest datagram the builder claims room for is the largest it takes: `max_bytes`, one
// byte more is TooLarge, and `max_bytes` itself is appended.
void expect_largest_datagram(NtbBuilder& b, std::size_t max_bytes) {
  EXPECT_EQ(b.max_datagram_bytes(), max_bytes);
  EXPECT_EQ(b.append(pattern(max_bytes + 1, 0)), AppendResult::TooLarge);
  ASSERT_EQ(b.append(pattern(max_bytes, 0)), AppendResult::Appended);
}

// ---- one test per rule ----------------------------------------------------------------------

// NCM 1.0 §3.3.4 aligns the Ethernet payload: with divisor 8 / remainder 2 an NCM frame starts
// where offset + 14 is 2 mod 8 (offset 4 mod 8); an MBIM (raw IP) datagram where offset is 2 mod 8.
TEST(NtbBuildRules, RemainderAdjustedForEthernetHeaderOnNcmOnly) {
  for (const bool ncm : {true, false}) {
    SCOPED_TRACE(ncm ? "NCM" : "MBIM");
    NtbOutParams p = ncm ? ncm_params(NtbFormat::Ntb16, true) : mbim_params(NtbFormat::Ntb16, true);
    p.ndp_out_divisor = 8;
    p.ndp_out_payload_remainder = 2;
    ByteVector buf(4096, 0xAA);
    NtbBuilder b(buf, p, ncm ? kNcm16 : NdpSignature{NtbFormat::Ntb16, DatagramKind::Ips, 0});
    ASSERT_EQ(b.append(pattern(20, 1)), AppendResult::Appended);
    ASSERT_EQ(b.append(pattern(20, 2)), AppendResult::Appended);
    const Parsed parsed = parse(b.finish(), ncm ? FunctionKind::Ncm : FunctionKind::Mbim);
    ASSERT_EQ(parsed.summary.errors, 0u) << error_names(parsed.errors);
    // NCM: 12 is already 4 mod 8; the next after 12 + 20 = 32 is 36. (12 + 14 = 26 = 2 mod 8.)
    // MBIM: the first 2 mod 8 at or after 12 is 18; after 18 + 20 = 38 it is 42.
    EXPECT_THAT(offsets_of(parsed), ncm ? testing::ElementsAre(12u, 36u) : testing::ElementsAre(18u, 42u));
  }
}

TEST(NtbBuildRules, NdpAlignedToNdpOutAlignment) {
  {
    SCOPED_TRACE("NDP at the end");
    NtbOutParams p = mbim_params(NtbFormat::Ntb16, /*ndp_at_end=*/true);
    p.ndp_out_alignment = 64;
    ByteVector buf(4096, 0xAA);
    NtbBuilder b(buf, p, {NtbFormat::Ntb16, DatagramKind::Ips, 0});
    ASSERT_EQ(b.append(pattern(21, 1)), AppendResult::Appended);  // [12, 33)
    const Bytes ntb = b.finish();
    EXPECT_EQ(ndp_index_of(ntb), 64u);     // 33 rounded up to 64
    EXPECT_EQ(ntb.size(), 64u + 16u);      // NDP16 with one entry + null
    const Parsed parsed = parse(ntb, FunctionKind::Mbim);
    EXPECT_EQ(parsed.summary.errors, 0u) << error_names(parsed.errors);
    EXPECT_TRUE(PaddingIsZero(ntb, parsed, 0));
  }
  {
    SCOPED_TRACE("NDP at the front");
    NtbOutParams p = mbim_params(NtbFormat::Ntb16, /*ndp_at_end=*/false);
    p.ndp_out_alignment = 16;
    p.ntb_out_max_datagrams = 1;
    ByteVector buf(4096, 0xAA);
    NtbBuilder b(buf, p, {NtbFormat::Ntb16, DatagramKind::Ips, 0});
    ASSERT_EQ(b.append(pattern(21, 1)), AppendResult::Appended);
    const Bytes ntb = b.finish();
    EXPECT_EQ(ndp_index_of(ntb), 16u);  // NTH16 is 12 bytes; 12 rounded up to 16
    const Parsed parsed = parse(ntb, FunctionKind::Mbim);
    EXPECT_EQ(parsed.summary.errors, 0u) << error_names(parsed.errors);
    EXPECT_THAT(offsets_of(parsed), testing::ElementsAre(32u));  // 16 + 8 + 2 * 4
    EXPECT_TRUE(PaddingIsZero(ntb, parsed, 0));
  }
}

TEST(NtbBuildRules, MaxDatagramsReachedIsFull) {
  for (const bool at_end : {false, true}) {
    SCOPED_TRACE(at_end ? "NDP at the end" : "NDP at the front");
    NtbOutParams p = ncm_params(NtbFormat::Ntb16, at_end);
    p.ntb_out_max_datagrams = 3;  // counts datagrams, not the null entry
    ByteVector buf(16384, 0xAA);
    NtbBuilder b(buf, p, kNcm16);
    EXPECT_EQ(b.datagram_limit(), 3u);
    for (int i = 0; i < 3; ++i) {
      EXPECT_FALSE(b.full());
      ASSERT_EQ(b.append(pattern(60, 0)), AppendResult::Appended);
    }
    EXPECT_TRUE(b.full());
    EXPECT_EQ(b.room_bytes(), 0u);
    EXPECT_EQ(b.append(pattern(60, 0)), AppendResult::Full);
    EXPECT_FALSE(b.reserve(60).has_value());
    EXPECT_EQ(b.datagram_count(), 3u);
    const Parsed parsed = parse(b.finish(), FunctionKind::Ncm);
    EXPECT_EQ(parsed.summary.errors, 0u) << error_names(parsed.errors);
    EXPECT_EQ(parsed.datagrams.size(), 3u);
    b.reset(1);  // a fresh NTB takes the datagram that did not fit
    EXPECT_EQ(b.append(pattern(60, 0)), AppendResult::Appended);
  }
}

// wNtbOutMaxDatagrams 0 means "no limit" (NCM errata; anchors.md §5 #17): with the NDP at the end
// only space ends the NTB, well past Linux's 40 and the 64 entries a front NDP reserves.
TEST(NtbBuildRules, NoDatagramLimitWhenZeroAndNdpAtEnd) {
  NtbOutParams p = ncm_params(NtbFormat::Ntb16, /*ndp_at_end=*/true);
  p.ntb_out_max_size = 65535;
  ByteVector buf(65536, 0xAA);
  NtbBuilder b(buf, p, kNcm16);
  std::size_t n = 0;
  while (b.append(pattern(14, static_cast<std::uint8_t>(n))) == AppendResult::Appended) ++n;
  EXPECT_LT(b.room_bytes(), 14u);  // full() would need room for not even 1 byte
  // Each 14-byte frame takes 16 bytes (divisor 4) plus a 4-byte entry.
  EXPECT_GT(n, 3000u);
  const Bytes ntb = b.finish();
  EXPECT_LE(ntb.size(), 65535u);
  const Parsed parsed = parse(ntb, FunctionKind::Ncm);
  EXPECT_EQ(parsed.summary.errors, 0u) << error_names(parsed.errors);
  ASSERT_EQ(parsed.datagrams.size(), n);
  for (std::size_t i = 0; i < n; ++i)
    ASSERT_EQ(ntb[static_cast<std::size_t>(parsed.datagrams[i].offset)], static_cast<std::uint8_t>(i)) << i;
}

// Linux bugzilla 209407: with the NDP at the end, an append must leave room for the datagram,
// its padding and the final, aligned NDP with one more entry and the null entry. NTB16, MBIM,
// divisor 4, alignment 4, 2048 bytes.
TEST(NtbBuildRules, ExactFitAtBoundaryNdpAtEnd) {
  NtbOutParams p = mbim_params(NtbFormat::Ntb16, /*ndp_at_end=*/true);
  p.ntb_out_max_size = 2048;
  ByteVector buf(2048, 0xAA);
  NtbBuilder b(buf, p, {NtbFormat::Ntb16, DatagramKind::Ips, 0});
  // One datagram: [12, 12 + L), NDP of 8 + 2 * 4 = 16 at 2048 - 16 = 2032 -> L <= 2020.
  ASSERT_NO_FATAL_FAILURE(expect_largest_datagram(b, 2020));
  EXPECT_TRUE(b.full());
  EXPECT_EQ(b.finish().size(), 2048u);

  // Two datagrams: the first ends at 12 + 1000 = 1012; the NDP grows to 8 + 3 * 4 = 20 and must
  // start at 2048 - 20 = 2028, so the second may take 2028 - 1012 = 1016 bytes, not 1017.
  b.reset(1);
  ASSERT_EQ(b.append(pattern(1000, 0)), AppendResult::Appended);
  EXPECT_EQ(b.room_bytes(), 1016u);
  EXPECT_EQ(b.append(pattern(1017, 0)), AppendResult::Full);
  ASSERT_EQ(b.append(pattern(1016, 0)), AppendResult::Appended);
  const Bytes ntb = b.finish();
  EXPECT_EQ(ntb.size(), 2048u);
  const Parsed parsed = parse(ntb, FunctionKind::Mbim);
  EXPECT_EQ(parsed.summary.errors, 0u) << error_names(parsed.errors);
  EXPECT_THAT(offsets_of(parsed), testing::ElementsAre(12u, 1012u));
}

// The same boundary when the NDP alignment matters: NTB32, alignment 16, 4088 bytes. A datagram
// [16, 16 + L) needs its NDP (16 + 2 * 8 = 32 bytes) at round_up(16 + L, 16) <= 4088 - 32 = 4056,
// i.e. at 4048 at most, so L <= 4032. L = 4033 would pass an unaligned check (4049 + 32 = 4081
// <= 4088) and then overrun by 8 bytes once the NDP is aligned to 4064: the 209407 shape.
TEST(NtbBuildRules, BoundaryAccountsForNdpAlignment) {
  NtbOutParams p = mbim_params(NtbFormat::Ntb32, /*ndp_at_end=*/true);
  p.ntb_out_max_size = 4088;
  p.ndp_out_alignment = 16;
  ByteVector buf(4088, 0xAA);
  NtbBuilder b(buf, p, {NtbFormat::Ntb32, DatagramKind::Ips, 0});
  ASSERT_NO_FATAL_FAILURE(expect_largest_datagram(b, 4032));
  const Bytes ntb = b.finish();
  EXPECT_EQ(ndp_index_of(ntb), 4048u);
  EXPECT_EQ(ntb.size(), 4080u);
  EXPECT_EQ(parse(ntb, FunctionKind::Mbim).summary.errors, 0u);
}

TEST(NtbBuildRules, ExactFitAtBoundaryNdpAtFront) {
  NtbOutParams p = mbim_params(NtbFormat::Ntb16, /*ndp_at_end=*/false);
  p.ntb_out_max_size = 2048;
  p.ntb_out_max_datagrams = 1;
  ByteVector buf(2048, 0xAA);
  NtbBuilder b(buf, p, {NtbFormat::Ntb16, DatagramKind::Ips, 0});
  // NDP at 12, reserved 8 + 2 * 4 = 16 bytes -> datagram at 28, up to 2048 - 28 = 2020 bytes.
  ASSERT_NO_FATAL_FAILURE(expect_largest_datagram(b, 2020));
  const Bytes ntb = b.finish();
  EXPECT_EQ(ntb.size(), 2048u);
  EXPECT_EQ(parse(ntb, FunctionKind::Mbim).summary.errors, 0u);
}

TEST(NtbBuildRules, TooLargeNeverFitsEvenWhenEmpty) {
  NtbOutParams p = ncm_params(NtbFormat::Ntb16, /*ndp_at_end=*/false);
  p.ntb_out_max_size = 2048;
  ByteVector buf(2048, 0xAA);
  NtbBuilder b(buf, p, kNcm16);
  // NDP at 12 with 64 + 1 entries: [12, 280); the first frame starts at 282 (282 + 14 = 296 is
  // 0 mod 4), so an empty NTB takes 2048 - 282 = 1766 bytes.
  EXPECT_EQ(b.max_datagram_bytes(), 1766u);
  EXPECT_EQ(b.append(pattern(1767, 0)), AppendResult::TooLarge);
  EXPECT_TRUE(b.empty());
  ASSERT_EQ(b.append(pattern(100, 0)), AppendResult::Appended);
  EXPECT_EQ(b.append(pattern(1767, 0)), AppendResult::TooLarge);  // not Full: retrying is useless
  EXPECT_EQ(b.append(pattern(1766, 0)), AppendResult::Full);      // would fit a fresh NTB
  EXPECT_EQ(b.datagram_count(), 1u);
}

// A zero-length entry is the NDP terminator (NCM 1.0 §3.3.1): it would hide every later datagram.
TEST(NtbBuildRules, ZeroLengthDatagramIsRefused) {
  ByteVector buf(2048, 0xAA);
  NtbBuilder b(buf, ncm_params(NtbFormat::Ntb16, true), kNcm16);
  EXPECT_EQ(b.append(Bytes{}), AppendResult::ZeroLength);
  EXPECT_FALSE(b.reserve(0).has_value());
  EXPECT_TRUE(b.empty());
}

TEST(NtbBuildRules, PaddingIsZeroedInReusedBuffer) {
  for (const bool at_end : {false, true}) {
    for (const NtbFormat format : {NtbFormat::Ntb16, NtbFormat::Ntb32}) {
      SCOPED_TRACE(std::string(at_end ? "end " : "front ") + (format == NtbFormat::Ntb16 ? "16" : "32"));
      NtbOutParams p = ncm_params(format, at_end);
      p.ndp_out_divisor = 32;
      p.ndp_out_payload_remainder = 7;
      p.ndp_out_alignment = 64;
      p.front_ndp_capacity = 5;
      ByteVector buf(16384, 0xAA);
      NtbBuilder b(buf, p, {format, DatagramKind::Ncm, 0});
      for (std::uint16_t round = 0; round < 3; ++round) {  // later rounds see the earlier NTBs' bytes
        b.reset(round);
        for (std::size_t i = 0; i < 4; ++i) ASSERT_EQ(b.append(pattern(33u + 10u * round + i, 0xEE)), AppendResult::Appended);
        const Bytes ntb = b.finish();
        const Parsed parsed = parse(ntb, FunctionKind::Ncm);
        EXPECT_EQ(parsed.summary.errors, 0u) << error_names(parsed.errors);
        EXPECT_EQ(parsed.datagrams.size(), 4u);
        EXPECT_TRUE(PaddingIsZero(ntb, parsed, 0));
        std::fill(buf.begin() + static_cast<std::ptrdiff_t>(ntb.size()), buf.end(), std::uint8_t{0xAA});
      }
    }
  }
}

TEST(NtbBuildRules, ReserveCommitWritesInPlace) {
  NtbOutParams p = mbim_params(NtbFormat::Ntb32, /*ndp_at_end=*/true);
  ByteVector buf(16384, 0xAA);
  NtbBuilder b(buf, p, {NtbFormat::Ntb32, DatagramKind::Ips, 0});

  // Reserve an MTU's worth, as a TUN read would, and commit what the read returned.
  std::optional<MutableBytes> slot = b.reserve(1500);
  ASSERT_TRUE(slot.has_value());
  EXPECT_EQ(slot->data(), buf.data() + 16);  // right after the NTH32, at the payload offset
  EXPECT_EQ(slot->size(), 1500u);
  for (std::size_t i = 0; i < 60; ++i) (*slot)[i] = static_cast<std::uint8_t>(0x60 + i);
  b.commit(60);
  EXPECT_EQ(b.datagram_count(), 1u);

  // commit(0) abandons a reservation: nothing is added.
  ASSERT_TRUE(b.reserve(100).has_value());
  b.commit(0);
  EXPECT_EQ(b.datagram_count(), 1u);

  EXPECT_FALSE(b.reserve(b.max_datagram_bytes() + 1).has_value());
  slot = b.reserve(7);
  ASSERT_TRUE(slot.has_value());
  EXPECT_EQ(slot->data(), buf.data() + 76);  // 16 + 60
  std::fill(slot->begin(), slot->end(), std::uint8_t{0x77});
  b.commit(7);

  const Bytes ntb = b.finish();
  const Parsed parsed = parse(ntb, FunctionKind::Mbim);
  EXPECT_EQ(parsed.summary.errors, 0u) << error_names(parsed.errors);
  ASSERT_EQ(parsed.datagrams.size(), 2u);
  EXPECT_EQ(parsed.datagrams[0].length, 60u);
  EXPECT_EQ(parsed.datagrams[1].length, 7u);
  EXPECT_TRUE(SameBytes(ntb.subspan(16, 60), pattern(60, 0x60)));
  EXPECT_TRUE(PaddingIsZero(ntb, parsed, 0));
}

TEST(NtbBuildRules, ReserveCommitAppendsCrcForNcm1) {
  ByteVector buf(4096, 0xAA);
  NtbBuilder b(buf, ncm_params(NtbFormat::Ntb16, true), {NtbFormat::Ntb16, DatagramKind::NcmCrc, 0});
  std::optional<MutableBytes> slot = b.reserve(1514);
  ASSERT_TRUE(slot.has_value());
  const ByteVector frame = pattern(64, 0x10);
  std::copy(frame.begin(), frame.end(), slot->begin());
  b.commit(frame.size());
  const Parsed parsed = parse(b.finish(), FunctionKind::Ncm, /*verify_crc=*/true);
  EXPECT_EQ(parsed.summary.errors, 0u) << error_names(parsed.errors);
  ASSERT_EQ(parsed.datagrams.size(), 1u);
  EXPECT_EQ(parsed.datagrams[0].length, 64u);
  EXPECT_EQ(parsed.datagrams[0].kind, DatagramKind::NcmCrc);
}

TEST(NtbBuildRules, FinishOfEmptyNtbIsEmpty) {
  ByteVector buf(4096, 0xAA);
  NtbBuilder b(buf, ncm_params(NtbFormat::Ntb32, false), kNcm32);
  EXPECT_TRUE(b.empty());
  EXPECT_FALSE(b.full());
  EXPECT_TRUE(b.finish().empty());
  EXPECT_TRUE(std::all_of(buf.begin(), buf.end(), [](std::uint8_t v) { return v == 0xAA; }));  // untouched
  // Finished: full until reset.
  EXPECT_TRUE(b.full());
  EXPECT_EQ(b.append(pattern(60, 0)), AppendResult::Full);
  b.reset(9);
  EXPECT_EQ(b.append(pattern(60, 0)), AppendResult::Appended);
  const Bytes first = b.finish();
  const Bytes again = b.finish();  // idempotent
  EXPECT_EQ(first.data(), again.data());
  EXPECT_EQ(first.size(), again.size());
}

TEST(NtbBuildRules, SequenceIsWrittenToNth) {
  for (const NtbFormat format : {NtbFormat::Ntb16, NtbFormat::Ntb32}) {
    ByteVector buf(4096, 0xAA);
    NtbBuilder b(buf, ncm_params(format, true), {format, DatagramKind::Ncm, 0});
    b.reset(0xBEEF);
    EXPECT_EQ(b.sequence(), 0xBEEF);
    ASSERT_EQ(b.append(pattern(60, 0)), AppendResult::Appended);
    const Bytes ntb = b.finish();
    EXPECT_EQ(ntb[6], 0xEF);  // wSequence, little-endian, at the same offset in NTH16 and NTH32
    EXPECT_EQ(ntb[7], 0xBE);
    const Parsed parsed = parse(ntb, FunctionKind::Ncm);
    ASSERT_EQ(parsed.ntbs.size(), 1u);
    EXPECT_EQ(parsed.ntbs[0].sequence, 0xBEEF);
    EXPECT_EQ(parsed.ntbs[0].format, format);
    EXPECT_EQ(parsed.ntbs[0].block_length, ntb.size());
  }
}

// NTB16 offsets and wBlockLength are 16-bit: a 64 KiB dwNtbOutMaxSize means 65535 for NTB16.
TEST(NtbBuildRules, Ntb16NeverExceeds65535) {
  ByteVector buf(65536, 0xAA);
  NtbOutParams p = mbim_params(NtbFormat::Ntb16, /*ndp_at_end=*/true);
  p.ntb_out_max_size = 65536;
  NtbBuilder b(buf, p, {NtbFormat::Ntb16, DatagramKind::Ips, 0});
  EXPECT_EQ(b.params().ntb_out_max_size, 65535u);
  EXPECT_EQ(b.block_limit_bytes(), 65535u);
  // [12, 12 + L), NDP of 16 bytes at (65535 - 16) rounded down to 4 = 65516 -> L <= 65504.
  EXPECT_EQ(b.max_datagram_bytes(), 65504u);
  ASSERT_EQ(b.append(pattern(65504, 0)), AppendResult::Appended);
  Bytes ntb = b.finish();
  EXPECT_EQ(ntb.size(), 65532u);
  EXPECT_EQ(parse(ntb, FunctionKind::Mbim).summary.errors, 0u);

  b.reset(1);
  while (b.append(pattern(1500, 0)) == AppendResult::Appended) {}
  ntb = b.finish();
  EXPECT_LE(ntb.size(), 65535u);
  EXPECT_GT(ntb.size(), 65535u - 1500u);
  const Parsed parsed = parse(ntb, FunctionKind::Mbim);
  EXPECT_EQ(parsed.summary.errors, 0u) << error_names(parsed.errors);

  // NTB32 takes the full 65536.
  p.format = NtbFormat::Ntb32;
  NtbBuilder b32(buf, p, {NtbFormat::Ntb32, DatagramKind::Ips, 0});
  EXPECT_EQ(b32.block_limit_bytes(), 65536u);
}

// A buffer smaller than dwNtbOutMaxSize bounds the NTB instead of being overrun.
TEST(NtbBuildRules, SmallBufferBoundsTheNtb) {
  ByteVector buf(3000, 0xAA);
  NtbOutParams p = mbim_params(NtbFormat::Ntb32, /*ndp_at_end=*/true);
  p.ntb_out_max_size = 65536;
  NtbBuilder b(MutableBytes(buf).first(2500), p, {NtbFormat::Ntb32, DatagramKind::Ips, 0});
  EXPECT_EQ(b.block_limit_bytes(), 2500u);
  while (b.append(pattern(100, 0)) == AppendResult::Appended) {}
  EXPECT_LE(b.finish().size(), 2500u);
  EXPECT_TRUE(std::all_of(buf.begin() + 2500, buf.end(), [](std::uint8_t v) { return v == 0xAA; }));
}

// A device announcing an absurd wNtbOutMaxDatagrams with the NDP at the front does not get an
// NDP that eats the whole NTB.
TEST(NtbBuildRules, AbsurdMaxDatagramsWithFrontNdpIsBounded) {
  ByteVector buf(2048, 0xAA);
  NtbOutParams p = ncm_params(NtbFormat::Ntb16, /*ndp_at_end=*/false);
  p.ntb_out_max_size = 2048;
  p.ntb_out_max_datagrams = 65535;
  NtbBuilder b(buf, p, kNcm16);
  EXPECT_LT(b.datagram_limit(), 2048u / 5);
  EXPECT_GT(b.max_datagram_bytes(), 0u);
  std::size_t n = 0;
  while (b.append(pattern(14, 0)) == AppendResult::Appended) ++n;
  EXPECT_GT(n, 0u);
  const Parsed parsed = parse(b.finish(), FunctionKind::Ncm);
  EXPECT_EQ(parsed.summary.errors, 0u) << error_names(parsed.errors);
  EXPECT_EQ(parsed.datagrams.size(), n);
}

// With the NDP at the end one NTB carries one signature: MBIM sessions alternate per NTB.
TEST(NtbBuildRules, ResetSwitchesSignatureAndFormatFollowsParams) {
  ByteVector buf(4096, 0xAA);
  // The signature's format is ignored: the negotiated format wins.
  NtbBuilder b(buf, mbim_params(NtbFormat::Ntb16, true), {NtbFormat::Ntb32, DatagramKind::Ips, 0});
  EXPECT_EQ(b.signature().format, NtbFormat::Ntb16);
  b.reset(1, {NtbFormat::Ntb16, DatagramKind::Ips, 5});
  ASSERT_EQ(b.append(pattern(40, 0x45)), AppendResult::Appended);
  Parsed parsed = parse(b.finish(), FunctionKind::Mbim);
  ASSERT_EQ(parsed.datagrams.size(), 1u);
  EXPECT_EQ(parsed.datagrams[0].session, 5);
  b.reset(2, {NtbFormat::Ntb16, DatagramKind::Dss, 9});
  ASSERT_EQ(b.append(pattern(40, 0x45)), AppendResult::Appended);
  parsed = parse(b.finish(), FunctionKind::Mbim);
  ASSERT_EQ(parsed.datagrams.size(), 1u);
  EXPECT_EQ(parsed.datagrams[0].kind, DatagramKind::Dss);
  EXPECT_EQ(parsed.datagrams[0].session, 9);
}

TEST(NtbBuildRules, AppendResultNames) {
  EXPECT_STREQ(to_string(AppendResult::Appended), "appended");
  EXPECT_STREQ(to_string(AppendResult::Full), "full");
  EXPECT_STREQ(to_string(AppendResult::TooLarge), "too_large");
  EXPECT_STREQ(to_string(AppendResult::ZeroLength), "zero_length");
}

// ---- sanitize_out_params: one test per clamp ------------------------------------------------

constexpr NtbOutParams sane(NtbFormat format = NtbFormat::Ntb32) {
  NtbOutParams p;
  p.format = format;
  p.ntb_out_max_size = 16384;
  p.ndp_out_divisor = 4;
  p.ndp_out_payload_remainder = 2;
  p.ndp_out_alignment = 4;
  return p;
}

TEST(NtbOutParamsSanitize, SaneParamsAreKept) {
  constexpr SanitizedOutParams s = sanitize_out_params(sane());  // usable at compile time
  static_assert(!s.overridden.any());
  EXPECT_EQ(s.params, sane());
  // Idempotent on its own output, whatever the input.
  NtbOutParams garbage = sane(NtbFormat::Ntb16);
  garbage.ntb_out_max_size = 0;
  garbage.ndp_out_divisor = 3;
  garbage.ndp_out_payload_remainder = 9;
  garbage.ndp_out_alignment = 0;
  const SanitizedOutParams once = sanitize_out_params(garbage);
  const SanitizedOutParams twice = sanitize_out_params(once.params);
  EXPECT_EQ(twice.params, once.params);
  EXPECT_FALSE(twice.overridden.any());
}

TEST(NtbOutParamsSanitize, MaxSizeZeroMeans64KiB) {
  NtbOutParams p = sane(NtbFormat::Ntb32);
  p.ntb_out_max_size = 0;
  SanitizedOutParams s = sanitize_out_params(p);
  EXPECT_EQ(s.params.ntb_out_max_size, 65536u);
  EXPECT_TRUE(s.overridden.ntb_out_max_size);
  p.format = NtbFormat::Ntb16;
  s = sanitize_out_params(p);
  EXPECT_EQ(s.params.ntb_out_max_size, 65535u);  // 16-bit wBlockLength
  EXPECT_TRUE(s.overridden.ntb_out_max_size);
}

TEST(NtbOutParamsSanitize, MaxSizeClampedTo2048Through65536) {
  NtbOutParams p = sane(NtbFormat::Ntb32);
  p.ntb_out_max_size = 1024;
  EXPECT_EQ(sanitize_out_params(p).params.ntb_out_max_size, 2048u);
  EXPECT_TRUE(sanitize_out_params(p).overridden.ntb_out_max_size);
  p.ntb_out_max_size = 2048;  // "at least one MBIM device" reports exactly this: kept
  EXPECT_FALSE(sanitize_out_params(p).overridden.ntb_out_max_size);
  p.ntb_out_max_size = 0x100000;
  EXPECT_EQ(sanitize_out_params(p).params.ntb_out_max_size, 65536u);
  EXPECT_TRUE(sanitize_out_params(p).overridden.ntb_out_max_size);
  p.ntb_out_max_size = 65536;
  EXPECT_FALSE(sanitize_out_params(p).overridden.ntb_out_max_size);
  p.format = NtbFormat::Ntb16;
  EXPECT_EQ(sanitize_out_params(p).params.ntb_out_max_size, 65535u);
  EXPECT_TRUE(sanitize_out_params(p).overridden.ntb_out_max_size);
}

// wNdpOutDivisor and wNdpOutAlignment obey the same rule: a power of two, at least 4, below
// dwNtbOutMaxSize (16384 in sane()). Any other value in `field` becomes 4 and sets its own
// `overridden` flag only (`other_overridden`, the other field's flag, stays clear).
void expect_power_of_two_rule(NtbOutParams p, std::uint16_t NtbOutParams::*field, bool OutParamOverrides::*overridden,
                              bool OutParamOverrides::*other_overridden) {
  for (const std::uint16_t bad : std::initializer_list<std::uint16_t>{0, 1, 2, 3, 6, 12, 16384, 32768}) {  // 16384: not below max
    p.*field = bad;
    const SanitizedOutParams s = sanitize_out_params(p);
    EXPECT_EQ(s.params.*field, 4) << bad;
    EXPECT_TRUE(s.overridden.*overridden) << bad;
    EXPECT_FALSE(s.overridden.*other_overridden) << bad;
  }
  for (const std::uint16_t good : std::initializer_list<std::uint16_t>{4, 8, 512, 8192}) {
    p.*field = good;
    EXPECT_EQ(sanitize_out_params(p).params.*field, good);
    EXPECT_FALSE(sanitize_out_params(p).overridden.any()) << good;
  }
}

TEST(NtbOutParamsSanitize, DivisorMustBePowerOfTwoAtLeast4BelowMaxSize) {
  NtbOutParams p = sane();
  p.ndp_out_payload_remainder = 0;  // below every divisor tried, so that only the divisor is overridden
  expect_power_of_two_rule(p, &NtbOutParams::ndp_out_divisor, &OutParamOverrides::ndp_out_divisor,
                           &OutParamOverrides::ndp_out_alignment);
}

TEST(NtbOutParamsSanitize, AlignmentMustBePowerOfTwoAtLeast4BelowMaxSize) {
  expect_power_of_two_rule(sane(), &NtbOutParams::ndp_out_alignment, &OutParamOverrides::ndp_out_alignment,
                           &OutParamOverrides::ndp_out_divisor);
}

TEST(NtbOutParamsSanitize, RemainderNotBelowDivisorBecomesZero) {
  NtbOutParams p = sane();
  p.ndp_out_divisor = 8;
  p.ndp_out_payload_remainder = 7;
  EXPECT_FALSE(sanitize_out_params(p).overridden.any());
  p.ndp_out_payload_remainder = 8;
  SanitizedOutParams s = sanitize_out_params(p);
  EXPECT_EQ(s.params.ndp_out_payload_remainder, 0);
  EXPECT_TRUE(s.overridden.ndp_out_payload_remainder);
  // Checked against the sanitised divisor: 6 -> 4, so remainder 5 no longer fits.
  p.ndp_out_divisor = 6;
  p.ndp_out_payload_remainder = 5;
  s = sanitize_out_params(p);
  EXPECT_EQ(s.params.ndp_out_divisor, 4);
  EXPECT_EQ(s.params.ndp_out_payload_remainder, 0);
  EXPECT_TRUE(s.overridden.ndp_out_divisor);
  EXPECT_TRUE(s.overridden.ndp_out_payload_remainder);
}

TEST(NtbOutParamsSanitize, BuilderSanitizesItsOwnParams) {
  NtbOutParams raw = sane();
  raw.ntb_out_max_size = 0;
  raw.ndp_out_divisor = 0;
  raw.ndp_out_alignment = 3;
  ByteVector buf(65536);
  NtbBuilder b(buf, raw, kNcm32);
  EXPECT_EQ(b.params(), sanitize_out_params(raw).params);
}

// ---- property test --------------------------------------------------------------------------

// The layout rules restated independently of the builder (plain % and loops, no masks), used to
// predict where every datagram and the NDP must go and whether each append must succeed.
struct LayoutModel {
  NtbOutParams p;  // sanitised
  std::size_t limit_bytes;
  std::size_t trailer_bytes;
  std::size_t nth_bytes, ndp_header_bytes, dpe_bytes;
  std::size_t max_count;  // 0 = none
  std::size_t data_start;

  LayoutModel(const NtbOutParams& params, std::size_t buffer_bytes, DatagramKind kind)
      : p(params),
        limit_bytes(std::min<std::size_t>(buffer_bytes, params.ntb_out_max_size)),
        trailer_bytes(kind == DatagramKind::NcmCrc ? 4 : 0),
        nth_bytes(params.format == NtbFormat::Ntb16 ? 12 : 16),
        ndp_header_bytes(params.format == NtbFormat::Ntb16 ? 8 : 16),
        dpe_bytes(params.format == NtbFormat::Ntb16 ? 4 : 8) {
    if (p.ndp_at_end) {
      max_count = p.ntb_out_max_datagrams;
      data_start = nth_bytes;
    } else {
      max_count = p.ntb_out_max_datagrams != 0 ? p.ntb_out_max_datagrams : p.front_ndp_capacity;
      data_start = front_ndp() + ndp_header_bytes + (max_count + 1) * dpe_bytes;
    }
  }
  static std::size_t round_up(std::size_t x, std::size_t a) { return (x + a - 1) / a * a; }
  std::size_t front_ndp() const { return round_up(nth_bytes, p.ndp_out_alignment); }
  std::size_t payload_offset(std::size_t at) const {
    const std::size_t ethernet = p.ethernet_framing ? 14 : 0;
    while ((at + ethernet) % p.ndp_out_divisor != p.ndp_out_payload_remainder % p.ndp_out_divisor) ++at;
    return at;
  }
  bool fits(std::size_t count, std::size_t data_end, std::size_t length_bytes) const {
    if (max_count != 0 && count >= max_count) return false;
    const std::size_t stop = payload_offset(data_end) + length_bytes + trailer_bytes;
    if (!p.ndp_at_end) return stop <= limit_bytes;
    return round_up(stop, p.ndp_out_alignment) + ndp_header_bytes + (count + 2) * dpe_bytes <= limit_bytes;
  }
};

TEST(NtbBuildProperty, RandomNtbsParseBackAtModelOffsets) {
  // One buffer for every iteration, never cleared: stale bytes of earlier NTBs must never show.
  ByteVector buf(kNtbOutMaxSizeLimit, 0xAA);
  std::size_t total_datagrams = 0, too_large = 0, reserve_paths = 0;
  for (std::uint32_t seed = 1; seed <= 600; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937 rng(seed);
    const auto pick = [&rng](std::uint32_t lo, std::uint32_t hi) {
      return std::uniform_int_distribution<std::uint32_t>(lo, hi)(rng);
    };
    NtbOutParams raw;
    raw.format = pick(0, 1) != 0 ? NtbFormat::Ntb32 : NtbFormat::Ntb16;
    raw.ndp_at_end = pick(0, 1) != 0;
    raw.ndp_out_divisor = static_cast<std::uint16_t>(1u << pick(2, 6));
    raw.ndp_out_payload_remainder = static_cast<std::uint16_t>(pick(0, raw.ndp_out_divisor - 1u));
    raw.ndp_out_alignment = static_cast<std::uint16_t>(1u << pick(2, 6));
    raw.ntb_out_max_size = pick(2048, 65536);
    raw.ntb_out_max_datagrams = static_cast<std::uint16_t>(pick(0, 64));
    raw.ethernet_framing = pick(0, 1) != 0;
    raw.front_ndp_capacity = static_cast<std::uint16_t>(pick(1, 128));
    if (pick(0, 9) == 0) {  // one in ten: what a broken device might report
      raw.ndp_out_divisor = static_cast<std::uint16_t>(pick(0, 70));
      raw.ndp_out_payload_remainder = static_cast<std::uint16_t>(pick(0, 70));
      raw.ndp_out_alignment = static_cast<std::uint16_t>(pick(0, 70));
      raw.ntb_out_max_size = pick(0, 3) == 0 ? 0 : pick(0, 100000);
    }
    const DatagramKind kind = std::array{DatagramKind::Ncm, DatagramKind::NcmCrc, DatagramKind::Ips,
                                         DatagramKind::Dss}[pick(0, 3)];
    const bool ncm = kind == DatagramKind::Ncm || kind == DatagramKind::NcmCrc;
    const auto session = static_cast<std::uint8_t>(ncm ? 0 : pick(0, 255));
    const NtbOutParams params = sanitize_out_params(raw).params;
    const LayoutModel model(params, buf.size(), kind);
    const auto sequence = static_cast<std::uint16_t>(pick(0, 65535));

    NtbBuilder b(buf, raw, {raw.format, kind, session});
    ASSERT_EQ(b.params(), params);
    if (model.max_count != 0) {
      ASSERT_EQ(b.datagram_limit(), model.max_count);
    }
    // max_datagram_bytes is the exact largest fit in an empty NTB.
    ASSERT_TRUE(model.fits(0, model.data_start, b.max_datagram_bytes()));
    ASSERT_FALSE(model.fits(0, model.data_start, b.max_datagram_bytes() + 1));
    b.reset(sequence);

    std::vector<ByteVector> sent;
    std::vector<std::size_t> expected_offsets;
    std::size_t data_end = model.data_start;
    for (int attempt = 0; attempt < 100000; ++attempt) {
      ByteVector d(pick(14, 2000));
      for (auto& v : d) v = static_cast<std::uint8_t>(pick(0, 255));
      ASSERT_EQ(b.full(), !model.fits(sent.size(), data_end, 1));
      ASSERT_EQ(b.room_bytes() >= d.size(), model.fits(sent.size(), data_end, d.size()));
      AppendResult r;
      std::size_t claimed = d.size();  // what the model must fit
      if (pick(0, 3) == 0) {
        // Zero-copy path: reserve a little more than the datagram (a TUN read into an MTU-sized
        // slot), then commit the real length.
        ++reserve_paths;
        claimed += pick(0, 64);
        std::optional<MutableBytes> slot = b.reserve(claimed);
        if (slot) {
          ASSERT_EQ(slot->size(), claimed);
          std::copy(d.begin(), d.end(), slot->begin());
          b.commit(d.size());
          r = AppendResult::Appended;
        } else {
          r = claimed > b.max_datagram_bytes() ? AppendResult::TooLarge : AppendResult::Full;
        }
      } else {
        r = b.append(d);
      }
      if (claimed > b.max_datagram_bytes()) {
        ASSERT_EQ(r, AppendResult::TooLarge);
        ++too_large;
        continue;
      }
      if (!model.fits(sent.size(), data_end, claimed)) {
        ASSERT_EQ(r, AppendResult::Full);
        break;
      }
      ASSERT_EQ(r, AppendResult::Appended);
      expected_offsets.push_back(model.payload_offset(data_end));
      data_end = expected_offsets.back() + d.size() + model.trailer_bytes;
      sent.push_back(std::move(d));
    }
    ASSERT_EQ(b.datagram_count(), sent.size());

    const Bytes ntb = b.finish();
    if (sent.empty()) {
      ASSERT_TRUE(ntb.empty());
      continue;
    }
    total_datagrams += sent.size();
    ASSERT_LE(ntb.size(), params.ntb_out_max_size);
    ASSERT_LE(ntb.size(), model.limit_bytes);

    const Parsed parsed = parse(ntb, ncm ? FunctionKind::Ncm : FunctionKind::Mbim, /*verify_crc=*/true);
    ASSERT_EQ(parsed.summary.errors, 0u) << error_names(parsed.errors);
    ASSERT_EQ(parsed.summary.ntbs, 1u);
    ASSERT_EQ(parsed.ntbs[0].sequence, sequence);
    ASSERT_EQ(parsed.ntbs[0].format, params.format);
    ASSERT_EQ(parsed.ntbs[0].block_length, ntb.size());
    ASSERT_EQ(parsed.datagrams.size(), sent.size());
    for (std::size_t i = 0; i < sent.size(); ++i) {
      const DatagramView& d = parsed.datagrams[i];
      ASSERT_EQ(d.offset, expected_offsets[i]) << "datagram " << i;
      ASSERT_EQ((d.offset + (params.ethernet_framing ? 14u : 0u)) % params.ndp_out_divisor,
                params.ndp_out_payload_remainder % params.ndp_out_divisor);
      ASSERT_EQ(d.kind, kind);
      ASSERT_EQ(d.session, session);
      ASSERT_EQ(d.format, params.format);
      ASSERT_TRUE(SameBytes(ntb.subspan(static_cast<std::size_t>(d.offset), d.length), sent[i])) << "datagram " << i;
    }
    // The NDP: aligned, right after the NTH (front) or right after the last datagram (end).
    const std::size_t ndp = ndp_index_of(ntb);
    ASSERT_EQ(ndp % params.ndp_out_alignment, 0u);
    if (params.ndp_at_end) {
      ASSERT_EQ(ndp, LayoutModel::round_up(data_end, params.ndp_out_alignment));
      ASSERT_EQ(ntb.size(), ndp + load_le16(ntb, ndp + 4));
    } else {
      ASSERT_EQ(ndp, model.front_ndp());
      ASSERT_EQ(ntb.size(), data_end);
    }
    ASSERT_EQ(load_le16(ntb, ndp + 4), model.ndp_header_bytes + (sent.size() + 1) * model.dpe_bytes);
    ASSERT_TRUE(PaddingIsZero(ntb, parsed, model.trailer_bytes));
  }
  // The generator must actually reach the interesting cases.
  EXPECT_GT(total_datagrams, 5000u);
  EXPECT_GT(too_large, 0u);
  EXPECT_GT(reserve_paths, 1000u);
}

}  // namespace
}  // namespace wwan::ntb
