// wwan-dp: a userspace data-path driver for USB cellular modems.
// This file only dispatches subcommands; each lives in its own translation unit.
#include <iostream>
#include <string_view>
#include <vector>

#include "tools/decode_at.hpp"
#include "tools/decode_mbim.hpp"
#include "tools/decode_ntb.hpp"
#include "tools/at_command.hpp"
#include "tools/connect.hpp"
#include "tools/daemon.hpp"
#include "tools/list.hpp"
#include "tools/monitor.hpp"

namespace {

constexpr std::string_view kUsage =
    "usage: wwan-dp --dev VID:PID --tun NAME      drive a modem: session, TUN, packets (--help for options)\n"
    "       wwan-dp --sim PROFILE --tun NAME      the same with an emulated modem (huawei-e3372, generic-ncm, mbim)\n"
    "       wwan-dp list [--json]                 the USB modems present, their interfaces and drivers\n"
    "       wwan-dp monitor --dev VID:PID [--json] claim a modem, print its notifications until Ctrl-C\n"
    "       wwan-dp at --dev VID:PID 'AT…'         AT commands over the encapsulated channel\n"
    "       wwan-dp connect --dev VID:PID [--apn A] bring the data session up, print the IP configuration\n"
    "       wwan-dp fcc-unlock --dev VID:PID       FCC-unlock a Sierra MBIM module whose radio is refused\n"
    "       wwan-dp decode ntb [--mbim] FILE|-    decode one bulk-IN transfer to JSON Lines\n"
    "       wwan-dp decode mbim FILE|-            decode MBIM control messages (or fragments) to JSON\n"
    "       wwan-dp decode at 'LINE'              decode a Huawei ^DHCP / ^NDISSTAT line to JSON\n"
    "       wwan-dp --version | --help\n"
    "\n"
    "wwan-dp claims a modem's USB interfaces (detaching cdc_ncm / huawei_cdc_ncm / cdc_mbim from\n"
    "it), sets up the data session itself and moves IP packets between the modem and a TUN device.\n"
    "`wwan-dp --sim huawei-e3372 --help` lists the daemon's options.\n";

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string_view> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    (args.empty() ? std::cerr : std::cout) << kUsage;
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "--version") {
    std::cout << "wwan-dp " WWAN_DP_VERSION "\n";
    return 0;
  }
  if (args[0] == "list") return wwan::cli::run_list(std::span(args).subspan(1), std::cout, std::cerr);
  if (args[0] == "monitor") return wwan::cli::run_monitor(std::span(args).subspan(1), std::cout, std::cerr);
  if (args[0] == "at") return wwan::cli::run_at(std::span(args).subspan(1), std::cout, std::cerr);
  if (args[0] == "connect") return wwan::cli::run_connect(std::span(args).subspan(1), std::cout, std::cerr);
  if (args[0] == "fcc-unlock") return wwan::cli::run_fcc_unlock(std::span(args).subspan(1), std::cout, std::cerr);
  if (args[0] == "decode") {
    if (args.size() >= 2 && args[1] == "ntb")
      return wwan::cli::run_decode_ntb(std::span(args).subspan(2), std::cout, std::cerr);
    if (args.size() >= 2 && args[1] == "mbim")
      return wwan::cli::run_decode_mbim(std::span(args).subspan(2), std::cout, std::cerr);
    if (args.size() >= 2 && args[1] == "at")
      return wwan::cli::run_decode_at(std::span(args).subspan(2), std::cout, std::cerr);
    std::cerr << "wwan-dp decode: what should be decoded? ntb, mbim or at (e.g. wwan-dp decode mbim --help)\n";
    return 2;
  }
  // No subcommand: the daemon (its first argument is an option: --dev, --sim, --tun, ...).
  if (args[0].starts_with("-")) return wwan::cli::run_daemon(args, std::cout, std::cerr);
  std::cerr << "wwan-dp: unknown command '" << args[0] << "' (see wwan-dp --help)\n";
  return 2;
}
