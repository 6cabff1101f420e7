"""The pin of an MCP tool: the SHA-256 of what its server says the tool is.

A ``tool`` contract carries ``pinned_sha256``; gate 1 of the MCP gateway compares it
with the pin of the tool as the server lists it now, so a description or input schema
changed on the server (a poisoned description) is refused. The pin covers exactly the
two fields the model reads, as RFC 8785 canonical JSON of
``{"description": …, "input_schema": …}``: key order and whitespace never change it,
any changed word or schema keyword does.
"""

from __future__ import annotations

from typing import Any

from awooop.security.canonical_json import canonical_sha256


def tool_pin_sha256(description: str, input_schema: dict[str, Any]) -> str:
    """The lowercase hex SHA-256 pin of a tool's live description and input schema.

    Raises ``NotCanonicalizable`` for a schema with no RFC 8785 form.
    """
    return canonical_sha256({"description": description, "input_schema": input_schema})
