"""Payloads produced by the runtime on ``awooop.run.events.v1``: the run's own facts."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from awooop.contracts.events.payloads.fields import (
    CallId,
    ChannelType,
    ChatId,
    ErrorCodeText,
    PlatformSubjectId,
    ProviderMessageId,
    Revision,
    Revisions,
    ThreadId,
    ToolName,
    revisions_from_v1,
)
from awooop.contracts.events.registry import register_payload, register_upcaster
from awooop.contracts.records.envelope import EventPayload


@register_payload("run.started", 3)
class RunStarted(EventPayload):
    """A run began for one agent, answering one subject in one chat.

    ``trigger_event_id`` is the ``event_id`` of the event that started it (usually an
    ``ingress.message_received``). ``thread_id`` and ``reply_to`` are where that message
    was (its forum topic or Slack thread, and its own id): the run's messages go there.
    """

    agent_id: Annotated[str, Field(min_length=1, max_length=128)]
    channel_type: ChannelType
    chat_id: ChatId
    thread_id: ThreadId | None = None
    reply_to: ProviderMessageId | None = None
    platform_subject_id: PlatformSubjectId
    trigger_event_id: uuid.UUID
    mode: Literal["shadow", "suggest", "active"]
    revisions: Revisions
    """The agent revision the run is pinned to, then the policy revision that set the
    mode (none when the project has no policy: ``shadow``)."""
    agent_revision: Revision | None
    """The agent revision of ``revisions`` the run is pinned to; null when the agent had
    no active revision (the run then fails at once with ``E-AGENT-UNKNOWN``)."""


class StepReport(BaseModel):
    """What one LLM step cost and took: a field of the event its decision produced.

    ``tokens_*`` and ``cost`` are what the provider reported, settled against the step's
    reservation (never above it); ``cost`` is an exact decimal string in the budget's
    currency ("0" when the project has no budget or the model is free).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    number: Annotated[int, Field(ge=0)]
    model: Annotated[str, Field(min_length=1, max_length=256)]
    tokens_in: Annotated[int, Field(ge=0)]
    tokens_out: Annotated[int, Field(ge=0)]
    cost: Annotated[str, Field(pattern=r"^[0-9]+(\.[0-9]+)?$")]
    latency_ms: Annotated[int, Field(ge=0)]
    schema_retries: Annotated[int, Field(ge=0, le=3)]
    reserved_tokens: Annotated[int, Field(ge=0)]
    """What the step reserved before the call (0 when the project has no budget)."""


@register_payload("run.tool_call_requested", 3)
class ToolCallRequested(EventPayload):
    """The run asks the gateway to call a tool, to be run no later than ``execute_before``."""

    call_id: CallId
    tool: ToolName
    arguments: dict[str, Any]
    execute_before: AwareDatetime
    revisions: Revisions
    """The agent revision whose step asked for the call (then the budget revision)."""
    step: StepReport | None = None
    """The LLM step that asked for the call."""


@register_payload("run.tool_result_accepted", 3)
class ToolResultAccepted(EventPayload):
    """The run took the answer to the call it waited for and runs again.

    ``result`` is what the agent is given: the gateway's result (already redacted and
    truncated there), its refusal or failure, or the approval's denial (``denied``: the
    call never ran); with it the run's own stream replays to the run's state.
    """

    call_id: CallId
    outcome: Literal["succeeded", "blocked", "failed", "denied"]
    result: dict[str, Any] | str | None


@register_upcaster("run.tool_result_accepted", 2)
def _undeniable_v2(payload: dict[str, Any]) -> dict[str, Any]:
    # Version 2 came before approvals could deny a call: its outcomes are all still valid.
    return dict(payload)


@register_payload("run.tool_call_approved", 1)
class ToolCallApproved(EventPayload):
    """The approval of the call the run waits for was granted: the gateway runs the call
    with ``token`` (gates 1 to 5 again, the token checked against the call itself), no
    later than ``execute_before`` (a fresh step's time from the grant: the request's own
    deadline passed while people decided). ``approval_id`` is the request granted. The
    token is a one-time bearer credential: no read model or log shows it."""

    call_id: CallId
    approval_id: uuid.UUID
    token: Annotated[str, Field(min_length=16, max_length=4096)]
    execute_before: AwareDatetime


