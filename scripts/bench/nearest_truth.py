"""Compares Meridian's nearest-driver answers with PostGIS's exact answer for random pickups.

usage: nearest_truth.py BASE_URL KEY DATABASE_URL LAT LON SPREAD N
PostGIS truth: exact geodesic ST_Distance over every available driver with a fresh position,
ordered by distance then driver id (no index, no approximation). Prints one summary line and
exits 1 on any difference in drivers, order, or distance beyond 1 mm.
"""
import json, random, subprocess, sys, urllib.request

base, key, dsn = sys.argv[1], sys.argv[2], sys.argv[3]
lat0, lon0, spread, n = float(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6]), int(sys.argv[7])
rng = random.Random(42)
probes = [(lat0 + (rng.random() - 0.5) * 2 * spread, lon0 + (rng.random() - 0.5) * 4 * spread) for _ in range(n)]

answers = []
for lat, lon in probes:
    req = urllib.request.Request(f"{base}/v1/drivers/nearest?lat={lat:.6f}&lon={lon:.6f}&limit=10",
                                 headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        answers.append([(i["driver_id"], i["distance_m"]) for i in json.load(r)["items"]])

values = ",".join(f"({i},{lat:.6f},{lon:.6f})" for i, (lat, lon) in enumerate(probes))
sql = f"""
SELECT q.i, t.driver_id, t.d FROM (VALUES {values}) q(i, lat, lon)
CROSS JOIN LATERAL (
  SELECT a.driver_id, ST_Distance(p.location::geography,
         ST_SetSRID(ST_MakePoint(q.lon, q.lat), 4326)::geography) d
  FROM driver_availability a JOIN vehicle_positions p USING (vehicle_id)
  WHERE a.during @> now() AND p.ts >= now() - interval '300 seconds'
  ORDER BY d, a.driver_id LIMIT 10) t
ORDER BY q.i, t.d, t.driver_id"""
out = subprocess.run(["psql", dsn, "-XAtq", "-F", "|", "-c", sql], check=True, capture_output=True, text=True).stdout
truth = [[] for _ in probes]
for line in out.splitlines():
    i, driver, d = line.split("|")
    truth[int(i)].append((driver, float(d)))

bad = 0
max_diff = 0.0
for i, (got, want) in enumerate(zip(answers, truth)):
    same = len(got) == len(want) and all(g[0] == w[0] for g, w in zip(got, want))
    diffs = [abs(g[1] - w[1]) for g, w in zip(got, want)]
    max_diff = max([max_diff] + diffs)
    if not same or any(d > 0.001 for d in diffs):
        bad += 1
        if bad <= 3:
            print(f"  probe {probes[i]}: meridian {got[:3]}... postgis {want[:3]}...", file=sys.stderr)
print(f"truth_checked={n} truth_mismatches={bad} truth_max_diff_m={max_diff:.2e} "
      f"truth_items={sum(len(a) for a in answers)}")
sys.exit(1 if bad else 0)
