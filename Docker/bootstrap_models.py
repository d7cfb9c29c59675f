"""Train models headless by executing train.ipynb, and say which ones it trained.

Two uses:

- ``python bootstrap_models.py`` (the container's first start, see start-jupyter.sh): does
  nothing when the models directory already holds a model, so re-training stays the user's
  decision; cells tagged ``skip-bootstrap`` (the "add a new model" exercise) are left for
  the user.
- ``python bootstrap_models.py --all``: the notebook's "Run All" without a browser: every
  cell, whatever is already trained.

Environment: NOTEBOOKS_DIR, MODELS_DIR, BOOTSTRAP_MODELS (set to 0 to disable the first-start
run), BOOTSTRAP_CELL_TIMEOUT (seconds per cell, default 300).
"""

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from penguin_contract import MODEL_FILE_SUFFIX

SKIP_TAG = "skip-bootstrap"
FAILURES = (CellExecutionError, OSError, ValueError, RuntimeError, TimeoutError)


def model_files(models_dir: Path) -> dict[str, int]:
    """Model name -> modification time (ns) of its file."""
    return {
        path.name.removesuffix(MODEL_FILE_SUFFIX): path.stat().st_mtime_ns
        for path in sorted(models_dir.glob(f"*{MODEL_FILE_SUFFIX}"))
    }


def written_since(before: dict[str, int], after: dict[str, int]) -> list[str]:
    """Models whose file is new or was replaced (the trainer writes a new file each time)."""
    return [name for name, mtime in after.items() if before.get(name) != mtime]


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


def train(every_cell: bool) -> int:
    models_dir = Path(os.environ.get("MODELS_DIR", "/app/models"))
    notebook_path = Path(os.environ.get("NOTEBOOKS_DIR", "/app/notebooks")) / "train.ipynb"
    before = model_files(models_dir)
    started = time.monotonic()
    try:
        execute_notebook(
            notebook_path, int(os.environ.get("BOOTSTRAP_CELL_TIMEOUT", "300")), every_cell
        )
    except FAILURES as error:
        print(f"bootstrap: executing {notebook_path} failed:\n{error}", file=sys.stderr)
        return 1
    trained = written_since(before, model_files(models_dir))
    elapsed = time.monotonic() - started
    print(f"bootstrap: done in {elapsed:.1f} s; trained: {', '.join(trained) or 'nothing'}")
    return 0 if trained else 1


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--all",
        action="store_true",
        help="run every cell of train.ipynb (Run All), even if models already exist",
    )
    if parser.parse_args().all:
        print("bootstrap: executing every cell of train.ipynb headless", flush=True)
        return train(every_cell=True)
    return first_start()


if __name__ == "__main__":
    sys.exit(main())
