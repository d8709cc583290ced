"""``streamrec trainer``: the model learns from the stream.

A service of its own (its own process and consumer group, so it never takes a
partition or a core from the workers' path) that keeps a window of recent
per-user sequences (:mod:`.window`, fed by :mod:`.intake`), fine-tunes a
candidate from the served checkpoint on it every ``STREAMREC_TRAINER_INTERVAL_S``
(:mod:`models.training.continual`), and promotes the candidate only when it
ranks the most recent held-out events about as well as the current model or
better (:mod:`.publish` swaps the checkpoint atomically; workers hot reload it).
"""
