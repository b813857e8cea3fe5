#include "usb/discovery.hpp"

#include <libusb.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>

namespace wwan::usb {
namespace {

void put_le16(std::vector<std::uint8_t>& out, std::uint16_t v) {
  out.push_back(static_cast<std::uint8_t>(v & 0xff));
  out.push_back(static_cast<std::uint8_t>(v >> 8));
}

void put_extra(std::vector<std::uint8_t>& out, const unsigned char* extra, int length) {
  if (extra != nullptr && length > 0) out.insert(out.end(), extra, extra + length);
}

std::string hex4(std::uint16_t v) {
  char s[8];
  std::snprintf(s, sizeof s, "%04x", static_cast<unsigned>(v));
  return s;
}

std::string vid_pid_text(VidPid id) { return hex4(id.vendor_id) + ":" + hex4(id.product_id); }

// A sysfs text attribute without its trailing newline; nullopt when absent or unreadable.
std::optional<std::string> read_sysfs_text(const std::string& path) {
  std::ifstream f(path);
  if (!f) return std::nullopt;
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) return std::nullopt;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\0')) text.pop_back();
  return text;
}

std::array<std::uint8_t, 18> serialize_device_descriptor(const libusb_device_descriptor& d) {
  std::vector<std::uint8_t> b;
  b.push_back(LIBUSB_DT_DEVICE_SIZE);
  b.push_back(LIBUSB_DT_DEVICE);
  put_le16(b, d.bcdUSB);
  b.push_back(d.bDeviceClass);
  b.push_back(d.bDeviceSubClass);
  b.push_back(d.bDeviceProtocol);
  b.push_back(d.bMaxPacketSize0);
  put_le16(b, d.idVendor);
  put_le16(b, d.idProduct);
  put_le16(b, d.bcdDevice);
  b.push_back(d.iManufacturer);
  b.push_back(d.iProduct);
  b.push_back(d.iSerialNumber);
  b.push_back(d.bNumConfigurations);
  std::array<std::uint8_t, 18> out{};
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = b[i];
  return out;
}

// libusb's parsed configuration back into wire bytes, in the order libusb keeps them:
//   config header (9) + config extra (IADs and anything else before the first interface)
//   per interface, per alt setting: interface descriptor (9) + its extra (CDC functional
//     descriptors) + per endpoint: endpoint descriptor (7, or 9 for the audio form) + its extra
//     (SuperSpeed companions, anything up to the next endpoint or interface).
// libusb keeps an interface's alt settings while they are consecutive on the wire (an alt setting
// separated from its siblings by another interface is dropped by libusb and so missing here).
// Interface descriptors are written with bLength 9, endpoints with 7 (9 for the audio form);
// wTotalLength is set to the length written.
std::vector<std::uint8_t> serialize_configuration(const libusb_config_descriptor& c) {
  std::vector<std::uint8_t> b;
  b.push_back(LIBUSB_DT_CONFIG_SIZE);
  b.push_back(LIBUSB_DT_CONFIG);
  put_le16(b, 0);  // wTotalLength, patched below
  b.push_back(c.bNumInterfaces);
  b.push_back(c.bConfigurationValue);
  b.push_back(c.iConfiguration);
  b.push_back(c.bmAttributes);
  b.push_back(c.MaxPower);
  put_extra(b, c.extra, c.extra_length);
  for (std::size_t i = 0; i < c.bNumInterfaces; ++i) {
    const libusb_interface& itf = c.interface[i];
    for (int a = 0; a < itf.num_altsetting; ++a) {
      const libusb_interface_descriptor& alt = itf.altsetting[a];
      b.push_back(LIBUSB_DT_INTERFACE_SIZE);
      b.push_back(LIBUSB_DT_INTERFACE);
      b.push_back(alt.bInterfaceNumber);
      b.push_back(alt.bAlternateSetting);
      b.push_back(alt.bNumEndpoints);
      b.push_back(alt.bInterfaceClass);
      b.push_back(alt.bInterfaceSubClass);
      b.push_back(alt.bInterfaceProtocol);
      b.push_back(alt.iInterface);
      put_extra(b, alt.extra, alt.extra_length);
      for (std::size_t e = 0; e < alt.bNumEndpoints; ++e) {
        const libusb_endpoint_descriptor& ep = alt.endpoint[e];
        const bool audio = ep.bLength >= LIBUSB_DT_ENDPOINT_AUDIO_SIZE;
        b.push_back(audio ? LIBUSB_DT_ENDPOINT_AUDIO_SIZE : LIBUSB_DT_ENDPOINT_SIZE);
        b.push_back(LIBUSB_DT_ENDPOINT);
        b.push_back(ep.bEndpointAddress);
        b.push_back(ep.bmAttributes);
        put_le16(b, ep.wMaxPacketSize);
        b.push_back(ep.bInterval);
        if (audio) {
          b.push_back(ep.bRefresh);
          b.push_back(ep.bSynchAddress);
        }
        put_extra(b, ep.extra, ep.extra_length);
      }
    }
  }
  const auto total = static_cast<std::uint16_t>(b.size() > 0xffff ? 0xffff : b.size());
  b[2] = static_cast<std::uint8_t>(total & 0xff);
  b[3] = static_cast<std::uint8_t>(total >> 8);
  return b;
}

// Frees a libusb_config_descriptor on scope exit.
struct ConfigDescriptor {
  libusb_config_descriptor* desc = nullptr;
  ConfigDescriptor() = default;
  ConfigDescriptor(const ConfigDescriptor&) = delete;
  ConfigDescriptor& operator=(const ConfigDescriptor&) = delete;
  ~ConfigDescriptor() {
    if (desc != nullptr) libusb_free_config_descriptor(desc);
  }
};

DeviceInfo describe_device(libusb_device* dev, const DiscoveryOptions& options) {
  DeviceInfo info;
  info.bus = libusb_get_bus_number(dev);
  info.address = libusb_get_device_address(dev);

  std::array<std::uint8_t, 8> ports{};  // USB 3: at most 7 tiers below the root
  const int n_ports = libusb_get_port_numbers(dev, ports.data(), static_cast<int>(ports.size()));
  if (n_ports < 0) {
    info.problems.push_back("port numbers: " + libusb_error_text(n_ports));
    info.port_path = port_path(info.bus, {});
  } else {
    info.port_path = port_path(info.bus, std::span(ports).first(static_cast<std::size_t>(n_ports)));
  }

  libusb_device_descriptor dd{};
  const int rd = libusb_get_device_descriptor(dev, &dd);
  if (rd != LIBUSB_SUCCESS) {
    info.problems.push_back("device descriptor: " + libusb_error_text(rd));
    return info;
  }
  info.vendor_id = dd.idVendor;
  info.product_id = dd.idProduct;
  info.device_descriptor = serialize_device_descriptor(dd);

  for (std::uint8_t i = 0; i < dd.bNumConfigurations; ++i) {
    ConfigDescriptor c;
    const int r = libusb_get_config_descriptor(dev, i, &c.desc);
    if (r != LIBUSB_SUCCESS) {
      info.problems.push_back("configuration index " + std::to_string(i) + ": " + libusb_error_text(r));
      continue;
    }
    info.configurations.push_back({c.desc->bConfigurationValue, serialize_configuration(*c.desc)});
  }

  // The active configuration (sysfs bConfigurationValue; no device I/O) and its interfaces' drivers.
  ConfigDescriptor active;
  const int ra = libusb_get_active_config_descriptor(dev, &active.desc);
  if (ra == LIBUSB_SUCCESS) {
    const std::uint8_t value = active.desc->bConfigurationValue;
    info.active_configuration = value;
    for (std::size_t i = 0; i < active.desc->bNumInterfaces; ++i) {
      const libusb_interface& itf = active.desc->interface[i];
      if (itf.num_altsetting < 1) continue;
      const std::uint8_t number = itf.altsetting[0].bInterfaceNumber;
      info.drivers.push_back({number, kernel_driver(options.sysfs_root, info.port_path, value, number)});
    }
  } else if (ra != LIBUSB_ERROR_NOT_FOUND) {  // NOT_FOUND: unconfigured, not a problem
    info.problems.push_back("active configuration: " + libusb_error_text(ra));
  }

  const std::string dir = options.sysfs_root + "/bus/usb/devices/" + info.port_path + "/";
  info.manufacturer = read_sysfs_text(dir + "manufacturer");
  info.product = read_sysfs_text(dir + "product");
  info.serial = read_sysfs_text(dir + "serial");
  return info;
}

bool parse_hex16(std::string_view s, std::uint16_t& out) {
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s.remove_prefix(2);
  if (s.empty() || s.size() > 4) return false;
  unsigned v = 0;
  for (const char c : s) {
    unsigned d;
    if (c >= '0' && c <= '9') d = static_cast<unsigned>(c - '0');
    else if (c >= 'a' && c <= 'f') d = static_cast<unsigned>(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') d = static_cast<unsigned>(c - 'A' + 10);
    else return false;
    v = v << 4 | d;
  }
  out = static_cast<std::uint16_t>(v);
  return true;
}

// Bus, then port numbers: "usb1" < "1-1" < "1-1.2" < "1-2" < "usb2" < "2-1" (libusb's own order
// is whatever udev's was).
std::vector<unsigned> topology_key(const std::string& port_path) {
  std::vector<unsigned> key;
  unsigned n = 0;
  bool digits = false;
  for (const char c : port_path) {
    if (c >= '0' && c <= '9') {
      n = n * 10 + static_cast<unsigned>(c - '0');
      digits = true;
    } else if (digits) {
      key.push_back(n);
      n = 0;
      digits = false;
    }
  }
  if (digits) key.push_back(n);
  return key;
}

std::string where_list(const std::vector<const DeviceInfo*>& devices) {
  std::string s;
  for (const DeviceInfo* d : devices) {
    if (!s.empty()) s += ", ";
    s += d->port_path;
    if (d->serial) s += " (serial " + *d->serial + ")";
  }
  return s;
}

}  // namespace

const RawConfiguration* DeviceInfo::active() const {
  if (!active_configuration) return nullptr;
  for (const RawConfiguration& c : configurations)
    if (c.value == *active_configuration) return &c;
  return nullptr;
}

std::string DeviceInfo::describe() const {
  return vid_pid_text({vendor_id, product_id}) + " at " + port_path;
}

std::string port_path(std::uint8_t bus, std::span<const std::uint8_t> ports) {
  std::string s = std::to_string(bus);
  if (ports.empty()) return "usb" + s;
  for (std::size_t i = 0; i < ports.size(); ++i) s += (i == 0 ? "-" : ".") + std::to_string(ports[i]);
  return s;
}

std::optional<std::string> kernel_driver(const std::string& sysfs_root, const std::string& port_path,
                                         std::uint8_t configuration, std::uint8_t interface_number) {
  // Linux names an interface "<port path>:<configuration>.<interface number>", both decimal.
  const std::string link = sysfs_root + "/bus/usb/devices/" + port_path + ":" + std::to_string(configuration) +
                           "." + std::to_string(interface_number) + "/driver";
  char target[4096];
  const ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
  if (n <= 0) return std::nullopt;  // no link: no driver bound
  const std::string_view t(target, static_cast<std::size_t>(n));
  const std::size_t slash = t.rfind('/');
  const std::string_view name = slash == std::string_view::npos ? t : t.substr(slash + 1);
  if (name.empty()) return std::nullopt;
  return std::string(name);
}

std::vector<DeviceInfo> enumerate(const Context& ctx, std::string& error, const DiscoveryOptions& options) {
  const DeviceList list = DeviceList::take(ctx, error);
  std::vector<DeviceInfo> out;
  out.reserve(list.devices().size());
  for (libusb_device* dev : list.devices()) out.push_back(describe_device(dev, options));
  std::stable_sort(out.begin(), out.end(), [](const DeviceInfo& a, const DeviceInfo& b) {
    return topology_key(a.port_path) < topology_key(b.port_path);
  });
  return out;
}

std::optional<std::string> read_serial(const Context& ctx, const DeviceInfo& device, std::string& error) {
  const std::uint8_t index = device.device_descriptor[16];  // iSerialNumber
  if (index == 0) {
    error = device.describe() + " has no serial number";
    return std::nullopt;
  }
  std::string list_error;
  const DeviceList list = DeviceList::take(ctx, list_error);
  libusb_device* found = nullptr;
  for (libusb_device* dev : list.devices())
    if (libusb_get_bus_number(dev) == device.bus && libusb_get_device_address(dev) == device.address) found = dev;
  if (found == nullptr) {
    error = open_error_text(LIBUSB_ERROR_NO_DEVICE, device.bus, device.address, device.describe());
    return std::nullopt;
  }
  int r = LIBUSB_SUCCESS;
  if (const auto handle = DeviceHandle::open(found, r)) {
    if (auto serial = handle->string_descriptor(index)) return serial;
    error = device.describe() + " did not answer GET_DESCRIPTOR for its serial number";
  } else {
    error = open_error_text(r, device.bus, device.address, device.describe());
  }
  if (device.serial) {  // the kernel read it at enumeration; good enough to tell devices apart
    error.clear();
    return device.serial;
  }
  return std::nullopt;
}

std::optional<VidPid> parse_vid_pid(std::string_view text, std::string& error) {
  const auto fail = [&](std::string_view why) -> std::optional<VidPid> {
    error = "'" + std::string(text) + "' is not a USB VID:PID (" + std::string(why) +
            "): give the vendor and product id in hex as wwan-dp list or lsusb shows them, e.g. 12d1:1506";
    return std::nullopt;
  };
  const std::size_t colon = text.find(':');
  if (colon == std::string_view::npos) return fail("no ':'");
  if (text.find(':', colon + 1) != std::string_view::npos) return fail("more than one ':'");
  VidPid id;
  if (!parse_hex16(text.substr(0, colon), id.vendor_id)) return fail("the vendor id is not 1 to 4 hex digits");
  if (!parse_hex16(text.substr(colon + 1), id.product_id)) return fail("the product id is not 1 to 4 hex digits");
  return id;
}

std::optional<DeviceInfo> select_device(std::span<const DeviceInfo> devices, const DeviceSelector& selector,
                                        const SerialOf& serial_of, std::string& error) {
  const std::string id = vid_pid_text(selector.id);
  std::vector<const DeviceInfo*> same_id;
  for (const DeviceInfo& d : devices)
    if (d.vendor_id == selector.id.vendor_id && d.product_id == selector.id.product_id) same_id.push_back(&d);
  if (same_id.empty()) {
    error = "no USB device " + id + " is present (wwan-dp list shows the modems that are; a stick in " +
            "mass-storage mode has another product id until it is switched)";
    return std::nullopt;
  }

  std::vector<const DeviceInfo*> candidates = same_id;
  if (selector.port_path) {
    std::erase_if(candidates, [&](const DeviceInfo* d) { return d->port_path != *selector.port_path; });
    if (candidates.empty()) {
      error = "no USB device " + id + " at " + *selector.port_path + "; " + id + " is at " + where_list(same_id);
      return std::nullopt;
    }
  }
  if (selector.serial) {
    std::erase_if(candidates, [&](const DeviceInfo* d) {
      const std::optional<std::string> s = serial_of(*d);
      return !s || *s != *selector.serial;
    });
    if (candidates.empty()) {
      error = "no USB device " + id + " with serial number " + *selector.serial + "; " + id + " is at " +
              where_list(same_id);
      return std::nullopt;
    }
  }
  if (candidates.size() > 1) {
    error = std::to_string(candidates.size()) + " USB devices are " + id + ": " + where_list(candidates) +
            "; say which one by its port path (e.g. " + candidates.front()->port_path + ") or its serial number";
    return std::nullopt;
  }
  return *candidates.front();
}

std::optional<DeviceInfo> find_device(const Context& ctx, const DeviceSelector& selector, std::string& error,
                                      const DiscoveryOptions& options) {
  const std::vector<DeviceInfo> devices = enumerate(ctx, error, options);
  if (!error.empty()) return std::nullopt;
  std::string serial_error;
  const SerialOf serial_of = [&](const DeviceInfo& d) {
    std::string e;
    auto s = read_serial(ctx, d, e);
    if (!s && serial_error.empty()) serial_error = e;
    return s;
  };
  auto found = select_device(devices, selector, serial_of, error);
  // A serial that could not be read at all is the likelier cause of "no match": say so.
  if (!found && selector.serial && !serial_error.empty()) error += " (" + serial_error + ")";
  return found;
}

}  // namespace wwan::usb
