#include "tests/usbfs/usb_testbed.hpp"

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <linux/usb/ch9.h>
#include <linux/usbdevice_fs.h>
#include <umockdev.h>

#include "sim/host_port.hpp"

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <stdexcept>

namespace wwan::usbfs_test {

namespace {
std::uint16_t le16(const Bytes& b, std::size_t at) {
  return static_cast<std::uint16_t>(b[at] | b[at + 1] << 8);
}
}  // namespace

// ---------------------------------------------------------------- the usbfs ioctl handler

namespace {

struct InterfaceFacts {
  std::uint8_t number, alternate, endpoints, cls, subclass, protocol;
};

// The configurations inside a sysfs "descriptors" blob (after the 18-byte device descriptor).
std::vector<Bytes> split_configurations(const Bytes& descriptors) {
  std::vector<Bytes> configs;
  std::size_t at = 18;
  while (at + 4 <= descriptors.size() && descriptors[at + 1] == USB_DT_CONFIG) {
    const std::size_t total = le16(descriptors, at + 2);
    if (total < 9 || at + total > descriptors.size()) throw std::invalid_argument("bad wTotalLength in a profile");
    configs.emplace_back(descriptors.begin() + static_cast<std::ptrdiff_t>(at),
                         descriptors.begin() + static_cast<std::ptrdiff_t>(at + total));
    at += total;
  }
  return configs;
}

// Alt-setting-0 interface descriptors of one configuration: an independent, minimal walker.
std::vector<InterfaceFacts> interfaces_of(const Bytes& config) {
  std::vector<InterfaceFacts> out;
  for (std::size_t at = 9; at + 1 < config.size() && config[at] >= 2; at += config[at])
    if (config[at + 1] == USB_DT_INTERFACE && at + 9 <= config.size() && config[at + 3] == 0)
      out.push_back({config[at + 2], config[at + 3], config[at + 4], config[at + 5], config[at + 6], config[at + 7]});
  return out;
}

[[noreturn]] void fail(const std::string& what, GError* err) {
  const std::string msg = what + ": " + (err != nullptr ? err->message : "unknown error");
  if (err != nullptr) g_error_free(err);
  throw std::runtime_error(msg);
}

template <class T>
T load(const std::uint8_t* base, std::size_t offset) {
  T v;
  std::memcpy(&v, base + offset, sizeof v);
  return v;
}
template <class T>
void store(std::uint8_t* base, std::size_t offset, T v) {
  std::memcpy(base + offset, &v, sizeof v);
}

// The descriptors of a FakeDevice and nothing else: hubs, keyboards, sticks in mass-storage or
// download mode are listed and opened, never driven.
class DescriptorOnlyDevice final : public sim::DeviceModel {
 public:
  explicit DescriptorOnlyDevice(const FakeDevice& fake) {
    id_.descriptors = fake.descriptors;
    id_.strings = fake.strings;
    id_.active_configuration = fake.active_configuration;
    id_.kernel_drivers = fake.drivers;
    id_.speed_mbps = fake.speed_mbps;
  }
  const sim::DeviceIdentity& identity() const override { return id_; }
  bool set_configuration(std::uint8_t value) override {
    for (const Bytes& c : split_configurations(id_.descriptors))
      if (c[5] == value) return true;
    return false;
  }
  bool set_interface(std::uint8_t, std::uint8_t alternate) override { return alternate == 0; }
  bool clear_halt(std::uint8_t) override { return true; }
  std::optional<std::size_t> control(const sim::SetupPacket&, std::span<std::uint8_t>) override { return std::nullopt; }
  sim::EndpointResult out(std::uint8_t, std::span<const std::uint8_t>) override { return sim::EndpointResult::stall; }
  sim::InResult in(std::uint8_t, std::span<std::uint8_t>) override { return {sim::EndpointResult::stall, 0}; }

 private:
  sim::DeviceIdentity id_;
};

// One URB between SUBMITURB and REAPURB.
struct Urb {
  UMockdevIoctlData* urb_data = nullptr;  // owned ref; data is the handler's copy of struct usbdevfs_urb
  sim::PortRequest request;               // bulk / interrupt: queued in the HostPort
  bool control = false;
  UMockdevIoctlClient* owner = nullptr;   // the open file that submitted it
};

// The kernel's usbfs for one device node.
class UsbfsNode {
 public:
  UsbfsNode(UMockdevTestbed* tb, const std::string& devnode, const FakeDevice& fake)
      : fake_(fake),
        model_(fake.model ? fake.model : std::make_shared<DescriptorOnlyDevice>(fake)),
        port_(*model_),
        drivers_(fake.drivers) {
    stats_.drivers = drivers_;
    make_fifo(tb, devnode);
    handler_ = umockdev_ioctl_base_new();
    g_signal_connect_data(handler_, "handle-ioctl", reinterpret_cast<GCallback>(&UsbfsNode::on_ioctl), this,
                          nullptr, GConnectFlags{});
    g_signal_connect_data(handler_, "client-vanished", reinterpret_cast<GCallback>(&UsbfsNode::on_vanished), this,
                          nullptr, GConnectFlags{});
    GError* err = nullptr;
    if (!umockdev_testbed_attach_ioctl(tb, devnode.c_str(), handler_, &err)) fail("attach_ioctl " + devnode, err);
    timer_ = std::thread([this] { timer_loop(); });
  }
  ~UsbfsNode() {
    {
      const std::lock_guard lock(mu_);
      stop_ = true;
      cv_.notify_all();
    }
    timer_.join();
    for (auto& [addr, urb] : urbs_) g_object_unref(urb->urb_data);
    g_object_unref(handler_);
    if (fifo_ >= 0) close(fifo_);
  }
  UsbfsNode(const UsbfsNode&) = delete;
  UsbfsNode& operator=(const UsbfsNode&) = delete;

