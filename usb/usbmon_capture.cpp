#include "usb/usbmon_capture.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <limits>
#include <utility>

namespace wwan::usb {

namespace {

// Every field little-endian, whatever the host (see the header: the pcap magic tells readers).
void put_u16(std::span<std::uint8_t> out, std::size_t at, std::uint16_t v) {
  out[at] = static_cast<std::uint8_t>(v);
  out[at + 1] = static_cast<std::uint8_t>(v >> 8);
}
void put_u32(std::span<std::uint8_t> out, std::size_t at, std::uint32_t v) {
  for (std::size_t i = 0; i < 4; ++i) out[at + i] = static_cast<std::uint8_t>(v >> (8 * i));
}
void put_u64(std::span<std::uint8_t> out, std::size_t at, std::uint64_t v) {
  for (std::size_t i = 0; i < 8; ++i) out[at + i] = static_cast<std::uint8_t>(v >> (8 * i));
}
void put_s32(std::span<std::uint8_t> out, std::size_t at, std::int32_t v) { put_u32(out, at, static_cast<std::uint32_t>(v)); }
void put_s64(std::span<std::uint8_t> out, std::size_t at, std::int64_t v) { put_u64(out, at, static_cast<std::uint64_t>(v)); }

std::uint32_t saturate_u32(std::uint64_t v) {
  return v > std::numeric_limits<std::uint32_t>::max() ? std::numeric_limits<std::uint32_t>::max()
                                                       : static_cast<std::uint32_t>(v);
}

// [64, 256 KiB]: a record always holds its whole usbmon header, and incl_len / orig_len can never
// overflow their 32 bits.
std::size_t effective_snaplen(std::size_t snaplen_bytes) {
  return std::clamp(snaplen_bytes, kUsbmonHeaderBytes, kMaxCaptureSnaplenBytes);
}

// Data bytes stored in the file: len_cap cut so that header + data fit the snaplen.
std::size_t stored_data_bytes(const UsbmonEvent& event, std::size_t snaplen_bytes) {
  return std::min(usbmon_data_bytes(event), effective_snaplen(snaplen_bytes) - kUsbmonHeaderBytes);
}

// mon_bin.c's flag_data: 0 when data follows; otherwise why not.
std::uint8_t data_flag(const UsbmonEvent& e) {
  switch (e.type) {
    case UsbmonEventType::error: return 'E';
    case UsbmonEventType::submit: return e.is_in() ? '<' : 0;
    case UsbmonEventType::complete: return e.is_in() ? 0 : '>';
  }
  return 0;
}

}  // namespace

std::int32_t usbmon_completion_status(TransferStatus status) {
  switch (status) {
    case TransferStatus::completed: return 0;
    case TransferStatus::stall: return -EPIPE;
    case TransferStatus::timeout: return -ETIMEDOUT;
    case TransferStatus::cancelled: return -ECONNRESET;
    case TransferStatus::no_device: return -ESHUTDOWN;
    case TransferStatus::overflow: return -EOVERFLOW;
    case TransferStatus::error: return -EPROTO;
  }
  return -EPROTO;
}

std::int32_t usbmon_submit_error_status(TransferStatus status) {
  switch (status) {
    case TransferStatus::no_device: return -ENODEV;
    case TransferStatus::error: return -EINVAL;
    default: return usbmon_completion_status(status);
  }
}

static_assert(kUsbmonStatusInProgress == -EINPROGRESS, "usbmon marks every submission -EINPROGRESS");

std::array<std::uint8_t, kPcapFileHeaderBytes> encode_pcap_file_header(std::uint32_t snaplen_bytes) {
  std::array<std::uint8_t, kPcapFileHeaderBytes> h{};
  put_u32(h, 0, kPcapMagicMicroseconds);
  put_u16(h, 4, kPcapVersionMajor);
  put_u16(h, 6, kPcapVersionMinor);
  put_s32(h, 8, 0);   // thiszone: timestamps are UTC
  put_u32(h, 12, 0);  // sigfigs: always 0
  put_u32(h, 16, snaplen_bytes);
  put_u32(h, 20, kLinktypeUsbLinuxMmapped);
  return h;
}

std::size_t usbmon_data_bytes(const UsbmonEvent& event) {
  if (data_flag(event) != 0) return 0;
  return std::min<std::size_t>(event.data.size(), event.urb_length_bytes);
}

std::size_t usbmon_record_bytes(const UsbmonEvent& event, std::size_t snaplen_bytes) {
  return kPcapRecordHeaderBytes + kUsbmonHeaderBytes + stored_data_bytes(event, snaplen_bytes);
}

std::size_t encode_usbmon_record(const UsbmonEvent& event, std::size_t snaplen_bytes, std::span<std::uint8_t> out) {
  const std::size_t total = usbmon_record_bytes(event, snaplen_bytes);
  if (out.size() < total) return 0;
  const std::size_t data_bytes = usbmon_data_bytes(event);
  const std::size_t stored = stored_data_bytes(event, snaplen_bytes);
  const bool is_error = event.type == UsbmonEventType::error;

  // Microseconds since the epoch -> seconds + [0, 1e6) microseconds (floor, also before 1970).
  constexpr std::int64_t kUsPerSecond = 1'000'000;
  std::int64_t ts_sec = event.timestamp_us / kUsPerSecond;
  std::int64_t ts_usec = event.timestamp_us % kUsPerSecond;
  if (ts_usec < 0) {
    ts_usec += kUsPerSecond;
    --ts_sec;
  }

  // pcap record header: ts_sec, ts_usec, incl_len (stored), orig_len (what usbmon delivered).
  std::span<std::uint8_t> rec = out.first(kPcapRecordHeaderBytes);
  put_u32(rec, 0, ts_sec < 0 ? 0 : saturate_u32(static_cast<std::uint64_t>(ts_sec)));
  put_u32(rec, 4, static_cast<std::uint32_t>(ts_usec));
  put_u32(rec, 8, static_cast<std::uint32_t>(kUsbmonHeaderBytes + stored));  // <= snaplen <= 256 KiB
  put_u32(rec, 12, saturate_u32(std::uint64_t{kUsbmonHeaderBytes} + data_bytes));

  // struct mon_bin_hdr, filled as mon_bin_event() / mon_bin_error() fill it.
  std::span<std::uint8_t> h = out.subspan(kPcapRecordHeaderBytes, kUsbmonHeaderBytes);
  std::fill(h.begin(), h.end(), std::uint8_t{0});  // memset(ep, 0, PKT_SIZE)
  const bool has_setup = event.transfer_type == UsbmonTransferType::control && event.type == UsbmonEventType::submit;
  put_u64(h, 0, event.urb_id);
  h[8] = static_cast<std::uint8_t>(event.type);
  h[9] = static_cast<std::uint8_t>(event.transfer_type);
  h[10] = event.endpoint;
  h[11] = event.device_address;
  put_u16(h, 12, event.bus_number);
  h[14] = has_setup ? 0 : static_cast<std::uint8_t>('-');
  h[15] = data_flag(event);
  put_s64(h, 16, ts_sec);
  put_s32(h, 24, static_cast<std::int32_t>(ts_usec));
  put_s32(h, 28, event.status);
  put_u32(h, 32, is_error ? 0 : event.urb_length_bytes);
  put_u32(h, 36, static_cast<std::uint32_t>(data_bytes));  // <= urb_length_bytes, a u32
  if (has_setup) std::copy(event.setup.begin(), event.setup.end(), h.begin() + 40);
  if (!is_error && event.transfer_type == UsbmonTransferType::interrupt) put_s32(h, 48, event.interval);
  // 52 start_frame: isochronous only, 0.
  put_u32(h, 56, is_error ? 0 : event.transfer_flags);
  // 60 ndesc: no isochronous descriptors, 0.

  std::copy_n(event.data.begin(), stored, out.begin() + static_cast<std::ptrdiff_t>(kPcapRecordHeaderBytes + kUsbmonHeaderBytes));
  return total;
}

// ---------------------------------------------------------------- the writer

namespace {

// Blocks SIGPIPE in this thread for one write to a pipe or socket, and swallows the SIGPIPE that
// write raised, if any (it is thread-directed, so it stays pending until unblocked). The pattern
// of "SIGPIPE handling in libraries" (a library cannot use MSG_NOSIGNAL on a pipe, nor change the
// process's disposition behind the daemon's back). A SIGPIPE already pending before is left alone.
class SigpipeSuppressor {
 public:
  explicit SigpipeSuppressor(bool active) : active_(active) {
    if (!active_) return;
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    sigemptyset(&pending);
    was_pending_ = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~SigpipeSuppressor() {
    if (active_) pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeSuppressor(const SigpipeSuppressor&) = delete;
  SigpipeSuppressor& operator=(const SigpipeSuppressor&) = delete;

  // After a write failed with EPIPE.
  void consume() {
    if (!active_ || was_pending_) return;
    const timespec zero{};
    while (sigtimedwait(&pipe_, nullptr, &zero) == -1 && errno == EINTR) {
    }
  }

 private:
  bool active_;
  bool was_pending_ = false;
  sigset_t pipe_{};
  sigset_t old_{};
};

std::string errno_text(int e) { return std::strerror(e); }

}  // namespace

std::unique_ptr<UsbmonCaptureWriter> UsbmonCaptureWriter::open(const std::string& path, std::string& error,
                                                               std::size_t snaplen_bytes) {
  if (snaplen_bytes < kUsbmonHeaderBytes || snaplen_bytes > kMaxCaptureSnaplenBytes) {
    error = "capture snaplen " + std::to_string(snaplen_bytes) + " bytes is outside " +
            std::to_string(kUsbmonHeaderBytes) + ".." + std::to_string(kMaxCaptureSnaplenBytes);
    return nullptr;
  }
  int fd = -1;
  do {
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    error = "cannot open capture file " + path + ": " + errno_text(errno);
    return nullptr;
  }
  struct stat st {};
  const bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  std::unique_ptr<UsbmonCaptureWriter> w(new UsbmonCaptureWriter(fd, path, snaplen_bytes, regular));
  const auto header = encode_pcap_file_header(static_cast<std::uint32_t>(snaplen_bytes));
  {
    const std::lock_guard lock(w->mu_);
    if (const int e = w->write_all_locked(header); e != 0) {
      error = "cannot write capture file " + path + ": " + errno_text(e);
      return nullptr;  // the destructor closes the descriptor
    }
    w->good_bytes_ = header.size();
    w->bytes_.store(header.size(), std::memory_order_relaxed);
  }
  return w;
}

UsbmonCaptureWriter::UsbmonCaptureWriter(int fd, std::string path, std::size_t snaplen_bytes, bool regular_file)
    : fd_(fd), path_(std::move(path)), snaplen_bytes_(snaplen_bytes), regular_file_(regular_file),
      buffer_(kPcapRecordHeaderBytes + snaplen_bytes) {}

UsbmonCaptureWriter::~UsbmonCaptureWriter() { close(); }

void UsbmonCaptureWriter::close() {
  const std::lock_guard lock(mu_);
  if (fd_ < 0) return;
  const int fd = std::exchange(fd_, -1);
  // close() can report a delayed write error (NFS); EINTR still released the descriptor on Linux.
  if (::close(fd) != 0 && errno != EINTR) fail_locked("closing " + path_ + ": " + errno_text(errno));
}

void UsbmonCaptureWriter::record(UsbmonEvent event) {
  const std::lock_guard lock(mu_);
  // Stamped under the lock: records are in time order in the file (as long as the clock is).
  event.timestamp_us = std::chrono::duration_cast<std::chrono::microseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
  write_locked(event);
}

void UsbmonCaptureWriter::record_stamped(const UsbmonEvent& event) {
  const std::lock_guard lock(mu_);
  write_locked(event);
}

void UsbmonCaptureWriter::write_locked(const UsbmonEvent& event) {
  if (fd_ < 0) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const std::size_t n = encode_usbmon_record(event, snaplen_bytes_, buffer_);
  if (n == 0) {  // cannot happen: buffer_ holds a record header + snaplen bytes
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (const int e = write_all_locked(std::span<const std::uint8_t>(buffer_).first(n)); e != 0) {
    fail_locked("writing " + path_ + ": " + errno_text(e));
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  good_bytes_ += n;
  records_.fetch_add(1, std::memory_order_relaxed);
  bytes_.fetch_add(n, std::memory_order_relaxed);
}

int UsbmonCaptureWriter::write_all_locked(std::span<const std::uint8_t> bytes) {
  SigpipeSuppressor no_sigpipe(!regular_file_);
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      const int e = errno;
      if (e == EINTR) continue;
      if (e == EPIPE) no_sigpipe.consume();
      return e;
    }
    if (n == 0) return EIO;  // not expected from write(2) with a non-zero count; do not spin on it
    done += static_cast<std::size_t>(n);  // partial writes (a full pipe, a signal) go round again
  }
  return 0;
}

void UsbmonCaptureWriter::fail_locked(std::string why) {
  if (fd_ >= 0) {
    // Cut a regular file back to its last whole record so that it still opens cleanly; a pipe's
    // reader already has the partial record and will report the file as cut short.
    if (regular_file_) (void)::ftruncate(fd_, static_cast<off_t>(good_bytes_));
    ::close(fd_);
    fd_ = -1;
  }
  if (!failed_.load(std::memory_order_relaxed)) {
    error_ = std::move(why);
    failed_.store(true, std::memory_order_release);
  }
}

UsbmonCaptureWriter::Counters UsbmonCaptureWriter::counters() const {
  return {records_.load(std::memory_order_relaxed), bytes_.load(std::memory_order_relaxed),
          dropped_.load(std::memory_order_relaxed)};
}

std::string UsbmonCaptureWriter::error() const {
  const std::lock_guard lock(mu_);
  return error_;
}

}  // namespace wwan::usb
