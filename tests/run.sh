#!/usr/bin/env bash
# Runs every test that `make test-build` built, each under a time limit, and the checks
# that need no program of their own. Prints one line per test and a closing count.
set -u
cd "$(dirname "$0")/.."
unset MAKEFLAGS MFLAGS # the makes run below are separate builds, not part of a parent's jobserver
passed=0 failed=0 skipped=0
failures=()

record() { # name status(0 pass, 77 skip, else fail) [detail]
  if [ "$2" -eq 0 ]; then
    passed=$((passed + 1)); echo "PASS $1"
  elif [ "$2" -eq 77 ]; then
    skipped=$((skipped + 1)); echo "SKIP $1${3:+: $3}"
  else
    failed=$((failed + 1)); failures+=("$1"); echo "FAIL $1${3:+: $3}"
  fi
}

# Only the public API is exported.
actual=$(nm -D --defined-only libvmalloc.so | awk '{print $3}' | LC_ALL=C sort)
if diff <(echo "$actual") tests/exports.txt >/tmp/vmalloc-exports.$$ 2>&1; then
  record exports 0
else
  record exports 1 "exported symbols differ from tests/exports.txt: $(tr '\n' ' ' </tmp/vmalloc-exports.$$)"
fi
rm -f /tmp/vmalloc-exports.$$

# Only the OS layer calls the kernel's memory functions.
offenders=$(grep -lE '\b(mmap|munmap|mremap|madvise|mprotect|mincore)[[:space:]]*\(' src/*.c | grep -v '^src/os.c$')
if [ -z "$offenders" ]; then record os-layer 0; else record os-layer 1 "kernel memory calls outside src/os.c: $offenders"; fi

# The README's option table matches src/options.def (name and default). Both forms of
# option are read: VM_OPTION(NAME, "type", number, ...) and VM_OPTION_TEXT(NAME, "type",
# "text", ...), whose empty default the table shows as "none".
missing_options=""
option_lines=$(grep -cE '^VM_OPTION(_TEXT)?\(' src/options.def)
parsed_options=0
while read -r name def; do
  parsed_options=$((parsed_options + 1))
  def=${def:-none}
  grep -qE "^\| \`VMALLOC_${name}\` \| ${def}( \([a-z]+\))? \|" README.md || missing_options+=" VMALLOC_$name=$def"
done < <(sed -nE -e 's/^VM_OPTION\(([A-Z_]+), *"[^"]*", *(-?[0-9]+),.*/\1 \2/p' \
                 -e 's/^VM_OPTION_TEXT\(([A-Z_]+), *"[^"]*", *"([^"]*)",.*/\1 \2/p' src/options.def)
[ "$parsed_options" -eq "$option_lines" ] || missing_options+=" (only $parsed_options of $option_lines options.def lines could be read)"
if [ -z "$missing_options" ]; then record readme-options 0; else record readme-options 1 "README option table lacks:$missing_options"; fi

run_binary() { # name timeout command...
  local name=$1 limit=$2; shift 2
  local log; log=$(mktemp)
  timeout --kill-after=5 "$limit" "$@" >"$log" 2>&1
  local status=$?
  if [ $status -ne 0 ] && [ $status -ne 77 ]; then
    tail -n 30 "$log" | sed 's/^/    /'
    [ $status -eq 124 ] && record "$name" 1 "timed out after ${limit}s" || record "$name" 1 "exit status $status"
  else
    record "$name" $status
  fi
  rm -f "$log"
}

for bin in build/tests/unit/* build/tests/api/* build/tests/stress/* build/tests/death/* build/tests/cpp/*; do
  [ -x "$bin" ] || continue
  run_binary "${bin#build/tests/}" 300 "$bin"
done

# The threaded stress tests once more with the checks off (VMALLOC_CHECK=0: no secrets,
# no freed key), a configuration the paths above never take.
for bin in build/tests/stress/stress_threads build/tests/stress/stress_churn; do
  [ -x "$bin" ] && run_binary "${bin#build/tests/}-nocheck" 300 env VMALLOC_CHECK=0 "$bin"
done

# The threaded stress once more with the purge clock looking every millisecond, so that
# pages other threads free into are found idle and lose their free end all the time.
[ -x build/tests/stress/stress_threads ] &&
  run_binary stress/stress_threads-purge1ms 300 \
    env VMALLOC_PURGE_DELAY_MS=1 VMALLOC_PURGE_ESCALATE_MS=1 build/tests/stress/stress_threads

# The C++ programs once more at the heaviest checking (canaries, quarantine, guard pages),
# where new and delete leave their fast paths.
for bin in build/tests/cpp/test_cpp build/tests/cpp/test_new_replaced build/tests/cpp/test_new_minimal; do
  [ -x "$bin" ] && run_binary "${bin#build/tests/}-check3" 300 env VMALLOC_CHECK=3 "$bin"
done

# Sanitizer builds of the internals (unit tests under ASan+UBSan, a stress under TSan).
if [ -d build/tests/sanitize ]; then
  for bin in build/tests/sanitize/*; do
    [ -x "$bin" ] || continue
    run_binary "sanitize/${bin##*/}" 600 "$bin"
  done
fi

# The benchmark workloads at tiny scale: same checksums on vmalloc and glibc.
if grep -q '^bench-smoke:' bench/bench.mk 2>/dev/null; then
  run_binary bench-smoke 600 make --no-print-directory bench-smoke
fi

# The vmalloc command: run and compare on test programs and python3, its chart, finding the
# library (tests/cli/test_cli.sh, about 20 seconds).
run_binary cli 300 tests/cli/test_cli.sh

# The fuzz harness over its saved crash inputs and seed corpus (tests/fuzz/README.md),
# then a short fuzzing run (FUZZ_SECONDS, 120 by default; 0 skips it).
if [ -x build/fuzz/fuzz_heap ]; then
  run_binary fuzz-regressions 600 make --no-print-directory fuzz-regressions
  if [ "${FUZZ_SECONDS:-120}" != 0 ]; then
    run_binary fuzz 900 make --no-print-directory fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-120}"
  fi
else
  record fuzz-regressions 77 "no libFuzzer toolchain (make fuzz-build says why)"
fi

# Real programs under LD_PRELOAD, compared with a glibc run.
if [ -x tests/preload/run.sh ] && [ "${VMALLOC_SKIP_PRELOAD:-0}" != 1 ]; then
  run_binary preload 1200 tests/preload/run.sh ./libvmalloc.so
fi

echo
[ ${#failures[@]} -gt 0 ] && echo "failed: ${failures[*]}"
if [ "$skipped" -gt 0 ]; then
  echo "make test: $passed passed, $failed failed, $skipped skipped"
else
  echo "make test: $passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
