"""Budget arithmetic: which ledger scopes a step debits, what it costs, how much it may ask.

Pure: the ledger itself lives in `adapters.budget_ledger`. Money is an exact `Decimal`
throughout, computed in a context wide enough that no product or quotient of budget
amounts rounds (amounts have at most 20 digits, token counts at most 16). A scope key,
`<project>|<scope>|<subject>|<period>|<period_key>`, never needs escaping: project ids,
agent ids and run ids cannot contain `|`. Keys sort by code point, the order in which
ledger rows are locked.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Literal, NamedTuple, TypeVar

from awooop.contracts.families.budget import Budget, Price
from awooop.runtime.domain.llm import StepRequest

Scope = Literal["tenant", "agent", "run"]
Period = Literal["run", "daily", "monthly"]

MIN_USEFUL_OUTPUT_TOKENS = 16
"""A scope that cannot fund the prompt plus this many output tokens is tripped."""

_Amount = TypeVar("_Amount", int, Decimal)
_MILLION = Decimal(1_000_000)
_EXACT = decimal.Context(prec=80, traps=[decimal.Inexact, decimal.InvalidOperation])


@dataclass(frozen=True)
class ScopeLimit:
    """One ledger row a step debits, with the limits the active budget sets on it."""

    key: str
    scope: Scope
    period: Period
    max_tokens: int | None
    max_cost: Decimal | None

    @property
    def parts(self) -> tuple[str, str, str, str, str]:
        """Project, scope, subject, period and period key, as spelled in the key."""
        project, scope, subject, period, period_key = self.key.split("|")
        return project, scope, subject, period, period_key


class Remaining(NamedTuple):
    """What a scope can still fund; `None` where the budget sets no such limit."""

    tokens: int | None
    cost: Decimal | None


class Spent(NamedTuple):
    """What a scope has settled (reservations not included)."""

    tokens: int
    cost: Decimal


class Estimate(NamedTuple):
    """The most a step can use: its prompt plus its `max_tokens` of output."""

    tokens: int
    cost: Decimal


def period_key(period: Period, now: dt.datetime) -> str:
    """`YYYY-MM-DD` (daily) or `YYYY-MM` (monthly) of `now` in UTC; `""` for a run.

    `ValueError` for a naive `now`: a local clock would move day boundaries."""
    if now.tzinfo is None:
        raise ValueError("a budget period needs an aware datetime")
    if period == "run":
        return ""
    return now.astimezone(dt.UTC).strftime("%Y-%m-%d" if period == "daily" else "%Y-%m")


def scopes_for(
    budget: Budget, project_id: str, agent_id: str, run_id: uuid.UUID, now: dt.datetime
) -> tuple[ScopeLimit, ...]:
    """The scopes a step of `run_id` (of `agent_id`) debits at `now`, in key order.

    Agent limits of other agents do not apply. A budget limits each (scope, agent, period)
    once; should a document repeat one, the tighter of each amount applies."""
    found: dict[str, ScopeLimit] = {}
    for limit in budget.limits:
        if limit.scope == "agent" and limit.agent_id != agent_id:
            continue
        subject = {"tenant": project_id, "agent": agent_id, "run": str(run_id)}[limit.scope]
        key = "|".join(
            (project_id, limit.scope, subject, limit.period, period_key(limit.period, now))
        )
        tokens, cost = limit.max_tokens, limit.max_cost_amount
        if (seen := found.get(key)) is not None:
            tokens, cost = _tighter(seen.max_tokens, tokens), _tighter(seen.max_cost, cost)
        found[key] = ScopeLimit(key, limit.scope, limit.period, tokens, cost)
    return tuple(found[key] for key in sorted(found))


def _tighter(a: _Amount | None, b: _Amount | None) -> _Amount | None:
    return b if a is None else a if b is None else min(a, b)


def price_for(budget: Budget, model: str) -> Price | None:
    """The budget's price of `model`, or `None` when it prices it not."""
    return next((price for price in budget.prices if price.model == model), None)


def step_cost(price: Price | None, tokens_in: int, tokens_out: int) -> Decimal:
    """The exact cost of a call; 0 for an unpriced model."""
    if price is None:
        return Decimal(0)
    spent = _EXACT.add(
        _EXACT.multiply(Decimal(tokens_in), price.input_rate),
        _EXACT.multiply(Decimal(tokens_out), price.output_rate),
    )
    return _EXACT.divide(spent, _MILLION)


