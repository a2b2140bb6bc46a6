"""Child processes the tests start (the app, Label Studio, the ML backend served for real): stopping them the
same way everywhere, by their PID."""

from __future__ import annotations

import os
import signal
import subprocess


def stop(proc: subprocess.Popen, timeout: float = 30, group: bool = False) -> None:
    """Ask the process to end (SIGTERM), and kill it when it has not within `timeout` seconds. `group`: the
    process was started with `start_new_session=True`; its whole process group (its children too) is signalled."""
    if proc.poll() is not None:
        return

    def send(sig: int) -> None:
        if group:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)

    send(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        proc.wait(10)
