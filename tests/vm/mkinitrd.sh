#!/usr/bin/env bash
# Builds the guest's initramfs: busybox, the kernel modules the rig needs (with everything they
# depend on, from the kernel package's modules.dep) and tests/vm/init as /init.
#
#   tests/vm/mkinitrd.sh CACHE OUT.cpio.gz
#
# The module set is the union of what every scenario needs, so one initramfs serves them all:
#   virtio_pci 9pnet_virtio 9p   the host's / (read-only) and the output directory over 9p
#   virtio_net                   the user-mode network through which the guest reaches wwan-sim
#   dummy_hcd libcomposite usb_f_ncm   Linux's own NCM device (configfs gadget on a virtual UDC)
#   cdc_ncm huawei_cdc_ncm cdc_mbim cdc-wdm   Linux's own host drivers (the peers wwan-dp is measured against)
#   vhci-hcd                     the USB/IP client: a remote (emulated) device on a virtual HCD
#   tun                          wwan-dp's TUN device
set -euo pipefail
CACHE=${1:?usage: mkinitrd.sh CACHE OUT}
OUT=${2:?usage: mkinitrd.sh CACHE OUT}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null
. "$CACHE/kernel.env"
MODULES=(virtio_pci 9pnet_virtio 9p virtio_net dummy_hcd libcomposite usb_f_ncm cdc_ncm huawei_cdc_ncm
         cdc_mbim cdc-wdm vhci-hcd tun)
KM=$KDIR/lib/modules/$KVER

R=$(mktemp -d "${OUT}.root.XXXX")
trap 'rm -rf "$R"' EXIT
mkdir -p "$R"/{bin,proc,sys,dev,tmp,run,host,out,etc,lib/modules/$KVER}
cp "$BUSYBOX" "$R/bin/busybox"
for a in $("$R/bin/busybox" --list); do [ -e "$R/bin/$a" ] || ln -s busybox "$R/bin/$a"; done

declare -A seen
add() {  # $1: a module name (- and _ are the same to modprobe)
  local pattern rel dep
  pattern=$(printf '%s' "$1" | sed 's/[-_]/[-_]/g')
  rel=$(grep -E "(^|/)${pattern}\.ko(\.xz)?:" "$KM/modules.dep" | head -1 | cut -d: -f1)
  [ -n "$rel" ] || { echo "mkinitrd: module $1 is not in $KVER" >&2; exit 1; }
  [ -n "${seen[$rel]:-}" ] && return 0
  seen[$rel]=1
  for dep in $(grep -E "^${rel}:" "$KM/modules.dep" | cut -d: -f2); do add "$(basename "$dep" | sed 's/\.ko.*//')"; done
  mkdir -p "$R/lib/modules/$KVER/$(dirname "$rel")"
  cp "$KM/$rel" "$R/lib/modules/$KVER/$rel"
}
for m in "${MODULES[@]}"; do add "$m"; done
cp "$KM/modules.builtin" "$KM/modules.order" "$R/lib/modules/$KVER/" 2>/dev/null || true
"$R/bin/busybox" depmod -b "$R" "$KVER"
cp "$HERE/init" "$R/init"
chmod +x "$R/init"
(cd "$R" && find . | "$R/bin/busybox" cpio -o -H newc 2>/dev/null | gzip -1) > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "vm: initramfs $OUT: $(du -h "$OUT" | cut -f1), ${#seen[@]} modules" >&2
