"""The DeepJSCEC image application: what Alice sends and how Bob's and Eve's chains score it.

* :class:`DeepJscecApp` — the application the runner (:func:`link.runner.run`) drives over any link;
* :func:`prepare` — the sending side: Bob's model, the keys (fresh ones saved with mode 0600, or a
  key file), the images, their reference copy (``reference.npz``) and Alice's frame symbols as one
  stream with idle lead and tail, made image by image as the link sends it (:class:`link.apps.alice.FrameSource`);
* :func:`from_recording` — the same facts read back from a recording's ``jscec:`` metadata (replay);
* :class:`Receivers` — Bob's and Eve's chains as separate processes (``python -m link.receiver``),
  started on the frame-PDU addresses of an RX flowgraph, told when the stream ended, and gathered;
* :func:`side` / :func:`link_report` — the JSON every run writes (``bob``/``eve`` summaries, mode,
  model, images, key id — never a key or an error seed).

Frames of ``lwe`` and ``mask`` are authenticated (:mod:`crypto.frame_auth`): Bob requires their tags on
every sending link and keeps his replay window's floor beside his key; replaying a recording, he keeps
the window in his process only and, for a recording made before frames carried tags (no
``jscec:frame_auth``), decodes untagged frames (``--auth legacy``). On a sending link with Eve's chain,
the run also plays the IND-CPA game on its own frames (:mod:`link.apps.eve_game`; ``eve_game``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jscec.errors import UserError
from link.output import load_reference, save_reference
from radio.pulse import PulseShape

ROLES = ("bob", "eve")
#: A sending run keeps its frames (``Setup.frames``, for tests and inspection) when they hold at most this many
#: symbols (2 MiB) unless told otherwise; larger runs hold none of them (bounded memory).
KEEP_FRAMES_SYMBOLS = 1 << 18
#: ``jscec:frame_auth`` of a capture whose frames carry tags (crypto.frame_auth; the runner's replay requires them).
AUTH_FIELD = {"tag": "HMAC-SHA256 truncated to 64 bits", "check_symbols": "min(16, payload_len // 64)",
              "frame_version": 2}


@dataclass
class ImageOptions:
    """What the DeepJSCEC application sends (sending links) or how it reads a recording (replay)."""

    model: str | None = "cifar10-lwe"   # replay: None = the recording's jscec:model_path / jscec:model
    mode: str | None = None             # cipher mode of the link; None: the model's (replay: the key's/recording's)
    data: str | None = None             # None: scikit-image sample photographs
    images: int | None = 3              # None: every input image (else 3)
    inputs: list | None = None          # image files and folders to send (instead of photographs or a dataset)
    key: str | None = None              # Bob's key file; None: fresh random keys saved in the output folder
    seed: int = 0                       # recorded in the report (frame counters come from the key's counter state)
    subframes: int = 4
    threads: int = 1
    sps: int | None = None              # None: 4 (replay: the recording's)
    rolloff: float | None = None        # None: 0.25 (replay: the recording's)
    chains: tuple = ROLES               # the receive chains that run
    reference: str | None = None        # replay: the reference images (default <base>.reference.npz)
    image_arrays: list | None = None    # send these uint8 (H, W, 3) images instead of loading any
    eve_game: bool = True               # Eve guesses per frame which of two candidate images was sent
    keep_frames: bool | None = None     # keep the frames sent in Setup.frames (None: for small runs only)


@dataclass
class Setup:
    """One run's transmission: sent now (:func:`prepare`) or read from a recording (:func:`from_recording`)."""

    model_path: Path
    mode: str
    params: str | None
    k: int
    key_id: object
    key_path: Path | None     # Bob's secret key file (mode 0600); None: no Bob
    images: list | None       # uint8 (H, W, 3): what was sent; None: a replay without reference images
    source: str               # where the images came from
    ref_path: Path | None     # reference.npz of the images (image_<index>); None: none (nothing scored)
    pulse: PulseShape
    frames_sent: int | None   # None: unknown (a recording that does not say)
    model: object = None      # models.codec.DeepJscec (Bob's), when sending
    keys: object = None       # crypto.cipher.CipherKeys, when known
    frames: list | None = None        # radio frames (complex64 symbols) as they are sent, when kept (keep_frames)
    stream: object = None             # link.sender.SymbolStream of the frames, made as sent (or an array)
    counters: object = None           # crypto.nonce_state.CounterState the frames' counters came from
    game: object = None               # link.apps.eve_game.Game (the hidden order; filled as the frames are made)
    game_path: Path | None = None     # Eve's pairs, written as the frames are made (link.apps.eve_game.GameWriter)
    frame_auth: bool = True           # frames of lwe/mask carry tags (False: a recording made before they did)

    @property
    def model_name(self) -> str:
        return self.model_path.stem


