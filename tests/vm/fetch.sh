#!/usr/bin/env bash
# Fetches what the VM rig boots: Debian's kernel (the package linux-image-amd64 currently depends
# on) and busybox-static, with `apt-get download` (no root, nothing installed on the host), and
# unpacks them into CACHE. Idempotent: a kernel already unpacked is reused until
# linux-image-amd64 moves to a new ABI.
#
#   tests/vm/fetch.sh CACHE        -> CACHE/kernel.env: KVER=..., KDIR=..., BUSYBOX=...
#
# Exit 77 (meson's "skipped") with one line on stderr when apt cannot provide them (no network,
# no Debian archive): the vm suite then skips with that reason instead of failing.
set -euo pipefail
CACHE=${1:?usage: fetch.sh CACHE}
mkdir -p "$CACHE/debs"
cd "$CACHE"

skip() { echo "vm: SKIP: $*" >&2; exit 77; }
command -v apt-get >/dev/null && command -v apt-cache >/dev/null || skip "no apt-get/apt-cache on this machine (the rig uses Debian's kernel package)"
command -v dpkg-deb >/dev/null || skip "no dpkg-deb on this machine"

# linux-image-amd64 is a metapackage; its Depends names the real image, e.g. linux-image-6.1.0-56-amd64.
KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}' || true)
[ -n "$KPKG" ] || skip "apt-cache knows no linux-image-amd64 (run apt-get update, or add a Debian archive)"
KVER=${KPKG#linux-image-}

if [ ! -f "kernel-$KVER/boot/vmlinuz-$KVER" ] || [ ! -f "kernel-$KVER/.complete" ]; then
  rm -rf "kernel-$KVER"
  (cd debs && { ls "${KPKG}"_*.deb >/dev/null 2>&1 || apt-get download -q "$KPKG" >apt.log 2>&1; }) ||
    skip "apt-get download $KPKG failed (no network?)"
  mkdir -p "kernel-$KVER"
  dpkg-deb -x debs/"${KPKG}"_*.deb "kernel-$KVER"
  touch "kernel-$KVER/.complete"
fi

if [ ! -x busybox/bin/busybox ]; then
  (cd debs && { ls busybox-static_*.deb >/dev/null 2>&1 || apt-get download -q busybox-static >apt.log 2>&1; }) ||
    skip "apt-get download busybox-static failed (no network?)"
  rm -rf busybox && mkdir busybox
  dpkg-deb -x debs/busybox-static_*.deb busybox
fi

# modules.dep: the package ships none (the postinst runs depmod); busybox's depmod writes one, so
# the host needs no kmod.
if [ ! -s "kernel-$KVER/lib/modules/$KVER/modules.dep" ]; then
  busybox/bin/busybox depmod -b "kernel-$KVER" "$KVER"
fi

cat > kernel.env <<ENV
KVER=$KVER
KDIR=$CACHE/kernel-$KVER
BUSYBOX=$CACHE/busybox/bin/busybox
ENV
echo "vm: kernel $KVER and busybox ready in $CACHE" >&2
