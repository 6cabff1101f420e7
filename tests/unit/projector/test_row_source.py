"""Each read model's batch rows are one statement's parameters: column by column, in the
order of the rows' values, arrays and JSON as text the statement turns back."""

from __future__ import annotations

import json
import uuid

import pytest

from awooop.projector.adapters.approval_writer import APPROVAL_ROWS
from awooop.projector.adapters.budget_writer import (
    BUDGET_STATE_ROWS,
    BUDGET_TRIP_ROWS,
    RUN_STEP_ROWS,
)
from awooop.projector.adapters.channel_writer import CHANNEL_EVENT_ROWS, OUTBOUND_ROWS
from awooop.projector.adapters.contract_writer import CONTRACT_REVISION_ROWS, CONTRACT_ROWS
from awooop.projector.adapters.mcp_call_writer import MCP_CALL_ROWS
from awooop.projector.adapters.read_model_writer import RUN_ROWS, TIMELINE_ROWS
from awooop.projector.adapters.row_source import RowSource
from awooop.projector.domain.approvals import APPROVAL_COLUMNS
from awooop.projector.domain.budget_models import BUDGET_STATE_COLUMNS, BUDGET_TRIP_COLUMNS
from awooop.projector.domain.channel_events import CHANNEL_EVENT_COLUMNS
from awooop.projector.domain.contract_rows import CONTRACT_COLUMNS, CONTRACT_REVISION_COLUMNS
from awooop.projector.domain.mcp_calls import MCP_CALL_COLUMNS
from awooop.projector.domain.outbound import OUTBOUND_COLUMNS
from awooop.projector.domain.rows import RUN_COLUMNS, TIMELINE_COLUMNS
from awooop.projector.domain.steps import STEP_COLUMNS

SOURCE = RowSource.declared("t_rows", "id uuid, labels text[], body jsonb, n integer")


@pytest.mark.parametrize(
    ("source", "columns"),
    [
        (TIMELINE_ROWS, TIMELINE_COLUMNS),
        (RUN_ROWS, RUN_COLUMNS),
        (RUN_STEP_ROWS, STEP_COLUMNS),
        (BUDGET_STATE_ROWS, BUDGET_STATE_COLUMNS),
        (BUDGET_TRIP_ROWS, BUDGET_TRIP_COLUMNS),
        (CHANNEL_EVENT_ROWS, CHANNEL_EVENT_COLUMNS),
        (OUTBOUND_ROWS, OUTBOUND_COLUMNS),
        (MCP_CALL_ROWS, MCP_CALL_COLUMNS),
        (APPROVAL_ROWS, APPROVAL_COLUMNS),
        (CONTRACT_REVISION_ROWS, CONTRACT_REVISION_COLUMNS),
        (CONTRACT_ROWS, CONTRACT_COLUMNS),
    ],
    ids=lambda value: value.name if isinstance(value, RowSource) else "",
)
def test_a_sources_columns_are_the_rows_values_in_order(
    source: RowSource, columns: tuple[str, ...]
) -> None:
    assert source.names == tuple(columns)


def test_rows_become_one_array_per_column_with_arrays_and_json_as_text() -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    arrays = SOURCE.arguments([(first, ("b", "a"), {"k": [1, "x"]}, 1), (second, None, None, None)])
    assert arrays[0] == [first, second]
    assert [None if v is None else json.loads(v) for v in arrays[1]] == [["b", "a"], None]
    assert [None if v is None else json.loads(v) for v in arrays[2]] == [{"k": [1, "x"]}, None]
    assert arrays[3] == [1, None]


def test_the_statement_source_numbers_one_parameter_per_column() -> None:
    sql = SOURCE.sql
    assert "unnest($1::uuid[], $2::jsonb[], $3::jsonb[], $4::integer[])" in sql
    assert "WITH ORDINALITY" in sql  # a text[] keeps its order
    assert sql.endswith("AS t_rows")


def test_a_row_of_the_wrong_width_is_refused() -> None:
    with pytest.raises(ValueError, match="a row of 2 values for 4 columns"):
        SOURCE.arguments([(uuid.uuid4(), None)])


def test_only_text_arrays_can_travel_as_json() -> None:
    with pytest.raises(ValueError, match="only text\\[\\] arrays"):
        RowSource.declared("bad", "ids integer[]")
