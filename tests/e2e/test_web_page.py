"""The web page at GET / in headless Chromium, against a live API started here with models
trained by the project's trainer (see tests/support/web_page.py for the checks).

Every test blocks requests to other origins and fails on any it sees, and on console errors.
The screenshots land in $SCREENSHOTS_DIR, by default docs/img/ (ui-*.png).
"""

import contextlib
import io
import re
import time
from collections import Counter

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from support import web_page
from support.browser import new_page, save_screenshot
from support.live_server import LiveServer, live_server
from support.models import ModelStore, penguin_split

from penguin_contract import model_filename

pytestmark = pytest.mark.browser


@pytest.fixture
def api(server_env, tmp_path):
    """A live API over a private copy of the trained models and their report directory."""
    with live_server(server_env, tmp_path / "server.out") as server:
        yield server


def test_a_real_gentoo_is_gentoo_for_every_model_and_shows_in_predictions(
    api: LiveServer, page: Page
) -> None:
    with web_page.open_web_page(page, api.base_url) as watch:
        models = web_page.check_every_model_answers(page, api.base_url, "Gentoo")
        clasificar = page.locator("#clasificar")
        save_screenshot(page, "ui-clasificar.png", top=clasificar, bottom=clasificar)
        web_page.check_prediction_shown(page, models, "Gentoo")
        for model in models:
            gentoo = page.locator(f'#stats-body tr[data-model="{model}"] td').nth(2)
            expect(gentoo).to_have_text("1")
        predicciones = page.locator("#predicciones")
        save_screenshot(page, "ui-predicciones.png", top=predicciones, bottom=predicciones)
    watch.assert_clean()


def test_an_out_of_range_value_shows_the_apis_message_by_the_field(
    api: LiveServer, page: Page
) -> None:
    with web_page.open_web_page(page, api.base_url) as watch:
        web_page.check_out_of_range_message(page, api.base_url, "svm")
    watch.assert_clean(allowed_statuses=(422,))


def test_a_broken_model_file_is_listed_with_its_reason_and_the_others_still_answer(
    api: LiveServer, page: Page, model_store: ModelStore
) -> None:
    with web_page.open_web_page(page, api.base_url) as watch:
        (model_store.models_dir / model_filename("x")).write_bytes(b"\x00garbage, not a pickle")
        web_page.check_broken_model_listed(page, api.base_url, "x")
        web_page.check_every_model_answers(page, api.base_url, "Gentoo")
        expect(web_page.answer_card(page, "x")).to_have_count(0)
        best = web_page.model_row(page, "randomforest")
        best.locator("summary").click()
        expect(best.locator("img")).to_be_visible()
        modelos = page.locator("#modelos")
        save_screenshot(page, "ui-modelos.png", top=modelos, bottom=modelos)
    watch.assert_clean()


def test_models_trained_retrained_or_deleted_while_the_page_is_open_update_the_table(
    api: LiveServer, page: Page, model_store: ModelStore
) -> None:
    with web_page.open_web_page(page, api.base_url) as watch:
        trained_at = web_page.model_row(page, "gradientboosting").locator("time")
        before = web_page.listed_model(api.base_url, "gradientboosting")["trained_at"]
        expect(trained_at).to_have_attribute("datetime", before)
        time.sleep(1.1)  # trained_at has one-second resolution
        model_store.train({"gradientboosting": GradientBoostingClassifier(n_estimators=5)})
        after = web_page.listed_model_when(
            api.base_url, "gradientboosting", lambda model: model["trained_at"] != before
        )["trained_at"]
        expect(trained_at).to_have_attribute("datetime", after, timeout=web_page.REFRESH_TIMEOUT_MS)
        model_store.train({"logreg": LogisticRegression(max_iter=1000)})
        web_page.check_model_appears(page, "logreg")
        expect(web_page.model_row(page, "logreg").locator(".status-ok")).to_have_text("disponible")
        (model_store.models_dir / model_filename("svm")).unlink()
        web_page.check_model_disappears(page, "svm")
        web_page.check_every_model_answers(page, api.base_url, "Chinstrap")
        expect(web_page.answer_card(page, "logreg")).to_have_count(1)
    watch.assert_clean()


def test_the_table_sorts_with_the_keyboard_and_shows_confusion_matrices(
    api: LiveServer, page: Page, model_store: ModelStore
) -> None:
    model_store.train({"knn": KNeighborsClassifier(n_neighbors=25)})
    with web_page.open_web_page(page, api.base_url) as watch:
        expect(page.locator("#models-table tbody")).to_have_count(4)
        f1_header = page.locator('#models-table th[data-key="test_f1"]')
        f1_header.locator("button").focus()
        page.keyboard.press("Enter")
        expect(f1_header).to_have_attribute("aria-sort", "descending")
        order = page.locator("#models-table tbody").evaluate_all(
            "bodies => bodies.map(b => b.dataset.model)"
        )
        f1 = {
            name: web_page.listed_model(api.base_url, name)["metrics"]["test_f1"] for name in order
        }
        assert [f1[name] for name in order] == sorted(f1.values(), reverse=True)
        page.keyboard.press("Enter")
        expect(f1_header).to_have_attribute("aria-sort", "ascending")

        row = web_page.model_row(page, "svm")
        row.locator("summary").focus()
        page.keyboard.press("Enter")
        image = row.locator("img")
        expect(image).to_be_visible()
        expect(row).to_contain_text("1 Adelie, 2 Chinstrap, 3 Gentoo")
        per_class = row.locator("table.per-class")
        expect(per_class.locator("caption")).to_have_text("Informe por clase (conjunto de prueba)")
        expected = web_page.described_model(api.base_url, "svm")["per_class"]
        for species, scores in expected.items():
            expect(per_class.locator("tr", has_text=species)).to_contain_text(
                str(scores["support"])
            )
        assert image.evaluate("img => img.complete && img.naturalWidth > 0")
        expect(page.locator("tbody.is-best .badge-best")).to_have_count(1)
    watch.assert_clean()


