"""The budget of one step, in the transactions of the step (the runtime is its only
authority).

Before a remote call the step reserves its prompt plus `max_tokens` of output on every
scope of the project's active budget (tenant, agent, run, each in its period), with
`max_tokens` cut to what the tightest scope has left; a scope that cannot fund the
smallest useful step is tripped and the run fails with `E-BUDGET-REFUSED`. After the
call it settles what the provider reported, never more than it reserved. A local step
(the scripted provider) knows its usage before it commits, so it reserves exactly that
and settles it in the same transaction. A project with no active budget is unbudgeted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal

import asyncpg

from awooop.contracts.events.payloads.budget import ScopeTripped
from awooop.contracts.events.payloads.run import RunCancelled, StepReport
from awooop.contracts.families.budget import Budget, Price
from awooop.contracts.registries.errors import (
    E_BUDGET_KILLED,
    E_BUDGET_REFUSED,
    E_BUDGET_UNPRICED,
)
from awooop.infra.contracts.reader import ContractSource
from awooop.runtime import kill_switch
from awooop.runtime.adapters import budget_charges, budget_ledger
from awooop.runtime.adapters.budget_ledger import Refused, Reservation
from awooop.runtime.domain.budget import (
    ScopeLimit,
    as_reserved,
    cap_max_tokens,
    estimate,
    kill_due,
    price_for,
    prompt_tokens,
    scopes_for,
    starved,
    step_cost,
    unpriced,
)
from awooop.runtime.domain.llm import StepOutput, StepRequest
from awooop.runtime.domain.run import RUNTIME_ACTOR, Decision, StepPlan, fail


@dataclass(frozen=True)
class BudgetHold:
    """What a prepared step may spend: its `max_tokens`, and the reservation that pays for
    it (None when the project is unbudgeted)."""

    max_tokens: int
    reservation: Reservation | None
    price: Price | None


@dataclass(frozen=True)
class Usage:
    """What a step's calls used, as the provider reported it."""

    model: str
    tokens_in: int
    tokens_out: int
    schema_retries: int = 0


