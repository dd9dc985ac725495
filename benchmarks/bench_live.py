"""Benchmark: what the live view (``--live``) costs a run, and how soon its updates reach a page.

    python benchmarks/bench_live.py                          # jscec loopback --data --images 500, 3 pairs
    python benchmarks/bench_live.py --images 200 --pairs 5

Runs ``jscec loopback --data --images N`` as a person would (the command, in its own process) without
and with ``--live``, alternately (so that the load of other jobs on the machine falls on both alike),
and prints the run times (wall clock, and the CPU time of all the command's processes: on a machine shared
with other jobs the wall clock swings by tens of per cent from run to run, the CPU time far less), their
medians and the overhead of the live view (target: ≤ 5 %). During each
live run a page's event stream (``/api/events``, read the way the browser does) is followed from the
moment the address is printed: for every update about frames or images, the time from the receive
chain's sending it (right after it handled the frame, or decoded the image) to its arrival is the
update's latency (target: ≤ 0.5 s). The page draws what arrived at most 0.1 s later.
"""
from __future__ import annotations

import argparse
import json
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def follow(url: str, latencies: list, counts: dict, stop: threading.Event) -> None:
    """Read the page's event stream; each frames/images update's latency (arrival − sent)."""
    snap = json.loads(urllib.request.urlopen(url + "api/snapshot", timeout=10).read())
    with urllib.request.urlopen(f"{url}api/events?since={snap['seq']}", timeout=60) as stream:
        for raw in stream:
            if stop.is_set():
                return
            line = raw.decode().strip()
            if not line.startswith("data: "):
                continue
            now = time.time()
            for u in json.loads(line[6:]):
                if u.get("type") in ("frames", "images"):
                    latencies.append(now - u["sent"])
                    counts[u["type"]] = counts.get(u["type"], 0) + len(u["rows"])
                if u.get("type") == "closed":
                    return


def one_run(args, live: bool, out: Path) -> dict:
    cmd = [str(ROOT / ".venv" / "bin" / "jscec"), "loopback", "--data", *([args.data] if args.data else []),
           "--images", str(args.images), "--out", str(out), "--seed", "1"]
    if live:
        cmd += ["--live", "--live-port", "0"]
    latencies, counts, stop = [], {}, threading.Event()
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    reader = None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        m = re.search(r"live view: (http://\S+)", line)
        if m and reader is None:
            reader = threading.Thread(target=follow, args=(m.group(1), latencies, counts, stop), daemon=True)
            reader.start()
    rc = proc.wait()
    seconds = time.perf_counter() - t0
    stop.set()
    if reader is not None:
        reader.join(5)
    time.sleep(1.5)       # the live view's server ends on its own after the command: count its CPU time too
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    if rc != 0:
        raise SystemExit(f"{' '.join(cmd)} failed (exit {rc}):\n{''.join(lines[-20:])}")
    return {"seconds": seconds, "cpu": cpu, "latencies": latencies, "counts": counts}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=500, help="CIFAR-10 test images per run")
    p.add_argument("--data", default=None, help="dataset (default: the CIFAR-10 copy)")
    p.add_argument("--pairs", type=int, default=3, help="runs without and with --live, alternately")
    args = p.parse_args()
    runs = {False: [], True: []}
    lat, counts = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.pairs):
            for on in ((False, True) if i % 2 == 0 else (True, False)):
                r = one_run(args, on, Path(tmp) / f"run{i}-{int(on)}")
                runs[on].append(r)
                if on:
                    lat += r["latencies"]
                    for k, v in r["counts"].items():
                        counts[k] = counts.get(k, 0) + v
                print(f"  pair {i + 1}: {'--live' if on else 'plain '} {r['seconds']:6.2f} s wall, {r['cpu']:6.2f} s CPU",
                      flush=True)
    print(f"jscec loopback --data --images {args.images}, {args.pairs} pairs (medians):")
    for key, what in (("seconds", "run time (wall clock)"), ("cpu", "CPU time of all its processes")):
        a, b = (statistics.median(r[key] for r in runs[on]) for on in (False, True))
        pairs = [y[key] / x[key] - 1 for x, y in zip(runs[False], runs[True])]
        print(f"  {what}: without --live {a:.2f} s, with --live {b:.2f} s: {100 * (b / a - 1):+.1f} % "
              f"(per pair: {', '.join(f'{100 * d:+.1f}' for d in pairs)} %; target <= 5 %)")
    if lat:
        lat.sort()
        q = lambda f: lat[min(len(lat) - 1, int(f * len(lat)))]  # noqa: E731
        print(f"  update latency, receive chain to the page's event stream, over {len(lat)} updates carrying "
              f"{counts.get('frames', 0)} frames and {counts.get('images', 0)} image decodings/scores: median "
              f"{1e3 * q(0.5):.0f} ms, 95th percentile {1e3 * q(0.95):.0f} ms, max {1e3 * lat[-1]:.0f} ms "
              f"(target <= 500 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
