"""What the chat UI stores and shows, without a Chainlit server: the conversation kept in message metadata and
rebuilt on resume, the confirmation question and a tool step's input."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from domain.chat import ChatTurn, ControlAction, PendingAction, ToolCall
from entrypoints.chat.render import (
    TURNS_KEY,
    confirmation_text,
    step_input,
    turn_from_dict,
    turn_to_dict,
    turns_from_steps,
    turns_metadata,
)

AT = datetime(2025, 3, 4, 15, 30, tzinfo=UTC)
CALL = ToolCall("call-1", "performance", {"window": "week"})
ANSWER = (ChatTurn("user", "how did we do this week?"), ChatTurn("assistant", "", (CALL,)),
          ChatTurn("tool", '{"ok": true}', tool_call_id="call-1"), ChatTurn("assistant", "Up 1.2 % this week."))


def message(kind: str, output: str, turns: tuple[ChatTurn, ...] | None = None) -> dict[str, object]:
    """A thread step as Chainlit's data layer returns it (metadata as a dict, or a JSON string)."""
    return {"type": kind, "output": output, "metadata": turns_metadata(turns) if turns is not None else {}}


def test_a_turn_survives_the_round_trip_through_json() -> None:
    for turn in ANSWER:
        assert turn_from_dict(json.loads(json.dumps(turn_to_dict(turn)))) == turn


def test_resume_rebuilds_the_conversation_from_the_message_steps_in_order() -> None:
    second = (ChatTurn("user", "pause trading"), ChatTurn("assistant", "Confirm below."))
    steps = [
        message("assistant_message", "Welcome"),                       # no stored turns: not part of it
        message("user_message", "how did we do this week?"),
        {"type": "tool", "output": "**Performance**", "metadata": {"tool_call_id": "call-1"}},
        message("assistant_message", "Up 1.2 % this week.", ANSWER),
        message("user_message", "pause trading"),
        {**message("assistant_message", "Confirm below.", second), "metadata": json.dumps(turns_metadata(second))},
        message("assistant_message", "trading paused by ana", (ChatTurn("assistant", "trading paused by ana"),)),
    ]
    assert turns_from_steps(steps) == [*ANSWER, *second, ChatTurn("assistant", "trading paused by ana")]


def test_a_question_whose_answer_failed_is_kept_and_unreadable_turns_are_skipped() -> None:
    steps = [
        message("user_message", "what happened today?"),                # the answer failed: nothing stored
        message("user_message", "show me the portfolio"),
        {"type": "assistant_message", "output": "x",
         "metadata": {TURNS_KEY: [{"role": "wizard", "content": "?"}, {"content": "no role"},
                                  turn_to_dict(ChatTurn("assistant", "Cash 650 USD."))]}},
        {"type": "assistant_message", "output": "y", "metadata": "not json"},
        message("user_message", "and now?"),
    ]
    assert turns_from_steps(steps) == [
        ChatTurn("user", "what happened today?"), ChatTurn("user", "show me the portfolio"),
        ChatTurn("assistant", "Cash 650 USD."), ChatTurn("user", "and now?")]


def test_the_confirmation_says_what_would_be_done_who_asked_and_until_when() -> None:
    pending = PendingAction("secret-id", ControlAction.FLATTEN, "ana", AT, AT + timedelta(seconds=60), "risk off")
    text = confirmation_text(pending)
    assert "FLATTEN: cancel every open order, sell every position and pause trading" in text
    assert "ana" in text and "risk off" in text and "2025-03-04T15:31:00+00:00" in text
    assert "secret-id" not in text


def test_a_tool_step_shows_its_arguments_as_json() -> None:
    assert json.loads(step_input(ToolCall("c", "query_sql", {"sql": "SELECT 1", "at": AT}))) == {
        "at": "2025-03-04 15:30:00+00:00", "sql": "SELECT 1"}
