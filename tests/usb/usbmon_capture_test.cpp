// --capture: the usbmon pcap encoder (golden bytes, field by field), the file writer (whole
// records from many threads, a write error that stops the capture without killing the process),
// the CapturingTransport decorator (what each Transport call becomes; the caller's callback and
// user restored, also for a resubmit from inside the callback), and end to end: the emulated
// E3372 negotiated, dialled by the HuaweiSession through the SessionRunner and moving NTBs both
// ways, all through the decorator — then the file is read back twice, by the test's own pcap
// reader and by tshark (an independent dissector), which must find no malformed frame, every
// transfer type, and every completion paired with its submission.
//
// No sleeps: every wait pumps the transport until a condition holds, with a bound against a hang.
#include "usb/capturing_transport.hpp"
#include "usb/usbmon_capture.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "control/huawei_session.hpp"
#include "control/ncm_negotiation.hpp"
#include "control/quirks.hpp"
#include "control/session_runner.hpp"
#include "datapath/ethernet.hpp"
#include "datapath/ntb_build.hpp"
#include "sim/inprocess_transport.hpp"
#include "sim/modem.hpp"
#include "tests/support/loopback_device.hpp"
#include "usb/descriptors.hpp"
#include "usb/network_function.hpp"
#include "usb/transfer_pipes.hpp"

