"""The tenant contract files under `deploy/contracts` are what the services will read:
every one valid for its family (schema and model, as the parity tests check fixtures),
every tool pinned to the tool as the demo MCP server lists it now, every agent's tools
defined in its own project, and one binding per bot with no bot shared by two tenants."""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from awooop.cli.contract_files import ContractFile, contract_paths, read_contract_file
from awooop.cli.onboarding import FAMILY_ORDER, read_tenant_files, tenant_folders
from awooop.contracts.families.registry import CONTRACT_FAMILIES
from awooop.contracts.families.runtime_run_state import standard_document
from awooop.security.tool_pins import tool_pin_sha256

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3] / "deploy" / "contracts"
FOLDERS = sorted(p for p in ROOT.iterdir() if p.is_dir())
FILES = [read_contract_file(path) for path in contract_paths(FOLDERS)]
PYTHON_PLACEHOLDER = "{python}"


def _by_family(family: str) -> list[ContractFile]:
    return [read for read in FILES if read.family == family]


def _ids(read: ContractFile) -> str:
    return str(read.path.relative_to(ROOT))


@pytest.fixture(scope="module")
def live_tools() -> dict[tuple[str, ...], dict[str, tuple[str, dict[str, Any]]]]:
    """Each stdio command of the tool files: its server's tools as listed through the
    `mcp` SDK, name -> (description, input schema)."""
    commands = {tuple(read.body["transport"]["command"]) for read in _by_family("tool")}
    return {command: asyncio.run(_list_tools(command)) for command in commands}


async def _list_tools(command: tuple[str, ...]) -> dict[str, tuple[str, dict[str, Any]]]:
    program, *args = (sys.executable if part == PYTHON_PLACEHOLDER else part for part in command)
    params = StdioServerParameters(command=program, args=args)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        listed = await session.list_tools()
    return {tool.name: (tool.description or "", tool.input_schema) for tool in listed.tools}


def test_the_demo_and_a_second_tenant_are_there() -> None:
    assert [folder.name for folder in tenant_folders(ROOT)] == ["acme", "demo", "ops"]
    for folder in FOLDERS:
        families = Counter(read.family for read in FILES if read.path.parent == folder)
        assert set(families) == set(FAMILY_ORDER), folder.name
        assert families["agent"] == 1
    assert len([t for t in _by_family("tool") if t.project == "acme"]) == 4


@pytest.mark.parametrize("read", FILES, ids=_ids)
def test_every_file_is_valid_for_its_family(read: ContractFile) -> None:
    family = CONTRACT_FAMILIES[read.family]
    validator = Draft202012Validator(
        family.schema(), format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    problems = [
        f"/{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(read.body)
    ]
    assert problems == []
    family.model.model_validate(read.body)
    assert read.project == read.path.parent.name, "a tenant folder holds its own project only"


def test_onboarding_reads_every_file_in_activation_order() -> None:
    for folder in FOLDERS:
        ordered = read_tenant_files([folder])
        ranks = [FAMILY_ORDER.index(read.family) for read in ordered]
        assert ranks == sorted(ranks)
        assert len(ordered) == len([r for r in FILES if r.path.parent == folder])


def test_contract_ids_are_unique_per_project() -> None:
    named = Counter((read.project, read.contract) for read in FILES)
    assert [key for key, count in named.items() if count > 1] == []


@pytest.mark.parametrize("read", _by_family("tool"), ids=_ids)
def test_every_tool_is_pinned_to_the_live_server(
    read: ContractFile, live_tools: dict[tuple[str, ...], dict[str, tuple[str, dict[str, Any]]]]
) -> None:
    body = read.body
    assert body["name"] == f"{body['tool']}__{body['provider']}"
    # A destructive tool is never offered under a narrower scope than admin.
    assert body["scope"] == "admin" or body["is_destructive"] is False
    listed = live_tools[tuple(body["transport"]["command"])]
    assert body["tool"] in listed, f"the server lists no tool {body['tool']!r}"
    description, input_schema = listed[body["tool"]]
    assert body["pinned_sha256"] == tool_pin_sha256(description, input_schema), (
        "the server's description or input schema changed: update the file from the live tool"
    )
    assert (body["description"], body["input_schema"]) == (description, input_schema)


@pytest.mark.parametrize("read", _by_family("agent"), ids=_ids)
def test_every_agent_tool_is_a_tool_of_its_project(read: ContractFile) -> None:
    tools = {
        t.body["name"]: t.body["scope"] for t in _by_family("tool") if t.project == read.project
    }
    granted = {grant["name"]: grant["scope"] for grant in read.body["tools"]}
    assert granted, "an agent without tools"
    assert set(granted) <= set(tools)
    assert all(granted[name] == tools[name] for name in granted)
    scripted = {
        step["call_tool"] for step in read.body["provider"]["script"] if "call_tool" in step
    }
    assert scripted <= set(granted)


def test_every_binding_names_an_agent_of_its_project() -> None:
    for binding in _by_family("channel_binding"):
        agents = {a.body["agent_id"] for a in _by_family("agent") if a.project == binding.project}
        assert binding.body["agent_id"] in agents


def test_each_project_binds_each_bot_once_and_no_bot_is_shared() -> None:
    bots = [
        (read.project, read.body["channel"]["bot_id"])
        for read in _by_family("channel_binding")
        if read.body["channel"]["kind"] == "telegram"
    ]
    assert [pair for pair, count in Counter(bots).items() if count > 1] == []
    owners: dict[str, set[str]] = {}
    for project, bot in bots:
        owners.setdefault(bot, set()).add(project)
    assert all(len(projects) == 1 for projects in owners.values()), owners
    assert {project for project, _ in bots} == {folder.name for folder in FOLDERS}
    assert ("demo", "7000") in bots


def test_the_demo_agent_plays_the_built_in_script() -> None:
    (agent,) = [read for read in _by_family("agent") if read.project == "demo"]
    assert agent.body["provider"] == {
        "kind": "scripted",
        "script": [
            {"call_tool": "status__demo", "arguments": {"service": "checkout"}},
            {"reply": "Here is what I found: {result}"},
        ],
    }


@pytest.mark.parametrize("read", _by_family("runtime_run_state"), ids=_ids)
def test_the_run_state_table_is_the_runtimes(read: ContractFile) -> None:
    assert read.body == standard_document()
