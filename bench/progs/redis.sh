#!/usr/bin/env bash
# The redis workload: redis-server on the allocator under test, on 127.0.0.1,
# loaded by a Lua script (strings, hashes and lists of varied sizes, a third
# deleted), then driven by redis-benchmark (pipelined, random keys), then
# summed by a second Lua script for the checksum.
#
# Wall time is that of the load and the benchmark; CPU time and peak RSS are
# the server's alone. Debian's redis-server is linked with jemalloc, so the
# glibc run preloads a shim that sends malloc and friends back to glibc.
set -eu
for p in redis-server redis-cli redis-benchmark; do
  command -v "$p" >/dev/null || { echo "$p not found"; exit 77; }
done
if [ -n "${BENCH_CHECK:-}" ]; then
  redis-server --version | sed -E 's/^Redis server v=([^ ]+).*/redis-server \1/'
  exit 0
fi
T=$BENCH_TMP
pre=${BENCH_PRELOAD:-$BENCH_GLIBC_SHIM}
n=$(awk -v s="$BENCH_SCALE" 'BEGIN { n = int(100000 * s); print (n < 1000 ? 1000 : n) }')

# Start the server on a free port of the loopback address.
server=
for try in 1 2 3 4 5 6 7 8; do
  port=$(( 20000 + (RANDOM * 7 + $$ + try * 977) % 30000 ))
  "$BENCH_RUNNER" measure "$T/server.m" "$pre" redis-server --bind 127.0.0.1 \
    --port "$port" --save '' --appendonly no --dir "$T" --logfile "$T/server.log" \
    --daemonize no &
  server=$!
  for _ in $(seq 200); do
    if [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ]; then break 2; fi
    kill -0 "$server" 2>/dev/null || break
    sleep 0.02
  done
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  server=
done
[ -n "$server" ] || { echo "redis-server did not start" >&2; exit 1; }
trap 'kill "$server" 2>/dev/null || true' EXIT
cli() { redis-cli -h 127.0.0.1 -p "$port" "$@"; }

load='local n = tonumber(ARGV[1])
for i = 1, n do
  redis.call("SET", "s:" .. i, string.rep(string.char(97 + i % 26), 8 + (i * 7919) % 600))
  redis.call("HSET", "h:" .. (i % 5000), "f" .. i, string.rep("v", i % 100))
  redis.call("RPUSH", "l:" .. (i % 1000), string.rep("x", i % 64))
  if i % 3 == 0 then redis.call("DEL", "s:" .. (i - 1)) end
end
return n'
sum='local n = tonumber(ARGV[1])
local s = 0
for i = 1, n do
  local v = redis.call("GET", "s:" .. i)
  if v then s = (s * 31 + #v + string.byte(v, 1)) % 1000000007 end
end
for j = 0, 4999 do s = (s * 7 + redis.call("HLEN", "h:" .. j)) % 1000000007 end
for j = 0, 999 do
  local l = redis.call("LRANGE", "l:" .. j, 0, -1)
  for _, x in ipairs(l) do s = (s + #x * (j + 1)) % 1000000007 end
end
return s'

start=$(date +%s%N)
cli EVAL "$load" 0 "$n" > /dev/null
redis-benchmark -h 127.0.0.1 -p "$port" -q -c 4 -P 16 -r 100000 -d 200 -n "$n" \
  -t set,get,lpush,lpop,sadd,hset,zadd > "$T/benchmark.out"
total=$(cli EVAL "$sum" 0 "$n")
end=$(date +%s%N)
cli shutdown nosave > /dev/null 2>&1 || true
wait "$server" || true
trap - EXIT
read -r cpu rss < <(sed -E 's/.*cpu=([^ ]+) maxrss_kb=([0-9]+).*/\1 \2/' "$T/server.m")
echo "measured wall=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.6f", (b - a) / 1e9 }') cpu=$cpu maxrss_kb=$rss"
printf 'checksum=%016x\n' "$total"
