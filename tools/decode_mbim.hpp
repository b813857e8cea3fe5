// `wwan-dp decode mbim`: what did my modem say on the MBIM control channel? Decodes one MBIM
// message, or a capture of several messages / fragments back to back, and prints one JSON object
// per whole message (JSON Lines; fragments are reassembled first). The JSON is built by
// control/mbim_json.hpp (mbim::stream_json), which documents every key; this is the thin
// command-line wrapper around it.
#pragma once

#include <ostream>
#include <span>
#include <string_view>

namespace wwan::cli {

// args: what follows "decode mbim". Exit 0 whenever the input could be read (malformed messages
// print {"error":...}), 2 when it cannot be read or the usage is wrong.
int run_decode_mbim(std::span<const std::string_view> args, std::ostream& out, std::ostream& err);

}  // namespace wwan::cli
