"""Debian's Chromium driven by Playwright (Python) for the browser tests: where it is, how it starts,
a page of a given size. Never `playwright install`: the system's chromium is used."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("MMRE_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "ci-artifacts" / "screenshots"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def require_chromium() -> Any:
    """Playwright's sync API, or the calling test module skipped with the reason."""
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM} (apt-get install -y chromium; .ci/run does "
                    "it)", allow_module_level=True)
    return pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium for the length of the block."""
    sync_api = require_chromium()
    exe = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser: Any, width: int = 1400, height: int = 1000, **context: Any) -> Any:
    """A page in a fresh context (its own storage) of that viewport; 90 s to wait for anything."""
    page = browser.new_context(viewport={"width": width, "height": height}, **context).new_page()
    page.set_default_timeout(90_000)
    return page