@register_payload("run.approval_awaited", 2)
class ApprovalAwaited(EventPayload):
    """The gateway asked for an approval of the call the run waits for: the run waits in
    ``waiting_approval`` until that call's outcome (run after a grant, or refused).

    ``requester`` is the person whose message started the run (who never approves it)
    and ``agent_revision`` the revision the run is pinned to (its timeouts bound the
    request's expiry): what the approval service needs of the run, on the one run event
    it reads for every held call."""

    call_id: CallId
    action_hash: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    requester: PlatformSubjectId | None = None
    agent_revision: Revision | None = None


@register_upcaster("run.approval_awaited", 1)
def _awaited_v1(payload: dict[str, Any]) -> dict[str, Any]:
    # Version 1 came before the approval service read it: who asked was not recorded.
    return {**payload, "requester": None, "agent_revision": None}


@register_payload("run.message_rejected", 1)
class MessageRejected(EventPayload):
    """A message arrived while the subject's run was active and the agent rejects double texts.

    Recorded on the active run's stream; ``message_event_id`` is the ingress event refused.
    """

    message_event_id: uuid.UUID
    platform_subject_id: PlatformSubjectId
    code: ErrorCodeText


@register_payload("run.message_queued", 1)
class MessageQueued(EventPayload):
    """A message arrived while the subject's run was active and the agent enqueues double
    texts: it waits, in order, and starts its own run when the active one ends.

    Recorded on the active run's stream; ``message_event_id`` is the ingress event queued.
    """

    message_event_id: uuid.UUID
    platform_subject_id: PlatformSubjectId


@register_payload("run.transition_refused", 1)
class TransitionRefused(EventPayload):
    """A decision would have moved the run along a transition its project's
    ``runtime_run_state`` table lacks: refused (``E-RUN-STATE-001``) and never applied;
    the run stays in ``from_state``. ``revision`` is the table's (``standard`` when the
    project has none)."""

    code: ErrorCodeText
    from_state: Annotated[str, Field(min_length=1, max_length=32)]
    to_state: Annotated[str, Field(min_length=1, max_length=32)]
    revision: Revision


@register_payload("run.completed", 2)
class RunCompleted(EventPayload):
    """The run ended with a reply; ``suppressed`` when shadow mode kept it from the user."""

    reply: str
    suppressed: bool
    step: StepReport | None = None
    """The LLM step that answered."""


@register_payload("run.failed", 2)
class RunFailed(EventPayload):
    """The run ended in failure, with a registered error code and a human reason."""

    code: ErrorCodeText
    reason: Annotated[str, Field(max_length=4096)]
    step: StepReport | None = None
    """The LLM step whose outcome failed the run (its output refused by the schema), or
    none when the run failed before or between steps."""


@register_payload("run.cancelled", 1)
class RunCancelled(EventPayload):
    """The run was stopped before it ended: by an operator, an interrupting message or
    the tenant's kill switch (``code`` says which)."""

    code: ErrorCodeText
    reason: Annotated[str, Field(min_length=1, max_length=4096)]
    actor: Annotated[str, Field(min_length=1, max_length=256)]
    """Who cancelled it: ``user:<subject>`` over the API, ``service:runtime`` otherwise."""


@register_payload("run.timed_out", 1)
class RunTimedOut(EventPayload):
    """The run passed its ``timeout_at`` before it ended (whatever step was still running).

    ``code`` is ``E-RUN-TIMEOUT``; the run's state is ``timeout``.
    """

    code: ErrorCodeText
    reason: Annotated[str, Field(max_length=4096)]


@register_upcaster("run.started", 1)
def _started_v1(payload: dict[str, Any]) -> dict[str, Any]:
    # Version 1 named the one revision it used: the built-in catalogue the run ran.
    lifted = revisions_from_v1(payload)
    lifted["agent_revision"] = payload.get("revision")
    return lifted


@register_upcaster("run.started", 2)
def _started_v2(payload: dict[str, Any]) -> dict[str, Any]:
    # Version 2 runs answered at the top of their chat.
    return {**payload, "thread_id": None, "reply_to": None}


@register_upcaster("run.tool_result_accepted", 1)
def _accepted_v1(payload: dict[str, Any]) -> dict[str, Any]:
    # Version 1 did not carry the result: replaying such a run cannot restore it.
    return {**payload, "result": None}


register_upcaster("run.tool_call_requested", 1)(revisions_from_v1)


@register_upcaster("run.tool_call_requested", 2)
@register_upcaster("run.completed", 1)
@register_upcaster("run.failed", 1)
def _no_step_report(payload: dict[str, Any]) -> dict[str, Any]:
    # Earlier versions came before step reports: what their steps cost is unknown.
    return {**payload, "step": None}
