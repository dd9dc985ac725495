"""Experiment campaigns: a plan (TOML) of cells, run through the project's runner into an SQLite store, reported.

* :mod:`link.campaign.plan` — reading and validating a plan (refusals name the line and key), expanding it
  into cells (a system at one grid point, one repeat; ids are hashes of their settings);
* :mod:`link.campaign.store` — the store (schema, version, one transaction per cell, WAL);
* :mod:`link.campaign.cells` — running one cell with the commands' own functions (``jscec eval``'s
  evaluation, ``jscec baseline``'s simulation, :func:`link.runner.run` over awgn/sim/ota/replay);
* :mod:`link.campaign.execute` — ``jscec campaign``: resumable, ``--jobs`` worker processes, Ctrl-C/SIGTERM;
* :mod:`link.campaign.report` — ``jscec report``: figures with 95 % intervals, Markdown, CSV, and the paper's
  numbers (:mod:`link.campaign.paper`) beside ours.
"""
