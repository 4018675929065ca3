"""JSON answers of LLMs: find the object in the text, parse it, validate it against the agent's schema.

Models wrap JSON in markdown fences, add a sentence before or after it, or stop
mid-object when they run out of tokens. `parse_output` copes with the first two
and says precisely what was wrong otherwise (`InvalidOutputError.kind`), so the
caller can re-ask with the reason. `schema_instructions` and `response_format`
tell the model which schema to answer in; `schema_messages` sends the schema once (in the
response format when it carries it, else in the system prompt).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from domain.errors import LLMError
from domain.ports.llm import Message, OutputT

OutputErrorKind = Literal["empty", "no_json", "truncated", "invalid_json", "schema"]
ResponseFormatMode = Literal["json_schema", "json_object", "none"]

_FENCE_OPEN = re.compile(r"```[ \t]*(?:json|JSON|javascript)?[ \t]*\r?\n?")
_INSTRUCTIONS_MARKER = "Answer with exactly one JSON object"
_MAX_ERRORS_SHOWN = 6


class InvalidOutputError(LLMError):
    """The model's text is not a valid instance of the output schema.

    Attributes:
        kind: what was wrong: "empty", "no_json" (no object in the text), "truncated"
            (the object never closes), "invalid_json" or "schema" (valid JSON that
            violates the schema).
    """

    def __init__(self, kind: OutputErrorKind, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind: OutputErrorKind = kind
        self.detail = message


def strip_code_fences(text: str) -> str:
    """The inside of the first markdown code fence, or `text` when there is none.

    An opening fence without a closing one (a truncated answer) yields everything after it.
    """
    opening = _FENCE_OPEN.search(text)
    if opening is None:
        return text
    closing = text.find("```", opening.end())
    return text[opening.end():] if closing < 0 else text[opening.end():closing]


def _object_end(text: str, start: int) -> int | None:
    """Index just past the object opening at `start`, or None when it never closes."""
    depth = 0
    in_string = escaped = False
    for i in range(start, len(text)):
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i + 1
    return None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _loads(candidate: str) -> Any:
    return json.loads(candidate, parse_constant=_reject_constant)


def extract_json_object(text: str) -> Any:
    """Parse the outermost JSON object in `text` (fences and surrounding prose ignored).

    Raises:
        InvalidOutputError: empty text, no object, an object that never closes, or invalid JSON.
    """
    fenced = strip_code_fences(text).strip()
    try:
        return _first_object(fenced)
    except InvalidOutputError as exc:
        unfenced = text.strip()
        if exc.kind not in ("empty", "no_json") or unfenced == fenced or "{" not in unfenced:
            raise
        return _first_object(unfenced)  # the object was outside the fence (fenced code after the JSON)


def _first_object(body: str) -> Any:
    if not body:
        raise InvalidOutputError("empty", "the answer is empty")
    start = body.find("{")
    if start < 0:
        raise InvalidOutputError("no_json", f"no JSON object in the answer (starts with {body[:60]!r})")
    first_error: str | None = None
    while start >= 0:
        end = _object_end(body, start)
        if end is None:
            if first_error is None:
                raise InvalidOutputError(
                    "truncated", f"the JSON object opened at character {start} never closes "
                                 f"(answer cut off after {len(body)} characters?)")
            break
        try:
            return _loads(body[start:end])
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            first_error = first_error or str(exc)
        start = body.find("{", end)
    raise InvalidOutputError("invalid_json", f"the answer is not valid JSON: {first_error}")


def describe_validation_error(exc: ValidationError, *, limit: int = _MAX_ERRORS_SHOWN) -> str:
    """One line per error with its field path, e.g. `proposals.0.confidence: ... (got 1.5)`."""
    lines = []
    for err in exc.errors()[:limit]:
        path = ".".join(str(p) for p in err["loc"]) or "<root>"
        got = "" if err["type"] == "missing" else f" (got {json.dumps(err.get('input'), default=str)[:80]})"
        lines.append(f"{path}: {err['msg']}{got}")
    more = exc.error_count() - limit
    if more > 0:
        lines.append(f"... and {more} more")
    return "; ".join(lines)


def parse_output(text: str, schema: type[OutputT]) -> OutputT:
    """Validate the JSON object in `text` against `schema`.

    Raises:
        InvalidOutputError: with `kind` saying what was wrong.
    """
    data = extract_json_object(text)
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise InvalidOutputError(
            "schema", f"{exc.error_count()} error(s) against {schema.__name__}: {describe_validation_error(exc)}"
        ) from None


def json_schema_of(schema: type[BaseModel]) -> dict[str, Any]:
    """The JSON schema of an output model."""
    return schema.model_json_schema()


def schema_instructions(schema: type[BaseModel]) -> str:
    """Text for the system prompt: answer in one JSON object of this (compact) JSON schema."""
    rendered = json.dumps(json_schema_of(schema), separators=(",", ":"), sort_keys=True)
    return (f"{_INSTRUCTIONS_MARKER} that validates against the JSON schema below: no prose, "
            f"no markdown, no comments.\nJSON schema of {schema.__name__}: {rendered}")


def with_schema_instructions(messages: Sequence[Message], schema: type[BaseModel]) -> list[dict[str, str]]:
    """Chat messages as dicts, with the schema instructions appended to the system message.

    A system message is added first when there is none; messages that already carry
    the instructions are left alone.
    """
    out = [{"role": m.role, "content": m.content} for m in messages]
    if any(_INSTRUCTIONS_MARKER in m["content"] for m in out if m["role"] == "system"):
        return out
    instructions = schema_instructions(schema)
    if out and out[0]["role"] == "system":
        out[0]["content"] = f"{out[0]['content'].rstrip()}\n\n{instructions}"
    else:
        out.insert(0, {"role": "system", "content": instructions})
    return out


def carries_schema(content: str, schema: type[BaseModel]) -> bool:
    """Whether `content` already holds the JSON schema of `schema` (spaced or compact, keys sorted)."""
    rendered = json_schema_of(schema)
    return any(json.dumps(rendered, sort_keys=True, separators=sep) in content for sep in ((", ", ": "), (",", ":")))


def schema_messages(messages: Sequence[Message], schema: type[BaseModel], *,
                    in_response_format: bool) -> list[dict[str, str]]:
    """Chat messages as dicts that carry the schema exactly once.

    Nothing is added when the response format carries the schema or a system message already holds it;
    otherwise the schema instructions are appended to the system message (one is added first when there is none).
    """
    out = [{"role": m.role, "content": m.content} for m in messages]
    if in_response_format or any(carries_schema(m["content"], schema) for m in out if m["role"] == "system"):
        return out
    return with_schema_instructions(messages, schema)


def response_format(schema: type[BaseModel], mode: ResponseFormatMode) -> dict[str, Any] | None:
    """The OpenAI-style `response_format` argument for `mode` (None for "none").

    "json_schema" is not strict: OpenAI's strict mode needs every field required,
    and the output schemas have defaults. The answer is validated here either way.
    """
    if mode == "none":
        return None
    if mode == "json_object":
        return {"type": "json_object"}
    return {"type": "json_schema",
            "json_schema": {"name": schema.__name__, "schema": json_schema_of(schema), "strict": False}}


def repair_message(error: InvalidOutputError) -> str:
    """The follow-up user message that asks the model to fix its previous answer."""
    return (f"Your previous answer was rejected ({error}). Answer again with exactly one complete JSON "
            f"object that validates against the schema, and nothing else.")
