"""Checking a tool call's arguments against the JSON schema its model was shown (the subset the chat's tools use:
an object of strings and integers with `required`, `enum`, `minLength`/`maxLength`, `minimum`/`maximum` and no
other properties)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ArgumentError(ValueError):
    """A tool call's arguments do not fit its schema; the message says which and how."""


def _check_string(name: str, value: Any, rule: Mapping[str, Any]) -> str:
    if not isinstance(value, str):
        raise ArgumentError(f"{name} must be a string, got {type(value).__name__}")
    text = value.strip()
    if "enum" in rule and text not in rule["enum"]:
        raise ArgumentError(f"{name} must be one of {', '.join(rule['enum'])}, got {text[:40]!r}")
    if len(text) < rule.get("minLength", 0):
        raise ArgumentError(f"{name} must not be empty")
    if len(text) > rule.get("maxLength", len(text)):
        raise ArgumentError(f"{name} is too long ({len(text)} characters, at most {rule['maxLength']})")
    return text


def _check_integer(name: str, value: Any, rule: Mapping[str, Any]) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentError(f"{name} must be a whole number, got {str(value)[:40]!r}")
    if not rule.get("minimum", value) <= value <= rule.get("maximum", value):
        raise ArgumentError(f"{name} must be between {rule.get('minimum')} and {rule.get('maximum')}, got {value}")
    return value


def check_arguments(arguments: Any, schema: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments, checked and cleaned (strings stripped, whole floats made integers).

    Raises:
        ArgumentError: not an object, a missing required argument, an unknown one, a wrong type or a value out of
            its enum or bounds.
    """
    if not isinstance(arguments, Mapping):
        raise ArgumentError(f"arguments must be a JSON object, got {type(arguments).__name__}")
    props: Mapping[str, Any] = schema.get("properties", {})
    unknown = sorted(str(k)[:40] for k in arguments if k not in props)
    if unknown:
        allowed = ", ".join(props) or "none"
        raise ArgumentError(f"unknown argument(s) {', '.join(unknown)}; allowed: {allowed}")
    out: dict[str, Any] = {}
    for name, rule in props.items():
        value = arguments.get(name)
        if value is None:
            if name in schema.get("required", ()):
                raise ArgumentError(f"{name} is required")
            continue
        kind = rule.get("type")
        out[name] = _check_string(name, value, rule) if kind == "string" else _check_integer(name, value, rule)
    return out
