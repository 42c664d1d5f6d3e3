# Sourced by scripts/bench-api.sh (its variables and helpers): geofence reads over FENCES fences,
# with the server and its 100k live positions as the nearest-driver phases left them.
step "geofences: $FENCES fences through the API, then contains / fence-vehicles ($DURATION s each)"
ADMIN_KEY=$(DATABASE_URL=$BENCH_URL "$MERIDIAN" apikey create --role admin --name bench-fences 2>/dev/null | head -n 1)
python3 scripts/bench/make_fences.py "$ADDR" "$ADMIN_KEY" "$FENCES" "$LAT0" "$LON0" "$SPREAD" "$WORK/fences.txt" |
  sed 's/^/    /'
pg "$BENCH_URL" -c 'ANALYZE geofences' >/dev/null
export BENCH_FENCES=$WORK/fences.txt
FENCE_RESULTS=()
for mode in contains vehicles; do
  out="$WORK/wrk-fence-$mode.txt"
  BENCH_MODE=$mode wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency \
    -s scripts/bench/geofences.lua "http://$ADDR" >"$out"
  rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
  p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out")")
  p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")
  errors=$(awk '/Non-2xx/ { print $NF }' "$out")
  info "$mode: $(fmt "$rps" ',.0f') req/s, p50 $p50 ms, p99 $p99 ms${errors:+ (non-2xx: $errors)}"
  FENCE_RESULTS+=("$mode|$rps|$p50|$p99")
done
sample=$(head -n 1 "$WORK/fences.txt")
info "sample: $(curl -fsS -H "Authorization: Bearer $ADMIN_KEY" \
  "http://$ADDR/v1/geofences/$sample/vehicles?max_age_s=3600&limit=1000" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]), "vehicles in the first fence")')"
