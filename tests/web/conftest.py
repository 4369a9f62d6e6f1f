"""A real headless Chromium (Debian's `chromium`, driven by Playwright) for the status-page tests."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests import tls_mode

CHROMIUM = os.environ.get("DFS_CHROMIUM", "/usr/bin/chromium")
#: Flags for a root, offline, GPU-less machine: no sandbox (root), and no calls home, which a
#: closed network refuses by the dozen.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture()
def browser() -> Iterator[Browser]:
    """A Chromium per test; skipped where there is none, unless DFS_REQUIRE_BROWSER=1.

    Per test, not per session: Playwright's sync API runs an asyncio loop in this thread while
    it is started, and every other test that calls `asyncio.run` would fail under it.
    """
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        if os.environ.get("DFS_REQUIRE_BROWSER") == "1":
            pytest.fail(f"DFS_REQUIRE_BROWSER=1 but {CHROMIUM} is missing (apt-get install chromium)")
        pytest.skip(f"no Chromium at {CHROMIUM}")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture()
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (no cookies, no cache) and page per test."""
    # DFS_TEST_TLS=1: the pages come over https, signed by the test session's own CA.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, ignore_https_errors=tls_mode.enabled())
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where page screenshots go: DFS_SCREENSHOT_DIR (docs/screenshots to refresh the docs) or a temp dir."""
    configured = os.environ.get("DFS_SCREENSHOT_DIR")
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("screenshots")