  UsbfsStats stats() const {
    const std::lock_guard lock(mu_);
    UsbfsStats s = stats_;
    s.drivers = drivers_;
    for (const auto& [i, owner] : claimed_) s.drivers[i] = "usbfs";
    return s;
  }

  void with_model(const std::function<void(sim::DeviceModel&)>& fn) {
    const std::lock_guard lock(mu_);
    fn(*model_);
    pump_locked();
    cv_.notify_all();
  }

  void unplug() {
    const std::lock_guard lock(mu_);
    gone_ = true;
    port_.disconnect_all();
    pump_locked();
  }

 private:
  // ---- polling: see the header (the FIFO trick)
  void make_fifo(UMockdevTestbed* tb, const std::string& devnode) {
    gchar* root = umockdev_testbed_get_root_dir(tb);
    const std::string path = std::string(root) + devnode;
    g_free(root);
    if (unlink(path.c_str()) != 0 || mkfifo(path.c_str(), 0666) != 0)
      throw std::runtime_error("cannot make " + path + " a FIFO: " + std::strerror(errno));
    fifo_ = open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fifo_ < 0 || fcntl(fifo_, F_SETPIPE_SZ, 4096) < 0)
      throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
    update_pollout_locked();
  }
  // Called with mu_ held after done_ changed: full pipe = nothing to reap (no POLLOUT).
  void update_pollout_locked() {
    if (fifo_ < 0) return;
    char page[4096] = {};
    const bool reapable = !done_.empty();
    if (reapable && fifo_full_) {
      while (read(fifo_, page, sizeof page) > 0) {
      }
      fifo_full_ = false;
    } else if (!reapable && !fifo_full_) {
      while (write(fifo_, page, sizeof page) > 0) {
      }
      fifo_full_ = true;
    }
  }

  // Lets the device answer queued requests and moves completed ones to the reap queue.
  void pump_locked() {
    std::vector<sim::PortRequest*> finished;
    port_.run(finished, std::chrono::steady_clock::now());
    if (!port_.connected()) gone_ = true;
    for (sim::PortRequest* r : finished) {
      Urb* urb = static_cast<Urb*>(r->tag);
      std::uint8_t* u = urb->urb_data->data;
      int status = 0;
      switch (r->status) {
        case sim::RequestStatus::completed: status = 0; break;
        case sim::RequestStatus::stall: status = -EPIPE; break;
        case sim::RequestStatus::cancelled: status = -ENOENT; break;
        case sim::RequestStatus::no_device: status = -ESHUTDOWN; break;
        case sim::RequestStatus::timed_out: status = -ETIMEDOUT; break;
        case sim::RequestStatus::pending: status = -EIO; break;
      }
      store<int>(u, offsetof(usbdevfs_urb, status), status);
      store<int>(u, offsetof(usbdevfs_urb, actual_length),
                 r->status == sim::RequestStatus::completed ? static_cast<int>(r->actual_bytes) : 0);
      done_.push_back(urb);
    }
    update_pollout_locked();
  }

  // Time-driven answers (a rate-limited source, a slow control answer): run at the model's deadline.
  void timer_loop() {
    std::unique_lock lock(mu_);
    while (!stop_) {
      const auto next = port_.next_deadline();
      if (next) {
        // Never spin on a deadline that has passed without the model answering: at most 1 kHz.
        cv_.wait_until(lock, std::max(*next, std::chrono::steady_clock::now() + std::chrono::milliseconds(1)));
      } else {
        cv_.wait(lock);
      }
      if (stop_) break;
      if (next && std::chrono::steady_clock::now() >= *next) pump_locked();
    }
  }

