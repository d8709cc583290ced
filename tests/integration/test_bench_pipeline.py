"""``scripts/bench_pipeline.py`` compare mode end to end, small: its JSON names the
commit and machine, every run got all its outputs, and each variant has its ratio to
the bare agent of its round. No figure is checked: the machine's speed varies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts import bench_pipeline

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def test_compare_one_variant(
    bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREAMREC_KAFKA_BOOTSTRAP", bootstrap)
    out = tmp_path / "bench.json"
    argv = ["--events", "500", "--variants", "adjust-off", "--timeout", "120", "--out", str(out)]
    argv += ["--warm-up", "200"]
    assert bench_pipeline.main(argv) == 0
    report = json.loads(out.read_text())
    assert report["commit"] and report["date"]
    assert {"cpus", "python", "load_average_at_start"} <= report["machine"].keys()
    assert list(report["variants"]) == ["adjust-off"]
    assert report["warm_up"]["name"] == "baseline" and report["warm_up"]["outputs"] == 200
    runs = report["runs"]
    assert [(r["name"], r["round"]) for r in runs] == [("baseline", 1), ("adjust-off", 1)]
    assert all(r["outputs"] == 500 for r in runs), [r["outputs"] for r in runs]
    assert runs[1]["ratio_to_baseline"] > 0
    assert report["summary"]["adjust-off"]["all_outputs"]
    assert report["summary"]["adjust-off"]["median_ratio"] == runs[1]["ratio_to_baseline"]


def test_crc32_placement_matches_librdkafka() -> None:
    # librdkafka's rd_crc32 is the standard CRC-32; its check value for "123456789".
    assert bench_pipeline.crc32_partition(b"123456789", 1 << 32) == 0xCBF43926
    assert all(0 <= bench_pipeline.crc32_partition(str(u).encode(), 4) < 4 for u in range(100))
