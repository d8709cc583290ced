import gzip
import subprocess
import sys
from pathlib import Path

import pytest

from models.datasets import (
    UserSequence,
    guess_format,
    load_sequences,
    open_text,
    read_canonical,
    read_events,
    read_rees46,
    read_sequences,
    read_taobao,
)

RICH = "u1 7|click|10 8|cart|12 9|purchase|20\nu2 7 8 9\n"


def write(path: Path, text: str) -> Path:
    """Plain, or gzipped when the name ends in .gz."""
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def per_user(events: list[tuple]) -> dict[str, list[tuple]]:  # type: ignore[type-arg]
    out: dict[str, list[tuple]] = {}  # type: ignore[type-arg]
    for user, item, event_type, ts, _ in events:
        out.setdefault(user, []).append((item, event_type, ts))
    return out


@pytest.mark.parametrize("name", ["seq.txt", "seq.txt.gz"])
def test_a_rich_sequences_line_reads_the_same_for_producer_replay_and_trainer(
    tmp_path: Path, name: str
) -> None:
    from models.training import train
    from stream_app.kafka.producer import dataset_events
    from stream_app.replay import runner

    path = write(tmp_path / name, RICH)
    rich = [("7", "click", 10), ("8", "cart", 12), ("9", "purchase", 20)]
    plain = [("7", "purchase"), ("8", "purchase"), ("9", "purchase")]

    produced = per_user(list(dataset_events(path, seed=3)))
    assert produced["u1"] == rich
    assert produced["u2"] == [(*p, None) for p in plain]  # the producer stamps its own time

    replayed = per_user(list(runner.read_events(path)))
    assert replayed["u1"] == rich
    assert [e[:2] for e in replayed["u2"]] == plain
    ticks = [e[2] for e in replayed["u2"]]
    assert ticks == sorted(ticks) and len(set(ticks)) == 3  # untimed: a second apart

    trained = train.load_sequences(path)
    assert trained == [
        UserSequence("u1", ["7", "8", "9"], ["click", "cart", "purchase"], [10, 12, 20]),
        UserSequence("u2", ["7", "8", "9"]),
    ]
    assert [(i.item_id, i.event_type, i.ts) for i in trained[0].interactions()] == rich
    assert [(i.item_id, i.event_type) for i in trained[1].interactions()] == plain


def test_sequences_lines_blank_lone_and_mixed(tmp_path: Path) -> None:
    path = write(tmp_path / "s.txt", "1 10 11\n\n2\n3 5|view|1 6\n")
    assert load_sequences(path) == [
        UserSequence("1", ["10", "11"]),
        UserSequence("2", []),  # a lone user is kept; the split drops it
        UserSequence("3", ["5", "6"]),  # types and times count only on every token
    ]
    assert list(read_sequences(path)) == [("1", ["10", "11"]), ("3", ["5", "6"])]
    assert guess_format(path) == "sequences"


@pytest.mark.parametrize("name", ["log.csv", "log.csv.gz"])
def test_canonical(tmp_path: Path, name: str) -> None:
    text = "user_id,item_id,event_type,ts,category_id\nu,b,click,20,c2\nu,a,view,10,\n"
    path = write(tmp_path / name, text)
    assert list(read_canonical(path)) == [
        ("u", "b", "click", 20, "c2"),
        ("u", "a", "view", 10, None),
    ]
    assert guess_format(path) == "canonical"
    assert [e[3] for e in read_events(path)] == [10, 20]  # time order
    bare = write(tmp_path / f"bare-{name}", "user_id,item_id,event_type,ts\nu,a,purchase,5\n")
    assert list(read_canonical(bare)) == [("u", "a", "purchase", 5, None)]


@pytest.mark.parametrize("name", ["UserBehavior.csv", "UserBehavior.csv.gz"])
def test_taobao(tmp_path: Path, name: str) -> None:
    text = "1,2,3,pv,100\n1,4,3,buy,101\n1,5,,fav,102\n1,6,3,unknown,103\nshort,row\n"
    path = write(tmp_path / name, text)
    assert list(read_taobao(path)) == [
        ("1", "2", "click", 100_000, "3"),
        ("1", "4", "purchase", 101_000, "3"),
        ("1", "5", "add_to_cart", 102_000, None),
    ]
    assert guess_format(path) == "taobao"
    assert list(read_events(path)) == list(read_taobao(path))


@pytest.mark.parametrize("name", ["events.csv", "events.csv.gz"])
def test_rees46(tmp_path: Path, name: str) -> None:
    header = "event_time,event_type,product_id,category_id,category_code,brand,price,"
    header += "user_id,user_session"
    rows = [
        "2019-10-01 00:00:01 UTC,cart,44,77,,brand,1.0,9,s",
        "2019-10-01 00:00:00 UTC,view,43,,,,2.0,9,s",
        "2019-10-01 00:00:02 UTC,remove_from_cart,44,77,,brand,1.0,9,s",
    ]
    (tmp_path / "rees46").mkdir()
    path = write(tmp_path / "rees46" / name, "\n".join([header, *rows]) + "\n")
    start = 1_569_888_000_000  # 2019-10-01 00:00:00 UTC
    assert list(read_rees46(path)) == [
        ("9", "44", "add_to_cart", start + 1000, "77"),
        ("9", "43", "click", start, None),
    ]
    assert guess_format(path) == "rees46"
    assert [e[1] for e in read_events(path)] == ["43", "44"]


def test_one_opener_reads_plain_and_gzip_alike(tmp_path: Path) -> None:
    for name in ("a.txt", "a.txt.gz"):
        with open_text(write(tmp_path / name, "héllo\n")) as f:
            assert f.read() == "héllo\n"
    with pytest.raises(ValueError, match="unknown format"):
        read_events(tmp_path / "a.txt", "parquet")


def test_the_reader_is_torch_free() -> None:
    code = "import sys, models.datasets; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
