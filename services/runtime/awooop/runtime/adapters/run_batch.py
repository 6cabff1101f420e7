"""The runs a consumed batch touches: locked in one statement, written in one per kind."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import asyncpg

from awooop.infra.postgres import event_store
from awooop.infra.postgres.composed import renumbered
from awooop.infra.postgres.errors import VersionConflict
from awooop.infra.postgres.event_store import NewEvent
from awooop.runtime.adapters import chat_turns
from awooop.runtime.adapters.runs import COLUMNS, TERMINAL, Lease, run_of, to_json
from awooop.runtime.domain.batch import Written
from awooop.runtime.domain.prompt import NewTurn
from awooop.runtime.domain.run import Run

ONE_ACTIVE_PER_SUBJECT = "runs_one_active_per_subject"


async def lock_runs(
    conn: asyncpg.Connection, run_ids: Sequence[uuid.UUID], subjects: Sequence[tuple[str, str]]
) -> list[Run]:
    """Lock, in one statement and in id order, the runs named by id and the active runs of
    the `(project_id, platform_subject_id)` pairs."""
    if not run_ids and not subjects:
        return []
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM runs WHERE run_id = ANY($1::uuid[]) "
        " OR ((project_id, platform_subject_id) IN "
        "     (SELECT * FROM unnest($2::text[], $3::text[])) "
        f"    AND state NOT IN {TERMINAL}) "
        "ORDER BY run_id FOR UPDATE",
        list(run_ids),
        [project for project, _ in subjects],
        [subject for _, subject in subjects],
    )
    return [run_of(row) for row in rows]


async def insert_runs(
    conn: asyncpg.Connection, new: Sequence[Written], *, owner: str, lease_seconds: float
) -> list[Lease]:
    """Create the runs in one statement; a due run is leased to `owner`, its step due now.

    A run id is its ingress event id, so a row already there means another
    writer won: raised as a conflict, the batch is decided again."""
    if not new:
        return []
    runs = [w.run for w in new]
    try:
        rows = await _insert(conn, new, runs, owner, lease_seconds)
    except asyncpg.UniqueViolationError as error:
        # Another transaction started a run for one of these subjects after this batch
        # locked them: decide the batch again, when its active run is there to lock.
        if error.constraint_name == ONE_ACTIVE_PER_SUBJECT:
            raise VersionConflict(error.constraint_name) from error
        raise
    if len(rows) != len(new):
        inserted = {row["run_id"] for row in rows}
        missing = next(r.run_id for r in runs if r.run_id not in inserted)
        raise VersionConflict(str(missing))
    due = {w.run.run_id for w in new if w.due}
    return [_lease(row) for row in rows if row["run_id"] in due]


async def _insert(
    conn: asyncpg.Connection,
    new: Sequence[Written],
    runs: Sequence[Run],
    owner: str,
    lease_seconds: float,
) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        "INSERT INTO runs (run_id, project_id, platform_subject_id, agent_id, channel_type, "
        " chat_id, mode, revision, trace_id, state, version, step, pending_call_id, "
        " last_result, last_event_id, wake_at, lease_owner, lease_epoch, lease_until, attempt, "
        " max_attempts, timeout_at, progress_seconds, progress_at, thread_id, reply_to) "
        "SELECT u.run_id, u.project_id, u.subject, u.agent_id, u.channel_type, u.chat_id, "
        " u.mode, u.revision, u.trace_id, u.state, u.version, u.step, u.pending_call_id, "
        " u.last_result::jsonb, u.last_event_id, CASE WHEN u.due THEN now() END, "
        " CASE WHEN u.due THEN $19::text END, 1, "
        " CASE WHEN u.due THEN least(make_interval(secs => $20), "
        "                            make_interval(secs => u.timeout_seconds)) + now() END, "
        " CASE WHEN u.due THEN 1 ELSE 0 END, u.max_attempts, "
        " now() + make_interval(secs => u.timeout_seconds), u.progress_seconds, "
        # Only runs whose people see their messages get progress messages.
        " CASE WHEN u.mode IN ('suggest', 'active') AND u.state NOT IN "
        f"  {TERMINAL} THEN now() + make_interval(secs => u.progress_seconds) END, "
        " u.thread_id, u.reply_to "
        "FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], "
        " $7::text[], $8::text[], $9::text[], $10::text[], $11::int[], $12::int[], $13::text[], "
        " $14::text[], $15::uuid[], $16::bool[], $17::int[], $18::int[], $21::int[], "
        " $22::text[], $23::text[]) "
        " AS u(run_id, project_id, subject, agent_id, channel_type, chat_id, mode, revision, "
        "      trace_id, state, version, step, pending_call_id, last_result, last_event_id, "
        "      due, max_attempts, timeout_seconds, progress_seconds, thread_id, reply_to) "
        "ON CONFLICT (run_id) DO NOTHING RETURNING run_id, lease_epoch, max_attempts",
        [r.run_id for r in runs],
        [r.project_id for r in runs],
        [r.platform_subject_id for r in runs],
        [r.agent_id for r in runs],
        [r.channel_type for r in runs],
        [r.chat_id for r in runs],
        [r.mode for r in runs],
        [r.revision for r in runs],
        [r.trace_id for r in runs],
        [r.state for r in runs],
        [r.version for r in runs],
        [r.step for r in runs],
        [r.pending_call_id for r in runs],
        [to_json(r.last_result) for r in runs],
        [w.last_event_id for w in new],
        [w.due for w in new],
        [w.max_attempts for w in new],
        [w.timeout_seconds for w in new],
        owner,
        lease_seconds,
        [w.progress_seconds for w in new],
        [r.thread_id for r in runs],
        [r.reply_to for r in runs],
    )
    return rows


UPDATE_RUNS = (
    "UPDATE runs r SET state = u.state, version = u.version, step = u.step, "
    " pending_call_id = u.pending_call_id, last_result = u.last_result::jsonb, "
    " last_event_id = u.last_event_id, "
    " wake_at = CASE WHEN NOT u.saved THEN r.wake_at WHEN u.due THEN now() END, "
    " lease_owner = CASE WHEN NOT u.saved THEN r.lease_owner WHEN u.due THEN $10::text END, "
    " lease_epoch = r.lease_epoch + CASE WHEN u.saved THEN 1 ELSE 0 END, "
    " lease_until = CASE WHEN NOT u.saved THEN r.lease_until "
    "              WHEN u.due THEN least(now() + make_interval(secs => $11), r.timeout_at) "
    "              END, "
    " attempt = CASE WHEN NOT u.saved THEN r.attempt WHEN u.due THEN 1 ELSE 0 END "
    "FROM unnest($1::uuid[], $2::text[], $3::int[], $4::int[], $5::text[], $6::text[], "
    " $7::uuid[], $8::bool[], $9::bool[]) "
    " AS u(run_id, state, version, step, pending_call_id, last_result, last_event_id, "
    "      saved, due) "
    "WHERE r.run_id = u.run_id "
    "RETURNING r.run_id, r.lease_epoch, r.max_attempts, u.saved AND u.due AS leased"
)
"""Stores changed runs (see `update_runs`). Parameters: `_updated`."""


def _updated(changed: Sequence[Written], owner: str, lease_seconds: float) -> list[object]:
    runs = [w.run for w in changed]
    return [
        [r.run_id for r in runs],
        [r.state for r in runs],
        [r.version for r in runs],
        [r.step for r in runs],
        [r.pending_call_id for r in runs],
        [to_json(r.last_result) for r in runs],
        [w.last_event_id for w in changed],
        [w.saved for w in changed],
        [w.due for w in changed],
        owner,
        lease_seconds,
    ]


async def update_runs(
    conn: asyncpg.Connection, changed: Sequence[Written], *, owner: str, lease_seconds: float
) -> list[Lease]:
    """Store the runs a batch changed, in one statement.

    A saved run (a decision moved it) takes a new lease epoch: leased to
    `owner` with its step due now when `due`, released otherwise (a step's save
    goes through here too). Any other run (a rejected double text) changes its version
    and last event only: its state, lease and timers stay as they are."""
    if not changed:
        return []
    rows = await conn.fetch(UPDATE_RUNS, *_updated(changed, owner, lease_seconds))
    return [_lease(row) for row in rows if row["leased"]]


# The steps' save: their events appended, the replies' chat turns kept and the runs
# stored, in one statement (parameters: the events' 8 arrays, the turns' 6, the runs').
_SAVE_STEPS = (
    f"WITH {event_store.appending(1)}, "
    f"kept AS ({renumbered(chat_turns.KEEP, 9)}), "
    f"updated AS ({renumbered(UPDATE_RUNS, 15)}) "
    "SELECT run_id, lease_epoch, max_attempts, leased FROM updated"
)


async def save_steps(
    conn: asyncpg.Connection,
    events: Sequence[NewEvent],
    turns: Sequence[NewTurn],
    changed: Sequence[Written],
    *,
    owner: str,
    lease_seconds: float,
) -> list[Lease]:
    """What steps decided, in one statement: `events` appended (`VersionConflict` when a
    `(stream_id, stream_seq)` is taken), `turns` kept, and `changed` stored as
    `update_runs` stores them; the leases of the runs whose next step is due at once."""
    if not changed:
        return []
    with event_store.version_conflicts():
        rows = await conn.fetch(
            _SAVE_STEPS,
            *event_store.append_arguments(events),
            *chat_turns.kept(turns),
            *_updated(changed, owner, lease_seconds),
        )
    return [_lease(row) for row in rows if row["leased"]]


def _lease(row: asyncpg.Record) -> Lease:
    return Lease(row["run_id"], row["lease_epoch"], 1, row["max_attempts"], False)
