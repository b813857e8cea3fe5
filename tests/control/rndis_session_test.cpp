// The RNDIS host session: first scripted exchanges (what it sends compared byte for byte with
// golden messages; what it is fed written by hand, hostile ones included), then end to end
// against the emulated RNDIS function (sim/rndis_function.hpp) through a tiny pump that does what
// the session runner does: SEND_ENCAPSULATED_COMMAND, RESPONSE_AVAILABLE on the interrupt
// endpoint, GET_ENCAPSULATED_RESPONSE. No sleeps: time is a variable the tests step.
#include "control/rndis_session.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <memory>
#include <random>

#include "control/rndis_wire.hpp"
#include "datapath/rndis_packet.hpp"
#include "sim/network.hpp"
#include "sim/rndis_function.hpp"
#include "tests/support/hex.hpp"

namespace wwan::control {
namespace {

using Step = RndisSession::Step;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using wwan::test::hex;

const ByteVector kMac = hex("020e8d000002");

ByteVector init_cmplt(std::uint32_t id, std::uint32_t max_transfer = 16384, std::uint32_t packets = 8,
                      std::uint32_t alignment = 3, std::uint32_t status = rndis::kStatusSuccess) {
  rndis::InitializeCmplt c;
  c.request_id = id;
  c.status = status;
  c.max_transfer_size = max_transfer;
  c.max_packets_per_transfer = packets;
  c.packet_alignment_factor = alignment;
  return rndis::encode_initialize_cmplt(c);
}
ByteVector u32_cmplt(std::uint32_t id, std::uint32_t v) {
  return rndis::encode_query_cmplt(id, rndis::kStatusSuccess, rndis::oid_u32_buffer(v));
}
std::uint32_t id_of(const ByteVector& m) { return ntb::load_le32(m, 8); }

struct Script {
  RndisSessionSettings settings;
  std::unique_ptr<RndisSession> session;
  Clock::time_point now{std::chrono::seconds(1000)};

