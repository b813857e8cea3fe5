// Wire constants and layouts of NCM / MBIM transfer blocks.
//
// USB CDC NCM 1.0 §3 (NTB structure) and MBIM 1.0 §7 (NDP signatures for IP and device-service
// streams). Values checked against Linux include/uapi/linux/usb/cdc.h, which mirrors the specs.
// Everything on the wire is little-endian; every read goes through load_le16/32 so that
// unaligned NTB fields (NDPs may sit at any offset a device chooses) never become UB.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace wwan::ntb {

using Bytes = std::span<const std::uint8_t>;
using MutableBytes = std::span<std::uint8_t>;

// ---- signatures (little-endian u32) -------------------------------------------------------
inline constexpr std::uint32_t kNth16Signature = 0x484D434E;  // "NCMH"
inline constexpr std::uint32_t kNth32Signature = 0x686D636E;  // "ncmh"
inline constexpr std::uint32_t kNdp16NoCrcSignature = 0x304D434E;  // "NCM0"
inline constexpr std::uint32_t kNdp16CrcSignature = 0x314D434E;    // "NCM1"
inline constexpr std::uint32_t kNdp32NoCrcSignature = 0x306D636E;  // "ncm0"
inline constexpr std::uint32_t kNdp32CrcSignature = 0x316D636E;    // "ncm1"
// MBIM 1.0 §7.1/§7.2: the low three bytes name the stream, the top byte is the session id.
inline constexpr std::uint32_t kMbimIps16Signature = 0x00535049;  // "IPS" + session
inline constexpr std::uint32_t kMbimIps32Signature = 0x00737069;  // "ips" + session
inline constexpr std::uint32_t kMbimDss16Signature = 0x00535344;  // "DSS" + session
inline constexpr std::uint32_t kMbimDss32Signature = 0x00737364;  // "dss" + session
inline constexpr std::uint32_t kMbimSessionMask = 0xFF000000;

// ---- fixed sizes (bytes) --------------------------------------------------------------------
// NTH16 = {dwSignature, wHeaderLength, wSequence, wBlockLength, wNdpIndex}
inline constexpr std::size_t kNth16Size = 12;
// NTH32 = {dwSignature, wHeaderLength, wSequence, dwBlockLength, dwNdpIndex}
inline constexpr std::size_t kNth32Size = 16;
// NDP16 = {dwSignature, wLength, wNextNdpIndex} + Dpe16[]
inline constexpr std::size_t kNdp16HeaderSize = 8;
inline constexpr std::size_t kDpe16Size = 4;  // {wDatagramIndex, wDatagramLength}
// NDP32 = {dwSignature, wLength, wReserved6, dwNextNdpIndex, dwReserved12} + Dpe32[]
inline constexpr std::size_t kNdp32HeaderSize = 16;
inline constexpr std::size_t kDpe32Size = 8;  // {dwDatagramIndex, dwDatagramLength}
// CDC NCM 1.0 §3.3: the smallest valid NDP holds one datagram entry and the null terminator.
inline constexpr std::size_t kNdp16MinLength = kNdp16HeaderSize + 2 * kDpe16Size;  // 0x10
inline constexpr std::size_t kNdp32MinLength = kNdp32HeaderSize + 2 * kDpe32Size;  // 0x20
inline constexpr std::size_t kNcmCrcSize = 4;        // NCM1/ncm1: CRC-32 appended to each datagram
inline constexpr std::size_t kEthernetHeaderSize = 14;
// CDC NCM 1.0 §3.2.1 / Table 6-3: neither side may negotiate an NTB below 2048 bytes.
inline constexpr std::size_t kNtbMinSize = 2048;
// Offsets are 16-bit in NTB16, so an NTB16 can never exceed this.
inline constexpr std::size_t kNtb16MaxSize = 0xFFFF;

enum class NtbFormat : std::uint8_t { Ntb16 = 16, Ntb32 = 32 };

constexpr std::size_t nth_size(NtbFormat f) { return f == NtbFormat::Ntb16 ? kNth16Size : kNth32Size; }
constexpr std::size_t ndp_header_size(NtbFormat f) {
  return f == NtbFormat::Ntb16 ? kNdp16HeaderSize : kNdp32HeaderSize;
}
constexpr std::size_t dpe_size(NtbFormat f) { return f == NtbFormat::Ntb16 ? kDpe16Size : kDpe32Size; }
constexpr std::size_t ndp_min_length(NtbFormat f) {
  return f == NtbFormat::Ntb16 ? kNdp16MinLength : kNdp32MinLength;
}

