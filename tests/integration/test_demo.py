"""The README's main command, as a person runs it: it prints recommendations,
its first screen shows no error, and Ctrl-C (to the whole foreground process group,
as a terminal sends it) stops everything within seconds, saying what it stops, and
leaves no broker or worker process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stream_app.harness import free_port, settings_env
from stream_app.processes import child_pids
from tests.conftest import ROOT

pytestmark = [pytest.mark.broker, pytest.mark.slow]

STOP_BOUND_S = 20  # generous for a loaded 2-core machine; a few seconds when idle


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = (
        Path(f"/proc/{pid}/stat").read_text().split()[2] if Path(f"/proc/{pid}").exists() else "X"
    )
    return state not in ("Z", "X")


def test_demo_prints_recommendations_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    dataset = tmp_path / "seq.txt"
    dataset.write_text("".join(f"{u} {u % 7} {u % 5 + 10} {u % 3 + 20}\n" for u in range(300)))
    env = {
        **os.environ,
        **settings_env(
            broker_port=free_port(),
            broker_controller_port=free_port(),
            web_port=free_port(),
            metrics_port=free_port(),
        ),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("STREAMREC_KAFKA_BOOTSTRAP", None)
    demo = subprocess.Popen(
        [sys.executable, "-m", "stream_app", "demo", "--dataset", str(dataset), "--rate", "100"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own group, as a shell gives a foreground job
    )
    lines: list[str] = []
    try:
        assert demo.stdout is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and sum(ln.startswith("user") for ln in lines) < 20:
            line = demo.stdout.readline()
            if not line:
                break
            lines.append(line)
        recs = [ln for ln in lines if ln.startswith("user")]
        assert len(recs) >= 20, "".join(lines[-40:])
        assert all("| top: " in ln and "| because: " in ln for ln in recs)
        kids = child_pids(demo.pid)
        assert len(kids) >= 2  # the broker JVM and the worker
        os.killpg(demo.pid, signal.SIGINT)  # a terminal's Ctrl-C
        interrupted = time.monotonic()
        # Keep draining its output: a full pipe would block the demo's last prints.
        rest, _ = demo.communicate(timeout=60)
        stop_s = time.monotonic() - interrupted
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert demo.returncode == 0
    time.sleep(0.5)
    assert [k for k in kids if alive(k)] == []
    print(f"demo stopped in {stop_s:.1f} s after Ctrl-C")
    assert stop_s < STOP_BOUND_S, rest
    for step in (
        "-- stopping the worker",
        "-- worker stopped in",
        "(exit status 0)",
        "-- Kafka stopped",
    ):
        assert step in rest, rest
    # The first screen of a healthy start: no client error shown.
    assert not [ln for ln in lines if " ERROR " in ln], "".join(lines)