def estimate(price: Price | None, prompt_tokens: int, max_tokens: int) -> Estimate:
    """What a step reserves: its prompt and all the output it may ask for."""
    return Estimate(prompt_tokens + max_tokens, step_cost(price, prompt_tokens, max_tokens))


def count_tokens(text: str) -> int:
    """A conservative prompt-token count before the call: ceil(UTF-8 bytes / 3), at least 1.

    Common tokenizers average about four bytes per token, so three over-reserves a little
    rather than under-reserving; settling records the provider's real count, capped at
    the reservation, so a scope can never be debited past what it agreed to fund."""
    return max(1, math.ceil(len(text.encode()) / 3))


def prompt_tokens(request: StepRequest) -> int:
    """What a request's input counts, by `count_tokens`: every message's text and tool
    call, and the tools offered (their names, descriptions and input schemas)."""
    counted = 0
    for message in request.messages:
        counted += count_tokens(message.content)
        if message.tool_call is not None:
            call = message.tool_call
            counted += count_tokens(json.dumps([call.tool, dict(call.arguments)], default=str))
    for tool in request.tools:
        spec = [tool.name, tool.description, dict(tool.input_schema)]
        counted += count_tokens(json.dumps(spec, default=str))
    return counted


def _fundable(prompt_tokens: int, price: Price | None, left: Remaining) -> int | None:
    """The most output tokens one scope can fund after the prompt (`None`: unlimited)."""
    caps: list[int] = []
    if left.tokens is not None:
        caps.append(left.tokens - prompt_tokens)
    if left.cost is not None:
        if price is None:
            return 0  # money is limited and the model has no price: nothing is fundable
        money = _EXACT.subtract(left.cost, step_cost(price, prompt_tokens, 0))
        if money < 0:
            return 0
        if price.output_rate > 0:
            caps.append(int(_EXACT.divide_int(_EXACT.multiply(money, _MILLION), price.output_rate)))
    return max(0, min(caps)) if caps else None


def cap_max_tokens(
    wanted: int, prompt_tokens: int, price: Price | None, remaining: Mapping[str, Remaining]
) -> int:
    """The largest `max_tokens` ≤ `wanted` every scope can still fund with the prompt; 0
    when some scope cannot fund the prompt itself."""
    caps = (_fundable(prompt_tokens, price, left) for left in remaining.values())
    return max(0, min([wanted, *(cap for cap in caps if cap is not None)]))


def starved(
    prompt_tokens: int, price: Price | None, remaining: Mapping[str, Remaining]
) -> tuple[str, ...]:
    """The scopes, in key order, that cannot fund the prompt plus
    `MIN_USEFUL_OUTPUT_TOKENS`: they are tripped."""
    short = []
    for key in sorted(remaining):
        cap = _fundable(prompt_tokens, price, remaining[key])
        if cap is not None and cap < MIN_USEFUL_OUTPUT_TOKENS:
            short.append(key)
    return tuple(short)


def unpriced(budget: Budget, model: str, agent_id: str | None = None) -> bool:
    """A money limit applies and `model` has no price. With `agent_id`, the agent limits
    of other agents do not count."""
    return price_for(budget, model) is None and any(
        limit.max_cost is not None
        and (agent_id is None or limit.scope != "agent" or limit.agent_id == agent_id)
        for limit in budget.limits
    )


def kill_due(budget: Budget, spent: Mapping[str, Spent], scopes: Iterable[ScopeLimit]) -> bool:
    """Some tenant scope settled `kill_switch_at` times its limit, in tokens or in money."""
    share = budget.kill_switch_share
    return any(
        _reached(used.tokens, scope.max_tokens, share) or _reached(used.cost, scope.max_cost, share)
        for scope in scopes
        if scope.scope == "tenant" and (used := spent.get(scope.key)) is not None
    )


def as_reserved(scopes: Iterable[ScopeLimit], keys: Iterable[str]) -> list[ScopeLimit]:
    """`scopes` under the keys a reservation debited (`keys`): each scope takes the key
    that names the same project, scope, subject and period, whatever its period key.
    A step that reserved before its day or month ended settles after it, on the rows of
    the period it reserved in; those are the rows its spend is judged by."""
    reserved = {key.rpartition("|")[0]: key for key in keys}
    return [
        replace(scope, key=reserved.get(scope.key.rpartition("|")[0], scope.key))
        for scope in scopes
    ]


def _reached(used: int | Decimal, limit: int | Decimal | None, share: Decimal) -> bool:
    return limit is not None and used >= _EXACT.multiply(share, Decimal(limit))
