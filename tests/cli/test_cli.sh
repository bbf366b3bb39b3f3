#!/usr/bin/env bash
# The vmalloc command (src/cli), end to end: `vmalloc run` really puts a program on vmalloc,
# keeps what LD_PRELOAD held and passes the exit status through; `vmalloc compare` measures
# a program that allocates 50 MiB (and python3, when installed) under every allocator, marks
# failed runs FAIL, and writes a well-formed chart with one line per allocator; the library
# is found as documented; bad usage exits 2. About 20 seconds.
#
#   tests/cli/test_cli.sh        (from anywhere; builds what it needs with make)
set -u
cd "$(dirname "$0")/../.."
unset MAKEFLAGS MFLAGS # a separate build, not part of a parent make's jobserver
if ! make --no-print-directory -s libvmalloc.so vmalloc cli-test-build >/dev/null; then
  echo "cli: the build failed"
  exit 1
fi
unset LD_PRELOAD VMALLOC_LIB VMALLOC_STATS

VM=$PWD/vmalloc
LIB=$(realpath libvmalloc.so)
T=$PWD/build/tests/cli
VERSION=$(sed -n 's/^VERSION *:= *//p' Makefile)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0

# record NAME CONDITION...: passes when the condition holds; else shows what the command said.
record() {
  local name=$1
  shift
  if "$@"; then
    passed=$((passed + 1))
    echo "ok   $name"
  else
    failed=$((failed + 1))
    echo "FAIL $name (status $status)"
    printf '%s\n' "$out" | tail -n 25 | sed 's/^/    /'
  fi
}

# capture CMD...: runs it; its stdout and stderr go to $out, its exit status to $status.
capture() {
  out=$("$@" 2>&1)
  status=$?
}

has() { grep -qF -- "$1" <<<"$out"; }
has_line() { grep -qxF -- "$1" <<<"$out"; }

# The rows of compare's table: from its header line to the first empty line.
table_rows() { awk '/^allocator /{ on = 1; next } on && /^$/ { exit } on' <<<"$out"; }

# Whether the table has a row for allocator $1 with eight numbers.
numeric_row() {
  table_rows | awk -v name="$1" '$1 == name { for (i = 2; i <= 9; i++) if ($i !~ /^[0-9]+\.[0-9]+$/) exit 1; found = 1 }
                                  END { exit !found }'
}

# The peak RSS in MiB of allocator $1.
peak_of() { table_rows | awk -v name="$1" '$1 == name { print $6 }'; }

# The allocators the table should have: glibc, vmalloc and each peer installed where Debian
# puts it (checked independently of the command's own search).
expected_allocators() {
  local dir
  dir=/usr/lib/$(cc -print-multiarch 2>/dev/null)
  echo glibc vmalloc
  [ -e "$dir/libjemalloc.so.2" ] && echo jemalloc
  [ -e "$dir/libmimalloc.so.2" ] && echo mimalloc
  [ -e "$dir/libtcmalloc_minimal.so.4" ] && echo tcmalloc
  return 0
}

# Whether every expected allocator has a row of numbers.
all_rows_numeric() {
  local a
  for a in $(expected_allocators); do numeric_row "$a" || return 1; done
}

