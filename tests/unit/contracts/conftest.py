"""Shared fixtures for the contracts unit tests: valid envelopes and their fields."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from awooop.contracts import Envelope, new_envelope
from awooop.contracts.events.payloads import RunStarted

EnvelopeFields = Callable[..., dict[str, Any]]


def _envelope_fields(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "occurred_at": datetime(2025, 3, 1, 12, 30, 5, 123456, tzinfo=UTC),
        "project_id": "acme",
        "stream_type": "run",
        "stream_id": "run-1",
        "stream_seq": 1,
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "correlation_id": "run-1",
        "actor": "service:runtime",
        "producer": "runtime",
    }
    fields.update(overrides)
    return fields


@pytest.fixture
def envelope_fields() -> EnvelopeFields:
    """Build every envelope field but the payload-derived ones, valid, with overrides."""
    return _envelope_fields


@pytest.fixture
def run_started_payload() -> RunStarted:
    """A valid ``run.started`` payload."""
    return RunStarted(
        agent_id="helpdesk",
        channel_type="telegram",
        chat_id="-1001234",
        platform_subject_id="acme:telegram:42",
        trigger_event_id=uuid.UUID("01890a5d-ac96-774b-bcce-b302099a8057"),
        mode="shadow",
        revisions=("helpdesk@3:0123456789ab",),
        agent_revision="helpdesk@3:0123456789ab",
    )


@pytest.fixture
def run_started(run_started_payload: RunStarted) -> Envelope[RunStarted]:
    """A valid ``run.started`` envelope."""
    return new_envelope(run_started_payload, **_envelope_fields())
