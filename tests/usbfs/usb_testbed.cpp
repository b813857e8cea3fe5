#include "tests/usbfs/usb_testbed.hpp"

#include <dlfcn.h>
#include <sys/ioctl.h>
#include <linux/usb/ch9.h>
#include <linux/usbdevice_fs.h>
#include <umockdev.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
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

class UsbfsNode {
 public:
  UsbfsNode(UMockdevTestbed* tb, const std::string& devnode, const FakeDevice& fake)
      : fake_(fake), configs_(split_configurations(fake.descriptors)) {
    handler_ = umockdev_ioctl_base_new();
    g_signal_connect_data(handler_, "handle-ioctl", reinterpret_cast<GCallback>(&UsbfsNode::on_ioctl), this,
                          nullptr, GConnectFlags{});
    GError* err = nullptr;
    if (!umockdev_testbed_attach_ioctl(tb, devnode.c_str(), handler_, &err)) fail("attach_ioctl " + devnode, err);
  }
  ~UsbfsNode() {
    for (UMockdevIoctlData* d : done_) g_object_unref(d);
    g_object_unref(handler_);
  }
  UsbfsNode(const UsbfsNode&) = delete;
  UsbfsNode& operator=(const UsbfsNode&) = delete;

  UsbfsStats stats() const {
    const std::lock_guard lock(mu_);
    return stats_;
  }

 private:
  // A standard control request to the device; nullopt = STALL. Called with mu_ held.
  std::optional<Bytes> control(std::uint8_t request_type, std::uint8_t request, std::uint16_t value,
                               std::uint16_t length) {
    ++stats_.control_requests;
    Bytes reply;
    if (request_type == USB_DIR_IN && request == USB_REQ_GET_DESCRIPTOR) {
      const auto type = static_cast<std::uint8_t>(value >> 8);
      const auto index = static_cast<std::uint8_t>(value & 0xff);
      if (type == USB_DT_DEVICE) {
        reply.assign(fake_.descriptors.begin(), fake_.descriptors.begin() + 18);
      } else if (type == USB_DT_CONFIG && index < configs_.size()) {
        reply = configs_[index];
      } else if (type == USB_DT_STRING) {
        stats_.string_indexes.push_back(index);
        if (index == 0) {
          reply = {4, USB_DT_STRING, 0x09, 0x04};  // LANGID: en-US
        } else {
          const auto s = fake_.strings.find(index);
          if (s == fake_.strings.end()) return std::nullopt;
          reply = sim::string_descriptor(s->second.c_str());
        }
      } else {
        return std::nullopt;
      }
    } else if (request_type == USB_DIR_IN && request == USB_REQ_GET_CONFIGURATION) {
      reply = {fake_.active_configuration};
    } else if (request_type == USB_DIR_IN && request == USB_REQ_GET_STATUS) {
      reply = {0, 0};
    } else {
      return std::nullopt;
    }
    if (reply.size() > length) reply.resize(length);
    return reply;
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
    return TRUE;
  }