def _bird_the_models_disagree_on(base_url: str, models: list[str]) -> dict:
    """A valid bird between the species (bounded search with the batch endpoint)."""
    candidates = [
        {"island": island, "bill_length_mm": length, "bill_depth_mm": depth,
         "flipper_length_mm": flipper, "body_mass_g": 4200, "sex": 0, "year": 2008}
        for island in (2, 3)
        for length in (40.0, 43.0, 46.0, 49.0, 52.0)
        for depth in (14.0, 15.5, 17.0, 18.5, 20.0)
        for flipper in (185, 195, 205, 215)
    ]  # fmt: skip
    answers = {
        model: httpx.post(
            f"{base_url}/classify/{model}/batch", json={"instances": candidates}, timeout=60
        ).json()["predictions"]
        for model in models
    }
    for index, bird in enumerate(candidates):
        if len({answers[model][index]["species_name"] for model in models}) > 1:
            return bird
    pytest.fail("every candidate bird got the same species from every model")


def test_disagreement_between_models_is_highlighted(api: LiveServer, page: Page) -> None:
    models = web_page.usable_models(api.base_url)
    bird = _bird_the_models_disagree_on(api.base_url, models)
    with web_page.open_web_page(page, api.base_url) as watch:
        for name, value in bird.items():
            control = page.locator(f'[name="{name}"]')
            if name in ("island", "sex"):
                control.select_option(str(value))
            else:
                control.fill(str(value))
        page.get_by_role("button", name="Clasificar", exact=True).click()
        expect(page.locator("#agreement")).to_have_class(re.compile(r"\bdisagree\b"))
        expect(page.locator("#agreement")).to_contain_text("Los modelos no coinciden")
        species = {
            model: web_page.answer_card(page, model).locator(".species").inner_text()
            for model in models
        }
        majority = Counter(species.values()).most_common(1)[0][0]
        for model in models:
            card = web_page.answer_card(page, model)
            if species[model] != majority:
                expect(card).to_have_class(re.compile(r"\bdisagrees\b"))
                expect(card.locator(".verdict")).to_have_text("No coincide con la mayoría")
            else:
                expect(card).not_to_have_class(re.compile(r"\bdisagrees\b"))
    watch.assert_clean()


def test_keyboard_labels_landmarks_and_contrast(
    api: LiveServer, page: Page, model_store: ModelStore
) -> None:
    (model_store.models_dir / model_filename("x")).write_bytes(b"garbage")  # its reason in red
    with web_page.open_web_page(page, api.base_url) as watch:
        web_page.check_labels_and_landmarks(page)
        expect(page.get_by_label("Longitud del pico (mm)")).to_have_attribute(
            "name", "bill_length_mm"
        )
        page.get_by_label("Isla").select_option(label="Biscoe")
        button = page.get_by_role("button", name="Clasificar", exact=True)
        web_page.tab_to(page, button)
        page.keyboard.press("Enter")
        expect(page.locator("#agreement")).to_be_visible()
        web_page.check_broken_model_listed(page, api.base_url, "x")
        expect(page.locator("#recent-body tr[data-request-id]").first).to_be_visible()
        assert web_page.check_contrast(page) > 50
    watch.assert_clean()


def test_phone_width_is_usable(api: LiveServer, browser: Browser) -> None:
    with new_page(browser, width=375, height=812) as phone:
        with web_page.open_web_page(phone, api.base_url) as watch:
            web_page.check_phone_width(phone, api.base_url)
            phone.evaluate("window.scrollTo(0, 0)")
            save_screenshot(phone, "ui-movil.png")
        watch.assert_clean()


def test_answers_show_their_version_and_the_model_detail_shows_the_history(
    api: LiveServer, page: Page, model_store: ModelStore
) -> None:
    """Issue 20: a rejected svm candidate is in the table, below the served version."""
    with contextlib.redirect_stdout(io.StringIO()):
        model_store.trainer().train_and_save(
            "svm", SVC(C=0.001), *penguin_split(), scaler=StandardScaler(), promote="if_better"
        )
    versions = httpx.get(f"{api.base_url}/models/svm/versions", timeout=30).json()
    served = versions["served_version"]
    with web_page.open_web_page(page, api.base_url) as watch:
        web_page.classify_real_bird(page, "Gentoo")
        card = web_page.answer_card(page, "svm")
        expect(card.locator(".model-version")).to_have_text(f"Versión {served[:12]}")
        row = web_page.model_row(page, "svm")
        row.locator("summary").click()
        entries = row.locator("table.history tbody tr")
        expect(entries).to_have_count(2)
        expect(entries.nth(0)).to_contain_text("Rechazada")
        expect(entries.nth(0)).not_to_contain_text("servida")
        expect(entries.nth(1)).to_contain_text("Promovida")
        expect(row.locator(f'tr.served[data-version="{served}"]')).to_contain_text("✔ servida")
    watch.assert_clean()
