#!/usr/bin/env bash
# History benchmark (issue 9): a 24 h track at 1-minute resolution for one vehicle, over HTTP,
# next to the bare SQL of the same aggregate run by pgbench on the same data in the same run.
#
#   bash scripts/bench-history.sh                    # 1,000 vehicles × 7 days: 60M rows, ~6 GB
#   VEHICLES=20 DAYS=2 bash scripts/bench-history.sh # a quick check of the script itself
#
# Setup: fresh database, VEHICLES vehicles registered (meridian-sim register), DAYS whole UTC
# days before today of raw points at one per STEP_S seconds per vehicle, written straight into
# the daily partitions with INSERT … SELECT generate_series (one statement per day): each
# vehicle drives loops around its own depot near CENTER, speed and fuel varying along the way.
# Then `meridian serve` (ingest off) answers REQUESTS track requests for random vehicles and
# days, one at a time (latency, not throughput), and pgbench runs the statement of
# src/store/track.rs (`binned`) for random vehicles and days, prepared, one client.
#
# Knobs (environment): VEHICLES=1000 DAYS=7 STEP_S=10 REQUESTS=200 CENTER=59.91,10.75
#   BENCH_HTTP_ADDR=127.0.0.1:8083 BENCH_DATABASE=meridian_bench_history MERIDIAN_BIN_DIR
#   KEEP_DATABASE=1 (leave the database for another run; it is dropped by default)
# Target (issue 9): p50 and p99 of the 24 h / 1 m track ≤ 20 ms at 1,000 vehicles × 7 days.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$MERIDIAN_ROOT"