namespace wwan::usb {
namespace {

using namespace std::chrono_literals;
using Vec = std::vector<std::uint8_t>;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

Vec encode(const UsbmonEvent& e, std::size_t snaplen_bytes = kDefaultCaptureSnaplenBytes) {
  Vec out(usbmon_record_bytes(e, snaplen_bytes));
  const std::size_t n = encode_usbmon_record(e, snaplen_bytes, out);
  EXPECT_EQ(n, out.size());
  return out;
}

// ---- the encoder: golden bytes ---------------------------------------------------------------------------

TEST(UsbmonEncoder, PcapFileHeaderIsLittleEndianLinktype220) {
  const std::array<std::uint8_t, kPcapFileHeaderBytes> expected = {
      0xd4, 0xc3, 0xb2, 0xa1,  // magic 0xa1b2c3d4: microsecond timestamps, little-endian file
      0x02, 0x00,              // version_major 2
      0x04, 0x00,              // version_minor 4
      0x00, 0x00, 0x00, 0x00,  // thiszone 0 (UTC)
      0x00, 0x00, 0x00, 0x00,  // sigfigs 0
      0x40, 0x00, 0x01, 0x00,  // snaplen 65600 = 64-byte usbmon header + 65536 data bytes
      0xdc, 0x00, 0x00, 0x00,  // network 220 LINKTYPE_USB_LINUX_MMAPPED
  };
  EXPECT_THAT(encode_pcap_file_header(kDefaultCaptureSnaplenBytes), ElementsAreArray(expected));
}

// SEND_ENCAPSULATED_COMMAND "AT\r" to interface 0 (CDC 1.2 §6.2.1), as submitted.
UsbmonEvent at_command_submit() {
  static const std::array<std::uint8_t, 3> kAt = {'A', 'T', '\r'};
  UsbmonEvent e;
  e.urb_id = 0xffff8a01c2d3e400;
  e.type = UsbmonEventType::submit;
  e.transfer_type = UsbmonTransferType::control;
  e.endpoint = 0x00;
  e.device_address = 5;
  e.bus_number = 3;
  e.timestamp_us = 1'700'000'000'123'456;
  e.status = kUsbmonStatusInProgress;
  e.urb_length_bytes = 3;
  e.setup = {0x21, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00};
  e.data = kAt;
  return e;
}

TEST(UsbmonEncoder, ControlSubmitGolden) {
  const Vec expected = {
      // pcap record header
      0x00, 0xf1, 0x53, 0x65,  // ts_sec 1700000000
      0x40, 0xe2, 0x01, 0x00,  // ts_usec 123456
      0x43, 0x00, 0x00, 0x00,  // incl_len 67 = 64 + 3 data bytes
      0x43, 0x00, 0x00, 0x00,  // orig_len 67
      // struct mon_bin_hdr
      0x00, 0xe4, 0xd3, 0xc2, 0x01, 0x8a, 0xff, 0xff,  //  0 id 0xffff8a01c2d3e400
      0x53,                                            //  8 type 'S'
      0x02,                                            //  9 xfer_type 2 control
      0x00,                                            // 10 epnum 0, OUT
      0x05,                                            // 11 devnum 5
      0x03, 0x00,                                      // 12 busnum 3
      0x00,                                            // 14 flag_setup 0: setup[] is valid
      0x00,                                            // 15 flag_data 0: data follows
      0x00, 0xf1, 0x53, 0x65, 0x00, 0x00, 0x00, 0x00,  // 16 ts_sec 1700000000
      0x40, 0xe2, 0x01, 0x00,                          // 24 ts_usec 123456
      0x8d, 0xff, 0xff, 0xff,                          // 28 status -115 -EINPROGRESS
      0x03, 0x00, 0x00, 0x00,                          // 32 len_urb 3 (wLength)
      0x03, 0x00, 0x00, 0x00,                          // 36 len_cap 3
      0x21,                                            // 40 setup bmRequestType: class, interface, OUT
      0x00,                                            // 41 setup bRequest SEND_ENCAPSULATED_COMMAND
      0x00, 0x00,                                      // 42 setup wValue 0
      0x00, 0x00,                                      // 44 setup wIndex 0 (interface)
      0x03, 0x00,                                      // 46 setup wLength 3
      0x00, 0x00, 0x00, 0x00,                          // 48 interval 0 (not interrupt)
      0x00, 0x00, 0x00, 0x00,                          // 52 start_frame 0 (not isochronous)
      0x00, 0x00, 0x00, 0x00,                          // 56 xfer_flags 0 (OUT)
      0x00, 0x00, 0x00, 0x00,                          // 60 ndesc 0
      // data
      0x41, 0x54, 0x0d,  // "AT\r"
  };
  EXPECT_THAT(encode(at_command_submit()), ElementsAreArray(expected));
}

// The first 8 bytes of an NTB16 (NCM 1.0 §3.2.1) arriving on bulk IN 0x82.
UsbmonEvent bulk_in_complete() {
  static const std::array<std::uint8_t, 8> kNth = {'N', 'C', 'M', 'H', 0x0c, 0x00, 0x07, 0x00};
  UsbmonEvent e;
  e.urb_id = 0x00005617a2c3e4f0;
  e.type = UsbmonEventType::complete;
  e.transfer_type = UsbmonTransferType::bulk;
  e.endpoint = 0x82;
  e.device_address = 5;
  e.bus_number = 3;
  e.timestamp_us = 1'700'000'001'000'001;
  e.status = 0;
  e.urb_length_bytes = 8;
  e.transfer_flags = kUrbDirIn;
  e.data = kNth;
  return e;
}

TEST(UsbmonEncoder, BulkInCompleteGolden) {
  const Vec expected = {
      // pcap record header
      0x01, 0xf1, 0x53, 0x65,  // ts_sec 1700000001
      0x01, 0x00, 0x00, 0x00,  // ts_usec 1
      0x48, 0x00, 0x00, 0x00,  // incl_len 72 = 64 + 8
      0x48, 0x00, 0x00, 0x00,  // orig_len 72
      // struct mon_bin_hdr
      0xf0, 0xe4, 0xc3, 0xa2, 0x17, 0x56, 0x00, 0x00,  //  0 id 0x00005617a2c3e4f0
      0x43,                                            //  8 type 'C'
      0x03,                                            //  9 xfer_type 3 bulk
      0x82,                                            // 10 epnum 2 | 0x80 IN
      0x05,                                            // 11 devnum 5
      0x03, 0x00,                                      // 12 busnum 3
      0x2d,                                            // 14 flag_setup '-': no setup
      0x00,                                            // 15 flag_data 0: data follows
      0x01, 0xf1, 0x53, 0x65, 0x00, 0x00, 0x00, 0x00,  // 16 ts_sec 1700000001
      0x01, 0x00, 0x00, 0x00,                          // 24 ts_usec 1
      0x00, 0x00, 0x00, 0x00,                          // 28 status 0
      0x08, 0x00, 0x00, 0x00,                          // 32 len_urb 8 (actual_length)
      0x08, 0x00, 0x00, 0x00,                          // 36 len_cap 8
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // 40 setup: none
      0x00, 0x00, 0x00, 0x00,                          // 48 interval 0 (bulk)
      0x00, 0x00, 0x00, 0x00,                          // 52 start_frame 0
      0x00, 0x02, 0x00, 0x00,                          // 56 xfer_flags 0x200 URB_DIR_IN
      0x00, 0x00, 0x00, 0x00,                          // 60 ndesc 0
      // data
      0x4e, 0x43, 0x4d, 0x48, 0x0c, 0x00, 0x07, 0x00,  // "NCMH", wHeaderLength 12, wSequence 7
  };
  EXPECT_THAT(encode(bulk_in_complete()), ElementsAreArray(expected));
}

// struct mon_bin_hdr fields of an encoded record (offsets relative to the record's start).
std::uint32_t le32(const Vec& v, std::size_t at) {
  return std::uint32_t{v.at(at)} | std::uint32_t{v.at(at + 1)} << 8 | std::uint32_t{v.at(at + 2)} << 16 |
         std::uint32_t{v.at(at + 3)} << 24;
}
constexpr std::size_t kHdr = kPcapRecordHeaderBytes;  // where the usbmon header starts

TEST(UsbmonEncoder, SnaplenCutsTheStoredBytesButNotTheLengths) {
  // As libpcap's mmap reader: incl_len is cut, orig_len and len_cap say what there was, so a
  // reader reports the truncation rather than a short transfer.
  const Vec r = encode(bulk_in_complete(), kUsbmonHeaderBytes + 4);
  ASSERT_EQ(r.size(), kPcapRecordHeaderBytes + kUsbmonHeaderBytes + 4);
  EXPECT_EQ(le32(r, 8), 68u);           // incl_len
  EXPECT_EQ(le32(r, 12), 72u);          // orig_len
  EXPECT_EQ(le32(r, kHdr + 32), 8u);    // len_urb
  EXPECT_EQ(le32(r, kHdr + 36), 8u);    // len_cap
  EXPECT_THAT(Vec(r.end() - 4, r.end()), ElementsAreArray({'N', 'C', 'M', 'H'}));
  // A snaplen below the header is the header: no data at all, still a whole record.
  EXPECT_EQ(encode(bulk_in_complete(), 1).size(), kPcapRecordHeaderBytes + kUsbmonHeaderBytes);
}

TEST(UsbmonEncoder, EachEventCarriesWhatUsbmonWouldShow) {
  static const std::array<std::uint8_t, 4> kBytes = {1, 2, 3, 4};
  UsbmonEvent e;
  e.transfer_type = UsbmonTransferType::bulk;
  e.data = kBytes;
  e.urb_length_bytes = 2048;

  // S of an IN: nothing has arrived; flag_data '<', len_urb the length asked for.
  e.type = UsbmonEventType::submit;
  e.endpoint = 0x81;
  Vec r = encode(e);
  EXPECT_EQ(r.size(), kHdr + kUsbmonHeaderBytes);
  EXPECT_EQ(r[kHdr + 14], '-');
  EXPECT_EQ(r[kHdr + 15], '<');
  EXPECT_EQ(le32(r, kHdr + 32), 2048u);
  EXPECT_EQ(le32(r, kHdr + 36), 0u);

  // C of an OUT: the data was in the S; flag_data '>'.
  e.type = UsbmonEventType::complete;
  e.endpoint = 0x01;
  e.urb_length_bytes = 4;
  r = encode(e);
  EXPECT_EQ(r.size(), kHdr + kUsbmonHeaderBytes);
  EXPECT_EQ(r[kHdr + 15], '>');
  EXPECT_EQ(le32(r, kHdr + 32), 4u);

  // S of an OUT: the data, never more than len_urb of it.
  e.type = UsbmonEventType::submit;
  e.urb_length_bytes = 3;
  r = encode(e);
  EXPECT_EQ(le32(r, kHdr + 36), 3u);
  EXPECT_THAT(Vec(r.begin() + kHdr + kUsbmonHeaderBytes, r.end()), ElementsAreArray({1, 2, 3}));

  // E: the status and nothing else (mon_bin_error).
  e.type = UsbmonEventType::error;
  e.status = -19;
  e.transfer_flags = kUrbZeroPacket;
  r = encode(e);
  EXPECT_EQ(r.size(), kHdr + kUsbmonHeaderBytes);
  EXPECT_EQ(r[kHdr + 8], 'E');
  EXPECT_EQ(r[kHdr + 14], '-');
  EXPECT_EQ(r[kHdr + 15], 'E');
  EXPECT_EQ(le32(r, kHdr + 28), static_cast<std::uint32_t>(-19));
  EXPECT_EQ(le32(r, kHdr + 32), 0u);
  EXPECT_EQ(le32(r, kHdr + 36), 0u);
  EXPECT_EQ(le32(r, kHdr + 56), 0u);

  // Interrupt: the interval is recorded; setup only on a control S.
  e.type = UsbmonEventType::complete;
  e.transfer_type = UsbmonTransferType::interrupt;
  e.endpoint = 0x83;
  e.interval = 9;
  e.setup = {1, 2, 3, 4, 5, 6, 7, 8};
  r = encode(e);
  EXPECT_EQ(le32(r, kHdr + 48), 9u);
  EXPECT_EQ(r[kHdr + 40], 0);
}

TEST(UsbmonEncoder, RefusesAnOutputBufferTooSmallAndWritesNothing) {
  const UsbmonEvent e = at_command_submit();
  Vec out(usbmon_record_bytes(e, kDefaultCaptureSnaplenBytes) - 1, 0xee);
  EXPECT_EQ(encode_usbmon_record(e, kDefaultCaptureSnaplenBytes, out), 0u);
  EXPECT_TRUE(std::all_of(out.begin(), out.end(), [](std::uint8_t b) { return b == 0xee; }));
}

TEST(UsbmonEncoder, StatusesAreTheKernelsErrnos) {
  EXPECT_EQ(usbmon_completion_status(TransferStatus::completed), 0);
  EXPECT_EQ(usbmon_completion_status(TransferStatus::stall), -EPIPE);
  EXPECT_EQ(usbmon_completion_status(TransferStatus::cancelled), -ECONNRESET);
  EXPECT_EQ(usbmon_completion_status(TransferStatus::timeout), -ETIMEDOUT);
  EXPECT_EQ(usbmon_completion_status(TransferStatus::no_device), -ESHUTDOWN);
  EXPECT_EQ(usbmon_completion_status(TransferStatus::overflow), -EOVERFLOW);
  EXPECT_EQ(usbmon_completion_status(TransferStatus::error), -EPROTO);
  EXPECT_EQ(usbmon_submit_error_status(TransferStatus::no_device), -ENODEV);
  EXPECT_EQ(usbmon_submit_error_status(TransferStatus::error), -EINVAL);
  EXPECT_EQ(usbmon_submit_error_status(TransferStatus::stall), -EPIPE);
}

// ---- a pcap reader of the test's own, to check the files independently of the writer ---------------------

struct Record {
  std::uint32_t incl_len = 0, orig_len = 0;
  std::uint64_t id = 0;
  char type = 0;
  std::uint8_t xfer_type = 0, epnum = 0, devnum = 0;
  std::uint16_t busnum = 0;
  std::uint8_t flag_setup = 0, flag_data = 0;
  std::int32_t status = 0;
  std::uint32_t len_urb = 0, len_cap = 0;
  std::array<std::uint8_t, 8> setup{};
  Vec data;
};

struct PcapFile {
  std::string error;  // empty = the whole file parsed: header, then whole records to the end
  std::uint32_t snaplen = 0, linktype = 0;
  std::vector<Record> records;
  std::size_t bytes = 0;
};

Vec slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return Vec(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

PcapFile read_pcap(const std::string& path) {
  PcapFile p;
  const Vec b = slurp(path);
  p.bytes = b.size();
  const auto u16 = [&](std::size_t at) { return static_cast<std::uint16_t>(b[at] | b[at + 1] << 8); };
  const auto u32 = [&](std::size_t at) { return le32(b, at); };
  if (b.size() < kPcapFileHeaderBytes) return p.error = "no file header", p;
  if (u32(0) != kPcapMagicMicroseconds || u16(4) != 2 || u16(6) != 4) return p.error = "bad magic/version", p;
  p.snaplen = u32(16);
  p.linktype = u32(20);
  std::size_t at = kPcapFileHeaderBytes;
  while (at < b.size()) {
    if (b.size() - at < kPcapRecordHeaderBytes) return p.error = "cut in a record header", p;
    Record r;
    r.incl_len = u32(at + 8);
    r.orig_len = u32(at + 12);
    if (r.incl_len > p.snaplen || r.incl_len < kUsbmonHeaderBytes || r.orig_len < r.incl_len)
      return p.error = "bad lengths at byte " + std::to_string(at), p;
    at += kPcapRecordHeaderBytes;
    if (b.size() - at < r.incl_len) return p.error = "cut in a record", p;
    std::uint64_t id = 0;
    for (std::size_t i = 0; i < 8; ++i) id |= std::uint64_t{b[at + i]} << (8 * i);
    r.id = id;
    r.type = static_cast<char>(b[at + 8]);
    r.xfer_type = b[at + 9];
    r.epnum = b[at + 10];
    r.devnum = b[at + 11];
    r.busnum = u16(at + 12);
    r.flag_setup = b[at + 14];
    r.flag_data = b[at + 15];
    r.status = static_cast<std::int32_t>(u32(at + 28));
    r.len_urb = u32(at + 32);
    r.len_cap = u32(at + 36);
    std::copy_n(b.begin() + static_cast<std::ptrdiff_t>(at + 40), 8, r.setup.begin());
    if (r.orig_len != kUsbmonHeaderBytes + r.len_cap) return p.error = "orig_len != 64 + len_cap", p;
    r.data.assign(b.begin() + static_cast<std::ptrdiff_t>(at + kUsbmonHeaderBytes),
                  b.begin() + static_cast<std::ptrdiff_t>(at + r.incl_len));
    at += r.incl_len;
    p.records.push_back(std::move(r));
  }
  return p;
}

// A file name from mkstemp, removed at the end of the test.
class TempFile {
 public:
  TempFile() {
    const char* dir = std::getenv("TMPDIR");
    std::string pattern = std::string(dir != nullptr && *dir != '\0' ? dir : "/tmp") + "/wwan-dp-capture-XXXXXX";
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    const int fd = ::mkstemp(buf.data());
    if (fd >= 0) ::close(fd);
    path_ = buf.data();
  }
  ~TempFile() { ::unlink(path_.c_str()); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// ---- the writer ----------------------------------------------------------------------------------------------

TEST(UsbmonCaptureWriter, WritesTheFileHeaderThenEachRecordAsEncoded) {
  TempFile f;
  std::string error;
  auto w = UsbmonCaptureWriter::open(f.path(), error);
  ASSERT_TRUE(w) << error;
  w->record_stamped(at_command_submit());
  w->record_stamped(bulk_in_complete());
  w->close();

  const auto header = encode_pcap_file_header(kDefaultCaptureSnaplenBytes);
  Vec expected(header.begin(), header.end());
  for (const Vec& r : {encode(at_command_submit()), encode(bulk_in_complete())}) expected.insert(expected.end(), r.begin(), r.end());
  EXPECT_EQ(slurp(f.path()), expected);
  const auto c = w->counters();
  EXPECT_EQ(c.records, 2u);
  EXPECT_EQ(c.bytes, expected.size());
  EXPECT_EQ(c.dropped, 0u);
  EXPECT_FALSE(w->failed());

  w->record(at_command_submit());  // after close(): dropped, counted, nothing written
  EXPECT_EQ(w->counters().dropped, 1u);
  EXPECT_EQ(slurp(f.path()).size(), expected.size());
}

TEST(UsbmonCaptureWriter, RecordStampsTheCurrentTime) {
  TempFile f;
  std::string error;
  auto w = UsbmonCaptureWriter::open(f.path(), error);
  ASSERT_TRUE(w) << error;
  const auto before = std::chrono::system_clock::now();
  w->record(at_command_submit());
  const auto after = std::chrono::system_clock::now();
  w->close();
  const Vec b = slurp(f.path());
  ASSERT_GE(b.size(), kPcapFileHeaderBytes + 8);
  const auto stamped = std::chrono::seconds(le32(b, kPcapFileHeaderBytes)) + std::chrono::microseconds(le32(b, kPcapFileHeaderBytes + 4));
  EXPECT_GE(stamped, std::chrono::duration_cast<std::chrono::microseconds>(before.time_since_epoch()));
  EXPECT_LE(stamped, std::chrono::duration_cast<std::chrono::microseconds>(after.time_since_epoch()));
}

TEST(UsbmonCaptureWriter, OpenSaysWhyItCannot) {
  std::string error;
  EXPECT_FALSE(UsbmonCaptureWriter::open("/nonexistent-dir/x.pcap", error));
  EXPECT_THAT(error, HasSubstr("/nonexistent-dir/x.pcap"));
  EXPECT_THAT(error, HasSubstr("No such file"));
  TempFile f;
  error.clear();
  EXPECT_FALSE(UsbmonCaptureWriter::open(f.path(), error, kUsbmonHeaderBytes - 1));
  EXPECT_THAT(error, HasSubstr("snaplen"));
  EXPECT_FALSE(UsbmonCaptureWriter::open(f.path(), error, kMaxCaptureSnaplenBytes + 1));
  // The file header cannot be written: reported at open, not later.
  error.clear();
  EXPECT_FALSE(UsbmonCaptureWriter::open("/dev/full", error));
  EXPECT_THAT(error, HasSubstr("No space left"));
}

TEST(UsbmonCaptureWriter, TheFileIsPrivateToItsOwner) {
  TempFile f;
  ::unlink(f.path().c_str());
  std::string error;
  auto w = UsbmonCaptureWriter::open(f.path(), error);
  ASSERT_TRUE(w) << error;
  struct stat st {};
  ASSERT_EQ(::stat(f.path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u) << "a capture holds the PIN and the user's traffic";
}

TEST(UsbmonCaptureWriter, RecordsFromManyThreadsStayWhole) {
  TempFile f;
  std::string error;
  auto w = UsbmonCaptureWriter::open(f.path(), error);
  ASSERT_TRUE(w) << error;
  constexpr unsigned kThreads = 4, kPerThread = 400;
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < kThreads; ++t)
    threads.emplace_back([&w, t] {
      // Each thread's records differ in size and content, so an interleaved write would show.
      Vec payload(100 + 50 * t, static_cast<std::uint8_t>(t));
      for (unsigned i = 0; i < kPerThread; ++i) {
        UsbmonEvent e = bulk_in_complete();
        e.urb_id = t;
        e.urb_length_bytes = static_cast<std::uint32_t>(payload.size());
        e.data = payload;
        w->record(e);
      }
    });
  for (std::thread& t : threads) t.join();
  w->close();
  const PcapFile p = read_pcap(f.path());
  ASSERT_EQ(p.error, "");
  ASSERT_EQ(p.records.size(), kThreads * kPerThread);
  for (const Record& r : p.records) {
    ASSERT_LT(r.id, kThreads);
    ASSERT_EQ(r.data.size(), 100 + 50 * r.id);
    ASSERT_TRUE(std::all_of(r.data.begin(), r.data.end(), [&](std::uint8_t b) { return b == r.id; }));
  }
  EXPECT_EQ(w->counters().records, kThreads * kPerThread);
  EXPECT_EQ(w->counters().bytes, p.bytes);
}

TEST(UsbmonCaptureWriter, AReaderThatGoesAwayStopsTheCaptureAndDoesNotKillTheProcess) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  std::string error;
  // The writer opens the pipe by name, as `--capture >(wireshark -k -i -)` would.
  auto w = UsbmonCaptureWriter::open("/proc/self/fd/" + std::to_string(fds[1]), error);
  ASSERT_TRUE(w) << error;
  ::close(fds[1]);
  w->record_stamped(at_command_submit());  // the reader is still there
  EXPECT_EQ(w->counters().records, 1u);
  ::close(fds[0]);  // the reader goes away: the next write gets EPIPE (and, unsuppressed, SIGPIPE)
  w->record_stamped(at_command_submit());
  EXPECT_TRUE(w->failed());
  EXPECT_THAT(w->error(), HasSubstr("Broken pipe"));
  w->record_stamped(at_command_submit());
  const auto c = w->counters();
  EXPECT_EQ(c.records, 1u);
  EXPECT_EQ(c.dropped, 2u);
  sigset_t pending;
  sigemptyset(&pending);
  ASSERT_EQ(sigpending(&pending), 0);
  EXPECT_EQ(sigismember(&pending, SIGPIPE), 0) << "the SIGPIPE was swallowed, not left pending";
}

TEST(UsbmonCaptureWriter, AFullDiskLeavesAFileThatEndsWithAWholeRecord) {
  // RLIMIT_FSIZE is the portable way to make a regular file's write fail part-way (EFBIG once
  // SIGXFSZ is ignored): the second record is cut, and the writer cuts the file back before it.
  TempFile f;
  std::string error;
  auto w = UsbmonCaptureWriter::open(f.path(), error);
  ASSERT_TRUE(w) << error;
  const std::size_t first = encode(at_command_submit()).size();
  rlimit old{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  struct sigaction ignore {}, old_action {};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(::sigaction(SIGXFSZ, &ignore, &old_action), 0);
  rlimit small = old;
  small.rlim_cur = kPcapFileHeaderBytes + first + 10;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  w->record_stamped(at_command_submit());
  w->record_stamped(bulk_in_complete());  // 10 bytes fit, then EFBIG
  w->record_stamped(at_command_submit());
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &old), 0);
  ASSERT_EQ(::sigaction(SIGXFSZ, &old_action, nullptr), 0);

  EXPECT_TRUE(w->failed());
  EXPECT_THAT(w->error(), HasSubstr("File too large"));
  EXPECT_EQ(w->counters().records, 1u);
  EXPECT_EQ(w->counters().dropped, 2u);
  const PcapFile p = read_pcap(f.path());
  EXPECT_EQ(p.error, "");
  EXPECT_EQ(p.records.size(), 1u);
  EXPECT_EQ(p.bytes, kPcapFileHeaderBytes + first);
}

// ---- running tshark ------------------------------------------------------------------------------------------

std::optional<std::string> find_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (dir.empty()) continue;
    const std::string candidate = dir + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return std::nullopt;
}

struct ToolRun {
  int exit_code = -1;
  std::string out, err;
};

// fork + execv with an argument vector: no shell, so no quoting of the (mkstemp) file name.
ToolRun run_tool(const std::string& program, const std::vector<std::string>& args) {
  ToolRun run;
  TempFile err_file;
  int out_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return run;
  const int err_fd = ::open(err_file.path().c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  std::vector<std::string> argv_storage = {program};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out_pipe[1], 1);
    if (err_fd >= 0) ::dup2(err_fd, 2);
    ::execv(program.c_str(), argv.data());
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  if (err_fd >= 0) ::close(err_fd);
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(out_pipe[0], buf, sizeof buf);
    if (n > 0) run.out.append(buf, static_cast<std::size_t>(n));
    else if (n == 0 || errno != EINTR) break;
  }
  ::close(out_pipe[0]);
  int status = 0;
  if (pid > 0 && ::waitpid(pid, &status, 0) == pid && WIFEXITED(status)) run.exit_code = WEXITSTATUS(status);
  const Vec e = slurp(err_file.path());
  run.err.assign(e.begin(), e.end());
  return run;
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> v;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) v.push_back(l);
  return v;
}

