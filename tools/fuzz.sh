#!/usr/bin/env bash
# Builds a clang ASan+UBSan tree with the libFuzzer targets, runs the unit (with every target's
# regression replay, tests/fuzz/regressions), usbfs and integration suites in it, then runs each
# fuzzer for FUZZ_SECONDS on its corpus (tests/fuzz/corpus/<target>) plus its regressions. Every
# fuzzer runs its budget even if an earlier one crashed; any crash fails the run at the end and
# leaves the reproducer in build-fuzz/crashes/<target>/. The workflow that turns it into a
# regression test is in docs/reliability.md ("Fuzzing").
#
#   FUZZ_SECONDS=600 tools/fuzz.sh        # longer local session
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${FUZZ_BUILD_DIR:-build-fuzz}
SECONDS_PER_TARGET=${FUZZ_SECONDS:-60}
# The targets CI must fuzz (the issue's list); others found in the tree run too.
REQUIRED_TARGETS="ntb descriptors mbim at control"

tools/bootstrap.sh >/dev/null   # packages (clang, libclang-rt) are in its list
if [ ! -f "$BUILD/build.ninja" ]; then
  CC=clang CXX=clang++ meson setup "$BUILD" -Dfuzzing=true -Db_sanitize=address,undefined \
    -Db_lundef=false -Dbenchmarks=disabled ${CI:+-Dwerror=true}
fi
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
meson compile -C "$BUILD"   # `meson test` alone builds only what the tests need, not the fuzzers
meson test -C "$BUILD" --suite unit --suite usbfs --print-errorlogs
# The daemon end to end under the sanitizers (real TUNs in network namespaces; shorter floods),
# the fault matrix included: any leak, overflow or UB in the data path under load or under a
# fault aborts the daemon and fails the suite.
WWAN_DP_FLOOD_SECONDS=${WWAN_DP_FLOOD_SECONDS:-3} meson test -C "$BUILD" --suite integration --print-errorlogs

for required in $REQUIRED_TARGETS; do
  [ -x "$BUILD/tests/fuzz/fuzz_$required" ] || { echo "fuzz: fuzz_$required was not built in $BUILD" >&2; exit 1; }
done
ran=0
crashed=()
for fuzzer in "$BUILD"/tests/fuzz/fuzz_*; do
  [ -f "$fuzzer" ] && [ -x "$fuzzer" ] || continue   # skip the fuzz_*.p object directories
  name=$(basename "$fuzzer")
  target=${name#fuzz_}
  corpus=tests/fuzz/corpus/$target
  regressions=tests/fuzz/regressions/$target
  work="$BUILD/corpus/$target"      # new inputs go here, the checked-in corpus stays clean
  crashes="$BUILD/crashes/$target"
  mkdir -p "$work" "$crashes"
  inputs=("$work")
  for d in "$corpus" "$regressions"; do [ -d "$d" ] && inputs+=("$d"); done
  echo "fuzz: $name for ${SECONDS_PER_TARGET}s on ${inputs[*]:1}"
  if ! "$fuzzer" -max_total_time="$SECONDS_PER_TARGET" -max_len=70000 -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$crashes/" "${inputs[@]}"; then
    crashed+=("$target")
  fi
  ran=$((ran + 1))
done
[ "$ran" -gt 0 ] || { echo "fuzz: no fuzz targets were built in $BUILD" >&2; exit 1; }
if [ "${#crashed[@]}" -gt 0 ]; then
  for target in "${crashed[@]}"; do
    echo "fuzz: $target crashed; reproducer(s):" >&2
    ls -1 "$BUILD/crashes/$target" >&2 || true
    echo "  replay: $BUILD/tests/fuzz/fuzz_$target $BUILD/crashes/$target/<file>" >&2
    echo "  keep it: cp $BUILD/crashes/$target/<file> tests/fuzz/regressions/$target/<what-it-is>.bin" >&2
  done
  exit 1
fi
echo "fuzz: $ran targets ran ${SECONDS_PER_TARGET}s each without a crash"
