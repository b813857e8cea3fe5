// The RX and TX stages wired to in-memory fakes the way a worker wires them to io_uring and the
// USB pipes (tests/datapath/workers_test.cpp, tap_framing_test.cpp): a PacketIo whose writes
// complete at the next reap and whose reads come from a queue of packets "arriving at the TUN",
// IN/OUT links that record what was released and sent, and a parser that gives back the datagrams
// of an NTB. Header only: each test file includes it once.
#pragma once

#include <gtest/gtest.h>
#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <vector>

#include "datapath/link_state.hpp"
#include "datapath/links.hpp"
#include "datapath/ntb_build.hpp"
#include "datapath/ntb_parse.hpp"
#include "datapath/packet_io.hpp"
#include "datapath/rx_path.hpp"
#include "datapath/tx_path.hpp"

namespace wwan::dp::stage_test {

using ByteVector = std::vector<std::uint8_t>;

// An NTB (at most 16 KiB) holding `datagrams`, built by the TX side's NtbBuilder.
inline ByteVector build_ntb(const std::vector<ByteVector>& datagrams, ntb::NdpSignature sig, bool ethernet_framing = true) {
  ByteVector buf(16384);
  ntb::NtbOutParams params;
  params.format = sig.format;
  params.ntb_out_max_size = 16384;
  params.ethernet_framing = ethernet_framing;
  ntb::NtbBuilder b(buf, params, sig);
  for (const auto& d : datagrams) EXPECT_EQ(b.append(d), ntb::AppendResult::Appended);
  const ntb::Bytes out = b.finish();
  return ByteVector(out.begin(), out.end());
}

// Completes every write at the next reap (recording its bytes as they are *then*, so a buffer
// reused too early would show), and completes reads from a queue of packets "arriving at the TUN".
class FakeIo final : public PacketIo {
 public:
  struct Op {
    bool write;
    std::span<const std::uint8_t> out;
    std::span<std::uint8_t> in;
    std::uint64_t tag;
    const iovec* iov = nullptr;  // a writev: gathered at completion, like `out`
    unsigned iov_count = 0;
  };
  std::size_t capacity = 1024;
  std::vector<Op> prepared, in_flight;
  std::deque<ByteVector> arriving;     // packets the TUN will give to reads
  std::vector<ByteVector> written;     // packets written, in completion order
  std::vector<const std::uint8_t*> written_from;  // where each write pointed (a writev: its last piece)
  std::vector<std::vector<const std::uint8_t*>> written_pieces;  // a writev's pieces, in order
  unsigned writevs = 0;
  unsigned submits = 0, wakes = 0, cancels = 0;

  std::size_t free_slots() const override {
    const std::size_t used = prepared.size() + in_flight.size();
    return used < capacity ? capacity - used : 0;
  }
  bool prepare_write(std::span<const std::uint8_t> packet, std::uint64_t tag) override {
    if (free_slots() == 0) return false;
    prepared.push_back(Op{true, packet, {}, tag});
    return true;
  }
  bool prepare_read(std::span<std::uint8_t> buffer, std::uint64_t tag) override {
    if (free_slots() == 0) return false;
    prepared.push_back(Op{false, {}, buffer, tag});
    return true;
  }
  bool prepare_writev(const iovec* iov, unsigned count, std::uint64_t tag) override {
    if (free_slots() == 0 || count == 0 || count > 1024) return false;
    prepared.push_back(Op{true, {}, {}, tag, iov, count});
    ++writevs;
    return true;
  }
  void submit() override {
    ++submits;
    in_flight.insert(in_flight.end(), prepared.begin(), prepared.end());
    prepared.clear();
  }
  std::size_t reap(std::span<IoCompletion> out, int) override {
    std::size_t n = 0;
    for (auto it = in_flight.begin(); it != in_flight.end() && n < out.size();) {
      if (it->write && it->iov != nullptr) {
        // Read through the iovecs only now, as the kernel would: storage reused or freed before
        // the completion shows up as wrong bytes here (or under ASan).
        ByteVector bytes;
        std::vector<const std::uint8_t*> pieces;
        for (unsigned i = 0; i < it->iov_count; ++i) {
          const auto* base = static_cast<const std::uint8_t*>(it->iov[i].iov_base);
          bytes.insert(bytes.end(), base, base + it->iov[i].iov_len);
          pieces.push_back(base);
        }
        written.push_back(bytes);
        written_from.push_back(pieces.back());
        written_pieces.push_back(pieces);
        out[n++] = IoCompletion{it->tag, static_cast<std::int32_t>(bytes.size())};
        it = in_flight.erase(it);
      } else if (it->write) {
        written.emplace_back(it->out.begin(), it->out.end());
        written_from.push_back(it->out.data());
        written_pieces.push_back({it->out.data()});
        out[n++] = IoCompletion{it->tag, static_cast<std::int32_t>(it->out.size())};
        it = in_flight.erase(it);
      } else if (!arriving.empty()) {
        const ByteVector p = arriving.front();
        arriving.pop_front();
        // A read posted with a buffer smaller than what the TUN (or TAP) hands out would cut the
        // packet: the stage sized its buffers wrong.
        EXPECT_LE(p.size(), it->in.size()) << "a read buffer too small for the packet";
        const std::size_t len = std::min(p.size(), it->in.size());
        std::copy_n(p.begin(), len, it->in.begin());
        out[n++] = IoCompletion{it->tag, static_cast<std::int32_t>(len)};
        it = in_flight.erase(it);
      } else {
        ++it;
      }
    }
    return n;
  }
  void cancel_all() override { ++cancels; }
  void wake() override { ++wakes; }
  std::size_t reads_waiting() const {
    return static_cast<std::size_t>(std::count_if(in_flight.begin(), in_flight.end(), [](const Op& o) { return !o.write; }));
  }
};

class FakeInLink final : public InLink {
 public:
  std::vector<unsigned> released;
  void release(unsigned slot) override { released.push_back(slot); }
};

class FakeOutLink final : public OutLink {
 public:
  explicit FakeOutLink(unsigned slots, std::size_t bytes, std::size_t max_packet = 512)
      : buffers(slots, ByteVector(bytes)), free(slots, true), mps(max_packet) {}
  std::vector<ByteVector> buffers;
  std::vector<bool> free;
  std::vector<ByteVector> sent;
  std::size_t mps;
  bool refuse_submit = false;

