"""Payloads produced by the runtime, the only budget authority, on
``awooop.budget.events.v1`` (keyed by project): a tenant's kill switch and the scopes
that can no longer fund a step. The gateway's gate 4 folds the kill switch."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from awooop.contracts.events.payloads.fields import ErrorCodeText, Revision
from awooop.contracts.events.registry import register_payload
from awooop.contracts.records.envelope import EventPayload

Reason = Annotated[str, Field(min_length=1, max_length=4096)]


@register_payload("budget.tenant_killed", 1)
class TenantKilled(EventPayload):
    """The tenant's kill switch tripped: its active runs are cancelled (each with its own
    ``run.cancelled``) and no run starts or steps until an operator resets it."""

    code: ErrorCodeText
    reason: Reason
    budget_revision: Revision
    """The budget revision whose ``kill_switch_at`` share was reached."""


@register_payload("budget.tenant_reset", 1)
class TenantReset(EventPayload):
    """An operator reset the tenant's kill switch: runs may start again."""

    actor: Annotated[str, Field(min_length=1, max_length=256)]
    reason: Reason


@register_payload("budget.scope_tripped", 1)
class ScopeTripped(EventPayload):
    """A budget scope can no longer fund the smallest useful step in its period."""

    scope_key: Annotated[str, Field(min_length=1, max_length=512)]
    scope: Literal["tenant", "agent", "run"]
    period: Literal["run", "daily", "monthly"]
    period_key: Annotated[str, Field(max_length=16)]
    budget_revision: Revision
