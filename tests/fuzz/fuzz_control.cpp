// libFuzzer target: the CDC NCM control codecs (control/cdc_ncm.hpp) and the emulated modems
// (sim/) driven by a hostile host.
//
// Input layout: [0] selects the device: bits 0-1 = 0 huawei-e3372, 1 generic-ncm, 2 mbim, 3 the
// Huawei AT engine alone (sim/huawei_at.hpp); bit 2 = the SIM wants a PIN ("1234"). The rest is a
// program of host actions, one opcode byte each followed by its operands (see Host::step; missing
// operand bytes read as 0). The seeds in corpus/control are bring-up sequences of each device.
//
// 1. The cdc decoders read the program bytes: a decoded structure re-encodes to the bytes it came
//    from (bar reserved fields), a notification's data view lies inside the transfer and is
//    min(wLength, what arrived) long, and sanitize_out_params is idempotent on what out_params
//    makes of hostile NTB parameters.
// 2. The device model gets control requests (class and raw setups, SEND_ENCAPSULATED_COMMAND with
//    AT lines or MBIM messages, fragmented or not), bulk OUT transfers (raw, or NTBs built around
//    ARP / ICMP / UDP datagrams), bulk IN and interrupt IN reads with any buffer size,
//    SET_CONFIGURATION, SET_INTERFACE, CLEAR_FEATURE(HALT), fault flips and clock steps. Checked
//    after every action:
//      - in() never reports more bytes than the buffer, and bytes only with ok; a control read
//        never answers more than wLength, a control write answers 0;
//      - ModemCounters, NcmCounters and the Network's counters never decrease;
//      - once the device has left the bus, every call answers gone / STALL / false;
//      - an undamaged bulk IN transfer (no garbage/truncated/oversize fault pending) is exactly
//        one NTB the datapath parser takes without a single error, CRCs included, no longer than
//        the negotiated NTB input size; NCM datagrams are Ethernet frames from the device's MAC;
//      - the NCM interrupt stream is a sequence of well-formed notifications for the control
//        interface; an MBIM interrupt read is RESPONSE_AVAILABLE;
//      - an MBIM encapsulated response is one whole fragment (unless the host read less than it),
//        of a device-to-host type, within wMaxControlMessage; a message the host reassembles
//        from them decodes, and a successful BASIC_CONNECT / QMI answer's payload decodes too;
//      - the models' state stays coherent: a Huawei data session needs CFUN=1 and an unlocked
//        SIM, an MBIM session needs an open function with the FCC unlock done, the negotiated
//        NTB input size lies within what GET_NTB_PARAMETERS offered.
// 3. The AT engine alone gets command lines: every non-empty line is answered with the echo
//    (when on) first and a final result code (OK / ERROR / +CME ERROR: n) last; unsolicited
//    codes are framed and bounded.
#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "tests/fuzz/fuzz_check.hpp"

#include "control/cdc_ncm.hpp"
#include "control/mbim_wire.hpp"
#include "datapath/ethernet.hpp"
#include "datapath/ntb_build.hpp"
#include "datapath/ntb_parse.hpp"
#include "sim/huawei_at.hpp"
#include "sim/mbim_modem.hpp"
#include "sim/modem.hpp"
#include "sim/ncm_modem.hpp"

