#!/usr/bin/env bash
# Query benchmark: nearest available drivers over HTTP (wrk) next to pgbench running the bare
# KNN SQL on the same data in the same run (the floor), idle and while the simulator ingests
# 10k msg/s; then geofence queries (`contains`, fence vehicles) over 10k fences.
#
#   bash scripts/bench-api.sh
#
# Setup: fresh database, VEHICLES vehicles registered, one driver per vehicle on an open shift,
# AVAILABLE_PCT % of drivers `available`; one fresh position per vehicle through MQTT ingest.
# Every answer is also checked against PostGIS's exact answer (scripts/bench/nearest_truth.py).
#
# Knobs (environment): VEHICLES=100000 AVAILABLE_PCT=20 DURATION=15 (s per load run)
#   CONNECTIONS=20 (wrk; Tile38's peer figure used 20 clients) WRK_THREADS=1 PGBENCH_CLIENTS=16 INGEST_RATE=10000 (msg/s, phase 2)
#   CENTER=59.91,10.75 RADIUS_KM=30 FENCES=10000 CHECK_QUERIES=100
#   BENCH_HTTP_ADDR=127.0.0.1:8082 BENCH_DATABASE=meridian_bench_api MERIDIAN_BIN_DIR
# Target (issue 3): >= 15k req/s with p99 <= 5 ms over HTTP, idle; answers identical to PostGIS.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$MERIDIAN_ROOT"

