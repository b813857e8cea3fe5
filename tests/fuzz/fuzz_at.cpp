// libFuzzer target: the AT channel (control/at_channel.hpp), the Huawei / 3GPP parsers
// (control/huawei_at.hpp, control/fcc_unlock_at.hpp) and the HuaweiSession state machine, fed by
// a hostile modem.
//
// Input layout: [0] settings: bit 0 a SIM PIN is configured, bit 1 families IPv4v6, bit 2 echo
// left on, bit 3 a small channel (64-byte lines, 4 information lines, 2 queued commands). The rest
// is a program, one opcode byte each followed by its operands (missing bytes read as 0):
//   0 feed: [n] then n bytes of modem output, to the channel and to the session
//   1 time: [k] the clock advances k * 37 ms, on_timer() for both
//   2 submit: [n] then n bytes as a command to the bare channel (CR/LF/NUL in it must be refused)
//   3 notification: [v] NETWORK_CONNECTION(v & 1) (v & 2: RESPONSE_AVAILABLE) to the session
//   4 start, 5 stop, 6 [v] on the bare channel: cancel_queued (v odd) or cancel_all,
//   7 feed the rest of the input at once
// Checked after every action:
//   - bounded memory: the partial line never exceeds max_line_bytes, no event line is longer,
//     no response holds more than max_information_lines lines, the queue never exceeds its limit;
//   - every final_result answers a command that was submitted and is answered exactly once, and
//     the channel has at most one command in flight; output is "command CR" without other CR/LF;
//   - counters never decrease; the session's drops never exceed its connects; a connected
//     session's IPv4 prefix is at most 32 and IPv6 at most 128;
//   - every line the modem sent, and every whole chunk, goes through every parser: ^DHCP prefixes
//     stay within 32 bits, ^NDISSTAT states within 0..3, decode_at_json gives one JSON object.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tests/fuzz/fuzz_check.hpp"

#include "control/at_channel.hpp"
#include "control/fcc_unlock_at.hpp"
#include "control/huawei_at.hpp"
#include "control/huawei_session.hpp"

namespace {

using namespace wwan::control;
namespace cdc = wwan::cdc;
using namespace std::chrono_literals;

struct Program {
  const std::uint8_t* data;
  std::size_t size;
  std::size_t at = 0;
  bool done() const { return at >= size; }
  std::uint8_t byte() { return at < size ? data[at++] : 0; }
  std::string_view bytes(std::size_t n) {
    n = std::min(n, size - std::min(at, size));
    const std::string_view s(reinterpret_cast<const char*>(data + at), n);
    at += n;
    return s;
  }
};

void check_parsers(std::string_view text) {
  if (const auto d = huawei::parse_dhcp(text)) {
    FUZZ_CHECK(d->prefix_length <= 32);
    const Ipv4Config c = huawei::to_ipv4_config(*d);
    FUZZ_CHECK(c.dns.size() <= 2);
  }
  if (const auto d = huawei::parse_dhcpv6(text)) FUZZ_CHECK(d->prefix_length <= 128);
  if (const auto st = huawei::parse_ndisstat(text)) {
    FUZZ_CHECK(st->ipv4 || st->ipv6);
    for (const auto& s : {st->ipv4, st->ipv6})
      if (s) FUZZ_CHECK(static_cast<int>(*s) <= 3);
  }
  (void)huawei::parse_cpin(text);
  (void)huawei::parse_cpin(text, false);
  if (const auto fun = huawei::parse_cfun(text)) FUZZ_CHECK(*fun >= 0 && *fun <= 255);
  const std::string json = huawei::decode_at_json(text);
  FUZZ_CHECK(json.size() >= 2 && json.front() == '{' && json.back() == '}');
  FUZZ_CHECK(json.find('\n') == std::string::npos);
  (void)fcc::parse_gtfcclockgen(text);
  (void)fcc::gtfcclockver_accepted(text);
  (void)at::classify_final_result(text);
  (void)at::error_code(text);
  // Builders never let a CR or LF through, whatever the user typed.
  const std::string q = huawei::quote(text);
  FUZZ_CHECK(q.find_first_of("\r\n") == std::string::npos);
}

struct ChannelShadow {
  const at::AtChannelOptions& options;
  std::set<at::CommandId> outstanding;
  at::AtChannelCounters last{};

