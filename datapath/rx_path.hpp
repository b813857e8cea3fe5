// The RX worker's stage (DESIGN.md "Data flow", first half): completed bulk-IN buffers in, IP
// packets written to the TUN out, straight from the buffer they arrived in.
//
//   USB event thread                       RX worker (owns everything below)
//   InPipe completion ─ post() ─▶ SpscRing ─▶ pump(): parse the NTB(s) (or the RNDIS packet
//                                           messages, RxConfig::framing) of one buffer into a list
//                                           of datagram views; NCM/RNDIS: strip Ethernet, learn the
//                                           modem's MAC, answer ARP/NS (reply → TX's ring);
//                                           MBIM: IPS session 0 only; trim to the IP length;
//                                           DHCP to the client and RAs ─▶ ControlRing (a copy)
//                                        ─▶ PacketIo::prepare_write per packet, one submit() per
//                                           batch ─▶ on_completion(): when the last write of a
//                                           buffer completes, InLink::release(slot) resubmits it.
//
// TUN offload (RxConfig::vnet_hdr, docs/offload.md): the buffers that are already on the ring
// when the worker gets to them (up to RxConfig::gro_batch_transfers) are taken together as one
// batch, and all their IP packets go through the batch's GroCoalescer: a super-packet may gather
// the segments of one flow from several IN transfers (a modem ships a transfer with whatever it
// has, so one NTB often holds half of what a 64 KiB super-packet can). Nothing waits for more:
// a batch is only what had already arrived. Each item is one prepare_writev: a super-packet
// (virtio_net_hdr + rewritten headers in the coalescer's scratch, then every segment's payload
// still in its NTB) or a plain packet behind a zero virtio_net_hdr. The iovecs and scratch
// headers must live until the batch's last write completes, and writes of several batches are in
// flight at once: so one coalescer per batch in flight, and every IN slot of a batch goes back to
// the pipe only when the last write of the batch has completed (a write may point into any of
// its buffers). There are as many batches as IN slots: each batch in flight holds at least one
// slot, so a buffer just taken off the ring always finds a free one.
//
// Bounded everywhere: the ring holds at most the IN pipe's K buffers (a full ring is a counted
// drop of the whole buffer, which cannot happen unless K > capacity); the datagram list is
// allocated once for the largest transfer; writes in flight are bounded by PacketIo::free_slots()
// (when the TUN side is full the worker stops taking buffers, the IN pipe runs out of submitted
// transfers and the modem is NAKed: back-pressure to the device, as a kernel driver would do).
// Nothing here allocates after construction.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "datapath/ethernet.hpp"
#include "datapath/framing.hpp"
#include "datapath/link_state.hpp"
#include "datapath/links.hpp"
#include "datapath/ntb_parse.hpp"
#include "datapath/offload/gro.hpp"
#include "datapath/packet_io.hpp"
#include "datapath/spsc_ring.hpp"