def prepare(*, model: str, mode: str | None, data: str | None, images: int | None, key: str | None, out_dir: Path,
            subframes: int = 4, threads: int = 1, sps: int = 4, rolloff: float = 0.25,
            image_arrays: list[np.ndarray] | None = None, inputs: list | None = None, eve_game: bool = False,
            keep_frames: bool | None = None) -> Setup:
    """Load the model, keys and images and plan Alice's frames (:class:`link.apps.alice.FrameSource`) under frame
    counters reserved from the key's counter state (persisted before this returns, so before anything is sent);
    the frames themselves are made as the link sends them (``Setup.stream``). ``keep_frames``: keep them in
    ``Setup.frames`` as they are made (None: for a run of at most :data:`KEEP_FRAMES_SYMBOLS` symbols)."""
    import torch

    from crypto.nonce_state import CounterState

    from link.apps.alice import Alice, FrameSource
    from link.apps.eve_game import GameWriter
    from link.apps.images import load_images
    from link.apps.keys import prepare_keys
    from models.checkpoint import resolve_model
    from models.evaluate import load_bob

    torch.set_num_threads(threads)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = resolve_model(model)
    bob_model = load_bob(path)
    keys, key_path = prepare_keys(bob_model.config, key, out_dir, mode)
    if image_arrays is not None:
        imgs, source = [np.ascontiguousarray(im) for im in image_arrays], f"{len(image_arrays)} given images"
    else:
        imgs, source = load_images(data, images, inputs=inputs)
    ref_path = save_reference(out_dir / "reference.npz", imgs)
    counters = CounterState(key_path, keys.key_id)
    alice = Alice(bob_model, keys, path.stem, subframes=subframes, counters=counters)
    game = GameWriter(out_dir / "eve-pairs.bin", keys.k) if eve_game else None
    source_frames = FrameSource(alice, imgs, game=game, keep_frames=keep_frames)   # reserves the run's counters
    if keep_frames is None and source_frames.symbols_total <= KEEP_FRAMES_SYMBOLS:
        source_frames.frames_kept = []
    return Setup(path, keys.mode, bob_model.config.cipher_params, keys.k, keys.key_id, key_path, imgs, source,
                 ref_path, PulseShape(sps, rolloff), source_frames.frames_total, model=bob_model, keys=keys,
                 frames=source_frames.frames_kept, stream=source_frames.stream(), counters=counters,
                 game=None if game is None else game.game, game_path=None if game is None else game.path)


