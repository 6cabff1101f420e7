"""The deterministic provider of demos, tests and the bench: it plays its script.

Step `n` of a run answers with entry `n` of the script (the last entry again
past its end): a tool call, or a reply in which `{result}` stands for the
result the run last resumed with. It reports token usage as the budget counts
it (`count_tokens` of what it read and wrote), so scripted runs are budgeted
like any other. It does no I/O: `local` tells the step it may answer inside
the step's own transaction.
"""

from __future__ import annotations

import json
from typing import Any

from awooop.contracts.families.agent import CallToolStep, ReplyStep, ScriptedProvider
from awooop.runtime.domain.budget import count_tokens
from awooop.runtime.domain.llm import StepOutput, StepRequest, ToolCall

SCRIPTED_MODEL = "scripted"
"""The model name scripted steps report (the budget's price table may price it)."""


class ScriptedChat:
    """A `Provider` over one agent revision's script."""

    local = True

    def __init__(self, provider: ScriptedProvider) -> None:
        self._script = provider.script

    async def complete(self, request: StepRequest) -> StepOutput:
        return self.answer(request)

    def answer(self, request: StepRequest) -> StepOutput:
        """The script's answer to `request` (synchronously: it computes, never waits)."""
        entry = self._script[min(request.step, len(self._script) - 1)]
        tokens_in = sum(count_tokens(message.content) for message in request.messages)
        if isinstance(entry, CallToolStep):
            call = ToolCall(entry.call_tool, dict(entry.arguments))
            written = json.dumps({"tool": call.tool, "arguments": call.arguments})
            return StepOutput(SCRIPTED_MODEL, tokens_in, count_tokens(written), tool_call=call)
        assert isinstance(entry, ReplyStep)
        reply = entry.reply.replace("{result}", describe(request.last_result))
        return StepOutput(SCRIPTED_MODEL, tokens_in, count_tokens(reply), reply=reply)


def describe(result: Any) -> str:
    """A tool result as a script's reply shows it."""
    if isinstance(result, dict):
        return ", ".join(f"{k}: {v}" for k, v in result.items())
    return str(result)
