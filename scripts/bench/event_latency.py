"""Event latency from receive logs: `webhook LOG SINCE` reads webhook_receiver.py's lines,
`mqtt LOG SINCE` reads `mosquitto_sub -F '%U %p'` lines. Only events whose ts >= SINCE (epoch s)
count. Latency = receive time - event ts (the point's own time, stamped when it was published).
Prints one line: count, duplicates, event rate, p50/p99/max latency in ms.

usage: event_latency.py webhook|mqtt LOG SINCE [UNTIL]
"""
import json, sys
from datetime import datetime

kind, path, since = sys.argv[1], sys.argv[2], float(sys.argv[3])
until = float(sys.argv[4]) if len(sys.argv) > 4 else float("inf")


def epoch(ts):
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


seen, dups, lat, ts_all, bad_sig = set(), 0, [], [], 0
for line in open(path, errors="replace"):
    try:
        if kind == "webhook":
            got, eid, ts, _typ, sig = line.split()
            bad_sig += sig != "1"
        else:
            got, payload = line.split(" ", 1)
            ev = json.loads(payload)
            eid, ts = str(ev["id"]), ev["ts"]
        got, t = float(got), epoch(ts)
    except Exception:
        continue
    if not (since <= t < until):
        continue
    if eid in seen:
        dups += 1
        continue
    seen.add(eid)
    lat.append((got - t) * 1000)
    ts_all.append(t)
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] if lat else float("nan")
span = (max(ts_all) - min(ts_all)) if len(ts_all) > 1 else float("nan")
print(f"n={len(lat)} dups={dups} bad_sig={bad_sig} rate={len(lat) / span if span == span and span > 0 else float('nan'):.1f} "
      f"p50={q(0.5):.1f} p99={q(0.99):.1f} max={lat[-1] if lat else float('nan'):.1f}")