def from_recording(info, opts: ImageOptions, log=print) -> Setup:
    """What a recording (:class:`link.links.replay.RecordingInfo`) says was sent, checked before anything runs:
    its pulse, model, mode and frame count from ``jscec:`` metadata (``opts`` overrides), Bob's key
    (``opts.key``, needed for his chain) and the reference images — when there are none beside the recording
    (and no ``opts.reference``), Bob's and Eve's images are decoded and saved but not scored."""
    from crypto.cipher import CipherKeys
    from link.capture import reference_path
    from models.checkpoint import resolve_model

    g, name = info.global_info, info.name
    if g.get("jscec:payload") == "digital-baseline":
        raise UserError(f"{name} is a digital-baseline recording: replay it with "
                        "`jscec baseline --link replay --recording ... --key ...`")
    if info.samples == 0:
        raise UserError(f"no DeepJSCEC frames found in {name} (it holds no samples)")
    pulse_meta = g.get("jscec:pulse") if isinstance(g.get("jscec:pulse"), dict) else {}
    pulse = PulseShape(int(opts.sps or pulse_meta.get("sps", 4)), float(opts.rolloff or pulse_meta.get("rolloff", 0.25)))
    keys = key_path = None
    if "bob" in opts.chains:
        if not opts.key:
            raise UserError("replaying through Bob's chain needs --key (Bob's key file, printed by jscec capture); "
                            "or use --chains eve")
        key_path = Path(opts.key)
        keys = CipherKeys.load(key_path)      # one line saying why a key cannot be used, never its contents
    # What was sent comes from the recording, never from Bob's key: Eve's chain must not depend on it.
    mode = opts.mode or g.get("jscec:mode") or (keys.mode if keys else None)
    k = int(g.get("jscec:k") or (keys.k if keys else 512))
    model = opts.model or g.get("jscec:model_path") or g.get("jscec:model")
    if not model:
        raise UserError(f"{name} does not say which model sent it; pass --model")
    model_path = resolve_model(model)
    if keys is not None and g.get("jscec:key_id") not in (None, keys.key_id):
        log(f"warning: the key's id {keys.key_id} differs from the recording's {g.get('jscec:key_id')}")
    ref = Path(opts.reference) if opts.reference else reference_path(info.meta_path)
    originals = None
    if ref.is_file():
        originals = load_reference(ref)
    elif opts.reference:
        raise UserError(f"no reference images {ref}")
    else:
        log(f"no reference images ({ref.name} is not beside {name}): Bob's and Eve's images are decoded and saved "
            "(<out>/bob-images.npz, eve-images.npz, panel.png) but not scored; pass --reference NPZ to score them")
        ref = None
    key_id = g.get("jscec:key_id") or (keys.key_id if keys else None)
    source = g.get("jscec:image_source") or (f"{len(originals)} reference images" if originals is not None
                                             else "the recording's images (no reference)")
    return Setup(model_path, mode or "lwe", g.get("jscec:params"), k, key_id,
                 key_path, originals, source, ref, pulse,
                 g.get("jscec:frames_sent"), keys=keys, frame_auth="jscec:frame_auth" in g)


class Receivers:
    """Bob's and/or Eve's receive chains (``jscec receive`` processes) on given frame addresses.

    Use as a context manager: leaving it kills whatever still runs. ``finish`` tells every chain the
    stream ended and returns their results (``summary``, ``images``, ``constellation``) by role.

    A chain that dies (killed, crashed, out of memory) does not stop the run: while the frames flow, a
    watcher puts a :class:`radio.transport.Drain` on its frame address (a link's ZMQ sink would otherwise
    wait for the dead reader and stall the flowgraph), so the link carries the stream to its end and the
    other chain decodes all of it (a capture's recording is whole). ``finish`` then returns, for the dead
    chain, a summary holding ``error`` (one line: ``Eve's receive chain died (exit code -9)``) and
    ``exit_code``, and ``failures`` (role → that line) tells the runner to end the run with an error
    after writing the partial report.
    """

    #: Seconds between the watcher's looks at the chains' processes.
    WATCH_S = 0.1

    def __init__(self, addresses: dict[str, str], out_dir: Path, model_path: Path, *, key_path: Path | None,
                 ref_path: Path | None, k: int, mode: str, threads: int = 1, auth: str = "required",
                 replay_state: str = "key", game_path: Path | None = None):
        import threading

        from link.receiver.process import ReceiverProcess

        self.addresses = dict(addresses)
        self.chains = {}
        self.failures: dict[str, str] = {}
        self._drains: dict = {}
        self._stop_watch = threading.Event()
        self._watcher = None
        try:
            for role, addr in addresses.items():
                if role == "bob":
                    self.chains[role] = ReceiverProcess("bob", addr, out_dir, str(model_path), key=key_path,
                                                        reference=ref_path, k=k, threads=threads, auth=auth,
                                                        replay_state=replay_state)
                else:
                    self.chains[role] = ReceiverProcess("eve", addr, out_dir, str(model_path),
                                                        reference=ref_path, k=k, threads=threads, mode=mode,
                                                        game=game_path)
            for c in self.chains.values():
                c.wait_ready()
            self._watcher = threading.Thread(target=self._watch, name="jscec-receivers-watch", daemon=True)
            self._watcher.start()
        except BaseException:
            self.kill()
            raise

    def _watch(self) -> None:
        from radio.transport import Drain

        while not self._stop_watch.wait(self.WATCH_S):
            for role, c in self.chains.items():
                if role not in self._drains and not c.alive():
                    self._drains[role] = Drain(self.addresses[role])

    def _end_watch(self) -> None:
        """Stop the watcher and the drains (the flowgraph has stopped)."""
        self._stop_watch.set()
        if self._watcher is not None:
            self._watcher.join()
            self._watcher = None
        for d in self._drains.values():
            d.close()
        self._drains = {}

    def finish(self, frames_sent: int | None, tb=None) -> dict:
        """End every chain at once (they decode in parallel), then collect. With the flowgraph ``tb``
        (its ``sync_stats``), each chain learns how many messages were published to it
        and stops when they all came instead of after an idle second. A chain that died gets a
        summary with ``error`` and ``exit_code`` (and is named in ``failures``)."""
        from link.receiver.process import ChainDied

        self._end_watch()
        stats = {} if tb is None else tb.sync_stats()
        for role, c in self.chains.items():
            if c.alive():
                published = stats[role]["frames_published"] + stats[role]["dropped_published"] if stats else None
                c.end(-1 if frames_sent is None else frames_sent, published)
        results = {}
        for role, c in self.chains.items():
            try:
                results[role] = c.result()
            except ChainDied as exc:
                self.failures[role] = str(exc)
                results[role] = dead_result(role, str(exc), exc.exit_code, frames_sent)
        return results

    def kill(self) -> None:
        self._end_watch()
        for c in self.chains.values():
            c.kill()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()
        return False


