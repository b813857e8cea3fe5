// `--capture FILE`: the USB traffic of one claimed modem written as a classic pcap file of
// LINKTYPE_USB_LINUX_MMAPPED (220) records — the format `tcpdump -i usbmonN -w` writes — so that
// Wireshark / tshark open it as they open a kernel usbmon capture (docs/capture.md).
//
// Two layers:
//   - encode_pcap_file_header() / encode_usbmon_record(): pure, spans in, bytes out, so the exact
//     bytes are unit-tested against an annotated golden array;
//   - UsbmonCaptureWriter: the file, one mutex, one record-sized buffer (no queue), counters, and a
//     write error that ends the capture quietly instead of taking the driver down with it.
// usb/capturing_transport.hpp turns Transport calls into UsbmonEvents.
//
// The 64-byte record header is the kernel's `struct mon_bin_hdr` (drivers/usb/mon/mon_bin.c,
// documented as `struct usbmon_packet` in Documentation/usb/usbmon.rst, "Raw binary format and
// API"); libpcap copies it unchanged from the usbmon mmap ring into the file
// (pcap-usb-linux.c usb_read_linux_mmap). Offsets, all little-endian (see below):
//     0  u64 id            URB tag: the same for an URB's S and its C/E
//     8  u8  type          'S' submit, 'C' complete, 'E' submission error
//     9  u8  xfer_type     0 isochronous, 1 interrupt, 2 control, 3 bulk
//    10  u8  epnum         endpoint number | 0x80 for IN
//    11  u8  devnum        device address
//    12  u16 busnum        bus number
//    14  s8  flag_setup    0 = setup[] holds a SETUP packet; '-' = none
//    15  s8  flag_data     0 = data follows (possibly 0 bytes); '<' / '>' / 'E' = no data, why
//    16  s64 ts_sec        CLOCK_REALTIME seconds
//    24  s32 ts_usec       and microseconds
//    28  s32 status        -EINPROGRESS on S; 0 or a negative errno on C/E
//    32  u32 len_urb       S: transfer_buffer_length; C: actual_length
//    36  u32 len_cap       data bytes the event carries (the kernel's copy, before snaplen)
//    40  u8  setup[8]      control S only (bmRequestType, bRequest, wValue, wIndex, wLength)
//    48  s32 interval      interrupt / isochronous only
//    52  s32 start_frame   isochronous only
//    56  u32 xfer_flags    urb->transfer_flags (URB_ZERO_PACKET 0x40, URB_DIR_IN 0x200, ...)
//    60  u32 ndesc         isochronous descriptors that follow (always 0 here: no iso)
//
// Byte order: usbmon hands out the header in host order and libpcap writes it unchanged with a
// host-order pcap file header; readers take the header's byte order from the pcap magic
// (Wireshark: wiretap/pcap-common.c swaps the USB pseudo-header when the file's order is not the
// reader's). Every integer here — pcap file header, record header, usbmon header — is written
// little-endian, whatever the host, so the file is consistent and identical on every machine.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "usb/transport.hpp"

