// NTB parser: the bytes of one completed bulk-IN transfer in, datagram views out.
//
// Pure: no I/O, no allocation, no copies. Every device-supplied length and offset is checked in
// 64-bit arithmetic (ntb::fits) before a single byte behind it is read. A bad datagram entry is
// skipped and the rest of its NDP is kept; a bad NDP ends that NDP chain; a bad NTH drops the
// rest of the transfer. Every problem is reported to the sink with a named reason (NtbError).
//
// What real firmware does that this accepts, with the reason (../shared/reference/anchors.md §5):
//   - NTH16 and NTH32 are told apart per NTB by signature, whatever was negotiated (Huawei E3372h
//     fw 21.318 reverts to NTB32 after the alt switch; K5160 sends ncmh to NTB16-only hosts) [#10]
//   - several NTBs back to back in one transfer (Windows hosts, straddling 16 KiB requests) [#2]
//   - wBlockLength 0: "the block is terminated by a short packet" = the rest of the transfer [#1]
//   - the NDP anywhere in the block: after the NTH, between datagrams or at the end (Huawei) [#4,#5]
//   - NDP chains via wNextNdpIndex, bounded (kMaxNdpsPerNtb) with loop detection [#6]
//   - a missing null terminator: entries are read to the end of wLength, the last datagram is
//     delivered and ndp_missing_terminator is counted (Linux drops that datagram) [#7]
//   - wHeaderLength above the minimum, a misaligned NDP index or wLength: counted, tolerated [#9]
//   - NCM1/ncm1: the 4-byte CRC is stripped and optionally verified [#19]
// What it rejects: an NDP whose wLength runs past the block (the CVE-2026-23447/23448 shape), an
// entry outside the block or overlapping the NTH or its own NDP (that entry only) [#8].
#pragma once

#include <array>
#include <cstdint>

#include "datapath/crc32.hpp"
#include "datapath/ntb_wire.hpp"

