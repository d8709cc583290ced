"""Worker processes, as the demo, the chaos harness and the tests run them."""

from __future__ import annotations

import contextlib
import ctypes
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path


def child_pids(pid: int) -> list[int]:
    """The processes ``pid`` started and that still run (Linux: the ``children`` list
    of each of its threads)."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):  # a thread or the process just ended
            out += [int(c) for c in (task / "children").read_text().split()]
    return out


def die_with_parent() -> None:
    """Linux: the child gets SIGTERM when its parent dies, so none is orphaned."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class WorkerProcess:
    """One worker process (``python -m stream_app worker`` unless ``argv`` says
    otherwise) with its own environment and log file."""

    def __init__(
        self,
        env: Mapping[str, str],
        log_path: Path,
        cwd: Path | None = None,
        argv: Sequence[str] = (sys.executable, "-m", "stream_app", "worker"),
    ) -> None:
        self.argv = list(argv)
        self.env = dict(env)
        self.log_path = log_path
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_from = 0  # where this run's lines start in the (appended) log

    def start(self) -> WorkerProcess:
        self._log_from = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as logf:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                stdout=logf,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                preexec_fn=die_with_parent,
                # Its own process group: a terminal's Ctrl-C reaches only the parent,
                # which stops its children in order (a broker gone first stalls the rest).
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait (SIGKILL after ``timeout``); returns the exit code."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    def kill(self) -> None:
        """SIGKILL: a crash, with no chance to commit or flush."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines of the log: what to show when the worker failed."""
        return "\n".join(self.log().splitlines()[-lines:])

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Until this run has joined its group and resumed its partitions (the
        "Worker ready" line of :mod:`stream_app.compat.recovery_seek`)."""
        deadline = time.monotonic() + timeout
        while True:
            with open(self.log_path, "rb") as f:
                f.seek(self._log_from)
                if b"Worker ready" in f.read():
                    return
            if not self.running:
                raise RuntimeError(f"worker exited before it was ready:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"worker not ready after {timeout:.0f} s ({self.log_path})")
            time.sleep(0.2)
