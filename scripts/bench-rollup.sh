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
#
#   bash scripts/bench-rollup.sh
#
# The hour's day partition also holds HOURS_BEFORE hours as full as it before it, as in
# production (a day partition holds 24 of them): the planner must not get away with reading
# the whole partition.
#
# Knobs (environment): VEHICLES=1000 POINTS=1000000 HOURS_BEFORE=5 REPEAT=3 PAIRS=2 INGEST_MESSAGES=100000
#   INGEST_VEHICLES=10000 LATE_RATE=0.01 PHASES="close ingest" BENCH_DATABASE=meridian_bench_rollup
#   MERIDIAN_BIN_DIR (use binaries built elsewhere)  KEEP_DATABASE=1 (leave the close phase's database)
# Target: tracking late points costs ingest <= 5 % (same run).
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
PHASES=${PHASES:-close ingest}
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

for phase in $PHASES; do
  "${phase}_phase"
done
step "results (PostgreSQL $(pg "$ADMIN_URL" -tAc 'show server_version'), $(nproc) cores)"
for line in "${SUMMARY[@]}"; do info "$line"; done
