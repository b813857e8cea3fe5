#include "control/mbim_json.hpp"

#include <cstdio>
#include <optional>
#include <string_view>
#include <vector>

#include "datapath/ntb_wire.hpp"

namespace wwan::mbim {

// A JSON string literal. Strings come from the device (UTF-16 converted to UTF-8): quotes,
// backslashes and control characters are escaped; other bytes pass as they are.
void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\u%04x", static_cast<unsigned>(u));
      out += esc;
    } else {
      out += c;
    }
  }
  out += '"';
}

namespace {


// Builds one object; keys are fixed identifiers, values escaped.
class Object {
 public:
  Object& str(std::string_view key, std::string_view value) {
    this->key(key);
    append_json_string(out_, value);
    return *this;
  }
  Object& num(std::string_view key, std::uint64_t value) {
    this->key(key);
    out_ += std::to_string(value);
    return *this;
  }
  Object& boolean(std::string_view key, bool value) {
    this->key(key);
    out_ += value ? "true" : "false";
    return *this;
  }
  Object& null(std::string_view key) {
    this->key(key);
    out_ += "null";
    return *this;
  }
  Object& strings(std::string_view key, const std::vector<std::string>& values) {
    this->key(key);
    out_ += '[';
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (i) out_ += ',';
      append_json_string(out_, values[i]);
    }
    out_ += ']';
    return *this;
  }
  Object& raw(std::string_view key, const std::string& json) {
    this->key(key);
    out_ += json;
    return *this;
  }
  std::string done() { return out_ + '}'; }

 private:
  void key(std::string_view k) {
    out_ += first_ ? "" : ",";
    first_ = false;
    append_json_string(out_, k);
    out_ += ':';
  }
  std::string out_ = "{";
  bool first_ = true;
};

std::string upper(const char* name) {
  std::string s(name);
  for (char& c : s)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return s;
}

std::string hex32(std::uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", static_cast<unsigned>(v));
  return buf;
}
std::string hex16(std::uint16_t v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%04x", static_cast<unsigned>(v));
  return buf;
}

std::string status_name(Status s) {
  const std::string n = to_string(s);
  return n == "unknown" ? hex32(static_cast<std::uint32_t>(s)) : upper(n.c_str());
}

std::string protocol_error_name(ProtocolError e) {
  const auto v = static_cast<std::uint32_t>(e);
  return v <= static_cast<std::uint32_t>(ProtocolError::MaxTransfer) ? upper(to_string(e)) : hex32(v);
}

const char* service_name(const Uuid& u) {
  if (u == kUuidBasicConnect) return "BASIC_CONNECT";
  if (u == kUuidQmi) return "QMI";
  if (u == kUuidMsBasicConnectExtensions) return "MS_BASIC_CONNECT_EXTENSIONS";
  if (u == kUuidDss) return "DSS";
  if (u == kUuidMsHostShutdown) return "MS_HOST_SHUTDOWN";
  return nullptr;
}

// anchors.md §4.4 (libmbim mbim-cid.h).
const char* basic_connect_cid_name(std::uint32_t cid) {
  switch (static_cast<BasicConnectCid>(cid)) {
    case BasicConnectCid::DeviceCaps: return "DEVICE_CAPS";
    case BasicConnectCid::SubscriberReadyStatus: return "SUBSCRIBER_READY_STATUS";
    case BasicConnectCid::RadioState: return "RADIO_STATE";
    case BasicConnectCid::Pin: return "PIN";
    case BasicConnectCid::PinList: return "PIN_LIST";
    case BasicConnectCid::HomeProvider: return "HOME_PROVIDER";
    case BasicConnectCid::PreferredProviders: return "PREFERRED_PROVIDERS";
    case BasicConnectCid::VisibleProviders: return "VISIBLE_PROVIDERS";
    case BasicConnectCid::RegisterState: return "REGISTER_STATE";
    case BasicConnectCid::PacketService: return "PACKET_SERVICE";
    case BasicConnectCid::SignalState: return "SIGNAL_STATE";
    case BasicConnectCid::Connect: return "CONNECT";
    case BasicConnectCid::ProvisionedContexts: return "PROVISIONED_CONTEXTS";
    case BasicConnectCid::ServiceActivation: return "SERVICE_ACTIVATION";
    case BasicConnectCid::IpConfiguration: return "IP_CONFIGURATION";
    case BasicConnectCid::DeviceServices: return "DEVICE_SERVICES";
    case BasicConnectCid::DeviceServiceSubscribeList: return "DEVICE_SERVICE_SUBSCRIBE_LIST";
    case BasicConnectCid::PacketStatistics: return "PACKET_STATISTICS";
    case BasicConnectCid::NetworkIdleHint: return "NETWORK_IDLE_HINT";
    case BasicConnectCid::EmergencyMode: return "EMERGENCY_MODE";
    case BasicConnectCid::IpPacketFilters: return "IP_PACKET_FILTERS";
    case BasicConnectCid::MulticarrierProviders: return "MULTICARRIER_PROVIDERS";
  }
  return nullptr;
}

