"""End to end: the classroom profile, nginx in front of the API (issue 18, section 2).

The API has no connection limits of its own any more; on a shared server nginx holds them.
This module switches the session stack to the profile (COMPOSE_PROFILES=classroom,
ALLOW_PICKLE=false): the api is recreated without pickles and nginx starts in front of it on
a free 127.0.0.1 port. nginx runs the committed Docker/nginx/classroom.conf with only its
four timeouts shortened (a copy mounted by a compose override file), so that slow clients
are cut in seconds; the limits per client address, the body size and everything else are the
committed values. At the end nginx is removed and the api recreated as it was.

Every test client comes from one address (the Docker bridge's gateway, as nginx sees it):
the flood tests show that this address gets 429 and is served again after the burst.
A last test runs the documented classroom command, literally, with the other Compose.
"""

import dataclasses
import json
import re
import secrets
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from support import nginx_conf
from support.api import ADELIE
from support.compose import (
    UP_TIMEOUT_S,
    ComposeStack,
    compose_command,
    documented_project,
    other_compose,
    project_services,
)
from support.live_server import free_port
from support.raw_http import (
    Ending,
    connect,
    read_response,
    read_until_closed,
    readable,
    request_head,
    status_and_json,
    wait_until_closed,
)

from penguin_contract import model_filename

pytestmark = pytest.mark.e2e

# The test's nginx: the committed file with these timeouts instead of its own.
TIMEOUTS = {
    "client_header_timeout": "2s",
    "client_body_timeout": "3s",
    "send_timeout": "2s",
    "keepalive_timeout": "3s",
}
# How late nginx may enforce a deadline on a busy 2-core machine; and how early.
LATE_MARGIN_S = 1.5
EARLY_MARGIN_S = 0.1
SLOW_CLIENTS = 40
HEALTH_PROBES = 10
HEALTH_LATENCY_S = 0.25
NGINX_UP_TIMEOUT_S = 60
FAIL_CLOSED_TIMEOUT_S = 30
NOTEBOOK_MODELS = {"randomforest", "svm", "gradientboosting"}
PICKLE_ONLY = "e2e_edge_pickle_only"
MODELS_DIR = "/app/models"
BIG_PATH = "/static/swagger-ui/swagger-ui-bundle.js"
HALF_HEADERS = b"POST /classify/svm HTTP/1.1\r\nHost: test\r\nContent-Ty"
BODY = json.dumps(ADELIE).encode()
# nginx's own JSON answers (Docker/nginx/classroom.conf), not the API's.
FROM_NGINX = re.compile(r"\(nginx [a-z_ /]+\)")


@dataclass
class Classroom:
    stack: ComposeStack  # the session stack with the profile's environment and override
    url: str  # nginx, published on 127.0.0.1
    port: int
    address: str  # nginx's own address on the Compose network, reachable from this host
    conf: Path  # the test's copy of classroom.conf
    limits: nginx_conf.Limits

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)

    def connect(self, **kwargs) -> socket.socket:
        return connect("127.0.0.1", self.port, **kwargs)

    def nginx_log(self) -> str:
        result = self.stack.compose("logs", "--no-color", "nginx")
        return result.stdout + result.stderr

    def refill(self) -> None:
        """Wait until this address may send a whole burst again."""
        time.sleep(self.limits.burst / self.limits.requests_per_s + 0.3)


def health_status(classroom: Classroom) -> int:
    with classroom.connect() as sock:
        sock.sendall(request_head("GET", "/health", close=True))
        return int(read_until_closed(sock).split()[1])


def health_latency(classroom: Classroom) -> float:
    """Seconds for /health through nginx on a new connection, from connect to the answer."""
    started = time.perf_counter()
    assert health_status(classroom) == 200
    return time.perf_counter() - started


def wait_for_nginx(url: str) -> None:
    deadline = time.monotonic() + NGINX_UP_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"nginx did not answer /health at {url} in {NGINX_UP_TIMEOUT_S} s")


def recreate_api(stack: ComposeStack) -> None:
    stack.compose("up", "-d", "--no-deps", "--force-recreate", "api", timeout=UP_TIMEOUT_S)
    stack.wait_until_healthy()


def api_environment(stack: ComposeStack) -> list[str]:
    return stack.inspect("api")["Config"]["Env"]


# --- the default stack, before the module switches it ------------------------------------


def test_the_default_stack_is_two_containers_and_no_nginx(stack: ComposeStack) -> None:
    assert project_services(stack.project) == {"jupyter", "api"}
    assert "ALLOW_PICKLE=true" in api_environment(stack)


# --- the classroom profile ----------------------------------------------------------------


