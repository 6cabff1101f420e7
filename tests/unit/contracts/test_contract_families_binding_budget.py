"""The ``channel_binding`` and ``budget`` contract families: rules worth stating on their own.

Fixture parity (schema, model and folder agree) is ``test_contract_parity.py``'s job.
Here: a binding holds references where secrets belong, money stays exact, the scope
rules of a limit, and schema and model agreeing on generated near-valid documents.

Generated strings never end in a newline: Python's ``jsonschema`` matches ``pattern``
with ``re.search``, whose ``$`` also matches before a final newline, while pydantic's
``$`` (like ECMA 262's, which JSON Schema specifies) matches only at the very end. The
model refuses ``"env:TOKEN\\n"``, as the schema read by its specification does.
"""

from __future__ import annotations

import json
from decimal import Decimal
from importlib.resources import files
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from pydantic import BaseModel, ValidationError

from awooop.contracts.families.budget import (
    CURRENCY_PATTERN,
    DECIMAL_PATTERN,
    MAX_TOKENS,
    SHARE_PATTERN,
    AgentLimit,
    Budget,
    RunLimit,
    TenantLimit,
    amount,
)
from awooop.contracts.families.channel_binding import (
    SLACK_APP_ID_PATTERN,
    SLACK_CHANNEL_ID_PATTERN,
    SLACK_TEAM_ID_PATTERN,
    TELEGRAM_BOT_ID_PATTERN,
    TELEGRAM_CHAT_ID_PATTERN,
    ChannelBinding,
    SlackChannel,
    TelegramChannel,
)
from awooop.contracts.families.fields import AGENT_ID_PATTERN, CREDENTIAL_REFERENCE_PATTERN

pytestmark = pytest.mark.unit

_FAMILIES = files("awooop.contracts.families")
MODELS: dict[str, type[BaseModel]] = {"channel_binding": ChannelBinding, "budget": Budget}


