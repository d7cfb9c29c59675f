"""Real headless Chromium (see support.browser) against the Compose stack.

Swagger UI must work with no internet: every request that leaves the API's own origin is
aborted and recorded, and the test asserts there were none. The screenshots land in
$SCREENSHOTS_DIR, by default docs/img/, where the README shows them (set it to keep the
working tree clean).
"""

import pytest
from playwright.sync_api import Page, expect
from support.browser import block_other_origins, save_screenshot
from support.compose import ComposeStack

pytestmark = pytest.mark.browser


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
    title = "Clasificador de pingüinos: entrenamiento"
    expect(notebook.get_by_role("heading", name=title)).to_be_visible()
    expect(page.locator(".jp-StatusBar-Widget", has_text="Idle")).to_be_visible()
    # Opening it must not rewrite it: no "modified" dot on its tab before anything ran.
    expect(page.locator(".lm-TabBar-tab.jp-mod-dirty")).to_have_count(0)
    save_screenshot(page, "jupyterlab.png")

    assert blocked == [], f"Jupyter Lab tried to reach outside: {blocked}"
    # Opening a notebook used to log these harmless but alarming warnings.
    log = stack.compose("logs", "--no-color", "jupyter").stdout
    harmless = ("websocket_ping_timeout", "without nodejs", "TCP without encryption", "trusted")
    assert [message for message in harmless if message in log] == []
