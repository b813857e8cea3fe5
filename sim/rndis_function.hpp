// The device side of an RNDIS function, for the emulated FM350 (sim/rndis_fm350.hpp) and any
// other RNDIS modem: what Linux's f_rndis gadget and MS-RNDIS say a device does, behind the same
// call surface as a DeviceModel (control / out / in / next_deadline), so a Modem that owns it
// (with the AT port next to it) forwards its endpoints here.
//
// What it does, per the host's calls:
//   control()  SEND_ENCAPSULATED_COMMAND to the control interface: one RNDIS control message
//              (control/rndis_wire.hpp), answered into a bounded queue; every answer is announced
//              by an 8-byte RESPONSE_AVAILABLE (01 00 00 00 00 00 00 00) on the interrupt
//              endpoint. GET_ENCAPSULATED_RESPONSE takes the oldest due answer (zero bytes when
//              none). Everything else: STALL.
//                INITIALIZE  -> INITIALIZE_CMPLT with the config's limits; the host's
//                               MaxTransferSize bounds our IN transfers; the filter is cleared
//                QUERY       -> the OIDs a host asks (PERMANENT/CURRENT_ADDRESS = host_mac,
//                               MAXIMUM_FRAME_SIZE, LINK_SPEED, MEDIA_CONNECT_STATUS,
//                               CURRENT_PACKET_FILTER, MAXIMUM_TOTAL_SIZE, PHYSICAL_MEDIUM,
//                               SUPPORTED_LIST, XMIT_OK/RCV_OK); others NOT_SUPPORTED
//                SET         -> CURRENT_PACKET_FILTER (4 bytes), MULTICAST_LIST; others NOT_SUPPORTED
//                KEEPALIVE   -> KEEPALIVE_CMPLT (unless a fault says otherwise)
//                RESET       -> RESET_CMPLT with AddressingReset = 1: the filter is lost (0) and
//                               queued data is flushed, so the host must SET the filter again
//                HALT        -> uninitialised, no answer (MS-RNDIS §2.2.4)
//              A message that does not decode is answered with INDICATE_STATUS
//              RNDIS_STATUS_INVALID_DATA (MS-RNDIS §2.2.10) and counted.
//   out(bulk)  one transfer of PACKET_MSGs, parsed with the datapath parser (the same code the
//              host uses, so the tests of the builder meet a strict reader: messages per transfer
//              and alignment are checked against what INITIALIZE_CMPLT announced and counted when
//              broken); Ethernet stripped; ARP for the gateway and IPv6 NS answered with
//              device_mac; IP handed to the Network while data flows (initialised, nonzero filter,
//              media connected), else counted.
//   in(bulk)   link-level replies first, then the Network's packets framed device_mac -> host_mac,
//              aggregated with the datapath PacketBuilder up to the host's MaxTransferSize and
//              in_max_packets_per_transfer, aligned to 2^in_alignment_factor, with the 1-byte
//              short-packet pad when short_packet_pad is set. NAK when there is nothing.
//   in(interrupt)  the RESPONSE_AVAILABLE notifications.
// set_media_connected() is the link: the owning modem calls it when its data session (AT+CGACT on
// the FM350) comes or goes; the change is sent as INDICATE_STATUS MEDIA_CONNECT / DISCONNECT.
//
// Time: every call reads the clock once (steady_clock unless set_clock replaced it).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "control/rndis_wire.hpp"
#include "datapath/ethernet.hpp"
#include "datapath/rndis_packet.hpp"
#include "sim/device_model.hpp"
#include "sim/network.hpp"

