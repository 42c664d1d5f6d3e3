"""Polls Prometheus text at URL every 0.25 s until the summed counter reaches TARGET (or TIMEOUT s
pass). Prints `p_ok=0|1 p_value=N p_rate=R p_secs=S` for `eval`: the rate runs from the first
scrape that saw the counter move to the one that saw it reach TARGET.

usage: poll_counter.py URL COUNTER TARGET TIMEOUT
"""
import re, sys, time, urllib.request

url, name, target, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
line_re = re.compile(r"^" + re.escape(name) + r"(\{[^}]*\})?\s+(\S+)", re.M)


def value():
    with urllib.request.urlopen(url, timeout=2) as r:
        return sum(float(v) for _, v in line_re.findall(r.read().decode()))


start = time.time()
first = None
last, done = 0.0, None
while time.time() - start < timeout:
    t = time.time()
    try:
        last = value()
    except Exception:
        pass
    if first is None and last > 0:
        first = (t, last)
    if last >= target:
        done = t
        break
    time.sleep(max(0.0, 0.25 - (time.time() - t)))
ok = done is not None and first is not None
rate = (last - first[1]) / (done - first[0]) if ok and done > first[0] else float("nan")
secs = (done or time.time()) - (first[0] if first else start)
print(f"p_ok={int(ok)} p_value={int(last)} p_rate={rate:.1f} p_secs={secs:.2f}")