namespace {

using namespace wwan;
using sim::EndpointResult;
using Vec = std::vector<std::uint8_t>;
using Bytes = std::span<const std::uint8_t>;

constexpr std::size_t kMaxSteps = 512;

// ---- input --------------------------------------------------------------------------------

class Reader {
 public:
  Reader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  bool done() const { return at_ >= size_; }
  std::uint8_t u8() { return at_ < size_ ? data_[at_++] : 0; }
  std::uint16_t u16() {
    const std::uint8_t lo = u8();
    return static_cast<std::uint16_t>(lo | u8() << 8);
  }
  std::uint32_t u32() {
    const std::uint16_t lo = u16();
    return lo | static_cast<std::uint32_t>(u16()) << 16;
  }
  Vec bytes(std::size_t n) {
    n = std::min(n, size_ - std::min(at_, size_));
    Vec v(data_ + at_, data_ + at_ + n);
    at_ += n;
    return v;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t at_ = 0;
};

// A counters struct as its 64-bit words (all of them are plain uint64_t counters).
template <class T>
std::vector<std::uint64_t> words(const T& counters) {
  static_assert(std::is_trivially_copyable_v<T> && std::has_unique_object_representations_v<T>);
  static_assert(sizeof(T) % sizeof(std::uint64_t) == 0);
  std::vector<std::uint64_t> w(sizeof(T) / sizeof(std::uint64_t));
  std::memcpy(w.data(), &counters, sizeof(T));
  return w;
}
void check_monotonic(std::vector<std::uint64_t>& last, const std::vector<std::uint64_t>& now) {
  if (!last.empty()) {
    FUZZ_CHECK(last.size() == now.size());
    for (std::size_t i = 0; i < now.size(); ++i) FUZZ_CHECK(now[i] >= last[i]);
  }
  last = now;
}

bool within(Bytes outer, Bytes inner) {
  if (inner.empty()) return true;
  const auto o = reinterpret_cast<std::uintptr_t>(outer.data());
  const auto i = reinterpret_cast<std::uintptr_t>(inner.data());
  return i >= o && i - o <= outer.size() && inner.size() <= outer.size() - (i - o);
}

// ---- the cdc codecs -----------------------------------------------------------------------------

void check_cdc(Bytes b) {
  if (!b.empty()) {
    FUZZ_CHECK(cdc::request_name(b[0]) != nullptr);
    FUZZ_CHECK(cdc::notification_name(b[0]) != nullptr);
  }

  const auto p = cdc::decode_ntb_parameters(b);
  FUZZ_CHECK(p.has_value() == (b.size() >= cdc::kNtbParametersSize));
  if (p) {
    std::array<std::uint8_t, cdc::kNtbParametersSize> e{};
    FUZZ_CHECK(cdc::encode_ntb_parameters(*p, e) == e.size());
    FUZZ_CHECK(std::equal(e.begin(), e.end(), b.begin()));
    FUZZ_CHECK(cdc::decode_ntb_parameters(e) == p);
    std::array<std::uint8_t, cdc::kNtbParametersSize - 1> short_out{};
    FUZZ_CHECK(cdc::encode_ntb_parameters(*p, short_out) == 0);
    for (const ntb::NtbFormat f : {ntb::NtbFormat::Ntb16, ntb::NtbFormat::Ntb32}) {
      const ntb::SanitizedOutParams s = ntb::sanitize_out_params(cdc::out_params(*p, f, (b[0] & 1) != 0));
      const ntb::SanitizedOutParams again = ntb::sanitize_out_params(s.params);
      FUZZ_CHECK(again.params == s.params && !again.overridden.any());
      FUZZ_CHECK(s.params.ntb_out_max_size >= ntb::kNtbMinSize &&
                 s.params.ntb_out_max_size <= (f == ntb::NtbFormat::Ntb16 ? ntb::kNtb16MaxSize : ntb::kNtbOutMaxSizeLimit));
      FUZZ_CHECK(std::has_single_bit(s.params.ndp_out_divisor) && std::has_single_bit(s.params.ndp_out_alignment));
      FUZZ_CHECK(s.params.ndp_out_payload_remainder < s.params.ndp_out_divisor);
    }
  }

  for (const std::size_t n : {b.size(), std::size_t{4}, std::size_t{8}}) {
    if (n > b.size()) continue;
    const Bytes s = b.first(n);
    const auto in = cdc::decode_ntb_input_size(s);
    FUZZ_CHECK(in.has_value() == (n == cdc::kNtbInputSizeShort || n == cdc::kNtbInputSizeLong));
    if (!in) continue;
    std::array<std::uint8_t, cdc::kNtbInputSizeLong> e{};
    const bool long_form = n == cdc::kNtbInputSizeLong;
    FUZZ_CHECK(cdc::encode_ntb_input_size(*in, long_form, e) == n);
    FUZZ_CHECK(std::equal(e.begin(), e.begin() + (long_form ? 6 : 4), s.begin()));  // wReserved is written 0
    FUZZ_CHECK(cdc::decode_ntb_input_size(Bytes(e).first(n)) == in);
    if (!long_form) FUZZ_CHECK(in->ntb_in_max_datagrams == 0);
  }

  const auto n = cdc::decode_notification(b);
  FUZZ_CHECK(n.has_value() == (b.size() >= cdc::kNotificationHeaderSize && b[0] == cdc::kNotificationRequestType));
  if (n) {
    FUZZ_CHECK(within(b, n->data));
    FUZZ_CHECK(n->data.empty() || n->data.data() == b.data() + cdc::kNotificationHeaderSize);
    const std::size_t available = b.size() - cdc::kNotificationHeaderSize;
    FUZZ_CHECK(n->data.size() == std::min<std::size_t>(n->header.length, available));
    FUZZ_CHECK(n->complete == (n->data.size() == n->header.length));
    std::array<std::uint8_t, cdc::kNotificationMaxSize> e{};
    FUZZ_CHECK(cdc::encode_notification_header(n->header, e) == cdc::kNotificationHeaderSize);
    FUZZ_CHECK(std::equal(e.begin(), e.begin() + cdc::kNotificationHeaderSize, b.begin()));
    FUZZ_CHECK(cdc::notification_name(n->header.notification) != nullptr);
    if (n->header.notification == cdc::kNotifyConnectionSpeedChange && n->complete &&
        n->header.length == cdc::kConnectionSpeedSize && n->header.value == 0) {
      const auto speed = cdc::decode_connection_speed(n->data);
      FUZZ_CHECK(speed.has_value());
      FUZZ_CHECK(cdc::encode_connection_speed_change(n->header.index, *speed, e) == cdc::kNotificationMaxSize);
      FUZZ_CHECK(std::equal(e.begin(), e.end(), b.begin()));
    }
  }

  const auto speed = cdc::decode_connection_speed(b);
  FUZZ_CHECK(speed.has_value() == (b.size() >= cdc::kConnectionSpeedSize));
  if (speed) {
    std::array<std::uint8_t, cdc::kNotificationMaxSize> e{};
    FUZZ_CHECK(cdc::encode_connection_speed_change(0, *speed, e) == cdc::kNotificationMaxSize);
    FUZZ_CHECK(std::equal(e.begin() + cdc::kNotificationHeaderSize, e.end(), b.begin()));
    FUZZ_CHECK(cdc::decode_connection_speed(Bytes(e).subspan(cdc::kNotificationHeaderSize)) == speed);
  }
}

// ---- the AT engine ------------------------------------------------------------------------------

constexpr std::string_view kAtCommands[] = {
    "ATE0", "ATE1", "ATZ", "ATI", "AT", "AT+CGMI", "AT+CGSN", "AT+CPIN?", "AT+CPIN=\"1234\"", "AT+CPIN=\"0000\"",
    "AT+CFUN?", "AT+CFUN=1", "AT+CFUN=0", "AT+CFUN=4", "AT+CGDCONT=?", "AT+CGDCONT?",
    "AT+CGDCONT=1,\"IP\",\"internet\"", "AT+CGDCONT=1,\"IPV6\"", "AT+CGDCONT=2,\"IPV4V6\",\"apn\"", "AT+CGDCONT=1",
    "AT+COPS?", "AT^SYSINFOEX", "AT^CURC=0", "AT^NDISDUP=1,1", "AT^NDISDUP=1,0", "AT^NDISDUP=1,1,\"internet\"",
    "AT^NDISDUP=2,1,\"apn\",\"user\",\"pass\",2", "AT^NDISSTATQRY?", "AT^DHCP?", "AT^DHCPV6?",
};

// A command line: a known command (optionally with fuzzer bytes appended) or raw bytes.
std::string at_line(Reader& in) {
  const std::uint8_t pick = in.u8();
  const Vec extra = in.bytes(in.u8() % 48);
  std::string line;
  if (pick < std::size(kAtCommands)) line = kAtCommands[pick];
  line.append(extra.begin(), extra.end());
  return line;
}

void check_final_result(const std::string& r) {
  FUZZ_CHECK(r.size() >= 4 && r.ends_with("\r\n"));
  const std::size_t start = r.rfind("\r\n", r.size() - 3);
  FUZZ_CHECK(start != std::string::npos);
  const std::string_view last = std::string_view(r).substr(start + 2, r.size() - start - 4);
  if (last == "OK" || last == "ERROR") return;
  FUZZ_CHECK(last.starts_with("+CME ERROR: ") && last.size() > 12);
  for (const char c : last.substr(12)) FUZZ_CHECK(c >= '0' && c <= '9');
}

void check_at_state(const sim::HuaweiAt& at) {
  FUZZ_CHECK(!at.connected() || (at.cfun() == 1 && !at.sim_locked()));
  FUZZ_CHECK(at.connected() == (at.ipv4_connected() || at.ipv6_connected()));
  FUZZ_CHECK(at.cfun() == 0 || at.cfun() == 1 || at.cfun() == 4);
}

void drain_unsolicited(sim::HuaweiAt& at) {
  std::size_t n = 0;
  while (at.has_unsolicited()) {
    const std::string u = at.take_unsolicited();
    FUZZ_CHECK(u.size() >= 4 && u.starts_with("\r\n") && u.ends_with("\r\n"));
    FUZZ_CHECK(++n <= sim::HuaweiAt::kMaxUnsolicited);
  }
  FUZZ_CHECK(at.take_unsolicited().empty());
}

void run_at_engine(Reader& in, bool pin) {
  sim::HuaweiAt at(sim::NetworkConfig{}, pin ? "1234" : "");
  std::uint64_t dropped = 0;
  for (std::size_t step = 0; step < kMaxSteps && !in.done(); ++step) {
    switch (in.u8() % 4) {
      case 0: {
        std::string line = at_line(in);
        const bool echo = at.echo();
        const std::string r = at.execute(line);
        std::string_view t = line;
        while (!t.empty() && (t.back() == '\r' || t.back() == '\n' || t.back() == '\0')) t.remove_suffix(1);
        while (!t.empty() && (t.front() == '\r' || t.front() == '\n' || t.front() == ' ')) t.remove_prefix(1);
        if (t.empty()) {
          FUZZ_CHECK(r.empty());
        } else {
          if (echo) FUZZ_CHECK(r.starts_with(std::string(t) + "\r"));
          else FUZZ_CHECK(r.starts_with("\r\n"));
          check_final_result(r);
        }
        break;
      }
      case 1: {
        const bool was = at.connected();
        FUZZ_CHECK(at.network_disconnect() == was);
        FUZZ_CHECK(!at.connected());
        break;
      }
      case 2: drain_unsolicited(at); break;
      default: at.power_on(); break;
    }
    check_at_state(at);
    FUZZ_CHECK(at.unsolicited_dropped() >= dropped);
    dropped = at.unsolicited_dropped();
  }
  drain_unsolicited(at);
}

// ---- datagrams a host sends ---------------------------------------------------------------------

const eth::MacAddress kHostMac{{0x02, 0x11, 0x22, 0x33, 0x44, 0x55}};

Vec ipv4_packet(std::uint8_t protocol, const eth::Ipv4Address& src, const eth::Ipv4Address& dst, const Vec& l4) {
  Vec p(eth::kIpv4MinHeaderSize + l4.size(), 0);
  p[0] = 0x45;
  eth::store_be16(p, 2, static_cast<std::uint16_t>(p.size()));
  p[8] = 64;
  p[9] = protocol;
  std::copy(src.bytes.begin(), src.bytes.end(), p.begin() + 12);
  std::copy(dst.bytes.begin(), dst.bytes.end(), p.begin() + 16);
  eth::store_be16(p, 10, eth::ipv4_header_checksum(Bytes(p).first(eth::kIpv4MinHeaderSize)));
  std::copy(l4.begin(), l4.end(), p.begin() + eth::kIpv4MinHeaderSize);
  return p;
}

Vec ipv6_packet(std::uint8_t next_header, const eth::Ipv6Address& src, const eth::Ipv6Address& dst, const Vec& l4) {
  Vec p(eth::kIpv6HeaderSize + l4.size(), 0);
  p[0] = 0x60;
  eth::store_be16(p, 4, static_cast<std::uint16_t>(l4.size()));
  p[6] = next_header;
  p[7] = 64;
  std::copy(src.bytes.begin(), src.bytes.end(), p.begin() + 8);
  std::copy(dst.bytes.begin(), dst.bytes.end(), p.begin() + 24);
  std::copy(l4.begin(), l4.end(), p.begin() + eth::kIpv6HeaderSize);
  return p;
}

// One datagram: raw bytes, or a well-formed ICMP / UDP / ARP packet the network answers. For NCM
// the IP packets are framed in Ethernet from kHostMac to the device.
Vec datagram(Reader& in, bool ethernet, const eth::MacAddress& device_mac) {
  const sim::NetworkConfig net;
  const std::uint8_t kind = in.u8() % 6;
  if (kind == 0) return in.bytes(in.u16() % 1600);
  Vec payload = in.bytes(in.u8() % 64);
  Vec ip;
  std::uint16_t ethertype = eth::kEtherTypeIpv4;
  switch (kind) {
    case 1: {  // ICMP echo request
      Vec l4 = {8, 0, 0, 0, 0x12, 0x34, 0, 1};
      l4.insert(l4.end(), payload.begin(), payload.end());
      eth::store_be16(l4, 2, eth::internet_checksum(l4));
      ip = ipv4_packet(1, net.host_ipv4, eth::Ipv4Address{{8, 8, 8, 8}}, l4);
      break;
    }
    case 2: {  // UDP to echo / discard / elsewhere, checksum "not computed"
      static constexpr std::uint16_t kPorts[] = {sim::kUdpEchoPort, sim::kUdpDiscardPort, 5001};
      Vec l4(8, 0);
      eth::store_be16(l4, 0, 40000);
      eth::store_be16(l4, 2, kPorts[payload.size() % 3]);
      eth::store_be16(l4, 4, static_cast<std::uint16_t>(8 + payload.size()));
      l4.insert(l4.end(), payload.begin(), payload.end());
      ip = ipv4_packet(17, net.host_ipv4, net.server_ipv4, l4);
      break;
    }
    case 3: {  // ICMPv6 echo request
      Vec l4 = {128, 0, 0, 0, 0x12, 0x34, 0, 1};
      l4.insert(l4.end(), payload.begin(), payload.end());
      const eth::Ipv6Address dst{{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x88}};
      eth::store_be16(l4, 2, eth::ipv6_upper_layer_checksum(net.host_ipv6, dst, eth::kIpProtocolIcmpv6, l4));
      ip = ipv6_packet(eth::kIpProtocolIcmpv6, net.host_ipv6, dst, l4);
      ethertype = eth::kEtherTypeIpv6;
      break;
    }
    default: {  // ARP: a request for the gateway (4), or a reply to the device's request (5)
      Vec arp(28, 0);
      eth::store_be16(arp, 0, 1);
      eth::store_be16(arp, 2, eth::kEtherTypeIpv4);
      arp[4] = 6;
      arp[5] = 4;
      eth::store_be16(arp, 6, kind == 4 ? 1 : 2);
      std::copy(kHostMac.bytes.begin(), kHostMac.bytes.end(), arp.begin() + 8);
      std::copy(net.host_ipv4.bytes.begin(), net.host_ipv4.bytes.end(), arp.begin() + 14);
      std::copy(device_mac.bytes.begin(), device_mac.bytes.end(), arp.begin() + 18);
      std::copy(net.gateway_ipv4.bytes.begin(), net.gateway_ipv4.bytes.end(), arp.begin() + 24);
      arp.resize(46, 0);  // Ethernet padding
      ip = arp;
      ethertype = eth::kEtherTypeArp;
      break;
    }
  }
  if (!ethernet) return ip;
  Vec frame(eth::kEthernetHeaderSize, 0);
  const eth::MacAddress destination = ethertype == eth::kEtherTypeArp && (payload.size() & 1) == 0
                                          ? eth::MacAddress::broadcast()
                                          : device_mac;
  (void)eth::write_ethernet_header(frame, destination, kHostMac, ethertype);
  frame.insert(frame.end(), ip.begin(), ip.end());
  return frame;
}

// ---- the host -------------------------------------------------------------------------------------

struct Collect {
  std::vector<ntb::DatagramView> datagrams;
  std::vector<ntb::NtbInfo> ntbs;
  std::uint64_t errors = 0;
  void datagram(const ntb::DatagramView& d) { datagrams.push_back(d); }
  void error(std::uint32_t, ntb::NtbError) { ++errors; }
  void ntb(const ntb::NtbInfo& i) { ntbs.push_back(i); }
};

class Host {
 public:
  Host(std::uint8_t selector) {
    static constexpr std::string_view kProfiles[] = {"huawei-e3372", "generic-ncm", "mbim"};
    sim::ModemOptions options;
    if (selector & 4) options.sim_pin = "1234";
    modem_ = sim::make_modem(kProfiles[selector & 3], options);
    FUZZ_CHECK(modem_ != nullptr);
    ncm_ = dynamic_cast<sim::NcmModem*>(modem_.get());
    mbim_ = dynamic_cast<sim::MbimModem*>(modem_.get());
    FUZZ_CHECK((ncm_ != nullptr) != (mbim_ != nullptr));
    if (ncm_) {
      ncm_->set_clock([this] { return now_; });
      const sim::NcmProfile& p = ncm_->ncm_profile();
      control_interface_ = p.control_interface;
      data_interface_ = p.data_interface;
      bulk_in_ = p.bulk_in_endpoint;
      bulk_out_ = p.bulk_out_endpoint;
      interrupt_in_ = p.interrupt_in_endpoint;
      device_mac_ = p.device_mac;
    } else {
      mbim_->set_clock([this] { return now_; });
      control_interface_ = sim::em7455::kControlInterface;
      data_interface_ = sim::em7455::kDataInterface;
      bulk_in_ = sim::em7455::kBulkInEndpoint;
      bulk_out_ = sim::em7455::kBulkOutEndpoint;
      interrupt_in_ = sim::em7455::kNotificationEndpoint;
    }
    FUZZ_CHECK(!modem_->identity().descriptors.empty());
    check_state();
  }

