"""The rehearsal's local alert sink keeps every alert, in order, and says when it cannot."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.alerts import JsonlAlertChannel
from domain.errors import AlertDeliveryError
from domain.events import EventType, Severity
from domain.ports.alerts import Alert

AT = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)


def alert(title: str) -> Alert:
    return Alert(type=EventType.KILL_SWITCH.value, severity=Severity.CRITICAL, title=title, body="all closed", at=AT,
                 fields={"Orders cancelled": "3"}, event_id=7)


async def test_alerts_are_appended_one_json_line_each(tmp_path: Path) -> None:
    sink = JsonlAlertChannel(tmp_path / "rehearsal" / "alerts.jsonl")
    await sink.send(alert("first"))
    await sink.send(alert("second"))
    got = sink.read()
    assert [a["title"] for a in got] == ["first", "second"]
    assert got[0]["severity"] == "critical" and got[0]["fields"] == {"Orders cancelled": "3"}


async def test_an_unwritable_sink_is_a_delivery_error(tmp_path: Path) -> None:
    sink = JsonlAlertChannel(tmp_path / "alerts.jsonl")
    sink.path.mkdir()  # a directory where the file should be
    with pytest.raises(AlertDeliveryError, match="cannot write alerts"):
        await sink.send(alert("x"))
