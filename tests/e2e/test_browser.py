"""Real headless Chromium (Debian's package) against the Compose stack.

Swagger UI must work with no internet: every request that leaves the API's own origin is
aborted and recorded, and the test asserts there were none. The screenshots land in
$SCREENSHOTS_DIR, by default docs/img/, where the README shows them (set it to keep the
working tree clean).
"""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, Route, expect, sync_playwright
from support import REPO_ROOT
from support.compose import ComposeStack

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
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


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium chromium-driver")
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        # A fresh temporary profile per launch; Playwright runs it headless.
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    yield context.new_page()
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


def test_swagger_ui_works_offline_and_classifies(stack: ComposeStack, page: Page) -> None:
    blocked = block_other_origins(page, stack.api_url)

    page.goto(f"{stack.api_url}/docs")
    paths = page.locator(".opblock-summary-path")
    expect(paths.first).to_be_visible()
    rendered = set(paths.all_inner_texts())
    assert {"/models", "/classify/{model}", "/health"} <= {p.strip() for p in rendered}
    save_screenshot(page, "swagger.png")

    classify = page.locator(".opblock-post").filter(
        has=page.locator('[data-path="/classify/{model}"]')
    )
    classify.locator(".opblock-summary").click()
    classify.get_by_role("button", name="Try it out").click()
    classify.locator('input[placeholder="model"]').fill("randomforest")
    classify.get_by_role("button", name="Execute").click()
    live_response = classify.locator(".live-responses-table .response").first
    expect(live_response.locator(".response-col_status")).to_contain_text("200")
    # The body is pre-filled with the first documented example: the original Adelie.
    expect(live_response).to_contain_text('"species_name": "Adelie"')
    save_screenshot(page, "swagger-try-it-out.png", top=classify, bottom=live_response)

    assert blocked == [], f"Swagger UI tried to reach outside the API: {blocked}"


def test_jupyter_lab_login_with_token_shows_the_notebook(stack: ComposeStack, page: Page) -> None:
    blocked = block_other_origins(page, stack.jupyter_url)

    page.goto(f"{stack.jupyter_url}/lab")
    expect(page).to_have_url(f"{stack.jupyter_url}/login?next=%2Flab")
    page.locator("#password_input").fill(stack.jupyter_token)
    page.locator("#login_submit").click()

    notebook_entry = page.locator(".jp-DirListing-itemName", has_text="train.ipynb")
    expect(notebook_entry).to_be_visible()
    notebook_entry.dblclick()
    notebook = page.locator(".jp-NotebookPanel")
    expect(notebook.get_by_role("heading", name="Penguin classifier: training")).to_be_visible()
    expect(page.locator(".jp-StatusBar-Widget", has_text="Idle")).to_be_visible()
    save_screenshot(page, "jupyterlab.png")

    assert blocked == [], f"Jupyter Lab tried to reach outside: {blocked}"
