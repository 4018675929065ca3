"""A reader for the part of Grafana Alloy's configuration syntax that deploy/alloy/config.alloy uses.

Blocks (`name.kind "label" { ... }`), attributes (`key = value`), strings, numbers, booleans, lists, objects
(`{"k" = v}`) and references to other components' exports (`discovery.docker.containers.targets`), with `//`
and `/* */` comments. Anything else is a syntax error, so a config this cannot read fails its test.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

_TOKEN = re.compile(r'\s+|//[^\n]*|/\*.*?\*/|(?P<str>"(?:[^"\\]|\\.)*")|(?P<num>-?\d+(?:\.\d+)?)'
                    r"|(?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)|(?P<punct>[{}\[\]=,])", re.S)


@dataclass(frozen=True)
class Reference:
    """A reference to another component's export, e.g. `loki.write.local.receiver`."""

    path: str


@dataclass
class Block:
    """A block: its name (`loki.source.docker`), optional label, attributes and nested blocks."""

    name: str
    label: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    blocks: list[Block] = field(default_factory=list)

    def children(self, name: str) -> list[Block]:
        return [b for b in self.blocks if b.name == name]


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise SyntaxError(f"unexpected {text[pos:pos + 20]!r} at offset {pos}")
        pos = m.end()
        if m.lastgroup is not None:
            out.append((m.lastgroup, m.group(m.lastgroup)))
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0

    def peek(self, offset: int = 0) -> tuple[str, str]:
        return self.toks[self.i + offset] if self.i + offset < len(self.toks) else ("eof", "")

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok[0] == "eof" or (value is not None and tok[1] != value):
            raise SyntaxError(f"expected {value or 'a token'}, got {tok[1]!r}")
        self.i += 1
        return tok

    def body(self, end: str | None) -> Block:
        block = Block("")
        while self.peek()[1] != (end or "") and self.peek()[0] != "eof":
            kind, name = self.take()
            if kind != "ident":
                raise SyntaxError(f"expected a name, got {name!r}")
            if self.peek()[1] == "=":
                self.take("=")
                block.attributes[name] = self.value()
                continue
            label = json.loads(self.take()[1]) if self.peek()[0] == "str" else None
            self.take("{")
            inner = self.body("}")
            self.take("}")
            block.blocks.append(Block(name, label, inner.attributes, inner.blocks))
        return block

    def value(self) -> Any:
        kind, text = self.take()
        if kind == "str":
            return json.loads(text)
        if kind == "num":
            return float(text) if "." in text else int(text)
        if kind == "ident":
            return {"true": True, "false": False, "null": None}.get(text, Reference(text))
        if text == "[":
            items = []
            while self.peek()[1] != "]":
                items.append(self.value())
                if self.peek()[1] == ",":
                    self.take(",")
            self.take("]")
            return items
        if text == "{":
            obj = {}
            while self.peek()[1] != "}":
                key_kind, key = self.take()
                obj[json.loads(key) if key_kind == "str" else key] = (self.take("="), self.value())[1]
                if self.peek()[1] == ",":
                    self.take(",")
            self.take("}")
            return obj
        raise SyntaxError(f"unexpected {text!r}")


def parse(text: str) -> list[Block]:
    """The top-level blocks of an Alloy configuration."""
    parser = _Parser(text)
    root = parser.body(None)
    if root.attributes:
        raise SyntaxError(f"attributes outside any block: {sorted(root.attributes)}")
    return root.blocks
