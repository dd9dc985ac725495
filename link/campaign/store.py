"""The campaign's results store: one SQLite file (standard-library :mod:`sqlite3`, WAL journal).

Schema version :data:`SCHEMA_VERSION` (``meta.schema_version``); ``docs`` in :data:`SCHEMA` below is the
reference. A cell's rows (``cells``, ``points``, ``images``, ``frames``, ``drops``, ``devices``) are
written in one transaction, after the cell has run: a store holds whole cells or none of a cell, and a
campaign killed at any moment loses at most the cells in progress. ``cells.cell_id`` is a hash of
the cell's settings and seed (:attr:`link.campaign.plan.Cell.cell_id`): running the same plan again
skips every cell whose id is stored.

Secrets never enter the store: the baseline's AES keys and DeepJSCEC's cipher keys live in files
(mode 0600) beside it (``<store>.keys/``, ``<store>.cells/<cell_id>/keys/``); the store names key ids.
"""
from __future__ import annotations

import json
import os
import platform
import sqlite3
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

from jscec.errors import UserError

SCHEMA_VERSION = 1

SCHEMA = """
-- meta: one row per fact of the store.
--   schema_version  this file's layout (SCHEMA_VERSION)
--   created         UTC ISO time the store was made
--   plan_name, plan_hash (SHA-256 of the plan's canonical settings), plan_text (the TOML as written),
--   plan_json (the validated plan with defaults), plan_path, plan_history (JSON list of replaced hashes)
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

-- sessions: one row per `jscec campaign` invocation on this store.
CREATE TABLE IF NOT EXISTS sessions (
    session_id INTEGER PRIMARY KEY, started TEXT NOT NULL, finished TEXT, status TEXT NOT NULL,
    argv TEXT, jobs INTEGER, plan_hash TEXT NOT NULL,
    software TEXT NOT NULL,       -- JSON: python, numpy, torch, gnuradio, project version, git commit
    host TEXT);

-- cells: one row per finished cell (a system at one grid point, one repeat).
CREATE TABLE IF NOT EXISTS cells (
    cell_id TEXT PRIMARY KEY,     -- 16 hex digits: SHA-256 of (system, link, settings, seed)
    ordinal INTEGER NOT NULL,     -- position in the plan's expansion
    system TEXT NOT NULL,         -- deepjscec | baseline | replay
    label TEXT NOT NULL,          -- the curve it belongs to
    link TEXT NOT NULL,           -- symbols | awgn | sim | ota | replay
    repeat INTEGER NOT NULL, seed INTEGER NOT NULL,
    settings TEXT NOT NULL,       -- JSON: model / codec, mode, images, data, grid point, link settings
    in_plan INTEGER NOT NULL DEFAULT 1,   -- 0: kept from a plan replaced with --force (reports skip it)
    session_id INTEGER REFERENCES sessions(session_id),
    finished TEXT NOT NULL,       -- UTC ISO time
    run_seconds REAL NOT NULL,    -- the cell's run (model/data loading included)
    write_seconds REAL,           -- inserting its rows (the commit follows)
    summary TEXT NOT NULL,        -- JSON: the run's own report without per-image/per-frame lists
    out_dir TEXT, recording TEXT);

-- points: per cell, role and set SNR, the mean scores (role: bob | eve).
CREATE TABLE IF NOT EXISTS points (
    cell_id TEXT NOT NULL REFERENCES cells(cell_id), role TEXT NOT NULL,
    snr_db REAL,                  -- the set SNR of this role's channel (NULL over radios)
    snr_b_db REAL, snr_e_db REAL, tx_gain_db REAL,
    psnr REAL, ssim REAL, ms_ssim REAL, accuracy REAL,
    mer_db REAL, measured_snr_db REAL,
    images INTEGER, undecodable INTEGER, frames_sent INTEGER, frames_ok INTEGER,
    extra TEXT);                  -- JSON: anything else of the point
CREATE INDEX IF NOT EXISTS points_cell ON points(cell_id);

-- images: per cell, role and set SNR, every image's scores (decoded: baseline 0/1, NULL otherwise).
CREATE TABLE IF NOT EXISTS images (
    cell_id TEXT NOT NULL REFERENCES cells(cell_id), role TEXT NOT NULL, snr_db REAL, image INTEGER NOT NULL,
    psnr REAL, ssim REAL, ms_ssim REAL, accuracy REAL, decoded INTEGER);
CREATE INDEX IF NOT EXISTS images_cell ON images(cell_id);

-- frames: per cell and role, every frame a receive chain saw (framed links).
CREATE TABLE IF NOT EXISTS frames (
    cell_id TEXT NOT NULL REFERENCES cells(cell_id), role TEXT NOT NULL, seq INTEGER NOT NULL,
    counter INTEGER, image INTEGER, chunk INTEGER, ok INTEGER NOT NULL, reason TEXT,
    mer_db REAL, snr_db REAL, cfo REAL, sro_ppm REAL, timing REAL);
CREATE INDEX IF NOT EXISTS frames_cell ON frames(cell_id);

-- drops: per cell and role, dropped frames counted by reason.
CREATE TABLE IF NOT EXISTS drops (
    cell_id TEXT NOT NULL REFERENCES cells(cell_id), role TEXT NOT NULL, reason TEXT NOT NULL, count INTEGER NOT NULL);

-- devices: per cell over radios, what each device reported (URI, hardware, settings, counters).
CREATE TABLE IF NOT EXISTS devices (
    cell_id TEXT NOT NULL REFERENCES cells(cell_id), role TEXT NOT NULL, description TEXT NOT NULL);
"""

