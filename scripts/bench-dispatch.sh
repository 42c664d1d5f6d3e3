#!/usr/bin/env bash
# Dispatch benchmark (issue 8): automatic dispatch over HTTP next to pgbench running the same
# assignment statement in the same run (the floor); nearest-driver queries while dispatching at
# a steady 200/s, next to the same queries idle; the queue drain rate with two nodes draining;
# and how long another node keeps offering a driver dispatched elsewhere.
#
#   bash scripts/bench-dispatch.sh
#
# Setup: fresh database, VEHICLES vans, one driver each on an open shift, AVAILABLE_PCT %
# available, one fresh position per vehicle through MQTT ingest; node A (ingest + HTTP) and
# node B (HTTP only) on the same database. Jobs are inserted with SQL at random pickups in the
# fleet's area; every dispatch consumes a driver, so the phases together use about 15k of them.
#
# Knobs (environment): VEHICLES=100000 AVAILABLE_PCT=20 HTTP_JOBS=5000 PG_JOBS=5000
#   CONNECTIONS=16 (wrk, and pgbench clients) WRK_THREADS=1 DURATION=15 PACED_RATE=200
#   QUEUE_JOBS=2000 CROSSNODE=20 CENTER=59.91,10.75 RADIUS_KM=30
#   BENCH_HTTP_ADDR=127.0.0.1:8083 BENCH_HTTP_ADDR_B=127.0.0.1:8084 BENCH_DATABASE=meridian_bench_dispatch
#   MERIDIAN_BIN_DIR (use binaries built elsewhere)
# Targets: automatic dispatch p99 <= 20 ms (read at the steady rate) and >= 70% of the pgbench floor's throughput;
# nearest >= 15k req/s while dispatching 200/s.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$MERIDIAN_ROOT"