  // The file was closed (the process exited, was killed): devio.c's usbdev_release releases the
  // interfaces it claimed — without reattaching any kernel driver — and kills its URBs.
  // umockdev 0.17.16 was not seen to emit "client-vanished" for a SIGKILLed child in this suite,
  // so no test relies on it; when it is emitted, the state stays as the kernel's would.
  static void on_vanished(UMockdevIoctlBase*, UMockdevIoctlClient* client, gpointer user) {
    auto* self = static_cast<UsbfsNode*>(user);
    const std::lock_guard lock(self->mu_);
    for (auto it = self->claimed_.begin(); it != self->claimed_.end();) {
      if (it->second != client) {
        ++it;
        continue;
      }
      self->stats_.driver_events.push_back("release-on-close " + std::to_string(it->first));
      it = self->claimed_.erase(it);
    }
    // Its queued URBs are cancelled first (collected from run() while they still exist), then
    // forgotten together with the completed ones nobody will reap.
    for (auto& [addr, urb] : self->urbs_)
      if (urb->owner == client && !urb->control) self->port_.cancel(&urb->request);
    std::vector<sim::PortRequest*> finished;
    self->port_.run(finished, std::chrono::steady_clock::now());
    for (sim::PortRequest* r : finished) {
      Urb* urb = static_cast<Urb*>(r->tag);
      if (urb->owner != client) self->done_.push_back(urb);
    }
    for (auto it = self->urbs_.begin(); it != self->urbs_.end();) {
      Urb* urb = it->second.get();
      if (urb->owner != client) {
        ++it;
        continue;
      }
      self->done_.erase(std::remove(self->done_.begin(), self->done_.end(), urb), self->done_.end());
      g_object_unref(urb->urb_data);
      it = self->urbs_.erase(it);
    }
    self->update_pollout_locked();
  }

  static gboolean on_ioctl(UMockdevIoctlBase*, UMockdevIoctlClient* client, gpointer user) {
    auto* self = static_cast<UsbfsNode*>(user);
    const std::lock_guard lock(self->mu_);
    ++self->stats_.ioctls;
    try {
      self->handle(client);
    } catch (const std::exception& e) {  // never unwind into glib's signal emission
      ++self->stats_.unhandled;
      std::fprintf(stderr, "[usbfs %s] %s\n", self->fake_.port_path.c_str(), e.what());
      umockdev_ioctl_client_complete(client, -1, EIO);
    }
    self->cv_.notify_all();  // the timer re-reads the deadline
    return TRUE;
  }

  // A control transfer. nullopt = STALL.
  std::optional<std::size_t> control(const sim::SetupPacket& setup, std::span<std::uint8_t> data) {
    ++stats_.control_requests;
    if (setup.request_type == USB_DIR_IN && setup.request == USB_REQ_GET_DESCRIPTOR &&
        (setup.value >> 8) == USB_DT_STRING)
      stats_.string_indexes.push_back(static_cast<std::uint8_t>(setup.value & 0xff));
    const std::optional<std::size_t> n = port_.control(setup, data);
    if (n && setup.request_type == (USB_DIR_OUT | USB_RECIP_INTERFACE) && setup.request == USB_REQ_SET_INTERFACE)
      stats_.alt_settings[static_cast<std::uint8_t>(setup.index)] = static_cast<std::uint8_t>(setup.value);
    pump_locked();  // a class request may have produced IN data (RESPONSE_AVAILABLE)
    return n;
  }

  bool interface_exists(unsigned number) const {
    const Bytes* active = nullptr;
    const std::vector<Bytes> configs = split_configurations(model_->identity().descriptors);
    for (const Bytes& c : configs)
      if (c[5] == current_configuration_) active = &c;
    if (active == nullptr) return false;
    for (const InterfaceFacts& f : interfaces_of(*active))
      if (f.number == number) return true;
    return false;
  }

  void complete(UMockdevIoctlClient* client, long result, int errno_value) {
    umockdev_ioctl_client_complete(client, result, errno_value);
  }

