"""The OpenAI-compatible provider against a fake chat-completions server over real HTTP.

Given what the fake answers (a tool call, a reply, a 429 with Retry-After, a 5xx, a held
request, a refused key), then the provider's output or `ProviderError`, and what the
fake saw: the wire shape of messages and tools, the bearer token, the retry timing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from awooop.runtime.adapters.openai_provider import OpenAICompatibleChat
from awooop.runtime.domain.llm import Message, ProviderError, StepRequest, ToolCall, ToolSpec
from support.fake_llm import FakeLLM

API_KEY = "sk-test-4f1c9e2d7a"
STATUS_TOOL = ToolSpec(
    name="status__demo",
    description="The status of a service.",
    input_schema={
        "type": "object",
        "properties": {"service": {"type": "string"}},
        "required": ["service"],
    },
)


def step(*messages: Message, timeout: float = 5.0, tools: tuple[ToolSpec, ...] = ()) -> StepRequest:
    return StepRequest(
        model="fake-model",
        messages=messages,
        tools=tools,
        max_tokens=256,
        timeout_seconds=timeout,
    )


ASK = Message("user", "Is checkout up?")


@pytest.fixture
def llm() -> Iterator[FakeLLM]:
    with FakeLLM() as fake:
        yield fake


@pytest.fixture
async def chat(llm: FakeLLM) -> AsyncIterator[OpenAICompatibleChat]:
    provider = OpenAICompatibleChat(llm.base_url, API_KEY)
    yield provider
    await provider.aclose()


async def test_a_tool_call_round_trip_sends_the_call_and_its_result_back(
    llm: FakeLLM, chat: OpenAICompatibleChat
) -> None:
    system = Message("system", "You watch services.")
    llm.answer_tool_call("status__demo", {"service": "checkout"}, call_id="call_abc")
    llm.answer_reply("checkout is up")

    first = await chat.complete(step(system, ASK, tools=(STATUS_TOOL,)))
    assert first.reply is None
    assert first.tool_call == ToolCall("status__demo", {"service": "checkout"}, "call_abc")

    asked = Message("assistant", "", tool_call=first.tool_call)
    result = Message("tool", '{"state": "up"}', call_id="call_abc")
    second = await chat.complete(step(system, ASK, asked, result, tools=(STATUS_TOOL,)))
    assert second.reply == "checkout is up"
    assert second.tool_call is None

    sent = llm.requests
    assert len(sent) == 2
    assert sent[0]["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "status__demo",
                "description": "The status of a service.",
                "parameters": dict(STATUS_TOOL.input_schema),
            },
        }
    ]
    assert sent[0]["max_tokens"] == 256
    assert sent[0]["model"] == "fake-model"
    assert sent[1]["messages"] == [
        {"role": "system", "content": "You watch services."},
        {"role": "user", "content": "Is checkout up?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_abc",
                    "type": "function",
                    "function": {"name": "status__demo", "arguments": '{"service": "checkout"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_abc", "content": '{"state": "up"}'},
    ]


async def test_usage_and_model_come_from_the_answer(
    llm: FakeLLM, chat: OpenAICompatibleChat
) -> None:
    llm.answer_reply("fine", tokens_in=123, tokens_out=45)
    llm.answer_reply("fine again", usage=False)

    counted = await chat.complete(step(ASK))
    uncounted = await chat.complete(step(ASK))

    assert (counted.model, counted.tokens_in, counted.tokens_out) == ("fake-model", 123, 45)
    assert (uncounted.reply, uncounted.tokens_in, uncounted.tokens_out) == ("fine again", 0, 0)


async def test_no_tools_sends_no_tools_field(llm: FakeLLM, chat: OpenAICompatibleChat) -> None:
    await chat.complete(step(ASK))
    assert "tools" not in llm.requests[0]


async def test_a_429_is_retried_after_its_retry_after(
    llm: FakeLLM, chat: OpenAICompatibleChat
) -> None:
    llm.answer_status(429, headers={"retry-after": "1"})
    llm.answer_reply("after the wait")

    output = await chat.complete(step(ASK))

    assert output.reply == "after the wait"
    first, second = llm.request_times
    assert second - first >= 0.9


async def test_a_500_is_retried(llm: FakeLLM, chat: OpenAICompatibleChat) -> None:
    llm.answer_status(500)
    llm.answer_reply("recovered")

    output = await chat.complete(step(ASK))

    assert output.reply == "recovered"
    assert len(llm.requests) == 2


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_a_rate_limit_or_5xx_past_the_retries_is_transient(llm: FakeLLM, status: int) -> None:
    provider = OpenAICompatibleChat(llm.base_url, API_KEY, max_retries=0)
    llm.answer_status(status)
    with pytest.raises(ProviderError) as refused:
        await provider.complete(step(ASK))
    await provider.aclose()
    assert refused.value.transient
    assert str(status) in refused.value.reason


async def test_a_stalled_server_times_out_as_transient(llm: FakeLLM) -> None:
    provider = OpenAICompatibleChat(llm.base_url, API_KEY, max_retries=1)
    llm.stall()

    with pytest.raises(ProviderError) as refused:
        await provider.complete(step(ASK, timeout=0.5))

    assert refused.value.transient
    assert llm.waiting.is_set()
    assert len(llm.requests) == 2, "a timed-out attempt is retried by the client"
    llm.release()
    await provider.aclose()


async def test_a_held_request_is_answered_once_released(
    llm: FakeLLM, chat: OpenAICompatibleChat
) -> None:
    llm.stall()
    llm.answer_reply("late")
    pending = asyncio.create_task(chat.complete(step(ASK)))

    assert await asyncio.to_thread(llm.waiting.wait, 5)
    assert not pending.done()
    llm.release()

    assert (await pending).reply == "late"


async def test_a_refused_key_is_permanent_and_never_in_the_reason(
    llm: FakeLLM, chat: OpenAICompatibleChat
) -> None:
    echo = {"error": {"message": f"Incorrect API key provided: {API_KEY}", "type": "auth"}}
    llm.answer_status(401, body=echo)

    with pytest.raises(ProviderError) as refused:
        await chat.complete(step(ASK))

    assert not refused.value.transient
    assert "401" in refused.value.reason
    assert API_KEY not in refused.value.reason
    assert API_KEY not in str(refused.value)
    assert llm.authorizations == [f"Bearer {API_KEY}"]
    assert len(llm.requests) == 1, "a 401 is not retried"


@pytest.mark.parametrize("status", [400, 403, 404, 422])
async def test_client_errors_are_permanent(
    llm: FakeLLM, chat: OpenAICompatibleChat, status: int
) -> None:
    llm.answer_status(status)
    with pytest.raises(ProviderError) as refused:
        await chat.complete(step(ASK))
    assert not refused.value.transient


@pytest.mark.parametrize("arguments", ["[1, 2]", "{not json", '"text"'])
async def test_tool_arguments_that_are_not_an_object_are_refused(
    llm: FakeLLM, chat: OpenAICompatibleChat, arguments: str
) -> None:
    llm.answer_tool_call("status__demo", arguments)
    with pytest.raises(ProviderError) as refused:
        await chat.complete(step(ASK, tools=(STATUS_TOOL,)))
    assert not refused.value.transient
    assert "not a JSON object" in refused.value.reason


async def test_an_unreachable_server_is_transient() -> None:
    with FakeLLM() as gone:
        base_url = gone.base_url
    provider = OpenAICompatibleChat(base_url, API_KEY, max_retries=0)
    with pytest.raises(ProviderError) as refused:
        await provider.complete(step(ASK))
    await provider.aclose()
    assert refused.value.transient


async def test_a_given_http_client_carries_the_requests(llm: FakeLLM) -> None:
    seen: list[str] = []

    async def note(request: httpx.Request) -> None:
        seen.append(request.url.path)

    client = httpx.AsyncClient(event_hooks={"request": [note]})
    provider = OpenAICompatibleChat(llm.base_url, API_KEY, http_client=client)
    output = await provider.complete(step(ASK))
    await provider.aclose()

    assert output.reply == "ok"
    assert seen == ["/v1/chat/completions"]


async def test_the_platform_openai_environment_never_reaches_a_tenant_endpoint(
    llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_ORG_ID", "org-platform")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-platform")
    monkeypatch.setenv("OPENAI_ADMIN_KEY", "sk-admin-platform")
    provider = OpenAICompatibleChat(llm.base_url, "")
    await provider.complete(step(ASK))
    await provider.aclose()

    assert llm.authorizations == ["Bearer unused"]
    (sent,) = llm.headers
    assert "openai-organization" not in sent
    assert "openai-project" not in sent
    assert not any("platform" in value for value in sent.values())
