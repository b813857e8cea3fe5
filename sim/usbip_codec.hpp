// The USB/IP wire protocol, both ends: the server side (an emulated modem exported to a Linux
// kernel's vhci-hcd, sim/usbip_server.hpp) and the client side's import handshake (the rig's own
// attach helper in the guest, tests/vm/vm_helper.cpp).
//
// Source: Linux Documentation/usb/usbip_protocol.rst and drivers/usb/usbip/usbip_common.h
// (struct usbip_header). Everything is big-endian ("network byte order"), unlike USB itself:
// the 8-byte SETUP packet inside CMD_SUBMIT keeps USB's little-endian layout.
//
//   Operations (one TCP connection each; IMPORT keeps it for the URB traffic that follows):
//     OP_REQ_DEVLIST  0x8005  version(2) code(2) status(4)
//     OP_REP_DEVLIST  0x0005  version code status(0) nDevices(4), per device: the 312-byte device
//                             record + 4 bytes per interface (class, subclass, protocol, padding)
//     OP_REQ_IMPORT   0x8003  version code status busid[32]
//     OP_REP_IMPORT   0x0003  version code status, and when status == 0 the 312-byte device record
//   Device record: path[256] busid[32] busnum(4) devnum(4) speed(4) idVendor(2) idProduct(2)
//                  bcdDevice(2) bDeviceClass bDeviceSubClass bDeviceProtocol bConfigurationValue
//                  bNumConfigurations bNumInterfaces
//   URB traffic, 48-byte headers: command(4) seqnum(4) devid(4) direction(4) ep(4) + 28 bytes:
//     USBIP_CMD_SUBMIT  1  transfer_flags(4) transfer_buffer_length(4) start_frame(4)
//                          number_of_packets(4) interval(4) setup[8]; then the OUT data
//     USBIP_RET_SUBMIT  3  status(4) actual_length(4) start_frame(4) number_of_packets(4)
//                          error_count(4) padding[8]; then the IN data (actual_length bytes)
//     USBIP_CMD_UNLINK  2  unlink_seqnum(4) padding[24]
//     USBIP_RET_UNLINK  4  status(4) padding[24]
//   status values are negative Linux errno numbers (vhci-hcd copies them into urb->status).
//
// Pure: spans in, structs out; the server decodes untrusted bytes from a (guest) kernel, so every
// length is checked before use and a transfer larger than the caller's limit is an error, never an
// allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sim/device_model.hpp"

