"""Remote classification over the radio (paper Sec. V-B): a classifier's features over any link, labels back.

A classification model (``jscec train --task classify``; its card's ``task``) is a DeepJSCEC model whose
decoder gives class logits: Alice's encoder f_θ turns each image into k plaintext symbols (512 for a 32×32
image at ρ = 1/6), encrypted, framed and sent exactly like an image's (:mod:`link.apps.deepjscec`); Bob's
chain decrypts and his decoder g_φ predicts a label, Eve's attack classifier ḡ_ψ predicts one from the soft
ciphertext (:mod:`link.receiver.classify`). :class:`ClassifyApp` is :class:`~link.apps.deepjscec.DeepJscecApp`
with three differences:

* **what is sent**: labelled test images of a dataset (the CIFAR-10 copy by default; ``--data`` any labelled
  dataset, ``--images N`` the first N of its seeded test split — the split of the model's card, so ``jscec
  eval`` scores the same images), their labels and class names saved with the images in the run's
  ``reference.npz`` (``labels``, ``classes``), which a capture copies beside its recording;
* **what a recording says**: ``jscec:task`` = ``classify`` and ``jscec:classes`` (the names), so a replay knows
  the application and names the labels even without the reference file (then nothing is scored);
* **the report**: per image the true label, Bob's and Eve's (``labels``), accuracy per role (an image whose
  frames were lost counts as wrong), a uniform random guess, the requested and measured SNR per role
  (``snr``), and ``panel.png``: a grid of the images with Bob's and Eve's labels, green when right and red
  when wrong.

:func:`app_for` picks the application from the model's card (or a recording's ``jscec:task``); a ``--task``
given on the command line is checked against it.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jscec.errors import UserError
from link.apps.deepjscec import DeepJscecApp, ImageOptions, Setup, from_recording, prepare

TASK = "classify"
TASKS = ("image", TASK)
#: Images a classification run sends when ``--images`` is not given.
DEFAULT_IMAGES = 16
#: Images shown in the panel's grid and printed (the JSON keeps every one).
PANEL_CELLS = 32


@dataclass
class LabelledSetup(Setup):
    """A classification run's transmission: :class:`~link.apps.deepjscec.Setup` and the truth."""

    labels: np.ndarray | None = None    # true label per image index (−1: unknown); None or empty: none known
    classes: list | None = None         # class names (labels index into them)


def task_of(model: str) -> str:
    """The task on a model's card (``image`` or ``classify``)."""
    from models.checkpoint import load_checkpoint, resolve_model

    return load_checkpoint(resolve_model(model), kind="bob").get("config", {}).get("task", "image")


def app_for(opts: ImageOptions, task: str | None = None, recording: str | None = None, log=print):
    """:class:`ClassifyApp` for a classifier, :class:`~link.apps.deepjscec.DeepJscecApp` for an image model.

    The model is ``opts.model``, or for a replay (``recording``) the recording's, whose ``jscec:task`` says the
    task (recordings made before classification: images). ``task`` (``--task``) must agree with it.
    """
    if task is not None and task not in TASKS:
        raise UserError(f"--task takes {' or '.join(TASKS)}, got {task!r}")
    if recording is not None:
        from link.links.replay import recording_info

        found = recording_info(recording).global_info.get("jscec:task", "image")
        if opts.model and task_of(opts.model) != found:
            raise UserError(f"the recording holds {_a(found)}'s frames; --model {opts.model} is "
                            f"{_a(task_of(opts.model))}")
        where = "the recording's model"
    else:
        found = task_of(opts.model)
        where = opts.model
    if task is not None and task != found:
        hint = " (jscec train --task classify)" if task == TASK else ""
        raise UserError(f"--task {task}: {where} is {_a(found)}, not {_a(task)}{hint}")
    return ClassifyApp(opts, log) if found == TASK else DeepJscecApp(opts, log)


def _a(task: str) -> str:
    return "a classifier" if task == TASK else "an image model"