namespace wwan::usb {

// pcap file format (draft-ietf-opsawg-pcap §4): the microsecond-timestamp magic, version 2.4.
inline constexpr std::uint32_t kPcapMagicMicroseconds = 0xa1b2c3d4;
inline constexpr std::uint16_t kPcapVersionMajor = 2, kPcapVersionMinor = 4;
// https://www.tcpdump.org/linktypes.html: "USB packets, beginning with a Linux USB header, as
// specified by the struct usbmon_packet in Documentation/usb/usbmon.txt" (the 64-byte form).
inline constexpr std::uint32_t kLinktypeUsbLinuxMmapped = 220;

inline constexpr std::size_t kPcapFileHeaderBytes = 24;
inline constexpr std::size_t kPcapRecordHeaderBytes = 16;
inline constexpr std::size_t kUsbmonHeaderBytes = 64;  // PKT_SIZE in mon_bin.c
// Room for the usbmon header and a 65536-byte NTB (NCM's largest dwNtbInMaxSize / dwNtbOutMaxSize
// the host accepts, datapath/ntb_build.hpp kNtbOutMaxSizeLimit): nothing the driver moves is cut.
inline constexpr std::size_t kDefaultCaptureSnaplenBytes = kUsbmonHeaderBytes + 65536;
// Wireshark's WTAP_MAX_PACKET_SIZE_STANDARD: a larger snaplen makes older readers refuse the file.
inline constexpr std::size_t kMaxCaptureSnaplenBytes = 262144;

// include/linux/usb.h urb->transfer_flags that a reader can make sense of here.
inline constexpr std::uint32_t kUrbZeroPacket = 0x0040;  // URB_ZERO_PACKET: bulk OUT ends with a ZLP
inline constexpr std::uint32_t kUrbDirIn = 0x0200;       // URB_DIR_IN: set by usb_submit_urb() for IN

enum class UsbmonEventType : std::uint8_t {
  submit = 'S',    // the URB was handed to the host controller
  complete = 'C',  // it ended (successfully or not): status says how
  error = 'E',     // the submission itself failed (hcd.c usbmon_urb_submit_error): no C follows
};

// xfer_to_pipe[] in mon_bin.c: the kernel's PIPE_* numbering, not the descriptor's bmAttributes.
enum class UsbmonTransferType : std::uint8_t { isochronous = 0, interrupt = 1, control = 2, bulk = 3 };

// One event as the kernel's mon_bin_event() sees it. The encoder applies the kernel's rules for
// what each event carries (mon_bin.c mon_bin_event / mon_bin_error):
//   S, OUT: the OUT data (len_cap = min(data, urb_length_bytes)), flag_data 0;
//   S, IN:  no data, flag_data '<' (it has not arrived yet);
//   C, IN:  the data that arrived, flag_data 0;
//   C, OUT: no data, flag_data '>' (it was already shown with the S);
//   E:      nothing but the status: len_urb 0, len_cap 0, flag_data 'E', no setup, no flags.
// setup is used for control S only (flag_setup 0); every other event gets flag_setup '-'.
struct UsbmonEvent {
  std::uint64_t urb_id = 0;
  UsbmonEventType type = UsbmonEventType::submit;
  UsbmonTransferType transfer_type = UsbmonTransferType::bulk;
  std::uint8_t endpoint = 0;        // bEndpointAddress: number | 0x80 for IN (control: the data stage's direction)
  std::uint8_t device_address = 0;  // devnum
  std::uint16_t bus_number = 0;     // busnum
  std::int64_t timestamp_us = 0;    // microseconds since the Unix epoch (CLOCK_REALTIME, as usbmon)
  std::int32_t status = 0;          // negative errno (usbmon_completion_status / usbmon_submit_error_status)
  std::uint32_t urb_length_bytes = 0;  // S: bytes requested / sent; C: actual bytes
  std::array<std::uint8_t, 8> setup{};  // the SETUP packet (control S)
  std::int32_t interval = 0;        // interrupt endpoints: the polling interval, as urb->interval
  std::uint32_t transfer_flags = 0; // kUrbDirIn, kUrbZeroPacket
  std::span<const std::uint8_t> data;  // the transfer's bytes; the encoder takes what the rules allow

