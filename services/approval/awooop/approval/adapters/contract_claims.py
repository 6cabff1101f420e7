"""What the active contracts hold, refused at activation rather than only in the readers'
fold: each project's claims (`contract_claims`) and each bot's project (`channel_bots`).

A project's claims (its agent ids, tool names, its one policy, budget and run-state
table, its bindings' chats: `awooop.contracts.families.claims`) are held by one active
contract each; `contract_claims`'s key makes a second activation conflict, and it is
refused with `E-CONTRACT-CLAIM-HELD`, naming the holder (the same project's contract).

A bot (a Telegram bot, a Slack app in one workspace) belongs to the project whose
binding of it is active; `channel_bots` keeps one row per active binding of a bot. That
table spans tenants on purpose: only its answer ("held by another project") leaves it,
never the other project's name. Activations of one bot are serialized by a
transaction-scoped advisory lock on the bot, so two tenants racing for it cannot both
win. The readers' fold (first activated wins) then never meets a conflict the approval
service let through.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from awooop.approval.domain.contracts import Contract
from awooop.approval.domain.refusals import ChannelHeld, ClaimHeld
from awooop.contracts.events.payloads.contract import ContractActivated, ContractRetired
from awooop.contracts.families.channel_binding import ChannelBinding
from awooop.contracts.families.claims import ANY_CHAT, claims_of
from awooop.contracts.records.codec import EnvelopeCodec
from awooop.contracts.records.decode_errors import EnvelopeDecodeError
from awooop.contracts.records.envelope import Envelope, EventPayload
from awooop.contracts.registries.errors import CodedError

BINDING = "channel_binding"


def bot_key(body: dict[str, Any]) -> str:
    """The row key of the bot a binding body names: ``telegram|<bot>`` or
    ``slack|<team>|<app>``."""
    return "|".join(ChannelBinding.model_validate(body).channel.bot)


async def follow(conn: asyncpg.Connection, state: Contract, decided: EventPayload) -> None:
    """Keep both tables as the decided event leaves the contract (`state` is before it):
    an activated revision holds its bot and its claims, or `ChannelHeld` / `ClaimHeld`
    refuses it; retiring the active revision lets them go. Other events change nothing."""
    if isinstance(decided, ContractActivated):
        body = state.revision(decided.revision).body
        assert state.family is not None  # a contract with a revision has its family
        if state.family == BINDING:
            await _hold_bot(conn, state.project_id, state.contract_id, bot_key(body))
        await _claim(conn, state.project_id, state.contract_id, claims_of(state.family, body))
    elif isinstance(decided, ContractRetired):
        active = state.active
        if active is not None and active.number == decided.revision:
            await _release(conn, state.project_id, state.contract_id)
            await _pass_on(conn, state.project_id, state.contract_id)


@dataclass
class Held:
    """Both tables made again from the log, and what was left out of them."""

    bots: list[tuple[str, str, str]] = field(default_factory=list)
    """``(bot, project_id, contract_id)`` of every active binding of each bot's holder."""
    claims: list[tuple[str, str, str]] = field(default_factory=list)
    """``(project_id, claim, contract_id)``: each claim's first activated contract."""
    unreadable: list[str] = field(default_factory=list)
    """Each stream that could not be decoded or folded, with the reason."""
    lost_bots: list[str] = field(default_factory=list)
    """Each binding of a bot another project bound first (the readers' fold gives it
    nothing either)."""
    lost_claims: list[str] = field(default_factory=list)
    """Each claim another contract of the project held first (likewise)."""


@dataclass(frozen=True, order=True)
class _Active:
    activated_at: dt.datetime
    project_id: str
    contract_id: str
    family: str = field(compare=False)
    body: dict[str, Any] = field(compare=False)


def held(stored: Iterable[tuple[str, bytes]]) -> Held:
    """The rows of every active contract in `stored`, the contract events of an event
    store as ``(stream_id, data)``, each stream in order (what the tables' migrations fill
    them with). A bot, and a claim, go to the contract activated first (then the lower
    project and contract id), as in the readers' fold."""
    found = Held()
    actives = sorted(_actives(stored, found.unreadable))
    holders: dict[str, str] = {}
    for active in actives:
        if active.family != BINDING:
            continue
        bot = bot_key(active.body)
        holder = holders.setdefault(bot, active.project_id)
        if holder == active.project_id:
            found.bots.append((bot, active.project_id, active.contract_id))
        else:
            found.lost_bots.append(f"{_name(active)}: {bot} is held by another project")
    taken: dict[tuple[str, str], str] = {}
    bound = {(project, contract) for _, project, contract in found.bots}
    for active in actives:
        if active.family == BINDING and (active.project_id, active.contract_id) not in bound:
            continue
        for claim in claims_of(active.family, active.body):
            holder = taken.setdefault((active.project_id, claim), active.contract_id)
            if holder == active.contract_id:
                found.claims.append((active.project_id, claim, active.contract_id))
            else:
                found.lost_claims.append(f"{_name(active)}: {claim} is held by {holder}")
    return found


def held_in(bind: Any, schema: str) -> Held:
    """`held` over the contract streams of `schema`'s event store, read through `bind` (a
    migration's SQLAlchemy connection)."""
    from sqlalchemy import text  # only the migrations read through SQLAlchemy

    stored = bind.execute(
        text(
            f"SELECT stream_id, data FROM \"{schema}\".events WHERE stream_type = 'contract' "
            "ORDER BY stream_id, stream_seq"
        )
    )
    return held((row[0], bytes(row[1])) for row in stored)


