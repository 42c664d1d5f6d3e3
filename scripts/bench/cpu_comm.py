"""CPU seconds (user + system) of every process with a given command name, for a
same-run figure of what PostgreSQL or the broker spent next to Meridian's own CPU.

    python3 cpu_comm.py snap postgres > before.json
    python3 cpu_comm.py since postgres before.json   # seconds spent since the snapshot

Processes that started after the snapshot count from zero; those that ended in between are
lost (a benchmark's database sessions and the broker live through the run).
"""
import json
import os
import sys


def ticks(comm):
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        if name != comm:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        out[pid] = int(fields[11]) + int(fields[12])  # utime, stime
    return out


def main():
    mode, comm = sys.argv[1], sys.argv[2]
    now = ticks(comm)
    if mode == "snap":
        json.dump(now, sys.stdout)
        return
    with open(sys.argv[3]) as f:
        before = json.load(f)
    spent = sum(t - before.get(pid, 0) for pid, t in now.items())
    print(spent / os.sysconf("SC_CLK_TCK"))


main()
