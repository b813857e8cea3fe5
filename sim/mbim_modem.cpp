#include "sim/mbim_modem.hpp"

#include <algorithm>
#include <array>
#include <bitset>
#include <deque>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "control/cdc_ncm.hpp"
#include "control/mbim_wire.hpp"
#include "datapath/ntb_build.hpp"
#include "datapath/ntb_parse.hpp"
#include "sim/descriptor_builder.hpp"
#include "sim/profiles.hpp"

namespace wwan::sim {
namespace {

using mbim::BasicConnectCid;
using mbim::CommandType;
using mbim::MessageType;
using mbim::ProtocolError;
using mbim::Status;
using namespace em7455;

// ---- USB constants ---------------------------------------------------------------------------

// Class requests and notifications: control/cdc_ncm.hpp (CDC 1.2 §6.2, NCM 1.0 §6.2; MBIM 1.0
// §6 reuses the NCM NTB requests). RESET_FUNCTION is CDC 1.2 Table 19, absent from the NCM set.
using cdc::kRequestTypeClassInterfaceIn;
using cdc::kRequestTypeClassInterfaceOut;
constexpr std::uint8_t kResetFunction = 0x05;

// Bounds on what the host can make the model hold (no unbounded queue, DESIGN.md).
constexpr std::size_t kMaxQueuedResponses = 256;  // fragments waiting for GET_ENCAPSULATED_RESPONSE
constexpr std::size_t kStagingBytes = 65536;      // one IP packet on its way into an IN NTB

// What the modem says about itself and its SIM. Invented, but shaped like the real thing:
// EM7455 firmware strings are SWI9X30C_..., the IMSI/ICCID use the test PLMN 001/01.
constexpr const char* kFirmwareInfo = "SWI9X30C_02.24.05.06";
constexpr const char* kHardwareInfo = "EM7455";
constexpr const char* kImei = "359072060000001";
constexpr const char* kImsi = "001010123456789";
constexpr const char* kIccid = "89001012345678901234";
constexpr const char* kProviderId = "00101";
constexpr const char* kProviderName = "wwan-dp sim";
// Cat 6 LTE (EM7455 datasheet class): 300 Mbit/s down, 50 Mbit/s up.
constexpr std::uint64_t kDownlinkBitsPerS = 300'000'000, kUplinkBitsPerS = 50'000'000;
constexpr std::uint32_t kDataClasses = mbim::data_class::kGprs | mbim::data_class::kEdge |
                                       mbim::data_class::kUmts | mbim::data_class::kHsdpa |
                                       mbim::data_class::kHsupa | mbim::data_class::kLte;

// QMI error codes answered for what the model does not do (libqmi QMI_PROTOCOL_ERROR_*; not in
// the anchors, only the failure result matters to a host).
constexpr std::uint16_t kQmiErrInvalidClientId = 0x0007;
constexpr std::uint16_t kQmiErrInvalidQmiCommand = 0x0047;

DeviceIdentity em7455_identity(const ModemOptions& options) {
  const ByteVector cdc_header{0x05, 0x24, 0x00, 0x10, 0x01};  // CDC Header, bcdCDC 1.10
  // MBIM FD (subtype 0x1b): bcdMBIMVersion 1.00, wMaxControlMessage, bNumberFilters 32,
  // bMaxFilterSize 128, wMaxSegmentSize, bmNetworkCapabilities 0x20 (usb_descriptors.md D8: the
  // typical Qualcomm value set).
  const ByteVector mbim_fd{0x0c, 0x24, 0x1b, 0x00, 0x01,
                           static_cast<std::uint8_t>(kMaxControlMessage & 0xff),
                           static_cast<std::uint8_t>(kMaxControlMessage >> 8), 0x20, 0x80,
                           static_cast<std::uint8_t>(kMaxSegmentSize & 0xff),
                           static_cast<std::uint8_t>(kMaxSegmentSize >> 8), 0x20};
  // MBIM Extended FD (subtype 0x1c): 1.00, 64 outstanding commands, wMTU.
  const ByteVector mbim_extended_fd{0x08, 0x24, 0x1c, 0x00, 0x01, 0x40, static_cast<std::uint8_t>(kMtu & 0xff),
                                    static_cast<std::uint8_t>(kMtu >> 8)};
  const ByteVector union_fd{0x05, 0x24, 0x06, kControlInterface, kDataInterface};
  DeviceIdentity id;
  id.descriptors = concat({
      device_descriptor(0x0200, 0x00, 0x00, 0x00, kVendorId, kProductId, 0x0006, 1, 2, 3, 1),
      configuration(1, 0xa0, 0xfa,
                    {
                        iad(kControlInterface, 2, 0x02, 0x0e, 0x00),
                        interface(kControlInterface, 0, 1, 0x02, 0x0e, 0x00),
                        cdc_header,
                        mbim_fd,
                        mbim_extended_fd,
                        union_fd,
                        endpoint(kNotificationEndpoint, kInterrupt, 64, 9),
                        interface(kDataInterface, 0, 0, 0x0a, 0x00, 0x02),
                        interface(kDataInterface, kDataAltSetting, 2, 0x0a, 0x00, 0x02),
                        endpoint(kBulkInEndpoint, kBulk, 512, 0),
                        endpoint(kBulkOutEndpoint, kBulk, 512, 0),
                    }),
  });
  id.strings = {{1, "Sierra Wireless, Incorporated"},
                {2, "Sierra Wireless EM7455 Qualcomm Snapdragon X7 LTE-A"},
                {3, options.serial}};
  id.active_configuration = 1;
  id.kernel_drivers = {{kControlInterface, "cdc_mbim"}, {kDataInterface, "cdc_mbim"}};
  id.speed_mbps = 480;
  return id;
}

void put_le16(std::span<std::uint8_t> b, std::size_t off, std::uint16_t v) { ntb::store_le16(b, off, v); }
void put_le32(std::span<std::uint8_t> b, std::size_t off, std::uint32_t v) { ntb::store_le32(b, off, v); }

std::size_t copy_out(std::span<const std::uint8_t> from, std::span<std::uint8_t> to) {
  const std::size_t n = std::min(from.size(), to.size());
  std::copy_n(from.begin(), n, to.begin());
  return n;
}

ProtocolError protocol_error_for(mbim::WireError e) {
  switch (e) {
    case mbim::WireError::FragmentOutOfSequence:
    case mbim::WireError::FragmentTransactionMismatch:
    case mbim::WireError::FragmentTypeMismatch:
    case mbim::WireError::FragmentTotalMismatch:
    case mbim::WireError::BadFragmentCurrent:
    case mbim::WireError::BadFragmentTotal: return ProtocolError::FragmentOutOfSequence;
    case mbim::WireError::TooManyFragments:
    case mbim::WireError::MessageTooLarge: return ProtocolError::MaxTransfer;
    case mbim::WireError::Truncated:
    case mbim::WireError::MessageLengthTooShort:
    case mbim::WireError::InformationBufferOverrun: return ProtocolError::LengthMismatch;
    default: return ProtocolError::Unknown;
  }
}

struct Session {
  bool active = false;
  mbim::IpType ip_type = mbim::IpType::IPv4v6;
  std::string access_string;
};

class Em7455 final : public MbimModem {
 public:
  explicit Em7455(const ModemOptions& options)
      : identity_(em7455_identity(options)),
        network_(options.network),
        sim_pin_(options.sim_pin),
        sim_locked_(!options.sim_pin.empty()),
        clock_([] { return Clock::now(); }),
        staging_(kStagingBytes),
        command_reassembler_(mbim::ReassemblyLimits{16, kMaxControlMessage * 16u}) {}

