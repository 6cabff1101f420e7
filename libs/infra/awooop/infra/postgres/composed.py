"""Statements composed of other statements' parts, so that one round trip does the work
of several: each part keeps its own parameter numbers, moved past the parts before it."""

from __future__ import annotations

import re

_PARAMETER = re.compile(r"\$(\d+)")


def renumbered(sql: str, first: int) -> str:
    """`sql` with its parameters `$1 … $n` renamed `$first … $first + n - 1`.

    For the project's own statements only: they hold no `$` in a literal or a
    dollar-quoted body, where a renumbering would change text."""
    if first < 1:
        raise ValueError(f"parameters are numbered from 1, not {first}")
    return _PARAMETER.sub(lambda m: f"${int(m.group(1)) + first - 1}", sql)
