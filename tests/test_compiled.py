"""The compiled hot path (``setup.py``, :mod:`models.compiled`): built, used only
while current, and giving exactly what the sources give."""

from __future__ import annotations

import ast
import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from models import compiled

ROOT = Path(__file__).resolve().parent.parent


def hot_modules() -> list[str]:
    """The module names ``setup.py`` compiles (read, not run: running it builds)."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "HOT":
            paths = ast.literal_eval(node.value)
            return [p.removesuffix(".py").replace("/", ".") for p in paths]
    raise AssertionError("setup.py lists no HOT modules")


def built() -> bool:
    """Whether this checkout is meant to run compiled (the default set-up)."""
    return os.environ.get("STREAMREC_NO_EXTENSIONS", "") in ("", "0")


def test_every_hot_module_exists() -> None:
    assert all((ROOT / (m.replace(".", "/") + ".py")).exists() for m in hot_modules())


@pytest.mark.skipif(not built(), reason="built without extensions (STREAMREC_NO_EXTENSIONS)")
def test_the_hot_path_runs_compiled() -> None:
    """A failed build must fail here, not pass slower unnoticed."""
    if compiled.pure_python():
        pytest.skip("STREAMREC_PURE_PYTHON is set")
    origins = {m: compiled.origin(importlib.import_module(m)) for m in hot_modules()}
    source = [m for m, o in origins.items() if o != "compiled"]
    assert source == [], "not compiled, or edited since: bash scripts/setup.sh rebuilds"


def test_a_stale_build_gives_way_to_its_source(tmp_path: Path, monkeypatch) -> None:
    import models.markov

    if compiled.origin(models.markov) != "compiled":
        pytest.skip("models.markov is not compiled here")
    so, py = Path(str(models.markov.__file__)), ROOT / "models/markov.py"
    shutil.copy(so, tmp_path / so.name)
    shutil.copy(py, tmp_path / py.name)
    finder = compiled.SourceWhenStale()

    def found() -> str | None:
        spec = finder.find_spec("models.markov", [str(tmp_path)])
        return None if spec is None else Path(str(spec.origin)).suffix

    monkeypatch.delenv(compiled.PURE_ENV, raising=False)
    os.utime(tmp_path / py.name, (1_000, 1_000))
    os.utime(tmp_path / so.name, (2_000, 2_000))
    assert found() is None  # current: the usual finders load the build
    os.utime(tmp_path / py.name, (3_000, 3_000))
    assert found() == ".py"  # edited after the build
    assert finder.warned == {"models.markov"}
    os.utime(tmp_path / py.name, (1_000, 1_000))
    monkeypatch.setenv(compiled.PURE_ENV, "1")
    assert found() == ".py"
    assert finder.find_spec("river.stats", None) is None  # not ours: never touched


def _digest(pure: bool, *options: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), compiled.PURE_ENV: "1" if pure else "0"}
    script = ROOT / "scripts/profile_worker.py"
    argv = [sys.executable, str(script), "--digest", "--events", "4000", *options]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=True)
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.slow
def test_compiled_and_source_publish_the_same_bytes() -> None:
    """Every output message, and the users and feedback tables after 4,000 Beauty
    events through the Markov scorer and the adjuster, byte for byte."""
    import models.markov

    if compiled.origin(models.markov) != "compiled":
        pytest.skip("not compiled here")
    assert _digest(pure=False) == _digest(pure=True)


@pytest.mark.slow
def test_batches_over_rocksdb_tables_publish_what_dict_state_does() -> None:
    """The same 4,000 events with the worker's tables: Faust RocksDB tables written
    once per batch of 37 (held writes, the Markov rows kept decoded), against dicts
    written at every event: the same messages and the same tables at the end."""
    batched = _digest(False, "--tables", "rocksdb", "--batch", "37")
    assert batched == _digest(False)


@pytest.mark.slow
def test_the_sources_doctests() -> None:
    """pytest cannot collect a compiled module's doctests (its file is the build):
    they run here, on the sources."""
    env = {**os.environ, compiled.PURE_ENV: "1"}
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "models", "stream_app"]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout
