"""The `awooop` command as a person meets it: one line per error, exit 2, no traceback;
`token` needs no broker; the state folder is found from anywhere inside the checkout.

Break caught: a verb whose failure prints a Python traceback (or exits 1 or 0), a
command that demands a Kafka URL it never uses, and a `.awooop` folder found only
from the directory it sits in.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from awooop.security.api_tokens import verify_api_token

pytestmark = pytest.mark.e2e

SECRET = "s" * 40
UNREACHABLE_PG = "postgresql://postgres@127.0.0.1:1/none"


def awooop(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the real CLI with only `env` of the AwoooP settings (nothing from a stack)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWOOOP_")}
    return subprocess.run(
        [sys.executable, "-m", "awooop.cli.main", *args],
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("awooop: error: ")
    return lines[0]


def test_token_needs_no_broker_and_no_stack(tmp_path: Path) -> None:
    done = awooop("token", "--project", "demo", cwd=tmp_path, AWOOOP_API_JWT_SECRET=SECRET)
    assert done.returncode == 0, done.stderr
    claims = verify_api_token(done.stdout.strip(), SECRET)
    assert claims.projects == ("demo",)


def test_token_without_a_signing_key_is_one_line(tmp_path: Path) -> None:
    line = _one_line_error(awooop("token", cwd=tmp_path))
    assert "AWOOOP_API_JWT_SECRET" in line


def test_the_state_folder_is_found_from_a_subdirectory(tmp_path: Path) -> None:
    (tmp_path / ".awooop").mkdir()
    (tmp_path / ".awooop" / "api-jwt.secret").write_text(SECRET)
    deep = tmp_path / "services" / "runtime"
    deep.mkdir(parents=True)
    done = awooop("token", cwd=deep)
    assert done.returncode == 0, done.stderr
    assert verify_api_token(done.stdout.strip(), SECRET).projects


def test_an_unset_broker_is_one_line_naming_the_variable(tmp_path: Path) -> None:
    line = _one_line_error(awooop("send", "telegram", "--text", "hi", cwd=tmp_path))
    assert "AWOOOP_KAFKA_BOOTSTRAP is not set" in line


@pytest.mark.parametrize(
    "verb", [("migrate",), ("outbox", "parked"), ("outbox", "retry", "--service", "x", "--all")]
)
def test_an_unreachable_database_is_one_line(tmp_path: Path, verb: tuple[str, ...]) -> None:
    line = _one_line_error(awooop(*verb, cwd=tmp_path, AWOOOP_DATABASE_URL=UNREACHABLE_PG))
    assert "127.0.0.1" in line or "connect" in line.lower() or "refused" in line.lower()


def test_the_trace_is_there_when_asked_for(tmp_path: Path) -> None:
    done = awooop("--traceback", "migrate", cwd=tmp_path, AWOOOP_DATABASE_URL=UNREACHABLE_PG)
    assert done.returncode == 2
    assert "Traceback" in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("awooop: error: ")
