"""PNG of training curves (loss and validation metrics per epoch)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def plot_curves(history: Sequence[dict[str, Any]], path: str | Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # headless: training runs on servers without a display
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [h["train_loss"] for h in history], marker="o")
    ax_loss.set(xlabel="epoch", ylabel="training loss", title="next-item cross-entropy")
    for key in ("HR@10", "NDCG@10"):
        ax_val.plot(epochs, [h["valid"][key] for h in history], marker="o", label=key)
    ax_val.set(xlabel="epoch", ylabel="validation (network alone)", title="validation")
    ax_val.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
