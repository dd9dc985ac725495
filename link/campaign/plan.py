"""Campaign plans: a TOML file (read with :mod:`tomllib`) → validated settings → the list of cells to run.

A plan has these tables (``plans/*.toml`` are worked examples; every key is listed in :data:`KEYS`)::

    [campaign]   name, description, images, repeats | seeds, seed, data, record, timeout_s, equalizer_taps, threads
    [link]       kind = "symbols" | "awgn" | "sim" | "ota" | "replay", and the link's own settings
    [grid]       the axes swept: snr_db, snr_e_db, tx_gain_db, cfo, sro_ppm, phase_noise, delay
    [[deepjscec]]  model, mode, label, snr_db      (one table per DeepJSCEC model)
    [[baseline]]   codec, mod, rate, pairs, rho, ldpc_iters, decoder, label, snr_db   (one per baseline family)

``symbols`` is the frameless symbol-level AWGN simulation (what ``jscec eval`` and ``jscec baseline --link
awgn`` run); ``awgn``, ``sim``, ``ota`` and ``replay`` are the runner's links (:mod:`link.links`). An axis
value is a list of numbers or a range table ``{start = 0, stop = 25, step = 1}`` (stop included).

Every refusal is a :class:`jscec.errors.UserError` that names the file, the line and the key, raised
before anything runs: unknown tables and keys, wrong types, and combinations that cannot run (an Eve
SNR on the symbol-level link, an SNR set on radios, a recording of a simulation without frames, ...).
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from jscec.errors import UserError

LINKS = ("symbols", "awgn", "sim", "ota", "replay")
AXES = ("snr_db", "snr_e_db", "tx_gain_db", "cfo", "sro_ppm", "phase_noise", "delay")
IMPAIRMENTS = ("cfo", "sro_ppm", "phase_noise", "delay")
#: Which grid axes each link takes.
LINK_AXES = {
    "symbols": {"snr_db"},
    "awgn": {"snr_db", "snr_e_db"},
    "sim": {"snr_db", "snr_e_db", *IMPAIRMENTS},
    "ota": {"tx_gain_db"},
    "replay": set(),
}
RADIO_KEYS = ("tx", "bob", "eve", "freq", "sample_rate", "bw", "rx_gain", "agc", "buffer", "tx_level", "tx_gain")
#: Every table and its keys, with the type each key takes.
KEYS = {
    "campaign": {"name": str, "description": str, "images": int, "repeats": int, "seeds": list, "seed": int,
                 "data": str, "record": bool, "timeout_s": (int, float), "equalizer_taps": int, "threads": int},
    "link": {"kind": str, "tx": str, "bob": str, "eve": str, "freq": (int, float), "sample_rate": (int, float),
             "bw": (int, float), "rx_gain": (int, float), "agc": bool, "buffer": int, "tx_level": (int, float),
             "tx_gain": (int, float), "cfo": (int, float), "sro_ppm": (int, float), "phase_noise": (int, float),
             "delay": (int, float), "recordings": list, "sps": int, "rolloff": (int, float)},
    "grid": {a: (list, dict) for a in AXES},
    "deepjscec": {"model": str, "mode": str, "label": str, "snr_db": (list, dict)},
    "baseline": {"codec": str, "mod": (str, list), "rate": (str, list), "pairs": list, "rho": str,
                 "ldpc_iters": int, "decoder": str, "label": str, "snr_db": (list, dict)},
}
ARRAYS = {"deepjscec", "baseline"}


# -- where a key is written (tomllib gives no positions) --------------------------------------------------
_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\" ]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-]+)\s*=")


def locate(text: str, table: str, index: int | None = None, key: str | None = None) -> int | None:
    """The 1-based line of ``key`` in ``[table]`` (the ``index``-th ``[[table]]``), else of that table's header;
    None when neither is written."""
    inside, count, header = False, -1, None
    for n, line in enumerate(text.splitlines(), 1):
        m = _HEADER.match(line)
        if m:
            if m.group(2).replace('"', "").strip() == table:
                count += m.group(1) == "[["
                inside = index is None or count == index
                header = n if inside and header is None else header
            else:
                inside = False
            continue
        if inside and key is not None:
            k = _KEY.match(line)
            if k and k.group(1) == key:
                return n
    return header


#: Settings that say where a file lies on this machine, not what was measured: left out of ids and hashes.
LOCAL = ("model_path",)


@dataclass
class Cell:
    """One unit of work, stored in one transaction: a system at one point of the grid, one repeat."""

    system: str            # "deepjscec" | "baseline"
    label: str             # the curve it belongs to
    link: str
    settings: dict         # everything that decides its result (JSON)
    repeat: int
    seed: int
    weight: float          # relative cost, for the ETA
    ordinal: int = 0
    radio: bool = False    # over radios: one at a time, in the campaign's own process

    @property
    def cell_id(self) -> str:
        settings = {k: v for k, v in self.settings.items() if k not in LOCAL}
        doc = {"system": self.system, "link": self.link, "settings": settings, "seed": self.seed}
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]

    def as_dict(self) -> dict:
        return {"cell_id": self.cell_id, "system": self.system, "label": self.label, "link": self.link,
                "settings": self.settings, "repeat": self.repeat, "seed": self.seed, "weight": self.weight,
                "ordinal": self.ordinal, "radio": self.radio}


@dataclass
class Plan:
    path: Path
    text: str
    doc: dict                              # the parsed TOML, defaults filled in
    cells: list[Cell] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.doc["campaign"]["name"]

    @property
    def hash(self) -> str:
        """SHA-256 of the plan's canonical settings (comments and layout do not count)."""
        doc = {**self.doc, "deepjscec": [{k: v for k, v in d.items() if k not in LOCAL} for d in self.doc["deepjscec"]]}
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


