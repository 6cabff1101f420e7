"""`awooop dev up | down | status`, run as the real command.

Every call is a child process with its own AWOOOP_HOME and none of the URL
variables, so it starts real embedded processes; every home is brought down
again in teardown, whatever the test did.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import pytest
import redis

from awooop.infra.embedded.postgres import postgres_data_dir
from awooop.infra.embedded.processes import PieceInfo, pid_alive

pytestmark = pytest.mark.e2e

PIECES = ("broker", "postgres", "redis")
URL_VARS = {
    "broker": "AWOOOP_KAFKA_BOOTSTRAP",
    "postgres": "AWOOOP_DATABASE_URL",
    "redis": "AWOOOP_REDIS_URL",
}
COMMAND = [sys.executable, "-m", "awooop.cli.main"]


def child_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in URL_VARS.values()}
    env["AWOOOP_HOME"] = str(home)
    env.update(extra or {})
    return env


def awooop(
    home: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args],
        env=child_env(home, env),
        cwd=home.parent,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def states(output: str) -> dict[str, str]:
    """`{piece: state}` from the command's one-line-per-piece output."""
    found = {}
    for line in output.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] in PIECES:
            found[words[0]] = words[1]
    return found


def recorded(home: Path) -> dict[str, PieceInfo]:
    pieces = json.loads((home / "stack.json").read_text())["pieces"]
    return {name: PieceInfo.from_json(info) for name, info in pieces.items()}


async def _fetch_value(url: str, query: str) -> object:
    connection = await asyncpg.connect(url, timeout=10)
    try:
        return await connection.fetchval(query)
    finally:
        await connection.close()


def fetch_value(url: str, query: str) -> object:
    # A loop of its own: the loop pytest-asyncio shares across tests stays untouched.
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(_fetch_value(url, query))
    finally:
        loop.close()


def table_exists(url: str, table: str) -> bool:
    return fetch_value(url, f"SELECT to_regclass('public.{table}') IS NOT NULL") is True


def redis_answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        return client.ping() is True
    finally:
        client.close()


