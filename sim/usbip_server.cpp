#include "sim/usbip_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace wwan::sim::usbip {
namespace {

// USB 2.0 §9.4.6: SET_ADDRESS. vhci-hcd answers it itself (the address is virtual), but a client
// that forwards it gets a success rather than a STALL.
constexpr std::uint8_t kSetAddress = 5;

std::int32_t wire_status(RequestStatus s) {
  switch (s) {
    case RequestStatus::completed: return 0;
    case RequestStatus::stall: return kErrnoPipe;
    case RequestStatus::cancelled: return kErrnoConnReset;
    case RequestStatus::no_device: return kErrnoShutdown;
    case RequestStatus::timed_out: return kErrnoTimedOut;
    case RequestStatus::pending: break;
  }
  return kErrnoInvalid;
}

// How long a client may take to send its operation request after connecting.
constexpr int kRequestTimeoutMs = 5000;

// Reads exactly out.size() bytes; false on EOF, error, timeout or stop_fd.
bool read_exact(int fd, int stop_fd, std::span<std::uint8_t> out, int timeout_ms) {
  std::size_t got = 0;
  while (got < out.size()) {
    pollfd p[2] = {{fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
    const int n = ::poll(p, 2, timeout_ms);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || (p[1].revents & POLLIN) != 0) return false;
    const ssize_t r = ::recv(fd, out.data() + got, out.size() - got, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    got += static_cast<std::size_t>(r);
  }
  return true;
}

bool send_all(int fd, const ByteVector& bytes) {
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t r = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    sent += static_cast<std::size_t>(r);
  }
  return true;
}

}  // namespace

// ---------------------------------------------------------------- UrbSession

UrbSession::UrbSession(DeviceModel& model, std::size_t max_transfer_bytes)
    : port_(model), max_transfer_bytes_(max_transfer_bytes) {}

bool UrbSession::receive(Bytes bytes, Clock::time_point now) {
  input_.insert(input_.end(), bytes.begin(), bytes.end());
  std::size_t at = 0;
  bool ok = true;
  while (ok && !gone_) {
    const Decoded d = decode_command(std::span(input_).subspan(at), max_transfer_bytes_);
    if (d.status == DecodeStatus::need_more) break;
    if (d.status == DecodeStatus::bad) {
      error_ = d.error;
      ok = false;
      break;
    }
    ok = handle(d.command);
    at += d.consumed;
  }
  input_.erase(input_.begin(), input_.begin() + static_cast<std::ptrdiff_t>(at));
  if (ok) poll(now);
  return ok;
}

bool UrbSession::handle(const Command& c) {
  if (c.command == kCmdUnlink) {
    ++counters_.unlinks;
    const auto it = urbs_.find(c.unlink_seqnum);
    if (it != urbs_.end() && !it->second->unlinked && port_.cancel(&it->second->request)) {
      // The cancelled request comes back from the next HostPort::run(); complete() drops it then.
      it->second->unlinked = true;
      ++counters_.unlinks_cancelled;
      append_ret_unlink(output_, c.seqnum, kErrnoConnReset);
    } else {
      append_ret_unlink(output_, c.seqnum, 0);  // already completed (its RET_SUBMIT went out)
    }
    return true;
  }
  if (gone_) {
    append_ret_submit(output_, c.seqnum, kErrnoShutdown, 0, {});
    return true;
  }
  if (c.ep == 0) {
    control(c);
    return true;
  }
  if (urbs_.count(c.seqnum) != 0) {
    error_ = "seqnum " + std::to_string(c.seqnum) + " submitted twice";
    return false;
  }
  ++counters_.bulk_interrupt_urbs;
  auto urb = std::make_unique<Urb>();
  urb->seqnum = c.seqnum;
  urb->in = c.direction == kDirectionIn;
  if (urb->in) urb->buffer.resize(c.submit.transfer_buffer_length);
  else urb->buffer.assign(c.out_data.begin(), c.out_data.end());
  urb->request.endpoint = c.endpoint_address();
  urb->request.buffer = urb->buffer;
  urb->request.length = urb->buffer.size();
  urb->request.tag = urb.get();
  PortRequest* request = &urb->request;
  urbs_.emplace(c.seqnum, std::move(urb));
  port_.submit(request);
  return true;
}

void UrbSession::control(const Command& c) {
  ++counters_.control_urbs;
  const SetupPacket& s = c.submit.setup;
  const bool in = (s.request_type & 0x80) != 0;
  std::optional<std::size_t> n;
  ByteVector reply;
  if (!in && s.request_type == 0x00 && s.request == kSetAddress) {
    n = 0;
  } else if (in) {
    reply.resize(std::min<std::size_t>(s.length, c.submit.transfer_buffer_length));
    n = port_.control(s, reply);
    if (n) reply.resize(std::min(*n, reply.size()));
  } else {
    ByteVector data(c.out_data.begin(), c.out_data.end());
    SetupPacket setup = s;
    setup.length = static_cast<std::uint16_t>(std::min<std::size_t>(setup.length, data.size()));
    n = port_.control(setup, std::span(data).first(setup.length));
    if (n) n = setup.length;  // an OUT data stage is taken whole
  }
  if (!port_.connected()) gone_ = true;
  if (!n) {
    ++counters_.control_stalls;
    append_ret_submit(output_, c.seqnum, gone_ ? kErrnoShutdown : kErrnoPipe, 0, {});
    return;
  }
  append_ret_submit(output_, c.seqnum, 0, static_cast<std::uint32_t>(*n), in ? Bytes(reply) : Bytes());
}

void UrbSession::poll(Clock::time_point now) {
  done_.clear();
  port_.run(done_, now);
  complete(done_);
  if (!port_.connected()) gone_ = true;
}

void UrbSession::complete(std::vector<PortRequest*>& done) {
  for (PortRequest* r : done) {
    auto* urb = static_cast<Urb*>(r->tag);
    const std::uint32_t seqnum = urb->seqnum;
    if (!urb->unlinked) {
      const std::int32_t status = wire_status(r->status);
      const std::size_t actual = r->status == RequestStatus::completed ? r->actual_bytes : 0;
      if (r->status == RequestStatus::stall) ++counters_.stalls;
      if (urb->in) {
        counters_.in_bytes += actual;
        append_ret_submit(output_, seqnum, status, static_cast<std::uint32_t>(actual),
                          std::span(urb->buffer).first(actual));
      } else {
        counters_.out_bytes += actual;
        append_ret_submit(output_, seqnum, status, static_cast<std::uint32_t>(actual), {});
      }
    }
    urbs_.erase(seqnum);
  }
  done.clear();
}

// ---------------------------------------------------------------- UsbipServer

UsbipServer::UsbipServer(ModemFactory factory, ServerOptions options)
    : factory_(std::move(factory)), options_(std::move(options)) {}

UsbipServer::~UsbipServer() {
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

bool UsbipServer::listen(const std::string& address, std::uint16_t port, std::string& error) {
  // The record DEVLIST and IMPORT describe: every modem the factory makes has the same identity.
  const std::unique_ptr<Modem> probe = factory_();
  if (!probe) {
    error = "the modem factory made no modem";
    return false;
  }
  record_ = exported_device(probe->identity(), options_.busid, options_.busnum, options_.devnum);
  if (!record_) {
    error = "the emulated modem has no usable device descriptor";
    return false;
  }
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  if (::inet_pton(AF_INET, address.c_str(), &sa.sin_addr) != 1) {
    error = "'" + address + "' is not an IPv4 address";
    return false;
  }
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) {
    error = std::string("socket: ") + std::strerror(errno);
    return false;
  }
  const int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0 || ::listen(listen_fd_, 4) != 0) {
    error = "cannot listen on " + address + ":" + std::to_string(port) + ": " + std::strerror(errno);
    return false;
  }
  socklen_t len = sizeof sa;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&sa), &len);
  port_ = ntohs(sa.sin_port);
  return true;
}

