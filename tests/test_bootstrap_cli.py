"""Docker/bootstrap_models.py from a terminal (issue 20): --promote, --rollback, --history,
with the real trainer. The notebook run itself is tested in tests/test_notebook.py and e2e."""

import contextlib
import importlib.util
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sklearn.tree import DecisionTreeClassifier
from support import REPO_ROOT
from support.models import penguin_split

from utils.model_trainer import ModelTrainer

SCRIPT = REPO_ROOT / "Docker" / "bootstrap_models.py"


def load_script():
    spec = importlib.util.spec_from_file_location("bootstrap_models", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def env(tmp_path: Path, monkeypatch) -> dict[str, str]:
    values = {
        "MODELS_DIR": str(tmp_path / "models"),
        "REPORT_PATH": str(tmp_path / "report" / "model_metrics.pkl"),
        "NOTEBOOKS_DIR": str(REPO_ROOT / "jupyter" / "notebooks"),
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("TRAINER_PROMOTE", raising=False)
    return values


def train_tree(depth: int) -> dict:
    with contextlib.redirect_stdout(io.StringIO()):
        estimator = DecisionTreeClassifier(max_depth=depth, random_state=0)
        return ModelTrainer().train_and_save("tree", estimator, *penguin_split())


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=120,
    )


def test_rollback_and_history_from_a_terminal(env):
    good, worse = train_tree(4), train_tree(1)
    served = Path(env["MODELS_DIR"]) / "tree_model.pkl"
    good_bytes = (Path(env["MODELS_DIR"]) / "versions" / "tree" / good["version"]).joinpath(
        "tree_model.pkl"
    )

    rolled = run("--rollback", "tree")
    history = run("--history", "tree")

    assert rolled.returncode == 0, rolled.stderr
    assert f"tree serves version {good['version']} again" in rolled.stdout
    assert served.read_bytes() == good_bytes.read_bytes()
    lines = history.stdout.splitlines()
    assert [line.split()[1] for line in lines] == [
        good["version"][:12],
        worse["version"][:12],
        good["version"][:12],
    ]
    assert lines[0].split()[2:4] == ["served", "rolled_back"]
    assert lines[1].split()[2] == "promoted"  # not served: no mark before the decision


def test_rollback_to_a_named_version_and_a_clear_refusal(env):
    first, _ = train_tree(2), train_tree(3)

    named = run("--rollback", "tree", "--version", first["version"][:10])
    again = run("--rollback", "tree", "--version", first["version"][:10])

    assert named.returncode == 0, named.stderr
    assert again.returncode == 1
    assert "already the served one" in again.stderr


def test_promote_goes_with_all_only(env):
    wrong = run("--promote", "if_better")

    assert wrong.returncode == 2
    assert "--promote goes with --all" in wrong.stderr


def test_all_with_promote_if_better_passes_the_rule_to_the_trainer(env, monkeypatch, capsys):
    """The notebook's kernel inherits the environment: here the 'notebook' trains in-process
    with a plain ModelTrainer(), as train.ipynb does."""
    script = load_script()
    train_tree(4)

    def notebook(*_args) -> None:
        train_tree(1)

    monkeypatch.setattr(script, "execute_notebook", notebook)
    monkeypatch.setenv("TRAINER_PROMOTE", "always")  # main() sets it; monkeypatch unsets it
    assert script.main(["--all", "--promote", "if_better"]) == 0

    assert "trained: tree; not promoted (kept as candidates): tree" in capsys.readouterr().out
    assert ModelTrainer().history("tree")[0]["decision"] == "rejected"
