"""What each run-stream event says about its run: the state it puts the run in, and the
columns of the `runs` row it owns (written once; see read_models.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from awooop.contracts.records.envelope import Envelope
from awooop.contracts.registries.errors import E_RUN_TIMEOUT

RunFacts = tuple[str, dict[str, Any]]
"""The state a run-stream event puts the run in, and the columns it owns."""


def _started(e: Envelope[Any]) -> RunFacts:
    # The run row keeps the agent revision the run is pinned to (the first one named);
    # the timeline's summary lists every revision the event names.
    p = e.payload
    return "pending", {
        "agent_id": p.agent_id,
        "platform_subject_id": p.platform_subject_id,
        "chat_id": p.chat_id,
        "channel_type": p.channel_type,
        "mode": p.mode,
        "revision": p.agent_revision,
        "started_at": e.occurred_at,
    }


def _completed(e: Envelope[Any]) -> RunFacts:
    p = e.payload
    return "completed", {
        "reply": p.reply,
        "suppressed": p.suppressed,
        "completed_at": e.occurred_at,
    }


def _failed(e: Envelope[Any]) -> RunFacts:
    # Runs that timed out before `run.timed_out` existed ended with `run.failed` and
    # E-RUN-TIMEOUT; a rebuild must read them as the live model does today.
    state = "timeout" if e.payload.code == E_RUN_TIMEOUT.code else "failed"
    return state, {"error_code": e.payload.code, "completed_at": e.occurred_at}


def _timed_out(e: Envelope[Any]) -> RunFacts:
    return "timeout", {"error_code": e.payload.code, "completed_at": e.occurred_at}


RUN_FACTS: dict[str, Callable[[Envelope[Any]], RunFacts]] = {
    "run.started": _started,
    "run.tool_call_requested": lambda _e: ("waiting_tool", {}),
    "run.tool_result_accepted": lambda _e: ("running", {}),
    "run.approval_awaited": lambda _e: ("waiting_approval", {}),
    # The run waits on, for the gateway's outcome of the call it approved.
    "run.tool_call_approved": lambda _e: ("waiting_approval", {}),
    "run.completed": _completed,
    "run.failed": _failed,
    "run.timed_out": _timed_out,
    "run.cancelled": lambda e: (
        "cancelled",
        {"error_code": e.payload.code, "completed_at": e.occurred_at},
    ),
}
"""Run-stream events that change the run row (`run.message_rejected` is timeline only)."""
