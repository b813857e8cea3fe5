#!/usr/bin/env bash
# The main job. With a supported modem attached: `wwan-dp --dev VID:PID --tun wwan0` on it, in the
# foreground until Ctrl-C (extra arguments are passed on, e.g. --apn internet). With none: the
# same daemon on the emulated Huawei E3372 (`--sim huawei-e3372`) inside a private network
# namespace, so nothing on this machine changes; it shows the `connected` event with the IP
# configuration that came from AT^DHCP?, pings the gateway through the TUN, prints the counters
# and stops.
#
#   tools/run.sh [wwan-dp options]        WWAN_DP_SIM=mbim tools/run.sh   (another emulated modem)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
WWAN_DP=$BUILD_DIR/tools/wwan-dp
TUN=${TUN:-wwan0}

if [ "$(id -u)" -ne 0 ]; then
  echo "run.sh: wwan-dp needs root (a TUN, and the modem's USB interfaces): sudo $0 $*" >&2
  exit 1
fi
[ -x "$WWAN_DP" ] || { echo "run.sh: $WWAN_DP is not built: meson compile -C $BUILD_DIR" >&2; exit 1; }

if [ -z "${WWAN_DP_SIM:-}" ]; then
  dev=$("$WWAN_DP" list --json 2>/dev/null | python3 -c '
import json, sys
for m in json.load(sys.stdin):
    if m.get("supported"):
        print(m["vid"] + ":" + m["pid"]); break
' || true)
  if [ -n "$dev" ]; then
    echo "run.sh: driving the modem at $dev (Ctrl-C stops it and gives it back to the kernel)" >&2
    exec "$WWAN_DP" --dev "$dev" --tun "$TUN" "$@"
  fi
  echo "run.sh: no supported modem attached; running on the emulated Huawei E3372 instead" >&2
fi
PROFILE=${WWAN_DP_SIM:-huawei-e3372}
EXTRA=()
[ "$PROFILE" = generic-ncm ] && EXTRA=(--static-ipv4 10.64.64.2/30,10.64.64.1)

# Everything below runs in a fresh network namespace: the TUN, its address and the ping exist
# only there and vanish with it.
exec unshare --net bash -s -- "$WWAN_DP" "$PROFILE" "$TUN" "${EXTRA[@]}" "$@" <<'INNER'
set -euo pipefail
WWAN_DP=$1 PROFILE=$2 TUN=$3
shift 3
ip link set lo up
events=$(mktemp -u)
mkfifo "$events"
"$WWAN_DP" --sim "$PROFILE" --tun "$TUN" --json "$@" >"$events" &
pid=$!
exec 3<"$events"
rm -f "$events"
gateway=
while IFS= read -r -t 10 line <&3; do
  echo "$line"
  case $line in
    *'"event":"connected"'*)
      gateway=$(sed -E 's/.*"gateway":"([0-9.]+)".*/\1/' <<<"$line"); break ;;
    *'"event":"error"'*|*'"event":"stopped"'*) break ;;
  esac
done
if [ -z "$gateway" ]; then
  echo "run.sh: the daemon did not connect" >&2
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" || true
  exit 1
fi
ip -brief address show dev "$TUN"
ping -c 3 -i 0.2 -W 2 "$gateway"
kill -USR1 "$pid"
IFS= read -r -t 5 line <&3 && echo "$line"
kill -TERM "$pid"
while IFS= read -r -t 5 line <&3; do echo "$line"; done
wait "$pid"
INNER