bool UsbipServer::run(int stop_fd, const EventSink& events, std::string& error) {
  for (;;) {
    pollfd p[2] = {{listen_fd_, POLLIN, 0}, {stop_fd, POLLIN, 0}};
    const int n = ::poll(p, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      error = std::string("poll: ") + std::strerror(errno);
      return false;
    }
    if ((p[1].revents & POLLIN) != 0) return true;
    if ((p[0].revents & POLLIN) == 0) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      error = std::string("accept: ") + std::strerror(errno);
      return false;
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const bool go_on = serve(fd, stop_fd, events);
    ::close(fd);
    if (!go_on) return true;
  }
}

bool UsbipServer::serve(int fd, int stop_fd, const EventSink& events) {
  std::uint8_t header[kOpHeaderSize];
  if (!read_exact(fd, stop_fd, header, kRequestTimeoutMs)) return true;
  const OpHeader op = *parse_op_header(header);
  ByteVector reply;
  if (op.code == kOpReqDevlist) {
    append_devlist_reply(reply, std::span(&*record_, 1));
    send_all(fd, reply);
    events({ServerEvent::Kind::devlist, {}, nullptr, nullptr});
    return true;
  }
  if (op.code != kOpReqImport) {
    events({ServerEvent::Kind::protocol_error, "operation code " + std::to_string(op.code) + " is not DEVLIST or IMPORT",
            nullptr, nullptr});
    return true;
  }
  return serve_import(fd, stop_fd, events);
}

