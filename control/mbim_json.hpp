// MBIM messages as JSON, for `wwan-dp decode mbim` and logs: a pure function of the bytes (no
// I/O, no JSON library; the control library stays dependency-free).
//
// One object per whole message (fragments are reassembled first):
//   {"type":"COMMAND_DONE","transaction":26,"length":128,
//    "service":"a289cc33-bcbb-8b4f-b6b0-133ec2aae6df","service_name":"BASIC_CONNECT",
//    "cid":15,"cid_name":"IP_CONFIGURATION","status":"NONE","information_buffer_length":80,
//    "fields":{...}}
// Envelope keys by type:
//   OPEN: max_control_transfer | OPEN_DONE, CLOSE_DONE: status | HOST_ERROR, FUNCTION_ERROR:
//   error_status_code ("NOT_OPENED", ...) | COMMAND: service, service_name, cid, cid_name,
//   command_type ("query"/"set"), information_buffer_length | COMMAND_DONE: the same with status
//   instead of command_type | INDICATE_STATUS: service, service_name, cid, cid_name,
//   information_buffer_length. "fragments":N is added when the message came in N > 1 pieces.
// Status and error names are the MBIM 1.0 names without the prefix ("NONE", "FAILURE", ...);
// values without a name print as "0x...".
//
// "fields" (BASIC_CONNECT answers and indications; CONNECT and IP_CONFIGURATION commands too):
//   DEVICE_CAPS        device_id, firmware, hardware, max_sessions
//   CONNECT            session_id, activation_state, ip_type, nw_error (answer / indication);
//                      session_id, activation_command, access_string, user_name, auth_protocol,
//                      ip_type (set; the password is never printed) | session_id (query)
//   REGISTER_STATE     register_state, provider_id, provider_name, nw_error
//   IP_CONFIGURATION   session_id, ipv4 and ipv6 (lists of "address/prefix"), ipv4_gateway,
//                      ipv6_gateway (null when absent), ipv4_dns, ipv6_dns (lists), ipv4_mtu,
//                      ipv6_mtu | session_id (query)
// QMI-over-MBIM messages get "qmi": {service, client_id, transaction, message_id ("0x555f"),
// response, result, error} (result/error only when a result TLV is present).
//
// A malformed message is {"error":"<WireError name>"} (framing), or the envelope with an "error"
// key when only the InformationBuffer is malformed. Never throws, never reads out of bounds.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "control/mbim_wire.hpp"

namespace wwan::mbim {

// Appends `s` as a JSON string literal: quotes, backslashes and control characters escaped,
// other bytes as they are (device strings are UTF-8 after the UTF-16 conversion). The one
// escaper of the project: the CLI's events use it too (tools/text.hpp).
void append_json_string(std::string& out, std::string_view s);

// One whole message (as Reassembler::message() gives it) -> one JSON object, no newline.
// `fragments` is only reported.
std::string message_json(Bytes message, std::uint32_t fragments = 1);

// A capture: one message, or several messages and/or fragments back to back (each piece is
// delimited by its own MessageLength). One JSON object per whole message, one per line. A piece
// that cannot be framed ends the walk with {"error":...,"offset":N}; reassembly errors are
// reported the same way and the walk goes on with the next piece. Bounded: at most
// `max_messages` lines.
std::string stream_json(Bytes input, std::size_t max_messages = 10000);

// RFC 5952 text of an IPv6 address ("2001:db8::1"); dotted quad for IPv4.
std::string ipv6_text(const eth::Ipv6Address& a);
std::string ipv4_text(const eth::Ipv4Address& a);

}  // namespace wwan::mbim
