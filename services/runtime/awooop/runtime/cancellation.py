"""Cancelling runs: the run rows, their events and their reservations, in the caller's
transaction.

Runs are locked before anything else is written (`FOR UPDATE`, in id order), then the
ledger rows their reservations debited (in `scope_key COLLATE "C"` order), the order
every other writer of the runtime keeps. A cancelled run's lease is released under a
new epoch, so a step still running it finds its lease gone (`runs.holds_lease`) and
commits nothing. Its outstanding reservations are settled at their full reserved
amount: the provider may already have been called, and billed, for them.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg

from awooop.contracts.events.payloads.run import RunCancelled
from awooop.contracts.records.envelope import Envelope
from awooop.contracts.registries.errors import E_RUN_CANCELLED
from awooop.infra.postgres import event_store
from awooop.runtime.adapters import budget_ledger, run_events, runs
from awooop.runtime.domain.recording import record
from awooop.runtime.domain.run import Decision, Run


@dataclass(frozen=True)
class CancelOutcome:
    """What `cancel_run` found: `cancelled` now, `already_cancelled`, `ended` otherwise
    (`run.state` says how), or `unknown` (`run` is None)."""

    status: Literal["cancelled", "already_cancelled", "ended", "unknown"]
    run: Run | None = None


async def cancel_runs(
    conn: asyncpg.Connection,
    runs_to_cancel: Sequence[Run],
    *,
    code: str,
    reason: str,
    actor: str,
    now: dt.datetime,
    service: str,
) -> list[Run]:
    """Cancel runs the caller locked (`FOR UPDATE`) and found active: one `run.cancelled`
    each, the rows stored and their leases released in one statement, their outstanding
    reservations settled in full in one more. Returns the runs as stored.

    `ValueError` when a run is not active (a bug of the caller: it must check under
    the lock)."""
    if not runs_to_cancel:
        return []
    ended = [str(run.run_id) for run in runs_to_cancel if not run.active]
    if ended:
        raise ValueError(f"runs that already ended cannot be cancelled: {', '.join(ended)}")
    cancelled: list[Run] = []
    last_events: list[uuid.UUID] = []
    envelopes: list[Envelope[Any]] = []
    for run in runs_to_cancel:
        payload = RunCancelled(code=code, reason=reason, actor=actor)
        decision = Decision(run.moved("cancelled"), (payload,))
        moved, recorded = record(decision, run.version, causation_id=None, now=now, service=service)
        cancelled.append(moved)
        last_events.append(recorded[-1].event_id)
        envelopes += recorded
    await event_store.append(conn, run_events.stored(envelopes))
    await conn.execute(
        "UPDATE runs r SET state = 'cancelled', version = u.version, "
        " last_event_id = u.last_event_id, wake_at = NULL, lease_owner = NULL, "
        " lease_epoch = r.lease_epoch + 1, lease_until = NULL, attempt = 0 "
        "FROM unnest($1::uuid[], $2::int[], $3::uuid[]) AS u(run_id, version, last_event_id) "
        "WHERE r.run_id = u.run_id",
        [run.run_id for run in cancelled],
        [run.version for run in cancelled],
        last_events,
    )
    await budget_ledger.settle_in_full(conn, [run.run_id for run in cancelled])
    return cancelled


async def cancel_run(
    conn: asyncpg.Connection,
    run_id: uuid.UUID,
    *,
    actor: str,
    reason: str,
    now: dt.datetime,
    service: str,
    projects: Collection[str] | None = None,
) -> CancelOutcome:
    """Cancel one run (`E-RUN-CANCELLED`, `actor` named on the event) under its row lock.

    `projects` limits the runs the caller may see (None: every project); a run of
    another project is `unknown`, exactly as a missing one. Cancelling a cancelled run
    again writes nothing (`already_cancelled`); a completed, failed or timed-out run is
    `ended`. A cancel racing a step that finishes the run resolves by the row lock:
    whichever commits first wins, and the other finds the run ended (the step's
    `holds_lease` fails, because the cancel moved the lease epoch)."""
    row = await conn.fetchrow(
        f"SELECT {runs.COLUMNS} FROM runs WHERE run_id = $1 "
        " AND ($2::text[] IS NULL OR project_id = ANY($2::text[])) FOR UPDATE",
        run_id,
        None if projects is None else list(projects),
    )
    if row is None:
        return CancelOutcome("unknown")
    run = runs.run_of(row)
    if run.state == "cancelled":
        return CancelOutcome("already_cancelled", run)
    if not run.active:
        return CancelOutcome("ended", run)
    (cancelled,) = await cancel_runs(
        conn,
        [run],
        code=E_RUN_CANCELLED.code,
        reason=reason,
        actor=actor,
        now=now,
        service=service,
    )
    return CancelOutcome("cancelled", cancelled)
