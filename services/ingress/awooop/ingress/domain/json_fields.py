"""Reading fields of a provider's JSON object, refusing an absent or ill-typed one by name.

The payload of an inbound record is the provider's object exactly as received, so
nothing about its shape is known before these checks; each refusal names the field.
"""

from __future__ import annotations

from typing import Any, TypeGuard

from awooop.ingress.domain.messages import InboundRefused

MAX_NAME = 64
"""How much of a provider's name (a kind, a subtype) a reason repeats."""


def is_int(value: object) -> TypeGuard[int]:
    """An integer, and not a boolean (JSON ``true`` arrives as a subclass of int)."""
    return isinstance(value, int) and not isinstance(value, bool)


def int_text(holder: dict[str, Any], field: str, where: str) -> str:
    """``holder[field]`` as text when it is an integer; refused otherwise."""
    value = holder.get(field)
    if not is_int(value):
        raise InboundRefused(f"{where} has no integer {field}")
    return str(value)


def int_id_text(holder: dict[str, Any], field: str, where: str) -> str:
    """``holder[field].id`` as text when it is an integer; refused otherwise."""
    inner = holder.get(field)
    value = inner.get("id") if isinstance(inner, dict) else None
    if not is_int(value):
        raise InboundRefused(f"{where} has no integer {field}.id")
    return str(value)


def text(holder: dict[str, Any], field: str, where: str) -> str:
    """``holder[field]`` when it is a non-empty string; refused otherwise."""
    value = holder.get(field)
    if not (isinstance(value, str) and value):
        raise InboundRefused(f"{where} has no string {field}")
    return value


def optional_text(holder: dict[str, Any], field: str, where: str) -> str | None:
    """``holder[field]`` when it is a non-empty string, ``None`` when absent, null or
    empty; refused when it is something else."""
    value = holder.get(field)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InboundRefused(f"{where}.{field} is not a string")
    return value


def obj(holder: dict[str, Any], field: str, where: str) -> dict[str, Any] | None:
    """``holder[field]`` when it is an object, ``None`` when absent or null; refused when
    it is something else."""
    value = holder.get(field)
    if value is None or isinstance(value, dict):
        return value
    raise InboundRefused(f"{where}.{field} is not an object")


def _cut(shown: str) -> str:
    return shown if len(shown) <= MAX_NAME else shown[: MAX_NAME - 1] + "…"


def name(value: object) -> str:
    """A provider's name as a reason quotes it: its ``repr``, cut to ``MAX_NAME``."""
    return _cut(repr(value))


def names(values: list[str], most: int = 5) -> str:
    """Several names (object keys), sorted, at most `most` of them; ``nothing`` for none."""
    if not values:
        return "nothing"
    shown = [_cut(value) for value in sorted(values)]
    more = len(shown) - most
    return ", ".join(shown[:most]) + (f" and {more} more" if more > 0 else "")
