"""Infrastructure for the suites: URLs from the environment, else testcontainers when a
Docker engine answers, else the embedded stack started here (and stopped at the end)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from awooop.infra.embedded import EmbeddedStack
from support.infra import StackUrls, docker_answers, start_containers

_URL_VARS = ("AWOOOP_KAFKA_BOOTSTRAP", "AWOOOP_DATABASE_URL", "AWOOOP_REDIS_URL")


@pytest.fixture(scope="session")
def stack_urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackUrls]:
    """The broker, Postgres and Redis every integration test shares."""
    if all(os.environ.get(var) for var in _URL_VARS):
        yield StackUrls(*(os.environ[var] for var in _URL_VARS))
        return
    if docker_answers():
        with start_containers() as urls:
            yield urls
        return
    home = tmp_path_factory.mktemp("stack")
    stack = EmbeddedStack(home, env={}, say=lambda _line: None)
    try:
        stack.up()
        urls = stack.urls()
        yield StackUrls(*(urls[var] for var in _URL_VARS))
    finally:
        stack.purge()


@pytest.fixture(scope="session")
async def kafka_ready(stack_urls: StackUrls) -> StackUrls:
    """The shared broker with every registry topic created."""
    from awooop.infra.kafka.admin import ensure_topics

    await ensure_topics(stack_urls.settings().kafka)
    return stack_urls
