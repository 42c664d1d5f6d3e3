"""Writes N star-shaped polygon fences as tab-separated `name<TAB>WKT<TAB>properties` lines for
`\\copy`: ~VERTICES vertices each (radii varying by 40 %, as in benches/fences.rs), 100–800 m
across, centres uniform over the disc of RADIUS_KM around LAT,LON (the simulator's area).

usage: geofence_fences.py N LAT LON RADIUS_KM SEED [PROPERTIES_JSON] [VERTICES]
"""
import math, random, sys

n, lat0, lon0, radius_km, seed = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
props = sys.argv[6] if len(sys.argv) > 6 else "{}"
vertices = int(sys.argv[7]) if len(sys.argv) > 7 else 50
M_PER_DEG = 111_320.0
rng = random.Random(seed)
out = sys.stdout
for i in range(n):
    # Uniform over the disc (sqrt keeps the density flat), like the simulator's waypoints.
    r = radius_km * 1000.0 * math.sqrt(rng.random())
    a = rng.random() * math.tau
    clat = lat0 + r * math.sin(a) / M_PER_DEG
    clon = lon0 + r * math.cos(a) / (M_PER_DEG * math.cos(math.radians(lat0)))
    radius_m = 50.0 + 350.0 * rng.random()
    stretch = 1.0 / math.cos(math.radians(clat))
    ring = []
    for k in range(vertices):
        # Angles strictly increasing and radii > 0: a simple (valid) star-shaped ring.
        angle = (k + 0.5 * rng.random()) / vertices * math.tau
        rr = radius_m * (1.0 - 0.4 * rng.random()) / M_PER_DEG
        ring.append((clon + rr * math.cos(angle) * stretch, clat + rr * math.sin(angle)))
    ring.append(ring[0])
    wkt = "POLYGON((" + ",".join(f"{x:.7f} {y:.7f}" for x, y in ring) + "))"
    out.write(f"bench fence {i}\t{wkt}\t{props}\n")