namespace wwan::sim::usbip {

using Bytes = std::span<const std::uint8_t>;
using ByteVector = std::vector<std::uint8_t>;

inline constexpr std::uint16_t kVersion = 0x0111;  // USB/IP 1.1.1, what Linux's usbip speaks
inline constexpr std::uint16_t kOpReqDevlist = 0x8005;
inline constexpr std::uint16_t kOpRepDevlist = 0x0005;
inline constexpr std::uint16_t kOpReqImport = 0x8003;
inline constexpr std::uint16_t kOpRepImport = 0x0003;
inline constexpr std::uint32_t kCmdSubmit = 1;
inline constexpr std::uint32_t kCmdUnlink = 2;
inline constexpr std::uint32_t kRetSubmit = 3;
inline constexpr std::uint32_t kRetUnlink = 4;
inline constexpr std::uint32_t kDirectionOut = 0;
inline constexpr std::uint32_t kDirectionIn = 1;

inline constexpr std::size_t kOpHeaderSize = 8;
inline constexpr std::size_t kBusIdSize = 32;
inline constexpr std::size_t kPathSize = 256;
inline constexpr std::size_t kDeviceRecordSize = 312;  // path + busid + 3*4 + 3*2 + 6*1
inline constexpr std::size_t kInterfaceRecordSize = 4;
inline constexpr std::size_t kHeaderSize = 48;

// enum usb_device_speed (include/uapi/linux/usb/ch9.h), the "speed" of the device record and of
// vhci-hcd's sysfs attach.
inline constexpr std::uint32_t kSpeedLow = 1, kSpeedFull = 2, kSpeedHigh = 3, kSpeedSuper = 5;

// Linux errno values, as the protocol carries them (asm-generic/errno-base.h, errno.h): written out
// so the wire does not depend on the build host's <cerrno>.
inline constexpr std::int32_t kErrnoNoDevice = -19;      // -ENODEV
inline constexpr std::int32_t kErrnoInvalid = -22;       // -EINVAL
inline constexpr std::int32_t kErrnoPipe = -32;          // -EPIPE: the endpoint STALLed
inline constexpr std::int32_t kErrnoConnReset = -104;    // -ECONNRESET: the URB was unlinked
inline constexpr std::int32_t kErrnoShutdown = -108;     // -ESHUTDOWN: the device is gone
inline constexpr std::int32_t kErrnoTimedOut = -110;     // -ETIMEDOUT

struct OpHeader {
  std::uint16_t version = kVersion;
  std::uint16_t code = 0;
  std::uint32_t status = 0;
};

struct InterfaceClass {
  std::uint8_t interface_class = 0, interface_subclass = 0, interface_protocol = 0;
};

// The device record of OP_REP_DEVLIST / OP_REP_IMPORT (plus, for DEVLIST, its interfaces).
struct ExportedDevice {
  std::string path;   // the sysfs path on the server, for humans (at most 255 bytes on the wire)
  std::string busid;  // "1-1": what OP_REQ_IMPORT names (at most 31 bytes)
  std::uint32_t busnum = 0, devnum = 0, speed = kSpeedHigh;
  std::uint16_t vendor_id = 0, product_id = 0, bcd_device = 0;
  std::uint8_t device_class = 0, device_subclass = 0, device_protocol = 0;
  std::uint8_t configuration_value = 0, num_configurations = 0, num_interfaces = 0;
  std::vector<InterfaceClass> interfaces;  // alternate setting 0 of each interface, in order
};

// The record for an emulated device: ids and classes from its descriptors (the device descriptor
// and the configuration whose bConfigurationValue is identity.active_configuration), speed from
// speed_mbps. nullopt when the descriptors are too short to say.
std::optional<ExportedDevice> exported_device(const DeviceIdentity& identity, std::string_view busid,
                                              std::uint32_t busnum, std::uint32_t devnum);

// devid of the URB headers: busnum << 16 | devnum (what Linux's stub uses and vhci-hcd echoes).
constexpr std::uint32_t devid(std::uint32_t busnum, std::uint32_t devnum) { return busnum << 16 | (devnum & 0xffff); }

// ---- operations ------------------------------------------------------------------------------------

// nullopt when fewer than kOpHeaderSize bytes.
std::optional<OpHeader> parse_op_header(Bytes bytes);
// The busid of an OP_REQ_IMPORT body (the 32 bytes after the header), up to its first NUL.
// nullopt when shorter than kBusIdSize or not NUL-terminated within it.
std::optional<std::string> parse_busid(Bytes body);

void append_op_header(ByteVector& out, std::uint16_t code, std::uint32_t status);
void append_devlist_request(ByteVector& out);
void append_import_request(ByteVector& out, std::string_view busid);
void append_devlist_reply(ByteVector& out, std::span<const ExportedDevice> devices);
// status != 0 (the busid is not exported, the device is busy): the header alone.
void append_import_reply(ByteVector& out, std::uint32_t status, const ExportedDevice* device);

// The device record at the front of `bytes` (kDeviceRecordSize bytes). nullopt when shorter.
std::optional<ExportedDevice> parse_device_record(Bytes bytes);

// ---- URB traffic -----------------------------------------------------------------------------------

struct Submit {
  std::uint32_t transfer_flags = 0;          // URB_* flags of the client's URB (informational here)
  std::uint32_t transfer_buffer_length = 0;  // OUT: the data that follows; IN: room for the reply
  std::int32_t start_frame = 0;
  std::int32_t number_of_packets = 0;        // 0 (or -1 from old clients) unless isochronous
  std::uint32_t interval = 0;
  SetupPacket setup;                         // endpoint 0 only
};

struct Command {
  std::uint32_t command = 0;  // kCmdSubmit or kCmdUnlink
  std::uint32_t seqnum = 0;
  std::uint32_t devid = 0;
  std::uint32_t direction = kDirectionOut;
  std::uint32_t ep = 0;       // endpoint number 0..15
  Submit submit;              // kCmdSubmit
  std::uint32_t unlink_seqnum = 0;  // kCmdUnlink
  Bytes out_data;             // kCmdSubmit, direction OUT: the transfer's data (a view into the stream)

  // The USB endpoint address: the number with bit 7 set for IN.
  std::uint8_t endpoint_address() const {
    return static_cast<std::uint8_t>((ep & 0x0f) | (direction == kDirectionIn ? 0x80u : 0u));
  }
};

enum class DecodeStatus : std::uint8_t { need_more, ok, bad };

struct Decoded {
  DecodeStatus status = DecodeStatus::need_more;
  Command command;        // valid when ok
  std::size_t consumed = 0;  // bytes of the stream the command took (ok)
  std::string error;      // bad: why, one line
};

// The command at the front of `stream` (a client's bytes as they arrived). need_more until the
// header and any OUT data are there; bad for an unknown command code, a direction other than 0/1,
// an endpoint above 15, isochronous packets (no emulated modem has an isochronous endpoint), or a
// transfer_buffer_length above max_transfer_bytes — the connection cannot be resynchronised after
// any of these, so the caller closes it.
Decoded decode_command(Bytes stream, std::size_t max_transfer_bytes);

// The client side's encoders (the server never sends these; tests and clients do).
void append_cmd_submit(ByteVector& out, std::uint32_t seqnum, std::uint32_t devid, std::uint32_t direction,
                       std::uint32_t ep, const Submit& submit, Bytes out_data);
void append_cmd_unlink(ByteVector& out, std::uint32_t seqnum, std::uint32_t devid, std::uint32_t unlink_seqnum);

// RET_SUBMIT: for an IN transfer `in_data` is what the device sent (actual_length = its size); for
// OUT, in_data is empty and actual_length the bytes the device took.
void append_ret_submit(ByteVector& out, std::uint32_t seqnum, std::int32_t status, std::uint32_t actual_length,
                       Bytes in_data);
void append_ret_unlink(ByteVector& out, std::uint32_t seqnum, std::int32_t status);

}  // namespace wwan::sim::usbip
