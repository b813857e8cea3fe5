// libFuzzer target: RNDIS, the data messages, the control codec and the host session, on bytes
// nobody chose.
//
// 1. The input as one bulk-IN transfer of REMOTE_NDIS_PACKET_MSGs (datapath/rndis_packet.hpp):
//    every frame view lies inside the transfer and inside its own message; frames are at least an
//    Ethernet header long. Whatever was delivered is rebuilt with builder parameters taken from
//    the input's last bytes, and the built transfer parses back to exactly those frames with no
//    error but the short-packet pad, within MaxTransferSize, MaxPacketsPerTransfer and the
//    alignment.
// 2. The input as one control message (control/rndis_wire.hpp): a decoded buffer view lies inside
//    the message; a fixed-size message re-encodes to its own bytes.
// 3. The input as a conversation with the host session (control/rndis_session.hpp): the first
//    byte of each chunk is its length and a clock step, the rest is fed to on_response; timers
//    fire when due. Every command the session sends decodes as a host-to-device message; the
//    session never leaves the known states; the device's limits it keeps are sanitised.
#include <cstdint>
#include <cstring>
#include <variant>
#include <vector>

#include "tests/fuzz/fuzz_check.hpp"

#include "control/rndis_session.hpp"
#include "control/rndis_wire.hpp"
#include "datapath/rndis_packet.hpp"