namespace wwan::ntb {

// Every reason the parser reports. The order is the export order of the counters; the names
// (to_string) are the JSON "reason" strings of `wwan-dp decode ntb` and never change meaning.
// Scope says what is lost when the reason is reported.
enum class NtbError : std::uint8_t {
  // Scope: the rest of the transfer (the framing cannot be trusted past this point).
  NthTruncated,             // fewer bytes left than an NTH needs
  NthBadSignature,          // the transfer does not start with NCMH / ncmh
  NthBadHeaderLength,       // wHeaderLength below 12 (NTH16) / 16 (NTH32)
  NthBadBlockLength,        // wBlockLength nonzero but below the NTH size
  NthBlockExceedsTransfer,  // wBlockLength runs past the end of the transfer (truncated NTB)
  TrailingGarbage,          // after the last NTB: bytes that are neither zero padding nor an NTH
  // Scope: the NDP chain of this NTB from this NDP on.
  NthNoNdp,                 // wNdpIndex is 0: the NTB points at no NDP
  NdpIndexOverlapsNth,      // NDP index inside the NTH
  NdpOutOfBlock,            // NDP header does not fit inside wBlockLength
  NdpBadSignature,          // not NCM0/NCM1/IPS<n>/DSS<n> (or the 32-bit forms)
  NdpFormatMismatch,        // an NDP16 inside an NTH32 or the reverse
  NdpBadLength,             // wLength below the minimum (16 for NDP16, 32 for NDP32)
  NdpExceedsBlock,          // NDP index + wLength past wBlockLength (the CVE shape)
  NdpChainLoop,             // wNextNdpIndex points back at an NDP already walked
  NdpChainTooLong,          // more than kMaxNdpsPerNtb NDPs in one NTB
  // Scope: the datagrams of this NDP only (the chain continues).
  NdpMbimInNcm,             // IPS/DSS NDP while parsing an NCM function
  NdpNcmInMbim,             // NCM0/NCM1 NDP while parsing an MBIM function
  // Scope: one datagram (the rest of the NDP is kept).
  DpeOverlapsHeader,        // datagram overlaps the NTH or the NDP that points at it
  DpeOutOfBlock,            // datagram index + length past wBlockLength (64-bit, no wrap)
  DpeTooShort,              // NCM datagram shorter than an Ethernet header (+ CRC for NCM1)
  DpeCrcMismatch,           // NCM1 datagram whose CRC-32 is wrong (only with verify_crc)
  // Scope: nothing (tolerated quirks, counted so that a device's habits are visible).
  NthHeaderLengthUnusual,   // wHeaderLength above the minimum
  NdpMisaligned,            // NDP index not a multiple of 4
  NdpLengthUnaligned,       // wLength not a multiple of 4
  NdpMissingTerminator,     // no null entry before the end of wLength
};
inline constexpr std::size_t kNtbErrorCount = static_cast<std::size_t>(NtbError::NdpMissingTerminator) + 1;

const char* to_string(NtbError e);

// CDC NCM 1.0 §3.3.1 allows chains; Linux follows 50 (cdc_ncm.c loopcount). One NDP per session
// and kind is the most any device has reason to send.
inline constexpr std::size_t kMaxNdpsPerNtb = 64;

// Which NDP families this function carries. NCM functions carry NCM0/NCM1; MBIM functions carry
// IPS/DSS (MBIM 1.0 §7). A family that does not belong is skipped and counted, not delivered.
enum class FunctionKind : std::uint8_t { Ncm, Mbim };

struct ParseOptions {
  FunctionKind function = FunctionKind::Ncm;
  bool verify_crc = false;  // NCM1: check each CRC-32 (IEEE 802.3) before stripping it
};

// One datagram, as a view into the transfer: no bytes are copied.
struct DatagramView {
  std::uint64_t offset;   // from the start of the transfer
  std::uint32_t length;   // after the CRC strip for NCM1
  std::uint32_t ntb;      // index of the NTB within the transfer, from 0
  NtbFormat format;
  DatagramKind kind;
  std::uint8_t session;   // MBIM session id; 0 for NCM
};

// One NTB header as found (for sequence tracking and for decoders).
struct NtbInfo {
  std::uint32_t ntb;
  NtbFormat format;
  std::uint16_t sequence;
  std::uint64_t offset;        // of the NTH within the transfer
  std::uint64_t block_length;  // after the wBlockLength = 0 rule was applied
};

struct TransferSummary {
  std::uint32_t ntbs = 0;
  std::uint64_t datagrams = 0;
  std::uint64_t errors = 0;
};

// A sink receives datagram(DatagramView) and error(ntb_index, NtbError); ntb(NtbInfo) is optional.
template <class S>
concept NtbSink = requires(S& s, const DatagramView& d, std::uint32_t i, NtbError e) {
  s.datagram(d);
  s.error(i, e);
};

namespace detail {

struct NtbHeader {
  NtbFormat format;
  std::uint64_t block_length;  // raw wBlockLength / dwBlockLength
  std::uint64_t first_ndp;
  std::uint16_t header_length;
  std::uint16_t sequence;
};

// Reads an NTH at `at`; the caller has checked 4 bytes and a known signature.
inline bool read_nth(Bytes xfer, std::uint64_t at, NtbFormat f, NtbHeader& h) {
  if (!fits(xfer.size(), at, nth_size(f))) return false;
  const auto o = static_cast<std::size_t>(at);
  h.format = f;
  h.header_length = load_le16(xfer, o + 4);
  h.sequence = load_le16(xfer, o + 6);
  if (f == NtbFormat::Ntb16) {
    h.block_length = load_le16(xfer, o + 8);
    h.first_ndp = load_le16(xfer, o + 10);
  } else {
    h.block_length = load_le32(xfer, o + 8);
    h.first_ndp = load_le32(xfer, o + 12);
  }
  return true;
}

inline bool nth_format_of(std::uint32_t sig, NtbFormat& f) {
  if (sig == kNth16Signature) { f = NtbFormat::Ntb16; return true; }
  if (sig == kNth32Signature) { f = NtbFormat::Ntb32; return true; }
  return false;
}

constexpr bool ranges_overlap(std::uint64_t a, std::uint64_t alen, std::uint64_t b, std::uint64_t blen) {
  return a < b + blen && b < a + alen;  // all operands < 2^33: no wrap
}

// Walks the NDP chain of one NTB. `ntb` is exactly the block (wBlockLength bytes).
template <class Sink>
void walk_ndps(Bytes ntb, std::uint64_t ntb_offset, std::uint32_t ntb_index, const NtbHeader& h,
               const ParseOptions& opt, Sink& sink, TransferSummary& sum) {
  const auto report = [&](NtbError e) { ++sum.errors; sink.error(ntb_index, e); };
  const std::uint64_t block = ntb.size();
  const std::uint64_t nth_bytes = nth_size(h.format);
  const std::uint64_t hdr_bytes = ndp_header_size(h.format);
  const std::uint64_t entry_bytes = dpe_size(h.format);
  const bool b16 = h.format == NtbFormat::Ntb16;

  std::array<std::uint64_t, kMaxNdpsPerNtb> visited;  // NDP offsets already walked
  std::uint64_t ndp = h.first_ndp;
  if (ndp == 0) { report(NtbError::NthNoNdp); return; }

  for (std::size_t hop = 0;; ++hop) {
    if (hop == kMaxNdpsPerNtb) { report(NtbError::NdpChainTooLong); return; }
    for (std::size_t i = 0; i < hop; ++i)
      if (visited[i] == ndp) { report(NtbError::NdpChainLoop); return; }
    visited[hop] = ndp;

    if (ndp < nth_bytes) { report(NtbError::NdpIndexOverlapsNth); return; }
    if (!fits(block, ndp, hdr_bytes)) { report(NtbError::NdpOutOfBlock); return; }
    if (ndp % 4 != 0) report(NtbError::NdpMisaligned);
    const auto at = static_cast<std::size_t>(ndp);

    NdpSignature sig;
    if (!decode_ndp_signature(load_le32(ntb, at), sig)) { report(NtbError::NdpBadSignature); return; }
    if (sig.format != h.format) { report(NtbError::NdpFormatMismatch); return; }
    const std::uint64_t ndp_length = load_le16(ntb, at + 4);
    const std::uint64_t next = b16 ? load_le16(ntb, at + 6) : load_le32(ntb, at + 8);
    if (ndp_length < ndp_min_length(h.format)) { report(NtbError::NdpBadLength); return; }
    if (!fits(block, ndp, ndp_length)) { report(NtbError::NdpExceedsBlock); return; }
    if (ndp_length % 4 != 0) report(NtbError::NdpLengthUnaligned);

    const bool is_ncm = sig.kind == DatagramKind::Ncm || sig.kind == DatagramKind::NcmCrc;
    if (is_ncm && opt.function == FunctionKind::Mbim) {
      report(NtbError::NdpNcmInMbim);
    } else if (!is_ncm && opt.function == FunctionKind::Ncm) {
      report(NtbError::NdpMbimInNcm);
    } else {
      // Entries are read until a null entry or the end of wLength, whichever comes first.
      const std::uint64_t entries = (ndp_length - hdr_bytes) / entry_bytes;
      const std::uint64_t min_length =
          sig.kind == DatagramKind::Ncm      ? kEthernetHeaderSize
          : sig.kind == DatagramKind::NcmCrc ? kEthernetHeaderSize + kNcmCrcSize
                                             : 1;
      bool terminated = false;
      std::size_t e = at + static_cast<std::size_t>(hdr_bytes);
      for (std::uint64_t n = 0; n < entries; ++n, e += static_cast<std::size_t>(entry_bytes)) {
        const std::uint64_t index = b16 ? load_le16(ntb, e) : load_le32(ntb, e);
        std::uint64_t length = b16 ? load_le16(ntb, e + 2) : load_le32(ntb, e + 4);
        // CDC NCM 1.0 §3.3.1: the first entry with a zero index or length ends the table.
        if (index == 0 || length == 0) { terminated = true; break; }
        if (index < nth_bytes || ranges_overlap(index, length, ndp, ndp_length)) {
          report(NtbError::DpeOverlapsHeader);
          continue;
        }
        if (!fits(block, index, length)) { report(NtbError::DpeOutOfBlock); continue; }
        if (length < min_length) { report(NtbError::DpeTooShort); continue; }
        if (sig.kind == DatagramKind::NcmCrc) {
          length -= kNcmCrcSize;
          if (opt.verify_crc) {
            const auto i = static_cast<std::size_t>(index);
            const auto l = static_cast<std::size_t>(length);
            if (crc32_ieee(ntb.subspan(i, l)) != load_le32(ntb, i + l)) {
              report(NtbError::DpeCrcMismatch);
              continue;
            }
          }
        }
        ++sum.datagrams;
        sink.datagram(DatagramView{ntb_offset + index, static_cast<std::uint32_t>(length), ntb_index,
                                   h.format, sig.kind, sig.session});
      }
      if (!terminated) report(NtbError::NdpMissingTerminator);
    }
    if (next == 0) return;
    ndp = next;
  }
}

}  // namespace detail

// Parses every NTB in one transfer. Returns what was found; the sink has seen each datagram and
// each problem in wire order. An empty transfer (a ZLP) holds no NTB and is not an error.
template <class Sink>
  requires NtbSink<Sink>
TransferSummary parse_transfer(Bytes xfer, const ParseOptions& opt, Sink& sink) {
  TransferSummary sum;
  const std::uint64_t total = xfer.size();
  std::uint64_t pos = 0;
  const auto report = [&](NtbError e) { ++sum.errors; sink.error(sum.ntbs, e); };

  while (pos < total) {
    const std::uint64_t remaining = total - pos;
    NtbFormat format{};
    const bool has_sig = remaining >= 4 && detail::nth_format_of(load_le32(xfer, static_cast<std::size_t>(pos)), format);
    if (!has_sig) {
      if (sum.ntbs == 0) {
        // Four bytes are enough to know this is not an NTB at all; fewer cannot even say that.
        report(remaining < 4 ? NtbError::NthTruncated : NtbError::NthBadSignature);
      } else {
        // After an NTB the rest may be padding: Linux pads to tx_max with zeros, Windows adds one
        // zero byte to avoid a ZLP (anchors.md §5 #3). Anything else is worth counting.
        const std::uint64_t probe = remaining < 4 ? remaining : 4;
        for (std::uint64_t i = 0; i < probe; ++i)
          if (xfer[static_cast<std::size_t>(pos + i)] != 0) { report(NtbError::TrailingGarbage); break; }
      }
      break;
    }
    detail::NtbHeader h;
    if (!detail::read_nth(xfer, pos, format, h)) { report(NtbError::NthTruncated); break; }
    const std::uint64_t nth_bytes = nth_size(format);
    if (h.header_length < nth_bytes) { report(NtbError::NthBadHeaderLength); break; }
    const std::uint64_t block = h.block_length == 0 ? remaining : h.block_length;
    if (block < nth_bytes) { report(NtbError::NthBadBlockLength); break; }
    if (block > remaining) { report(NtbError::NthBlockExceedsTransfer); break; }
    if (h.header_length > nth_bytes) report(NtbError::NthHeaderLengthUnusual);

    if constexpr (requires(const NtbInfo& i) { sink.ntb(i); })
      sink.ntb(NtbInfo{sum.ntbs, format, h.sequence, pos, block});
    detail::walk_ndps(xfer.subspan(static_cast<std::size_t>(pos), static_cast<std::size_t>(block)), pos,
                      sum.ntbs, h, opt, sink, sum);
    ++sum.ntbs;
    pos += block;
  }
  return sum;
}

// Counters per reason, for the data path and for `wwan-dp stats`. Bumped once per event; the
// worker that owns the parser owns the counters (no atomics on the hot path).
struct NtbCounters {
  std::uint64_t transfers = 0;
  std::uint64_t ntbs = 0;
  std::uint64_t datagrams = 0;
  std::array<std::uint64_t, kNtbErrorCount> errors{};

