"""Small, fast runs of each chaos scenario (scripts/chaos.py has the full ones)."""

from __future__ import annotations

import pytest

from scripts.chaos import run_scenario
from stream_app.harness import local_broker_settings
from stream_app.settings import Settings

pytestmark = [pytest.mark.broker, pytest.mark.slow]


@pytest.mark.parametrize("scenario", ["a", "b", "c", "d"])
def test_chaos_scenario_loses_nothing(scenario: str, bootstrap: str) -> None:
    # Scenario d stops its own broker, so it runs one.
    base = local_broker_settings() if scenario == "d" else Settings(kafka_bootstrap=bootstrap)
    r = run_scenario(scenario, base, events=1500, rate=250, users=100, outage=5)
    assert r["lost"] == 0, r
    assert r["state_mismatches"] == 0, r
    assert "crashed_workers" not in r, r
    if scenario != "b":  # after kill -9, in-flight events may be recommended twice
        assert r["duplicates"] == 0, r
