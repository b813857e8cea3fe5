// TUN offload against the real kernel (docs/offload.md), the parts that the kernel-oracle tests
// (tests/tun/tun_offload_test.cpp), the offload benchmark (bench/offload_bench.cpp) and the
// end-to-end benchmark's GSO ceiling (bench/e2e_support.cpp) all need: a TUN opened with
// IFF_VNET_HDR carrying an address, and the far end of one TCP connection played by hand through
// it. Root, in a network namespace of the caller's. No GoogleTest in it.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "tests/datapath/offload_packets.hpp"
#include "tests/support/network.hpp"
#include "tun/tun_device.hpp"

namespace wwan::testsupport {

// TUN `name` with IFF_VNET_HDR, non-blocking (through tun::TunDevice), lo and the TUN up with
// `address_cidr` ("10.0.0.1/24") on it, set with `ip` (an independent tool, not the code under
// test). nullptr and `why` on failure.
std::unique_ptr<tun::TunDevice> open_vnet_tun(const std::string& name, const std::string& address_cidr, std::string& why);

// One plain packet behind a zero virtio_net_hdr, written with one writev; false unless all of it
// was taken (errno says why when the kernel refused it).
bool write_plain(int vnet_tun_fd, const offload::testing::Packet& packet);

// The far end of one TCP connection to a listening socket of this host, played through a
// non-blocking vnet-hdr TUN: connect() sends a SYN (MSS 1460, window scale 7), takes the kernel's
// SYN-ACK, ACKs it and accepts; take_acks() follows the kernel's ACKs (acked, window). The caller
// sends the data (next, ip_id) and the connection's socket (conn) is its to drain.
struct TcpPeer {
  static constexpr std::uint32_t kIsn = 1;  // this peer's initial sequence number (data starts at 2)

  int tun = -1;
  Fd listener, conn;
  offload::testing::Flow flow;  // peer -> local
  std::uint32_t next = 0, acked = 0, ack_number = 0;
  std::uint64_t window = 0;
  unsigned window_shift = 0;
  std::uint16_t ip_id = 1;

  // Listens on `local`:`port` (receive buffer `rcvbuf_bytes`, forced past rmem_max: root), plays
  // the handshake from `peer`:40000 and accepts with `accept_flags` (SOCK_NONBLOCK or 0). "" or
  // why not.
  std::string connect(int vnet_tun_fd, std::array<std::uint8_t, 4> local, std::array<std::uint8_t, 4> peer,
                      std::uint16_t port, int rcvbuf_bytes, int accept_flags);
  // Reads what the kernel sent toward the peer (its SYN-ACK and ACKs); waits up to `wait_ms` for
  // the first read when there is none.
  void take_acks(int wait_ms);
};

}  // namespace wwan::testsupport