std::vector<std::string> split(const std::string& line, char sep) {
  std::vector<std::string> v;
  std::string cur;
  for (const char c : line) {
    if (c == sep) {
      v.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  v.push_back(cur);
  return v;
}

// What tshark makes of a capture file: one row per frame, and the frames it flags.
struct TsharkView {
  struct Frame {
    std::string urb_type;       // usb.urb_type: 'S', 'C', 'E' as tshark prints them
    std::string urb_id;         // usb.urb_id
    std::string transfer_type;  // usb.transfer_type: 0x01 interrupt, 0x02 control, 0x03 bulk
    std::string endpoint;       // usb.endpoint_address
    std::string data_len;       // usb.data_len (len_cap)
  };
  std::vector<Frame> frames;
  std::vector<std::string> malformed;  // frames with _ws.malformed
  std::vector<std::string> errors;     // frames with an expert item of severity error
};

void view_with_tshark(const std::string& tshark, const std::string& file, TsharkView& v) {
  const ToolRun all = run_tool(tshark, {"-n", "-r", file, "-T", "fields", "-E", "separator=|", "-e", "usb.urb_type",
                                        "-e", "usb.urb_id", "-e", "usb.transfer_type", "-e", "usb.endpoint_address",
                                        "-e", "usb.data_len"});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  for (const std::string& l : lines(all.out)) {
    const std::vector<std::string> f = split(l, '|');
    ASSERT_EQ(f.size(), 5u) << l;
    v.frames.push_back({f[0], f[1], f[2], f[3], f[4]});
  }
  const ToolRun malformed = run_tool(tshark, {"-n", "-r", file, "-Y", "_ws.malformed", "-T", "fields", "-e", "frame.number"});
  ASSERT_EQ(malformed.exit_code, 0) << malformed.err;
  v.malformed = lines(malformed.out);
  const ToolRun errors =
      run_tool(tshark, {"-n", "-r", file, "-Y", "_ws.expert.severity == error", "-T", "fields", "-e", "frame.number"});
  ASSERT_EQ(errors.exit_code, 0) << errors.err;
  v.errors = lines(errors.out);
}

// Every C/E follows an S with its URB id that has not completed yet, and every S completes.
void expect_paired(const TsharkView& v) {
  std::map<std::string, int> open;
  for (std::size_t i = 0; i < v.frames.size(); ++i) {
    const TsharkView::Frame& f = v.frames[i];
    if (f.urb_type == "'S'") {
      EXPECT_EQ(open[f.urb_id]++, 0) << "frame " << i + 1 << ": a second S for URB " << f.urb_id << " before its C";
    } else {
      ASSERT_TRUE(f.urb_type == "'C'" || f.urb_type == "'E'") << "frame " << i + 1 << ": " << f.urb_type;
      EXPECT_EQ(open[f.urb_id]--, 1) << "frame " << i + 1 << ": " << f.urb_type << " without its S, URB " << f.urb_id;
    }
  }
  for (const auto& [id, n] : open) EXPECT_EQ(n, 0) << "URB " << id << " never completed";
}

std::set<std::string> transfer_types(const TsharkView& v) {
  std::set<std::string> s;
  for (const TsharkView::Frame& f : v.frames) s.insert(f.transfer_type);
  return s;
}

// The oracle can say no: a record cut inside its usbmon header is flagged malformed, so an empty
// malformed list below means something.
TEST(TsharkOracle, FlagsARecordCutInsideTheUsbmonHeader) {
  const std::optional<std::string> tshark = find_on_path("tshark");
  if (!tshark) GTEST_SKIP() << "tshark is not on PATH";
  TempFile f;
  const auto header = encode_pcap_file_header(kDefaultCaptureSnaplenBytes);
  Vec bytes(header.begin(), header.end());
  Vec r = encode(bulk_in_complete());
  constexpr std::uint8_t kCut = 40;  // incl_len = orig_len = 40 < the 64-byte header
  r[8] = kCut;
  r[12] = kCut;
  bytes.insert(bytes.end(), r.begin(), r.begin() + kPcapRecordHeaderBytes + kCut);
  std::ofstream(f.path(), std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                                  static_cast<std::streamsize>(bytes.size()));
  TsharkView v;
  ASSERT_NO_FATAL_FAILURE(view_with_tshark(*tshark, f.path(), v));
  EXPECT_THAT(v.malformed, ElementsAreArray({"1"}));
  EXPECT_THAT(v.errors, ElementsAreArray({"1"}));
}

// ---- the decorator over a loopback device ----------------------------------------------------------------------

using test::LoopbackDevice;

struct Completions {
  Transport* transport = nullptr;
  int calls = 0;
  int resubmits_left = 0;
  bool saw_own_user = true;
  bool saw_own_callback = true;
  std::vector<TransferStatus> statuses{};
};

void count_completion(Transfer& t) {
  auto* c = static_cast<Completions*>(t.user);
  ++c->calls;
  c->statuses.push_back(t.status);
  c->saw_own_callback = c->saw_own_callback && t.on_complete == &count_completion;
  // Resubmit from inside the callback, as every pipe does.
  if (c->resubmits_left > 0) {
    --c->resubmits_left;
    EXPECT_EQ(c->transport->submit(t), TransferStatus::completed);
  }
}

class Decorator : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    writer = UsbmonCaptureWriter::open(file.path(), error);
    ASSERT_TRUE(writer) << error;
    t = std::make_unique<CapturingTransport>(inner, *writer, 3, 7);
  }
  template <class Done>
  bool pump(Done done) {
    for (int i = 0; i < 2000 && !done(); ++i) t->handle_events(1);
    return done();
  }

  TempFile file;
  LoopbackDevice device;
  sim::InProcessTransport inner{device};
  std::unique_ptr<UsbmonCaptureWriter> writer;
  std::unique_ptr<CapturingTransport> t;
};

