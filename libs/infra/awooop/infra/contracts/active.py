"""What a reading service knows of the contracts: the fold of the contract topic and its view.

:class:`ContractFold` folds ``awooop.contract.events.v1`` revision by revision. Folding is
idempotent and only moves a revision forward (draft, published, active, retired), so a
redelivered or re-read event changes nothing. A published revision's signature is
verified here, with the reader's key ring (public keys only in the Ed25519 setup); a
revision whose signature is refused, or whose body its family's model rejects, is
never active in this service, whatever the approval service decided, and the fold
says why (``refusal``).

:class:`ContractView` is an immutable snapshot of the active revisions with the
lookups the services decide by: the binding of a Telegram bot and chat, an agent or a
tool of a project, a project's policy. Each lookup answers the revision as well, so a
decision can name the revision it used (:attr:`SignedRevision.ref`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar, cast

from pydantic import BaseModel, ValidationError

from awooop.contracts.events.payloads.contract import (
    ContractActivated,
    ContractDraftCreated,
    ContractPublished,
    ContractRetired,
    ContractSigned,
    revision_ref,
)
from awooop.contracts.families.agent import Agent
from awooop.contracts.families.budget import Budget
from awooop.contracts.families.channel_binding import ChannelBinding, SlackChannel, TelegramChannel
from awooop.contracts.families.policy import Policy
from awooop.contracts.families.registry import contract_family
from awooop.contracts.families.runtime_run_state import RuntimeRunState
from awooop.contracts.families.tool import Tool
from awooop.contracts.records.envelope import Envelope
from awooop.security.contract_signing import ContractSignature, SignatureRefused, verify
from awooop.security.signing_keys import KeyRing

State = Literal["draft", "published", "active", "retired"]
_ORDER: dict[str, int] = {"draft": 0, "published": 1, "active": 2, "retired": 3}

M = TypeVar("M", bound=BaseModel)

_NEVER = datetime.max.replace(tzinfo=UTC)

ANY_CHAT = "*"
"""The chat key of a binding that lists no chats: every chat of the bot."""


@dataclass(frozen=True, slots=True)
class RevisionRecord:
    """One revision as this service folded it; what the service's table keeps."""

    project_id: str
    contract_id: str
    revision: int
    family: str
    body: dict[str, Any]
    state: State = "draft"
    body_sha256: str | None = None
    signature: dict[str, str] | None = None
    refusal: str | None = None
    """Why this service never treats the revision as active: a signature or body refusal,
    ``<code>: <reason>``; None while nothing is wrong."""
    activated_at: datetime | None = None
    """When the approval service activated it: the earlier of two claims wins."""

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.project_id, self.contract_id, self.revision)

    @property
    def ref(self) -> str:
        """``<contract_id>@<revision>:<digest prefix>`` (published revisions only)."""
        assert self.body_sha256 is not None
        return revision_ref(self.contract_id, self.revision, self.body_sha256)


@dataclass(frozen=True, slots=True)
class SignedRevision(Generic[M]):
    """A published revision whose signature verified, its document parsed by its
    family's model; ``active`` while it is its contract's active revision."""

    project_id: str
    contract_id: str
    revision: int
    ref: str
    document: M
    active: bool
    activated_at: datetime | None = None