@pytest.fixture
def new_home(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """Hands out AWOOOP_HOME folders; brings each one down (and its data away) afterwards."""
    made: list[Path] = []

    def make(name: str) -> Path:
        made.append(tmp_path / name)
        return tmp_path / name

    yield make
    for home in reversed(made):
        awooop(home, "dev", "down")
        data_dir = postgres_data_dir(home)
        if not data_dir.is_relative_to(home):
            shutil.rmtree(data_dir.parent, ignore_errors=True)


def test_up_twice_then_status_then_down(new_home: Callable[[str], Path]) -> None:
    home = new_home("stack")

    first = awooop(home, "dev", "up")
    assert first.returncode == 0, first.stderr
    assert states(first.stdout) == dict.fromkeys(PIECES, "started")
    pieces = recorded(home)
    assert set(pieces) == set(PIECES)
    for name, var in URL_VARS.items():
        assert f"export {var}={shlex.quote(pieces[name].url)}" in first.stdout

    second = awooop(home, "dev", "up")
    assert second.returncode == 0, second.stderr
    assert states(second.stdout) == dict.fromkeys(PIECES, "running")
    assert recorded(home) == pieces

    status = awooop(home, "dev", "status")
    assert status.returncode == 0, status.stdout
    assert states(status.stdout) == dict.fromkeys(PIECES, "running")

    with socket.create_connection(("127.0.0.1", pieces["broker"].port), timeout=5):
        pass
    assert fetch_value(pieces["postgres"].url, "SELECT 1") == 1
    assert redis_answers(pieces["redis"].url)

    down = awooop(home, "dev", "down")
    assert down.returncode == 0, down.stderr
    assert states(down.stdout) == dict.fromkeys(PIECES, "stopped")
    for info in pieces.values():
        assert not pid_alive(info.pid, info.binary)
    assert awooop(home, "dev", "status").returncode == 3
    assert "nothing recorded" in awooop(home, "dev", "down").stdout


def test_environment_urls_are_external_and_down_stops_only_its_own(
    new_home: Callable[[str], Path],
) -> None:
    own = new_home("own")
    assert awooop(own, "dev", "up").returncode == 0
    pieces = recorded(own)

    other = new_home("other")
    outside = {
        "AWOOOP_DATABASE_URL": pieces["postgres"].url,
        "AWOOOP_REDIS_URL": pieces["redis"].url,
    }
    up = awooop(other, "dev", "up", env=outside)
    assert up.returncode == 0, up.stderr
    assert states(up.stdout) == {"broker": "started", "postgres": "external", "redis": "external"}
    assert pieces["redis"].url in up.stdout
    assert set(recorded(other)) == {"broker"}
    assert not (other / "redis").exists()
    assert not (other / "logs" / "redis.log").exists()
    assert awooop(other, "dev", "status", env=outside).returncode == 0

    other_broker = recorded(other)["broker"]
    down = awooop(other, "dev", "down", env=outside)
    assert down.returncode == 0, down.stderr
    assert states(down.stdout) == {"broker": "stopped"}
    assert not pid_alive(other_broker.pid, other_broker.binary)
    # Everything of the first home, named in the environment or not, still runs.
    for info in pieces.values():
        assert pid_alive(info.pid, info.binary)
    assert fetch_value(pieces["postgres"].url, "SELECT 1") == 1
    assert redis_answers(pieces["redis"].url)


def test_a_new_broker_keeps_the_data_unless_fresh(new_home: Callable[[str], Path]) -> None:
    home = new_home("data")
    assert awooop(home, "dev", "up").returncode == 0
    fetch_value(recorded(home)["postgres"].url, "CREATE TABLE survivor (id int)")
    assert awooop(home, "dev", "down").returncode == 0

    kept = awooop(home, "dev", "up")
    assert kept.returncode == 0, kept.stderr
    assert "starting empty" not in kept.stdout
    assert "recovering" not in kept.stdout  # no service schema recorded an epoch
    assert table_exists(recorded(home)["postgres"].url, "survivor")

    refused = awooop(home, "dev", "up", "--fresh")
    assert refused.returncode == 1
    assert "the broker is running" in refused.stderr
    assert table_exists(recorded(home)["postgres"].url, "survivor")

    assert awooop(home, "dev", "down").returncode == 0
    fresh = awooop(home, "dev", "up", "--fresh")
    assert fresh.returncode == 0, fresh.stderr
    assert "starting empty" in fresh.stdout
    assert states(fresh.stdout)["postgres"] == "started"
    assert not table_exists(recorded(home)["postgres"].url, "survivor")

    data_dir = postgres_data_dir(home)
    assert (data_dir / "PG_VERSION").exists()
    purged = awooop(home, "dev", "down", "--purge")
    assert purged.returncode == 0, purged.stderr
    assert "removed the Postgres data" in purged.stdout
    assert not data_dir.exists()


def test_a_piece_that_cannot_start_is_named_with_exit_1(new_home: Callable[[str], Path]) -> None:
    home = new_home("taken")
    home.mkdir()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        # A record of a Postgres long gone, whose port something else took since.
        gone = PieceInfo(
            pid=2**22 + 1,
            port=port,
            url=f"postgresql://postgres@127.0.0.1:{port}/postgres",
            log=str(home / "postgres" / "server.log"),
            data_dir=str(home / "postgres"),
            binary="postgres",
        )
        (home / "stack.json").write_text(json.dumps({"pieces": {"postgres": gone.as_json()}}))

        up = awooop(home, "dev", "up")

    assert up.returncode == 1
    assert "embedded postgres failed to start" in up.stderr
    assert f"port {port} is already taken" in up.stderr
    assert "awooop dev down" in up.stderr
