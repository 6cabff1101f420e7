"""A pure run state machine built from a ``runtime_run_state`` document.

It answers whether a move is allowed and refuses illegal ones with
``E-RUN-STATE-001``; it keeps no state of its own, so one instance serves every run.
"""

from __future__ import annotations

from collections.abc import Mapping

from awooop.contracts.families.runtime_run_state import RuntimeRunState, standard_run_state
from awooop.contracts.registries.errors import E_RUN_STATE_001


class IllegalTransition(ValueError):
    """A move the transition table does not allow; ``code`` is ``E-RUN-STATE-001``."""

    code = E_RUN_STATE_001.code

    def __init__(self, from_state: str, to_state: str) -> None:
        super().__init__(f"{self.code}: illegal run state transition {from_state} -> {to_state}")
        self.from_state = from_state
        self.to_state = to_state


class InconsistentRunStateDocumentError(ValueError):
    """A schema-valid document whose parts disagree (e.g. the initial state is not listed)."""


class RunStateMachine:
    """The allowed moves between run states, from one ``runtime_run_state`` document.

    Raises :class:`InconsistentRunStateDocumentError` when the document's initial or terminal
    states, or a transition's ends, are not among its states, when a terminal state has
    an outgoing transition, or when the initial state is terminal.
    """

    def __init__(self, document: RuntimeRunState) -> None:
        states = frozenset(document.states)
        terminal = frozenset(document.terminal)
        problems = []
        if document.initial not in states:
            problems.append(f"initial state {document.initial!r} is not a state")
        if document.initial in terminal:
            problems.append(f"initial state {document.initial!r} is terminal")
        problems.extend(f"terminal {s!r} is not a state" for s in sorted(terminal - states))
        moves: dict[str, set[str]] = {state: set() for state in states}
        for move in document.transitions:
            if move.from_ not in states or move.to not in states:
                problems.append(f"transition {move.from_} -> {move.to} leaves the states")
            elif move.from_ in terminal:
                problems.append(f"terminal state {move.from_!r} has a transition")
            else:
                moves[move.from_].add(move.to)
        if problems:
            raise InconsistentRunStateDocumentError("; ".join(problems))
        self.document = document
        self.states = states
        self.initial: str = document.initial
        self.terminal = terminal
        self._moves: Mapping[str, frozenset[str]] = {s: frozenset(t) for s, t in moves.items()}

    @classmethod
    def standard(cls) -> RunStateMachine:
        """The machine of the standard table (`standard_document`)."""
        return cls(standard_run_state())

    def can(self, from_state: str, to_state: str) -> bool:
        """Whether the table allows ``from_state -> to_state`` (unknown states: never)."""
        return to_state in self._moves.get(from_state, frozenset())

    def transition(self, from_state: str, to_state: str) -> str:
        """Return ``to_state`` when the move is allowed; :class:`IllegalTransition` if not."""
        if not self.can(from_state, to_state):
            raise IllegalTransition(from_state, to_state)
        return to_state

    def next_states(self, state: str) -> frozenset[str]:
        """The states reachable in one move from ``state`` (empty for terminal ones)."""
        return self._moves.get(state, frozenset())

    def is_terminal(self, state: str) -> bool:
        """Whether ``state`` is terminal: a run there never moves again."""
        return state in self.terminal
