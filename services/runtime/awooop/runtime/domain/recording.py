"""A decision's payloads as run-stream envelopes, at the run's next versions."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from awooop.contracts.records.envelope import Envelope
from awooop.contracts.records.typed_envelopes import new_envelope
from awooop.runtime.domain.run import Decision, Run


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
