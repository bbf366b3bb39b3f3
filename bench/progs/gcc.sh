#!/usr/bin/env bash
# The gcc workload: compile a large generated C file (workloads gen-c) at -O2.
# The driver, cc1 and as all run on the allocator under test; the checksum is
# the CRC of the object file, which gcc writes byte for byte the same each time.
set -eu
cc=$(command -v gcc || true)
[ -n "$cc" ] || { echo "gcc not found"; exit 77; }
if [ -n "${BENCH_CHECK:-}" ]; then
  echo "gcc $("$cc" -dumpfullversion)"
  exit 0
fi
"$BENCH_WORKLOADS" gen-c "$BENCH_SCALE" > "$BENCH_TMP/gen.c"
cd "$BENCH_TMP"
"$BENCH_RUNNER" measure m "$BENCH_PRELOAD" \
  "$cc" -O2 -g0 -frandom-seed=1 -c gen.c -o gen.o
read -r crc size < <(cksum < gen.o)
cat m
printf 'checksum=%08x%08x\n' "$crc" "$size"