def dead_result(role: str, error: str, exit_code: int | None, frames_sent: int | None) -> dict:
    """The result of a chain that died: nothing decoded; its side of the report says why (``error``)."""
    summary = {"role": role, "error": error, "exit_code": exit_code, "frames_sent": frames_sent, "frames_ok": 0,
               "mer_db": None, "psnr": None, "ssim": None, "images": []}
    return {"summary": summary, "images": {}, "constellation": np.zeros(0, np.complex64)}


_SIDE_KEYS = ("psnr", "ssim", "ms_ssim", "mer_db", "frames_sent", "frames_ok", "frames_received", "frames_dropped",
              "authentication", "error", "exit_code")


def side(summary: dict) -> dict:
    """The part of a chain's summary that goes into the experiment's JSON (``error`` and ``exit_code``: the
    chain died, see :class:`Receivers`)."""
    return {k: summary[k] for k in _SIDE_KEYS if k in summary}


def empty_side() -> dict:
    return {"psnr": None, "ssim": None, "mer_db": None, "frames_sent": 0, "frames_ok": 0}


def link_report(results: dict, *, snr_b_db, snr_e_db, mode: str, params: str, model: str, images: str,
                image_sizes: list, key_id, pulse: PulseShape, impairments: dict | None = None, **extra) -> dict:
    """The JSON shared by every runner (``bob``/``eve`` first, as ``jscec loopback`` has always written)."""
    report = {
        "bob": side(results["bob"]["summary"]) if "bob" in results else empty_side(),
        "eve": side(results["eve"]["summary"]) if "eve" in results else empty_side(),
        "snr_b_db": snr_b_db, "snr_e_db": snr_e_db,
    }
    if impairments is not None:
        report["impairments"] = impairments
    report.update({"mode": mode, "params": params, "model": model, "images": images, "image_sizes": image_sizes,
                   "key_id": key_id, "pulse": {"sps": pulse.sps, "rolloff": pulse.rolloff}})
    report.update(extra)
    report["per_image"] = {name: r["summary"]["images"] for name, r in results.items()}
    return report


def _sizes(images) -> list:
    """``[list(im.shape) …]``, one list object per distinct shape (a long run holds 8 bytes per image)."""
    shared: dict = {}
    return [shared.setdefault(im.shape, list(im.shape)) for im in images]


