"""The gateway's MCP settings: read from the environment, and the pool built from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from awooop.infra.settings import Settings, SettingsError
from awooop.mcp_gateway.adapters.mcp_sessions import McpSessionPool

pytestmark = pytest.mark.unit


def _settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"AWOOOP_HOME": str(tmp_path), **env})


def test_the_defaults(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert (
        settings.mcp_call_timeout_seconds,
        settings.mcp_open_timeout_seconds,
        settings.mcp_concurrency,
        settings.mcp_tool_list_refresh_seconds,
        settings.secrets_root,
    ) == (30.0, 20.0, 8, 300.0, None)


def test_each_setting_is_read_from_its_variable(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path,
        AWOOOP_MCP_CALL_TIMEOUT_SECONDS="2.5",
        AWOOOP_MCP_OPEN_TIMEOUT_SECONDS="7",
        AWOOOP_MCP_CONCURRENCY="3",
        AWOOOP_MCP_TOOL_LIST_REFRESH_SECONDS="60",
        AWOOOP_SECRETS_ROOT="/run/secrets",
    )
    assert settings.mcp_call_timeout_seconds == 2.5
    assert settings.mcp_open_timeout_seconds == 7.0
    assert settings.mcp_concurrency == 3
    assert settings.mcp_tool_list_refresh_seconds == 60.0
    assert settings.secrets_root == Path("/run/secrets")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("AWOOOP_MCP_CALL_TIMEOUT_SECONDS", "0"),
        ("AWOOOP_MCP_OPEN_TIMEOUT_SECONDS", "-1"),
        ("AWOOOP_MCP_TOOL_LIST_REFRESH_SECONDS", "nan"),
        ("AWOOOP_MCP_CALL_TIMEOUT_SECONDS", "soon"),
        ("AWOOOP_MCP_CONCURRENCY", "2.5"),
        ("AWOOOP_MCP_CONCURRENCY", "0"),
    ],
)
def test_a_malformed_value_is_refused_by_name(tmp_path: Path, variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        _settings(tmp_path, **{variable: value})


async def test_the_pool_takes_its_timeouts_and_secrets_folder_from_settings(
    tmp_path: Path,
) -> None:
    settings = _settings(
        tmp_path,
        AWOOOP_MCP_CALL_TIMEOUT_SECONDS="4",
        AWOOOP_MCP_OPEN_TIMEOUT_SECONDS="6",
        AWOOOP_MCP_TOOL_LIST_REFRESH_SECONDS="90",
        AWOOOP_SECRETS_ROOT=str(tmp_path / "secrets"),
    )
    pool = McpSessionPool.from_settings(settings, known_projects=lambda: ["acme"])
    timings = pool._timings
    assert (timings.call_within, timings.open_within, timings.refresh_every) == (4.0, 6.0, 90.0)
    assert pool._secrets_root == tmp_path / "secrets"
    assert list(pool._known_projects()) == ["acme"]
    await pool.close()
