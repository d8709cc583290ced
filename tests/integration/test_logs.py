"""Worker logs: periodic JSON summaries instead of a line per event, and no raw
user id in any line when ids are pseudonymised."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from stream_app.query import fetch_state
from tests.conftest import new_stack, wait_for
from tests.integration.kafka_io import read_n, send_all
from tests.integration.test_pipeline import event

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def summaries(log: str) -> list[dict]:
    docs = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    return [d for d in docs if d.get("summary")]


async def test_json_summaries_and_no_raw_user_id_in_the_log(bootstrap: str, tmp_path) -> None:
    stack = new_stack(
        bootstrap,
        tmp_path,
        pseudonym_secret="log-test-secret",
        log_format="json",
        log_summary_s=1,
    )
    try:
        s = stack.settings
        worker = stack.worker().start()
        tag = uuid.uuid4().hex[:10]
        users = [f"raw-{tag}-{i}" for i in range(20)]
        now = int(time.time() * 1000)
        good = [
            (u.encode(), event(u, f"item{j}", now + j, f"{u}-{j}")) for j in range(5) for u in users
        ]
        bad = [(u.encode(), event(u, "item0", now, f"{u}-bad", event_type="bogus")) for u in users]
        await send_all(s.bootstrap, s.input_topic, good + bad)
        await read_n(s.bootstrap, s.output_topic, len(good), timeout=120)
        # The web view gets the raw id in its URL, and must not log it either.
        url = f"http://127.0.0.1:{worker.env['STREAMREC_WEB_PORT']}"
        assert len(fetch_state(url, users[0])["events"]) == 5

        def counted() -> dict[str, int] | None:
            docs = summaries(worker.log())
            total = {k: sum(d[k] for d in docs) for k in ("events", "invalid", "published")}
            return total if total["events"] >= len(good) else None

        total = wait_for(counted, timeout=60, interval=0.5)
        assert total == {"events": len(good), "invalid": len(bad), "published": len(good)}
        last = summaries(worker.log())[-1]
        assert last["partitions"] == list(range(s.partitions))  # a lone worker owns them all
        assert last["users_approx"] is None or last["users_approx"] >= 0
        assert worker.stop() == 0
        log = worker.log()
        lines = [line for line in log.splitlines() if line.strip()]
        not_json = [line for line in lines if not line.startswith("{")]
        assert not not_json, not_json[:5]  # Faust's own lines are JSON too
        assert any(json.loads(line)["logger"].startswith("faust") for line in lines)
        # Neither a user id nor an event id (which embeds it here): no line per event.
        assert f"raw-{tag}" not in log
    finally:
        stack.stop()
