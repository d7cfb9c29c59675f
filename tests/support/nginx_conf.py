"""The limits of Docker/nginx/classroom.conf, read from the file itself.

The e2e tests flood and starve the nginx of the classroom profile with these numbers, the
deploy tests compare them with the Ingress annotations and the ingress-nginx ConfigMap, so
the file stays the one place where they are written. `with_timeouts()` gives a copy of the
file with shorter timeouts, for tests that wait for them.
"""

import re
from dataclasses import dataclass
from pathlib import Path

from support import REPO_ROOT

CLASSROOM_CONF = REPO_ROOT / "Docker" / "nginx" / "classroom.conf"
# `name value;` at the start of a line (comments and blocks aside).
DIRECTIVE = re.compile(r"^\s*(\w+)\s+([^;{}#]+);", flags=re.M)
SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2}


def directives(text: str | None = None) -> dict[str, list[str]]:
    """Every directive of the file with the values it is given, in order of appearance."""
    found: dict[str, list[str]] = {}
    for name, value in DIRECTIVE.findall(CLASSROOM_CONF.read_text() if text is None else text):
        found.setdefault(name, []).append(" ".join(value.split()))
    return found


def only(name: str, text: str | None = None) -> str:
    values = directives(text)[name]
    assert len(values) == 1, f"{name} is set {len(values)} times in {CLASSROOM_CONF.name}"
    return values[0]


def seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)(ms|s|m)?", value)
    assert match, f"not an nginx time: {value}"
    factor = {"ms": 0.001, "s": 1, "m": 60, None: 1}[match.group(2)]
    return int(match.group(1)) * factor


def size_bytes(value: str) -> int:
    match = re.fullmatch(r"(\d+)([kKmM]?)", value)
    assert match, f"not an nginx size: {value}"
    return int(match.group(1)) * SIZE_UNITS[match.group(2).lower()]


@dataclass(frozen=True)
class Limits:
    header_timeout_s: float
    body_timeout_s: float
    send_timeout_s: float
    keepalive_s: float
    header_buffers: tuple[int, int]  # number, bytes each
    max_body_bytes: int
    requests_per_s: int
    burst: int
    connections: int
    status: tuple[int, int]  # limit_req_status, limit_conn_status


def limits(text: str | None = None) -> Limits:
    rate = re.search(r"\brate=(\d+)r/s\b", only("limit_req_zone", text))
    burst = re.search(r"\bburst=(\d+)\b", only("limit_req", text))
    assert rate and burst, "limit_req_zone needs rate=<n>r/s and limit_req burst=<n>"
    number, size = only("large_client_header_buffers", text).split()
    return Limits(
        header_timeout_s=seconds(only("client_header_timeout", text)),
        body_timeout_s=seconds(only("client_body_timeout", text)),
        send_timeout_s=seconds(only("send_timeout", text)),
        keepalive_s=seconds(only("keepalive_timeout", text)),
        header_buffers=(int(number), size_bytes(size)),
        max_body_bytes=size_bytes(only("client_max_body_size", text)),
        requests_per_s=int(rate.group(1)),
        burst=int(burst.group(1)),
        connections=int(only("limit_conn", text).split()[-1]),
        status=(int(only("limit_req_status", text)), int(only("limit_conn_status", text))),
    )


def with_timeouts(**timeouts: str) -> str:
    """The file with the given timeouts replaced, e.g. ``send_timeout="2s"``."""
    text = CLASSROOM_CONF.read_text()
    for name, value in timeouts.items():
        text, count = re.subn(rf"^(\s*{name}\s+)[^;]+;", rf"\g<1>{value};", text, flags=re.M)
        assert count == 1, f"{name} appears {count} times in {CLASSROOM_CONF.name}"
    return text


def write_with_timeouts(path: Path, **timeouts: str) -> Limits:
    path.write_text(with_timeouts(**timeouts))
    return limits(path.read_text())
