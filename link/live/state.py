"""The hub's view of the runs: messages in (:mod:`link.live.publish`), page updates and PNGs out.

:class:`LiveState` folds each message into a :class:`RunView` (one per run: the runner's process id
and its run number), queues the page's updates, and on :meth:`LiveState.flush` (the hub calls it
≤ 0.1 s apart) coalesces them — a run's frames of one receiver into one update, only the latest
spectrum — and appends them to a numbered log the page's event streams read from. A page starts from
:meth:`LiveState.snapshot` (everything it draws, bounded) and follows the log from its ``seq``.

Bounded: per receiver the figures against time keep ≤ :data:`MAX_POINTS` points (halved by taking
every other one when full), the constellation the last :data:`CONSTELLATION_FRAMES` frames, the
pixels the last :data:`KEEP_IMAGES` decoded images; the log its last :data:`LOG_KEEP` updates (a page
further behind starts again from a snapshot); :data:`KEEP_RUNS` runs.
"""
from __future__ import annotations

import io
import json
import threading
import time
from collections import Counter, OrderedDict, deque

import numpy as np

MAX_POINTS = 4000
CONSTELLATION_FRAMES = 12
KEEP_IMAGES = 64
IMAGES_IN_SNAPSHOT = 48
LOG_KEEP = 4000
KEEP_RUNS = 40
#: FFT size of the spectrum (Welch: Hann window, segments averaged).
NFFT = 512
#: Longest side of an image's PNG (larger ones are scaled down).
PNG_MAX_SIDE = 256
_SERIES = ("t", "mer", "snr", "cfo", "sro")


def _r(v, nd=3):
    """``v`` rounded to ``nd`` digits; None for None, NaN or infinity (JSON has neither)."""
    if v is None:
        return None
    v = float(v)
    return round(v, nd) if np.isfinite(v) else None


#: Weight of a new spectrum in the running average the page draws.
SPECTRUM_ALPHA = 0.3