  void handle(UMockdevIoctlClient* client) {
    const gulong request = umockdev_ioctl_client_get_request(client);
    UMockdevIoctlData* arg = umockdev_ioctl_client_get_arg(client);
    GError* err = nullptr;
    const auto resolve = [&](UMockdevIoctlData* base, std::size_t offset, std::size_t length) {
      UMockdevIoctlData* d = umockdev_ioctl_data_resolve(base, offset, length, &err);
      if (d == nullptr) fail("ioctl_data_resolve", err);
      return d;
    };
    // Reads a plain value the ioctl argument points to.
    const auto read_arg = [&](auto& value) {
      UMockdevIoctlData* d = resolve(arg, 0, sizeof value);
      std::memcpy(&value, d->data, sizeof value);
      g_object_unref(d);
    };
    // Once the device has left the bus every ioctl but REAP fails like devio.c's (ENODEV).
    if (gone_ && request != USBDEVFS_REAPURB && request != USBDEVFS_REAPURBNDELAY) {
      complete(client, -1, ENODEV);
      return;
    }

    switch (request) {
      case USBDEVFS_GET_CAPABILITIES: {
        // What an xHCI host reports; with BULK_SCATTER_GATHER libusb submits one URB per transfer.
        const std::uint32_t value = USBDEVFS_CAP_ZERO_PACKET | USBDEVFS_CAP_BULK_CONTINUATION |
                                    USBDEVFS_CAP_NO_PACKET_SIZE_LIM | USBDEVFS_CAP_REAP_AFTER_DISCONNECT |
                                    USBDEVFS_CAP_BULK_SCATTER_GATHER;
        UMockdevIoctlData* caps = resolve(arg, 0, sizeof value);
        std::memcpy(caps->data, &value, sizeof value);
        g_object_unref(caps);
        complete(client, 0, 0);
        return;
      }
      case USBDEVFS_CONNECTINFO: {
        UMockdevIoctlData* ci = resolve(arg, 0, sizeof(usbdevfs_connectinfo));
        usbdevfs_connectinfo info{};
        info.devnum = fake_.devnum;
        info.slow = fake_.speed_mbps <= 12 ? 1 : 0;
        std::memcpy(ci->data, &info, sizeof info);
        g_object_unref(ci);
        complete(client, 0, 0);
        return;
      }
      case USBDEVFS_GET_SPEED: {
        const long speed = fake_.speed_mbps >= 5000  ? USB_SPEED_SUPER
                           : fake_.speed_mbps >= 480 ? USB_SPEED_HIGH
                           : fake_.speed_mbps >= 12  ? USB_SPEED_FULL
                                                     : USB_SPEED_LOW;
        complete(client, speed, 0);
        return;
      }
      case USBDEVFS_GETDRIVER: {
        UMockdevIoctlData* gd = resolve(arg, 0, sizeof(usbdevfs_getdriver));
        usbdevfs_getdriver q{};
        std::memcpy(&q, gd->data, sizeof q);
        const auto number = static_cast<std::uint8_t>(q.interface);
        const auto d = drivers_.find(number);
        const char* name = claimed_.count(number) != 0 ? "usbfs" : d != drivers_.end() ? d->second.c_str() : nullptr;
        if (name == nullptr) {
          g_object_unref(gd);
          complete(client, -1, ENODATA);
          return;
        }
        std::snprintf(q.driver, sizeof q.driver, "%s", name);
        std::memcpy(gd->data, &q, sizeof q);
        g_object_unref(gd);
        complete(client, 0, 0);
        return;
      }
      case USBDEVFS_CLAIMINTERFACE:
      case USBDEVFS_RELEASEINTERFACE: {
        unsigned int number = 0;
        read_arg(number);
        const auto i = static_cast<std::uint8_t>(number);
        if (!interface_exists(number)) {
          complete(client, -1, EINVAL);
          return;
        }
        if (request == USBDEVFS_CLAIMINTERFACE) {
          if (const auto c = claimed_.find(i); c != claimed_.end()) {
            complete(client, c->second == client ? 0 : -1, c->second == client ? 0 : EBUSY);
            return;
          }
          if (drivers_.count(i) != 0) {  // devio.c claimintf: usb_driver_claim_interface -> EBUSY
            complete(client, -1, EBUSY);
            return;
          }
          claimed_[i] = client;
          stats_.driver_events.push_back("claim " + std::to_string(number));
        } else {
          if (const auto c = claimed_.find(i); c == claimed_.end() || c->second != client) {
            complete(client, -1, EINVAL);
            return;
          }
          claimed_.erase(i);
          stats_.driver_events.push_back("release " + std::to_string(number));
        }
        complete(client, 0, 0);
        return;
      }
      case USBDEVFS_IOCTL: {  // struct usbdevfs_ioctl: a request to the interface's driver
        usbdevfs_ioctl command{};
        read_arg(command);
        const auto i = static_cast<std::uint8_t>(command.ifno);
        if (command.ifno < 0 || !interface_exists(static_cast<unsigned>(command.ifno))) {
          complete(client, -1, EINVAL);
          return;
        }
        if (command.ioctl_code == static_cast<int>(USBDEVFS_DISCONNECT)) {
          const auto d = drivers_.find(i);
          if (d == drivers_.end()) {
            complete(client, -1, ENODATA);
            return;
          }
          stats_.driver_events.push_back("detach " + std::to_string(i) + " " + d->second);
          drivers_.erase(d);
          complete(client, 0, 0);
          return;
        }
        if (command.ioctl_code == static_cast<int>(USBDEVFS_CONNECT)) {
          // device_attach(): 1 = a driver bound, 0 = none wanted it; EBUSY while claimed.
          if (claimed_.count(i) != 0 || drivers_.count(i) != 0) {
            complete(client, -1, EBUSY);
            return;
          }
          const auto plug_in = fake_.drivers.find(i);
          if (plug_in == fake_.drivers.end()) {
            complete(client, 0, 0);
            return;
          }
          drivers_[i] = plug_in->second;
          stats_.driver_events.push_back("attach " + std::to_string(i) + " " + plug_in->second);
          complete(client, 1, 0);
          return;
        }
        ++stats_.unhandled;
        complete(client, -1, ENOTTY);
        return;
      }
      case USBDEVFS_DISCONNECT_CLAIM: {
        usbdevfs_disconnect_claim dc{};
        read_arg(dc);
        const auto i = static_cast<std::uint8_t>(dc.interface);
        if (!interface_exists(dc.interface)) {
          complete(client, -1, EINVAL);
          return;
        }
        const auto d = drivers_.find(i);
        if (d != drivers_.end()) {
          stats_.driver_events.push_back("detach " + std::to_string(i) + " " + d->second);
          drivers_.erase(d);
        }
        claimed_[i] = client;
        stats_.driver_events.push_back("claim " + std::to_string(i));
        complete(client, 0, 0);
        return;
      }
      case USBDEVFS_SETINTERFACE: {
        usbdevfs_setinterface si{};
        read_arg(si);
        const auto i = static_cast<std::uint8_t>(si.interface);
        if (drivers_.count(i) != 0) {  // devio.c checkintf: someone else's interface
          complete(client, -1, EBUSY);
          return;
        }
        if (const auto c = claimed_.find(i); c != claimed_.end() && c->second != client) {
          complete(client, -1, EBUSY);
          return;
        }
        claimed_[i] = client;  // checkintf claims it implicitly, as devio.c does
        if (!port_.set_interface(i, static_cast<std::uint8_t>(si.altsetting))) {
          complete(client, -1, EINVAL);
          return;
        }
        stats_.alt_settings[i] = static_cast<std::uint8_t>(si.altsetting);
        pump_locked();
        complete(client, 0, 0);
        return;
      }
      case USBDEVFS_SETCONFIGURATION: {
        unsigned int value = 0;
        read_arg(value);
        if (!claimed_.empty() || !drivers_.empty()) {  // usb_set_configuration needs every interface free
          complete(client, -1, EBUSY);
          return;
        }
        if (!port_.set_configuration(static_cast<std::uint8_t>(value))) {
          complete(client, -1, EINVAL);
          return;
        }
        current_configuration_ = static_cast<std::uint8_t>(value);
        complete(client, 0, 0);
        return;
      }
      case USBDEVFS_CLEAR_HALT: {
        unsigned int ep = 0;
        read_arg(ep);
        ++stats_.clear_halts;
        const bool ok = port_.clear_halt(static_cast<std::uint8_t>(ep));
        pump_locked();
        complete(client, ok ? 0 : -1, ok ? 0 : EPIPE);
        return;
      }
      case USBDEVFS_RESET:
        complete(client, 0, 0);
        return;
      case USBDEVFS_CONTROL: {  // synchronous control transfer
        UMockdevIoctlData* ct = resolve(arg, 0, sizeof(usbdevfs_ctrltransfer));
        usbdevfs_ctrltransfer c{};
        std::memcpy(&c, ct->data, sizeof c);
        Bytes buffer(c.wLength);
        UMockdevIoctlData* data = nullptr;
        if (c.wLength > 0) {
          data = resolve(ct, offsetof(usbdevfs_ctrltransfer, data), c.wLength);
          std::memcpy(buffer.data(), data->data, c.wLength);
        }
        const std::optional<std::size_t> n =
            control({c.bRequestType, c.bRequest, c.wValue, c.wIndex, c.wLength}, buffer);
        if (n && (c.bRequestType & USB_DIR_IN) != 0 && *n > 0) std::memcpy(data->data, buffer.data(), *n);
        if (data != nullptr) g_object_unref(data);
        g_object_unref(ct);
        if (!n) {
          complete(client, -1, gone_ ? ENODEV : EPIPE);
          return;
        }
        complete(client, static_cast<long>(*n), 0);
        return;
      }
      case USBDEVFS_SUBMITURB: {
        auto urb = std::make_unique<Urb>();
        urb->urb_data = resolve(arg, 0, sizeof(usbdevfs_urb));
        // Field by field: struct usbdevfs_urb ends in a zero-length array (no locals of it in C++).
        std::uint8_t* u = urb->urb_data->data;
        const auto type = load<unsigned char>(u, offsetof(usbdevfs_urb, type));
        const auto endpoint = load<unsigned char>(u, offsetof(usbdevfs_urb, endpoint));
        const auto buffer_length = load<int>(u, offsetof(usbdevfs_urb, buffer_length));
        if (buffer_length < 0) {
          g_object_unref(urb->urb_data);
          complete(client, -1, EINVAL);
          return;
        }
        std::uint8_t* buf = nullptr;
        if (buffer_length > 0) {
          // Pulls the client's buffer over; umockdev writes it back on reap.
          UMockdevIoctlData* b = resolve(urb->urb_data, offsetof(usbdevfs_urb, buffer),
                                         static_cast<std::size_t>(buffer_length));
          buf = b->data;
          g_object_unref(b);  // still referenced by urb_data
        }
        store<int>(u, offsetof(usbdevfs_urb, status), 0);
        store<int>(u, offsetof(usbdevfs_urb, actual_length), 0);
        Urb* raw = urb.get();
        raw->owner = client;
        if (type == USBDEVFS_URB_TYPE_CONTROL) {
          if (buffer_length < 8) {
            g_object_unref(urb->urb_data);
            complete(client, -1, EINVAL);
            return;
          }
          // The buffer is the 8-byte setup packet followed by the data stage.
          const sim::SetupPacket setup{buf[0], buf[1], static_cast<std::uint16_t>(buf[2] | buf[3] << 8),
                                       static_cast<std::uint16_t>(buf[4] | buf[5] << 8),
                                       static_cast<std::uint16_t>(buf[6] | buf[7] << 8)};
          const std::size_t room = std::min<std::size_t>(setup.length, static_cast<std::size_t>(buffer_length) - 8);
          const std::optional<std::size_t> n = control(setup, std::span<std::uint8_t>(buf + 8, room));
          store<int>(u, offsetof(usbdevfs_urb, status), n ? 0 : -EPIPE);
          store<int>(u, offsetof(usbdevfs_urb, actual_length), n ? static_cast<int>(*n) : 0);
          raw->control = true;
          done_.push_back(raw);
          urbs_[urb->urb_data->client_addr] = std::move(urb);
          update_pollout_locked();
          complete(client, 0, 0);
          return;
        }
        if (type != USBDEVFS_URB_TYPE_BULK && type != USBDEVFS_URB_TYPE_INTERRUPT) {
          g_object_unref(urb->urb_data);
          ++stats_.unhandled;  // isochronous: no modem function uses it
          complete(client, -1, EINVAL);
          return;
        }
        raw->request.endpoint = endpoint;
        raw->request.buffer = std::span<std::uint8_t>(buf, static_cast<std::size_t>(buffer_length));
        raw->request.length = static_cast<std::size_t>(buffer_length);
        raw->request.tag = raw;
        ++stats_.urbs_submitted;
        urbs_[urb->urb_data->client_addr] = std::move(urb);
        port_.submit(&raw->request);
        stats_.max_urbs_queued = std::max(stats_.max_urbs_queued, static_cast<unsigned>(port_.queued()));
        pump_locked();
        complete(client, 0, 0);
        return;
      }
      case USBDEVFS_REAPURB:
      case USBDEVFS_REAPURBNDELAY: {
        if (done_.empty()) {
          complete(client, -1, gone_ ? ENODEV : EAGAIN);
          return;
        }
        Urb* urb = done_.front();
        done_.pop_front();
        update_pollout_locked();
        if (!urb->control) ++stats_.urbs_reaped;
        UMockdevIoctlData* out = resolve(arg, 0, sizeof(void*));
        // *arg = the client's urb pointer; umockdev writes the urb and its buffer back first.
        umockdev_ioctl_data_set_ptr(out, 0, urb->urb_data);
        g_object_unref(out);
        const auto it = urbs_.find(urb->urb_data->client_addr);
        g_object_unref(urb->urb_data);
        if (it != urbs_.end()) urbs_.erase(it);
        complete(client, 0, 0);
        return;
      }
      case USBDEVFS_DISCARDURB: {
        // The argument is the client's urb pointer itself.
        const gulong addr = *reinterpret_cast<const gulong*>(arg->data);
        const auto it = urbs_.find(addr);
        if (it == urbs_.end() || it->second->control || !port_.cancel(&it->second->request)) {
          complete(client, -1, EINVAL);  // already completed: libusb reaps it
          return;
        }
        ++stats_.urbs_discarded;
        pump_locked();
        complete(client, 0, 0);
        return;
      }
      default:
        ++stats_.unhandled;
        std::fprintf(stderr, "[usbfs %s] unhandled ioctl 0x%lx\n", fake_.port_path.c_str(), request);
        complete(client, -1, ENOTTY);
        return;
    }
  }

