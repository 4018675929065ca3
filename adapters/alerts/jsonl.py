"""JsonlAlertChannel: alerts appended to a JSON-lines file (the local sink of a rehearsal)."""

from __future__ import annotations

import json
from pathlib import Path

from domain.errors import AlertDeliveryError
from domain.events import Severity
from domain.ports.alerts import Alert, AlertChannel


class JsonlAlertChannel(AlertChannel):
    """Implements `AlertChannel` by appending one JSON object per alert to `path`.

    Args:
        path: the file (its directory is created).
        name: the channel name used in routes.
    """

    def __init__(self, path: Path, name: str = "log") -> None:
        self.name = name
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    async def send(self, alert: Alert) -> None:
        """Append `alert`.

        Raises:
            AlertDeliveryError: the file cannot be written (not retryable).
        """
        line = {"type": alert.type, "severity": Severity(alert.severity).value, "title": alert.title,
                "body": alert.body, "fields": alert.fields, "at": alert.at.isoformat(), "event_id": alert.event_id}
        try:
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(line, default=str) + "\n")
        except OSError as exc:
            raise AlertDeliveryError(f"cannot write alerts to {self.path}: {exc}", retryable=False) from None

    def read(self) -> list[dict[str, object]]:
        """Every alert written so far, oldest first."""
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]
