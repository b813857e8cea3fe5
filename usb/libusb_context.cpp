#include "usb/libusb_context.hpp"

#include <libusb.h>

#include <cstdio>
#include <utility>

namespace wwan::usb {

std::optional<Context> Context::open(std::string& error) {
  libusb_context* ctx = nullptr;
  const int r = libusb_init(&ctx);
  if (r != LIBUSB_SUCCESS) {
    error = "libusb_init failed: " + libusb_error_text(r);
    return std::nullopt;
  }
  return Context(ctx);
}

Context::Context(Context&& other) noexcept : ctx_(std::exchange(other.ctx_, nullptr)) {}

Context& Context::operator=(Context&& other) noexcept {
  if (this != &other) {
    if (ctx_ != nullptr) libusb_exit(ctx_);
    ctx_ = std::exchange(other.ctx_, nullptr);
  }
  return *this;
}

Context::~Context() {
  if (ctx_ != nullptr) libusb_exit(ctx_);
}

DeviceList DeviceList::take(const Context& ctx, std::string& error) {
  libusb_device** list = nullptr;
  const ssize_t n = libusb_get_device_list(ctx.get(), &list);
  if (n < 0) {
    error = "cannot list USB devices: " + libusb_error_text(static_cast<int>(n));
    return DeviceList(nullptr, 0);
  }
  return DeviceList(list, static_cast<std::size_t>(n));
}

DeviceList::DeviceList(DeviceList&& other) noexcept
    : list_(std::exchange(other.list_, nullptr)), size_(std::exchange(other.size_, 0)) {}

DeviceList& DeviceList::operator=(DeviceList&& other) noexcept {
  if (this != &other) {
    if (list_ != nullptr) libusb_free_device_list(list_, 1);
    list_ = std::exchange(other.list_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

DeviceList::~DeviceList() {
  if (list_ != nullptr) libusb_free_device_list(list_, 1);
}

std::optional<DeviceHandle> DeviceHandle::open(libusb_device* device, int& libusb_error) {
  libusb_device_handle* handle = nullptr;
  libusb_error = libusb_open(device, &handle);
  if (libusb_error != LIBUSB_SUCCESS) return std::nullopt;
  return DeviceHandle(handle);
}

DeviceHandle::DeviceHandle(DeviceHandle&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}

DeviceHandle& DeviceHandle::operator=(DeviceHandle&& other) noexcept {
  if (this != &other) {
    if (handle_ != nullptr) libusb_close(handle_);
    handle_ = std::exchange(other.handle_, nullptr);
  }
  return *this;
}

DeviceHandle::~DeviceHandle() {
  if (handle_ != nullptr) libusb_close(handle_);
}

std::optional<std::string> DeviceHandle::string_descriptor(std::uint8_t index) const {
  if (index == 0) return std::nullopt;
  unsigned char text[256];  // a string descriptor holds at most 126 UTF-16 units
  const int n = libusb_get_string_descriptor_ascii(handle_, index, text, sizeof text);
  if (n < 0) return std::nullopt;
  return std::string(reinterpret_cast<const char*>(text), static_cast<std::size_t>(n));
}

std::string libusb_error_text(int libusb_error) {
  return std::string(libusb_error_name(libusb_error)) + " (" + libusb_strerror(libusb_error) + ")";
}

std::string open_error_text(int libusb_error, std::uint8_t bus, std::uint8_t address, const std::string& who) {
  char node[32];
  std::snprintf(node, sizeof node, "/dev/bus/usb/%03u/%03u", static_cast<unsigned>(bus),
                static_cast<unsigned>(address));
  switch (libusb_error) {
    case LIBUSB_ERROR_ACCESS:
      return "no permission to open " + std::string(node) + " (" + who +
             "): run wwan-dp as root, or add a udev rule that gives your user access to this device";
    case LIBUSB_ERROR_NO_DEVICE:
      return who + " is gone (" + node +
             " no longer exists: unplugged, or re-enumerated after a mode switch): run wwan-dp list again";
    case LIBUSB_ERROR_BUSY:
      return "cannot open " + std::string(node) + " (" + who + "): it is busy; is another program using it?";
    default:
      return "cannot open " + std::string(node) + " (" + who + "): " + libusb_error_text(libusb_error);
  }
}

}  // namespace wwan::usb