TEST_F(Decorator, RecordsEveryKindOfEventAndForwardsUnchanged) {
  // 1. SET_INTERFACE as the standard request; 2. a vendor IN; 3. a stalled request.
  ASSERT_EQ(t->set_alt_setting(0, 1), TransferStatus::completed);
  EXPECT_EQ(device.alt(), 1);
  std::array<std::uint8_t, 2> echo{};
  const ControlResult r = t->control({.request_type = 0xc0, .request = LoopbackDevice::kVendorRequestEcho, .value = 0x1234, .index = 0}, echo, 100);
  EXPECT_EQ(r.status, TransferStatus::completed);
  EXPECT_EQ(r.actual_bytes, 2u);
  EXPECT_EQ(echo, (std::array<std::uint8_t, 2>{0x34, 0x12}));
  EXPECT_EQ(t->control({.request_type = 0x40, .request = 0x99, .value = 0, .index = 0}, {}, 100).status, TransferStatus::stall);

  // 4. An IN transfer whose callback resubmits it once; two OUT transfers feed it.
  Completions in_c{.transport = t.get(), .resubmits_left = 1};
  std::array<std::uint8_t, 64> in_buf{};
  Transfer in{.endpoint = LoopbackDevice::kBulkIn, .buffer = in_buf, .length = in_buf.size()};
  in.on_complete = &count_completion;
  in.user = &in_c;
  ASSERT_EQ(t->submit(in), TransferStatus::completed);
  Completions out_c{.transport = t.get()};
  std::array<std::uint8_t, 5> out_buf = {'h', 'e', 'l', 'l', 'o'};
  Transfer out{.endpoint = LoopbackDevice::kBulkOut, .buffer = out_buf, .length = out_buf.size(), .zero_length_packet = true};
  out.on_complete = &count_completion;
  out.user = &out_c;
  ASSERT_EQ(t->submit(out), TransferStatus::completed);
  ASSERT_TRUE(pump([&] { return in_c.calls == 1 && out_c.calls == 1; }));
  ASSERT_EQ(t->submit(out), TransferStatus::completed);
  ASSERT_TRUE(pump([&] { return in_c.calls == 2 && out_c.calls == 2; }));
  EXPECT_TRUE(in_c.saw_own_callback && out_c.saw_own_callback);
  EXPECT_EQ(in.user, &in_c) << "the caller's user is back after the completion";
  EXPECT_EQ(in.on_complete, &count_completion);
  EXPECT_EQ(in.actual_bytes, 5u);
  EXPECT_EQ(in_buf[0], 'h');

  // 5. A stalled OUT (-EPIPE) and the CLEAR_FEATURE(ENDPOINT_HALT) that follows.
  inner.with_model([](sim::DeviceModel& m) { static_cast<LoopbackDevice&>(m).stall_out = true; });
  ASSERT_EQ(t->submit(out), TransferStatus::completed);
  ASSERT_TRUE(pump([&] { return out_c.calls == 3; }));
  EXPECT_EQ(out_c.statuses.back(), TransferStatus::stall);
  EXPECT_EQ(t->clear_halt(LoopbackDevice::kBulkOut), TransferStatus::completed);

  // 6. A cancelled IN (-ECONNRESET).
  in_c.resubmits_left = 0;
  ASSERT_EQ(t->submit(in), TransferStatus::completed);
  t->cancel(in);
  ASSERT_TRUE(pump([&] { return in_c.calls == 3; }));
  EXPECT_EQ(in_c.statuses.back(), TransferStatus::cancelled);

  // 7. A refused submit (length past the buffer): S + E, the caller's values untouched.
  Transfer bad{.endpoint = LoopbackDevice::kBulkOut, .buffer = out_buf, .length = out_buf.size() + 1};
  bad.on_complete = &count_completion;
  bad.user = &out_c;
  EXPECT_EQ(t->submit(bad), TransferStatus::error);
  EXPECT_EQ(bad.on_complete, &count_completion);
  EXPECT_EQ(bad.user, &out_c);
  EXPECT_EQ(t->in_flight(), 0u);
  writer->close();

  const PcapFile p = read_pcap(file.path());
  ASSERT_EQ(p.error, "");
  ASSERT_EQ(p.records.size(), writer->counters().records);
  for (const Record& rec : p.records) {
    EXPECT_EQ(rec.busnum, 3);
    EXPECT_EQ(rec.devnum, 7);
  }
  const std::vector<Record>& R = p.records;
  ASSERT_GE(R.size(), 6u);
  // SET_INTERFACE(interface 0, alt 1): standard, interface recipient, OUT, no data stage.
  EXPECT_EQ(R[0].type, 'S');
  EXPECT_EQ(R[0].xfer_type, 2);
  EXPECT_EQ(R[0].epnum, 0x00);
  EXPECT_EQ(R[0].flag_setup, 0);
  EXPECT_THAT(R[0].setup, ElementsAreArray({0x01, 0x0b, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00}));
  EXPECT_EQ(R[1].type, 'C');
  EXPECT_EQ(R[1].id, R[0].id);
  EXPECT_EQ(R[1].status, 0);
  // The vendor IN: S without data ('<'), C with the two bytes.
  EXPECT_EQ(R[2].epnum, 0x80);
  EXPECT_EQ(R[2].flag_data, '<');
  EXPECT_EQ(R[2].len_urb, 2u);
  EXPECT_EQ(R[3].id, R[2].id);
  EXPECT_THAT(R[3].data, ElementsAreArray({0x34, 0x12}));
  EXPECT_NE(R[2].id, R[0].id);
  // The stalled request.
  EXPECT_EQ(R[5].type, 'C');
  EXPECT_EQ(R[5].status, -EPIPE);

  const auto with = [&](auto pred) {
    std::vector<Record> v;
    for (const Record& rec : R)
      if (pred(rec)) v.push_back(rec);
    return v;
  };
  const auto in_id = reinterpret_cast<std::uintptr_t>(&in), out_id = reinterpret_cast<std::uintptr_t>(&out);
  const auto in_records = with([&](const Record& rec) { return rec.id == in_id; });
  ASSERT_EQ(in_records.size(), 6u);  // three submissions, three completions, in order
  for (std::size_t i = 0; i < 6; i += 2) {
    EXPECT_EQ(in_records[i].type, 'S');
    EXPECT_EQ(in_records[i].len_urb, 64u);
    EXPECT_EQ(in_records[i].flag_data, '<');
    EXPECT_EQ(in_records[i + 1].type, 'C');
    EXPECT_EQ(in_records[i + 1].epnum, 0x81);
    EXPECT_EQ(in_records[i + 1].xfer_type, 3);
  }
  EXPECT_THAT(in_records[1].data, ElementsAreArray({'h', 'e', 'l', 'l', 'o'}));
  EXPECT_EQ(in_records[5].status, -ECONNRESET);
  const auto out_records = with([&](const Record& rec) { return rec.id == out_id; });
  ASSERT_EQ(out_records.size(), 6u);
  EXPECT_THAT(out_records[0].data, ElementsAreArray({'h', 'e', 'l', 'l', 'o'}));
  EXPECT_EQ(out_records[1].flag_data, '>');
  EXPECT_EQ(out_records[1].len_urb, 5u);
  EXPECT_EQ(out_records[5].status, -EPIPE);
  const auto clear = with([](const Record& rec) { return rec.type == 'S' && rec.setup[1] == 0x01 && rec.xfer_type == 2; });
  ASSERT_EQ(clear.size(), 1u);
  EXPECT_THAT(clear[0].setup, ElementsAreArray({0x02, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00}));
  const auto bad_records = with([&](const Record& rec) { return rec.id == reinterpret_cast<std::uintptr_t>(&bad); });
  ASSERT_EQ(bad_records.size(), 2u);
  EXPECT_EQ(bad_records[0].type, 'S');
  EXPECT_EQ(bad_records[1].type, 'E');
  EXPECT_EQ(bad_records[1].status, -EINVAL);
  EXPECT_EQ(bad_records[1].flag_data, 'E');

  // And tshark reads all of it: the E too, nothing malformed.
  const std::optional<std::string> tshark = find_on_path("tshark");
  if (!tshark) GTEST_SKIP() << "tshark is not on PATH: the file was checked by the test's own reader only";
  TsharkView v;
  ASSERT_NO_FATAL_FAILURE(view_with_tshark(*tshark, file.path(), v));
  EXPECT_EQ(v.frames.size(), p.records.size());
  EXPECT_THAT(v.malformed, ::testing::IsEmpty());
  EXPECT_THAT(v.errors, ::testing::IsEmpty());
  expect_paired(v);
}