  RndisSession& start() {
    session = std::make_unique<RndisSession>(settings);
    session->start(now);
    return *session;
  }
  ByteVector sent() {
    auto c = session->take_commands();
    EXPECT_EQ(c.size(), 1u);
    return c.empty() ? ByteVector{} : c.front();
  }
  void feed(const ByteVector& m) { session->on_response(m, now); }
  // Drives the ladder to Up with plain answers; returns nothing, asserts the step.
  void to_up(std::uint32_t media = rndis::kMediaStateConnected) {
    start();
    feed(init_cmplt(id_of(sent())));
    feed(rndis::encode_query_cmplt(id_of(sent()), rndis::kStatusSuccess, kMac));
    feed(u32_cmplt(id_of(sent()), 1500));
    feed(u32_cmplt(id_of(sent()), 10'000'000));
    feed(u32_cmplt(id_of(sent()), media));
    feed(rndis::encode_set_cmplt(id_of(sent()), rndis::kStatusSuccess));
    ASSERT_EQ(session->step(), Step::Up);
  }
};

TEST(RndisSessionScript, GoldenLadderToConnected) {
  Script s;
  Ipv4Config v4;
  v4.address = {{10, 64, 64, 2}};
  v4.prefix_length = 30;
  s.settings.ip.ipv4 = v4;
  RndisSession& session = s.start();
  EXPECT_EQ(session.status().state, SessionState::starting);
  // INITIALIZE: RequestId 1, version 1.0, MaxTransferSize 16384.
  EXPECT_EQ(s.sent(), hex("02000000 18000000 01000000 01000000 00000000 00400000"));
  s.feed(init_cmplt(1, 16384, 8, 3));
  // QUERY OID_802_3_PERMANENT_ADDRESS, RequestId 2, no buffer, offset 20.
  EXPECT_EQ(s.sent(), hex("04000000 1c000000 02000000 01010101 00000000 14000000 00000000"));
  s.feed(rndis::encode_query_cmplt(2, rndis::kStatusSuccess, kMac));
  EXPECT_EQ(s.sent(), hex("04000000 1c000000 03000000 06010100 00000000 14000000 00000000"));  // MAXIMUM_FRAME_SIZE
  s.feed(u32_cmplt(3, 1428));
  EXPECT_EQ(s.sent(), hex("04000000 1c000000 04000000 07010100 00000000 14000000 00000000"));  // LINK_SPEED
  s.feed(u32_cmplt(4, 10'000'000));
  EXPECT_EQ(s.sent(), hex("04000000 1c000000 05000000 14010100 00000000 14000000 00000000"));  // MEDIA_CONNECT_STATUS
  s.feed(u32_cmplt(5, rndis::kMediaStateConnected));
  // SET OID_GEN_CURRENT_PACKET_FILTER = DIRECTED | MULTICAST | BROADCAST (0x0b).
  EXPECT_EQ(s.sent(), hex("05000000 20000000 06000000 0e010100 04000000 14000000 00000000 0b000000"));
  EXPECT_FALSE(session.data_enabled());
  s.feed(rndis::encode_set_cmplt(6, rndis::kStatusSuccess));

  EXPECT_EQ(session.step(), Step::Up);
  EXPECT_TRUE(session.data_enabled());
  EXPECT_EQ(session.status().state, SessionState::connected);
  EXPECT_EQ(session.status().connects, 1u);
  ASSERT_TRUE(session.status().ip.ipv4);
  const RndisDeviceInfo& info = session.device_info();
  EXPECT_EQ(eth::to_string(info.mac).view(), "02:0e:8d:00:00:02");
  EXPECT_EQ(info.max_frame_size, 1428u);
  EXPECT_EQ(info.link_speed_bits_per_s, 1'000'000'000u);
  EXPECT_EQ(info.out, (rndis::PacketOutParams{16384, 8, 3, 512}));
  EXPECT_FALSE(info.out_overridden.any());
  EXPECT_EQ(info.host_max_transfer_size, 16384u);
  EXPECT_THAT(session.take_link_events(), ::testing::SizeIs(1));
  EXPECT_EQ(session.counters().stale_answers, 0u);
  EXPECT_EQ(session.counters().bad_messages, 0u);
}

TEST(RndisSessionScript, StaleForeignAndHostileAnswersAreCountedAndIgnored) {
  Script s;
  s.start();
  const std::uint32_t id = id_of(s.sent());
  s.feed(init_cmplt(id + 7));                                  // wrong RequestId
  s.feed(rndis::encode_set_cmplt(id, rndis::kStatusSuccess));  // wrong type
  s.feed(rndis::encode_reset_cmplt(0, 1));                     // no reset in flight
  s.feed(hex("02000080 34000000"));                            // truncated
  s.feed(rndis::encode_initialize({id, 1, 0, 2048}));          // a host message from the device
  EXPECT_EQ(s.session->step(), Step::Initialize);
  EXPECT_EQ(s.session->counters().stale_answers, 3u);
  EXPECT_EQ(s.session->counters().bad_messages, 1u);
  EXPECT_EQ(s.session->counters().unexpected, 1u);
  EXPECT_TRUE(s.session->take_commands().empty());
  s.feed(init_cmplt(id));
  EXPECT_EQ(s.session->step(), Step::QueryMac);

  std::mt19937 rng(3);
  for (int i = 0; i < 2000; ++i) {
    ByteVector junk(rng() % 80);
    for (auto& b : junk) b = static_cast<std::uint8_t>(rng());
    if (junk.size() >= 8 && i % 2 == 0) {
      ntb::store_le32(junk, 0, 0x80000000u | (1 + rng() % 8));  // a plausible completion type
      ntb::store_le32(junk, 4, static_cast<std::uint32_t>(junk.size()));
    }
    s.feed(junk);
  }
  EXPECT_NE(s.session->step(), Step::Failed);  // nothing matched the query in flight by chance
}

TEST(RndisSessionScript, TimeoutsRetryWithNewRequestIdsThenFailClearly) {
  Script s;
  s.start();
  const std::uint32_t first = id_of(s.sent());
  ASSERT_EQ(s.session->next_timer(), s.now + 5s);
  s.now += 5s;
  s.session->on_timer(s.now);
  const ByteVector second = s.sent();
  EXPECT_NE(id_of(second), first);
  s.feed(init_cmplt(first));  // the late answer to the first attempt is stale
  EXPECT_EQ(s.session->counters().stale_answers, 1u);
  s.now += 5s;
  s.session->on_timer(s.now);
  (void)s.sent();
  s.now += 5s;
  s.session->on_timer(s.now);
  EXPECT_EQ(s.session->status().state, SessionState::failed);
  EXPECT_THAT(s.session->status().error, HasSubstr("does not answer"));
  EXPECT_THAT(s.session->status().error, HasSubstr("REMOTE_NDIS_INITIALIZE_MSG"));
  EXPECT_EQ(s.session->counters().timeouts, 3u);
  EXPECT_EQ(s.session->counters().retries, 2u);
  // stop() still halts a device that may have initialised.
  s.session->stop(s.now);
  EXPECT_EQ(ntb::load_le32(s.sent(), 0), rndis::kHaltMsg);
  EXPECT_EQ(s.session->status().state, SessionState::failed);
}

TEST(RndisSessionScript, RefusalsOfRequiredAndOptionalOids) {
  {
    Script s;
    s.start();
    s.feed(init_cmplt(id_of(s.sent()), 16384, 8, 3, rndis::kStatusFailure));
    EXPECT_EQ(s.session->status().state, SessionState::failed);
    EXPECT_THAT(s.session->status().error, HasSubstr("RNDIS_STATUS_FAILURE"));
  }
  {
    Script s;
    s.start();
    s.feed(init_cmplt(id_of(s.sent())));
    s.feed(rndis::encode_query_cmplt(id_of(s.sent()), rndis::kStatusSuccess, hex("ffffffffffff")));
    EXPECT_EQ(s.session->status().state, SessionState::failed);
    EXPECT_THAT(s.session->status().error, HasSubstr("ff:ff:ff:ff:ff:ff"));
  }
  {
    // Optional queries refused, or answered out of range: defaults kept, connected anyway.
    Script s;
    s.start();
    s.feed(init_cmplt(id_of(s.sent())));
    s.feed(rndis::encode_query_cmplt(id_of(s.sent()), rndis::kStatusSuccess, kMac));
    s.feed(u32_cmplt(id_of(s.sent()), 10));  // MAXIMUM_FRAME_SIZE 10: nonsense
    s.feed(rndis::encode_query_cmplt(id_of(s.sent()), rndis::kStatusNotSupported));
    s.feed(rndis::encode_query_cmplt(id_of(s.sent()), rndis::kStatusNotSupported));
    s.feed(rndis::encode_set_cmplt(id_of(s.sent()), rndis::kStatusSuccess));
    EXPECT_EQ(s.session->status().state, SessionState::connected);
    EXPECT_EQ(s.session->device_info().max_frame_size, 1500u);
    EXPECT_EQ(s.session->device_info().link_speed_bits_per_s, 0u);
    EXPECT_EQ(s.session->counters().optional_refused, 2u);
    EXPECT_EQ(s.session->counters().bad_messages, 1u);
  }
  {
    Script s;
    s.start();
    s.feed(init_cmplt(id_of(s.sent())));
    s.feed(rndis::encode_query_cmplt(id_of(s.sent()), rndis::kStatusSuccess, kMac));
    s.feed(u32_cmplt(id_of(s.sent()), 1500));
    s.feed(u32_cmplt(id_of(s.sent()), 1));
    s.feed(u32_cmplt(id_of(s.sent()), 0));
    s.feed(rndis::encode_set_cmplt(id_of(s.sent()), rndis::kStatusNotSupported));
    EXPECT_EQ(s.session->status().state, SessionState::failed);
    EXPECT_THAT(s.session->status().error, HasSubstr("OID_GEN_CURRENT_PACKET_FILTER"));
  }
}

TEST(RndisSessionScript, InitializeValuesAreClampedOrRefused) {
  {
    Script s;
    s.start();
    s.feed(init_cmplt(id_of(s.sent()), 40));  // cannot hold a header and a frame
    EXPECT_EQ(s.session->status().state, SessionState::failed);
    EXPECT_THAT(s.session->status().error, HasSubstr("MaxTransferSize"));
  }
  Script s;
  s.start();
  s.feed(init_cmplt(id_of(s.sent()), 0x7FFFFFFF, 0, 30));
  const RndisDeviceInfo& info = s.session->device_info();
  EXPECT_EQ(info.out.max_transfer_size, rndis::kMaxTransferSizeLimit);
  EXPECT_EQ(info.out.max_packets_per_transfer, 1u);
  EXPECT_EQ(info.out.packet_alignment_factor, 0u);
  EXPECT_TRUE(info.out_overridden.max_transfer_size);
  EXPECT_TRUE(info.out_overridden.packet_alignment_factor);
  EXPECT_EQ(s.session->step(), Step::QueryMac);
}

TEST(RndisSessionScript, MediaIndicationsAndTheDevicesKeepalive) {
  Script s;
  Ipv4Config v4;
  v4.address = {{10, 64, 64, 2}};
  s.settings.ip.ipv4 = v4;
  s.to_up(rndis::kMediaStateDisconnected);
  EXPECT_EQ(s.session->status().state, SessionState::connecting);  // up, waiting for the medium
  EXPECT_FALSE(s.session->status().ip.ipv4);
  s.feed(rndis::encode_indicate_status(rndis::kStatusMediaConnect));
  EXPECT_EQ(s.session->status().state, SessionState::connected);
  EXPECT_TRUE(s.session->status().ip.ipv4);
  s.feed(rndis::encode_indicate_status(rndis::kStatusMediaDisconnect));
  EXPECT_EQ(s.session->status().state, SessionState::disconnected);
  EXPECT_EQ(s.session->status().drops, 1u);
  EXPECT_THAT(s.session->status().error, HasSubstr("MEDIA_DISCONNECT"));
  s.feed(rndis::encode_indicate_status(rndis::kStatusMediaDisconnect));  // repeated: no new event
  s.feed(rndis::encode_indicate_status(rndis::kStatusMediaConnect));
  EXPECT_EQ(s.session->status().connects, 2u);
  const auto events = s.session->take_link_events();
  ASSERT_EQ(events.size(), 4u);  // down (the query), up, down, up
  EXPECT_FALSE(events[0].up);
  EXPECT_TRUE(events[1].up);
  EXPECT_FALSE(events[2].up);
  EXPECT_TRUE(events[3].up);
  s.feed(rndis::encode_indicate_status(rndis::kStatusLinkSpeedChange, hex("00000000")));
  EXPECT_EQ(s.session->counters().other_indications, 1u);

  // The device's KEEPALIVE_MSG is answered at once with its RequestId.
  s.feed(rndis::encode_keepalive(0x55));
  EXPECT_EQ(s.sent(), hex("08000080 10000000 55000000 00000000"));
  EXPECT_EQ(s.session->counters().keepalives_answered, 1u);
}

TEST(RndisSessionScript, KeepaliveResetAndTheFilterSetAgain) {
  Script s;
  s.to_up();
  // Device traffic postpones the keepalive.
  EXPECT_EQ(s.session->next_timer(), s.now + 5s);
  s.now += 3s;
  s.session->note_device_activity(s.now);
  EXPECT_EQ(s.session->next_timer(), s.now + 5s);
  s.now += 5s;
  s.session->on_timer(s.now);
  ByteVector k = s.sent();
  EXPECT_EQ(ntb::load_le32(k, 0), rndis::kKeepaliveMsg);
  EXPECT_EQ(s.session->status().state, SessionState::connected);  // still up while asking
  s.feed(rndis::encode_keepalive_cmplt(id_of(k), rndis::kStatusSuccess));
  EXPECT_EQ(s.session->step(), Step::Up);

  // Unanswered: retried, then RESET.
  s.now += 5s;
  s.session->on_timer(s.now);
  (void)s.sent();
  for (int i = 0; i < 2; ++i) {
    s.now += 5s;
    s.session->on_timer(s.now);
    EXPECT_EQ(ntb::load_le32(s.sent(), 0), rndis::kKeepaliveMsg);
  }
  s.now += 5s;
  s.session->on_timer(s.now);
  EXPECT_EQ(s.sent(), hex("06000000 0c000000 00000000"));
  EXPECT_EQ(s.session->step(), Step::Reset);
  EXPECT_FALSE(s.session->data_enabled());
  EXPECT_EQ(s.session->status().state, SessionState::starting);
  s.feed(rndis::encode_reset_cmplt(rndis::kStatusSuccess, 1));  // AddressingReset: set the filter again
  const ByteVector set = s.sent();
  EXPECT_EQ(ntb::load_le32(set, 0), rndis::kSetMsg);
  EXPECT_EQ(ntb::load_le32(set, 12), rndis::kOidGenCurrentPacketFilter);
  s.feed(rndis::encode_set_cmplt(id_of(set), rndis::kStatusSuccess));
  EXPECT_EQ(s.session->status().state, SessionState::connected);
  EXPECT_EQ(s.session->counters().resets, 1u);

  // A KEEPALIVE_CMPLT that is not success asks for a reset at once; no RESET_CMPLT ever: failed.
  s.now += 5s;
  s.session->on_timer(s.now);
  s.feed(rndis::encode_keepalive_cmplt(id_of(s.sent()), rndis::kStatusFailure));
  EXPECT_EQ(s.session->step(), Step::Reset);
  (void)s.sent();
  for (int i = 0; i < 3; ++i) {
    s.now += 5s;
    s.session->on_timer(s.now);
    (void)s.session->take_commands();
  }
  EXPECT_EQ(s.session->status().state, SessionState::failed);
  EXPECT_THAT(s.session->status().error, HasSubstr("stopped answering"));
}

TEST(RndisSessionScript, StopSendsHalt) {
  Script s;
  s.to_up();
  s.session->stop(s.now);
  const ByteVector halt = s.sent();
  EXPECT_EQ(halt.size(), 12u);
  EXPECT_EQ(ntb::load_le32(halt, 0), rndis::kHaltMsg);
  EXPECT_EQ(s.session->status().state, SessionState::stopped);
  EXPECT_FALSE(s.session->next_timer());
  s.feed(rndis::encode_indicate_status(rndis::kStatusMediaDisconnect));  // after the end: ignored
  EXPECT_EQ(s.session->status().state, SessionState::stopped);
}

// ---- end to end against the emulated RNDIS function -------------------------------------------------

constexpr std::uint8_t kControlInterface = 0;

struct Pump {
  sim::RndisFunction& function;
  RndisSession& session;
  Clock::time_point now{std::chrono::seconds(5000)};
  bool poll = false;  // read GET_ENCAPSULATED_RESPONSE every turn, notification or not
  std::size_t notifications = 0;

  Pump(sim::RndisFunction& f, RndisSession& s) : function(f), session(s) {
    function.set_clock([this] { return now; });
  }

  bool turn() {
    bool moved = false;
    for (auto& command : session.take_commands()) {
      const auto r = function.control(
          sim::SetupPacket{0x21, 0x00, 0, kControlInterface, static_cast<std::uint16_t>(command.size())}, command);
      EXPECT_EQ(r, std::optional<std::size_t>(0));
      moved = true;
    }
    bool available = poll;
    std::array<std::uint8_t, 64> n{};
    for (;;) {
      const sim::InResult r = function.in(0x82, n);
      if (r.result != sim::EndpointResult::ok) break;
      EXPECT_TRUE(rndis::is_response_available(std::span<const std::uint8_t>(n).first(r.bytes)));
      ++notifications;
      available = true;
    }
    if (!available) return moved;
    for (;;) {
      ByteVector buffer(4096);
      const auto got = function.control(sim::SetupPacket{0xA1, 0x01, 0, kControlInterface, 4096}, buffer);
      if (!got || *got == 0) break;
      buffer.resize(*got);
      session.on_response(buffer, now);
      moved = true;
    }
    return moved;
  }

  template <class Pred>
  bool run_until(Pred done, int max_turns = 1000) {
    for (int i = 0; i < max_turns; ++i) {
      while (turn()) {
        if (done()) return true;
      }
      if (done()) return true;
      std::optional<Clock::time_point> next = session.next_timer();
      if (const auto d = function.next_deadline(); d && (!next || *d < *next)) next = d;
      if (!next) return false;
      if (*next > now) now = *next;
      if (const auto t = session.next_timer(); t && *t <= now) session.on_timer(now);
    }
    return false;
  }
  bool run_until_state(SessionState s) {
    return run_until([&] { return session.status().state == s; });
  }
};

struct E2e {
  sim::Network network;
  sim::RndisFunction function;
  RndisSession session;
  Pump pump;
  explicit E2e(sim::RndisFunctionConfig config = {}, RndisSessionSettings settings = {})
      : function(config, network), session(settings), pump(function, session) {
    session.start(pump.now);
  }
};

TEST(RndisSessionSim, ConnectsWithTheDevicesValues) {
  E2e e;
  e.function.set_media_connected(true);
  ASSERT_TRUE(e.pump.run_until_state(SessionState::connected)) << e.session.status().error;
  const RndisDeviceInfo& info = e.session.device_info();
  const sim::RndisFunctionConfig& c = e.function.config();
  EXPECT_EQ(info.mac, c.host_mac);
  EXPECT_EQ(info.max_frame_size, c.max_frame_size);
  EXPECT_EQ(info.link_speed_bits_per_s, std::uint64_t{c.link_speed_100bps} * 100);
  EXPECT_EQ(info.out.max_transfer_size, c.max_transfer_size);
  EXPECT_EQ(info.out.max_packets_per_transfer, c.max_packets_per_transfer);
  EXPECT_EQ(info.out.packet_alignment_factor, c.packet_alignment_factor);
  EXPECT_TRUE(e.function.data_flowing());
  EXPECT_EQ(e.function.packet_filter(), 0x0bu);
  EXPECT_EQ(e.function.host_max_transfer_size(), 16384u);
  EXPECT_GT(e.pump.notifications, 0u);
  EXPECT_EQ(e.session.counters().stale_answers, 0u);
  EXPECT_EQ(e.session.counters().timeouts, 0u);
  EXPECT_EQ(e.function.counters().bad_commands, 0u);
}

TEST(RndisSessionSim, MediaFollowsTheDevicesIndications) {
  E2e e;
  ASSERT_TRUE(e.pump.run_until_state(SessionState::connecting)) << e.session.status().error;
  EXPECT_EQ(e.session.step(), Step::Up);
  e.function.set_media_connected(true);
  ASSERT_TRUE(e.pump.run_until_state(SessionState::connected));
  e.function.set_media_connected(false);
  ASSERT_TRUE(e.pump.run_until_state(SessionState::disconnected));
  EXPECT_EQ(e.session.status().drops, 1u);
  e.function.set_media_connected(true);
  ASSERT_TRUE(e.pump.run_until_state(SessionState::connected));
  EXPECT_EQ(e.session.status().connects, 2u);
  EXPECT_EQ(e.session.take_link_events().size(), 4u);
}

TEST(RndisSessionSim, KeepalivesWhileIdleAndTheDevicesOwn) {
  E2e e;
  e.function.set_media_connected(true);
  ASSERT_TRUE(e.pump.run_until_state(SessionState::connected));
  const auto t0 = e.pump.now;
  ASSERT_TRUE(e.pump.run_until([&] { return e.function.counters().keepalives_from_host >= 3; }));
  EXPECT_GE(e.pump.now - t0, 15s);  // one per keepalive_interval of silence (fake clock)
  EXPECT_EQ(e.session.status().state, SessionState::connected);
  e.function.send_keepalive();
  ASSERT_TRUE(e.pump.run_until([&] { return e.function.counters().keepalive_answers_from_host == 1; }));
}

TEST(RndisSessionSim, UnansweredKeepalivesResetTheDeviceAndTheFilterComesBack) {
  E2e e;
  e.function.set_media_connected(true);
  ASSERT_TRUE(e.pump.run_until_state(SessionState::connected));
  e.function.faults().ignore_keepalives = true;
  ASSERT_TRUE(e.pump.run_until([&] { return e.function.counters().resets == 1; }));
  EXPECT_EQ(e.function.packet_filter(), 0u);  // AddressingReset
  e.function.faults().ignore_keepalives = false;
  ASSERT_TRUE(e.pump.run_until([&] { return e.session.step() == Step::Up; }));
  EXPECT_EQ(e.function.packet_filter(), 0x0bu);
  EXPECT_TRUE(e.function.data_flowing());
  EXPECT_EQ(e.session.counters().resets, 1u);
}

TEST(RndisSessionSim, SlowAnswersAndLostNotifications) {
  {
    E2e e;
    e.function.faults().answer_delay = 2s;
    e.function.set_media_connected(true);
    ASSERT_TRUE(e.pump.run_until_state(SessionState::connected));
    EXPECT_EQ(e.session.counters().timeouts, 0u);
  }
  {
    E2e e;
    e.function.faults().lose_response_available = true;
    e.function.set_media_connected(true);
    e.pump.poll = true;  // what the runner's poll timer does
    ASSERT_TRUE(e.pump.run_until_state(SessionState::connected));
    EXPECT_EQ(e.pump.notifications, 0u);
  }
  {
    // Answers slower than the command timeout: retried with new RequestIds, late answers stale.
    E2e e;
    e.function.faults().answer_delay = 6s;
    ASSERT_TRUE(e.pump.run_until_state(SessionState::failed));
    EXPECT_GT(e.session.counters().stale_answers + e.session.counters().timeouts, 0u);
    EXPECT_THAT(e.session.status().error, HasSubstr("does not answer"));
  }
}

TEST(RndisSessionSim, DeviceRefusalsAndHalt) {
  {
    sim::RndisFunctionConfig c;
    E2e e(c);
    e.function.faults().refuse_oid = rndis::kOidGenLinkSpeed;
    ASSERT_TRUE(e.pump.run_until_state(SessionState::connecting));
    EXPECT_EQ(e.session.counters().optional_refused, 1u);
    e.session.stop(e.pump.now);
    e.pump.turn();
    EXPECT_EQ(e.function.counters().halts, 1u);
    EXPECT_FALSE(e.function.initialized());
  }
  {
    E2e e;
    e.function.faults().refuse_oid = rndis::kOid8023PermanentAddress;
    ASSERT_TRUE(e.pump.run_until_state(SessionState::failed));
    EXPECT_THAT(e.session.status().error, HasSubstr("OID_802_3_PERMANENT_ADDRESS"));
  }
}

// The data path over the negotiated values: what the host builds with the session's out params
// meets the device's strict checks, and what the device aggregates parses cleanly on the host.
TEST(RndisSessionSim, DataBothWaysWithTheNegotiatedLimits) {
  E2e e;
  e.function.set_media_connected(true);
  ASSERT_TRUE(e.pump.run_until_state(SessionState::connected));
  const RndisDeviceInfo& info = e.session.device_info();

  // ARP for the gateway, built into one transfer with the device's alignment and limits.
  const eth::MacAddress host = info.mac;
  ByteVector arp(60, 0);
  std::fill_n(arp.begin(), 6, 0xFF);
  std::copy(host.bytes.begin(), host.bytes.end(), arp.begin() + 6);
  const ByteVector arp_body = hex("0806 0001 0800 06 04 0001");
  std::copy(arp_body.begin(), arp_body.end(), arp.begin() + 12);
  std::copy(host.bytes.begin(), host.bytes.end(), arp.begin() + 22);
  const ByteVector ips = hex("0a404002 000000000000 0a404001");  // sender 10.64.64.2, target 10.64.64.1
  std::copy(ips.begin(), ips.end(), arp.begin() + 28);

  ByteVector out(info.out.max_transfer_size);
  rndis::PacketBuilder b(out, info.out);
  for (int i = 0; i < 5; ++i) ASSERT_EQ(b.append(arp), rndis::PacketAppendResult::Appended);
  const rndis::Bytes t = b.finish();
  ASSERT_EQ(e.function.out(0x01, t), sim::EndpointResult::ok);
  EXPECT_EQ(e.function.counters().arp_requests_from_host, 5u);
  EXPECT_EQ(e.function.counters().messages_misaligned, 0u);
  EXPECT_EQ(e.function.counters().transfers_too_many_packets, 0u);

  // The five ARP replies come back aggregated in one transfer within our MaxTransferSize.
  ByteVector in(info.host_max_transfer_size);
  const sim::InResult r = e.function.in(0x81, in);
  ASSERT_EQ(r.result, sim::EndpointResult::ok);
  ASSERT_LE(r.bytes, info.host_max_transfer_size);
  rndis::PacketCounters counters;
  std::vector<rndis::FrameView> frames;
  rndis::CountingPacketSink sink{counters, [&](const rndis::FrameView& f) { frames.push_back(f); }};
  rndis::parse_packet_transfer(std::span<const std::uint8_t>(in).first(r.bytes), sink);
  ASSERT_EQ(frames.size(), 5u);
  for (const auto& f : frames) {
    const auto frame = std::span<const std::uint8_t>(in).subspan(static_cast<std::size_t>(f.offset), f.length);
    EXPECT_TRUE(std::equal(host.bytes.begin(), host.bytes.end(), frame.begin()));  // to the host's MAC
    EXPECT_EQ(frame[12], 0x08);
    EXPECT_EQ(frame[13], 0x06);
    EXPECT_EQ(frame[21], 2);  // ARP reply
  }
  for (std::size_t i = 0; i < rndis::kPacketErrorCount; ++i)
    if (static_cast<rndis::PacketError>(i) != rndis::PacketError::ShortPacketPadding) {
      EXPECT_EQ(counters.errors[i], 0u);
    }
}

}  // namespace
}  // namespace wwan::control
