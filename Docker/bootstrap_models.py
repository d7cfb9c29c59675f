"""Train the default models headless on the first start, by executing train.ipynb.

Runs before Jupyter Lab starts (see start-jupyter.sh). It does nothing when the
models directory already holds a model, so re-training stays the user's decision.
Cells tagged ``skip-bootstrap`` (the "add a new model" exercise) are left for the user.

Environment: NOTEBOOKS_DIR, MODELS_DIR, BOOTSTRAP_MODELS (set to 0 to disable),
BOOTSTRAP_CELL_TIMEOUT (seconds per cell, default 300).
"""

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


def existing_models(models_dir: Path) -> list[str]:
    return sorted(path.name for path in models_dir.glob(f"*{MODEL_FILE_SUFFIX}"))


def cells_to_run(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [cell for cell in notebook.cells if SKIP_TAG not in cell.metadata.get("tags", [])]


def execute_notebook(notebook_path: Path, cell_timeout: int) -> None:
    notebook = nbformat.read(notebook_path, as_version=4)
    notebook.cells = cells_to_run(notebook)
    client = NotebookClient(
        notebook,
        # IPC sockets: the kernel is only reachable from inside the container.
        km=KernelManager(kernel_name="python3", transport="ipc"),
        timeout=cell_timeout,
        resources={"metadata": {"path": str(notebook_path.parent)}},
    )
    client.execute()


def main() -> int:
    if os.environ.get("BOOTSTRAP_MODELS", "1") == "0":
        print("bootstrap: disabled (BOOTSTRAP_MODELS=0)")
        return 0
    models_dir = Path(os.environ.get("MODELS_DIR", "/app/models"))
    found = existing_models(models_dir)
    if found:
        print(f"bootstrap: {len(found)} model(s) already in {models_dir}, nothing to train")
        return 0

    notebook_path = Path(os.environ.get("NOTEBOOKS_DIR", "/app/notebooks")) / "train.ipynb"
    print(f"bootstrap: no models in {models_dir}; executing {notebook_path} headless", flush=True)
    started = time.monotonic()
    try:
        execute_notebook(notebook_path, int(os.environ.get("BOOTSTRAP_CELL_TIMEOUT", "300")))
    except (CellExecutionError, OSError, ValueError, RuntimeError, TimeoutError) as error:
        print(f"bootstrap: executing {notebook_path} failed:\n{error}", file=sys.stderr)
        return 1
    trained = existing_models(models_dir)
    print(f"bootstrap: done in {time.monotonic() - started:.1f} s; models: {', '.join(trained)}")
    return 0 if trained else 1


if __name__ == "__main__":
    sys.exit(main())
