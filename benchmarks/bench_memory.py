"""Benchmark: memory (RSS) of every process of ``jscec loopback --data`` against the number of images.

    python benchmarks/bench_memory.py                          # runs of 2000 and 20000 images (5–10 min)
    python benchmarks/bench_memory.py --images 200 2000        # quicker
    python benchmarks/bench_memory.py --images 2000 --root /tmp/other-checkout --json mem.json
    python benchmarks/bench_memory.py --cli --images 2000      # the command itself (≤ 6000 images)

Each run is ``jscec loopback --data --images N`` in ``--root`` (default: this checkout), as a child
process whose whole process tree is polled (``VmRSS`` in ``/proc/<pid>/status``) every ``--interval``
seconds: the main process (Alice, the flowgraph, the report), Bob's and Eve's ``link.receiver``
processes, and any synchroniser workers (``spawn_main``; numbered in start order) and
multiprocessing's resource tracker. For every process it prints the peak RSS (and the RSS at the last
sample before the process exited) of each run, and the ratio of the peaks of the largest run to those
of the smallest (the issue's target: every process within 10 % between 2000 and 20000 images).
Peaks are of the polled samples: a spike shorter than the interval may be missed.

The CIFAR-10 copy's test split has 6000 images, and ``jscec loopback --data --images N`` sends at
most that many. So by default the child runs the command's own code (``scripts.cmd_loopback``'s
options and runner) with the test split repeated to N images (``ImageOptions.image_arrays``; the
repeated originals share memory, everything sent and received is per image); ``--cli`` runs the
command itself instead.

``--json FILE`` writes the figures with every sample (time, RSS) per process; ``--keep`` keeps each
run's output folder (``--work``, default a temporary folder) for inspection.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "cifar10-jpeg.tar.gz"


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:       # the process exited between listing and reading
        return None


def process_tree(root_pid: int) -> dict[int, tuple[str, int]]:
    """``{pid: (cmdline, VmRSS in bytes)}`` of ``root_pid`` and all its descendants (Linux /proc)."""
    parent, info = {}, {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        status = _read(f"/proc/{name}/status")
        if status is None:
            continue
        fields = dict(line.split(b":", 1) for line in status.splitlines() if b":" in line)
        parent[int(name)] = int(fields.get(b"PPid", b"0").strip() or 0)
        rss = fields.get(b"VmRSS")
        if rss is not None:                   # kernel threads and zombies have none
            info[int(name)] = int(rss.split()[0]) * 1024
    tree, frontier = {root_pid}, [root_pid]
    children: dict[int, list[int]] = {}
    for pid, ppid in parent.items():
        children.setdefault(ppid, []).append(pid)
    while frontier:
        for child in children.get(frontier.pop(), []):
            if child not in tree:
                tree.add(child)
                frontier.append(child)
    out = {}
    for pid in tree:
        if pid in info:
            cmd = (_read(f"/proc/{pid}/cmdline") or b"").replace(b"\0", b" ").decode(errors="replace").strip()
            out[pid] = (cmd, info[pid])
    return out


class Labeller:
    """Stable names for the processes of one run: main, bob, eve, sync-worker-1…, resource-tracker."""

    def __init__(self, root_pid: int):
        self.root_pid = root_pid
        self.names: dict[int, str] = {}
        self.workers = 0

    def __call__(self, pid: int, cmd: str) -> str:
        if pid in self.names:
            return self.names[pid]
        words = cmd.split()
        if pid == self.root_pid:
            name = "main"
        elif "link.receiver" in words and "--role" in words:
            name = words[words.index("--role") + 1]
        elif "resource_tracker" in cmd:
            name = "resource-tracker"
        elif "spawn_main" in cmd or "multiprocessing" in cmd:
            self.workers += 1
            name = f"sync-worker-{self.workers}"
        else:
            name = f"other-{pid} ({' '.join(words[:3])[:40]})"
        self.names[pid] = name
        return name


def child(argv: list[str]) -> int:
    """``jscec loopback`` with the dataset's test split repeated to ``--images`` images."""
    import dataclasses

    from link.apps.deepjscec import DeepJscecApp
    from link.apps.images import load_images
    from link.links.sim import SimLink
    from link.runner import RunOptions, run as run_link
    from scripts import cmd_loopback
    from scripts.arguments import image_options, model_and_data, print_report, sim_options

    p = argparse.ArgumentParser()
    cmd_loopback.add_arguments(p)
    args = p.parse_args(argv)
    opts = image_options(args)
    test, source = load_images(model_and_data(args)[1], args.images)
    imgs = [test[i % len(test)] for i in range(args.images)]
    opts = dataclasses.replace(opts, image_arrays=imgs)
    report = run_link(DeepJscecApp(opts), SimLink(sim_options(args)),
                      RunOptions(out_dir=args.out, equalizer_taps=args.equalizer, timeout_s=3600.0))
    print(f"images: {source}, repeated to {len(imgs)}")
    print_report(report, args.json)
    return 0