class ContractView:
    """An immutable snapshot of the signed revisions, indexed for the services' lookups:
    the active ones by what they define, every one by its ref (a run keeps the agent
    revision it started with, a call the tool revision that admitted it).

    Two active contracts that claim the same agent, tool or policy of a project, or the
    same bot and chat, conflict: the one activated first keeps it (then the lower
    project and contract id), so every reader of the same log decides alike, and
    :attr:`conflicts` lists the losers. A bot (a Telegram bot, a Slack app in one
    workspace) belongs to the project whose binding of it was activated first: a
    binding of another project claims none of its chats, so no tenant takes a chat of
    another's bot (and with it that chat's messages) by naming it.
    """

    def __init__(
        self, signed: Iterable[SignedRevision[BaseModel]] = (), skipped: Iterable[str] = ()
    ) -> None:
        self.skipped = tuple(skipped)
        """Active revisions this service does not use, each with the reason."""
        signed = list(signed)
        self._by_ref = {(entry.project_id, entry.ref): entry for entry in signed}
        self.revisions: tuple[SignedRevision[BaseModel], ...] = tuple(
            sorted(
                (entry for entry in signed if entry.active),
                key=lambda a: (a.activated_at or _NEVER, a.project_id, a.contract_id),
            )
        )
        """The active revisions, earliest activated first."""
        self.conflicts: list[str] = []
        self._agents: dict[tuple[str, str], SignedRevision[Agent]] = {}
        self._tools: dict[tuple[str, str], SignedRevision[Tool]] = {}
        self._policies: dict[str, SignedRevision[Policy]] = {}
        self._budgets: dict[str, SignedRevision[Budget]] = {}
        self._run_states: dict[str, SignedRevision[RuntimeRunState]] = {}
        self._telegram: dict[tuple[str, str], SignedRevision[ChannelBinding]] = {}
        self._slack: dict[tuple[str, str, str], SignedRevision[ChannelBinding]] = {}
        self._bots: dict[tuple[str, ...], SignedRevision[ChannelBinding]] = {}
        """Each bot's first binding, whose project holds the bot."""
        for entry in self.revisions:
            document = entry.document
            if isinstance(document, Agent):
                self._claim(self._agents, (entry.project_id, document.agent_id), entry)
            elif isinstance(document, Tool):
                self._claim(self._tools, (entry.project_id, document.name), entry)
            elif isinstance(document, Policy):
                self._claim(self._policies, entry.project_id, entry)
            elif isinstance(document, Budget):
                self._claim(self._budgets, entry.project_id, entry)
            elif isinstance(document, RuntimeRunState):
                self._claim(self._run_states, entry.project_id, entry)
            elif isinstance(document, ChannelBinding):
                self._bind(cast(SignedRevision[ChannelBinding], entry), document)

    def _claim(self, index: dict[Any, Any], key: object, entry: SignedRevision[Any]) -> None:
        held = index.get(key)
        if held is None:
            index[key] = entry
        else:
            self.conflicts.append(
                f"{entry.project_id}: {entry.ref} claims {key!r}, held by {held.ref}"
            )

    def _bind(self, entry: SignedRevision[ChannelBinding], binding: ChannelBinding) -> None:
        channel = binding.channel
        holder = self._bots.setdefault(channel.bot, entry)
        if holder.project_id != entry.project_id:
            self.conflicts.append(
                f"{entry.project_id}: {entry.ref} binds {channel.bot!r}, "
                f"held by {holder.project_id}'s {holder.ref}"
            )
            return
        if isinstance(channel, TelegramChannel):
            for chat in channel.chat_ids or (ANY_CHAT,):
                self._claim(self._telegram, (channel.bot_id, chat), entry)
        elif isinstance(channel, SlackChannel):
            for slack_channel in channel.channel_ids or (ANY_CHAT,):
                key = (channel.team_id, channel.app_id, slack_channel)
                self._claim(self._slack, key, entry)

    def telegram_binding(self, bot_id: str, chat_id: str) -> SignedRevision[ChannelBinding] | None:
        """The binding of this bot's chat: one naming the chat, else the bot's catch-all."""
        return self._telegram.get((bot_id, chat_id)) or self._telegram.get((bot_id, ANY_CHAT))

    def slack_binding(
        self, team_id: str, app_id: str, channel_id: str
    ) -> SignedRevision[ChannelBinding] | None:
        """The binding of this Slack channel, else the app's catch-all in the workspace."""
        return self._slack.get((team_id, app_id, channel_id)) or self._slack.get(
            (team_id, app_id, ANY_CHAT)
        )

    def outbound_binding(
        self, project_id: str, channel_type: str, chat_id: str
    ) -> tuple[SignedRevision[ChannelBinding] | None, str]:
        """The project's binding to answer `chat_id` of `channel_type` (``telegram`` or
        ``slack``) through, and why; the binding is None when there is none or the choice
        is ambiguous, and the text then says which.

        A binding that lists the chat wins over the project's catch-all (one that lists no
        chats). Only a binding that holds the chat for inbound messages counts, so an
        answer leaves through the bot or app the chat's messages arrive by: a catch-all
        whose bot has the chat bound elsewhere is no candidate. An outbound message names
        no bot or app, so two candidates of the same rank (two bots listing one group,
        two catch-alls) are ambiguous.
        """
        index: dict[tuple[str, ...], SignedRevision[ChannelBinding]]
        if channel_type == "telegram":
            index = dict(self._telegram.items())
        elif channel_type == "slack":
            index = dict(self._slack.items())
        else:
            return None, f"channel type {channel_type!r} has no bindings"
        named: list[SignedRevision[ChannelBinding]] = []
        catch_all: list[SignedRevision[ChannelBinding]] = []
        for (*route, chat), entry in index.items():
            if entry.project_id != project_id:
                continue
            if chat == chat_id:
                named.append(entry)
            elif chat == ANY_CHAT and index.get((*route, chat_id), entry) is entry:
                catch_all.append(entry)
        where = f"{channel_type} chat {chat_id!r} of project {project_id!r}"
        for rank, found in (("bindings listing", named), ("catch-all bindings for", catch_all)):
            unique_found = list({entry.ref: entry for entry in found}.values())
            if len(unique_found) == 1:
                return unique_found[0], f"{unique_found[0].ref} binds {where}"
            if unique_found:
                refs = ", ".join(sorted(entry.ref for entry in unique_found))
                return None, f"ambiguous: {len(unique_found)} {rank} {where} ({refs})"
        return None, f"no active channel_binding covers {where}"

    def agent(self, project_id: str, agent_id: str) -> SignedRevision[Agent] | None:
        return self._agents.get((project_id, agent_id))

    def tool(self, project_id: str, name: str) -> SignedRevision[Tool] | None:
        return self._tools.get((project_id, name))

    def policy(self, project_id: str) -> SignedRevision[Policy] | None:
        """The project's policy; None means ``shadow`` mode (ARCHITECTURE §5)."""
        return self._policies.get(project_id)

    def budget(self, project_id: str) -> SignedRevision[Budget] | None:
        """The project's budget; None means its runs are unbudgeted."""
        return self._budgets.get(project_id)

    def run_state(self, project_id: str) -> SignedRevision[RuntimeRunState] | None:
        """The project's run state table; None means the standard one applies."""
        return self._run_states.get(project_id)

    def at(self, project_id: str, ref: str, model: type[M]) -> SignedRevision[M] | None:
        """The signed revision `ref` of the project, active or not, if its document is a
        `model` (a run's pinned agent, a call's admitting tool)."""
        found = self._by_ref.get((project_id, ref))
        if found is None or not isinstance(found.document, model):
            return None
        return cast(SignedRevision[M], found)

    def projects(self) -> frozenset[str]:
        """Every project with a signed revision (a credential's namespace must not be
        mistaken for another's)."""
        return frozenset(project_id for project_id, _ in self._by_ref)

    def refs(self) -> dict[tuple[str, str], str]:
        """Every active revision's ref by (project, contract id), for logs and tests."""
        return {(a.project_id, a.contract_id): a.ref for a in self.revisions}


