#!/bin/sh
# Time filling the server's `events` table (src/server/store/schema.rs) with 100,000 rows of
# the sync benchmark's mix (100 work packages, one feature, one actor) in one transaction,
# with three index sets: only `event_id` and `(team, seq)`; plus the seven activity indexes on
# today's text keys; plus the same seven on integer codes. Needs the `sqlite3` shell.
# Usage: sh benches/activity_index_keys.sh [dir]   (default $TMPDIR or /tmp; tmpfs for
# the figures in docs/benchmarks.md). Figures: docs/benchmarks.md, "2026-12-04".
set -eu
dir=${1:-${TMPDIR:-/tmp}}
db="$dir/activity_index_keys.db"

# $1..$5: the key columns for team, type, feature, work package, actor; $6: "yes" to
# create the seven activity indexes.
run() {
    t=$1 y=$2 f=$3 w=$4 a=$5 activity=$6
    {
        echo "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF; PRAGMA cache_size=-65536;"
        echo "CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT,
            event_id TEXT NOT NULL UNIQUE, team_slug TEXT NOT NULL, event_type TEXT NOT NULL,
            lamport_clock INTEGER NOT NULL, node_id TEXT NOT NULL, project_uuid TEXT NOT NULL,
            feature_slug TEXT, wp_id TEXT, received_at INTEGER NOT NULL, envelope TEXT NOT NULL,
            actor TEXT, t INTEGER, y INTEGER, f INTEGER, w INTEGER, a INTEGER);"
        echo "CREATE INDEX events_team_seq ON events($t, seq);"
        if [ "$activity" = yes ]; then
            echo "CREATE INDEX a1 ON events($t, $y, seq);
                  CREATE INDEX a2 ON events($t, $w, $y, seq);
                  CREATE INDEX a3 ON events($t, $f, $y, seq);
                  CREATE INDEX a4 ON events($t, $a, $y, seq);
                  CREATE INDEX a5 ON events($t, $f, $w, $y, seq);
                  CREATE INDEX a6 ON events($t, $w, $a, $y, seq);
                  CREATE INDEX a7 ON events($t, $f, $a, $y, seq);"
        fi
        echo "WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < 99999)
            INSERT INTO events (event_id, team_slug, event_type, lamport_clock, node_id,
                                project_uuid, feature_slug, wp_id, received_at, envelope, actor,
                                t, y, f, w, a)
            SELECT printf('01J%023d', i), 'bench-team', 'WPStatusChanged', i,
                   'node-abcdef123456', '7f1c9a3e-1111-2222-3333-444455556666',
                   '001-bench-feature', printf('WP%02d', i % 100), 1700000000,
                   printf('%0600d', i), 'claude-agent', 1, 3, 7, i % 100 + 10, 2
            FROM c;"
    } > "$db.sql"
    rm -f "$db" "$db-wal" "$db-shm"
    start=$(date +%s.%N)
    sqlite3 "$db" < "$db.sql" > /dev/null
    end=$(date +%s.%N)
    echo "$end $start" | awk '{ printf "%.2f s\n", $1 - $2 }'
}

text="team_slug event_type feature_slug wp_id actor"
ints="t y f w a"
for i in 1 2 3; do
    echo "run $i: event_id and (team, seq) only: $(run $text no)"
    echo "run $i: plus seven activity indexes, text keys: $(run $text yes)"
    echo "run $i: plus seven activity indexes, integer codes: $(run $ints yes)"
done
rm -f "$db" "$db-wal" "$db-shm" "$db.sql"