// What the datagrams behind one NDP are. NCM carries Ethernet frames, MBIM carries raw IP
// (IPS) or device-service-stream bytes (DSS), both tagged with a session id.
enum class DatagramKind : std::uint8_t {
  Ncm,     // NCM0/ncm0: an Ethernet frame
  NcmCrc,  // NCM1/ncm1: an Ethernet frame followed by a 4-byte CRC-32 (stripped by the parser)
  Ips,     // MBIM IPS<n>/ips<n>: an IPv4 or IPv6 packet of session n
  Dss,     // MBIM DSS<n>/dss<n>: device service stream n
};

const char* to_string(DatagramKind kind);

// An NDP signature, decoded: its format (the 16- and 32-bit forms are distinguished by case),
// its kind and, for MBIM, its session id.
struct NdpSignature {
  NtbFormat format;
  DatagramKind kind;
  std::uint8_t session;  // 0 for NCM
};

// Returns false for anything that is not one of the eight known signature families.
constexpr bool decode_ndp_signature(std::uint32_t sig, NdpSignature& out) {
  switch (sig) {
    case kNdp16NoCrcSignature: out = {NtbFormat::Ntb16, DatagramKind::Ncm, 0}; return true;
    case kNdp16CrcSignature: out = {NtbFormat::Ntb16, DatagramKind::NcmCrc, 0}; return true;
    case kNdp32NoCrcSignature: out = {NtbFormat::Ntb32, DatagramKind::Ncm, 0}; return true;
    case kNdp32CrcSignature: out = {NtbFormat::Ntb32, DatagramKind::NcmCrc, 0}; return true;
    default: break;
  }
  const auto session = static_cast<std::uint8_t>(sig >> 24);
  switch (sig & ~kMbimSessionMask) {
    case kMbimIps16Signature: out = {NtbFormat::Ntb16, DatagramKind::Ips, session}; return true;
    case kMbimIps32Signature: out = {NtbFormat::Ntb32, DatagramKind::Ips, session}; return true;
    case kMbimDss16Signature: out = {NtbFormat::Ntb16, DatagramKind::Dss, session}; return true;
    case kMbimDss32Signature: out = {NtbFormat::Ntb32, DatagramKind::Dss, session}; return true;
    default: return false;
  }
}

constexpr std::uint32_t encode_ndp_signature(NdpSignature s) {
  const bool b16 = s.format == NtbFormat::Ntb16;
  const std::uint32_t session = static_cast<std::uint32_t>(s.session) << 24;
  switch (s.kind) {
    case DatagramKind::Ncm: return b16 ? kNdp16NoCrcSignature : kNdp32NoCrcSignature;
    case DatagramKind::NcmCrc: return b16 ? kNdp16CrcSignature : kNdp32CrcSignature;
    case DatagramKind::Ips: return (b16 ? kMbimIps16Signature : kMbimIps32Signature) | session;
    case DatagramKind::Dss: return (b16 ? kMbimDss16Signature : kMbimDss32Signature) | session;
  }
  return 0;
}

// ---- bounds and little-endian access --------------------------------------------------------

// True when [off, off + len) lies inside a buffer of `total` bytes. Written so that it cannot
// wrap for any 64-bit inputs: never `off + len <= total` (CVE-2026-23447/23448 were that shape
// in 32-bit arithmetic with the NDP offset left out).
constexpr bool fits(std::uint64_t total, std::uint64_t off, std::uint64_t len) {
  return off <= total && len <= total - off;
}

// Precondition for all loads: the caller has checked fits(buf.size(), off, N).
inline std::uint16_t load_le16(Bytes buf, std::size_t off) {
  std::uint16_t v;
  std::memcpy(&v, buf.data() + off, sizeof v);
  if constexpr (std::endian::native == std::endian::big) v = static_cast<std::uint16_t>((v >> 8) | (v << 8));
  return v;
}
inline std::uint32_t load_le32(Bytes buf, std::size_t off) {
  std::uint32_t v;
  std::memcpy(&v, buf.data() + off, sizeof v);
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap32(v);
  return v;
}
inline void store_le16(MutableBytes buf, std::size_t off, std::uint16_t v) {
  if constexpr (std::endian::native == std::endian::big) v = static_cast<std::uint16_t>((v >> 8) | (v << 8));
  std::memcpy(buf.data() + off, &v, sizeof v);
}
inline void store_le32(MutableBytes buf, std::size_t off, std::uint32_t v) {
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap32(v);
  std::memcpy(buf.data() + off, &v, sizeof v);
}

}  // namespace wwan::ntb
