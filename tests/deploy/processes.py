"""Real processes for the deployment tests, each stopped by its PID (its process group) even when a
test fails, and the small waits and ports they need."""

from __future__ import annotations

import os
import signal
from signal import SIGKILL
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

REQUIRE_ENV = "MUSICREC_REQUIRE_DEPLOY_TOOLS"  # CI sets it: a missing tool fails instead of skipping


def missing(reason: str) -> None:
    """Skip with the reason; in CI (MUSICREC_REQUIRE_DEPLOY_TOOLS=1) fail instead."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1: .ci/run installs it)")
    pytest.skip(reason)


_given_ports: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A port free now, and never one this function gave before: the kernel may hand a just-closed
    port out again, and two services started from back-to-back calls would then collide."""
    for _ in range(100):
        with socket.socket() as sock:
            sock.bind((host, 0))
            port = sock.getsockname()[1]
        if port not in _given_ports:
            _given_ports.add(port)
            return port
    raise RuntimeError(f"no new free port on {host} after 100 tries")


def wait_for(what: str, check: Callable[[], object], timeout: float, every: float = 1.0, log: Path | None = None):
    """Poll `check` until it returns a truthy value; fail with `what` (and a log's tail) on timeout."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as error:  # the service is not up yet
            last_error = error
        time.sleep(every)
    tail = ""
    if log is not None and log.exists():
        tail = "\n--- " + str(log) + " (last lines) ---\n" + "\n".join(log.read_text(errors="replace").splitlines()[-40:])
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last error: {last_error}){tail}")


class Processes:
    """Starts processes in their own process groups and stops each group by PID."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.running: dict[str, subprocess.Popen] = {}
        self.groups: set[int] = set()  # every process group started, to prove none outlives the tests

    def start(self, name: str, argv: list[str], env: dict[str, str], cwd: Path | None = None, **popen) -> subprocess.Popen:
        if name in self.running and self.running[name].poll() is None:
            raise RuntimeError(f"{name} is already running (pid {self.running[name].pid})")
        log = open(self.log_dir / f"{name}.log", "ab")
        process = subprocess.Popen(
            argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, **popen,
        )
        log.close()
        self.running[name] = process
        self.groups.add(process.pid)
        return process

    def log(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def pid(self, name: str) -> int:
        return self.running[name].pid

    def stop(self, name: str, grace: float = 10.0, signal: int = signal.SIGTERM) -> int | None:
        """SIGTERM the process group, then SIGKILL it after `grace` seconds (as `docker stop` does)."""
        process = self.running.pop(name, None)
        if process is None:
            return None
        _signal_group(process.pid, signal)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        _signal_group(process.pid, SIGKILL)  # children that outlived their parent, too
        try:
            return process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            return None

    def kill(self, name: str) -> None:
        """SIGKILL the whole group at once: a machine or container that dies."""
        process = self.running.pop(name)
        _signal_group(process.pid, SIGKILL)
        process.wait(timeout=10)

    def memory_report(self) -> str:
        """Resident memory of each running process (with its children), in MB: for the notes."""
        import psutil

        lines = []
        for name, process in self.running.items():
            try:
                root = psutil.Process(process.pid)
                family = [root, *root.children(recursive=True)]
                rss = sum(p.memory_info().rss for p in family if p.is_running())
            except psutil.Error:
                continue
            lines.append(f"{name:<24} {rss / 2**20:7.0f} MB  ({len(family)} processes)")
        return "\n".join(lines)

    def stop_all(self) -> None:
        for name in reversed(list(self.running)):
            self.stop(name, grace=10.0)

    def leftovers(self) -> list[str]:
        """Processes still alive in any group this object started (there should be none)."""
        import psutil

        found = []
        for proc in psutil.process_iter(["pid", "name", "status"]):
            try:
                if os.getpgid(proc.pid) in self.groups and proc.info["status"] != psutil.STATUS_ZOMBIE:
                    found.append(f"{proc.pid} {proc.info['name']}")
            except (ProcessLookupError, psutil.Error):
                continue
        return found


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
