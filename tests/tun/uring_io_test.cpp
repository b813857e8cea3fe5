// UringPacketIo (tun/uring_io.hpp) against the real kernel's io_uring, on pipes (no TUN, no root):
// a read that completes while the worker is busy must be seen by a non-waiting reap, a ring made
// on one thread must work on the thread that uses it, a wake() from another thread must end a
// wait, and a wake() before the wait must not be lost.
//
// The first two guard the ring's setup (tun/uring_io.cpp create()). With DEFER_TASKRUN (or
// COOP_TASKRUN) a completion that needs task work (a poll-armed read, the wake's eventfd read)
// only runs when the thread asks the kernel for completions, and a busy worker only peeks at
// the completion queue: reap() must notice IORING_SQ_TASKRUN and enter, or the read would wait
// until the worker next went idle. DEFER_TASKRUN also needs SINGLE_ISSUER.
#include "tun/uring_io.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

namespace wwan::tun {
namespace {

using Clock = std::chrono::steady_clock;

struct Pipe {
  int read_end = -1, write_end = -1;
  Pipe() {
    int fds[2];
    if (::pipe(fds) == 0) {
      read_end = fds[0];
      write_end = fds[1];
    }
  }
  ~Pipe() {
    if (read_end >= 0) ::close(read_end);
    if (write_end >= 0) ::close(write_end);
  }
};

std::unique_ptr<UringPacketIo> make_io(int fd) {
  std::string error;
  auto io = UringPacketIo::create(fd, 8, error);
  if (!io) ADD_FAILURE() << "io_uring unusable here: " << error;
  return io;
}

TEST(UringPacketIo, AReadThatCompletesWhileBusyIsSeenWithoutWaiting) {
  Pipe pipe;
  ASSERT_GE(pipe.read_end, 0);
  auto io = make_io(pipe.read_end);
  if (!io) return;
  std::array<std::uint8_t, 64> buffer{};
  ASSERT_TRUE(io->prepare_read(buffer, 0x42));
  io->submit();
  std::array<dp::IoCompletion, 4> out;
  ASSERT_EQ(io->reap(out, 0), 0u);  // parked: the pipe is empty

  // The data arrives while "the worker" only ever peeks (timeout 0), as a busy Worker does.
  ASSERT_EQ(::write(pipe.write_end, "ping", 4), 4);
  std::size_t n = 0;
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (n == 0 && Clock::now() < deadline) n = io->reap(out, 0);
  ASSERT_EQ(n, 1u) << "the read's completion never showed up in non-waiting reaps";
  EXPECT_EQ(out[0].tag, 0x42u);
  EXPECT_EQ(out[0].result, 4);
  EXPECT_EQ(std::string(buffer.begin(), buffer.begin() + 4), "ping");
}

// The daemon creates each ring on the control thread and hands it to a worker thread, which
// does every submission from then on: with IORING_SETUP_SINGLE_ISSUER the ring must belong to
// the worker (the kernel refuses other submitters with EEXIST).
TEST(UringPacketIo, ARingCreatedOnOneThreadWorksOnTheThreadThatUsesIt) {
  Pipe pipe;
  ASSERT_GE(pipe.read_end, 0);
  auto io = make_io(pipe.read_end);
  if (!io) return;
  ASSERT_EQ(::write(pipe.write_end, "pong", 4), 4);
  std::array<std::uint8_t, 64> buffer{};
  std::array<dp::IoCompletion, 4> out;
  std::size_t n = 0;
  std::thread worker([&] {
    if (!io->prepare_read(buffer, 7)) return;
    io->submit();
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    while (n == 0 && Clock::now() < deadline) n = io->reap(out, 100);
  });
  worker.join();
  ASSERT_EQ(n, 1u);
  EXPECT_EQ(out[0].tag, 7u);
  EXPECT_EQ(out[0].result, 4);
}

TEST(UringPacketIo, AWakeFromAnotherThreadEndsAWait) {
  Pipe pipe;
  ASSERT_GE(pipe.read_end, 0);
  auto io = make_io(pipe.read_end);
  if (!io) return;
  std::array<dp::IoCompletion, 4> out;
  std::thread waker([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    io->wake();
  });
  const auto t0 = Clock::now();
  // No limit on the wait: only the wake can end it (a missing wake hangs here until the test's
  // meson timeout, which is the failure).
  EXPECT_EQ(io->reap(out, -1), 0u);
  waker.join();
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(5));
}

TEST(UringPacketIo, AWakeBeforeTheWaitIsNotLost) {
  Pipe pipe;
  ASSERT_GE(pipe.read_end, 0);
  auto io = make_io(pipe.read_end);
  if (!io) return;
  std::array<dp::IoCompletion, 4> out;
  io->wake();
  const auto t0 = Clock::now();
  EXPECT_EQ(io->reap(out, 10'000), 0u);
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(5)) << "the wait ran to its 10 s limit: the wake was lost";
}

}  // namespace
}  // namespace wwan::tun
