// dp::PacketIo on io_uring (liburing; Debian 12 ships 2.3): the fast path of DESIGN.md.
//
// One ring per worker thread. Writes and reads on the TUN fd are prepared as SQEs and handed to
// the kernel in one io_uring_enter per batch; completions come back tagged. A TUN supports
// IOCB_NOWAIT, so a read on an idle TUN is parked on the fd's wait queue (poll-armed) instead of
// occupying an io-wq thread, and many reads can be outstanding at no cost.
//
// Bounds: the completion queue is sized for every operation that can be in flight (free_slots()
// refuses more), so the kernel never has to overflow it. wake(): an eventfd with a read always
// outstanding on the ring, so a wake from another thread completes it and ends the wait.
#pragma once

#include <memory>
#include <string>

#include "datapath/packet_io.hpp"

struct io_uring_sqe;  // <liburing.h>, included by the .cpp only

namespace wwan::tun {

class UringPacketIo final : public dp::PacketIo {
 public:
  // `fd`: the TUN (opened blocking: io_uring does the waiting). `max_in_flight`: operations in
  // flight at most. nullptr + one line in `error` when io_uring is unusable here (kernel without
  // it, io_uring_disabled sysctl, seccomp, RLIMIT_MEMLOCK on old kernels, no READ/WRITE opcodes).
  static std::unique_ptr<UringPacketIo> create(int fd, unsigned max_in_flight, std::string& error);
  ~UringPacketIo() override;
  UringPacketIo(const UringPacketIo&) = delete;
  UringPacketIo& operator=(const UringPacketIo&) = delete;

  std::size_t free_slots() const override;
  bool prepare_write(std::span<const std::uint8_t> packet, std::uint64_t tag) override;
  bool prepare_read(std::span<std::uint8_t> buffer, std::uint64_t tag) override;
  bool prepare_writev(const iovec* iov, unsigned count, std::uint64_t tag) override;
  void submit() override;
  std::size_t reap(std::span<dp::IoCompletion> out, int timeout_ms) override;
  void cancel_all() override;
  void wake() override;

  // Checks, without keeping anything, that io_uring works here. "" = usable, else why not.
  static std::string probe();

 private:
  struct Ring;
  UringPacketIo(int fd, unsigned max_in_flight, std::unique_ptr<Ring> ring, int event_fd, bool disabled);
  void enable();
  ::io_uring_sqe* next_sqe();
  void arm_wake();

  int fd_;
  unsigned max_in_flight_;
  std::unique_ptr<Ring> ring_;
  int event_fd_;
  std::uint64_t event_value_ = 0;  // the eventfd read's target
  std::size_t in_flight_ = 0;      // data operations (not the wake read, not cancels)
  bool wake_armed_ = false;
  bool disabled_ = false;  // created with IORING_SETUP_R_DISABLED, not enabled yet
};

}  // namespace wwan::tun
