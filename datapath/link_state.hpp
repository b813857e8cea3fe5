// What the RX worker, the TX worker and the control thread share about the link, besides packets:
// the modem's MAC (learned by RX from the frames it receives, used by TX as the destination of
// every frame it builds) and the host's addresses (set by the control thread when the session
// comes up; RX answers ARP and Neighbour Solicitations for them).
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

#include "datapath/ethernet.hpp"

namespace wwan::dp {

// The host's addresses on the link, as the session reported them.
struct HostAddresses {
  std::optional<eth::Ipv4Address> ipv4;
  std::vector<eth::Ipv6Address> ipv6;  // global and link-local: NS may ask for either
};

class LinkState {
 public:
  // Written by the RX worker, read by TX per NTB: one relaxed 64-bit word (bit 48 = valid), so
  // neither side ever waits. A stale read for one NTB after the modem's MAC changed is harmless:
  // the next one uses the new address.
  void set_modem_mac(const eth::MacAddress& mac) {
    std::uint64_t v = std::uint64_t{1} << 48;
    for (std::size_t i = 0; i < 6; ++i) v |= std::uint64_t{mac.bytes[i]} << (8 * (5 - i));
    modem_mac_.store(v, std::memory_order_relaxed);
  }
  // The learned MAC, or broadcast while none is known (ModemMacLearner's rule).
  eth::MacAddress modem_mac() const {
    const std::uint64_t v = modem_mac_.load(std::memory_order_relaxed);
    if ((v >> 48) == 0) return eth::MacAddress::broadcast();
    eth::MacAddress m;
    for (std::size_t i = 0; i < 6; ++i) m.bytes[i] = static_cast<std::uint8_t>(v >> (8 * (5 - i)));
    return m;
  }

  // Control thread: the session's addresses (an empty HostAddresses when it went down).
  void set_host_addresses(HostAddresses addresses) {
    std::lock_guard lock(mu_);
    addresses_ = std::move(addresses);
    version_.fetch_add(1, std::memory_order_release);
  }
  // RX worker: cheap check per transfer, copy only when it changed.
  std::uint64_t host_addresses_version() const { return version_.load(std::memory_order_acquire); }
  HostAddresses host_addresses() const {
    std::lock_guard lock(mu_);
    return addresses_;
  }

 private:
  std::atomic<std::uint64_t> modem_mac_{0};
  mutable std::mutex mu_;
  HostAddresses addresses_;
  std::atomic<std::uint64_t> version_{0};
};

}  // namespace wwan::dp