namespace wwan::dp {

// An ARP reply (60 bytes) or a Neighbour Advertisement (86 bytes) on its way from RX to TX.
struct ReplyFrame {
  std::array<std::uint8_t, 96> bytes{};
  std::uint8_t length = 0;
};
using ReplyRing = SpscRing<ReplyFrame>;

// An IP packet between the data path and the control thread (docs/dhcp.md): RX copies the
// control-plane packets it diverts from the TUN (is_control_plane_packet) into one; the control
// thread hands TX the DHCP messages and router solicitations it sends in another.
inline constexpr std::size_t kControlPacketMaxBytes = 1500;
struct ControlPacket {
  std::array<std::uint8_t, kControlPacketMaxBytes> bytes{};
  std::uint16_t length = 0;
  // TX, NCM: the Ethernet destination (broadcast for a DHCPDISCOVER, 33:33:00:00:00:02 for an
  // RS); unset = the modem's learned MAC, as for TUN packets. MBIM (raw IP): ignored.
  bool has_destination = false;
  eth::MacAddress destination;
};
using ControlRing = SpscRing<ControlPacket>;

// The packets the control thread handles instead of the kernel: IPv4 UDP from port 67 to port 68
// (DHCP to the client; a TUN has no link layer, so no DHCP client of the system could use them)
// and ICMPv6 Router Advertisements directly after the fixed IPv6 header (router discovery is
// done by wwan-dp so that one place configures the TUN). Cheap checks only (ports, type): the
// control thread validates. `ip_packet` already trimmed to its IP length.
bool is_control_plane_packet(ntb::Bytes ip_packet);

// Tags of the operations the workers put on a PacketIo: the stage in the top byte, the slot in the
// low 32 bits. An RX write also carries, so that its completion alone can be counted, the IP
// packets it holds (bits 32..47: 1, or a super-packet's segments, <= 1023) and a super-packet's
// per-segment header bytes (bits 48..55, <= 120): the segments' IP bytes are then the write's
// bytes - virtio_net_hdr + (segments - 1) * header bytes.
inline constexpr std::uint64_t kRxWriteTag = std::uint64_t{1} << 56;
inline constexpr std::uint64_t kTxReadTag = std::uint64_t{2} << 56;
inline constexpr std::uint64_t kTagStageMask = std::uint64_t{0xFF} << 56;

struct RxConfig {
  Framing framing = Framing::ncm;   // datapath/framing.hpp: NTBs of NCM or MBIM, or RNDIS packet messages
  std::size_t transfer_bytes = 0;   // the IN pipe's buffer size (dwNtbInMaxSize, RNDIS: our MaxTransferSize)
  std::size_t ring_capacity = 64;   // >= the IN pipe's transfers in flight
  unsigned in_slots = 64;           // the IN pipe's K (slot numbers are below it)
  eth::MacAddress our_mac;          // Ethernet framings: ARP / NA replies carry it
  bool verify_crc = false;          // NCM1: check each datagram's CRC-32
  bool divert_control = false;      // control-plane packets go to control_packets(), not the TUN
  std::size_t control_ring_capacity = 16;
  // TUN offload: the TUN has IFF_VNET_HDR, so every write starts with a virtio_net_hdr, and the
  // IP packets of each buffer are coalesced into TCP (and with gro_udp UDP) super-packets.
  bool vnet_hdr = false;
  // UDP_L4 super-packets too: only when TUNSETOFFLOAD granted USO (the kernel takes UDP_L4 from
  // a TUN since Linux 6.2, the release that added TUN_F_USO4/6; an older one refuses the write).
  bool gro_udp = false;
  // vnet_hdr: at most this many IN transfers (already completed, on the ring) are coalesced
  // together; 1 = each transfer alone. Also bounded by the coalescer's packet capacity.
  unsigned gro_batch_transfers = 8;
};

// Counted by the RX worker; copied out (publish / snapshot) for stats. Names are the JSON names.
struct RxCounters {
  ntb::NtbCounters ntb;              // transfers, NTBs, datagrams, and every parser error by reason
  rndis::PacketCounters rndis;       // RNDIS framing: transfers, messages, frames, every PacketError
  std::uint64_t packets = 0;         // IP packets written to the TUN
  std::uint64_t bytes = 0;           // their IP bytes
  std::uint64_t arp_replies = 0;     // NCM/RNDIS: ARP requests for our address answered
  std::uint64_t na_replies = 0;      // NCM/RNDIS: Neighbour Solicitations answered
  std::uint64_t padding_trimmed = 0; // delivered after cutting bytes past the IP length (a quirk, counted)
  std::uint64_t modem_mac_changes = 0;
  std::uint64_t control_diverted = 0;  // DHCP / RA packets handed to the control thread (not in packets)
  // TUN offload: what the coalescers did (super_packets, coalesced segments, plain by reason);
  // `packets` above counts segments, so packets - gro.coalesced + gro.super_packets is writes.
  offload::GroCounters gro;
  std::uint64_t gro_batches = 0;     // coalescer batches (rx.ntb.transfers / gro_batches = transfers per batch)
  // Drops: datagrams (or buffers) that did not reach the TUN, by reason.
  std::uint64_t ring_full = 0;            // whole buffers: the ring to RX was full
  std::uint64_t too_many_datagrams = 0;   // datagrams past the list's capacity (a degenerate NTB)
  std::uint64_t not_ip = 0;               // NCM: EtherType not IPv4/IPv6/ARP; MBIM: version nibble not 4/6
  std::uint64_t bad_ip = 0;               // truncated IP header or a stated length past the datagram
  std::uint64_t ethertype_mismatch = 0;   // NCM: EtherType IPv4 but an IPv6 packet, or the reverse
  std::uint64_t arp_ignored = 0;          // NCM: ARP not for us (other address, replies, gratuitous)
  std::uint64_t other_session = 0;        // MBIM: IPS of a session other than 0, or DSS
  std::uint64_t reply_ring_full = 0;      // an ARP/NA reply TX had no room for
  std::uint64_t tun_write_errors = 0;     // packets whose write the TUN refused (the kernel's -errno;
                                          // a refused super-packet counts all its segments)
  std::uint64_t control_ring_full = 0;    // a DHCP / RA packet the control thread had no room for
  std::uint64_t control_too_large = 0;    // a DHCP / RA packet above kControlPacketMaxBytes