  void step(Reader& in) {
    gone_ = !modem_->connected();
    switch (in.u8() % 16) {
      case 0: {  // class request, host to device, to the control interface
        const std::uint8_t request = in.u8();
        const std::uint16_t value = in.u16();
        Vec data = in.bytes(in.u16() % 4097);
        (void)control_out(request, value, data);
        break;
      }
      case 1: {  // class request, device to host
        const std::uint8_t request = in.u8();
        const std::uint16_t value = in.u16();
        (void)control_in(request, value, in.u16() % 8193);
        break;
      }
      case 2: {  // any setup at all
        sim::SetupPacket s;
        s.request_type = in.u8();
        s.request = in.u8();
        s.value = in.u16();
        s.index = in.u16();
        s.length = static_cast<std::uint16_t>(in.u16() % 4097);
        Vec data = (s.request_type & cdc::kRequestTypeDirectionIn) ? Vec(s.length, 0) : in.bytes(s.length);
        if (!(s.request_type & cdc::kRequestTypeDirectionIn)) s.length = static_cast<std::uint16_t>(data.size());
        (void)control(s, data);
        break;
      }
      case 3: command(in); break;
      case 4: drain(in.u8()); break;
      case 5: {  // a raw bulk OUT transfer
        const Vec data = in.bytes(in.u16());
        (void)out(bulk_out_, data);
        break;
      }
      case 6: send_ntb(in); break;
      case 7: (void)bulk_in(in.u16()); break;
      case 8: (void)interrupt_in(in.u8() % 80); break;
      case 9: {
        const std::uint8_t which = in.u8();
        const std::uint8_t iface = which % 4 == 1 ? control_interface_ : which % 4 == 2 ? in.u8() : data_interface_;
        const std::uint8_t alt = in.u8() % 3;
        const bool r = modem_->set_interface(iface, alt);
        if (gone_) FUZZ_CHECK(!r);
        break;
      }
      case 10: {
        const bool r = modem_->set_configuration(in.u8() % 3);
        if (gone_) FUZZ_CHECK(!r);
        break;
      }
      case 11: {
        const std::uint8_t which = in.u8() % 4;
        const std::uint8_t ep = which == 0 ? bulk_in_ : which == 1 ? bulk_out_ : which == 2 ? interrupt_in_ : in.u8();
        const bool r = modem_->clear_halt(ep);
        if (gone_) FUZZ_CHECK(!r);
        break;
      }
      case 12: fault(in.u8(), in.u8()); break;
      case 13: now_ += std::chrono::milliseconds(in.u16()); break;
      case 14: {
        const std::uint8_t how = in.u8();
        if (how & 1) {
          modem_->network().stop_source();
        } else {
          sim::SourceConfig s;
          s.rate_bits_per_s = std::uint64_t{in.u8()} * 100'000;
          s.payload_bytes = in.u16() % 1600;
          s.packet_limit = 1 + in.u8() % 32;
          modem_->network().start_source(s, now_);
        }
        break;
      }
      default: {  // an endpoint the device may not have, both ways
        const std::uint8_t ep = in.u8();
        const Vec data = in.bytes(in.u8());
        if (ep & 0x80) {
          Vec buffer(in.u16() % 2048);
          (void)endpoint_in(ep, buffer);
        } else {
          (void)out(ep, data);
        }
        (void)modem_->next_deadline();
        break;
      }
    }
    check_state();
  }

