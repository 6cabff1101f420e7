"""A batch's rows as the source of one merge statement: one array parameter per column,
`unnest`ed under a name the merge selects from. Each read model's merge is then one
round trip, with no temporary table to create and no `COPY` into it first. Values of
`jsonb` columns are given as Python values and written as JSON text here.

`unnest` of a two-dimensional array yields its elements, not its rows, so a `text[]`
column travels as a `jsonb` array and is turned back into its array, in order, in the
source's select list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg
from pydantic_core import to_json

_TEXT_ARRAY = "text[]"
_AS_JSON = frozenset({"jsonb", _TEXT_ARRAY})
"""Types whose values are written as JSON text (a `text[]` as a `jsonb` array)."""


def _selected(column: str, sql_type: str) -> str:
    if sql_type != _TEXT_ARRAY:
        return f"u.{column}"
    return (
        f"CASE WHEN u.{column} IS NULL THEN NULL ELSE ARRAY(SELECT e FROM "
        f"jsonb_array_elements_text(u.{column}) WITH ORDINALITY AS a(e, n) ORDER BY n) "
        f"END AS {column}"
    )


@dataclass(frozen=True, slots=True)
class RowSource:
    """The rows of one read model in a batch, as `name(column, …)` for a merge to read."""

    name: str
    columns: tuple[tuple[str, str], ...]
    """`(column, SQL type)` in the order of the rows' values."""

    @classmethod
    def declared(cls, name: str, declaration: str) -> RowSource:
        """From `"project_id text, run_id uuid, …"`, the form of a table's columns."""
        columns = []
        for part in declaration.split(","):
            column, sql_type = part.split(None, 1)
            sql_type = " ".join(sql_type.split())
            if sql_type.endswith("[]") and sql_type != _TEXT_ARRAY:
                raise ValueError(f"{name}.{column}: only text[] arrays travel as jsonb")
            columns.append((column, sql_type))
        return cls(name, tuple(columns))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(column for column, _ in self.columns)

    @property
    def sql(self) -> str:
        """The `FROM` item: a subquery over the parameters `$1 …`, one per column."""
        parameters = ", ".join(
            f"${n}::{'jsonb' if sql_type == _TEXT_ARRAY else sql_type}[]"
            for n, (_, sql_type) in enumerate(self.columns, start=1)
        )
        selected = ", ".join(_selected(column, sql_type) for column, sql_type in self.columns)
        return (
            f"(SELECT {selected} FROM unnest({parameters}) AS u({', '.join(self.names)})) "
            f"AS {self.name}"
        )

    def arguments(self, records: Sequence[Sequence[Any]]) -> list[list[Any]]:
        """The statement's parameters: `records` (each in column order), column by column."""
        width = len(self.columns)
        arrays: list[list[Any]] = [[] for _ in range(width)]
        for record in records:
            if len(record) != width:
                raise ValueError(f"{self.name}: a row of {len(record)} values for {width} columns")
            for array, value in zip(arrays, record, strict=True):
                array.append(value)
        for array, (_, sql_type) in zip(arrays, self.columns, strict=True):
            if sql_type in _AS_JSON:
                # jsonb keeps no key order or spacing: any valid JSON text will do, and
                # pydantic-core's writer is several times faster than json's.
                array[:] = [None if v is None else to_json(v).decode() for v in array]
        return arrays


class _Valued(Protocol):
    def values(self) -> tuple[Any, ...]: ...


async def merge_all(
    conn: asyncpg.Connection, merges: Sequence[tuple[RowSource, Sequence[_Valued], str]]
) -> None:
    """Run each merge whose rows are not empty: one statement each, in the given order."""
    for source, rows, merge in merges:
        if rows:
            await conn.execute(merge, *source.arguments([row.values() for row in rows]))
