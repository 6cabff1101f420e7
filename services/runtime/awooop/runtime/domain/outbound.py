"""What a run says in its chat, by the project's mode (ARCHITECTURE §5, the mode table).

In `shadow` a run says nothing: no `channel.outbound` record at all (its reply stays in
`run.completed`, marked suppressed). In `suggest` and `active` a decision's events
become messages: a reply is the `final` message, a failure or a timeout an `error`
message, a double text refused while the run works an `interim` one, and the claim
loop's progress timer an `interim` "still working" message. Cancelled runs say nothing
(an interrupted run's successor answers; an operator's cancel is the operator's to tell).
An approval request is an `approval_request` message with Approve and Reject buttons,
edited in place as its votes and its decision come (`domain.approval_messages`).

Each message is its own one-event stream, `outbound:<run>:<n>`: `n` is the run version
its decision reached (`p<k>` for the k-th progress message, `<approval>:<k>` for the
message answering the k-th event of an approval), so the same decision can never
produce a second copy.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from awooop.contracts.events.payloads.channel import (
    MAX_OUTBOUND_TEXT,
    Button,
    OutboundKind,
    OutboundRequested,
)
from awooop.contracts.events.payloads.run import (
    MessageRejected,
    RunCompleted,
    RunFailed,
    RunTimedOut,
)
from awooop.runtime.domain.run import Run

VISIBLE_MODES = ("suggest", "active")
OUTBOUND_TTL = dt.timedelta(minutes=10)
"""How long a reply or an error stays worth delivering."""
BUSY_TEXT = "Still working on your last message."

_DOING = {
    "pending": "starting",
    "running": "thinking",
    "waiting_tool": "waiting for a tool",
    "waiting_approval": "waiting for an approval",
}


def visible(run: Run) -> bool:
    """Whether the run's project mode lets people see its messages."""
    return run.mode in VISIBLE_MODES


def messages_for(run: Run, payloads: Sequence[Any], now: dt.datetime) -> list[OutboundRequested]:
    """The messages a decision's events send (none in shadow mode)."""
    if not visible(run):
        return []
    said: list[OutboundRequested] = []
    for payload in payloads:
        if isinstance(payload, RunCompleted) and payload.reply:
            said.append(_message(run, "final", payload.reply, now + OUTBOUND_TTL))
        elif isinstance(payload, RunFailed | RunTimedOut):
            text = f"Sorry, I could not finish this ({payload.code})."
            said.append(_message(run, "error", text, now + OUTBOUND_TTL))
        elif isinstance(payload, MessageRejected):
            said.append(_message(run, "interim", BUSY_TEXT, now + OUTBOUND_TTL))
    return said


def progress(run: Run, now: dt.datetime, interval: dt.timedelta) -> OutboundRequested:
    """The interim message of a run that has worked an interval without replying."""
    text = f"Still working: {_DOING.get(run.state, run.state)}."
    return _message(run, "interim", text, now + interval)


def fitted(text: str) -> str:
    """`text` cut to what one outbound message carries, the cut marked with `…`."""
    if len(text) <= MAX_OUTBOUND_TEXT:
        return text
    return text[: MAX_OUTBOUND_TEXT - 1] + "…"


def _message(run: Run, kind: OutboundKind, text: str, before: dt.datetime) -> OutboundRequested:
    return message_in_chat(run, kind, text, before)


def message_in_chat(
    run: Run,
    kind: OutboundKind,
    text: str,
    before: dt.datetime,
    *,
    buttons: Sequence[Button] = (),
    edit_of: uuid.UUID | None = None,
) -> OutboundRequested:
    """A message of `run` where its other messages go (its chat, thread and the message
    it answers); `edit_of` names the earlier message it replaces in place."""
    return OutboundRequested(
        run_id=run.run_id,
        kind=kind,
        channel_type=run.channel_type,
        chat_id=run.chat_id,
        thread_id=run.thread_id,
        reply_to=run.reply_to,
        text=fitted(text),
        buttons=tuple(buttons),
        edit_of=edit_of,
        deliver_before=before,
    )
