#!/usr/bin/env bash
# Installs every Debian package wwan-dp needs to build, test, fuzz and benchmark, then configures
# the build directory. Idempotent: run it as often as you like.
#
#   tools/bootstrap.sh            # packages + `meson setup build`
#   BUILD_DIR=out tools/bootstrap.sh
#
# Debian 12 (bookworm) or newer. Needs root for apt-get (uses sudo when not root).
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}

# One package per line, with what needs it.
PACKAGES=(
  meson ninja-build pkg-config g++   # build
  clang libclang-rt-14-dev           # libFuzzer + ASan/UBSan builds (tests/fuzz)
  libgtest-dev libgmock-dev          # tests/
  libbenchmark-dev                   # bench/
  libusb-1.0-0-dev                   # usb/ (discovery, transfers)
  umockdev libumockdev-dev           # tests/usbfs (emulated usbfs for real libusb)
  nlohmann-json3-dev                 # tests/usbfs (reads `wwan-dp list --json` back)
  nettle-dev                         # control/ (SHA-256 of the FM350 FCC unlock)
  libmbim-glib-dev                   # tests/control/libmbim_roundtrip_test (libmbim as an oracle)
  liburing-dev                       # tun/ (io_uring TUN I/O)
  libmnl-dev                         # tun/ (rtnetlink: addresses, routes, MTU, link state)
  libreaderwriterqueue-dev           # datapath/ (the SPSC ring between the USB thread and the workers)
  libboost-dev                       # bench/ring_bench (Boost.Lockfree spsc_queue, the ring we compare against)
  tshark                             # tests/ (dissects --capture files: no malformed frame)
  iproute2                           # tests/integration, tools/run.sh (ip, in a network namespace)
  iputils-ping                       # tools/run.sh (the ping through the emulated modem)
  busybox                            # tests/integration/tap_test (udhcpc: the system's DHCP client on --tap)
  qemu-system-x86                    # tests/vm (Debian's kernel under QEMU/TCG; 17 MB download, 85 MB installed without recommends)
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if ((${#missing[@]})); then
  SUDO=
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "bootstrap: need root to install: ${missing[*]}" >&2; exit 1; }
    SUDO=sudo
  fi
  echo "bootstrap: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Warnings are errors in CI (CI=true), advisory on a user's machine with a newer compiler.
setup_args=()
[ "${CI:-}" = "true" ] && setup_args+=(-Dwerror=true)

if [ -f "$BUILD_DIR/build.ninja" ]; then
  meson setup --reconfigure "$BUILD_DIR" "${setup_args[@]}" >/dev/null
else
  meson setup "$BUILD_DIR" "${setup_args[@]}"
fi
echo "bootstrap: $BUILD_DIR is configured"
