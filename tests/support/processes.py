"""Child processes the tests start (the app served for real): stopping them the same way everywhere."""

from __future__ import annotations

import subprocess


def stop(proc: subprocess.Popen, timeout: float = 30) -> None:
    """Ask the process to end (SIGTERM), and kill it when it has not within `timeout` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
