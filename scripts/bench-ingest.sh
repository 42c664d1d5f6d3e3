#!/usr/bin/env bash
# End-to-end ingest benchmark: simulator -> Mosquitto -> meridian serve -> PostgreSQL,
# compared with a raw `psql \copy ... (format binary)` of the very same rows into the same table.
#
#   bash scripts/bench-ingest.sh
#
# For each POINTS_PER_MESSAGE (default "1 10"): fresh database, migrate, register the fleet,
# start `meridian serve` (release), publish M messages as fast as possible, poll
# meridian_ingest_points_stored_total every 0.25 s until all M*K points are stored, read the
# ingest-lag histogram and Meridian's own CPU time, check the row count, then time the raw
# binary COPY of those rows.
#
# Knobs (environment):
#   POINTS_PER_MESSAGE="1 10"  MESSAGES=300000 (1 point/msg)  MESSAGES_10=100000 (10 points/msg)
#   MESSAGES_<K> for other K (default MESSAGES/K)   VEHICLES=10000
#   BENCH_HTTP_ADDR=127.0.0.1:8081   BENCH_TIMEOUT=900 (s per run)   BENCH_DATABASE=meridian_bench
#   SIM_CONNECTIONS (simulator --connections; its default when unset)
#   SIM_LATE_RATE (simulator --late-rate: that fraction of points 1 h to 7 days late; default 0).
#     With late points, the run also waits until the rollup job has folded them all in and
#     prints how long the marks waited (histogram meridian_rollup_late_fold_delay_seconds).
#   MERIDIAN_BIN_DIR (use meridian + meridian-sim from there instead of building target/release)
#   DATABASE_URL (admin URL, default postgres://postgres:postgres@127.0.0.1:5432/postgres)
# Targets: meridian >= 40 % of raw COPY at 1 point/message, >= 70 % at 10 points/message.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$MERIDIAN_ROOT"

POINTS_PER_MESSAGE=${POINTS_PER_MESSAGE:-"1 10"}
MESSAGES=${MESSAGES:-300000}
MESSAGES_10=${MESSAGES_10:-100000}
VEHICLES=${VEHICLES:-10000}
ADDR=${BENCH_HTTP_ADDR:-127.0.0.1:8081}
TIMEOUT=${BENCH_TIMEOUT:-900}
ADMIN_URL=${DATABASE_URL:-$DEFAULT_ADMIN_DATABASE_URL}
BENCH_DB=${BENCH_DATABASE:-meridian_bench}
BENCH_URL=$(url_with_db "$ADMIN_URL" "$BENCH_DB")
export MQTT_URL=${MQTT_URL:-$DEFAULT_MQTT_URL}
export RUST_LOG=${RUST_LOG:-warn}
COLUMNS_LIST="ts, vehicle_id, location, speed_kmh, heading_deg, fuel_pct, accuracy_m, engine, received_at"

DATABASE_URL=$ADMIN_URL bash scripts/deps.sh
command -v python3 >/dev/null 2>&1 || apt_install python3
ensure_cargo_on_path || die "cargo not found"

release_binaries

mkdir -p "$STATE_DIR"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/meridian-bench.XXXXXX")
SERVE_PID='' SIM_PID=''
RESULTS=()

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_pid "$SIM_PID" 5 INT TERM
  stop_pid "$SERVE_PID" 30 TERM
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# now: seconds since the epoch with nanoseconds.
now() { date +%s.%N; }

# Polls Prometheus text at $1 until the summed counter $2 reaches $3 (or $4 seconds pass),
# then reads the histogram $5. Prints one line of key=value pairs for `eval`.
poll_metrics() {
  python3 - "$@" <<'PY'
import re, sys, time, urllib.request

url, counter, target, timeout, hist = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
line_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)')

def scrape():
    with urllib.request.urlopen(url, timeout=2) as r:
        text = r.read().decode()
    series = []
    for line in text.splitlines():
        if line.startswith('#'):
            continue
        m = line_re.match(line)
        if m:
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ''))
            series.append((m.group(1), labels, float(m.group(3))))
    return series

def total(series, name):
    return sum(v for n, _, v in series if n == name)

