"""`jscec receive`: one receive chain (Bob or Eve) as its own process, fed by an RX flowgraph over ZMQ."""
from __future__ import annotations

NAME = "receive"
HELP = "run Bob's or Eve's receive chain on synchronised frames from an RX flowgraph (ZMQ)"
DESCRIPTION = ("Connect to an RX flowgraph's frame PDUs (zeromq push_msg_sink), soft-demap, decrypt (Bob, with his key "
               "file) or attack-decode (Eve), and write <out>/<role>.json and <role>-images.npz when the runner "
               "signals the end of the stream on the control address. `jscec loopback`/`ota`/`replay` start it.")


def add_arguments(p):
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


def run(args) -> int:
    import sys
    import time
    from pathlib import Path

    import numpy as np
    import torch

    from link.receiver import BobChain, EveChain, serve, write_results
    from models.checkpoint import resolve_model
    from crypto.cipher import CipherKeys
    from models.evaluate import load_bob, load_eve
    from jscec.errors import UserError

    torch.set_num_threads(args.threads)
    path = resolve_model(args.model)
    model = load_bob(path, args.device)
    if args.role == "bob":
        if not args.key:
            raise UserError("Bob needs --key (his secret key file)")
        chain = BobChain(model, CipherKeys.load(args.key), path.stem)
    else:
        eve = load_eve(path, args.device)
        if eve is None:
            raise UserError(f"no Eve decoder beside {path} (train one with `jscec attack`)")
        chain = EveChain(model, eve, path.stem, args.k, mode=args.mode)
    refs = None
    if args.reference:
        with np.load(args.reference) as z:
            refs = {int(name.split("_")[1]): z[name] for name in z.files if name.startswith("image_")}
    print("ready", flush=True)
    t0 = time.monotonic()
    frames_sent = serve(chain, args.frames, args.control, timeout_s=args.timeout)
    t1 = time.monotonic()
    rows = chain.decode_all(refs, device=args.device)
    t2 = time.monotonic()
    write_results(Path(args.out), args.role, chain.summary(rows, frames_sent), rows, chain.constellation)
    # The log (<out>/<role>.log) says where a run's time went.
    print(f"{args.role}: {len(chain.records)} frames received in {t1 - t0:.2f} s, {len(rows)} images decoded "
          f"in {t2 - t1:.2f} s, results written in {time.monotonic() - t2:.2f} s", file=sys.stderr)
    return 0
