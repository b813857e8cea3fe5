// The control plane of an RNDIS modem dialled over its serial AT port (the Fibocom FM350-GL in
// USB modes 40/41, docs/rndis.md): two sessions on two channels, joined into one status for the
// daemon.
//
//   RndisSession  (control/rndis_session.hpp)  on the RNDIS control interface's encapsulated
//                 channel, announced by the 8-byte RNDIS RESPONSE_AVAILABLE (a SessionRunner with
//                 NotificationFormat::rndis): INITIALIZE, the MAC, the packet filter, keepalives,
//                 MEDIA_CONNECT / MEDIA_DISCONNECT
//   Fm350Session  (control/fm350_session.hpp)  on the serial AT port (a SessionRunner over a
//                 SerialAtTransport, NotificationFormat::none): FCC unlock, AT+CGDCONT,
//                 AT+CGACT=1,1, AT+CGPADDR, AT+CGCONTRDP
//
// The joined status:
//   failed        either session failed (its error)
//   connected     the AT context is up with an address AND the RNDIS medium is connected;
//                 ip = what AT+CGPADDR / AT+CGCONTRDP said
//   disconnected  the AT side lost its context, or the medium went down under a live context
//                 (the AT side redials; the medium comes back with the context)
//   starting / connecting   otherwise (connecting once the RNDIS data channel is set up)
//   stopped       both stopped
// connects / drops count the joined state's own transitions.
//
// Both runners step on the calling thread (the control + USB events thread); the RNDIS one waits
// for events, the AT one only drains what has arrived. The data path may start once
// rndis_ready(): INITIALIZE_CMPLT's limits (rndis().device_info()) are what its TX builder needs.
#pragma once

#include <memory>

#include "control/at_transport.hpp"
#include "control/fm350_session.hpp"
#include "control/rndis_session.hpp"
#include "control/session_runner.hpp"

namespace wwan::control {

class RndisAtRunner final : public SessionDriver {
 public:
  // `at_port`: the serial AT port's command transport (claimed on `transport` or on a handle of
  // its own); must outlive the runner.
  RndisAtRunner(usb::Transport& transport, const usb::NetworkFunction& function, RndisSessionSettings rndis,
                SessionSettings dial, CommandTransport& at_port, RunnerOptions options = {});

  bool start() override;
  void step(unsigned max_wait_ms) override;
  bool run_until(const std::function<bool(const SessionStatus&)>& done, std::chrono::milliseconds timeout) override;
  void stop(std::chrono::milliseconds timeout) override;
  const SessionStatus& status() const override { return status_; }
  const std::string& error() const override { return error_; }
  std::string take_notice() override { return {}; }
  bool device_gone() const override { return transport_.device_gone(); }

  // The RNDIS data channel is set up (packet filter set, not resetting): the data path may run.
  bool rndis_ready() const { return rndis_.data_enabled(); }
  RndisSession& rndis() { return rndis_; }
  const Fm350Session& dial() const { return dial_; }
  const SessionRunner& rndis_runner() const { return rndis_runner_; }

 private:
  void join();

  usb::Transport& transport_;
  RndisSession rndis_;
  Fm350Session dial_;
  SessionRunner rndis_runner_;
  SessionRunner at_runner_;
  SessionStatus status_;
  std::string error_;
};

}  // namespace wwan::control