  void check_events(const std::vector<at::AtEvent>& events) {
    for (const at::AtEvent& e : events) {
      FUZZ_CHECK(e.line.size() <= options.max_line_bytes);
      check_parsers(e.line);
      if (e.kind != at::AtEventKind::final_result) {
        FUZZ_CHECK(!e.response);
        continue;
      }
      FUZZ_CHECK(e.response.has_value());
      FUZZ_CHECK(outstanding.erase(e.response->id) == 1);  // submitted, answered once
      FUZZ_CHECK(e.response->lines.size() <= options.max_information_lines);
      for (const std::string& l : e.response->lines) FUZZ_CHECK(l.size() <= options.max_line_bytes);
    }
  }
  void check_channel(at::AtChannel& ch) {
    FUZZ_CHECK(ch.partial_line_bytes() <= options.max_line_bytes);
    FUZZ_CHECK(outstanding.size() <= options.max_queued_commands + 1);
    FUZZ_CHECK(ch.busy() == !outstanding.empty());
    for (const auto& out : ch.take_output()) {
      FUZZ_CHECK(!out.empty() && out.back() == '\r');
      FUZZ_CHECK(std::find_if(out.begin(), out.end() - 1, [](std::uint8_t b) { return b == '\r' || b == '\n' || b == 0; }) ==
                 out.end() - 1);
    }
    const at::AtChannelCounters& c = ch.counters();
    FUZZ_CHECK(c.commands_sent >= last.commands_sent && c.lines >= last.lines && c.timeouts >= last.timeouts &&
               c.unsolicited_lines >= last.unsolicited_lines && c.lines_too_long >= last.lines_too_long &&
               c.nul_bytes >= last.nul_bytes && c.information_lines_dropped >= last.information_lines_dropped);
    last = c;
  }
};

void check_session(HuaweiSession& s, Clock::time_point now, bool pin_configured) {
  const SessionStatus& st = s.status();
  FUZZ_CHECK(static_cast<int>(st.state) <= static_cast<int>(SessionState::failed));
  FUZZ_CHECK(st.drops <= st.connects);
  if (st.ip.ipv4) FUZZ_CHECK(st.ip.ipv4->prefix_length <= 32);
  if (st.ip.ipv6) FUZZ_CHECK(st.ip.ipv6->prefix_length <= 128);
  FUZZ_CHECK(st.error.find_first_of("\r\n") == std::string::npos);
  if (pin_configured) FUZZ_CHECK(st.error.find("9876") == std::string::npos);  // the PIN is never quoted
  const std::vector<ByteVector> cmds = s.take_commands();
  FUZZ_CHECK(cmds.size() <= at::AtChannelOptions{}.max_queued_commands + 1);
  for (const ByteVector& c : cmds) FUZZ_CHECK(!c.empty() && c.back() == '\r');
  FUZZ_CHECK(s.channel().partial_line_bytes() <= at::AtChannelOptions{}.max_line_bytes);
  if (const auto t = s.next_timer()) FUZZ_CHECK(*t >= now - 24h);  // not garbage
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint8_t flags = data[0];
  SessionSettings settings;
  settings.apn = "internet";
  if (flags & 1) settings.pin = "9876";
  if (flags & 2) settings.families = IpFamilies::ipv4v6;
  HuaweiSessionOptions session_options;
  session_options.echo_off = (flags & 4) == 0;
  at::AtChannelOptions channel_options;
  if (flags & 8) {
    channel_options.max_line_bytes = 64;
    channel_options.max_information_lines = 4;
    channel_options.max_queued_commands = 2;
  }

  Clock::time_point now = Clock::time_point{} + 24h;
  at::AtChannel channel(channel_options);
  ChannelShadow shadow{channel_options, {}, {}};
  HuaweiSession session(settings, session_options);
  session.start(now);
  // The bare channel always has something to answer.
  if (const auto id = channel.submit("AT^NDISSTATQRY?", now, 1000ms, 1)) shadow.outstanding.insert(*id);

  Program p{data, size, 1};
  while (!p.done()) {
    const std::uint8_t op = p.byte();
    switch (op % 8) {
      case 0:
      case 7: {
        const std::string_view chunk = op % 8 == 7 ? p.bytes(size) : p.bytes(p.byte());
        if (chunk.empty()) break;
        check_parsers(chunk);
        shadow.check_events(channel.feed(chunk, now));
        session.on_response(std::span(reinterpret_cast<const std::uint8_t*>(chunk.data()), chunk.size()), now);
        break;
      }
      case 1:
        now += 37ms * p.byte();
        shadow.check_events(channel.on_timer(now));
        session.on_timer(now);
        break;
      case 2: {
        const std::string command(p.bytes(p.byte()));
        const bool has_break = command.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos;
        const auto id = channel.submit(command, now, 500ms, static_cast<std::uint8_t>(command.size() % 3));
        if (has_break || command.empty()) FUZZ_CHECK(!id);
        if (id) {
          FUZZ_CHECK(shadow.outstanding.insert(*id).second);
        }
        break;
      }
      case 3: {
        const std::uint8_t v = p.byte();
        cdc::Notification n;
        n.header.notification = (v & 2) ? cdc::kNotifyResponseAvailable : cdc::kNotifyNetworkConnection;
        n.header.value = v & 1;
        n.complete = true;
        session.on_notification(n, now);
        break;
      }
      case 4:
        session.start(now);
        break;
      case 5:
        session.stop(now);
        break;
      case 6:
        if (p.byte() & 1) {
          const std::optional<at::CommandId> current = channel.in_flight();
          shadow.check_events(channel.cancel_queued());
          FUZZ_CHECK(channel.in_flight() == current);
          FUZZ_CHECK(shadow.outstanding.size() == (current ? 1u : 0u));
        } else {
          shadow.check_events(channel.cancel_all());
          FUZZ_CHECK(shadow.outstanding.empty());
        }
        break;
    }
    shadow.check_channel(channel);
    check_session(session, now, (flags & 1) != 0);
  }
  return 0;
}
