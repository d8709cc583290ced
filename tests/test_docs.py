"""The README documents every setting, so the docs cannot drift from the code."""

from pathlib import Path

from stream_app.settings import Settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    missing = [
        f"STREAMREC_{n.upper()}"
        for n in Settings.model_fields
        if f"`STREAMREC_{n.upper()}`" not in README
    ]
    assert not missing


def test_every_dlq_reason_is_documented() -> None:
    from stream_app.events import REASONS

    assert all(f"`{r}`" in README for r in REASONS)
