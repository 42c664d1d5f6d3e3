"""Checks Meridian's geofence reads against PostGIS: `contains` for N_POINTS points (half uniform
over the disc, half inside random fences' boxes, so most answers are not empty) and
`/vehicles` for N_FENCES random fences (every page). PostGIS predicate: ST_Intersects(geom, point)
for polygons; vehicles with a position at most 3600 s old, as the wrk runs ask.
Prints summary lines; exits 1 on any mismatch.

usage: geofence_truth.py BASE_URL KEY DATABASE_URL LAT LON RADIUS_KM N_POINTS N_FENCES
"""
import json, math, random, subprocess, sys, urllib.request

base, key, dsn = sys.argv[1], sys.argv[2], sys.argv[3]
lat0, lon0, radius_km = float(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
n_points, n_fences = int(sys.argv[7]), int(sys.argv[8])
rng = random.Random(20261203)


def psql(sql):
    out = subprocess.run(["psql", "-X", "-w", "-q", "-At", "-F", "|", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-c", sql],
                         check=True, capture_output=True, text=True).stdout
    return [line.split("|") for line in out.splitlines() if line]


def get(path):
    req = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def paged(path):
    items, after = [], None
    while True:
        page = get(path + (f"&after={after}" if after else ""))
        items += page["items"]
        after = page.get("next_after")
        if not after:
            return items


boxes = psql(f"SELECT ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom) FROM geofences "
             f"ORDER BY md5(id::text) LIMIT {n_points - n_points // 2}")
points = []
for _ in range(n_points // 2):
    r, a = radius_km * 1000 * math.sqrt(rng.random()), rng.random() * math.tau
    points.append((lon0 + r * math.cos(a) / (111320 * math.cos(math.radians(lat0))), lat0 + r * math.sin(a) / 111320))
for x0, y0, x1, y1 in boxes:
    x0, y0, x1, y1 = map(float, (x0, y0, x1, y1))
    points.append((x0 + (x1 - x0) * rng.random(), y0 + (y1 - y0) * rng.random()))

values = ",".join(f"({i},{lon!r},{lat!r})" for i, (lon, lat) in enumerate(points))
truth = {int(i): set(filter(None, ids.split(","))) for i, ids in psql(
    f"SELECT q.i, coalesce(string_agg(g.id::text, ','), '') FROM (VALUES {values}) q(i, lon, lat) "
    f"LEFT JOIN geofences g ON ST_Intersects(g.geom, ST_SetSRID(ST_MakePoint(q.lon, q.lat), 4326)) GROUP BY q.i")}
bad = nonempty = hits = 0
for i, (lon, lat) in enumerate(points):
    got = {f["id"] for f in paged(f"/v1/geofences?contains={lon!r},{lat!r}&limit=1000")}
    nonempty += bool(truth[i])
    hits += len(truth[i])
    if got != truth[i]:
        bad += 1
        if bad <= 5:
            print(f"    contains {lon!r},{lat!r}: meridian {sorted(got)} postgis {sorted(truth[i])}", file=sys.stderr)
print(f"contains: {len(points)} points, {bad} mismatches against PostGIS "
      f"({nonempty} with at least one fence, {hits / len(points):.2f} fences per point)")
bad_contains = bad

fences = [r[0] for r in psql(f"SELECT id FROM geofences ORDER BY md5(id::text || 'v') LIMIT {n_fences}")]
ids = ",".join(f"'{f}'" for f in fences)
vtruth = {f: set() for f in fences}
for fid, vids in psql(f"SELECT g.id, string_agg(p.vehicle_id::text, ',') FROM geofences g JOIN vehicle_positions p "
                      f"ON ST_Intersects(g.geom, p.location) WHERE g.id IN ({ids}) "
                      f"AND p.ts >= now() - interval '3600 seconds' GROUP BY g.id"):
    vtruth[fid] = set(vids.split(","))
bad = total = 0
for f in fences:
    got = {v["vehicle_id"] for v in paged(f"/v1/geofences/{f}/vehicles?max_age_s=3600&limit=1000")}
    total += len(got)
    if got != vtruth[f]:
        bad += 1
        if bad <= 5:
            print(f"    vehicles of {f}: meridian {len(got)}, postgis {len(vtruth[f])}, "
                  f"only meridian {sorted(got - vtruth[f])[:3]}, only postgis {sorted(vtruth[f] - got)[:3]}", file=sys.stderr)
print(f"vehicles: {len(fences)} fences, {bad} mismatches against PostGIS ({total / len(fences):.1f} vehicles per answer)")
sys.exit(1 if bad or bad_contains else 0)
