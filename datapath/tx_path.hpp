// The TX worker's stage (DESIGN.md "Data flow", second half): IP packets read from the TUN in,
// NTBs (or RNDIS packet-message transfers, TxConfig::framing) sent on bulk OUT out. Below, "NTB"
// stands for either: an RNDIS transfer is built, bounded and sent by the same rules, with
// MaxTransferSize / MaxPacketsPerTransfer / PacketAlignmentFactor from INITIALIZE_CMPLT in place
// of dwNtbOutMaxSize / wNtbOutMaxDatagrams / the NDP alignment (rndis::PacketBuilder).
//
//   TUN ─ R reads in flight (PacketIo::prepare_read into R read buffers) ─▶ on_completion():
//   the packet joins a FIFO of ready buffers ─▶ pump(): each ready packet (NCM: behind an Ethernet
//   header written in the 14 bytes reserved in front of it) is appended to the NTB being built in
//   a bulk-OUT buffer (OutLink::acquire), and its read buffer goes straight back to the TUN.
//
// When an NTB is sent (OutLink::submit):
//   - when it is full, or holds wNtbOutMaxDatagrams datagrams;
//   - as soon as the TUN has nothing more to give: the worker reaped every completion there was
//     (`more_pending` false). No timer: a lone ping goes out at once;
//   - when completions keep coming, after max_hold at the latest (the short upper bound).
// Back-pressure: no free OUT buffer = the device is slower than the host. The ready packets wait
// in their read buffers, no new read is posted for them, the TUN's queue fills and the kernel
// drops (and counts) at the TUN: nothing queues here beyond the R read buffers. While waiting,
// packets pile up and the next NTB carries them all: aggregation grows with load.
//
// The one copy per packet (read buffer → NTB) is deliberate: with R reads in flight each needs
// room for a whole MTU, and placing them at fixed offsets inside the NTB would leave an MTU-sized
// hole after every short packet (a 64-byte packet would cost 1.5 KiB of bus time).
//
// TUN offload (TxConfig::vnet_hdr, docs/offload.md): every read is a virtio_net_hdr + a packet of
// up to 64 KiB (a TSO/USO super-packet when TUNSETOFFLOAD granted it), read into buffers of
// 10 + 65535 bytes. The GsoSegmenter cuts it into ordinary packets written straight into the NTB
// (NtbBuilder::reserve / commit, behind a 14-byte Ethernet header on NCM), each with complete
// IPv4 and TCP/UDP checksums (NCM has no checksum offload); a packet that only NEEDS_CSUM gets
// its checksum completed. A super-packet may straddle NTBs; when no OUT buffer is free half-way,
// the rest waits in its read buffer and the segmenter resumes there.
//
// TAP (Framing::ncm_tap, wwan-dp --tap): every read is a whole Ethernet frame the system's stack
// built (its own ARP, NS, DHCP, VLAN tags); it goes into the NTB as it is, with nothing prepended
// and no IP check (an ARP request is as welcome as an IP packet). Reads are sized for an Ethernet
// header, an 802.1Q tag and the MTU. No offload in this mode.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <vector>

#include "datapath/ethernet.hpp"
#include "datapath/framing.hpp"
#include "datapath/link_state.hpp"
#include "datapath/links.hpp"
#include "datapath/ntb_build.hpp"
#include "datapath/offload/gso.hpp"
#include "datapath/packet_io.hpp"
#include "datapath/rndis_packet.hpp"
#include "datapath/rx_path.hpp"