  void finish() {
    drain(0xFF);
    check_state();
  }

 private:
  // ---- wrappers that check the DeviceModel contract -------------------------------------------

  std::optional<std::size_t> control(const sim::SetupPacket& s, std::span<std::uint8_t> data) {
    const auto r = modem_->control(s, data);
    if (gone_) FUZZ_CHECK(!r);
    if (r) {
      if (s.request_type & cdc::kRequestTypeDirectionIn) FUZZ_CHECK(*r <= data.size());
      else FUZZ_CHECK(*r == 0);
    }
    if (r && (s.request_type & cdc::kRequestTypeDirectionIn) && s.request == cdc::kGetEncapsulatedResponse &&
        (s.index & 0xFF) == control_interface_ && mbim_)
      mbim_response(Bytes(data).first(*r), data.size());
    if (r && (s.request_type & cdc::kRequestTypeDirectionIn) && s.request == cdc::kGetNtbParameters && ncm_ &&
        *r >= cdc::kNtbParametersSize)
      FUZZ_CHECK(cdc::decode_ntb_parameters(Bytes(data).first(*r)) == ncm_->ncm_profile().ntb_parameters);
    return r;
  }
  std::optional<std::size_t> control_out(std::uint8_t request, std::uint16_t value, std::span<std::uint8_t> data) {
    return control({cdc::kRequestTypeClassInterfaceOut, request, value, control_interface_,
                    static_cast<std::uint16_t>(data.size())},
                   data);
  }
  std::optional<std::size_t> control_in(std::uint8_t request, std::uint16_t value, std::uint16_t length) {
    Vec data(length, 0);
    return control({cdc::kRequestTypeClassInterfaceIn, request, value, control_interface_, length}, data);
  }

