"""One Compose stack per test session, shared by the end-to-end and the browser tests, and
one headless Chromium per module (a fresh page per test)."""

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page
from support.browser import launch_chromium, new_page
from support.compose import ComposeStack, compose_stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeStack]:
    with compose_stack(tmp_path_factory.mktemp("compose")) as running:
        print(f"\ncompose stack {running.project} up; seconds per step: {running.timings}")
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launch_chromium() as chromium:
        yield chromium


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    with new_page(browser) as fresh:
        yield fresh
