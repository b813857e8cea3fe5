// libFuzzer target: the NTB parser on arbitrary transfers, and the builder round trip.
//
// 1. The input is parsed as one bulk-IN transfer, as an NCM and as an MBIM function, with and
//    without CRC verification. ASan/UBSan catch any read outside the input; the checks below
//    catch a datagram view that points outside its NTB.
// 2. Whatever was delivered is rebuilt into NTBs with builder parameters taken from the input's
//    last bytes (format, NDP placement, divisor/remainder/alignment, size and datagram limits),
//    and each built NTB is parsed again: it must give back exactly those datagrams, byte for
//    byte, with no error. That is the builder's contract with the parser, for inputs nobody chose.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "tests/fuzz/fuzz_check.hpp"

#include "datapath/ntb_build.hpp"
#include "datapath/ntb_parse.hpp"

namespace {

using namespace wwan::ntb;

struct Collect {
  Bytes transfer;
  std::vector<NtbInfo> ntbs;
  std::vector<DatagramView> datagrams;
  std::uint64_t errors = 0;
  void ntb(const NtbInfo& i) { ntbs.push_back(i); }
  void datagram(const DatagramView& d) {
    FUZZ_CHECK(fits(transfer.size(), d.offset, d.length));
    FUZZ_CHECK(d.ntb < ntbs.size());
    const NtbInfo& n = ntbs[d.ntb];
    FUZZ_CHECK(d.offset >= n.offset + nth_size(n.format));
    FUZZ_CHECK(d.offset + d.length <= n.offset + n.block_length);
    datagrams.push_back(d);
  }
  void error(std::uint32_t, NtbError e) {
    FUZZ_CHECK(static_cast<std::size_t>(e) < kNtbErrorCount);
    ++errors;
  }
};

NtbOutParams params_from(const std::uint8_t* data, std::size_t size, bool mbim) {
  std::uint8_t a = size > 0 ? data[size - 1] : 0;
  std::uint8_t b = size > 1 ? data[size - 2] : 0;
  std::uint8_t c = size > 2 ? data[size - 3] : 0;
  NtbOutParams raw;
  raw.format = (a & 1) ? NtbFormat::Ntb32 : NtbFormat::Ntb16;
  raw.ndp_at_end = (a & 2) != 0;
  raw.ndp_out_divisor = static_cast<std::uint16_t>(1u << (2 + ((a >> 2) & 3)));      // 4..32
  raw.ndp_out_payload_remainder = static_cast<std::uint16_t>(b & 31);                // may exceed
  raw.ndp_out_alignment = static_cast<std::uint16_t>(1u << (2 + ((a >> 4) & 3)));    // 4..32
  raw.ntb_out_max_size = 2048u + 256u * c;                                           // 2 KiB..66 KiB
  raw.ntb_out_max_datagrams = static_cast<std::uint16_t>((a >> 6) ? (b >> 5) * 3 : 0);
  raw.ethernet_framing = !mbim;
  return sanitize_out_params(raw).params;
}

// Builds NTBs from `items`, reparses each and checks the round trip.
void round_trip(Bytes transfer, const std::vector<DatagramView>& items, const NtbOutParams& params, bool mbim) {
  static std::vector<std::uint8_t> buffer(70000);
  const auto sig_of = [&](const DatagramView& d) {
    // NCM1 datagrams come out of the parser without their CRC: rebuild them as NCM0.
    const DatagramKind k = d.kind == DatagramKind::NcmCrc ? DatagramKind::Ncm : d.kind;
    return NdpSignature{params.format, k, d.session};
  };
  std::vector<const DatagramView*> pending;
  std::uint16_t sequence = 0;
  NtbBuilder builder(buffer, params, items.empty() ? NdpSignature{params.format, mbim ? DatagramKind::Ips : DatagramKind::Ncm, 0}
                                                   : sig_of(items.front()));
  const auto flush = [&] {
    const NdpSignature sig = builder.signature();
    const Bytes ntb = builder.finish();
    FUZZ_CHECK(ntb.size() <= params.ntb_out_max_size);
    FUZZ_CHECK(ntb.empty() == pending.empty());
    if (!ntb.empty()) {
      Collect again{ntb, {}, {}, 0};
      parse_transfer(ntb, {.function = mbim ? FunctionKind::Mbim : FunctionKind::Ncm}, again);
      FUZZ_CHECK(again.errors == 0);
      FUZZ_CHECK(again.datagrams.size() == pending.size());
      for (std::size_t i = 0; i < pending.size(); ++i) {
        const DatagramView& want = *pending[i];
        const DatagramView& got = again.datagrams[i];
        FUZZ_CHECK(got.length == want.length);
        FUZZ_CHECK(got.kind == sig.kind && got.session == sig.session && got.format == params.format);
        FUZZ_CHECK(std::memcmp(ntb.data() + got.offset, transfer.data() + want.offset, want.length) == 0);
      }
    }
    pending.clear();
    builder.reset(++sequence);
  };
  for (const DatagramView& d : items) {
    const NdpSignature sig = sig_of(d);
    if (sig.kind != builder.signature().kind || sig.session != builder.signature().session) {
      flush();
      builder.reset(sequence, sig);
    }
    const Bytes bytes = transfer.subspan(static_cast<std::size_t>(d.offset), d.length);
    AppendResult r = builder.append(bytes);
    if (r == AppendResult::Full) {
      flush();
      r = builder.append(bytes);
    }
    if (r == AppendResult::Appended) {
      pending.push_back(&d);
    } else {
      FUZZ_CHECK(r == AppendResult::TooLarge);
      FUZZ_CHECK(d.length > builder.max_datagram_bytes());
    }
  }
  flush();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // An exactly-sized copy, so that ASan sees the real end of the transfer.
  std::vector<std::uint8_t> transfer(data, data + size);
  const Bytes xfer(transfer);
  for (const bool mbim : {false, true}) {
    for (const bool verify_crc : {false, true}) {
      Collect c{xfer, {}, {}, 0};
      const TransferSummary s = parse_transfer(
          xfer, {.function = mbim ? FunctionKind::Mbim : FunctionKind::Ncm, .verify_crc = verify_crc}, c);
      FUZZ_CHECK(s.datagrams == c.datagrams.size() && s.errors == c.errors && s.ntbs == c.ntbs.size());
      if (!verify_crc) round_trip(xfer, c.datagrams, params_from(data, size, mbim), mbim);
    }
  }
  return 0;
}
