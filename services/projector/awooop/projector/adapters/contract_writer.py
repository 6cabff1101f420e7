"""The contract read models' bulk path: one merge statement per table.

`contract_revisions` is merged first; the `contracts` merge then derives each batch
contract's `active_revision` and `lifecycle` from its stored revisions, in the same
transaction. A contract's events share one key, so one partition and one writer:
no other transaction changes its revisions meanwhile.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

import asyncpg

from awooop.projector.adapters.row_source import RowSource, merge_all
from awooop.projector.domain.contract_models import RevisionKey
from awooop.projector.domain.contract_rows import (
    CONTRACT_COLUMNS,
    CONTRACT_DERIVED,
    CONTRACT_REVISION_COLUMNS,
    LIFECYCLE,
    REVISION_WRITE_ONCE,
    ContractRevisionRow,
    ContractRow,
)

CONTRACT_REVISION_ROWS = RowSource.declared(
    "contract_revisions_rows",
    "project_id text, contract_id text, revision integer, lifecycle text, body jsonb, "
    "author text, body_sha256 text, signature_kid text, signature_alg text, "
    "signature_check text, drafted_at timestamptz, published_at timestamptz, "
    "activated_at timestamptz, retired_at timestamptz, signers text[]",
)
CONTRACT_ROWS = RowSource.declared(
    "s",
    "project_id text, contract_id text, family text, latest_revision integer, "
    "active_revision integer, lifecycle text, updated_at timestamptz, last_stream_seq integer",
)


def _rank(column: str) -> str:
    states = ", ".join(f"'{state}'" for state in LIFECYCLE)
    return f"coalesce(array_position(ARRAY[{states}]::text[], {column}), 0)"


_REVISION_LIST = ", ".join(CONTRACT_REVISION_COLUMNS)
_FURTHER = f"{_rank('excluded.lifecycle')} > {_rank('r.lifecycle')}"
# Signers sorted byte-wise ("C"): code point order, as the fold sorts them in memory.
_SIGNERS = (
    'ARRAY(SELECT DISTINCT s COLLATE "C" FROM unnest(r.signers || excluded.signers) AS s '
    "ORDER BY 1)"
)
UPSERT_CONTRACT_REVISIONS = (
    f"INSERT INTO contract_revisions AS r ({_REVISION_LIST}) "
    f"SELECT {_REVISION_LIST} FROM {CONTRACT_REVISION_ROWS.sql} "
    "ORDER BY project_id, contract_id, revision "
    "ON CONFLICT (project_id, contract_id, revision) DO UPDATE SET "
    f"lifecycle = CASE WHEN {_FURTHER} THEN excluded.lifecycle ELSE r.lifecycle END, "
    + ", ".join(f"{c} = coalesce(r.{c}, excluded.{c})" for c in REVISION_WRITE_ONCE)
    + ", retired_at = least(r.retired_at, excluded.retired_at), "
    f"signers = {_SIGNERS} "
    f"WHERE {_FURTHER} OR "
    + " OR ".join(f"(r.{c} IS NULL AND excluded.{c} IS NOT NULL)" for c in REVISION_WRITE_ONCE)
    + " OR (excluded.retired_at < r.retired_at)"
    " OR (r.retired_at IS NULL AND excluded.retired_at IS NOT NULL)"
    " OR NOT (excluded.signers <@ r.signers)"
)

_OF_CONTRACT = "cr.project_id = s.project_id AND cr.contract_id = s.contract_id"
_DERIVED = {
    "active_revision": (
        f"(SELECT cr.revision FROM contract_revisions cr WHERE {_OF_CONTRACT} "
        "AND cr.lifecycle = 'active' ORDER BY cr.revision DESC LIMIT 1)"
    ),
    "lifecycle": (
        f"(SELECT cr.lifecycle FROM contract_revisions cr WHERE {_OF_CONTRACT} "
        "ORDER BY cr.lifecycle = 'active' DESC, cr.revision DESC LIMIT 1)"
    ),
}
_CONTRACT_SELECT = ", ".join(_DERIVED.get(c, f"s.{c}") for c in CONTRACT_COLUMNS)
_NEWER = "excluded.last_stream_seq > c.last_stream_seq"
UPSERT_CONTRACTS = (
    f"INSERT INTO contracts AS c ({', '.join(CONTRACT_COLUMNS)}) "
    f"SELECT {_CONTRACT_SELECT} FROM {CONTRACT_ROWS.sql} "
    "ORDER BY s.project_id, s.contract_id "
    "ON CONFLICT (project_id, contract_id) DO UPDATE SET "
    "family = coalesce(c.family, excluded.family), "
    "latest_revision = greatest(c.latest_revision, excluded.latest_revision), "
    + ", ".join(f"{c} = excluded.{c}" for c in CONTRACT_DERIVED)
    + f", updated_at = CASE WHEN {_NEWER} THEN excluded.updated_at ELSE c.updated_at END, "
    "last_stream_seq = greatest(c.last_stream_seq, excluded.last_stream_seq) "
    f"WHERE {_NEWER} OR (c.family IS NULL AND excluded.family IS NOT NULL) "
    "OR excluded.latest_revision > c.latest_revision OR "
    + " OR ".join(f"c.{c} IS DISTINCT FROM excluded.{c}" for c in CONTRACT_DERIVED)
)

_STORED_BODIES = (
    "SELECT project_id, contract_id, revision, body FROM contract_revisions "
    "WHERE (project_id, contract_id, revision) IN "
    "(SELECT * FROM unnest($1::text[], $2::text[], $3::integer[])) AND body IS NOT NULL"
)


async def write_contract_models(
    conn: asyncpg.Connection,
    contracts: Collection[ContractRow],
    revisions: Collection[ContractRevisionRow],
) -> None:
    """Merge one batch's contract rows (inside the batch transaction, tenants set)."""
    await merge_all(
        conn,
        [
            (CONTRACT_REVISION_ROWS, list(revisions), UPSERT_CONTRACT_REVISIONS),
            (CONTRACT_ROWS, list(contracts), UPSERT_CONTRACTS),
        ],
    )


async def stored_bodies(
    conn: asyncpg.Connection, keys: Collection[RevisionKey]
) -> dict[RevisionKey, dict[str, Any]]:
    """The stored bodies of these revisions (those drafted by an earlier batch)."""
    if not keys:
        return {}
    projects, contracts, revisions = (list(column) for column in zip(*sorted(keys), strict=True))
    rows = await conn.fetch(_STORED_BODIES, projects, contracts, revisions)
    return {
        (r["project_id"], r["contract_id"], r["revision"]): (
            json.loads(r["body"]) if isinstance(r["body"], str) else r["body"]
        )
        for r in rows
    }