  EndpointResult out(std::uint8_t ep, Bytes data) {
    const EndpointResult r = modem_->out(ep, data);
    if (gone_) FUZZ_CHECK(r == EndpointResult::gone);
    return r;
  }

  sim::InResult endpoint_in(std::uint8_t ep, std::span<std::uint8_t> buffer) {
    const sim::InResult r = modem_->in(ep, buffer);
    if (gone_) FUZZ_CHECK(r.result == EndpointResult::gone);
    if (r.result == EndpointResult::ok) FUZZ_CHECK(r.bytes <= buffer.size());
    else FUZZ_CHECK(r.bytes == 0);
    return r;
  }

  sim::InResult bulk_in(std::size_t size) {
    Vec buffer(size, 0);
    const sim::Faults& f = modem_->faults();
    const bool damaged = f.garbage_ntbs > 0 || f.truncated_ntbs > 0 || f.oversize_ntbs > 0;
    const sim::InResult r = endpoint_in(bulk_in_, buffer);
    if (r.result != EndpointResult::ok || damaged) return r;
    // An undamaged NTB: one block the datapath parser takes whole, CRCs and all.
    const Bytes xfer = Bytes(buffer).first(r.bytes);
    Collect c;
    const ntb::TransferSummary s =
        ntb::parse_transfer(xfer, {ncm_ ? ntb::FunctionKind::Ncm : ntb::FunctionKind::Mbim, true}, c);
    FUZZ_CHECK(s.ntbs == 1 && s.errors == 0 && c.errors == 0 && s.datagrams >= 1);
    FUZZ_CHECK(c.ntbs.size() == 1 && c.ntbs[0].offset == 0 && c.ntbs[0].block_length == xfer.size());
    std::size_t limit = sim::em7455::kNtbInMaxSize;
    if (ncm_) {
      FUZZ_CHECK(c.ntbs[0].format == ncm_->ntb_format());
      limit = ntb::sanitize_out_params({.format = ncm_->ntb_format(), .ntb_out_max_size = ncm_->ntb_in_size()})
                  .params.ntb_out_max_size;
    }
    FUZZ_CHECK(xfer.size() <= limit);
    for (const ntb::DatagramView& d : c.datagrams) {
      if (ncm_) {
        FUZZ_CHECK(d.kind == ntb::DatagramKind::Ncm || d.kind == ntb::DatagramKind::NcmCrc);
        FUZZ_CHECK(d.length >= eth::kEthernetHeaderSize);
        FUZZ_CHECK(eth::MacAddress::load(xfer, static_cast<std::size_t>(d.offset) + 6) == device_mac_);
      } else {
        FUZZ_CHECK(d.kind == ntb::DatagramKind::Ips && d.session < sim::em7455::kMaxSessions);
      }
    }
    return r;
  }

