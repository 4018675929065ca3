"""Undo journal that gives the in-memory repositories real transactions.

Every mutation records how to undo itself; rollback undoes in reverse order,
commit forgets. This keeps in-memory backtests honest about "a cycle commits
fully or rolls back fully" without copying whole stores.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

MISSING: Any = object()


def restore(store: dict[Any, Any], key: Any, old: Any) -> None:
    """Undo a dict write: put `old` back under `key`, or remove the key when it was `MISSING`."""
    if old is MISSING:
        store.pop(key, None)
    else:
        store[key] = old


class Journal:
    """A stack of undo actions for the transaction in progress."""

    def __init__(self) -> None:
        self._undo: list[Callable[[], None]] = []
        self.depth = 0

    def record(self, undo: Callable[[], None]) -> None:
        """Remember how to revert a mutation just made."""
        self._undo.append(undo)

    def commit(self) -> None:
        """Keep everything done since the last commit or rollback."""
        self._undo.clear()

    def rollback(self) -> None:
        """Revert everything done since the last commit or rollback."""
        while self._undo:
            self._undo.pop()()
