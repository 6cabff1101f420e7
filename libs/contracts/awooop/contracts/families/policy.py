"""The ``policy`` contract family: a project's migration mode, approvers and rate limits.

``mode`` selects a row of the mode table (ARCHITECTURE §5); a project with no active
policy is in ``shadow``. Each approver is one person, listed with the chat subjects and
the API subject that are theirs, so one person counts once however they vote; an
approval needs ``approvals_required`` (k) of the n approvers, never the requester.

The JSON Schema ``schemas/policy.schema.json`` is the source of the family;
:class:`Policy` accepts exactly the documents the schema accepts (the parity tests hold
the two together). Rules JSON Schema cannot state are checked where the document is
used: by the approval service, when it folds the contract, that k is at most n, that
approver ids are distinct and that no chat or API subject belongs to two approvers
(the schema can only refuse identical approvers); by the MCP gateway, that each tool is
rate limited once and that every tool named exists. ``approval_required_tools`` matters
in ``active`` mode only: in the other modes every write tool needs approval anyway.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from awooop.contracts.events.payloads.fields import PlatformSubjectId
from awooop.contracts.families.fields import (
    FrozenDocument,
    JsonInteger,
    SchemaVersion1,
    ToolName,
    unique,
)

FAMILY = "policy"

APPROVER_ID_PATTERN = r"^[a-z][a-z0-9_.-]{0,63}$"
"""One person's id within the project's policy."""

Mode = Literal["shadow", "suggest", "active"]
"""The migration modes, from no visible output to acting on approval."""


class Approver(FrozenDocument):
    """One person who may approve, with every subject that is theirs."""

    approver_id: Annotated[str, Field(pattern=APPROVER_ID_PATTERN)]
    chat_subjects: Annotated[tuple[PlatformSubjectId, ...], AfterValidator(unique)]
    api_subject: Annotated[str, Field(min_length=1)]


class RateLimit(FrozenDocument):
    """A token bucket on one tool: refilled at ``per_minute``, holding at most ``burst``."""

    tool: ToolName
    per_minute: Annotated[JsonInteger, Field(ge=1, le=100_000)]
    burst: Annotated[JsonInteger, Field(ge=1, le=100_000)]


class Policy(FrozenDocument):
    """A ``policy`` document (schema version 1)."""

    family: Literal["policy"]
    schema_version: SchemaVersion1
    mode: Mode
    approvers: Annotated[tuple[Approver, ...], Field(min_length=1), AfterValidator(unique)]
    approvals_required: Annotated[JsonInteger, Field(ge=1, le=100)]
    approval_expiry_seconds: Annotated[JsonInteger, Field(ge=60, le=86_400)]
    rate_limits: Annotated[tuple[RateLimit, ...], AfterValidator(unique)]
    approval_required_tools: Annotated[tuple[ToolName, ...], AfterValidator(unique)]
