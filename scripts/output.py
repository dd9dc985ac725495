"""Writing a command's JSON result (the shared tail of every command with --json)."""
from __future__ import annotations

import json
from pathlib import Path


def write_json(path, doc: dict) -> Path:
    """Write ``doc`` as indented JSON to ``path``, creating its folder; returns the path."""
    path = Path(path)
    if path.parent != Path(""):
        path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path
