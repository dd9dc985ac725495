"""``jscec campaign``: run a plan's cells into its store, resumable, in parallel where nothing is a radio.

* the plan is bound to the store (:meth:`Store.bind_plan`): a different plan is refused unless ``force``;
* cells already stored are skipped; the others run — simulated ones in ``jobs`` worker processes
  (``spawn``ed, ``cpus // jobs`` torch threads each), cells over radios one at a time in this process;
* each finished cell is written in one transaction by this process (the only writer);
* Ctrl-C or SIGTERM stops the workers (the cells in progress are lost, nothing else) and marks the
  session ``interrupted``; a cell that fails is reported and left for the next run.
"""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import signal
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from jscec.errors import UserError
from link import live
from link.campaign.plan import Plan, load_plan, parse_plan
from link.campaign.store import Store


@dataclass
class CampaignOptions:
    store: str | None = None        # default: out/campaigns/<plan name>[-overrides].sqlite
    jobs: int = 1
    force: bool = False
    images: int | None = None       # overrides of the plan (a quick run), part of the plan's hash
    repeats: int | None = None
    dry_run: bool = False
    argv: list = field(default_factory=list)


def plan_with_overrides(path, images: int | None = None, repeats: int | None = None) -> Plan:
    """The plan, with ``[campaign] images``/``repeats`` replaced (``--images``, ``--repeats``)."""
    if images is None and repeats is None:
        return load_plan(path)
    plan = load_plan(path)             # the file as written must be valid first
    raw = tomllib.loads(plan.text)
    c = raw.setdefault("campaign", {})
    if images is not None:
        if images < 1:
            raise UserError(f"--images must be at least 1, got {images}")
        c["images"] = images
    if repeats is not None:
        if repeats < 1:
            raise UserError(f"--repeats must be at least 1, got {repeats}")
        if "seeds" in c:
            if repeats > len(c["seeds"]):
                raise UserError(f"--repeats {repeats}: the plan lists {len(c['seeds'])} seeds")
            c["seeds"] = c["seeds"][:repeats]
            c.pop("repeats", None)
        else:
            c["repeats"] = repeats
    return parse_plan(raw, plan.text, Path(path))


def default_store(plan: Plan, images: int | None, repeats: int | None) -> Path:
    suffix = (f"-images{images}" if images is not None else "") + (f"-repeats{repeats}" if repeats is not None else "")
    return Path("out") / "campaigns" / f"{plan.name}{suffix}.sqlite"


class _Progress:
    """A tqdm bar (on a terminal) weighted by the cells' costs, and one line per cell with the ETA."""

    def __init__(self, cells, done_before: int, total: int, log):
        from tqdm import tqdm

        self.left = sum(c.weight for c in cells)
        self.total_weight, self.n, self.count = self.left, total, done_before
        self.t0 = time.monotonic()
        self.done_weight = 0.0
        self.log = log
        self.bar = tqdm(total=round(self.left), desc="campaign", unit="w", file=sys.stderr,
                        disable=not sys.stderr.isatty(), bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} "
                        "[{elapsed}<{remaining}]{postfix}")

    def eta(self) -> str:
        if self.done_weight <= 0:
            return "?"
        s = (time.monotonic() - self.t0) / self.done_weight * (self.total_weight - self.done_weight)
        return f"{int(s // 3600)}h{int(s % 3600 // 60):02d}m" if s >= 3600 else f"{int(s // 60)}m{int(s % 60):02d}s"

    def step(self, cell, text: str) -> None:
        self.count += 1
        self.done_weight += cell.weight
        self.bar.update(round(cell.weight))
        self.bar.set_postfix_str(f"{self.count}/{self.n} cells")
        line = f"[{self.count:>{len(str(self.n))}}/{self.n}] {text} — ETA {self.eta()}"
        if self.bar.disable:
            self.log(line)
        else:
            self.bar.write(line, file=sys.stderr)

    def close(self):
        self.bar.close()


def _describe(cell, result: dict, write_s: float) -> str:
    point = cell.settings.get("point", {})
    where = ", ".join(f"{k} {v:g}" for k, v in point.items() if v is not None)
    scores = []
    for p in result.get("points", []):
        if len(result["points"]) <= 2 and p.get("psnr") is not None:
            scores.append(f"{p['role'].capitalize()} {p['psnr']:.2f} dB")
    if not scores and result.get("points"):
        ps = [p["psnr"] for p in result["points"] if p.get("psnr") is not None]
        if ps:
            scores.append(f"PSNR {min(ps):.2f}–{max(ps):.2f} dB over {len(ps)} SNRs")
    return (f"{cell.label}" + (f" @ {where}" if where else "") + f", seed {cell.seed}: " + ", ".join(scores)
            + f" ({result['seconds']:.1f} s, stored in {write_s * 1e3:.0f} ms)")