  sim::InResult interrupt_in(std::size_t size) {
    Vec buffer(size, 0);
    const sim::InResult r = endpoint_in(interrupt_in_, buffer);
    if (r.result != EndpointResult::ok) return r;
    const Bytes got = Bytes(buffer).first(r.bytes);
    if (mbim_) {
      // One RESPONSE_AVAILABLE per read, cut to the buffer.
      FUZZ_CHECK(r.bytes == std::min(size, cdc::kNotificationHeaderSize));
      if (r.bytes == cdc::kNotificationHeaderSize) {
        const auto n = cdc::decode_notification(got);
        FUZZ_CHECK(n && n->complete && n->header.notification == cdc::kNotifyResponseAvailable &&
                   n->header.index == control_interface_ && n->header.length == 0);
      }
      return r;
    }
    // NCM: a byte stream of whole notifications, read in pieces of any size.
    FUZZ_CHECK(r.bytes >= 1);
    notifications_.insert(notifications_.end(), got.begin(), got.end());
    while (notifications_.size() >= cdc::kNotificationHeaderSize) {
      const auto n = cdc::decode_notification(notifications_);
      FUZZ_CHECK(n.has_value());
      if (!n->complete) break;
      FUZZ_CHECK(n->header.index == control_interface_);
      switch (n->header.notification) {
        case cdc::kNotifyNetworkConnection: FUZZ_CHECK(n->header.length == 0 && n->header.value <= 1); break;
        case cdc::kNotifyResponseAvailable: FUZZ_CHECK(n->header.length == 0 && n->header.value == 0); break;
        case cdc::kNotifyConnectionSpeedChange:
          FUZZ_CHECK(n->header.length == cdc::kConnectionSpeedSize &&
                     cdc::decode_connection_speed(n->data) == ncm_->ncm_profile().speed);
          break;
        default: FUZZ_CHECK(false && "unexpected notification");
      }
      notifications_.erase(notifications_.begin(),
                           notifications_.begin() + static_cast<std::ptrdiff_t>(cdc::kNotificationHeaderSize +
                                                                                n->header.length));
    }
    return r;
  }

  // ---- MBIM -----------------------------------------------------------------------------------

  // One GET_ENCAPSULATED_RESPONSE answer of the MBIM function.
  void mbim_response(Bytes r, std::size_t requested) {
    if (r.empty()) return;  // nothing queued (CDC: a zero-length answer)
    FUZZ_CHECK(r.size() <= sim::em7455::kMaxControlMessage);
    const auto h = mbim::read_header(r);
    if (!h || h->message_length != r.size()) {
      // Only a read shorter than the fragment cuts it.
      FUZZ_CHECK(r.size() == requested);
      host_reassembler_.reset();
      return;
    }
    switch (h->type) {
      case mbim::MessageType::OpenDone:
      case mbim::MessageType::CloseDone:
      case mbim::MessageType::CommandDone:
      case mbim::MessageType::FunctionError:
      case mbim::MessageType::IndicateStatus: break;
      default: FUZZ_CHECK(false && "host-to-device message type from the device");
    }
    const auto s = host_reassembler_.feed(r);
    // Fragments may be missing (queue overflow, RESET_FUNCTION, a short read): errors are allowed,
    // but whatever reassembles must decode.
    if (!s || *s != mbim::Reassembler::State::Complete) return;
    const Bytes m = host_reassembler_.message();
    switch (h->type) {
      case mbim::MessageType::OpenDone:
      case mbim::MessageType::CloseDone: {
        const auto d = mbim::parse_done(m);
        FUZZ_CHECK(d.ok() && d->status == mbim::Status::None);
        break;
      }
      case mbim::MessageType::FunctionError: FUZZ_CHECK(mbim::parse_error(m).ok()); break;
      case mbim::MessageType::CommandDone: {
        const auto d = mbim::parse_command_done(m);
        FUZZ_CHECK(d.ok());
        if (d->status == mbim::Status::None) check_mbim_payload(d->service, d->cid, d->information_buffer);
        break;
      }
      default: {
        const auto i = mbim::parse_indicate_status(m);
        FUZZ_CHECK(i.ok() && i->service == mbim::kUuidBasicConnect);
        check_mbim_payload(i->service, i->cid, i->information_buffer);
        break;
      }
    }
  }

