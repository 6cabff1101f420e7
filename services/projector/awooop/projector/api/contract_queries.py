"""Contract read-model queries of the API, and the cursor of the contract listing.

Like the run queries, every statement names `project_id` on top of the
row-level-security policy that already limits the transaction to that tenant.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from awooop.contracts.events.payloads.contract import CONTRACT_ID_PATTERN
from awooop.projector.api.queries import InvalidCursor

_CONTRACT_COLUMNS = (
    "contract_id, project_id, family, lifecycle, active_revision, latest_revision, updated_at"
)
_REVISION_COLUMNS = (
    "revision, lifecycle, author, body, body_sha256, signature_kid, signature_alg, "
    "signature_check, signers, drafted_at, published_at, activated_at, retired_at"
)
_LIST = (
    f"SELECT {_CONTRACT_COLUMNS} FROM contracts WHERE project_id = :p "
    "AND (CAST(:family AS text) IS NULL OR family = :family) "
    "AND (CAST(:lifecycle AS text) IS NULL OR lifecycle = :lifecycle) "
    "AND (CAST(:after AS text) IS NULL OR contract_id > :after) "
    "ORDER BY contract_id LIMIT :n"
)
_ONE = text(f"SELECT {_CONTRACT_COLUMNS} FROM contracts WHERE project_id = :p AND contract_id = :c")
_REVISIONS = text(
    f"SELECT {_REVISION_COLUMNS} FROM contract_revisions "
    "WHERE project_id = :p AND contract_id = :c ORDER BY revision"
)
_CONTRACT_ID = re.compile(CONTRACT_ID_PATTERN)


@dataclass(frozen=True, slots=True)
class ContractCursor:
    """The last contract of a page: the next page starts strictly after its id."""

    contract_id: str

    def encode(self) -> str:
        return base64.urlsafe_b64encode(self.contract_id.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str) -> ContractCursor:
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raw = ""
        if not _CONTRACT_ID.fullmatch(raw):
            raise InvalidCursor("cursor is malformed: pass the `next` value of a page")
        return cls(raw)


async def list_contracts(
    session: AsyncSession,
    project_id: str,
    *,
    family: str | None,
    lifecycle: str | None,
    limit: int,
    after: ContractCursor | None,
) -> tuple[list[dict[str, Any]], ContractCursor | None]:
    """One page in contract id order, and the cursor of the next (None on the last)."""
    params = {
        "p": project_id,
        "family": family,
        "lifecycle": lifecycle,
        "after": after.contract_id if after else None,
        "n": limit + 1,
    }
    rows = [dict(row) for row in (await session.execute(text(_LIST), params)).mappings()]
    if len(rows) <= limit:
        return rows, None
    page = rows[:limit]
    return page, ContractCursor(page[-1]["contract_id"])


async def get_contract(
    session: AsyncSession, project_id: str, contract_id: str
) -> dict[str, Any] | None:
    params = {"p": project_id, "c": contract_id}
    row = (await session.execute(_ONE, params)).mappings().first()
    return dict(row) if row is not None else None


async def get_revisions(
    session: AsyncSession, project_id: str, contract_id: str
) -> list[dict[str, Any]]:
    result = await session.execute(_REVISIONS, {"p": project_id, "c": contract_id})
    rows = [dict(row) for row in result.mappings()]
    for row in rows:
        if isinstance(row["body"], str):
            row["body"] = json.loads(row["body"])
        row["signature"] = (
            {
                "kid": row.pop("signature_kid"),
                "alg": row.pop("signature_alg"),
                "check": row.pop("signature_check"),
            }
            if row["body_sha256"] is not None
            else None
        )
        for column in ("signature_kid", "signature_alg", "signature_check"):
            row.pop(column, None)
    return rows
