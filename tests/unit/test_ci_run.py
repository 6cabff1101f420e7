"""`.ci/run` fails when a test fails and when no test ran, and passes when tests pass.

The script is run as CI runs it, unmodified, steered through the environment only:

- ``PYTEST_ADDOPTS`` (read by pytest itself) names one probe file from ``tests/ci_probe``,
  whose names pytest never collects in a plain run;
- ``MAKEFLAGS=e`` with ``STAMP`` pointing at a fresh file makes ``make test`` see the
  virtual environment as installed, so the child never runs pip on the shared ``.venv``
  (the Makefile reinstalls whenever ``.venv/.installed`` is older than pyproject.toml);
- ``TMPDIR`` keeps the script's junit report inside this test's temporary folder.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]
CI_RUN = ROOT / ".ci" / "run"
PROBES = ROOT / "tests" / "ci_probe"


def run_ci(tmp_path: Path, *pytest_args: str) -> subprocess.CompletedProcess[str]:
    stamp = tmp_path / "installed"
    stamp.touch()
    env = {
        name: value
        for name, value in os.environ.items()
        # With `make -e` these would override the Makefile; the rest are this run's own.
        if name not in {"VENV", "BIN", "PYTHON", "MAKELEVEL", "MAKEFILES", "PYTEST_ARGS"}
    }
    env |= {
        "MAKEFLAGS": "e",
        "STAMP": str(stamp),
        "TMPDIR": str(tmp_path),
        "PYTEST_ADDOPTS": shlex.join(["-p", "no:cacheprovider", *pytest_args]),
    }
    return subprocess.run(
        [str(CI_RUN)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def output(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def test_passing_tests_pass(tmp_path: Path) -> None:
    result = run_ci(tmp_path, str(PROBES / "probe_passing.py"))
    assert result.returncode == 0, output(result)
    assert "1 passed" in result.stdout, output(result)
    assert "tests run: 1" in result.stdout, output(result)
    assert "pip install" not in result.stdout, output(result)


def test_a_failing_test_fails(tmp_path: Path) -> None:
    result = run_ci(tmp_path, str(PROBES / "probe_failing.py"))
    assert result.returncode != 0, output(result)
    assert "1 failed" in result.stdout, output(result)


def test_nothing_selected_fails(tmp_path: Path) -> None:
    result = run_ci(tmp_path, str(PROBES / "probe_passing.py"), "-k", "no_such_test_zzz")
    assert result.returncode != 0, output(result)
    assert "1 deselected" in result.stdout, output(result)
    assert "1 passed" not in result.stdout, output(result)


def test_only_skipped_tests_fails(tmp_path: Path) -> None:
    # pytest itself exits 0 here: only the script's count of the junit report catches it.
    result = run_ci(tmp_path, str(PROBES / "probe_skipped.py"))
    assert result.returncode != 0, output(result)
    assert "1 skipped" in result.stdout, output(result)
    assert "tests run: 0" in result.stdout, output(result)
    assert "no test ran: failing" in result.stderr, output(result)


def test_probes_stay_out_of_a_plain_run() -> None:
    # The probes must never run, or fail, in `make test` itself.
    env = {name: value for name, value in os.environ.items() if name != "PYTEST_ADDOPTS"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "tests/unit/test_ci_run.py::test_passing_tests_pass" in result.stdout, output(result)
    assert "ci_probe" not in result.stdout, output(result)
