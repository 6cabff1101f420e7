"""The benchmark suite: run by `make bench` only (`norecursedirs` keeps it out of `make test`).

`pytest tests/bench` also loads `tests/conftest.py`, which already puts `tests/`
on `sys.path`; the insert below keeps `support.*` importable when a bench module
is named on its own with another root directory.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_TESTS = str(Path(__file__).parent.parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "bench: measures throughput and latency, asserts no time")
