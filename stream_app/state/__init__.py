"""Per-user and per-item state kept in Faust tables."""