  void count(NtbError e) { ++errors[static_cast<std::size_t>(e)]; }
  std::uint64_t operator[](NtbError e) const { return errors[static_cast<std::size_t>(e)]; }
  void add(const TransferSummary& s) {
    ++transfers;
    ntbs += s.ntbs;
    datagrams += s.datagrams;
  }
};

// Adapts a datagram callback into a sink that counts every reason into NtbCounters.
template <class OnDatagram>
struct CountingSink {
  NtbCounters& counters;
  OnDatagram on_datagram;
  void datagram(const DatagramView& d) { on_datagram(d); }
  void error(std::uint32_t, NtbError e) { counters.count(e); }
};
template <class F>
CountingSink(NtbCounters&, F) -> CountingSink<F>;

// wSequence is per NTB and wraps at 16 bits. Devices reset it on every reset, so a gap is counted,
// never acted on (Linux logs "sequence number glitch" and carries on; anchors.md §5 #20).
struct SequenceTracker {
  bool have_last = false;
  std::uint16_t last = 0;
  std::uint64_t gaps = 0;
  void observe(std::uint16_t sequence) {
    if (have_last && static_cast<std::uint16_t>(last + 1) != sequence) ++gaps;
    last = sequence;
    have_last = true;
  }
};

}  // namespace wwan::ntb