def psd(x: np.ndarray, nfft: int = NFFT) -> np.ndarray:
    """Welch power spectral density of complex samples (Hann window, half-overlapping segments
    averaged, centred on 0: bin k is frequency (k − n/2)/n of the sample rate; n = ``nfft`` or less)."""
    x = np.asarray(x, np.complex64)
    n = min(nfft, 1 << int(np.log2(max(x.size, 16))))
    starts = np.arange(0, x.size - n + 1, n // 2)[-64:]
    segs = x[starts[:, None] + np.arange(n)]
    w = np.hanning(n).astype(np.float32)
    p = (np.abs(np.fft.fft(segs * w, axis=1)) ** 2).mean(axis=0) / float((w ** 2).sum())
    return np.fft.fftshift(p)



class RoleView:
    """One receiver (Bob or Eve) of a run."""

    def __init__(self):
        self.received = 0
        self.ok = 0
        self.drops = Counter()
        self.series = {k: [] for k in _SERIES}
        self.constellation = deque(maxlen=CONSTELLATION_FRAMES)
        self.spectrum = None
        self._psd = None                                   # running average (linear power)
        self.sync = {}
        self.scores: dict[int, dict] = {}
        self.decoded: list[int] = []                       # image indices in decode order
        self.pixels: OrderedDict[int, tuple] = OrderedDict()   # index → (shape, bytes), the last KEEP_IMAGES
        self.pngs: dict[int, bytes] = {}

    def add_frame(self, t: float, rec: dict, points: list) -> list:
        self.received += 1
        ok = bool(rec.get("ok"))
        if ok:
            self.ok += 1
        else:
            self.drops[str(rec.get("reason") or "dropped")] += 1
        row = [_r(t), rec.get("counter"), rec.get("image"), int(ok), _r(rec.get("mer_db"), 2),
               _r(rec.get("snr_db"), 2), _r(rec.get("cfo"), 5), _r(rec.get("sro_ppm"), 2),
               None if ok else rec.get("reason")]
        if ok:
            for k, v in zip(_SERIES, (row[0], row[4], row[5], row[6], row[7])):
                self.series[k].append(v)
            if len(self.series["t"]) > MAX_POINTS:
                for k in _SERIES:
                    self.series[k] = self.series[k][::2]
            if points:
                self.constellation.append(points)
        return row

    def counters(self) -> dict:
        return {"received": self.received, "ok": self.ok, "dropped": dict(self.drops), "decoded": len(self.decoded)}

    def image_rows(self, indices, classes=None) -> list:
        """[index, PSNR, SSIM, label, confidence, correct] per image: a classifier's chain gives the last
        three (the label as its class name when the run's reference names the classes), an image chain
        the first two."""
        rows = []
        for i in indices:
            sc = self.scores.get(i, {})
            label = sc.get("label")
            if label is not None and classes is not None and 0 <= int(label) < len(classes):
                label = classes[int(label)]
            correct = sc.get("correct")
            rows.append([i, _r(sc.get("psnr"), 4), _r(sc.get("ssim"), 4), label, _r(sc.get("confidence"), 3),
                         None if correct is None else bool(correct)])
        return rows

    def full(self, classes=None) -> dict:
        return {"counters": self.counters(), "series": self.series, "constellation": list(self.constellation),
                "spectrum": self.spectrum, "sync": self.sync,
                "images": self.image_rows(self.decoded[-IMAGES_IN_SNAPSHOT:], classes)}


class RunView:
    def __init__(self, run_id: str, src: str, t0: float, meta: dict | None = None):
        self.id = run_id
        self.src = src
        self.t0 = t0
        self.meta = dict(meta or {})
        self.ended = None
        self.error = None
        self.report = None
        self.roles: dict[str, RoleView] = {}
        self._reference = None
        self._classes = False             # not read yet

    def role(self, name: str) -> RoleView:
        if name not in self.roles:
            self.roles[name] = RoleView()
        return self.roles[name]

    def public(self) -> dict:
        return {"id": self.id, "meta": self.meta, "started": self.t0, "ended": self.ended, "error": self.error,
                "report": self.report}

    def full(self) -> dict:
        classes = self.classes()
        return {**self.public(), "roles": {name: r.full(classes) for name, r in self.roles.items()}}

    def classes(self) -> list[str] | None:
        """A classification run's class names (``classes`` of its reference file), else None."""
        if self._classes is False:
            self._classes = None
            path = self.meta.get("reference")
            if path:
                try:
                    with np.load(path) as z:
                        if "classes" in z.files:
                            self._classes = [str(c) for c in z["classes"]]
                except (OSError, ValueError):
                    pass
        return self._classes

    def reference(self, index: int):
        """The transmitted image ``index`` from the run's reference file (read when first asked)."""
        path = self.meta.get("reference")
        if not path:
            return None
        try:
            if self._reference is None:
                self._reference = np.load(path)
            return self._reference[f"image_{int(index)}"]
        except (OSError, KeyError, ValueError):
            return None


def _png(img: np.ndarray) -> bytes:
    from PIL import Image

    im = Image.fromarray(np.ascontiguousarray(img, np.uint8).reshape(img.shape[0], img.shape[1], -1).squeeze())
    if max(im.size) > PNG_MAX_SIDE:
        im.thumbnail((PNG_MAX_SIDE, PNG_MAX_SIDE))
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


class LiveState:
    """Everything the hub knows; thread-safe (one lock; the event streams wait on ``changed``)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.runs: OrderedDict[str, RunView] = OrderedDict()
        self.current: dict[str, str] = {}     # src → its current run's id
        self.count: Counter = Counter()        # src → runs started
        self.campaign = None
        self.closed = False
        self.seq = 0
        self.log: deque = deque(maxlen=LOG_KEEP)   # (seq, update)
        self.pending: list = []
        self.messages = 0                      # messages folded in

    # -- messages in -------------------------------------------------------------------------------
    def apply(self, head: dict, blob: bytes = b"") -> None:
        with self.lock:
            self.messages += 1
            self._apply(head, blob)

    def _run_for(self, src: str, t: float) -> RunView:
        rid = self.current.get(src)
        if rid is None or rid not in self.runs:
            rid = self._new_run(src, t, {})
        return self.runs[rid]

    def _new_run(self, src: str, t: float, meta: dict) -> str:
        self.count[src] += 1
        rid = f"{src}-{self.count[src]}"
        self.runs[rid] = RunView(rid, src, t, meta)
        self.current[src] = rid
        while len(self.runs) > KEEP_RUNS:
            old = next(iter(self.runs))
            self.runs.pop(old)
            self.current = {s: r for s, r in self.current.items() if r != old}
        return rid

    def _apply(self, head: dict, blob: bytes) -> None:
        kind, src, t = head.get("kind"), str(head.get("src", "?")), float(head.get("t", time.time()))
        if kind == "run":
            meta = {k: v for k, v in head.items() if k not in ("kind", "src", "t")}
            run = self.runs[self._new_run(src, t, meta)]
            self.pending.append({"type": "run", "run": run.public()})
            return
        if kind == "campaign":
            c = self.campaign = self.campaign or {"lines": [], "done": 0, "total": None, "failed": 0}
            for k in ("plan", "total", "done", "failed", "store", "running"):
                if k in head:
                    c[k] = head[k]
            if head.get("line"):
                c["lines"] = (c["lines"] + [head["line"]])[-8:]
            if head.get("event") == "end":
                c["ended"] = t
            self.pending.append({"type": "campaign", "campaign": c})
            return
        run = self._run_for(src, t)
        if kind in ("run_end", "report"):
            if kind == "run_end":
                run.ended = t
                run.error = head.get("error")
            else:
                run.report = head.get("report")
            self.pending.append({"type": "run", "run": run.public()})
            return
        role_name = str(head.get("role", "?"))
        role = run.role(role_name)
        if kind == "frame":
            pts = np.frombuffer(blob, np.complex64) if blob else np.zeros(0, np.complex64)
            points = np.round(pts.view(np.float32), 3).tolist()
            row = role.add_frame(t - run.t0, head.get("rec") or {}, points)
            self.pending.append({"type": "frame", "run": run.id, "role": role_name, "row": row, "points": points,
                                 "sent": t})
        elif kind == "spectrum":
            if blob:
                p = psd(np.frombuffer(blob, np.complex64))
                avg = role._psd
                role._psd = p if avg is None or avg.size != p.size else (1 - SPECTRUM_ALPHA) * avg + SPECTRUM_ALPHA * p
                rate = run.meta.get("sample_rate_hz")
                role.spectrum = {"psd": np.round(10 * np.log10(role._psd + 1e-20), 1).tolist(), "span": rate or 1.0,
                                 "unit": "Hz" if rate else "cycles/sample"}
            role.sync = {k: _r(v, 4) for k, v in (head.get("stats") or {}).items()}
            self.pending.append({"type": "spectrum", "run": run.id, "role": role_name, "spectrum": role.spectrum,
                                 "sync": role.sync})
        elif kind == "image":
            index = int(head["index"])
            role.pixels[index] = (tuple(head["shape"]), bytes(blob))
            role.pngs.pop(index, None)
            while len(role.pixels) > KEEP_IMAGES:
                old, _ = role.pixels.popitem(last=False)
                role.pngs.pop(old, None)
            role.decoded.append(index)
            self.pending.append({"type": "images", "run": run.id, "role": role_name,
                                 "rows": role.image_rows([index], run.classes()), "decoded": len(role.decoded),
                                 "sent": t})
        elif kind == "scores":
            rows = head.get("rows") or []
            for r in rows:
                index = int(r["index"])
                if "label" in r and index not in role.scores:   # a classifier's chain decodes no image
                    role.decoded.append(index)
                role.scores.setdefault(index, {}).update({k: v for k, v in r.items() if k != "index"})
            self.pending.append({"type": "images", "run": run.id, "role": role_name,
                                 "rows": role.image_rows([int(r["index"]) for r in rows], run.classes()),
                                 "decoded": len(role.decoded), "sent": t})

    # -- updates out -------------------------------------------------------------------------------
    def flush(self) -> int:
        """Coalesce the queued updates into the log (one per kind and receiver); wake the streams."""
        with self.lock:
            return self._flush()

    def _flush(self) -> int:
        if not self.pending:
            return 0
        out, frames, spectra = [], {}, {}
        for u in self.pending:
            key = (u.get("run"), u.get("role"))
            if u["type"] == "frame":
                f = frames.get(key)
                if f is None:
                    f = frames[key] = {"type": "frames", "run": u["run"], "role": u["role"], "rows": [],
                                       "points": [], "sent": u["sent"]}
                    out.append(f)
                f["rows"].append(u["row"])
                if u["points"]:
                    f["points"].append(u["points"])
                f["sent"] = max(f["sent"], u["sent"])
            elif u["type"] == "spectrum":
                if key not in spectra:
                    spectra[key] = u
                    out.append(u)
                else:
                    spectra[key].update(u)
            else:
                out.append(u)
        for f in frames.values():
            f["points"] = f["points"][-CONSTELLATION_FRAMES:]
        self.pending = []
        for u in out:
            self.seq += 1
            self.log.append((self.seq, json.dumps(u, allow_nan=False, separators=(",", ":"))))
        self.changed.notify_all()
        return len(out)

    def since(self, seq: int) -> tuple[int, list[str] | None]:
        """``(latest seq, updates after seq)``; None when the log no longer reaches back to ``seq``.
        Call with ``lock`` held."""
        if seq >= self.seq:
            return self.seq, []
        if not self.log or self.log[0][0] > seq + 1:
            return self.seq, None
        return self.seq, [u for s, u in self.log if s > seq]

    def snapshot(self) -> dict:
        """Everything the page draws, at ``seq``: the updates queued so far are flushed first, so a page
        that follows the log from ``seq`` counts each message once."""
        with self.lock:
            self._flush()
            return {"seq": self.seq, "runs": [r.full() for r in self.runs.values()], "campaign": self.campaign,
                    "closed": self.closed, "now": time.time()}

    def snapshot_json(self) -> bytes:
        snap = self.snapshot()
        return json.dumps(snap, allow_nan=False, separators=(",", ":")).encode()

    def png(self, run_id: str, role: str, index: int) -> bytes | None:
        """The PNG of a decoded image (``role`` bob/eve, while among the last kept) or of the
        transmitted one (``role`` original)."""
        with self.lock:
            run = self.runs.get(run_id)
            if run is None:
                return None
            if role == "original":
                img = run.reference(index)
                return None if img is None else _png(img)
            r = run.roles.get(role)
            if r is None or index not in r.pixels:
                return None
            if index in r.pngs:
                return r.pngs[index]
            shape, data = r.pixels[index]
        png = _png(np.frombuffer(data, np.uint8).reshape(shape))    # outside the lock: the messages go on
        with self.lock:
            if index in r.pixels:
                r.pngs[index] = png
        return png
