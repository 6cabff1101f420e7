"""A `Provider` over any OpenAI-compatible chat-completions endpoint (the `openai` client).

One `complete` is one `chat.completions.create`. Retries are the client's own: 408, 409,
429 and 5xx answers, timeouts and connection failures are retried up to `max_retries`
times, waiting as `retry-after-ms` / `retry-after` say (up to two minutes), else with
exponential backoff. What still fails then is a `ProviderError`: transient for those
causes, permanent for any other status (a bad request, a refused key, an unknown model)
or an answer that cannot be used. `timeout_seconds` bounds each attempt, not their sum.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, cast

import httpx
import openai
from openai.types.chat import ChatCompletion

from awooop.runtime.domain.llm import Message, ProviderError, StepOutput, StepRequest, ToolCall

_TRANSIENT_STATUSES = frozenset({408, 409, 429})
_REASON_LIMIT = 500


class OpenAICompatibleChat:
    """A `Provider` for one endpoint and one API key; an empty key sends a placeholder
    bearer token, which servers without authentication ignore."""

    local = False

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        max_retries: int = 2,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self._api_key = api_key
        self._client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or "unused",
            max_retries=max_retries,
            # The `openai` client takes an `httpx.AsyncClient` as well as its own kind.
            http_client=cast(Any, http_client),
        )
        # The client fills these from the service's own OPENAI_* environment; a tenant's
        # endpoint must never receive the platform's organization, project or admin key.
        self._client.organization = None
        self._client.project = None
        self._client.admin_api_key = None

    async def complete(self, request: StepRequest) -> StepOutput:
        tools = [
            {
                "type": "function",
                "function": {
                    "name": spec.name,
                    "description": spec.description,
                    "parameters": dict(spec.input_schema),
                },
            }
            for spec in request.tools
        ]
        try:
            completion = await self._client.chat.completions.create(
                model=request.model,
                messages=cast(Any, wire_messages(request.messages)),
                tools=cast(Any, tools) if tools else openai.omit,
                max_tokens=request.max_tokens,
                timeout=request.timeout_seconds,
            )
        except openai.APIStatusError as error:
            transient = error.status_code in _TRANSIENT_STATUSES or error.status_code >= 500
            raise self._error(f"status {error.status_code}: {error.message}", transient) from None
        except openai.APITimeoutError:
            raise self._error("timed out after the client's retries", True) from None
        except openai.APIConnectionError as error:
            raise self._error(f"connection failed: {error.__cause__ or error}", True) from None
        except openai.OpenAIError as error:
            raise self._error(f"unusable answer: {error}", False) from None
        return self._output_of(completion)

    async def aclose(self) -> None:
        """Close the connection pool (a caller-supplied `http_client` is closed too)."""
        await self._client.close()

    def _output_of(self, completion: ChatCompletion) -> StepOutput:
        if not completion.choices:
            raise self._error("the answer holds no choice", False)
        choice = completion.choices[0]
        usage = completion.usage
        tokens_in = usage.prompt_tokens if usage else 0
        tokens_out = usage.completion_tokens if usage else 0
        model = completion.model or ""
        calls = choice.message.tool_calls or []
        if calls:
            call = calls[0]
            if call.type != "function":
                raise self._error(f"the model called a {call.type!r} tool", False)
            arguments = _arguments_of(call.function.arguments)
            if arguments is None:
                reason = f"the arguments of tool {call.function.name!r} are not a JSON object"
                raise self._error(reason, False)
            tool_call = ToolCall(tool=call.function.name, arguments=arguments, call_id=call.id)
            return StepOutput(model, tokens_in, tokens_out, tool_call=tool_call)
        if choice.message.content is None:
            reason = f"the answer holds neither a reply nor a tool call ({choice.finish_reason})"
            raise self._error(reason, False)
        return StepOutput(model, tokens_in, tokens_out, reply=choice.message.content)

    def _error(self, reason: str, transient: bool) -> ProviderError:
        # A server may echo the key it refused: it must not reach logs or events.
        if self._api_key:
            reason = reason.replace(self._api_key, "[redacted]")
        return ProviderError(f"openai-compatible: {reason}"[:_REASON_LIMIT], transient=transient)


def wire_messages(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    """The chat-completions form of `messages`. A tool call without an id gets one from
    its position, and a tool turn without one answers the last call before it."""
    wire: list[dict[str, Any]] = []
    last_call_id = ""
    for index, message in enumerate(messages):
        if message.role == "tool":
            call_id = message.call_id or last_call_id
            wire.append({"role": "tool", "tool_call_id": call_id, "content": message.content})
        elif message.role == "assistant" and message.tool_call is not None:
            call = message.tool_call
            last_call_id = call.call_id or f"call_{index}"
            function = {"name": call.tool, "arguments": json.dumps(dict(call.arguments))}
            wire.append(
                {
                    "role": "assistant",
                    "content": message.content or None,
                    "tool_calls": [{"id": last_call_id, "type": "function", "function": function}],
                }
            )
        else:
            wire.append({"role": message.role, "content": message.content})
    return wire


def _arguments_of(text: str) -> Mapping[str, Any] | None:
    try:
        arguments = json.loads(text) if text.strip() else {}
    except ValueError:
        return None
    return arguments if isinstance(arguments, dict) else None
