#!/usr/bin/env bash
# Claim and heartbeat throughput of `harness dispatcher` with wrk on loopback,
# against the local PostgreSQL, beside a bare Bun.serve doing the same UPDATE.
#   bench/dispatcher/run.sh [DURATION (default 10s)] [CONNECTIONS (default 50)]
# Needs wrk, psql, PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth).
set -euo pipefail
cd "$(dirname "$0")/../.."
dur=${1:-10s}
conns=${2:-50}
admin=${BENCH_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
db=harness_bench_dispatcher
url="${admin%/*}/$db"
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

psql -q "$admin" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null
DATABASE_URL="$url" bun src/cli.ts migrate >/dev/null

export INTERNAL_AUTH_TOKEN=bench-internal-token-0123456789
port=18090
DATABASE_URL="$url" OBJECT_STORE_URL=file:///tmp/bench-objects PORT=$port LEASE_DURATION_MS=600000 \
  LOG_LEVEL=warn bun src/cli.ts dispatcher 2>"$work/dispatcher.log" &
pids+=($!)
DATABASE_URL="$url" PORT=18099 bun bench/dispatcher/baseline.ts 2>"$work/baseline.log" &
pids+=($!)
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done

# Claims: enough queued tasks that every request claims a fresh one.
psql -q "$url" -c "INSERT INTO state.tasks (org_id, payload) SELECT 'bench', '{\"alerts\":1}' FROM generate_series(1, 400000)" >/dev/null
psql -qtA "$url" -c "SELECT id FROM state.tasks ORDER BY random()" >"$work/ids"
psql -q "$url" -c "VACUUM ANALYZE state.tasks" >/dev/null
echo "== claim (wrk -t1 -c$conns -d$dur)"
IDS_FILE="$work/ids" wrk -t1 -c"$conns" -d"$dur" --latency -s bench/dispatcher/claim.lua "http://127.0.0.1:$port" \
  | grep -E "Requests/sec|99%|50%|Non-2xx"

# Heartbeats: 2,000 claimed tasks, each heartbeat the fenced single-row UPDATE.
DISPATCHER_URL="http://127.0.0.1:$port" DATABASE_URL="$url" bun bench/dispatcher/prepare-heartbeats.ts 2000 "$work/hb" 2>&1 | sort | uniq -c | sed -E "s/claim [0-9a-f-]+: //" | sort | uniq -c | head -3; psql -qtA "$url" -c "SELECT status, count(*) FROM state.tasks GROUP BY 1"
echo "== heartbeat via harness dispatcher (wrk -t1 -c$conns -d$dur)"
HB_FILE="$work/hb" wrk -t1 -c"$conns" -d"$dur" --latency -s bench/dispatcher/heartbeat.lua "http://127.0.0.1:$port/v1/task/heartbeat" \
  | grep -E "Requests/sec|99%|50%|Non-2xx"
echo "== heartbeat via bare Bun.serve + the same UPDATE (wrk -t1 -c$conns -d$dur)"
HB_FILE="$work/hb" NO_TOKEN=1 wrk -t1 -c"$conns" -d"$dur" --latency -s bench/dispatcher/heartbeat.lua "http://127.0.0.1:18099/v1/task/heartbeat" \
  | grep -E "Requests/sec|99%|50%|Non-2xx"
psql -q "$admin" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