ContractEvent = (
    ContractDraftCreated | ContractPublished | ContractSigned | ContractActivated | ContractRetired
)


class ContractFold:
    """The revisions of every contract, folded from ``awooop.contract.events.v1``."""

    def __init__(self, ring: KeyRing, records: Iterable[RevisionRecord] = ()) -> None:
        self._ring = ring
        self.records: dict[tuple[str, str, int], RevisionRecord] = {r.key: r for r in records}

    def apply(self, envelope: Envelope[Any]) -> list[RevisionRecord]:
        """Fold one contract event; the records it changed (none for a repeat)."""
        payload = envelope.payload
        project = envelope.project_id
        if isinstance(payload, ContractDraftCreated):
            key = (project, payload.contract_id, payload.revision)
            if key in self.records:
                return []
            record = RevisionRecord(
                project, payload.contract_id, payload.revision, payload.family, payload.body
            )
            return self._put(record)
        if isinstance(payload, ContractSigned):
            return []  # who signed matters to the approval service and the projector
        current = self.records.get((project, payload.contract_id, payload.revision))
        if current is None:
            return []  # a step of a revision never drafted: nothing to move forward
        if isinstance(payload, ContractPublished):
            return self._published(current, payload)
        if isinstance(payload, ContractActivated):
            if current.activated_at is None:
                current = replace(current, activated_at=envelope.occurred_at)
            changed = self._advance(current, "active")
            if payload.superseded_revision is not None:
                old = self.records.get((project, payload.contract_id, payload.superseded_revision))
                if old is not None:
                    changed += self._advance(old, "retired")
            return changed
        if isinstance(payload, ContractRetired):
            return self._advance(current, "retired")
        return []

    def _published(self, current: RevisionRecord, event: ContractPublished) -> list[RevisionRecord]:
        if current.body_sha256 is not None:
            return []
        signature = event.signature
        refusal = None
        try:
            verify(
                current.body,
                ContractSignature(
                    signature.kid, signature.alg, signature.body_sha256, signature.signature
                ),
                self._ring,
            )
        except SignatureRefused as refused:
            refusal = f"{refused.code}: {refused.reason}"
        record = replace(
            current,
            body_sha256=event.body_sha256,
            signature=signature.model_dump(),
            refusal=refusal,
        )
        return self._put(self._forward(record, "published"))

    def _advance(self, current: RevisionRecord, state: State) -> list[RevisionRecord]:
        moved = self._forward(current, state)
        return [] if moved == current else self._put(moved)

    @staticmethod
    def _forward(record: RevisionRecord, state: State) -> RevisionRecord:
        if _ORDER[state] <= _ORDER[record.state]:
            return record
        return replace(record, state=state)

    def _put(self, record: RevisionRecord) -> list[RevisionRecord]:
        self.records[record.key] = record
        return [record]

    def view(self) -> ContractView:
        """The revisions whose signature verified and whose body parses."""
        signed, skipped = parse_signed(self.records.values())
        return ContractView(signed, skipped)


def parse_signed(
    records: Iterable[RevisionRecord],
) -> tuple[list[SignedRevision[BaseModel]], list[str]]:
    """Each published revision whose signature verified, parsed by its family's model, and
    why an active one is left out: a refused signature, or a body the model rejects (the
    approval service checked the body when publishing, so only a model newer than the
    publisher's gets there)."""
    signed: list[SignedRevision[BaseModel]] = []
    skipped: list[str] = []
    for record in records:
        if record.state == "draft" or record.body_sha256 is None:
            continue
        name = f"{record.project_id}/{record.contract_id}@{record.revision}"
        if record.refusal is not None:
            if record.state == "active":
                skipped.append(f"{name}: {record.refusal}")
            continue
        try:
            document = contract_family(record.family).model.model_validate(record.body)
        except (KeyError, ValidationError) as error:
            if record.state == "active":
                skipped.append(f"{name}: its {record.family} body does not parse: {error}")
            continue
        signed.append(
            SignedRevision(
                record.project_id,
                record.contract_id,
                record.revision,
                record.ref,
                document,
                active=record.state == "active",
                activated_at=record.activated_at,
            )
        )
    return signed, skipped