VEHICLES=${VEHICLES:-100000}
AVAILABLE_PCT=${AVAILABLE_PCT:-20}
HTTP_JOBS=${HTTP_JOBS:-5000}
PG_JOBS=${PG_JOBS:-5000}
CONNECTIONS=${CONNECTIONS:-16}
export WRK_THREADS=${WRK_THREADS:-1}
DURATION=${DURATION:-15}
PACED_RATE=${PACED_RATE:-200}
QUEUE_JOBS=${QUEUE_JOBS:-2000}
CROSSNODE=${CROSSNODE:-20}
CENTER=${CENTER:-59.91,10.75}
RADIUS_KM=${RADIUS_KM:-30}
ADDR=${BENCH_HTTP_ADDR:-127.0.0.1:8083}
ADDR_B=${BENCH_HTTP_ADDR_B:-127.0.0.1:8084}
ADMIN_URL=${DATABASE_URL:-$DEFAULT_ADMIN_DATABASE_URL}
BENCH_DB=${BENCH_DATABASE:-meridian_bench_dispatch}
BENCH_URL=$(url_with_db "$ADMIN_URL" "$BENCH_DB")
export MQTT_URL=${MQTT_URL:-$DEFAULT_MQTT_URL}
export RUST_LOG=${RUST_LOG:-warn}
LAT0=${CENTER%,*}
LON0=${CENTER#*,}
SPREAD=$(python3 -c "print(round($RADIUS_KM / 111.0 * 0.8, 4))")

DATABASE_URL=$ADMIN_URL bash scripts/deps.sh
command -v wrk >/dev/null 2>&1 || apt_install wrk
command -v pgbench >/dev/null 2>&1 || die "pgbench not found (it ships with the PostgreSQL server packages)"
ensure_cargo_on_path || die "cargo not found"
release_binaries

mkdir -p "$STATE_DIR"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/meridian-bench-dispatch.XXXXXX")
SERVE_PID='' SERVE_B_PID='' PACED_PID=''
CLIENT_ID="meridian-bench-dispatch-$$"
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_pid "$PACED_PID" 5 TERM
  stop_pid "$SERVE_B_PID" 30 TERM
  stop_pid "$SERVE_PID" 30 TERM
  mosquitto_sub -h "$MQTT_HOST" -p "$MQTT_PORT" -i "$CLIENT_ID" -t meridian/bench/cleanup -E >/dev/null 2>&1 || true
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

calc() { python3 -c "import sys; print(eval(sys.argv[1], {'nan': float('nan')}))" "$1"; }
fmt() { python3 -c "import sys; print(format(float(sys.argv[1]), sys.argv[2]))" "$1" "$2"; }
metric() { # addr name → summed value from /metrics
  curl -fsS "http://$1/metrics" | awk -v n="$2" '$1 == n || index($1, n "{") == 1 { s += $2 } END { print s + 0 }'
}
to_ms() { # wrk latency like 812.00us / 1.23ms / 1.01s → milliseconds
  python3 -c "
import re, sys
v, u = re.match(r'([\d.]+)(us|ms|s)', sys.argv[1]).groups()
print(round(float(v) * {'us': 0.001, 'ms': 1, 's': 1000}[u], 3))" "$1"
}
cpu_s() { # pid → user+system CPU seconds so far
  awk '{ print ($14 + $15) / 100 }' "/proc/$1/stat"
}
jobs_sql() { # tag count → inserts `count` van jobs at random pickups, ids to $WORK/<tag>.ids
  pg "$BENCH_URL" -qtA >"$WORK/$1.ids" <<SQL
INSERT INTO jobs (reference, pickup, vehicle_type)
SELECT 'bench-$1-' || i,
       ST_SetSRID(ST_MakePoint($LON0 + (random() - 0.5) * 4 * $SPREAD, $LAT0 + (random() - 0.5) * 2 * $SPREAD), 4326),
       'van'
FROM generate_series(1, $2) i
RETURNING id;
SQL
}

step "setup: $VEHICLES vans, one driver each on an open shift, $AVAILABLE_PCT% available"
pg "$ADMIN_URL" -c "drop database if exists \"$BENCH_DB\" with (force)" -c "create database \"$BENCH_DB\""
DATABASE_URL=$BENCH_URL "$MERIDIAN" migrate
DATABASE_URL=$BENCH_URL "$SIM" register --vehicles "$VEHICLES" --vehicle-type van
pg "$BENCH_URL" <<SQL
INSERT INTO drivers (name, status)
SELECT 'driver ' || i, CASE WHEN i % 100 < $AVAILABLE_PCT THEN 'available' ELSE 'on_job' END
FROM generate_series(0, $VEHICLES - 1) i;
INSERT INTO shifts (driver_id, vehicle_id, during)
SELECT d.id, v.id, tstzrange(now() - interval '1 hour', NULL)
FROM (SELECT id, row_number() OVER (ORDER BY name) r FROM drivers) d
JOIN (SELECT id, row_number() OVER (ORDER BY external_id) r FROM vehicles) v USING (r);
VACUUM ANALYZE;
SQL
AVAILABLE=$(pg "$BENCH_URL" -tAc "select count(*) from driver_availability")
info "$AVAILABLE drivers available"

for a in "$ADDR" "$ADDR_B"; do
  port_open "${a%:*}" "${a##*:}" && die "$a is already in use; set BENCH_HTTP_ADDR / BENCH_HTTP_ADDR_B"
done
DATABASE_URL=$BENCH_URL MERIDIAN_HTTP_ADDR=$ADDR MQTT_CLIENT_ID=$CLIENT_ID \
  setsid "$MERIDIAN" serve >"$STATE_DIR/bench-dispatch-serve-a.log" 2>&1 </dev/null &
SERVE_PID=$!
DATABASE_URL=$BENCH_URL MERIDIAN_HTTP_ADDR=$ADDR_B MERIDIAN_INGEST=false \
  setsid "$MERIDIAN" serve >"$STATE_DIR/bench-dispatch-serve-b.log" 2>&1 </dev/null &
SERVE_B_PID=$!
wait_for_http "http://$ADDR/readyz" 60 "$SERVE_PID" || die "node A did not become ready"
wait_for_http "http://$ADDR_B/readyz" 60 "$SERVE_B_PID" || die "node B did not become ready"
KEY=$(DATABASE_URL=$BENCH_URL "$MERIDIAN" apikey create --role dispatcher --name bench 2>/dev/null | head -n 1)
KEY_ID=$(pg "$BENCH_URL" -tAc "select id from api_keys where name = 'bench'")
export BENCH_KEY=$KEY BENCH_LAT=$LAT0 BENCH_LON=$LON0 BENCH_SPREAD=$SPREAD

step "one fresh position per vehicle through MQTT ingest"
"$SIM" run --vehicles "$VEHICLES" --rate 0 --messages "$VEHICLES" --center "$CENTER" \
  --radius-km "$RADIUS_KM" --no-progress --seed 7 >"$STATE_DIR/bench-dispatch-sim.log" 2>&1
for a in "$ADDR" "$ADDR_B"; do
  for ((i = 0; i < 600; i++)); do
    [[ $(metric "$a" meridian_live_index_candidates) -ge $AVAILABLE ]] && break
    sleep 0.5
  done
  info "live index on $a: $(metric "$a" meridian_live_index_candidates) candidates"
done
jobs_sql http "$HTTP_JOBS"
jobs_sql steady $((PACED_RATE * DURATION))
jobs_sql paced $((PACED_RATE * DURATION))
jobs_sql pg "$PG_JOBS"

step "automatic dispatch over HTTP: $HTTP_JOBS jobs, $CONNECTIONS connections (node A)"
cpu0=$(cpu_s "$SERVE_PID")
BENCH_JOBS_FILE=$WORK/http.ids wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d120s --latency \
  -s scripts/bench/dispatch.lua "http://$ADDR" >"$WORK/wrk-dispatch.txt"
cpu1=$(cpu_s "$SERVE_PID")
# Throughput from the database's own timestamps: wrk divides by its whole -d even when every
# thread stopped early.
H_RPS=$(pg "$BENCH_URL" -tAc "select count(*) / greatest(extract(epoch from max(d.dispatched_at) - min(d.dispatched_at)), 0.001)
  from dispatches d join jobs j on j.id = d.job_id where j.reference like 'bench-http-%'")
H_P50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$WORK/wrk-dispatch.txt")")
H_P99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$WORK/wrk-dispatch.txt")")
H_DISPATCHED=$(pg "$BENCH_URL" -tAc "select count(*) from dispatches d join jobs j on j.id = d.job_id where j.reference like 'bench-http-%'")
H_CPU_US=$(calc "($cpu1 - $cpu0) * 1e6 / max($H_DISPATCHED, 1)")
sed -n '/^status/p' "$WORK/wrk-dispatch.txt" | sed 's/^/    /'
info "HTTP: $(fmt "$H_RPS" ',.0f') dispatches/s, p50 $H_P50 ms, p99 $H_P99 ms; $H_DISPATCHED dispatched; node A CPU $(fmt "$H_CPU_US" ',.0f') µs per dispatch"