  std::uint64_t dropped() const {
    return too_many_datagrams + not_ip + bad_ip + ethertype_mismatch + other_session + tun_write_errors +
           control_ring_full + control_too_large;
  }
  // (name, value) of every drop reason, for the stats event.
  template <class F>
  void for_each_drop(F&& f) const {
    f("ring_full", ring_full);
    f("too_many_datagrams", too_many_datagrams);
    f("not_ip", not_ip);
    f("bad_ip", bad_ip);
    f("ethertype_mismatch", ethertype_mismatch);
    f("arp_ignored", arp_ignored);
    f("other_session", other_session);
    f("reply_ring_full", reply_ring_full);
    f("tun_write_errors", tun_write_errors);
    f("control_ring_full", control_ring_full);
    f("control_too_large", control_too_large);
  }
};

class RxStage {
 public:
  // `replies`/`tx_io`: where ARP/NA replies go and whom to wake for them (Ethernet framings); may
  // be null (MBIM).
  RxStage(const RxConfig& config, PacketIo& io, InLink& link, LinkState& link_state, ReplyRing* replies,
          PacketIo* tx_io);
  RxStage(const RxStage&) = delete;
  RxStage& operator=(const RxStage&) = delete;

  // --- USB event thread (the producer)
  // A completed transfer. false = the ring was full: the caller must release the slot itself.
  bool post(const RxBuffer& buffer);

  // Diverted control-plane packets (RxConfig::divert_control); the control thread is the consumer.
  ControlRing& control_packets() { return control_ring_; }

  // --- RX worker thread
  // Takes buffers off the ring and queues their writes until the ring is empty or the PacketIo
  // has no free slot. true = it did something.
  bool pump();
  // A completion whose tag has kRxWriteTag.
  void on_completion(const IoCompletion& completion);
  // A buffer waits on the ring and pump() could start on it: what Worker checks, after saying it
  // is about to wait, so that a post() it was not woken for is not left waiting (worker.hpp).
  // false while the stage is part-way through a buffer: it waits for PacketIo slots, which only
  // completions free, and a completion ends the wait by itself.
  bool has_input() const { return cursor_ == count_ && !ring_.empty(); }
  // Nothing queued, nothing in flight, nothing half-done.
  bool idle() const {
    return writes_in_flight_ == 0 && cursor_ == count_ && !have_stashed_ && ring_.size_approx() == 0;
  }
  std::size_t writes_in_flight() const { return writes_in_flight_; }
  // Copies the counters where counters() can read them (call from the worker thread).
  void publish();

  // --- any thread
  RxCounters counters() const;

 private:
  struct Write {
    const std::uint8_t* data;
    std::uint32_t length;
  };
  void start_buffer(const RxBuffer& buffer);
  void parse_transfer(const RxBuffer& buffer);
  bool start_batch();
  void release_batch(std::uint32_t batch);
  void parse_ntbs(ntb::Bytes transfer);
  void parse_rndis(ntb::Bytes transfer);
  void deliver_ethernet(ntb::Bytes frame);
  void deliver_mbim(const ntb::DatagramView& view, ntb::Bytes datagram);
  void queue_ip(ntb::Bytes datagram);
  void queue_reply(std::size_t length);
  void divert(ntb::Bytes packet);
  void finish_queueing();
  void reload_addresses();
  bool queue_next_write();

  RxConfig config_;
  PacketIo& io_;
  InLink& link_;
  LinkState& link_state_;
  ReplyRing* replies_;
  PacketIo* tx_io_;
  SpscRing<RxBuffer> ring_;
  ControlRing control_ring_;
  ControlPacket control_scratch_;

  // The buffer being queued: its writes, and how far they got.
  std::vector<Write> writes_;      // capacity fixed at construction (without vnet_hdr)
  // vnet_hdr: the batches (one coalescer each; its items point into it and into the batch's
  // buffers until its last write completes), the current batch's items, and a buffer taken off
  // the ring that did not fit in the batch before it (it starts the next one).
  struct GroBatch {
    std::unique_ptr<offload::GroCoalescer> gro;
    std::vector<std::uint32_t> slots;  // the IN slots of its buffers, in arrival order
    std::uint32_t pending = 0;         // its writes in flight, + 1 while they are being queued
  };
  std::vector<GroBatch> batches_;
  std::uint32_t current_batch_ = 0;
  RxBuffer stashed_{};
  bool have_stashed_ = false;
  std::span<const offload::GroItem> items_;
  std::size_t count_ = 0, cursor_ = 0;
  std::uint32_t current_slot_ = 0;
  bool have_current_ = false;
  // Per IN slot (without vnet_hdr): writes still in flight, + 1 while the slot's writes are
  // still being queued. With vnet_hdr the batches count instead.
  std::vector<std::uint32_t> pending_;
  std::size_t writes_in_flight_ = 0;

  eth::ModemMacLearner learner_;
  HostAddresses addresses_;
  std::uint64_t addresses_version_ = ~std::uint64_t{0};
  ReplyFrame reply_;  // scratch
  RxCounters counters_;

  mutable std::mutex published_mu_;
  RxCounters published_;
  std::atomic<std::uint64_t> ring_full_{0};  // the producer's counter
};

}  // namespace wwan::dp
