"""Structured output: a reply is checked against the agent's schema and re-asked until valid.

The loop runs through the OpenAI-compatible provider against the fake server (real HTTP),
so what the re-asks carry is read from what the server received; the checking itself is
tested pure (`domain/output_schema.py`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import pytest

from awooop.runtime.adapters.openai_provider import OpenAICompatibleChat
from awooop.runtime.domain.llm import Message, StepRequest, ToolSpec
from awooop.runtime.domain.output_schema import (
    MAX_ERROR_LINES,
    json_pointer,
    reask_text,
    reply_errors,
)
from awooop.runtime.structured_output import SchemaRefused, complete_structured
from support.fake_llm import FakeLLM

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"answer": {"type": "integer"}},
    "required": ["answer"],
    "additionalProperties": False,
}
ASK = Message("user", "How many replicas run?")
TYPE_ERROR = "/answer: 'x' is not of type 'integer'"


def step(max_tokens: int = 1000, schema: dict[str, Any] | None = SCHEMA) -> StepRequest:
    return StepRequest(
        model="fake-model",
        messages=(Message("system", "Answer in JSON."), ASK),
        tools=(),
        max_tokens=max_tokens,
        timeout_seconds=5.0,
        output_schema=schema,
    )


@pytest.fixture
def llm() -> Iterator[FakeLLM]:
    with FakeLLM() as fake:
        yield fake


@pytest.fixture
async def chat(llm: FakeLLM) -> AsyncIterator[OpenAICompatibleChat]:
    provider = OpenAICompatibleChat(llm.base_url, "sk-test", max_retries=0)
    yield provider
    await provider.aclose()


async def test_a_valid_first_reply_needs_no_reask(llm: FakeLLM, chat: OpenAICompatibleChat) -> None:
    llm.answer_reply('{"answer": 3}', tokens_in=20, tokens_out=5)

    answer = await complete_structured(chat, step())

    assert answer.output.reply == '{"answer": 3}'
    assert (answer.schema_retries, answer.tokens_in, answer.tokens_out) == (0, 20, 5)
    assert len(llm.requests) == 1


async def test_still_invalid_after_three_reasks_is_refused(
    llm: FakeLLM, chat: OpenAICompatibleChat
) -> None:
    for _ in range(4):
        llm.answer_reply('{"answer": "x"}', tokens_in=10, tokens_out=4)

    with pytest.raises(SchemaRefused) as refused:
        await complete_structured(chat, step(), max_reasks=3)

    assert refused.value.code == "E-SCHEMA-001"
    assert refused.value.schema_retries == 3
    assert (refused.value.tokens_in, refused.value.tokens_out) == (40, 16)
    assert TYPE_ERROR in refused.value.reason
    sent = llm.requests
    assert len(sent) == 4
    for reasks, body in enumerate(sent[1:], start=1):
        turns = body["messages"]
        assert len(turns) == 2 + 2 * reasks, "each re-ask keeps the earlier ones"
        assert turns[-2] == {"role": "assistant", "content": '{"answer": "x"}'}
        assert turns[-1]["role"] == "user"
        assert TYPE_ERROR in turns[-1]["content"]


async def test_a_reply_that_is_not_json_is_reasked_with_why(
    llm: FakeLLM, chat: OpenAICompatibleChat
) -> None:
    llm.answer_reply("There are 3 replicas.")
    llm.answer_reply('{"answer": 3}')

    answer = await complete_structured(chat, step())

    assert answer.schema_retries == 1
    assert "not JSON: Expecting value" in llm.requests[1]["messages"][-1]["content"]


async def test_invalid_then_valid_sums_the_tokens_of_both_calls(
    llm: FakeLLM, chat: OpenAICompatibleChat
) -> None:
    llm.answer_reply('{"answer": "x"}', tokens_in=30, tokens_out=7)
    llm.answer_reply('{"answer": 3}', tokens_in=45, tokens_out=5)

    answer = await complete_structured(chat, step())

    assert answer.output.reply == '{"answer": 3}'
    assert (answer.schema_retries, answer.tokens_in, answer.tokens_out) == (1, 75, 12)
    assert (answer.output.tokens_in, answer.output.tokens_out) == (45, 5)


async def test_reasks_may_spend_only_the_output_tokens_left(
    llm: FakeLLM, chat: OpenAICompatibleChat
) -> None:
    llm.answer_reply('{"answer": "x"}', tokens_out=30)
    llm.answer_reply('{"answer": "y"}', tokens_out=25)
    llm.answer_reply('{"answer": 3}', tokens_out=10)

    answer = await complete_structured(chat, step(max_tokens=100))

    assert answer.schema_retries == 2
    assert [body["max_tokens"] for body in llm.requests] == [100, 70, 45]


async def test_no_output_token_left_stops_the_reasks(
    llm: FakeLLM, chat: OpenAICompatibleChat
) -> None:
    llm.answer_reply('{"answer": "x"}', tokens_out=60)

    with pytest.raises(SchemaRefused) as refused:
        await complete_structured(chat, step(max_tokens=60))

    assert refused.value.schema_retries == 0
    assert refused.value.tokens_out == 60
    assert len(llm.requests) == 1


async def test_a_reask_must_fit_what_is_left_of_the_steps_allowance(
    llm: FakeLLM, chat: OpenAICompatibleChat
) -> None:
    """Each re-ask resends the whole conversation: the step's reservation (its allowance)
    must fund that input as well as some output, or no re-ask is made."""
    llm.answer_reply('{"answer": "x"}', tokens_in=400, tokens_out=20)
    llm.answer_reply('{"answer": "y"}', tokens_in=450, tokens_out=20)

    with pytest.raises(SchemaRefused) as refused:
        await complete_structured(chat, step(max_tokens=1000), allowance=1000)

    # 440 used; the second ask's counted input and output fit in the 560 left, a third
    # ask's (its input grown by two replies and two error lists) no longer does.
    assert len(llm.requests) == 2
    assert refused.value.schema_retries == 1
    assert (refused.value.tokens_in, refused.value.tokens_out) == (850, 40)
    assert llm.requests[1]["max_tokens"] < 560


async def test_without_a_schema_any_reply_is_final(
    llm: FakeLLM, chat: OpenAICompatibleChat
) -> None:
    llm.answer_reply("not json at all")

    answer = await complete_structured(chat, step(schema=None))

    assert (answer.output.reply, answer.schema_retries) == ("not json at all", 0)
    assert len(llm.requests) == 1


async def test_a_tool_call_is_not_held_to_the_schema(
    llm: FakeLLM, chat: OpenAICompatibleChat
) -> None:
    llm.answer_tool_call("status__demo", {"service": "checkout"})
    tool = ToolSpec("status__demo", "The status of a service.", {"type": "object"})

    answer = await complete_structured(chat, replace(step(), tools=(tool,)))

    assert answer.output.tool_call is not None
    assert answer.schema_retries == 0
    assert len(llm.requests) == 1


@pytest.mark.unit
def test_a_valid_reply_has_no_errors() -> None:
    assert reply_errors('{"answer": 3}', SCHEMA) == ()


@pytest.mark.unit
def test_each_error_names_its_json_pointer() -> None:
    schema = {
        "type": "object",
        "properties": {"items": {"type": "array", "items": {"type": "integer"}}},
        "required": ["items", "total"],
    }
    errors = reply_errors(json.dumps({"items": [1, "two", 3, None]}), schema)
    assert errors == (
        "(root): 'total' is a required property",
        "/items/1: 'two' is not of type 'integer'",
        "/items/3: None is not of type 'integer'",
    )


@pytest.mark.unit
def test_pointers_escape_slash_and_tilde() -> None:
    assert json_pointer(["a/b", "c~d", 0]) == "/a~1b/c~0d/0"
    assert json_pointer([]) == "(root)"


@pytest.mark.unit
def test_a_reply_that_is_not_json_says_why() -> None:
    (line,) = reply_errors("{'answer': 3}", SCHEMA)
    assert line.startswith("not JSON: ")
    assert reply_errors(None, SCHEMA)[0].startswith("not JSON: ")


@pytest.mark.unit
def test_errors_are_capped_in_number_and_length() -> None:
    schema = {"type": "array", "items": {"type": "integer"}}
    errors = reply_errors(json.dumps(["x" * 1000] * 50), schema)
    assert len(errors) == MAX_ERROR_LINES + 1
    assert errors[-1] == f"... and {50 - MAX_ERROR_LINES} more"
    assert all(len(line) <= 300 for line in errors)


@pytest.mark.unit
def test_the_reask_lists_every_error() -> None:
    text = reask_text([TYPE_ERROR, "(root): 'answer' is a required property"])
    assert f"- {TYPE_ERROR}\n- (root): 'answer' is a required property" in text
