"""The `chat_turns` table: each run's message and reply, in the order they were kept.

A run's own message is kept in the transaction that starts the run, its reply in
the one that completes it; `(run_id, role)` is unique, so a redelivered batch or
a retried step keeps nothing twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import asyncpg

from awooop.runtime.domain.prompt import NewTurn, Turn

KEEP = (
    "INSERT INTO chat_turns (project_id, channel_type, chat_id, run_id, role, text) "
    "SELECT p, c, h, r, o, t FROM unnest($1::text[], $2::text[], $3::text[], $4::uuid[], "
    " $5::text[], $6::text[]) WITH ORDINALITY AS u(p, c, h, r, o, t, n) "
    "ORDER BY n ON CONFLICT (run_id, role) DO NOTHING"
)
"""Keeps turns in order; a turn kept before is left as it was. Parameters: `kept`."""


def kept(turns: Sequence[NewTurn]) -> list[list[object]]:
    """The six arrays `KEEP` reads."""
    return [
        [t.project_id for t in turns],
        [t.channel_type for t in turns],
        [t.chat_id for t in turns],
        [t.run_id for t in turns],
        [t.role for t in turns],
        [t.text for t in turns],
    ]


async def keep(conn: asyncpg.Connection, turns: Sequence[NewTurn]) -> None:
    """Keep `turns` in order, in one statement (a turn kept before is left as it was)."""
    if not turns:
        return
    await conn.execute(KEEP, *kept(turns))


async def run_message_and_history(
    conn: asyncpg.Connection, run_id: uuid.UUID, turns: int
) -> tuple[str, list[Turn]]:
    """The run's own message and the last `turns` turns of its chat before it, oldest first."""
    rows = await conn.fetch(
        "WITH own AS (SELECT seq, project_id, channel_type, chat_id, text FROM chat_turns "
        "             WHERE run_id = $1 AND role = 'user') "
        "SELECT 0 AS part, own.seq, 'user' AS role, own.text FROM own "
        "UNION ALL "
        "(SELECT 1, t.seq, t.role, t.text FROM chat_turns t, own "
        " WHERE t.project_id = own.project_id AND t.channel_type = own.channel_type "
        "   AND t.chat_id = own.chat_id AND t.seq < own.seq "
        " ORDER BY t.seq DESC LIMIT $2)",
        run_id,
        turns,
    )
    own = next((r["text"] for r in rows if r["part"] == 0), "")
    history = sorted((r for r in rows if r["part"] == 1), key=lambda r: r["seq"])
    return own, [Turn(r["role"], r["text"]) for r in history]