namespace wwan::dp {

struct TxConfig {
  Framing framing = Framing::ncm;      // datapath/framing.hpp: NCM/RNDIS frames are Ethernet, MBIM raw IP
  ntb::NtbOutParams out;               // NTB framings: sanitised (control::NtbPlan::out)
  ntb::NdpSignature signature{ntb::NtbFormat::Ntb16, ntb::DatagramKind::Ncm, 0};  // NCM0, or IPS0 for MBIM
  // RNDIS: what INITIALIZE_CMPLT allowed (control::RndisDeviceInfo::out, sanitised again by the
  // builder) and the bulk-OUT wMaxPacketSize for the 1-byte short-packet rule (RNDIS has no ZLP).
  rndis::PacketOutParams rndis_out;
  eth::MacAddress our_mac;             // NCM/RNDIS source address
  std::size_t mtu_bytes = 1500;        // the largest IP packet a read returns (the TUN's MTU; TAP: the
                                       // largest frame's payload, the tag and header come on top)
  unsigned reads_in_flight = 64;       // R
  unsigned out_slots = 8;              // the OUT pipe's K
  // End an NTB whose length is a multiple of wMaxPacketSize with one zero byte (the kernel's
  // tx_max + 1 rule) so the device sees the end without a zero-length packet; when false the OUT
  // pipe sends a ZLP instead (control::OutTermination).
  bool pad_one_byte = true;
  std::chrono::microseconds max_hold{500};  // the upper bound an NTB waits while reads keep completing
  // TUN offload: the TUN has IFF_VNET_HDR; reads are segmented (mtu_bytes then only bounds
  // nothing: a read buffer holds the largest super-packet).
  bool vnet_hdr = false;
};

// A read buffer with vnet_hdr: the header and the largest IP packet (IPv4 Total Length and IPv6
// Payload Length are 16 bits; the kernel's TSO/USO super-packets stay within 64 KiB).
inline constexpr std::size_t kVnetReadBytes = offload::kVirtioNetHdrSize + 65535;

struct TxCounters {
  std::uint64_t tun_reads = 0;       // packets read from the TUN
  std::uint64_t packets = 0;         // IP packets sent in an NTB (counted when the NTB was submitted;
                                     // TAP: Ethernet frames)
  std::uint64_t bytes = 0;           // their IP bytes (TAP: frame bytes)
  std::uint64_t ntbs = 0;            // NTBs submitted (RNDIS: transfers of packet messages)
  std::uint64_t replies = 0;         // ARP/NA replies sent (not counted in packets)
  std::uint64_t control_packets = 0; // DHCP / RS packets of the control thread sent (not in packets)
  std::uint64_t padded = 0;          // NTBs that got the extra zero byte
  std::uint64_t out_buffer_waits = 0;  // times no OUT buffer was free (back-pressure, not a drop)
  // Drops, by reason.
  std::uint64_t too_large = 0;       // a packet longer than an NTB (RNDIS: MaxTransferSize) can carry
  std::uint64_t not_ip = 0;          // a read that is not IPv4/IPv6 (empty, or another version)
  std::uint64_t bad_ip = 0;          // an IP header whose length is not what the read returned
                                     // (longer: the packet did not fit the read buffer)
  std::uint64_t too_short = 0;       // TAP: a read shorter than an Ethernet header
  std::uint64_t submit_failed = 0;   // packets in an NTB the OUT pipe refused (device gone, pipe failed)
  std::uint64_t read_errors = 0;     // TUN reads that failed (not packets; the read is retried)
  // TUN offload (vnet_hdr).
  std::uint64_t gso_super_packets = 0;  // reads that were TSO/USO super-packets
  std::uint64_t gso_segments = 0;       // the packets cut from them (counted in packets too once sent)
  std::uint64_t csum_completed = 0;     // reads without GSO whose checksum was completed (NEEDS_CSUM)
  // Reads the segmenter refused, by offload::GsoError (index 0, None, stays 0): dropped.
  std::array<std::uint64_t, offload::kGsoErrorCount> gso_errors{};

  std::uint64_t gso_invalid() const {
    std::uint64_t n = 0;
    for (const std::uint64_t v : gso_errors) n += v;
    return n;
  }
  std::uint64_t dropped() const { return too_large + not_ip + bad_ip + too_short + submit_failed + gso_invalid(); }
  template <class F>
  void for_each_drop(F&& f) const {
    f("too_large", too_large);
    f("not_ip", not_ip);
    f("bad_ip", bad_ip);
    f("too_short", too_short);
    f("submit_failed", submit_failed);
    f("read_errors", read_errors);
    f("gso_invalid", gso_invalid());
  }
};

class TxStage {
 public:
  TxStage(const TxConfig& config, PacketIo& io, OutLink& link, LinkState& link_state);
  TxStage(const TxStage&) = delete;
  TxStage& operator=(const TxStage&) = delete;

  // Where RX puts ARP/NA replies (Ethernet framings).
  ReplyRing& replies() { return replies_; }
  // Where the control thread puts the IP packets it sends (DHCP, router solicitations); it is the
  // producer, and wakes this stage's PacketIo after pushing.
  ControlRing& control_packets() { return control_; }