  // ---- Modem --------------------------------------------------------------------------------
  const DeviceIdentity& identity() const override { return identity_; }
  std::string_view profile() const override { return "mbim"; }
  Network& network() override { return network_; }
  Faults& faults() override { return faults_; }
  const ModemCounters& counters() const override { return counters_; }
  bool session_active() const override { return lowest_active_session().has_value(); }
  bool connected() const override { return !gone_ && !faults_.unplug; }

  void set_clock(ClockFunction now) override { clock_ = std::move(now); }
  bool fcc_authenticated() const override { return fcc_authenticated_; }
  bool function_open() const override { return open_; }

  // ---- DeviceModel ------------------------------------------------------------------------
  bool set_configuration(std::uint8_t value) override {
    if (!begin_transaction()) return false;
    if (value > 1) return false;
    configured_ = value == 1;
    reset_function();
    data_alt_ = 0;
    return true;
  }

  bool set_interface(std::uint8_t interface_number, std::uint8_t alternate) override {
    if (!begin_transaction() || !configured_) return false;
    if (interface_number == kControlInterface) return alternate == 0;
    if (interface_number != kDataInterface || alternate > kDataAltSetting) return false;
    if (alternate == 0) {
      // NCM 1.0 §7.2 (MBIM reuses it): alt 0 returns the NTB parameters to their defaults.
      reset_ntb_parameters();
    } else if (faults_.ntb_format_reverts_after_alt && ntb_format_ != ntb::NtbFormat::Ntb16) {
      ntb_format_ = ntb::NtbFormat::Ntb16;
      ++counters_.faults_injected;
    }
    data_alt_ = alternate;
    in_sequence_ = 0;
    return true;
  }

  bool clear_halt(std::uint8_t endpoint_address) override {
    if (!begin_transaction()) return false;
    if (endpoint_address == kBulkInEndpoint) {
      bulk_in_halted_ = false;
      faults_.stall_bulk_in = false;
      return true;
    }
    if (endpoint_address == kBulkOutEndpoint) {
      bulk_out_halted_ = false;
      faults_.stall_bulk_out = false;
      return true;
    }
    return endpoint_address == kNotificationEndpoint;
  }