@pytest.fixture(scope="module")
def classroom(stack: ComposeStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Classroom]:
    work = tmp_path_factory.mktemp("classroom")
    conf = work / "classroom.conf"
    limits = nginx_conf.write_with_timeouts(conf, **TIMEOUTS)
    override = work / "docker-compose.test-nginx.yml"
    mount = f"{conf}:/etc/nginx/conf.d/default.conf:ro"
    override.write_text(yaml.safe_dump({"services": {"nginx": {"volumes": [mount]}}}))
    port = free_port()
    settings = {
        "COMPOSE_PROFILES": "classroom",
        "ALLOW_PICKLE": "false",
        "NGINX_BIND": "127.0.0.1",
        "NGINX_PORT": str(port),
    }
    edge = dataclasses.replace(stack, env={**stack.env, **settings}, files=(override,))
    try:
        started = time.monotonic()
        edge.compose("up", "-d", timeout=UP_TIMEOUT_S)
        edge.wait_until_healthy()
        url = f"http://127.0.0.1:{port}"
        wait_for_nginx(url)
        print(f"\nclassroom profile up in {time.monotonic() - started:.1f} s")
        networks = edge.inspect("nginx")["NetworkSettings"]["Networks"]
        (address,) = {network["IPAddress"] for network in networks.values()}
        yield Classroom(edge, url, port, address, conf, limits)
    finally:
        (work / "nginx.log").write_text(edge.logs(tail="all"))
        edge.compose("rm", "--stop", "--force", "nginx", check=False)
        recreate_api(stack)
        assert "ALLOW_PICKLE=true" in api_environment(stack)
        assert project_services(stack.project) == {"jupyter", "api"}


@pytest.fixture
def pickle_only_model(classroom: Classroom) -> Iterator[str]:
    """A copy of svm's pickle under a new name: a model with no ONNX twin."""
    source = f"{MODELS_DIR}/{model_filename('svm')}"
    target = f"{MODELS_DIR}/{model_filename(PICKLE_ONLY)}"
    copy = f"import os, shutil; shutil.copy({source!r}, {target!r} + '.tmp'); "
    copy += f"os.replace({target!r} + '.tmp', {target!r})"
    classroom.stack.exec("jupyter", "python", "-c", copy)
    try:
        yield PICKLE_ONLY
    finally:
        classroom.stack.exec("jupyter", "rm", "-f", target)


def test_nginx_runs_unprivileged_and_read_only_in_front_of_a_pickle_free_api(
    classroom: Classroom,
) -> None:
    nginx = classroom.stack.inspect("nginx")
    host = nginx["HostConfig"]

    assert "ALLOW_PICKLE=false" in api_environment(classroom.stack)
    assert project_services(classroom.stack.project) == {"jupyter", "api", "nginx"}
    assert classroom.stack.exec("nginx", "id", "-u").stdout.strip() == "101"
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert [binding["HostIp"] for binding in host["PortBindings"]["8080/tcp"]] == ["127.0.0.1"]
    (mount,) = [m for m in nginx["Mounts"] if m["Destination"].startswith("/etc/nginx")]
    assert (mount["Source"], mount["RW"]) == (str(classroom.conf), False)


def test_through_nginx_the_twins_serve_and_a_pickle_only_model_is_an_error(
    classroom: Classroom, pickle_only_model: str
) -> None:
    with classroom.client() as client:
        deadline = time.monotonic() + 60
        models: dict[str, dict] = {}
        while pickle_only_model not in models and time.monotonic() < deadline:
            listed = client.get("/models")
            assert listed.status_code == 200, listed.text
            models = {model["name"]: model for model in listed.json()["available_models"]}
            time.sleep(0.5)
        svm = client.post("/classify/svm", json=ADELIE)
        refused = client.post(f"/classify/{pickle_only_model}", json=ADELIE)

    for name in NOTEBOOK_MODELS:
        assert (models[name]["status"], models[name]["runtime"]) == ("ok", "onnx"), models[name]
    assert models[pickle_only_model]["status"] == "error"
    assert "ALLOW_PICKLE=false" in models[pickle_only_model]["reason"]
    assert svm.status_code == 200, svm.text
    assert (svm.json()["species_name"], svm.json()["runtime"]) == ("Adelie", "onnx")
    # The API's own error (503 model_unavailable), passed through untouched.
    assert refused.status_code == 503, refused.text
    assert "ALLOW_PICKLE=false" in refused.text


