"""The worker serves a trained checkpoint (STREAMREC_MODEL_DIR) end to end."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import msgpack
import pytest

from models.training import train
from tests.conftest import new_stack
from tests.integration.kafka_io import decoded, read_n, send_all

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def tiny_dataset(path: Path) -> Path:
    rng = random.Random(0)
    lines = []
    for u in range(300):
        start = rng.randrange(40)
        lines.append(" ".join([str(u)] + [str((start + k) % 40 + 1) for k in range(6)]))
    path.write_text("\n".join(lines) + "\n")
    return path


def train_tiny(tmp_path: Path, arch: str = "transformer") -> Path:
    """A 1-block, 16-wide network trained for 2 epochs on a synthetic catalogue of 40."""
    model_dir = tmp_path / "model"
    args = [
        "--dataset",
        str(tiny_dataset(tmp_path / "seq.txt")),
        "--arch",
        arch,
        "--out",
        str(model_dir),
        "--epochs",
        "2",
        "--dim",
        "16",
        "--layers",
        "1",
        "--max-len",
        "8",
        "--batch-size",
        "64",
        "--seed",
        "1",
        "--threads",
        "1",
    ]
    assert train.main(args) == 0
    return model_dir


@pytest.mark.parametrize("arch", ["bsarec", "transformer"])
async def test_worker_serves_a_trained_network(bootstrap: str, tmp_path: Path, arch: str) -> None:
    model_dir = train_tiny(tmp_path, arch)
    version = json.loads((model_dir / "meta.json").read_text()).get("version")

    # The model's own answer: the adjuster (which may add recent items) is off.
    stack = new_stack(bootstrap, tmp_path, model_dir=str(model_dir), adjust=False)
    try:
        stack.worker().start()
        s = stack.settings
        now = int(time.time() * 1000)
        # Known items, an unknown one, and a history longer than the model window.
        items = ["3", "4", "never-seen", *[str(i) for i in range(5, 16)]]
        msgs = [
            (
                b"u1",
                msgpack.packb(
                    {
                        "user_id": "u1",
                        "item_id": it,
                        "event_type": "click",
                        "ts": now + n,
                        "event_id": f"n{n}",
                    }
                ),
            )
            for n, it in enumerate(items)
        ]
        await send_all(s.bootstrap, s.input_topic, msgs)
        recs = decoded(await read_n(s.bootstrap, s.output_topic, len(msgs), timeout=120))
        assert len(recs) == len(msgs), stack.workers[0].log()[-3000:]
        for n, rec in enumerate(recs):
            assert rec["model"]["name"] == f"neural-{arch}" and "adjuster" not in rec["model"]
            assert version is None or rec["model"]["version"] == version
            assert len(rec["items"]) == 10
            assert all(x["item_id"] != "never-seen" for x in rec["items"])
            weights = [x["weight"] for x in rec["influences"]]
            assert len(weights) == n + 1 and abs(sum(weights) - 1) < 1e-5
    finally:
        stack.stop()
