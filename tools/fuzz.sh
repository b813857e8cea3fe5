#!/usr/bin/env bash
# Builds a clang ASan+UBSan tree with the libFuzzer targets, runs the unit and integration suites in it, then
# runs each fuzzer for FUZZ_SECONDS on its corpus (tests/fuzz/corpus/<target>). A crash fails
# the run and leaves the reproducer in build-fuzz/crashes/<target>/: turn it into a regression
# test (copy it into the corpus and into a unit test), then fix the code.
#
#   FUZZ_SECONDS=600 tools/fuzz.sh        # longer local session
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${FUZZ_BUILD_DIR:-build-fuzz}
SECONDS_PER_TARGET=${FUZZ_SECONDS:-60}

tools/bootstrap.sh >/dev/null   # packages (clang, libclang-rt) are in its list
if [ ! -f "$BUILD/build.ninja" ]; then
  CC=clang CXX=clang++ meson setup "$BUILD" -Dfuzzing=true -Db_sanitize=address,undefined \
    -Db_lundef=false -Dbenchmarks=disabled ${CI:+-Dwerror=true}
fi
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
meson compile -C "$BUILD"   # `meson test` alone builds only what the tests need, not the fuzzers
meson test -C "$BUILD" --suite unit --suite usbfs --print-errorlogs
# The daemon end to end under the sanitizers (real TUNs in network namespaces; shorter floods):
# any leak, overflow or UB in the data path under load aborts the daemon and fails the suite.
WWAN_DP_FLOOD_SECONDS=${WWAN_DP_FLOOD_SECONDS:-3} meson test -C "$BUILD" --suite integration --print-errorlogs

ran=0
for fuzzer in "$BUILD"/tests/fuzz/fuzz_*; do
  [ -f "$fuzzer" ] && [ -x "$fuzzer" ] || continue   # skip the fuzz_*.p object directories
  name=$(basename "$fuzzer")
  corpus=tests/fuzz/corpus/${name#fuzz_}
  work="$BUILD/corpus/${name#fuzz_}"      # new inputs go here, the checked-in corpus stays clean
  crashes="$BUILD/crashes/${name#fuzz_}"
  mkdir -p "$work" "$crashes"
  echo "fuzz: $name for ${SECONDS_PER_TARGET}s on $corpus"
  "$fuzzer" -max_total_time="$SECONDS_PER_TARGET" -max_len=70000 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$crashes/" "$work" "$corpus"
  ran=$((ran + 1))
done
[ "$ran" -gt 0 ] || { echo "fuzz: no fuzz targets were built in $BUILD" >&2; exit 1; }