VEHICLES=${VEHICLES:-100000}
AVAILABLE_PCT=${AVAILABLE_PCT:-20}
DURATION=${DURATION:-15}
CONNECTIONS=${CONNECTIONS:-20}
WRK_THREADS=${WRK_THREADS:-1}
PGBENCH_CLIENTS=${PGBENCH_CLIENTS:-16}
INGEST_RATE=${INGEST_RATE:-10000}
CENTER=${CENTER:-59.91,10.75}
RADIUS_KM=${RADIUS_KM:-30}
FENCES=${FENCES:-10000}
CHECK_QUERIES=${CHECK_QUERIES:-100}
ADDR=${BENCH_HTTP_ADDR:-127.0.0.1:8082}
ADMIN_URL=${DATABASE_URL:-$DEFAULT_ADMIN_DATABASE_URL}
BENCH_DB=${BENCH_DATABASE:-meridian_bench_api}
BENCH_URL=$(url_with_db "$ADMIN_URL" "$BENCH_DB")
export MQTT_URL=${MQTT_URL:-$DEFAULT_MQTT_URL}
export RUST_LOG=${RUST_LOG:-warn}
LAT0=${CENTER%,*}
LON0=${CENTER#*,}
# Pickups spread over the fleet's area: ±SPREAD° of latitude, ±2·SPREAD° of longitude.
SPREAD=$(python3 -c "print(round($RADIUS_KM / 111.0 * 0.8, 4))")

DATABASE_URL=$ADMIN_URL bash scripts/deps.sh
command -v wrk >/dev/null 2>&1 || apt_install wrk
command -v pgbench >/dev/null 2>&1 || die "pgbench not found (it ships with the PostgreSQL server packages)"
ensure_cargo_on_path || die "cargo not found"
release_binaries

mkdir -p "$STATE_DIR"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/meridian-bench-api.XXXXXX")
SERVE_PID='' SIM_PID=''
CLIENT_ID="meridian-bench-api-$$"
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_pid "$SIM_PID" 5 INT TERM
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
metric() { # name → summed value from /metrics
  curl -fsS "http://$ADDR/metrics" | awk -v n="$1" '$1 == n || index($1, n "{") == 1 { s += $2 } END { print s + 0 }'
}

step "setup: $VEHICLES vehicles, one driver each on an open shift, $AVAILABLE_PCT% available"
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

port_open "${ADDR%:*}" "${ADDR##*:}" && die "$ADDR is already in use; set BENCH_HTTP_ADDR"
DATABASE_URL=$BENCH_URL MERIDIAN_HTTP_ADDR=$ADDR MQTT_CLIENT_ID=$CLIENT_ID \
  setsid "$MERIDIAN" serve >"$STATE_DIR/bench-api-serve.log" 2>&1 </dev/null &
SERVE_PID=$!
wait_for_http "http://$ADDR/readyz" 60 "$SERVE_PID" || die "meridian serve did not become ready"
KEY=$(DATABASE_URL=$BENCH_URL "$MERIDIAN" apikey create --role dispatcher --name bench 2>/dev/null | head -n 1)
export BENCH_KEY=$KEY BENCH_LAT=$LAT0 BENCH_LON=$LON0 BENCH_SPREAD=$SPREAD

step "one fresh position per vehicle through MQTT ingest"
"$SIM" run --vehicles "$VEHICLES" --rate 0 --messages "$VEHICLES" --center "$CENTER" \
  --radius-km "$RADIUS_KM" --no-progress --seed 7 >"$STATE_DIR/bench-api-sim-load.log" 2>&1
for ((i = 0; i < 600; i++)); do
  [[ $(metric meridian_live_index_candidates) -ge $AVAILABLE ]] && break
  sleep 0.5
done
info "live index: $(metric meridian_live_index_candidates) candidates"

# wrk_run label → sets W_RPS W_P50 W_P99 W_ERRORS (latencies in ms)
wrk_run() {
  local out="$WORK/wrk-$1.txt"
  wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s scripts/bench/nearest.lua \
    "http://$ADDR" >"$out"
  W_RPS=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
  W_P50=$(awk '$1 == "50%" { print $2 }' "$out")
  W_P99=$(awk '$1 == "99%" { print $2 }' "$out")
  W_ERRORS=$(awk '/Non-2xx/ { print $NF } /Socket errors/ { print "socket:" $0 }' "$out" | tr '\n' ' ')
  W_P50=$(to_ms "$W_P50") W_P99=$(to_ms "$W_P99")
  info "HTTP nearest: $(fmt "$W_RPS" ',.0f') req/s, p50 ${W_P50} ms, p99 ${W_P99} ms ${W_ERRORS:+(errors: $W_ERRORS)}"
}
to_ms() { # wrk latency like 812.00us / 1.23ms / 1.01s → milliseconds
  python3 -c "
import re, sys
v, u = re.match(r'([\d.]+)(us|ms|s)', sys.argv[1]).groups()
print(round(float(v) * {'us': 0.001, 'ms': 1, 's': 1000}[u], 3))" "$1"
}

# The floor: the bare KNN SQL, index-ordered by planar distance, availability joined, with a
# geodesic distance for the ten rows returned. pgbench, prepared statements, same data.
cat >"$WORK/knn.sql" <<SQL
\\set lat $LAT0 + (random(0, 1000000) - 500000) * $SPREAD / 500000.0
\\set lon $LON0 + (random(0, 1000000) - 500000) * $SPREAD / 250000.0
SELECT a.driver_id, p.vehicle_id,
       ST_Distance(p.location::geography, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography) AS distance_m
FROM vehicle_positions p JOIN driver_availability a USING (vehicle_id)
WHERE a.during @> now() AND p.ts >= now() - interval '300 seconds'
ORDER BY p.location <-> ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)
LIMIT 10;
SQL

