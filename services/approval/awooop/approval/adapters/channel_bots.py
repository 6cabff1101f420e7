"""Which project holds each bot: refused at activation, not only in the readers' fold.

A bot (a Telegram bot, a Slack app in one workspace) belongs to the project whose
binding of it is active; `channel_bots` keeps one row per active binding of a bot. The
table spans tenants on purpose: only its unique answer ("held by another project")
leaves it, never the other project's name. Activations of one bot are serialized by a
transaction-scoped advisory lock on the bot, so two tenants racing for it cannot both
win; the readers' fold (first activated wins) then never meets a conflict the approval
service let through.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import asyncpg

from awooop.approval.domain.contracts import Contract
from awooop.approval.domain.refusals import ChannelHeld
from awooop.contracts.events.payloads.contract import ContractActivated, ContractRetired
from awooop.contracts.families.channel_binding import ChannelBinding
from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.records.decode_errors import EnvelopeDecodeError
from awooop.contracts.records.envelope import Envelope, EventPayload
from awooop.contracts.registries.errors import CodedError

FAMILY = "channel_binding"


def bot_key(body: dict[str, object]) -> str:
    """The row key of the bot a binding body names: ``telegram|<bot>`` or
    ``slack|<team>|<app>``."""
    return "|".join(ChannelBinding.model_validate(body).channel.bot)


async def follow(conn: asyncpg.Connection, state: Contract, decided: EventPayload) -> None:
    """Keep `channel_bots` as the decided event leaves the contract (`state` is before
    it): an activated binding holds its bot, or `ChannelHeld` refuses it; a retired
    active binding lets its bot go. Other families and events change nothing."""
    if state.family != FAMILY:
        return
    if isinstance(decided, ContractActivated):
        body = state.revision(decided.revision).body
        await _hold(conn, state.project_id, state.contract_id, bot_key(body))
    elif isinstance(decided, ContractRetired):
        active = state.active
        if active is not None and active.number == decided.revision:
            await _release(conn, state.project_id, state.contract_id)


@dataclass(frozen=True)
class Held:
    """`channel_bots` made again from the log: its rows, and what was left out."""

    rows: list[tuple[str, str, str]]
    """``(bot, project_id, contract_id)`` of every active binding of each bot's holder."""
    left_out: list[str]
    """Each stream that could not be read, and each active binding of a bot another
    project held first, with the reason: the readers' fold gives those nothing either."""


def held(stored: Iterable[tuple[str, bytes]]) -> Held:
    """The rows of every active binding in `stored`: the contract events of an event
    store as ``(stream_id, data)``, each stream in order (what the table's migration
    fills it with). A bot goes to the project whose binding of it was activated first
    (then the lower project and contract id), as in the readers' fold."""
    codec = EnvelopeCodec()
    streams: dict[str, list[Envelope[Any]]] = defaultdict(list)
    left_out: list[str] = []
    unreadable: set[str] = set()
    for stream_id, data in stored:
        try:
            streams[stream_id].append(codec.decode(data))
        except EnvelopeDecodeError as error:
            left_out.append(f"{stream_id}: {error}")
            unreadable.add(stream_id)
    bindings: dict[str, list[tuple[dt.datetime, str, str]]] = defaultdict(list)
    for stream_id, envelopes in streams.items():
        if stream_id in unreadable:
            continue
        project_id, contract_id = stream_id.split(":", 1)
        try:
            contract = Contract.fold(project_id, contract_id, [e.payload for e in envelopes])
            active = contract.active
            if contract.family != FAMILY or active is None:
                continue
            bot = bot_key(active.body)
        except (ValueError, CodedError) as error:  # a corrupt stream, a body past its schema
            left_out.append(f"{stream_id}: {error}")
            continue
        activated = max(
            e.occurred_at
            for e in envelopes
            if isinstance(e.payload, ContractActivated) and e.payload.revision == active.number
        )
        bindings[bot].append((activated, project_id, contract_id))
    rows = []
    for bot, found in sorted(bindings.items()):
        holder = min(found)[1]
        for _, project_id, contract_id in sorted(found):
            if project_id == holder:
                rows.append((bot, project_id, contract_id))
            else:
                left_out.append(f"{project_id}:{contract_id}: {bot} is held by another project")
    return Held(rows, left_out)


async def _hold(conn: asyncpg.Connection, project_id: str, contract_id: str, bot: str) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"bot:{bot}")
    await _release(conn, project_id, contract_id)  # its earlier revision's bot, if any
    elsewhere = await conn.fetchval(
        "SELECT true FROM channel_bots WHERE bot = $1 AND project_id <> $2 LIMIT 1",
        bot,
        project_id,
    )
    if elsewhere:
        kind, *names = bot.split("|")
        raise ChannelHeld(
            f"{kind} {'/'.join(names)} is bound by another project's active channel_binding; "
            "a bot belongs to one project"
        )
    await conn.execute(
        "INSERT INTO channel_bots (bot, project_id, contract_id) VALUES ($1, $2, $3)",
        bot,
        project_id,
        contract_id,
    )


async def _release(conn: asyncpg.Connection, project_id: str, contract_id: str) -> None:
    await conn.execute(
        "DELETE FROM channel_bots WHERE project_id = $1 AND contract_id = $2",
        project_id,
        contract_id,
    )
