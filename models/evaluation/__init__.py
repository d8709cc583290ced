"""Offline evaluation: full-ranking metrics, the ranking loop, baselines, faithfulness checks."""
