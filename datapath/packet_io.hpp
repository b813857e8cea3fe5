// The packet I/O seam between the RX/TX workers and the TUN device (DESIGN.md "Layers and seams").
//
// Shaped after io_uring, because that is the fast path: operations are *prepared* (queued in
// user memory, no syscall), handed to the kernel in one batch by submit(), and their results come
// back later as completions tagged with what the caller chose. Writes point straight into the NTB
// buffer a datagram arrived in (no per-packet copy); the buffer may only be reused after the
// write's completion has been reaped.
//
// Implementations: tun/uring_io.hpp (io_uring on the TUN fd) and, in tests, an in-memory fake.
// One thread uses one PacketIo; only wake() may be called from another thread.
#pragma once

#include <sys/uio.h>  // iovec

#include <cstddef>
#include <cstdint>
#include <span>

namespace wwan::dp {

struct IoCompletion {
  std::uint64_t tag = 0;    // what prepare_* was given
  std::int32_t result = 0;  // bytes moved, or -errno (io_uring's cqe->res convention)
};

class PacketIo {
 public:
  virtual ~PacketIo() = default;

  // How many more operations may be prepared before some complete: the bound on operations in
  // flight (io_uring: the completion queue's size, so completions can never be lost).
  virtual std::size_t free_slots() const = 0;

  // Queue one packet write / one read into `buffer`. false when free_slots() is 0: nothing was
  // queued. The memory must stay valid and untouched until the completion is reaped.
  virtual bool prepare_write(std::span<const std::uint8_t> packet, std::uint64_t tag) = 0;
  virtual bool prepare_read(std::span<std::uint8_t> buffer, std::uint64_t tag) = 0;
  // Queue one write gathered from `count` pieces (io_uring: IORING_OP_WRITEV): a TUN takes a
  // writev as one packet, so a virtio_net_hdr and a super-packet's headers in scratch memory
  // plus its payloads still in the NTB go out without a copy (docs/offload.md). `count` <=
  // UIO_MAXIOV (1024). The iovec array and everything it points to must stay valid and
  // untouched until the completion is reaped.
  virtual bool prepare_writev(const iovec* iov, unsigned count, std::uint64_t tag) = 0;

  // Hands every prepared operation to the kernel (io_uring: one io_uring_enter for the batch).
  virtual void submit() = 0;

  // Moves completions into `out` and returns how many. Waits up to timeout_ms for the first one
  // (0 = do not wait, negative = no limit); returns early, possibly with 0, after wake().
  virtual std::size_t reap(std::span<IoCompletion> out, int timeout_ms) = 0;

  // Asks every operation in flight to end (a read on an idle TUN would otherwise wait forever);
  // their completions (typically -ECANCELED) still arrive through reap(). For shutdown.
  virtual void cancel_all() = 0;

  // Makes a reap() that is waiting on the owning thread return now. Any thread, async-signal-safe
  // implementations preferred (an eventfd write). A wake() before reap() is not lost.
  virtual void wake() = 0;
};

}  // namespace wwan::dp
