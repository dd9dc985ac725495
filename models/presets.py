"""Named network sizes (no torch import, so the CLI's --help stays fast)."""

#: Named channel widths. ``paper`` is Table II's 256; ``small`` trains on 2 CPU cores in ~2 hours.
WIDTH_PRESETS = {"paper": 256, "small": 48, "tiny": 16}
#: Spatial downsampling of each layout.
DOWNSAMPLING = {"cifar": 4, "tiny": 16}
