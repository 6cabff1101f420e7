"""The action an approval is bound to, as one hash.

Gate 5 of the MCP gateway holds back a call that needs an approval and names it by
``action_hash``: the SHA-256 of the RFC 8785 canonical JSON of the project, the run,
the call id, the tool, the arguments exactly as the agent produced them and the policy
revision that asked for the approval. An approval token carries the hash; the gateway
recomputes it from the call it is about to make, so a token granted for one action is
worth nothing for any other (other arguments, another run, a later policy).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from awooop.security.canonical_json import canonical_sha256


def action_hash(
    *,
    project_id: str,
    run_id: str,
    call_id: str,
    tool: str,
    arguments: Mapping[str, Any],
    policy_revision: str,
) -> str:
    """The 64-hex-digit SHA-256 naming one action; raises ``NotCanonicalizable`` for
    arguments with no canonical JSON form (such a call is refused before gate 5)."""
    return canonical_sha256(
        {
            "project_id": project_id,
            "run_id": run_id,
            "call_id": call_id,
            "tool": tool,
            "arguments": dict(arguments),
            "policy_revision": policy_revision,
        }
    )
