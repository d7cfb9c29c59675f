"""End to end: the Compose stack exactly as a user runs it (Docker/docker-compose.yml).

The stack comes up once per session (see conftest.py) with one Compose (v2 if installed);
one test runs the documented commands with the other one. The last test restarts the
session stack with `down` + `up` to prove that volumes survive, so it stays last here.
"""

import asyncio
import csv
import json
import re
import secrets
import time

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from kserve import InferenceRESTClient, InferRequest, RESTConfig
from kserve import InferInput as KServeInput
from support import REPO_ROOT
from support.api import ADELIE, body_from_row
from support.compose import (
    ComposeStack,
    DocumentedProject,
    compose_command,
    docker,
    documented_project,
    other_compose,
)
from support.models import penguins

from penguin_contract import FEATURES, SPECIES

pytestmark = pytest.mark.e2e

NOTEBOOK = REPO_ROOT / "jupyter" / "notebooks" / "train.ipynb"
BOOTSTRAP_MODELS = {"randomforest", "svm", "gradientboosting"}
ALL_NOTEBOOK_MODELS = "gradientboosting, knn, randomforest, svm"
# svm has no probabilities, randomforest has: both kinds of answer through both clients.
OPEN_INFERENCE_MODELS = ["svm", "randomforest"]
# Harmless messages a first start used to print; the image's configuration silences them.
HARMLESS = (
    "Parent appears to have exited",
    "Kernel is running over TCP without encryption",
    "websocket_ping_timeout",
    "without nodejs",
)
URL = re.compile(r"https?://\S+")
MODELS_TIMEOUT_S = 180
EXTRA_MODEL = "e2e_tree"
# Appended to train.ipynb and run with the rest of it, as a student would add a cell.
EXTRA_CELL = f"""
from sklearn.tree import DecisionTreeClassifier

trainer.train_and_save(
    "{EXTRA_MODEL}", DecisionTreeClassifier(max_depth=4, random_state=42),
    X_train, X_test, y_train, y_test,
)
"""
RUN_NOTEBOOK_WITH_EXTRA_CELL = f"""
import nbformat
from nbclient import NotebookClient

notebook = nbformat.read("/app/notebooks/train.ipynb", as_version=4)
notebook.cells.append(nbformat.v4.new_code_cell({EXTRA_CELL!r}))
NotebookClient(
    notebook, timeout=300, kernel_name="python3",
    resources={{"metadata": {{"path": "/app/notebooks"}}}},
).execute()
print("notebook executed")
"""


def first_bird_of(species_name: str) -> dict[str, float]:
    """The request body for the first real bird of a species in data/penguins_v1.csv."""
    species_id = next(code for code, name in SPECIES.items() if name == species_name)
    with open(REPO_ROOT / "data" / "penguins_v1.csv", newline="") as data:
        row = next(row for row in csv.DictReader(data) if int(row["species"]) == species_id)
    return {feature: float(row[feature]) for feature in FEATURES}


def listed_models(stack: ComposeStack) -> dict[str, dict]:
    with stack.api() as api:
        response = api.get("/models")
    assert response.status_code == 200, response.text
    return {model["name"]: model for model in response.json()["available_models"]}