VEHICLES=${VEHICLES:-1000}
DAYS=${DAYS:-7}
STEP_S=${STEP_S:-10}
REQUESTS=${REQUESTS:-200}
CENTER=${CENTER:-59.91,10.75}
ADDR=${BENCH_HTTP_ADDR:-127.0.0.1:8083}
ADMIN_URL=${DATABASE_URL:-$DEFAULT_ADMIN_DATABASE_URL}
BENCH_DB=${BENCH_DATABASE:-meridian_bench_history}
BENCH_URL=$(url_with_db "$ADMIN_URL" "$BENCH_DB")
export MQTT_URL=${MQTT_URL:-$DEFAULT_MQTT_URL}
export RUST_LOG=${RUST_LOG:-warn}
LAT0=${CENTER%,*}
LON0=${CENTER#*,}
((DAYS >= 1 && DAYS <= 25)) || die "DAYS must be 1..25 (inside the default 30-day raw retention)"

DATABASE_URL=$ADMIN_URL bash scripts/deps.sh
command -v pgbench >/dev/null 2>&1 || die "pgbench not found (it ships with the PostgreSQL server packages)"
ensure_cargo_on_path || die "cargo not found"
release_binaries

mkdir -p "$STATE_DIR"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/meridian-bench-history.XXXXXX")
SERVE_PID=''
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_pid "$SERVE_PID" 30 TERM
  if [[ -z ${KEEP_DATABASE:-} ]]; then
    pg "$ADMIN_URL" -c "drop database if exists \"$BENCH_DB\" with (force)" >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

calc() { python3 -c "import sys; print(eval(sys.argv[1]))" "$1"; }

ROWS=$(calc "$VEHICLES * $DAYS * 86400 // $STEP_S")
step "setup: $VEHICLES vehicles × $DAYS days at one point per $STEP_S s = $(calc "format($ROWS, ',')") rows"
pg "$ADMIN_URL" -c "drop database if exists \"$BENCH_DB\" with (force)" -c "create database \"$BENCH_DB\""
DATABASE_URL=$BENCH_URL "$MERIDIAN" migrate
DATABASE_URL=$BENCH_URL "$SIM" register --vehicles "$VEHICLES" --vehicle-type van >/dev/null
# Vehicles numbered 1..N for pgbench and the HTTP client to pick from.
pg "$BENCH_URL" -c "CREATE TABLE bench_vehicles AS
  SELECT row_number() OVER (ORDER BY external_id)::int AS n, id FROM vehicles;
  ALTER TABLE bench_vehicles ADD PRIMARY KEY (n);"

# Day partitions named as src/store/partitions.rs names them (vehicle_telemetry_pYYYYMMDD),
# with the parent's (vehicle_id, ts) unique index and BRIN on ts.
FIRST_DAY=$(pg "$BENCH_URL" -tAc "SELECT (now() AT TIME ZONE 'UTC')::date - $DAYS")
for ((d = 0; d < DAYS; d++)); do
  day=$(pg "$BENCH_URL" -tAc "SELECT date '$FIRST_DAY' + $d")
  next=$(pg "$BENCH_URL" -tAc "SELECT date '$day' + 1")
  name="vehicle_telemetry_p${day//-/}"
  t0=$(date +%s.%N)
  pg "$BENCH_URL" -q <<SQL
CREATE TABLE IF NOT EXISTS $name PARTITION OF vehicle_telemetry
  FOR VALUES FROM ('$day 00:00:00+00') TO ('$next 00:00:00+00');
-- Each vehicle loops around its depot (within ~0.1° of CENTER) on a 2–5 km circle, one lap
-- every 20–50 minutes; speed follows the lap, fuel drains over the day and is refilled at
-- midnight; every 50th point lacks a speed, every 20th a fuel level.
INSERT INTO vehicle_telemetry (ts, vehicle_id, location, speed_kmh, heading_deg, fuel_pct, accuracy_m, received_at)
SELECT t, v.id,
       ST_SetSRID(ST_MakePoint(
         $LON0 + (v.n % 97 - 48) * 0.002 + r * cos(a) / cos(radians($LAT0)),
         $LAT0 + (v.n % 89 - 44) * 0.001 + r * sin(a)), 4326),
       CASE WHEN s % 50 <> 0 THEN 20 + 40 * abs(sin(a * 2)) END,
       degrees(a + pi() / 2)::numeric % 360,
       CASE WHEN s % 20 <> 0 THEN 95 - 60 * (s % ($((86400 / STEP_S)))) / $((86400 / STEP_S)).0 END,
       5, t
FROM bench_vehicles v,
     LATERAL (SELECT 0.02 + (v.n % 7) * 0.005 AS r, 1200 + (v.n % 31) * 60 AS lap_s) k,
     LATERAL generate_series(0, $((86400 / STEP_S - 1))) s,
     LATERAL (SELECT timestamptz '$day 00:00:00+00' + s * interval '$STEP_S seconds' AS t,
                     2 * pi() * ((s * $STEP_S + v.n * 37) % k.lap_s) / k.lap_s AS a) p;
SQL
  info "$day: $(calc "format(round($(date +%s.%N) - $t0, 1))") s"
done
step "vacuum analyze"
pg "$BENCH_URL" -q -c "VACUUM ANALYZE vehicle_telemetry"
STORED=$(pg "$BENCH_URL" -tAc "SELECT count(*) FROM vehicle_telemetry")
SIZE=$(pg "$BENCH_URL" -tAc "SELECT pg_size_pretty(sum(pg_total_relation_size(inhrelid)))
  FROM pg_inherits WHERE inhparent = 'vehicle_telemetry'::regclass")
info "vehicle_telemetry: $(calc "format($STORED, ',')") rows, $SIZE on disk (heap + indexes)"

port_open "${ADDR%:*}" "${ADDR##*:}" && die "$ADDR is already in use; set BENCH_HTTP_ADDR"
DATABASE_URL=$BENCH_URL MERIDIAN_HTTP_ADDR=$ADDR MERIDIAN_INGEST=false \
  setsid "$MERIDIAN" serve >"$STATE_DIR/bench-history-serve.log" 2>&1 </dev/null &
SERVE_PID=$!
wait_for_http "http://$ADDR/readyz" 60 "$SERVE_PID" || die "meridian serve did not become ready"
KEY=$(DATABASE_URL=$BENCH_URL "$MERIDIAN" apikey create --role analyst --name bench 2>/dev/null | head -n 1)

step "waiting for the node to seal the past days (covering index built concurrently, then VACUUM)"
# What a running node does to every day before today (src/store/partitions.rs `seal_before`).
t0=$(date +%s)
for ((i = 0; i < 2400; i++)); do
  sealed=$(pg "$BENCH_URL" -tAc "SELECT count(*) FROM pg_stat_user_tables s
    JOIN pg_class t ON t.relname = s.relname || '_track' JOIN pg_index x ON x.indexrelid = t.oid
    WHERE s.relname LIKE 'vehicle_telemetry_p%' AND x.indisvalid AND s.last_vacuum IS NOT NULL")
  ((sealed >= DAYS)) && break
  sleep 1
done
info "$sealed of $DAYS days sealed in $(($(date +%s) - t0)) s; size now $(pg "$BENCH_URL" -tAc "SELECT pg_size_pretty(sum(pg_total_relation_size(inhrelid)))
  FROM pg_inherits WHERE inhparent = 'vehicle_telemetry'::regclass")"

step "explain: one day at 1 m for one vehicle"
# The statement of src/store/track.rs `binned` ($4 = 60 s), for pgbench and EXPLAIN alike.
cat >"$WORK/track.sql" <<SQL
\\set n random(1, $VEHICLES)
\\set d random(0, $((DAYS - 1)))
SELECT bucket, ST_X(last), ST_Y(last), speed, fuel, points FROM (
  SELECT date_bin(60 * interval '1 second', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
         (array_agg(location ORDER BY ts DESC))[1] AS last, avg(speed_kmh) AS speed,
         avg(fuel_pct) AS fuel, count(*) AS points, count(speed_kmh) AS speed_points,
         count(fuel_pct) AS fuel_points, max(ts) AS last_ts
  FROM vehicle_telemetry
  WHERE vehicle_id = (SELECT id FROM bench_vehicles WHERE n = :n)
    AND ts >= timestamptz '$FIRST_DAY 00:00:00+00' + :d * interval '1 day'
    AND ts < timestamptz '$FIRST_DAY 00:00:00+00' + (:d + 1) * interval '1 day'
  GROUP BY 1) b
ORDER BY bucket;
SQL
pg "$BENCH_URL" -c "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) $(sed -e '1,2d' -e 's/:n/1/; s/:d/0/g' "$WORK/track.sql")" |
  sed 's/^/    /' | head -n 30

step "HTTP: $REQUESTS tracks of 24 h at 1 m, one at a time"
HTTP=$(python3 - "$ADDR" "$KEY" "$BENCH_URL" "$FIRST_DAY" "$DAYS" "$REQUESTS" "$STEP_S" <<'PY'
import datetime, http.client, json, random, subprocess, sys, time
addr, key, url, first_day, days, requests, step_s = sys.argv[1:8]
ids = subprocess.run(["psql", "-X", "-qAt", url, "-c", "SELECT id FROM bench_vehicles ORDER BY n"],
                     check=True, capture_output=True, text=True).stdout.split()
first = datetime.date.fromisoformat(first_day)
host, port = addr.rsplit(":", 1)
conn = http.client.HTTPConnection(host, int(port))
rng = random.Random(9)
lat, bad = [], 0
for _ in range(int(requests)):
    day = first + datetime.timedelta(days=rng.randrange(int(days)))
    path = (f"/v1/vehicles/{rng.choice(ids)}/track?resolution=1m"
            f"&from={day}T00:00:00Z&to={day + datetime.timedelta(days=1)}T00:00:00Z")
    t0 = time.perf_counter()
    conn.request("GET", path, headers={"Authorization": f"Bearer {key}"})
    res = conn.getresponse()
    body = res.read()
    lat.append((time.perf_counter() - t0) * 1000)
    points = json.loads(body).get("points", []) if res.status == 200 else []
    # A full day at one point per step_s: 1,440 minutes, each with 60/step_s points.
    if res.status != 200 or len(points) != 1440 or points[0]["count"] != 60 // int(step_s):
        bad += 1
lat.sort()
pct = lambda q: lat[min(len(lat) - 1, int(len(lat) * q))]
print(f"{pct(0.5):.2f} {pct(0.99):.2f} {sum(lat) / len(lat):.2f} {bad}")
PY
)
read -r H_P50 H_P99 H_MEAN H_BAD <<<"$HTTP"
info "HTTP track: p50 $H_P50 ms, p99 $H_P99 ms, mean $H_MEAN ms; wrong answers: $H_BAD"

step "pgbench: the bare SQL, $REQUESTS queries, one client, prepared"
mkdir -p "$WORK/pgb"
(cd "$WORK/pgb" && pgbench -n -M prepared -c 1 -j 1 -t "$REQUESTS" -f "$WORK/track.sql" \
  --log --log-prefix=pgb "$BENCH_URL" >"$WORK/pgb/out.txt" 2>&1) || { cat "$WORK/pgb/out.txt" >&2; die "pgbench failed"; }
read -r S_P50 S_P99 S_MEAN < <(cat "$WORK"/pgb/pgb.* | awk '{ print $3 }' | sort -n | awk '
  { v[NR] = $1; s += $1 } END { printf "%.2f %.2f %.2f\n", v[int(NR * 0.5) + 1] / 1000, v[int(NR * 0.99) + 1] / 1000, s / NR / 1000 }')
info "bare SQL: p50 $S_P50 ms, p99 $S_P99 ms, mean $S_MEAN ms"

step "results (PostgreSQL $(pg "$ADMIN_URL" -tAc 'show server_version'), $(nproc) cores, $VEHICLES vehicles × $DAYS days, $SIZE)"
printf '    %-22s %9s %9s %9s\n' "24 h at 1 m" "p50 ms" "p99 ms" "mean ms"
printf '    %-22s %9s %9s %9s\n' "HTTP (meridian)" "$H_P50" "$H_P99" "$H_MEAN"
printf '    %-22s %9s %9s %9s\n' "bare SQL (pgbench)" "$S_P50" "$S_P99" "$S_MEAN"
((H_BAD == 0)) || warn "$H_BAD answers were not 200 with 1,440 full minutes"
info "target: p99 <= 20 ms: $(calc "'PASS' if $H_P99 <= 20 else 'FAIL'")"
