#!/usr/bin/env bash
# Real programs on vmalloc. Each case runs twice, each time in a new empty directory and
# under a time limit: once on the C library's malloc and once with LD_PRELOAD=LIB. Both runs
# must exit 0 and print the same bytes. Programs that are missing are installed with apt-get
# when running as root; otherwise their case is skipped, never passed.
#
#   tests/preload/run.sh [LIB]        LIB defaults to ./libvmalloc.so
#
# Any malloc library can stand in for LIB, e.g. /usr/lib/x86_64-linux-gnu/libmimalloc.so.2,
# which is how these cases are checked independently of vmalloc.
set -u

LIMIT=300                      # seconds allowed for one run of one case
CASES=(loaded python3 perl sqlite3 git gcc sort redis)
declare -A NEEDS=([loaded]="python3 grep" [python3]=python3 [perl]=perl [sqlite3]=sqlite3
    [git]="git awk" [gcc]="gcc size awk" [sort]="sort sha256sum awk"
    [redis]="redis-server redis-cli redis-benchmark")
declare -A PACKAGE=([python3]=python3 [perl]=perl [sqlite3]=sqlite3 [git]=git [gcc]=gcc
    [size]=binutils [sort]=coreutils [sha256sum]=coreutils [grep]=grep [awk]=mawk
    [redis-server]=redis-server [redis-cli]=redis-tools [redis-benchmark]=redis-tools)

LIB=${1:-./libvmalloc.so}
if [ ! -f "$LIB" ]; then
    echo "preload: $LIB does not exist (build it with make)" >&2
    echo "preload: 0 passed, 1 failed"
    exit 1
fi
LIB=$(realpath "$LIB")         # absolute, and the name /proc/PID/maps shows
unset LD_PRELOAD
# The same environment for both runs: byte order for sort, fixed hashing for Python, and
# every Python object on malloc rather than on pymalloc's arenas.
export LC_ALL=C PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1 PYTHONMALLOC=malloc
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vmalloc-preload.XXXXXX") || exit 1
SRC=$WORK/src                  # inputs made once, read by both runs
mkdir "$SRC"
export LIB SRC TMPDIR=$WORK    # sort spills its temporary files here

passed=0 failed=0 skipped=0 child=

