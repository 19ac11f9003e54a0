"""Helpers for the tests that start real papertide processes (``serve``, ``worker``, ``digest send``)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

TIMEOUT = 60.0  # seconds a server may take to answer, or a command to run, on a loaded machine


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_serving(base: str, proc: subprocess.Popen, log: Path, path: str = "/api/daily") -> None:
    """Wait until ``base + path`` answers 200; fail with the server's log if it exits or never does."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"papertide serve exited with {proc.returncode}:\n{log.read_text()}"
        try:
            if httpx.get(base + path, timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"papertide serve did not answer on {base}:\n{log.read_text()}")


def run_papertide(env: dict, *args: str, timeout: float = 180.0) -> subprocess.CompletedProcess:
    """``papertide ARGS`` in its own process with ``env``; asserts it exits 0 (its output in the message)."""
    done = subprocess.run([sys.executable, "-m", "papertide", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip
    assert done.returncode == 0, f"papertide {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
    return done