def labelled_images(data: str | None, count: int | None, *, split_seed: int = 0, channels: int = 3,
                    num_classes: int | None = None) -> tuple[list[np.ndarray], np.ndarray, list[str], str]:
    """The first ``count`` images of a labelled dataset's seeded test split (``data`` None: the CIFAR-10
    copy), their labels, the class names and a description."""
    from models.datasets import load_dataset, split_indices

    count = DEFAULT_IMAGES if count is None else count
    if count < 1:
        raise UserError("--images must be at least 1")
    ds = load_dataset(None if data in (None, "", "default") else data)
    if len(ds.classes) < 2:
        raise UserError(f"{ds.name} has no class labels; classification needs a labelled dataset "
                        "(train/<class>/*.jpg, CIFAR-10 batches, IDX with labels)")
    if num_classes is not None and len(ds.classes) != num_classes:
        raise UserError(f"{ds.name} has {len(ds.classes)} classes; the model tells {num_classes} apart")
    test = split_indices(len(ds.images), seed=split_seed)["test"][:count]
    images = ds.images[test]
    if images.shape[-1] != channels:
        if images.shape[-1] != 1:
            raise UserError(f"{ds.name} has {images.shape[-1]}-channel images; the model takes {channels}")
        images = np.repeat(images, channels, axis=-1)
    return ([np.ascontiguousarray(im) for im in images], ds.labels[test].astype(np.int64), list(ds.classes),
            f"{ds.name} test split, first {len(test)}")


def save_labelled(path: Path, images: list[np.ndarray], labels, classes) -> Path:
    """A run's ``reference.npz`` with the truth: ``image_<index>``, ``labels`` (−1: unknown), ``classes``."""
    arrays = {f"image_{i}": im for i, im in enumerate(images)}
    if labels is not None:
        arrays["labels"] = np.asarray(labels, np.int64)
    if classes:
        arrays["classes"] = np.asarray(classes, dtype=str)
    np.savez(path, **arrays)
    return Path(path)


def load_labels(path: Path) -> tuple[np.ndarray | None, list | None]:
    """``(labels, classes)`` of a ``reference.npz`` (None where it holds none)."""
    try:
        with np.load(path) as z:
            labels = np.asarray(z["labels"], np.int64) if "labels" in z.files else None
            classes = [str(c) for c in z["classes"]] if "classes" in z.files else None
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read reference labels {path}: {str(exc).splitlines()[0]}") from None
    return labels, classes