def _actives(stored: Iterable[tuple[str, bytes]], reasons: list[str]) -> list[_Active]:
    """The active revision of every stream, with its activation time; a stream that
    cannot be read is left out, its reason added to `reasons`."""
    codec = EnvelopeCodec()
    streams: dict[str, list[Envelope[Any]]] = defaultdict(list)
    unreadable: set[str] = set()
    for stream_id, data in stored:
        try:
            streams[stream_id].append(codec.decode(data))
        except EnvelopeDecodeError as error:
            reasons.append(f"{stream_id}: {error}")
            unreadable.add(stream_id)
    actives = []
    for stream_id, envelopes in streams.items():
        if stream_id in unreadable:
            continue
        project_id, contract_id = stream_id.split(":", 1)
        try:
            contract = Contract.fold(project_id, contract_id, [e.payload for e in envelopes])
            active = contract.active
            if active is None or contract.family is None:
                continue
            claims_of(contract.family, active.body)  # a body its family refuses is left out
        except (ValueError, CodedError) as error:  # a corrupt stream, a body past its schema
            reasons.append(f"{stream_id}: {error}")
            continue
        activated = max(
            e.occurred_at
            for e in envelopes
            if isinstance(e.payload, ContractActivated) and e.payload.revision == active.number
        )
        actives.append(_Active(activated, project_id, contract_id, contract.family, active.body))
    return actives


def _name(active: _Active) -> str:
    return f"{active.project_id}:{active.contract_id}"


async def _hold_bot(conn: asyncpg.Connection, project_id: str, contract_id: str, bot: str) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"bot:{bot}")
    await conn.execute(
        "DELETE FROM channel_bots WHERE project_id = $1 AND contract_id = $2",
        project_id,
        contract_id,
    )  # its earlier revision's bot, if any
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


async def _claim(
    conn: asyncpg.Connection, project_id: str, contract_id: str, claims: Sequence[str]
) -> None:
    """Hold `claims` for the contract (its earlier revision's let go first), or refuse
    with the first one another active contract of the project holds. A concurrent
    activation claiming the same waits on the key and then finds it held."""
    await conn.execute(
        "DELETE FROM contract_claims WHERE project_id = $1 AND contract_id = $2",
        project_id,
        contract_id,
    )
    taken = await conn.fetch(
        "INSERT INTO contract_claims (project_id, claim, contract_id) "
        'SELECT $1, c, $2 FROM unnest($3::text[]) AS c ORDER BY c COLLATE "C" '
        "ON CONFLICT DO NOTHING RETURNING claim",
        project_id,
        contract_id,
        list(claims),
    )
    missing = sorted(set(claims) - {row["claim"] for row in taken})
    if not missing:
        return
    holder = await conn.fetchval(
        "SELECT contract_id FROM contract_claims WHERE project_id = $1 AND claim = $2",
        project_id,
        missing[0],
    )
    raise ClaimHeld(
        f"{_shown(missing[0])} is defined by the active contract {holder!r} of this "
        f"project: retire it, or activate a new revision of {holder!r} instead"
    )


def _shown(claim: str) -> str:
    kind, *rest = claim.split("|")
    if kind in ("agent", "tool"):
        return f"{kind} {rest[0]!r}"
    if kind == "chat":
        *bot, chat = rest
        where = f"{bot[0]} {'/'.join(bot[1:])}"
        return f"every chat of {where}" if chat == ANY_CHAT else f"chat {chat} of {where}"
    return f"the project's {kind}"


async def _release(conn: asyncpg.Connection, project_id: str, contract_id: str) -> None:
    await conn.execute(
        "DELETE FROM channel_bots WHERE project_id = $1 AND contract_id = $2",
        project_id,
        contract_id,
    )
    await conn.execute(
        "DELETE FROM contract_claims WHERE project_id = $1 AND contract_id = $2",
        project_id,
        contract_id,
    )


async def _pass_on(conn: asyncpg.Connection, project_id: str, retired: str) -> None:
    """Give what `retired` held to the project's other active contracts that claim it,
    the earliest activated first, as the readers' fold does once it is retired. Only
    contracts activated before these tables existed can claim what another held."""
    rows = await conn.fetch(
        "SELECT stream_id, data FROM events WHERE stream_type = 'contract' "
        "AND starts_with(stream_id, $1) ORDER BY stream_id, stream_seq",
        f"{project_id}:",
    )
    found = held(
        (row["stream_id"], bytes(row["data"]))
        for row in rows
        if row["stream_id"] != f"{project_id}:{retired}"
    )
    for bot, project, contract in found.bots:
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"bot:{bot}")
        await conn.execute(
            "INSERT INTO channel_bots (bot, project_id, contract_id) SELECT $1, $2, $3 "
            "WHERE NOT EXISTS (SELECT 1 FROM channel_bots WHERE bot = $1 AND project_id <> $2) "
            "ON CONFLICT DO NOTHING",
            bot,
            project,
            contract,
        )
    if found.claims:
        await conn.execute(
            "INSERT INTO contract_claims (project_id, claim, contract_id) "
            "SELECT $1, c.claim, c.contract_id FROM unnest($2::text[], $3::text[]) "
            '  AS c(claim, contract_id) ORDER BY c.claim COLLATE "C" ON CONFLICT DO NOTHING',
            project_id,
            [claim for _, claim, _ in found.claims],
            [contract for _, _, contract in found.claims],
        )