def quantile(series, q):
    """histogram_quantile-style linear interpolation inside the bucket holding rank q*count."""
    buckets = {}
    for n, labels, v in series:
        if n == hist + '_bucket' and 'le' in labels:
            le = float('inf') if labels['le'] in ('+Inf', 'Inf') else float(labels['le'])
            buckets[le] = buckets.get(le, 0.0) + v
    if not buckets:  # exporter rendered a summary instead of a histogram
        vals = [v for n, l, v in series if n == hist and abs(float(l.get('quantile', -1)) - q) < 1e-9]
        return vals[0] if vals else float('nan')
    les = sorted(buckets)
    count = buckets[les[-1]]
    if count == 0:
        return float('nan')
    rank = q * count
    prev_le, prev_c = 0.0, 0.0
    for le in les:
        c = buckets[le]
        if c >= rank:
            if le == float('inf'):
                return prev_le  # like Prometheus: the highest finite bound
            if c == prev_c:
                return le
            return prev_le + (le - prev_le) * (rank - prev_c) / (c - prev_c)
        prev_le, prev_c = le, c
    return les[-1]

start = time.time()
first_t = first_c = None
last = 0.0
done_t = None
while time.time() - start < timeout:
    t = time.time()
    try:
        value = total(scrape(), counter)
    except Exception:
        value = last
    if first_t is None and value > 0:
        first_t, first_c = t, value
    last = value
    if value >= target:
        done_t = t
        break
    time.sleep(max(0.0, 0.25 - (time.time() - t)))

try:
    series = scrape()
except Exception:
    series = []
ok = done_t is not None
rate = (last - first_c) / (done_t - first_t) if ok and done_t > first_t else float('nan')
print(f"m_ok={int(ok)} m_stored={int(last)} m_rate={rate:.1f} m_secs={(done_t or time.time()) - (first_t or start):.2f} "
      f"m_lag_p50={quantile(series, 0.5):.4f} m_lag_p99={quantile(series, 0.99):.4f} "
      f"m_lag_count={int(total(series, hist + '_count'))}")
PY
}

# stdin: a /metrics scrape; argv[1]: a histogram → "p50 X s, p99 Y s (N)".
HISTOGRAM_QUANTILES='
import re, sys
name, buckets = sys.argv[1], {}
for line in sys.stdin:
    m = re.match(name + r"_bucket\{.*le=\"([^\"]+)\".*\} (\S+)", line)
    if m:
        le = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
        buckets[le] = buckets.get(le, 0) + float(m.group(2))
def q(p):
    total = buckets.get(float("inf"), 0)
    prev_le = prev_c = 0.0
    for le in sorted(buckets):
        c = buckets[le]
        if total and c >= p * total:
            return prev_le if le == float("inf") else prev_le + (le - prev_le) * (p * total - prev_c) / max(c - prev_c, 1e-9)
        prev_le, prev_c = le, c
    return float("nan")
n = int(buckets.get(float("inf"), 0))
print(f"p50 {q(0.5):.3f} s, p99 {q(0.99):.3f} s ({n} marks)")
'

fmt() { python3 -c "import sys; print(format(float(sys.argv[1]), sys.argv[2]))" "$1" "$2"; }
calc() { python3 -c "import sys; print(eval(sys.argv[1], {'nan': float('nan'), 'inf': float('inf')}))" "$1"; }