step "the floor: pgbench running the same assignment statement, $PG_JOBS jobs, $CONNECTIONS clients"
# Each job paired with a distinct driver still available (the server picks the nearest from its
# index; pgbench has no index, so it is handed a driver: the statement re-checks it the same way).
pg "$BENCH_URL" -q <<SQL
CREATE TABLE bench_pairs AS
SELECT j.r AS n, j.id AS job_id, a.driver_id
FROM (SELECT id, row_number() OVER () r FROM jobs WHERE reference LIKE 'bench-pg-%') j
JOIN (SELECT driver_id, row_number() OVER (ORDER BY random()) r FROM driver_availability) a USING (r);
CREATE UNIQUE INDEX ON bench_pairs (n);
CREATE SEQUENCE bench_seq;
SQL
{
  echo "SELECT b.job_id, b.driver_id FROM (SELECT nextval('bench_seq') AS n) x JOIN bench_pairs b USING (n) \\gset"
  "$MERIDIAN" print-sql assign |
    sed -e 's/\$1/:job_id/g; s/\$2/:driver_id/g; s/\$4/300.0/g; s/\$5/NULL::float8/g' -e "s/\\\$3/'$KEY_ID'::uuid/g"
  echo ";"
} >"$WORK/assign.sql"
floor_run() { # clients → P_TPS P_P50 P_P99 (PG_JOBS / 2 transactions)
  local dir="$WORK/pgb-$1"
  mkdir -p "$dir"
  # The same plan-cache setting as the server's dispatch pool (store::dispatch_pool).
  (cd "$dir" && PGOPTIONS='-c plan_cache_mode=force_generic_plan' pgbench -n -M prepared -c "$1" -j 2 \
    -t $((PG_JOBS / 2 / $1)) -f "$WORK/assign.sql" --log --log-prefix=pgb "$BENCH_URL" >"$dir/out.txt" 2>&1) ||
    { cat "$dir/out.txt" >&2; die "pgbench failed"; }
  P_TPS=$(awk '/^tps = / { print $3; exit }' "$dir/out.txt")
  read -r P_P50 P_P99 < <(cat "$dir"/pgb.* | awk '{ print $3 }' | sort -n | awk '
    { v[NR] = $1 } END { printf "%.3f %.3f\n", v[int(NR * 0.5)] / 1000, v[int(NR * 0.99)] / 1000 }')
  info "pgbench, $1 clients: $(fmt "$P_TPS" ',.0f') tx/s, p50 $P_P50 ms, p99 $P_P99 ms"
}
# As many clients as HTTP has connections, then 4 (where this statement peaks on 2 cores: more
# clients queue on PostgreSQL's NOTIFY commit lock). The ratio is taken against the better.
floor_run "$CONNECTIONS"
F16_TPS=$P_TPS F16_P50=$P_P50 F16_P99=$P_P99
floor_run 4
if [[ $(calc "$F16_TPS > $P_TPS") == True ]]; then P_TPS=$F16_TPS P_P50=$F16_P50 P_P99=$F16_P99; fi
P_DISPATCHED=$(pg "$BENCH_URL" -tAc "select count(*) from dispatches d join jobs j on j.id = d.job_id where j.reference like 'bench-pg-%'")
info "$P_DISPATCHED dispatched by pgbench"
RATIO=$(calc "$H_RPS / $P_TPS")
info "pgbench: $(fmt "$P_TPS" ',.0f') tx/s, p50 $P_P50 ms, p99 $P_P99 ms; $P_DISPATCHED dispatched"
info "HTTP / floor: $(fmt "$RATIO" .2f)x (target >= 0.70)"

step "automatic dispatch at a steady $PACED_RATE/s for $DURATION s, nothing else running (node A)"
python3 scripts/bench/dispatch_probe.py paced "http://$ADDR" "$KEY" "$WORK/steady.ids" "$PACED_RATE" "$DURATION" \
  >"$WORK/steady.txt"
STEADY=$(cat "$WORK/steady.txt")
info "$STEADY"

step "nearest-driver queries: idle, then while dispatching $PACED_RATE/s ($DURATION s each, node A)"
nearest_run() { # label → N_RPS N_P50 N_P99
  wrk -t1 -c20 -d"${DURATION}s" --latency -s scripts/bench/nearest.lua "http://$ADDR" >"$WORK/wrk-nearest-$1.txt"
  N_RPS=$(awk '/^Requests\/sec:/ { print $2 }' "$WORK/wrk-nearest-$1.txt")
  N_P50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$WORK/wrk-nearest-$1.txt")")
  N_P99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$WORK/wrk-nearest-$1.txt")")
  info "nearest $1: $(fmt "$N_RPS" ',.0f') req/s, p50 $N_P50 ms, p99 $N_P99 ms"
}
nearest_run idle
IDLE_RPS=$N_RPS IDLE_P50=$N_P50 IDLE_P99=$N_P99
python3 scripts/bench/dispatch_probe.py paced "http://$ADDR" "$KEY" "$WORK/paced.ids" "$PACED_RATE" "$DURATION" \
  >"$WORK/paced.txt" &