  FakeDevice fake_;
  std::shared_ptr<sim::DeviceModel> model_;
  sim::HostPort port_;
  UMockdevIoctlBase* handler_ = nullptr;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::thread timer_;
  bool stop_ = false;
  bool gone_ = false;
  int fifo_ = -1;
  bool fifo_full_ = false;
  std::uint8_t current_configuration_ = fake_.active_configuration;
  std::map<std::uint8_t, std::string> drivers_;  // bound kernel drivers now
  // Claimed through usbfs, and by which open file (devio.c: ps->ifclaimed is per file).
  std::map<std::uint8_t, UMockdevIoctlClient*> claimed_;
  std::map<gulong, std::unique_ptr<Urb>> urbs_;  // by the client's urb address
  std::deque<Urb*> done_;                        // completed, waiting to be reaped
  UsbfsStats stats_;
};

std::string hex(unsigned v, int digits) {
  char s[16];
  std::snprintf(s, sizeof s, "%0*x", digits, v);
  return s;
}

// One device in umockdev's record format (the one umockdev-record writes): P: sysfs path,
// N: device node under /dev, E: uevent property, A: attribute, H: binary attribute in hex,
// L: symlink. Records are added with umockdev_testbed_add_from_string, which also creates the
// /dev node as a plain file (umockdev_testbed_add_device creates no node for DEVNAME).
struct Record {
  std::string text;
  explicit Record(const std::string& syspath) { text = "P: " + syspath + "\n"; }
  void line(char kind, const std::string& name, const std::string& value) {
    if (value.find('\n') != std::string::npos) throw std::invalid_argument(name + ": newline in a value");
    text += std::string(1, kind) + ": " + name + "=" + value + "\n";
  }
};

std::string hex_bytes(const Bytes& b) {
  std::string s;
  for (const std::uint8_t v : b) s += hex(v, 2);
  return s;
}

}  // namespace

