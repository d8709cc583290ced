"""Builds streamrec with its per-event hot path compiled by Cython.

The compiled modules are the same ``.py`` files (Cython compiles plain Python):
nothing is written twice, and every module also runs as source. Measured on the
worker with the Markov scorer and the adjuster: 2-17% more events a second (8-16% in
most runs; docs/benchmarks.md). A module that does not compile (no C compiler) is
skipped with a warning and runs as source; ``STREAMREC_NO_EXTENSIONS=1`` does not
try; ``STREAMREC_PURE_PYTHON=1`` runs the sources of a compiled build
(:mod:`models.compiled`).
"""

import os

from setuptools import setup

# What every event runs through: state, the Markov scorer, the adjuster, the
# Processor and its codecs. Not the Faust agents: Faust inspects their functions.
HOT = [
    "models/base.py",
    "models/markov.py",
    "models/rerank/drift.py",
    "models/rerank/features.py",
    "models/rerank/feedback.py",
    "models/rerank/online_logistic.py",
    "models/rerank/propensity.py",
    "models/rerank/quality.py",
    "models/rerank/ranker.py",
    "models/rerank/signals.py",
    "models/rerank/slots.py",
    "stream_app/adjustment.py",
    "stream_app/events.py",
    "stream_app/outgoing.py",
    "stream_app/processor.py",
    "stream_app/routing.py",
    "stream_app/serializers.py",
    "stream_app/state/decoded.py",
    "stream_app/state/markov_store.py",
    "stream_app/state/user_state.py",
    "stream_app/state/write_back.py",
]


def extensions() -> list:
    if os.environ.get("STREAMREC_NO_EXTENSIONS", "") not in ("", "0"):
        return []
    from Cython.Build import cythonize

    built = cythonize(
        HOT,
        compiler_directives={"language_level": 3},
        nthreads=os.cpu_count() or 1,
        quiet=True,
    )
    for ext in built:
        ext.optional = True  # no C compiler: a warning, and that module runs as source
    return built


setup(ext_modules=extensions())
