"""With pseudonymisation on, no raw user id reaches a log line, a metric, state,
an output or the audit topic (the input, control and DLQ topics hold raw input by
design; see docs/privacy-and-security.md)."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import pytest

from stream_app.erasure import ForgetRequest
from stream_app.kafka.producer import request_erasure
from stream_app.query import fetch_state
from tests.conftest import new_stack
from tests.integration.kafka_io import read_all, read_n, send_all
from tests.integration.test_pipeline import event

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def listening_addresses(port: int) -> set[str]:
    """Local IPv4 addresses with a socket listening on ``port`` (from /proc/net/tcp)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        addr, hexport = local.split(":")
        if state == "0A" and int(hexport, 16) == port:  # 0A = LISTEN
            found.add(".".join(str(int(addr[i : i + 2], 16)) for i in (6, 4, 2, 0)))
    return found


RAW_IDS = [f"leakcheck-{n:03d}@shop.example" for n in range(20)]


async def test_raw_user_ids_reach_no_log_metric_state_output_or_audit(
    bootstrap: str, tmp_path: Path
) -> None:
    stack = new_stack(bootstrap, tmp_path, pseudonym_secret="leak-test-secret")
    s = stack.settings
    try:
        worker = stack.worker(0).start()
        now = int(time.time() * 1000)
        messages = [  # event ids are the producer's and echoed as given: no user id in them
            (u.encode(), event(u, f"i{n % 7}", now + n, f"ev{n}-{k}"))
            for n in range(3)
            for k, u in enumerate(RAW_IDS)
        ]
        # A too-late event is dead-lettered: its reason and detail must not name the user.
        late = event(RAW_IDS[0], "i1", now - 10**10, "late")
        await send_all(s.bootstrap, s.input_topic, [*messages, (RAW_IDS[0].encode(), late)])
        await read_n(s.bootstrap, s.output_topic, len(messages), timeout=120)
        await request_erasure(s, ForgetRequest.new(RAW_IDS[1]))
        await read_n(s.bootstrap, s.audit_topic, 1, timeout=60)

        url = f"http://127.0.0.1:{worker.env['STREAMREC_WEB_PORT']}"
        scraped = f"http://127.0.0.1:{worker.env['STREAMREC_METRICS_PORT']}/metrics"
        with urllib.request.urlopen(scraped, timeout=10) as r:
            places: dict[str, bytes] = {"metrics": r.read()}
        # By default the metrics endpoint is reachable from this machine only.
        assert listening_addresses(int(worker.env["STREAMREC_METRICS_PORT"])) == {"127.0.0.1"}
        places["state answers"] = "".join(str(fetch_state(url, u)) for u in RAW_IDS[:3]).encode()
        topics = [
            (s.output_topic, s.partitions),
            (s.audit_topic, 1),
            (f"{s.app_id}-users-changelog", s.partitions),
            (f"{s.app_id}-items-changelog", s.partitions),
            (f"{s.app_id}-feedback-changelog", s.partitions),
        ]
        for topic, partitions in topics:
            records = await read_all(s.bootstrap, topic, partitions)
            places[topic] = b"".join((r.key or b"") + (r.value or b"") for r in records)
            places[topic] += b"".join(v for r in records for _, v in r.headers or ())
        dlq = await read_n(s.bootstrap, s.dlq_topic, 1, timeout=30)
        places["dlq headers"] = b"".join(v for r in dlq for _, v in r.headers)
        worker.stop()
        places["worker log"] = worker.log_path.read_bytes()

        assert places["worker log"] and places[s.output_topic] and places[s.audit_topic]
        leaks = {
            where: [u for u in RAW_IDS if u.encode() in data or u.split("@")[0].encode() in data]
            for where, data in places.items()
        }
        assert not any(leaks.values()), leaks
    finally:
        stack.stop()
