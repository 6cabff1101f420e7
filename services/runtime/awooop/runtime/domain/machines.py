"""The run state machine of each project: its active `runtime_run_state` revision.

A project with no active revision, or one whose table the runtime cannot use, runs by
the standard table. Usable means consistent (`RunStateMachine` accepts it) and
letting every active state end `failed`, `cancelled` and `timeout`: the runtime's own
safety moves (attempts spent, an operator's cancel, the kill switch, the run timeout)
are never refused, so a refused move can only hold a run back in its flow until its
timeout, never keep it alive past it. Machines are built once per revision.
"""

from __future__ import annotations

from dataclasses import dataclass

from awooop.contracts.families.run_state_machine import (
    InconsistentRunStateDocumentError,
    RunStateMachine,
)
from awooop.runtime.domain.contracts import RunContracts

STANDARD = "standard"
"""The revision name of the standard table when a project has none of its own."""
SAFETY_MOVES = ("failed", "cancelled", "timeout")
ACTIVE = ("pending", "running", "waiting_approval", "waiting_tool")


@dataclass(frozen=True)
class Machine:
    """A project's state machine and the revision it came from."""

    table: RunStateMachine
    revision: str


_STANDARD = Machine(RunStateMachine.standard(), STANDARD)
_BUILT: dict[str, Machine] = {}


def machine_for(contracts: RunContracts, project_id: str) -> Machine:
    """The machine a project's runs move by."""
    found = contracts.run_state(project_id)
    if found is None:
        return _STANDARD
    built = _BUILT.get(found.ref)
    if built is None:
        built = _BUILT[found.ref] = _usable(found.ref, found.document)
    return built


def _usable(ref: str, document: object) -> Machine:
    try:
        table = RunStateMachine(document)  # type: ignore[arg-type]
    except InconsistentRunStateDocumentError:
        return _STANDARD
    for state in ACTIVE:
        if state in table.states and not all(table.can(state, end) for end in SAFETY_MOVES):
            return _STANDARD
    return Machine(table, ref)
