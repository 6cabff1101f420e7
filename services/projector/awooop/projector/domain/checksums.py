"""Order-independent digests of the read models, per table and per project.

A row's digest is the SHA-256 of its canonical form: its columns in table order
as an RFC 8785 (JCS) array, where a UUID is its text, a timestamp is UTC ISO
8601 with microseconds, a decimal is its plain text without trailing zeros, a
JSON column is the parsed value. A table's digest for
one project is the sum of its rows' digests modulo 2**256, with the row count
beside it: adding is commutative, so the digest does not depend on the order in
which rows are read, written or folded, and unlike XOR two equal rows never
cancel out. The same function digests rows fetched from Postgres and rows
folded offline from an audit file, so the two compare exactly.

Every read-model table is named in `READ_MODEL_TABLES` with its columns; a
test holds the projector's schema to that list, so a read model added later is
checksummed (and so rebuilt-equals-live checked) from its first migration.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import rfc8785

from awooop.projector.domain.approvals import APPROVAL_COLUMNS
from awooop.projector.domain.budget_models import BUDGET_STATE_COLUMNS, BUDGET_TRIP_COLUMNS
from awooop.projector.domain.channel_events import CHANNEL_EVENT_DIGEST_COLUMNS
from awooop.projector.domain.contract_rows import CONTRACT_COLUMNS, CONTRACT_REVISION_COLUMNS
from awooop.projector.domain.mcp_calls import MCP_CALL_COLUMNS
from awooop.projector.domain.outbound import OUTBOUND_COLUMNS
from awooop.projector.domain.rows import RUN_COLUMNS, TIMELINE_COLUMNS, ReadModelRows
from awooop.projector.domain.steps import STEP_COLUMNS

READ_MODEL_TABLES: dict[str, tuple[str, ...]] = {
    "runs": RUN_COLUMNS,
    "timeline": TIMELINE_COLUMNS,
    "contracts": CONTRACT_COLUMNS,
    "contract_revisions": CONTRACT_REVISION_COLUMNS,
    "run_steps": STEP_COLUMNS,
    "outbound_messages": OUTBOUND_COLUMNS,
    "budget_state": BUDGET_STATE_COLUMNS,
    "budget_trips": BUDGET_TRIP_COLUMNS,
    "channel_events": CHANNEL_EVENT_DIGEST_COLUMNS,
    "mcp_calls": MCP_CALL_COLUMNS,
    "approvals": APPROVAL_COLUMNS,
}
"""Every read-model table of the projector's schema, with its columns in digest order.

The view `budget_usage` is not a table: it is computed from `run_steps` and `runs`,
both digested here. `channel_events.outcome` is a generated column: digesting it holds
the table's rule to the fold's (`outcome_of`)."""

JSON_COLUMNS = frozenset(
    {
        ("timeline", "summary"),
        ("contract_revisions", "body"),
        ("mcp_calls", "arguments"),
        ("mcp_calls", "redactions"),
        ("approvals", "arguments"),
        ("approvals", "votes"),
    }
)
"""Columns stored as `jsonb`: Postgres hands them back as text, digested as parsed JSON."""

_MODULUS = 2**256


def canonical_value(value: Any) -> Any:
    """A column value as plain JSON data, the same whichever side it was read from."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError(f"timestamp without a time zone: {value!r}")
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, Decimal):
        # Postgres keeps a numeric's scale and Python a Decimal's exponent: "1.50" and
        # "1.5" are one amount, written one way.
        return format(value.normalize(), "f")
    return value


def row_digest(values: Sequence[Any]) -> int:
    """The SHA-256 of one row's canonical form, as an integer."""
    canonical = rfc8785.dumps([canonical_value(v) for v in values])
    return int.from_bytes(hashlib.sha256(canonical).digest(), "big")


@dataclass
class TableDigest:
    """The digest of one table's rows for one project (or for all of them)."""

    rows: int = 0
    total: int = 0

    def add(self, digest: int) -> None:
        self.rows += 1
        self.total = (self.total + digest) % _MODULUS

    def merge(self, other: TableDigest) -> None:
        self.rows += other.rows
        self.total = (self.total + other.total) % _MODULUS

    @property
    def hex(self) -> str:
        return f"{self.total:064x}"

    def as_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "digest": self.hex}


