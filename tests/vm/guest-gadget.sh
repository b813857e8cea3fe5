# Guest scenario "gadget" (tests/vm/vm_test.py gadget): Linux's own NCM device — dummy_hcd +
# configfs usb_f_ncm, its network side in its own namespace — driven first by wwan-dp through the
# guest's real usbfs, then by the kernel's cdc_ncm on the same link. Ping, UDP echo and a TCP
# stream each way for both; the throughput ratio is the point (TCG: absolute numbers mean little).
. "$WWAN_SOURCE/tests/vm/lib.sh"
SECS=${WWAN_ARGS:-4}

# --- the gadget: the Linux NCM gadget's own ids (0525:a4a1, g_ncm), one NCM function.
G=/sys/kernel/config/usb_gadget/ncm
mkdir -p $G && cd $G || exit 1
echo 0x0525 > idVendor
echo 0xa4a1 > idProduct
echo 0x0200 > bcdUSB
mkdir -p strings/0x409 configs/c.1/strings/0x409 functions/ncm.usb0
echo "wwan-dp VM rig" > strings/0x409/manufacturer
echo "Linux NCM gadget" > strings/0x409/product
echo "0001" > strings/0x409/serialnumber
echo "NCM" > configs/c.1/strings/0x409/configuration
echo 02:00:00:00:00:01 > functions/ncm.usb0/dev_addr
echo 02:00:00:00:00:02 > functions/ncm.usb0/host_addr
ln -s functions/ncm.usb0 configs/c.1/
ls /sys/class/udc | head -1 > UDC
cd /
GADGET_IF=$(cat $G/functions/ncm.usb0/ifname)

gadget_dev() { grep -l '^a4a1$' /sys/bus/usb/devices/*/idProduct 2>/dev/null | head -1 | xargs -r dirname; }
bound_to_cdc_ncm() { netdev_of_driver cdc_ncm >/dev/null; }
if ! wait_for 30 bound_to_cdc_ncm; then
  result gadget enumerated ok=0
  exit 1
fi
DEV=$(gadget_dev)
result gadget enumerated ok=1 device="$(basename "$DEV")" speed="$(cat "$DEV/speed")" gadget_if="$GADGET_IF"

# --- the gadget's network side in its own namespace: traffic must cross USB.
ip netns add gad
ip link set "$GADGET_IF" netns gad
ip -n gad addr add 10.9.9.1/24 dev "$GADGET_IF"
ip -n gad link set "$GADGET_IF" up
ip -n gad link set lo up
ip netns exec gad "$HELPER" udp-echo-server 7 &
ip netns exec gad "$HELPER" tcp-sink 5001 &
"$HELPER" tcp-sink 5001 &   # the host side's sink, for the gadget -> host stream

# When traffic fails: both sides' view (carrier, addresses, neighbours, counters) for the log.
diagnose() {
  {
    echo "== $1"
    ip -n gad -s link show "$GADGET_IF"; ip -n gad addr show "$GADGET_IF"; ip -n gad neigh
    cat /sys/class/net/*/operstate 2>/dev/null | tr '\n' ' '; echo
    ip -s link; ip addr; ip neigh; ip route
  } >> $OUT/diagnose.txt 2>&1
}
after_ping() { [ "$LAST_PING_RECEIVED" = 5 ] || diagnose "$1"; }

# --- wwan-dp list: what it makes of Linux's gadget (a plain CDC NCM function, cdc_ncm bound).
"$DP" list --json > $OUT/list.json 2> $OUT/list.err
LIST=$(tr -d '\n' < $OUT/list.json)
MODE=$(echo "$LIST" | sed -n 's/.*"pid":"a4a1"[^]]*"mode":"\([^"]*\)".*/\1/p')
SUPPORTED=$(echo "$LIST" | sed -n 's/.*"pid":"a4a1"[^]]*"supported":\([a-z]*\).*/\1/p')
DRIVER=$(echo "$LIST" | grep -o '"function":"ncm","driver":"[^"]*"' | head -1 | sed 's/.*"driver":"\([^"]*\)"/\1/')
result wwan_dp list mode="${MODE:-none}" supported="${SUPPORTED:-false}" ncm_driver="${DRIVER:-none}"

# --- wwan-dp: claims the function (detaching cdc_ncm), static address (a gadget has no session).
"$DP" --dev 0525:a4a1 --tun wwan0 --static-ipv4 10.9.9.2/24 --json -v > $OUT/wwan-dp.json 2> $OUT/wwan-dp.err &
DPPID=$!
connected() { grep -q '"event":"connected"' $OUT/wwan-dp.json; }
if wait_for 40 connected; then
  result wwan_dp connected ok=1
  ping_check wwan_dp 10.9.9.1
  after_ping wwan_dp
  udp_check wwan_dp 10.9.9.1 7
  tcp_send wwan_dp tx "$SECS" 10.9.9.1
  tcp_send wwan_dp rx "$SECS" 10.9.9.2 ip netns exec gad
else
  result wwan_dp connected ok=0
fi
kill -USR1 $DPPID 2>/dev/null   # a stats event for the log
kill -TERM $DPPID
wait $DPPID
result wwan_dp exit rc=$?

# --- the kernel's cdc_ncm on the same link: wwan-dp gave the interface back on exit.
if wait_for 30 bound_to_cdc_ncm; then
  HN=$(netdev_of_driver cdc_ncm)
  result cdc_ncm bound ok=1 netdev="$HN"
  ip addr add 10.9.9.2/24 dev "$HN"
  ip link set "$HN" up
  link_up() { [ "$(cat /sys/class/net/$HN/operstate)" = up ]; }
  wait_for 20 link_up
  ping_check cdc_ncm 10.9.9.1
  after_ping cdc_ncm
  udp_check cdc_ncm 10.9.9.1 7
  tcp_send cdc_ncm tx "$SECS" 10.9.9.1
  tcp_send cdc_ncm rx "$SECS" 10.9.9.2 ip netns exec gad
else
  result cdc_ncm bound ok=0
fi
dmesg > $OUT/dmesg.txt
exit 0
