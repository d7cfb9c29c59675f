"""Train models headless by executing train.ipynb, and say which ones it trained.

Two uses:

- ``python bootstrap_models.py`` (the container's first start, see start-jupyter.sh): does
  nothing when the models directory already holds a model, so re-training stays the user's
  decision; cells tagged ``skip-bootstrap`` (the "add a new model" exercise) are left for
  the user.
- ``python bootstrap_models.py --all``: the notebook's "Run All" without a browser: every
  cell, whatever is already trained. ``--promote if_better`` serves a new version only if it
  is at least as good as the served one on the same test split (default ``always``).

And the model lifecycle from a terminal (issue 20):

- ``python bootstrap_models.py --history NAME``: the model's history, newest first.
- ``python bootstrap_models.py --rollback NAME [--version SHA]``: serve the previous version
  (or the one whose sha256 starts with SHA) again.

Environment: NOTEBOOKS_DIR, MODELS_DIR, REPORT_PATH, BOOTSTRAP_MODELS (set to 0 to disable
the first-start run), BOOTSTRAP_CELL_TIMEOUT (seconds per cell, default 300).
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import nbformat
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from penguin_contract import HISTORY_SUFFIX, MODEL_FILE_SUFFIX, PROMOTION_RULES

SKIP_TAG = "skip-bootstrap"
FAILURES = (CellExecutionError, OSError, ValueError, RuntimeError, TimeoutError)


def model_files(models_dir: Path) -> dict[str, int]:
    """Model name -> modification time (ns) of its file."""
    return {
        path.name.removesuffix(MODEL_FILE_SUFFIX): path.stat().st_mtime_ns
        for path in sorted(models_dir.glob(f"*{MODEL_FILE_SUFFIX}"))
    }


def decisions(report_dir: Path) -> dict[str, list[str]]:
    """Model name -> the trainer's decisions about it so far (its history, oldest first)."""
    return {
        path.name.removesuffix(HISTORY_SUFFIX): [
            decision_of(line) for line in path.read_text().splitlines()
        ]
        for path in sorted(report_dir.glob(f"*{HISTORY_SUFFIX}"))
    }


def decision_of(line: str) -> str | None:
    try:
        return json.loads(line).get("decision")
    except (ValueError, AttributeError):  # not JSON, or not an object
        return None


def trained_since(before: dict[str, list[str]], after: dict[str, list[str]]) -> dict[str, str]:
    """Models trained since ``before`` -> the last decision about them (promoted, rejected)."""
    return {
        name: history[-1]
        for name, history in after.items()
        if len(history) > len(before.get(name, []))
    }


def cells_to_run(notebook: nbformat.NotebookNode, every_cell: bool) -> list:
    if every_cell:
        return list(notebook.cells)
    return [cell for cell in notebook.cells if SKIP_TAG not in cell.metadata.get("tags", [])]


def execute_notebook(notebook_path: Path, cell_timeout: int, every_cell: bool) -> None:
    notebook = nbformat.read(notebook_path, as_version=4)
    notebook.cells = cells_to_run(notebook, every_cell)
    # IPC sockets: the kernel is only reachable from inside the container.
    kernel = KernelManager(kernel_name="python3", transport="ipc")
    client = NotebookClient(
        notebook,
        km=kernel,
        timeout=cell_timeout,
        resources={"metadata": {"path": str(notebook_path.parent)}},
    )
    try:
        client.execute()
    finally:
        # nbclient leaves a kernel it did not start running; left alone, it would notice
        # this process exit and log "Parent appears to have exited".
        if kernel.has_kernel:
            kernel.shutdown_kernel()


def report_dir() -> Path:
    return Path(os.environ.get("REPORT_PATH", "/app/report/model_metrics.pkl")).parent


def train(every_cell: bool) -> int:
    notebook_path = Path(os.environ.get("NOTEBOOKS_DIR", "/app/notebooks")) / "train.ipynb"
    before = decisions(report_dir())
    started = time.monotonic()
    try:
        execute_notebook(
            notebook_path, int(os.environ.get("BOOTSTRAP_CELL_TIMEOUT", "300")), every_cell
        )
    except FAILURES as error:
        print(f"bootstrap: executing {notebook_path} failed:\n{error}", file=sys.stderr)
        return 1
    trained = trained_since(before, decisions(report_dir()))
    elapsed = time.monotonic() - started
    summary = f"bootstrap: done in {elapsed:.1f} s; trained: {', '.join(trained) or 'nothing'}"
    if rejected := [name for name, decision in trained.items() if decision == "rejected"]:
        summary += f"; not promoted (kept as candidates): {', '.join(rejected)}"
    print(summary)
    return 0 if trained else 1


def model_trainer():
    """The notebook's trainer (utils/ lives beside train.ipynb), with MODELS_DIR and
    REPORT_PATH from the environment."""
    sys.path.insert(0, os.environ.get("NOTEBOOKS_DIR", "/app/notebooks"))
    from utils.model_trainer import ModelTrainer

    return ModelTrainer()


def rollback(name: str, version: str | None) -> int:
    try:
        entry = model_trainer().rollback(name, version)
    except ValueError as error:
        print(f"bootstrap: cannot roll back: {error}", file=sys.stderr)
        return 1
    print(f"bootstrap: {name} serves version {entry['version']} again")
    return 0


def show_history(name: str) -> int:
    try:
        history = model_trainer().history(name)
    except ValueError as error:
        print(f"bootstrap: {error}", file=sys.stderr)
        return 1
    if not history:
        print(f"bootstrap: {name} has no history")
    for entry in history:
        served = "served" if entry["served"] else "      "
        f1 = entry["metrics"].get("test_f1")
        print(
            f"{entry['decided_at']}  {entry['version'][:12]}  {served}  "
            f"{entry['decision']:<11}  test_f1={f1}  {entry['reason']}"
        )
    return 0


def first_start() -> int:
    if os.environ.get("BOOTSTRAP_MODELS", "1") == "0":
        print("bootstrap: disabled (BOOTSTRAP_MODELS=0)")
        return 0
    models_dir = Path(os.environ.get("MODELS_DIR", "/app/models"))
    if found := model_files(models_dir):
        print(f"bootstrap: {len(found)} model(s) already in {models_dir}, nothing to train")
        return 0
    print(f"bootstrap: no models in {models_dir}; executing train.ipynb headless", flush=True)
    return train(every_cell=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group()
    action.add_argument(
        "--all",
        action="store_true",
        help="run every cell of train.ipynb (Run All), even if models already exist",
    )
    action.add_argument("--rollback", metavar="NAME", help="serve NAME's previous version again")
    action.add_argument("--history", metavar="NAME", help="print NAME's history, newest first")
    parser.add_argument(
        "--promote",
        choices=PROMOTION_RULES,
        help="with --all: the promotion rule of every training (default: always)",
    )
    parser.add_argument("--version", metavar="SHA", help="with --rollback: the version to serve")
    args = parser.parse_args(argv)
    if args.promote and not args.all:
        parser.error("--promote goes with --all")
    if args.version and not args.rollback:
        parser.error("--version goes with --rollback")
    if args.rollback:
        return rollback(args.rollback, args.version)
    if args.history:
        return show_history(args.history)
    if args.all:
        if args.promote:
            os.environ["TRAINER_PROMOTE"] = args.promote  # the kernel inherits it
        print("bootstrap: executing every cell of train.ipynb headless", flush=True)
        return train(every_cell=True)
    return first_start()


if __name__ == "__main__":
    sys.exit(main())
