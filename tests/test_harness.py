"""The broker-free parts of the harness: ports, and environments named after Settings."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from stream_app.harness import (
    ISOLATED_FIELDS,
    TOPIC_FIELDS,
    Stack,
    env_name,
    env_of,
    free_port,
    isolated_env,
    settings_env,
)
from stream_app.settings import Settings


def test_free_port_can_be_bound() -> None:
    port = free_port()
    assert 0 < port < 65536
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_env_names_are_those_settings_reads() -> None:
    assert env_name("input_topic") == "STREAMREC_INPUT_TOPIC"
    with pytest.raises(KeyError):
        env_name("no_such_setting")
    env = settings_env(partitions=7, adjust=False, data_dir=Path("/tmp/x"))
    s = Settings.from_env(env)
    assert (s.partitions, s.adjust, s.data_dir) == (7, False, Path("/tmp/x"))
    assert Settings.from_env(env_of(s, "partitions", "adjust")).partitions == 7


def test_isolated_env_names_fresh_topics_for_every_topic_setting() -> None:
    assert set(TOPIC_FIELDS) == {
        "input_topic",
        "output_topic",
        "dlq_topic",
        "control_topic",
        "audit_topic",
    }
    a = Settings.from_env(isolated_env("run", partitions=3, log_level="warn"))
    b = Settings.from_env(isolated_env("run"))
    assert a.app_id.startswith("run-") and a.app_id != b.app_id
    assert (a.partitions, a.log_level) == (3, "warn")
    names = [getattr(a, f) for f in ISOLATED_FIELDS]
    assert len(set(names)) == len(names)
    assert a.input_topic == f"{a.app_id}.events"
    assert a.dlq_topic == f"{a.app_id}.events.dlq"
    assert not {getattr(b, f) for f in TOPIC_FIELDS} & set(names)
    with pytest.raises(KeyError):
        isolated_env("run", partitons=3)


def test_stack_workers_get_their_own_state_log_and_ports(tmp_path: Path) -> None:
    stack = Stack(isolated_env("run", log_level="warn"), tmp_path)
    a, b = stack.worker(0), stack.worker("w1", store="memory")
    assert a.log_path == tmp_path / "worker0.log"
    assert a.env["STREAMREC_DATA_DIR"] == str(tmp_path / "worker0")
    assert b.env["STREAMREC_STORE"] == "memory" and "STREAMREC_STORE" not in stack.env_vars
    assert a.env["STREAMREC_WEB_PORT"] != b.env["STREAMREC_WEB_PORT"]
    assert a.env["STREAMREC_APP_ID"] == b.env["STREAMREC_APP_ID"] == stack.settings.app_id
    assert stack.workers == [a, b]
    stack.stop()  # none started: nothing to stop
