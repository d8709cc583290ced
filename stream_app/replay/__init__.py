"""``streamrec replay-eval``: replay an event log through the worker's own code path and
measure recommendation quality prequentially."""
