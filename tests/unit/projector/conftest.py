"""Fixtures of the projector's unit tests."""

from __future__ import annotations

import pytest
from projector_events import RunEvents, build_run


@pytest.fixture
def run_events() -> RunEvents:
    return build_run