  std::optional<std::size_t> control(const SetupPacket& setup, std::span<std::uint8_t> data) override {
    if (!begin_transaction()) return std::nullopt;
    ++counters_.control_requests;
    if (!configured_ || (setup.index & 0xff) != kControlInterface) return std::nullopt;
    const bool out = setup.request_type == kRequestTypeClassInterfaceOut;
    const bool in = setup.request_type == kRequestTypeClassInterfaceIn;
    switch (setup.request) {
      case cdc::kSendEncapsulatedCommand:
        if (!out) return std::nullopt;
        receive_message(data);
        return 0;
      case cdc::kGetEncapsulatedResponse:
        if (!in) return std::nullopt;
        return pop_response(data);
      case kResetFunction:
        if (!out) return std::nullopt;
        reset_function();
        return 0;
      case cdc::kGetNtbParameters: {
        if (!in) return std::nullopt;
        std::array<std::uint8_t, cdc::kNtbParametersSize> p{};
        (void)cdc::encode_ntb_parameters(ntb_parameters(), p);
        return copy_out(p, data);
      }
      case cdc::kGetNtbFormat: {
        if (!in) return std::nullopt;
        std::array<std::uint8_t, 2> v{};
        put_le16(v, 0, cdc::ntb_format_value(ntb_format_));
        return copy_out(v, data);
      }
      case cdc::kSetNtbFormat: {
        // NCM 1.0 §6.2.5: only while the data interface is in alt 0.
        const auto format = cdc::ntb_format_from_value(setup.value);
        if (!out || data_alt_ != 0 || !format) return std::nullopt;
        ntb_format_ = *format;
        return 0;
      }
      case cdc::kGetNtbInputSize: {
        if (!in) return std::nullopt;
        // The 8-byte form: bmNetworkCapabilities bit 5 is set in the MBIM FD.
        std::array<std::uint8_t, cdc::kNtbInputSizeLong> v{};
        (void)cdc::encode_ntb_input_size(cdc::NtbInputSize{ntb_in_max_size_, 0}, true, v);
        return copy_out(v, data);
      }
      case cdc::kSetNtbInputSize: {
        // 4-byte form (what Linux sends) or 8-byte form; the size must lie in [2048, dwNtbInMaxSize].
        const auto size = cdc::decode_ntb_input_size(data);
        if (!out || !size || size->ntb_in_max_size < ntb::kNtbMinSize || size->ntb_in_max_size > kNtbInMaxSize)
          return std::nullopt;
        ntb_in_max_size_ = size->ntb_in_max_size;
        return 0;
      }
      default: return std::nullopt;  // GET/SET_MAX_DATAGRAM_SIZE etc.: bmNetworkCapabilities says no
    }
  }

  EndpointResult out(std::uint8_t endpoint_address, std::span<const std::uint8_t> data) override {
    if (!begin_transaction()) return EndpointResult::gone;
    if (endpoint_address != kBulkOutEndpoint || data_alt_ != kDataAltSetting) return EndpointResult::stall;
    if (faults_.stall_bulk_out && !bulk_out_halted_) {
      bulk_out_halted_ = true;
      ++counters_.faults_injected;
    }
    if (bulk_out_halted_) return EndpointResult::stall;
    if (data.empty()) return EndpointResult::ok;  // a ZLP ends a transfer; nothing to parse
    if (data.size() > kNtbOutMaxSize) {
      ++counters_.ntbs_from_host_dropped;
      return EndpointResult::ok;
    }
    OutSink sink{*this, data, clock_()};
    const ntb::TransferSummary summary =
        ntb::parse_transfer(data, ntb::ParseOptions{ntb::FunctionKind::Mbim, false}, sink);
    if (summary.ntbs == 0) ++counters_.ntbs_from_host_dropped;
    counters_.ntbs_from_host += summary.ntbs;
    return EndpointResult::ok;
  }

  InResult in(std::uint8_t endpoint_address, std::span<std::uint8_t> buffer) override {
    if (!begin_transaction()) return {EndpointResult::gone, 0};
    if (endpoint_address == kNotificationEndpoint) return notification(buffer);
    if (endpoint_address != kBulkInEndpoint || data_alt_ != kDataAltSetting) return {EndpointResult::stall, 0};
    if (faults_.stall_bulk_in && !bulk_in_halted_) {
      bulk_in_halted_ = true;
      ++counters_.faults_injected;
    }
    if (bulk_in_halted_) return {EndpointResult::stall, 0};
    const auto bytes = build_in_ntb(buffer);
    if (!bytes) return {EndpointResult::nak, 0};
    if (faults_.unplug_after_in_transfers > 0 && --faults_.unplug_after_in_transfers == 0) {
      gone_ = true;  // this transfer completes; the device is gone for the next call
      ++counters_.faults_injected;
    }
    return {EndpointResult::ok, *bytes};
  }

  std::optional<Clock::time_point> next_deadline() const override {
    std::optional<Clock::time_point> next;
    const Clock::time_point now = clock_();
    for (const Response& r : responses_)
      if (r.ready_at > now && (!next || r.ready_at < *next)) next = r.ready_at;
    if (session_active()) {
      const auto network_next = network_.next_deadline();
      if (network_next && (!next || *network_next < *next)) next = network_next;
    }
    return next;
  }

 private:
  struct Response {
    ByteVector bytes;  // one fragment
    Clock::time_point ready_at;
    bool notify = true;     // false: the RESPONSE_AVAILABLE was lost (fault)
    bool notified = false;
  };

  // Sink of the bulk-OUT parser: IPS datagrams of active sessions go to the network.
  struct OutSink {
    Em7455& modem;
    std::span<const std::uint8_t> transfer;
    Clock::time_point now;
    void datagram(const ntb::DatagramView& d) {
      const auto bytes = transfer.subspan(static_cast<std::size_t>(d.offset), d.length);
      if (d.kind == ntb::DatagramKind::Ips && d.session < kMaxSessions && modem.sessions_[d.session].active) {
        ++modem.counters_.datagrams_from_host;
        modem.network_.from_host(bytes, now);
      } else {
        ++modem.counters_.frames_before_session;  // no such session up (or a DSS stream we do not have)
      }
    }
    void error(std::uint32_t, ntb::NtbError) {}
  };

