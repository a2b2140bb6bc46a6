"""A real Label Studio for the interop tests: started on loopback with a fresh data folder, reached through
its REST API with a legacy token, stopped by its PID (its process group) when the tests end.

Label Studio lives in its own virtual environment (its pins clash with ours): `.ci/run` installs it in
`.venv-ls/` (`label-studio==1.23.2` with `sentry-sdk<3`, which it needs to start); `$MMRE_LABEL_STUDIO` may
name another `label-studio` executable. Images are served from `LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT`
through a local-files storage, the set-up docs/annotations.md describes.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.processes import stop

REPO = Path(__file__).resolve().parents[2]
VERSION = "1.23.2"
START_TIMEOUT_S = 240  # the first start migrates a fresh SQLite database (~40 s on 2 cores)


def executable() -> Path | None:
    """The `label-studio` to run, or None when it is not installed."""
    named = os.environ.get("MMRE_LABEL_STUDIO")
    path = Path(named) if named else REPO / ".venv-ls" / "bin" / "label-studio"
    return path if path.is_file() else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LabelStudio:
    """A running Label Studio: its URL, token, process and a client for its API."""

    url: str
    token: str
    proc: subprocess.Popen
    log: Path

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.token}"}

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers, timeout=120)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One API call; a non-2xx answer fails with Label Studio's own message."""
        with self.client() as c:
            r = c.request(method, path, **kwargs)
        if r.status_code >= 300:
            raise AssertionError(f"Label Studio {method} {path}: {r.status_code} {r.text[:800]}")
        return r.json() if r.content and "json" in r.headers.get("content-type", "") else r.content

    def create_project(self, title: str, label_config: str) -> int:
        return self.call("POST", "/api/projects", json={"title": title, "label_config": label_config})["id"]

    def add_local_storage(self, project: int, folder: Path) -> int:
        """A local-files storage over `folder` (under the document root): what lets Label Studio serve its
        files at /data/local-files/?d=..."""
        storage = self.call("POST", "/api/storages/localfiles",
                            json={"project": project, "path": str(folder), "use_blob_urls": False,
                                  "title": "images"})
        return storage["id"]

    def import_tasks(self, project: int, tasks: list[dict]) -> dict:
        return self.call("POST", f"/api/projects/{project}/import", json=tasks)

    def export_json(self, project: int) -> list[dict]:
        """Label Studio's JSON export, as its Export button gives it."""
        return self.call("GET", f"/api/projects/{project}/export", params={"exportType": "JSON"})

    def stop(self) -> None:
        stop(self.proc, group=True)


def wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout_s: float) -> bool:
    """Poll `url` until it answers 200 (True), the process ends or the time is up (False)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(1)
    return False


def start(exe: Path, data_dir: Path, files_root: Path) -> LabelStudio:
    """Start Label Studio with a fresh data folder, one admin user with a known legacy token, and local
    files served from `files_root`; wait until it answers /health."""
    port, token = free_port(), secrets.token_hex(20)
    env = {**os.environ, "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true",
           "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(files_root), "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
           "SENTRY_DSN": "", "FRONTEND_SENTRY_DSN": "", "COLLECT_ANALYTICS": "false",
           # the ML backend under test listens on loopback, which Label Studio blocks by default (SSRF guard)
           "LABEL_STUDIO_ML_BLOCK_LOCAL_IP": "false", "LABEL_STUDIO_SSRF_PROTECTION_ENABLED": "false"}
    log = data_dir / "label_studio.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(exe), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port),
             "--data-dir", str(data_dir), "--username", "admin@example.com", "--password", secrets.token_hex(8),
             "--user-token", token, "--enable-legacy-api-token"],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    ls = LabelStudio(f"http://127.0.0.1:{port}", token, proc, log)
    if not wait_healthy(f"{ls.url}/health", proc, log, START_TIMEOUT_S):
        ls.stop()
        raise RuntimeError(f"Label Studio did not answer /health (exit code {proc.returncode}): "
                           f"{log.read_text()[-2000:]}")
    return ls
