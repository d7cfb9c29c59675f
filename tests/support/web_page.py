"""Driving the web page at GET / in Chromium: what the browser tests check, wherever the API runs
(a live server started by the test, or the Compose stack)."""

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
from playwright.sync_api import Locator, Page, expect

from support.browser import block_other_origins

# How long the page may show a stale model list: it polls every 2 s.
REFRESH_TIMEOUT_MS = 10_000
# Chromium logs every HTTP error answer as a console error; 422 is expected where a test
# submits an invalid value on purpose.
HTTP_ERROR_LOG = re.compile(r"Failed to load resource: the server responded with a status of (\d+)")


@dataclass
class PageWatch:
    """What the page did that it should not: requests to other origins, console errors."""

    blocked: list[str]
    errors: list[str] = field(default_factory=list)

    def assert_clean(self, allowed_statuses: tuple[int, ...] = ()) -> None:
        assert self.blocked == [], f"the page tried to leave the API's origin: {self.blocked}"
        unexpected = [
            error
            for error in self.errors
            if not ((match := HTTP_ERROR_LOG.search(error)) and int(match[1]) in allowed_statuses)
        ]
        assert unexpected == [], f"console errors: {unexpected}"


@contextmanager
def open_web_page(page: Page, base_url: str) -> Iterator[PageWatch]:
    """Block other origins, record console errors, open GET / and wait for the model table."""
    watch = PageWatch(block_other_origins(page, base_url))
    page.on("console", lambda m: watch.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: watch.errors.append(f"pageerror: {error}"))
    page.goto(f"{base_url}/")
    expect(page.locator("#models-table tbody").first).to_be_visible()
    page.evaluate("window.__sameDocument = true")  # gone if the page ever reloads
    yield watch
    assert page.evaluate("window.__sameDocument") is True, "the page reloaded"


def usable_models(base_url: str) -> list[str]:
    listing = httpx.get(f"{base_url}/models", timeout=30).json()["available_models"]
    return [model["name"] for model in listing if model["status"] == "ok"]


def listed_model(base_url: str, name: str) -> dict:
    listing = httpx.get(f"{base_url}/models", timeout=30).json()["available_models"]
    return next(model for model in listing if model["name"] == name)


def described_model(base_url: str, name: str) -> dict:
    return httpx.get(f"{base_url}/models/{name}", timeout=30).json()


def listed_model_when(base_url: str, name: str, condition, timeout_s: float = 10) -> dict:
    """The API's listing entry of ``name`` once ``condition`` holds for it (bounded wait)."""
    deadline = time.monotonic() + timeout_s
    while True:
        model = listed_model(base_url, name)
        if condition(model) or time.monotonic() > deadline:
            assert condition(model), f"the API still lists {model}"
            return model
        time.sleep(0.2)


def answer_card(page: Page, model: str) -> Locator:
    return page.locator(f'#answers > li[data-model="{model}"]')


def model_row(page: Page, model: str) -> Locator:
    return page.locator(f'#models-table tbody[data-model="{model}"]')


def classify_real_bird(page: Page, species: str) -> None:
    """Pick the first real bird of ``species`` and press Clasificar."""
    option = page.locator("#real-bird option", has_text=f"{species}:").first
    page.select_option("#real-bird", value=option.get_attribute("value"))
    page.get_by_role("button", name="Clasificar", exact=True).click()


def check_every_model_answers(page: Page, base_url: str, species: str) -> list[str]:
    """Classify a real bird of ``species``: every usable model answers it, side by side."""
    models = usable_models(base_url)
    assert models, "no usable model to ask"
    classify_real_bird(page, species)
    expect(page.locator("#answers > li")).to_have_count(len(models))
    for model in models:
        expect(answer_card(page, model).locator(".species")).to_have_text(species)
    expect(page.locator("#agreement")).to_have_text(
        f"Los {len(models)} modelos coinciden: {species}."
    )
    for model in models:
        check_answer_details(answer_card(page, model), base_url, model)
    return models


def check_answer_details(card: Locator, base_url: str, model: str) -> None:
    """Probability bars when the model has them, and the runtime when the API names it."""
    detail = httpx.get(f"{base_url}/models/{model}", timeout=30).json()
    bars = card.locator("progress")
    expect(bars).to_have_count(3 if detail["probabilities"] else 0)
    if detail.get("runtime"):  # the API names the runtime once it serves ONNX (SERVING_API.md)
        expect(card.locator(".badge-runtime")).to_have_text(detail["runtime"])


def check_prediction_shown(page: Page, models: list[str], species: str) -> None:
    """The predictions panel shows the new predictions and counts them."""
    recent = page.locator("#recent-body tr")
    for model in models:
        expect(recent.filter(has_text=model).filter(has_text=species).first).to_be_visible()
        counts = page.locator(f'#stats-body tr[data-model="{model}"]')
        expect(counts).to_be_visible()