def test_request_ids_pass_through_nginx(classroom: Classroom) -> None:
    chosen = f"e2e-edge-{secrets.token_hex(6)}"
    with classroom.client() as client:
        given = client.post("/classify/svm", json=ADELIE, headers={"X-Request-ID": chosen})
        generated = client.post("/classify/svm", json=ADELIE)

    assert given.headers["x-request-id"] == chosen
    nginx_id = generated.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", nginx_id), nginx_id  # nginx's $request_id
    log = classroom.nginx_log()
    assert f"rid={chosen}" in log
    assert f"rid={nginx_id}" in log


def padded_body(size: int) -> bytes:
    """ADELIE as JSON, padded with spaces to exactly ``size`` bytes."""
    return BODY + b" " * (size - len(BODY))


def test_a_body_of_512_kib_reaches_the_api_and_a_larger_one_gets_nginx_413_json(
    classroom: Classroom,
) -> None:
    limit = classroom.limits.max_body_bytes
    headers = {"Content-Type": "application/json"}
    with classroom.client() as client:
        fits = client.post("/classify/svm", content=padded_body(limit), headers=headers)
        too_big = client.post("/classify/svm", content=padded_body(limit + 1), headers=headers)
    with classroom.client() as client:
        v2 = client.post("/v2/models/svm/infer", content=padded_body(limit + 1), headers=headers)

    assert fits.status_code == 200, fits.text
    assert fits.json()["species_name"] == "Adelie"
    assert too_big.status_code == 413
    assert too_big.json()["code"] == "body_too_large"
    assert "client_max_body_size" in too_big.json()["detail"]
    assert v2.status_code == 413
    assert list(v2.json()) == ["error"]
    assert "client_max_body_size" in v2.json()["error"]


def test_headers_above_large_client_header_buffers_get_400_json(classroom: Classroom) -> None:
    number, size = classroom.limits.header_buffers
    lines = [f"X-Padding-{n}: {'a' * (size // 2)}\r\n" for n in range(2 * number + 2)]
    with classroom.connect() as sock:
        sock.sendall(f"GET /health HTTP/1.1\r\nHost: test\r\n{''.join(lines)}\r\n".encode())
        status, body = status_and_json(read_until_closed(sock))

    assert (status, body["code"]) == (400, "headers_too_large")
    assert FROM_NGINX.search(body["detail"])
    assert health_status(classroom) == 200


def assert_cut_on_time(ending: Ending | None, deadline_s: float) -> None:
    assert ending is not None, f"still open {deadline_s + LATE_MARGIN_S} s later"
    assert deadline_s - EARLY_MARGIN_S <= ending.seconds <= deadline_s + LATE_MARGIN_S, ending


def assert_closed_without_answer_or_408(ending: Ending) -> None:
    """nginx logs 408 for a timed-out request and closes; it sends nothing."""
    assert ending.received == b"" or ending.received.startswith(b"HTTP/1.1 408"), ending


def test_half_sent_headers_and_silent_connections_are_cut_at_client_header_timeout(
    classroom: Classroom,
) -> None:
    deadline_s = classroom.limits.header_timeout_s
    classroom.refill()
    with ExitStack() as held:
        half_sent, silent = [], []
        for index in range(SLOW_CLIENTS):
            sock = held.enter_context(classroom.connect())
            if index % 2:
                sock.sendall(HALF_HEADERS)
                half_sent.append(sock)
            else:
                silent.append(sock)
        started = time.monotonic()
        latencies = [health_latency(classroom) for _ in range(HEALTH_PROBES)]
        endings = wait_until_closed(half_sent + silent, started, deadline_s + LATE_MARGIN_S)

    assert max(latencies) < HEALTH_LATENCY_S, latencies
    for ending in endings:
        assert_cut_on_time(ending, deadline_s)
        assert_closed_without_answer_or_408(ending)


def test_half_sent_headers_on_a_kept_alive_connection_are_cut(classroom: Classroom) -> None:
    with classroom.connect() as sock:
        sock.sendall(request_head("GET", "/health"))
        assert read_response(sock).startswith(b"HTTP/1.1 200")
        time.sleep(classroom.limits.keepalive_s / 2)
        started = time.monotonic()
        sock.sendall(HALF_HEADERS)
        deadline_s = classroom.limits.header_timeout_s
        [ending] = wait_until_closed([sock], started, deadline_s + LATE_MARGIN_S)

    assert_cut_on_time(ending, deadline_s)
    assert_closed_without_answer_or_408(ending)


def test_an_idle_kept_alive_connection_is_closed_at_keepalive_timeout(
    classroom: Classroom,
) -> None:
    with classroom.connect() as sock:
        sock.sendall(request_head("GET", "/health"))
        assert read_response(sock).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        deadline_s = classroom.limits.keepalive_s
        [ending] = wait_until_closed([sock], started, deadline_s + LATE_MARGIN_S)

    assert_cut_on_time(ending, deadline_s)
    assert ending.received == b""


