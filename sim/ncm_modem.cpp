#include "sim/ncm_modem.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>

#include "sim/descriptor_builder.hpp"
#include "sim/profiles.hpp"

namespace wwan::sim {

using ntb::NtbFormat;

namespace {

using Bytes = std::span<const std::uint8_t>;

// CDC functional descriptors as raw bytes (CDC 1.2 §5.2.3: bLength, CS_INTERFACE 0x24, subtype, ...).
const ByteVector kCdcHeader110 = {0x05, 0x24, 0x00, 0x10, 0x01};  // bcdCDC 1.10

// The iMACAddress string: 12 upper-case hex digits (CDC ECM 1.2 §5.4).
std::string mac_string(const eth::MacAddress& m) {
  std::string s;
  std::array<char, 3> b{};
  for (std::uint8_t v : m.bytes) {
    std::snprintf(b.data(), b.size(), "%02X", v);
    s += b.data();
  }
  return s;
}

// Every (interface, alternate setting) of every configuration, for set_interface's STALL rule.
std::vector<std::pair<std::uint8_t, std::uint8_t>> alt_settings_of(const ByteVector& d) {
  std::vector<std::pair<std::uint8_t, std::uint8_t>> out;
  for (std::size_t at = 0; at + 1 < d.size() && d[at] >= 2; at += d[at])
    if (d[at + 1] == 0x04 && at + 3 < d.size()) out.emplace_back(d[at + 2], d[at + 3]);
  return out;
}

// An ARP request (RFC 826) from the gateway's address for `target`, broadcast, 60 bytes.
std::vector<std::uint8_t> arp_request(const eth::MacAddress& sender_mac, const eth::Ipv4Address& sender_ip,
                                      const eth::Ipv4Address& target_ip) {
  std::vector<std::uint8_t> f(eth::kArpReplyFrameSize, 0);
  const eth::MutableBytes fb(f);
  (void)eth::write_ethernet_header(fb, eth::MacAddress::broadcast(), sender_mac, eth::kEtherTypeArp);
  const std::size_t a = eth::kEthernetHeaderSize;
  eth::store_be16(fb, a, 1);       // htype Ethernet
  eth::store_be16(fb, a + 2, eth::kEtherTypeIpv4);
  fb[a + 4] = 6;                   // hlen
  fb[a + 5] = 4;                   // plen
  eth::store_be16(fb, a + 6, 1);   // op request
  std::copy(sender_mac.bytes.begin(), sender_mac.bytes.end(), f.begin() + static_cast<std::ptrdiff_t>(a + 8));
  std::copy(sender_ip.bytes.begin(), sender_ip.bytes.end(), f.begin() + static_cast<std::ptrdiff_t>(a + 14));
  // target hardware address stays zero
  std::copy(target_ip.bytes.begin(), target_ip.bytes.end(), f.begin() + static_cast<std::ptrdiff_t>(a + 24));
  return f;
}

// fe80::/64 + modified EUI-64 of `mac` (RFC 4291 Appendix A): the device's link-local address.
eth::Ipv6Address link_local_of(const eth::MacAddress& m) {
  return {{0xFE, 0x80, 0, 0, 0, 0, 0, 0, static_cast<std::uint8_t>(m.bytes[0] ^ 0x02), m.bytes[1], m.bytes[2], 0xFF,
           0xFE, m.bytes[3], m.bytes[4], m.bytes[5]}};
}

// Collects what the datapath parser found in one OUT transfer.
struct OutSink {
  ntb::NtbCounters& counters;
  std::vector<ntb::DatagramView> datagrams;
  std::vector<ntb::NtbInfo> ntbs;
  void datagram(const ntb::DatagramView& d) { datagrams.push_back(d); }
  void error(std::uint32_t, ntb::NtbError e) { counters.count(e); }
  void ntb(const ntb::NtbInfo& i) { ntbs.push_back(i); }
};

// A profile whose host gets its address by DHCP has a DHCP server on its link.
NetworkConfig network_config(NetworkConfig c, const NcmProfile& p) {
  if (p.dhcp_server) c.dhcp_server = true;
  return c;
}

// The benchmark variants of ModemOptions (sim/modem.hpp) on top of a profile row.
void apply_variants(NcmProfile& p, const ModemOptions& o) {
  if (o.only_ntb_format) {
    p.ntb_parameters.ntb_formats_supported =
        *o.only_ntb_format == NtbFormat::Ntb32 ? cdc::kNtbFormatsSupported32 : cdc::kNtbFormatsSupported16;
    p.reset_ntb_format = *o.only_ntb_format;
  }
  if (o.ntb_max_size) p.ntb_parameters.ntb_in_max_size = p.ntb_parameters.ntb_out_max_size = *o.ntb_max_size;
  if (o.ndp_at_end_to_host) p.ndp_at_end_on_in = true;
}

// ModemOptions::imix_to_host: cuts the IPv4/UDP packet of `ip_bytes` at the start of `ip` to the
// IMIX size for position `index` (7 x 64, 4 x 576, 1 x 1500 bytes), fixing Total Length, the
// header checksum and the UDP length (UDP checksum 0: none, RFC 768). Other packets, and packets
// already no longer than the size, stay as they are. Returns the new length.
std::size_t cut_to_imix(std::span<std::uint8_t> ip, std::size_t ip_bytes, std::uint64_t index) {
  constexpr std::size_t kIpv4Header = 20, kUdpHeader = 8;
  const std::uint64_t k = index % 12;
  const std::size_t target = k < 7 ? 64 : k < 11 ? 576 : 1500;
  if (ip_bytes <= target || ip_bytes < kIpv4Header + kUdpHeader || ip[0] != 0x45 || ip[9] != 17) return ip_bytes;
  eth::store_be16(ip, 2, static_cast<std::uint16_t>(target));
  eth::store_be16(ip, 10, 0);
  eth::store_be16(ip, 10, eth::ipv4_header_checksum(ip.first(kIpv4Header)));
  eth::store_be16(ip, kIpv4Header + 4, static_cast<std::uint16_t>(target - kIpv4Header));
  eth::store_be16(ip, kIpv4Header + 6, 0);
  return target;
}

}  // namespace

// ---- profiles ------------------------------------------------------------------------------------

// usb_descriptors.md D2: lsusb -v of 12d1:1506 (wTotalLength 225), drivers as Linux bound them
// (option, huawei_cdc_ncm, usb-storage). The bytes are the lsusb dump's, byte for byte.
NcmProfile huawei_e3372_profile(const ModemOptions& options) {
  NcmProfile p;
  p.name = "huawei-e3372";
  p.identity.descriptors = concat({
      device_descriptor(0x0200, 0x02, 0x00, 0x00, 0x12d1, 0x1506, 0x0102, 1, 2, 3, 1),
      configuration(1, 0x80, 0xfa,
                    {
                        // 0: modem (PPP) port, CDC ACM-style functional descriptors
                        interface(0, 0, 3, 0xff, 0x03, 0x01), kCdcHeader110, {0x04, 0x24, 0x02, 0x02},
                        {0x05, 0x24, 0x01, 0x00, 0x00}, {0x05, 0x24, 0x06, 0x00, 0x00},
                        endpoint(0x83, kInterrupt, 64, 5), endpoint(0x82, kBulk, 512, 0), endpoint(0x02, kBulk, 512, 0),
                        // 1: Huawei NCM, control and data in one interface; bulk only in alt 1.
                        // NCM FD 1.00 caps 0x1F; Ethernet FD iMACAddress 7, stats 0x0F, wMaxSegmentSize
                        // 1514, 3 MC filters, 1 power filter; Union master 1 slave 1 (itself).
                        interface(1, 0, 1, 0xff, 0x03, 0x16), kCdcHeader110, {0x06, 0x24, 0x1a, 0x00, 0x01, 0x1f},
                        {0x0d, 0x24, 0x0f, 0x07, 0x0f, 0x00, 0x00, 0x00, 0xea, 0x05, 0x03, 0x00, 0x01},
                        {0x05, 0x24, 0x06, 0x01, 0x01}, endpoint(0x85, kInterrupt, 16, 9),
                        interface(1, 1, 3, 0xff, 0x03, 0x16, 6), endpoint(0x85, kInterrupt, 16, 9),
                        endpoint(0x84, kBulk, 512, 0), endpoint(0x03, kBulk, 512, 0),
                        // 2: DIAG, 3: PCUI (AT)
                        interface(2, 0, 2, 0xff, 0x03, 0x03), endpoint(0x86, kBulk, 512, 0), endpoint(0x04, kBulk, 512, 0),
                        interface(3, 0, 2, 0xff, 0x03, 0x02), endpoint(0x87, kBulk, 512, 0), endpoint(0x05, kBulk, 512, 0),
                        // 4, 5: CD-ROM and SD card
                        interface(4, 0, 2, 0x08, 0x06, 0x50), endpoint(0x88, kBulk, 512, 0), endpoint(0x06, kBulk, 512, 1),
                        interface(5, 0, 2, 0x08, 0x06, 0x50), endpoint(0x89, kBulk, 512, 0), endpoint(0x07, kBulk, 512, 1),
                    }),
  });
  // iMACAddress: Linux prints "MAC-Address: 00:1e:10:1f:00:00" for E3372 sticks (cdc_ncm binds the
  // 12d1:155e variant; OpenWrt forum thread 126018) and uses it as the *host's* netdev address.
  p.mac_address = {{0x00, 0x1e, 0x10, 0x1f, 0x00, 0x00}};
  // The stick's own address is a different one: the E3372's ARP toward the host came from a source
  // MAC starting 4c (vectors/ncm_ntb.md N2), and a Huawei K5160 used 4c:54:99:45:e5:d5 (N1).
  p.device_mac = {{0x4c, 0x54, 0x99, 0x45, 0xe5, 0xd5}};
  p.identity.strings = {{1, "HUAWEI"},
                        {2, "HUAWEI Mobile"},
                        {3, options.serial},
                        {6, "CDC Network Control Model (NCM)"},
                        {7, mac_string(p.mac_address)}};
  p.identity.kernel_drivers = {{0, "option"},      {1, "huawei_cdc_ncm"}, {2, "option"},
                               {3, "option"},      {4, "usb-storage"},    {5, "usb-storage"}};
  p.identity.speed_mbps = 480;
  p.control_interface = 1;
  p.data_interface = 1;
  p.data_alt_active = 1;
  p.interrupt_in_endpoint = 0x85;
  p.bulk_in_endpoint = 0x84;
  p.bulk_out_endpoint = 0x03;
  p.network_capabilities = 0x1f;
  p.max_segment_size = 1514;
  // No GET_NTB_PARAMETERS answer of an E3372 is in reference/: these sizes are an assumption. The
  // facts they respect: NTB16 and NTB32 advertised (Linux negotiates NTB32 with it since
  // 0fa81b304a79), and dwNtbInMaxSize >= 16384 (Linux logged "setting rx_max = 16384" for it,
  // which it does only when the device allows that much).
  p.ntb_parameters.ntb_formats_supported = cdc::kNtbFormatsSupported16 | cdc::kNtbFormatsSupported32;
  p.ntb_parameters.ntb_in_max_size = 0x20000;
  p.ntb_parameters.ntb_out_max_size = 0x10000;
  p.reset_ntb_format = NtbFormat::Ntb32;  // linux-usb msg92633: GET_NTB_FORMAT = 1 after alt 0
  p.accepts_ndp_in_front_on_out = false;
  p.speaks_at = true;
  p.serial_at_bulk_in = 0x87;  // if3 ff/03/02: the PCUI (AT) port (ModemManager: ff/xx/02 = AT primary)
  p.serial_at_bulk_out = 0x05;
  p.arps_host_before_forwarding = true;
  p.speed = {150'000'000, 50'000'000};  // LTE category 4
  return p;
}

// A conformant NCM 1.0 function laid out as the Linux gadget's f_ncm builds it, under the gadget's
// VID:PID 0525:a4a1 (NetChip / "Linux-USB Ethernet Gadget", which g_ncm uses): IAD, communication
// interface 02/0d/00 with Header, Union 0->1, Ethernet (iMACAddress) and NCM (caps 0x11:
// packet filter + CRC mode, as f_ncm advertises) functional descriptors and an interrupt
// endpoint; data interface 0a/00/01 with no endpoints in alt 0 and a bulk pair in alt 1. NTB
// parameters are f_ncm's: NTB16+NTB32, 16 KiB both ways, divisors and alignment 4.
NcmProfile generic_ncm_profile(const ModemOptions& options) {
  NcmProfile p;
  p.name = "generic-ncm";
  p.device_mac = {{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}};   // locally administered
  p.mac_address = {{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}};  // the host's, via iMACAddress
  p.identity.descriptors = concat({
      device_descriptor(0x0200, 0x02, 0x00, 0x00, 0x0525, 0xa4a1, 0x0100, 1, 2, 3, 1),
      configuration(1, 0xc0, 0x01,
                    {
                        iad(0, 2, 0x02, 0x0d, 0x00),
                        interface(0, 0, 1, 0x02, 0x0d, 0x00, 4), kCdcHeader110,
                        {0x05, 0x24, 0x06, 0x00, 0x01},  // Union: master 0, slave 1
                        // Ethernet: iMACAddress 5, no statistics, wMaxSegmentSize 1514, no filters
                        {0x0d, 0x24, 0x0f, 0x05, 0x00, 0x00, 0x00, 0x00, 0xea, 0x05, 0x00, 0x00, 0x00},
                        {0x06, 0x24, 0x1a, 0x00, 0x01, 0x11},  // NCM 1.00, caps 0x11
                        endpoint(0x81, kInterrupt, 16, 9),
                        interface(1, 0, 0, 0x0a, 0x00, 0x01),
                        interface(1, 1, 2, 0x0a, 0x00, 0x01, 6), endpoint(0x82, kBulk, 512, 0),
                        endpoint(0x01, kBulk, 512, 0),
                    }),
  });
  p.identity.strings = f_ncm_strings("Linux", "NCM Gadget", options.serial, p.mac_address);
  p.identity.kernel_drivers = {{0, "cdc_ncm"}, {1, "cdc_ncm"}};
  p.identity.speed_mbps = 480;
  p.control_interface = 0;
  p.data_interface = 1;
  p.data_alt_active = 1;
  p.interrupt_in_endpoint = 0x81;
  p.bulk_in_endpoint = 0x82;
  p.bulk_out_endpoint = 0x01;
  set_f_ncm_parameters(p);
  p.accepts_ndp_in_front_on_out = true;
  p.speaks_at = false;
  p.arps_host_before_forwarding = false;
  p.relink_after_drop = std::chrono::seconds(1);
  p.dhcp_server = true;  // no session to report an address: DHCP on the link (sim/dhcp_server.hpp)
  return p;
}

std::map<std::uint8_t, std::string> f_ncm_strings(const std::string& manufacturer, const std::string& product,
                                                  const std::string& serial, const eth::MacAddress& mac_address) {
  return {{1, manufacturer},
          {2, product},
          {3, serial},
          {4, "CDC Network Control Model (NCM)"},
          {5, mac_string(mac_address)},
          {6, "CDC Network Data"}};
}

void set_f_ncm_parameters(NcmProfile& p) {
  p.network_capabilities = cdc::kNcapEthernetPacketFilter | cdc::kNcapCrcMode;
  p.max_segment_size = 1514;
  p.ntb_parameters.ntb_formats_supported = cdc::kNtbFormatsSupported16 | cdc::kNtbFormatsSupported32;
  p.ntb_parameters.ntb_in_max_size = 16384;
  p.ntb_parameters.ntb_out_max_size = 16384;
  p.reset_ntb_format = NtbFormat::Ntb16;  // NCM 1.0 §7.2
  p.speed = {425'984'000, 425'984'000};  // f_ncm's high-speed bit rate: 13 * 512 * 8 * 8000
}

std::unique_ptr<Modem> make_huawei_e3372(const ModemOptions& options) {
  NcmProfile profile = huawei_e3372_profile(options);
  if (options.no_dhcp_at) {  // ^DHCP? answers ERROR; a DHCP server on the link instead
    profile.at_identity.answers_dhcp = false;
    profile.dhcp_server = true;
  }
  if (options.product_id && profile.identity.descriptors.size() >= 18) {  // idProduct, device descriptor offset 10
    profile.identity.descriptors[10] = static_cast<std::uint8_t>(*options.product_id & 0xff);
    profile.identity.descriptors[11] = static_cast<std::uint8_t>(*options.product_id >> 8);
  }
  apply_variants(profile, options);
  return std::make_unique<NcmModem>(std::move(profile), options);
}
std::unique_ptr<Modem> make_generic_ncm(const ModemOptions& options) {
  NcmProfile profile = generic_ncm_profile(options);
  apply_variants(profile, options);
  return std::make_unique<NcmModem>(std::move(profile), options);
}

// ---- the model -----------------------------------------------------------------------------------

NcmModem::NcmModem(NcmProfile profile, const ModemOptions& options)
    : profile_(std::move(profile)),
      network_(network_config(options.network, profile_)),
      format_(profile_.reset_ntb_format),
      imix_to_host_(options.imix_to_host) {
  alt_settings_ = alt_settings_of(profile_.identity.descriptors);
  if (profile_.speaks_at) {
    at_.emplace(options.network, options.sim_pin, profile_.at_identity);
    at_->power_on();
    if (profile_.serial_at_bulk_in != 0 && profile_.serial_at_bulk_out != 0)
      serial_at_.emplace(profile_.serial_at_bulk_in, profile_.serial_at_bulk_out,
                         [this](std::string_view line) { return at_->execute(line); });
  }
  staged_frame_.assign(eth::kEthernetHeaderSize + 0xFFFF, 0);
  reset_function();
  // The power-on noise is there before the host asks: it is announced like any response.
  if (at_)
    while (at_->has_unsolicited()) make_response_available(at_->take_unsolicited());
}

bool NcmModem::session_active() const { return at_ ? at_->connected() : link_up_; }

void NcmModem::reset_function() {
  format_ = profile_.reset_ntb_format;
  ntb_in_size_ = profile_.ntb_parameters.ntb_in_max_size;
  ntb_in_max_datagrams_ = 0;
  crc_mode_ = false;
  max_datagram_size_ = profile_.max_segment_size;
  net_address_ = profile_.mac_address;
  staged_length_ = 0;
  link_frames_.clear();
  bulk_in_halted_ = bulk_out_halted_ = false;
}

// Faults that act "at the next transaction" and timers that fall due.
void NcmModem::service(Clock::time_point now) {
  if (gone_) return;
  if (network_.take_unplug_request(now)) faults_.unplug = true;  // the control port's unplug
  if (faults_.unplug) {
    gone_ = true;
    ++counters_.faults_injected;
    return;
  }
  if (network_.take_drop_session_request(now)) faults_.drop_session = true;  // the control port's drop-session
  if (faults_.drop_session) {
    faults_.drop_session = false;
    bool dropped = false;
    if (at_) {
      dropped = at_->network_disconnect();
      deliver_unsolicited(now);
    } else if (link_up_) {
      link_up_ = false;
      dropped = true;
      if (profile_.relink_after_drop.count() > 0) relink_at_ = now + profile_.relink_after_drop;
    }
    if (dropped) ++counters_.faults_injected;
  }
  if (relink_at_ && now >= *relink_at_) {
    relink_at_.reset();
    if (data_active()) link_up_ = true;  // the network is back: NETWORK_CONNECTION(1) below
  }
  while (!delayed_responses_.empty() && delayed_responses_.front().due <= now) {
    make_response_available(std::move(delayed_responses_.front().text));
    delayed_responses_.pop_front();
  }
  sync_session();
}

void NcmModem::sync_session() {
  const bool up = session_active();
  if (up == session_reported_) return;
  session_reported_ = up;
  Notification n;
  if (up) {
    // f_ncm's order: the speed first, then the connection (the host reads the speed for the link).
    n.length = cdc::encode_connection_speed_change(profile_.control_interface, profile_.speed, n.bytes);
    queue_notification(n);
  }
  n.length = cdc::encode_network_connection(profile_.control_interface, up, n.bytes);
  queue_notification(n);
  if (!up) staged_length_ = 0;  // what was in flight toward the host dies with the PDN
}

void NcmModem::queue_notification(const Notification& n) {
  if (notifications_.size() >= kMaxQueuedNotifications) {
    ++ncm_counters_.notifications_dropped;
    return;
  }
  notifications_.push_back(n);
}

void NcmModem::make_response_available(std::string text) {
  if (text.empty()) return;
  if (responses_.size() >= kMaxQueuedResponses) {
    ++ncm_counters_.responses_dropped;
    return;
  }
  responses_.push_back(std::move(text));
  if (faults_.lose_response_available) {
    ++counters_.faults_injected;
    return;
  }
  Notification n;
  n.length = cdc::encode_response_available(profile_.control_interface, n.bytes);
  queue_notification(n);
}

void NcmModem::deliver_unsolicited(Clock::time_point now) {
  while (at_ && at_->has_unsolicited()) {
    std::string text = at_->take_unsolicited();
    if (urcs_to_serial_ && serial_at_) serial_at_->push(text);
    else queue_response(std::move(text), now);
  }
}

// Keeps the order of responses: once one is delayed, later ones wait behind it.
void NcmModem::queue_response(std::string text, Clock::time_point now) {
  if (text.empty()) return;
  const Clock::time_point due = now + faults_.control_answer_delay;
  if (delayed_responses_.empty() && due <= now) {
    make_response_available(std::move(text));
    return;
  }
  if (delayed_responses_.size() >= kMaxQueuedResponses) {
    ++ncm_counters_.responses_dropped;
    return;
  }
  delayed_responses_.push_back({due, std::move(text)});
}

void NcmModem::queue_link_frame(std::span<const std::uint8_t> frame) {
  if (link_frames_.size() >= kMaxQueuedLinkFrames) {
    ++ncm_counters_.link_frames_dropped;
    return;
  }
  link_frames_.emplace_back(frame.begin(), frame.end());
}

// ---- standard requests ---------------------------------------------------------------------------

bool NcmModem::set_configuration(std::uint8_t configuration_value) {
  if (gone_) return false;
  service(clock_());
  if (configuration_value > 1) return false;
  configuration_ = configuration_value;
  data_alt_ = 0;
  if (!at_) link_up_ = false;
  relink_at_.reset();
  reset_function();
  sync_session();
  return true;
}

bool NcmModem::set_interface(std::uint8_t interface_number, std::uint8_t alternate_setting) {
  if (gone_ || configuration_ == 0) return false;
  service(clock_());
  if (std::find(alt_settings_.begin(), alt_settings_.end(), std::pair{interface_number, alternate_setting}) ==
      alt_settings_.end())
    return false;
  if (interface_number != profile_.data_interface) return true;  // nothing to switch elsewhere
  data_alt_ = alternate_setting;
  if (alternate_setting == 0) {
    // NCM 1.0 §7.2: alt 0 resets the function. Without AT the link goes down with it.
    reset_function();
    if (!at_) link_up_ = false;
    relink_at_.reset();
  } else {
    bulk_in_halted_ = bulk_out_halted_ = false;  // USB 2.0 §9.4.10: SET_INTERFACE clears halts
    if (faults_.ntb_format_reverts_after_alt && format_ != profile_.reset_ntb_format) {
      // E3372h fw 21.318: the SET_NTB_FORMAT sent at alt 0 is forgotten (linux-usb msg92633 #C).
      format_ = profile_.reset_ntb_format;
      ++counters_.faults_injected;
    }
    if (!at_) link_up_ = true;  // f_ncm: alt 1 brings the link up and notifies it
    relink_at_.reset();
  }
  sync_session();
  return true;
}

bool NcmModem::clear_halt(std::uint8_t endpoint_address) {
  if (gone_) return false;
  service(clock_());
  if (endpoint_address == profile_.bulk_in_endpoint) {
    bulk_in_halted_ = false;
    faults_.stall_bulk_in = false;
    return true;
  }
  if (endpoint_address == profile_.bulk_out_endpoint) {
    bulk_out_halted_ = false;
    faults_.stall_bulk_out = false;
    return true;
  }
  if (serial_at_ && serial_at_->owns(endpoint_address)) return true;
  return endpoint_address == profile_.interrupt_in_endpoint;
}

// ---- class requests ------------------------------------------------------------------------------

std::optional<std::size_t> NcmModem::control(const SetupPacket& setup, std::span<std::uint8_t> data) {
  if (gone_) return std::nullopt;
  const Clock::time_point now = clock_();
  service(now);
  if (gone_) return std::nullopt;
  ++counters_.control_requests;
  const std::optional<std::size_t> r = class_request(setup, data, now);
  sync_session();
  return r;
}

std::optional<std::size_t> NcmModem::class_request(const SetupPacket& setup, std::span<std::uint8_t> data,
                                                   Clock::time_point now) {
  using namespace cdc;
  if ((setup.request_type & kRequestTypeTypeMask) != kRequestTypeTypeClass ||
      (setup.request_type & kRequestTypeRecipientMask) != kRequestTypeRecipientInterface ||
      (setup.index & 0xFF) != profile_.control_interface || configuration_ == 0)
    return std::nullopt;
  const bool device_to_host = (setup.request_type & kRequestTypeDirectionIn) != 0;
  const std::uint8_t caps = profile_.network_capabilities;
  const auto reply = [&](std::span<const std::uint8_t> bytes) -> std::optional<std::size_t> {
    if (!device_to_host) return std::nullopt;
    const std::size_t n = std::min(bytes.size(), data.size());
    std::copy_n(bytes.begin(), n, data.begin());
    return n;
  };
  const auto reply16 = [&](std::uint16_t v) {
    std::array<std::uint8_t, 2> b{};
    ntb::store_le16(b, 0, v);
    return reply(b);
  };
  const bool alt0 = data_alt_ == 0;

  switch (setup.request) {
    case kSendEncapsulatedCommand: {
      if (!at_ || device_to_host) return std::nullopt;
      if (encapsulated_at_dead_) return 0;  // ACKed, never executed
      urcs_to_serial_ = false;
      // One or more command lines; each ends in CR (cdc-wdm writes what the user wrote).
      std::size_t start = 0;
      for (std::size_t i = 0; i <= data.size(); ++i) {
        if (i < data.size() && data[i] != '\r' && data[i] != '\n') continue;
        if (i > start) {
          ++counters_.commands_received;
          const std::string command(data.begin() + static_cast<std::ptrdiff_t>(start),
                                    data.begin() + static_cast<std::ptrdiff_t>(i));
          queue_response(at_->execute(command), now);
          deliver_unsolicited(now);
        }
        start = i + 1;
      }
      return 0;
    }
    case kGetEncapsulatedResponse: {
      if (!at_ || !device_to_host) return std::nullopt;
      // CDC 1.2 §6.2.2: nothing to say is a zero-length answer, not a STALL.
      if (responses_.empty() || encapsulated_at_dead_) return 0;
      std::string& front = responses_.front();
      const std::size_t n = std::min(front.size(), data.size());
      std::copy_n(front.begin(), n, data.begin());
      if (n == front.size()) {
        responses_.pop_front();
      } else {
        // The rest of a long answer waits for the next read, announced again.
        front.erase(0, n);
        std::string rest = std::move(front);
        responses_.pop_front();
        responses_.push_front(std::move(rest));
        if (!faults_.lose_response_available) {
          Notification notification;
          notification.length = encode_response_available(profile_.control_interface, notification.bytes);
          queue_notification(notification);
        }
      }
      return n;
    }
    case kSetEthernetPacketFilter:
      if (!(caps & kNcapEthernetPacketFilter) || device_to_host) return std::nullopt;
      packet_filter_ = setup.value;
      return 0;
    case kGetNtbParameters: {
      std::array<std::uint8_t, kNtbParametersSize> b{};
      (void)encode_ntb_parameters(profile_.ntb_parameters, b);
      return reply(b);
    }
    case kGetNetAddress:
      if (!(caps & kNcapNetAddress)) return std::nullopt;
      return reply(net_address_.bytes);
    case kSetNetAddress:
      // NCM 1.0 §6.2.3: only while the data interface is in alt 0.
      if (!(caps & kNcapNetAddress) || device_to_host || !alt0 || data.size() != 6) return std::nullopt;
      net_address_ = eth::MacAddress::load(data, 0);
      return 0;
    case kGetNtbFormat:
      return reply16(ntb_format_value(format_));
    case kSetNtbFormat: {
      // NCM 1.0 §6.2.5: "The host shall only send this command while the NCM Data Interface is in
      // alternate setting 0"; a function in alt 1 STALLs it.
      const std::optional<NtbFormat> f = ntb_format_from_value(setup.value);
      if (device_to_host || !alt0 || !f || !profile_.ntb_parameters.supports(*f)) return std::nullopt;
      format_ = *f;
      return 0;
    }
    case kGetNtbInputSize: {
      std::array<std::uint8_t, kNtbInputSizeLong> b{};
      const std::size_t n = encode_ntb_input_size({ntb_in_size_, ntb_in_max_datagrams_},
                                                  (caps & kNcapNtbInputSize8) != 0, b);
      return reply(std::span<const std::uint8_t>(b).subspan(0, n));
    }
    case kSetNtbInputSize: {
      if (device_to_host) return std::nullopt;
      const std::optional<NtbInputSize> s = decode_ntb_input_size(data);
      // f_ncm's rule: below the 2048-byte minimum or above what GET_NTB_PARAMETERS offered: STALL.
      if (!s || s->ntb_in_max_size < ntb::kNtbMinSize || s->ntb_in_max_size > profile_.ntb_parameters.ntb_in_max_size)
        return std::nullopt;
      ntb_in_size_ = s->ntb_in_max_size;
      ntb_in_max_datagrams_ = s->ntb_in_max_datagrams;
      return 0;
    }
    case kGetMaxDatagramSize:
      if (!(caps & kNcapMaxDatagramSize)) return std::nullopt;
      return reply16(max_datagram_size_);
    case kSetMaxDatagramSize: {
      if (!(caps & kNcapMaxDatagramSize) || device_to_host || data.size() != 2) return std::nullopt;
      const std::uint16_t v = ntb::load_le16(data, 0);
      if (v < eth::kEthernetMinFrameSize || v > profile_.max_segment_size) return std::nullopt;
      max_datagram_size_ = v;
      return 0;
    }
    case kGetCrcMode:
      if (!(caps & kNcapCrcMode)) return std::nullopt;
      return reply16(crc_mode_ ? kCrcAppended : kCrcNotAppended);
    case kSetCrcMode:
      // NCM 1.0 §6.2.11: like SET_NTB_FORMAT, only in alt 0.
      if (!(caps & kNcapCrcMode) || device_to_host || !alt0 || setup.value > kCrcAppended) return std::nullopt;
      crc_mode_ = setup.value == kCrcAppended;
      return 0;
    default:
      return std::nullopt;
  }
}

// ---- bulk OUT: NTBs from the host ------------------------------------------------------------------

EndpointResult NcmModem::out(std::uint8_t endpoint_address, std::span<const std::uint8_t> data) {
  if (gone_) return EndpointResult::gone;
  const Clock::time_point now = clock_();
  service(now);
  if (gone_) return EndpointResult::gone;
  if (serial_at_ && endpoint_address == serial_at_->bulk_out()) {
    // The serial AT port: command lines to the same engine, answers and URCs back on its bulk IN.
    const std::uint64_t lines = serial_at_->counters().command_lines;
    urcs_to_serial_ = true;
    serial_at_->out(data);
    counters_.commands_received += serial_at_->counters().command_lines - lines;
    deliver_unsolicited(now);
    sync_session();
    return EndpointResult::ok;
  }
  if (endpoint_address != profile_.bulk_out_endpoint || !data_active()) return EndpointResult::stall;
  if (bulk_out_halted_) return EndpointResult::stall;
  if (faults_.stall_bulk_out) {
    bulk_out_halted_ = true;
    ++counters_.faults_injected;
    return EndpointResult::stall;
  }
  receive_ntbs(data, now);
  sync_session();
  return EndpointResult::ok;
}

void NcmModem::receive_ntbs(std::span<const std::uint8_t> transfer, Clock::time_point now) {
  if (transfer.empty()) return;  // a ZLP ends a transfer; it carries no NTB
  if (transfer.size() > profile_.ntb_parameters.ntb_out_max_size) {
    ++ncm_counters_.ntbs_too_large;
    ++counters_.ntbs_from_host_dropped;
    return;
  }
  OutSink sink{ncm_counters_.out_parse, {}, {}};
  const ntb::TransferSummary summary = ntb::parse_transfer(transfer, {ntb::FunctionKind::Ncm, true}, sink);
  ncm_counters_.out_parse.add(summary);
  if (summary.ntbs == 0) {
    ++ncm_counters_.ntbs_unparsable;
    ++counters_.ntbs_from_host_dropped;
    return;
  }
  for (const ntb::NtbInfo& info : sink.ntbs) {
    // A function in NTB32 reads "NCMH" as a bad signature (and the reverse), as f_ncm does; this is
    // how a host that trusted SET_NTB_FORMAT after the alt switch loses everything (msg92633).
    if (info.format != format_) {
      ++ncm_counters_.ntbs_wrong_format;
      ++counters_.ntbs_from_host_dropped;
      continue;
    }
    const auto nth = static_cast<std::size_t>(info.offset);
    const std::uint64_t first_ndp =
        info.format == NtbFormat::Ntb16 ? ntb::load_le16(transfer, nth + 10) : ntb::load_le32(transfer, nth + 12);
    const auto in_this = [&](const ntb::DatagramView& d) { return d.ntb == info.ntb; };
    if (!profile_.accepts_ndp_in_front_on_out) {
      // Huawei firmware "will ignore our aggregates if [the NDP] is not placed after the
      // datagrams it points to" (Linux 4a0e3e989d66): any datagram behind the NDP loses the NTB.
      const bool ndp_in_front = std::any_of(sink.datagrams.begin(), sink.datagrams.end(), [&](const auto& d) {
        return in_this(d) && d.offset > info.offset + first_ndp;
      });
      if (ndp_in_front) {
        ++ncm_counters_.ntbs_ndp_in_front;
        ++counters_.ntbs_from_host_dropped;
        continue;
      }
    }
    ++counters_.ntbs_from_host;
    for (const ntb::DatagramView& d : sink.datagrams) {
      if (!in_this(d)) continue;
      ++counters_.datagrams_from_host;
      receive_frame(transfer.subspan(static_cast<std::size_t>(d.offset), d.length), now);
    }
  }
}

void NcmModem::receive_frame(std::span<const std::uint8_t> frame, Clock::time_point now) {
  const std::optional<eth::EthernetFrame> f = eth::parse_ethernet(frame);
  if (!f) {
    ++ncm_counters_.frames_malformed;
    return;
  }
  if (f->source.is_unicast()) host_mac_ = f->source;
  if (f->destination.is_unicast() && f->destination != profile_.device_mac) ++ncm_counters_.frames_to_other_mac;
  const NetworkConfig& net = network_.config();
  std::array<std::uint8_t, eth::kNeighbourAdvertisementFrameSize> reply{};

  if (f->ethertype == eth::kEtherTypeArp) {
    if (const auto n = eth::answer_arp(frame, net.gateway_ipv4, profile_.device_mac, reply)) {
      ++counters_.arp_requests_from_host;
      queue_link_frame(std::span<const std::uint8_t>(reply).subspan(0, *n));
    } else if (f->payload.size() >= eth::kArpIpv4Size && eth::load_be16(f->payload, 6) == 2) {
      ++ncm_counters_.arp_replies_from_host;  // the answer to our ARP; the MAC was learned above
    }
    return;
  }
  if (f->ethertype == eth::kEtherTypeIpv6) {
    // The router's link-local address too: its RAs come from it (RouterAdvertiserConfig::router,
    // without an SLLA option), so a host with its own IPv6 stack on the link (wwan-dp --tap: the
    // kernel's SLAAC and default route via fe80::1) resolves it with an NS before the first packet.
    const std::array<eth::Ipv6Address, 3> ours = {net.gateway_ipv6, link_local_of(profile_.device_mac),
                                                  net.router_advertisements.router};
    if (const auto n = eth::answer_neighbour_solicitation(frame, ours, profile_.device_mac, true, reply)) {
      ++ncm_counters_.neighbour_advertisements_sent;
      queue_link_frame(std::span<const std::uint8_t>(reply).subspan(0, *n));
      return;
    }
  }
  if (f->ethertype != eth::kEtherTypeIpv4 && f->ethertype != eth::kEtherTypeIpv6) {
    ++ncm_counters_.frames_other_ethertype;
    return;
  }
  if (!session_active()) {
    ++counters_.frames_before_session;
    return;
  }
  network_.from_host(f->payload, now);
}

// ---- IN: NTBs and notifications toward the host ------------------------------------------------------

InResult NcmModem::in(std::uint8_t endpoint_address, std::span<std::uint8_t> buffer) {
  if (gone_) return {EndpointResult::gone, 0};
  const Clock::time_point now = clock_();
  service(now);
  if (gone_) return {EndpointResult::gone, 0};
  if (configuration_ == 0) return {EndpointResult::stall, 0};
  if (endpoint_address == profile_.interrupt_in_endpoint) return send_notification(buffer);
  if (serial_at_ && endpoint_address == serial_at_->bulk_in()) return serial_at_->in(buffer);
  if (endpoint_address != profile_.bulk_in_endpoint || !data_active()) return {EndpointResult::stall, 0};
  if (bulk_in_halted_) return {EndpointResult::stall, 0};
  if (faults_.stall_bulk_in) {
    bulk_in_halted_ = true;
    ++counters_.faults_injected;
    return {EndpointResult::stall, 0};
  }
  const InResult r = send_ntb(buffer, now);
  if (r.result == EndpointResult::ok && faults_.unplug_after_in_transfers > 0 &&
      --faults_.unplug_after_in_transfers == 0) {
    gone_ = true;  // this transfer completed; the device is off the bus for every later call
    ++counters_.faults_injected;
  }
  return r;
}

InResult NcmModem::send_notification(std::span<std::uint8_t> buffer) {
  if (notifications_.empty() || buffer.empty()) return {EndpointResult::nak, 0};
  const Notification& n = notifications_.front();
  // A buffer shorter than the notification gets it in pieces (the split SPEED_CHANGE of anchors §1.3).
  const std::size_t take = std::min(buffer.size(), n.length - notification_offset_);
  std::copy_n(n.bytes.begin() + static_cast<std::ptrdiff_t>(notification_offset_), take, buffer.begin());
  notification_offset_ += take;
  if (notification_offset_ == n.length) {
    notifications_.pop_front();
    notification_offset_ = 0;
  }
  ++counters_.notifications_sent;
  return {EndpointResult::ok, take};
}

bool NcmModem::forwarding() const {
  return session_active() && (host_mac_ || !profile_.arps_host_before_forwarding);
}

InResult NcmModem::send_ntb(std::span<std::uint8_t> buffer, Clock::time_point now) {
  if (faults_.garbage_ntbs > 0) {
    --faults_.garbage_ntbs;
    ++counters_.faults_injected;
    ++ncm_counters_.garbage_ntbs_sent;
    const std::size_t n = std::min<std::size_t>(buffer.size(), 64 + garbage_rng_() % 449);
    for (std::size_t i = 0; i < n; ++i) buffer[i] = static_cast<std::uint8_t>(garbage_rng_());
    if (n >= 4) buffer[0] = 0xEE;  // never an NTH signature ("NCMH" / "ncmh" start with 'N' / 'n')
    return {EndpointResult::ok, n};
  }

  // The E3372 asks who the host is before it forwards anything (vectors/ncm_ntb.md N2).
  const NetworkConfig& net = network_.config();
  if (session_active() && profile_.arps_host_before_forwarding && !host_mac_ &&
      (!last_arp_for_host_ || now - *last_arp_for_host_ >= kArpRetryInterval)) {
    last_arp_for_host_ = now;
    ++counters_.arp_requests_to_host;
    queue_link_frame(arp_request(profile_.device_mac, net.gateway_ipv4, net.host_ipv4));
  }

  ntb::NtbOutParams params;
  params.format = format_;
  params.ntb_out_max_size = ntb_in_size_;
  params.ndp_out_divisor = profile_.ntb_parameters.ndp_in_divisor;
  params.ndp_out_payload_remainder = profile_.ntb_parameters.ndp_in_payload_remainder;
  params.ndp_out_alignment = profile_.ntb_parameters.ndp_in_alignment;
  params.ntb_out_max_datagrams = ntb_in_max_datagrams_;
  params.ndp_at_end = profile_.ndp_at_end_on_in;
  const ntb::NdpSignature sig{format_, crc_mode_ ? ntb::DatagramKind::NcmCrc : ntb::DatagramKind::Ncm, 0};
  ntb::NtbBuilder b(buffer, params, sig);
  b.reset(in_sequence_);
  // A datagram the host's (too small) buffer cannot take now is kept, not dropped; only one that
  // no NTB of the negotiated size could carry is.
  const bool buffer_limits = buffer.size() < ntb::sanitize_out_params(params).params.ntb_out_max_size;
  const auto place = [&](std::span<const std::uint8_t> frame) {
    const ntb::AppendResult r = b.append(frame);
    if (r == ntb::AppendResult::Appended) return 1;          // taken
    if (r == ntb::AppendResult::Full || buffer_limits) return 0;  // next NTB
    ++ncm_counters_.datagrams_to_host_dropped;
    return -1;  // never fits
  };

  while (!link_frames_.empty()) {
    const int r = place(link_frames_.front());
    if (r == 0) break;
    link_frames_.pop_front();
  }
  if (forwarding() && !b.full()) {
    const eth::MacAddress destination = host_destination();
    const std::size_t max_ip = max_datagram_size_ > eth::kEthernetHeaderSize
                                   ? max_datagram_size_ - eth::kEthernetHeaderSize
                                   : 0;
    for (;;) {
      if (staged_length_ == 0) {
        std::optional<std::size_t> n =
            network_.to_host(std::span<std::uint8_t>(staged_frame_).subspan(eth::kEthernetHeaderSize, max_ip), now);
        if (!n) break;
        if (imix_to_host_)
          *n = cut_to_imix(std::span<std::uint8_t>(staged_frame_).subspan(eth::kEthernetHeaderSize), *n, imix_index_++);
        const std::uint16_t type = (staged_frame_[eth::kEthernetHeaderSize] >> 4) == 6 ? eth::kEtherTypeIpv6
                                                                                      : eth::kEtherTypeIpv4;
        (void)eth::write_ethernet_header(staged_frame_, destination, profile_.device_mac, type);
        staged_length_ = eth::kEthernetHeaderSize + *n;
      }
      const int r = place(std::span<const std::uint8_t>(staged_frame_).subspan(0, staged_length_));
      if (r == 0) break;
      staged_length_ = 0;
    }
  }
  if (b.empty()) return {EndpointResult::nak, 0};
  const std::size_t datagrams = b.datagram_count();
  const ntb::Bytes block = b.finish();
  std::size_t length = block.size();

  if (faults_.oversize_ntbs > 0) {
    // Longer than the negotiated dwNtbInMaxSize: pad up to what the device itself offered in
    // GET_NTB_PARAMETERS (or the host's buffer), the "device ignores SET_NTB_INPUT_SIZE" case of
    // anchors §5 #14. Only visible when the host sizes IN transfers above the negotiated size.
    std::size_t target = std::min<std::size_t>(buffer.size(), profile_.ntb_parameters.ntb_in_max_size);
    if (format_ == NtbFormat::Ntb16) target = std::min(target, ntb::kNtb16MaxSize);
    if (target > length) {
      std::fill(buffer.begin() + static_cast<std::ptrdiff_t>(length),
                buffer.begin() + static_cast<std::ptrdiff_t>(target), std::uint8_t{0});
      length = target;
      if (format_ == NtbFormat::Ntb16)
        ntb::store_le16(buffer, 8, static_cast<std::uint16_t>(length));
      else
        ntb::store_le32(buffer, 8, static_cast<std::uint32_t>(length));
    }
    --faults_.oversize_ntbs;
    ++counters_.faults_injected;
    ++ncm_counters_.oversize_ntbs_sent;
  } else if (faults_.truncated_ntbs > 0) {
    // wBlockLength keeps the full length; the transfer carries only the first half of it.
    length = std::max(ntb::nth_size(format_), length / 2);
    --faults_.truncated_ntbs;
    ++counters_.faults_injected;
    ++ncm_counters_.truncated_ntbs_sent;
  }
  ++in_sequence_;
  ++counters_.ntbs_to_host;
  counters_.datagrams_to_host += datagrams;
  return {EndpointResult::ok, length};
}

std::optional<Clock::time_point> NcmModem::next_deadline() const {
  if (gone_) return std::nullopt;
  std::optional<Clock::time_point> d;
  const auto consider = [&](Clock::time_point t) {
    if (!d || t < *d) d = t;
  };
  if (!delayed_responses_.empty()) consider(delayed_responses_.front().due);
  if (relink_at_) consider(*relink_at_);
  if (data_active() && session_active()) {
    if (profile_.arps_host_before_forwarding && !host_mac_) {
      if (last_arp_for_host_) consider(*last_arp_for_host_ + kArpRetryInterval);
    } else if (const auto n = network_.next_deadline()) {
      consider(*n);
    }
  }
  return d;
}

}  // namespace wwan::sim
