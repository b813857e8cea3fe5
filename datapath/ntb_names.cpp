// Stable names of datagram kinds and parser errors: they are the "kind" and "reason" strings of
// `wwan-dp decode ntb` and the counter names of the daemon, so they never change meaning.
#include "datapath/ntb_parse.hpp"

namespace wwan::ntb {

const char* to_string(DatagramKind kind) {
  switch (kind) {
    case DatagramKind::Ncm: return "ncm";
    case DatagramKind::NcmCrc: return "ncm-crc";
    case DatagramKind::Ips: return "ips";
    case DatagramKind::Dss: return "dss";
  }
  return "unknown";
}

const char* to_string(NtbError e) {
  switch (e) {
    case NtbError::NthTruncated: return "nth_truncated";
    case NtbError::NthBadSignature: return "nth_bad_signature";
    case NtbError::NthBadHeaderLength: return "nth_bad_header_length";
    case NtbError::NthBadBlockLength: return "nth_bad_block_length";
    case NtbError::NthBlockExceedsTransfer: return "nth_block_exceeds_transfer";
    case NtbError::TrailingGarbage: return "trailing_garbage";
    case NtbError::NthNoNdp: return "nth_no_ndp";
    case NtbError::NdpIndexOverlapsNth: return "ndp_index_overlaps_nth";
    case NtbError::NdpOutOfBlock: return "ndp_out_of_block";
    case NtbError::NdpBadSignature: return "ndp_bad_signature";
    case NtbError::NdpFormatMismatch: return "ndp_format_mismatch";
    case NtbError::NdpBadLength: return "ndp_bad_length";
    case NtbError::NdpExceedsBlock: return "ndp_exceeds_block";
    case NtbError::NdpChainLoop: return "ndp_chain_loop";
    case NtbError::NdpChainTooLong: return "ndp_chain_too_long";
    case NtbError::NdpMbimInNcm: return "ndp_mbim_in_ncm";
    case NtbError::NdpNcmInMbim: return "ndp_ncm_in_mbim";
    case NtbError::DpeOverlapsHeader: return "dpe_overlaps_header";
    case NtbError::DpeOutOfBlock: return "dpe_out_of_block";
    case NtbError::DpeTooShort: return "dpe_too_short";
    case NtbError::DpeCrcMismatch: return "dpe_crc_mismatch";
    case NtbError::NthHeaderLengthUnusual: return "nth_header_length_unusual";
    case NtbError::NdpMisaligned: return "ndp_misaligned";
    case NtbError::NdpLengthUnaligned: return "ndp_length_unaligned";
    case NtbError::NdpMissingTerminator: return "ndp_missing_terminator";
  }
  return "unknown";
}

}  // namespace wwan::ntb
