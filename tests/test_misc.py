import pytest

from models.datasets import interleave, read_sequences, synthetic_sequences
from stream_app.pseudonym import Pseudonymizer
from stream_app.routing import partition_for
from stream_app.settings import Settings


def test_pseudonyms_are_keyed_stable_and_distinct() -> None:
    p, q = Pseudonymizer("k1"), Pseudonymizer("k2")
    assert p("alice") == p("alice") != p("bob")
    assert p("alice") != q("alice")
    assert len(p("alice")) == 32 and "alice" not in p("alice")
    with pytest.raises(ValueError):
        Pseudonymizer("")


def test_partitioning_matches_kafkas_default_partitioner() -> None:
    # murmur2 values from the Java client's own tests (UtilsTest.testMurmur2);
    # the partition is toPositive(murmur2(key)) % n.
    for key, java in [(b"21", -973932308), (b"foobar", -790332482), (b"abc", 479470107)]:
        assert partition_for(key, 12) == (java & 0x7FFFFFFF) % 12
    assert {partition_for(str(i).encode(), 4) for i in range(100)} == {0, 1, 2, 3}


def test_interleaving_mixes_users_but_keeps_each_users_order() -> None:
    users = list(synthetic_sequences(users=50, seed=3))
    events = list(interleave(users, active=10, seed=1))
    assert len(events) == sum(len(items) for _, items in users)
    for user, items in users:
        assert [i for u, i in events if u == user] == items
    first_users = [u for u, _ in events[:20]]
    assert len(set(first_users)) > 3  # not user after user


def test_reads_sequence_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "s.txt"
    f.write_text("1 10 11\n2 12\n3\n")
    assert list(read_sequences(f)) == [("1", ["10", "11"]), ("2", ["12"])]


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMREC_PARTITIONS", "7")
    monkeypatch.setenv("STREAMREC_KAFKA_BOOTSTRAP", "kafka:9092")
    s = Settings()
    assert s.partitions == 7 and s.bootstrap == "kafka:9092"
    monkeypatch.setenv("STREAMREC_PARTITIONS", "zero")
    with pytest.raises(ValueError):
        Settings()


def test_produce_reads_every_log_format_with_categories(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from stream_app.kafka.producer import dataset_events

    canonical = tmp_path / "log.csv"
    canonical.write_text(
        "user_id,item_id,event_type,ts,category_id\nu,b,click,20,c2\nu,a,view,10,\n"
    )
    assert list(dataset_events(canonical)) == [
        ("u", "a", "view", 10, None),  # time order; an empty category is none
        ("u", "b", "click", 20, "c2"),
    ]
    taobao = tmp_path / "UserBehavior.csv"
    taobao.write_text("1,2,3,pv,100\n1,4,3,buy,101\n")
    assert list(dataset_events(taobao)) == [
        ("1", "2", "click", 100_000, "3"),
        ("1", "4", "purchase", 101_000, "3"),
    ]
    sequences = tmp_path / "seq.txt"
    sequences.write_text("u1 a b\n")
    assert [e[:3] for e in dataset_events(sequences)] == [
        ("u1", "a", "purchase"),
        ("u1", "b", "purchase"),
    ]