def _schema(family: str) -> dict[str, Any]:
    text = _FAMILIES.joinpath(f"schemas/{family}.schema.json").read_text(encoding="utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


VALIDATORS = {
    family: Draft202012Validator(
        _schema(family), format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    for family in MODELS
}


def _verdicts(family: str, document: Any) -> tuple[bool, bool]:
    """(schema accepts, model accepts) for one document, both read from the same JSON."""
    raw = json.dumps(document)
    by_schema = VALIDATORS[family].is_valid(json.loads(raw))
    try:
        MODELS[family].model_validate_json(raw)
    except ValidationError:
        return by_schema, False
    return by_schema, True


def _telegram(**channel: Any) -> dict[str, Any]:
    return {
        "family": "channel_binding",
        "schema_version": 1,
        "agent_id": "helpdesk",
        "channel": {
            "kind": "telegram",
            "bot_id": "7",
            "chat_ids": ["-1001234567890"],
            "bot_token": "env:TELEGRAM_BOT_TOKEN",
            "webhook_secret": "env:TELEGRAM_WEBHOOK_SECRET",
        }
        | channel,
    }


def _slack(**channel: Any) -> dict[str, Any]:
    return {
        "family": "channel_binding",
        "schema_version": 1,
        "agent_id": "triage",
        "channel": {
            "kind": "slack",
            "team_id": "T0123ABCD",
            "app_id": "A0456EFGH",
            "channel_ids": ["C0789IJKL"],
            "bot_token": "env:SLACK_BOT_TOKEN",
            "signing_secret": "env:SLACK_SIGNING_SECRET",
        }
        | channel,
    }


def _budget(*limits: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "family": "budget",
        "schema_version": 1,
        "limits": list(limits) or [{"scope": "tenant", "period": "monthly", "max_cost": "100"}],
        "prices": [
            {"model": "gpt-4o-mini", "input_per_million": "0.15", "output_per_million": "0.6"}
        ],
        "currency": "USD",
        "kill_switch_at": "0.9",
    } | fields


def _patterns(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["pattern"]} if isinstance(node.get("pattern"), str) else set()
        return found.union(*(_patterns(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_patterns(value) for value in node))
    return set()


def test_schemas_use_the_models_pattern_strings() -> None:
    assert _patterns(_schema("channel_binding")) == {
        AGENT_ID_PATTERN,
        CREDENTIAL_REFERENCE_PATTERN,
        TELEGRAM_BOT_ID_PATTERN,
        TELEGRAM_CHAT_ID_PATTERN,
        SLACK_TEAM_ID_PATTERN,
        SLACK_APP_ID_PATTERN,
        SLACK_CHANNEL_ID_PATTERN,
    }
    budget = _schema("budget")
    assert _patterns(budget) == {AGENT_ID_PATTERN, DECIMAL_PATTERN, SHARE_PATTERN, CURRENCY_PATTERN}
    assert budget["$defs"]["limit"]["properties"]["max_tokens"]["maximum"] == MAX_TOKENS


@pytest.mark.parametrize(
    "document",
    [
        _telegram(bot_token="123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"),
        _telegram(webhook_secret="s3cr3t-webhook-token"),
        _slack(bot_token="xoxb-1234-5678-abcdefghijkl"),
        _slack(bot_token="xapp-1-A0456EFGH-1234-abcdef"),
        _slack(signing_secret="8f742231b10e8888abcd99yyyzzz85a5"),
        _slack(signing_secret="env:"),
    ],
    ids=["telegram_token", "webhook_secret", "xoxb", "xapp", "signing_secret", "empty_env"],
)
def test_binding_never_takes_a_secret_value_where_a_reference_belongs(
    document: dict[str, Any],
) -> None:
    assert _verdicts("channel_binding", document) == (False, False)


@pytest.mark.parametrize(
    "reference",
    ["env:SLACK_BOT_TOKEN", "file:slack.bot-token", "k8s:slack-app/bot-token", "k8s:s/K.e_y-1"],
)
def test_binding_takes_every_reference_form(reference: str) -> None:
    assert _verdicts("channel_binding", _slack(bot_token=reference)) == (True, True)


@pytest.mark.parametrize(
    "reference",
    ["file:../acme/token", "file:/etc/passwd", "file:.env", "k8s:../token", "k8s:a/b/c", "env:x"],
)
def test_binding_reference_cannot_leave_the_projects_place(reference: str) -> None:
    assert _verdicts("channel_binding", _telegram(bot_token=reference)) == (False, False)


def test_reference_with_a_trailing_newline_is_refused() -> None:
    # A token file pasted with its final newline; see the module docstring for the schema.
    with pytest.raises(ValidationError):
        ChannelBinding.model_validate(_telegram(bot_token="env:TELEGRAM_BOT_TOKEN\n"))


def test_kind_picks_the_channel() -> None:
    telegram = ChannelBinding.model_validate(_telegram(chat_ids=[]))
    slack = ChannelBinding.model_validate(_slack())
    assert isinstance(telegram.channel, TelegramChannel)
    assert telegram.channel.chat_ids == ()
    assert isinstance(slack.channel, SlackChannel)
    assert slack.channel.channel_ids == ("C0789IJKL",)


@pytest.mark.parametrize("family", MODELS)
def test_valid_fixtures_round_trip_to_json_the_schema_accepts(family: str) -> None:
    folder = _FAMILIES.joinpath(f"fixtures/{family}/valid")
    fixtures = [entry for entry in folder.iterdir() if entry.name.endswith(".json")]
    assert len(fixtures) >= 2
    for fixture in fixtures:
        raw = fixture.read_bytes()
        model = MODELS[family].model_validate_json(raw)
        dumped = model.model_dump(mode="json")
        assert dumped == json.loads(raw), fixture.name
        assert VALIDATORS[family].is_valid(dumped), fixture.name
        assert MODELS[family].model_validate(dumped) == model


def test_money_amounts_are_exact_decimals() -> None:
    budget = Budget.model_validate(
        _budget(
            {"scope": "tenant", "period": "monthly", "max_cost": "999999999999.99999999"},
            prices=[{"model": "m", "input_per_million": "0.1", "output_per_million": "0.2"}],
        )
    )
    price = budget.prices[0]
    assert price.input_rate + price.output_rate == Decimal("0.3")
    limit = budget.limits[0].max_cost_amount
    assert limit == Decimal("999999999999.99999999")
    assert str(limit) == "999999999999.99999999"  # a float would have made it 1000000000000.0
    assert budget.model_dump(mode="json")["limits"][0]["max_cost"] == "999999999999.99999999"
    assert amount("3.00000000") == Decimal(3)


@pytest.mark.parametrize(
    "document",
    [
        _budget({"scope": "tenant", "period": "daily", "max_cost": 10.5}),
        _budget(prices=[{"model": "m", "input_per_million": 0.15, "output_per_million": "1"}]),
        _budget(kill_switch_at=1),
        _budget({"scope": "tenant", "period": "daily", "max_cost": "1e3"}),
    ],
    ids=["max_cost", "price", "kill_switch_at", "exponent"],
)
def test_money_is_never_a_json_number(document: dict[str, Any]) -> None:
    assert _verdicts("budget", document) == (False, False)


@pytest.mark.parametrize(
    ("share", "accepted"),
    [
        ("0", True),
        ("0.000001", True),
        ("0.95", True),
        ("1", True),
        ("1.000000", True),
        ("1.01", False),
        ("1.0000001", False),
        ("0.1234567", False),
        ("2", False),
        (".5", False),
        ("-0", False),
    ],
)
def test_kill_switch_is_a_share_from_0_to_1(share: str, accepted: bool) -> None:
    assert _verdicts("budget", _budget(kill_switch_at=share)) == (accepted, accepted)
    if accepted:
        assert Decimal(0) <= Budget.model_validate(_budget(kill_switch_at=share)).kill_switch_share
        assert Budget.model_validate(_budget(kill_switch_at=share)).kill_switch_share <= 1


@pytest.mark.parametrize(
    ("limit", "kind"),
    [
        ({"scope": "tenant", "period": "daily"}, TenantLimit),
        ({"scope": "tenant", "period": "daily", "agent_id": "helpdesk"}, None),
        ({"scope": "agent", "period": "daily", "agent_id": "helpdesk"}, AgentLimit),
        ({"scope": "agent", "period": "run", "agent_id": "helpdesk"}, AgentLimit),
        ({"scope": "agent", "period": "daily"}, None),
        ({"scope": "run", "period": "run"}, RunLimit),
        ({"scope": "run", "period": "run", "agent_id": "helpdesk"}, None),
        ({"scope": "run", "period": "daily"}, None),
        ({"scope": "run", "period": "monthly"}, None),
    ],
)
def test_scope_decides_agent_id_and_period(limit: dict[str, Any], kind: type | None) -> None:
    document = _budget(limit | {"max_tokens": 1000})
    assert _verdicts("budget", document) == (kind is not None, kind is not None)
    if kind is not None:
        assert type(Budget.model_validate(document).limits[0]) is kind


@pytest.mark.parametrize(
    ("amounts", "accepted"),
    [
        ({"max_tokens": 1}, True),
        ({"max_cost": "0"}, True),
        ({"max_tokens": 1, "max_cost": "1"}, True),
        ({}, False),
        ({"max_tokens": None, "max_cost": "1"}, False),
        ({"max_tokens": 1, "max_cost": None}, False),
    ],
)
def test_limit_needs_tokens_or_cost_and_null_is_not_absent(
    amounts: dict[str, Any], accepted: bool
) -> None:
    document = _budget({"scope": "tenant", "period": "daily"} | amounts)
    assert _verdicts("budget", document) == (accepted, accepted)
    if accepted:
        dumped = Budget.model_validate(document).model_dump(mode="json")
        assert dumped["limits"][0] == {"scope": "tenant", "period": "daily"} | amounts


@pytest.mark.parametrize(
    ("tokens", "accepted"),
    [(1.0, True), (MAX_TOKENS, True), (MAX_TOKENS + 1, False), (1e19, False), ("5", False)],
)
def test_max_tokens_is_a_json_integer_held_exactly(tokens: Any, accepted: bool) -> None:
    document = _budget({"scope": "run", "period": "run", "max_tokens": tokens})
    assert _verdicts("budget", document) == (accepted, accepted)


def test_repeated_prices_and_limits_are_left_to_the_runtime() -> None:
    price = {"model": "m", "input_per_million": "1", "output_per_million": "2"}
    limit = {"scope": "tenant", "period": "daily", "max_tokens": 10}
    document = _budget(
        limit, limit | {"max_tokens": 20}, prices=[price, price | {"input_per_million": "3"}]
    )
    assert _verdicts("budget", document) == (True, True)


# Generated documents: a valid one with one or two of its parts changed, removed or added,
# the new values sometimes valid, sometimes broken.

_DROP = object()
"""A generated value meaning: leave the property out."""


def _changes(values: dict[str, list[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """No change, or one or two of ``values``' keys, each with one of its values or ``_DROP``."""
    keys = st.lists(st.sampled_from(sorted(values)), min_size=1, max_size=2, unique=True)
    return st.just({}) | keys.flatmap(
        lambda chosen: st.fixed_dictionaries(
            {key: st.sampled_from([*values[key], _DROP]) for key in chosen}
        )
    )


def _changed(document: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = document | changes
    return {key: value for key, value in merged.items() if value is not _DROP}


_REFERENCES = ["env:TOKEN", "file:token", "k8s:app/token", "xoxb-1-2-abc", "env:", "file:../x", 1]

_BINDING_CHANGES: dict[str, list[Any]] = {
    "family": ["channel_binding", "budget", 1],
    "schema_version": [1, 1.0, 2, True, "1", None],
    "agent_id": ["helpdesk", "a" * 64, "a" * 65, "Helpdesk", "", 1],
    "channel": [[], None, {}],
    "project_id": ["acme"],
}
_CHANNEL_CHANGES: dict[str, list[Any]] = {
    "kind": ["telegram", "slack", "discord", None],
    "bot_id": ["12345678901234567890", "1" * 21, "0", "07", "-7", 7],
    "chat_ids": [[], ["-42", "42"], ["-42", "-42"], ["-042"], ["0"], [42], "-42"],
    "team_id": ["T01", "T" + "A" * 31, "T" + "A" * 32, "T0", "t01"],
    "app_id": ["A01", "B01", "a01", "A0"],
    "channel_ids": [[], ["C01", "D01", "G01"], ["C01", "C01"], ["U01"], ["c01"], "C01"],
    "bot_token": _REFERENCES,
    "webhook_secret": _REFERENCES,
    "signing_secret": _REFERENCES,
}


@given(
    base=st.sampled_from([_telegram(), _slack(channel_ids=[])]),
    top=_changes(_BINDING_CHANGES),
    channel=_changes(_CHANNEL_CHANGES),
)
def test_binding_schema_and_model_agree_on_generated_documents(
    base: dict[str, Any], top: dict[str, Any], channel: dict[str, Any]
) -> None:
    document = _changed(base | {"channel": _changed(base["channel"], channel)}, top)
    by_schema, by_model = _verdicts("channel_binding", document)
    assert by_schema == by_model


_AMOUNTS = ["0", "0.5", "999999999999.99999999", "10.", "010", "-1", "1e3", "", 0.5, 1, None]

_BUDGET_CHANGES: dict[str, list[Any]] = {
    "family": ["budget", "channel_binding", None],
    "schema_version": [1, 1.0, 2, True, "1"],
    "limits": [[], {}, [{}]],
    "prices": [[], {}, [{}]],
    "currency": ["EUR", "usd", "EURO", "", 840],
    "kill_switch_at": ["0", "1.000000", "0.95", "1.01", ".5", 0.9],
    "project_id": ["acme"],
}
_LIMIT_CHANGES: dict[str, list[Any]] = {
    "scope": ["tenant", "agent", "run", "project", None],
    "agent_id": ["helpdesk", "Helpdesk", None],
    "period": ["run", "daily", "monthly", "weekly", None],
    "max_tokens": [1, 1.0, 0, -1, 1.5, True, "1000", None, MAX_TOKENS, MAX_TOKENS + 1, 1e19],
    "max_cost": _AMOUNTS,
    "max_requests": [10],
}
_PRICE_CHANGES: dict[str, list[Any]] = {
    "model": ["gpt-4o", " ", "", 1, None],
    "input_per_million": _AMOUNTS,
    "output_per_million": _AMOUNTS,
    "currency": ["USD"],
}
_LIMITS = [
    {"scope": "tenant", "period": "monthly", "max_cost": "100"},
    {"scope": "agent", "agent_id": "helpdesk", "period": "daily", "max_tokens": 10},
    {"scope": "run", "period": "run", "max_tokens": 10, "max_cost": "1.5"},
]
_PRICE = {"model": "m", "input_per_million": "1", "output_per_million": "2"}


@given(
    base_limit=st.sampled_from(_LIMITS),
    top=_changes(_BUDGET_CHANGES),
    limit=_changes(_LIMIT_CHANGES),
    price=_changes(_PRICE_CHANGES),
)
def test_budget_schema_and_model_agree_on_generated_documents(
    base_limit: dict[str, Any], top: dict[str, Any], limit: dict[str, Any], price: dict[str, Any]
) -> None:
    base = _budget(_changed(base_limit, limit), prices=[_PRICE, _changed(_PRICE, price)])
    by_schema, by_model = _verdicts("budget", _changed(base, top))
    assert by_schema == by_model


def test_the_largest_token_limit_has_a_canonical_form_so_every_budget_can_be_signed() -> None:
    from awooop.security.canonical_json import NotCanonicalizable, canonical_json

    assert canonical_json({"max_tokens": MAX_TOKENS}) == b'{"max_tokens":9007199254740991}'
    with pytest.raises(NotCanonicalizable):
        canonical_json({"max_tokens": MAX_TOKENS + 1})
