"""The Chainlit app of `quorum chat` (Chainlit loads this file; docs/chat.md).

- Login: `POST /auth/header` with `x-api-key: <QUORUM_API_KEY>` (scripts), or the password form (user `admin` with
  the API key as password, or a user of `QUORUM_CHAT__USERS`). Nobody else gets in.
- Each message goes to the assistant; every tool call it makes is a step (type "tool") with its input (JSON) and
  its output (markdown: summary, table, SQL, cited events).
- A control action the assistant proposes is asked as an `AskActionMessage` with Confirm and Cancel, both carrying
  the action id; the id that comes back is passed with the one sent to `ControlActions.confirm`, which refuses a
  mismatch. A queued cycle is then followed in a background step (bounded), never in the message handler.
- The conversation (`ChatTurn`s) lives in the user session and in the metadata of the assistant messages, so a
  resumed thread gets it back from its steps.
- Over a recorded backtest run (`quorum chat --backtest`) the runtime's tools read the run and refuse every
  control action; the app itself only offers other starters.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Any

import chainlit as cl
from chainlit.types import ThreadDict
from chainlit.utils import utc_now
from starlette.datastructures import Headers

from application.chat.control_actions import cycle_progress
from application.chat.markdown import result_markdown
from domain.chat import ChatTurn, PendingAction, ToolCall, ToolResult
from domain.errors import ActionConfirmationError, QuorumError
from entrypoints.chat import wiring
from entrypoints.chat.render import confirmation_text, step_input, turns_from_steps, turns_metadata
from entrypoints.chat.wiring import ChatRuntime

ADMIN = "admin"
TURNS = "turns"
FOLLOW_SECONDS = 300.0
POLL_SECONDS = 2.0
_state: dict[str, ChatRuntime] = {}
_background: set[asyncio.Task[None]] = set()


def runtime() -> ChatRuntime:
    """The runtime built at start-up."""
    try:
        return _state["runtime"]
    except KeyError:
        raise RuntimeError("the chat runtime is not built yet (Chainlit calls on_app_startup first)") from None


@cl.on_app_startup
async def startup() -> None:
    """Build the chat's runtime once, from the settings in the environment."""
    from entrypoints.bootstrap import start

    _, container = start()
    _state["runtime"] = await wiring.build_chat(container)


@cl.on_app_shutdown
async def shutdown() -> None:
    """Close what the runtime opened."""
    if (rt := _state.pop("runtime", None)) is not None:
        await rt.close()


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


@cl.header_auth_callback
async def header_auth(headers: Headers) -> cl.User | None:
    """Scripts: the API key in the `x-api-key` header logs in as `admin`."""
    key = runtime().settings.api_key
    given = headers.get("x-api-key")
    if key is None or not given or not _same(given, key.get_secret_value()):
        return None
    return cl.User(identifier=ADMIN, metadata={"login": "api-key header"})


@cl.password_auth_callback
async def password_auth(username: str, password: str) -> cl.User | None:
    """Browsers: user `admin` with the API key as password, or a user of settings.chat.users."""
    settings = runtime().settings
    logins = {name: secret.get_secret_value() for name, secret in settings.chat.users.items()}
    if settings.api_key is not None:
        logins[ADMIN] = settings.api_key.get_secret_value()
    expected = logins.get(username)
    if expected is None or not password or not _same(password, expected):
        return None
    return cl.User(identifier=username, metadata={"login": "password"})


@cl.set_starters
async def starters(user: cl.User | None = None) -> list[cl.Starter]:
    """The questions offered on an empty chat (over a recorded backtest run: no order, whole-run questions)."""
    live = ("Show me the portfolio", "How did we do this week?", "What happened today?", "Pause trading")
    recorded = ("Show me the portfolio", "How did we do overall?", "What happened this week?",
                "Which concerns preceded losses?")
    return [cl.Starter(label=text, message=text) for text in (live if runtime().recorded is None else recorded)]


@cl.on_chat_start
async def chat_start() -> None:
    """A new conversation."""
    cl.user_session.set(TURNS, [])


@cl.on_chat_resume
async def chat_resume(thread: ThreadDict) -> None:
    """A resumed thread: rebuild the conversation from its steps."""
    cl.user_session.set(TURNS, turns_from_steps(thread.get("steps") or []))


def _who() -> str:
    user = cl.user_session.get("user")
    return str(getattr(user, "identifier", "") or "unknown")


def _remember(turns: list[ChatTurn]) -> None:
    history: list[ChatTurn] = cl.user_session.get(TURNS) or []
    cl.user_session.set(TURNS, [*history, *turns])


