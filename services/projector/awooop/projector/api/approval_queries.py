"""`approvals` queries of the API: the listing with its keyset cursor, one request, and a
run's requests.

Like the run queries, every statement names `project_id` on top of the
row-level-security policy that already limits the transaction to that tenant. The
listing shows requests whose `approval.requested` is projected (it names the tool, the
approvers and the expiry), as `/v1/runs` shows runs that started; one request by its id
is shown whatever is known of it.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from awooop.projector.api.queries import Cursor

_COLUMNS = (
    "approval_id, run_id, call_id, tool, arguments, argument_hash, action_hash, scope, mode, "
    "policy_revision, approvers, approvals_required, rejections_required, requester, "
    "expires_at, requested_at, approvals, rejections, votes, state, outcome_code, "
    "outcome_reason, decided_by, decided_at, decided_event_id, token_id, token_expires_at"
)
_NEWEST = "requested_at DESC, approval_id DESC"
_ONE = text(f"SELECT {_COLUMNS} FROM approvals WHERE project_id = :p AND approval_id = :id")
_OF_RUN = text(
    f"SELECT {_COLUMNS} FROM approvals WHERE project_id = :p AND run_id = :id "
    "ORDER BY requested_at NULLS LAST, approval_id"
)


@dataclass(frozen=True, slots=True)
class ApprovalCursor:
    """The last request of a page: the next page starts strictly after it. Written as the
    runs' cursor is (a time and a UUID); `InvalidCursor` for one this API did not hand out."""

    requested_at: datetime
    approval_id: uuid.UUID

    def encode(self) -> str:
        return Cursor(self.requested_at, self.approval_id).encode()

    @classmethod
    def decode(cls, value: str) -> ApprovalCursor:
        cursor = Cursor.decode(value)
        return cls(cursor.started_at, cursor.run_id)


@dataclass(frozen=True, slots=True)
class ApprovalFilters:
    """What a listing keeps: every filter given must hold."""

    state: str | None = None
    run_id: uuid.UUID | None = None


def _parsed(rows: Any) -> list[dict[str, Any]]:
    found = [dict(row) for row in rows.mappings()]
    for row in found:
        for column in ("arguments", "votes"):
            if isinstance(row[column], str):
                row[column] = json.loads(row[column])
    return found


async def list_approvals(
    session: AsyncSession,
    project_id: str,
    filters: ApprovalFilters,
    limit: int,
    after: ApprovalCursor | None,
) -> tuple[list[dict[str, Any]], ApprovalCursor | None]:
    """One page, newest first, and the cursor of the next page (None on the last one)."""
    # Only the chosen filters are written, so each combination gets its own plan and
    # the index that leads with its column (state, run) can serve it.
    where = ["project_id = :p", "requested_at IS NOT NULL"]
    params: dict[str, Any] = {"p": project_id, "n": limit + 1}
    if filters.state is not None:
        where.append("state = :state")
        params["state"] = filters.state
    if filters.run_id is not None:
        where.append("run_id = :run")
        params["run"] = filters.run_id
    if after is not None:
        where.append("(requested_at, approval_id) < (:at, :id)")
        params |= {"at": after.requested_at, "id": after.approval_id}
    statement = text(
        f"SELECT {_COLUMNS} FROM approvals WHERE {' AND '.join(where)} ORDER BY {_NEWEST} LIMIT :n"
    )
    rows = _parsed(await session.execute(statement, params))
    if len(rows) <= limit:
        return rows, None
    page = rows[:limit]
    return page, ApprovalCursor(page[-1]["requested_at"], page[-1]["approval_id"])


async def get_approval(
    session: AsyncSession, project_id: str, approval_id: uuid.UUID
) -> dict[str, Any] | None:
    found = _parsed(await session.execute(_ONE, {"p": project_id, "id": approval_id}))
    return found[0] if found else None


async def get_approvals(
    session: AsyncSession, project_id: str, run_id: uuid.UUID
) -> list[dict[str, Any]]:
    """The run's approval requests, in the order they were made."""
    return _parsed(await session.execute(_OF_RUN, {"p": project_id, "id": run_id}))