const char* activation_state_name(ActivationState s) {
  switch (s) {
    case ActivationState::Unknown: return "unknown";
    case ActivationState::Activated: return "activated";
    case ActivationState::Activating: return "activating";
    case ActivationState::Deactivated: return "deactivated";
    case ActivationState::Deactivating: return "deactivating";
  }
  return "invalid";
}

const char* ip_type_name(IpType t) {
  switch (t) {
    case IpType::Default: return "default";
    case IpType::IPv4: return "ipv4";
    case IpType::IPv6: return "ipv6";
    case IpType::IPv4v6: return "ipv4v6";
    case IpType::IPv4AndIPv6: return "ipv4andipv6";
  }
  return "invalid";
}

const char* register_state_name(RegisterState s) {
  switch (s) {
    case RegisterState::Unknown: return "unknown";
    case RegisterState::Deregistered: return "deregistered";
    case RegisterState::Searching: return "searching";
    case RegisterState::Home: return "home";
    case RegisterState::Roaming: return "roaming";
    case RegisterState::Partner: return "partner";
    case RegisterState::Denied: return "denied";
  }
  return "invalid";
}

const char* auth_protocol_name(AuthProtocol a) {
  switch (a) {
    case AuthProtocol::None: return "none";
    case AuthProtocol::Pap: return "pap";
    case AuthProtocol::Chap: return "chap";
    case AuthProtocol::MsChapV2: return "mschapv2";
  }
  return "invalid";
}

std::string ip_config_fields(const IpConfigurationInfo& ip) {
  std::vector<std::string> v4, v6, dns4, dns6;
  for (const auto& e : ip.ipv4_addresses) v4.push_back(ipv4_text(e.address) + "/" + std::to_string(e.on_link_prefix_length));
  for (const auto& e : ip.ipv6_addresses) v6.push_back(ipv6_text(e.address) + "/" + std::to_string(e.on_link_prefix_length));
  for (const auto& a : ip.ipv4_dns_servers) dns4.push_back(ipv4_text(a));
  for (const auto& a : ip.ipv6_dns_servers) dns6.push_back(ipv6_text(a));
  Object o;
  o.num("session_id", ip.session_id).strings("ipv4", v4).strings("ipv6", v6);
  if (ip.ipv4_gateway) o.str("ipv4_gateway", ipv4_text(*ip.ipv4_gateway));
  else o.null("ipv4_gateway");
  if (ip.ipv6_gateway) o.str("ipv6_gateway", ipv6_text(*ip.ipv6_gateway));
  else o.null("ipv6_gateway");
  o.strings("ipv4_dns", dns4).strings("ipv6_dns", dns6).num("ipv4_mtu", ip.ipv4_mtu).num("ipv6_mtu", ip.ipv6_mtu);
  return o.done();
}

// The "fields" object of a BASIC_CONNECT message, or a WireError. nullopt-like empty string when
// the CID / direction has no decoded fields.
struct Fields {
  std::string json;                   // empty: none
  std::optional<WireError> error;
};