  bool is_in() const { return (endpoint & 0x80) != 0; }
};

// The status usbmon shows for how a transfer ended (a 'C' record). Linux errnos, the values
// host controller drivers complete URBs with (Documentation/driver-api/usb/error-codes.rst):
// completed 0; stall -EPIPE; cancelled -ECONNRESET (usb_unlink_urb, which usbfs's DISCARDURB and
// hence libusb_cancel_transfer use); timeout -ETIMEDOUT (libusb implements a timeout as a cancel,
// which the kernel shows as -ECONNRESET: -ETIMEDOUT says what the driver saw); no_device
// -ESHUTDOWN (the device or controller went away); overflow -EOVERFLOW (babble); error -EPROTO.
std::int32_t usbmon_completion_status(TransferStatus status);
// The status of an 'E' record for a submit() that was refused, from usb_submit_urb's own list
// (drivers/usb/core/urb.c): no_device -ENODEV; error -EINVAL (the transport says no more, and a
// bad argument is the common refusal); stall -EPIPE; anything else as usbmon_completion_status.
std::int32_t usbmon_submit_error_status(TransferStatus status);
inline constexpr std::int32_t kUsbmonStatusInProgress = -115;  // -EINPROGRESS: every 'S'

// The 24-byte pcap file header: magic, 2.4, thiszone 0, sigfigs 0, snaplen, LINKTYPE 220.
std::array<std::uint8_t, kPcapFileHeaderBytes> encode_pcap_file_header(std::uint32_t snaplen_bytes);

// Data bytes the event carries by the rules above (its len_cap).
std::size_t usbmon_data_bytes(const UsbmonEvent& event);
// Bytes of the whole record: pcap record header + usbmon header + the data, cut to the snaplen.
// snaplen_bytes is clamped to [kUsbmonHeaderBytes, kMaxCaptureSnaplenBytes].
std::size_t usbmon_record_bytes(const UsbmonEvent& event, std::size_t snaplen_bytes);

// Writes one pcap record — record header, usbmon header, data — into `out` and returns its size,
// or 0 (and writes nothing) if out.size() < usbmon_record_bytes(). As libpcap's mmap reader does,
// a record longer than the snaplen keeps len_cap and the record's orig_len at the full size and
// stores only snaplen bytes (incl_len), so a reader shows the truncation instead of a short
// transfer ("[Packet size limited during capture]").
std::size_t encode_usbmon_record(const UsbmonEvent& event, std::size_t snaplen_bytes, std::span<std::uint8_t> out);

// The capture file. Thread-safe: every record() takes one mutex, stamps the event with the time
// and writes the whole record with write(2) before returning, so records reach the file in the
// order they were stamped, a reader can follow the file while it grows, and a crash loses nothing
// already recorded. Memory is one record-sized buffer, allocated by open(): no queue, whatever
// the traffic. The cost (a write per record) is the point of a debugging mode: it is not on
// unless --capture is given.
//
// The first write error (ENOSPC, EPIPE from a reader that went away, EIO...) stops the capture:
// error() says why once, later events count as dropped, the file is cut back to the last whole
// record where that is possible (a regular file), and nothing is thrown. SIGPIPE is suppressed
// for that write when the file is a pipe (`--capture >(wireshark -k -i -)`), so a closed reader
// never kills the driver.
class UsbmonCaptureWriter {
 public:
  struct Counters {
    std::uint64_t records = 0;  // records written whole
    std::uint64_t bytes = 0;    // bytes written, the file header included
    std::uint64_t dropped = 0;  // events not written: after a write error or close()
  };

  // Creates (or truncates) `path` with mode 0600 — a capture holds the PIN, APN credentials and
  // the user's traffic — and writes the file header. nullptr + a one-line `error` when the path
  // cannot be opened or written, or snaplen_bytes is outside
  // [kUsbmonHeaderBytes, kMaxCaptureSnaplenBytes].
  static std::unique_ptr<UsbmonCaptureWriter> open(const std::string& path, std::string& error,
                                                   std::size_t snaplen_bytes = kDefaultCaptureSnaplenBytes);
  ~UsbmonCaptureWriter();
  UsbmonCaptureWriter(const UsbmonCaptureWriter&) = delete;
  UsbmonCaptureWriter& operator=(const UsbmonCaptureWriter&) = delete;

  // Stamps `event` with the current CLOCK_REALTIME time (its timestamp_us is replaced) and
  // appends it. Any thread.
  void record(UsbmonEvent event);
  // Appends `event` with the timestamp it carries (tests; a replay).
  void record_stamped(const UsbmonEvent& event);
  // Closes the file; later events are dropped. The destructor does it too.
  void close();

  Counters counters() const;
  bool failed() const { return failed_.load(std::memory_order_acquire); }
  std::string error() const;  // empty unless failed()
  std::size_t snaplen_bytes() const { return snaplen_bytes_; }
  const std::string& path() const { return path_; }

 private:
  UsbmonCaptureWriter(int fd, std::string path, std::size_t snaplen_bytes, bool regular_file);
  void write_locked(const UsbmonEvent& event);
  int write_all_locked(std::span<const std::uint8_t> bytes);  // 0 or the errno
  void fail_locked(std::string why);

  mutable std::mutex mu_;
  int fd_ = -1;  // -1 once closed or failed
  const std::string path_;
  const std::size_t snaplen_bytes_;
  const bool regular_file_;      // ftruncate() can repair a partial record; no SIGPIPE possible
  std::vector<std::uint8_t> buffer_;  // one record, kPcapRecordHeaderBytes + snaplen_bytes_
  std::uint64_t good_bytes_ = 0;      // file size up to the last whole record
  std::atomic<std::uint64_t> records_{0}, bytes_{0}, dropped_{0};
  std::atomic<bool> failed_{false};
  std::string error_;
};

}  // namespace wwan::usb
