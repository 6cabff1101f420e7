"""Reading a record value as a JSON object, and saying briefly why validation failed.

Shared by the envelope codec and the inbound-record parser, which each wrap these
failures in their own error types and codes.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

_MAX_REPORTED_ERRORS = 5


class NotAJsonObjectError(ValueError):
    """The bytes are not UTF-8 JSON whose top level is an object; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def load_json_object(value: bytes) -> dict[str, Any]:
    """Parse ``value`` as a UTF-8 JSON object; :class:`NotAJsonObjectError` otherwise."""
    try:
        document = json.loads(value)
    except UnicodeDecodeError as error:
        raise NotAJsonObjectError(f"not UTF-8: {error.reason}") from error
    except json.JSONDecodeError as error:
        raise NotAJsonObjectError(f"not JSON: {error.msg} at {error.pos}") from error
    except RecursionError as error:
        raise NotAJsonObjectError("JSON nested too deeply") from error
    if not isinstance(document, dict):
        raise NotAJsonObjectError(f"JSON {type(document).__name__}, not an object")
    return document


def describe_validation_error(error: ValidationError) -> str:
    """Summarise a pydantic error as ``loc: message`` parts, short enough for a header."""
    parts = []
    for detail in error.errors(include_url=False)[:_MAX_REPORTED_ERRORS]:
        location = ".".join(str(step) for step in detail["loc"]) or "<root>"
        parts.append(f"{location}: {detail['msg']}")
    extra = error.error_count() - len(parts)
    if extra > 0:
        parts.append(f"and {extra} more")
    return "; ".join(parts)
