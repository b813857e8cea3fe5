// What a host controller and the USB core do between a driver and a device, for an emulated
// device: answer the standard requests from its descriptors, keep a queue of requests per
// endpoint, halt an endpoint's queue at a STALL until CLEAR_FEATURE(ENDPOINT_HALT), and complete
// requests as the device model answers. Both sim front ends (the in-process Transport and the
// usbfs emulation under umockdev) are this engine plus their own way of delivering completions,
// so the two cannot drift apart.
//
// Not thread-safe: the front end holds its lock around every call (the model is not thread-safe
// either, sim/modem.hpp).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <set>
#include <span>
#include <vector>

#include "sim/device_model.hpp"

namespace wwan::sim {

enum class RequestStatus : std::uint8_t {
  pending,
  completed,
  stall,
  cancelled,
  no_device,
  timed_out,
};

// One bulk or interrupt request, owned by the front end.
struct PortRequest {
  std::uint8_t endpoint = 0;        // bit 7 set = IN
  std::span<std::uint8_t> buffer;   // IN: room; OUT: buffer.first(length) is the data
  std::size_t length = 0;
  std::optional<std::chrono::steady_clock::time_point> deadline;  // from the transfer's timeout
  void* tag = nullptr;              // the front end's handle (a Transfer*, a umockdev URB)
  RequestStatus status = RequestStatus::pending;
  std::size_t actual_bytes = 0;
};

class HostPort {
 public:
  explicit HostPort(DeviceModel& model)
      : model_(model), current_configuration_(model.identity().active_configuration) {}

  DeviceModel& model() { return model_; }
  bool connected() const { return model_.connected(); }

  // A control transfer on endpoint 0: standard requests (GET_DESCRIPTOR device / configuration /
  // string, GET_CONFIGURATION, GET_STATUS, SET_CONFIGURATION, SET_INTERFACE, CLEAR_FEATURE
  // (ENDPOINT_HALT)) are handled here, everything else goes to the model. nullopt = STALL.
  // For IN requests data.size() is wLength and the return value the bytes written.
  std::optional<std::size_t> control(const SetupPacket& setup, std::span<std::uint8_t> data);

  bool set_interface(std::uint8_t interface_number, std::uint8_t alternate_setting);
  bool set_configuration(std::uint8_t configuration_value);
  // Clears the device's halt and restarts the endpoint's queue (the host side of ENDPOINT_HALT).
  bool clear_halt(std::uint8_t endpoint);

  // Queues a request. It completes in a later run() (an OUT at the next one).
  void submit(PortRequest* request);
  // Completes a queued request as cancelled (it appears in the next run()'s output). false if
  // the request is not queued (already completed).
  bool cancel(const PortRequest* request);
  // Every queued request completes as no_device (the front end saw the device leave).
  void disconnect_all();

  // Lets the device answer whatever it can now and appends the requests that completed to
  // `done`, in completion order. Requests on a halted endpoint wait for clear_halt().
  void run(std::vector<PortRequest*>& done, std::chrono::steady_clock::time_point now);

  // The earliest time a run() may complete something without any other call: the model's own
  // deadline or a request's timeout. nullopt = only a call can.
  std::optional<std::chrono::steady_clock::time_point> next_deadline() const;

  std::size_t queued() const { return queue_.size(); }

 private:
  DeviceModel& model_;
  std::deque<PortRequest*> queue_;      // submit order
  std::vector<PortRequest*> finished_;  // cancelled / failed outside run(), reported by the next run()
  std::set<std::uint8_t> halted_;       // endpoints whose queue stopped at a STALL
  std::uint8_t current_configuration_;
  bool gone_ = false;
};

}  // namespace wwan::sim
