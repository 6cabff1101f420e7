"""The contracts a run is decided by, as the runtime's domain asks for them.

The service hands in its live contract view; the domain only needs these lookups and
the revision each answer came from, so that every decision can name it.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from pydantic import BaseModel

from awooop.contracts.families.agent import Agent
from awooop.contracts.families.budget import Budget
from awooop.contracts.families.policy import Policy
from awooop.contracts.families.runtime_run_state import RuntimeRunState
from awooop.contracts.families.tool import Tool

M = TypeVar("M", bound=BaseModel)
M_co = TypeVar("M_co", bound=BaseModel, covariant=True)


class Revisioned(Protocol[M_co]):
    """A contract document and the revision it is (``<contract>@<n>:<digest prefix>``)."""

    @property
    def ref(self) -> str: ...

    @property
    def document(self) -> M_co: ...


class RunContracts(Protocol):
    """The active agents, policies and budgets of every project, and any signed revision by
    ref."""

    def agent(self, project_id: str, agent_id: str) -> Revisioned[Agent] | None: ...

    def policy(self, project_id: str) -> Revisioned[Policy] | None: ...

    def budget(self, project_id: str) -> Revisioned[Budget] | None: ...

    def tool(self, project_id: str, name: str) -> Revisioned[Tool] | None: ...

    def run_state(self, project_id: str) -> Revisioned[RuntimeRunState] | None: ...

    def at(self, project_id: str, ref: str, model: type[M]) -> Revisioned[M] | None: ...
