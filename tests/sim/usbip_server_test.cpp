// The URB session of the USB/IP front end (sim/usbip_server.hpp) against the emulated modems, no
// sockets: the bytes vhci-hcd would send in, the bytes it would get back out.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "sim/modem.hpp"
#include "sim/usbip_server.hpp"

namespace wwan::sim::usbip {
namespace {

using Vec = std::vector<std::uint8_t>;

struct Ret {
  std::uint32_t command = 0, seqnum = 0;
  std::int32_t status = 0;
  std::uint32_t actual_length = 0;
  Vec data;
};

std::uint32_t be32(const Vec& v, std::size_t at) {
  return static_cast<std::uint32_t>(v[at]) << 24 | static_cast<std::uint32_t>(v[at + 1]) << 16 |
         static_cast<std::uint32_t>(v[at + 2]) << 8 | v[at + 3];
}

// Splits what the session sent into RET_SUBMIT / RET_UNLINK messages (the data of a RET_SUBMIT is
// there only for IN, which the test knows by `in_seqnums`).
std::vector<Ret> rets(Vec& out, const std::vector<std::uint32_t>& in_seqnums) {
  std::vector<Ret> r;
  std::size_t at = 0;
  while (at + kHeaderSize <= out.size()) {
    Ret x;
    x.command = be32(out, at);
    x.seqnum = be32(out, at + 4);
    x.status = static_cast<std::int32_t>(be32(out, at + 20));
    x.actual_length = be32(out, at + 24);
    at += kHeaderSize;
    const bool in = std::find(in_seqnums.begin(), in_seqnums.end(), x.seqnum) != in_seqnums.end();
    if (x.command == kRetSubmit && in) {
      x.data.assign(out.begin() + static_cast<std::ptrdiff_t>(at),
                    out.begin() + static_cast<std::ptrdiff_t>(at + x.actual_length));
      at += x.actual_length;
    }
    r.push_back(x);
  }
  EXPECT_EQ(at, out.size());
  out.clear();
  return r;
}

Vec control_in(std::uint32_t seqnum, SetupPacket s) {
  Submit sub;
  sub.transfer_buffer_length = s.length;
  sub.setup = s;
  Vec v;
  append_cmd_submit(v, seqnum, devid(1, 2), kDirectionIn, 0, sub, {});
  return v;
}
Vec control_out(std::uint32_t seqnum, SetupPacket s) {
  Submit sub;
  sub.setup = s;
  Vec v;
  append_cmd_submit(v, seqnum, devid(1, 2), kDirectionOut, 0, sub, {});
  return v;
}
Vec bulk_in(std::uint32_t seqnum, std::uint32_t ep, std::uint32_t length) {
  Submit sub;
  sub.transfer_buffer_length = length;
  Vec v;
  append_cmd_submit(v, seqnum, devid(1, 2), kDirectionIn, ep, sub, {});
  return v;
}

class UrbSessionTest : public testing::Test {
 protected:
  std::unique_ptr<Modem> modem = make_modem("generic-ncm");
  UrbSession session{*modem};
  Clock::time_point now = Clock::now();
};

TEST_F(UrbSessionTest, GetDeviceDescriptorIsAnsweredFromTheModemsDescriptors) {
  ASSERT_TRUE(session.receive(control_in(1, {0x80, 6, 0x0100, 0, 18}), now));
  const auto r = rets(session.output(), {1});
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].command, kRetSubmit);
  EXPECT_EQ(r[0].status, 0);
  EXPECT_EQ(r[0].actual_length, 18u);
  const auto& d = modem->identity().descriptors;
  EXPECT_EQ(r[0].data, Vec(d.begin(), d.begin() + 18));
}

TEST_F(UrbSessionTest, AnUnknownRequestIsAStall) {
  ASSERT_TRUE(session.receive(control_in(2, {0xc0, 0x42, 0, 0, 4}), now));  // vendor request
  const auto r = rets(session.output(), {2});
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].status, kErrnoPipe);
  EXPECT_EQ(session.counters().control_stalls, 1u);
}

TEST_F(UrbSessionTest, BytesMayArriveOneAtATime) {
  const Vec v = control_in(3, {0x80, 6, 0x0100, 0, 18});
  for (const std::uint8_t b : v) ASSERT_TRUE(session.receive(std::span(&b, 1), now));
  EXPECT_EQ(rets(session.output(), {3}).size(), 1u);
}

TEST_F(UrbSessionTest, AnInTheDeviceNaksStaysQueuedUntilUnlinked) {
  // generic-ncm's interrupt endpoint 0x81 has nothing to say before the data alt setting.
  ASSERT_TRUE(session.receive(bulk_in(4, 1, 16), now));
  EXPECT_TRUE(session.output().empty());
  EXPECT_EQ(session.queued_urbs(), 1u);
  Vec unlink;
  append_cmd_unlink(unlink, 5, devid(1, 2), 4);
  ASSERT_TRUE(session.receive(unlink, now));
  const auto r = rets(session.output(), {});
  ASSERT_EQ(r.size(), 1u);  // RET_UNLINK only: no RET_SUBMIT for the unlinked URB
  EXPECT_EQ(r[0].command, kRetUnlink);
  EXPECT_EQ(r[0].seqnum, 5u);
  EXPECT_EQ(r[0].status, kErrnoConnReset);
  EXPECT_EQ(session.queued_urbs(), 0u);
  session.poll(now);
  EXPECT_TRUE(session.output().empty());
}

TEST_F(UrbSessionTest, UnlinkingACompletedUrbAnswersZero) {
  Vec unlink;
  append_cmd_unlink(unlink, 6, devid(1, 2), 77);
  ASSERT_TRUE(session.receive(unlink, now));
  const auto r = rets(session.output(), {});
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].status, 0);
}

TEST_F(UrbSessionTest, TheLinkComesUpOnTheInterruptEndpointAfterTheDataAltSetting) {
  // generic-ncm (control interface 0, interrupt 0x81, data interface 1): cdc_ncm's order.
  ASSERT_TRUE(session.receive(control_out(7, {0x01, 11, 1, 1, 0}), now));  // SET_INTERFACE data alt 1
  auto r = rets(session.output(), {});
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].status, 0);
  ASSERT_TRUE(session.receive(bulk_in(8, 1, 16), now));  // interrupt IN 0x81
  r = rets(session.output(), {8});
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].status, 0);
  ASSERT_GE(r[0].data.size(), 8u);
  EXPECT_EQ(r[0].data[0], 0xa1);  // bmRequestType of a CDC notification
}

TEST_F(UrbSessionTest, AStreamThatIsNotUsbipEndsTheSession) {
  Vec junk(48, 0xee);
  EXPECT_FALSE(session.receive(junk, now));
  EXPECT_FALSE(session.error().empty());
}

TEST_F(UrbSessionTest, TheUnplugFaultIsSeenAsTheDeviceLeaving) {
  modem->faults().unplug = true;
  session.receive(bulk_in(9, 1, 64), now);
  EXPECT_TRUE(session.device_gone());
}

}  // namespace
}  // namespace wwan::sim::usbip
