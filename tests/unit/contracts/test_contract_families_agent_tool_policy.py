"""The ``agent``, ``tool`` and ``policy`` families: rules worth stating beyond fixture parity.

The parity tests check every golden fixture; these state what a reader of the families
relies on: the schemas and models share their patterns, a model dumps to a document its
schema accepts, no credential reference can leave the project's own place, and the rules
JSON Schema cannot state are left to the services by the model as well as the schema.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from awooop.contracts.events.payloads.fields import PLATFORM_SUBJECT_PATTERN
from awooop.contracts.families.agent import (
    Agent,
    CallToolStep,
    OpenAICompatibleProvider,
    ReplyStep,
    ScriptedProvider,
)
from awooop.contracts.families.fields import (
    AGENT_ID_PATTERN,
    CREDENTIAL_REFERENCE_PATTERN,
    HTTP_URL_PATTERN,
    TOOL_NAME_PATTERN,
)
from awooop.contracts.families.policy import APPROVER_ID_PATTERN, Policy
from awooop.contracts.families.registry import ContractFamily
from awooop.contracts.families.tool import (
    CREDENTIAL_NAME_PATTERN,
    PROVIDER_PATTERN,
    SHA256_PATTERN,
    TOOL_PART_PATTERN,
    StdioTransport,
    StreamableHttpTransport,
    Tool,
)

pytestmark = pytest.mark.unit

FAMILIES = {
    name: ContractFamily(
        name=name,
        schema_path=f"schemas/{name}.schema.json",
        model=model,
        fixtures_dir=f"fixtures/{name}",
    )
    for name, model in (("agent", Agent), ("tool", Tool), ("policy", Policy))
}

SINGLE_LINE_GUARD = "\n"
"""The pattern of each schema's ``single_line`` definition, under a ``not``."""


@cache
def _validator(name: str) -> Draft202012Validator:
    schema = FAMILIES[name].schema()
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _schema_accepts(name: str, document: Any) -> bool:
    return bool(_validator(name).is_valid(document))


def _model_accepts(name: str, document: Any) -> bool:
    try:
        FAMILIES[name].model.model_validate_json(json.dumps(document))
    except ValidationError:
        return False
    return True


def _verdicts(name: str, document: Any) -> tuple[bool, bool]:
    return _schema_accepts(name, document), _model_accepts(name, document)


@cache
def _valid_documents(name: str) -> dict[str, dict[str, Any]]:
    return {
        fixture.name.removesuffix(".json"): json.loads(fixture.read_bytes())
        for fixture in FAMILIES[name].fixtures("valid")
    }


def _document(name: str, fixture: str) -> dict[str, Any]:
    return copy.deepcopy(_valid_documents(name)[fixture])


def _patterns(node: Any) -> set[str]:
    if isinstance(node, list):
        return set().union(*map(_patterns, node)) if node else set()
    if not isinstance(node, dict):
        return set()
    found = {node["pattern"]} if isinstance(node.get("pattern"), str) else set()
    return found.union(*map(_patterns, node.values()))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "agent",
            {AGENT_ID_PATTERN, TOOL_NAME_PATTERN, CREDENTIAL_REFERENCE_PATTERN, HTTP_URL_PATTERN},
        ),
        (
            "tool",
            {
                TOOL_NAME_PATTERN,
                CREDENTIAL_REFERENCE_PATTERN,
                HTTP_URL_PATTERN,
                PROVIDER_PATTERN,
                TOOL_PART_PATTERN,
                SHA256_PATTERN,
                CREDENTIAL_NAME_PATTERN,
            },
        ),
        ("policy", {TOOL_NAME_PATTERN, APPROVER_ID_PATTERN, PLATFORM_SUBJECT_PATTERN}),
    ],
)
def test_schema_patterns_are_the_model_patterns(name: str, expected: set[str]) -> None:
    schema = FAMILIES[name].schema()
    assert _patterns(schema) - {SINGLE_LINE_GUARD} == expected
    assert schema["$id"] == f"urn:awooop:contract:{name}:1"


