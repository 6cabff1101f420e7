"""Field types shared by payloads of several producing areas."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from awooop.contracts.registries.errors import ERROR_CODE_PATTERN

ChannelType = Literal["telegram", "slack"]
"""The chat channels AwoooP speaks."""

PLATFORM_SUBJECT_PATTERN = r"^[a-z0-9][a-z0-9_-]{1,63}:(telegram|slack):[A-Za-z0-9._@-]{1,128}$"
"""``project:channel:user``: one person on one channel of one tenant."""

PlatformSubjectId = Annotated[str, Field(pattern=PLATFORM_SUBJECT_PATTERN)]
ProviderEventId = Annotated[str, Field(min_length=1, max_length=256)]
ChatId = Annotated[str, Field(min_length=1, max_length=256)]
ThreadId = Annotated[str, Field(min_length=1, max_length=64)]
"""A Telegram forum topic (``message_thread_id``) or a Slack thread (``thread_ts``)."""
ProviderMessageId = Annotated[str, Field(min_length=1, max_length=64)]
"""A Telegram ``message_id`` or a Slack message ``ts``."""
CallId = Annotated[str, Field(min_length=1, max_length=128)]
ToolName = Annotated[str, Field(min_length=1, max_length=128)]
ErrorCodeText = Annotated[str, Field(pattern=ERROR_CODE_PATTERN)]
Revision = Annotated[str, Field(min_length=1, max_length=128)]
"""A contract revision a decision used: ``<contract_id>@<revision>:<digest prefix>``
(``awooop.contracts.events.payloads.contract.revision_ref``); events of the first
schema versions named the built-in catalogue as ``builtin:<sha256>``."""

Revisions = Annotated[tuple[Revision, ...], Field(max_length=16)]
"""Every contract revision a decision used, in the order the decision consulted them."""


def revisions_from_v1(payload: dict[str, Any]) -> dict[str, Any]:
    """Upcaster body shared by the events whose v1 named one ``revision``: v2 lists it."""
    lifted = {key: value for key, value in payload.items() if key != "revision"}
    lifted["revisions"] = [payload["revision"]] if "revision" in payload else []
    return lifted
