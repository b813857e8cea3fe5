// RAII owners for the libusb objects the USB layer holds: a context, a device list, an open
// device handle. The header only forward-declares libusb's types, so code that uses the USB layer
// (tools/, tests/) never sees libusb.h; only usb/*.cpp include it.
//
// libusb's errors are turned into one line that says what happened and what to do
// (open_error_text), because "LIBUSB_ERROR_ACCESS" tells a router owner nothing.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

struct libusb_context;
struct libusb_device;
struct libusb_device_handle;

namespace wwan::usb {

// One libusb context (libusb_init / libusb_exit). Move-only.
class Context {
 public:
  // nullopt when libusb cannot start here (no usbfs, no sysfs, ...); `error` says why.
  static std::optional<Context> open(std::string& error);

  Context(Context&& other) noexcept;
  Context& operator=(Context&& other) noexcept;
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;
  ~Context();

  libusb_context* get() const { return ctx_; }

 private:
  explicit Context(libusb_context* ctx) : ctx_(ctx) {}
  libusb_context* ctx_ = nullptr;
};

// The devices present when it was taken (libusb_get_device_list / libusb_free_device_list).
// Holds a reference on every device for its lifetime. Move-only.
class DeviceList {
 public:
  // An empty list when libusb cannot enumerate (it says why in `error`, which stays empty when
  // there simply are no devices).
  static DeviceList take(const Context& ctx, std::string& error);

  DeviceList(DeviceList&& other) noexcept;
  DeviceList& operator=(DeviceList&& other) noexcept;
  DeviceList(const DeviceList&) = delete;
  DeviceList& operator=(const DeviceList&) = delete;
  ~DeviceList();

  std::span<libusb_device* const> devices() const { return {list_, size_}; }

 private:
  DeviceList(libusb_device** list, std::size_t size) : list_(list), size_(size) {}
  libusb_device** list_ = nullptr;
  std::size_t size_ = 0;
};

// An open usbfs node (libusb_open / libusb_close). Move-only.
class DeviceHandle {
 public:
  // nullopt with the libusb error code (LIBUSB_ERROR_*) when it cannot be opened.
  static std::optional<DeviceHandle> open(libusb_device* device, int& libusb_error);

  DeviceHandle(DeviceHandle&& other) noexcept;
  DeviceHandle& operator=(DeviceHandle&& other) noexcept;
  DeviceHandle(const DeviceHandle&) = delete;
  DeviceHandle& operator=(const DeviceHandle&) = delete;
  ~DeviceHandle();

  libusb_device_handle* get() const { return handle_; }

  // A string descriptor as ASCII (libusb_get_string_descriptor_ascii: a control GET_DESCRIPTOR
  // to the device). nullopt for index 0 or when the device does not answer.
  std::optional<std::string> string_descriptor(std::uint8_t index) const;

 private:
  explicit DeviceHandle(libusb_device_handle* handle) : handle_(handle) {}
  libusb_device_handle* handle_ = nullptr;
};

// "LIBUSB_ERROR_ACCESS (Access denied (insufficient permissions))".
std::string libusb_error_text(int libusb_error);

// One line for a failed libusb_open of the usbfs node /dev/bus/usb/BBB/DDD of the device `who`
// ("12d1:1506 at 1-1.2"), saying what to do: no permission -> run as root or add a udev rule;
// gone -> it was unplugged or switched mode, list again; busy; anything else.
std::string open_error_text(int libusb_error, std::uint8_t bus, std::uint8_t address, const std::string& who);

}  // namespace wwan::usb
