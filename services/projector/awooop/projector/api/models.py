"""The query API's response shapes (published in its OpenAPI document)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from awooop.contracts.families.runtime_run_state import RunState


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class RunSummary(_Frozen):
    """One run as the listing shows it. Fields are null until their event is projected."""

    run_id: uuid.UUID = Field(description="the event_id of the ingress message that started it")
    project_id: str
    state: RunState | None = Field(description="null while only the message is known")
    agent_id: str | None
    platform_subject_id: str | None
    chat_id: str | None
    channel_type: str | None
    mode: str | None
    started_at: datetime | None
    completed_at: datetime | None = Field(description="when the run completed or failed")
    suppressed: bool | None = Field(description="true when shadow mode kept the reply back")
    error_code: str | None


class Run(RunSummary):
    """One run with its message, reply and the contract revision it ran under."""

    revision: str | None
    trigger_text: str | None
    reply: str | None
    last_stream_seq: int = Field(description="stream_seq of the last run event projected")


class TimelineEvent(_Frozen):
    """One event of a run, with a short redacted summary (no message text, no tool data)."""

    event_id: uuid.UUID
    occurred_at: datetime
    event_type: str
    stream_type: str
    stream_id: str
    stream_seq: int
    actor: str
    summary: dict[str, Any]


class RunPage(_Frozen):
    runs: list[RunSummary] = Field(description="newest first (started_at, then run_id)")
    next: str | None = Field(description="cursor of the next page; null on the last page")


class RunDetail(_Frozen):
    run: Run
    timeline: list[TimelineEvent] = Field(description="sorted by occurred_at, then event_id")


class Health(_Frozen):
    status: Literal["ok"]


class Problem(_Frozen):
    """Why a request was refused."""

    detail: str