def classify(stack: ComposeStack, model: str, body: dict) -> dict:
    with stack.api() as api:
        response = api.post(f"/classify/{model}", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def cells_left_for_the_user() -> str:
    """Source of the notebook cells the first-start bootstrap skips (tag skip-bootstrap)."""
    notebook = json.loads(NOTEBOOK.read_text())
    return "\n".join(
        "".join(cell["source"])
        for cell in notebook["cells"]
        if "skip-bootstrap" in cell.get("metadata", {}).get("tags", [])
    )


def test_first_start_trains_the_default_models(stack: ComposeStack) -> None:
    models = listed_models(stack)

    assert set(models) >= BOOTSTRAP_MODELS
    for name in BOOTSTRAP_MODELS:
        assert models[name]["metrics"]["test_accuracy"] >= 0.9, models[name]
    if '"knn"' in cells_left_for_the_user():
        assert "knn" not in models, "the 'add a new model' cell is the student's to run"
    assert "bootstrap: done" in stack.compose("logs", "--no-color", "jupyter").stdout


@pytest.mark.parametrize("model", sorted(BOOTSTRAP_MODELS))
def test_original_curl_example_is_an_adelie(stack: ComposeStack, model: str) -> None:
    prediction = classify(stack, model, ADELIE)

    assert prediction["model"] == model
    assert (prediction["species_id"], prediction["species_name"]) == (1, "Adelie")


@pytest.mark.parametrize("species", ["Gentoo", "Chinstrap"])
@pytest.mark.parametrize("model", sorted(BOOTSTRAP_MODELS))
def test_real_birds_get_their_species(stack: ComposeStack, model: str, species: str) -> None:
    assert classify(stack, model, first_bird_of(species))["species_name"] == species


def test_predictions_are_logged_in_the_shared_results_volume(stack: ComposeStack) -> None:
    body = {**ADELIE, "body_mass_g": 3700 + secrets.randbelow(10_000) / 100}
    classify(stack, "svm", body)

    for service in ("api", "jupyter"):  # the volume is shared: both see the same lines
        log = stack.exec(service, "cat", "/app/results/predictions.log").stdout
        lines = [json.loads(line) for line in log.splitlines()]
        ours = [line for line in lines if line["input"] == body]
        assert len(ours) == 1, f"{service}: {len(ours)} lines for {body}"
        assert ours[0]["result"]["species_name"] == "Adelie"
        assert {"timestamp", "input", "result"} <= set(ours[0])


def test_containers_run_as_non_root(stack: ComposeStack) -> None:
    for service in ("api", "jupyter"):
        assert stack.exec(service, "id", "-u").stdout.strip() != "0", service


@pytest.mark.parametrize(
    ("service", "path"),
    [
        ("api", "/app/models/intruder_model.pkl"),
        ("api", "/app/report/intruder"),
        ("jupyter", "/app/results/predictions.log"),
    ],
)
def test_a_service_cannot_write_what_it_only_reads(
    stack: ComposeStack, service: str, path: str
) -> None:
    attempt = stack.exec(service, "touch", path, check=False)

    assert attempt.returncode != 0
    assert "Read-only file system" in attempt.stderr


@pytest.mark.parametrize(
    ("service", "module"),
    [
        ("api", "matplotlib"),
        ("api", "seaborn"),
        ("api", "jupyterlab"),
        ("api", "nbclient"),
        ("jupyter", "fastapi"),
        ("jupyter", "uvicorn"),
    ],
)
def test_each_image_holds_only_its_own_group(
    stack: ComposeStack, service: str, module: str
) -> None:
    attempt = stack.exec(service, "python", "-c", f"import {module}", check=False)

    assert attempt.returncode != 0
    assert "ModuleNotFoundError" in attempt.stderr


def test_both_images_pin_the_same_scikit_learn(stack: ComposeStack) -> None:
    versions = {
        service: stack.exec(
            service, "python", "-c", "import sklearn; print(sklearn.__version__)"
        ).stdout.strip()
        for service in ("api", "jupyter")
    }
    assert versions["api"] == versions["jupyter"] != ""


def test_no_secret_is_baked_into_the_images(stack: ComposeStack) -> None:
    for service in ("api", "jupyter"):
        image = stack.inspect(service)["Image"]
        config = docker("image", "inspect", image).stdout
        history = docker("history", "--no-trunc", image).stdout
        assert stack.jupyter_token not in config + history, service
        assert "JUPYTER_TOKEN=" not in config, service


def test_jupyter_answers_with_the_token_only(stack: ComposeStack) -> None:
    def get(path: str, **params: str) -> httpx.Response:
        # A fresh client each time: no login cookie carried from one request to the next.
        with stack.jupyter(follow_redirects=False) as jupyter:
            return jupyter.get(path, params=params)

    assert get("/api/status", token=stack.jupyter_token).status_code == 200
    assert get("/api/status").status_code == 403
    assert get("/api/status", token="not-the-token").status_code == 403
    lab_without_token = get("/lab")
    assert lab_without_token.status_code == 302
    assert lab_without_token.headers["location"].startswith("/login")


def test_failed_bootstrap_is_logged_and_jupyter_still_starts(stack: ComposeStack) -> None:
    image = stack.inspect("jupyter")["Image"]
    container = docker(
        "run", "--detach", "--env", "DATA_PATH=/app/data/missing.csv",
        "--env", "JUPYTER_TOKEN=unused", image,
    ).stdout.strip()  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            probe = docker(
                "exec", container, "python", "/opt/penguin/healthcheck.py",
                "http://127.0.0.1:8888/api", check=False,
            )  # fmt: skip
            if probe.returncode == 0:
                break
            time.sleep(1)
        output = docker("logs", container)
        logs = output.stdout + output.stderr
        assert probe.returncode == 0, f"Jupyter did not start after a failed bootstrap:\n{logs}"
        assert "bootstrap: FAILED" in logs
        assert "missing.csv" in logs
    finally:
        docker("rm", "--force", "--volumes", container, check=False)


def test_model_added_in_the_notebook_is_served_without_restart(stack: ComposeStack) -> None:
    api_state_before = stack.inspect("api")["State"]
    with stack.api() as api:
        randomforest_before = api.get("/models/randomforest").json()
    time.sleep(1.1)  # trained_at has one-second resolution

    run = stack.exec("jupyter", "python", "-c", RUN_NOTEBOOK_WITH_EXTRA_CELL)
    assert "notebook executed" in run.stdout

    models = listed_models(stack)
    assert EXTRA_MODEL in models
    assert "knn" in models  # the notebook's own "add a new model" cell ran too
    assert classify(stack, EXTRA_MODEL, ADELIE)["species_name"] == "Adelie"
    with stack.api() as api:
        randomforest_after = api.get("/models/randomforest").json()
    assert randomforest_after["trained_at"] > randomforest_before["trained_at"]
    api_state_after = stack.inspect("api")["State"]
    assert api_state_after["StartedAt"] == api_state_before["StartedAt"]
    assert stack.inspect("api")["RestartCount"] == 0


def test_first_start_log_names_one_url_and_no_harmless_warning(stack: ComposeStack) -> None:
    log = stack.compose("logs", "--no-color", "jupyter").stdout

    # The session stack sets JUPYTER_TOKEN, so the one URL carries no token.
    port = stack.jupyter_url.rsplit(":", 1)[1]
    assert URL.findall(log) == [f"http://127.0.0.1:{port}/lab"], log
    assert [message for message in HARMLESS if message in log] == []


def test_committed_notebook_metadata_names_the_image_python(stack: ComposeStack) -> None:
    """Jupyter rewrites language_info.version on open: it must already be the image's."""
    image_python = stack.exec(
        "jupyter", "python", "-c", "import platform; print(platform.python_version())"
    )
    committed = json.loads(NOTEBOOK.read_text())["metadata"]["language_info"]["version"]

    assert committed == image_python.stdout.strip()


def test_headless_rerun_says_what_it_trained_and_nothing_scary(stack: ComposeStack) -> None:
    rerun = stack.exec("jupyter", "python", "/opt/penguin/bootstrap_models.py", "--all")
    execute = stack.exec("jupyter", "jupyter", "execute", "train.ipynb")

    assert f"trained: {ALL_NOTEBOOK_MODELS}" in rerun.stdout
    for output in (rerun.stdout + rerun.stderr, execute.stdout + execute.stderr):
        assert "WARNING" not in output, output
        assert [message for message in HARMLESS if message in output] == []


def test_api_memory_is_capped_without_swap_on_top(stack: ComposeStack) -> None:
    host_config = stack.inspect("api")["HostConfig"]

    assert host_config["Memory"] == host_config["MemorySwap"] == 1024**3


def real_birds() -> np.ndarray:
    return penguins()[list(FEATURES)].to_numpy(dtype=np.float64)


def batch_answers(stack: ComposeStack, model: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Species ids [333] and probabilities [333, 3] (or None) from POST /classify/{model}/batch."""
    instances = [body_from_row(row) for _, row in penguins().iterrows()]
    with stack.api() as api:
        response = api.post(f"/classify/{model}/batch", json={"instances": instances})
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    ids = np.array([prediction["species_id"] for prediction in predictions])
    if predictions[0]["probabilities"] is None:
        return ids, None
    species = SPECIES.values()
    rows = [[prediction["probabilities"][name] for name in species] for prediction in predictions]
    return ids, np.array(rows)


def assert_same_answers(expected, labels, probabilities) -> None:
    expected_ids, expected_probabilities = expected
    np.testing.assert_array_equal(labels, expected_ids)
    if expected_probabilities is None:
        assert probabilities is None
    else:
        shaped = probabilities.reshape(len(expected_ids), len(SPECIES))
        np.testing.assert_array_equal(shaped, expected_probabilities)


@pytest.mark.parametrize("model", OPEN_INFERENCE_MODELS)
def test_triton_client_answers_as_the_batch_endpoint(stack: ComposeStack, model: str) -> None:
    expected = batch_answers(stack, model)
    client = triton.InferenceServerClient(stack.api_url.removeprefix("http://"))
    try:
        assert client.is_server_live()
        assert client.is_model_ready(model)
        metadata = client.get_model_metadata(model)
        features = triton.InferInput("features", [len(expected[0]), len(FEATURES)], "FP64")
        features.set_data_from_numpy(real_birds())  # binary_data=True, the client's default
        result = client.infer(model, [features], request_id="compose-triton")
    finally:
        client.close()

    assert metadata["name"] == model
    assert metadata["inputs"] == [{"name": "features", "datatype": "FP64", "shape": [-1, 7]}]
    assert result.get_response()["id"] == "compose-triton"
    assert_same_answers(expected, result.as_numpy("label"), result.as_numpy("probabilities"))


@pytest.mark.parametrize("model", OPEN_INFERENCE_MODELS)
def test_kserve_client_answers_as_the_batch_endpoint(stack: ComposeStack, model: str) -> None:
    expected = batch_answers(stack, model)
    features = KServeInput("features", [len(expected[0]), len(FEATURES)], "FP64")
    features.set_data_from_numpy(real_birds(), binary_data=False)

    async def ask():
        async with InferenceRESTClient(RESTConfig(protocol="v2", timeout=30)) as client:
            live = await client.is_server_live(stack.api_url)
            ready = await client.is_model_ready(stack.api_url, model)
            request = InferRequest(model, [features], request_id="compose-kserve")
            response = await client.infer(stack.api_url, request, model_name=model)
            return live, ready, response

    live, ready, response = asyncio.run(ask())

    assert (live, ready) == (True, True)
    assert (response.id, response.model_name) == ("compose-kserve", model)
    by_name = {output.name: output.as_numpy() for output in response.outputs}
    assert_same_answers(expected, by_name["label"], by_name.get("probabilities"))


def wait_for_models(api_url: str, expected: set[str]) -> set[str]:
    deadline = time.monotonic() + MODELS_TIMEOUT_S
    listed: set[str] = set()
    while time.monotonic() < deadline and not expected <= listed:
        try:
            response = httpx.get(f"{api_url}/models", timeout=10)
            listed = {model["name"] for model in response.json()["available_models"]}
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(1)
    return listed


def login_urls(project: DocumentedProject) -> list[str]:
    log = project.run("logs", "--no-color", "jupyter")
    return [url for url in URL.findall(log) if "token=" in url]


def test_documented_commands_work_with_the_other_compose() -> None:
    """The docs' rule: run Compose from Docker/, where `docker compose X` and
    `docker-compose X` are the same command. The session stack runs one; this runs the
    other, literally, on a throw-away project."""
    with documented_project(other_compose(compose_command())) as project:
        started = time.monotonic()
        project.run("up", "-d", "--build", timeout=900)
        assert wait_for_models(project.api_url, BOOTSTRAP_MODELS) >= BOOTSTRAP_MODELS
        print(f"\n{project.command}: models listed {time.monotonic() - started:.1f} s after up")
        assert len(project.volumes()) == 5, project.volumes()

        urls = login_urls(project)
        assert len(urls) == 1, urls
        assert urls[0].startswith(f"http://127.0.0.1:{project.jupyter_port}/lab?token=")
        token = urls[0].split("token=", 1)[1]
        status = httpx.get(
            f"http://127.0.0.1:{project.jupyter_port}/api/status", params={"token": token}
        )
        assert status.status_code == 200

        project.run("down", "-v")
        assert project.volumes() == []


def test_edits_models_and_log_survive_down_and_up(stack: ComposeStack) -> None:
    note = f"student note {secrets.token_hex(4)}"
    stack.exec("jupyter", "sh", "-c", f"echo '{note}' > /app/notebooks/e2e_note.md")
    log_before = stack.exec("api", "cat", "/app/results/predictions.log").stdout
    with stack.api() as api:
        history_before = api.get("/models/svm/versions").json()
    assert history_before["versions"][-1]["decision"] == "promoted"  # the first start's

    stack.compose("down")
    stack.compose("up", "-d", timeout=420)
    stack.wait_until_healthy()

    with stack.api() as api:  # issue 20: the history is in the volumes, not in a container
        assert api.get("/models/svm/versions").json() == history_before
    served = history_before["served_version"]
    terminal = stack.exec(
        "jupyter", "python", "/opt/penguin/bootstrap_models.py", "--history", "svm"
    )
    assert terminal.stdout.splitlines()[0].split()[1:3] == [served[:12], "served"]

    assert stack.exec("jupyter", "cat", "/app/notebooks/e2e_note.md").stdout.strip() == note
    assert set(listed_models(stack)) >= BOOTSTRAP_MODELS
    assert "nothing to train" in stack.compose("logs", "--no-color", "jupyter").stdout
    log_after = stack.exec("api", "cat", "/app/results/predictions.log").stdout
    assert log_after.startswith(log_before)