  // Called first by every entry point: the unplug and session-drop faults act "at the next
  // transaction". False once the device is gone.
  bool begin_transaction() {
    if (!gone_ && network_.take_unplug_request(clock_())) faults_.unplug = true;  // the control port's unplug
    if (faults_.unplug && !gone_) {
      gone_ = true;
      ++counters_.faults_injected;
    }
    if (gone_) return false;
    if (network_.take_drop_session_request(clock_())) faults_.drop_session = true;  // the control port's drop-session
    if (faults_.drop_session) {
      faults_.drop_session = false;
      if (session_active()) {
        ++counters_.faults_injected;
        deactivate_all_sessions(/*indicate=*/true);
      }
    }
    return true;
  }

  // ---- control channel --------------------------------------------------------------------

  void receive_message(std::span<const std::uint8_t> bytes) {
    const auto header = mbim::read_header(bytes);
    if (!header) return;  // not even a TransactionId to answer to
    ++counters_.commands_received;
    const mbim::TransactionId tid = header->transaction_id;
    switch (header->type) {
      case MessageType::Open: {
        const auto open = mbim::parse_open(bytes);
        if (!open) return function_error(tid, protocol_error_for(open.error()));
        // MBIM 1.0 §9.3.1: answers are fragmented to what the host can take, never above our own
        // wMaxControlMessage, and not below the 64 bytes a host must accept.
        max_control_transfer_ =
            std::clamp<std::uint32_t>(open->max_control_transfer, mbim::kMinControlTransfer, kMaxControlMessage);
        command_reassembler_.reset();
        if (open_) deactivate_all_sessions(/*indicate=*/false);  // a re-OPEN starts the function afresh
        open_ = true;
        return queue(mbim::encode_done(MessageType::OpenDone, tid, Status::None));
      }
      case MessageType::Close: {
        if (const auto close = mbim::parse_close(bytes); !close)
          return function_error(tid, protocol_error_for(close.error()));
        deactivate_all_sessions(/*indicate=*/false);
        command_reassembler_.reset();
        open_ = false;
        return queue(mbim::encode_done(MessageType::CloseDone, tid, Status::None));
      }
      case MessageType::HostError:
        command_reassembler_.reset();  // the host gave up on what it was sending
        return;
      case MessageType::Command: {
        if (!open_) return function_error(tid, ProtocolError::NotOpened);
        const auto fed = command_reassembler_.feed(bytes);
        if (!fed) return function_error(tid, protocol_error_for(fed.error()));
        if (*fed == mbim::Reassembler::State::NeedMore) return;
        const auto command = mbim::parse_command(command_reassembler_.message());
        if (!command) return function_error(tid, protocol_error_for(command.error()));
        return dispatch(*command);
      }
      default: return function_error(tid, ProtocolError::Unknown);
    }
  }

  void function_error(mbim::TransactionId tid, ProtocolError code) {
    queue(mbim::encode_error(MessageType::FunctionError, tid, code));
  }

  // Splits one message into fragments of the host's MaxControlTransfer and queues them.
  void queue(const ByteVector& message) {
    auto pieces = mbim::fragment(message, max_control_transfer_);
    if (!pieces) return;  // cannot happen for messages we built
    const Clock::time_point ready_at = clock_() + faults_.control_answer_delay;
    for (auto& piece : *pieces) {
      if (responses_.size() >= kMaxQueuedResponses) return;  // the host stopped reading: drop
      responses_.push_back(Response{std::move(piece), ready_at, !faults_.lose_response_available, false});
    }
  }

  std::size_t pop_response(std::span<std::uint8_t> data) {
    if (responses_.empty() || responses_.front().ready_at > clock_()) return 0;  // CDC: a zero-length answer
    // A host reading with wLength below the fragment gets its first wLength bytes; the rest is
    // lost (fragments never exceed the MaxControlTransfer it announced, so a sane host never does).
    const std::size_t n = copy_out(responses_.front().bytes, data);
    responses_.pop_front();
    return n;
  }

  InResult notification(std::span<std::uint8_t> buffer) {
    const Clock::time_point now = clock_();
    for (Response& r : responses_) {
      if (r.ready_at > now) break;  // FIFO: later ones are not ready either
      if (r.notified) continue;
      r.notified = true;
      if (!r.notify) {
        ++counters_.faults_injected;  // lost RESPONSE_AVAILABLE
        continue;
      }
      // CDC 1.2 §6.3.1: RESPONSE_AVAILABLE, wIndex = the control interface, no data.
      std::array<std::uint8_t, cdc::kNotificationHeaderSize> n{};
      (void)cdc::encode_response_available(kControlInterface, n);
      ++counters_.notifications_sent;
      return {EndpointResult::ok, copy_out(n, buffer)};
    }
    return {EndpointResult::nak, 0};
  }

  void reset_function() {
    deactivate_all_sessions(/*indicate=*/false);
    open_ = false;
    command_reassembler_.reset();
    responses_.clear();
    max_control_transfer_ = kMaxControlMessage;
    reset_ntb_parameters();
  }

  // ---- command dispatch ----------------------------------------------------------------

