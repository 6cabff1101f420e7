"""The credentials a tool's server gets, resolved when its session opens.

A tool contract maps the name under which its server receives each secret to a
reference (`env:`, `file:`, `k8s:`); the values are read here, in the calling
project's own namespace only (`awooop.security.tenant_credentials`), at the
moment a session opens. Sessions are per project, so a value resolved for one
tenant never travels on another tenant's session.

A reference that does not resolve makes the session unavailable with
`CredentialUnavailable`, whose reason names the credential and the reference,
never a value: a missing secret does not appear by trying again, so it is a
permanent failure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from awooop.contracts.families.tool import Tool
from awooop.mcp_gateway.adapters.call_errors import CredentialUnavailable
from awooop.security.tenant_credentials import CredentialMissing, resolve_credential

__all__ = ["CredentialUnavailable", "resolve_tool_credentials"]


def resolve_tool_credentials(
    project_id: str,
    tool: Tool,
    *,
    env: Mapping[str, str],
    secrets_root: Path | None,
    other_projects: Iterable[str],
) -> dict[str, str]:
    """Every credential of `tool`'s contract, by the name its server receives it under.

    Raises `CredentialUnavailable` for the first reference that does not resolve.
    """
    others = tuple(other_projects)
    values: dict[str, str] = {}
    for name, reference in sorted(tool.credentials.items()):
        try:
            values[name] = resolve_credential(
                project_id, reference, env=env, secrets_root=secrets_root, other_projects=others
            )
        except CredentialMissing as missing:
            raise CredentialUnavailable(
                f"credential {name} of tool {tool.name!r}: {missing.reason}"
            ) from None
    return values
