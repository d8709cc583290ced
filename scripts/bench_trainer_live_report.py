"""Tallies and plot of ``scripts.bench_trainer_live``: per mode, overall and by stream minute."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

MIN_PLOTTED = 100  # bins with fewer scored lists stay in the JSON, off the plot


def stats(rows: list[dict[str, Any]]) -> dict[str, Any]:
    n = max(len(rows), 1)
    lags = sorted(r["lag_s"] for r in rows if r.get("lag_s") is not None)
    return {
        "lag_s_median": lags[len(lags) // 2] if lags else None,
        "lag_s_p95": lags[int(len(lags) * 0.95)] if lags else None,
        "scored": len(rows),
        "ndcg10": sum(r["ndcg10"] for r in rows) / n,
        "hr10": sum(r["ndcg10"] > 0 for r in rows) / n,
        "share_lists_naming_items_new_to_frozen": sum(r["names_new"] for r in rows) / n,
        "share_targets_new_to_frozen": sum(r["target_new"] for r in rows) / n,
        "versions": len({r["version"] for r in rows}),
    }


def summarise(result: dict[str, Any], bin_min: float) -> dict[str, Any]:
    start, bin_ms = result["start_ts"], int(bin_min * 60_000)
    out: dict[str, Any] = {}
    for mode, run in result["runs"].items():
        bins: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for row in run["scored"]:
            bins[(row["ts"] - start) // bin_ms].append(row)
        out[mode] = {
            "overall": stats(run["scored"]),
            "over_time": [
                {"minute": b * bin_min, **stats(rows)} for b, rows in sorted(bins.items())
            ],
            "wall_seconds": run["wall_seconds"],
            "recommendations": run["recommendations"],
            "rounds": {
                k: sum(r["result"] == k for r in run["rounds"]) for k in ("promoted", "rejected")
            },
        }
    return out


def plot(result: dict[str, Any], path: Path, bin_min: float, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = summarise(result, bin_min)
    fig, (ax, ax_new) = plt.subplots(1, 2, figsize=(12, 4))
    labels = {"on": "trainer on", "frozen": "frozen at start"}
    for mode, s in summary.items():
        rows = [r for r in s["over_time"] if r["scored"] >= MIN_PLOTTED]
        minutes = [r["minute"] for r in rows]
        ax.plot(minutes, [r["ndcg10"] for r in rows], marker="o", label=labels.get(mode, mode))
        ax_new.plot(
            minutes,
            [r["share_lists_naming_items_new_to_frozen"] for r in rows],
            marker="o",
            label=f"{labels.get(mode, mode)}: lists naming an item new to frozen",
        )
        if mode == "on":
            ax_new.plot(
                minutes,
                [r["share_targets_new_to_frozen"] for r in rows],
                marker="x",
                linestyle="--",
                label="next events on such items",
            )
    ax.set(xlabel="stream minute", ylabel="prequential NDCG@10", title="worker's lists, live")
    ax.legend()
    ax_new.set(xlabel="stream minute", ylabel="share of scored lists", title="new items")
    ax_new.legend(fontsize=8)
    fig.suptitle(f"{title} (bins of {MIN_PLOTTED}+ scored lists)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
