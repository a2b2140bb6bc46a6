"""Start the web app in the container (the image's default command).

Before the app loads anything it checks what would otherwise fail later with a traceback (and, under a
restart policy, again and again): the folder of the annotation store ($MMRE_ANNOTATIONS_DB, in the /data
volume) must be writable, and $GRADIO_SERVER_PORT must be free. Either problem is one line on stderr
(the container's log) and a distinct exit code. Then app.py runs; SIGTERM (`docker stop`) closes the
server the way Ctrl-C does, since PID 1 gets no default signal handling.
"""

from __future__ import annotations

import os
import runpy
import signal
import socket
import sys
import tempfile
from pathlib import Path
from typing import NoReturn

APP = Path(__file__).resolve().parents[1] / "app.py"
EXIT_NOT_WRITABLE = 3
EXIT_PORT_IN_USE = 4
EXIT_BAD_SETTING = 2


def fail(message: str, code: int) -> NoReturn:
    print(f"mmre serve: error: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


def unwritable_reason(folder: Path) -> str | None:
    """Why files cannot be created in `folder` (made if missing), or None when they can."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".mmre-write-test-"):
            pass
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def port_in_use_reason(host: str, port: int) -> str | None:
    """Why the app could not listen on host:port, or None when it can."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # as uvicorn binds: a port held only by closed connections (TIME_WAIT) counts as free
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # Gradio's launch() closes the server on it


def main() -> int:
    from mmre_demo.annotations import default_db_path  # the app's own rule for $MMRE_ANNOTATIONS_DB

    db = default_db_path()
    reason = unwritable_reason(db.parent)
    if reason is not None:
        fail(f"the annotation store's folder {db.parent} is not writable ({reason}). Mount a writable volume "
             f"at /data (docker run -v mmre-data:/data ...; a host folder must be writable by uid {os.getuid()}).",
             EXIT_NOT_WRITABLE)

    host = os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1")
    raw_port = os.environ.get("GRADIO_SERVER_PORT", "7860")
    try:
        port = int(raw_port)
    except ValueError:
        fail(f"GRADIO_SERVER_PORT={raw_port!r} is not a port number.", EXIT_BAD_SETTING)
    reason = port_in_use_reason(host, port)
    if reason is not None:
        fail(f"cannot listen on {host}:{port} ({reason}): the port is already in use. Choose another one "
             f"(docker run -e GRADIO_SERVER_PORT=... with --network host, or -p OTHER:{port}).", EXIT_PORT_IN_USE)

    signal.signal(signal.SIGTERM, _stop)
    sys.argv = [str(APP)]
    sys.path[0] = str(APP.parent)  # as `python app.py` would have it
    try:
        runpy.run_path(str(APP), run_name="__main__")
    except KeyboardInterrupt:  # stopped while still starting
        print("mmre serve: stopped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