  static void check_mbim_payload(const mbim::Uuid& service, std::uint32_t cid, Bytes info) {
    using mbim::BasicConnectCid;
    if (service == mbim::kUuidQmi) {
      const auto q = mbim::qmi::parse(info);
      FUZZ_CHECK(q.ok() && q->qmux_flags == mbim::qmi::kQmuxFlagFromDevice);
      FUZZ_CHECK(mbim::qmi::parse_result(q->tlvs).ok());
      return;
    }
    FUZZ_CHECK(service == mbim::kUuidBasicConnect);
    switch (static_cast<BasicConnectCid>(cid)) {
      case BasicConnectCid::DeviceCaps: FUZZ_CHECK(mbim::parse_device_caps_info(info).ok()); break;
      case BasicConnectCid::SubscriberReadyStatus:
        FUZZ_CHECK(mbim::parse_subscriber_ready_status_info(info).ok());
        break;
      case BasicConnectCid::Pin: FUZZ_CHECK(mbim::parse_pin_info(info).ok()); break;
      case BasicConnectCid::RadioState: FUZZ_CHECK(mbim::parse_radio_state_info(info).ok()); break;
      case BasicConnectCid::RegisterState: FUZZ_CHECK(mbim::parse_registration_state_info(info).ok()); break;
      case BasicConnectCid::PacketService: FUZZ_CHECK(mbim::parse_packet_service_info(info).ok()); break;
      case BasicConnectCid::Connect: {
        const auto c = mbim::parse_connect_info(info);
        FUZZ_CHECK(c.ok() && c->session_id < sim::em7455::kMaxSessions);
        break;
      }
      case BasicConnectCid::IpConfiguration: {
        const auto c = mbim::parse_ip_configuration_info(info);
        FUZZ_CHECK(c.ok() && c->session_id < sim::em7455::kMaxSessions);
        break;
      }
      default: FUZZ_CHECK(false && "a BASIC_CONNECT answer for a CID the model does not do");
    }
  }

  // An MBIM message from the fuzzer's choices.
  mbim::ByteVector mbim_message(Reader& in) {
    const mbim::TransactionId tid = (in.u8() & 1) ? tid_ : ++tid_;
    switch (in.u8() % 6) {
      case 0: {
        const std::uint16_t mct = in.u16();
        return mbim::encode_open(tid, mct == 0 ? mbim::kHostMaxControlTransfer : mct);
      }
      case 1: return mbim::encode_close(tid);
      case 2: {  // BASIC_CONNECT
        const std::uint32_t cid = in.u8() % 25;
        const auto type = static_cast<mbim::CommandType>(in.u8() & 1);
        mbim::ByteVector info;
        switch (in.u8() % 7) {
          case 0: info = in.bytes(in.u8()); break;
          case 1: info = mbim::encode_radio_state_set(static_cast<mbim::RadioState>(in.u8() % 3)); break;
          case 2:
            info = mbim::encode_packet_service_set(static_cast<mbim::PacketServiceAction>(in.u8() % 3));
            break;
          case 3: {
            mbim::ConnectSet c;
            c.session_id = in.u8() % 10;
            c.activation_command = static_cast<mbim::ActivationCommand>(in.u8() % 3);
            c.ip_type = static_cast<mbim::IpType>(in.u8() % 5);
            if (in.u8() & 1) c.context_type = mbim::kUuidDss;
            const Vec apn = in.bytes(in.u8() % 16);
            c.access_string.assign(apn.begin(), apn.end());
            info = mbim::encode(c);
            break;
          }
          case 4: {
            mbim::PinSet p;
            p.pin_operation = in.u8() % 4;
            const Vec pin = in.bytes(in.u8() % 8);
            p.pin.assign(pin.begin(), pin.end());
            info = mbim::encode(p);
            break;
          }
          case 5: info = mbim::encode_ip_configuration_query(in.u8() % 10); break;
          default: break;
        }
        return mbim::encode_command(tid, mbim::kUuidBasicConnect, cid, type, info);
      }
      case 3: {  // QMI over MBIM
        mbim::ByteVector qmux;
        switch (in.u8() % 3) {
          case 0: {
            const std::uint8_t qtid = in.u8();
            qmux = mbim::qmi::encode_ctl_allocate_client_id(qtid, in.u8());
            break;
          }
          case 1: {
            const std::uint8_t client = in.u8();
            qmux = mbim::qmi::encode_dms_set_fcc_authentication(client, in.u16());
            break;
          }
          default: qmux = in.bytes(in.u8()); break;
        }
        const std::uint32_t cid = (in.u8() & 0x80) ? 2 : mbim::kQmiCidMsg;
        return mbim::encode_command(tid, mbim::kUuidQmi, cid, mbim::CommandType::Set, qmux);
      }
      case 4: return mbim::encode_error(mbim::MessageType::HostError, tid, mbim::ProtocolError::Cancel);
      default: return in.bytes(in.u16() % 4097);
    }
  }

  // SEND_ENCAPSULATED_COMMAND: an AT line for NCM, an MBIM message (maybe fragmented) for MBIM.
  void command(Reader& in) {
    if (ncm_) {
      std::string line = at_line(in);
      line.push_back('\r');
      Vec data(line.begin(), line.end());
      (void)control_out(cdc::kSendEncapsulatedCommand, 0, data);
      return;
    }
    mbim::ByteVector message = mbim_message(in);
    const std::uint8_t split = in.u8();
    if (split != 0) {
      if (auto pieces = mbim::fragment(message, 21 + 4 * std::size_t{split})) {
        for (mbim::ByteVector& p : pieces.value()) (void)control_out(cdc::kSendEncapsulatedCommand, 0, p);
        return;
      }
    }
    (void)control_out(cdc::kSendEncapsulatedCommand, 0, message);
  }