class _Checker:
    def __init__(self, path: Path, text: str):
        self.path, self.text = path, text

    def fail(self, message: str, table: str, index: int | None = None, key: str | None = None):
        line = locate(self.text, table, index, key)
        where = f"{self.path.name}" + (f" line {line}" if line else "")
        name = f"[[{table}]] #{index + 1}" if index is not None else f"[{table}]"
        raise UserError(f"plan {where}: {name}" + (f" {key}" if key else "") + f": {message}")


def _axis(values, check: _Checker, table: str, index, key: str) -> list[float]:
    if isinstance(values, dict):
        extra = set(values) - {"start", "stop", "step"}
        if extra or not {"start", "stop", "step"} <= set(values):
            check.fail("a range is {start = …, stop = …, step = …}", table, index, key)
        try:
            start, stop, step = (float(values[k]) for k in ("start", "stop", "step"))
        except (TypeError, ValueError):
            check.fail("range start/stop/step must be numbers", table, index, key)
        if not step > 0 or stop < start:
            check.fail("a range needs step > 0 and stop >= start", table, index, key)
        n = int(math.floor((stop - start) / step + 1e-9)) + 1
        values = [round(start + i * step, 9) for i in range(n)]
    if not isinstance(values, list) or not values:
        check.fail("give a non-empty list of numbers or a range table", table, index, key)
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            check.fail(f"{v!r} is not a finite number", table, index, key)
        out.append(float(v))
    if len(set(out)) != len(out):
        check.fail("values repeat", table, index, key)
    return out


def _types(doc: dict, check: _Checker) -> None:
    for table, body in doc.items():
        if table not in KEYS:
            check.fail(f"unknown table (known: {', '.join(KEYS)})", table)
        entries = body if table in ARRAYS else [body]
        if table in ARRAYS and not isinstance(body, list):
            check.fail("write it as [[" + table + "]] (one table per system)", table)
        if table not in ARRAYS and not isinstance(body, dict):
            check.fail("write it as a [" + table + "] table", table)
        for i, entry in enumerate(entries):
            idx = i if table in ARRAYS else None
            for key, value in entry.items():
                want = KEYS[table].get(key)
                if want is None:
                    check.fail(f"unknown key (known: {', '.join(KEYS[table])})", table, idx, key)
                wanted = want if isinstance(want, tuple) else (want,)
                if isinstance(value, bool) and bool not in wanted or not isinstance(value, wanted):
                    names = " or ".join({int: "an integer", float: "a number", str: "a string", bool: "true/false",
                                         list: "a list", dict: "a table"}[t] for t in wanted)
                    check.fail(f"must be {names}, got {value!r}", table, idx, key)


