// The RNDIS control codec against golden bytes written field by field from MS-RNDIS §2.2 and from
// what Linux's rndis_host puts on the wire (drivers/net/usb/rndis_host.c generic_rndis_bind: an
// INITIALIZE with MaxTransferSize 2048 at high speed and MTU 1500, the SET of the packet filter
// 0x2d), then hostile lengths and offsets.
#include "control/rndis_wire.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>
#include <variant>

#include "tests/support/hex.hpp"

namespace wwan::rndis {
namespace {

using wwan::test::hex;

// By value: the tests decode into a temporary DecodedControl, which a reference would outlive
// (ASan: stack-use-after-scope).
template <class T>
T as(const DecodedControl& d) {
  EXPECT_TRUE(d.ok()) << to_string(d.error);
  EXPECT_TRUE(std::holds_alternative<T>(d.message));
  return std::get<T>(d.message);
}

void put32(ByteVector& m, std::size_t at, std::uint32_t v) { ntb::store_le32(m, at, v); }

TEST(RndisWire, InitializeAsRndisHostSendsIt) {
  const ByteVector golden = hex(
      "02000000"   // MessageType REMOTE_NDIS_INITIALIZE_MSG
      "18000000"   // MessageLength 24
      "01000000"   // RequestId 1
      "01000000"   // MajorVersion 1
      "00000000"   // MinorVersion 0
      "00080000"); // MaxTransferSize 2048 (rndis_host: 1500 + 14 + 44 + 513, rounded down to 512)
  EXPECT_EQ(encode_initialize({1, 1, 0, 2048}), golden);
  EXPECT_EQ(as<InitializeMsg>(decode_control(golden)), (InitializeMsg{1, 1, 0, 2048}));
}

TEST(RndisWire, InitializeCmplt) {
  const ByteVector golden = hex(
      "02000080"   // MessageType REMOTE_NDIS_INITIALIZE_CMPLT
      "34000000"   // MessageLength 52
      "07000000"   // RequestId 7
      "00000000"   // Status RNDIS_STATUS_SUCCESS
      "01000000"   // MajorVersion 1
      "00000000"   // MinorVersion 0
      "01000000"   // DeviceFlags RNDIS_DF_CONNECTIONLESS
      "00000000"   // Medium RNDIS_MEDIUM_802_3
      "08000000"   // MaxPacketsPerTransfer 8
      "00400000"   // MaxTransferSize 16384
      "03000000"   // PacketAlignmentFactor 3 (8 bytes)
      "00000000"   // AFListOffset
      "00000000"); // AFListSize
  InitializeCmplt c;
  c.request_id = 7;
  c.max_packets_per_transfer = 8;
  c.max_transfer_size = 16384;
  c.packet_alignment_factor = 3;
  EXPECT_EQ(encode_initialize_cmplt(c), golden);
  EXPECT_EQ(as<InitializeCmplt>(decode_control(golden)), c);
}

TEST(RndisWire, QueryAndItsCompletion) {
  const ByteVector query = hex(
      "04000000"   // MessageType REMOTE_NDIS_QUERY_MSG
      "1c000000"   // MessageLength 28
      "02000000"   // RequestId 2
      "01010101"   // Oid OID_802_3_PERMANENT_ADDRESS
      "00000000"   // InformationBufferLength 0
      "14000000"   // InformationBufferOffset 20 (from RequestId: right after the header; rndis_host's value)
      "00000000"); // DeviceVcHandle
  EXPECT_EQ(encode_query(2, kOid8023PermanentAddress), query);
  const OidRequest& q = as<OidRequest>(decode_control(query));
  EXPECT_FALSE(q.set);
  EXPECT_EQ(q.request_id, 2u);
  EXPECT_EQ(q.oid, kOid8023PermanentAddress);
  EXPECT_TRUE(q.information_buffer.empty());

  const ByteVector done = hex(
      "04000080"   // MessageType REMOTE_NDIS_QUERY_CMPLT
      "1e000000"   // MessageLength 30
      "02000000"   // RequestId 2
      "00000000"   // Status success
      "06000000"   // InformationBufferLength 6
      "10000000"   // InformationBufferOffset 16 (from RequestId: byte 24)
      "020e8d000002");  // the MAC
  const ByteVector mac = hex("020e8d000002");
  EXPECT_EQ(encode_query_cmplt(2, kStatusSuccess, mac), done);
  const QueryCmplt& c = as<QueryCmplt>(decode_control(done));
  EXPECT_EQ(c.request_id, 2u);
  EXPECT_EQ(c.status, kStatusSuccess);
  EXPECT_THAT(c.information_buffer, ::testing::ElementsAreArray(mac));

  // A refusal carries no buffer: length and offset 0.
  EXPECT_EQ(encode_query_cmplt(3, kStatusNotSupported),
            hex("04000080 18000000 03000000 bb0000c0 00000000 00000000"));
}

TEST(RndisWire, SetPacketFilterAsRndisHostSendsIt) {
  const ByteVector golden = hex(
      "05000000"   // MessageType REMOTE_NDIS_SET_MSG
      "20000000"   // MessageLength 32 (rndis_host: 4 + sizeof(struct rndis_set))
      "05000000"   // RequestId 5
      "0e010100"   // Oid OID_GEN_CURRENT_PACKET_FILTER
      "04000000"   // InformationBufferLength 4
      "14000000"   // InformationBufferOffset 20 (sizeof(struct rndis_set) - 8)
      "00000000"   // DeviceVcHandle
      "2d000000"); // RNDIS_DEFAULT_FILTER: DIRECTED | ALL_MULTICAST | BROADCAST | PROMISCUOUS
  const ByteVector filter = oid_u32_buffer(
      kPacketTypeDirected | kPacketTypeAllMulticast | kPacketTypeBroadcast | kPacketTypePromiscuous);
  EXPECT_EQ(encode_set(5, kOidGenCurrentPacketFilter, filter), golden);
  const OidRequest& s = as<OidRequest>(decode_control(golden));
  EXPECT_TRUE(s.set);
  EXPECT_EQ(oid_u32(s.information_buffer), 0x2du);

  EXPECT_EQ(encode_set_cmplt(5, kStatusSuccess), hex("05000080 10000000 05000000 00000000"));
  EXPECT_EQ(as<SetCmplt>(decode_control(hex("05000080 10000000 05000000 00000000"))), (SetCmplt{5, 0}));
}

TEST(RndisWire, HaltResetKeepalive) {
  // HALT: type 3, length 12, RequestId.
  EXPECT_EQ(encode_halt(9), hex("03000000 0c000000 09000000"));
  EXPECT_EQ(as<HaltMsg>(decode_control(hex("03000000 0c000000 09000000"))).request_id, 9u);
  // RESET: type 6, length 12, Reserved 0 (no RequestId).
  EXPECT_EQ(encode_reset(), hex("06000000 0c000000 00000000"));
  EXPECT_TRUE(std::holds_alternative<ResetMsg>(decode_control(encode_reset()).message));
  // RESET_CMPLT: Status, AddressingReset 1.
  EXPECT_EQ(encode_reset_cmplt(kStatusSuccess, 1), hex("06000080 10000000 00000000 01000000"));
  EXPECT_EQ(as<ResetCmplt>(decode_control(hex("06000080 10000000 00000000 01000000"))), (ResetCmplt{0, 1}));
  // KEEPALIVE both ways.
  EXPECT_EQ(encode_keepalive(0x11), hex("08000000 0c000000 11000000"));
  EXPECT_EQ(encode_keepalive_cmplt(0x11, kStatusSuccess), hex("08000080 10000000 11000000 00000000"));
  EXPECT_EQ(as<KeepaliveCmplt>(decode_control(hex("08000080 10000000 11000000 010000c0"))),
            (KeepaliveCmplt{0x11, kStatusFailure}));
}

TEST(RndisWire, IndicateStatusMediaConnectAndDisconnect) {
  const ByteVector connect = hex(
      "07000000"   // MessageType REMOTE_NDIS_INDICATE_STATUS_MSG
      "14000000"   // MessageLength 20
      "0b000140"   // Status RNDIS_STATUS_MEDIA_CONNECT
      "00000000"   // StatusBufferLength 0
      "00000000"); // StatusBufferOffset 0
  EXPECT_EQ(encode_indicate_status(kStatusMediaConnect), connect);
  EXPECT_EQ(as<IndicateStatus>(decode_control(connect)).status, kStatusMediaConnect);
  EXPECT_EQ(as<IndicateStatus>(decode_control(encode_indicate_status(kStatusMediaDisconnect))).status,
            kStatusMediaDisconnect);
  // With a diagnostic buffer (RNDIS_STATUS_INVALID_DATA: DiagStatus, ErrorOffset).
  const ByteVector diag = hex("bb0000c0 04000000");
  const ByteVector invalid = encode_indicate_status(kStatusInvalidData, diag);
  EXPECT_EQ(invalid, hex("07000000 1c000000 150001c0 08000000 0c000000 bb0000c0 04000000"));
  const IndicateStatus& s = as<IndicateStatus>(decode_control(invalid));
  EXPECT_THAT(s.status_buffer, ::testing::ElementsAreArray(diag));
  EXPECT_FALSE(s.status_buffer_bad);
}

TEST(RndisWire, ResponseAvailableIsNotACdcNotification) {
  std::array<std::uint8_t, 8> n{};
  ASSERT_EQ(encode_response_available(n), 8u);
  EXPECT_EQ(ByteVector(n.begin(), n.end()), hex("01000000 00000000"));
  EXPECT_TRUE(is_response_available(n));
  // A CDC RESPONSE_AVAILABLE (bmRequestType 0xA1) is not the RNDIS one.
  EXPECT_FALSE(is_response_available(hex("a1010000 00000000")));
  EXPECT_FALSE(is_response_available(hex("010000")));
}

TEST(RndisWire, TrailingBytesAfterMessageLengthAreIgnored) {
  ByteVector padded = encode_set_cmplt(1, kStatusSuccess);
  padded.resize(64, 0);  // a GET_ENCAPSULATED_RESPONSE that returned the whole buffer
  EXPECT_EQ(as<SetCmplt>(decode_control(padded)), (SetCmplt{1, 0}));
}

TEST(RndisWire, HostileLengthsAndOffsets) {
  EXPECT_EQ(decode_control(hex("0400")).error, ControlError::TooShort);
  EXPECT_EQ(decode_control(hex("01000000 2c000000")).error, ControlError::UnknownType);  // a PACKET_MSG
  EXPECT_EQ(decode_control(hex("99000000 0c000000 00000000")).error, ControlError::UnknownType);
  // MessageLength shorter than the type's fixed part, and longer than what arrived.
  EXPECT_EQ(decode_control(hex("05000080 0c000000 05000000 00000000")).error, ControlError::MessageLengthMismatch);
  EXPECT_EQ(decode_control(hex("05000080 14000000 05000000 00000000")).error, ControlError::MessageLengthMismatch);
  ByteVector huge = encode_set_cmplt(1, 0);
  put32(huge, 4, 0xFFFFFFF0);
  EXPECT_EQ(decode_control(huge).error, ControlError::TooLarge);

  // QUERY_CMPLT buffers: offset + length wrap in 32 bits, past the end, inside the header.
  const ByteVector base = encode_query_cmplt(2, kStatusSuccess, hex("020e8d000002"));
  for (const auto& [offset, length] : {std::pair<std::uint32_t, std::uint32_t>{0xFFFFFFF8, 0x10},  // 8+off wraps
                                      {16, 7},            // one byte past MessageLength
                                      {0, 6},             // inside the header (byte 8)
                                      {16, 0xFFFFFFFF}}) {
    ByteVector m = base;
    put32(m, 16, length);
    put32(m, 20, offset);
    EXPECT_EQ(decode_control(m).error, ControlError::BufferOutOfBounds) << offset << "+" << length;
  }
  // An empty buffer may say any offset.
  ByteVector empty = encode_query_cmplt(2, kStatusNotSupported);
  put32(empty, 20, 0xFFFFFFFF);
  EXPECT_TRUE(as<QueryCmplt>(decode_control(empty)).information_buffer.empty());

  // QUERY_MSG / SET_MSG the same.
  ByteVector set = encode_set(5, kOidGenCurrentPacketFilter, oid_u32_buffer(1));
  put32(set, 20, 0xFFFFFFF4);  // 8 + 0xFFFFFFF4 = 2^32 + 4: wraps to 4 in 32 bits
  EXPECT_EQ(decode_control(set).error, ControlError::BufferOutOfBounds);

  // INDICATE_STATUS with a lying buffer: the status is still taken, the buffer ignored.
  ByteVector indicate = encode_indicate_status(kStatusMediaDisconnect);
  put32(indicate, 12, 100);
  put32(indicate, 16, 12);
  const DecodedControl d = decode_control(indicate);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(std::get<IndicateStatus>(d.message).status, kStatusMediaDisconnect);
  EXPECT_TRUE(std::get<IndicateStatus>(d.message).status_buffer_bad);
}

TEST(RndisWire, OidU32) {
  EXPECT_EQ(oid_u32(hex("dc050000")), 1500u);
  EXPECT_EQ(oid_u32(hex("dc05000000000000")), 1500u);
  EXPECT_EQ(oid_u32(hex("dc0500")), std::nullopt);
  EXPECT_EQ(oid_u32_buffer(10'000'000), hex("80969800"));
}

TEST(RndisWire, Names) {
  EXPECT_STREQ(message_name(kQueryCmplt), "REMOTE_NDIS_QUERY_CMPLT");
  EXPECT_STREQ(status_name(kStatusMediaConnect), "RNDIS_STATUS_MEDIA_CONNECT");
  EXPECT_STREQ(oid_name(kOidGenLinkSpeed), "OID_GEN_LINK_SPEED");
  EXPECT_STREQ(oid_name(0x12345678), "UNKNOWN");
}

}  // namespace
}  // namespace wwan::rndis