class ClassifyApp(DeepJscecApp):
    """A classifier's features over any link: Alice sends labelled images, Bob and Eve give labels."""

    name = "DeepJSCEC classification"

    def __init__(self, opts: ImageOptions = ImageOptions(), log=print, labels=None, classes=None):
        super().__init__(opts, log)
        self.labels, self.classes = labels, classes    # the truth of opts.image_arrays (programmatic use)

    def transmission(self, link, out_dir: Path) -> LabelledSetup:
        if not link.sends:
            return self._replayed(link.info, Path(out_dir))
        from models.checkpoint import load_checkpoint, resolve_model

        o = self.opts
        if o.inputs:
            raise UserError("a classifier sends a labelled dataset's test images (--data [PATH]); --input files "
                            "carry no labels")
        ck = load_checkpoint(resolve_model(o.model), kind="bob")
        cfg, card = ck.get("config", {}), ck.get("card", {})
        if cfg.get("task", "image") != TASK:
            raise UserError(f"{o.model} is an image model, not a classifier")
        if o.image_arrays is not None:
            images, labels, classes = o.image_arrays, self.labels, self.classes
            source = f"{len(images)} given images"
        else:
            images, labels, classes, source = labelled_images(
                o.data, o.images, split_seed=int(card.get("split_seed", 0)),
                channels=int(cfg.get("image_channels", 3)), num_classes=cfg.get("num_classes"))
            if card.get("dataset") and not source.startswith(card["dataset"]):
                self.log(f"warning: {o.model} was trained on {card['dataset']}; sending {source}")
        setup = prepare(model=o.model, mode=o.mode, data=None, images=None, key=o.key, out_dir=out_dir,
                        subframes=o.subframes, threads=o.threads, sps=o.sps or 4, rolloff=o.rolloff or 0.25,
                        image_arrays=images, eve_game=o.eve_game and "eve" in o.chains, keep_frames=o.keep_frames)
        save_labelled(setup.ref_path, setup.images, labels, classes)
        return LabelledSetup(**{**_fields(setup), "source": source}, labels=labels, classes=classes)

    def _replayed(self, info, out_dir: Path) -> LabelledSetup:
        """What a classification recording says was sent; without its reference file (no truth), the labels are
        given and not scored."""
        from link.capture import reference_path

        o, g = self.opts, info.global_info
        missing = not o.reference and not reference_path(info.meta_path).is_file()
        if missing:
            self.log(f"no reference labels beside {info.name}: Bob's and Eve's labels are given, not scored")

        def log(line: str) -> None:      # from_recording's own line on the missing images is said above
            if not (missing and line.startswith("no reference images")):
                self.log(line)

        setup = from_recording(info, o, log)
        if task_of(str(setup.model_path)) != TASK:
            raise UserError(f"{setup.model_path} is an image model; the recording holds a classifier's frames")
        labels, classes = load_labels(setup.ref_path) if setup.ref_path is not None else (None, None)
        return LabelledSetup(**_fields(setup), labels=labels, classes=classes or g.get("jscec:classes"))

    def recording_fields(self, setup: LabelledSetup, sample_rate: float) -> dict:
        fields = super().recording_fields(setup, sample_rate)
        fields["description"] = (f"DeepJSCEC classification link: Bob's RX input, {setup.frames_sent} frames of "
                                 f"{len(setup.images)} labelled images")
        fields.update({"task": TASK, "classes": list(setup.classes or [])})
        return fields

    def write(self, report: dict, setup: LabelledSetup, results: dict, out_dir: Path) -> None:
        """Labels and accuracy into the report; the label grid, constellations and ``result.json``."""
        from link.plots import constellation_plot, label_grid

        add_labels(report, setup, results)
        out_dir = Path(out_dir)
        cells = []
        for row in report["labels"][:PANEL_CELLS]:
            i = row["index"]
            cells.append({"image": setup.images[i] if i < len(setup.images or ()) else None, "index": i,
                          "true": row["true"], **{r: row[r] for r in results}})
        label_grid(cells, out_dir / "panel.png", title=_title(report))
        constellation_plot({f"{who.capitalize()} (MER {_fmt(report[who].get('mer_db'), '.1f')} dB)":
                            results[who]["constellation"] for who in results}, out_dir / "constellation.png",
                           title="synchronised 4096-QAM payload symbols")
        report["files"] = {"panel": str(out_dir / "panel.png"), "constellation": str(out_dir / "constellation.png")}
        with open(out_dir / "result.json", "w") as f:
            json.dump(report, f, indent=1)
            f.write("\n")


def _fields(setup: Setup) -> dict:
    return {f.name: getattr(setup, f.name) for f in dataclasses.fields(Setup)}


def add_labels(report: dict, setup: LabelledSetup, results: dict) -> dict:
    """The classification part of a run's report: ``task``, ``classes``, ``random_guess`` (as ``jscec eval``'s: a
    uniform guess drawn per labelled image, ``accuracy``, and its ``chance``), per role its
    ``accuracy``, ``images_classified``/``images_labelled`` and SNR (``snr``: requested and measured), and
    ``labels``: per image index its true label and Bob's and Eve's, as class names (None: unknown or lost)."""
    classes = list(setup.classes or [])
    truth = {} if setup.labels is None else {i: int(v) for i, v in enumerate(setup.labels) if v >= 0}

    def name(label):
        if label is None:
            return None
        return classes[label] if 0 <= label < len(classes) else str(label)

    rows = {role: {r["index"]: r for r in results[role]["summary"].get("images", [])} for role in results}
    indices = sorted(set(range(len(setup.images or ()))) | set(truth) | {i for per in rows.values() for i in per})
    report["task"] = TASK
    report["classes"] = classes
    if not classes:
        report["random_guess"] = None
    elif truth:       # as jscec eval reports it: a uniform guess drawn per labelled image, and the chance
        from models.evaluate import random_guess

        report["random_guess"] = random_guess(np.array(list(truth.values())), len(classes), report.get("seed", 0))
    else:
        report["random_guess"] = {"chance": 1.0 / len(classes)}
    requested = _requested_snr(report)
    report["snr"] = {}
    for role in ("bob", "eve"):
        if role not in results:
            continue
        s = results[role]["summary"]
        report[role].update({k: s.get(k) for k in ("accuracy", "images_classified", "images_labelled")})
        report["snr"][role] = {"requested_db": requested[role], "measured_db": s.get("snr_db")}
    report["labels"] = [{"index": i, "true": name(truth.get(i)),
                         **{role: name(rows[role].get(i, {}).get("label")) for role in results}} for i in indices]
    return report