class StepBudget:
    """Reserves, charges and settles steps under each project's active budget."""

    def __init__(self, contracts: ContractSource, service: str = "runtime") -> None:
        self._contracts = contracts
        self._service = service

    def begin_step(self) -> None:
        """Start noting the tenants this step's charges leave at or past their kill share
        (per asyncio task: a step pool worker takes one step at a time)."""
        _CROSSED.set(set())

    def crossed(self) -> list[tuple[str, str]]:
        """The tenants the step's committed charges left at or past the kill share, with
        their budget revisions; forgotten once read."""
        due = _CROSSED.get(None) or set()
        _CROSSED.set(set())
        found = [(p, self._contracts.view.budget(p)) for p in sorted(due)]
        return [(project, budget.ref) for project, budget in found if budget is not None]

    def _budget(self, project_id: str) -> Budget | None:
        found = self._contracts.view.budget(project_id)
        return found.document if found is not None else None

    async def reserve(
        self,
        conn: asyncpg.Connection,
        plan: StepPlan,
        request: StepRequest,
        wanted: int,
        now: dt.datetime,
    ) -> BudgetHold | Decision:
        """Reserve a remote step, or the decision failing the run when no budget allows it."""
        run = plan.run
        budget = self._budget(run.project_id)
        if budget is None:
            return BudgetHold(wanted, None, None)
        if unpriced(budget, request.model, run.agent_id):
            return _unpriced(plan, request.model)
        price = price_for(budget, request.model)
        scopes = scopes_for(budget, run.project_id, run.agent_id, run.run_id, now)
        prompt = prompt_tokens(request)
        held = await budget_ledger.held(conn, run.run_id, plan.number)
        if held is not None and held.state == "reserved":  # a retried step: it stands
            return BudgetHold(held.max_tokens, held, price)
        if held is not None:  # settled or released: it funds no further call
            reason = f"the reservation of step {plan.number} was {held.state} already"
            return fail(run, E_BUDGET_REFUSED.code, reason)
        left = await budget_ledger.remaining(conn, scopes)
        short = starved(prompt, price, left)
        if short:
            await self._trip(conn, run.project_id, [s for s in scopes if s.key in short], now)
            return fail(run, E_BUDGET_REFUSED.code, f"scope {short[0]} cannot fund a step")
        max_tokens = cap_max_tokens(wanted, prompt, price, left)
        need = estimate(price, prompt, max_tokens)
        reserved = await budget_ledger.reserve(
            conn,
            run.project_id,
            run.run_id,
            plan.number,
            scopes,
            need.tokens,
            need.cost,
            max_tokens,
        )
        if isinstance(reserved, Refused):
            return _refused(plan, reserved)
        return BudgetHold(max_tokens, reserved, price)

    async def charge(
        self, conn: asyncpg.Connection, plan: StepPlan, output: StepOutput, now: dt.datetime
    ) -> StepReport | Decision:
        """Charge a local step's known usage as settled, in one statement."""
        run = plan.run
        usage = Usage(output.model, output.tokens_in, output.tokens_out)
        budget = self._budget(run.project_id)
        if budget is None:
            return report(plan, usage, Decimal(0), 0, 0)
        if unpriced(budget, output.model, run.agent_id):
            return _unpriced(plan, output.model)
        price = price_for(budget, output.model)
        scopes = scopes_for(budget, run.project_id, run.agent_id, run.run_id, now)
        tokens, cost = output.tokens_in + output.tokens_out, step_cost(price, *_io(usage))
        charged = await budget_charges.charge(conn, run.project_id, scopes, tokens, cost)
        if isinstance(charged, Refused):
            refusing = [scope for scope in scopes if scope.key == charged.scope_key]
            await self._trip(conn, run.project_id, refusing, now)
            return _refused(plan, charged)
        if kill_due(budget, charged.tenant_spent, scopes):
            _note_crossing(run.project_id)
        return report(plan, usage, cost, 0, tokens)

    async def _trip(
        self,
        conn: asyncpg.Connection,
        project_id: str,
        scopes: Sequence[ScopeLimit],
        now: dt.datetime,
    ) -> None:
        """Mark scopes that cannot fund a step; each one tripped now is announced once."""
        revision = self._contracts.view.budget(project_id)
        for scope in scopes:
            if await budget_ledger.trip(conn, scope) and revision is not None:
                period_key = scope.parts[4]
                tripped = ScopeTripped(
                    scope_key=scope.key,
                    scope=scope.scope,
                    period=scope.period,
                    period_key=period_key,
                    budget_revision=revision.ref,
                )
                await kill_switch.append_budget_event(
                    conn,
                    tripped,
                    project_id=project_id,
                    actor=RUNTIME_ACTOR,
                    now=now,
                    service=self._service,
                )

    async def settle(
        self,
        conn: asyncpg.Connection,
        plan: StepPlan,
        hold: BudgetHold,
        usage: Usage,
        latency_ms: int,
        now: dt.datetime,
    ) -> StepReport:
        """Settle a remote step's reservation with what it used (capped at the reservation)."""
        cost = step_cost(hold.price, *_io(usage))
        reserved_tokens = 0
        if hold.reservation is not None:
            reserved_tokens = hold.reservation.tokens
            settled = await budget_ledger.settle(
                conn, hold.reservation, usage.tokens_in + usage.tokens_out, cost
            )
            cost = min(cost, hold.reservation.cost) if settled.recorded else cost
            budget = self._budget(plan.run.project_id)
            if budget is not None and settled.recorded:
                run = plan.run
                scopes = as_reserved(
                    scopes_for(budget, run.project_id, run.agent_id, run.run_id, now),
                    hold.reservation.scope_keys,
                )
                if kill_due(budget, settled.tenant_spent, scopes):
                    _note_crossing(run.project_id)
        return report(plan, usage, cost, latency_ms, reserved_tokens)


_CROSSED: ContextVar[set[str] | None] = ContextVar("budget_crossed", default=None)


def _note_crossing(project_id: str) -> None:
    """This step's charge left the tenant at or past its kill share."""
    noted = _CROSSED.get()
    if noted is not None:
        noted.add(project_id)


def report(
    plan: StepPlan, usage: Usage, cost: Decimal, latency_ms: int, reserved_tokens: int
) -> StepReport:
    """The step's report, as its decision's event carries it."""
    return StepReport(
        number=plan.number,
        model=usage.model,
        tokens_in=usage.tokens_in,
        tokens_out=usage.tokens_out,
        cost=format(cost, "f"),
        latency_ms=latency_ms,
        schema_retries=usage.schema_retries,
        reserved_tokens=reserved_tokens,
    )


def _io(usage: Usage) -> tuple[int, int]:
    return usage.tokens_in, usage.tokens_out


def _unpriced(plan: StepPlan, model: str) -> Decision:
    reason = f"model {model!r} has no price in the project's budget, which limits money"
    return fail(plan.run, E_BUDGET_UNPRICED.code, reason)


def _refused(plan: StepPlan, refused: Refused) -> Decision:
    if refused.reason == "killed":
        killed = RunCancelled(
            code=E_BUDGET_KILLED.code,
            reason="the tenant's kill switch is tripped: the run spends nothing more",
            actor=RUNTIME_ACTOR,
        )
        return Decision(plan.run.moved("cancelled"), (killed,))
    reason = f"scope {refused.scope_key} cannot fund the step ({refused.reason})"
    return fail(plan.run, E_BUDGET_REFUSED.code, reason)
