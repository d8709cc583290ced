"""The streamrec worker: Faust app, Kafka clients, state, and the CLI."""

import models  # noqa: F401  (installs models.compiled's finder before any compiled import)