@pytest.mark.parametrize(
    ("name", "fixture", "path"),
    [
        ("agent", "full", ("agent_id",)),
        ("agent", "full", ("tools", 0, "name")),
        ("agent", "full", ("provider", "api_key")),
        ("agent", "full", ("provider", "base_url")),
        ("agent", "scripted_with_tools", ("provider", "script", 0, "call_tool")),
        ("tool", "full", ("name",)),
        ("tool", "full", ("provider",)),
        ("tool", "full", ("tool",)),
        ("tool", "full", ("pinned_sha256",)),
        ("tool", "full", ("credentials", "API_KEY")),
        ("tool", "full", ("transport", "url")),
        ("policy", "full", ("approvers", 0, "approver_id")),
        ("policy", "full", ("approvers", 0, "chat_subjects", 0)),
        ("policy", "full", ("rate_limits", 0, "tool")),
        ("policy", "full", ("approval_required_tools", 0)),
    ],
)
def test_a_patterned_value_with_a_final_newline_is_refused_by_both(
    name: str, fixture: str, path: tuple[str | int, ...]
) -> None:
    # Python's re (jsonschema) lets `$` match before a final newline; pydantic's does not.
    document = _document(name, fixture)
    parent: Any = document
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] += "\n"
    assert _verdicts(name, document) == (False, False)


def test_a_credential_name_with_a_final_newline_is_refused_by_both() -> None:
    document = _document("tool", "full")
    document["credentials"]["API_KEY\n"] = document["credentials"].pop("API_KEY")
    assert _verdicts("tool", document) == (False, False)


@pytest.mark.parametrize("name", FAMILIES)
def test_every_valid_fixture_dumps_to_a_document_the_schema_accepts(name: str) -> None:
    family = FAMILIES[name]
    for fixture, document in _valid_documents(name).items():
        model = family.model.model_validate_json(json.dumps(document))
        dumped = model.model_dump(mode="json", by_alias=True)
        errors = [error.message for error in _validator(name).iter_errors(dumped)]
        assert errors == [], fixture
        assert family.model.model_validate_json(json.dumps(dumped)) == model


def test_an_absent_optional_property_is_left_out_of_the_dump_not_null() -> None:
    agent = Agent.model_validate(_document("agent", "openai_compatible_without_api_key"))
    agent = agent.model_copy(update={"output_schema": None})
    dumped = agent.model_dump(mode="json", by_alias=True)
    assert "api_key" not in dumped["provider"]
    assert "output_schema" not in dumped


@pytest.mark.parametrize(
    ("name", "model_default", "path"),
    [
        ("agent", Agent.model_fields["system_prompt"].default, "system_prompt"),
        ("agent", Agent.model_fields["progress_after_seconds"].default, "progress_after_seconds"),
        ("tool", Tool.model_fields["enabled"].default, "enabled"),
    ],
)
def test_model_defaults_are_the_schema_defaults(name: str, model_default: Any, path: str) -> None:
    schema = FAMILIES[name].schema()
    assert path not in schema["required"]
    assert schema["properties"][path]["default"] == model_default


def test_minimal_documents_take_the_defaults() -> None:
    agent = Agent.model_validate(_document("agent", "minimal"))
    assert (agent.system_prompt, agent.progress_after_seconds, agent.output_schema) == (
        "",
        30,
        None,
    )
    assert Tool.model_validate(_document("tool", "minimal")).enabled is True


def test_providers_steps_and_transports_parse_to_their_own_classes() -> None:
    scripted = Agent.model_validate(_document("agent", "scripted_with_tools")).provider
    assert isinstance(scripted, ScriptedProvider)
    assert [type(step) for step in scripted.script] == [CallToolStep, CallToolStep, ReplyStep]
    full = Agent.model_validate(_document("agent", "full")).provider
    assert isinstance(full, OpenAICompatibleProvider)
    assert full.api_key == "k8s:llm-gateway/api-key"
    assert isinstance(
        Tool.model_validate(_document("tool", "full")).transport, StreamableHttpTransport
    )
    assert isinstance(Tool.model_validate(_document("tool", "minimal")).transport, StdioTransport)


OUTSIDE_REFERENCES = [
    "file:../other-project/secret",
    "file:..",
    "file:/etc/passwd",
    "file:secrets/token",
    "file:.token",
    "k8s:ops/../token",
    "k8s:ops/a/b",
    "k8s:../token",
    "k8s:ops/.token",
    "k8s:ops/",
    "env:../TOKEN",
    "env:A/B",
    "env:token",
    "../secret",
    "/run/secrets/token",
    "FILE:token",
    "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
    "",
]


