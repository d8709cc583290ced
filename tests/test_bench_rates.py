"""``scripts/bench_rates.py``'s verdict on a step: what *sustained* means. The steps
themselves run against a real broker in the benchmark, not here (no figure is
checked: the machine's speed varies)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from scripts.bench_pipeline import cpu_seconds
from scripts.bench_rates import (
    CpuMeter,
    broker_pids,
    cpu_line,
    report_step,
    summarise,
    thread_cpu_seconds,
)
from stream_app.processes import child_pids


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


def test_cpu_per_event_by_part() -> None:
    before = {"worker": 1.0, "model": 0.5, "bench": 2.0, "machine": 10.0}
    after = {"worker": 1.4, "model": 0.7, "bench": 2.1, "machine": 11.0}
    cpu = CpuMeter.per_event(before, after, events=1000)
    assert cpu["worker_cpu_us_per_event"] == pytest.approx(400.0)
    assert cpu["model_cpu_us_per_event"] == pytest.approx(200.0)
    assert cpu["other_cpu_us_per_event"] == pytest.approx(300.0)  # 1.0 - 0.4 - 0.2 - 0.1
    assert cpu_line(cpu) == "; CPU µs/event: worker 400, model 200, bench 100, other 300"
    assert CpuMeter.per_event({}, after, events=1000) == {}  # not measured
    assert cpu_line({}) == ""
    # The broker measured apart: out of the remainder, its compiler threads shown in it.
    before |= {"broker": 5.0, "broker_jit": 1.0}
    after |= {"broker": 5.2, "broker_jit": 1.05}
    cpu = CpuMeter.per_event(before, after, events=1000)
    assert cpu["other_cpu_us_per_event"] == pytest.approx(100.0)  # 0.3 - 0.2
    assert cpu_line(cpu) == (
        "; CPU µs/event: worker 400, model 200, bench 100, broker 200 (JIT 50), other 100"
    )


def test_thread_cpu_counts_the_named_threads_only() -> None:
    me = os.getpid()
    name = Path(f"/proc/{me}/comm").read_text().strip()  # the main thread's, as the kernel keeps it
    sum(i * i for i in range(300_000))
    mine = thread_cpu_seconds([me], (name[:15],))
    assert 0 < mine <= cpu_seconds([me])
    assert thread_cpu_seconds([me], ("no such thread",)) == 0
    assert me not in broker_pids()  # no kafka.Kafka on this command line


def test_cpu_meter_reads_a_process_and_its_children() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert child.pid in child_pids(os.getpid())
        first = CpuMeter(os.getpid()).read()
        sum(i * i for i in range(300_000))  # some CPU in this process
        second = CpuMeter(os.getpid()).read()
    finally:
        child.kill()
        child.wait()
    assert set(first) == {"worker", "model", "bench", "machine"}
    assert second["worker"] >= first["worker"]
    assert second["machine"] >= first["machine"] > 0
    assert CpuMeter().read() == {}  # no worker: not measured


@pytest.mark.parametrize(("grain", "wake_ups"), [(0.002, 33), (0.010, 9)])
def test_the_pacer_keeps_the_rate_and_sleeps_once_a_grain(
    monkeypatch: pytest.MonkeyPatch, grain: float, wake_ups: int
) -> None:
    """100 sends at 1,000/s take 0.1 s whatever the grain; a coarser grain wakes the
    sender fewer times (each wake-up of a sleeping process costs CPU of its own)."""
    import asyncio

    from stream_app.kafka import producer

    clock = [0.0]
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock[0] += seconds

    monkeypatch.setattr(producer.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(producer.asyncio, "sleep", sleep)

    async def send_all() -> None:
        pacer = producer.Pacer(1000, grain=grain)
        for _ in range(100):
            await pacer.tick()
            clock[0] += 1e-6  # the send itself

    asyncio.run(send_all())
    assert clock[0] == pytest.approx(0.1, abs=grain + 0.001)
    assert abs(len(sleeps) - wake_ups) <= 2