PACED_PID=$!
nearest_run dispatching
wait "$PACED_PID"
PACED_PID=''
PACED=$(cat "$WORK/paced.txt")
info "$PACED"

step "queue drain: $QUEUE_JOBS queued jobs, nodes A and B draining"
pg "$BENCH_URL" -q <<SQL
WITH j AS (
  INSERT INTO jobs (reference, pickup, vehicle_type, status)
  SELECT 'bench-queue-' || i,
         ST_SetSRID(ST_MakePoint($LON0 + (random() - 0.5) * 4 * $SPREAD, $LAT0 + (random() - 0.5) * 2 * $SPREAD), 4326),
         'van', 'queued'
  FROM generate_series(1, $QUEUE_JOBS) i
  RETURNING id, priority, requested_at
)
INSERT INTO dispatch_queue (job_id, priority, enqueued_at) SELECT id, priority, requested_at FROM j;
SQL
for ((i = 0; i < 1200; i++)); do
  [[ $(pg "$BENCH_URL" -tAc "select count(*) from dispatch_queue") -eq 0 ]] && break
  sleep 0.1
done
read -r Q_DONE Q_SPAN < <(pg "$BENCH_URL" -tA -F' ' -c "
  select count(*), coalesce(extract(epoch from max(d.dispatched_at) - min(d.dispatched_at)), 0)
  from dispatches d join jobs j on j.id = d.job_id where j.reference like 'bench-queue-%'")
Q_RATE=$(calc "$Q_DONE / max($Q_SPAN, 0.001)")
Q_LEFT=$(pg "$BENCH_URL" -tAc "select count(*) from dispatch_queue")
info "drained $Q_DONE of $QUEUE_JOBS in $(fmt "$Q_SPAN" .2f) s: $(fmt "$Q_RATE" ',.0f') jobs/s ($Q_LEFT left)"
info "drained by node A: $(metric "$ADDR" 'meridian_dispatch_outcomes_total{outcome="drained"}'), node B: $(metric "$ADDR_B" 'meridian_dispatch_outcomes_total{outcome="drained"}')"

step "another node: dispatch on A, time until B stops offering the driver ($CROSSNODE times)"
CROSS=$(python3 scripts/bench/dispatch_probe.py crossnode "http://$ADDR" "http://$ADDR_B" "$KEY" "$BENCH_URL" \
  "$LAT0" "$LON0" "$SPREAD" "$CROSSNODE")
info "$CROSS"

step "results (PostgreSQL $(pg "$ADMIN_URL" -tAc 'show server_version'), $(nproc) cores, $VEHICLES vehicles, $AVAILABLE available)"
printf '    %-44s %12s %9s %9s\n' "" "per second" "p50 ms" "p99 ms"
printf '    %-44s %12s %9s %9s\n' "automatic dispatch over HTTP" "$(fmt "$H_RPS" ',.0f')" "$H_P50" "$H_P99"
printf '    %-44s %12s %9s %9s\n' "pgbench, same statement, $CONNECTIONS clients" "$(fmt "$F16_TPS" ',.0f')" "$F16_P50" "$F16_P99"
printf '    %-44s %12s %9s %9s\n' "floor: the better pgbench run" "$(fmt "$P_TPS" ',.0f')" "$P_P50" "$P_P99"
printf '    %-44s %12s\n' "HTTP / floor (target >= 0.70)" "$(fmt "$RATIO" .2f)x"
printf '    %-44s %12s\n' "node A CPU per automatic dispatch" "$(fmt "$H_CPU_US" ',.0f') µs"
printf '    %-44s %12s %9s %9s\n' "nearest, idle" "$(fmt "$IDLE_RPS" ',.0f')" "$IDLE_P50" "$IDLE_P99"
printf '    %-44s %12s %9s %9s\n' "nearest, while dispatching $PACED_RATE/s" "$(fmt "$N_RPS" ',.0f')" "$N_P50" "$N_P99"
printf '    %-44s %12s\n' "queue drain, two nodes" "$(fmt "$Q_RATE" ',.0f')"
info "steady $STEADY"
info "with nearest load $PACED"
info "$CROSS"
