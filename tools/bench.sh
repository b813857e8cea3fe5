#!/usr/bin/env bash
# Runs the benchmarks from an optimised build (build-release); results and how to read them:
# docs/benchmarks.md.
#   tools/bench.sh                       # Google Benchmark programs (codec, ring, Ethernet responder,
#                                        # offload, RX/TX stages from memory: datapath_bench)
#   sudo tools/bench.sh --e2e            # those, then the end-to-end benchmark (root, ~8 min): the
#                                        # table, JSON and SVG in bench-results/ (BENCH_RESULTS=DIR)
#   sudo tools/bench.sh --e2e-quick      # the same, short (CI stage 3, with BENCH_MIN_TIME=0.05)
#   BENCH_MIN_TIME=0.05 tools/bench.sh   # quick smoke run of the Google Benchmark programs
#   tools/bench.sh --benchmark_filter=Parse   # other arguments go to every Google Benchmark program
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BENCH_BUILD_DIR:-build-release}
RESULTS=${BENCH_RESULTS:-bench-results}
e2e=()
args=()
for a in "$@"; do
  case "$a" in
    --e2e) e2e=(--out "$RESULTS") ;;
    --e2e-quick) e2e=(--out "$RESULTS" --quick) ;;
    *) args+=("$a") ;;
  esac
done
tools/bootstrap.sh >/dev/null
if [ ! -f "$BUILD/build.ninja" ]; then
  # No -Werror here: the warning gate is the debugoptimized build of the test command (CI stage
  # 1); at -O3 gcc 12 reports false positives inside libstdc++ (-Wrestrict in std::string).
  meson setup "$BUILD" --buildtype=release -Dtests=disabled >/dev/null
fi
# Quiet when it works, the whole compiler output when it does not.
if ! log=$(meson compile -C "$BUILD" 2>&1); then
  echo "$log" >&2
  exit 1
fi
[ -n "${BENCH_MIN_TIME:-}" ] && args+=("--benchmark_min_time=${BENCH_MIN_TIME}")
if ((${#e2e[@]})); then
  mkdir -p "$RESULTS"
fi
for b in "$BUILD"/bench/*_bench; do
  [ -f "$b" ] && [ -x "$b" ] || continue
  name=$(basename "$b")
  # Not Google Benchmark programs: the end-to-end benchmark (below) and its usbfs part (run by it).
  case "$name" in e2e_bench|usbfs_bench) continue ;; esac
  echo "== $name"
  out=()
  ((${#e2e[@]})) && out=("--benchmark_out=$RESULTS/$name.json" --benchmark_out_format=json)
  "$b" "${args[@]}" "${out[@]}"
done
if ((${#e2e[@]})); then
  [ "$(id -u)" -eq 0 ] || { echo "bench: the end-to-end benchmark needs root (network namespace, TUN): sudo $0 $*" >&2; exit 1; }
  echo "== e2e_bench"
  "$BUILD/bench/e2e_bench" "${e2e[@]}"
  echo "bench: results in $RESULTS/ (e2e.txt, e2e.json, e2e.svg, <program>.json)"
fi
