"""train.ipynb: committed without outputs, and runs headless end to end into temp dirs."""

import hashlib
import os
import platform
from pathlib import Path

import joblib
import nbformat
import pandas as pd
import pytest
from ipykernel.ipkernel import IPythonKernel
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from penguin_contract import METRIC_COLUMNS

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO / "jupyter" / "notebooks"
NOTEBOOK_PATH = NOTEBOOK_DIR / "train.ipynb"
DATA_PATH = REPO / "data" / "penguins_v1.csv"
TRAINED_MODELS = ["gradientboosting", "knn", "randomforest", "svm"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CELL_TIMEOUT_S = 300


def test_committed_notebook_has_no_outputs_or_execution_counts():
    notebook = nbformat.read(NOTEBOOK_PATH, as_version=4)
    nbformat.validate(notebook)

    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    dirty = [
        index
        for index, cell in enumerate(code_cells)
        if cell.outputs or cell.execution_count is not None
    ]
    assert code_cells
    assert dirty == [], (
        f"code cells {dirty} carry outputs or execution counts; clear them with "
        "`uv run jupyter nbconvert --clear-output --inplace jupyter/notebooks/train.ipynb`"
    )


def test_committed_notebook_uses_the_python3_kernel():
    notebook = nbformat.read(NOTEBOOK_PATH, as_version=4)

    assert notebook.metadata.kernelspec.name == "python3"


def test_committed_metadata_is_what_jupyter_writes_on_open():
    """Jupyter fills kernelspec and language_info from the kernel when the notebook opens;
    anything different marks a notebook nobody touched as modified. The Python version is
    the image's (checked in tests/e2e); here only its major.minor must match."""
    notebook = nbformat.read(NOTEBOOK_PATH, as_version=4)
    spec = KernelSpecManager().get_kernel_spec("python3")
    kernel_language = dict(IPythonKernel.language_info)
    committed_language = dict(notebook.metadata.language_info)

    assert dict(notebook.metadata.kernelspec) == {
        "display_name": spec.display_name,
        "language": spec.language,
        "name": "python3",
    }
    assert committed_language.pop("version").split(".")[:2] == list(
        platform.python_version_tuple()[:2]
    )
    del kernel_language["version"]
    assert committed_language == kernel_language
    assert (notebook.nbformat, notebook.nbformat_minor) == (4, nbformat.current_nbformat_minor)
    assert all(cell.get("id") for cell in notebook.cells)


def test_committed_file_is_byte_for_byte_what_jupyter_saves():
    text = NOTEBOOK_PATH.read_text()

    assert text == nbformat.writes(nbformat.reads(text, as_version=4)) + "\n"


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """Run the notebook like a headless bootstrap would; return it and the artifact dirs."""
    root = tmp_path_factory.mktemp("notebook")
    models_dir, report_path = root / "models", root / "report" / "model_metrics.pkl"
    env = {
        **os.environ,
        "DATA_PATH": str(DATA_PATH),
        "MODELS_DIR": str(models_dir),
        "REPORT_PATH": str(report_path),
        "MPLBACKEND": "Agg",
    }
    notebook = nbformat.read(NOTEBOOK_PATH, as_version=4)
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
    )
    client.execute(env=env)  # raises CellExecutionError, with the traceback, if a cell fails
    return notebook, models_dir, report_path


@pytest.mark.notebook
def test_notebook_saves_one_loadable_pipeline_per_model(executed):
    _, models_dir, _ = executed

    pickles = sorted(models_dir.glob("*_model.pkl"))
    assert [path.name.removesuffix("_model.pkl") for path in pickles] == TRAINED_MODELS
    for path in pickles:
        pipeline = joblib.load(path)
        assert isinstance(pipeline, Pipeline)
        assert [step for step, _ in pipeline.steps] == ["scaler", "model"]
        assert isinstance(pipeline.named_steps["scaler"], StandardScaler)


@pytest.mark.notebook
def test_notebook_report_has_one_accurate_row_per_model(executed):
    _, models_dir, report_path = executed

    report = pd.read_pickle(report_path).set_index("model")
    assert report.index.tolist() == TRAINED_MODELS
    print("\n" + report[list(METRIC_COLUMNS)].round(3).to_string())
    for model, accuracy in report["test_accuracy"].items():
        assert accuracy >= 0.90, f"{model}: test_accuracy {accuracy:.3f} < 0.90"
    for model, row in report.iterrows():
        pickle_bytes = (models_dir / f"{model}_model.pkl").read_bytes()
        assert row["sha256"] == hashlib.sha256(pickle_bytes).hexdigest()


@pytest.mark.notebook
def test_notebook_writes_a_confusion_matrix_png_per_model(executed):
    _, _, report_path = executed

    for model in TRAINED_MODELS:
        png = report_path.parent / f"{model}_confusion_matrix.png"
        assert png.read_bytes().startswith(PNG_SIGNATURE), png


@pytest.mark.notebook
def test_notebook_shows_each_confusion_matrix_inline(executed):
    notebook, _, _ = executed

    images = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if "image/png" in output.get("data", {})
    ]
    # Under Agg pyplot shows nothing: the only images are those the trainer displays itself.
    assert len(images) == len(TRAINED_MODELS)
