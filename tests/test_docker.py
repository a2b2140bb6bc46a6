"""The image's start-up pieces without Docker (scripts/docker_ci.sh builds and runs the image itself):
docker/serve.py refuses an unwritable data folder and a port in use with one line and its exit code,
docker/healthcheck.py tells a served page from none, and the Dockerfile installs what the README does."""

from __future__ import annotations

import http.server
import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVE = ROOT / "docker" / "serve.py"
HEALTH = ROOT / "docker" / "healthcheck.py"


def run(script: Path, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("GRADIO_SERVER_", "MMRE_"))}
    full.update(env)
    return subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=full, capture_output=True, text=True,
                          timeout=120)


def test_serve_refuses_an_unwritable_data_folder(tmp_path):
    # a file where the store's folder should be: no folder can be made there, whoever runs the test
    # (root ignores permission bits; the read-only volume itself is tested in scripts/docker_ci.sh)
    blocker = tmp_path / "data"
    blocker.write_text("not a folder")
    res = run(SERVE, tmp_path, MMRE_ANNOTATIONS_DB=str(blocker / "annotations" / "ann.sqlite3"))
    assert res.returncode == 3, res.stderr
    assert "not writable" in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_serve_refuses_a_port_in_use(tmp_path):
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        res = run(SERVE, tmp_path, MMRE_ANNOTATIONS_DB=str(tmp_path / "ann" / "ann.sqlite3"),
                  GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port))
    assert res.returncode == 4, res.stderr
    assert f"127.0.0.1:{port}" in res.stderr and "already in use" in res.stderr and "Traceback" not in res.stderr
    assert (tmp_path / "ann").is_dir()  # the store's folder was checked (and made) first


def test_serve_refuses_a_bad_port_setting(tmp_path):
    res = run(SERVE, tmp_path, MMRE_ANNOTATIONS_DB=str(tmp_path / "ann.sqlite3"), GRADIO_SERVER_PORT="web")
    assert res.returncode == 2 and "'web' is not a port number" in res.stderr, res.stderr


def test_healthcheck_tells_a_served_page_from_none(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert run(HEALTH, tmp_path, GRADIO_SERVER_PORT=str(port)).returncode == 0
    finally:
        server.shutdown()
        server.server_close()
    res = run(HEALTH, tmp_path, GRADIO_SERVER_PORT=str(port))  # nothing listens any more
    assert res.returncode == 1 and "unhealthy" in res.stdout


def test_dockerfile_installs_what_the_readme_installs():
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    pins = set(re.findall(r"pip install (torch==[\w.+]+|--no-deps rapidocr-onnxruntime==[\w.]+)", readme))
    assert len(pins) == 2, pins  # one torch pin and one OCR line in the README
    assert all(pin in dockerfile for pin in pins), pins
    # every file the Dockerfile copies is let into the build context by .dockerignore
    allowed = {ln[1:].rstrip("/") for ln in (ROOT / ".dockerignore").read_text().splitlines() if ln.startswith("!")}
    copied = {p for line in re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile, re.M) for p in line.split()}
    copied |= set(re.findall(r"--mount=type=bind,source=([^,\s]+)", dockerfile))
    assert copied and copied <= allowed, copied - allowed
