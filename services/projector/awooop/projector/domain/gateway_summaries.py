"""Timeline summaries of the gateway's word on a tool call: it needs an approval, it
succeeded, a gate refused it, or it failed.

An operator reads these lines to learn why, so the gateway's reason is kept: redacted
here (it may quote what the agent sent) and cut to `REASON_CHARS`. The tool's
arguments and result are not (the call's redacted display arguments are in
`mcp_calls`); of redaction only the number of values and their kinds are said.
"""

from __future__ import annotations

from typing import Any

from awooop.security.redaction import redact_text

Summary = dict[str, Any]

REASON_CHARS = 160
"""How much of the gateway's redacted reason a timeline line keeps."""

_TRANSIENCE = {True: "transient", False: "permanent", None: ""}


def _tool(p: Any) -> str:
    # Events upcast from versions that did not name the tool have an empty one.
    return f"tool {p.tool}" if p.tool else "tool call"


def because(reason: str) -> str:
    """`: <reason>`, redacted, on one line and cut to `REASON_CHARS`; empty for none."""
    said = " ".join(redact_text(reason).split()) if reason else ""
    if not said:
        return ""
    return f": {said if len(said) <= REASON_CHARS else said[: REASON_CHARS - 1] + '…'}"


def _ms(latency_ms: float) -> str:
    return f"{latency_ms:.1f} ms" if latency_ms < 10 else f"{latency_ms:.0f} ms"


def redaction_note(redactions: dict[str, int]) -> str:
    """How many values of which kinds redaction replaced (`2 values redacted: card,
    email`), never a value; empty when none was."""
    total = sum(redactions.values())
    if not total:
        return ""
    values = "value" if total == 1 else "values"
    return f"{total} {values} redacted: {', '.join(sorted(redactions))}"


def approval_required(p: Any) -> Summary:
    granted = ", ".join(
        f"{value} {what}" for what, value in (("scope", p.scope), ("mode", p.mode)) if value
    )
    held = f" ({granted})" if granted else ""
    return {
        "text": f"{_tool(p)} needs an approval{held}{because(p.reason)}",
        "call_id": p.call_id,
        "tool": p.tool,
        "scope": p.scope,
        "mode": p.mode,
        "revisions": list(p.revisions),
    }


def tool_call_succeeded(p: Any) -> Summary:
    said = f"{_tool(p)} succeeded"
    if p.latency_ms is not None:
        said += f" in {_ms(p.latency_ms)}"
    if note := redaction_note(p.redactions):
        said += f"; {note}"
    return {
        "text": said,
        "call_id": p.call_id,
        "tool": p.tool,
        "result_kind": "object" if isinstance(p.result, dict) else "text",
        "latency_ms": p.latency_ms,
        "redactions": dict(p.redactions),
        "revisions": list(p.revisions),
    }


def tool_call_blocked(p: Any) -> Summary:
    said = f"{_tool(p)} refused at gate {p.gate} ({p.code}){because(p.reason)}"
    if p.retry_after is not None:
        said += f"; retry after {p.retry_after:g} s"
    if p.would_need is not None:
        said += f"; would need {p.would_need} in suggest or active mode"
    return {
        "text": said,
        "call_id": p.call_id,
        "tool": p.tool,
        "gate": p.gate,
        "code": p.code,
        "retry_after": p.retry_after,
        "would_need": p.would_need,
        "revisions": list(p.revisions),
    }


def tool_call_failed(p: Any) -> Summary:
    cause = ", ".join(said for said in (p.code, _TRANSIENCE[p.transient]) if said)
    after = f" after {_ms(p.latency_ms)}" if p.latency_ms is not None else ""
    return {
        "text": f"{_tool(p)} failed{after} ({cause}){because(p.reason)}",
        "call_id": p.call_id,
        "tool": p.tool,
        "code": p.code,
        "transient": p.transient,
        "latency_ms": p.latency_ms,
    }
