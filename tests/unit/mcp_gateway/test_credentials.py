"""A tool's credentials: resolved in the calling project only, and how each transport
hands them to the server (environment variables, request headers), never echoed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from awooop.contracts.families.tool import Tool
from awooop.mcp_gateway.adapters.credentials import CredentialUnavailable, resolve_tool_credentials
from awooop.mcp_gateway.adapters.http_transport import credential_headers
from awooop.mcp_gateway.adapters.stdio_transport import server_environment, stdio_parameters
from awooop.security.tool_pins import tool_pin_sha256

pytestmark = pytest.mark.unit


def _tool(credentials: dict[str, str], transport: dict[str, Any] | None = None) -> Tool:
    schema: dict[str, Any] = {"type": "object"}
    return Tool.model_validate(
        {
            "family": "tool",
            "schema_version": 1,
            "name": "lookup__crm",
            "provider": "crm",
            "tool": "lookup",
            "description": "Looks a customer up.",
            "transport": transport or {"kind": "stdio", "command": ["{python}", "-m", "crm"]},
            "scope": "read",
            "is_destructive": False,
            "observation_only": False,
            "input_schema": schema,
            "pinned_sha256": tool_pin_sha256("Looks a customer up.", schema),
            "credentials": credentials,
            "enabled": True,
        }
    )


def test_every_reference_resolves_in_the_callers_namespace(tmp_path: Path) -> None:
    (tmp_path / "acme").mkdir()
    (tmp_path / "acme" / "token").write_text("file-secret\n")
    env = {"AWOOOP_TENANT_ACME_API_KEY": "env-secret", "AWOOOP_TENANT_GLOBEX_API_KEY": "theirs"}
    tool = _tool({"API_KEY": "env:API_KEY", "TOKEN": "file:token"})

    values = resolve_tool_credentials(
        "acme", tool, env=env, secrets_root=tmp_path, other_projects=["acme", "globex"]
    )

    assert values == {"API_KEY": "env-secret", "TOKEN": "file-secret"}


def test_another_tenants_value_is_never_read() -> None:
    env = {"AWOOOP_TENANT_ACME_API_KEY": "acme-secret"}
    tool = _tool({"API_KEY": "env:API_KEY"})
    with pytest.raises(CredentialUnavailable) as refused:
        resolve_tool_credentials("globex", tool, env=env, secrets_root=None, other_projects=[])
    failure = refused.value
    assert failure.transient is False
    assert "AWOOOP_TENANT_GLOBEX_API_KEY" in failure.reason
    assert "acme-secret" not in str(failure)
    assert failure.__cause__ is None
    assert failure.__suppress_context__


def test_an_ambiguous_env_reference_is_refused_without_its_value() -> None:
    env = {"AWOOOP_TENANT_ACME_PROD_KEY": "prod-secret"}
    tool = _tool({"KEY": "env:PROD_KEY"})
    with pytest.raises(CredentialUnavailable, match="acme-prod") as refused:
        resolve_tool_credentials(
            "acme", tool, env=env, secrets_root=None, other_projects=["acme", "acme-prod"]
        )
    assert "prod-secret" not in refused.value.reason


def test_a_stdio_server_environment_is_the_safe_base_and_the_credentials() -> None:
    gateway = {
        "PATH": "/usr/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "PYTHONPATH": "/src",
        "AWOOOP_DEMO_MCP_JOURNAL": "/tmp/journal",
        "AWOOOP_DATABASE_URL": "postgresql://admin:pw@db/awooop",
        "AWOOOP_DB_PASSWORD_MCP_GATEWAY": "pw",
        "AWOOOP_TENANT_ACME_API_KEY": "acme-secret",
        "AWOOOP_CONTRACT_SIGNING_KEY": "k:EdDSA:x",
        "AWS_SECRET_ACCESS_KEY": "aws",
    }

    environment = server_environment({"API_KEY": "acme-secret"}, gateway)

    assert environment == {
        "PATH": "/usr/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "PYTHONPATH": "/src",
        "AWOOOP_DEMO_MCP_JOURNAL": "/tmp/journal",
        "API_KEY": "acme-secret",
    }
    params = stdio_parameters(_tool({}).transport, environment)  # type: ignore[arg-type]
    assert params.env == environment
    assert params.args == ["-m", "crm"]


def test_unset_base_variables_are_left_out() -> None:
    assert server_environment({}, {"PATH": "/bin", "PYTHONPATH": ""}) == {"PATH": "/bin"}


@pytest.mark.parametrize("name", ["PATH", "HOME", "PYTHONPATH", "SHELL", "AWOOOP_DEMO_MCP_X"])
def test_a_credential_may_not_take_a_base_variables_name(name: str) -> None:
    with pytest.raises(CredentialUnavailable, match=name) as refused:
        server_environment({name: "secret-value"}, {"PATH": "/bin"})
    assert "secret-value" not in refused.value.reason


def test_http_credentials_travel_as_headers() -> None:
    headers = credential_headers(
        {"API_KEY": "k-1", "AUTHORIZATION": "Bearer t-2", "X_TENANT_ID": "acme"}
    )
    assert headers == {
        "X-Credential-API-KEY": "k-1",
        "Authorization": "Bearer t-2",
        "X-Credential-X-TENANT-ID": "acme",
    }


@pytest.mark.parametrize("value", ["line\r\nX-Injected: 1", "tab\there", "naïve", "nul\x00"])
def test_a_value_no_header_can_carry_is_refused_without_being_shown(value: str) -> None:
    with pytest.raises(CredentialUnavailable, match="API_KEY") as refused:
        credential_headers({"API_KEY": value})
    assert value not in refused.value.reason