#: Columns of each per-cell table, in insert order (the store's CSV export uses them too).
COLUMNS = {
    "points": ("cell_id", "role", "snr_db", "snr_b_db", "snr_e_db", "tx_gain_db", "psnr", "ssim", "ms_ssim",
               "accuracy", "mer_db", "measured_snr_db", "images", "undecodable", "frames_sent", "frames_ok",
               "extra"),
    "images": ("cell_id", "role", "snr_db", "image", "psnr", "ssim", "ms_ssim", "accuracy", "decoded"),
    "frames": ("cell_id", "role", "seq", "counter", "image", "chunk", "ok", "reason", "mer_db", "snr_db", "cfo",
               "sro_ppm", "timing"),
    "drops": ("cell_id", "role", "reason", "count"),
    "devices": ("cell_id", "role", "description"),
}
#: What differs between two runs of the same cells (left out when stores are compared).
TIMING_COLUMNS = {"sessions": "*", "cells": ("session_id", "finished", "run_seconds", "write_seconds")}


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def software() -> dict:
    """Versions of what produced the numbers."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in ("numpy", "torch", "scipy", "pillow-heif", "deepjscec-hil"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    try:
        from gnuradio import gr

        out["gnuradio"] = gr.version()
    except Exception:      # noqa: BLE001 - GNU Radio absent: the symbol-level cells still run
        out["gnuradio"] = None
    root = Path(__file__).resolve().parents[2]
    try:
        out["git_commit"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                           timeout=10).stdout.strip() or None
        out["git_dirty"] = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                               capture_output=True, text=True, timeout=10).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        out["git_commit"] = None
    return out


class Store:
    """An open store. ``Store(path)`` creates the file (and its schema) if it does not exist."""

    def __init__(self, path, *, create: bool = True):
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise UserError(f"no campaign store at {self.path}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")   # WAL: a crash loses no committed cell
            self.db.execute("PRAGMA foreign_keys=ON")
            version = self.get_meta("schema_version")
        except sqlite3.DatabaseError as exc:
            raise UserError(f"{self.path} is not a campaign store ({exc})") from None
        if version is None:
            if not create:
                raise UserError(f"{self.path} is not a campaign store (no schema version)")
            self.db.executescript("BEGIN;" + SCHEMA + "COMMIT;")
            self.set_meta(schema_version=str(SCHEMA_VERSION), created=now())
        elif int(version) != SCHEMA_VERSION:
            raise UserError(f"{self.path} has store schema version {version}; this jscec reads version "
                            f"{SCHEMA_VERSION}")

    # -- meta
    def get_meta(self, key: str):
        try:
            row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        except sqlite3.OperationalError:
            return None
        return None if row is None else row[0]

    def set_meta(self, **values) -> None:
        with self.transaction():
            for k, v in values.items():
                self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (k, v))

    def transaction(self):
        return _Transaction(self.db)

    # -- the plan
    def bind_plan(self, plan, *, force: bool = False) -> str:
        """Record the plan in a new store; refuse a different plan unless ``force``. Returns what happened."""
        old = self.get_meta("plan_hash")
        ids = [c.cell_id for c in plan.cells]
        if old == plan.hash:
            return "same plan"
        if old is not None and not force:
            raise UserError(f"{self.path} holds results of another plan ({self.get_meta('plan_name')}, "
                            f"hash {old[:12]}); this plan's hash is {plan.hash[:12]}. Use a new --store, or "
                            "--force to adopt this plan (cells it shares with the old one are kept; the others "
                            "stay in the store, left out of reports)")
        history = json.loads(self.get_meta("plan_history") or "[]") + ([old] if old else [])
        with self.transaction():
            for k, v in {"plan_name": plan.name, "plan_hash": plan.hash, "plan_text": plan.text,
                         "plan_json": json.dumps(plan.doc, sort_keys=True), "plan_path": str(plan.path),
                         "plan_history": json.dumps(history)}.items():
                self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (k, v))
            self.db.execute("UPDATE cells SET in_plan = 0")
            self.db.executemany("UPDATE cells SET in_plan = 1 WHERE cell_id = ?", [(i,) for i in ids])
        return "new store" if old is None else "plan replaced (--force)"

    def done_ids(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT cell_id FROM cells")}

    # -- sessions
    def open_session(self, argv, jobs: int, plan_hash: str) -> int:
        with self.transaction():
            cur = self.db.execute("INSERT INTO sessions(started, status, argv, jobs, plan_hash, software, host) "
                                  "VALUES (?, 'running', ?, ?, ?, ?, ?)",
                                  (now(), json.dumps(list(argv)), jobs, plan_hash, json.dumps(software()),
                                   platform.node()))
        return int(cur.lastrowid)

    def close_session(self, session_id: int, status: str) -> None:
        with self.transaction():
            self.db.execute("UPDATE sessions SET finished = ?, status = ? WHERE session_id = ?",
                            (now(), status, session_id))

    # -- one cell, one transaction
    def write_cell(self, cell: dict, result: dict, session_id: int | None) -> float:
        """Insert the finished ``cell`` (:meth:`Cell.as_dict`) and its ``result`` (:mod:`link.campaign.cells`) in
        one transaction; returns the seconds it took, commit included."""
        t0 = time.perf_counter()
        with self.transaction():
            cid = cell["cell_id"]
            for table in ("points", "images", "frames", "drops", "devices"):     # a --force rerun of a cell
                self.db.execute(f"DELETE FROM {table} WHERE cell_id = ?", (cid,))
            self.db.execute("DELETE FROM cells WHERE cell_id = ?", (cid,))
            self.db.execute(
                "INSERT INTO cells(cell_id, ordinal, system, label, link, repeat, seed, settings, in_plan, session_id, "
                "finished, run_seconds, summary, out_dir, recording) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?)",
                (cid, cell["ordinal"], cell["system"], result.get("label", cell["label"]), cell["link"],
                 cell["repeat"], cell["seed"], json.dumps(cell["settings"], sort_keys=True), session_id, now(),
                 float(result["seconds"]), json.dumps(result.get("summary", {}), sort_keys=True),
                 result.get("out_dir"), result.get("recording")))
            for table, cols in COLUMNS.items():
                rows = result.get(table) or []
                if not rows:
                    continue
                names = cols[1:]
                sql = f"INSERT INTO {table}({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
                self.db.executemany(sql, ((cid, *(_sql(r.get(c)) for c in names)) for r in rows))
            self.db.execute("UPDATE cells SET write_seconds = ? WHERE cell_id = ?", (time.perf_counter() - t0, cid))
        return time.perf_counter() - t0

    # -- reading
    def query(self, sql: str, args=()) -> list[dict]:
        cur = self.db.execute(sql, args)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur]

    def close(self) -> None:
        self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _sql(v):
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True)
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, float) and v != v:       # NaN → NULL
        return None
    return v


class _Transaction:
    def __init__(self, db):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, *rest):
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
        return False


def keys_dir(store_path) -> Path:
    """``<store>.keys/`` (mode 0700): the campaign's secret files."""
    p = Path(store_path)
    d = p.with_name(p.stem + ".keys")
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    return d


def cells_dir(store_path) -> Path:
    """``<store>.cells/``: each framed cell's output folder (result.json, bob.json, panel, keys, recordings)."""
    p = Path(store_path)
    return p.with_name(p.stem + ".cells")
