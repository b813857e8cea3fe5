// The modem side of V.250 that every emulated AT engine shares (sim/huawei_at, sim/quectel_at,
// sim/fm350_at): how an answer is framed, how a command line is cut into its parameters, the
// bounded queue of unsolicited result codes, and the command line discipline (echo, "AT" prefix,
// length limit) around an engine's own command table. Pure: text in, text out; no USB, no clock.
//
//   v250::line / ok / error / info   "\r\n<text>\r\n" per line, the final result last: the ATV1
//                                    form of V.250 §5.7.1 that every vector shows
//   v250::cme_error                  "+CME ERROR: <n>" (3GPP TS 27.007 §9.2, numeric: AT+CMEE=1)
//   v250::split_params / unquote     V.250 §5.4.2: parameters separated by commas, string
//                                    constants in double quotes (commas inside them do not split)
//   v250::Command                    one command after "AT", matched without case outside quotes
//                                    (V.250 §5.1) but with its arguments in their original case
//                                    (APNs and PINs are case-sensitive)
//   AtResponder                      execute(): strips the line end, echoes what it received
//                                    before it parses it (E1, the V.250 default: ATE0's own echo
//                                    still appears), answers ERROR for a line that is not "AT..."
//                                    or longer than kMaxCommandLength, else the engine's run()
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "datapath/ethernet.hpp"

namespace wwan::sim {

namespace v250 {

std::string line(std::string_view text);  // "\r\n<text>\r\n"
std::string ok();
std::string error();
std::string cme_error(int code);
// Information lines then OK: "\r\n<l1>\r\n<l2>\r\n\r\nOK\r\n".
std::string info(const std::vector<std::string>& lines);

// Upper case outside double quotes.
std::string upper_outside_quotes(std::string_view s);
// Comma-separated parameters, each without the spaces around it; commas inside double quotes do
// not split. Always at least one (possibly empty) parameter.
std::vector<std::string> split_params(std::string_view s);
// A whole decimal number; nullopt for anything else (empty, sign only, trailing text).
std::optional<int> to_int(std::string_view s);
// A quoted string parameter without its quotes; nullopt when it is not quoted.
std::optional<std::string> unquote(std::string_view s);
// "a.b.c.d"
std::string dotted(const eth::Ipv4Address& a);

// One command, the text after "AT".
class Command {
 public:
  explicit Command(std::string_view text) : text_(text), upper_(upper_outside_quotes(text)) {}
  bool empty() const { return upper_.empty(); }
  // The whole command is `name` (upper case), e.g. "+CPIN?".
  bool is(std::string_view name) const { return upper_ == name; }
  // The arguments after `prefix` (upper case, e.g. "+CPIN="), in their original case.
  std::optional<std::string_view> args_of(std::string_view prefix) const {
    if (upper_.size() < prefix.size() || std::string_view(upper_).substr(0, prefix.size()) != prefix) return std::nullopt;
    return text_.substr(prefix.size());
  }

 private:
  std::string_view text_;
  std::string upper_;
};

// The identification commands of 3GPP TS 27.007 §5.1-5.4 and their V.250 §6.1 synonyms:
// +CGMI/+GMI, +CGMM/+GMM, +CGMR/+GMR, +CGSN/+GSN. nullopt for any other command.
struct Identification {
  const std::string& manufacturer;
  const std::string& model;
  const std::string& revision;
  const std::string& imei;
};
std::optional<std::string> identification(const Command& c, const Identification& id);

}  // namespace v250

// The PDP contexts AT+CGDCONT defines (3GPP TS 27.007 §10.1.1): cid -> (PDP type, APN). Context 1
// is defined as "IP" without an APN from the start, as modems ship it.
class PdpContexts {
 public:
  using Table = std::map<int, std::pair<std::string, std::string>>;

  explicit PdpContexts(int max_cid) : max_cid_(max_cid) { table_[1] = {"IP", ""}; }

  // AT+CGDCONT=<cid>[,"<type>"[,"<apn>"]]: defines the context (IP, IPV6, IPV4V6), or undefines it
  // with the cid alone. +CME ERROR: 50 (incorrect parameters) for a cid out of 1..max_cid, another
  // type or an unquoted APN.
  std::string define(std::string_view args);
  // AT+CGDCONT?: one line per context, or a bare OK when none is defined.
  std::string read() const;

  int max_cid() const { return max_cid_; }
  const Table& table() const { return table_; }
  Table& table() { return table_; }

 private:
  int max_cid_;
  Table table_;
};

// Unsolicited result codes waiting for the host, oldest first. At most kMaxUnsolicited wait; older
// ones are dropped first (a real modem's UART buffer overruns the same way) and counted.
class UnsolicitedQueue {
 public:
  static constexpr std::size_t kMaxUnsolicited = 64;

  void push(std::string text);
  bool empty() const { return queue_.empty(); }
  std::string take();  // "" when empty
  std::uint64_t dropped() const { return dropped_; }

 private:
  std::deque<std::string> queue_;
  std::uint64_t dropped_ = 0;
};

// The command line discipline around an engine's command table (see the top of the file).
class AtResponder {
 public:
  static constexpr std::size_t kMaxUnsolicited = UnsolicitedQueue::kMaxUnsolicited;
  static constexpr std::size_t kMaxCommandLength = 512;

  // Executes one command line (trailing CR/LF optional) and returns the whole response text,
  // echo included. An empty line returns "" (modems ignore an empty line).
  std::string execute(std::string_view line);

  // Unsolicited result codes, oldest first, each framed "\r\n...\r\n".
  bool has_unsolicited() const { return !unsolicited_.empty(); }
  std::string take_unsolicited() { return unsolicited_.take(); }
  std::uint64_t unsolicited_dropped() const { return unsolicited_.dropped(); }

  bool echo() const { return echo_; }

 protected:
  AtResponder() = default;
  AtResponder(const AtResponder&) = default;
  AtResponder(AtResponder&&) = default;
  AtResponder& operator=(const AtResponder&) = default;
  AtResponder& operator=(AtResponder&&) = default;
  virtual ~AtResponder() = default;

  // The command after "AT" (without echo and line end); returns the framed answer lines.
  virtual std::string run(std::string_view command) = 0;
  void queue_unsolicited(std::string text) { unsolicited_.push(std::move(text)); }

  bool echo_ = true;  // V.250 default E1

 private:
  UnsolicitedQueue unsolicited_;
};

}  // namespace wwan::sim
