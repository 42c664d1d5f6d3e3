#!/usr/bin/env bash
# The demo: a 1,000-vehicle fleet streaming into Meridian on this machine.
#   bash scripts/demo.sh                 (DEMO_SECONDS=120 by default)
# Installs/starts PostgreSQL+PostGIS and the project broker if missing (scripts/deps.sh),
# builds the release binaries, creates and migrates database `meridian`, registers the
# fleet, starts `meridian serve` and the simulator, and prints where to look.
# Ctrl-C (or the end of the run) stops both; Meridian gets SIGTERM and drains.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$MERIDIAN_ROOT"

VEHICLES=${VEHICLES:-1000}
DEMO_SECONDS=${DEMO_SECONDS:-120}
ADMIN_URL=${DATABASE_URL:-$DEFAULT_ADMIN_DATABASE_URL}
DB_NAME=${DEMO_DATABASE:-meridian}
export DATABASE_URL
DATABASE_URL=$(url_with_db "$ADMIN_URL" "$DB_NAME")
export MQTT_URL=${MQTT_URL:-$DEFAULT_MQTT_URL}
export MERIDIAN_HTTP_ADDR=${MERIDIAN_HTTP_ADDR:-127.0.0.1:8080}
export RUST_LOG=${RUST_LOG:-info}
BASE="http://$MERIDIAN_HTTP_ADDR"

DATABASE_URL=$ADMIN_URL bash scripts/deps.sh
ensure_cargo_on_path || die "cargo not found"

step "building release binaries (first build takes a few minutes)"
cargo build --release --locked -p meridian -p meridian-sim
BIN=$(target_dir)/release
MERIDIAN=$BIN/meridian
SIM=$BIN/meridian-sim

step "database $DB_NAME"
if [[ -z "$(pg "$ADMIN_URL" -tAc "select 1 from pg_database where datname = '$DB_NAME'")" ]]; then
  pg "$ADMIN_URL" -c "create database \"$DB_NAME\""
  ok "created"
else
  ok "exists"
fi

step "meridian migrate"
"$MERIDIAN" migrate

step "meridian-sim register --vehicles $VEHICLES"
"$SIM" register --vehicles "$VEHICLES"
step "a driver on an open shift for every vehicle without one; every fifth driver available"
pg "$DATABASE_URL" -q <<'SQL'
WITH v AS (
  SELECT id, external_id, row_number() OVER (ORDER BY external_id) AS r FROM vehicles v
  WHERE NOT EXISTS (SELECT 1 FROM shifts s WHERE s.vehicle_id = v.id)),
d AS (
  INSERT INTO drivers (name, status)
  SELECT 'driver of ' || external_id, CASE WHEN r % 5 = 0 THEN 'available' ELSE 'on_job' END FROM v
  RETURNING id, name)
INSERT INTO shifts (driver_id, vehicle_id, during)
SELECT d.id, v.id, tstzrange(now() - interval '1 hour', NULL) FROM d JOIN v ON d.name = 'driver of ' || v.external_id;
SQL
ok "$(pg "$DATABASE_URL" -tAc 'select count(*) from driver_availability') drivers available"

if port_open "${MERIDIAN_HTTP_ADDR%:*}" "${MERIDIAN_HTTP_ADDR##*:}"; then
  die "$MERIDIAN_HTTP_ADDR is already in use (another meridian serve?); set MERIDIAN_HTTP_ADDR to another address"
fi

mkdir -p "$STATE_DIR"
SERVE_LOG=$STATE_DIR/demo-meridian.log
SIM_LOG=$STATE_DIR/demo-sim.log
SERVE_PID='' SIM_PID=''

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  echo
  if [[ -n $SIM_PID ]] && kill -0 "$SIM_PID" 2>/dev/null; then
    step "stopping the simulator"
    stop_pid "$SIM_PID" 5 INT TERM
  fi
  if [[ -n $SERVE_PID ]] && kill -0 "$SERVE_PID" 2>/dev/null; then
    step "stopping meridian (SIGTERM: stop taking input, drain batches, commit, ack)"
    stop_pid "$SERVE_PID" 30 TERM
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "meridian serve on $BASE (log: ${SERVE_LOG#"$MERIDIAN_ROOT"/})"
# setsid: the terminal's Ctrl-C reaches only this script; cleanup then sends exactly one SIGTERM.
setsid "$MERIDIAN" serve >"$SERVE_LOG" 2>&1 </dev/null &
SERVE_PID=$!
if ! wait_for_http "$BASE/readyz" 60 "$SERVE_PID"; then
  tail -n 30 "$SERVE_LOG" >&2 || true
  die "meridian did not become ready on $BASE/readyz"
