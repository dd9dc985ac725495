"""Applications: what is sent over a link and how it is scored.

* ``deepjscec`` (:class:`link.apps.deepjscec.DeepJscecApp`) — DeepJSCEC images: Alice encodes, encrypts and
  frames them (``alice``, ``keys``, ``images``); Bob's and Eve's chains run as processes (:mod:`link.receiver`);
* ``baseline`` (:class:`link.apps.baseline.BaselineApp`) — the digital baseline's frames, collected and
  decoded in this process (``baseline_recording``: its SigMF fields; ``baseline_sweep``: ``jscec baseline``).

An application is any object with these methods, which :func:`link.runner.run` calls in this order (see
:mod:`link.links` for the other half):

* ``transmission(link, out_dir)`` — what is sent (it has ``pulse``, ``stream``, ``frames_sent``,
  ``ref_path``, ``key_path``); over a link that ``sends`` nothing (replay), what ``link.info`` says was sent;
* ``roles(tx)`` — the receiving roles it wants (``bob``, ``eve``);
* ``outputs(roles)`` — per role, the ZMQ address its frame PDUs go to, or None (collected in-process);
* ``receivers(tx, tb, link, outputs, out_dir)`` — a context manager for what listens (started before the
  flowgraph runs, killed when the run ends however it ends);
* ``finish(rx, tx, tb, link)`` — the receivers' results once the link has carried everything;
* ``recording_fields(tx, sample_rate)`` — the public ``jscec:`` fields of a capture of this transmission;
* ``report(tx, results, link_fields, recording, out_dir)`` — the run's result (and its files).

A new application is one module with such a class; every link, capture and replay then works for it.
"""
