#!/usr/bin/env bash
# Rollup benchmark (issue 9):
#  1. The rollup of one hour of POINTS raw points (VEHICLES vehicles), closed by the job's own
#     code (`meridian rollup`), next to a bare `INSERT … SELECT … GROUP BY` of the same hour in
#     the same run: the ratio says what geodesic distances, entry steps, first/last points and
#     bounding boxes cost over plain aggregates.
#  2. What tracking late points costs ingest: `scripts/bench-ingest.sh` at 10 points/message with
#     1 % of points late (1 h to 7 days), MERIDIAN_ROLLUP_TRACK_LATE on and off alternated, PAIRS
#     times; with tracking on it also reports how long late marks waited to be folded in (the
#     rollup lag of late data under the ingest benchmark's load).
#  3. The fleet export (`GET /v1/history`): EXPORT_ROWS hourly rows (EXPORT_VEHICLES vehicles)
#     generated with SQL, exported over HTTP as CSV (curl to /dev/null; REPEAT times), NDJSON
#     and gzip, next to `psql \copy (the same SELECT) to '/dev/null' csv` of the same rows in the
#     same run; the server's RSS is sampled (ps) during each export.
#
#   bash scripts/bench-rollup.sh
#   PHASES=export EXPORT_ROWS=200000 bash scripts/bench-rollup.sh     # the export phase, small
#
# The hour's day partition also holds HOURS_BEFORE hours as full as it before it, as in
# production (a day partition holds 24 of them): the planner must not get away with reading
# the whole partition.
#
# Knobs (environment): VEHICLES=1000 POINTS=1000000 HOURS_BEFORE=5 REPEAT=3 PAIRS=2 INGEST_MESSAGES=100000
#   INGEST_VEHICLES=10000 LATE_RATE=0.01 EXPORT_ROWS=2000000 EXPORT_VEHICLES=1000
#   BENCH_HTTP_ADDR=127.0.0.1:8084 PHASES="close ingest export" BENCH_DATABASE=meridian_bench_rollup
#   MERIDIAN_BIN_DIR (use binaries built elsewhere)  KEEP_DATABASE=1 (leave the close phase's database)
# Targets: tracking late points costs ingest <= 5 % (same run); the export streams >= 500k rows/s.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$MERIDIAN_ROOT"

VEHICLES=${VEHICLES:-1000}
HOURS_BEFORE=${HOURS_BEFORE:-5}
POINTS=${POINTS:-1000000}
REPEAT=${REPEAT:-3}
PAIRS=${PAIRS:-2}
INGEST_MESSAGES=${INGEST_MESSAGES:-100000}
INGEST_VEHICLES=${INGEST_VEHICLES:-10000}
LATE_RATE=${LATE_RATE:-0.01}
EXPORT_ROWS=${EXPORT_ROWS:-2000000}
EXPORT_VEHICLES=${EXPORT_VEHICLES:-1000}
EXPORT_ADDR=${BENCH_HTTP_ADDR:-127.0.0.1:8084}
PHASES=${PHASES:-close ingest export}
ADMIN_URL=${DATABASE_URL:-$DEFAULT_ADMIN_DATABASE_URL}
BENCH_DB=${BENCH_DATABASE:-meridian_bench_rollup}
BENCH_URL=$(url_with_db "$ADMIN_URL" "$BENCH_DB")
export RUST_LOG=${RUST_LOG:-warn}

DATABASE_URL=$ADMIN_URL bash scripts/deps.sh
ensure_cargo_on_path || die "cargo not found"
release_binaries
export MERIDIAN_BIN_DIR=${MERIDIAN_BIN_DIR:-$(dirname "$MERIDIAN")}

