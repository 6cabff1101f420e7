"""Which project and agent a chat belongs to: the answer of the active channel bindings.

Ingress decides nothing about a message before it knows its binding. The lookup is
handed in by the service (it folds the ``channel_binding`` contracts); the domain only
asks it and refuses what it cannot bind, so a record a bridge sent for a chat that no
binding of its project covers is kept in the DLQ with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from awooop.contracts.registries.errors import E_INBOUND_UNBOUND
from awooop.ingress.domain.messages import InboundRefused


@dataclass(frozen=True, slots=True)
class Binding:
    """The project and agent of a chat, and the binding revision that says so."""

    project_id: str
    agent_id: str
    revision: str
    accepts_edits: bool = False
    """The agent opted in to edited messages (its contract's ``edits``): an edit then
    arrives as a message of its own; otherwise it is ignored."""


@dataclass(frozen=True, slots=True)
class Unbound:
    """Why a chat has no usable binding; ``project_id`` is the project of a binding found
    but unusable (its agent retired), so another project's details are never told."""

    reason: str
    project_id: str | None = None


class Bindings(Protocol):
    """The active channel bindings, as ingress asks them."""

    def telegram(self, bot_id: str, chat_id: str) -> Binding | Unbound: ...

    def slack(self, team_id: str, app_id: str, channel_id: str) -> Binding | Unbound: ...


class InboundUnbound(InboundRefused):
    """The record's chat is bound to no active agent of the record's project."""

    code = E_INBOUND_UNBOUND.code


def bound(found: Binding | Unbound, project_id: str, channel: str) -> Binding:
    """The binding of a record of `project_id`; `InboundUnbound` when there is none, or
    when the chat belongs to another project (whose name is not repeated)."""
    if found.project_id not in (None, project_id):
        raise InboundUnbound(f"{channel} is bound to another project than {project_id!r}")
    if isinstance(found, Unbound):
        raise InboundUnbound(f"{channel}: {found.reason}")
    if found.project_id != project_id:
        raise InboundUnbound(f"{channel} is bound to another project than {project_id!r}")
    return found