class DeepJscecApp:
    """DeepJSCEC images over any link: Alice's frames out, Bob's and Eve's chains (processes) in."""

    name = "DeepJSCEC"

    def __init__(self, opts: ImageOptions = ImageOptions(), log=print):
        chains = tuple(opts.chains)
        if not chains or any(c not in ROLES for c in chains):
            raise UserError(f"--chains takes bob, eve or bob,eve; got {','.join(chains) or 'nothing'}")
        self.opts = opts
        self.log = log

    def transmission(self, link, out_dir: Path) -> Setup:
        o = self.opts
        if not link.sends:
            return from_recording(link.info, o, self.log)
        return prepare(model=o.model, mode=o.mode, data=o.data, images=o.images, key=o.key, out_dir=out_dir,
                       subframes=o.subframes, threads=o.threads, sps=o.sps or 4,
                       rolloff=o.rolloff or 0.25, image_arrays=o.image_arrays, inputs=o.inputs,
                       eve_game=o.eve_game and "eve" in o.chains, keep_frames=o.keep_frames)

    def roles(self, setup: Setup) -> tuple:
        return tuple(self.opts.chains)

    def outputs(self, roles) -> dict:
        from radio.transport import free_tcp_address

        return {r: free_tcp_address() for r in roles}

    def receivers(self, setup: Setup, tb, link, outputs: dict, out_dir: Path) -> "Receivers":
        game_path = None
        if setup.game is not None and "eve" in outputs:
            from link.apps.eve_game import write_pairs

            game_path = setup.game_path or write_pairs(Path(out_dir) / "eve-pairs.npz", setup.game)
        return Receivers(outputs, out_dir, setup.model_path, key_path=setup.key_path, ref_path=setup.ref_path,
                         k=setup.k, mode=setup.mode, threads=self.opts.threads,
                         auth="required" if setup.frame_auth else "legacy",
                         replay_state="key" if link.sends else "none", game_path=game_path)

    def finish(self, rx: "Receivers", setup: Setup, tb, link) -> dict:
        frames_sent = setup.frames_sent
        if not link.sends:
            log = link.frame_log(tb)
            if not log.frames:
                raise UserError(f"no DeepJSCEC frames found in {link.info.name}")
            frames_sent = frames_sent if frames_sent is not None else len(log.frames)
        return rx.finish(frames_sent, tb)

    def recording_fields(self, setup: Setup, sample_rate: float) -> dict:
        """The ``jscec:`` fields of a capture of this transmission (public parameters only)."""
        return {
            "description": f"DeepJSCEC link: Bob's RX input, {setup.frames_sent} frames of {len(setup.images)} images",
            "model": setup.model_name, "model_path": str(Path(setup.model_path).resolve()), "mode": setup.mode,
            "params": setup.params, "key_id": setup.key_id, "k": int(setup.k), "frames_sent": setup.frames_sent,
            "images": len(setup.images), "image_source": setup.source,
            **({"frame_auth": AUTH_FIELD} if setup.mode in ("lwe", "mask") else {}),
            "pulse": {"sps": setup.pulse.sps, "rolloff": setup.pulse.rolloff, "span": setup.pulse.span},
            "symbol_rate": sample_rate / setup.pulse.sps,
        }

    def report(self, setup: Setup, results: dict, link_fields: dict, recording: dict | None, out_dir: Path) -> dict:
        fields = dict(link_fields)
        extra = ({"seed": self.opts.seed, "frame_counters": setup.counters.reserved}
                 if setup.counters is not None else {})
        report = link_report(results, snr_b_db=fields.pop("snr_b_db"), snr_e_db=fields.pop("snr_e_db"),
                             impairments=fields.pop("impairments", None), mode=setup.mode, params=setup.params,
                             model=setup.model_name, images=setup.source,
                             image_sizes=None if setup.images is None else _sizes(setup.images),
                             key_id=setup.key_id, references=None if setup.ref_path is None else str(setup.ref_path),
                             pulse=setup.pulse, **extra, **fields)
        if recording is not None:
            report["recording"] = recording
        if setup.game is not None and "eve" in results:
            from link.apps.eve_game import score

            report["eve_distinguisher"] = score(results["eve"]["summary"].get("per_frame", []), setup.game)
        self.write(report, setup, results, out_dir)
        return report

    def write(self, report: dict, setup: Setup, results: dict, out_dir: Path) -> None:
        """The run's files: panel (original | Bob | Eve), constellations, ``result.json``."""
        from link.report import write_report

        write_report(report, setup.images, results, out_dir)
