"""`jscec receive`: one receive chain (Bob or Eve) as its own process, fed by an RX flowgraph over ZMQ."""
from __future__ import annotations

NAME = "receive"
HELP = "run Bob's or Eve's receive chain on synchronised frames from an RX flowgraph (ZMQ)"
DESCRIPTION = ("Connect to an RX flowgraph's frame PDUs (zeromq push_msg_sink), soft-demap, decrypt (Bob, with his key "
               "file) or attack-decode (Eve), and write <out>/<role>.json and <role>-images.npz when the runner "
               "signals the end of the stream on the control address. `jscec loopback`/`ota`/`replay` start the same "
               "chain as `python -m link.receiver`.")


def add_arguments(p):
    from link.receiver.main import add_arguments as receiver_arguments

    receiver_arguments(p)


def run(args) -> int:
    from link.receiver.main import run as run_receiver

    return run_receiver(args)