namespace wwan::sim {

struct RndisFunctionConfig {
  std::uint8_t control_interface = 0;
  std::uint8_t notification_endpoint = 0x82;
  std::uint8_t bulk_in_endpoint = 0x81;
  std::uint8_t bulk_out_endpoint = 0x01;
  std::uint16_t bulk_max_packet_size = 512;
  eth::MacAddress device_mac{{0x02, 0x0E, 0x8D, 0x00, 0x00, 0x01}};  // locally administered
  eth::MacAddress host_mac{{0x02, 0x0E, 0x8D, 0x00, 0x00, 0x02}};    // OID_802_3_PERMANENT_ADDRESS
  // INITIALIZE_CMPLT: what the device takes from the host. No FM350 capture of these exists
  // (docs/rndis.md): plausible multi-packet values, chosen so the host's aggregation, alignment
  // and limits are all exercised.
  std::uint32_t max_transfer_size = 16384;
  std::uint32_t max_packets_per_transfer = 8;
  std::uint32_t packet_alignment_factor = 3;  // 8-byte aligned messages
  // How the device aggregates toward the host (its own choice; the host's MaxTransferSize caps it).
  std::uint32_t in_max_packets_per_transfer = 16;
  std::uint32_t in_alignment_factor = 2;  // 4-byte aligned messages
  bool short_packet_pad = true;           // a transfer that is a multiple of 512 gets 1 byte more
  std::uint32_t max_frame_size = 1500;    // OID_GEN_MAXIMUM_FRAME_SIZE
  std::uint32_t link_speed_100bps = 10'000'000;  // OID_GEN_LINK_SPEED: 1 Gbit/s
  // Physical medium answered (OID_GEN_PHYSICAL_MEDIUM): 0 unspecified. rndis_host refuses
  // WIRELESS_LAN (1) for this driver class.
  std::uint32_t physical_medium = 0;
};

// Misbehaviour a test switches on (each honoured at the next transaction it applies to).
struct RndisFaults {
  bool lose_response_available = false;       // answers are queued, never announced
  std::chrono::milliseconds answer_delay{0};  // answers become readable this long after the command
  bool ignore_keepalives = false;             // KEEPALIVE_MSG is never answered (the host resets)
  std::uint32_t keepalive_status = rndis::kStatusSuccess;  // KEEPALIVE_CMPLT Status
  std::uint32_t refuse_oid = 0;               // QUERY/SET of this OID answers RNDIS_STATUS_NOT_SUPPORTED
  std::uint32_t ignore_oid = 0;               // QUERY/SET of this OID is never answered
  std::optional<rndis::InitializeCmplt> initialize_answer;  // answered instead of the real one
  // The next N IN transfers start with a hostile PACKET_MSG: DataOffset 0xFFFFFFF0, the value
  // that wraps rndis_host's 32-bit `data_offset + data_len + 8 > msg_len` check.
  std::uint32_t hostile_in_messages = 0;
};

struct RndisFunctionCounters {
  std::uint64_t commands = 0;              // control messages received
  std::uint64_t bad_commands = 0;          // did not decode (answered INDICATE_STATUS INVALID_DATA)
  std::uint64_t responses_dropped = 0;     // found the response queue full
  std::uint64_t notifications_sent = 0;
  std::uint64_t keepalives_from_host = 0;
  std::uint64_t keepalive_answers_from_host = 0;  // KEEPALIVE_CMPLT for our own KEEPALIVE_MSG
  std::uint64_t resets = 0;
  std::uint64_t halts = 0;
  std::uint64_t transfers_from_host = 0;
  std::uint64_t transfers_too_large = 0;   // OUT transfer above our MaxTransferSize (dropped)
  std::uint64_t transfers_too_many_packets = 0;  // more messages than MaxPacketsPerTransfer (taken, counted)
  std::uint64_t messages_misaligned = 0;   // a message of a multi-message transfer off 2^PacketAlignmentFactor
  std::uint64_t frames_from_host = 0;
  std::uint64_t frames_before_data = 0;    // IP while not initialised / filter 0 / media down (dropped)
  std::uint64_t frames_other_ethertype = 0;
  std::uint64_t frames_malformed = 0;
  std::uint64_t arp_requests_from_host = 0;
  std::uint64_t neighbour_advertisements_sent = 0;
  std::uint64_t link_frames_dropped = 0;
  std::uint64_t transfers_to_host = 0;
  std::uint64_t frames_to_host = 0;
  std::uint64_t frames_to_host_dropped = 0;  // larger than any transfer the host allows
  std::uint64_t hostile_messages_sent = 0;
  rndis::PacketCounters out_parse;         // the parser's reasons for the host's transfers
};

class RndisFunction {
 public:
  using ClockFn = std::function<Clock::time_point()>;
  static constexpr std::size_t kMaxQueuedResponses = 32;
  static constexpr std::size_t kMaxQueuedLinkFrames = 32;

