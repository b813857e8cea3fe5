#include "sim/usbip_codec.hpp"

#include <algorithm>

namespace wwan::sim::usbip {
namespace {

void put16(ByteVector& out, std::uint16_t v) {
  out.push_back(static_cast<std::uint8_t>(v >> 8));
  out.push_back(static_cast<std::uint8_t>(v));
}
void put32(ByteVector& out, std::uint32_t v) {
  out.push_back(static_cast<std::uint8_t>(v >> 24));
  out.push_back(static_cast<std::uint8_t>(v >> 16));
  out.push_back(static_cast<std::uint8_t>(v >> 8));
  out.push_back(static_cast<std::uint8_t>(v));
}
void put_i32(ByteVector& out, std::int32_t v) { put32(out, static_cast<std::uint32_t>(v)); }
void put_zeros(ByteVector& out, std::size_t n) { out.insert(out.end(), n, 0); }
// A NUL-padded fixed-size text field; text longer than size - 1 is cut so the NUL stays.
void put_text(ByteVector& out, std::string_view text, std::size_t size) {
  const std::size_t n = std::min(text.size(), size - 1);
  out.insert(out.end(), text.begin(), text.begin() + static_cast<std::ptrdiff_t>(n));
  put_zeros(out, size - n);
}

std::uint16_t get16(Bytes b, std::size_t at) {
  return static_cast<std::uint16_t>(b[at] << 8 | b[at + 1]);
}
std::uint32_t get32(Bytes b, std::size_t at) {
  return static_cast<std::uint32_t>(b[at]) << 24 | static_cast<std::uint32_t>(b[at + 1]) << 16 |
         static_cast<std::uint32_t>(b[at + 2]) << 8 | b[at + 3];
}
std::uint16_t get16le(Bytes b, std::size_t at) { return static_cast<std::uint16_t>(b[at] | b[at + 1] << 8); }
std::string get_text(Bytes b, std::size_t at, std::size_t size) {
  const auto field = b.subspan(at, size);
  const auto nul = std::find(field.begin(), field.end(), std::uint8_t{0});
  return std::string(field.begin(), nul);
}

void append_device_record(ByteVector& out, const ExportedDevice& d) {
  put_text(out, d.path, kPathSize);
  put_text(out, d.busid, kBusIdSize);
  put32(out, d.busnum);
  put32(out, d.devnum);
  put32(out, d.speed);
  put16(out, d.vendor_id);
  put16(out, d.product_id);
  put16(out, d.bcd_device);
  out.push_back(d.device_class);
  out.push_back(d.device_subclass);
  out.push_back(d.device_protocol);
  out.push_back(d.configuration_value);
  out.push_back(d.num_configurations);
  out.push_back(d.num_interfaces);
}

void append_basic(ByteVector& out, std::uint32_t command, std::uint32_t seqnum, std::uint32_t devid,
                  std::uint32_t direction, std::uint32_t ep) {
  put32(out, command);
  put32(out, seqnum);
  put32(out, devid);
  put32(out, direction);
  put32(out, ep);
}

constexpr std::uint8_t kDtConfig = 2, kDtInterface = 4;

}  // namespace

std::optional<ExportedDevice> exported_device(const DeviceIdentity& identity, std::string_view busid,
                                              std::uint32_t busnum, std::uint32_t devnum) {
  const Bytes d = identity.descriptors;
  if (d.size() < 18 || d[0] != 18 || d[1] != 1) return std::nullopt;
  ExportedDevice e;
  e.busid = std::string(busid);
  e.path = "/sys/devices/platform/wwan-sim/usb" + std::to_string(busnum) + "/" + e.busid;
  e.busnum = busnum;
  e.devnum = devnum;
  e.speed = identity.speed_mbps >= 5000 ? kSpeedSuper
            : identity.speed_mbps >= 480 ? kSpeedHigh
            : identity.speed_mbps >= 12  ? kSpeedFull
                                         : kSpeedLow;
  e.device_class = d[4];
  e.device_subclass = d[5];
  e.device_protocol = d[6];
  e.vendor_id = get16le(d, 8);
  e.product_id = get16le(d, 10);
  e.bcd_device = get16le(d, 12);
  e.num_configurations = d[17];
  e.configuration_value = identity.active_configuration;
  // Walk the configurations (wTotalLength each) to the active one, then its interfaces.
  std::uint64_t at = 18;
  while (at + 9 <= d.size() && d[at + 1] == kDtConfig) {
    const std::uint64_t total = get16le(d, static_cast<std::size_t>(at + 2));
    if (total < 9 || at + total > d.size()) break;
    if (d[at + 5] == identity.active_configuration) {
      e.num_interfaces = d[at + 4];
      std::uint64_t p = at + d[at];
      while (p + 2 <= at + total) {
        const std::uint8_t length = d[p];
        if (length < 2 || p + length > at + total) break;
        if (d[p + 1] == kDtInterface && length >= 9 && d[p + 3] == 0)  // bAlternateSetting 0
          e.interfaces.push_back({d[p + 5], d[p + 6], d[p + 7]});
        p += length;
      }
      break;
    }
    at += total;
  }
  return e;
}

std::optional<OpHeader> parse_op_header(Bytes bytes) {
  if (bytes.size() < kOpHeaderSize) return std::nullopt;
  return OpHeader{get16(bytes, 0), get16(bytes, 2), get32(bytes, 4)};
}

std::optional<std::string> parse_busid(Bytes body) {
  if (body.size() < kBusIdSize) return std::nullopt;
  const auto field = body.first(kBusIdSize);
  if (std::find(field.begin(), field.end(), std::uint8_t{0}) == field.end()) return std::nullopt;
  return get_text(body, 0, kBusIdSize);
}

void append_op_header(ByteVector& out, std::uint16_t code, std::uint32_t status) {
  put16(out, kVersion);
  put16(out, code);
  put32(out, status);
}

void append_devlist_request(ByteVector& out) { append_op_header(out, kOpReqDevlist, 0); }

void append_import_request(ByteVector& out, std::string_view busid) {
  append_op_header(out, kOpReqImport, 0);
  put_text(out, busid, kBusIdSize);
}

void append_devlist_reply(ByteVector& out, std::span<const ExportedDevice> devices) {
  append_op_header(out, kOpRepDevlist, 0);
  put32(out, static_cast<std::uint32_t>(devices.size()));
  for (const ExportedDevice& d : devices) {
    append_device_record(out, d);
    for (const InterfaceClass& i : d.interfaces) {
      out.push_back(i.interface_class);
      out.push_back(i.interface_subclass);
      out.push_back(i.interface_protocol);
      out.push_back(0);  // padding
    }
  }
}

void append_import_reply(ByteVector& out, std::uint32_t status, const ExportedDevice* device) {
  append_op_header(out, kOpRepImport, status);
  if (status == 0 && device != nullptr) append_device_record(out, *device);
}

std::optional<ExportedDevice> parse_device_record(Bytes b) {
  if (b.size() < kDeviceRecordSize) return std::nullopt;
  ExportedDevice d;
  d.path = get_text(b, 0, kPathSize);
  d.busid = get_text(b, kPathSize, kBusIdSize);
  std::size_t at = kPathSize + kBusIdSize;
  d.busnum = get32(b, at);
  d.devnum = get32(b, at + 4);
  d.speed = get32(b, at + 8);
  d.vendor_id = get16(b, at + 12);
  d.product_id = get16(b, at + 14);
  d.bcd_device = get16(b, at + 16);
  at += 18;
  d.device_class = b[at];
  d.device_subclass = b[at + 1];
  d.device_protocol = b[at + 2];
  d.configuration_value = b[at + 3];
  d.num_configurations = b[at + 4];
  d.num_interfaces = b[at + 5];
  return d;
}

Decoded decode_command(Bytes stream, std::size_t max_transfer_bytes) {
  Decoded r;
  if (stream.size() < kHeaderSize) return r;  // need_more
  Command& c = r.command;
  c.command = get32(stream, 0);
  c.seqnum = get32(stream, 4);
  c.devid = get32(stream, 8);
  c.direction = get32(stream, 12);
  c.ep = get32(stream, 16);
  const auto bad = [&r](std::string why) {
    r.status = DecodeStatus::bad;
    r.error = std::move(why);
    return r;
  };
  if (c.direction != kDirectionOut && c.direction != kDirectionIn)
    return bad("direction " + std::to_string(c.direction) + " is neither 0 (OUT) nor 1 (IN)");
  if (c.ep > 15) return bad("endpoint number " + std::to_string(c.ep) + " is above 15");
  if (c.command == kCmdUnlink) {
    c.unlink_seqnum = get32(stream, 20);
    r.status = DecodeStatus::ok;
    r.consumed = kHeaderSize;
    return r;
  }
  if (c.command != kCmdSubmit) return bad("unknown command " + std::to_string(c.command));
  Submit& s = c.submit;
  s.transfer_flags = get32(stream, 20);
  s.transfer_buffer_length = get32(stream, 24);
  s.start_frame = static_cast<std::int32_t>(get32(stream, 28));
  s.number_of_packets = static_cast<std::int32_t>(get32(stream, 32));
  s.interval = get32(stream, 36);
  s.setup.request_type = stream[40];
  s.setup.request = stream[41];
  s.setup.value = get16le(stream, 42);
  s.setup.index = get16le(stream, 44);
  s.setup.length = get16le(stream, 46);
  if (s.number_of_packets > 0)
    return bad("isochronous URB (" + std::to_string(s.number_of_packets) + " packets): no such endpoint here");
  // transfer_buffer_length is a signed int in the kernel's struct; anything above the limit
  // (including a "negative" one) is refused before anything is sized from it.
  if (s.transfer_buffer_length > max_transfer_bytes)
    return bad("transfer_buffer_length " + std::to_string(s.transfer_buffer_length) + " is above the limit of " +
               std::to_string(max_transfer_bytes) + " bytes");
  std::uint64_t total = kHeaderSize;
  if (c.direction == kDirectionOut) total += s.transfer_buffer_length;
  if (stream.size() < total) return r;  // need_more
  if (c.direction == kDirectionOut) c.out_data = stream.subspan(kHeaderSize, s.transfer_buffer_length);
  r.status = DecodeStatus::ok;
  r.consumed = static_cast<std::size_t>(total);
  return r;
}

void append_cmd_submit(ByteVector& out, std::uint32_t seqnum, std::uint32_t devid, std::uint32_t direction,
                       std::uint32_t ep, const Submit& s, Bytes out_data) {
  append_basic(out, kCmdSubmit, seqnum, devid, direction, ep);
  put32(out, s.transfer_flags);
  put32(out, s.transfer_buffer_length);
  put_i32(out, s.start_frame);
  put_i32(out, s.number_of_packets);
  put32(out, s.interval);
  out.push_back(s.setup.request_type);  // the SETUP packet stays little-endian (USB 2.0 §9.3)
  out.push_back(s.setup.request);
  out.push_back(static_cast<std::uint8_t>(s.setup.value));
  out.push_back(static_cast<std::uint8_t>(s.setup.value >> 8));
  out.push_back(static_cast<std::uint8_t>(s.setup.index));
  out.push_back(static_cast<std::uint8_t>(s.setup.index >> 8));
  out.push_back(static_cast<std::uint8_t>(s.setup.length));
  out.push_back(static_cast<std::uint8_t>(s.setup.length >> 8));
  if (direction == kDirectionOut) out.insert(out.end(), out_data.begin(), out_data.end());
}

void append_cmd_unlink(ByteVector& out, std::uint32_t seqnum, std::uint32_t devid, std::uint32_t unlink_seqnum) {
  append_basic(out, kCmdUnlink, seqnum, devid, kDirectionOut, 0);
  put32(out, unlink_seqnum);
  put_zeros(out, 24);
}

void append_ret_submit(ByteVector& out, std::uint32_t seqnum, std::int32_t status, std::uint32_t actual_length,
                       Bytes in_data) {
  // devid, direction and ep are 0 in replies (usbip_protocol.rst); the client matches by seqnum.
  append_basic(out, kRetSubmit, seqnum, 0, 0, 0);
  put_i32(out, status);
  put32(out, actual_length);
  put_i32(out, 0);  // start_frame
  put_i32(out, 0);  // number_of_packets: not isochronous
  put_i32(out, 0);  // error_count
  put_zeros(out, 8);
  out.insert(out.end(), in_data.begin(), in_data.end());
}

void append_ret_unlink(ByteVector& out, std::uint32_t seqnum, std::int32_t status) {
  append_basic(out, kRetUnlink, seqnum, 0, 0, 0);
  put_i32(out, status);
  put_zeros(out, 24);
}

}  // namespace wwan::sim::usbip
