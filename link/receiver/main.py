"""One receive chain (Bob or Eve) as its own process: ``python -m link.receiver --role bob …``.

The runners start it (:class:`link.receiver.process.ReceiverProcess`); ``jscec receive`` runs the
same entry point by hand. It connects to an RX flowgraph's frame PDUs, prints ``ready``, serves
frames until the runner's control message says the stream ended, then decodes and writes
``<out>/<role>.json`` and ``<role>-images.npz``; its stderr (``<out>/<role>.log``) says where the
time went.

It refuses, in one line and before ``ready``, a ``--frames`` address it cannot connect to and a
``--control`` address it cannot bind (exit status 2), and exits with 2 when its ``--timeout`` passed
without a frame or the runner's end message. Started by a runner (``JSCEC_PARENT_PID`` set), it also
stops when that process is gone, so a killed runner leaves no receiver behind.
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time

from jscec.errors import UserError, user_message


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--role", choices=["bob", "eve"], required=True)
    p.add_argument("--frames", required=True, help="ZMQ address of the RX flowgraph's frame PDUs (connect)")
    p.add_argument("--control", required=True, help="ZMQ address this process binds for the runner's messages")
    p.add_argument("--model", default="cifar10-lwe", help="bundled model name or checkpoint path")
    p.add_argument("--key", default=None, help="Bob's secret key file (required for --role bob)")
    p.add_argument("--mode", default=None, help="cipher mode of the link (Eve; Bob takes it from his key)")
    p.add_argument("--k", type=int, default=512, help="symbols per cipher frame (public; Eve's view)")
    p.add_argument("--reference", default=None, help="npz of the transmitted images (image_<index>) for PSNR/SSIM")
    p.add_argument("--out", required=True, help="folder for the results")
    p.add_argument("--timeout", type=float, default=900.0, help="give up after this many seconds")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="CPU threads for torch")
    p.add_argument("--auth", choices=["required", "legacy"], default="required",
                   help="Bob (lwe, mask): 'required' drops frames without a tag block; 'legacy' decodes them "
                        "(a recording made before frames were authenticated)")
    p.add_argument("--replay-state", choices=["key", "none"], default="key",
                   help="Bob: keep the replay window's floor beside the key (<key>.replay) across runs, or "
                        "only in this process ('none': replaying a recording)")
    p.add_argument("--game", default=None,
                   help="Eve: each image's two candidate latents (a run's eve-pairs.bin, read as its pairs are "
                        "written, or an npz of pair_<index>); she guesses per frame which one was sent")


def _exit_with_parent(pid: int, every_s: float = 1.0) -> None:
    """Exit (status 3) once the runner ``pid`` that started this process is gone (its children are
    re-parented): a runner killed outright cannot stop its receivers itself."""
    def watch():
        while os.getppid() == pid:
            time.sleep(every_s)
        os._exit(3)

    threading.Thread(target=watch, name="jscec-parent-watch", daemon=True).start()


def run(args) -> int:
    from pathlib import Path

    from radio.transport import check_address

    parent = os.environ.get("JSCEC_PARENT_PID", "")
    if parent.isdigit():
        _exit_with_parent(int(parent))
    check_address(args.frames, bind=False, what="--frames")
    check_address(args.control, bind=True, what="--control")

    import torch
    import zmq

    from crypto.cipher import CipherKeys
    from link.receiver.chains import open_references, serve, write_results
    from link.receiver.classify import chain_classes, open_labels
    from models.checkpoint import resolve_model
    from models.evaluate import load_bob, load_eve

    torch.set_num_threads(args.threads)
    path = resolve_model(args.model)
    model = load_bob(path, args.device)
    BobChain, EveChain = chain_classes(model.config.task)     # a classifier's chains give labels
    if args.role == "bob":
        if not args.key:
            raise UserError("Bob needs --key (his secret key file)")
        from crypto.frame_auth import ReplayWindow, replay_state_path

        keys = CipherKeys.load(args.key)
        window = ReplayWindow(state=replay_state_path(args.key), key_id=keys.key_id) \
            if args.replay_state == "key" and keys.mode != "lwe-pk" else ReplayWindow()
        chain = BobChain(model, keys, path.stem, auth=args.auth, window=window)
    else:
        eve = load_eve(path, args.device)
        if eve is None:
            raise UserError(f"no Eve decoder beside {path} (train one with `jscec attack`)")
        from link.apps.eve_game import load_pairs

        chain = EveChain(model, eve, path.stem, args.k, mode=args.mode,
                         game=load_pairs(args.game) if args.game else None)
    # Read image by image, as used; a classifier is scored against the reference labels.
    opener = open_labels if model.config.task == "classify" else open_references
    refs = opener(args.reference) if args.reference else None
    chain.references = refs            # each batch scored as it is decoded: memory stays flat
    from link.live import publisher

    chain.live = publisher()           # --live: each frame and image to the live view (None: off)
    print("ready", flush=True)
    t0 = time.monotonic()
    try:
        frames_sent = serve(chain, args.frames, args.control, timeout_s=args.timeout)
    except zmq.ZMQError as exc:   # e.g. --control taken between the check above and serve's bind
        raise UserError(f"ZMQ: {exc} (--frames {args.frames}, --control {args.control})") from None
    t1 = time.monotonic()
    chain.stream_ended()
    if frames_sent is None and not len(chain.records) and not chain.drops:
        raise UserError(f"no frame arrived on {args.frames} within {args.timeout:g} s (is the RX flowgraph "
                        "running and publishing there?)")
    rows = chain.decode_all(refs, device=args.device)
    t2 = time.monotonic()
    write_results(Path(args.out), args.role, chain.summary(rows, frames_sent), rows, chain.constellation)
    print(f"{args.role}: {len(chain.records)} frames received in {t1 - t0:.2f} s, {len(rows)} images decoded "
          f"in {t2 - t1:.2f} s, results written in {time.monotonic() - t2:.2f} s", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m link.receiver", description=__doc__.splitlines()[0])
    add_arguments(p)
    args = p.parse_args(argv)
    try:
        return run(args)
    except (UserError, OSError) as exc:
        message = user_message(exc)
        if message is None:
            raise
        print(f"{args.role}'s receiver: error: {message}", file=sys.stderr)
        return 2