// ---- end to end: the Huawei session and NTBs both ways, through the decorator, read by tshark ----------------

NetworkFunction function_of(const sim::DeviceModel& m) {
  const auto& d = m.identity().descriptors;
  const auto dev = parse_device_descriptor(std::span(d).first(18));
  const auto configs = parse_configurations(std::span(d).subspan(18), dev->vendor_id, dev->product_id);
  std::string error;
  const auto f = find_network_function(configs.at(0), error);
  if (!f) throw std::runtime_error(error);
  return *f;
}

// Ethernet + IPv4 + ICMP echo request from the host (10.64.64.2) to 8.8.8.8.
Vec echo_request_frame(std::uint16_t seq) {
  Vec f = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x1e, 0x10, 0x1f, 0x00, 0x00, 0x08, 0x00};
  Vec ip = {0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 1, 0, 0, 10, 64, 64, 2, 8, 8, 8, 8};
  Vec icmp = {8, 0, 0, 0, 0x77, 0x77, static_cast<std::uint8_t>(seq >> 8), static_cast<std::uint8_t>(seq)};
  for (std::uint8_t i = 0; i < 32; ++i) icmp.push_back(i);
  eth::store_be16(icmp, 2, eth::internet_checksum(icmp));
  ip.insert(ip.end(), icmp.begin(), icmp.end());
  eth::store_be16(ip, 2, static_cast<std::uint16_t>(ip.size()));
  eth::store_be16(ip, 10, eth::internet_checksum(std::span(ip).first(20)));
  f.insert(f.end(), ip.begin(), ip.end());
  return f;
}

