"""Where models (torch) and radio/flowgraphs (GNU Radio) meet: applications × links.

* ``link.apps`` — applications: what is sent and how it is scored (``deepjscec``: Alice, keys and
  Bob's/Eve's scoring; ``baseline``: the digital baseline's frames and scoring);
* ``link.links`` — links: how frames travel (``sim`` the GNU Radio loopback, ``ota`` radios,
  ``replay`` a SigMF recording);
* ``link.receiver`` — Bob's and Eve's receive chains, each its own process (``python -m link.receiver``);
* ``link.sender``, ``link.output``, ``link.capture``, ``link.report``, ``link.plots`` — what every run
  shares: the symbol stream into the TX flowgraph, staged output, SigMF capture, the JSON/table report
  and its figures.
"""
