"""The link: Alice, Bob and Eve endpoints and the experiment runner.

This is the one place where `models` (torch) and `radio`/`flowgraphs` (GNU Radio) meet.
"""
