"""Parts of statements composed into one: each part's parameters move past the ones
before it, and nothing else in its text changes."""

from __future__ import annotations

import pytest

from awooop.infra.postgres.composed import renumbered

pytestmark = pytest.mark.unit


def test_parameters_move_past_the_parts_before() -> None:
    sql = "UPDATE t SET a = $2::text, b = $10 WHERE id = ANY($1::uuid[]) AND c = $1"
    assert renumbered(sql, 1) == sql
    assert renumbered(sql, 9) == (
        "UPDATE t SET a = $10::text, b = $18 WHERE id = ANY($9::uuid[]) AND c = $9"
    )


def test_numbering_starts_at_one() -> None:
    with pytest.raises(ValueError, match="numbered from 1, not 0"):
        renumbered("SELECT $1", 0)
