#!/usr/bin/env bash
# The sqlite3 workload: bulk insert into an in-memory database (every page is a
# heap block), two indexes, an update, a delete and a grouping query.
set -eu
db=$(command -v sqlite3 || true)
[ -n "$db" ] || { echo "sqlite3 not found"; exit 77; }
if [ -n "${BENCH_CHECK:-}" ]; then
  echo "sqlite3 $("$db" -version | cut -d' ' -f1)"
  exit 0
fi
n=$(awk -v s="$BENCH_SCALE" 'BEGIN { n = int(600000 * s); print (n < 1000 ? 1000 : n) }')
cat > "$BENCH_TMP/load.sql" <<SQL
PRAGMA cache_size = -1000000;
CREATE TABLE item(id INTEGER PRIMARY KEY, grp INTEGER, name TEXT, score INTEGER, note TEXT);
BEGIN;
WITH RECURSIVE seq(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM seq WHERE x < $n)
INSERT INTO item
  SELECT x, (x * 7919) % 1009, printf('item-%08d-%x', (x * 2654435761) % 100000007, x),
         (x * 31) % 100003,
         substr('lorem ipsum dolor sit amet, consectetur adipiscing elit', 1 + x % 17, 5 + x % 40)
  FROM seq;
COMMIT;
CREATE INDEX item_name ON item(name);
CREATE INDEX item_grp_score ON item(grp, score);
UPDATE item SET note = note || '-' || grp WHERE id % 3 = 0;
DELETE FROM item WHERE id % 7 = 0;
CREATE TABLE summary AS
  SELECT grp, count(*) AS n, sum(score) AS total, max(name) AS top FROM item GROUP BY grp;
SELECT printf('checksum=%016x',
  (SELECT sum(n * 31 + grp + total) + sum(length(top)) FROM summary)
  + (SELECT sum(length(note)) FROM item) * 1000003
  + (SELECT count(*) FROM item WHERE name > 'item-5'));
SQL
"$BENCH_RUNNER" measure "$BENCH_TMP/m" "$BENCH_PRELOAD" \
  "$db" -batch -bail :memory: < "$BENCH_TMP/load.sql" > "$BENCH_TMP/out"
cat "$BENCH_TMP/m" "$BENCH_TMP/out"
