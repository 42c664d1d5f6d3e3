"""Creates N geofences through the API (4 of 5 polygons, 1 of 5 geodesic circles), 200 m to 2 km
across, at random around LAT/LON (±SPREAD° of latitude, twice that of longitude); writes their
ids to OUT, one per line.

usage: make_fences.py HOST:PORT KEY N LAT LON SPREAD OUT
"""
import http.client, json, math, random, sys

addr, key, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
lat0, lon0, spread, out = float(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6]), sys.argv[7]
host, port = addr.rsplit(":", 1)
conn = http.client.HTTPConnection(host, int(port))
headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
rng = random.Random(11)
ids = []
for i in range(n):
    lat = lat0 + (rng.random() - 0.5) * 2 * spread
    lon = lon0 + (rng.random() - 0.5) * 4 * spread
    size_m = 200 + rng.random() * 1800
    if i % 5 == 4:
        body = {"name": f"circle {i}", "center": [lon, lat], "radius_m": size_m / 2}
    else:
        dlat = size_m / 2 / 111_320
        dlon = dlat / math.cos(math.radians(lat))
        ring = [[lon - dlon, lat - dlat], [lon + dlon, lat - dlat], [lon + dlon * 0.6, lat + dlat],
                [lon - dlon, lat + dlat * 0.8], [lon - dlon, lat - dlat]]
        body = {"type": "Feature", "properties": {"name": f"zone {i}"},
                "geometry": {"type": "Polygon", "coordinates": [ring]}}
    conn.request("POST", "/v1/geofences", json.dumps(body), headers)
    r = conn.getresponse()
    payload = r.read()
    if r.status != 201:
        sys.exit(f"fence {i}: HTTP {r.status} {payload[:200]!r}")
    ids.append(json.loads(payload)["id"])
with open(out, "w") as f:
    f.write("\n".join(ids) + "\n")
print(f"created {len(ids)} fences")