  void reply(const mbim::CommandMessage& c, Status status, const ByteVector& info = {}) {
    queue(mbim::encode_command_done(c.transaction_id, c.service, c.cid, status, info));
  }

  void indicate(BasicConnectCid cid, const ByteVector& info) {
    if (!open_) return;
    queue(mbim::encode_indicate_status(0, mbim::kUuidBasicConnect, mbim::cid(cid), info));
  }

  void dispatch(const mbim::CommandMessage& c) {
    if (c.service == mbim::kUuidQmi && c.cid == mbim::kQmiCidMsg && c.command_type == CommandType::Set)
      return qmi_message(c);
    if (c.service != mbim::kUuidBasicConnect) return reply(c, Status::NoDeviceSupport);
    const bool set = c.command_type == CommandType::Set;
    switch (static_cast<BasicConnectCid>(c.cid)) {
      case BasicConnectCid::DeviceCaps:
        return set ? reply(c, Status::NoDeviceSupport) : reply(c, Status::None, mbim::encode(device_caps()));
      case BasicConnectCid::SubscriberReadyStatus:
        return set ? reply(c, Status::NoDeviceSupport) : reply(c, Status::None, mbim::encode(subscriber()));
      case BasicConnectCid::Pin: return pin(c);
      case BasicConnectCid::RadioState: return radio_state(c);
      case BasicConnectCid::RegisterState: return reply(c, Status::None, mbim::encode(registration()));
      case BasicConnectCid::PacketService: return packet_service(c);
      case BasicConnectCid::Connect: return connect(c);
      case BasicConnectCid::IpConfiguration: return ip_configuration(c);
      default: return reply(c, Status::NoDeviceSupport);
    }
  }

  mbim::DeviceCapsInfo device_caps() const {
    mbim::DeviceCapsInfo caps;
    caps.device_type = 1;     // embedded (an M.2 module)
    caps.cellular_class = 1;  // GSM family
    caps.voice_class = 1;     // no voice
    caps.sim_class = 2;       // removable
    caps.data_class = kDataClasses;
    caps.sms_caps = 0x3;      // PDU receive | send
    caps.control_caps = 0x1;  // manual registration
    caps.max_sessions = kMaxSessions;
    caps.device_id = kImei;
    caps.firmware_info = kFirmwareInfo;
    caps.hardware_info = kHardwareInfo;
    return caps;
  }

  mbim::SubscriberReadyStatusInfo subscriber() const {
    mbim::SubscriberReadyStatusInfo s;
    s.ready_state = sim_locked_ ? mbim::ReadyState::DeviceLocked : mbim::ReadyState::Initialized;
    s.subscriber_id = kImsi;
    s.sim_icc_id = kIccid;
    return s;
  }

  mbim::PinInfo pin_info() const {
    if (!sim_locked_) return mbim::PinInfo{mbim::pin_type::kNone, 0, 0};
    return mbim::PinInfo{mbim::pin_type::kPin1, 1, pin_attempts_};
  }

  void pin(const mbim::CommandMessage& c) {
    if (c.command_type == CommandType::Query) return reply(c, Status::None, mbim::encode(pin_info()));
    const auto set = mbim::parse_pin_set(c.information_buffer);
    if (!set) return reply(c, Status::InvalidParameters);
    if (set->pin_operation != mbim::pin_operation::kEnter) return reply(c, Status::NoDeviceSupport);
    if (!sim_locked_) return reply(c, Status::None, mbim::encode(pin_info()));
    if (pin_attempts_ == 0 || set->pin != sim_pin_) {
      if (pin_attempts_ > 0) --pin_attempts_;
      return reply(c, Status::Failure, mbim::encode(pin_info()));
    }
    sim_locked_ = false;
    reply(c, Status::None, mbim::encode(pin_info()));
    indicate(BasicConnectCid::SubscriberReadyStatus, mbim::encode(subscriber()));
    update_registration();
  }

  mbim::RadioStateInfo radio_info() const {
    // A FCC-locked Sierra keeps the radio off in hardware: HwRadioState off is what the host sees
    // (anchors §4.4: "HW off => FCC lock / rfkill suspect").
    return mbim::RadioStateInfo{fcc_authenticated_ ? mbim::RadioState::On : mbim::RadioState::Off,
                                radio_on_ ? mbim::RadioState::On : mbim::RadioState::Off};
  }

  void radio_state(const mbim::CommandMessage& c) {
    if (c.command_type == CommandType::Query) return reply(c, Status::None, mbim::encode(radio_info()));
    const auto wanted = mbim::parse_radio_state_set(c.information_buffer);
    if (!wanted || (*wanted != mbim::RadioState::On && *wanted != mbim::RadioState::Off))
      return reply(c, Status::InvalidParameters);
    if (*wanted == mbim::RadioState::On && !fcc_authenticated_) {
      // Refused until the QMI DMS 0x555F "FCC authentication" (umb(4) runs it before RADIO for
      // the EM7455 quirk, anchors §3.6 / §4.5).
      return reply(c, Status::Failure, mbim::encode(radio_info()));
    }
    radio_on_ = *wanted == mbim::RadioState::On;
    reply(c, Status::None, mbim::encode(radio_info()));
    indicate(BasicConnectCid::RadioState, mbim::encode(radio_info()));
    update_registration();
  }

