"""Field types shared by payloads of several producing areas."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from awooop.contracts.registries.errors import ERROR_CODE_PATTERN

ChannelType = Literal["telegram", "slack"]
"""The chat channels AwoooP speaks."""

PLATFORM_SUBJECT_PATTERN = r"^[a-z0-9][a-z0-9_-]{1,63}:(telegram|slack):[A-Za-z0-9._@-]{1,128}$"
"""``project:channel:user``: one person on one channel of one tenant."""

PlatformSubjectId = Annotated[str, Field(pattern=PLATFORM_SUBJECT_PATTERN)]
ProviderEventId = Annotated[str, Field(min_length=1, max_length=256)]
ChatId = Annotated[str, Field(min_length=1, max_length=256)]
CallId = Annotated[str, Field(min_length=1, max_length=128)]
ToolName = Annotated[str, Field(min_length=1, max_length=128)]
ErrorCodeText = Annotated[str, Field(pattern=ERROR_CODE_PATTERN)]
Revision = Annotated[str, Field(min_length=1, max_length=128)]
"""The contract revision a decision used, e.g. ``builtin:<sha256>``."""
