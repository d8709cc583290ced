"""End-to-end: a tiny training run on a slice of real data, then ``evaluate``."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import torch

from models.base import Interaction
from models.evaluation import evaluate
from models.nn.batching import collate
from models.nn.vocab import FIRST
from models.serving import checkpoint
from models.serving.scorer import NeuralScorer
from models.training import train
from models.training.data import UserSequence, encode


@pytest.fixture
def beauty(datasets: Path) -> Path:
    path = datasets / "amazon-beauty" / "sequences.txt"
    if not path.exists():
        pytest.skip(f"{path} not available")
    return path


def _slice(beauty: Path, tmp_path: Path, n_items: int) -> Path:
    """Beauty restricted to its ``n_items`` most frequent items (users keeping >= 5 events).

    A dense slice trains in seconds; a random user slice would mostly hold items seen once.
    """
    seqs = [line.split() for line in beauty.read_text().splitlines() if line.strip()]
    counts = Counter(item for s in seqs for item in s[1:])
    keep = {item for item, _ in counts.most_common(n_items)}
    lines = []
    for s in seqs:
        items = [i for i in s[1:] if i in keep]
        if len(items) >= 5:
            lines.append(" ".join([s[0], *items]))
    path = tmp_path / "slice.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def _train_and_evaluate(beauty: Path, tmp_path: Path, arch: str, n_items: int, epochs: int) -> dict:
    data = _slice(beauty, tmp_path, n_items)
    out = tmp_path / arch
    rc = train.main(
        [
            "--dataset",
            str(data),
            "--arch",
            arch,
            "--out",
            str(out),
            "--epochs",
            str(epochs),
            "--dim",
            "32",
            "--layers",
            "1",
            "--max-len",
            "20",
            "--lr",
            "3e-3",
            "--dropout",
            "0.2",
            "--batch-size",
            "64",
            "--seed",
            "1",
        ]
    )
    assert rc == 0
    for name in (
        "model.pt",
        "config.json",
        "vocab.json",
        "meta.json",
        "metrics.json",
        "curves.png",
        "transitions.npz",
    ):
        assert (out / name).exists(), name
    report_path = tmp_path / f"{arch}.json"
    assert (
        evaluate.main(
            [
                "--dataset",
                str(data),
                "--model",
                str(out),
                "--json",
                str(report_path),
                "--influence",
                "--influence-users",
                "100",
            ]
        )
        == 0
    )
    return json.loads(report_path.read_text())


def test_tiny_transformer_beats_popularity(beauty: Path, tmp_path: Path) -> None:
    r = _train_and_evaluate(beauty, tmp_path, "transformer", n_items=300, epochs=4)
    pop = r["baselines"]["popularity"]
    # The network alone (no transition signal) must already beat popularity.
    assert r["network_only"]["HR@10"] > pop["HR@10"]
    assert r["network_only"]["NDCG@10"] > pop["NDCG@10"]
    assert r["HR@10"] > pop["HR@10"]
    assert r["protocol"] and r["model_version"].startswith("transformer")
    assert 0.0 <= r["influence"]["rate_top_beats_random"] <= 1.0


def test_tiny_bsarec_beats_popularity(beauty: Path, tmp_path: Path) -> None:
    r = _train_and_evaluate(beauty, tmp_path, "bsarec", n_items=300, epochs=4)
    pop = r["baselines"]["popularity"]
    assert r["network_only"]["HR@10"] > pop["HR@10"]
    assert r["network_only"]["NDCG@10"] > pop["NDCG@10"]
    assert r["model_version"].startswith("bsarec") and r["arch"] == "bsarec"
    assert 0.0 <= r["influence_network_only"]["rate_top_beats_random"] <= 1.0
    assert r["influence_rank_agreement"]["users"] > 0
    assert -1.0 <= r["influence_rank_agreement_network_only"]["spearman_raw_vs_loo"] <= 1.0


@pytest.mark.slow
def test_lstm_on_a_larger_slice_beats_popularity(beauty: Path, tmp_path: Path) -> None:
    r = _train_and_evaluate(beauty, tmp_path, "lstm", n_items=1000, epochs=6)
    pop = r["baselines"]["popularity"]
    assert r["network_only"]["HR@10"] > pop["HR@10"]
    assert r["network_only"]["NDCG@10"] > pop["NDCG@10"]


def test_retune_blend_keeps_the_network_and_rewrites_the_blend(
    beauty: Path, tmp_path: Path
) -> None:
    data = _slice(beauty, tmp_path, 200)
    out = tmp_path / "m"
    args = ["--dataset", str(data), "--arch", "gru", "--out", str(out), "--epochs", "1",
            "--dim", "16", "--layers", "1", "--max-len", "10", "--threads", "1"]  # fmt: skip
    assert train.main(args) == 0
    weights = (out / "model.pt").read_bytes()
    (out / "config.json").write_text(  # as an older checkpoint: no seen term, no blend
        json.dumps({**json.loads((out / "config.json").read_text()), "blend": {}})
    )
    assert train.main([*args, "--retune-blend"]) == 0
    report = json.loads((out / "metrics.json").read_text())
    blend = json.loads((out / "config.json").read_text())["blend"]
    assert (out / "model.pt").read_bytes() == weights
    assert {"transition", "transition_alpha", "seen"} <= set(blend)
    assert report["retune_seconds"] > 0 and report["history"]
    assert {r["seen"] for r in report["blend_grid"]} == set(train.SEEN_GRID)
    best = max(report["blend_grid"], key=lambda r: r["NDCG@10"])
    assert (blend["transition"], blend["seen"]) == (best["transition"], best["seen"])


def test_same_seed_gives_the_same_checkpoint(beauty: Path, tmp_path: Path) -> None:
    data = _slice(beauty, tmp_path, 200)
    versions = []
    for run in ("a", "b", "a"):
        out = tmp_path / run
        args = ["--dataset", str(data), "--arch", "gru", "--out", str(out), "--epochs", "2",
                "--dim", "16", "--layers", "1", "--max-len", "10", "--threads", "1",
                "--seed", "7" if run == "a" else "8"]  # fmt: skip
        assert train.main(args) == 0
        versions.append(json.loads((out / "meta.json").read_text())["version"])
    assert versions[0] == versions[2]  # same seed: bit-identical weights
    assert versions[0] != versions[1]  # a different seed must change them


def test_event_types_and_time_train_the_purchase_head(tmp_path: Path) -> None:
    # Synthetic rich data: after item 2 comes item 3, bought; after 4 comes 5, only viewed.
    lines = []
    for u in range(80):
        a, b = (2, 3) if u % 2 else (4, 5)
        ev = "purchase" if u % 2 else "view"
        t0 = 1_000_000 * u
        kinds = [(a, "view"), (b, ev), (a, "click"), (b, ev), (a, "view"), (b, ev)]
        toks = [f"{item}|{kind}|{t0 + 60_000 * i}" for i, (item, kind) in enumerate(kinds)]
        lines.append(" ".join([f"u{u}", *toks]))
    data = tmp_path / "rich.txt"
    data.write_text("\n".join(lines) + "\n")
    out = tmp_path / "rich"
    args = ["--dataset", str(data), "--arch", "transformer", "--out", str(out),
            "--epochs", "30", "--dim", "16", "--layers", "1", "--lr", "1e-2",
            "--dropout", "0", "--patience", "30"]  # fmt: skip
    assert train.main(args) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["use_events"] and config["use_time"] and config["purchase_trained"]
    ckpt = checkpoint.load(out)
    net = ckpt.network
    scorer = NeuralScorer.load(out, device="cpu")
    [after_2, after_4] = scorer.score(
        [[Interaction("2", "view", 0)], [Interaction("4", "view", 0)]], k=2
    )
    assert after_2.top_item == "3" and after_4.top_item == "5"
    assert all(abs(sum(s.influences) - 1.0) < 1e-6 for s in (after_2, after_4))
    # The purchase head learned that 3 (after 2) is bought and 5 (after 4) is not.
    histories = [UserSequence("x", [i], ["view"], [0]) for i in ("2", "4")]
    batch = collate([encode(h, ckpt.vocab, True) for h in histories], 8, True)
    with torch.no_grad():
        h = net.last_state(net(batch), batch.lengths)
        p_buy = torch.sigmoid(net.purchase_logits(h))
    col_3, col_5 = (ckpt.vocab.index(i) - FIRST for i in ("3", "5"))
    assert p_buy[0, col_3] > 0.5 > p_buy[1, col_5]
