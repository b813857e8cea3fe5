#include "tun/uring_io.hpp"

#include <liburing.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace wwan::tun {

namespace {
// Tags of the ring's own operations, outside the workers' tag space (stage byte 0xFE/0xFD).
constexpr std::uint64_t kWakeTag = std::uint64_t{0xFE} << 56;
constexpr std::uint64_t kCancelTag = std::uint64_t{0xFD} << 56;
// For a stream (a character device) the offset is ignored; -1 says "the file position" for the
// files where it would not be.
constexpr std::uint64_t kNoOffset = ~std::uint64_t{0};

std::string errno_text(int e) { return std::strerror(e); }
}  // namespace

struct UringPacketIo::Ring {
  io_uring ring{};
};

std::string UringPacketIo::probe() {
  io_uring ring{};
  const int rc = io_uring_queue_init(4, &ring, 0);
  if (rc < 0) {
    const int e = -rc;
    if (e == ENOSYS) return "this kernel has no io_uring (built without CONFIG_IO_URING)";
    if (e == EPERM) return "io_uring is disabled here (sysctl kernel.io_uring_disabled, or a seccomp filter)";
    if (e == ENOMEM) return "io_uring could not lock its memory (raise RLIMIT_MEMLOCK: ulimit -l)";
    return "io_uring_setup failed: " + errno_text(e);
  }
  std::string why;
  if (io_uring_probe* p = io_uring_get_probe_ring(&ring)) {
    if (!io_uring_opcode_supported(p, IORING_OP_READ) || !io_uring_opcode_supported(p, IORING_OP_WRITE) ||
        !io_uring_opcode_supported(p, IORING_OP_WRITEV))
      why = "this kernel's io_uring lacks IORING_OP_READ/WRITE/WRITEV (Linux 5.6 or newer is needed)";
    io_uring_free_probe(p);
  }
  io_uring_queue_exit(&ring);
  return why;
}

std::unique_ptr<UringPacketIo> UringPacketIo::create(int fd, unsigned max_in_flight, std::string& error) {
  if (std::string why = probe(); !why.empty()) {
    error = why;
    return nullptr;
  }
  auto ring = std::make_unique<Ring>();
  const unsigned sq_entries = max_in_flight < 256 ? max_in_flight : 256;
  const auto setup = [&](unsigned flags) {
    io_uring_params params{};
    // Room in the completion queue for every data operation, the wake read and the cancels.
    params.flags = IORING_SETUP_CQSIZE | flags;
    params.cq_entries = max_in_flight + 64;
    return io_uring_queue_init_params(sq_entries < 8 ? 8 : sq_entries, &ring->ring, &params);
  };
  // A completion that needs task work on the worker's thread (a TUN read parked on the fd, the
  // wake's eventfd read) would by default interrupt the worker with an IPI to run it, once per
  // ACK or per IN transfer. Instead, newest kernel first:
  //   DEFER_TASKRUN (Linux 6.1): the work waits until the worker asks for completions, and is
  //     then run in one batch. It needs SINGLE_ISSUER, and the issuer is whoever enables the
  //     ring: created disabled here (R_DISABLED), enabled by the first use on the worker thread.
  //   COOP_TASKRUN (5.19): the work waits for the worker's next entry into the kernel.
  // With either, TASKRUN_FLAG has the kernel set IORING_SQ_TASKRUN while work waits, so that a
  // busy worker's non-waiting reap() knows to enter. Older kernels refuse the flags (EINVAL) and
  // get the ring as before. The TX stage per core, e2e_bench tx tcp / tx uso: docs/offload.md.
  bool disabled = true;
  int rc = setup(IORING_SETUP_R_DISABLED | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
                 IORING_SETUP_TASKRUN_FLAG);
  if (rc == -EINVAL) {
    disabled = false;
    rc = setup(IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG);
  }
  if (rc == -EINVAL) rc = setup(0);
  if (rc < 0) {
    error = "io_uring_setup failed: " + errno_text(-rc);
    return nullptr;
  }
  const int efd = eventfd(0, EFD_CLOEXEC);
  if (efd < 0) {
    error = "eventfd failed: " + errno_text(errno);
    io_uring_queue_exit(&ring->ring);
    return nullptr;
  }
  return std::unique_ptr<UringPacketIo>(new UringPacketIo(fd, max_in_flight, std::move(ring), efd, disabled));
}

UringPacketIo::UringPacketIo(int fd, unsigned max_in_flight, std::unique_ptr<Ring> ring, int event_fd, bool disabled)
    : fd_(fd), max_in_flight_(max_in_flight), ring_(std::move(ring)), event_fd_(event_fd), disabled_(disabled) {
  if (disabled_) return;  // armed by the first reap(), on the thread that will own the ring
  arm_wake();
  submit();
}

void UringPacketIo::enable() {
  // liburing 2.3 (Debian 12) declares io_uring_enable_rings() but does not export it: the
  // register call itself. From here on this thread is the ring's single issuer.
  if (const long rc = ::syscall(__NR_io_uring_register, ring_->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0);
      rc == 0)
    disabled_ = false;
}

UringPacketIo::~UringPacketIo() {
  // Closing the ring cancels what is still in flight; the worker drained data operations first.
  io_uring_queue_exit(&ring_->ring);
  ::close(event_fd_);
}

