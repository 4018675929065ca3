"""The live stack on the Alpaca-wire emulator, from the container: the "rehearsal" configuration with the test's
own emulator, in memory. A restart is a second container on the same in-memory database."""

from __future__ import annotations

from typing import Any

from dependency_injector import providers

from adapters.inmemory.alpaca_emulator import AlpacaEmulator
from entrypoints.container import Container, build_container
from entrypoints.settings import load_settings
from entrypoints.wiring.venue import EMULATOR_KEYS

KEY, SECRET = EMULATOR_KEYS


def live_on(emu: AlpacaEmulator, *, database: Any = None, scope: str = "live") -> Container:
    """A container of the live stack trading through the Alpaca adapters against `emu` (its keys must be
    `KEY`/`SECRET`); `database` is the in-memory database of an earlier container (a restart)."""
    c = build_container(load_settings(env="test"), "rehearsal", storage="memory", scope=scope)
    c.emulator.override(providers.Object(emu))
    c.calendar.override(providers.Object(emu.exchange.calendar))
    if database is not None:
        c.memory_db.override(providers.Object(database))
    return c
