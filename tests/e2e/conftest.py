"""One Compose stack per test session, shared by the end-to-end and the browser tests."""

from collections.abc import Iterator

import pytest
from support.compose import ComposeStack, compose_stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeStack]:
    with compose_stack(tmp_path_factory.mktemp("compose")) as running:
        print(f"\ncompose stack {running.project} up; seconds per step: {running.timings}")
        yield running
