"""The code's shape: the layout the docs describe, kept by tests rather than by habit."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("stream_app", "models")
# Family modules share their name on purpose: one small base.py per family.
SHARED_NAMES = {"__init__", "__main__", "base"}


def _modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def _trees() -> list[tuple[Path, ast.Module]]:
    return [(p, ast.parse(p.read_text(), filename=str(p))) for p in _modules()]


def test_no_two_modules_share_a_name() -> None:
    by_name: dict[str, list[str]] = defaultdict(list)
    for p in _modules():
        if p.stem not in SHARED_NAMES:
            by_name[p.stem].append(str(p.relative_to(ROOT)))
    assert {n: ps for n, ps in by_name.items() if len(ps) > 1} == {}


def test_models_never_import_stream_app() -> None:
    offenders = []
    for p, tree in _trees():
        if p.relative_to(ROOT).parts[0] != "models":
            continue
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{p.name}: {n}" for n in names if n.split(".")[0] == "stream_app"]
    assert offenders == []


def test_models_top_level_stays_small() -> None:
    assert len(list((ROOT / "models").glob("*.py"))) <= 10


def test_no_function_is_longer_than_80_lines() -> None:
    long = [
        f"{p.relative_to(ROOT)}:{n.lineno} {n.name} ({n.end_lineno - n.lineno + 1} lines)"
        for p, tree in _trees()
        for n in ast.walk(tree)
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
        and n.end_lineno is not None
        and n.end_lineno - n.lineno + 1 > 80
    ]
    assert long == []


def test_module_docstrings_are_short() -> None:
    long = []
    for p, tree in _trees():
        doc = ast.get_docstring(tree, clean=False)
        if doc and len(doc.splitlines()) > 40:
            long.append(f"{p.relative_to(ROOT)} ({len(doc.splitlines())} lines)")
    assert long == []