calc() { python3 -c "import sys; print(eval(sys.argv[1], {'nan': float('nan')}))" "$1"; }
fmt() { python3 -c "import sys; print(format(float(sys.argv[1]), sys.argv[2]))" "$1" "$2"; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
SUMMARY=()

close_phase() {
  local per=$((POINTS / VEHICLES))
  step "setup: $VEHICLES vehicles, $per points each in one hour ($((per * VEHICLES)) points), and $HOURS_BEFORE such hours before it"
  pg "$ADMIN_URL" -c "drop database if exists \"$BENCH_DB\" with (force)" -c "create database \"$BENCH_DB\""
  DATABASE_URL=$BENCH_URL "$MERIDIAN" migrate
  DATABASE_URL=$BENCH_URL "$SIM" register --vehicles "$VEHICLES" >/dev/null
  local hour hour_end
  hour=$(pg "$BENCH_URL" -tAc "select to_char(date_trunc('hour', now() at time zone 'UTC') - interval '3 hours', 'YYYY-MM-DD\"T\"HH24:00:00\"Z\"')")
  hour_end=$(pg "$BENCH_URL" -tAc "select to_char('$hour'::timestamptz at time zone 'UTC' + interval '1 hour', 'YYYY-MM-DD\"T\"HH24:00:00\"Z\"')")
  # The hour's day and the one before (the job starts at the oldest partition), named as
  # src/store/partitions.rs names them.
  pg "$BENCH_URL" -q <<SQL
DO \$\$
DECLARE d date;
BEGIN
  FOR d IN SELECT generate_series(('$hour'::timestamptz at time zone 'UTC')::date - 1,
                                  ('$hour'::timestamptz at time zone 'UTC')::date, interval '1 day')::date LOOP
    EXECUTE format('CREATE TABLE IF NOT EXISTS vehicle_telemetry_p%s PARTITION OF vehicle_telemetry
                    FOR VALUES FROM (%L) TO (%L)', to_char(d, 'YYYYMMDD'),
                   d::text || ' 00:00:00+00', (d + 1)::text || ' 00:00:00+00');
  END LOOP;
END \$\$;
INSERT INTO vehicle_telemetry (ts, vehicle_id, location, speed_kmh, heading_deg, fuel_pct, accuracy_m, received_at)
SELECT '$hour'::timestamptz + make_interval(secs => i * 3600.0 / $per + random()) - make_interval(hours => h),
       v.id,
       ST_SetSRID(ST_MakePoint(10.75 + v.n * 1e-3 + i * 2e-4, 59.91 + sin(i / 40.0) * 0.01), 4326),
       CASE WHEN i % 10 = 0 THEN NULL ELSE 20 + 60 * random() END, 360 * random(),
       80 - i * 0.01, 5, now()
FROM generate_series($HOURS_BEFORE, 0, -1) h,
     (SELECT id, row_number() OVER (ORDER BY external_id) AS n FROM vehicles) v,
     generate_series(0, $per - 1) i
ORDER BY 1;
VACUUM ANALYZE vehicle_telemetry;
CREATE TABLE bare_hourly (vehicle_id uuid, points bigint, avg_speed_kmh float8, max_speed_kmh float8,
                          avg_fuel_pct float8, min_fuel_pct float8, first_ts timestamptz, last_ts timestamptz);
SQL
  info "raw table: $(pg "$BENCH_URL" -tAc "select pg_size_pretty(pg_total_relation_size('vehicle_telemetry_p' || to_char('$hour'::timestamptz at time zone 'UTC', 'YYYYMMDD')))") for the hour's day"

  step "the job closes the hour (every hour from the oldest partition up to it, in order)"
  DATABASE_URL=$BENCH_URL "$MERIDIAN" rollup --from "$hour" --to "$hour_end" 2>&1 | tail -n 2 | sed 's/^/    /'
  local closed took
  closed=$(pg "$BENCH_URL" -tAc "select took_ms from rollup_hours where bucket = '$hour'")
  info "close: $(fmt "$closed" ',.0f') ms ($(pg "$BENCH_URL" -tAc "select points from rollup_hours where bucket = '$hour'") points, $(pg "$BENCH_URL" -tAc "select vehicles from rollup_hours where bucket = '$hour'") vehicles)"
  local rebuilds=() bares=()
  for ((r = 1; r <= REPEAT; r++)); do
    DATABASE_URL=$BENCH_URL "$MERIDIAN" rollup --from "$hour" --to "$hour_end" >/dev/null 2>&1
    took=$(pg "$BENCH_URL" -tAc "select took_ms from rollup_hours where bucket = '$hour'")
    rebuilds+=("$took")
    took=$(pg "$BENCH_URL" -tA <<SQL | awk '/^Time:/ { print $2 }' | tail -n 1
TRUNCATE bare_hourly;
\\timing on
INSERT INTO bare_hourly
SELECT vehicle_id, count(*), avg(speed_kmh), max(speed_kmh), avg(fuel_pct), min(fuel_pct), min(ts), max(ts)
FROM vehicle_telemetry WHERE ts >= '$hour' AND ts < '$hour'::timestamptz + interval '1 hour'
GROUP BY vehicle_id;
SQL
    )
    bares+=("$took")
    info "round $r: rollup rebuild $(fmt "${rebuilds[-1]}" ',.0f') ms, bare INSERT … GROUP BY $(fmt "$took" ',.0f') ms"
  done
  local rm bm
  rm=$(median "${rebuilds[@]}")
  bm=$(median "${bares[@]}")
  SUMMARY+=("rollup of one hour, $((per * VEHICLES)) points: close $(fmt "$closed" ',.0f') ms, rebuild median $(fmt "$rm" ',.0f') ms; bare INSERT … GROUP BY median $(fmt "$bm" ',.0f') ms; ratio $(fmt "$(calc "$rm / $bm")" .2f)x")
  [[ -n ${KEEP_DATABASE:-} ]] || pg "$ADMIN_URL" -c "drop database if exists \"$BENCH_DB\" with (force)" >/dev/null
}

ingest_phase() {
  local runs=() track rate line fold
  for ((p = 1; p <= PAIRS; p++)); do
    for track in true false; do
      step "ingest with 1 % late points, MERIDIAN_ROLLUP_TRACK_LATE=$track (pair $p of $PAIRS)"
      local log="$STATE_DIR/bench-rollup-ingest-$track-$p.log"
      MERIDIAN_ROLLUP_TRACK_LATE=$track SIM_LATE_RATE=$LATE_RATE POINTS_PER_MESSAGE=10 \
        MESSAGES_10=$INGEST_MESSAGES VEHICLES=$INGEST_VEHICLES bash scripts/bench-ingest.sh >"$log" 2>&1 ||
        warn "bench-ingest.sh reported a failure (log: $log)"
      line=$(grep -m1 'meridian: ' "$log" || true)
      rate=$(sed -E 's/.*meridian: ([0-9,]+) points\/s.*/\1/' <<<"$line" | tr -d ,)
      fold=$(grep -m1 'marks folded' "$log" | sed -E 's/.*marks folded: //' || true)
      info "track=$track: ${rate:-?} points/s; raw COPY $(grep -m1 'raw COPY: ' "$log" | sed -E 's/.*raw COPY: ([0-9,]+) points.*/\1/')${fold:+; marks folded: $fold}"
      runs+=("$track $rate")
    done
  done
  local on off
  on=$(printf '%s\n' "${runs[@]}" | awk '$1 == "true" { s += $2; n++ } END { print s / n }')
  off=$(printf '%s\n' "${runs[@]}" | awk '$1 == "false" { s += $2; n++ } END { print s / n }')
  SUMMARY+=("ingest, 10 points/message, $LATE_RATE late: tracking on $(fmt "$on" ',.0f') points/s, off $(fmt "$off" ',.0f') (means of $PAIRS); cost $(fmt "$(calc "(1 - $on / $off) * 100")" .1f) % (target <= 5 %)")
}

SERVE_PID=''
stop_serve() { stop_pid "$SERVE_PID" 30 TERM; SERVE_PID=''; }
trap stop_serve EXIT

# Max RSS (kB) of pid $1, sampled every 0.1 s until the file $2 exists; prints it.
sample_rss() {
  local pid=$1 stop=$2 max=0 rss
  while [[ ! -e $stop ]]; do
    rss=$(ps -o rss= -p "$pid" 2>/dev/null | tr -d ' ')
    ((${rss:-0} > max)) && max=$rss
    sleep 0.1
  done
  echo "$max"
}

# One export over HTTP to /dev/null with the server's RSS sampled meanwhile:
# prints "seconds bytes max_rss_kb".
export_once() { # url [curl args...]
  local url=$1 stop out sampler
  shift
  stop=$(mktemp -u)
  out=$(mktemp)
  sample_rss "$SERVE_PID" "$stop" >"$out" &
  sampler=$!
  local curl_out
  curl_out=$(curl -sf -o /dev/null -w '%{time_total} %{size_download}' -H "Authorization: Bearer $EXPORT_KEY" "$@" "$url")
  touch "$stop"
  wait "$sampler"
  echo "$curl_out $(cat "$out")"
  rm -f "$stop" "$out"
}

export_phase() {
  local hours=$((EXPORT_ROWS / EXPORT_VEHICLES)) rows=$(((EXPORT_ROWS / EXPORT_VEHICLES) * EXPORT_VEHICLES))
  step "setup: $(fmt "$rows" ',.0f') hourly rows ($EXPORT_VEHICLES vehicles × $hours hours) with one INSERT … SELECT"
  pg "$ADMIN_URL" -c "drop database if exists \"$BENCH_DB\" with (force)" -c "create database \"$BENCH_DB\""
  DATABASE_URL=$BENCH_URL "$MERIDIAN" migrate
  local end from to
  end=$(pg "$BENCH_URL" -tAc "select to_char(date_trunc('hour', now() at time zone 'UTC') - interval '2 hours', 'YYYY-MM-DD\"T\"HH24:00:00\"Z\"')")
  from=$(pg "$BENCH_URL" -tAc "select to_char('$end'::timestamptz at time zone 'UTC' - interval '$hours hours', 'YYYY-MM-DD\"T\"HH24:00:00\"Z\"')")
  to=$end
  # Values like the rollup job's: fractional averages and instants, a few nulls.
  local t0
  t0=$(date +%s.%N)
  pg "$BENCH_URL" <<SQL
INSERT INTO telemetry_hourly (vehicle_id, bucket, points, speed_points, avg_speed_kmh, max_speed_kmh,
  fuel_points, avg_fuel_pct, min_fuel_pct, entry_m, distance_m, first_ts, last_ts, first_lon, first_lat,
  last_lon, last_lat, bounds)
SELECT md5(v::text)::uuid, b, 360, 350, CASE WHEN h % 97 <> 0 THEN 20 + 60 * random() END, 90 + random(),
       300, 80 - 40 * random(), 20 + random(), 12.5 * random(), 1000 + 20000 * random(),
       b + make_interval(secs => 60 * random()), b + make_interval(secs => 3540 + 59 * random()),
       10.75 + v * 1e-4, 59.91 + random() * 0.01, 10.76 + v * 1e-4, 59.92 + random() * 0.01,
       ST_MakeEnvelope(10.75 + v * 1e-4, 59.91, 10.76 + v * 1e-4, 59.93, 4326)
FROM generate_series(1, $hours) h,
     LATERAL (SELECT '$end'::timestamptz - make_interval(hours => h) AS b) t,
     generate_series(1, $EXPORT_VEHICLES) v
ORDER BY b, v;
VACUUM ANALYZE telemetry_hourly;
SQL
  info "generated in $(fmt "$(calc "$(date +%s.%N) - $t0")" .1f) s; telemetry_hourly $(pg "$BENCH_URL" -tAc "select pg_size_pretty(pg_total_relation_size('telemetry_hourly'))")"

  mkdir -p "$STATE_DIR"
  port_open "${EXPORT_ADDR%:*}" "${EXPORT_ADDR##*:}" && die "$EXPORT_ADDR is already in use; set BENCH_HTTP_ADDR"
  DATABASE_URL=$BENCH_URL MERIDIAN_HTTP_ADDR=$EXPORT_ADDR MERIDIAN_INGEST=false MERIDIAN_ROLLUP=false \
    setsid "$MERIDIAN" serve >"$STATE_DIR/bench-rollup-export-serve.log" 2>&1 </dev/null &
  SERVE_PID=$!
  wait_for_http "http://$EXPORT_ADDR/readyz" 60 "$SERVE_PID" || die "meridian serve did not become ready"
  EXPORT_KEY=$(DATABASE_URL=$BENCH_URL "$MERIDIAN" apikey create --role analyst --name bench 2>/dev/null | head -n 1)
  local url="http://$EXPORT_ADDR/v1/history?from=$from&to=$to&resolution=1h"
  local idle
  idle=$(ps -o rss= -p "$SERVE_PID" | tr -d ' ')

  # The statement the server runs (src/store/export.rs), with the range written in.
  local select="SELECT vehicle_id, bucket, points, avg_speed_kmh, max_speed_kmh, avg_fuel_pct, min_fuel_pct, distance_m, first_ts, last_ts, first_lon, first_lat, last_lon, last_lat FROM telemetry_hourly WHERE bucket >= '$from' AND bucket < '$to' ORDER BY bucket, vehicle_id"
  pg "$BENCH_URL" -c "EXPLAIN $select" | sed -n '1,4p' | sed 's/^/    /'
  local https=() copies=() line secs bytes rss peak=0 took
  for ((r = 1; r <= REPEAT; r++)); do
    read -r secs bytes rss <<<"$(export_once "$url&format=csv")"
    https+=("$(calc "$rows / $secs")")
    ((rss > peak)) && peak=$rss
    t0=$(date +%s.%N)
    pg "$BENCH_URL" -c "\\copy ($select) to '/dev/null' csv header" >/dev/null
    took=$(calc "$(date +%s.%N) - $t0")
    copies+=("$(calc "$rows / $took")")
    info "round $r: HTTP CSV $(fmt "${https[-1]}" ',.0f') rows/s ($(fmt "$(calc "$bytes / 1048576")" ',.0f') MB in $(fmt "$secs" .2f) s, server RSS max $((rss / 1024)) MB); psql \\copy csv $(fmt "${copies[-1]}" ',.0f') rows/s"
  done
  read -r secs bytes rss <<<"$(export_once "$url&format=ndjson")"
  ((rss > peak)) && peak=$rss
  local ndjson
  ndjson=$(calc "$rows / $secs")
  info "HTTP NDJSON: $(fmt "$ndjson" ',.0f') rows/s ($(fmt "$(calc "$bytes / 1048576")" ',.0f') MB, server RSS max $((rss / 1024)) MB)"
  read -r secs bytes rss <<<"$(export_once "$url&format=csv" -H 'Accept-Encoding: gzip')"
  ((rss > peak)) && peak=$rss
  local gzip
  gzip=$(calc "$rows / $secs")
  info "HTTP CSV gzip: $(fmt "$gzip" ',.0f') rows/s ($(fmt "$(calc "$bytes / 1048576")" ',.0f') MB compressed, server RSS max $((rss / 1024)) MB)"
  stop_serve
  local hm cm
  hm=$(median "${https[@]}")
  cm=$(median "${copies[@]}")
  SUMMARY+=("export of $(fmt "$rows" ',.0f') hourly rows over HTTP: CSV median $(fmt "$hm" ',.0f') rows/s (target >= 500,000), NDJSON $(fmt "$ndjson" ',.0f'), gzip $(fmt "$gzip" ',.0f'); psql \\copy csv of the same SELECT median $(fmt "$cm" ',.0f') rows/s; ratio $(fmt "$(calc "$hm / $cm")" .2f)x; server RSS $((idle / 1024)) MB idle, $((peak / 1024)) MB max while exporting")
  [[ -n ${KEEP_DATABASE:-} ]] || pg "$ADMIN_URL" -c "drop database if exists \"$BENCH_DB\" with (force)" >/dev/null
}

for phase in $PHASES; do
  "${phase}_phase"
done
step "results (PostgreSQL $(pg "$ADMIN_URL" -tAc 'show server_version'), $(nproc) cores)"
for line in "${SUMMARY[@]}"; do info "$line"; done
