# Shared by the guest scripts (tests/vm/guest-*.sh). They run inside the VM, in a chroot of the
# host's / (read-only over 9p), with the build directory in $WWAN_BUILD and a writable output
# directory in /tmp/out (the host reads it after the VM stopped). Results go to the console as
#   VM_RESULT <subject> <check> key=value ...
# lines that tests/vm/vm_test.py parses and asserts on; everything else is for humans.
set -u
# The copies tests/vm/vm_test.py took before booting (a rebuild of the shared tree during the run
# must not change a running binary's pages), else the build tree's own.
BIN=/tmp/out/bin
[ -x $BIN/wwan-dp ] && [ -x $BIN/wwan-vm-helper ] || BIN=
DP=${BIN:-$WWAN_BUILD/tools}/wwan-dp
HELPER=${BIN:-$WWAN_BUILD/tests/vm}/wwan-vm-helper
OUT=/tmp/out

# A crash of anything under test leaves its core in the output directory (gdb on the host reads it
# with the same binary and libraries: the guest runs the host's files).
ulimit -c unlimited
echo "$OUT/core.%e.%p" > /proc/sys/kernel/core_pattern

result() { echo "VM_RESULT $* t=$(cut -d" " -f1 /proc/uptime)"; }
note() { echo "VM_NOTE $*"; }

# wait_for SECONDS COMMAND...: true as soon as COMMAND succeeds, false after SECONDS (a condition
# polled with a deadline, never a bare sleep).
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 0.1
  done
}

