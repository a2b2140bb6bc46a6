"""How the project is installed and started: requirements.txt mirrors pyproject.toml, and `python app.py`
serves offline on 127.0.0.1 at the port it is given."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.processes import stop

ROOT = Path(__file__).resolve().parents[1]
OFFLINE = {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
           "TRANSFORMERS_OFFLINE": "1"}


def test_requirements_match_pyproject():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    reqs = [ln.strip() for ln in (ROOT / "requirements.txt").read_text().splitlines()
            if ln.strip() and not ln.startswith("#")]

    def norm(s: str) -> str:
        return re.sub(r"[-_.]+", "-", s.lower())

    assert sorted(map(norm, reqs)) == sorted(map(norm, deps))


def _clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without the offline switches and server settings app.py must supply itself."""
    env = {k: v for k, v in os.environ.items() if k not in OFFLINE and not k.startswith("GRADIO_SERVER_")}
    env.update(MMRE_ANNOTATIONS_DB=str(tmp_path / "ann.sqlite3"), PYTHONPATH=str(ROOT), **extra)
    return env


def test_app_py_switches_analytics_and_the_hub_off_whatever_the_environment(tmp_path):
    # import app.py as a module (not __main__: no server), report, and leave at once (the model loads in a thread)
    code = ("import json, os, runpy, sys; ns = runpy.run_path('app.py', run_name='imported'); "
            f"print(json.dumps([{{k: os.environ.get(k) for k in {sorted(OFFLINE)!r}}}, type(ns['demo']).__name__])); "
            "sys.stdout.flush(); os._exit(0)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_clean_env(tmp_path), capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    env, kind = json.loads(out.stdout.strip().splitlines()[-1])
    assert kind == "Blocks" and (env.pop("GRADIO_ANALYTICS_ENABLED") or "").lower() == "false"
    # the hub switches are on ("1", or "True" where gradio rewrites the telemetry one)
    assert all((value or "").lower() in ("1", "true") for value in env.values()), env


def _listening_addresses(port: int) -> set[str]:
    """Local IPv4 addresses listening on `port` (from /proc/net/tcp; state 0A = LISTEN)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, _remote, state = line.split()[1:4]
        ip_hex, port_hex = local.split(":")
        if state == "0A" and int(port_hex, 16) == port:
            found.add(socket.inet_ntoa(bytes.fromhex(ip_hex)[::-1]))
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/net/tcp").is_file(), reason="reads the listening sockets from /proc/net/tcp")
def test_app_py_serves_on_localhost_at_the_given_port(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "app.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                env=_clean_env(tmp_path, GRADIO_SERVER_PORT=str(port)))
    try:
        deadline = time.monotonic() + 600  # generous: a shared CPU can be slow
        while True:
            assert proc.poll() is None, log.read_text()[-2000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "app.py did not serve its first page in 600 s"
            time.sleep(0.5)
        assert _listening_addresses(port) == {"127.0.0.1"}  # the default host: this machine only
    finally:
        stop(proc)