def check_out_of_range_message(page: Page, base_url: str, model: str) -> None:
    """An out-of-range bill length: the API's own message appears next to that field."""
    page.locator('input[name="bill_length_mm"]').fill("500")
    page.get_by_role("button", name="Clasificar", exact=True).click()
    body = {
        "island": 1, "bill_length_mm": 500, "bill_depth_mm": 18.7, "flipper_length_mm": 181,
        "body_mass_g": 3750, "sex": 1, "year": 2007,
    }  # fmt: skip
    answer = httpx.post(f"{base_url}/classify/{model}", json=body, timeout=30)
    assert answer.status_code == 422
    [issue] = answer.json()["detail"]
    message = page.locator("#e-bill_length_mm")
    expect(message).to_be_visible()
    expect(message).to_have_text(issue["msg"])
    field_input = page.locator("#f-bill_length_mm")
    expect(field_input).to_have_attribute("aria-invalid", "true")
    assert "e-bill_length_mm" in field_input.get_attribute("aria-describedby").split()
    expect(field_input).to_be_focused()
    expect(page.locator("#answers > li")).to_have_count(0)


def check_broken_model_listed(page: Page, base_url: str, name: str) -> None:
    """A model file that cannot be loaded shows up in the table with the API's reason."""
    row = model_row(page, name)
    expect(row).to_be_visible(timeout=REFRESH_TIMEOUT_MS)
    listed = listed_model(base_url, name)
    assert listed["status"] != "ok"
    expect(row.locator(".status-bad")).to_have_text(listed["status"])
    expect(row.locator(".reason").first).to_have_text(listed["reason"])


def check_model_appears(page: Page, name: str) -> None:
    expect(model_row(page, name)).to_be_visible(timeout=REFRESH_TIMEOUT_MS)


def check_model_disappears(page: Page, name: str) -> None:
    expect(model_row(page, name)).to_have_count(0, timeout=REFRESH_TIMEOUT_MS)


def check_phone_width(page: Page, base_url: str) -> None:
    """At 375 px nothing overflows the page sideways and classifying still works."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"the page is {width} px wide at a 375 px viewport"
    button = page.get_by_role("button", name="Clasificar", exact=True)
    button.scroll_into_view_if_needed()
    box = button.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375
    check_every_model_answers(page, base_url, "Adelie")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375


# Every visible element with text of its own: its colour against the background it is drawn
# on (the backgrounds of it and its ancestors composited over white), WCAG's contrast ratio.
LOW_CONTRAST_JS = """
minimum => {
  const parse = (css) => {
    const match = css.match(/rgba?\\(([^)]+)\\)/);
    if (!match) return null;
    const [r, g, b, a = 1] = match[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return { r, g, b, a };
  };
  const over = (top, bottom) => ({
    r: top.r * top.a + bottom.r * (1 - top.a),
    g: top.g * top.a + bottom.g * (1 - top.a),
    b: top.b * top.a + bottom.b * (1 - top.a),
    a: 1,
  });
  const backdrop = (element) => {
    const layers = [];
    for (let node = element; node; node = node.parentElement) {
      const colour = parse(getComputedStyle(node).backgroundColor);
      if (colour && colour.a > 0) layers.push(colour);
      if (colour && colour.a === 1) break;
    }
    const white = { r: 255, g: 255, b: 255, a: 1 };
    return layers.reverse().reduce((below, layer) => over(layer, below), white);
  };
  const luminance = ({ r, g, b }) => {
    const channel = (v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  };
  const failures = [];
  let checked = 0;
  for (const element of document.body.querySelectorAll("*")) {
    if (element.tagName === "OPTION" || !element.checkVisibility()) continue;
    const ownText = [...element.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!ownText) continue;
    checked += 1;
    const background = backdrop(element);
    const text = over(parse(getComputedStyle(element).color), background);
    const [light, dark] = [luminance(text), luminance(background)].sort((x, y) => y - x);
    const ratio = (light + 0.05) / (dark + 0.05);
    if (ratio < minimum) {
      const text = element.textContent.trim().slice(0, 40);
      failures.push(`${element.tagName}.${element.className} ${text}: ${ratio.toFixed(2)}`);
    }
  }
  return { checked, failures };
}
"""


def check_contrast(page: Page, minimum: float = 4.5) -> int:
    """Every visible text has a contrast of at least ``minimum``; returns how many were checked."""
    result = page.evaluate(LOW_CONTRAST_JS, minimum)
    assert result["failures"] == [], f"text below {minimum}:1 contrast: {result['failures']}"
    return result["checked"]


def check_labels_and_landmarks(page: Page) -> None:
    """One banner, navigation and main; every control has a label naming it."""
    for role in ("banner", "navigation", "main"):
        expect(page.get_by_role(role)).to_have_count(1)
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll("input, select, button")]
            .filter((c) => !(c.labels && c.labels.length) && !c.getAttribute("aria-label")
                           && !c.textContent.trim())
            .map((c) => c.outerHTML)"""
    )
    assert unlabelled == []


def tab_to(page: Page, target: Locator, presses: int = 40) -> None:
    """Press Tab until ``target`` has the focus (bounded); its focus ring must show."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        if target.evaluate("node => node === document.activeElement"):
            break
    expect(target).to_be_focused()
    outline = target.evaluate(
        "node => { const s = getComputedStyle(node); return [s.outlineStyle, s.outlineWidth]; }"
    )
    assert outline[0] != "none" and float(outline[1].removesuffix("px")) >= 2, outline