bool UsbipServer::serve_import(int fd, int stop_fd, const EventSink& events) {
  std::uint8_t body[kBusIdSize];
  if (!read_exact(fd, stop_fd, body, kRequestTimeoutMs)) return true;
  const std::optional<std::string> busid = parse_busid(body);
  ByteVector reply;
  if (!busid || *busid != options_.busid) {
    append_import_reply(reply, 1, nullptr);  // status 1: ST_NA, no such device
    send_all(fd, reply);
    events({ServerEvent::Kind::import_refused, busid.value_or("(not NUL-terminated)"), nullptr, nullptr});
    return true;
  }
  const std::unique_ptr<Modem> modem = factory_();
  append_import_reply(reply, 0, &*record_);
  if (!send_all(fd, reply)) return true;
  events({ServerEvent::Kind::imported, *busid, modem.get(), nullptr});

  UrbSession session(*modem, options_.max_transfer_bytes);
  ByteVector in(256 * 1024);
  bool stop = false;
  std::string why = "the client closed the connection";
  for (;;) {
    int timeout_ms = -1;
    if (const auto next = session.next_deadline()) {
      const auto wait = std::chrono::ceil<std::chrono::milliseconds>(*next - Clock::now()).count();
      timeout_ms = static_cast<int>(std::clamp<long long>(wait, 0, 1000));
    }
    pollfd p[2] = {{fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
    const int n = ::poll(p, 2, timeout_ms);
    if (n < 0 && errno != EINTR) break;
    if (n > 0 && (p[1].revents & POLLIN) != 0) {
      stop = true;
      why = "the server is stopping";
      break;
    }
    if (n > 0 && (p[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      const ssize_t r = ::recv(fd, in.data(), in.size(), 0);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      if (!session.receive(std::span(in).first(static_cast<std::size_t>(r)), Clock::now())) {
        events({ServerEvent::Kind::protocol_error, session.error(), modem.get(), &session.counters()});
        why = "protocol error";
        break;
      }
    } else {
      session.poll(Clock::now());
    }
    if (!session.output().empty()) {
      if (!send_all(fd, session.output())) break;
      session.output().clear();
    }
    if (session.device_gone()) {
      why = "the device left the bus";
      break;
    }
  }
  events({ServerEvent::Kind::detached, why, modem.get(), &session.counters()});
  return !stop;
}

}  // namespace wwan::sim::usbip
