#!/usr/bin/env python3
"""Dispatch benchmark probes (stdlib only).

paced URL KEY JOBS_FILE RATE SECONDS
    Automatic dispatches at a steady RATE per second for SECONDS (one job id per request, from
    JOBS_FILE), from a few keep-alive connections; prints `paced: sent N, 201 a, 202 b, other c,
    p50 X ms, p99 Y ms, achieved R/s`.
crossnode URL_A URL_B KEY DB_URL LAT LON SPREAD N
    N times: ask node B for the nearest van at a random pickup, create a job there (SQL), dispatch
    it to that driver on node A, then poll node B until it stops offering the driver. Prints the
    time from A's 201 to B's first answer without the driver: `crossnode: p50 X ms, max Y ms`.
"""
import http.client
import json
import random
import subprocess
import sys
import threading
import time
import urllib.parse


def conn(url):
    u = urllib.parse.urlparse(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=30)


def call(c, method, path, key, body=None):
    headers = {"Authorization": f"Bearer {key}"}
    if body is not None:
        body = json.dumps(body)
        headers["Content-Type"] = "application/json"
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    return r.status, r.read()


def pct(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def paced(url, key, jobs_file, rate, seconds):
    ids = [l.strip() for l in open(jobs_file) if l.strip()]
    total = min(len(ids), int(rate * seconds))
    # Enough connections that a slow answer never holds back the next due request.
    workers = max(8, int(rate / 5))
    lock = threading.Lock()
    lat, statuses = [], {}
    start = time.monotonic()

    def worker(w):
        c = conn(url)
        for i in range(w, total, workers):
            due = start + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            t0 = time.monotonic()
            status, _ = call(c, "POST", f"/v1/jobs/{ids[i]}/dispatch", key)
            dt = (time.monotonic() - t0) * 1000
            with lock:
                lat.append(dt)
                statuses[status] = statuses.get(status, 0) + 1

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    other = sum(v for k, v in statuses.items() if k not in (201, 202))
    print(f"paced: sent {total}, 201 {statuses.get(201, 0)}, 202 {statuses.get(202, 0)}, "
          f"other {other}, p50 {pct(lat, 0.5):.2f} ms, p99 {pct(lat, 0.99):.2f} ms, "
          f"achieved {total / elapsed:.0f}/s")


def crossnode(url_a, url_b, key, db_url, lat0, lon0, spread, n):
    a, b = conn(url_a), conn(url_b)
    rng = random.Random(11)
    waits = []
    for k in range(n):
        lat = lat0 + (rng.random() - 0.5) * 2 * spread
        lon = lon0 + (rng.random() - 0.5) * 4 * spread
        query = f"/v1/drivers/nearest?lat={lat:.6f}&lon={lon:.6f}&limit=1&vehicle_type=van"
        status, body = call(b, "GET", query, key)
        items = json.loads(body)["items"]
        if status != 200 or not items:
            continue
        driver = items[0]["driver_id"]
        job = subprocess.run(
            ["psql", db_url, "-tAqc",
             f"INSERT INTO jobs (reference, pickup, vehicle_type) VALUES "
             f"('crossnode-{time.time_ns()}-{k}', ST_SetSRID(ST_MakePoint({lon}, {lat}), 4326), 'van') "
             f"RETURNING id"],
            check=True, capture_output=True, text=True).stdout.split()[0]
        status, body = call(a, "POST", f"/v1/jobs/{job}/dispatch", key, {"driver_id": driver})
        if status != 201:
            print(f"crossnode: dispatch answered {status}: {body[:200]!r}", file=sys.stderr)
            continue
        t0 = time.monotonic()
        while True:
            status, body = call(b, "GET", query.replace("limit=1", "limit=5"), key)
            offered = [i["driver_id"] for i in json.loads(body)["items"]]
            if driver not in offered:
                break
            if time.monotonic() - t0 > 10:
                print("crossnode: node B still offers the driver after 10 s", file=sys.stderr)
                break
        waits.append((time.monotonic() - t0) * 1000)
    print(f"crossnode: {len(waits)} dispatches, p50 {pct(waits, 0.5):.2f} ms, "
          f"max {max(waits) if waits else float('nan'):.2f} ms")


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "paced":
        paced(args[0], args[1], args[2], float(args[3]), float(args[4]))
    elif mode == "crossnode":
        crossnode(args[0], args[1], args[2], args[3], float(args[4]), float(args[5]),
                  float(args[6]), int(args[7]))
    else:
        sys.exit(__doc__)
