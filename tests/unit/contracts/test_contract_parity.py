"""Every contract family's JSON Schema, pydantic model and golden fixtures agree.

Parametrized over ``CONTRACT_FAMILIES``: a new family gets these checks by registering
itself with its schema and fixtures.
"""

from __future__ import annotations

import json
from importlib.resources.abc import Traversable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from awooop.contracts.families.registry import CONTRACT_FAMILIES, ContractFamily
from awooop.contracts.families.runtime_run_state import RUN_STATES, standard_document

pytestmark = pytest.mark.unit

FAMILIES = list(CONTRACT_FAMILIES.values())
FIXTURES = [
    pytest.param(family, kind, fixture, id=f"{family.name}/{kind}/{fixture.name}")
    for family in FAMILIES
    for kind in ("valid", "invalid")
    for fixture in family.fixtures(kind)
]


def _validator(family: ContractFamily) -> Draft202012Validator:
    return Draft202012Validator(family.schema(), format_checker=Draft202012Validator.FORMAT_CHECKER)


def _schema_accepts(family: ContractFamily, raw: bytes) -> bool:
    return _validator(family).is_valid(json.loads(raw))


def _model_accepts(family: ContractFamily, raw: bytes) -> bool:
    try:
        family.model.model_validate_json(raw)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_schema_is_a_valid_2020_12_schema(family: ContractFamily) -> None:
    schema = family.schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    assert schema["properties"]["family"] == {"const": family.name}


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_family_has_valid_and_invalid_fixtures(family: ContractFamily) -> None:
    assert family.fixtures("valid")
    assert len(family.fixtures("invalid")) >= 3


@pytest.mark.parametrize(("family", "kind", "fixture"), FIXTURES)
def test_schema_and_model_agree_on_every_fixture(
    family: ContractFamily, kind: str, fixture: Traversable
) -> None:
    raw = fixture.read_bytes()
    by_schema = _schema_accepts(family, raw)
    by_model = _model_accepts(family, raw)
    assert by_schema == by_model, f"schema says {by_schema}, model says {by_model}"
    assert by_schema == (kind == "valid")


def _state() -> st.SearchStrategy[Any]:
    return st.sampled_from([*RUN_STATES, "paused", "", 0, None])


def _near_run_state_documents() -> st.SearchStrategy[dict[str, Any]]:
    """Documents close to the built-in one, each part sometimes broken."""
    transition = st.fixed_dictionaries(
        {"from": _state(), "to": _state()},
        optional={"guard": st.just("x"), "from_": _state()},
    )
    state_list = st.lists(_state(), max_size=9)
    return st.fixed_dictionaries(
        {},
        optional={
            "family": st.sampled_from(["runtime_run_state", "runtime_run_states", 1]),
            "schema_version": st.sampled_from([1, 1.0, 2, 0, True, "1", None]),
            "states": st.one_of(state_list, st.just("pending")),
            "initial": _state(),
            "terminal": state_list,
            "transitions": st.lists(transition, max_size=4),
            "owner": st.just("runtime"),
        },
    )


@given(document=_near_run_state_documents(), base=st.booleans())
def test_run_state_schema_and_model_agree_on_generated_documents(
    document: dict[str, Any], base: bool
) -> None:
    family = CONTRACT_FAMILIES["runtime_run_state"]
    if base:
        document = standard_document() | document
    raw = json.dumps(document).encode()
    assert _schema_accepts(family, raw) == _model_accepts(family, raw)
