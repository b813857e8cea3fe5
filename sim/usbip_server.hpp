// The emulated modem as a USB/IP device: a Linux kernel (vhci-hcd, e.g. in the VM rig's guest,
// tests/vm) imports it over TCP and from then on sees a real USB device on a real host controller —
// the kernel's own cdc_ncm / huawei_cdc_ncm / cdc_mbim bind it, usbfs and libusb reach it. The
// third front end of sim/device_model.hpp, beside the in-process Transport and the usbfs emulation.
//
// Two layers:
//   UrbSession  one imported device's URB traffic, pure of sockets: bytes from the client in,
//               bytes to the client out, time in. CMD_SUBMIT on endpoint 0 is answered at once
//               through sim::HostPort (standard requests from the descriptors, class and vendor
//               requests by the model); bulk and interrupt URBs queue on HostPort per endpoint and
//               complete as the model answers (an IN the device NAKs stays queued, as on a real
//               host controller); CMD_UNLINK cancels a queued URB (RET_UNLINK -ECONNRESET, and no
//               RET_SUBMIT for it) or reports it already completed (status 0).
//   UsbipServer the TCP side: OP_REQ_DEVLIST, OP_REQ_IMPORT of the one exported busid (a fresh
//               modem from the factory per import: each import is a plug-in), then the session
//               until the client closes, the device leaves the bus (the unplug fault: the
//               connection is closed, which vhci-hcd reports as a disconnect) or run() is told to
//               stop. One connection at a time; a client that connects while a device is
//               imported waits in the listen backlog until the import ends.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sim/host_port.hpp"
#include "sim/modem.hpp"
#include "sim/usbip_codec.hpp"

namespace wwan::sim::usbip {

struct SessionCounters {
  std::uint64_t control_urbs = 0;     // CMD_SUBMIT on endpoint 0
  std::uint64_t control_stalls = 0;   // of which answered -EPIPE
  std::uint64_t bulk_interrupt_urbs = 0;
  std::uint64_t in_bytes = 0;         // data sent to the client in RET_SUBMIT (bulk/interrupt IN)
  std::uint64_t out_bytes = 0;        // OUT data the device took (bulk/interrupt OUT)
  std::uint64_t stalls = 0;           // bulk/interrupt URBs completed -EPIPE
  std::uint64_t unlinks = 0;          // CMD_UNLINK received
  std::uint64_t unlinks_cancelled = 0;  // of which found queued (RET_UNLINK -ECONNRESET)
};

class UrbSession {
 public:
  // `model` must outlive the session. A transfer longer than max_transfer_bytes ends the session
  // with a protocol error (the kernel's largest here: cdc_ncm's 64 KiB rx_max, well below 1 MiB).
  UrbSession(DeviceModel& model, std::size_t max_transfer_bytes = 1 << 20);
  UrbSession(const UrbSession&) = delete;
  UrbSession& operator=(const UrbSession&) = delete;

  // Bytes as they arrived from the client (any split). false = the stream is not USB/IP; error()
  // says why and the caller closes the connection.
  bool receive(Bytes bytes, Clock::time_point now);
  // Lets the device answer what it can now (time-driven data, a retried NAK).
  void poll(Clock::time_point now);
  // What to send to the client; the caller erases what it sent.
  ByteVector& output() { return output_; }
  // When poll() may complete something without more input (the model's own deadlines).
  std::optional<Clock::time_point> next_deadline() const { return port_.next_deadline(); }
  // The device left the bus (Faults::unplug): the caller closes the connection.
  bool device_gone() const { return gone_; }
  std::size_t queued_urbs() const { return urbs_.size(); }
  const SessionCounters& counters() const { return counters_; }
  const std::string& error() const { return error_; }

 private:
  struct Urb {
    std::uint32_t seqnum = 0;
    bool in = false;
    bool unlinked = false;  // RET_UNLINK already sent; its completion is swallowed
    ByteVector buffer;
    PortRequest request;
  };

  bool handle(const Command& c);
  void control(const Command& c);
  void complete(std::vector<PortRequest*>& done);

  HostPort port_;
  std::size_t max_transfer_bytes_;
  ByteVector input_;
  ByteVector output_;
  std::map<std::uint32_t, std::unique_ptr<Urb>> urbs_;  // queued bulk/interrupt URBs by seqnum
  std::vector<PortRequest*> done_;
  SessionCounters counters_;
  std::string error_;
  bool gone_ = false;
};

struct ServerOptions {
  std::string busid = "1-1";
  std::uint32_t busnum = 1;
  std::uint32_t devnum = 2;
  std::size_t max_transfer_bytes = 1 << 20;
};

// What the server reports as it goes (the wwan-sim program prints these).
struct ServerEvent {
  enum class Kind : std::uint8_t { devlist, imported, import_refused, detached, protocol_error } kind;
  std::string detail;                   // busid asked for, the peer, the error text
  Modem* modem = nullptr;               // imported / detached: the device (valid during the call)
  const SessionCounters* session = nullptr;  // detached / protocol_error
};

class UsbipServer {
 public:
  using ModemFactory = std::function<std::unique_ptr<Modem>()>;
  using EventSink = std::function<void(const ServerEvent&)>;

  UsbipServer(ModemFactory factory, ServerOptions options = {});
  ~UsbipServer();
  UsbipServer(const UsbipServer&) = delete;
  UsbipServer& operator=(const UsbipServer&) = delete;

  // Binds an IPv4 address ("127.0.0.1", "0.0.0.0") and port (0 = any free one) and listens.
  bool listen(const std::string& address, std::uint16_t port, std::string& error);
  std::uint16_t port() const { return port_; }

  // Serves until `stop_fd` becomes readable (a signalfd, an eventfd, a pipe). Returns false with
  // `error` only when the listening socket fails; client misbehaviour is an event, not a failure.
  bool run(int stop_fd, const EventSink& events, std::string& error);

 private:
  // false: stop_fd fired during the connection.
  bool serve(int fd, int stop_fd, const EventSink& events);
  bool serve_import(int fd, int stop_fd, const EventSink& events);

  ModemFactory factory_;
  ServerOptions options_;
  std::optional<ExportedDevice> record_;  // what DEVLIST / IMPORT describe (from the factory's first modem)
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
};

}  // namespace wwan::sim::usbip