  RndisFunction(RndisFunctionConfig config, Network& network);

  // The DeviceModel calls of the function's interfaces and endpoints. control(): nullopt = STALL
  // (also for requests that are not the function's); out()/in() for an endpoint that is not the
  // function's answer stall.
  std::optional<std::size_t> control(const SetupPacket& setup, std::span<std::uint8_t> data);
  EndpointResult out(std::uint8_t endpoint_address, std::span<const std::uint8_t> data);
  InResult in(std::uint8_t endpoint_address, std::span<std::uint8_t> buffer);
  std::optional<Clock::time_point> next_deadline() const;
  bool owns_endpoint(std::uint8_t endpoint_address) const;

  // The link (the owner's data session). Sends INDICATE_STATUS when it changes while initialised.
  void set_media_connected(bool connected);
  // A device-initiated REMOTE_NDIS_KEEPALIVE_MSG (MS-RNDIS allows it; the host must answer).
  void send_keepalive();
  // A spontaneous indication (e.g. RNDIS_STATUS_LINK_SPEED_CHANGE), for tests of the host.
  void send_indication(std::uint32_t status);

  void set_clock(ClockFn clock) { clock_ = std::move(clock); }
  RndisFaults& faults() { return faults_; }
  const RndisFunctionConfig& config() const { return config_; }
  const RndisFunctionCounters& counters() const { return counters_; }
  bool initialized() const { return initialized_; }
  bool media_connected() const { return media_connected_; }
  std::uint32_t packet_filter() const { return packet_filter_; }
  std::uint32_t host_max_transfer_size() const { return host_max_transfer_size_; }
  // Initialised, a nonzero packet filter and the medium connected: IP flows both ways.
  bool data_flowing() const { return initialized_ && packet_filter_ != 0 && media_connected_; }

 private:
  struct Response {
    Clock::time_point due;
    rndis::ByteVector bytes;
  };

  void service(Clock::time_point now);
  void queue_response(rndis::ByteVector bytes, Clock::time_point now);
  void handle_command(std::span<const std::uint8_t> bytes, Clock::time_point now);
  void answer_query(const rndis::OidRequest& q, Clock::time_point now);
  void answer_set(const rndis::OidRequest& s, Clock::time_point now);
  void receive_transfer(std::span<const std::uint8_t> transfer, Clock::time_point now);
  void receive_frame(std::span<const std::uint8_t> frame, Clock::time_point now);
  void queue_link_frame(std::span<const std::uint8_t> frame);
  InResult send_packets(std::span<std::uint8_t> buffer, Clock::time_point now);
  void flush_data();

  RndisFunctionConfig config_;
  Network& network_;
  RndisFaults faults_;
  RndisFunctionCounters counters_;
  ClockFn clock_ = [] { return Clock::now(); };

  bool initialized_ = false;
  bool media_connected_ = false;
  std::uint32_t packet_filter_ = 0;
  std::uint32_t host_max_transfer_size_ = 0;
  std::uint32_t next_keepalive_id_ = 1;

  std::deque<Response> responses_;  // bounded by kMaxQueuedResponses; due times ascending
  std::size_t announced_ = 0;       // responses at the front already announced by a notification
  std::size_t notifications_ = 0;  // RESPONSE_AVAILABLE transfers waiting on the interrupt endpoint
  std::deque<std::vector<std::uint8_t>> link_frames_;
  std::vector<std::uint8_t> staged_frame_;  // one frame from the network that did not fit the last transfer
  std::size_t staged_length_ = 0;
};

}  // namespace wwan::sim
