"""A decision's payloads as run-stream envelopes, at the run's next versions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from awooop.contracts.events.payloads.channel import OutboundRequested
from awooop.contracts.records.envelope import Envelope
from awooop.contracts.records.typed_envelopes import new_envelope
from awooop.runtime.domain.run import Decision, Run

OUTBOUND_STREAM = "outbound"


def record(
    decision: Decision,
    base_version: int,
    *,
    causation_id: str | None,
    now: dt.datetime,
    service: str,
) -> tuple[Run, list[Envelope[Any]]]:
    """Envelopes for `decision` after `base_version`, produced by `service`; returns the run
    at its new version."""
    run = decision.run
    envelopes = [
        new_envelope(
            payload,
            occurred_at=now,
            project_id=run.project_id,
            stream_type="run",
            stream_id=str(run.run_id),
            stream_seq=base_version + offset,
            trace_id=run.trace_id,
            correlation_id=str(run.run_id),
            causation_id=causation_id,
            actor=f"service:{service}",
            producer=service,
        )
        for offset, payload in enumerate(decision.payloads, start=1)
    ]
    return replace(run, version=base_version + len(envelopes)), envelopes


def record_outbound(
    run: Run,
    messages: Sequence[OutboundRequested],
    slot: str,
    *,
    causation_id: str | None,
    now: dt.datetime,
    service: str,
) -> list[Envelope[Any]]:
    """Envelopes for a run's chat messages: each its own stream `outbound:<run>:<slot>`
    (`.<i>` after the first), so a decision recorded once says each message once."""
    return [
        new_envelope(
            message,
            occurred_at=now,
            project_id=run.project_id,
            stream_type=OUTBOUND_STREAM,
            stream_id=f"outbound:{run.run_id}:{slot}" + (f".{i}" if i else ""),
            stream_seq=1,
            trace_id=run.trace_id,
            correlation_id=str(run.run_id),
            causation_id=causation_id,
            actor=f"service:{service}",
            producer=service,
        )
        for i, message in enumerate(messages)
    ]