def _worker_init(threads: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # the campaign's process decides when workers stop
    import torch

    torch.set_num_threads(threads)


def _sigterm(signum, frame):
    raise KeyboardInterrupt


def run_campaign(plan_path, opts: CampaignOptions, log=print) -> dict:
    """Run ``plan_path`` into its store; returns counts (``ran``, ``skipped``, ``failed``, ``store``, ``seconds``)."""
    from link.campaign.cells import run_cell

    plan = plan_with_overrides(plan_path, opts.images, opts.repeats)
    store_path = Path(opts.store) if opts.store else default_store(plan, opts.images, opts.repeats)
    if opts.jobs < 1:
        raise UserError(f"--jobs must be at least 1, got {opts.jobs}")
    if opts.dry_run:          # touches nothing
        done = set()
        if store_path.is_file():
            with Store(store_path, create=False) as s:
                done = s.done_ids()
        todo = [c for c in plan.cells if c.cell_id not in done]
        log(f"campaign {plan.name}: {len(plan.cells)} cells, {len(todo)} to run (dry run; store {store_path})")
        for c in todo:
            log(f"  would run {c.cell_id} {c.system} {c.label} {c.settings.get('point')} seed {c.seed}")
        return {"ran": 0, "skipped": len(plan.cells) - len(todo), "failed": 0, "store": str(store_path),
                "seconds": 0.0}
    store = Store(store_path)
    try:
        how = store.bind_plan(plan, force=opts.force)
        done = store.done_ids()
        todo = [c for c in plan.cells if c.cell_id not in done]
        skipped = len(plan.cells) - len(todo)
        log(f"campaign {plan.name}: {len(plan.cells)} cells ({skipped} stored, {len(todo)} to run), link "
            f"{plan.doc['link']['kind']}, {plan.doc['campaign']['images']} images, "
            f"{plan.doc['campaign']['repeats']} repeat(s); store {store_path} ({how})")
        session = store.open_session(opts.argv, opts.jobs, plan.hash)
        live.campaign("start", plan=plan.name, total=len(plan.cells), done=skipped, failed=0, store=str(store_path))
        progress = _Progress(todo, skipped, len(plan.cells), log)
        status, failed, ran = "interrupted", [], 0
        t0 = time.monotonic()
        old_term = signal.signal(signal.SIGTERM, _sigterm) if _main_thread() else None

        def finished(cell, result):
            nonlocal ran
            write_s = store.write_cell(cell.as_dict(), result, session)
            ran += 1
            line = _describe(cell, result, write_s)
            progress.step(cell, line)
            live.campaign("cell", done=progress.count, line=line)

        def failed_cell(cell, exc):
            failed.append(cell)
            line = f"cell {cell.cell_id} ({cell.label}, {cell.settings.get('point')}, seed {cell.seed}) failed: {exc}"
            progress.bar.write(line, file=sys.stderr)
            live.campaign("cell", failed=len(failed), line=line)

        try:
            local = [c for c in todo if c.radio or opts.jobs == 1]
            pooled = [c for c in todo if not (c.radio or opts.jobs == 1)]
            if pooled:
                _run_pool(pooled, opts.jobs, str(store_path), finished, failed_cell)
            for cell in local:
                try:
                    result = run_cell(cell.as_dict(), str(store_path), threads=0)
                except (UserError, OSError, RuntimeError, ValueError) as exc:
                    failed_cell(cell, exc)
                    continue
                finished(cell, result)
            status = "failed" if failed else "finished"
        finally:
            progress.close()
            store.close_session(session, status)
            live.campaign("end", status=status)
            if old_term is not None:
                signal.signal(signal.SIGTERM, old_term)
        return {"ran": ran, "skipped": skipped, "failed": len(failed), "store": str(store_path),
                "seconds": time.monotonic() - t0}
    finally:
        store.close()


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _run_pool(cells, jobs: int, store_path: str, finished, failed_cell) -> None:
    from link.campaign.cells import run_cell

    threads = max(1, (os.cpu_count() or 1) // jobs)
    ex = cf.ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                                initializer=_worker_init, initargs=(threads,))
    try:
        futures = {ex.submit(run_cell, c.as_dict(), store_path, threads): c for c in cells}
        for fut in cf.as_completed(futures):
            cell = futures[fut]
            try:
                result = fut.result()
            except (UserError, OSError, RuntimeError, ValueError) as exc:
                failed_cell(cell, exc)
                continue
            finished(cell, result)
    except BaseException:
        # Ctrl-C / SIGTERM / a broken pool: stop the workers now; what they were running is lost.
        for p in list(getattr(ex, "_processes", {}).values()):
            p.terminate()
        ex.shutdown(wait=False, cancel_futures=True)
        raise
    ex.shutdown(wait=True)
