"""GNU Radio 3.10 flowgraphs (.grc for GNU Radio Companion) and the Python that runs them."""