Fields basic_connect_fields(std::uint32_t cid, bool from_device, std::optional<CommandType> command_type, Bytes info) {
  Fields f;
  const auto take = [&f](const auto& result, auto&& to_json) {
    if (!result) f.error = result.error();
    else f.json = to_json(*result);
  };
  switch (static_cast<BasicConnectCid>(cid)) {
    case BasicConnectCid::DeviceCaps:
      if (from_device) {
        take(parse_device_caps_info(info), [](const DeviceCapsInfo& c) {
          return Object()
              .str("device_id", c.device_id)
              .str("firmware", c.firmware_info)
              .str("hardware", c.hardware_info)
              .num("max_sessions", c.max_sessions)
              .done();
        });
      }
      break;
    case BasicConnectCid::Connect:
      if (from_device) {
        take(parse_connect_info(info), [](const ConnectInfo& c) {
          return Object()
              .num("session_id", c.session_id)
              .str("activation_state", activation_state_name(c.activation_state))
              .str("ip_type", ip_type_name(c.ip_type))
              .num("nw_error", c.nw_error)
              .done();
        });
      } else if (command_type == CommandType::Set) {
        take(parse_connect_set(info), [](const ConnectSet& c) {
          return Object()
              .num("session_id", c.session_id)
              .str("activation_command",
                   c.activation_command == ActivationCommand::Activate     ? "activate"
                   : c.activation_command == ActivationCommand::Deactivate ? "deactivate"
                                                                            : "invalid")
              .str("access_string", c.access_string)
              .str("user_name", c.user_name)
              .boolean("password_set", !c.password.empty())
              .str("auth_protocol", auth_protocol_name(c.auth_protocol))
              .str("ip_type", ip_type_name(c.ip_type))
              .done();
        });
      } else {
        take(parse_session_id_query(info), [](std::uint32_t id) { return Object().num("session_id", id).done(); });
      }
      break;
    case BasicConnectCid::RegisterState:
      if (from_device) {
        take(parse_registration_state_info(info), [](const RegistrationStateInfo& r) {
          return Object()
              .str("register_state", register_state_name(r.register_state))
              .str("provider_id", r.provider_id)
              .str("provider_name", r.provider_name)
              .num("nw_error", r.nw_error)
              .done();
        });
      }
      break;
    case BasicConnectCid::IpConfiguration:
      if (from_device) take(parse_ip_configuration_info(info), ip_config_fields);
      else take(parse_session_id_query(info), [](std::uint32_t id) { return Object().num("session_id", id).done(); });
      break;
    default: break;
  }
  return f;
}

Fields qmi_fields(Bytes info) {
  Fields f;
  const auto m = qmi::parse(info);
  if (!m) {
    f.error = m.error();
    return f;
  }
  Object o;
  o.num("service", m->service).num("client_id", m->client_id).num("transaction", m->transaction_id);
  o.str("message_id", hex16(m->message_id)).boolean("response", m->sdu_flags != 0);
  if (const auto r = qmi::parse_result(m->tlvs)) o.num("result", r->result).num("error", r->error);
  f.json = o.done();
  return f;
}

}  // namespace

std::string ipv4_text(const eth::Ipv4Address& a) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", a.bytes[0], a.bytes[1], a.bytes[2], a.bytes[3]);
  return buf;
}

std::string ipv6_text(const eth::Ipv6Address& a) {
  std::uint16_t g[8];
  for (std::size_t i = 0; i < 8; ++i) g[i] = static_cast<std::uint16_t>(a.bytes[2 * i] << 8 | a.bytes[2 * i + 1]);
  // RFC 5952 §4.2: the longest run (first on a tie) of two or more zero groups becomes "::".
  std::size_t best_at = 8, best_len = 0;
  for (std::size_t i = 0; i < 8;) {
    if (g[i] != 0) { ++i; continue; }
    std::size_t j = i;
    while (j < 8 && g[j] == 0) ++j;
    if (j - i > best_len) { best_at = i; best_len = j - i; }
    i = j;
  }
  if (best_len < 2) best_at = 8;
  std::string out;
  for (std::size_t i = 0; i < 8; ++i) {
    if (i == best_at) {
      out += "::";
      i += best_len - 1;
      continue;
    }
    if (!out.empty() && out.back() != ':') out += ':';
    char buf[8];
    std::snprintf(buf, sizeof buf, "%x", static_cast<unsigned>(g[i]));
    out += buf;
  }
  return out;
}

