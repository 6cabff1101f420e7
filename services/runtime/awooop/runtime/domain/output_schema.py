"""Checking a reply against an agent's `output_schema`, and telling the model what is wrong.

A reply is valid when it is JSON text whose value the schema (JSON Schema Draft 2020-12)
accepts. Each problem is one line: ``not JSON: <why>``, or ``<pointer>: <message>`` where the
pointer is the RFC 6901 JSON pointer of the offending value (``(root)`` for the document
itself). Lines are sorted, at most `MAX_ERROR_LINES` of them and each at most
`MAX_LINE_CHARS` long, so a re-ask stays small whatever the reply was.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from jsonschema import Draft202012Validator

MAX_ERROR_LINES = 20
MAX_LINE_CHARS = 300


def reply_errors(reply: str | None, schema: Mapping[str, Any]) -> tuple[str, ...]:
    """The problems of `reply` against `schema`; empty when the reply is valid.

    A `None` reply (the model said nothing) is not JSON. The schema itself is trusted: the
    runtime checked it when it folded the agent's contract."""
    try:
        value = json.loads(reply or "")
    except ValueError as error:
        return (_clip(f"not JSON: {error}"),)
    validator = Draft202012Validator(dict(schema))
    lines = sorted(
        _clip(f"{json_pointer(error.absolute_path)}: {error.message}")
        for error in validator.iter_errors(value)
    )
    if len(lines) > MAX_ERROR_LINES:
        more = len(lines) - MAX_ERROR_LINES
        return (*lines[:MAX_ERROR_LINES], f"... and {more} more")
    return tuple(lines)


def json_pointer(path: Iterable[str | int]) -> str:
    """The JSON pointer of a path of keys and indexes, ``(root)`` for the empty path."""
    parts = [str(part).replace("~", "~0").replace("/", "~1") for part in path]
    return "/" + "/".join(parts) if parts else "(root)"


def reask_text(errors: Iterable[str]) -> str:
    """The user turn that asks the model to answer again, listing what was wrong."""
    listed = "\n".join(f"- {line}" for line in errors)
    return (
        "Your reply does not match the required JSON Schema:\n"
        f"{listed}\n"
        "Answer again with only a JSON document that the schema accepts."
    )


def _clip(line: str) -> str:
    return line if len(line) <= MAX_LINE_CHARS else line[: MAX_LINE_CHARS - 3] + "..."