@pytest.mark.parametrize("reference", OUTSIDE_REFERENCES)
def test_a_reference_outside_the_project_or_a_value_is_refused_by_both(reference: str) -> None:
    tool = _document("tool", "full")
    tool["credentials"]["API_KEY"] = reference
    assert _verdicts("tool", tool) == (False, False)
    agent = _document("agent", "full")
    agent["provider"]["api_key"] = reference
    assert _verdicts("agent", agent) == (False, False)


_REFERENCE_HEADS = ["env:", "file:", "k8s:", "k8s:ops/", "file:a", "k8s:a/b", ""]


@given(
    head=st.sampled_from(_REFERENCE_HEADS),
    tail=st.text(alphabet="aZ09._-/:\n ", max_size=12),
)
def test_an_accepted_reference_never_holds_a_path(head: str, tail: str) -> None:
    reference = head + tail
    tool = _document("tool", "full")
    tool["credentials"]["API_KEY"] = reference
    accepted = _schema_accepts("tool", tool)
    assert accepted == _model_accepts("tool", tool)
    if accepted:
        kind, _, rest = reference.partition(":")
        parts = rest.split("/")
        assert len(parts) == (2 if kind == "k8s" else 1)
        assert all(part and not part.startswith(".") for part in parts)
        assert "\n" not in reference


def _approver(approver_id: str, subject: str) -> dict[str, Any]:
    return {"approver_id": approver_id, "chat_subjects": [subject], "api_subject": approver_id}


def _left_to_the_services() -> list[Any]:
    agent = _document("agent", "scripted_with_tools")
    granted_twice = copy.deepcopy(agent)
    granted_twice["tools"].append({"name": "status__demo", "scope": "admin"})
    step_beyond_run = copy.deepcopy(agent) | {"step_timeout_seconds": 600}
    ungranted_call = copy.deepcopy(agent)
    ungranted_call["provider"]["script"][0]["call_tool"] = "restart_service__k8s-ops"
    tool_parts_differ = _document("tool", "full") | {"name": "status__demo"}
    policy = _document("policy", "minimal")
    k_above_n = copy.deepcopy(policy) | {"approvals_required": 2}
    same_person_twice = copy.deepcopy(policy) | {
        "approvers": [_approver("alice", "acme:slack:U1"), _approver("alice", "acme:slack:U2")],
    }
    subject_shared = copy.deepcopy(policy) | {
        "approvers": [_approver("alice", "acme:slack:U1"), _approver("bob", "acme:slack:U1")],
        "approvals_required": 2,
    }
    limited_twice = copy.deepcopy(policy) | {
        "rate_limits": [
            {"tool": "status__demo", "per_minute": 10, "burst": 1},
            {"tool": "status__demo", "per_minute": 20, "burst": 2},
        ],
    }
    return [
        pytest.param("agent", granted_twice, id="agent-tool-granted-twice"),
        pytest.param("agent", step_beyond_run, id="agent-step-timeout-beyond-run-timeout"),
        pytest.param("agent", ungranted_call, id="agent-script-calls-an-ungranted-tool"),
        pytest.param("tool", tool_parts_differ, id="tool-name-is-not-tool__provider"),
        pytest.param("policy", k_above_n, id="policy-k-greater-than-n"),
        pytest.param("policy", same_person_twice, id="policy-approver-id-twice"),
        pytest.param("policy", subject_shared, id="policy-subject-of-two-approvers"),
        pytest.param("policy", limited_twice, id="policy-tool-rate-limited-twice"),
    ]


@pytest.mark.parametrize(("name", "document"), _left_to_the_services())
def test_rules_json_schema_cannot_state_are_left_to_the_services_by_both(
    name: str, document: dict[str, Any]
) -> None:
    # The model accepts what the schema accepts; the service that folds the contract
    # refuses these (see each family's module docstring).
    assert _verdicts(name, document) == (True, True)


@pytest.mark.parametrize(
    ("name", "fixture", "field", "value", "accepted"),
    [
        ("agent", "full", "max_steps", 3, True),
        ("agent", "full", "max_steps", 3.0, True),
        ("agent", "full", "max_steps", 3.5, False),
        ("agent", "full", "max_steps", True, False),
        ("agent", "full", "max_steps", "3", False),
        ("agent", "full", "history_turns", 0, True),
        ("agent", "full", "history_turns", -1, False),
        ("agent", "full", "progress_after_seconds", 1e20, False),
        ("policy", "full", "approvals_required", 1.0, True),
        ("policy", "full", "approvals_required", False, False),
        ("policy", "full", "approval_expiry_seconds", "600", False),
        ("tool", "full", "is_destructive", False, True),
        ("tool", "full", "is_destructive", 0, False),
        ("tool", "full", "is_destructive", "true", False),
        ("tool", "full", "enabled", "yes", False),
        ("tool", "full", "enabled", None, False),
    ],
)
def test_numbers_and_booleans_are_json_typed_in_both(
    name: str, fixture: str, field: str, value: Any, accepted: bool
) -> None:
    document = _document(name, fixture) | {field: value}
    assert _verdicts(name, document) == (accepted, accepted)