  void handle(UMockdevIoctlClient* client) {
    const gulong request = umockdev_ioctl_client_get_request(client);
    UMockdevIoctlData* arg = umockdev_ioctl_client_get_arg(client);
    GError* err = nullptr;
    const auto resolve = [&](std::size_t offset, std::size_t length) {
      UMockdevIoctlData* d = umockdev_ioctl_data_resolve(arg, offset, length, &err);
      if (d == nullptr) fail("ioctl_data_resolve", err);
      return d;
    };

    switch (request) {
      case USBDEVFS_GET_CAPABILITIES: {
        UMockdevIoctlData* caps = resolve(0, sizeof(std::uint32_t));
        // What an xHCI host reports; with BULK_SCATTER_GATHER libusb submits one URB per transfer.
        const std::uint32_t value = USBDEVFS_CAP_ZERO_PACKET | USBDEVFS_CAP_BULK_CONTINUATION |
                                    USBDEVFS_CAP_NO_PACKET_SIZE_LIM | USBDEVFS_CAP_REAP_AFTER_DISCONNECT |
                                    USBDEVFS_CAP_BULK_SCATTER_GATHER;
        std::memcpy(caps->data, &value, sizeof value);
        g_object_unref(caps);
        umockdev_ioctl_client_complete(client, 0, 0);
        return;
      }
      case USBDEVFS_CONNECTINFO: {
        UMockdevIoctlData* ci = resolve(0, sizeof(usbdevfs_connectinfo));
        usbdevfs_connectinfo info{};
        info.devnum = fake_.devnum;
        info.slow = fake_.speed_mbps <= 12 ? 1 : 0;
        std::memcpy(ci->data, &info, sizeof info);
        g_object_unref(ci);
        umockdev_ioctl_client_complete(client, 0, 0);
        return;
      }
      case USBDEVFS_GET_SPEED: {
        const long speed = fake_.speed_mbps >= 5000  ? USB_SPEED_SUPER
                           : fake_.speed_mbps >= 480 ? USB_SPEED_HIGH
                           : fake_.speed_mbps >= 12  ? USB_SPEED_FULL
                                                     : USB_SPEED_LOW;
        umockdev_ioctl_client_complete(client, speed, 0);
        return;
      }
      case USBDEVFS_GETDRIVER: {
        UMockdevIoctlData* gd = resolve(0, sizeof(usbdevfs_getdriver));
        usbdevfs_getdriver q{};
        std::memcpy(&q, gd->data, sizeof q);
        const auto d = fake_.drivers.find(static_cast<std::uint8_t>(q.interface));
        if (d == fake_.drivers.end()) {
          g_object_unref(gd);
          umockdev_ioctl_client_complete(client, -1, ENODATA);
          return;
        }
        std::snprintf(q.driver, sizeof q.driver, "%s", d->second.c_str());
        std::memcpy(gd->data, &q, sizeof q);
        g_object_unref(gd);
        umockdev_ioctl_client_complete(client, 0, 0);
        return;
      }
      case USBDEVFS_CONTROL: {  // synchronous control transfer
        UMockdevIoctlData* ct = resolve(0, sizeof(usbdevfs_ctrltransfer));
        usbdevfs_ctrltransfer c{};
        std::memcpy(&c, ct->data, sizeof c);
        const std::optional<Bytes> reply = control(c.bRequestType, c.bRequest, c.wValue, c.wLength);
        if (!reply) {
          g_object_unref(ct);
          umockdev_ioctl_client_complete(client, -1, EPIPE);
          return;
        }
        if (!reply->empty()) {
          UMockdevIoctlData* data =
              umockdev_ioctl_data_resolve(ct, offsetof(usbdevfs_ctrltransfer, data), c.wLength, &err);
          if (data == nullptr) fail("ioctl_data_resolve", err);
          std::memcpy(data->data, reply->data(), reply->size());
          g_object_unref(data);
        }
        g_object_unref(ct);
        umockdev_ioctl_client_complete(client, static_cast<long>(reply->size()), 0);
        return;
      }
      case USBDEVFS_SUBMITURB: {
        UMockdevIoctlData* urb_data = resolve(0, sizeof(usbdevfs_urb));
        // Field by field: struct usbdevfs_urb ends in a zero-length array (no locals of it in C++).
        std::uint8_t* u = urb_data->data;
        const auto type = load<unsigned char>(u, offsetof(usbdevfs_urb, type));
        const auto buffer_length = load<int>(u, offsetof(usbdevfs_urb, buffer_length));
        if (type != USBDEVFS_URB_TYPE_CONTROL || buffer_length < 8) {
          g_object_unref(urb_data);  // bulk / interrupt / iso: not part of this harness
          ++stats_.unhandled;
          umockdev_ioctl_client_complete(client, -1, EINVAL);
          return;
        }
        // The buffer is the 8-byte setup packet followed by the data stage.
        UMockdevIoctlData* buf = umockdev_ioctl_data_resolve(urb_data, offsetof(usbdevfs_urb, buffer),
                                                             static_cast<std::size_t>(buffer_length), &err);
        if (buf == nullptr) fail("ioctl_data_resolve", err);
        const std::uint8_t* setup = buf->data;
        const std::optional<Bytes> reply =
            control(setup[0], setup[1], static_cast<std::uint16_t>(setup[2] | setup[3] << 8),
                    static_cast<std::uint16_t>(setup[6] | setup[7] << 8));
        store<int>(u, offsetof(usbdevfs_urb, status), reply ? 0 : -EPIPE);
        // actual_length excludes the setup packet
        store<int>(u, offsetof(usbdevfs_urb, actual_length), reply ? static_cast<int>(reply->size()) : 0);
        if (reply && !reply->empty() && reply->size() + 8 <= static_cast<std::size_t>(buffer_length))
          std::memcpy(buf->data + 8, reply->data(), reply->size());
        g_object_unref(buf);  // still referenced by urb_data, written back on reap
        done_.push_back(urb_data);
        umockdev_ioctl_client_complete(client, 0, 0);
        return;
      }
      case USBDEVFS_REAPURB:
      case USBDEVFS_REAPURBNDELAY: {
        if (done_.empty()) {
          umockdev_ioctl_client_complete(client, -1, EAGAIN);
          return;
        }
        UMockdevIoctlData* urb_data = done_.front();
        done_.pop_front();
        UMockdevIoctlData* out = resolve(0, sizeof(void*));
        // *arg = the client's urb pointer; umockdev writes the urb and its buffer back first.
        umockdev_ioctl_data_set_ptr(out, 0, urb_data);
        g_object_unref(out);
        g_object_unref(urb_data);
        umockdev_ioctl_client_complete(client, 0, 0);
        return;
      }
      case USBDEVFS_DISCARDURB:  // every URB completes at submit: nothing is ever pending
        umockdev_ioctl_client_complete(client, -1, EINVAL);
        return;
      default:
        ++stats_.unhandled;
        std::fprintf(stderr, "[usbfs %s] unhandled ioctl 0x%lx\n", fake_.port_path.c_str(), request);
        umockdev_ioctl_client_complete(client, -1, ENOTTY);
        return;
    }
  }

  FakeDevice fake_;
  std::vector<Bytes> configs_;
  UMockdevIoctlBase* handler_ = nullptr;
  mutable std::mutex mu_;
  std::deque<UMockdevIoctlData*> done_;  // completed URBs waiting to be reaped (owned refs)
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