def test_a_stalled_body_is_cut_at_client_body_timeout_before_the_api_sees_it(
    classroom: Classroom,
) -> None:
    request_id = f"e2e-stalled-{secrets.token_hex(6)}"
    deadline_s = classroom.limits.body_timeout_s
    with classroom.connect() as sock:
        head = request_head("POST", "/classify/svm", length=200, X_Request_ID=request_id)
        started = time.monotonic()
        sock.sendall(head + BODY[:20])
        [ending] = wait_until_closed([sock], started, deadline_s + LATE_MARGIN_S)

    assert_cut_on_time(ending, deadline_s)
    assert_closed_without_answer_or_408(ending)
    (line,) = [line for line in classroom.nginx_log().splitlines() if f"rid={request_id}" in line]
    assert '"POST /classify/svm HTTP/1.1" 408 ' in line
    predictions = classroom.stack.exec("api", "cat", "/app/results/predictions.log").stdout
    assert request_id not in predictions


def test_a_slow_body_is_served_while_no_pause_reaches_client_body_timeout(
    classroom: Classroom,
) -> None:
    """client_body_timeout is between two reads, not for the whole body: a body sent in
    three pieces, over twice the timeout in all, is served (and the API sees it only once
    it is complete: nginx reads the whole body first)."""
    pause_s = classroom.limits.body_timeout_s * 0.6
    pieces = [BODY[:20], BODY[20:40], BODY[40:]]
    with classroom.connect() as sock:
        started = time.monotonic()
        sock.sendall(request_head("POST", "/classify/svm", length=len(BODY), close=True))
        for piece in pieces:
            time.sleep(pause_s)
            assert not readable(sock, 0), "nginx answered before the body was complete"
            sock.sendall(piece)
        status, answer = status_and_json(read_until_closed(sock))

    assert time.monotonic() - started > 1.5 * classroom.limits.body_timeout_s
    assert (status, answer["species_name"]) == (200, "Adelie")


def test_a_client_that_never_reads_is_cut_at_send_timeout(classroom: Classroom) -> None:
    """Pipelined requests for Swagger UI's 1.7 MB bundle, never read, from a socket with a
    small window, straight to nginx's container (the host's Docker proxy would buffer
    megabytes in between): nginx has the API's whole response at once, waits send_timeout
    for the client, then drops the connection."""
    requests = 4
    with classroom.client() as client:
        size = len(client.get(BIG_PATH).content)
    classroom.refill()
    with connect(classroom.address, 8080, receive_buffer=4096) as sock:
        sock.sendall(request_head("GET", BIG_PATH) * requests)
        time.sleep(classroom.limits.send_timeout_s + LATE_MARGIN_S)
        assert health_latency(classroom) < HEALTH_LATENCY_S
        received, ended = 0, False
        sock.settimeout(1)
        try:
            while chunk := sock.recv(1 << 20):
                received += len(chunk)
            ended = True  # nginx closed the connection
        except ConnectionResetError:
            ended = True
        except TimeoutError:
            pass  # still open, and nothing more is coming

    assert ended, "the connection was still open"
    assert received < size, f"{received} bytes: the first response went through"


def hold_requests(classroom: Classroom, count: int, stack: ExitStack) -> list[socket.socket]:
    """``count`` requests whose headers nginx has read, waiting for the rest of their body."""
    held = []
    for _ in range(count):
        sock = stack.enter_context(classroom.connect())
        sock.sendall(request_head("POST", "/classify/svm", length=len(BODY)) + BODY[:1])
        held.append(sock)
    return held


def test_requests_beyond_limit_conn_get_429_json_and_the_client_is_served_again(
    classroom: Classroom,
) -> None:
    limits = classroom.limits
    classroom.refill()
    with ExitStack() as stack:
        held = hold_requests(classroom, limits.connections, stack)
        # Keep them going (a byte each before client_body_timeout) until the request rate
        # this address used has refilled: the next refusal is limit_conn's, not limit_req's.
        keep_until = time.monotonic() + limits.burst / limits.requests_per_s + 0.3
        sent = 1
        while time.monotonic() < keep_until:
            time.sleep(0.5)
            for sock in held:
                sock.sendall(BODY[sent : sent + 1])
            sent += 1
        with classroom.client() as client:
            refused = client.get("/health")
            refused_v2 = client.get("/v2/health/live")

    assert refused.status_code == 429
    assert refused.json()["code"] == "too_many_requests"
    assert FROM_NGINX.search(refused.json()["detail"])
    assert refused.headers["retry-after"] == "1"
    assert refused_v2.status_code == 429
    assert list(refused_v2.json()) == ["error"]
    assert 'limiting connections by zone "penguin_connections"' in classroom.nginx_log()
    assert health_status(classroom) == 200