  std::optional<unsigned> acquire() override {
    for (unsigned i = 0; i < free.size(); ++i)
      if (free[i]) {
        free[i] = false;
        return i;
      }
    return std::nullopt;
  }
  bool has_free_buffer() const override { return std::find(free.begin(), free.end(), true) != free.end(); }
  std::span<std::uint8_t> buffer(unsigned slot) override { return buffers.at(slot); }
  bool submit(unsigned slot, std::size_t length) override {
    if (refuse_submit) {
      free.at(slot) = true;  // OutLink: not sent, and the slot is free again
      return false;
    }
    sent.emplace_back(buffers.at(slot).begin(), buffers.at(slot).begin() + static_cast<std::ptrdiff_t>(length));
    return true;  // the slot stays busy until complete_all() (a transfer in flight)
  }
  void give_back(unsigned slot) override { free.at(slot) = true; }
  std::size_t max_packet_bytes() const override { return mps; }
  void complete_all() { std::fill(free.begin(), free.end(), true); }
};

// Runs one reap of the fake and hands the completions to the stages, as the worker loop does.
inline std::size_t reap_into(FakeIo& io, RxStage* rx, TxStage* tx) {
  std::array<IoCompletion, 64> c{};
  io.submit();
  const std::size_t n = io.reap(c, 0);
  for (std::size_t i = 0; i < n; ++i) {
    if ((c[i].tag & kTagStageMask) == kRxWriteTag && rx != nullptr) rx->on_completion(c[i]);
    if ((c[i].tag & kTagStageMask) == kTxReadTag && tx != nullptr) tx->on_completion(c[i]);
  }
  return n;
}

// An RX stage with its fakes. With `with_replies` ARP/NS answers go to `replies` and wake `io`
// (the TX side of a worker), as on an Ethernet framing; without, the stage has no reply ring.
struct RxHarness {
  explicit RxHarness(const RxConfig& config, bool with_replies = false)
      : rx(config, io, in, state, with_replies ? &replies : nullptr, with_replies ? &io : nullptr) {}

  // Queues `transfer` as IN slot `slot`; not copied: it must outlive the writes that point into it.
  [[nodiscard]] bool post(const ByteVector& transfer, unsigned slot) {
    return rx.post(RxBuffer{transfer.data(), static_cast<std::uint32_t>(transfer.size()), slot});
  }
  // One reap of the fake, its write completions handed to the stage.
  std::size_t reap() { return reap_into(io, &rx, nullptr); }

  FakeIo io;
  FakeInLink in;
  LinkState state;
  ReplyRing replies{8};
  RxStage rx;
};

// A started TX stage (its reads prepared, not yet submitted) with its fakes: `out_slots` OUT
// buffers of `out_bytes`, wMaxPacketSize `max_packet`.
struct TxHarness {
  explicit TxHarness(const TxConfig& config, unsigned out_slots = 2, std::size_t out_bytes = 16384,
                     std::size_t max_packet = 512)
      : out(out_slots, out_bytes, max_packet), tx(config, io, out, state) {
    tx.start();
  }

  // One reap of the fake, its read completions handed to the stage.
  std::size_t reap() { return reap_into(io, nullptr, &tx); }

  FakeIo io;
  FakeOutLink out;
  LinkState state;
  TxStage tx;
};

// The datagrams of one transfer as the datapath parser delivers them (views) and their bytes.
struct ParsedNtb {
  std::vector<ByteVector> datagrams;
  std::vector<ntb::DatagramView> views;
  std::vector<ntb::NtbError> errors;
  void datagram(const ntb::DatagramView& d) { views.push_back(d); }
  void error(std::uint32_t, ntb::NtbError e) { errors.push_back(e); }
};
inline ParsedNtb parse_ntb(const ByteVector& transfer, ntb::FunctionKind function) {
  ParsedNtb p;
  (void)ntb::parse_transfer(transfer, ntb::ParseOptions{function, false}, p);
  for (const auto& v : p.views)
    p.datagrams.emplace_back(transfer.begin() + static_cast<std::ptrdiff_t>(v.offset),
                             transfer.begin() + static_cast<std::ptrdiff_t>(v.offset + v.length));
  return p;
}

}  // namespace wwan::dp::stage_test