def _integers() -> st.SearchStrategy[Any]:
    valid = [1, 2, 20, 60, 100, 3600, 86400, 3.0]
    broken = [0, -1, 21, 59, 101, 3601, 86401, 100001, 2.5, True, "3", None]
    return st.sampled_from([*valid, *broken])


def _tool_names() -> st.SearchStrategy[Any]:
    valid = ["status__demo", "restart_service__k8s-ops"]
    broken = ["status", "Status__demo", "status__demo\n", "a___b", "", 3]
    return st.sampled_from([*valid, *broken])


def _references() -> st.SearchStrategy[Any]:
    valid = ["env:OPENAI_KEY", "file:api-key", "k8s:llm/api-key"]
    broken = ["sk-live-123", "file:../key", "env:key", None, 7]
    return st.sampled_from([*valid, *broken])


def _urls() -> st.SearchStrategy[Any]:
    valid = ["https://llm.example.com/v1", "http://localhost:11434/v1?x=1#top"]
    broken = [
        "ftp://x.example",
        "https://u:p@x.example.com",
        "https://x.example.com/a b",
        "https://x.example.com\n",
        "https://",
        "https://x.example.com/%zz",
        "",
        None,
    ]
    return st.sampled_from([*valid, *broken])


def _objects() -> st.SearchStrategy[Any]:
    return st.sampled_from([{}, {"type": "object"}, [], None, "object", 1])


def _booleans() -> st.SearchStrategy[Any]:
    return st.sampled_from([True, False, 0, 1, "true", None])


def _valid_parts(name: str, *path: str | int) -> list[Any]:
    """The value at ``path`` in each valid fixture that has one."""
    found = []
    for document in _valid_documents(name).values():
        node: Any = document
        try:
            for key in path:
                node = node[key]
        except (KeyError, IndexError):
            continue
        found.append(node)
    return found


def _either(valid: list[Any], broken: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(valid), broken)


@st.composite
def _near_documents(
    draw: st.DrawFn, name: str, properties: dict[str, st.SearchStrategy[Any]]
) -> dict[str, Any]:
    """A valid fixture with up to two properties replaced or left out, or a document made
    of generated properties only."""
    generated = draw(st.fixed_dictionaries({}, optional=properties))
    base = draw(st.sampled_from([None, *sorted(_valid_documents(name))]))
    if base is None:
        return generated
    document = _document(name, base)
    for key in draw(st.lists(st.sampled_from(sorted(properties)), max_size=2, unique=True)):
        if key in generated:
            document[key] = generated[key]
        else:
            document.pop(key, None)
    return document


def _agent_properties() -> dict[str, st.SearchStrategy[Any]]:
    step = st.fixed_dictionaries(
        {},
        optional={
            "call_tool": _tool_names(),
            "arguments": _objects(),
            "reply": st.sampled_from(["Hello.", "", 42, None]),
        },
    )
    provider = st.fixed_dictionaries(
        {},
        optional={
            "kind": st.sampled_from(["scripted", "openai_compatible", "anthropic", None]),
            "script": st.lists(
                _either(_valid_parts("agent", "provider", "script", 0), step), max_size=3
            ),
            "model": st.sampled_from(["gpt-4o-mini", "", 5]),
            "base_url": _urls(),
            "api_key": _references(),
        },
    )
    grant = st.fixed_dictionaries(
        {},
        optional={
            "name": _tool_names(),
            "scope": st.sampled_from(["read", "write", "admin", "execute", None]),
            "approval": st.just("always"),
        },
    )
    integers = (
        "history_turns",
        "max_steps",
        "max_consecutive_failures",
        "step_timeout_seconds",
        "run_timeout_seconds",
        "max_attempts",
        "progress_after_seconds",
    )
    return {
        "family": st.sampled_from(["agent", "agents", 1]),
        "schema_version": st.sampled_from([1, 1.0, 2, True, "1", None]),
        "agent_id": st.sampled_from(["helpdesk", "HelpDesk", "ops\n", "", None]),
        "provider": _either(_valid_parts("agent", "provider"), provider),
        "system_prompt": st.sampled_from(["", "Be brief.", None, "x" * 32_769]),
        "tools": st.lists(_either(_valid_parts("agent", "tools", 1), grant), max_size=3),
        "output_schema": _objects(),
        "double_texting": st.sampled_from(["reject", "enqueue", "interrupt", "drop", None]),
        "owner": st.just("ops"),
        **dict.fromkeys(integers, _integers()),
    }