struct Received {
  InPipe* pipe = nullptr;
  std::uint64_t bytes = 0;
};

void receive_and_release(void* user, unsigned slot, std::span<const std::uint8_t> data) {
  auto* r = static_cast<Received*>(user);
  r->bytes += data.size();
  r->pipe->release(slot);
}

TEST(CaptureEndToEnd, HuaweiSessionAndNtbsBothWaysOpenCleanlyInTshark) {
  TempFile file;
  std::string error;
  std::unique_ptr<UsbmonCaptureWriter> writer = UsbmonCaptureWriter::open(file.path(), error);
  ASSERT_TRUE(writer) << error;
  std::unique_ptr<sim::Modem> modem = sim::make_modem("huawei-e3372");
  ASSERT_TRUE(modem);
  sim::InProcessTransport inner(*modem);
  CapturingTransport t(inner, *writer, 2, 30);
  const NetworkFunction f = function_of(*modem);

  // The control plane: negotiation, then the AT session up to connected.
  control::Quirks q = control::find_quirks(0x12d1, 0x1506, f).quirks;
  q.settle_before_data_alt = 0ms;
  const control::NegotiationResult n = control::negotiate(t, f, q);
  ASSERT_TRUE(n.ok) << n.error;
  control::SessionSettings s;
  s.apn = "internet";
  s.command_timeout = 2000ms;
  control::HuaweiSessionOptions o;
  o.poll_interval = 100ms;
  control::HuaweiSession session(s, o);
  control::RunnerOptions ro;
  ro.poll_interval = 100ms;
  control::SessionRunner runner(t, f, session, ro);
  ASSERT_TRUE(runner.start()) << runner.error();
  ASSERT_TRUE(runner.run_until([](const control::SessionStatus& st) { return st.state == control::SessionState::connected; }, 20s))
      << control::to_string(runner.status().state) << ": " << runner.status().error;

  // The data plane: three NTBs out, each answered by an NTB in (an ICMP echo reply).
  Received rx;
  InPipe in(t, {.endpoint = f.bulk_in.address, .transfer_bytes = n.plan.ntb_in_max_size, .transfers_in_flight = 2},
            &receive_and_release, &rx);
  rx.pipe = &in;
  ASSERT_TRUE(in.start());
  OutPipe out(t, {.endpoint = f.bulk_out.address, .transfer_bytes = n.plan.out_transfer_bytes, .transfers_in_flight = 2});
  const auto modem_counters = [&] {
    sim::ModemCounters c;
    inner.with_model([&](sim::DeviceModel& m) { c = static_cast<sim::Modem&>(m).counters(); });
    return c;
  };
  constexpr std::uint16_t kNtbs = 3;
  for (std::uint16_t i = 1; i <= kNtbs; ++i) {
    const std::optional<unsigned> slot = out.acquire();
    ASSERT_TRUE(slot);
    ntb::NtbBuilder b(out.buffer(*slot), n.plan.out, {n.plan.out.format, ntb::DatagramKind::Ncm, 0});
    b.reset(i);
    const Vec frame = echo_request_frame(i);
    ASSERT_EQ(b.append(frame), ntb::AppendResult::Appended);
    const ntb::Bytes ntb_bytes = b.finish();
    ASSERT_EQ(out.submit(*slot, ntb_bytes.size()), TransferStatus::completed);
    bool done = false;
    for (int k = 0; k < 2000 && !done; ++k) {
      t.handle_events(1);
      const sim::ModemCounters c = modem_counters();
      done = c.datagrams_to_host >= i && in.counters().transfers.load() == c.ntbs_to_host && out.in_flight() == 0;
    }
    ASSERT_TRUE(done) << "NTB " << i << " was not answered";
  }
  EXPECT_EQ(modem_counters().ntbs_from_host, kNtbs);
  EXPECT_GE(in.counters().transfers.load(), kNtbs);

  // Shut down the way the daemon will: data pipes first, then the session.
  in.stop();
  ASSERT_TRUE(in.drain(2000));
  ASSERT_TRUE(out.drain(2000));
  runner.stop(10s);
  EXPECT_EQ(runner.status().state, control::SessionState::stopped) << runner.status().error;
  EXPECT_EQ(t.in_flight(), 0u);
  writer->close();
  ASSERT_FALSE(writer->failed()) << writer->error();

  // The test's own reader: whole records, the dialled APN and the echo payload in them.
  const PcapFile p = read_pcap(file.path());
  ASSERT_EQ(p.error, "");
  ASSERT_EQ(p.records.size(), writer->counters().records);
  EXPECT_EQ(p.linktype, kLinktypeUsbLinuxMmapped);
  const Vec raw = slurp(file.path());
  const std::string dial = "AT^NDISDUP=1,1,\"internet\"";
  EXPECT_NE(std::search(raw.begin(), raw.end(), dial.begin(), dial.end()), raw.end());

  const std::optional<std::string> tshark = find_on_path("tshark");
  if (!tshark) GTEST_SKIP() << "tshark is not on PATH: the file was checked by the test's own reader only";
  TsharkView v;
  ASSERT_NO_FATAL_FAILURE(view_with_tshark(*tshark, file.path(), v));
  EXPECT_EQ(v.frames.size(), writer->counters().records);
  EXPECT_THAT(v.malformed, ::testing::IsEmpty());
  EXPECT_THAT(v.errors, ::testing::IsEmpty());
  EXPECT_THAT(transfer_types(v), ::testing::IsSupersetOf({"0x01", "0x02", "0x03"}))
      << "interrupt, control and bulk transfers all present";
  expect_paired(v);
  // tshark's len_cap of the bulk-IN completions adds up to what the InPipe received.
  char bulk_in[8];
  std::snprintf(bulk_in, sizeof bulk_in, "0x%02x", unsigned{f.bulk_in.address});
  std::uint64_t bulk_in_bytes = 0;
  for (const TsharkView::Frame& fr : v.frames)
    if (fr.urb_type == "'C'" && fr.transfer_type == "0x03" && fr.endpoint == bulk_in) bulk_in_bytes += std::stoull(fr.data_len);
  EXPECT_EQ(bulk_in_bytes, rx.bytes);
}

}  // namespace
}  // namespace wwan::usb
