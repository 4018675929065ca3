"""JSON answers: fences and prose are tolerated, and every other defect is named precisely."""

from __future__ import annotations

import json

import pytest

from adapters.llm.json_output import (
    InvalidOutputError,
    extract_json_object,
    parse_output,
    repair_message,
    response_format,
    schema_instructions,
    strip_code_fences,
    with_schema_instructions,
)
from domain.agents.schemas import RiskBatch, SignalBatch, ValidatorBatch
from domain.errors import LLMError
from domain.ports.llm import Message

GOOD = {"proposals": [{"symbol": "AAPL", "action": "BUY", "confidence": 0.7, "reasoning": "trend up"}]}
GOOD_TEXT = json.dumps(GOOD)


def kind_of(text: str, schema: type = SignalBatch) -> str:
    with pytest.raises(InvalidOutputError) as info:
        parse_output(text, schema)
    return info.value.kind


def test_plain_json_validates_into_the_schema() -> None:
    batch = parse_output(GOOD_TEXT, SignalBatch)
    assert batch.proposals[0].symbol == "AAPL"
    assert batch.proposals[0].confidence == 0.7


@pytest.mark.parametrize("text", [
    f"```json\n{GOOD_TEXT}\n```",
    f"```\n{GOOD_TEXT}\n```",
    f"Here is my answer:\n```json\n{json.dumps(GOOD, indent=2)}\n```\nLet me know if you need more.",
    f"Sure. {GOOD_TEXT} Hope this helps.",
    f"Note {{not json}} first, then: {GOOD_TEXT}",
    f"{GOOD_TEXT}\nComputed with:\n```python\nscore = momentum * 2\n```",
])
def test_fences_and_surrounding_prose_are_ignored(text: str) -> None:
    assert parse_output(text, SignalBatch).proposals[0].action == "BUY"


def test_braces_inside_strings_do_not_end_the_object() -> None:
    data = {"proposals": [{"symbol": "MSFT", "action": "HOLD", "confidence": 0.5,
                           "reasoning": 'range {"low": 1} and a "quote} \\" here'}]}
    assert parse_output(json.dumps(data), SignalBatch).proposals[0].reasoning.startswith("range {")


@pytest.mark.parametrize("text", ["", "   \n", "```json\n```"])
def test_empty_answer(text: str) -> None:
    assert kind_of(text) == "empty"


def test_prose_without_an_object() -> None:
    assert kind_of("I cannot give financial advice.") == "no_json"


@pytest.mark.parametrize("text", [
    GOOD_TEXT[: len(GOOD_TEXT) // 2],
    "```json\n" + GOOD_TEXT[:-3],
    '{"proposals": [{"symbol": "AAPL", "reasoning": "unterminated string}',
])
def test_truncated_json_is_named_truncated(text: str) -> None:
    with pytest.raises(InvalidOutputError) as info:
        parse_output(text, SignalBatch)
    assert info.value.kind == "truncated"
    assert "never closes" in str(info.value)


@pytest.mark.parametrize("text", [
    "{symbol: AAPL, action: BUY}",
    "{'proposals': []}",
    '{"proposals": [],}',
    '{"proposals": [{"symbol": "AAPL", "action": "BUY", "confidence": NaN, "reasoning": "x"}]}',
])
def test_invalid_json(text: str) -> None:
    with pytest.raises(InvalidOutputError) as info:
        parse_output(text, SignalBatch)
    assert info.value.kind == "invalid_json"
    assert "not valid JSON" in str(info.value)


def test_schema_violation_names_the_field_path_and_value() -> None:
    bad = {"proposals": [GOOD["proposals"][0], {"symbol": "MSFT", "action": "BUY", "confidence": 1.5,
                                                "reasoning": "x"}]}
    with pytest.raises(InvalidOutputError) as info:
        parse_output(json.dumps(bad), SignalBatch)
    assert info.value.kind == "schema"
    message = str(info.value)
    assert "SignalBatch" in message
    assert "proposals.1.confidence" in message
    assert "1.5" in message


def test_schema_violations_unknown_field_missing_field_and_wrong_enum() -> None:
    bad = {"proposals": [{"symbol": "AAPL", "action": "STRONG_BUY", "confidence": 0.5}], "extra": 1}
    with pytest.raises(InvalidOutputError) as info:
        parse_output(json.dumps(bad), SignalBatch)
    message = str(info.value)
    assert "proposals.0.action" in message
    assert "proposals.0.reasoning: Field required" in message
    assert "extra: Extra inputs are not permitted" in message


def test_output_errors_are_llm_errors() -> None:
    with pytest.raises(LLMError):
        parse_output("nope", RiskBatch)


def test_strip_code_fences_leaves_unfenced_text_alone() -> None:
    assert strip_code_fences('{"a": 1}') == '{"a": 1}'
    assert strip_code_fences('x ```json\n{"a": 1}\n``` y').strip() == '{"a": 1}'


def test_extract_json_object_takes_the_outermost_object() -> None:
    assert extract_json_object('prefix {"a": {"b": [1, {"c": 2}]}} suffix') == {"a": {"b": [1, {"c": 2}]}}


def test_schema_instructions_carry_the_json_schema_of_the_output() -> None:
    text = schema_instructions(ValidatorBatch)
    schema = json.loads(text.split("JSON schema of ValidatorBatch: ", 1)[1])
    assert schema == ValidatorBatch.model_json_schema()
    assert "confidence_adjustment" in text


def test_instructions_are_appended_to_the_system_message_once() -> None:
    messages = (Message("system", "You are the signal agent."), Message("user", "AAPL features ..."))
    rendered = with_schema_instructions(messages, SignalBatch)
    assert [m["role"] for m in rendered] == ["system", "user"]
    assert rendered[0]["content"].startswith("You are the signal agent.")
    assert "JSON schema of SignalBatch" in rendered[0]["content"]
    again = with_schema_instructions(
        tuple(Message(m["role"], m["content"]) for m in rendered), SignalBatch)  # type: ignore[arg-type]
    assert again == rendered


def test_a_system_message_is_added_when_there_is_none() -> None:
    rendered = with_schema_instructions((Message("user", "hello"),), RiskBatch)
    assert rendered[0]["role"] == "system" and "RiskBatch" in rendered[0]["content"]
    assert rendered[1] == {"role": "user", "content": "hello"}


def test_response_format_modes() -> None:
    assert response_format(SignalBatch, "none") is None
    assert response_format(SignalBatch, "json_object") == {"type": "json_object"}
    fmt = response_format(SignalBatch, "json_schema")
    assert fmt is not None
    assert fmt["json_schema"]["name"] == "SignalBatch"
    assert fmt["json_schema"]["schema"] == SignalBatch.model_json_schema()


def test_repair_message_quotes_the_error() -> None:
    with pytest.raises(InvalidOutputError) as info:
        parse_output('{"proposals": [{"symbol": "AAPL"}]}', SignalBatch)
    assert "proposals.0.action" in repair_message(info.value)
