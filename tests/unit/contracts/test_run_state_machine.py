"""The run state machine follows the runtime_run_state table and nothing else."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from awooop.contracts import IllegalTransition, RunStateMachine
from awooop.contracts.families.registry import contract_family
from awooop.contracts.families.run_state_machine import InconsistentRunStateDocumentError
from awooop.contracts.families.runtime_run_state import (
    RUN_STATES,
    RuntimeRunState,
    run_state_document,
    standard_document,
    standard_run_state,
)

pytestmark = pytest.mark.unit

MACHINE = RunStateMachine.standard()

TABLE = {
    "pending": {"running", "cancelled", "timeout", "failed"},
    "running": {"waiting_tool", "waiting_approval", "completed", "failed", "cancelled", "timeout"},
    "waiting_tool": {"running", "failed", "cancelled", "timeout"},
    "waiting_approval": {"running", "failed", "cancelled", "timeout"},
    "completed": set(),
    "failed": set(),
    "cancelled": set(),
    "timeout": set(),
}

states = st.sampled_from(RUN_STATES)


def test_the_standard_machine_is_the_architecture_table() -> None:
    assert MACHINE.initial == "pending"
    assert MACHINE.terminal == {"completed", "failed", "cancelled", "timeout"}
    assert MACHINE.states == set(RUN_STATES) == set(TABLE)
    for source, targets in TABLE.items():
        assert MACHINE.next_states(source) == targets


def test_standard_document_is_the_golden_fixture() -> None:
    family = contract_family("runtime_run_state")
    (fixture,) = [f for f in family.fixtures("valid") if f.name == "standard.json"]
    assert json.loads(fixture.read_text(encoding="utf-8")) == standard_document()
    assert run_state_document(standard_run_state()) == standard_document()


@given(source=states, target=states)
def test_can_is_exactly_the_table(source: str, target: str) -> None:
    assert MACHINE.can(source, target) == (target in TABLE[source])


@given(source=states, target=states)
def test_illegal_transition_carries_the_code(source: str, target: str) -> None:
    if MACHINE.can(source, target):
        assert MACHINE.transition(source, target) == target
        return
    with pytest.raises(IllegalTransition) as caught:
        MACHINE.transition(source, target)
    assert caught.value.code == "E-RUN-STATE-001"
    assert (caught.value.from_state, caught.value.to_state) == (source, target)
    assert str(caught.value).startswith("E-RUN-STATE-001")


@given(terminal=st.sampled_from(sorted(MACHINE.terminal)), target=states)
def test_terminal_states_have_no_way_out(terminal: str, target: str) -> None:
    assert MACHINE.is_terminal(terminal)
    assert MACHINE.next_states(terminal) == frozenset()
    with pytest.raises(IllegalTransition):
        MACHINE.transition(terminal, target)


@given(data=st.data())
def test_random_walks_follow_only_allowed_moves(data: st.DataObject) -> None:
    state = MACHINE.initial
    path = [state]
    for _ in range(30):
        if MACHINE.is_terminal(state):
            break
        target = data.draw(st.sampled_from(sorted(MACHINE.next_states(state))))
        state = MACHINE.transition(state, target)
        path.append(state)
    for source, target in itertools.pairwise(path):
        assert target in TABLE[source]
    assert all(not MACHINE.is_terminal(s) for s in path[:-1])


@given(source=st.text(max_size=20), target=st.text(max_size=20))
def test_unknown_states_never_move(source: str, target: str) -> None:
    if source in TABLE and target in TABLE:
        return
    assert not MACHINE.can(source, target)
    with pytest.raises(IllegalTransition):
        MACHINE.transition(source, target)


def _document(**changes: Any) -> RuntimeRunState:
    document = standard_document()
    document.update(changes)
    return RuntimeRunState.model_validate(document)


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"states": ["running", "completed"]}, "initial state 'pending' is not a state"),
        ({"terminal": ["pending"]}, "initial state 'pending' is terminal"),
        ({"terminal": ["completed", "running"]}, "terminal state 'running' has a transition"),
        (
            {"states": ["pending", "running", "completed"], "terminal": ["completed"]},
            "leaves the states",
        ),
    ],
)
def test_inconsistent_documents_are_refused(changes: dict[str, Any], problem: str) -> None:
    with pytest.raises(InconsistentRunStateDocumentError, match=problem):
        RunStateMachine(_document(**changes))


def test_machine_from_another_document() -> None:
    machine = RunStateMachine(
        _document(
            states=["pending", "running", "completed"],
            terminal=["completed"],
            transitions=[
                {"from": "pending", "to": "running"},
                {"from": "running", "to": "completed"},
            ],
        )
    )
    assert machine.can("pending", "running")
    assert not machine.can("pending", "completed")