// ---------------------------------------------------------------- the testbed

struct UsbTestbed::Impl {
  UMockdevTestbed* tb = nullptr;
  std::map<std::string, std::string> syspaths;  // port path -> /devices/... (below /sys) of added devices
  std::map<std::string, std::unique_ptr<UsbfsNode>> nodes;
};

UsbTestbed::UsbTestbed() : impl_(std::make_unique<Impl>()) { impl_->tb = umockdev_testbed_new(); }

UsbTestbed::~UsbTestbed() {
  impl_->nodes.clear();
  g_object_unref(impl_->tb);  // removes the temporary tree
}

bool UsbTestbed::preloaded() {
  // What matters is whether the library that redirects /sys, /dev and ioctls is loaded (RTLD_NOLOAD:
  // only look, never load it now: it has to be there from the start to see every open()).
  return dlopen("libumockdev-preload.so.0", RTLD_NOW | RTLD_NOLOAD) != nullptr;
}

std::string UsbTestbed::sys_dir() const {
  gchar* d = umockdev_testbed_get_sys_dir(impl_->tb);
  std::string s(d);
  g_free(d);
  return s;
}

UsbfsStats UsbTestbed::stats(const std::string& port_path) const {
  const auto n = impl_->nodes.find(port_path);
  return n == impl_->nodes.end() ? UsbfsStats{} : n->second->stats();
}