def load_plan(path) -> Plan:
    """Read, validate and expand a plan; refuses (``UserError``) with the line and key named."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UserError(f"plan not found: {path}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"plan {path.name}: not valid TOML: {exc}") from None
    return parse_plan(raw, text, path)


def parse_plan(raw: dict, text: str = "", path: Path = Path("plan.toml")) -> Plan:
    check = _Checker(path, text)
    _types(raw, check)
    if "campaign" not in raw or "name" not in raw["campaign"]:
        check.fail("a plan needs [campaign] with a name", "campaign", None, "name")
    c = dict(raw["campaign"])
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", c["name"]):
        check.fail("letters, digits, '_', '-' and '.' only (it names the store)", "campaign", None, "name")
    c.setdefault("description", "")
    c.setdefault("images", 100)
    c.setdefault("data", "default")
    c.setdefault("record", False)
    c.setdefault("timeout_s", 900.0)
    c.setdefault("equalizer_taps", 0)
    c.setdefault("threads", 1)
    if c["images"] < 1:
        check.fail("must be at least 1", "campaign", None, "images")
    if c["equalizer_taps"] < 0 or (c["equalizer_taps"] and c["equalizer_taps"] % 2 == 0):
        check.fail("0 or an odd number of taps", "campaign", None, "equalizer_taps")
    if "seeds" in c:
        if "seed" in c:
            check.fail("give seeds or seed, not both", "campaign", None, "seed")
        seeds = c["seeds"]
        if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds) \
                or len(set(seeds)) != len(seeds):
            check.fail("a list of distinct non-negative integers", "campaign", None, "seeds")
        if "repeats" in c and c["repeats"] != len(seeds):
            check.fail(f"repeats = {c['repeats']} but {len(seeds)} seeds", "campaign", None, "repeats")
        c["repeats"] = len(seeds)
    else:
        c.setdefault("repeats", 1)
        c.setdefault("seed", 0)
        if c["repeats"] < 1:
            check.fail("must be at least 1", "campaign", None, "repeats")
        if c["seed"] < 0:
            check.fail("must not be negative", "campaign", None, "seed")
        c["seeds"] = [c["seed"] + r for r in range(c["repeats"])]
        c.pop("seed")

    link = dict(raw.get("link", {}))
    kind = link.setdefault("kind", "symbols")
    if kind not in LINKS:
        check.fail(f"unknown link {kind!r}: choose one of {', '.join(LINKS)}", "link", None, "kind")
    for key in link:
        if key in RADIO_KEYS and kind != "ota":
            check.fail(f"a radio setting: only for kind = \"ota\" (this plan's link is {kind!r})", "link", None, key)
        if key in IMPAIRMENTS and kind != "sim":
            check.fail(f"an impairment of the simulated channel: only for kind = \"sim\" (not {kind!r})",
                       "link", None, key)
        if key in ("recordings",) and kind != "replay":
            check.fail("recordings are for kind = \"replay\"", "link", None, key)
        if key in ("sps", "rolloff") and kind == "symbols":
            check.fail("the symbol-level simulation has no pulse shape", "link", None, key)
    if kind == "ota":
        for need in ("tx", "bob"):
            if need not in link:
                check.fail(f"kind = \"ota\" needs {need} (a device URI: pluto:ip:…, soapy:driver=…, fake-pluto)",
                           "link", None, "kind")
    if kind == "replay":
        recs = link.get("recordings")
        if not recs:
            check.fail("kind = \"replay\" needs recordings = [{path = \"….sigmf-meta\", key = \"…\"}]", "link", None,
                       "kind")
        for r in recs:
            if not isinstance(r, dict) or "path" not in r or set(r) - {"path", "key"}:
                check.fail("each recording is {path = \"….sigmf-meta\", key = \"Bob's key file\"}", "link", None,
                           "recordings")
        if c["repeats"] != 1:
            check.fail("a replay is deterministic: repeats must be 1", "campaign", None, "repeats")
    if c["record"] and kind not in ("sim", "ota"):
        check.fail(f"SigMF recordings are made over kind = \"sim\" or \"ota\", not {kind!r}", "campaign", None,
                   "record")

    grid = {}
    for axis, values in raw.get("grid", {}).items():
        if axis not in LINK_AXES[kind]:
            why = {"snr_e_db": "Eve's SNR needs a framed link (awgn or sim); the symbol-level simulation gives Eve "
                               "Bob's SNR", "tx_gain_db": "a TX gain is set on radios (kind = \"ota\")",
                   "snr_db": "over radios the SNR is measured, not set: sweep tx_gain_db"}.get(
                axis, "an impairment of the simulated channel (kind = \"sim\")")
            if kind == "replay":
                why = "a replay has nothing to sweep: list the recordings"
            check.fail(f"not an axis of link {kind!r}: {why}", "grid", None, axis)
        grid[axis] = _axis(values, check, "grid", None, axis)
    if kind in ("symbols", "awgn", "sim") and "snr_db" not in grid:
        grid["snr_db"] = [10.0]
    if kind == "ota" and "tx_gain_db" not in grid:
        if "tx_gain" not in link and str(link.get("tx", "")).split(":")[0].lower() not in ("pluto", "fake-pluto"):
            # −10 dB is a Pluto's default (an attenuation); other radios' TX gain scales are their own
            check.fail("a TX radio other than a Pluto needs [link] tx_gain or a tx_gain_db grid (a USRP B210: "
                       "0 ... 89.75 dB, full output at the top)", "link", None, "tx")
        grid["tx_gain_db"] = [float(link.get("tx_gain", -10.0))]
    if kind == "ota" and "tx_gain" in link and "tx_gain_db" in raw.get("grid", {}):
        check.fail("the grid sweeps tx_gain_db: drop [link] tx_gain", "link", None, "tx_gain")

    deep = [dict(d) for d in raw.get("deepjscec", [])]
    base = [dict(b) for b in raw.get("baseline", [])]
    if not deep and not base and kind != "replay":
        check.fail("nothing to run: add [[deepjscec]] or [[baseline]] tables", "campaign")
    if kind == "replay" and (deep or base):
        check.fail("a replay's systems come from its recordings: drop [[deepjscec]]/[[baseline]]",
                   "deepjscec" if deep else "baseline", 0)
    for i, d in enumerate(deep):
        if "model" not in d:
            check.fail("needs model (a bundled name such as cifar10-lwe, or a checkpoint path)", "deepjscec", i)
        _check_model(d, kind, check, i)
        if "snr_db" in d:
            if "snr_db" not in LINK_AXES[kind]:
                check.fail(f"link {kind!r} sets no SNR", "deepjscec", i, "snr_db")
            d["snr_db"] = _axis(d["snr_db"], check, "deepjscec", i, "snr_db")
    for i, b in enumerate(base):
        _check_baseline(b, kind, check, i, grid)
    doc = {"campaign": c, "link": link, "grid": grid, "deepjscec": deep, "baseline": base}
    plan = Plan(path, text, doc)
    plan.cells = expand(doc)
    if not plan.cells:
        check.fail("the plan expands to no cells", "campaign")
    return plan


def _check_model(d: dict, kind: str, check: _Checker, i: int) -> None:
    from link.apps.alice import compatible_modes
    from models.checkpoint import load_checkpoint, resolve_model

    try:
        path = resolve_model(d["model"])
        config = load_checkpoint(path, kind="bob")["config"]
    except UserError as exc:
        check.fail(str(exc), "deepjscec", i, "model")
    d["model_path"] = str(Path(path).resolve())
    d["model_mode"] = config.get("cipher_mode", "lwe")
    d["model_sha256"] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    mode = d.get("mode")
    if mode is not None:
        if mode not in ("lwe", "lwe-pk", "mask"):
            check.fail("mode is lwe, lwe-pk or mask", "deepjscec", i, "mode")
        if kind == "symbols" and mode != d["model_mode"]:
            check.fail(f"the symbol-level simulation runs the model's own mode ({d['model_mode']})", "deepjscec", i,
                       "mode")
        if not compatible_modes(d["model_mode"], mode):
            check.fail(f"a model trained in {d['model_mode']} mode cannot serve {mode} mode", "deepjscec", i, "mode")
    d.setdefault("label", f"DeepJSCEC {Path(d['model']).stem}" + (f" ({mode})" if mode else ""))


def _check_baseline(b: dict, kind: str, check: _Checker, i: int, grid: dict) -> None:
    from baseline.report import parse_choices

    if kind == "awgn":
        check.fail("the baseline's AWGN simulation is kind = \"symbols\" (framed awgn runs DeepJSCEC only)",
                   "baseline", i)
    b.setdefault("codec", "heif")
    if "pairs" in b:
        if "mod" in b or "rate" in b:
            check.fail("give pairs or mod/rate, not both", "baseline", i, "pairs")
        pairs = b["pairs"]
        if not pairs or any(not (isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p))
                            for p in pairs):
            check.fail('pairs = [["bpsk", "1/2"], ["16qam", "3/4"], …]', "baseline", i, "pairs")
    else:
        mods = b.get("mod", "16qam")
        rates = b.get("rate", ["1/2", "3/4"])
        mods, rates = ([mods] if isinstance(mods, str) else mods), ([rates] if isinstance(rates, str) else rates)
        pairs = [[m, r] for m in mods for r in rates]
    try:
        (_,), _, _ = parse_choices([b["codec"]], [p[0] for p in pairs], [p[1] for p in pairs],
                                   b.get("ldpc_iters", 20))
    except UserError as exc:
        check.fail(str(exc), "baseline", i, "pairs" if "pairs" in b else "mod")
    from baseline.pipeline import parse_rate

    b["pairs"] = [[m.lower(), parse_rate(r)] for m, r in pairs]
    b.pop("mod", None)
    b.pop("rate", None)
    b.setdefault("rho", "1/6")
    try:
        from fractions import Fraction

        rho = float(Fraction(b["rho"]))
        assert 0 < rho <= 1
    except (ValueError, ZeroDivisionError, AssertionError):
        check.fail("a fraction in (0, 1], such as \"1/6\"", "baseline", i, "rho")
    b["rho_value"] = rho
    b.setdefault("ldpc_iters", 20)
    b.setdefault("decoder", "nms")
    if b["decoder"] not in ("nms", "bp"):
        check.fail("nms or bp", "baseline", i, "decoder")
    if "snr_db" in b:
        if "snr_db" not in LINK_AXES[kind]:
            check.fail(f"link {kind!r} sets no SNR", "baseline", i, "snr_db")
        b["snr_db"] = _axis(b["snr_db"], check, "baseline", i, "snr_db")
    if kind == "sim" and grid.get("snr_e_db"):
        pass     # the baseline has no Eve: its cells ignore Eve's SNR axis


def _product(axes: dict) -> list[dict]:
    out = [{}]
    for name, values in axes.items():
        out = [{**o, name: v} for o in out for v in values]
    return out


def expand(doc: dict) -> list[Cell]:
    """Every cell of the plan, in a fixed order (the store's ``ordinal``)."""
    c, link, grid = doc["campaign"], doc["link"], doc["grid"]
    kind = link["kind"]
    images, data = c["images"], c["data"]
    common = {"images": images, "data": data, "link": {k: v for k, v in link.items() if k != "recordings"}}
    if kind in ("sim", "ota", "awgn"):
        common.update(timeout_s=c["timeout_s"], equalizer_taps=c["equalizer_taps"], record=c["record"])
    cells: list[Cell] = []
    radio = kind == "ota"
    for r, seed in enumerate(c["seeds"]):
        for d in doc["deepjscec"]:
            axes = {a: v for a, v in grid.items()}
            if "snr_db" in d:
                axes["snr_db"] = d["snr_db"]
            for point in _product(axes):
                if kind != "symbols" and "snr_db" in point:
                    point.setdefault("snr_e_db", point["snr_db"])
                s = {**common, "model": d["model"], "model_path": d["model_path"], "model_sha256": d["model_sha256"],
                     "mode": d.get("mode") or d["model_mode"], "point": point}
                cells.append(Cell("deepjscec", d["label"], kind, s, r, seed, float(images) * (1 if kind == "symbols"
                                                                                             else 3), radio=radio))
        for b in doc["baseline"]:
            axes = {a: v for a, v in grid.items() if a != "snr_e_db"}
            snrs = b.get("snr_db", axes.pop("snr_db", None))
            axes.pop("snr_db", None)
            for mod, rate in b["pairs"]:
                label = b.get("label") or f"{b['codec'].upper()}+AES+LDPC {rate} {mod.upper()}"
                if len(b["pairs"]) > 1 and b.get("label"):
                    label = f"{b['label']} {rate} {mod.upper()}"
                for point in _product(axes):
                    s = {**common, "codec": b["codec"], "mod": mod, "rate": rate, "rho": b["rho"],
                         "rho_value": b["rho_value"], "ldpc_iters": b["ldpc_iters"], "decoder": b["decoder"],
                         "snrs_db": snrs, "point": point}
                    weight = images * (1.0 + 0.04 * len(snrs or [0]))
                    cells.append(Cell("baseline", label, kind, s, r, seed, weight, radio=radio))
    if kind == "replay":
        for rec in link["recordings"]:
            s = {**common, "recording": str(Path(rec["path"]).resolve()), "key": rec.get("key")}
            cells.append(Cell("replay", Path(rec["path"]).name, kind, s, 0, c["seeds"][0], float(images)))
    seen, unique = set(), []
    for cell in cells:
        if cell.cell_id not in seen:
            seen.add(cell.cell_id)
            unique.append(cell)
    for i, cell in enumerate(unique):
        cell.ordinal = i
    return unique
