"""The real Compose stack (Docker/docker-compose.yml) under a throw-away project name.

`compose_stack()` builds both images, brings the stack up on free 127.0.0.1 ports with a
random Jupyter token, waits until both containers are healthy, and always ends with
`down -v`, even when a step failed. Its images are untagged afterwards; their layers stay
as the build cache of the next run. `documented_project()` runs the docs' commands
literally, from Docker/, with a given Compose (v1 or v2) on a throw-away project.
A ComposeStack can carry extra compose files (``files``), as `-f` after the committed one.
"""

import json
import os
import secrets
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from support import REPO_ROOT
from support.live_server import free_port

DOCKER_DIR = REPO_ROOT / "Docker"
COMPOSE_FILE = DOCKER_DIR / "docker-compose.yml"
SERVICES = ("jupyter", "api")
BUILD_TIMEOUT_S = 900
UP_TIMEOUT_S = 420
HEALTHY_TIMEOUT_S = 300
COMMAND_TIMEOUT_S = 300


def compose_command() -> list[str]:
    """`docker compose` (v2) when available, else `docker-compose` (v1); fail if neither.

    E2E_COMPOSE="docker-compose" (or "docker compose") forces one, to test both.
    """
    docker = shutil.which("docker")
    if docker is None:
        pytest.fail("docker is not installed: run ../shared/docker/offline-images.sh or install it")
    if subprocess.run([docker, "info"], capture_output=True, timeout=60).returncode != 0:
        pytest.fail("the Docker engine does not answer (`docker info` failed): start dockerd")
    candidates = [[docker, "compose"], ["docker-compose"]]
    if forced := os.environ.get("E2E_COMPOSE"):
        candidates = [forced.split()]
    for candidate in candidates:
        if shutil.which(candidate[0]) and _answers(candidate):
            return candidate
    pytest.fail(f"no working Compose command among {candidates}")


def _answers(command: list[str]) -> bool:
    probe = subprocess.run([*command, "version"], capture_output=True, timeout=60)
    return probe.returncode == 0


def other_compose(command: list[str]) -> list[str]:
    """The Compose the session does not use: v1 when it runs v2, v2 when it runs v1."""
    docker_binary = shutil.which("docker") or "docker"
    other = ["docker-compose"] if command[-1] == "compose" else [docker_binary, "compose"]
    if not (shutil.which(other[0]) and _answers(other)):
        pytest.fail(f"`{' '.join(other)}` does not work: the docs promise Compose v1 and v2")
    return other


