"""The rows of the read models, as a batch stages them, and their column order."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from awooop.projector.domain.approvals import ApprovalRow
from awooop.projector.domain.budget_models import BudgetStateRow, BudgetTripRow
from awooop.projector.domain.channel_events import ChannelEventRow
from awooop.projector.domain.contract_rows import ContractRevisionRow, ContractRow
from awooop.projector.domain.mcp_calls import McpCallRow
from awooop.projector.domain.outbound import OutboundRow
from awooop.projector.domain.steps import StepRow
from awooop.projector.domain.summaries import Summary

RUN_WRITE_ONCE = (
    "agent_id",
    "platform_subject_id",
    "chat_id",
    "channel_type",
    "mode",
    "revision",
    "started_at",
    "completed_at",
    "reply",
    "suppressed",
    "error_code",
    "trigger_text",
)
"""Columns owned by exactly one event each: merged with `coalesce`, never overwritten."""

RUN_COLUMNS = ("project_id", "run_id", "state", "last_stream_seq", *RUN_WRITE_ONCE)
TIMELINE_COLUMNS = (
    "project_id",
    "run_id",
    "event_id",
    "occurred_at",
    "event_type",
    "stream_type",
    "stream_id",
    "stream_seq",
    "actor",
    "summary",
)


@dataclass(frozen=True, slots=True)
class TimelineRow:
    project_id: str
    run_id: uuid.UUID
    event_id: uuid.UUID
    occurred_at: datetime
    event_type: str
    stream_type: str
    stream_id: str
    stream_seq: int
    actor: str
    summary: Summary


@dataclass(slots=True)
class RunRow:
    """What one batch says about one run; None where it says nothing."""

    project_id: str
    run_id: uuid.UUID
    state: str | None = None
    last_stream_seq: int = 0
    agent_id: str | None = None
    platform_subject_id: str | None = None
    chat_id: str | None = None
    channel_type: str | None = None
    mode: str | None = None
    revision: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    reply: str | None = None
    suppressed: bool | None = None
    error_code: str | None = None
    trigger_text: str | None = None

    def values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, column) for column in RUN_COLUMNS)


@dataclass(frozen=True, slots=True)
class ReadModelRows:
    timeline: list[TimelineRow]
    runs: list[RunRow]
    contracts: list[ContractRow] = field(default_factory=list)
    contract_revisions: list[ContractRevisionRow] = field(default_factory=list)
    steps: list[StepRow] = field(default_factory=list)
    outbound: list[OutboundRow] = field(default_factory=list)
    budget_states: list[BudgetStateRow] = field(default_factory=list)
    budget_trips: list[BudgetTripRow] = field(default_factory=list)
    channel_events: list[ChannelEventRow] = field(default_factory=list)
    mcp_calls: list[McpCallRow] = field(default_factory=list)
    approvals: list[ApprovalRow] = field(default_factory=list)
