"""Running a ZMQ-fed GNU Radio flowgraph to a stop condition (such flowgraphs never finish by themselves)."""
from __future__ import annotations

import time


def run_flowgraph(tb, consumed, done, *, timeout_s: float, stall_s: float = 10.0, total: int | None = None,
                  desc: str = "samples", on_start=None, on_poll=None) -> bool:
    """Start ``tb`` and stop it when ``done(counts)`` holds, after ``timeout_s``, or on a stall.

    ``consumed()`` returns a dict of sample counters (progress: their minimum); ``on_poll(counts)``
    runs every poll (e.g. to flush a transmitter). A stall is ``stall_s`` seconds without any counter
    moving. Returns whether ``done`` was reached.
    """
    from tqdm import tqdm

    reached = False
    try:
        tb.start()      # inside the try: an interruption right after the start still stops the flowgraph
        if on_start:
            on_start()
        t0 = last_move = time.monotonic()
        last = None
        with tqdm(total=total, unit="sample", unit_scale=True, desc=desc, leave=False, disable=None) as bar:
            while True:
                time.sleep(0.05)
                now = consumed()
                low = min(now.values()) if now else 0
                bar.update(max(0, (min(low, total) if total else low) - bar.n))
                if on_poll:
                    on_poll(now)
                if done(now):
                    reached = True
                    break
                if now != last:
                    last, last_move = now, time.monotonic()
                if time.monotonic() - last_move > stall_s or time.monotonic() - t0 > timeout_s:
                    break
    finally:
        time.sleep(0.2)  # let the last PDUs leave the message sinks
        tb.stop()
        tb.wait()
    return reached
