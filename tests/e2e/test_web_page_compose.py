"""The web page's main checks (tests/support/web_page.py) against the Compose stack, as a
newcomer opens it: http://localhost:8000/ after `docker compose up --build`.

Models are broken and trained inside the Jupyter container, which owns the models volume;
every file a test adds is removed again, since the stack is shared by the session.
"""

import secrets

import pytest
from playwright.sync_api import Browser, Page, expect
from support import web_page
from support.browser import new_page
from support.compose import ComposeStack

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

MODELS_DIR = "/app/models"  # in the Jupyter container (Docker/docker-compose.yml)
REPORT_DIR = "/app/report"
TRAIN_ONE_MODEL = """
import sys
sys.path.insert(0, "/app/notebooks")
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from penguin_contract import FEATURES, TARGET
from utils.model_trainer import ModelTrainer

frame = pd.read_csv("/app/data/penguins_v1.csv")
split = train_test_split(
    frame[list(FEATURES)], frame[TARGET], test_size=0.2, random_state=42, stratify=frame[TARGET]
)
ModelTrainer().train_and_save({name!r}, LogisticRegression(max_iter=1000), *split)
print("trained")
"""


def _remove_model_files(stack: ComposeStack, name: str) -> None:
    stack.exec(
        "jupyter", "rm", "-f", f"{MODELS_DIR}/{name}_model.pkl", f"{MODELS_DIR}/{name}_model.onnx",
        f"{REPORT_DIR}/{name}_confusion_matrix.png",
    )  # fmt: skip


def test_a_real_gentoo_is_gentoo_for_every_model_and_shows_in_predictions(
    stack: ComposeStack, page: Page
) -> None:
    with web_page.open_web_page(page, stack.api_url) as watch:
        models = web_page.check_every_model_answers(page, stack.api_url, "Gentoo")
        web_page.check_prediction_shown(page, models, "Gentoo")
    watch.assert_clean()


def test_an_out_of_range_value_shows_the_apis_message_by_the_field(
    stack: ComposeStack, page: Page
) -> None:
    with web_page.open_web_page(page, stack.api_url) as watch:
        web_page.check_out_of_range_message(page, stack.api_url, "svm")
    watch.assert_clean(allowed_statuses=(422,))


def test_broken_and_new_models_appear_without_a_reload(stack: ComposeStack, page: Page) -> None:
    broken, trained = f"ui_broken_{secrets.token_hex(3)}", f"ui_new_{secrets.token_hex(3)}"
    try:
        with web_page.open_web_page(page, stack.api_url) as watch:
            stack.exec("jupyter", "sh", "-c", f"printf garbage > {MODELS_DIR}/{broken}_model.pkl")
            web_page.check_broken_model_listed(page, stack.api_url, broken)
            run = stack.exec("jupyter", "python", "-c", TRAIN_ONE_MODEL.format(name=trained))
            assert "trained" in run.stdout
            web_page.check_model_appears(page, trained)
            row = web_page.model_row(page, trained)
            expect(row.locator(".status-ok")).to_have_text("disponible")
            web_page.check_every_model_answers(page, stack.api_url, "Gentoo")
            _remove_model_files(stack, broken)
            web_page.check_model_disappears(page, broken)
        watch.assert_clean()
    finally:
        _remove_model_files(stack, broken)
        _remove_model_files(stack, trained)


def test_phone_width_is_usable(stack: ComposeStack, browser: Browser) -> None:
    with new_page(browser, width=375, height=812) as phone:
        with web_page.open_web_page(phone, stack.api_url) as watch:
            web_page.check_phone_width(phone, stack.api_url)
        watch.assert_clean()