void UsbTestbed::with_model(const std::string& port_path, const std::function<void(sim::DeviceModel&)>& fn) {
  const auto n = impl_->nodes.find(port_path);
  if (n == impl_->nodes.end()) throw std::invalid_argument(port_path + ": no such device with a usbfs handler");
  n->second->with_model(fn);
}

void UsbTestbed::unplug(const std::string& port_path) {
  const auto p = impl_->syspaths.find(port_path);
  if (p == impl_->syspaths.end()) throw std::invalid_argument(port_path + ": no such device");
  const auto n = impl_->nodes.find(port_path);
  if (n != impl_->nodes.end()) n->second->unplug();
  const std::string sys = "/sys" + p->second;
  umockdev_testbed_uevent(impl_->tb, sys.c_str(), "remove");
  umockdev_testbed_remove_device(impl_->tb, sys.c_str());
  // umockdev 0.17 leaves the /sys/bus/usb/devices links of the device and its interfaces behind;
  // the kernel removes them, and a device re-enumerating at the same port needs them gone.
  const std::string bus_dir = sys_dir() + "/bus/usb/devices";
  if (GDir* dir = g_dir_open(bus_dir.c_str(), 0, nullptr)) {
    for (const gchar* name = g_dir_read_name(dir); name != nullptr; name = g_dir_read_name(dir)) {
      const std::string link(name);
      if (link == port_path || link.rfind(port_path + ":", 0) == 0) unlink((bus_dir + "/" + link).c_str());
    }
    g_dir_close(dir);
  }
  impl_->syspaths.erase(p);
}

FakeDevice from_model(const std::string& port_path, std::uint8_t devnum, std::shared_ptr<sim::DeviceModel> model) {
  FakeDevice f;
  f.port_path = port_path;
  f.devnum = devnum;
  const sim::DeviceIdentity& id = model->identity();
  f.descriptors = id.descriptors;
  f.active_configuration = id.active_configuration;
  f.strings = id.strings;
  f.drivers = id.kernel_drivers;
  f.speed_mbps = id.speed_mbps;
  f.model = std::move(model);
  return f;
}