def run_once(images: int, args, work: Path) -> dict:
    """One ``jscec loopback --data --images N``; per process: peak and last RSS, and every sample."""
    out = work / f"loopback-{images}"
    shutil.rmtree(out, ignore_errors=True)
    if args.cli:
        cmd = [args.python, "-m", "scripts.cli", "loopback"]
    else:
        cmd = [args.python, str(Path(__file__).resolve()), "--child"]
    cmd += ["--images", str(images), "--out", str(out), "--seed", str(args.seed)]
    cmd += ["--data"] + ([args.data] if args.data else [])
    cmd += args.extra
    log_path = work / f"loopback-{images}.log"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(args.root), os.environ.get("PYTHONPATH")])))
    if not args.data and "JSCEC_DATA" not in env and DEFAULT_DATA.exists():
        env["JSCEC_DATA"] = str(DEFAULT_DATA)      # the copy beside this checkout, whatever --root is
    t0 = time.monotonic()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=args.root, stdout=log, stderr=subprocess.STDOUT, env=env)
        label = Labeller(proc.pid)
        samples: dict[str, list] = {}
        try:
            while proc.poll() is None:
                t = time.monotonic() - t0
                for pid, (cmdline, rss) in process_tree(proc.pid).items():
                    samples.setdefault(label(pid, cmdline), []).append((round(t, 2), rss))
                time.sleep(args.interval)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    seconds = time.monotonic() - t0
    if proc.returncode != 0:
        tail = log_path.read_text().splitlines()[-5:]
        raise SystemExit(f"jscec loopback --images {images} failed (exit {proc.returncode}):\n" + "\n".join(tail))
    result = json.loads((out / "result.json").read_text())
    if not args.keep:
        shutil.rmtree(out, ignore_errors=True)
    procs = {name: {"peak": max(r for _, r in s), "last": s[-1][1], "samples": s} for name, s in samples.items()
             if max(r for _, r in s) >= 2**20 or not name.startswith("other-")}   # not a passing `file -b`
    sent = len(result["per_image"].get("bob", result["per_image"].get("eve", [])))
    return {"images": images, "images_sent": sent, "seconds": seconds, "processes": procs,
            "frames_ok": {who: result[who].get("frames_ok") for who in ("bob", "eve")},
            "psnr": {who: result[who].get("psnr") for who in ("bob", "eve")}}


def _mb(v) -> str:
    return "—" if v is None else f"{v / 2**20:.1f}"


def table(runs: list[dict]) -> str:
    names = sorted({n for r in runs for n in r["processes"]},
                   key=lambda n: (["main", "bob", "eve"].index(n) if n in ("main", "bob", "eve") else 3, n))
    head = f"{'process':18}" + "".join(f"{'peak MB @' + str(r['images']):>15}{'last MB':>9}" for r in runs)
    if len(runs) > 1:
        head += f"{'peak ratio':>12}"
    lines = [head]
    for n in names:
        got = [r["processes"].get(n) for r in runs]
        line = f"{n:18}" + "".join(f"{_mb(g and g['peak']):>15}{_mb(g and g['last']):>9}" for g in got)
        if len(runs) > 1 and got[0] and got[-1]:
            line += f"{got[-1]['peak'] / got[0]['peak']:>12.3f}"
        lines.append(line)
    for r in runs:
        rate = r["images_sent"] / r["seconds"]
        lines.append(f"{r['images_sent']} images: {r['seconds']:.0f} s ({rate:.1f} images/s), "
                     f"frames ok bob {r['frames_ok']['bob']}, eve {r['frames_ok']['eve']}; "
                     f"PSNR bob {r['psnr']['bob']:.2f} dB, eve {r['psnr']['eve']:.2f} dB")
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return child(argv[1:])
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--images", type=int, nargs="+", default=[2000, 20000], help="image counts, one run each")
    p.add_argument("--interval", type=float, default=0.5, help="seconds between RSS samples")
    p.add_argument("--data", default=None,
                   help="dataset for --data (None: $JSCEC_DATA or the CIFAR-10 copy beside this checkout)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--root", type=Path, default=ROOT, help="checkout to run (its scripts.cli)")
    p.add_argument("--python", default=sys.executable, help="interpreter of the runs")
    p.add_argument("--work", type=Path, default=None, help="folder for the runs' output (None: a temporary one)")
    p.add_argument("--keep", action="store_true", help="keep each run's output folder")
    p.add_argument("--cli", action="store_true",
                   help="run `jscec loopback` itself (sends at most the test split: 6000 CIFAR-10 images)")
    p.add_argument("--json", type=Path, default=None, help="write the figures and samples here")
    p.add_argument("extra", nargs=argparse.REMAINDER, help="after --: more `jscec loopback` options")
    args = p.parse_args(argv)
    if args.extra[:1] == ["--"]:
        args.extra = args.extra[1:]
    if not Path("/proc/self/status").exists():
        p.error("needs Linux /proc")
    tmp = None
    work = args.work
    if work is None:
        work = Path(tmp := tempfile.mkdtemp(prefix="bench-memory-"))
    work.mkdir(parents=True, exist_ok=True)
    runs = []
    try:
        for n in args.images:
            print(f"jscec loopback --data --images {n} (root {args.root}) …", file=sys.stderr, flush=True)
            runs.append(run_once(n, args, work))
            print(table(runs[-1:]), flush=True)
    finally:
        if tmp is not None and not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    if len(runs) > 1:
        print("\nall runs (peak ratio: largest run's peak / smallest run's peak)")
        print(table(runs))
    if args.json:
        args.json.write_text(json.dumps({"root": str(args.root), "interval_s": args.interval, "runs": runs}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
