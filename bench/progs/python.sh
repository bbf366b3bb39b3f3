#!/usr/bin/env bash
# The python3 workload: bench/progs/alloc.py with PYTHONMALLOC=malloc, so that
# every object allocation reaches the allocator under test instead of pymalloc.
# Protocol of these scripts: see bench/README.md ("Real programs").
set -eu
py=$(command -v python3 || true)
[ -n "$py" ] || { echo "python3 not found"; exit 77; }
# Resolve version-manager shims to the interpreter itself: only it is preloaded.
real=$("$py" -c 'import sys; print(sys.executable)')
if [ -n "${BENCH_CHECK:-}" ]; then
  "$real" --version
  exit 0
fi
PYTHONMALLOC=malloc "$BENCH_RUNNER" measure "$BENCH_TMP/m" "$BENCH_PRELOAD" \
  "$real" -s "$(dirname "$0")/alloc.py" "$BENCH_SCALE" > "$BENCH_TMP/out"
cat "$BENCH_TMP/m" "$BENCH_TMP/out"
