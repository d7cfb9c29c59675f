"""Headless Chromium for the browser tests, wherever the suite runs.

The browser is, in order: $CHROMIUM (a path), the system's Chromium or Chrome (Debian's
`chromium` package on CI), or the one Playwright downloads with
`uv run playwright install chromium` (a laptop with internet). Without any of them the
test fails and says how to get one; it is never skipped.
"""

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, Route, expect, sync_playwright

from support import REPO_ROOT

SYSTEM_BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
SCREENSHOTS = Path(os.environ.get("SCREENSHOTS_DIR", REPO_ROOT / "docs" / "img"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # Nothing but this machine resolves: the pages must not need the internet.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
TIMEOUT_MS = 60_000
NO_BROWSER = (
    "No Chromium found. Install one of: the system package (Debian/Ubuntu: "
    "`sudo apt-get install chromium`), or Playwright's own build "
    "(`uv run playwright install chromium`). $CHROMIUM may name any Chromium binary."
)


def system_chromium() -> str | None:
    """$CHROMIUM, else the first system Chromium/Chrome on PATH, else None."""
    if configured := os.environ.get("CHROMIUM"):
        return configured
    return next(filter(None, map(shutil.which, SYSTEM_BROWSERS)), None)


@contextmanager
def launch_chromium() -> Iterator[Browser]:
    """A headless Chromium with a fresh temporary profile; fails with NO_BROWSER if none."""
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        executable = system_chromium()
        if executable is None and not Path(playwright.chromium.executable_path).exists():
            pytest.fail(NO_BROWSER)
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def new_page(browser: Browser, width: int = 1280, height: int = 900) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


def block_other_origins(page: Page, origin: str) -> list[str]:
    """Abort every request that does not go to ``origin``; return the list of those URLs."""
    blocked: list[str] = []

    def route(route: Route) -> None:
        if route.request.url.startswith(origin):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    page.route("**/*", route)
    return blocked


def save_screenshot(
    page: Page, name: str, top: Locator | None = None, bottom: Locator | None = None
) -> None:
    """Save the viewport, or the part of the page from ``top``'s top to ``bottom``'s bottom."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    if top is None or bottom is None:
        page.screenshot(path=SCREENSHOTS / name)
        return
    first, last = top.bounding_box(), bottom.bounding_box()  # relative to the viewport
    assert first is not None and last is not None
    scrolled = page.evaluate("window.scrollY")
    clip = {
        "x": 0,
        "y": first["y"] + scrolled,
        "width": page.viewport_size["width"],
        "height": last["y"] + last["height"] - first["y"],
    }
    page.screenshot(path=SCREENSHOTS / name, full_page=True, clip=clip)