  // What a host does after a burst of commands: read the interrupt endpoint and the responses
  // until both are dry (bounded).
  void drain(std::uint8_t rounds) {
    for (std::size_t i = 0; i < static_cast<std::size_t>(rounds % 64) + 1; ++i) {
      const sim::InResult n = interrupt_in(cdc::kNotificationMaxSize);
      bool more = n.result == EndpointResult::ok;
      if (ncm_ && !ncm_->at()) {
        if (!more) return;
        continue;
      }
      Vec data(sim::em7455::kMaxControlMessage, 0);
      const auto r = control({cdc::kRequestTypeClassInterfaceIn, cdc::kGetEncapsulatedResponse, 0, control_interface_,
                              static_cast<std::uint16_t>(data.size())},
                             data);
      more = more || (r && *r > 0);
      if (!more) return;
    }
  }

  // A bulk OUT NTB built around fuzzer-chosen datagrams.
  void send_ntb(Reader& in) {
    const std::uint8_t flags = in.u8();
    const std::uint8_t session = in.u8() % 10;
    ntb::NtbOutParams p;
    p.format = (flags & 1) ? ntb::NtbFormat::Ntb32 : ntb::NtbFormat::Ntb16;
    if (ncm_ && (flags & 0x40)) p.format = ncm_->ntb_format();
    p.ndp_at_end = (flags & 2) != 0;
    p.ntb_out_max_size = 16384;
    p.ethernet_framing = ncm_ != nullptr;
    const ntb::DatagramKind kind = ncm_ ? ((flags & 4) ? ntb::DatagramKind::NcmCrc : ntb::DatagramKind::Ncm)
                                        : ((flags & 4) ? ntb::DatagramKind::Dss : ntb::DatagramKind::Ips);
    Vec buffer(16384, 0);
    ntb::NtbBuilder b(buffer, p, {p.format, kind, ncm_ ? std::uint8_t{0} : session});
    const std::size_t count = (flags >> 3) & 7;
    for (std::size_t i = 0; i < count; ++i) (void)b.append(datagram(in, ncm_ != nullptr, device_mac_));
    const Bytes ntb_bytes = b.finish();
    (void)out(bulk_out_, ntb_bytes);
  }

  void fault(std::uint8_t which, std::uint8_t v) {
    sim::Faults& f = modem_->faults();
    switch (which % 11) {
      case 0: f.stall_bulk_in = (v & 1) != 0; break;
      case 1: f.stall_bulk_out = (v & 1) != 0; break;
      case 2: if (v == 0xA5) f.unplug = true; break;  // rare on purpose: nothing happens after it
      case 3: f.unplug_after_in_transfers = v % 4; break;
      case 4: f.garbage_ntbs = v % 3; break;
      case 5: f.truncated_ntbs = v % 3; break;
      case 6: f.oversize_ntbs = v % 3; break;
      case 7: f.lose_response_available = (v & 1) != 0; break;
      case 8: f.control_answer_delay = std::chrono::milliseconds(10 * v); break;
      case 9: f.drop_session = (v & 1) != 0; break;
      default: f.ntb_format_reverts_after_alt = (v & 1) != 0; break;
    }
  }

  // ---- invariants after every action -----------------------------------------------------------

  void check_state() {
    if (gone_) FUZZ_CHECK(!modem_->connected());
    check_monotonic(modem_counters_, words(modem_->counters()));
    check_monotonic(network_counters_, words(modem_->network().counters()));
    if (ncm_) {
      check_monotonic(ncm_counters_, words(ncm_->ncm_counters()));
      const sim::NcmProfile& p = ncm_->ncm_profile();
      FUZZ_CHECK(ncm_->ntb_in_size() >= ntb::kNtbMinSize && ncm_->ntb_in_size() <= p.ntb_parameters.ntb_in_max_size);
      FUZZ_CHECK(p.ntb_parameters.supports(ncm_->ntb_format()));
      FUZZ_CHECK(ncm_->data_alternate_setting() <= p.data_alt_active);
      if (sim::HuaweiAt* at = ncm_->at()) {
        check_at_state(*at);
        FUZZ_CHECK(ncm_->session_active() == at->connected());
      }
    } else {
      if (modem_->session_active()) FUZZ_CHECK(mbim_->function_open() && mbim_->fcc_authenticated());
    }
  }

  sim::Clock::time_point now_ = sim::Clock::time_point{} + std::chrono::hours(24);
  std::unique_ptr<sim::Modem> modem_;
  sim::NcmModem* ncm_ = nullptr;
  sim::MbimModem* mbim_ = nullptr;
  std::uint8_t control_interface_ = 0, data_interface_ = 0, bulk_in_ = 0, bulk_out_ = 0, interrupt_in_ = 0;
  eth::MacAddress device_mac_{};
  bool gone_ = false;
  std::vector<std::uint64_t> modem_counters_, network_counters_, ncm_counters_;
  Vec notifications_;  // NCM interrupt bytes not yet a whole notification
  mbim::Reassembler host_reassembler_{mbim::ReassemblyLimits{1024, 1u << 20}};
  mbim::TransactionId tid_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  // An exactly-sized copy, so that ASan sees the real end of the bytes.
  const Vec program(data + 1, data + size);
  check_cdc(program);

  Reader in(program.data(), program.size());
  if ((data[0] & 3) == 3) {
    run_at_engine(in, (data[0] & 4) != 0);
    return 0;
  }
  Host host(data[0]);
  for (std::size_t step = 0; step < kMaxSteps && !in.done(); ++step) host.step(in);
  host.finish();
  return 0;
}
