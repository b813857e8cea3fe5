// The Transport seam (DESIGN.md "Layers and seams"): everything the driver does to a USB device
// once it has claimed it. Two implementations:
//   - usb/libusb_transport.hpp: a real device through libusb (and, in tests, the emulated modem
//     served to unmodified libusb over an emulated usbfs);
//   - sim/inprocess_transport.hpp: the emulated modem called directly, for --sim and benchmarks.
// Nothing above this interface knows which one it talks to, and nothing here includes libusb.h.
//
// Threading model (the one libusb imposes, kept for both): control(), set_alt_setting() and
// clear_halt() are synchronous and may be called from the control thread while another thread
// sits in handle_events(). submit() and cancel() may be called from any thread, including from a
// completion callback. Completion callbacks run only inside handle_events(), on its thread; one
// thread at a time runs handle_events().
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace wwan::usb {

// How a transfer ended. The names follow libusb_transfer_status where one exists.
enum class TransferStatus : std::uint8_t {
  completed,   // data moved; actual_bytes says how much (IN: may be short)
  stall,       // the endpoint is halted (STALL handshake); clear_halt() before reusing it
  timeout,     // timeout_ms elapsed; actual_bytes may be non-zero
  cancelled,   // cancel() or the transport shutting down
  no_device,   // the device left the bus; nothing will work again on this transport
  overflow,    // the device sent more than the buffer holds (a babble)
  error,       // anything else the host controller reported
};
const char* to_string(TransferStatus status);

// The SETUP packet without wLength (the data span carries it). USB 2.0 §9.3.
struct ControlSetup {
  std::uint8_t request_type = 0;  // bmRequestType: direction | type | recipient
  std::uint8_t request = 0;       // bRequest
  std::uint16_t value = 0;        // wValue
  std::uint16_t index = 0;        // wIndex (interface number for class requests to an interface)
};
inline constexpr std::uint8_t kRequestTypeIn = 0x80;           // device-to-host
inline constexpr std::uint8_t kRequestTypeClassInterface = 0x21;  // class, interface, host-to-device

struct ControlResult {
  TransferStatus status = TransferStatus::error;
  std::size_t actual_bytes = 0;
};

// One asynchronous bulk or interrupt transfer. The caller owns it and its buffer, and must keep
// both alive and untouched until the completion callback has run.
struct Transfer {
  // --- set by the caller before submit()
  std::uint8_t endpoint = 0;        // bEndpointAddress; bit 7 set = IN
  std::span<std::uint8_t> buffer;   // IN: room for the data; OUT: buffer.first(length) is sent
  std::size_t length = 0;           // bytes to send (OUT) or to request (IN), <= buffer.size()
  unsigned timeout_ms = 0;          // 0 = no timeout
  // OUT: end a transfer whose length is a multiple of wMaxPacketSize with a zero-length packet
  // (NCM 1.0 §3.2.2: the device must see where the NTB ends unless it is dwNtbOutMaxSize long).
  bool zero_length_packet = false;
  bool interrupt = false;           // an interrupt endpoint (notifications), not bulk
  void (*on_complete)(Transfer&) = nullptr;
  void* user = nullptr;             // for on_complete
  // --- set by the transport before on_complete
  TransferStatus status = TransferStatus::error;
  std::size_t actual_bytes = 0;
  // --- private to the transport
  void* backend = nullptr;

  bool is_in() const { return (endpoint & 0x80) != 0; }
};

class Transport {
 public:
  virtual ~Transport() = default;

  // A synchronous control transfer on endpoint 0. IN requests read up to data.size() bytes.
  virtual ControlResult control(const ControlSetup& setup, std::span<std::uint8_t> data, unsigned timeout_ms) = 0;

  // SET_INTERFACE on a claimed interface (USB 2.0 §9.4.10). completed, stall (no such alt
  // setting) or no_device.
  virtual TransferStatus set_alt_setting(std::uint8_t interface_number, std::uint8_t alternate_setting) = 0;

  // CLEAR_FEATURE(ENDPOINT_HALT) and the host side's data toggle reset (USB 2.0 §9.4.1).
  virtual TransferStatus clear_halt(std::uint8_t endpoint) = 0;

  // Starts an asynchronous transfer. completed = it is in flight and on_complete will run;
  // anything else = it was not started (no_device, error) and on_complete will not run.
  virtual TransferStatus submit(Transfer& transfer) = 0;

  // Asks for an in-flight transfer to end; its on_complete still runs (status cancelled, or
  // whatever it ended with first). Harmless for a transfer that already completed.
  virtual void cancel(Transfer& transfer) = 0;

  // Runs the completion callbacks that are due, waiting up to timeout_ms for one (0 = do not
  // wait). Returns early when wake() is called.
  virtual void handle_events(unsigned timeout_ms) = 0;

  // Makes a handle_events() that is waiting on another thread return now.
  virtual void wake() = 0;

  // True once the device has left the bus (a transfer or request came back no_device).
  virtual bool device_gone() const = 0;
};

}  // namespace wwan::usb