run_one() {
  local k=$1 m var
  var="MESSAGES_$k"
  if ((k == 1)); then m=$MESSAGES; elif [[ -n ${!var:-} ]]; then m=${!var}; else m=$((MESSAGES / k)); fi
  local points=$((m * k)) target='-'
  ((k == 1)) && target=40
  ((k == 10)) && target=70

  step "run: $k point(s)/message, $m messages, $points points, $VEHICLES vehicles"
  pg "$ADMIN_URL" -c "drop database if exists \"$BENCH_DB\" with (force)" -c "create database \"$BENCH_DB\""
  DATABASE_URL=$BENCH_URL "$MERIDIAN" migrate
  DATABASE_URL=$BENCH_URL "$SIM" register --vehicles "$VEHICLES"
  pg "$BENCH_URL" -c checkpoint

  local serve_log="$STATE_DIR/bench-serve-$k.log" sim_log="$STATE_DIR/bench-sim-$k.log"
  port_open "${ADDR%:*}" "${ADDR##*:}" && die "$ADDR is already in use; set BENCH_HTTP_ADDR"
  # A client id of its own: Meridian's session is persistent, and a shared id would inherit
  # messages queued for another instance (the demo's) or leave this run's behind.
  local client_id="meridian-bench-$k-$$"
  DATABASE_URL=$BENCH_URL MERIDIAN_HTTP_ADDR=$ADDR MQTT_CLIENT_ID=$client_id \
    setsid "$MERIDIAN" serve >"$serve_log" 2>&1 </dev/null &
  SERVE_PID=$!
  if ! wait_for_http "http://$ADDR/readyz" 60 "$SERVE_PID"; then
    tail -n 30 "$serve_log" >&2 || true
    die "meridian serve did not become ready (log: $serve_log)"
  fi

  local sim_extra=()
  [[ -n ${SIM_CONNECTIONS:-} ]] && sim_extra+=(--connections "$SIM_CONNECTIONS")
  [[ -n ${SIM_LATE_RATE:-} ]] && sim_extra+=(--late-rate "$SIM_LATE_RATE")
  DATABASE_URL=$BENCH_URL setsid "$SIM" run --vehicles "$VEHICLES" --rate 0 --messages "$m" \
    --points-per-message "$k" --no-progress --report-json "$WORK/sim-$k.json" "${sim_extra[@]}" \
    >"$sim_log" 2>&1 </dev/null &
  SIM_PID=$!

  local m_ok m_stored m_rate m_secs m_lag_p50 m_lag_p99 m_lag_count
  local polled
  polled=$(poll_metrics "http://$ADDR/metrics" meridian_ingest_points_stored_total "$points" "$TIMEOUT" \
    meridian_ingest_lag_seconds) || die "polling http://$ADDR/metrics failed"
  eval "$polled"
  # The simulator should be done by now (Meridian stored everything it published).
  local sim_rc=0 i
  for ((i = 0; i < 300; i++)); do kill -0 "$SIM_PID" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$SIM_PID" 2>/dev/null; then
    warn "simulator still running 30 s after the poll ended; stopping it"
    stop_pid "$SIM_PID" 5 INT TERM
    sim_rc=124
  else
    wait "$SIM_PID" || sim_rc=$?
  fi
  SIM_PID=''
  ((sim_rc == 0)) || { warn "simulator exited with $sim_rc (log: $sim_log)"; tail -n 10 "$sim_log" >&2 || true; }
  [[ -s "$WORK/sim-$k.json" ]] && { info "simulator report:"; info "$(head -c 600 "$WORK/sim-$k.json")"; }
  ((m_ok)) || warn "timed out after ${TIMEOUT}s: $m_stored of $points points stored"

  if [[ -n ${SIM_LATE_RATE:-} ]]; then
    for ((i = 0; i < 600; i++)); do
      [[ $(pg "$BENCH_URL" -tAc 'select count(*) from rollup_dirty') == 0 ]] && break
      sleep 0.1
    done
    local folded
    folded=$(curl -fsS "http://$ADDR/metrics" | python3 -c "$HISTOGRAM_QUANTILES" meridian_rollup_late_fold_delay_seconds)
    info "late points: $(pg "$BENCH_URL" -tAc 'select count(*) from rollup_dirty') marks still waiting;" \
      "marks folded: $folded"
  fi

  # Meridian's own CPU time (user + system) for the whole run: per point, it says what the
  # node costs, whatever the broker and PostgreSQL beside it on the same cores are doing.
  local cpu_s
  cpu_s=$(awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$SERVE_PID/stat" 2>/dev/null) || cpu_s=nan

  step "stopping meridian (SIGTERM)"
  stop_pid "$SERVE_PID" 30 TERM
  SERVE_PID=''
  # Connecting once with a clean session discards the broker-side session of this run.
  mosquitto_sub -h "$MQTT_HOST" -p "$MQTT_PORT" -i "$client_id" -t meridian/bench/cleanup -E >/dev/null 2>&1 ||
    warn "could not discard broker session $client_id"

  local rows
  rows=$(pg "$BENCH_URL" -tAc 'select count(*) from vehicle_telemetry')
  if ((rows == points)); then ok "vehicle_telemetry holds $rows rows"; else warn "vehicle_telemetry holds $rows rows, expected $points"; fi

  # Reference: the same rows, raw binary COPY into the same partitions and indexes.
  local raw_rate
  raw_copy_rate "$rows"
  raw_rate=$RAW_RATE

  local pct='nan' verdict='-'
  if [[ $m_rate != nan && $raw_rate != nan ]]; then
    pct=$(calc "$m_rate / $raw_rate * 100")
    [[ $target != - ]] && verdict=$(calc "'PASS' if $pct >= $target and $rows == $points else 'FAIL'")
  fi
  [[ $rows == "$points" ]] || verdict=FAIL
  info "meridian: $(fmt "$m_rate" ',.0f') points/s, $(fmt "$(calc "$m_rate / $k")" ',.0f') messages/s over ${m_secs}s," \
    "lag p50 $(fmt "$m_lag_p50" .3f)s p99 $(fmt "$m_lag_p99" .3f)s ($m_lag_count samples)," \
    "CPU ${cpu_s}s = $(fmt "$(calc "$cpu_s / $points * 1e6")" .2f) µs/point"
  info "raw COPY: $(fmt "$raw_rate" ',.0f') points/s -> meridian is $(fmt "$pct" .1f)% (target >= ${target}%): $verdict"
  RESULTS+=("$k|$m|$points|$rows|$m_rate|$(calc "$m_rate / $k")|$m_lag_p50|$m_lag_p99|$(calc "$cpu_s / $points * 1e6")|$raw_rate|$pct|$target|$verdict")
}

# raw_copy_rate rows — copies vehicle_telemetry out (binary), truncates it, times the copy back in.
# Sets RAW_RATE (rows/s, or nan).
raw_copy_rate() {
  local rows=$1 file="$WORK/rows.bin" t0 t1
  RAW_RATE=nan
  ((rows > 0)) || return 0
  step "reference: raw binary \\copy of the same $rows rows into the same partitions and indexes"
  pg "$BENCH_URL" -c "\\copy (select $COLUMNS_LIST from vehicle_telemetry) to '$file' with (format binary)"
  pg "$BENCH_URL" -c 'truncate vehicle_telemetry' -c checkpoint
  t0=$(now)
  pg "$BENCH_URL" -c "\\copy vehicle_telemetry ($COLUMNS_LIST) from '$file' with (format binary)"
  t1=$(now)
  rm -f "$file"
  RAW_RATE=$(calc "$rows / ($t1 - $t0)")
  info "$rows rows in $(fmt "$(calc "$t1 - $t0")" .2f)s"
}

for k in $POINTS_PER_MESSAGE; do
  run_one "$k"
done

step "results (PostgreSQL $(pg "$ADMIN_URL" -tAc 'show server_version'), $(nproc) cores)"
python3 - "${RESULTS[@]}" <<'PY'
import sys
head = ("pts/msg", "messages", "points", "rows", "meridian pts/s", "msgs/s", "lag p50 s", "lag p99 s",
        "CPU µs/pt", "raw COPY pts/s", "meridian/raw", "target", "result")
rows = [head]
for r in sys.argv[1:]:
    k, m, p, n, rate, mps, p50, p99, cpu, raw, pct, target, verdict = r.split("|")
    f = lambda x, spec: format(float(x), spec)
    rows.append((k, f(m, ",.0f"), f(p, ",.0f"), f(n, ",.0f"), f(rate, ",.0f"), f(mps, ",.0f"), f(p50, ".3f"),
                 f(p99, ".3f"), f(cpu, ".2f"), f(raw, ",.0f"), f(pct, ".1f") + " %", ("≥ " + target + " %") if target != "-" else "-", verdict))
widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
for i, r in enumerate(rows):
    print("  " + "  ".join(c.rjust(w) for c, w in zip(r, widths)))
    if i == 0:
        print("  " + "  ".join("-" * w for w in widths))
PY
if printf '%s\n' "${RESULTS[@]}" | grep -q '|FAIL$'; then exit 1; fi
