"""A step whose reply must match the agent's `output_schema`: ask, check, re-ask.

Without a schema, or when the model calls a tool (the schema binds the final reply only),
one call answers. Otherwise an invalid reply is followed by a re-ask: the conversation
grows by the model's reply and a user turn listing what was wrong, and the re-ask may
spend only what the first `max_tokens` leaves after the output tokens already used. When
`max_reasks` re-asks are spent, or no output token is left, the step is refused with
`SchemaRefused`, which carries every token the calls used so the budget still counts them.
A `ProviderError` of any call goes up unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

from awooop.contracts.registries.errors import E_SCHEMA_001
from awooop.runtime.domain.budget import prompt_tokens
from awooop.runtime.domain.llm import Message, Provider, StepOutput, StepRequest
from awooop.runtime.domain.output_schema import reask_text, reply_errors


@dataclass(frozen=True)
class StructuredAnswer:
    """The last output and what it took: re-asks made, token sums over every call."""

    output: StepOutput
    schema_retries: int
    tokens_in: int
    tokens_out: int


class SchemaRefused(Exception):
    """The reply is still invalid after the re-asks the step allows (`E-SCHEMA-001`)."""

    code: ClassVar[str] = E_SCHEMA_001.code

    def __init__(self, reason: str, schema_retries: int, tokens_in: int, tokens_out: int) -> None:
        super().__init__(f"{self.code}: {reason}")
        self.reason = reason
        self.schema_retries = schema_retries
        self.tokens_in = tokens_in
        self.tokens_out = tokens_out


async def complete_structured(
    provider: Provider,
    request: StepRequest,
    *,
    max_reasks: int = 3,
    allowance: int | None = None,
) -> StructuredAnswer:
    """Ask `provider` and re-ask until the reply matches `request.output_schema`.

    `allowance` is every token the step may use (its reservation): a re-ask is made only
    when its counted input and some output still fit in what is left of it. Raises
    `SchemaRefused` when the reply never matches within `max_reasks` re-asks, the output
    tokens of `request.max_tokens` or the allowance, and `ProviderError` when a call
    fails."""
    output = await provider.complete(request)
    tokens_in, tokens_out = output.tokens_in, output.tokens_out
    schema = request.output_schema
    if schema is None or output.tool_call is not None:
        return StructuredAnswer(output, 0, tokens_in, tokens_out)
    messages = request.messages
    reasks = 0
    while errors := reply_errors(output.reply, schema):
        messages = (
            *messages,
            Message("assistant", output.reply or ""),
            Message("user", reask_text(errors)),
        )
        left = request.max_tokens - tokens_out
        if allowance is not None:
            counted = prompt_tokens(replace(request, messages=messages))
            left = min(left, allowance - tokens_in - tokens_out - counted)
        if reasks >= max_reasks or left <= 0:
            why = f"after {reasks} re-asks" if left > 0 else "with no token left to re-ask"
            reason = f"reply invalid against the output schema {why}: {'; '.join(errors)}"
            raise SchemaRefused(reason, reasks, tokens_in, tokens_out)
        reasks += 1
        output = await provider.complete(replace(request, messages=messages, max_tokens=left))
        tokens_in += output.tokens_in
        tokens_out += output.tokens_out
        if output.tool_call is not None:
            break
    return StructuredAnswer(output, reasks, tokens_in, tokens_out)