std::string message_json(Bytes message, std::uint32_t fragments) {
  const auto h = validate(message);
  if (!h) return Object().str("error", to_string(h.error())).done();
  Object o;
  o.str("type", upper(to_string(h->type))).num("transaction", h->transaction_id).num("length", h->message_length);
  if (fragments > 1) o.num("fragments", fragments);

  const auto envelope = [&o](const Uuid& service, std::uint32_t cid) {
    o.str("service", to_string(service));
    const char* sname = service_name(service);
    if (sname) o.str("service_name", sname);
    o.num("cid", cid);
    const char* cname = service == kUuidBasicConnect ? basic_connect_cid_name(cid)
                        : (service == kUuidQmi && cid == kQmiCidMsg) ? "MSG"
                                                                      : nullptr;
    if (cname) o.str("cid_name", cname);
  };
  const auto payload = [&o](const Uuid& service, std::uint32_t cid, bool from_device,
                            std::optional<CommandType> type, Bytes info) {
    o.num("information_buffer_length", info.size());
    if (info.empty()) return;
    Fields f;
    const char* key = "fields";
    if (service == kUuidBasicConnect) {
      f = basic_connect_fields(cid, from_device, type, info);
    } else if (service == kUuidQmi && cid == kQmiCidMsg) {
      f = qmi_fields(info);
      key = "qmi";
    }
    if (!f.json.empty()) o.raw(key, f.json);
    if (f.error) o.str("error", to_string(*f.error));
  };

  switch (h->type) {
    case MessageType::Open: {
      const auto m = parse_open(message);
      if (!m) return Object().str("error", to_string(m.error())).done();
      o.num("max_control_transfer", m->max_control_transfer);
      break;
    }
    case MessageType::Close: break;
    case MessageType::OpenDone:
    case MessageType::CloseDone: {
      const auto m = parse_done(message);
      if (!m) return Object().str("error", to_string(m.error())).done();
      o.str("status", status_name(m->status));
      break;
    }
    case MessageType::HostError:
    case MessageType::FunctionError: {
      const auto m = parse_error(message);
      if (!m) return Object().str("error", to_string(m.error())).done();
      o.str("error_status_code", protocol_error_name(m->error_status_code));
      break;
    }
    case MessageType::Command: {
      const auto m = parse_command(message);
      if (!m) return Object().str("error", to_string(m.error())).done();
      envelope(m->service, m->cid);
      const auto t = static_cast<std::uint32_t>(m->command_type);
      o.str("command_type", t == 0 ? "query" : t == 1 ? "set" : hex32(t).c_str());
      payload(m->service, m->cid, false, m->command_type, m->information_buffer);
      break;
    }
    case MessageType::CommandDone: {
      const auto m = parse_command_done(message);
      if (!m) return Object().str("error", to_string(m.error())).done();
      envelope(m->service, m->cid);
      o.str("status", status_name(m->status));
      payload(m->service, m->cid, true, std::nullopt, m->information_buffer);
      break;
    }
    case MessageType::IndicateStatus: {
      const auto m = parse_indicate_status(message);
      if (!m) return Object().str("error", to_string(m.error())).done();
      envelope(m->service, m->cid);
      payload(m->service, m->cid, true, std::nullopt, m->information_buffer);
      break;
    }
  }
  return o.done();
}

std::string stream_json(Bytes input, std::size_t max_messages) {
  std::string out;
  Reassembler reassembler;  // default limits: 64 fragments, 64 KiB
  std::uint32_t pieces = 0;  // fragments of the message being reassembled
  std::size_t offset = 0, lines = 0;
  const auto line = [&out, &lines](const std::string& json) {
    out += json;
    out += '\n';
    ++lines;
  };
  while (offset < input.size() && lines < max_messages) {
    const Bytes rest = input.subspan(offset);
    const auto h = read_header(rest);
    if (!h) {
      line(Object().str("error", to_string(h.error())).num("offset", offset).done());
      return out;
    }
    // A piece is delimited by its own MessageLength; one that claims less than a header or more
    // than what is left cannot be framed, and nothing after it can be trusted.
    if (h->message_length < kHeaderSize || h->message_length > rest.size()) {
      const WireError e = h->message_length < kHeaderSize ? WireError::MessageLengthTooShort : WireError::Truncated;
      line(Object().str("error", to_string(e)).num("offset", offset).done());
      return out;
    }
    const Bytes piece = rest.first(h->message_length);
    const auto fed = reassembler.feed(piece);
    if (!fed) {
      line(Object().str("error", to_string(fed.error())).num("offset", offset).done());
      pieces = 0;
    } else {
      // Count the pieces of a fragmented message (a fragment 0 starts a new count).
      const bool fragment = is_fragmentable(h->type);
      if (fragment && piece.size() >= 20 && ntb::load_le32(piece, 16) == 0) pieces = 0;
      if (fragment) ++pieces;
      if (*fed == Reassembler::State::Complete) {
        line(message_json(reassembler.message(), fragment ? pieces : 1));
        if (fragment) pieces = 0;
      }
    }
    offset += h->message_length;
  }
  if (reassembler.partial() && lines < max_messages) {
    line(Object().str("error", "incomplete_fragments").num("offset", offset).done());
  }
  return out;
}

}  // namespace wwan::mbim
