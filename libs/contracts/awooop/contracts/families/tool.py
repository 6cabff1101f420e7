"""The ``tool`` contract family: one MCP tool of a project, how to reach it and what it may do.

A tool is named ``tool__provider``; it is reached over stdio or streamable HTTP; its
secrets appear only as credential references (``env:``, ``file:``, ``k8s:``), never as
values, and no reference form can name a path outside the project's own place.

The JSON Schema ``schemas/tool.schema.json`` is the source of the family; :class:`Tool`
accepts exactly the documents the schema accepts (the parity tests hold the two
together). Rules JSON Schema cannot state are checked by the MCP gateway: when it folds
the contract, that ``name`` is ``tool + "__" + provider``, that ``input_schema`` is a
valid JSON Schema and that every reference resolves in the project's namespace; on every
call, at gate 1, that the live description and input schema still hash to
``pinned_sha256``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from awooop.contracts.families.fields import (
    CredentialReference,
    FrozenDocument,
    HttpUrlText,
    JsonBoolean,
    SchemaVersion1,
    Scope,
    ToolName,
)

FAMILY = "tool"

TOOL_PART_PATTERN = r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$"
"""The tool's own name, the part of ``tool__provider`` before the ``__``."""

PROVIDER_PATTERN = r"^[a-z][a-z0-9]*([_-][a-z0-9]+)*$"
"""The provider's name, the part of ``tool__provider`` after the ``__``."""

CREDENTIAL_NAME_PATTERN = r"^[A-Z][A-Z0-9_]{0,63}$"
"""The name under which the tool's server receives a secret."""

SHA256_PATTERN = r"^[0-9a-f]{64}$"


class StdioTransport(FrozenDocument):
    """A server the gateway starts as a process: the command and its arguments."""

    kind: Literal["stdio"]
    command: Annotated[tuple[Annotated[str, Field(min_length=1)], ...], Field(min_length=1)]


class StreamableHttpTransport(FrozenDocument):
    """A server the gateway reaches over MCP streamable HTTP."""

    kind: Literal["streamable_http"]
    url: HttpUrlText


Transport = Annotated[StdioTransport | StreamableHttpTransport, Field(discriminator="kind")]
"""How the server is reached, told apart by ``kind`` (the schema's ``oneOf``)."""

CredentialName = Annotated[str, Field(pattern=CREDENTIAL_NAME_PATTERN)]


class Tool(FrozenDocument):
    """A ``tool`` document (schema version 1)."""

    family: Literal["tool"]
    schema_version: SchemaVersion1
    name: ToolName
    provider: Annotated[str, Field(pattern=PROVIDER_PATTERN)]
    tool: Annotated[str, Field(pattern=TOOL_PART_PATTERN)]
    description: str
    transport: Transport
    scope: Scope
    is_destructive: JsonBoolean
    observation_only: JsonBoolean
    input_schema: dict[str, Any]
    pinned_sha256: Annotated[str, Field(pattern=SHA256_PATTERN)]
    credentials: dict[CredentialName, CredentialReference]
    enabled: JsonBoolean = True