def test_a_flood_gets_429_json_and_the_client_is_served_again_after_the_burst(
    classroom: Classroom,
) -> None:
    limits = classroom.limits
    classroom.refill()
    statuses, refusals = [], []
    with classroom.client() as client:
        started = time.monotonic()
        while len(statuses) < 3 * limits.burst and time.monotonic() - started < 10:
            response = client.get("/health")
            statuses.append(response.status_code)
            if response.status_code == 429:
                refusals.append(response)
        flood_s = time.monotonic() - started
        classroom.refill()
        after = [client.get("/health").status_code for _ in range(limits.burst)]

    served = statuses.count(200)
    # The burst at once, then at most one more per 1/rate seconds of the flood.
    assert limits.burst <= served <= limits.burst + 1 + limits.requests_per_s * flood_s
    assert set(statuses) == {200, 429}
    assert statuses.index(429) >= limits.burst
    assert {r.json()["code"] for r in refusals} == {"too_many_requests"}
    assert all(r.headers["retry-after"] == "1" for r in refusals)
    assert after == [200] * limits.burst
    assert "limiting requests" in classroom.nginx_log()


# --- ALLOW_PICKLE=false cannot be forgotten -----------------------------------------------


def test_nginx_refuses_to_start_in_front_of_an_api_that_unpickles(classroom: Classroom) -> None:
    run = classroom.stack.compose(
        "run", "--rm", "--no-deps", "-e", "ALLOW_PICKLE=true", "nginx", check=False
    )

    assert run.returncode != 0
    assert "Set ALLOW_PICKLE=false" in run.stdout + run.stderr


def test_an_api_recreated_with_pickles_is_out_of_nginx_reach(classroom: Classroom) -> None:
    """A later `up` without ALLOW_PICKLE=false recreates the api with pickles allowed and
    leaves nginx running: nginx no longer finds the api's pickle-free alias and answers 503.
    (Last in the module: the fixture restores the api.)"""
    forgotten = dataclasses.replace(
        classroom.stack, env={**classroom.stack.env, "ALLOW_PICKLE": "true"}
    )
    recreate_api(forgotten)
    assert "ALLOW_PICKLE=true" in api_environment(classroom.stack)

    deadline = time.monotonic() + FAIL_CLOSED_TIMEOUT_S
    answers: list[httpx.Response] = []
    with classroom.client() as client:
        while time.monotonic() < deadline and len(answers) < 5:
            response = client.get("/health")
            answers = [*answers, response] if response.status_code == 503 else []
            time.sleep(0.5)

    assert [answer.status_code for answer in answers] == [503] * 5
    assert answers[-1].json()["code"] == "api_unavailable"
    assert "ALLOW_PICKLE=false" in answers[-1].json()["detail"]
    assert "api-allow-pickle-false could not be resolved" in classroom.nginx_log()


# --- the documented command, with the other Compose ---------------------------------------


def test_documented_classroom_command_works_with_the_other_compose() -> None:
    """README: `COMPOSE_PROFILES=classroom ALLOW_PICKLE=false docker compose up -d --build`,
    run from Docker/ with the Compose the session does not use, on a throw-away project."""
    command = other_compose(compose_command())
    settings = {"COMPOSE_PROFILES": "classroom", "ALLOW_PICKLE": "false"}
    settings |= {"NGINX_BIND": "127.0.0.1", "NGINX_PORT": str(free_port())}
    with documented_project(command, **settings) as project:
        started = time.monotonic()
        project.run("up", "-d", "--build", timeout=900)
        nginx = project.url("NGINX_PORT")
        deadline = time.monotonic() + 180
        listed: set[str] = set()
        while not listed >= NOTEBOOK_MODELS and time.monotonic() < deadline:
            try:
                models = httpx.get(f"{nginx}/models", timeout=10).json()["available_models"]
                listed = {model["name"] for model in models}
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            time.sleep(1)
        print(f"\n{command}: models listed through nginx {time.monotonic() - started:.1f} s")
        prediction = httpx.post(f"{nginx}/classify/svm", json=ADELIE, timeout=30)

        assert listed >= NOTEBOOK_MODELS
        assert project.services() == {"jupyter", "api", "nginx"}
        assert (prediction.status_code, prediction.json()["runtime"]) == (200, "onnx")

        project.run("down", "-v")
        assert project.services() == set()
        assert project.volumes() == []
