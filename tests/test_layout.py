"""The layering rules of the README's architecture section, checked on every module's imports."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: package → top-level modules it must never import (anywhere in the module, lazy imports included).
FORBIDDEN = {
    "jscec": {"crypto", "radio", "models", "baseline", "flowgraphs", "link", "scripts", "torch", "gnuradio", "pmt"},
    "crypto": {"radio", "models", "baseline", "flowgraphs", "link", "scripts", "torch", "gnuradio", "pmt"},
    "radio": {"models", "baseline", "flowgraphs", "link", "scripts", "torch", "gnuradio", "pmt"},
    "models": {"baseline", "flowgraphs", "link", "scripts", "gnuradio", "pmt"},
    "baseline": {"flowgraphs", "link", "scripts", "gnuradio", "pmt"},
    "flowgraphs": {"models", "baseline", "link", "scripts", "torch"},
    "link": {"scripts"},
    "hesemcom": {"flowgraphs", "link", "scripts", "gnuradio", "pmt"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_dependencies_point_one_way(package):
    bad = {str(p.relative_to(ROOT)): sorted(_imports(p) & FORBIDDEN[package])
           for p in sorted((ROOT / package).rglob("*.py"))}
    assert {p: names for p, names in bad.items() if names} == {}


def test_commands_import_no_other_command():
    for p in sorted((ROOT / "scripts").glob("cmd_*.py")):
        tree = ast.parse(p.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith("scripts.cmd_"), f"{p.name} imports {node.module}"
                assert not (node.module == "scripts" and any(a.name.startswith("cmd_") for a in node.names)), p.name


def test_benchmarks_are_not_installed():
    import tomllib

    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    assert not any(i.startswith("benchmarks") for i in include)
    assert {i.rstrip("*") for i in include} >= set(FORBIDDEN) | {"scripts", "calibration"}