# Stop the run in progress, then any redis-server a killed run left, then remove the files.
cleanup() {
    local f pid
    if [ -n "$child" ]; then
        kill -TERM "$child" 2>/dev/null
        wait "$child" 2>/dev/null
    fi
    for f in "$WORK"/*/redis.pid; do
        [ -f "$f" ] || continue
        pid=$(<"$f")
        if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = redis-server ]; then
            kill -KILL "$pid" 2>/dev/null
        fi
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# --- Programs ---------------------------------------------------------------------------

# Install, in one apt-get call, the packages of every program that is missing, if root.
install_missing() {
    local cmd pkgs=()
    for cmd in "${!PACKAGE[@]}"; do
        command -v "$cmd" >/dev/null 2>&1 || pkgs+=("${PACKAGE[$cmd]}")
    done
    [ ${#pkgs[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || return 0
    mapfile -t pkgs < <(printf '%s\n' "${pkgs[@]}" | sort -u)
    echo "preload: installing ${pkgs[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq "${pkgs[@]}" </dev/null >/dev/null 2>&1 ||
        { apt-get update -qq </dev/null >/dev/null 2>&1 &&
          apt-get install -y -qq "${pkgs[@]}" </dev/null >/dev/null 2>&1; } ||
        echo "preload: apt-get could not install ${pkgs[*]}"
}

# --- Cases ------------------------------------------------------------------------------
# case_NAME runs in its own empty directory with `set -eo pipefail`; its stdout is what is
# compared. setup_NAME, when there is one, writes the inputs to $SRC once beforehand.

# The library must be mapped in the shell, in its children and in theirs: the loader only
# warns when it cannot preload something, and the other cases would then pass vacuously.
case_loaded() {
    local where
    grep -qF "$LIB" "/proc/$$/maps" && where=yes || where=no
    echo "bash $where"
    grep -qF "$LIB" /proc/self/maps && where=yes || where=no
    echo "grep $where"
    python3 -c '
import subprocess, sys
lib = sys.argv[1]
print("python3", "yes" if lib in open("/proc/self/maps").read() else "no")
maps = subprocess.run(["cat", "/proc/self/maps"], capture_output=True, text=True).stdout
print("python3/cat", "yes" if lib in maps else "no")' "$LIB"
}

setup_python3() {
    cat >"$SRC/churn.py" <<'EOF'
import hashlib, json, queue, random, threading

rng = random.Random(12345)

class Node:
    def __init__(self, key, payload, nxt):
        self.key, self.payload, self.next = key, payload, nxt

# Dicts, lists, strings and instances created and dropped in waves.
total = 0
for wave in range(12):
    table, head = {}, None
    for i in range(25000):
        key = "w%d-%x" % (wave, rng.getrandbits(40))
        text = key * (1 + i % 9)
        table[key] = [i, text, (i, key), {"len": len(text)}]
        head = Node(key, text.upper(), head)
    for j, key in enumerate(list(table)):
        if j % 3:
            del table[key]
    while head is not None:
        total += len(head.payload)
        head = head.next
    words = " ".join(table).split(" ")
    total += len(words) + len("-".join(sorted(words)).replace("w", "W"))
print("churn", total)

# A large structure through json and back.
big = {"items": [{"id": i, "name": "item-%d" % i, "tags": ["t%d" % (i % 13), "u%d" % (i % 7)] * (i % 4),
                  "score": i * 0.25, "nested": {"a": [i, i + 1, None, True], "b": str(i) * (i % 5)}}
                 for i in range(120000)]}
text = json.dumps(big, sort_keys=True)
back = json.loads(text)
print("json", len(text), back == big, hashlib.sha256(text.encode()).hexdigest())
del big, back, text

# sorted() of a million items, then of strings.
ints = [rng.randrange(10**9) for _ in range(10**6)]
s = sorted(ints)
print("sorted", s[0], s[len(s) // 2], s[-1], sum(s[::1000]))
strs = sorted(("%09d" % (x * 7919 % 10**9) for x in ints[:300000]), reverse=True)
print("sorted-str", strs[0], strs[-1], hashlib.sha256("".join(strs[::97]).encode()).hexdigest())
del ints, s, strs

# Four threads: two build lists and hand them over, two consume and drop them, so memory
# allocated in one thread is freed in another.
q = queue.Queue(maxsize=64)
sums = [0, 0, 0, 0]

def produce(idx):
    r = random.Random(idx)
    for n in range(3000):
        q.put([r.randrange(1000) for _ in range(50 + n % 200)])
    q.put(None)

def consume(idx):
    while True:
        item = q.get()
        if item is None:
            break
        local = [str(x) for x in item]
        sums[idx] += sum(len(x) for x in local) + sum(item)

threads = [threading.Thread(target=produce, args=(i,)) for i in (0, 1)]
threads += [threading.Thread(target=consume, args=(i,)) for i in (2, 3)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("threads", sum(sums))
EOF
}
case_python3() { python3 "$SRC/churn.py"; }

setup_perl() {
    cat >"$SRC/words.pl" <<'EOF'
use strict;
use warnings;

# A fixed 31-bit generator, so the text is the same on every perl.
my $seed = 20240601;
sub rnd { $seed = ($seed * 1103515245 + 12345) % 2147483648; return $seed >> 8; }

my @syllables = qw(ka lo mi nu pe ra si to vu xe ya zo an el in or us ee oo);
my @vocabulary = map { join '', map { $syllables[rnd() % @syllables] } 0 .. rnd() % 4 } 1 .. 6000;

# Generated text with a skewed word distribution, counted.
my (@lines, %freq);
for (1 .. 70000) {
    push @lines, join ' ', map { $vocabulary[(rnd() % 6000) * (rnd() % 6000) % 6000] } 0 .. 4 + rnd() % 16;
}
for my $line (@lines) { $freq{$_}++ for split / /, $line; }
my @top = (sort { $freq{$b} <=> $freq{$a} or $a cmp $b } keys %freq)[0 .. 19];
printf "%-14s %d\n", $_, $freq{$_} for @top;
print "distinct ", scalar(keys %freq), "\n";

# Regex substitutions over the whole text, which grow and shrink big strings.
my $text = join "\n", @lines;
$text =~ s/\b(\w)(\w*)\b/\u$1$2/g;
$text =~ s/([aeiou])\1/<$1$1>/g;
my $marks = () = $text =~ /<\w\w>/g;
(my $squeezed = $text) =~ tr/a-zA-Z//s;
$text =~ s/(\w+) (\w+)/$2 $1/g;
print "marks $marks squeezed ", length $squeezed, " length ", length $text, "\n";
print "checksum ", unpack('%32C*', $text), "\n";

# Hashes of arrays, and strings appended to and deleted.
my %by_letter;
push @{ $by_letter{ substr $_, 0, 1 } }, $_ for keys %freq;
for my $letter (sort keys %by_letter) {
    my @w = sort @{ $by_letter{$letter} };
    printf "%s %4d %s\n", $letter, scalar @w, join ',', @w[0 .. ($#w < 2 ? $#w : 2)];
}
my %log;
for my $i (1 .. 300000) {
    my $key = sprintf '%x', ($i * 2654435761) % 100003;
    $log{$key} .= $vocabulary[$i % @vocabulary];
    delete $log{$key} if length $log{$key} > 40 + $i % 50;
}
my $sum = 0;
$sum += length($log{$_}) * hex($_) for keys %log;
print "log ", scalar(keys %log), " $sum\n";
EOF
}
case_perl() { perl "$SRC/words.pl"; }

setup_sqlite3() {
    cat >"$SRC/db.sql" <<'EOF'
CREATE TABLE item(id INTEGER PRIMARY KEY, grp INTEGER, name TEXT, val REAL, note TEXT);
BEGIN;
WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 200000)
INSERT INTO item(grp, name, val, note)
  SELECT x % 97, 'name-' || (x * 7919 % 200003), (x * 31 % 1000) / 8.0, printf('%.*c', x % 60, 'n') FROM n;
COMMIT;
CREATE INDEX item_grp ON item(grp, val);
CREATE INDEX item_name ON item(name);
SELECT count(*), sum(grp), avg(val), total(length(note)) FROM item;
SELECT grp, count(*), sum(val), avg(val), min(name), max(name) FROM item GROUP BY grp ORDER BY grp;
SELECT name, val FROM item WHERE name BETWEEN 'name-19990' AND 'name-19999' ORDER BY name;
SELECT count(DISTINCT name), count(DISTINCT val) FROM item;
SELECT a.grp, count(*) FROM item a JOIN item b ON b.id = a.id - 97 AND b.grp = a.grp
  WHERE a.val > 100 GROUP BY a.grp ORDER BY 2 DESC, 1 LIMIT 5;
SELECT length(group_concat(name, ',')) FROM (SELECT name FROM item ORDER BY val DESC, id LIMIT 50000);
PRAGMA integrity_check;
EOF
}
case_sqlite3() { sqlite3 test.db <"$SRC/db.sql"; }

# Fixed names, e-mails and dates make every object id the same on each run. Pack sizes are
# not compared: the threaded delta search need not find the same deltas twice.
case_git() {
    export HOME=$PWD GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME='A U Thor' GIT_AUTHOR_EMAIL=author@example.com \
        GIT_COMMITTER_NAME='C O Mitter' GIT_COMMITTER_EMAIL=committer@example.com
    git init -q -b main repo
    cd repo
    git config gc.auto 0
    git config maintenance.auto false
    mkdir -p dir{0..19}/sub{0..9}
    awk 'BEGIN {
        for (d = 0; d < 20; d++) for (s = 0; s < 10; s++) for (f = 0; f < 10; f++) {
            p = "dir" d "/sub" s "/f" f ".txt"
            printf "file %d/%d/%d\n", d, s, f > p
            for (k = f; k <= f + d + s; k++) printf "%d%s", k, k < f + d + s ? " " : "\n" > p
            close(p)
        } }'
    git add -A
    GIT_AUTHOR_DATE='1700000000 +0000' GIT_COMMITTER_DATE='1700000000 +0000' git commit -q -m 'first: 2000 files'
    for d in $(seq 0 3 19); do
        for s in 1 4 7; do printf 'changed %d %d\n' "$d" "$s" >>"dir$d/sub$s/f3.txt"; done
        git rm -q "dir$d/sub9/f9.txt"
        git mv "dir$d/sub8/f8.txt" "dir$d/sub8/moved.txt"
        printf 'new %d\n' "$d" >"dir$d/new.txt"
    done
    git add -A
    GIT_AUTHOR_DATE='1700003600 +0100' GIT_COMMITTER_DATE='1700007200 +0100' \
        git commit -q -m 'second: edits, moves, deletions'
    git log --stat
    git diff --stat HEAD~1 HEAD | tail -1
    git gc --quiet
    git fsck --no-progress --strict
    git rev-parse HEAD 'HEAD^{tree}'
    git ls-files | wc -l
    git count-objects -v | grep -v '^size-pack:'
    git status --porcelain
}

# A C program of a few thousand lines: many structs and functions and a big switch.
setup_gcc() {
    awk 'BEGIN {
        nf = 300; nc = 1200
        print "#include <stdint.h>\n#include <stdio.h>\n#include <string.h>\n"
        for (i = 0; i < nf; i++) {
            n = 2 + i % 6
            printf "struct rec%d { uint32_t v[%d]; uint64_t sum; char tag[%d]; };\n\n", i, n, 4 + i % 11
            printf "static uint64_t fn%d(uint64_t x)\n{\n", i
            printf "    struct rec%d r;\n    memset(&r, 0, sizeof r);\n", i
            printf "    for (unsigned k = 0; k < %d; k++)\n", n
            printf "        r.v[k] = (uint32_t)(x * %du + k * %du);\n", 2654435761 - i * 7, i + 3
            printf "    for (unsigned k = 0; k < %d; k++)\n        r.sum += (uint64_t)r.v[k] << (k %% %d);\n", n, 1 + i % 13
            printf "    snprintf(r.tag, sizeof r.tag, \"%%u\", r.v[0] %% %d);\n", 97 + i
            printf "    return r.sum ^ (uint64_t)strlen(r.tag) ^ (x >> %d)%s;\n}\n\n", 1 + i % 7, i ? sprintf(" ^ fn%d(x + %d)", i - 1, i) : ""
        }
        print "static uint64_t step(uint32_t op, uint64_t acc)\n{\n    switch (op % " nc ") {"
        for (c = 0; c < nc; c++) {
            m = c % 5
            if (m == 0) e = sprintf("acc * %du + %d", 2 * c + 1, c)
            else if (m == 1) e = sprintf("(acc >> %d) ^ (acc << %d)", 1 + c % 31, 1 + c % 17)
            else if (m == 2) e = sprintf("acc + fn%d(acc ^ %du)", c % nf, c)
            else if (m == 3) e = sprintf("acc ^ (uint64_t)%du * (op | 1u)", c * 40503)
            else e = sprintf("(acc - %du) * 3u + (acc %% %du)", c * 977, c + 1)
            printf "    case %d: return %s;\n", c, e
        }
        print "    default: return acc;\n    }\n}\n"
        print "int main(void)\n{\n    uint64_t acc = 1;\n    uint32_t op = 7;"
        print "    for (unsigned i = 1; i <= 200000; i++) {"
        print "        op = op * 1664525u + 1013904223u;"
        print "        acc = step(op >> 8, acc);"
        print "        if (i % 20000 == 0)\n            printf(\"%u %016llx\\n\", i, (unsigned long long)acc);"
        print "    }"
        printf "    printf(\"fn %%016llx\\n\", (unsigned long long)fn%d(acc));\n", nf - 1
        print "    return 0;\n}"
    }' >"$SRC/prog.c"
}
case_gcc() {
    gcc -std=c99 -O2 -Wall -c "$SRC/prog.c" -o prog.o
    gcc prog.o -o prog
    ./prog
    size prog.o
}

# 50 MiB of lines "hex number word word-n" from a fixed seed.
setup_sort() {
    awk 'BEGIN {
        srand(2024)
        abc = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        for (bytes = i = 0; bytes < 52428800; i++) {
            line = sprintf("%08x %d %s %s-%d", int(rand() * 4294967296), int(rand() * 2000000) - 1000000,
                           substr(abc, 1 + int(rand() * 40), 8 + int(rand() * 20)), substr(abc, 1 + i % 50, 13), i % 977)
            print line
            bytes += length(line) + 1
        } }' >"$SRC/big.txt"
}
case_sort() {
    sort --parallel=2 -S 100M "$SRC/big.txt" | sha256sum
    sort -n -k2 --parallel=2 -S 100M "$SRC/big.txt" | sha256sum
}

# Only the server runs on the library; redis-cli and redis-benchmark keep their usual
# malloc. Its stdout is the replies of the checks; the benchmark goes to bench.txt.
case_redis() {
    local pre=${LD_PRELOAD-} port i status
    unset LD_PRELOAD
    for i in $(seq 50); do         # a port nothing on 127.0.0.1 answers on
        port=$((6399 + RANDOM % 2000))
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || break
    done
    LD_PRELOAD=$pre redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
        --daemonize no --dir "$PWD" >redis.log 2>&1 &
    pid=$!                         # global: the EXIT trap runs after this function returns
    echo "$pid" >redis.pid
    trap 'kill -KILL "$pid" 2>/dev/null || true; rm -f redis.pid' EXIT
    trap 'exit 143' TERM INT
    r() { redis-cli -h 127.0.0.1 -p "$port" "$@"; }
    for i in $(seq 100); do
        [ "$(r PING 2>/dev/null)" = PONG ] && break
        kill -0 "$pid" 2>/dev/null || { echo "redis-server exited at start:" >&2; tail -5 redis.log >&2; exit 1; }
        sleep 0.1
    done
    if [ "$(r INFO server | tr -d '\r' | sed -n 's/^process_id://p')" != "$pid" ]; then
        echo "the server on port $port is not the one started here" >&2
        exit 1
    fi
    if [ -n "$pre" ] && ! grep -qF "$pre" "/proc/$pid/maps"; then
        echo "$pre is not mapped in redis-server" >&2
        exit 1
    fi

    for i in $(seq 1000); do echo "SET key:$i value-$i-$((i * i))"; done | r
    for i in $(seq 1000); do echo "GET key:$i"; done | r
    r DBSIZE
    seq 20000 | xargs -n 1000 echo RPUSH biglist | r
    r LLEN biglist
    r LRANGE biglist 0 -1 | sha256sum
    r LRANGE biglist 9990 10009 | paste -sd ' '
    for i in $(seq 2000); do echo "APPEND grown chunk-$i-abcdefghijklmnopqrstuvwxyz"; done | r | tail -1
    r GET grown | sha256sum
    head -c 1000000 /dev/zero | tr '\0' v | r -x SET big
    r STRLEN big
    for i in $(seq 500); do echo "HSET hash f$i $((i * 3))"; done | r | sort | uniq -c
    r HLEN hash
    r HGETALL hash | paste - - | sort | sha256sum
    seq 3000 | xargs -n 500 echo SADD set | r
    r SMEMBERS set | sort -n | sha256sum
    seq 2000 | awk '{ print "ZADD zset", ($1 * 37) % 1000, "m" $1 }' | r | sort | uniq -c
    r ZRANGE zset 0 9 WITHSCORES | paste -sd ' '
    r DEL biglist set big
    r DBSIZE
    r INFO memory | tr -d '\r' | grep '^mem_allocator:'

    redis-benchmark -h 127.0.0.1 -p "$port" -q -n 20000 -c 20 -t set,get,lpush,lpop,incr,sadd,hset -d 100 \
        >bench.txt 2>&1 || { status=$?; echo "redis-benchmark exited $status" >&2; tail -5 bench.txt >&2; exit 1; }
    r KEYS '*' | grep -v '^key:[0-9]' | sort
    r GET counter:__rand_int__
    r STRLEN key:__rand_int__
    r SCARD myset
    r HLEN myhash
    r LLEN mylist
    r DBSIZE

    r SHUTDOWN NOSAVE >/dev/null 2>&1 || true
    wait "$pid" && status=0 || status=$?
    echo "redis-server exited $status"
}

# --- Running and judging ----------------------------------------------------------------

# run NAME MODE: one run of case_NAME in WORK/NAME.MODE/, leaving .out, .err, .rc and .time
# beside it. The run is waited for in the background so that a signal stops it at once.
run() {
    local name=$1 mode=$2 dir=$WORK/$1.$2 t0=${EPOCHREALTIME/./} status
    mkdir "$dir"
    (
        cd "$dir" || exit 1
        [ "$mode" = preload ] && export LD_PRELOAD=$LIB
        exec timeout "$LIMIT" bash -c "set -eo pipefail; case_$name"
    ) >"$dir.out" 2>"$dir.err" &
    child=$!
    wait "$child" 2>/dev/null && status=0 || status=$?   # the verdict reports any signal
    child=
    echo "$status" >"$dir.rc"
    echo $(((${EPOCHREALTIME/./} - t0) / 100000)) >"$dir.time"   # tenths of a second
}

# Print a verdict line, then, indented, up to 12 lines of evidence from the file $3: its
# start, or its end when $4 is "tail" (a crash leaves its last words at the end of stderr).
pass() { echo "PASS $1"; passed=$((passed + 1)); }
skip() { echo "SKIP $1: $2"; skipped=$((skipped + 1)); }
fail() {
    echo "FAIL $1: $2"
    failed=$((failed + 1))
    [ -n "${3-}" ] && "${4:-head}" -n 12 "$3" | sed 's/^/    /'
    return 0
}

# What an exit status means, in words.
describe() {
    case $1 in
    124) echo "timed out after ${LIMIT}s" ;;
    12[6-7]) echo "could not be started (status $1)" ;;
    1[3-9][0-9]) echo "killed by SIG$(kill -l $(($1 - 128)) 2>/dev/null || echo $(($1 - 128)))" ;;
    *) echo "exit status $1" ;;
    esac
}

# Tenths of a second as seconds.
seconds() { local t; t=$(<"$1"); echo "$((t / 10)).$((t % 10))s"; }

# The verdict on the two runs of NAME.
judge() {
    local name=$1 p=$WORK/$1.plain q=$WORK/$1.preload prc qrc
    prc=$(<"$p.rc") qrc=$(<"$q.rc")
    if grep -m 1 'cannot be preloaded' "$q.err" >"$q.why"; then
        fail "$name" "the loader did not preload $LIB" "$q.why"
    elif [ "$prc" != 0 ]; then
        fail "$name" "broken case: without LD_PRELOAD it $(describe "$prc")" "$p.err" tail
    elif [ "$qrc" != 0 ]; then
        fail "$name" "with LD_PRELOAD: $(describe "$qrc") (0 without)" "$q.err" tail
    elif ! cmp -s "$p.out" "$q.out"; then
        diff -u --label plain --label preload "$p.out" "$q.out" >"$q.diff"
        fail "$name" "stdout differs ($(wc -l <"$p.out") lines without LD_PRELOAD, $(wc -l <"$q.out") with)" "$q.diff"
    else
        pass "$name"
    fi
}

# The loaded case is judged on what it must see rather than on equal outputs.
judge_loaded() {
    local p=$WORK/loaded.plain q=$WORK/loaded.preload
    if grep -m 1 'cannot be preloaded' "$q.err" >"$q.why"; then
        fail loaded "the loader did not preload $LIB" "$q.why"
    elif [ "$(<"$q.rc")" != 0 ]; then
        fail loaded "with LD_PRELOAD: $(describe "$(<"$q.rc")")" "$q.err" tail
    elif [ "$(grep -c ' yes$' "$q.out")" != 4 ]; then
        fail loaded "$LIB is not mapped in every preloaded process" "$q.out"
    elif [ "$(<"$p.rc")" != 0 ] || [ "$(grep -c ' no$' "$p.out")" != 4 ]; then
        fail loaded "broken case: the run without LD_PRELOAD $(describe "$(<"$p.rc")"), or saw $LIB" "$p.out"
    else
        pass loaded
    fi
}

# check NAME: skip NAME if a program it needs is missing, else run it both ways and judge.
check() {
    local name=$1 cmd missing=() pkgs=()
    for cmd in ${NEEDS[$name]}; do
        command -v "$cmd" >/dev/null 2>&1 || { missing+=("$cmd"); pkgs+=("${PACKAGE[$cmd]}"); }
    done
    if [ ${#missing[@]} -gt 0 ]; then
        if [ "$(id -u)" = 0 ]; then
            skip "$name" "${missing[*]} not found, even after apt-get install ${pkgs[*]}"
        else
            skip "$name" "${missing[*]} not found, and not root to apt-get install ${pkgs[*]}"
        fi
        return
    fi
    if declare -F "setup_$name" >/dev/null && ! "setup_$name"; then
        fail "$name" "could not write its input files"
        return
    fi
    run "$name" plain
    run "$name" preload
    echo "  $name: $(seconds "$WORK/$name.plain.time") without LD_PRELOAD, $(seconds "$WORK/$name.preload.time") with"
    [ "$name" = redis ] && redis_notes
    if [ "$name" = loaded ]; then judge_loaded; else judge "$name"; fi
    rm -rf "$WORK/$name.plain" "$WORK/$name.preload" "$SRC"/*
}

# What the redis case measures depends on how redis-server was built: say so.
redis_notes() {
    local lib mode
    lib=$(ldd "$(command -v redis-server)" 2>/dev/null | grep -o 'libjemalloc[^ ]*' | head -n 1)
    if [ -n "$lib" ]; then
        echo "  redis: redis-server links $lib, so its run without LD_PRELOAD is on jemalloc, not glibc;" \
             "LD_PRELOAD still takes its malloc, calloc, realloc, free and malloc_usable_size" \
             "(mallctl and INFO's mem_allocator stay jemalloc's)"
    fi
    for mode in plain preload; do
        [ -f "$WORK/redis.$mode/bench.txt" ] || continue
        tr '\r' '\n' <"$WORK/redis.$mode/bench.txt" | grep 'requests per second' |
            sed "s/^/  redis $mode: /"
    done
}

export -f $(printf 'case_%s ' "${CASES[@]}")
install_missing
echo "preload: LD_PRELOAD=$LIB"
for name in "${CASES[@]}"; do
    check "$name"
done
summary="preload: $passed passed, $failed failed"
[ "$skipped" -gt 0 ] && summary+=", $skipped skipped"
echo "$summary"
[ "$failed" -eq 0 ]