def _requested_snr(report: dict) -> dict:
    """The SNR the run asked for per role: set on a simulated link, ``--snr-b`` over the air, the recorded
    run's on a replay (None where nothing was asked for)."""
    if not report.get("snr_estimated"):
        return {"bob": report.get("snr_b_db"), "eve": report.get("snr_e_db")}
    if report.get("link") == "replay":
        return {"bob": (report.get("recording") or {}).get("recorded_snr_b_db"), "eve": None}
    return {"bob": report.get("snr_b_requested_db"), "eve": None}


def _fmt(v, spec: str) -> str:
    if v is None:
        width = spec.split(".")[0]
        return "—".rjust(int(width) if width.isdigit() else 0)
    return format(v, spec)


def _pct(v) -> str:
    return "—" if v is None else f"{100 * v:.1f} %"


def _title(report: dict) -> str:
    parts = [f"{report['model']} ({report['mode']})"]
    for role in ("bob", "eve"):
        snr = report.get("snr", {}).get(role)
        if snr is not None:
            acc = report[role].get("accuracy")
            parts.append(f"{role.capitalize()} {'unscored' if acc is None else _pct(acc)} at "
                         f"{_fmt(snr['measured_db'], '.1f')} dB")
    return " — ".join(parts)


def table(report: dict) -> str:
    """Bob's and Eve's accuracy, SNR (requested, measured), MER and frames as a small fixed-width table."""
    lines = [f"{'':6}{'SNR set':>8}{'SNR meas':>9}{'MER dB':>8}{'accuracy':>10}{'labels':>8}{'sent':>6}{'ok':>6}"
             "  dropped"]
    for who in ("bob", "eve"):
        if who not in report.get("snr", {}):
            continue
        r, snr = report[who], report["snr"][who]
        drops = ", ".join(f"{k}: {v}" for k, v in r.get("frames_dropped", {}).items()) or "0"
        lines.append(f"{who.capitalize():6}{_fmt(snr['requested_db'], '8.1f')}{_fmt(snr['measured_db'], '9.2f')}"
                     f"{_fmt(r.get('mer_db'), '8.2f')}{_pct(r.get('accuracy')):>10}{r.get('images_classified') or 0:8d}"
                     f"{r.get('frames_sent') or 0:6d}{r.get('frames_ok', 0):6d}  {drops}")
    guess = report.get("random_guess")
    if guess is not None:
        drawn = f"{_pct(guess['accuracy'])}, " if "accuracy" in guess else ""
        lines.append(f"random guess: {drawn}chance {_pct(guess['chance'])} ({len(report['classes'])} classes)")
    return "\n".join(lines)


def label_lines(report: dict, limit: int = PANEL_CELLS) -> str:
    """Per image: index, true label, Bob's and Eve's (``*``: wrong), the first ``limit`` of them."""
    roles = [r for r in ("bob", "eve") if r in report.get("snr", {})]
    width = max([5] + [len(str(v)) for row in report["labels"][:limit] for v in row.values()]) + 2
    lines = [f"{'image':>6}  {'true':<{width}}" + "".join(f"{r.capitalize():<{width}}" for r in roles)]
    for row in report["labels"][:limit]:
        cells = []
        for r in roles:
            label = row[r]
            mark = "*" if row["true"] is not None and label != row["true"] else ""
            cells.append(f"{('lost' if label is None else label) + mark:<{width}}")
        lines.append(f"{row['index']:>6}  {row['true'] or '?':<{width}}" + "".join(cells))
    rest = len(report["labels"]) - limit
    if rest > 0:
        lines.append(f"… {rest} more in result.json (labels)")
    return "\n".join(lines)
