"""Field types that several contract families share, each with its JSON Schema twin.

Every pattern here is written once and used by the pydantic models and, as the same
string, in the families' JSON Schemas (the parity tests hold them together). Patterns
avoid look-around: pydantic validates them with Rust's `regex`, which has none.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)

AGENT_ID_PATTERN = r"^[a-z][a-z0-9_-]{0,63}$"
"""An agent's id within its project."""

TOOL_NAME_PATTERN = r"^[a-z][a-z0-9]*(_[a-z0-9]+)*__[a-z][a-z0-9]*([_-][a-z0-9]+)*$"
"""`tool__provider`: the tool's own name (no double underscore in it), two underscores,
the provider's name; so the first `__` splits the two without doubt."""

CREDENTIAL_REFERENCE_PATTERN = (
    r"^(env:[A-Z][A-Z0-9_]{0,63}"
    r"|file:[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
    r"|k8s:[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?/[A-Za-z0-9][A-Za-z0-9._-]{0,252})$"
)
"""Where a secret is found, never the secret: `env:NAME` (read as
`AWOOOP_TENANT_<PROJECT>_<NAME>`), `file:NAME` (a file in the project's folder of
mounted secrets) or `k8s:SECRET/KEY` (a key of a secret in the project's namespace).
No form can name a path outside the project's own place: no slash in a file name, no
leading dot."""

AgentId = Annotated[str, Field(pattern=AGENT_ID_PATTERN)]
ToolName = Annotated[str, Field(pattern=TOOL_NAME_PATTERN)]
CredentialReference = Annotated[str, Field(pattern=CREDENTIAL_REFERENCE_PATTERN)]
Scope = Literal["read", "write", "admin"]
"""What a tool can do: read, write, or administer (the mode table of ARCHITECTURE §5)."""


def not_boolean(value: Any) -> Any:
    """Refuse `true`/`false` where JSON Schema wants a number (pydantic would take
    `true` as 1)."""
    if isinstance(value, bool):
        msg = "a number is required, not a boolean"
        raise ValueError(msg)
    return value


def unique(items: tuple[Any, ...]) -> tuple[Any, ...]:
    """Refuse repeated items, as JSON Schema's `uniqueItems` does."""
    if len(set(items)) != len(items):
        msg = "items must be unique"
        raise ValueError(msg)
    return items


SchemaVersion1 = Annotated[Literal[1], BeforeValidator(not_boolean)]
"""`"schema_version": 1`, exactly (JSON Schema `{"const": 1}`)."""

UniqueStrings = Annotated[tuple[str, ...], AfterValidator(unique)]

HTTP_URL_PATTERN = (
    r"^https?://[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?"
    r"(/([A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})*)*"
    r"(\?([A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-Fa-f]{2})*)?"
    r"(#([A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-Fa-f]{2})*)?$"
)
"""An http(s) URL in plain ASCII, with no user information (so no secret in it). Every
URL it matches is an RFC 3986 URI, so the schema's ``format: uri`` never disagrees."""

HttpUrlText = Annotated[str, Field(pattern=HTTP_URL_PATTERN)]


def not_text(value: Any) -> Any:
    """Refuse a string where JSON Schema wants an integer (lax pydantic reads "3" as 3)."""
    if isinstance(value, str):
        msg = "a JSON integer is required, not a string"
        raise ValueError(msg)
    return value


def not_null(value: Any) -> Any:
    """Refuse ``null`` for an optional property: the schemas take absence as the only
    "none"."""
    if value is None:
        msg = "leave the property out instead of null"
        raise ValueError(msg)
    return value


JsonInteger = Annotated[int, BeforeValidator(not_boolean), BeforeValidator(not_text)]
"""A JSON integer (``3`` or ``3.0``), never ``true`` or ``"3"``; bound it with ``Field``."""

JsonBoolean = Annotated[bool, Field(strict=True)]
"""``true`` or ``false`` only (lax pydantic would take ``1`` or ``"yes"``)."""


class FrozenDocument(BaseModel):
    """Base of the families' models: unknown properties refused, immutable, and absent
    optional properties left out of a dump (the schemas refuse ``null`` for them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_serializer(mode="wrap")
    def _leave_out_absent(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {key: value for key, value in data.items() if value is not None}