# ping_check SUBJECT ADDR: five echo requests, the counts as a result line (and LAST_PING_RECEIVED).
ping_check() {
  local subject=$1 addr=$2
  local out tx rx
  out=$(ping -c 5 -i 0.2 -W 2 "$addr" 2>&1)
  tx=$(echo "$out" | sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p')
  rx=$(echo "$out" | sed -n 's/.* \([0-9]*\) received.*/\1/p')
  LAST_PING_RECEIVED=${rx:-0}
  result "$subject" ping sent="${tx:-0}" received="${rx:-0}"
}

# udp_check SUBJECT ADDR PORT: 20 datagrams through the echo responder. Skipped (0/20) when the
# subject's ping got nothing back: 20 unanswered datagrams would cost 40 s of timeouts to say the
# same thing again.
udp_check() {
  local line
  if [ "${LAST_PING_RECEIVED:-1}" = 0 ]; then
    result "$1" udp_echo sent=20 received=0 skipped=1
    return
  fi
  line=$("$HELPER" udp-echo "$2" "$3" 20)
  result "$1" udp_echo ${line:-sent=20 received=0}
}

# tcp_send SUBJECT DIRECTION SECONDS ADDR [PREFIX...]: one TCP stream to the sink on ADDR:5001 (the
# sink runs on the other side); PREFIX runs the sender elsewhere (ip netns exec gad). Besides the
# rate and the CPU time it records the sender's retransmissions and, at the receiver (the other
# namespace), segments that arrived out of order (TcpExtTCPOFOQueue) and segments dropped by PAWS
# (TcpExtPAWSEstab: a reordered segment carrying an older timestamp). One USB link never reorders,
# so either counter moving means the driver reordered or lost packets.
tcp_send() {
  local subject=$1 direction=$2 seconds=$3 addr=$4
  shift 4
  local line busy0 busy1 re0 re1 ofo0 ofo1 paws0 paws1
  local -a receiver=(ip netns exec gad)
  [ $# -gt 0 ] && receiver=()
  busy0=$(cpu_busy_ticks)
  re0=$(tcp_counter Tcp RetransSegs "$@")
  ofo0=$(tcp_counter TcpExt TCPOFOQueue "${receiver[@]}")
  paws0=$(tcp_counter TcpExt PAWSEstab "${receiver[@]}")
  line=$("$@" "$HELPER" tcp-send "$addr" 5001 "$seconds")
  re1=$(tcp_counter Tcp RetransSegs "$@")
  ofo1=$(tcp_counter TcpExt TCPOFOQueue "${receiver[@]}")
  paws1=$(tcp_counter TcpExt PAWSEstab "${receiver[@]}")
  busy1=$(cpu_busy_ticks)
  # The guest's CPU time (all vCPUs, USER_HZ ticks) spent on the stream: the driver, the gadget,
  # both TCP stacks. Under TCG it is the fairer comparison than Mbit/s alone.
  result "$subject" "tcp_$direction" ${line:-bytes=0 seconds=0 mbit_s=0} cpu_ticks=$((busy1 - busy0)) \
    hz="$(getconf CLK_TCK)" retrans_segs=$((re1 - re0)) rx_out_of_order=$((ofo1 - ofo0)) \
    rx_paws_dropped=$((paws1 - paws0))
}

# tcp_counter GROUP NAME [PREFIX...]: one counter of /proc/net/snmp (Tcp) or /proc/net/netstat
# (TcpExt), read in the namespace PREFIX runs in (both files are per network namespace).
tcp_counter() {
  local group=$1 name=$2 file=/proc/net/snmp
  shift 2
  [ "$group" = TcpExt ] && file=/proc/net/netstat
  "$@" awk -v g="$group:" -v n="$name" \
    '$1 == g { if (!h) { for (i = 2; i <= NF; i++) if ($i == n) c = i; h = 1 } else { print (c ? $c : 0); exit } }' "$file"
}

# All vCPUs' non-idle ticks since boot (/proc/stat "cpu" line: user nice system idle iowait irq
# softirq steal ...).
cpu_busy_ticks() {
  awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat
}

# The netdev a kernel driver made for a USB interface: the first /sys/class/net entry whose
# device's driver is $1.
netdev_of_driver() {
  local n
  for n in /sys/class/net/*; do
    [ "$(basename "$(readlink "$n/device/driver" 2>/dev/null)")" = "$1" ] && { basename "$n"; return 0; }
  done
  return 1
}

# ---- USB/IP devices (wwan-sim on the host, reached through QEMU's user network)
USBIP_HOST=10.0.2.2
GATEWAY=10.64.64.1   # sim::NetworkConfig: the session gives the host 10.64.64.2/30

# kernel_run SUBJECT PROFILE DRIVER VHCI_PORT PORT [wdm-session options]: attaches wwan-sim's device
# on PORT to vhci-hcd's VHCI_PORT, waits for DRIVER to bind, dials over the cdc-wdm device DRIVER
# exposes (wwan-vm-helper wdm-session), configures the kernel's netdev with the session's address,
# pings the gateway and echoes UDP through it, then hangs up. The device stays attached.
kernel_run() {
  local subject=$1 kind=$2 driver=$3 vport=$4 port=$5
  shift 5
  local line wdm nd
  line=$("$HELPER" usbip-attach $USBIP_HOST "$port" 1-1 "$vport")
  result "$subject" attach ok=$([ -n "$line" ] && echo 1 || echo 0) ${line#attached }
  bound() { netdev_of_driver "$driver" >/dev/null && ls /sys/bus/usb/drivers/"$driver"/*/usbmisc/ >/dev/null 2>&1; }
  if ! wait_for 40 bound; then
    result "$subject" bound ok=0 driver="$driver"
    return 1
  fi
  nd=$(netdev_of_driver "$driver")
  wdm=/dev/$(ls /sys/bus/usb/drivers/"$driver"/*/usbmisc/ | grep cdc-wdm | head -1)
  result "$subject" bound ok=1 driver="$driver" netdev="$nd" wdm="$wdm"
  "$HELPER" wdm-session "$wdm" "$kind" --timeout-s "${WDM_TIMEOUT_S:-30}" "$@" > $OUT/$subject-wdm.txt 2>&1 &
  local spid=$!
  said() { grep -qE '^(connected|failed)' $OUT/$subject-wdm.txt; }
  wait_for 40 said
  local session
  session=$(grep -E '^(connected|failed)' $OUT/$subject-wdm.txt | head -1)
  if [ "${session%% *}" = connected ]; then
    local addr=${session#*ipv4=}
    addr=${addr%% *}
    result "$subject" session ok=1 ipv4="$addr"
    ip addr add "$addr" dev "$nd"
    ip link set "$nd" up
    ping_check "$subject" $GATEWAY
    udp_check "$subject" $GATEWAY 7
    # What the kernel's netdev counted (its NTB parser's drops are rx_errors; no dmesg line at
    # the default log level).
    local st=/sys/class/net/$nd/statistics
    result "$subject" netdev_stats rx_packets="$(cat $st/rx_packets)" rx_errors="$(cat $st/rx_errors)" \
      rx_length_errors="$(cat $st/rx_length_errors)" tx_packets="$(cat $st/tx_packets)"
    # A scenario's extra check while the kernel's session is up (guest-quirks.sh).
    [ -n "${KERNEL_AFTER:-}" ] && "$KERNEL_AFTER" "$subject" "$nd"
  else
    result "$subject" session ok=0 why="$(echo "${session#failed error=}" | tr ' ' '_')"
  fi
  kill -TERM $spid 2>/dev/null
  wait $spid
  result "$subject" hangup $(tail -1 $OUT/$subject-wdm.txt | tr ' ' '_')
  ip addr flush dev "$nd" 2>/dev/null
  ip link set "$nd" down 2>/dev/null
}

# wwan_dp_run SUBJECT VID:PID: the daemon on the same (still attached) device.
wwan_dp_run() {
  local subject=$1 id=$2
  "$DP" --dev "$id" --tun wwan9 --json -v > $OUT/$subject.json 2> $OUT/$subject.err &
  local pid=$!
  started() { grep -q '"event":"started"' $OUT/$subject.json; }
  wait_for 40 started && result "$subject" started ok=1
  connected() { grep -q '"event":"connected"' $OUT/$subject.json; }
  if wait_for 40 connected; then
    result "$subject" connected ok=1
    ping_check "$subject" $GATEWAY
    udp_check "$subject" $GATEWAY 7
  else
    result "$subject" connected ok=0
  fi
  kill -TERM $pid
  wait $pid
  result "$subject" exit rc=$?
}

# detach VHCI_PORT: the device leaves the guest's bus (wwan-sim sees the connection close).
detach() {
  echo "$1" > /sys/devices/platform/vhci_hcd.0/detach
  gone() { ! ls /sys/bus/usb/drivers/huawei_cdc_ncm/ 2>/dev/null | grep -q ':'; }
  wait_for 10 gone
}
