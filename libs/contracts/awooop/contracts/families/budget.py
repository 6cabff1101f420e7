"""The ``budget`` contract family: a project's spending limits, model prices and kill switch.

Limits apply per tenant, per agent or per run, over a run or a UTC day or month, in
tokens, in money or both. Money is a decimal string, never a JSON number, so nothing
rounds on its way in; :func:`amount` reads one as an exact :class:`~decimal.Decimal`.

The JSON Schema ``schemas/budget.schema.json`` is the source of the family; :class:`Budget`
accepts exactly the documents the schema accepts (the parity tests hold the two
together). Rules JSON Schema cannot state are checked by the runtime, the only budget
authority, when it folds the active budget: each model is priced once, each
``(scope, agent_id, period)`` is limited once, every agent named exists, and a money
limit needs a price for every model its agents use.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    BeforeValidator,
    Field,
    model_validator,
)

from awooop.contracts.families.fields import (
    AgentId,
    FrozenDocument,
    SchemaVersion1,
    not_boolean,
    not_null,
    not_text,
)

FAMILY = "budget"

DECIMAL_PATTERN = r"^(0|[1-9][0-9]{0,11})(\.[0-9]{1,8})?$"
"""A non-negative amount: up to 12 integer digits, up to 8 decimal places."""

SHARE_PATTERN = r"^(0(\.[0-9]{1,6})?|1(\.0{1,6})?)$"
"""A share between 0 and 1 inclusive, up to 6 decimal places."""

CURRENCY_PATTERN = r"^[A-Z]{3}$"

MAX_TOKENS = 9_007_199_254_740_991
"""The largest token limit, 2**53 - 1: the largest integer RFC 8785 canonical JSON holds
exactly, so every valid budget can be signed."""


DecimalString = Annotated[str, Field(pattern=DECIMAL_PATTERN)]
Tokens = Annotated[
    int | None,
    BeforeValidator(not_null),
    BeforeValidator(not_text),
    BeforeValidator(not_boolean),
    Field(ge=1, le=MAX_TOKENS),
]
Cost = Annotated[DecimalString | None, BeforeValidator(not_null)]


def amount(text: str) -> Decimal:
    """The exact value of a decimal string of this family."""
    return Decimal(text)


class _Limit(FrozenDocument):
    period: Literal["run", "daily", "monthly"]
    max_tokens: Tokens = None
    max_cost: Cost = None

    @model_validator(mode="after")
    def _tokens_or_cost(self) -> _Limit:
        if self.max_tokens is None and self.max_cost is None:
            msg = "a limit needs max_tokens, max_cost or both"
            raise ValueError(msg)
        return self

    @property
    def max_cost_amount(self) -> Decimal | None:
        """``max_cost`` as an exact decimal, or ``None`` when money is not limited."""
        return None if self.max_cost is None else amount(self.max_cost)


class TenantLimit(_Limit):
    """Every run of the project together; the kill switch watches this one."""

    scope: Literal["tenant"]


class AgentLimit(_Limit):
    """Every run of one agent together."""

    scope: Literal["agent"]
    agent_id: AgentId


class RunLimit(_Limit):
    """Each run on its own: the period is the run."""

    scope: Literal["run"]
    period: Literal["run"]


Limit = Annotated[TenantLimit | AgentLimit | RunLimit, Field(discriminator="scope")]


class Price(FrozenDocument):
    """What one model costs per million tokens, in the budget's currency."""

    model: Annotated[str, Field(min_length=1)]
    input_per_million: DecimalString
    output_per_million: DecimalString

    @property
    def input_rate(self) -> Decimal:
        """``input_per_million`` as an exact decimal."""
        return amount(self.input_per_million)

    @property
    def output_rate(self) -> Decimal:
        """``output_per_million`` as an exact decimal."""
        return amount(self.output_per_million)


class Budget(FrozenDocument):
    """A ``budget`` document (schema version 1)."""

    family: Literal["budget"]
    schema_version: SchemaVersion1
    limits: Annotated[tuple[Limit, ...], Field(min_length=1)]
    prices: tuple[Price, ...]
    currency: Annotated[str, Field(pattern=CURRENCY_PATTERN)]
    kill_switch_at: Annotated[str, Field(pattern=SHARE_PATTERN)]

    @property
    def kill_switch_share(self) -> Decimal:
        """The share of the tenant budget at which every active run is cancelled."""
        return amount(self.kill_switch_at)
