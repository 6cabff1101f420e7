"""Budget arithmetic: the scopes a step debits, exact costs, how far `max_tokens` may go,
unpriced models and the kill switch's threshold."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from awooop.contracts.families.budget import Budget, Price
from awooop.runtime.domain.budget import (
    MIN_USEFUL_OUTPUT_TOKENS,
    Remaining,
    ScopeLimit,
    Spent,
    as_reserved,
    cap_max_tokens,
    count_tokens,
    estimate,
    kill_due,
    price_for,
    scopes_for,
    starved,
    step_cost,
    unpriced,
)

pytestmark = pytest.mark.unit

RUN = uuid.UUID("0190f0e0-0000-7000-8000-000000000001")
NOW = dt.datetime(2026, 3, 31, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-2)))
"""In UTC this is already April 1st."""


def _budget(*limits: dict[str, Any], prices: tuple[dict[str, str], ...] = ()) -> Budget:
    return Budget.model_validate(
        {
            "family": "budget",
            "schema_version": 1,
            "limits": list(limits),
            "prices": list(prices),
            "currency": "USD",
            "kill_switch_at": "0.9",
        }
    )


DEMO = _budget(
    {"scope": "tenant", "period": "monthly", "max_cost": "100"},
    {"scope": "tenant", "period": "daily", "max_cost": "5"},
    {"scope": "agent", "agent_id": "demo-agent", "period": "daily", "max_tokens": 2_000_000},
    {"scope": "agent", "agent_id": "other-agent", "period": "daily", "max_tokens": 10},
    {"scope": "run", "period": "run", "max_tokens": 50_000},
    prices=({"model": "m", "input_per_million": "3", "output_per_million": "15"},),
)
PRICE = Price(model="m", input_per_million="3", output_per_million="15")


def test_scopes_are_keyed_by_subject_and_utc_period_in_key_order() -> None:
    scopes = scopes_for(DEMO, "acme", "demo-agent", RUN, NOW)
    assert [s.key for s in scopes] == [
        "acme|agent|demo-agent|daily|2026-04-01",
        f"acme|run|{RUN}|run|",
        "acme|tenant|acme|daily|2026-04-01",
        "acme|tenant|acme|monthly|2026-04",
    ]
    assert [s.key for s in scopes] == sorted(s.key for s in scopes)
    assert scopes[0] == ScopeLimit(
        "acme|agent|demo-agent|daily|2026-04-01", "agent", "daily", 2_000_000, None
    )
    assert scopes[3].max_cost == Decimal(100)
    assert scopes[1].parts == ("acme", "run", str(RUN), "run", "")


def test_a_repeated_limit_keeps_the_tighter_amounts() -> None:
    budget = _budget(
        {"scope": "tenant", "period": "daily", "max_tokens": 100, "max_cost": "9"},
        {"scope": "tenant", "period": "daily", "max_tokens": 500, "max_cost": "2"},
    )
    (scope,) = scopes_for(budget, "acme", "a", RUN, NOW)
    assert (scope.max_tokens, scope.max_cost) == (100, Decimal(2))


def test_a_naive_clock_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        scopes_for(DEMO, "acme", "demo-agent", RUN, dt.datetime(2026, 1, 1))


def test_costs_are_exact_decimals() -> None:
    price = Price(model="m", input_per_million="0.1", output_per_million="0.00000003")
    assert step_cost(price, 3, 7) == Decimal("0.00000030000021")
    assert step_cost(None, 10**9, 10**9) == 0
    # 16-digit token counts times 20-digit rates would round in a 28-digit context.
    big = Price(model="m", input_per_million="999999999999.99999999", output_per_million="0")
    tokens = 9_007_199_254_740_991
    assert (
        Fraction(step_cost(big, tokens, 0))
        == Fraction(tokens) * Fraction("999999999999.99999999") / 10**6
    )
    assert estimate(PRICE, 1_000, 2_000) == (3_000, Decimal("0.033"))
    assert price_for(DEMO, "m") == PRICE
    assert price_for(DEMO, "other") is None


def test_token_counts_are_conservative() -> None:
    assert count_tokens("") == 1
    assert count_tokens("abc") == 1
    assert count_tokens("abcd") == 2
    assert count_tokens("é" * 3) == 2  # six UTF-8 bytes


def test_tokens_only_caps_at_what_is_left_after_the_prompt() -> None:
    left = {"a": Remaining(1_000, None)}
    assert cap_max_tokens(4_096, 300, None, left) == 700
    assert cap_max_tokens(500, 300, None, left) == 500


def test_money_only_caps_at_what_the_output_rate_allows() -> None:
    # 1000 prompt tokens cost 0.003; 0.027 left buys 1800 output tokens at 15 per million.
    left = {"a": Remaining(None, Decimal("0.03"))}
    assert cap_max_tokens(10_000, 1_000, PRICE, left) == 1_800
    # One smallest unit less and the last token no longer fits.
    left = {"a": Remaining(None, Decimal("0.02999999"))}
    assert cap_max_tokens(10_000, 1_000, PRICE, left) == 1_799
    free_output = Price(model="m", input_per_million="1", output_per_million="0")
    assert cap_max_tokens(10_000, 1_000, free_output, left) == 10_000


def test_both_limits_and_the_tightest_scope_win() -> None:
    left = {
        "a": Remaining(5_000, Decimal("1")),
        "b": Remaining(1_200, None),  # 200 after the prompt
        "c": Remaining(None, Decimal("0.0045")),  # 0.0015 after the prompt: 100 tokens
    }
    assert cap_max_tokens(4_096, 1_000, PRICE, left) == 100
    del left["c"]
    assert cap_max_tokens(4_096, 1_000, PRICE, left) == 200
    assert cap_max_tokens(4_096, 1_000, PRICE, {}) == 4_096


def test_nothing_is_fundable_when_a_scope_is_broke() -> None:
    assert cap_max_tokens(4_096, 1_000, PRICE, {"a": Remaining(999, None)}) == 0
    assert cap_max_tokens(4_096, 1_000, PRICE, {"a": Remaining(None, Decimal("0.002"))}) == 0
    assert cap_max_tokens(4_096, 10, None, {"a": Remaining(None, Decimal(5))}) == 0
    assert cap_max_tokens(4_096, 1_000, PRICE, {"a": Remaining(1_000, None)}) == 0


def test_scopes_that_cannot_fund_a_useful_step_are_starved() -> None:
    left = {
        "b": Remaining(1_000 + MIN_USEFUL_OUTPUT_TOKENS - 1, None),
        "a": Remaining(1_000 + MIN_USEFUL_OUTPUT_TOKENS, None),
        "c": Remaining(None, Decimal("0.001")),
    }
    assert starved(1_000, PRICE, left) == ("b", "c")


def test_a_money_limit_needs_a_price() -> None:
    assert unpriced(DEMO, "unknown")
    assert not unpriced(DEMO, "m")
    tokens_only = _budget({"scope": "tenant", "period": "daily", "max_tokens": 10})
    assert not unpriced(tokens_only, "unknown")
    other_agent = _budget(
        {"scope": "agent", "agent_id": "b", "period": "daily", "max_cost": "1"},
        {"scope": "tenant", "period": "daily", "max_tokens": 10},
    )
    assert not unpriced(other_agent, "unknown", agent_id="a")
    assert unpriced(other_agent, "unknown", agent_id="b")


def test_the_kill_switch_is_due_at_its_share_of_a_tenant_limit() -> None:
    scopes = scopes_for(DEMO, "acme", "demo-agent", RUN, NOW)
    daily = "acme|tenant|acme|daily|2026-04-01"
    agent = "acme|agent|demo-agent|daily|2026-04-01"
    assert not kill_due(DEMO, {daily: Spent(10**9, Decimal("4.49999999"))}, scopes)
    assert kill_due(DEMO, {daily: Spent(0, Decimal("4.5"))}, scopes)
    # Agent scopes never trip the tenant's kill switch, however much they settled.
    assert not kill_due(DEMO, {agent: Spent(2_000_000, Decimal(0))}, scopes)
    tokens = _budget({"scope": "tenant", "period": "run", "max_tokens": 1_000})
    run_scopes = scopes_for(tokens, "acme", "a", RUN, NOW)
    assert not kill_due(tokens, {run_scopes[0].key: Spent(899, Decimal(0))}, run_scopes)
    assert kill_due(tokens, {run_scopes[0].key: Spent(900, Decimal(0))}, run_scopes)


_money = st.decimals(min_value=0, max_value=1_000, places=8)
_remaining = st.builds(
    Remaining,
    st.none() | st.integers(min_value=0, max_value=10**7),
    st.none() | _money,
)


@given(
    wanted=st.integers(min_value=0, max_value=10**6),
    prompt=st.integers(min_value=1, max_value=10**5),
    rates=st.tuples(_money, _money),
    remaining=st.dictionaries(st.text(min_size=1, max_size=3), _remaining, max_size=4),
)
def test_a_capped_step_is_fundable_by_every_scope(
    wanted: int, prompt: int, rates: tuple[Decimal, Decimal], remaining: dict[str, Remaining]
) -> None:
    price = Price(model="m", input_per_million=f"{rates[0]:f}", output_per_million=f"{rates[1]:f}")
    cap = cap_max_tokens(wanted, prompt, price, remaining)
    assert 0 <= cap <= wanted
    if cap == 0:
        return
    tokens, cost = estimate(price, prompt, cap)
    for left in remaining.values():
        assert left.tokens is None or tokens <= left.tokens
        assert left.cost is None or cost <= left.cost
    # The cap is the largest: one token more overdraws some scope, unless `wanted` bound it.
    if cap < wanted:
        tokens, cost = estimate(price, prompt, cap + 1)
        assert any(
            (left.tokens is not None and tokens > left.tokens)
            or (left.cost is not None and cost > left.cost)
            for left in remaining.values()
        )


def test_a_settle_after_midnight_is_judged_by_the_rows_its_step_reserved() -> None:
    evening = dt.datetime(2026, 4, 1, 23, 59, 59, tzinfo=dt.UTC)
    reserved = scopes_for(DEMO, "acme", "demo-agent", RUN, evening)
    now = scopes_for(DEMO, "acme", "demo-agent", RUN, evening + dt.timedelta(seconds=2))
    daily = "acme|tenant|acme|daily|2026-04-01"
    assert daily in {scope.key for scope in reserved}
    assert daily not in {scope.key for scope in now}
    spent = {daily: Spent(0, Decimal("4.5"))}
    assert not kill_due(DEMO, spent, now)
    judged = as_reserved(now, [scope.key for scope in reserved])
    assert kill_due(DEMO, spent, judged)
    assert [(s.scope, s.max_tokens, s.max_cost) for s in judged] == [
        (s.scope, s.max_tokens, s.max_cost) for s in now
    ]
    # A scope the reservation did not debit keeps its own key.
    assert as_reserved(now, []) == list(now)
