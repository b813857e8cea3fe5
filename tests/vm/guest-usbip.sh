# Guest scenario "usbip" (tests/vm/vm_test.py usbip): the emulated modems, exported by wwan-sim on
# the host, attached to the guest's vhci-hcd with the rig's own attach helper. For each of
# huawei-e3372 and mbim: the kernel's own driver (huawei_cdc_ncm / cdc_mbim) binds; the session is
# dialled over the cdc-wdm device that driver exposes (as ModemManager would); ping and UDP echo to
# the emulated network's gateway through the kernel's netdev. Then wwan-dp drives the same device
# through usbfs + vhci (detaching the kernel driver) and does the same.
# WWAN_ARGS: HUAWEI_PORT,MBIM_PORT (wwan-sim's ports on the host, reached at 10.0.2.2).
. "$WWAN_SOURCE/tests/vm/lib.sh"
HUAWEI_PORT=${WWAN_ARGS%%,*}
MBIM_PORT=${WWAN_ARGS##*,}

result usbip devlist $("$HELPER" usbip-list $USBIP_HOST "$HUAWEI_PORT" | head -1 | sed 's/^device //')

kernel_run huawei_kernel huawei huawei_cdc_ncm 0 "$HUAWEI_PORT"
wwan_dp_run huawei_wwan_dp 12d1:1506
kernel_run mbim_kernel mbim cdc_mbim 1 "$MBIM_PORT" --fcc-unlock
wwan_dp_run mbim_wwan_dp 1199:9079
dmesg | grep -iE 'vhci|usb [0-9]-|cdc_ncm|cdc_mbim|huawei|cdc-wdm|wwan' | tail -60 > $OUT/dmesg.txt
exit 0