void UsbTestbed::add(const FakeDevice& fake) {
  const Bytes& d = fake.descriptors;
  if (d.size() < 18 || d[1] != USB_DT_DEVICE) throw std::invalid_argument(fake.port_path + ": no device descriptor");
  const std::vector<Bytes> configs = split_configurations(d);
  if (configs.size() != d[17]) throw std::invalid_argument(fake.port_path + ": bNumConfigurations disagrees");

  // Bus number: "usb2" -> 2, "2-1.3" -> 2. The parent: "1-1.2" -> "1-1" -> "usb1" -> none.
  const bool root_hub = fake.port_path.rfind("usb", 0) == 0;
  const unsigned bus = static_cast<unsigned>(std::stoul(root_hub ? fake.port_path.substr(3) : fake.port_path));
  std::string syspath = "/devices/pci0000:00/0000:00:14.0";  // all buses on one xHCI controller
  if (!root_hub) {
    const std::size_t cut = fake.port_path.find_last_of(".-");
    const std::string parent = fake.port_path[cut] == '-' ? "usb" + std::to_string(bus) : fake.port_path.substr(0, cut);
    const auto p = impl_->syspaths.find(parent);
    if (p == impl_->syspaths.end()) throw std::invalid_argument(fake.port_path + ": add its parent " + parent + " first");
    syspath = p->second;
  }
  syspath += "/" + fake.port_path;

  const std::uint16_t vid = le16(d, 8), pid = le16(d, 10), bcd_device = le16(d, 12);
  char busnum[8], devnum[8];
  std::snprintf(busnum, sizeof busnum, "%03u", bus);
  std::snprintf(devnum, sizeof devnum, "%03u", static_cast<unsigned>(fake.devnum));
  const std::string node = std::string("bus/usb/") + busnum + "/" + devnum;
  const std::string product_prop = hex(vid, 1) + "/" + hex(pid, 1) + "/" + hex(bcd_device, 1);

  // What Linux shows for a usb_device (drivers/usb/core/sysfs.c), as far as libusb and libudev look.
  Record r(syspath);
  r.text += "N: " + node + "\n";
  for (const auto& [name, value] : std::vector<std::pair<std::string, std::string>>{
           {"SUBSYSTEM", "usb"}, {"DEVTYPE", "usb_device"}, {"DRIVER", "usb"}, {"DEVNAME", "/dev/" + node},
           {"PRODUCT", product_prop}, {"TYPE", std::to_string(d[4]) + "/" + std::to_string(d[5]) + "/" + std::to_string(d[6])},
           {"BUSNUM", busnum}, {"DEVNUM", devnum}, {"MAJOR", "189"},
           {"MINOR", std::to_string((bus - 1) * 128 + fake.devnum - 1u)}})
    r.line('E', name, value);
  for (const auto& [name, value] : std::vector<std::pair<std::string, std::string>>{
           {"busnum", std::to_string(bus)},
           {"devnum", std::to_string(fake.devnum)},
           {"speed", std::to_string(fake.speed_mbps)},
           {"idVendor", hex(vid, 4)},
           {"idProduct", hex(pid, 4)},
           {"bcdDevice", hex(bcd_device, 4)},
           {"bDeviceClass", hex(d[4], 2)},
           {"bDeviceSubClass", hex(d[5], 2)},
           {"bDeviceProtocol", hex(d[6], 2)},
           {"bMaxPacketSize0", std::to_string(d[7])},
           {"bNumConfigurations", std::to_string(d[17])},
           {"bConfigurationValue", std::to_string(fake.active_configuration)},
           {"dev", "189:" + std::to_string((bus - 1) * 128 + fake.devnum - 1u)}})
    r.line('A', name, value);
  const std::uint8_t string_indexes[] = {d[14], d[15], d[16]};
  const char* string_names[] = {"manufacturer", "product", "serial"};
  for (std::size_t i = 0; i < 3; ++i) {
    const auto s = fake.strings.find(string_indexes[i]);
    if (string_indexes[i] != 0 && s != fake.strings.end()) r.line('A', string_names[i], s->second);
  }
  r.line('H', "descriptors", hex_bytes(d));

  // The interfaces of the active configuration, as the kernel creates them once it is set, each
  // with its "driver" link (relative to the interface's directory, like the kernel's).
  std::string records = r.text;
  const Bytes* active = nullptr;
  for (const Bytes& c : configs)
    if (c[5] == fake.active_configuration) active = &c;
  if (active != nullptr) {
    for (const InterfaceFacts& f : interfaces_of(*active)) {
      const std::string name =
          fake.port_path + ":" + std::to_string(fake.active_configuration) + "." + std::to_string(f.number);
      Record i(syspath + "/" + name);
      i.line('E', "SUBSYSTEM", "usb");
      i.line('E', "DEVTYPE", "usb_interface");
      i.line('E', "PRODUCT", product_prop);
      i.line('E', "INTERFACE", std::to_string(f.cls) + "/" + std::to_string(f.subclass) + "/" + std::to_string(f.protocol));
      i.line('A', "bInterfaceNumber", hex(f.number, 2));
      i.line('A', "bAlternateSetting", " 0");
      i.line('A', "bNumEndpoints", hex(f.endpoints, 2));
      i.line('A', "bInterfaceClass", hex(f.cls, 2));
      i.line('A', "bInterfaceSubClass", hex(f.subclass, 2));
      i.line('A', "bInterfaceProtocol", hex(f.protocol, 2));
      const auto drv = fake.drivers.find(f.number);
      if (drv != fake.drivers.end()) {
        i.line('E', "DRIVER", drv->second);
        std::string up;  // from /sys/devices/.../<interface> back up to /sys
        for (const char c : syspath + "/" + name)
          if (c == '/') up += "../";
        i.line('L', "driver", up + "bus/usb/drivers/" + drv->second);
      }
      records += "\n" + i.text;
    }
  }
  GError* err = nullptr;
  if (!umockdev_testbed_add_from_string(impl_->tb, records.c_str(), &err))
    fail(fake.port_path + ": umockdev_testbed_add_from_string", err);
  impl_->syspaths[fake.port_path] = syspath;

  if (fake.usbfs) impl_->nodes[fake.port_path] = std::make_unique<UsbfsNode>(impl_->tb, "/dev/" + node, fake);
}

}  // namespace wwan::usbfs_test
