"""Which modules run compiled: a compiled module (``setup.py`` builds the hot path
with Cython, in place) is used only where it is at least as new as its source.

Python imports an extension module before a ``.py`` of the same name, so a
source edited after the build would silently run as its old compiled self. The
finder installed here loads the source instead, and says so once; ``make test``
(``scripts/setup.sh``) rebuilds. ``STREAMREC_PURE_PYTHON=1`` loads every source:
for profilers that see Python frames only (py-spy), and to compare the two.

>>> import models.markov
>>> origin(models.markov) in {"compiled", "source"}
True
>>> describe().startswith(("compiled (", "from source ("))
True
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

log = logging.getLogger(__name__)
PACKAGES = ("models.", "stream_app.")
PURE_ENV = "STREAMREC_PURE_PYTHON"


def pure_python() -> bool:
    """Whether every module is to be loaded from its source."""
    return os.environ.get(PURE_ENV, "") not in ("", "0")


def origin(module: ModuleType) -> str:
    """``compiled`` or ``source``: what ``module`` was loaded from."""
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    return "compiled" if str(module.__file__).endswith(suffixes) else "source"


def describe() -> str:
    """How this process runs this project's compiled modules, for the start-up log."""
    ours = [m for name, m in list(sys.modules.items()) if name.startswith(PACKAGES) and m]
    built = sum(origin(m) == "compiled" for m in ours if getattr(m, "__file__", None))
    if built:
        return f"compiled ({built} modules)"
    return f"from source ({PURE_ENV})" if pure_python() else "from source (not compiled)"


class SourceWhenStale(importlib.abc.MetaPathFinder):
    """Finds this project's compiled modules, and their sources in their stead when
    they are stale or :func:`pure_python` is set."""

    def __init__(self) -> None:
        self.warned: set[str] = set()

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith(PACKAGES):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not isinstance(spec.loader, importlib.machinery.ExtensionFileLoader):
            return None  # not compiled: the usual finders load it
        built = Path(str(spec.origin))
        source = built.with_name(fullname.rpartition(".")[2] + ".py")
        if not source.exists():
            return None
        if not pure_python():
            if source.stat().st_mtime <= built.stat().st_mtime:
                return None
            if fullname not in self.warned:
                self.warned.add(fullname)
                log.warning("%s: source newer than its build; running the source", fullname)
        return importlib.util.spec_from_file_location(fullname, source)


def install() -> None:
    """Put the finder first (once per process)."""
    if not any(isinstance(f, SourceWhenStale) for f in sys.meta_path):
        sys.meta_path.insert(0, SourceWhenStale())


install()
