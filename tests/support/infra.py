"""Finding and starting test infrastructure."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from awooop.infra.postgres.provisioning import SchemaSpec, migrate_platform
from awooop.infra.settings import (
    DEV_FETCH_MAX_WAIT_MS,
    KafkaSettings,
    Settings,
    without_credentials,
)


@dataclass(frozen=True)
class StackUrls:
    kafka: str
    database: str
    redis: str

    def settings(self, **kafka: int) -> Settings:
        """A service's settings for these URLs (no admin URL), with the short group
        timeouts tests use."""
        from pathlib import Path

        from support.contracts import TEST_RING

        return Settings(
            kafka_config=KafkaSettings(
                bootstrap=self.kafka,
                session_timeout_ms=kafka.get("session_timeout_ms", 2_000),
                heartbeat_interval_ms=kafka.get("heartbeat_interval_ms", 300),
                max_poll_records=kafka.get("max_poll_records", 500),
                fetch_max_wait_ms=kafka.get("fetch_max_wait_ms", DEV_FETCH_MAX_WAIT_MS),
                replication_factor=1,
                min_insync_replicas=1,
            ),
            postgres_url=without_credentials(self.database),
            redis_url=self.redis,
            home=Path("/nonexistent"),
            epoch_check_seconds=1.0,
            contract_verifying_keys=TEST_RING,
        )


async def migrated(admin_url: str, *specs: SchemaSpec) -> None:
    """What `awooop migrate` does, for the services a test starts in its own process."""
    await migrate_platform(admin_url, specs)


def docker_answers() -> bool:
    """True when a Docker engine answers on DOCKER_HOST (or the default socket)."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        return False
    path = host.removeprefix("unix://")
    if not os.path.exists(path):
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2)
            sock.connect(path)
            sock.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
            return b"OK" in sock.recv(256)
    except OSError:
        return False


@contextmanager
def start_containers() -> Iterator[StackUrls]:
    """Kafka, Postgres 16 and Redis in containers (only where a Docker engine answers)."""
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer
    from testcontainers.redis import RedisContainer

    with (
        KafkaContainer() as kafka,
        PostgresContainer("postgres:16", driver=None) as pg,
        RedisContainer() as redis,
    ):
        redis_url = f"redis://{redis.get_container_host_ip()}:{redis.get_exposed_port(6379)}/0"
        yield StackUrls(kafka.get_bootstrap_server(), pg.get_connection_url(), redis_url)


def unique(prefix: str) -> str:
    """A short unique name (schemas, groups, project ids) for one test."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"