  bool registered() const { return radio_on_ && !sim_locked_; }

  mbim::RegistrationStateInfo registration() const {
    mbim::RegistrationStateInfo r;
    r.register_state = registered() ? mbim::RegisterState::Home : mbim::RegisterState::Deregistered;
    r.register_mode = 1;  // automatic
    if (registered()) {
      r.available_data_classes = mbim::data_class::kLte;
      r.current_cellular_class = 1;
      r.provider_id = kProviderId;
      r.provider_name = kProviderName;
    }
    return r;
  }

  // Radio or SIM changed: registration follows, and losing it detaches (with indications).
  void update_registration() {
    if (registered() == was_registered_) return;
    was_registered_ = registered();
    indicate(BasicConnectCid::RegisterState, mbim::encode(registration()));
    if (!was_registered_ && attached_) {
      attached_ = false;
      deactivate_all_sessions(/*indicate=*/true);
      indicate(BasicConnectCid::PacketService, mbim::encode(packet_service_info()));
    }
  }

  mbim::PacketServiceInfo packet_service_info() const {
    mbim::PacketServiceInfo p;
    p.packet_service_state = attached_ ? mbim::PacketServiceState::Attached : mbim::PacketServiceState::Detached;
    if (attached_) {
      p.highest_available_data_class = mbim::data_class::kLte;
      p.uplink_speed_bits_per_s = kUplinkBitsPerS;
      p.downlink_speed_bits_per_s = kDownlinkBitsPerS;
    }
    return p;
  }

  void packet_service(const mbim::CommandMessage& c) {
    if (c.command_type == CommandType::Query) return reply(c, Status::None, mbim::encode(packet_service_info()));
    const auto action = mbim::parse_packet_service_set(c.information_buffer);
    if (!action) return reply(c, Status::InvalidParameters);
    if (*action == mbim::PacketServiceAction::Attach) {
      if (!radio_on_) return reply(c, Status::RadioPowerOff);
      if (!registered()) return reply(c, Status::NotRegistered);
      const bool changed = !attached_;
      attached_ = true;
      reply(c, Status::None, mbim::encode(packet_service_info()));
      if (changed) indicate(BasicConnectCid::PacketService, mbim::encode(packet_service_info()));
      return;
    }
    if (*action != mbim::PacketServiceAction::Detach) return reply(c, Status::InvalidParameters);
    const bool changed = attached_;
    attached_ = false;
    deactivate_all_sessions(/*indicate=*/true);
    reply(c, Status::None, mbim::encode(packet_service_info()));
    if (changed) indicate(BasicConnectCid::PacketService, mbim::encode(packet_service_info()));
  }

  mbim::ConnectInfo connect_info(std::uint32_t session_id) const {
    mbim::ConnectInfo info;
    info.session_id = session_id;
    const bool active = session_id < kMaxSessions && sessions_[session_id].active;
    info.activation_state = active ? mbim::ActivationState::Activated : mbim::ActivationState::Deactivated;
    info.ip_type = active ? sessions_[session_id].ip_type : mbim::IpType::Default;
    return info;
  }

  void connect(const mbim::CommandMessage& c) {
    if (c.command_type == CommandType::Query) {
      const auto id = mbim::parse_session_id_query(c.information_buffer);
      if (!id || *id >= kMaxSessions) return reply(c, Status::InvalidParameters);
      return reply(c, Status::None, mbim::encode(connect_info(*id)));
    }
    const auto set = mbim::parse_connect_set(c.information_buffer);
    if (!set || set->session_id >= kMaxSessions) return reply(c, Status::InvalidParameters);
    Session& s = sessions_[set->session_id];
    if (set->activation_command == mbim::ActivationCommand::Deactivate) {
      s.active = false;  // deactivating an inactive session succeeds too
      return reply(c, Status::None, mbim::encode(connect_info(set->session_id)));
    }
    if (set->activation_command != mbim::ActivationCommand::Activate) return reply(c, Status::InvalidParameters);
    if (!radio_on_) return reply(c, Status::RadioPowerOff);
    if (!attached_) return reply(c, Status::PacketServiceDetached);
    if (set->context_type != mbim::kUuidContextTypeInternet) return reply(c, Status::ContextNotSupported);
    if (!s.active) {
      s.active = true;
      // Default asks the network's choice: this network offers both families.
      s.ip_type = set->ip_type == mbim::IpType::Default ? mbim::IpType::IPv4v6 : set->ip_type;
      s.access_string = set->access_string;
    }
    reply(c, Status::None, mbim::encode(connect_info(set->session_id)));
  }

