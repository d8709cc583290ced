"""``scripts/bench_rates.py``'s verdict on a step: what *sustained* means. The steps
themselves run against a real broker in the benchmark, not here (no figure is
checked: the machine's speed varies)."""

from __future__ import annotations

from typing import Any

import pytest

from scripts.bench_rates import report_step, summarise


def step(**changes: Any) -> dict[str, Any]:
    row = {"target_rate": 1000, "sent": 8000, "recommended": 8000, "achieved_input_rate": 998.0}
    return {**row, "p50_ms": 20.0, "p99_ms": 60.0, "max_ms": 90.0, **changes}


@pytest.mark.parametrize(
    ("changes", "sustained"),
    [
        ({}, True),
        ({"recommended": 7999}, False),  # one event got no recommendation in time
        ({"p99_ms": 1000.5}, False),  # past the bound
        ({"achieved_input_rate": 940.0}, False),  # the producer could not keep the rate
    ],
)
def test_sustained(changes: dict[str, Any], sustained: bool, capsys: Any) -> None:
    row = step(**changes)
    assert report_step("1000/s", row, bound_ms=1000.0) is sustained
    assert row["sustained"] is sustained
    printed = capsys.readouterr().out
    assert printed.startswith("  1000/s: in ")
    assert ("not sustained" in printed) is not sustained


def test_summary_over_rounds() -> None:
    runs = [
        {"scorer": "s", "steps": [step(p99_ms=100.0, sustained=True)]},
        {"scorer": "s", "steps": [step(p99_ms=300.0, sustained=True)]},
        {"scorer": "s", "steps": [step(p99_ms=200.0, sustained=False)]},
        {"scorer": "t", "steps": [step(target_rate=500, p50_ms=5.0, sustained=True)]},
    ]
    summary = summarise(runs)
    assert summary["s"][1000] == {
        "rounds": 3,
        "sustained": 2,
        "median_p50_ms": 20.0,
        "median_p99_ms": 200.0,
    }
    assert summary["t"][500]["median_p50_ms"] == 5.0 and summary["t"][500]["rounds"] == 1