@given(document=_near_documents("agent", _agent_properties()))
def test_agent_schema_and_model_agree_on_generated_documents(document: dict[str, Any]) -> None:
    assert _schema_accepts("agent", document) == _model_accepts("agent", document)


def _tool_properties() -> dict[str, st.SearchStrategy[Any]]:
    transport = st.fixed_dictionaries(
        {},
        optional={
            "kind": st.sampled_from(["stdio", "streamable_http", "websocket", None]),
            "command": st.sampled_from([["server"], ["python", "-m", "x"], [], [""], "server"]),
            "url": _urls(),
        },
    )
    credentials = st.dictionaries(
        st.sampled_from(["API_KEY", "KUBE_TOKEN", "api_key", "A\n", "_X", "A" * 65]),
        _references(),
        max_size=3,
    )
    return {
        "family": st.sampled_from(["tool", "tools", None]),
        "schema_version": st.sampled_from([1, 1.0, 2, True, "1"]),
        "name": _tool_names(),
        "provider": st.sampled_from(["demo", "k8s-ops", "k8s__ops", "Demo", "", None]),
        "tool": st.sampled_from(["status", "restart_service", "restart-service", "", 1]),
        "description": st.sampled_from(["", "Restarts one deployment.", None, 3]),
        "transport": _either(_valid_parts("tool", "transport"), transport),
        "scope": st.sampled_from(["read", "write", "admin", "execute", None]),
        "is_destructive": _booleans(),
        "observation_only": _booleans(),
        "input_schema": _objects(),
        "pinned_sha256": st.sampled_from(["0" * 64, "A" * 64, "0" * 63, "g" * 64, None]),
        "credentials": st.one_of(credentials, st.sampled_from([[], None, "env:X"])),
        "enabled": _booleans(),
        "owner": st.just("ops"),
    }


@given(document=_near_documents("tool", _tool_properties()))
def test_tool_schema_and_model_agree_on_generated_documents(document: dict[str, Any]) -> None:
    assert _schema_accepts("tool", document) == _model_accepts("tool", document)


def _policy_properties() -> dict[str, st.SearchStrategy[Any]]:
    subjects = ["acme:slack:U1", "acme:telegram:42", "acme:discord:1", "slack:U1", 5]
    approver = st.fixed_dictionaries(
        {},
        optional={
            "approver_id": st.sampled_from(["alice", "bob.smith", "Alice", "", None]),
            "chat_subjects": st.lists(st.sampled_from(subjects), max_size=3),
            "api_subject": st.sampled_from(["user:alice", "", None]),
            "email": st.just("alice@acme.example"),
        },
    )
    rate_limit = st.fixed_dictionaries(
        {},
        optional={"tool": _tool_names(), "per_minute": _integers(), "burst": _integers()},
    )
    return {
        "family": st.sampled_from(["policy", "policies", None]),
        "schema_version": st.sampled_from([1, 1.0, 2, True, "1"]),
        "mode": st.sampled_from(["shadow", "suggest", "active", "enforce", None]),
        "approvers": st.lists(
            _either(_valid_parts("policy", "approvers", 1), approver), max_size=3
        ),
        "approvals_required": _integers(),
        "approval_expiry_seconds": _integers(),
        "rate_limits": st.lists(
            _either(_valid_parts("policy", "rate_limits", 0), rate_limit), max_size=3
        ),
        "approval_required_tools": st.lists(_tool_names(), max_size=3),
        "owner": st.just("ops"),
    }


@given(document=_near_documents("policy", _policy_properties()))
def test_policy_schema_and_model_agree_on_generated_documents(document: dict[str, Any]) -> None:
    assert _schema_accepts("policy", document) == _model_accepts("policy", document)