# Whether chart $1 is well-formed and has one polyline per row of the table, checked by our
# own parser and, when python3 is installed, by its XML parser too.
chart_matches_table() {
  local rows lines
  rows=$(table_rows | grep -c .)
  lines=$("$T/svg_check" "$1" polyline) || return 1
  [ "$lines" = "$rows" ] || { echo "$1: $lines polylines, $rows rows" >&2; return 1; }
  [ "$rows" -ge 2 ] || return 1
  if command -v python3 >/dev/null; then
    lines=$(python3 -c '
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == "{http://www.w3.org/2000/svg}svg", root.tag
print(len(root.findall(".//{http://www.w3.org/2000/svg}polyline")))' "$1") || return 1
    [ "$lines" = "$rows" ] || return 1
  fi
}

# Whether a process of the test program is still running (the [a] keeps grep from finding
# its own command line).
alloc_free_left() { grep -alsq -- "build/tests/cli/[a]lloc_free" /proc/[0-9]*/cmdline; }

# ------------------------------------------------------------------ help, version, usage

capture "$VM" --help
record "--help prints the usage" eval '[ $status -eq 0 ] && has "usage: vmalloc run" && has "vmalloc compare"'

capture "$VM" --version
record "--version prints the Makefile's VERSION" eval '[ $status -eq 0 ] && has_line "vmalloc $VERSION"'

usage_error() { # ARGS...: exits 2 with one "vmalloc: ..." line, then the usage
  capture "$VM" "$@"
  [ $status -eq 2 ] && head -n1 <<<"$out" | grep -q '^vmalloc: ' && sed -n 2p <<<"$out" | grep -q '^usage: '
}
record "an unknown option exits 2 with usage" usage_error --bogus
record "no subcommand exits 2" usage_error
record "an unknown subcommand exits 2" usage_error frobnicate
record "run without a command exits 2" usage_error run
record "run -- without a command exits 2" usage_error run --
record "an option of compare given to run exits 2" usage_error run --svg x.svg -- true
record "compare -n 0 exits 2" usage_error compare -n 0 -- true
record "compare -n with a word exits 2" usage_error compare -n many -- true
record "--svg without a value exits 2" usage_error compare --svg

# -------------------------------------------------------------------------------- run

capture "$VM" run -- "$T/which_malloc" 7
record "run: the program's malloc is vmalloc's" has_line "malloc_from=$LIB"
record "run: vmalloc_version() is the command's version" has_line "vmalloc=$VERSION"
record "run: the exit status is the program's" eval '[ $status -eq 7 ]'
record "run: VMALLOC_STATS is left alone without --stats" has_line "VMALLOC_STATS=unset"

capture "$VM" run "$T/which_malloc"
record "run: the command may follow without --" eval '[ $status -eq 0 ] && has_line "malloc_from=$LIB"'

capture env LD_PRELOAD="$T/libclimarker.so" "$VM" run -- "$T/which_malloc"
record "run: an existing LD_PRELOAD entry is kept, after vmalloc" \
  eval 'has_line "LD_PRELOAD=$LIB:$T/libclimarker.so" && has_line "marker=loaded" && has_line "malloc_from=$LIB"'

capture "$VM" run --stats -- "$T/which_malloc"
record "run --stats sets VMALLOC_STATS=1" eval '[ $status -eq 0 ] && has_line "VMALLOC_STATS=1"'

capture "$VM" run -- sh -c 'kill -TERM $$'
record "run: death by a signal shows in the status" eval '[ $status -eq 143 ]'

capture "$VM" run -- "$tmp/no-such-program"
record "run: a missing program exits 127" eval '[ $status -eq 127 ] && has "cannot run"'

# ------------------------------------------------------------------ finding the library

capture "$VM" run --lib "$tmp/nowhere.so" -- "$T/which_malloc"
record "--lib naming no file is an error (125)" eval '[ $status -eq 125 ] && has "no library at $tmp/nowhere.so (from --lib)"'

capture env VMALLOC_LIB="$tmp/nowhere.so" "$VM" run -- "$T/which_malloc"
record "VMALLOC_LIB naming no file is an error (125)" eval '[ $status -eq 125 ] && has "(from VMALLOC_LIB)"'

mkdir -p "$tmp/alone" "$tmp/copy"
cp "$VM" "$tmp/alone/vmalloc"
cp "$LIB" "$tmp/copy/libvmalloc.so"
capture "$tmp/alone/vmalloc" run -- "$T/which_malloc"
record "no library beside the command nor in ../lib: a clear error (125)" \
  eval '[ $status -eq 125 ] && has "cannot find libvmalloc.so" && has "--lib"'

capture env VMALLOC_LIB="$LIB" "$tmp/alone/vmalloc" run -- "$T/which_malloc"
record "VMALLOC_LIB is used" has_line "malloc_from=$LIB"

capture env VMALLOC_LIB="$LIB" "$VM" run --lib "$tmp/copy/libvmalloc.so" -- "$T/which_malloc"
record "--lib is used, before VMALLOC_LIB" has_line "malloc_from=$tmp/copy/libvmalloc.so"

capture make --no-print-directory -s install DESTDIR="$tmp/root"
installed_bin=$(find "$tmp/root" -path '*/bin/vmalloc' | head -n1)
installed_lib=$(find "$tmp/root" -path '*/lib/libvmalloc.so' | head -n1)
record "make install puts the command in bin" eval '[ $status -eq 0 ] && [ -x "$installed_bin" ] && [ -f "$installed_lib" ]'
if [ -x "$installed_bin" ]; then
  capture "$installed_bin" run -- "$T/which_malloc"
  record "installed, the command finds ../lib/libvmalloc.so" has_line "malloc_from=$(realpath "$installed_lib")"
fi
capture make --no-print-directory -s uninstall DESTDIR="$tmp/root"
record "make uninstall removes the command" eval '[ $status -eq 0 ] && [ ! -e "$installed_bin" ]'

# ---------------------------------------------------------------------------- compare

# 50 MiB allocated and freed; an argument of markup characters and a byte that is not UTF-8
# (alloc_free ignores it), which the chart's title must escape.
capture "$VM" compare -n 1 --svg "$tmp/fifty.svg" -- "$T/alloc_free" 50 "<&'\">"$'\xff'
record "compare: exit status 0 when every run succeeds" eval '[ $status -eq 0 ]'
record "compare: a row of numbers for glibc, vmalloc and each installed peer" all_rows_numeric
record "compare: no allocator failed" eval '! table_rows | grep -q FAIL'
record "compare: the peak RSS shows the 50 MiB" eval 'awk "BEGIN { exit !($(peak_of glibc) >= 45 && $(peak_of vmalloc) >= 45) }"'
record "compare: the program's stdout is discarded" eval '! has "alloc_free: allocating"'
record "compare: the chart is well-formed, one line per allocator" chart_matches_table "$tmp/fifty.svg"
record "compare: the chart's path is printed" has "chart: $tmp/fifty.svg"

# The 50 MiB are held by a child the program forks and leaves running when it exits: only
# sampling the whole tree sees them, and the leftover must be killed, not waited for.
capture "$VM" compare -n 1 --svg "$tmp/tree.svg" -- "$T/alloc_free" 50 --child
record "compare: the RSS of the process tree includes children" \
  eval '[ $status -eq 0 ] && awk "BEGIN { exit !($(peak_of glibc) >= 45 && $(peak_of vmalloc) >= 45) }"'
record "compare: what a run leaves running is killed" eval '! alloc_free_left && table_rows | awk "\$1 == \"glibc\" { exit !(\$2 < 3) }"'

capture "$VM" compare -n 2 --svg "$tmp/abort.svg" -- "$T/alloc_free" 1 --abort-under-vmalloc
record "compare: a run killed by a signal is FAIL, with its stderr" \
  eval '[ $status -eq 1 ] && table_rows | grep -qE "^vmalloc +FAIL +killed by signal 6" && has "    alloc_free: aborting on purpose under vmalloc"'
record "compare: the other allocators still get numbers" numeric_row glibc
record "compare: the failed allocator still has its line in the chart" chart_matches_table "$tmp/abort.svg"

capture "$VM" compare -n 2 --svg "$tmp/fail.svg" -- "$T/alloc_free" 1 --fail 3
record "compare: a program failing on glibc itself is reported as such" \
  eval '[ $status -eq 1 ] && table_rows | grep -qE "^glibc +FAIL +exit status 3 \(run 1 of 2\)" && has "fails on glibc itself" && has "failing on purpose with status 3"'

capture "$VM" compare -n 1 --svg "$tmp/no-such-dir/chart.svg" -- "$T/alloc_free" 1
record "compare: a chart that cannot be written fails before the runs (125)" eval '[ $status -eq 125 ] && has "cannot write"'

capture "$VM" compare -n 1 --svg "$tmp/x.svg" -- no-such-command-here
record "compare: a missing program exits 127" eval '[ $status -eq 127 ] && has "command not found"'

if command -v python3 >/dev/null; then
  mkdir -p "$tmp/here"
  capture sh -c 'cd "$1" && shift && "$@"' sh "$tmp/here" "$VM" compare -n 1 -- \
    python3 -c 'x = [str(i) * 10 for i in range(300000)]; del x'
  record "compare python3: rows of numbers, no failure" eval '[ $status -eq 0 ] && all_rows_numeric'
  record "compare python3: the chart goes to vmalloc-compare.svg by default" \
    eval 'has "chart: vmalloc-compare.svg" && chart_matches_table "$tmp/here/vmalloc-compare.svg"'
else
  echo "skip compare python3: python3 is not installed"
fi

echo "cli: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