fi
ok "ready"
KEY=$("$MERIDIAN" apikey create --role dispatcher --name "demo $(date +%F.%T)" 2>/dev/null | head -n 1)

step "meridian-sim run: $VEHICLES vehicles, 1 msg/s each, ${DEMO_SECONDS}s, 1% faults, 1% late (log: ${SIM_LOG#"$MERIDIAN_ROOT"/})"
setsid "$SIM" run --vehicles "$VEHICLES" --rate 1 --duration "$DEMO_SECONDS" \
  --fault-rate 0.01 --late-rate 0.01 >"$SIM_LOG" 2>&1 </dev/null &
SIM_PID=$!

cat <<EOF

Meridian is ingesting. In another terminal:

  # ingest counters, lag histogram, batch sizes
  curl -s $BASE/metrics | grep '^meridian_'

  # rows per daily partition
  psql '$DATABASE_URL' -c 'select tableoid::regclass as partition, count(*) from vehicle_telemetry group by 1 order by 1'

  # vehicles with a latest position
  psql '$DATABASE_URL' -c 'select count(*) from vehicle_positions'

  # dead letters by reason (the simulator injects ~1% faults)
  psql '$DATABASE_URL' -c 'select reason, count(*) from dead_letters group by 1 order by 2 desc'
  # the API (a dispatcher key made for this demo; make your own: meridian apikey create --role … --name …)
  H='Authorization: Bearer $KEY'
  curl -s -H "\$H" '$BASE/v1/drivers/nearest?lat=40.7128&lon=-74.0060&limit=3'
  curl -s -H "\$H" '$BASE/v1/positions?bbox=-74.02,40.70,-73.99,40.72&max_age_s=60&limit=5'
  curl -s -H "\$H" -H 'content-type: application/json' $BASE/v1/geofences \\
    -d '{"name":"midtown","center":[-73.9855,40.758],"radius_m":1500}'
  curl -s -H "\$H" '$BASE/v1/geofences?contains=-73.9855,40.758'
  # every endpoint and schema
  curl -s $BASE/openapi.json

Logs: ${SERVE_LOG#"$MERIDIAN_ROOT"/}, ${SIM_LOG#"$MERIDIAN_ROOT"/}. Ctrl-C stops the demo.

EOF

# Progress line every 10 s until the simulator finishes.
while kill -0 "$SIM_PID" 2>/dev/null; do
  kill -0 "$SERVE_PID" 2>/dev/null || { tail -n 30 "$SERVE_LOG" >&2; die "meridian exited"; }
  stored=$(curl -s --max-time 2 "$BASE/metrics" | awk '/^meridian_ingest_points_stored_total/ { s += $NF } END { printf "%d", s }') || stored='?'
  info "$(date +%T) points stored: $stored"
  for _ in $(seq 40); do kill -0 "$SIM_PID" 2>/dev/null || break; sleep 0.25; done
done
sim_rc=0
wait "$SIM_PID" || sim_rc=$?
SIM_PID=''
((sim_rc == 0)) || { tail -n 30 "$SIM_LOG" >&2; die "simulator exited with $sim_rc"; }

sleep 2 # let the last batches commit
step "simulator finished; summary"
pg "$DATABASE_URL" -c 'select tableoid::regclass as partition, count(*) from vehicle_telemetry group by 1 order by 1' \
  -c 'select count(*) as vehicles_with_position from vehicle_positions' \
  -c 'select reason, count(*) from dead_letters group by 1 order by 2 desc' || true
info "the three nearest available drivers to (40.7128, -74.0060):"
curl -s -H "Authorization: Bearer $KEY" "$BASE/v1/drivers/nearest?lat=40.7128&lon=-74.0060&limit=3" || true
echo
step "stopping (DEMO_SECONDS=$DEMO_SECONDS elapsed)"