namespace {

using namespace wwan;
using Bytes = std::span<const std::uint8_t>;

struct Collect {
  Bytes transfer;
  std::vector<rndis::FrameView> frames;
  std::uint64_t errors = 0;
  std::uint64_t padding = 0;
  void frame(const rndis::FrameView& f) {
    FUZZ_CHECK(rndis::fits(transfer.size(), f.offset, f.length));
    FUZZ_CHECK(f.offset >= rndis::kPacketHeaderSize);
    FUZZ_CHECK(f.length >= rndis::kEthernetHeaderSize);
    frames.push_back(f);
  }
  void error(rndis::PacketError e) {
    FUZZ_CHECK(static_cast<std::size_t>(e) < rndis::kPacketErrorCount);
    if (e == rndis::PacketError::ShortPacketPadding) ++padding;
    else ++errors;
  }
};

void packets(Bytes input) {
  Collect c{input, {}, 0, 0};
  const rndis::PacketTransferSummary s = rndis::parse_packet_transfer(input, c);
  FUZZ_CHECK(s.frames == c.frames.size());
  FUZZ_CHECK(c.padding <= 1);

  const std::uint8_t a = input.empty() ? 0 : input.back();
  const std::uint8_t b = input.size() > 1 ? input[input.size() - 2] : 0;
  const rndis::PacketOutParams raw{static_cast<std::uint32_t>(64u + 257u * b), static_cast<std::uint32_t>(a & 15),
                                   static_cast<std::uint32_t>((a >> 4) & 7),
                                   static_cast<std::uint16_t>((a & 0x80) ? 64 : 512)};
  const rndis::PacketOutParams params = rndis::sanitize_packet_out_params(raw).params;
  FUZZ_CHECK(rndis::sanitize_packet_out_params(params).params == params);
  std::vector<std::uint8_t> buffer(params.max_transfer_size);
  rndis::PacketBuilder builder(buffer, params);
  std::vector<Bytes> sent;
  for (const rndis::FrameView& f : c.frames) {
    const Bytes frame = input.subspan(static_cast<std::size_t>(f.offset), f.length);
    const rndis::PacketAppendResult r = builder.append(frame);
    if (r == rndis::PacketAppendResult::Appended) sent.push_back(frame);
    else if (r == rndis::PacketAppendResult::Full) break;
    else FUZZ_CHECK(r == rndis::PacketAppendResult::TooLarge && frame.size() > builder.max_frame_bytes());
  }
  const Bytes built = builder.finish();
  FUZZ_CHECK(built.size() <= params.max_transfer_size);
  FUZZ_CHECK(sent.size() <= params.max_packets_per_transfer);
  Collect again{built, {}, 0, 0};
  rndis::parse_packet_transfer(built, again);
  FUZZ_CHECK(again.errors == 0);
  FUZZ_CHECK(again.frames.size() == sent.size());
  for (std::size_t i = 0; i < sent.size(); ++i) {
    const rndis::FrameView& f = again.frames[i];
    FUZZ_CHECK(f.length == sent[i].size());
    FUZZ_CHECK(std::memcmp(built.data() + f.offset, sent[i].data(), f.length) == 0);
    FUZZ_CHECK(((f.offset - rndis::kPacketHeaderSize) & ((1u << params.packet_alignment_factor) - 1)) == 0);
  }
}

void control_message(Bytes input) {
  const rndis::DecodedControl d = rndis::decode_control(input);
  if (!d.ok()) {
    FUZZ_CHECK(std::holds_alternative<std::monostate>(d.message));
    return;
  }
  FUZZ_CHECK(d.message_length <= input.size() && d.message_length <= rndis::kMaxControlMessageSize);
  const auto inside = [&](Bytes view) {
    if (view.empty()) return;
    FUZZ_CHECK(view.data() >= input.data() + rndis::kMessageHeaderSize);
    FUZZ_CHECK(view.data() + view.size() <= input.data() + d.message_length);
  };
  const Bytes whole = input.first(d.message_length);
  const auto same = [&](const rndis::ByteVector& encoded) {
    if (encoded.size() == whole.size()) FUZZ_CHECK(std::memcmp(encoded.data(), whole.data(), whole.size()) == 0);
  };
  if (const auto* q = std::get_if<rndis::OidRequest>(&d.message)) inside(q->information_buffer);
  if (const auto* q = std::get_if<rndis::QueryCmplt>(&d.message)) inside(q->information_buffer);
  if (const auto* s = std::get_if<rndis::IndicateStatus>(&d.message)) inside(s->status_buffer);
  if (const auto* m = std::get_if<rndis::InitializeMsg>(&d.message)) same(rndis::encode_initialize(*m));
  if (const auto* m = std::get_if<rndis::InitializeCmplt>(&d.message)) same(rndis::encode_initialize_cmplt(*m));
  if (const auto* m = std::get_if<rndis::SetCmplt>(&d.message)) same(rndis::encode_set_cmplt(m->request_id, m->status));
  if (const auto* m = std::get_if<rndis::KeepaliveCmplt>(&d.message))
    same(rndis::encode_keepalive_cmplt(m->request_id, m->status));
  if (const auto* m = std::get_if<rndis::ResetCmplt>(&d.message))
    same(rndis::encode_reset_cmplt(m->status, m->addressing_reset));
}

void check_commands(control::RndisSession& s) {
  for (const control::ByteVector& c : s.take_commands()) {
    const rndis::DecodedControl d = rndis::decode_control(c);
    FUZZ_CHECK(d.ok());
    FUZZ_CHECK(d.message_length == c.size());
    FUZZ_CHECK((d.type & rndis::kCompletion) == 0 || d.type == rndis::kKeepaliveCmplt);
  }
}

void session(Bytes input) {
  using control::Clock;
  control::RndisSession s({});
  Clock::time_point now{std::chrono::seconds(1)};
  s.start(now);
  check_commands(s);
  std::size_t at = 0;
  unsigned steps = 0;
  while (at < input.size() && steps++ < 256) {
    const std::uint8_t head = input[at++];
    const std::size_t n = std::min<std::size_t>(head & 0x3F, input.size() - at) * 2;
    const std::size_t take = std::min(n, input.size() - at);
    s.on_response(input.subspan(at, take), now);
    at += take;
    check_commands(s);
    now += std::chrono::milliseconds(1000 * (head >> 6));
    if (const auto t = s.next_timer(); t && *t <= now) s.on_timer(now);
    check_commands(s);
    const control::RndisDeviceInfo& info = s.device_info();
    if (info.out.max_transfer_size != 0)
      FUZZ_CHECK(rndis::sanitize_packet_out_params(info.out).params == info.out);
    FUZZ_CHECK(s.take_link_events().size() <= control::RndisSession::kMaxPendingLinkEvents);
    FUZZ_CHECK(static_cast<unsigned>(s.step()) <= static_cast<unsigned>(control::RndisSession::Step::Failed));
  }
  s.stop(now);
  check_commands(s);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Bytes input(data, size);
  packets(input);
  control_message(input);
  session(input);
  return 0;
}