  // --- TX worker thread
  // Posts the R reads. Call once, before the first pump().
  void start();
  // A completion whose tag has kTxReadTag.
  void on_completion(const IoCompletion& completion);
  // Moves ready packets and replies into NTBs and sends what is due. `more_pending`: the worker's
  // last reap filled its batch, so more completions are probably waiting right now.
  bool pump(bool more_pending);
  // Shutdown: completions from now on are not reposted.
  void stop_reading() { stopping_ = true; }
  // Reads still posted (for the drain at shutdown).
  std::size_t reads_in_flight() const { return reads_posted_; }
  // True while no OUT buffer is free and packets wait for one.
  bool backpressured() const { return backpressured_; }
  // A packet waits for an OUT buffer and one is free now: what Worker checks, after saying it is
  // about to wait, so that a buffer freed without a wake-up is not missed (worker.hpp).
  bool has_input() const { return wants_out_buffer() && link_.has_free_buffer(); }

  // --- any thread
  // The last pump() left a packet (a TUN read, a control packet) waiting for an OUT buffer: the
  // only time a freed buffer is news to this stage.
  bool wants_out_buffer() const { return wants_out_buffer_.load(std::memory_order_relaxed); }
  void publish();

  // --- any thread
  TxCounters counters() const;

 private:
  // One OUT slot's builder: an NtbBuilder for the NTB framings, a PacketBuilder for RNDIS. The
  // per-packet calls test which one exists (one predictable branch), no virtual call.
  struct SlotBuilder {
    std::optional<ntb::NtbBuilder> ntb;
    std::optional<rndis::PacketBuilder> rndis;
    ntb::AppendResult append(ntb::Bytes frame);
    std::optional<ntb::MutableBytes> reserve(std::size_t length_bytes) {
      return ntb ? ntb->reserve(length_bytes) : rndis->reserve(length_bytes);
    }
    void commit(std::size_t length_bytes) {
      if (ntb) ntb->commit(length_bytes);
      else rndis->commit(length_bytes);
    }
    bool full() const { return ntb ? ntb->full() : rndis->full(); }
    bool empty() const { return ntb ? ntb->empty() : rndis->empty(); }
  };

  bool open_ntb();
  void send_ntb();
  bool append_frame(ntb::Bytes frame, std::size_t ip_bytes);
  bool send_control_packets();
  void post_read(unsigned index);
  // One ready read into the open NTB(s); false = no OUT buffer (it stays ready).
  bool take_read(std::uint32_t index, const eth::MacAddress& destination);
  bool take_frame(std::uint32_t index);  // TAP: the frame as it is
  bool segment_read(std::uint32_t index, const eth::MacAddress& destination);

  TxConfig config_;
  PacketIo& io_;
  OutLink& link_;
  LinkState& link_state_;
  ReplyRing replies_;
  ControlRing control_;
  ControlPacket control_held_;     // popped, waiting for an OUT buffer
  bool holding_control_ = false;
  std::array<std::uint8_t, eth::kEthernetHeaderSize + kControlPacketMaxBytes> control_frame_{};

  std::size_t read_stride_ = 0;            // bytes per read buffer: Ethernet header + MTU
  std::vector<std::uint8_t> read_memory_;  // R buffers back to back
  std::vector<std::uint32_t> read_length_; // what each completed read holds
  std::vector<std::uint32_t> ready_;       // FIFO of completed reads (fixed capacity R)
  std::size_t ready_head_ = 0, ready_count_ = 0;
  std::size_t reads_posted_ = 0;
  unsigned consecutive_read_errors_ = 0;
  std::size_t read_offset_ = 0;            // where a read lands in its buffer (Ethernet room, or 0)
  std::size_t read_bytes_ = 0;             // the most a read takes

  // vnet_hdr: the read at the head of the FIFO being segmented (resumed after back-pressure).
  offload::GsoSegmenter gso_;
  bool gso_started_ = false;
  bool gso_segmenting_ = false;  // the read is a super-packet (its pieces count as gso_segments)

  bool ethernet_ = true;                   // framing_row(config.framing).ethernet
  bool passthrough_ = false;               // framing_row(config.framing).passthrough (TAP)
  std::vector<SlotBuilder> builders_;      // one per OUT slot, made on first use
  std::optional<unsigned> open_slot_;
  std::uint64_t open_packets_ = 0, open_bytes_ = 0;
  std::chrono::steady_clock::time_point opened_at_{};
  std::uint16_t sequence_ = 0;
  bool backpressured_ = false;
  std::atomic<bool> wants_out_buffer_{false};  // set at the end of pump(), read by the USB thread
  bool stopping_ = false;

  TxCounters counters_;
  mutable std::mutex published_mu_;
  TxCounters published_;
};

}  // namespace wwan::dp
