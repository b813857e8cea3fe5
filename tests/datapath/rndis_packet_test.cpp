// REMOTE_NDIS_PACKET_MSG parsing and building: golden bytes annotated field by field (MS-RNDIS
// §2.2.14; the single-frame layout is what rndis_host's rndis_tx_fixup writes: DataOffset 36, all
// OOB/PPI fields 0), hostile offsets, the short-packet pad, and builder -> parser round trips.
#include "datapath/rndis_packet.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <numeric>
#include <random>
#include <vector>

#include "tests/support/hex.hpp"

namespace wwan::rndis {
namespace {

using ::testing::ElementsAre;
using wwan::test::hex;
using ByteVector = std::vector<std::uint8_t>;

struct Collect {
  Bytes transfer;
  std::vector<ByteVector> frames;
  std::vector<PacketError> errors;
  void frame(const FrameView& f) {
    ASSERT_TRUE(fits(transfer.size(), f.offset, f.length));
    const auto b = transfer.begin() + static_cast<std::ptrdiff_t>(f.offset);
    frames.emplace_back(b, b + f.length);
  }
  void error(PacketError e) { errors.push_back(e); }
};

Collect parse(const ByteVector& t) {
  Collect c{t, {}, {}};
  parse_packet_transfer(t, c);
  return c;
}

void put32(ByteVector& m, std::size_t at, std::uint32_t v) { ntb::store_le32(m, at, v); }

// A 16-byte "frame" (Ethernet header + 2 bytes) whose bytes are `seed`, seed+1, ...
ByteVector frame(std::uint8_t seed, std::size_t n = 16) {
  ByteVector f(n);
  std::iota(f.begin(), f.end(), seed);
  return f;
}

// One frame, as rndis_tx_fixup builds it.
const ByteVector kOneFrame = hex(
    "01000000"   // MessageType REMOTE_NDIS_PACKET_MSG
    "3c000000"   // MessageLength 60 = 44 + 16
    "24000000"   // DataOffset 36: from byte 8, so the frame starts at 44
    "10000000"   // DataLength 16
    "00000000"   // OOBDataOffset
    "00000000"   // OOBDataLength
    "00000000"   // NumOOBDataElements
    "00000000"   // PerPacketInfoOffset
    "00000000"   // PerPacketInfoLength
    "00000000"   // VcHandle
    "00000000"   // Reserved
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf");  // the frame

TEST(RndisPacketParse, OneFrame) {
  const Collect c = parse(kOneFrame);
  EXPECT_THAT(c.frames, ElementsAre(frame(0xa0)));
  EXPECT_TRUE(c.errors.empty());
}

TEST(RndisPacketParse, SeveralMessagesWithPaddingAndTheShortPacketByte) {
  // Two messages, the first padded to 8 bytes (MessageLength 64 includes 4 bytes of padding),
  // then the 1-byte pad of a transfer that would have been a multiple of wMaxPacketSize.
  const ByteVector t = hex(
      "01000000 40000000 24000000 10000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000"
      "000102030405060708090a0b0c0d0e0f"
      "00000000"   // external padding, inside MessageLength 64
      "01000000 3c000000 24000000 10000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000"
      "101112131415161718191a1b1c1d1e1f"
      "00");       // the short-packet byte
  const Collect c = parse(t);
  EXPECT_THAT(c.frames, ElementsAre(frame(0x00), frame(0x10)));
  EXPECT_THAT(c.errors, ElementsAre(PacketError::ShortPacketPadding));
}

TEST(RndisPacketParse, DataOffsetWrapThatRndisHostLetsThrough) {
  // rndis_host checks `data_offset + data_len + 8 > msg_len` in u32: 0xFFFFFFF0 + 16 + 8 = 8.
  ByteVector t = kOneFrame;
  put32(t, kPacketDataOffsetAt, 0xFFFFFFF0);
  ByteVector two = t;
  two.insert(two.end(), kOneFrame.begin(), kOneFrame.end());
  const Collect c = parse(two);
  EXPECT_THAT(c.frames, ElementsAre(frame(0xa0)));  // the bad one skipped, the next one kept
  EXPECT_THAT(c.errors, ElementsAre(PacketError::DataOutOfMessage));
}

TEST(RndisPacketParse, EveryReasonAndItsScope) {
  struct Case {
    const char* name;
    std::size_t at;
    std::uint32_t value;
    PacketError error;
    bool next_kept;  // the good message after it is still delivered
  };
  const Case cases[] = {
      {"type", kPacketMessageTypeAt, 2, PacketError::NotPacketMessage, true},
      {"length < 8", kPacketMessageLengthAt, 4, PacketError::MessageLengthTooSmall, false},
      {"length past end", kPacketMessageLengthAt, 0x7FFFFFFF, PacketError::MessageExceedsTransfer, false},
      {"length < header", kPacketMessageLengthAt, 40, PacketError::MessageTooShort, true},
      {"data past message", kPacketDataLengthAt, 17, PacketError::DataOutOfMessage, true},
      {"data in header", kPacketDataOffsetAt, 8, PacketError::DataOutOfMessage, true},
      {"data 0", kPacketDataLengthAt, 0, PacketError::DataTooShort, true},
      {"data 13", kPacketDataLengthAt, 13, PacketError::DataTooShort, true},
      {"oob past message", kPacketOobDataLengthAt, 100, PacketError::OobOutOfMessage, true},
      {"ppi wraps", kPacketPerPacketInfoLengthAt, 0xFFFFFFFF, PacketError::PerPacketInfoOutOfMessage, true},
  };
  for (const Case& k : cases) {
    ByteVector t = kOneFrame;
    put32(t, k.at, k.value);
    if (k.at == kPacketMessageLengthAt && k.value == 40) {
      // keep the transfer framed: 40 bytes of message, then 20 bytes that are not a message
      // would be garbage, so the next message starts right at 40.
      t.resize(40);
    }
    t.insert(t.end(), kOneFrame.begin(), kOneFrame.end());
    const Collect c = parse(t);
    ASSERT_FALSE(c.errors.empty()) << k.name;
    EXPECT_EQ(c.errors.front(), k.error) << k.name;
    EXPECT_EQ(c.frames.size(), k.next_kept ? 1u : 0u) << k.name;
  }
}

TEST(RndisPacketParse, ValidOobAndPerPacketInfoAreSkippedNotFatal) {
  // The frame moved 8 bytes back to make room for an 8-byte PPI record at 44.
  ByteVector t = hex(
      "01000000 44000000"
      "2c000000"   // DataOffset 44: the frame at 52
      "10000000"   // DataLength 16
      "00000000 00000000 00000000"
      "24000000"   // PerPacketInfoOffset 36: at 44
      "08000000"   // PerPacketInfoLength 8
      "00000000 00000000"
      "0800000000000000"  // the PPI record (contents not interpreted)
      "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf");
  const Collect c = parse(t);
  EXPECT_THAT(c.frames, ElementsAre(frame(0xa0)));
  EXPECT_THAT(c.errors, ElementsAre(PacketError::PerPacketInfoIgnored));
}

TEST(RndisPacketParse, TrailingBytes) {
  ByteVector zeros = kOneFrame;
  zeros.resize(zeros.size() + 7, 0);  // an alignment tail
  EXPECT_THAT(parse(zeros).errors, ElementsAre(PacketError::ShortPacketPadding));
  ByteVector garbage = kOneFrame;
  garbage.insert(garbage.end(), {1, 2, 3});
  EXPECT_THAT(parse(garbage).errors, ElementsAre(PacketError::TrailingGarbage));
  ByteVector long_zeros = kOneFrame;
  long_zeros.resize(long_zeros.size() + 64, 0);  // longer than a header: not padding
  EXPECT_THAT(parse(long_zeros).errors, ElementsAre(PacketError::TrailingGarbage));
  EXPECT_EQ(parse(long_zeros).frames.size(), 1u);
  EXPECT_TRUE(parse({}).errors.empty());
}

TEST(RndisPacketParse, CountingSink) {
  PacketCounters counters;
  std::size_t frames = 0;
  CountingPacketSink sink{counters, [&](const FrameView&) { ++frames; }};
  ByteVector t = kOneFrame;
  t.push_back(0);
  counters.add(parse_packet_transfer(t, sink));
  EXPECT_EQ(frames, 1u);
  EXPECT_EQ(counters.frames, 1u);
  EXPECT_EQ(counters.messages, 1u);
  EXPECT_EQ(counters[PacketError::ShortPacketPadding], 1u);
  EXPECT_STREQ(to_string(PacketError::DataOutOfMessage), "data_out_of_message");
}

// ---- builder ------------------------------------------------------------------------------------

TEST(RndisPacketBuild, OneFrameIsWhatRndisHostSends) {
  ByteVector buffer(2048);
  PacketBuilder b(buffer, {.max_transfer_size = 2048, .max_packets_per_transfer = 1, .packet_alignment_factor = 0,
                           .max_packet_size = 512});
  ASSERT_EQ(b.append(frame(0xa0)), PacketAppendResult::Appended);
  EXPECT_EQ(b.append(frame(0xb0)), PacketAppendResult::Full);  // MaxPacketsPerTransfer 1
  const Bytes t = b.finish();
  EXPECT_EQ(ByteVector(t.begin(), t.end()), kOneFrame);
}

TEST(RndisPacketBuild, AlignmentPaddingCountsInThePreviousMessage) {
  ByteVector buffer(4096, 0xCC);
  PacketBuilder b(buffer, {.max_transfer_size = 4096, .max_packets_per_transfer = 8, .packet_alignment_factor = 3,
                           .max_packet_size = 512});
  ASSERT_EQ(b.append(frame(0x00, 15)), PacketAppendResult::Appended);  // 44 + 15 = 59 -> next at 64
  ASSERT_EQ(b.append(frame(0x10, 16)), PacketAppendResult::Appended);
  const Bytes t = b.finish();
  const ByteVector expected = hex(
      "01000000 40000000 24000000 0f000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000"
      "000102030405060708090a0b0c0d0e"
      "0000000000"  // 5 bytes of padding to 64, counted in MessageLength 0x40
      "01000000 3c000000 24000000 10000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000"
      "101112131415161718191a1b1c1d1e1f");  // the last message is not padded
  EXPECT_EQ(ByteVector(t.begin(), t.end()), expected);
}

TEST(RndisPacketBuild, ShortPacketPadWhenTheTransferIsAMultipleOfMaxPacketSize) {
  ByteVector buffer(2048);
  PacketBuilder b(buffer, {.max_transfer_size = 2048, .max_packets_per_transfer = 1, .packet_alignment_factor = 0,
                           .max_packet_size = 64});
  ASSERT_EQ(b.append(frame(0, 84)), PacketAppendResult::Appended);  // 44 + 84 = 128
  const Bytes t = b.finish();
  ASSERT_EQ(t.size(), 129u);
  EXPECT_EQ(t[128], 0);
  EXPECT_EQ(ntb::load_le32(t, kPacketMessageLengthAt), 128u);  // the pad is outside every message
  const Collect c = parse(ByteVector(t.begin(), t.end()));
  EXPECT_EQ(c.frames.size(), 1u);
  EXPECT_THAT(c.errors, ElementsAre(PacketError::ShortPacketPadding));
}

TEST(RndisPacketBuild, LimitsTooLargeTooShortAndReserve) {
  ByteVector buffer(65536);
  PacketBuilder b(buffer, {.max_transfer_size = 1600, .max_packets_per_transfer = 4, .packet_alignment_factor = 2,
                           .max_packet_size = 512});
  EXPECT_EQ(b.transfer_limit_bytes(), 1599u);  // one byte kept for the pad
  EXPECT_EQ(b.max_frame_bytes(), 1599u - 44u);
  EXPECT_EQ(b.append(frame(0, 1556)), PacketAppendResult::TooLarge);
  EXPECT_EQ(b.append(frame(0, 13)), PacketAppendResult::TooShort);
  ASSERT_EQ(b.append(frame(0, 1000)), PacketAppendResult::Appended);
  EXPECT_EQ(b.room_bytes(), 1599u - 1044u - 44u);
  EXPECT_EQ(b.append(frame(0, 600)), PacketAppendResult::Full);
  // Zero-copy: reserve the room, commit less.
  auto room = b.reserve(b.room_bytes());
  ASSERT_TRUE(room);
  std::iota(room->begin(), room->begin() + 20, std::uint8_t{0x40});
  b.commit(20);
  EXPECT_EQ(b.packet_count(), 2u);
  const Bytes t = b.finish();
  EXPECT_LE(t.size(), 1600u);
  const Collect c = parse(ByteVector(t.begin(), t.end()));
  ASSERT_EQ(c.frames.size(), 2u);
  EXPECT_EQ(c.frames[1], frame(0x40, 20));
  // A commit below an Ethernet header drops the reservation.
  b.reset();
  ASSERT_TRUE(b.reserve(100));
  b.commit(10);
  EXPECT_TRUE(b.empty());
  EXPECT_TRUE(b.finish().empty());
}

TEST(RndisPacketBuild, SanitizeClampsTheDevicesAnswers) {
  const auto s = sanitize_packet_out_params({.max_transfer_size = 0, .max_packets_per_transfer = 0,
                                             .packet_alignment_factor = 31, .max_packet_size = 512});
  EXPECT_EQ(s.params.max_transfer_size, kMinTransferSize);
  EXPECT_EQ(s.params.max_packets_per_transfer, 1u);  // an absurd alignment: one message per transfer
  EXPECT_EQ(s.params.packet_alignment_factor, 0u);
  EXPECT_TRUE(s.overridden.max_transfer_size && s.overridden.max_packets_per_transfer &&
              s.overridden.packet_alignment_factor);
  const auto big = sanitize_packet_out_params({.max_transfer_size = 1u << 20, .max_packets_per_transfer = 1000,
                                               .packet_alignment_factor = 7, .max_packet_size = 512});
  EXPECT_EQ(big.params.max_transfer_size, kMaxTransferSizeLimit);
  EXPECT_EQ(big.params.max_packets_per_transfer, kMaxPacketsPerTransferLimit);
  EXPECT_EQ(big.params.packet_alignment_factor, 7u);
  const PacketOutParams sane{16384, 8, 3, 512};
  EXPECT_FALSE(sanitize_packet_out_params(sane).overridden.any());
  EXPECT_EQ(sanitize_packet_out_params(sanitize_packet_out_params(big.params).params).params, big.params);
}

TEST(RndisPacketBuild, RandomRoundTrips) {
  std::mt19937 rng(7);
  for (int round = 0; round < 300; ++round) {
    const PacketOutParams params{static_cast<std::uint32_t>(64 + rng() % 20000),
                                 static_cast<std::uint32_t>(1 + rng() % 20),
                                 static_cast<std::uint32_t>(rng() % 8),
                                 static_cast<std::uint16_t>((rng() % 2) ? 512 : 64)};
    ByteVector buffer(params.max_transfer_size + 64);
    PacketBuilder b(buffer, params);
    std::vector<ByteVector> sent;
    for (int i = 0; i < 40; ++i) {
      const ByteVector f = frame(static_cast<std::uint8_t>(rng()), 14 + rng() % 1500);
      const PacketAppendResult r = b.append(f);
      if (r == PacketAppendResult::Appended) sent.push_back(f);
      else if (r == PacketAppendResult::Full) break;
    }
    const Bytes t = b.finish();
    ASSERT_LE(t.size(), params.max_transfer_size);
    ASSERT_LE(sent.size(), params.max_packets_per_transfer);
    if (params.max_packet_size != 0 && !t.empty()) {
      ASSERT_NE(t.size() % params.max_packet_size, 0u);
    }
    const Collect c = parse(ByteVector(t.begin(), t.end()));
    ASSERT_EQ(c.frames, sent) << "round " << round;
    for (const PacketError e : c.errors) ASSERT_EQ(e, PacketError::ShortPacketPadding);
    // Every message starts aligned.
    std::size_t at = 0;
    for (std::size_t i = 0; i < sent.size(); ++i) {
      ASSERT_EQ(at % (std::size_t{1} << params.packet_alignment_factor), 0u);
      at += ntb::load_le32(t, at + kPacketMessageLengthAt);
    }
  }
}

}  // namespace
}  // namespace wwan::rndis
