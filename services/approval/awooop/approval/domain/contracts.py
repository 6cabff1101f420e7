"""The contract aggregate: one contract's family and revisions, folded from its events.

The lifecycle of a revision is the table in :mod:`awooop.approval.domain.revisions`.
Folding is idempotent: an event whose effect the state already holds (a repeated
delivery) changes nothing. An event the state cannot hold at all (another contract, a
revision never drafted, another body under a drafted number, a move backwards through
the table) raises ``ValueError``: the stream is corrupt, and the consumer treats it as
poison.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from awooop.approval.domain.refusals import ContractUnknown
from awooop.approval.domain.revisions import STATE_ORDER, ContractRevision, RevisionState
from awooop.contracts.events.payloads.contract import (
    ContractActivated,
    ContractDraftCreated,
    ContractPublished,
    ContractRetired,
    ContractSigned,
)

ContractEvent = (
    ContractDraftCreated | ContractPublished | ContractSigned | ContractActivated | ContractRetired
)


@dataclass(frozen=True)
class Contract:
    """One contract of one project: its family and its revisions by number."""

    project_id: str
    contract_id: str
    family: str | None = None
    revisions: Mapping[int, ContractRevision] = field(default_factory=dict)

    @classmethod
    def fold(cls, project_id: str, contract_id: str, events: Iterable[ContractEvent]) -> Contract:
        """The contract after ``events`` (its stream in order), from nothing."""
        state = cls(project_id, contract_id)
        for event in events:
            state = state.apply(event)
        return state

    @property
    def exists(self) -> bool:
        return bool(self.revisions)

    @property
    def next_revision(self) -> int:
        return len(self.revisions) + 1

    @property
    def active(self) -> ContractRevision | None:
        """The active revision, if any (there is at most one)."""
        return next((r for r in self.revisions.values() if r.state == "active"), None)

    def revision(self, number: int) -> ContractRevision:
        """The revision ``number``; ``ContractUnknown`` (E-CONTRACT-UNKNOWN) when there is none."""
        if not self.exists:
            msg = f"no contract {self.contract_id!r} in project {self.project_id!r}"
            raise ContractUnknown(msg)
        found = self.revisions.get(number)
        if found is None:
            msg = f"contract {self.contract_id!r} has no revision {number}"
            raise ContractUnknown(msg)
        return found

    def apply(self, event: ContractEvent) -> Contract:
        """The contract with ``event`` folded in; unchanged if it already holds its effect."""
        if event.contract_id != self.contract_id:
            msg = f"event of contract {event.contract_id!r} folded into {self.contract_id!r}"
            raise ValueError(msg)
        if isinstance(event, ContractDraftCreated):
            return self._drafted(event)
        current = self.revisions.get(event.revision)
        if current is None:
            msg = f"{event.event_type} for revision {event.revision}, which was never drafted"
            raise ValueError(msg)
        if isinstance(event, ContractPublished):
            if STATE_ORDER[current.state] >= STATE_ORDER["published"]:
                return self
            published = replace(
                current,
                state="published",
                body_sha256=event.body_sha256,
                signature=event.signature,
            )
            return self._with(published)
        if isinstance(event, ContractSigned):
            if event.signer in current.signers:
                return self
            self._expect(current, "published", event)
            return self._with(replace(current, signers=(*current.signers, event.signer)))
        if isinstance(event, ContractActivated):
            return self._activated(current, event)
        if current.state == "retired":
            return self
        return self._with(replace(current, state="retired"))

    def _drafted(self, event: ContractDraftCreated) -> Contract:
        drafted = ContractRevision(event.revision, event.body, event.author)
        current = self.revisions.get(event.revision)
        if current is not None:
            if (current.body, current.author, self.family) != (
                event.body,
                event.author,
                event.family,
            ):
                msg = f"revision {event.revision} was drafted already with another content"
                raise ValueError(msg)
            return self
        if event.revision != self.next_revision:
            msg = f"revision {event.revision} drafted where {self.next_revision} comes next"
            raise ValueError(msg)
        if self.family not in (None, event.family):
            msg = f"a {event.family} draft of a {self.family} contract"
            raise ValueError(msg)
        return replace(self, family=event.family)._with(drafted)

    def _activated(self, current: ContractRevision, event: ContractActivated) -> Contract:
        if STATE_ORDER[current.state] >= STATE_ORDER["active"]:
            return self
        self._expect(current, "published", event)
        before = self.active
        if (before.number if before else None) != event.superseded_revision:
            msg = (
                f"revision {event.revision} supersedes {event.superseded_revision}, "
                f"but the active revision is {before.number if before else None}"
            )
            raise ValueError(msg)
        state = self._with(replace(current, state="active"))
        return state._with(replace(before, state="retired")) if before else state

    def _with(self, revision: ContractRevision) -> Contract:
        return replace(self, revisions={**self.revisions, revision.number: revision})

    @staticmethod
    def _expect(current: ContractRevision, state: RevisionState, event: ContractEvent) -> None:
        if current.state != state:
            msg = f"{event.event_type} for revision {current.number}, which is {current.state}"
            raise ValueError(msg)
