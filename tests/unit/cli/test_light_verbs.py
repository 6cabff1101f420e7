"""A light verb imports only what it needs: `--help` of a query or command verb loads no
HTTP client, settings, logging, database driver, broker client, migration tool or
embedded stack, and running one loads no database, broker, migration or embedded-stack
module.

Each case runs in a fresh interpreter, since a module one test imported stays imported.
Break caught: `awooop.cli.main` importing every verb module again, or a verb's argument
module importing the module that does its work.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from awooop.cli.main import REGISTRARS

pytestmark = pytest.mark.unit

PROBE = """
import json, sys
from awooop.cli.main import main
try:
    code = main(json.loads(sys.argv[1]))
except SystemExit as exit:
    code = exit.code
print(json.dumps({"code": code, "loaded": sorted(sys.modules)}))
"""

HEAVY = ("sqlalchemy", "alembic", "asyncpg", "aiokafka", "fastapi", "awooop.infra.embedded")
"""What no query or command verb over HTTP needs, to run or to explain itself."""

BEHIND_THE_HELP = (*HEAVY, "httpx", "awooop.infra.settings", "awooop.infra.logging")
"""What such a verb's work imports, and its `--help` does without."""


def _run(argv: list[str], cwd: Path, **env: str) -> tuple[int, set[str], str]:
    """`awooop *argv` in a fresh interpreter: its exit code, the modules it imported and
    what it wrote to stderr."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWOOOP_")}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(argv)],
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return int(answer["code"]), set(answer["loaded"]), done.stderr


def _among(loaded: set[str], names: tuple[str, ...]) -> list[str]:
    """The modules of `loaded` that are one of `names` or inside one."""
    inside = tuple(f"{name}." for name in names)
    return sorted(m for m in loaded if m in names or m.startswith(inside))


@pytest.mark.parametrize(
    "argv",
    [
        ["runs", "list", "--help"],
        ["runs", "cancel", "--help"],
        ["token", "--help"],
        ["channel-events", "list", "--help"],
        ["mcp-calls", "list", "--help"],
        ["approvals", "approve", "--help"],
        ["budget", "show", "--help"],
        ["contracts", "--help"],
        ["contracts", "onboard", "--help"],
        ["send", "telegram", "--help"],
    ],
)
def test_the_help_of_a_light_verb_imports_none_of_its_work(argv: list[str], tmp_path: Path) -> None:
    code, loaded, _ = _run(argv, tmp_path)
    assert code == 0
    assert _among(loaded, BEHIND_THE_HELP) == []


def test_running_a_query_verb_imports_no_database_broker_or_stack(tmp_path: Path) -> None:
    code, loaded, _ = _run(["token", "--project", "demo"], tmp_path, AWOOOP_API_JWT_SECRET="s" * 40)
    assert code == 0
    assert "awooop.cli.queries" in loaded
    assert _among(loaded, HEAVY) == []


def test_running_a_command_verb_imports_no_database_broker_or_stack(tmp_path: Path) -> None:
    code, loaded, err = _run(["runs", "cancel", "r-1", "--reason", "stuck"], tmp_path)
    assert code == 2  # no token, and no secret to mint one: refused before any request
    assert err.startswith("awooop: error: no token: pass --token")  # a refusal, not a type
    assert "awooop.cli.runtime_commands" in loaded
    assert _among(loaded, HEAVY) == []


def test_the_whole_parser_still_imports_every_verb(tmp_path: Path) -> None:
    code, loaded, _ = _run(["--help"], tmp_path)
    assert code == 0
    assert set(REGISTRARS) <= loaded
