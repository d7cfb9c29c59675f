"""Results directory read-only or full: /ready says so and classify refuses, loudly.

The tests run as root in CI, and root ignores permission bits (chmod 0o500 stops nobody), so
the directory is made to fail the way it does in production, for root too:
- read-only: a read-only tmpfs mounted on it (EROFS, as a read-only volume gives);
- full: a tiny tmpfs mounted on it and filled up (ENOSPC, as a full volume gives).
Without root (a developer's laptop), the read-only case falls back to chmod 0o500, which does
stop a normal user; the full case needs a mount and is skipped there, never in CI.
"""

import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from support.api import ADELIE, read_log
from support.live_server import live_server

FILLER_CHUNK = b"\0" * 4096


def _can_mount() -> bool:
    return os.geteuid() == 0


@contextmanager
def _tmpfs(path: Path, options: str) -> Iterator[None]:
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], check=True)
    try:
        yield
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=True)


@contextmanager
def _read_only(path: Path) -> Iterator[None]:
    if _can_mount():
        with _tmpfs(path, "ro,size=1m"):
            yield
        return
    path.chmod(0o500)
    try:
        yield
    finally:
        path.chmod(0o700)


def _fill(directory: Path) -> Path:
    """Write a file until the file system is full; return it."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as file:
        while True:
            try:
                file.write(FILLER_CHUNK)
            except OSError as error:
                assert error.errno == errno.ENOSPC
                return filler


def _assert_refuses_to_predict(client: httpx.Client) -> None:
    ready = client.get("/ready")
    assert ready.status_code == 503
    assert ready.json()["checks"]["results_dir"] != "ok"
    response = client.post("/classify/svm", json=ADELIE)
    assert response.status_code == 503
    assert "prediction log" in response.json()["detail"]
    assert "species_name" not in response.text


def test_read_only_results_dir_makes_the_api_not_ready_and_refuse(
    server_env, results_dir, tmp_path
):
    with (
        _read_only(results_dir),
        live_server(server_env, tmp_path / "server.out") as server,
        server.client(timeout=30) as client,
    ):
        _assert_refuses_to_predict(client)
        assert client.get("/health").status_code == 200  # alive, just not ready
        assert not (results_dir / "predictions.log").exists()


@pytest.mark.skipif(
    not _can_mount() and not os.environ.get("CI"), reason="mounting a tmpfs needs root"
)
def test_full_results_dir_refuses_every_prediction_it_cannot_log(server_env, results_dir, tmp_path):
    log_path = results_dir / "predictions.log"
    with (
        _tmpfs(results_dir, "size=64k"),
        live_server(server_env, tmp_path / "server.out") as server,
        server.client(timeout=30) as client,
    ):
        assert client.post("/classify/svm", json=ADELIE).status_code == 200
        filler = _fill(results_dir)
        assert client.get("/ready").status_code == 503
        # The log's last page may still hold a few lines; once it is full, every request is
        # refused, and each 200 before that was logged whole.
        statuses = [client.post("/classify/svm", json=ADELIE).status_code for _ in range(20)]
        first_refusal = statuses.index(503)
        assert set(statuses[:first_refusal]) <= {200}
        assert set(statuses[first_refusal:]) == {503}
        assert len(read_log(log_path)) == 1 + first_refusal
        _assert_refuses_to_predict(client)

        filler.unlink()
        assert client.get("/ready").status_code == 200
        assert client.post("/classify/svm", json=ADELIE).status_code == 200
        assert len(read_log(log_path)) == 2 + first_refusal