  void ip_configuration(const mbim::CommandMessage& c) {
    if (c.command_type != CommandType::Query) return reply(c, Status::NoDeviceSupport);
    const auto id = mbim::parse_session_id_query(c.information_buffer);
    if (!id || *id >= kMaxSessions) return reply(c, Status::InvalidParameters);
    if (!sessions_[*id].active) return reply(c, Status::ContextNotActivated);
    const NetworkConfig& n = network_.config();
    const mbim::IpType type = sessions_[*id].ip_type;
    mbim::IpConfigurationInfo info;
    info.session_id = *id;
    if (type != mbim::IpType::IPv6) {
      namespace a = mbim::ip_config_available;
      info.ipv4_configuration_available = a::kAddress | a::kGateway | a::kDns | a::kMtu;
      info.ipv4_addresses.push_back({n.host_ipv4_prefix_length, n.host_ipv4});
      info.ipv4_gateway = n.gateway_ipv4;
      info.ipv4_dns_servers = {n.dns_ipv4[0], n.dns_ipv4[1]};
      info.ipv4_mtu = n.mtu;
    }
    if (type != mbim::IpType::IPv4) {
      namespace a = mbim::ip_config_available;
      info.ipv6_configuration_available = a::kAddress | a::kGateway | a::kMtu;  // no IPv6 DNS configured
      info.ipv6_addresses.push_back({64, n.host_ipv6});
      info.ipv6_gateway = n.gateway_ipv6;
      info.ipv6_mtu = n.mtu;
    }
    reply(c, Status::None, mbim::encode(info));
  }

  std::optional<std::uint8_t> lowest_active_session() const {
    for (std::uint8_t i = 0; i < kMaxSessions; ++i)
      if (sessions_[i].active) return i;
    return std::nullopt;
  }

  void deactivate_all_sessions(bool indicate_each) {
    for (std::uint32_t i = 0; i < kMaxSessions; ++i) {
      if (!sessions_[i].active) continue;
      sessions_[i].active = false;
      if (indicate_each) indicate(BasicConnectCid::Connect, mbim::encode(connect_info(i)));
    }
  }

  // ---- QMI over MBIM (anchors §4.5) -------------------------------------------------------

  void qmi_message(const mbim::CommandMessage& c) {
    const auto request = mbim::qmi::parse(c.information_buffer);
    if (!request || request->qmux_flags != 0 || request->sdu_flags != 0) return reply(c, Status::InvalidParameters);
    std::vector<mbim::qmi::Tlv> tlvs;
    const auto result = [](std::uint16_t code, std::uint16_t error) {
      return mbim::qmi::Tlv{mbim::qmi::kTlvResult,
                            {static_cast<std::uint8_t>(code), 0, static_cast<std::uint8_t>(error & 0xff),
                             static_cast<std::uint8_t>(error >> 8)}};
    };
    std::uint8_t sdu_flags = mbim::qmi::kSduFlagResponseService;
    if (request->service == mbim::qmi::kServiceCtl) {
      sdu_flags = mbim::qmi::kSduFlagResponseCtl;
      const auto wanted = mbim::qmi::find_tlv(request->tlvs, mbim::qmi::kTlvAllocationInfo);
      if (request->message_id == mbim::qmi::kCtlAllocateClientId && wanted && wanted->size() == 1) {
        const std::uint8_t service = (*wanted)[0];
        const std::uint8_t client = allocate_qmi_client(service);
        // T2.4 order: the result first, then {service, client}.
        tlvs = {result(0, 0), {mbim::qmi::kTlvAllocationInfo, {service, client}}};
      } else {
        tlvs = {result(1, kQmiErrInvalidQmiCommand)};
      }
    } else if (request->service == mbim::qmi::kServiceDms &&
               request->message_id == mbim::qmi::kDmsSetFccAuthentication) {
      if (qmi_clients_[mbim::qmi::kServiceDms].test(request->client_id)) {
        fcc_authenticated_ = true;
        tlvs = {result(0, 0)};
      } else {
        tlvs = {result(1, kQmiErrInvalidClientId)};
      }
    } else {
      tlvs = {result(1, kQmiErrInvalidQmiCommand)};
    }
    const ByteVector tlv_bytes = mbim::qmi::encode_tlvs(tlvs);
    const mbim::qmi::Message answer{mbim::qmi::kQmuxFlagFromDevice, request->service, request->client_id, sdu_flags,
                                    request->transaction_id, request->message_id, tlv_bytes};
    reply(c, Status::None, mbim::qmi::encode(answer));
  }

  // Client ids 1..255 per service, handed out round-robin (bounded: a bitset per service).
  std::uint8_t allocate_qmi_client(std::uint8_t service) {
    std::uint8_t& next = next_qmi_client_[service];
    next = static_cast<std::uint8_t>(next == 255 ? 1 : next + 1);
    qmi_clients_[service].set(next);
    return next;
  }

  // ---- data path ----------------------------------------------------------------------------

  void reset_ntb_parameters() {
    ntb_format_ = ntb::NtbFormat::Ntb16;
    ntb_in_max_size_ = kNtbInMaxSize;
  }

  static cdc::NtbParameters ntb_parameters() {
    cdc::NtbParameters p;
    p.ntb_formats_supported = kNtbFormatsSupported;
    p.ntb_in_max_size = kNtbInMaxSize;
    p.ndp_in_divisor = kNdpDivisor;
    p.ndp_in_payload_remainder = kNdpPayloadRemainder;
    p.ndp_in_alignment = kNdpAlignment;
    p.ntb_out_max_size = kNtbOutMaxSize;
    p.ndp_out_divisor = kNdpDivisor;
    p.ndp_out_payload_remainder = kNdpPayloadRemainder;
    p.ndp_out_alignment = kNdpAlignment;
    p.ntb_out_max_datagrams = kNtbOutMaxDatagrams;
    return p;
  }