class ChainlitSteps:
    """Shows each tool call as a Chainlit step (type "tool"): input when it starts, output when it answers."""

    def __init__(self) -> None:
        self._open: dict[str, cl.Step] = {}

    async def tool_started(self, call: ToolCall) -> None:
        """Open the step with the call's arguments."""
        parent = cl.context.current_step  # the on_message run: the step shows before the answer, inside the run
        step = cl.Step(name=call.name, type="tool", show_input="json", metadata={"tool_call_id": call.id},
                       parent_id=parent.id if parent is not None else None)
        step.input = step_input(call)
        step.start = utc_now()
        await step.send()
        self._open[call.id] = step

    async def tool_finished(self, call: ToolCall, result: ToolResult) -> None:
        """Close the step with the tool's answer (an error step when the tool refused or failed)."""
        step = self._open.pop(call.id, None)
        if step is None:
            await self.tool_started(call)
            step = self._open.pop(call.id)
        step.output = result_markdown(result)
        step.language = None
        step.is_error = not result.ok
        step.end = utc_now()
        await step.update()

    async def abandon(self, why: str) -> None:
        """Close every step still open (the answer failed)."""
        for step in self._open.values():
            step.output, step.is_error, step.end = why, True, utc_now()
            await step.update()
        self._open.clear()


@cl.on_message
async def on_message(message: cl.Message) -> None:
    """Answer one message; a proposed control action is then asked for confirmation."""
    rt = runtime()
    who = _who()
    history: list[ChatTurn] = cl.user_session.get(TURNS) or []
    steps = ChainlitSteps()
    try:
        answer = await rt.assistant.answer(history, message.content, who=who, as_of=rt.clock.now(), steps=steps)
    except QuorumError as exc:
        await steps.abandon(str(exc))
        await cl.Message(content=f"I could not answer: {exc}").send()
        return
    except BaseException:
        await steps.abandon("interrupted")
        raise
    _remember(list(answer.turns))
    await cl.Message(content=answer.text, metadata=turns_metadata(answer.turns)).send()
    if answer.pending is not None:
        await ask_confirmation(rt, answer.pending, who)


async def ask_confirmation(rt: ChatRuntime, pending: PendingAction, who: str) -> None:
    """Ask Confirm / Cancel for `pending`; do it only when the id that comes back is the one sent."""
    sent = pending.id
    actions = [cl.Action(name="confirm", payload={"action_id": sent}, label="Confirm"),
               cl.Action(name="cancel", payload={"action_id": sent}, label="Cancel")]
    reply: Any = await cl.AskActionMessage(content=confirmation_text(pending), actions=actions,
                                           timeout=rt.settings.chat.confirm_timeout_s).send()
    now = rt.clock.now()
    result: ToolResult | None = None
    if reply is None:
        await rt.controls.cancel(sent, by=who, as_of=now)
        text = "No answer in time: nothing was done."
    elif reply.get("name") == "confirm":
        returned = str((reply.get("payload") or {}).get("action_id", ""))
        try:
            result = await rt.controls.confirm(sent, returned, by=who, as_of=now)
            text = result.text if result.ok else f"It failed: {result.text}"
        except ActionConfirmationError as exc:
            text = f"Refused: {exc}. Nothing was done."
    else:
        text = (await rt.controls.cancel(sent, by=who, as_of=now)).text
    turn = ChatTurn("assistant", text)
    _remember([turn])
    await cl.Message(content=text, metadata=turns_metadata([turn])).send()
    cycle_id = result.data.get("cycle_id") if result is not None and result.ok else None
    if isinstance(cycle_id, str):
        task = asyncio.create_task(follow_cycle(rt, cycle_id))
        _background.add(task)
        task.add_done_callback(_background.discard)


async def follow_cycle(rt: ChatRuntime, cycle_id: str, *, limit_s: float = FOLLOW_SECONDS,
                       every_s: float = POLL_SECONDS) -> None:
    """Show a queued cycle's progress as a step, polling its status until it ends or `limit_s` passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    async with cl.Step(name=f"cycle {cycle_id}", type="run") as step:
        while True:
            progress = await cycle_progress(rt.read_models, cycle_id)
            step.output = progress.text
            await step.update()
            if progress.done:
                return
            if loop.time() >= deadline:
                step.output = f"{progress.text} (still {progress.status} after {limit_s:.0f} s; stopped following)"
                return
            await asyncio.sleep(every_s)
