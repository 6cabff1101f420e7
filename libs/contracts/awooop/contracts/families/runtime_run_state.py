"""The ``runtime_run_state`` contract family: the run states and their transition table.

The JSON Schema ``schemas/runtime_run_state.schema.json`` is the source of the family;
:class:`RuntimeRunState` accepts exactly the documents the schema accepts (the parity
tests hold the two together). Rules that JSON Schema cannot state, such as "the initial
state is one of the states", are checked where the document is used, by
``RunStateMachine``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from awooop.contracts.families.fields import not_boolean, unique

RunState = Literal[
    "pending",
    "running",
    "waiting_approval",
    "waiting_tool",
    "completed",
    "failed",
    "cancelled",
    "timeout",
]
"""Every state a run can be in."""

RUN_STATES: tuple[str, ...] = get_args(RunState)

FAMILY = "runtime_run_state"


class Transition(BaseModel):
    """One allowed move, ``{"from": state, "to": state}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # ``from`` is a Python keyword: the field is ``from_`` and only the alias is accepted
    # on input, because the schema knows no ``from_`` property.
    from_: RunState = Field(alias="from")
    to: RunState


States = Annotated[tuple[RunState, ...], Field(min_length=1), AfterValidator(unique)]


class RuntimeRunState(BaseModel):
    """A ``runtime_run_state`` document (schema version 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    family: Literal["runtime_run_state"]
    schema_version: Annotated[Literal[1], BeforeValidator(not_boolean)]
    states: States
    initial: RunState
    terminal: States
    transitions: Annotated[tuple[Transition, ...], Field(min_length=1), AfterValidator(unique)]


_STANDARD_MOVES: tuple[tuple[RunState, tuple[RunState, ...]], ...] = (
    ("pending", ("running", "cancelled", "timeout", "failed")),
    (
        "running",
        ("waiting_tool", "waiting_approval", "completed", "failed", "cancelled", "timeout"),
    ),
    ("waiting_tool", ("running", "failed", "cancelled", "timeout")),
    ("waiting_approval", ("running", "failed", "cancelled", "timeout")),
)
STANDARD_TERMINAL: tuple[RunState, ...] = ("completed", "failed", "cancelled", "timeout")


def standard_document() -> dict[str, Any]:
    """The run state table AwoooP ships, as a fresh JSON-ready document."""
    return {
        "family": FAMILY,
        "schema_version": 1,
        "states": list(RUN_STATES),
        "initial": "pending",
        "terminal": list(STANDARD_TERMINAL),
        "transitions": [
            {"from": source, "to": target}
            for source, targets in _STANDARD_MOVES
            for target in targets
        ],
    }


def standard_run_state() -> RuntimeRunState:
    """The standard table, validated: what the runtime checks transitions against."""
    return RuntimeRunState.model_validate(standard_document())


def run_state_document(model: RuntimeRunState) -> dict[str, Any]:
    """The JSON-ready document of a model (``from`` keys, not ``from_``)."""
    return model.model_dump(mode="json", by_alias=True)
