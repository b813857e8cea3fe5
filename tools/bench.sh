#!/usr/bin/env bash
# Runs the Google Benchmark programs from an optimised build (build-release).
#   tools/bench.sh                       # full run, as recorded in docs/benchmarks.md
#   BENCH_MIN_TIME=0.05 tools/bench.sh   # quick smoke run (CI)
#   tools/bench.sh --benchmark_filter=Parse
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BENCH_BUILD_DIR:-build-release}
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
args=("$@")
[ -n "${BENCH_MIN_TIME:-}" ] && args+=("--benchmark_min_time=${BENCH_MIN_TIME}")
for b in "$BUILD"/bench/*_bench; do
  [ -f "$b" ] && [ -x "$b" ] || continue
  echo "== $(basename "$b")"
  "$b" "${args[@]}"
done