io_uring_sqe* UringPacketIo::next_sqe() {
  if (disabled_) enable();
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_->ring);
  if (sqe == nullptr) {  // the submission queue is full: hand it to the kernel and take a fresh one
    io_uring_submit(&ring_->ring);
    sqe = io_uring_get_sqe(&ring_->ring);
  }
  return sqe;
}

void UringPacketIo::arm_wake() {
  if (wake_armed_) return;
  io_uring_sqe* sqe = next_sqe();
  if (sqe == nullptr) return;  // retried at the next reap
  io_uring_prep_read(sqe, event_fd_, &event_value_, sizeof event_value_, kNoOffset);
  io_uring_sqe_set_data64(sqe, kWakeTag);
  wake_armed_ = true;
}

std::size_t UringPacketIo::free_slots() const { return in_flight_ < max_in_flight_ ? max_in_flight_ - in_flight_ : 0; }

bool UringPacketIo::prepare_write(std::span<const std::uint8_t> packet, std::uint64_t tag) {
  if (in_flight_ >= max_in_flight_) return false;
  io_uring_sqe* sqe = next_sqe();
  if (sqe == nullptr) return false;
  io_uring_prep_write(sqe, fd_, packet.data(), static_cast<unsigned>(packet.size()), kNoOffset);
  io_uring_sqe_set_data64(sqe, tag);
  ++in_flight_;
  return true;
}

bool UringPacketIo::prepare_writev(const iovec* iov, unsigned count, std::uint64_t tag) {
  if (in_flight_ >= max_in_flight_) return false;
  io_uring_sqe* sqe = next_sqe();
  if (sqe == nullptr) return false;
  // The kernel copies the iovec array when the request is issued, but a request that cannot
  // complete at once (a TUN never blocks a write; other files may) is retried from io-wq and
  // may read it again: the caller keeps it alive until the completion, as the interface says.
  io_uring_prep_writev(sqe, fd_, iov, count, kNoOffset);
  io_uring_sqe_set_data64(sqe, tag);
  ++in_flight_;
  return true;
}

bool UringPacketIo::prepare_read(std::span<std::uint8_t> buffer, std::uint64_t tag) {
  if (in_flight_ >= max_in_flight_) return false;
  io_uring_sqe* sqe = next_sqe();
  if (sqe == nullptr) return false;
  io_uring_prep_read(sqe, fd_, buffer.data(), static_cast<unsigned>(buffer.size()), kNoOffset);
  io_uring_sqe_set_data64(sqe, tag);
  ++in_flight_;
  return true;
}

void UringPacketIo::submit() {
  if (io_uring_sq_ready(&ring_->ring) > 0) io_uring_submit(&ring_->ring);
}

std::size_t UringPacketIo::reap(std::span<dp::IoCompletion> out, int timeout_ms) {
  arm_wake();
  io_uring_cqe* cqe = nullptr;
  if (timeout_ms != 0 && io_uring_cq_ready(&ring_->ring) == 0) {
    if (timeout_ms < 0) {
      (void)io_uring_submit_and_wait(&ring_->ring, 1);
    } else {
      __kernel_timespec ts{};
      ts.tv_sec = timeout_ms / 1000;
      ts.tv_nsec = static_cast<long long>(timeout_ms % 1000) * 1000000;
      (void)io_uring_submit_and_wait_timeout(&ring_->ring, &cqe, 1, &ts, nullptr);
    }
  }
  // Task work waiting (DEFER_TASKRUN / COOP_TASKRUN, see create()): run it now, so that a busy
  // worker, which only peeks, still sees the completions it produces.
  if ((IO_URING_READ_ONCE(*ring_->ring.sq.kflags) & IORING_SQ_TASKRUN) != 0) (void)io_uring_get_events(&ring_->ring);
  std::size_t n = 0;
  unsigned head = 0;
  unsigned seen = 0;
  io_uring_for_each_cqe(&ring_->ring, head, cqe) {
    if (n == out.size()) break;
    ++seen;
    const std::uint64_t tag = io_uring_cqe_get_data64(cqe);
    if (tag == kWakeTag) {
      wake_armed_ = false;
      continue;
    }
    if ((tag >> 56) == (kCancelTag >> 56)) continue;
    --in_flight_;
    out[n++] = dp::IoCompletion{tag, cqe->res};
  }
  io_uring_cq_advance(&ring_->ring, seen);
  return n;
}

void UringPacketIo::cancel_all() {
  io_uring_sqe* sqe = next_sqe();
  if (sqe == nullptr) return;
  // Every request on the TUN fd (Linux 5.19+: IORING_ASYNC_CANCEL_ALL | _FD). On older kernels
  // the caller's drain timeout and the ring's teardown cover it.
  io_uring_prep_cancel_fd(sqe, fd_, IORING_ASYNC_CANCEL_ALL);
  io_uring_sqe_set_data64(sqe, kCancelTag);
}

void UringPacketIo::wake() {
  const std::uint64_t one = 1;
  // An eventfd write never blocks below 2^64-2; a failure leaves nothing to do.
  [[maybe_unused]] const ssize_t n = ::write(event_fd_, &one, sizeof one);
}

}  // namespace wwan::tun
