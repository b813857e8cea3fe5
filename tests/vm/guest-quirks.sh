# Guest scenario "quirks" (tests/vm/vm_test.py quirks): the emulated Huawei E3372 with its firmware
# quirks switched on one at a time (one wwan-sim per row, sim/ncm_modem.hpp NcmProfile knobs and
# sim/modem.hpp Faults). For each row the kernel's huawei_cdc_ncm (dialled over its cdc-wdm, as
# ModemManager would) and then wwan-dp drive the same freshly plugged device; the host-side test
# tabulates which break which. docs/quirks.md records the outcome.
# WWAN_ARGS: NAME:PORT:EXTRA,... — EXTRA "ndp0" also runs the kernel's data path with its
# NDP-to-end quirk switched off (sysfs cdc_ncm/ndp_to_end), the control experiment for that row.
. "$WWAN_SOURCE/tests/vm/lib.sh"
WDM_TIMEOUT_S=20

# While the kernel's session is up: the same traffic with the NDP in front of the datagrams, as
# plain cdc_ncm would send it without huawei_cdc_ncm's CDC_NCM_FLAG_NDP_TO_END.
ndp_front_check() {
  local subject=$1 nd=$2
  echo 0 > /sys/class/net/"$nd"/cdc_ncm/ndp_to_end
  result "$subject" ndp_to_end value="$(cat /sys/class/net/"$nd"/cdc_ncm/ndp_to_end)"
  ping_check "$subject.ndp_in_front" $GATEWAY
  echo 1 > /sys/class/net/"$nd"/cdc_ncm/ndp_to_end
}

for row in ${WWAN_ARGS//,/ }; do
  IFS=: read -r name port extra <<< "$row"
  note "row $name (wwan-sim port $port)"
  KERNEL_AFTER=
  [ "$extra" = ndp0 ] && KERNEL_AFTER=ndp_front_check
  kernel_run "$name.kernel" huawei huawei_cdc_ncm 0 "$port"
  wwan_dp_run "$name.wwan_dp" 12d1:1506
  detach 0
done
dmesg > $OUT/dmesg.txt
exit 0