@dataclass
class DocumentedProject:
    """Compose commands run exactly as the docs write them: from Docker/, nothing but
    `docker compose X` or `docker-compose X`. Project name and ports come from the
    environment (COMPOSE_PROJECT_NAME, API_PORT, ...), which both Compose versions read."""

    command: list[str]
    project: str
    env: dict[str, str]
    api_url: str
    jupyter_port: int

    def url(self, port_setting: str) -> str:
        """The 127.0.0.1 URL of the port a setting publishes, e.g. ``url("NGINX_PORT")``."""
        return f"http://127.0.0.1:{self.env[port_setting]}"

    def services(self) -> set[str]:
        """The services of the project's containers, running or not."""
        return project_services(self.project)

    def run(self, *args: str, timeout: float = COMMAND_TIMEOUT_S) -> str:
        result = subprocess.run(
            [*self.command, *args],
            cwd=DOCKER_DIR,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise AssertionError(
                f"{' '.join(self.command)} {' '.join(args)} exited {result.returncode}\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result.stdout + result.stderr

    def volumes(self) -> list[str]:
        listed = docker("volume", "ls", "--quiet", "--filter", f"name={self.project}_").stdout
        return sorted(name for name in listed.split() if name.startswith(f"{self.project}_"))


@contextmanager
def documented_project(command: list[str], **extra: str) -> Iterator[DocumentedProject]:
    """A throw-away project on free ports for `command`; always `down -v` and untag images.

    Every setting the compose file reads is given in the environment, which both Compose
    versions prefer over a developer's Docker/.env; ``extra`` adds settings (for instance
    the ones a documented command sets before `docker compose`).
    """
    api_port, jupyter_port = free_port(), free_port()
    project = f"penguindocs{uuid.uuid4().hex[:10]}"
    settings = {
        "COMPOSE_PROJECT_NAME": project,
        "API_PORT": str(api_port),
        "JUPYTER_PORT": str(jupyter_port),
        "JUPYTER_TOKEN": "",
        "API_BIND": "127.0.0.1",
        "JUPYTER_BIND": "127.0.0.1",
        "API_WORKERS": "2",
        "BOOTSTRAP_MODELS": "1",
        **extra,
    }
    documented = DocumentedProject(
        command=command,
        project=project,
        env={**os.environ, **settings},
        api_url=f"http://127.0.0.1:{api_port}",
        jupyter_port=jupyter_port,
    )
    try:
        yield documented
    finally:
        subprocess.run(
            [*command, "down", "-v", "--remove-orphans"],
            cwd=DOCKER_DIR,
            env=documented.env,
            capture_output=True,
            timeout=COMMAND_TIMEOUT_S,
        )
        remove_project_images(project)


@dataclass
class ComposeStack:
    """A running stack: URLs, the token, and helpers that run compose/docker commands."""

    command: list[str]
    project: str
    env: dict[str, str]
    env_file: Path
    api_url: str
    jupyter_url: str
    jupyter_token: str
    timings: dict[str, float] = field(default_factory=dict)
    files: tuple[Path, ...] = ()

    def compose(
        self, *args: str, check: bool = True, timeout: float = COMMAND_TIMEOUT_S
    ) -> subprocess.CompletedProcess[str]:
        command = [*self.command, "--env-file", str(self.env_file), "-p", self.project]
        for compose_file in (COMPOSE_FILE, *self.files):
            command += ["-f", str(compose_file)]
        command += args
        result = subprocess.run(
            command, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
            )
        return result

    def exec(self, service: str, *command: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run a command in a running service container (no TTY)."""
        return self.compose("exec", "-T", service, *command, check=check)

    def container_id(self, service: str) -> str:
        container = self.compose("ps", "-q", service).stdout.strip()
        assert container, f"no container for service {service}"
        return container

    def inspect(self, service: str) -> dict:
        output = docker("inspect", self.container_id(service)).stdout
        return json.loads(output)[0]

    def wait_until_healthy(self, timeout: float = HEALTHY_TIMEOUT_S) -> None:
        """Wait for Docker's healthcheck of every service; record when each got healthy."""
        started = time.monotonic()
        containers = {service: self.container_id(service) for service in SERVICES}
        pending = dict(containers)
        while pending and time.monotonic() - started < timeout:
            for service, container in list(pending.items()):
                if _health(container) == "healthy":
                    self.timings[f"{service}_healthy"] = round(time.monotonic() - started, 1)
                    del pending[service]
            time.sleep(0.5)
        if pending:
            statuses = {service: _health(container) for service, container in pending.items()}
            raise AssertionError(f"not healthy after {timeout} s: {statuses}\n{self.logs()}")

    def logs(self, tail: str = "200") -> str:
        result = self.compose("logs", "--no-color", "--tail", tail, check=False)
        return result.stdout + result.stderr

    def api(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.api_url, timeout=30, **kwargs)

    def jupyter(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.jupyter_url, timeout=30, **kwargs)


def project_services(project: str) -> set[str]:
    """The Compose services of a project's containers, running or not (both Compose versions
    label their containers alike)."""
    listed = docker(
        "ps", "--all", "--filter", f"label=com.docker.compose.project={project}",
        "--format", '{{.Label "com.docker.compose.service"}}',
    ).stdout  # fmt: skip
    return set(listed.split())


def _health(container: str) -> str:
    state = json.loads(docker("inspect", "--format", "{{json .State}}", container).stdout)
    return state.get("Health", {}).get("Status", state["Status"])


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a plain `docker` command (images, one-off containers); raise if it fails."""
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S
    )
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed:\n{result.stderr}")
    return result


def _timed(timings: dict[str, float], name: str, step) -> None:
    started = time.monotonic()
    step()
    timings[name] = round(time.monotonic() - started, 1)


@contextmanager
def compose_stack(work_dir: Path) -> Iterator[ComposeStack]:
    """Build, start and wait for the stack; yield it; always `down -v` and untag its images.

    The stack ignores any Docker/.env of the developer (an empty --env-file): every setting
    comes from the environment given here. The containers' logs are saved to
    ``work_dir/compose.log`` before `down`.
    """
    env_file = work_dir / "empty.env"
    env_file.write_text("")
    api_port, jupyter_port = free_port(), free_port()
    token = secrets.token_hex(24)
    settings = {
        "API_PORT": str(api_port),
        "JUPYTER_PORT": str(jupyter_port),
        "JUPYTER_TOKEN": token,
        "API_BIND": "127.0.0.1",
        "JUPYTER_BIND": "127.0.0.1",
        "API_WORKERS": "2",
    }
    stack = ComposeStack(
        command=compose_command(),
        project=f"penguine2e{uuid.uuid4().hex[:10]}",
        env={**os.environ, **settings},
        env_file=env_file,
        api_url=f"http://127.0.0.1:{api_port}",
        jupyter_url=f"http://127.0.0.1:{jupyter_port}",
        jupyter_token=token,
    )
    try:
        _timed(stack.timings, "build", lambda: stack.compose("build", timeout=BUILD_TIMEOUT_S))
        _timed(stack.timings, "up", lambda: stack.compose("up", "-d", timeout=UP_TIMEOUT_S))
        stack.wait_until_healthy()
        yield stack
    finally:
        (work_dir / "compose.log").write_text(stack.logs(tail="all"))
        stack.compose("down", "-v", "--remove-orphans", check=False)
        remove_project_images(stack.project)


def remove_project_images(project: str) -> None:
    """Untag the images built for ``project`` but keep their layers as the build cache."""
    listed = docker(
        "images", "--filter", f"reference={project}*", "--format", "{{.Repository}}:{{.Tag}}"
    )
    for tag in set(listed.stdout.split()):
        docker("rmi", "--no-prune", tag, check=False)