# pgbench_run label → sets P_TPS P_P50 P_P99 (ms)
pgbench_run() {
  local dir="$WORK/pgb-$1"
  mkdir -p "$dir"
  (cd "$dir" && pgbench -n -M prepared -c "$PGBENCH_CLIENTS" -j 2 -T "$DURATION" -f "$WORK/knn.sql" \
    --log --log-prefix=pgb "$BENCH_URL" >"$dir/out.txt" 2>&1) || { cat "$dir/out.txt" >&2; die "pgbench failed"; }
  P_TPS=$(awk '/^tps = / { print $3; exit }' "$dir/out.txt")
  read -r P_P50 P_P99 < <(cat "$dir"/pgb.* | awk '{ print $3 }' | sort -n | awk '
    { v[NR] = $1 } END { printf "%.3f %.3f\n", v[int(NR * 0.5)] / 1000, v[int(NR * 0.99)] / 1000 }')
  info "pgbench bare KNN SQL: $(fmt "$P_TPS" ',.0f') queries/s, p50 ${P_P50} ms, p99 ${P_P99} ms"
}

RESULTS=()
phase() { # label
  wrk_run "$1"
  pgbench_run "$1"
  local ratio
  ratio=$(calc "$W_RPS / $P_TPS")
  info "meridian / bare SQL: $(fmt "$ratio" .2f)x"
  RESULTS+=("$1|$W_RPS|$W_P50|$W_P99|$P_TPS|$P_P50|$P_P99|$ratio|${W_ERRORS:-0}")
}

step "explain: the bare KNN SQL's plan"
pg "$BENCH_URL" -c "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) $(sed -e '1,2d' -e "s/:lat/$LAT0/g; s/:lon/$LON0/g" "$WORK/knn.sql")" |
  sed 's/^/    /' | head -n 30

step "phase 1: idle ($DURATION s each)"
phase idle
step "answers vs PostGIS truth ($CHECK_QUERIES random pickups)"
TRUTH=$(python3 scripts/bench/nearest_truth.py "http://$ADDR" "$KEY" "$BENCH_URL" "$LAT0" "$LON0" "$SPREAD" "$CHECK_QUERIES") ||
  warn "answers differ from PostGIS"
info "$TRUTH"

step "phase 2: while the simulator ingests $INGEST_RATE msg/s"
stored0=$(metric meridian_ingest_points_stored_total)
"$SIM" run --vehicles "$VEHICLES" --rate "$(calc "$INGEST_RATE / $VEHICLES")" --duration $((DURATION * 2 + 20)) \
  --center "$CENTER" --radius-km "$RADIUS_KM" --no-progress --seed 8 --connections 2 \
  >"$STATE_DIR/bench-api-sim-ingest.log" 2>&1 &
SIM_PID=$!
sleep 8
t0=$(date +%s.%N)
phase ingesting
t1=$(date +%s.%N)
stored1=$(metric meridian_ingest_points_stored_total)
INGESTED=$(calc "($stored1 - $stored0) / ($t1 - $t0 + 8)")
info "ingest during phase 2: $(fmt "$INGESTED" ',.0f') points/s stored"
stop_pid "$SIM_PID" 5 INT TERM
SIM_PID=''

# shellcheck source=scripts/bench/geofences.sh
source scripts/bench/geofences.sh

step "results (PostgreSQL $(pg "$ADMIN_URL" -tAc 'show server_version'), $(nproc) cores, $VEHICLES vehicles, $AVAILABLE available)"
printf '    %-10s %12s %9s %9s %12s %9s %9s %8s\n' phase "http req/s" "p50 ms" "p99 ms" "sql q/s" "p50 ms" "p99 ms" ratio
for r in "${RESULTS[@]}"; do
  IFS='|' read -r label rps p50 p99 tps sp50 sp99 ratio errs <<<"$r"
  printf '    %-10s %12s %9s %9s %12s %9s %9s %7sx\n' "$label" "$(fmt "$rps" ',.0f')" "$p50" "$p99" \
    "$(fmt "$tps" ',.0f')" "$sp50" "$sp99" "$(fmt "$ratio" .2f)"
done
info "$TRUTH"
for r in "${FENCE_RESULTS[@]}"; do
  IFS='|' read -r mode rps p50 p99 <<<"$r"
  printf '    %-10s %12s %9s %9s   (%s fences)\n' "fence-$mode" "$(fmt "$rps" ',.0f')" "$p50" "$p99" "$FENCES"
done
IFS='|' read -r _ rps _ p99 _ <<<"${RESULTS[0]}"
info "target idle: >= 15,000 req/s with p99 <= 5 ms: $(calc "'PASS' if $rps >= 15000 and $p99 <= 5 else 'FAIL'")"
