// What the RX and TX workers need from the USB side, and no more (so datapath/ stays free of the
// USB layer; the daemon adapts usb::InPipe / usb::OutPipe to these).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace wwan::dp {

// A completed bulk-IN transfer lent to the RX worker: `data` (buffer `slot` of the IN pipe) holds
// `length` bytes, one or more NTBs, until InLink::release(slot).
struct RxBuffer {
  const std::uint8_t* data = nullptr;
  std::uint32_t length = 0;
  std::uint32_t slot = 0;
};

class InLink {
 public:
  virtual ~InLink() = default;
  // Every one of the datagrams of `slot` has been written: the pipe may reuse (resubmit) it.
  virtual void release(unsigned slot) = 0;
};

class OutLink {
 public:
  virtual ~OutLink() = default;
  // A free bulk-OUT buffer, or nullopt when all K are in flight (the device is slower: back-pressure).
  virtual std::optional<unsigned> acquire() = 0;
  // acquire() would give a buffer now (a free one, and the pipe running). For the worker's check
  // before it sleeps (datapath/worker.hpp); any thread.
  virtual bool has_free_buffer() const = 0;
  virtual std::span<std::uint8_t> buffer(unsigned slot) = 0;
  // Sends buffer(slot).first(length_bytes). false = not sent (device gone, pipe failed); the slot
  // is free again either way.
  virtual bool submit(unsigned slot, std::size_t length_bytes) = 0;
  virtual void give_back(unsigned slot) = 0;
  // wMaxPacketSize of the bulk-OUT endpoint, for the end-of-transfer rule (pad or ZLP).
  virtual std::size_t max_packet_bytes() const = 0;
};

}  // namespace wwan::dp
