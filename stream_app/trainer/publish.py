"""Promoted checkpoints, one directory per version, and the atomic swap workers see.

``STREAMREC_MODEL_DIR`` becomes a symlink to ``<versions dir>/<version>``; a
promotion writes the new version's directory completely, then repoints the
link with ``rename(2)`` (``ln -sfn`` done atomically), so a worker reading the
directory sees the old checkpoint or the new one, never a mix. A checkpoint
directory that is a plain directory (say from ``streamrec train``) is moved into
the versions directory once, at the first promotion, and replaced by the link.

A rejected candidate is written under ``<trainer dir>/rejected/<version>`` with
its round report, for inspection. Only the ``STREAMREC_TRAINER_KEEP`` newest of
each are kept; the version the link points at never goes.
"""

from __future__ import annotations

import calendar
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from models.nn.network import SequenceRecommender
from models.nn.transitions import Transitions
from models.nn.vocab import ItemVocab
from models.serving import checkpoint
from stream_app.settings import Settings

log = logging.getLogger(__name__)


def versions_dir(settings: Settings) -> Path:
    assert settings.model_dir is not None
    model_dir = settings.model_dir
    return settings.trainer_versions_dir or model_dir.with_name(model_dir.name + ".versions")


def current_version(model_dir: Path) -> str | None:
    try:
        return str(json.loads((model_dir / "meta.json").read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def created_at(meta: dict[str, Any]) -> float | None:
    """Unix time of a checkpoint's ``created`` stamp."""
    try:
        return float(calendar.timegm(time.strptime(str(meta["created"]), "%Y-%m-%dT%H:%M:%SZ")))
    except (KeyError, ValueError):
        return None


def repoint(link: Path, target: Path) -> None:
    """Make ``link`` a symlink to ``target`` in one rename."""
    tmp = link.with_name(link.name + ".tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target.resolve())
    os.replace(tmp, link)


def write(
    out: Path,
    network: SequenceRecommender,
    vocab: ItemVocab,
    transitions: Transitions | None,
    meta: dict[str, Any],
) -> str:
    """Write a checkpoint under a temporary name, then rename it to ``out/<version>``."""
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".writing-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    version = checkpoint.save(tmp, network, vocab, transitions, meta)
    (tmp / "report.json").write_text(json.dumps(meta.get("trainer", {}), indent=2))
    final = out / version
    if final.exists():  # the same weights again: keep the first copy
        shutil.rmtree(tmp)
    else:
        os.replace(tmp, final)
    return version


def promote(settings: Settings, version: str) -> Path:
    """Point the model directory at ``<versions dir>/<version>``; return that directory."""
    assert settings.model_dir is not None
    link, target = settings.model_dir, versions_dir(settings) / version
    if link.exists() and not link.is_symlink():
        old = current_version(link) or f"unversioned-{int(time.time())}"
        moved = versions_dir(settings) / old
        if moved.exists():
            shutil.rmtree(link)
        else:
            os.replace(link, moved)
        log.info("moved the checkpoint directory %s to %s", link, moved)
    link.parent.mkdir(parents=True, exist_ok=True)
    repoint(link, target)
    prune(versions_dir(settings), settings.trainer_keep, keep=target.resolve())
    return target


def oldest_ancestor(settings: Settings, meta: dict[str, Any]) -> str | None:
    """The oldest ancestor of a checkpoint still in the versions directory (its parents, in turn).

    Pruning keeps ``STREAMREC_TRAINER_KEEP`` versions, so this is the model of at most
    that many promotions ago: the gate's anchor against a slow drift down.
    """
    directory, found = versions_dir(settings), None
    parent, seen = meta.get("parent"), set()
    while isinstance(parent, str) and parent not in seen:
        seen.add(parent)
        try:
            parent_meta = json.loads((directory / parent / "meta.json").read_text())
        except (OSError, ValueError):
            break
        found, parent = parent, parent_meta.get("parent")
    return found


def prune(directory: Path, n: int, keep: Path | None = None) -> None:
    """Remove all but the ``n`` newest version directories (and never ``keep``)."""
    if not directory.is_dir():
        return
    dirs = [d for d in directory.iterdir() if d.is_dir() and not d.name.startswith(".")]
    dirs.sort(key=lambda d: d.stat().st_mtime, reverse=True)
    for d in dirs[n:]:
        if keep is None or d.resolve() != keep:
            shutil.rmtree(d, ignore_errors=True)