  // Aggregates what the network has for the host into one NTB written straight into `buffer`.
  std::optional<std::size_t> build_in_ntb(std::span<std::uint8_t> buffer) {
    const auto session = lowest_active_session();
    if (!session) return std::nullopt;
    const Clock::time_point now = clock_();
    ntb::NtbOutParams params;
    params.format = ntb_format_;
    params.ntb_out_max_size = ntb_in_max_size_;  // the host's dwNtbInMaxSize bounds what we send
    params.ndp_out_divisor = kNdpDivisor;
    params.ndp_out_payload_remainder = kNdpPayloadRemainder;
    params.ndp_out_alignment = kNdpAlignment;
    params.ethernet_framing = false;  // MBIM carries raw IP
    ntb::NtbBuilder builder(buffer, params, ntb::NdpSignature{ntb_format_, ntb::DatagramKind::Ips, *session});
    builder.reset(in_sequence_);
    std::size_t datagrams = 0;
    while (!builder.full()) {
      if (!pending_bytes_) {
        pending_bytes_ = network_.to_host(staging_, now);
        if (!pending_bytes_) break;
      }
      const auto r = builder.append(std::span<const std::uint8_t>(staging_.data(), *pending_bytes_));
      if (r == ntb::AppendResult::Full) break;  // kept for the next NTB
      pending_bytes_.reset();
      if (r == ntb::AppendResult::Appended) ++datagrams;  // TooLarge / ZeroLength: dropped
    }
    if (datagrams == 0) return std::nullopt;
    std::size_t length = builder.finish().size();
    ++in_sequence_;
    length = damage(buffer, length);
    ++counters_.ntbs_to_host;
    counters_.datagrams_to_host += datagrams;
    return length;
  }

  // The garbage / truncated / oversize faults, applied to the NTB just built (its datagrams are lost,
  // as they would be on a real link). Returns the transfer length.
  std::size_t damage(std::span<std::uint8_t> buffer, std::size_t length) {
    if (faults_.garbage_ntbs > 0) {
      --faults_.garbage_ntbs;
      ++counters_.faults_injected;
      std::uniform_int_distribution<int> byte(0, 255);
      for (std::size_t i = 0; i < length; ++i) buffer[i] = static_cast<std::uint8_t>(byte(rng_));
      buffer[0] = 0xEE;  // never a valid NTH signature
      return length;
    }
    if (faults_.truncated_ntbs > 0) {
      --faults_.truncated_ntbs;
      ++counters_.faults_injected;
      return length / 2;  // wBlockLength still says `length`
    }
    if (faults_.oversize_ntbs > 0) {
      --faults_.oversize_ntbs;
      ++counters_.faults_injected;
      // A block that claims more than the negotiated dwNtbInMaxSize, zero-padded as far as the
      // host's buffer reaches (a device ignoring SET_NTB_INPUT_SIZE, anchors §1.6).
      const bool b16 = ntb_format_ == ntb::NtbFormat::Ntb16;
      const std::uint64_t limit = b16 ? ntb::kNtb16MaxSize : 0xFFFFFFFFu;
      const std::uint64_t declared = std::min<std::uint64_t>(std::uint64_t{ntb_in_max_size_} + 512, limit);
      const std::size_t sent = static_cast<std::size_t>(std::min<std::uint64_t>(declared, buffer.size()));
      if (sent > length) std::fill(buffer.begin() + static_cast<std::ptrdiff_t>(length),
                                   buffer.begin() + static_cast<std::ptrdiff_t>(sent), std::uint8_t{0});
      if (b16) put_le16(buffer, 8, static_cast<std::uint16_t>(declared));
      else put_le32(buffer, 8, static_cast<std::uint32_t>(declared));
      return std::max(sent, length);
    }
    return length;
  }

  DeviceIdentity identity_;
  Network network_;
  Faults faults_;
  ModemCounters counters_;
  std::string sim_pin_;
  bool sim_locked_;
  std::uint32_t pin_attempts_ = 3;
  ClockFunction clock_;
  std::mt19937 rng_{0x7455};

  // USB state.
  bool gone_ = false;
  bool configured_ = true;
  std::uint8_t data_alt_ = 0;
  bool bulk_in_halted_ = false;
  bool bulk_out_halted_ = false;
  ntb::NtbFormat ntb_format_ = ntb::NtbFormat::Ntb16;
  std::uint32_t ntb_in_max_size_ = kNtbInMaxSize;
  std::uint16_t in_sequence_ = 0;
  std::vector<std::uint8_t> staging_;
  std::optional<std::size_t> pending_bytes_;  // a packet in staging_ that did not fit the last NTB

  // MBIM function state.
  bool open_ = false;
  std::uint32_t max_control_transfer_ = kMaxControlMessage;
  mbim::Reassembler command_reassembler_;
  std::deque<Response> responses_;  // bounded by kMaxQueuedResponses

  // The modem behind the function (survives CLOSE and RESET_FUNCTION, like firmware state).
  bool fcc_authenticated_ = false;
  bool radio_on_ = false;
  bool was_registered_ = false;
  bool attached_ = false;
  std::array<Session, kMaxSessions> sessions_{};
  std::array<std::uint8_t, 256> next_qmi_client_{};
  std::array<std::bitset<256>, 256> qmi_clients_{};
};

}  // namespace

std::unique_ptr<Modem> make_mbim_em7455(const ModemOptions& options) { return std::make_unique<Em7455>(options); }

}  // namespace wwan::sim