@dataclass
class Checksums:
    """`tables[table][project_id]`: the digest of that table's rows of that project."""

    tables: dict[str, dict[str, TableDigest]] = field(
        default_factory=lambda: {table: {} for table in READ_MODEL_TABLES}
    )

    def add_row(self, table: str, row: Mapping[str, Any]) -> None:
        columns = READ_MODEL_TABLES[table]
        values = [row[c] for c in columns]
        for i, column in enumerate(columns):
            if (table, column) in JSON_COLUMNS and isinstance(values[i], str):
                values[i] = json.loads(values[i])
        project = str(row["project_id"])
        self.tables[table].setdefault(project, TableDigest()).add(row_digest(values))

    def table_total(self, table: str) -> TableDigest:
        total = TableDigest()
        for digest in self.tables[table].values():
            total.merge(digest)
        return total

    def projects(self) -> list[str]:
        return sorted({p for per_project in self.tables.values() for p in per_project})

    def as_json(self) -> dict[str, Any]:
        """`{table: {"all": {...}, "projects": {project: {"rows", "digest"}}}}`, sorted."""
        return {
            table: {
                "all": self.table_total(table).as_json(),
                "projects": {
                    project: per_project[project].as_json() for project in sorted(per_project)
                },
            }
            for table, per_project in sorted(self.tables.items())
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Checksums:
        checksums = cls()
        for table, entry in data.items():
            if table not in READ_MODEL_TABLES:
                raise ValueError(f"unknown read-model table {table!r}")
            checksums.tables[table] = {
                project: TableDigest(int(d["rows"]), int(d["digest"], 16))
                for project, d in entry["projects"].items()
            }
        return checksums


@dataclass(frozen=True)
class Difference:
    """One table and project whose digests differ (a side that has no rows shows 0 rows)."""

    table: str
    project_id: str
    left: TableDigest
    right: TableDigest

    def describe(self, left_name: str = "left", right_name: str = "right") -> str:
        return (
            f"{self.table} of project {self.project_id}: {left_name} {self.left.rows} rows "
            f"{self.left.hex[:16]}…, {right_name} {self.right.rows} rows {self.right.hex[:16]}…"
        )


def differences(left: Checksums, right: Checksums) -> list[Difference]:
    """Every (table, project) whose digest differs between `left` and `right`, sorted."""
    found: list[Difference] = []
    for table in sorted(READ_MODEL_TABLES):
        ours, theirs = left.tables.get(table, {}), right.tables.get(table, {})
        for project in sorted(set(ours) | set(theirs)):
            a, b = ours.get(project, TableDigest()), theirs.get(project, TableDigest())
            if (a.rows, a.total) != (b.rows, b.total):
                found.append(Difference(table, project, a, b))
    return found


def checksums_of_rows(rows: ReadModelRows) -> Checksums:
    """The digests of rows folded in memory (`fold_batch` over a whole event set)."""
    checksums = Checksums()
    for timeline in rows.timeline:
        checksums.add_row("timeline", {c: getattr(timeline, c) for c in TIMELINE_COLUMNS})
    for run in rows.runs:
        checksums.add_row("runs", dict(zip(RUN_COLUMNS, run.values(), strict=True)))
    for contract in rows.contracts:
        checksums.add_row("contracts", dict(zip(CONTRACT_COLUMNS, contract.values(), strict=True)))
    for revision in rows.contract_revisions:
        values = revision.values()
        checksums.add_row(
            "contract_revisions", dict(zip(CONTRACT_REVISION_COLUMNS, values, strict=True))
        )
    tables: dict[str, Sequence[Any]] = {
        "run_steps": rows.steps,
        "outbound_messages": rows.outbound,
        "budget_state": rows.budget_states,
        "budget_trips": rows.budget_trips,
        "mcp_calls": rows.mcp_calls,
        "approvals": rows.approvals,
    }
    for table, table_rows in tables.items():
        columns = READ_MODEL_TABLES[table]
        for row in table_rows:
            checksums.add_row(table, dict(zip(columns, row.values(), strict=True)))
    for event in rows.channel_events:
        values = (*event.values(), event.outcome)
        checksums.add_row(
            "channel_events", dict(zip(CHANNEL_EVENT_DIGEST_COLUMNS, values, strict=True))
        )
    return checksums


def merge_checksums(parts: Iterable[Checksums]) -> Checksums:
    """One `Checksums` holding the sum of `parts` (e.g. one per fetched chunk)."""
    merged = Checksums()
    for part in parts:
        for table, per_project in part.tables.items():
            for project, digest in per_project.items():
                merged.tables.setdefault(table, {}).setdefault(project, TableDigest()).merge(digest)
    return merged
